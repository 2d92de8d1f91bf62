"""record-server-score reads results.json through the shared reader before it writes anything, and
hashes only the run's own submission file. In-process (cli.main): what a user types."""

import json
from pathlib import Path

import pytest

from paligemma_eval.harness.cli import main

TASK = "vqav2_test"


def _run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "submissions").mkdir(parents=True)
    (run / "submissions" / f"{TASK}.json").write_text('[{"question_id": 1, "answer": "yes"}]')
    (run / "results.json").write_text(json.dumps({"schema_version": 1, "model": {"id": "m"},
                                                  "tasks": {TASK: {
        "submission": f"submissions/{TASK}.json", "metrics": {}, "dataset": {"split": "test"}}}}))
    return run


def _record(run: Path, *extra: str) -> int:
    return main(["record-server-score", str(run), "--task", TASK, "--metric", "accuracy",
                 "--value", "0.5", *extra])


def test_a_score_for_the_runs_own_submission_is_recorded(tmp_path, capsys):
    run = _run(tmp_path)
    assert _record(run) == 0, capsys.readouterr().err
    entry = json.loads((run / "results.json").read_text())["tasks"][TASK]["metrics"]["accuracy"]
    assert entry["value"] == 0.5 and len(entry["submission_sha256"]) == 64


def _task(**fields):
    return lambda d: d["tasks"][TASK].update(fields)


@pytest.mark.parametrize("damage, why", [
    (lambda d: d.update(tasks=[1]), "tasks must be an object, got a list"),
    (lambda d: [d], "not a results file: it holds a list"),
    (_task(submission=5), f"tasks.{TASK}.submission must be a string"),
    (_task(metrics="x"), f"tasks.{TASK}.metrics must be an object"),
    (lambda d: d.update(model="x"), "model must be an object or null"),
    (lambda d: d.update(schema_version=7), "format version 7"),
    (_task(metrics={"accuracy": {"value": float("nan")}}), "holds NaN"),   # json.dumps: NaN
])
def test_a_results_file_the_shared_reader_refuses_is_left_untouched(tmp_path, capsys, damage,
                                                                     why):
    run = _run(tmp_path)
    document = json.loads((run / "results.json").read_text())
    changed = damage(document)
    (run / "results.json").write_text(json.dumps(document if changed is None else changed))
    before = (run / "results.json").read_bytes()
    assert _record(run, "--evidence", str(run / "submissions" / f"{TASK}.json")) == 2
    err = capsys.readouterr().err
    assert f"{run / 'results.json'}: " in err and why in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert (run / "results.json").read_bytes() == before     # nothing rewritten first
    assert not (run / "server").exists()                      # nor the evidence copied


@pytest.mark.parametrize("submission", ["../policy.toml", "submissions/../../policy.toml",
                                        "/etc/hostname"])
def test_a_submission_path_outside_the_run_is_refused(tmp_path, capsys, submission):
    run = _run(tmp_path)
    (tmp_path / "policy.toml").write_text("not a submission\n")
    document = json.loads((run / "results.json").read_text())
    document["tasks"][TASK]["submission"] = submission
    (run / "results.json").write_text(json.dumps(document))
    before = (run / "results.json").read_bytes()
    assert _record(run) == 2
    err = capsys.readouterr().err
    assert f"submission {submission!r} lies outside {run}" in err
    assert len(err.strip().splitlines()) == 1
    assert (run / "results.json").read_bytes() == before


def test_a_non_finite_value_is_refused(tmp_path, capsys):
    run = _run(tmp_path)
    assert main(["record-server-score", str(run), "--task", TASK, "--metric", "accuracy",
                 "--value", "nan"]) == 2
    assert "--value nan" in capsys.readouterr().err
