import json
import os
import signal
import subprocess
import time
from pathlib import Path

import datasets
import pytest

from paligemma_eval.harness import registry
from paligemma_eval.harness.runner import RunOptions, run_task
from tests.conftest import cli


def read_predictions(path: Path) -> dict[str, str]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    ids = [r["id"] for r in lines]
    assert len(ids) == len(set(ids)), "duplicate prediction lines"
    return {r["id"]: r["prediction"] for r in lines}


def metrics(out: Path) -> dict:
    tasks = json.loads((out / "results.json").read_text())["tasks"]
    return {name: {m: v["value"] for m, v in t["metrics"].items()} for name, t in tasks.items()}


def test_run_writes_predictions_and_reproducible_results(tmp_path, data_dir):
    out = tmp_path / "out"
    done = subprocess.run(cli("run", "--model", "tiny-paligemma", "--tasks", "vqav2_val,mmvp",
                              "--data-dir", str(data_dir), "--limit", "12", "--output", str(out),
                              "--bootstrap", "100"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["schema_version"] == 1
    model = results["model"]
    assert (model["family"], model["resolution"], model["dtype"]) == ("paligemma", 224, "float32")
    assert model["fingerprint"].startswith("sha256:")
    assert results["harness"]["git_commit"] and results["environment"]["packages"]["torch"]
    vqa = results["tasks"]["vqav2_val"]
    assert vqa["prompt"] == "answer en {question}"
    assert vqa["decoding"] == {"max_new_tokens": 32, "num_beams": 1, "do_sample": False}
    assert vqa["dataset"]["source"] == "local" and len(vqa["dataset"]["sha256"]) == 64
    rows = len(datasets.Dataset.from_parquet(
        str(data_dir / "lmms-lab/VQAv2/default/validation.parquet")))
    assert (vqa["dataset"]["limit"], vqa["dataset"]["split_rows"]) == (12, rows) and rows > 12
    accuracy = vqa["metrics"]["accuracy"]
    assert accuracy["n"] == 12 and accuracy["ci95"][0] <= accuracy["value"] <= accuracy["ci95"][1]
    assert vqa["throughput"]["examples_per_second"] > 0
    predictions = read_predictions(out / "predictions" / "vqav2_val.jsonl")
    assert len(predictions) == 12
    # Pairs are MMVP's resampling unit: 12 rows -> 6 pairs.
    assert results["tasks"]["mmvp"]["metrics"]["paired_accuracy"]["n"] == 6


def test_sigkill_then_rerun_gives_the_uninterrupted_results(tmp_path, data_dir):
    args = ["--model", "tiny-paligemma", "--tasks", "docvqa_val", "--data-dir", str(data_dir),
            "--batch-size", "2", "--bootstrap", "50"]
    clean = tmp_path / "clean"
    subprocess.run(cli("run", *args, "--output", str(clean)), check=True, capture_output=True)

    killed = tmp_path / "killed"
    file = killed / "predictions" / "docvqa_val.jsonl"
    process = subprocess.Popen(cli("run", *args, "--output", str(killed)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and (not file.exists() or
                                      len(file.read_text().splitlines()) < 6):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    partial = len(file.read_text().splitlines())
    assert 6 <= partial < 24, "the kill must land mid-run"
    with open(file, "a") as handle:  # as if the kill had cut a line in half
        handle.write('{"key": "x", "id": "10')
    subprocess.run(cli("run", *args, "--output", str(killed)), check=True, capture_output=True)
    assert read_predictions(file) == read_predictions(clean / "predictions" / "docvqa_val.jsonl")
    assert metrics(killed) == metrics(clean)


def test_rerun_generates_nothing_already_done(tmp_path, data_dir, tiny_model):
    (task,) = registry.resolve(["pope_random"])
    options = RunOptions(out=tmp_path, data_dir=data_dir, limit=8, resamples=0)
    first = run_task(tiny_model, task, options)
    second = run_task(tiny_model, task, options)
    assert first["throughput"]["generated"] == 8
    assert second["throughput"]["generated"] == 0 and second["throughput"]["resumed"] == 8
    assert second["metrics"]["accuracy"]["value"] == first["metrics"]["accuracy"]["value"]


def test_score_command_uses_the_same_metric_code(tmp_path, data_dir, tiny_model):
    (task,) = registry.resolve(["vqav2_val"])
    run = run_task(tiny_model, task, RunOptions(out=tmp_path / "run", data_dir=data_dir,
                                                resamples=0))
    external = tmp_path / "external.jsonl"  # predictions as another tool would write them
    rows = read_predictions(tmp_path / "run" / "predictions" / "vqav2_val.jsonl")
    external.write_text("".join(json.dumps({"id": i, "prediction": p}) + "\n"
                                for i, p in rows.items()))
    done = subprocess.run(cli("score", "--task", "vqav2_val", "--predictions", str(external),
                              "--data-dir", str(data_dir), "--output", str(tmp_path / "s")),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert metrics(tmp_path / "s")["vqav2_val"]["accuracy"] == run["metrics"]["accuracy"]["value"]


@pytest.mark.parametrize("args, message", [
    (["--tasks", "no_such_task"], "unknown task 'no_such_task'; `paligemma-eval tasks` lists"),
    (["--tasks", "pope_ranodm"], "unknown task 'pope_ranodm'; did you mean 'pope_random' or "),
    (["--tasks", "MMVP"], "unknown task 'MMVP'; did you mean 'mmvp'? "),
    (["--tasks", "mmvp", "--finetuned-for", "Mmvp"], "unknown task 'Mmvp'; did you mean 'mmvp'"),
    (["--tasks", "mmvp", "--limit", "0"], "argument --limit: must be a positive integer"),
    (["--tasks", "mmvp", "--batch-size", "-1"], "argument --batch-size: must be a positive"),
    (["--tasks", "mmvp", "--output", "/proc/forbidden"], "not a writable directory"),
])
def test_usage_errors_before_any_model_loads(tmp_path, args, message):
    command = ["run", "--model", "/nonexistent/model", "--output", str(tmp_path / "o"), *args]
    done = subprocess.run(cli(*command), capture_output=True, text=True)
    assert done.returncode == 2
    assert message in done.stderr
    assert "nonexistent" not in done.stderr  # it failed before trying to load the model


def test_not_a_paligemma_directory(tmp_path, data_dir):
    (tmp_path / "weights.bin").write_bytes(b"")
    done = subprocess.run(cli("run", "--model", str(tmp_path), "--tasks", "mmvp", "--data-dir",
                              str(data_dir), "--output", str(tmp_path / "o")),
                          capture_output=True, text=True)
    assert done.returncode == 2 and "not a transformers checkpoint" in done.stderr
    assert "weights.bin" in done.stderr


def _broken_copy(data_dir: Path, tmp_path: Path, drop_column: str | None = None) -> Path:
    rows = datasets.load_dataset("parquet", split="train", data_files=str(
        data_dir / "lmms-lab/VQAv2/default/validation.parquet")).select(range(6))
    rows = rows.cast_column("image", datasets.Image(decode=False))
    if drop_column:
        rows = rows.remove_columns(drop_column)
    else:
        rows = rows.map(lambda r, i: {"image": {"bytes": b"not an image", "path": None}}
                        if i == 2 else {}, with_indices=True)
    target = tmp_path / "data" / "lmms-lab/VQAv2/default/validation.parquet"
    target.parent.mkdir(parents=True)
    rows.to_parquet(str(target))
    return tmp_path / "data"


def test_broken_image_fails_one_example_and_the_run_goes_on(tmp_path, data_dir, tiny_model):
    (task,) = registry.resolve(["vqav2_val"])
    result = run_task(tiny_model, task, RunOptions(out=tmp_path / "o", resamples=0,
                                                   data_dir=_broken_copy(data_dir, tmp_path)))
    # the failed example counts as wrong: in n, not in n_scored
    assert result["metrics"]["accuracy"]["n"] == 6 and result["n_scored"] == 5
    (failure,) = result["failed"]
    assert failure["reason"].startswith("image: ") and failure["id"]


def test_missing_column_fails_before_generation(tmp_path, data_dir):
    broken = _broken_copy(data_dir, tmp_path, drop_column="answers")
    out = tmp_path / "o"
    done = subprocess.run(cli("run", "--model", "tiny-paligemma", "--tasks", "vqav2_val",
                              "--data-dir", str(broken), "--output", str(out)),
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "missing required column(s) answers" in done.stderr
    assert not (out / "predictions").exists()


def test_images_fetched_by_url_and_a_dead_link_fails_one_example(tmp_path, data_dir, tiny_model):
    """COCO Karpathy carries image URLs; served here from 127.0.0.1."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    source = data_dir / "yerevann/coco-karpathy/default"
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(source))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    rows = [json.loads(line) for line in (source / "test.jsonl").read_text().splitlines()][:5]
    for k, row in enumerate(rows):
        row["url"] = f"{base}/{row['url']}" if k != 2 else f"{base}/images/missing.png"
    local = tmp_path / "data/yerevann/coco-karpathy/default/test.jsonl"
    local.parent.mkdir(parents=True)
    local.write_text("".join(json.dumps(r) + "\n" for r in rows))
    try:
        (task,) = registry.resolve(["coco_cap_karpathy_test"])
        result = run_task(tiny_model, task, RunOptions(out=tmp_path / "o", resamples=0,
                                                       data_dir=tmp_path / "data"))
    finally:
        server.shutdown()
    assert result["metrics"]["cider"]["n"] == 5 and result["n_scored"] == 4
    (failure,) = result["failed"]
    assert failure["id"] == rows[2]["filename"] and "404" in failure["reason"]


def test_readers_never_truncate_a_file_another_rank_is_writing(tmp_path):
    from paligemma_eval.harness.cache import PredictionStore

    path = tmp_path / "task.rank1.jsonl"
    path.write_text('{"key": "k", "id": "1", "prediction": "é"}\n{"key": "k", "id": "2", "pre')
    assert set(PredictionStore(path).load("k")) == {"1"}       # the cut line is not done yet
    assert path.read_text().endswith('"pre')                    # and the file is untouched
    writer = PredictionStore(path)
    writer.append([{"key": "k", "id": "2", "prediction": "x"}])   # its owner repairs, then writes
    assert set(PredictionStore(path).load("k")) == {"1", "2"}
    external = tmp_path / "external.jsonl"
    external.write_text('{"id": "a", "prediction": "yes"}')      # no final newline
    assert set(PredictionStore(external).load(unterminated_ok=True)) == {"a"}


def test_prefetching_path_used_on_accelerators_gives_the_same_predictions(tmp_path, data_dir,
                                                                          tiny_model):
    class OnAccelerator:  # the real model, reporting a GPU so the runner prefetches batches
        device = "cuda:0"
        info = tiny_model.info
        prepare = staticmethod(tiny_model.prepare)
        generate_prepared = staticmethod(tiny_model.generate_prepared)

    (task,) = registry.resolve(["vqav2_val"])
    for label, model in (("cpu", tiny_model), ("gpu", OnAccelerator())):
        run_task(model, task, RunOptions(out=tmp_path / label, data_dir=data_dir, batch_size=5,
                                         resamples=0))
    assert read_predictions(tmp_path / "gpu/predictions/vqav2_val.jsonl") == \
        read_predictions(tmp_path / "cpu/predictions/vqav2_val.jsonl")
