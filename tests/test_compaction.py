"""A run's own predictions file reads back: after a rerun superseded lines (edited data, a
retried failure, another run key) it holds one current line per example, and `score` on it gives
the run's own numbers. Compaction is whole or not at all."""

import functools
import hashlib
import json
import os
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import datasets
import pytest

from paligemma_eval.harness import registry
from paligemma_eval.harness.cli import main
from paligemma_eval.harness.runner import compact_predictions, load_predictions

VQA = "lmms-lab/VQAv2/default/validation.parquet"
SAME = ["--bootstrap", "30", "--seed", "3"]


def run(data: Path, out: Path, model: str = "tiny-paligemma", limit: str = "6") -> dict:
    assert main(["run", "--model", model, "--tasks", "vqav2_val", "--data-dir", str(data),
                 "--limit", limit, "--device", "cpu", "--output", str(out), *SAME]) == 0
    return json.loads((out / "results.json").read_text())["tasks"]["vqav2_val"]


def score_own_file(data: Path, out: Path, tmp_path: Path, limit: str = "6") -> dict:
    """`score` on the run's own predictions file, as README promises it can be used."""
    scored = tmp_path / "scored"
    predictions = out / "predictions" / "vqav2_val.jsonl"
    assert main(["score", "--task", "vqav2_val", "--predictions", str(predictions),
                 "--data-dir", str(data), "--limit", limit, "--output", str(scored), *SAME]) == 0
    result = json.loads((scored / "results.json").read_text())["tasks"]["vqav2_val"]
    # which file was scored, wherever `score` was run from
    assert result["predictions_file"] == str(predictions.resolve())
    assert result["predictions_sha256"] == hashlib.sha256(predictions.read_bytes()).hexdigest()
    return result


def same_numbers(ours: dict, theirs: dict) -> None:
    assert ours["metrics"] == theirs["metrics"]           # values, n and intervals
    for key in ("n_examples", "n_scored", "coverage", "failed"):
        assert ours[key] == theirs[key], key


def lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in
            (out / "predictions" / "vqav2_val.jsonl").read_text().splitlines()]


def test_after_a_data_edit_the_file_holds_one_line_per_example_and_scores_as_the_run(
        tmp_path, data_dir):
    data, out = tmp_path / "data", tmp_path / "out"
    (data / VQA).parent.mkdir(parents=True)
    shutil.copy(data_dir / VQA, data / VQA)
    run(data, out)
    rows = datasets.load_dataset("parquet", data_files=str(data / VQA), split="train")
    rows = rows.map(lambda row, i: {"question": "what color is the shape?" if i in (1, 4) else
                                    row["question"]}, with_indices=True)
    rows.to_parquet(str(tmp_path / "edited.parquet"))
    shutil.move(tmp_path / "edited.parquet", data / VQA)
    rerun = run(data, out)
    assert rerun["throughput"]["generated"] == 2
    written = lines(out)
    assert len(written) == 6 and len({r["id"] for r in written}) == 6
    edited = {str(rows[i]["question_id"]) for i in (1, 4)}
    assert {r["prompt"] for r in written if r["id"] in edited} == \
        {"answer en what color is the shape?"}
    same_numbers(score_own_file(data, out, tmp_path), rerun)


