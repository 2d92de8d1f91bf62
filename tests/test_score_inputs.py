"""`score` on outside prediction files: never a silent partial or malformed score."""

import json
import subprocess

import datasets
import pytest

from tests.conftest import cli

POPE = "lmms-lab/POPE/Full/random.parquet"


def pope_ids(data_dir) -> list[str]:
    rows = datasets.load_dataset("parquet", data_files=str(data_dir / POPE), split="train")
    return [str(i) for i in rows["question_id"]], list(rows["answer"])


def score(tmp_path, data_dir, lines: list[str], *extra: str):
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    out = tmp_path / "out"
    done = subprocess.run(cli("score", "--task", "pope_random", "--predictions", str(path),
                              "--data-dir", str(data_dir), "--output", str(out),
                              "--bootstrap", "10", *extra), capture_output=True, text=True)
    return done, out


def all_correct(data_dir) -> list[str]:
    ids, answers = pope_ids(data_dir)
    return [json.dumps({"id": i, "prediction": a}) for i, a in zip(ids, answers)]


def test_missing_ids_exit_2_and_count_as_wrong_when_allowed(tmp_path, data_dir):
    lines = all_correct(data_dir)
    kept = lines[:-4]
    done, out = score(tmp_path, data_dir, kept)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"4 of {len(lines)} examples of pope_random have no prediction" in done.stderr
    assert not (out / "results.json").exists()
    done, out = score(tmp_path, data_dir, kept, "--allow-partial")
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "results.json").read_text())["tasks"]["pope_random"]
    # every present prediction is right, the 4 missing ones count as wrong
    assert result["metrics"]["accuracy"]["value"] == pytest.approx((len(lines) - 4) / len(lines))
    assert result["partial"] is True and result["missing_predictions"] == 4
    assert result["coverage"] == pytest.approx((len(lines) - 4) / len(lines))


@pytest.mark.parametrize("damage, message", [
    (lambda lines: lines[:3] + ["{not json"] + lines[3:], "line 4 not a JSON object"),
    (lambda lines: lines[:1] + ["[1, 2]"] + lines[1:],
     "line 2 not a JSON object but an array (JSON Lines: one object per line)"),
    (lambda lines: [json.dumps([json.loads(line) for line in lines])],   # json.dump(list)
     "line 1 not a JSON object but an array"),
    (lambda lines: [line.replace('"prediction"', '"answer"') for line in lines],
     'without "prediction"'),
    (lambda lines: lines + [lines[0]], "repeat an id given earlier"),
    (lambda lines: lines[:2] + ['{"prediction": "yes"}'] + lines[2:], 'line 3 without "id"'),
])
def test_bad_prediction_files_are_one_line_errors(tmp_path, data_dir, damage, message):
    done, out = score(tmp_path, data_dir, damage(all_correct(data_dir)))
    assert done.returncode == 2, done.stdout
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (out / "results.json").exists()
