"""gate and compare fail closed on per-example scores they cannot judge: a metric undefined (0/0)
over the shared units, a scores file that contradicts its results.json, and a policy naming a
task that does not exist. In-process (cli.main): each case is what a user types."""

import json
from pathlib import Path

import numpy as np
import pytest

from paligemma_eval.harness.cli import main
from paligemma_eval.harness.results import write_unit_scores
from paligemma_eval.harness.scores import Ratio, Scores

TASK = "pope_random"
KEY = "k1"


def _run(path: Path, correct: list[float], ids: list[str] | None = None,
         precision_den: list[float] | None = None) -> Path:
    """A self-consistent run of one task: results.json, scores/<task>.json and predictions."""
    ids = ids or [str(i) for i in range(len(correct))]
    den = np.ones(len(correct)) if precision_den is None else np.array(precision_den)
    ratios = {"accuracy": Ratio.mean(correct), "precision": Ratio(np.array(correct) * den, den)}
    write_unit_scores(path / "scores" / f"{TASK}.json", Scores(ids, ratios))
    metrics = {name: {"value": r.value if r.n else None, "n": r.n, "stderr": None, "ci95": None}
               for name, r in ratios.items()}
    (path / "results.json").write_text(json.dumps({"model": {"id": "m"}, "tasks": {TASK: {
        "headline": "accuracy", "prompt": "p", "metrics": metrics, "n_examples": len(ids),
        "n_scored": len(ids), "failed": [], "throughput": {"key": KEY}}}}))
    (path / "predictions").mkdir()
    (path / "predictions" / f"{TASK}.jsonl").write_text("".join(
        json.dumps({"format": 1, "key": KEY, "id": i, "prediction": "yes"}) + "\n" for i in ids))
    return path


def _gate(capsys, candidate: Path, baseline: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["gate", "--candidate", str(candidate), "--baseline", str(baseline),
                 "--bootstrap", "50", *extra])
    out, err = capsys.readouterr()
    return code, out, err


CORRECT = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]


def test_consistent_runs_still_gate(tmp_path, capsys):
    code, out, err = _gate(capsys, _run(tmp_path / "b", CORRECT), _run(tmp_path / "a", CORRECT))
    assert code == 0, err
    assert "of 6 shared" in out


def test_a_metric_undefined_over_the_shared_units_is_not_passed(tmp_path, capsys):
    """Each run's precision is defined, but on none of the units both share: 0/0, not a pass."""
    baseline = _run(tmp_path / "a", CORRECT, precision_den=[1, 1, 1, 0, 0, 0])
    candidate = _run(tmp_path / "b", CORRECT, ids=[str(i) for i in range(3, 9)])
    policy = tmp_path / "p.toml"
    policy.write_text(f'[tasks.{TASK}]\nmetrics = ["precision"]\n')
    summary = tmp_path / "s.md"
    code, out, err = _gate(capsys, candidate, baseline, "--policy", str(policy),
                           "--summary", str(summary))
    assert code == 2, out + err
    assert f"{TASK}: precision is undefined in the baseline over the units both runs' scores " \
           "share" in err and "cannot judge" in err
    assert "nan" not in out + err and len(err.strip().splitlines()) == 1
    assert "could not be judged" in summary.read_text()
    # compare says so instead of printing nan as if it were a number
    assert main(["compare", str(baseline), str(candidate), "--bootstrap", "20"]) == 0
    out, _ = capsys.readouterr()
    row = next(line for line in out.splitlines() if line.startswith(f"{TASK}/precision"))
    assert "not compared: undefined in run A over the shared units (0/0)" in row
    assert "nan" not in out


def _zero_den(scores: dict) -> None:     # the audit's case: results.json still says 0.5
    scores["ratios"]["precision"]["den"] = [0.0] * len(scores["units"])


def _repeat(scores: dict) -> None:
    scores["units"][1] = scores["units"][0]


def _rename(scores: dict) -> None:
    scores["units"] = [f"x{u}" for u in scores["units"]]


def _drop_last(scores: dict) -> None:
    scores["units"].pop()
    for ratio in scores["ratios"].values():
        ratio["num"].pop()
        ratio["den"].pop()


@pytest.mark.parametrize("damage, why", [
    (_zero_den, "precision is defined on 0 unit(s), results.json says n=6"),
    (_repeat, "unit '0' appears 2 times"),
    (_rename, "6 unit(s) the run's predictions do not hold, e.g. 'x0'"),
    (_drop_last, "accuracy is defined on 5 unit(s), results.json says n=6"),
])
def test_a_scores_file_that_contradicts_its_results_is_refused(tmp_path, capsys, damage, why):
    baseline = _run(tmp_path / "a", CORRECT)
    candidate = _run(tmp_path / "b", CORRECT)
    path = candidate / "scores" / f"{TASK}.json"
    scores = json.loads(path.read_text())
    damage(scores)
    path.write_text(json.dumps(scores))
    policy = tmp_path / "p.toml"
    policy.write_text(f'[tasks.{TASK}]\nmetrics = ["accuracy", "precision"]\n')
    code, out, err = _gate(capsys, candidate, baseline, "--policy", str(policy))
    assert code == 2, out + err
    assert f"{path}: does not match its results.json ({why})" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    # compare refuses it the same way (one line, exit 2), baseline or candidate side
    assert main(["compare", str(candidate), str(baseline), "--bootstrap", "20"]) == 2
    _, err = capsys.readouterr()
    assert f"{path}: does not match its results.json" in err


def test_a_policy_naming_no_task_at_all_is_an_error_with_the_close_match(tmp_path, capsys):
    baseline, candidate = _run(tmp_path / "a", CORRECT), _run(tmp_path / "b", CORRECT)
    policy = tmp_path / "p.toml"
    policy.write_text("[tasks.pope_randm]\nmax_drop = 0.0\n")
    junit = tmp_path / "g.xml"
    code, out, err = _gate(capsys, candidate, baseline, "--policy", str(policy),
                           "--junit", str(junit))
    assert code == 2, out + err
    assert f"--policy {policy}: [tasks.pope_randm] names no task" in err
    assert "did you mean 'pope_random'" in err and len(err.strip().splitlines()) == 1
    assert 'errors="1"' in junit.read_text()
    # a task of this harness that these runs lack is one policy serving several task sets
    # (docs/gate.example.toml names pope_adversarial): a warning, the gate still judges
    policy.write_text("[tasks.pope_adversarial]\nmax_drop = 0.0\n")
    code, out, err = _gate(capsys, candidate, baseline, "--policy", str(policy))
    assert code == 0, out + err
    assert "names task 'pope_adversarial', which is in neither run" in err