def test_after_a_retried_failure_the_file_holds_the_retry_and_scores_as_the_run(
        tmp_path, data_dir):
    """Images by URL (as COCO's hub copy has them): a dead link fails an example; the link
    comes back and the rerun retries it under the same key and input."""
    rows = datasets.load_dataset("parquet", data_files=str(data_dir / VQA), split="train")
    rows = rows.cast_column("image", datasets.Image(decode=False)).select(range(5))
    served = tmp_path / "served"
    served.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(
        SimpleHTTPRequestHandler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    local = tmp_path / "data" / VQA.replace(".parquet", ".jsonl")
    local.parent.mkdir(parents=True)
    with open(local, "w") as handle:
        for i, row in enumerate(rows):
            if i != 2:   # image 2 is missing at first: a 404
                (served / f"{i}.png").write_bytes(row["image"]["bytes"])
            handle.write(json.dumps({**{k: v for k, v in row.items() if k != "image"},
                                     "image": f"{base}/{i}.png"}) + "\n")
    out = tmp_path / "out"
    try:
        first = run(tmp_path / "data", out, limit="5")
        assert len(first["failed"]) == 1 and "404" in first["failed"][0]["reason"]
        (served / "2.png").write_bytes(rows[2]["image"]["bytes"])
        rerun = run(tmp_path / "data", out, limit="5")
    finally:
        server.shutdown()
    assert rerun["failed"] == [] and rerun["throughput"]["generated"] == 1
    written = lines(out)
    assert len(written) == 5 and not [r for r in written if "error" in r]
    same_numbers(score_own_file(tmp_path / "data", out, tmp_path, limit="5"), rerun)


def test_a_failure_that_stays_is_scored_as_wrong_from_the_file_too(tmp_path, data_dir):
    """A failed example's line holds its error: `score` counts it as the run did."""
    rows = datasets.load_dataset("parquet", data_files=str(data_dir / VQA), split="train")
    rows = rows.cast_column("image", datasets.Image(decode=False)).select(range(4))
    rows = rows.map(lambda row, i: {"image": {"bytes": b"not a png" if i == 1 else
                                              row["image"]["bytes"], "path": None}},
                    with_indices=True)
    data = tmp_path / "data"
    (data / VQA).parent.mkdir(parents=True)
    rows.to_parquet(str(data / VQA))
    result = run(data, tmp_path / "out", limit="4")
    assert len(result["failed"]) == 1
    same_numbers(score_own_file(data, tmp_path / "out", tmp_path, limit="4"), result)


def test_after_another_model_the_file_holds_its_lines_only(tmp_path, data_dir, capsys):
    out = tmp_path / "out"
    run(data_dir, out, "tiny-paligemma")
    capsys.readouterr()
    second = run(data_dir, out, "tiny-paligemma2")
    assert "held 1 task result(s) of another model (tiny-paligemma); this run's replace them" \
        in capsys.readouterr().err
    written = lines(out)
    assert len(written) == 6 and len({r["key"] for r in written}) == 1
    same_numbers(score_own_file(data_dir, out, tmp_path), second)


def record(example_id: str, key: str = "k", prediction: str | None = "yes",
           error: str | None = None) -> dict:
    done = {"prediction": prediction} if error is None else {"error": error}
    return {"format": 1, "key": key, "id": example_id, "input": f"in-{example_id}", **done}


def write(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def scattered(tmp_path):
    """What a data-parallel rerun leaves: an older single-process file (a failure since retried,
    a line under another key, an example beyond this run's --limit) and two rank files."""
    (task,) = registry.resolve(["vqav2_val"])
    folder = tmp_path / "predictions"
    write(folder / "vqav2_val.jsonl", [record("1", error="image: timeout"),
                                       record("2", key="old", prediction="no"),
                                       record("9", prediction="beyond the limit")])
    write(folder / "vqav2_val.rank0.jsonl", [record("1", prediction="retried"), record("3")])
    write(folder / "vqav2_val.rank1.jsonl", [record("2", prediction="new key")])
    inputs = {i: f"in-{i}" for i in ("1", "2", "3")}
    return task, tmp_path, inputs


def test_compaction_merges_rank_files_into_one_line_per_example(scattered):
    task, out, inputs = scattered
    current = load_predictions(out, task, "k", inputs)
    assert current["1"]["prediction"] == "retried"    # a prediction beats the failure it retried
    assert compact_predictions(out, task, current, ["1", "2", "3"])
    assert sorted(p.name for p in (out / "predictions").iterdir()) == ["vqav2_val.jsonl"]
    written = [json.loads(line) for line in
               (out / "predictions" / "vqav2_val.jsonl").read_text().splitlines()]
    assert [(r["id"], r.get("prediction")) for r in written] == \
        [("1", "retried"), ("2", "new key"), ("3", "yes"), ("9", "beyond the limit")]
    assert load_predictions(out, task, "k", inputs) == current     # a resume reuses all of it
    assert not compact_predictions(out, task, current, ["1", "2", "3"])   # nothing left to do


@pytest.mark.parametrize("killed_at", ["write", "rename", "rank files"])
def test_a_kill_during_compaction_loses_nothing(scattered, monkeypatch, killed_at):
    task, out, inputs = scattered
    current = load_predictions(out, task, "k", inputs)
    before = {p.name: p.read_bytes() for p in (out / "predictions").iterdir()}

    class Killed(BaseException):
        pass

    def die(*args, **kwargs):
        raise Killed

    if killed_at == "write":
        monkeypatch.setattr(os, "fsync", die)
    elif killed_at == "rename":
        monkeypatch.setattr(os, "replace", die)
    else:
        monkeypatch.setattr(Path, "unlink", die)
    with pytest.raises(Killed):
        compact_predictions(out, task, current, ["1", "2", "3"])
    monkeypatch.undo()
    left = {p.name: p.read_bytes() for p in (out / "predictions").iterdir()
            if not p.name.startswith(".")}
    if killed_at != "rank files":
        assert left == before                       # the old files, untouched
    assert load_predictions(out, task, "k", inputs) == current
    assert compact_predictions(out, task, current, ["1", "2", "3"])   # the next end finishes it
    assert sorted(p.name for p in (out / "predictions").iterdir()) == ["vqav2_val.jsonl"]
    assert load_predictions(out, task, "k", inputs) == current
    assert load_predictions(out, task, None)["9"]["prediction"] == "beyond the limit"


def test_an_unterminated_external_line_still_reads(tmp_path):
    from paligemma_eval.harness.cli import read_predictions

    path = tmp_path / "external.jsonl"
    path.write_bytes(b'{"id": 1, "prediction": "a"}\n{"id": 2, "prediction": "b"}')
    assert set(read_predictions(path)) == {"1", "2"}
