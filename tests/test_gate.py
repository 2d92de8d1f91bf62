import json
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest

from paligemma_eval.harness.gate import gate, load_run, markdown_cell
from paligemma_eval.harness.results import read_unit_scores, write_unit_scores
from paligemma_eval.harness.scores import Ratio, Scores
from tests.conftest import cli

TASKS = "vqav2_val,pope_random,mmvp,docvqa_val"


def run(model: str, out: Path, data_dir: Path, batch_size: int) -> Path:
    subprocess.run(cli("run", "--model", model, "--tasks", TASKS, "--data-dir", str(data_dir),
                       "--batch-size", str(batch_size), "--bootstrap", "200", "--output",
                       str(out)), check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("gate")
    return {"good": run("tiny-paligemma", root / "good", data_dir, 8),
            "good_b3": run("tiny-paligemma", root / "good_b3", data_dir, 3),
            "degraded": run("tiny-paligemma-degraded", root / "degraded", data_dir, 8)}


def gate_cli(tmp_path: Path, candidate: Path, baseline: Path | str, *extra: str):
    junit = tmp_path / "junit.xml"
    done = subprocess.run(cli("gate", "--candidate", str(candidate), "--baseline", str(baseline),
                              "--junit", str(junit), "--summary", str(tmp_path / "s.md"),
                              *extra), capture_output=True, text=True)
    return done, junit


def test_batch_size_does_not_change_results_and_the_gate_passes(runs, tmp_path):
    good, other = (json.loads((runs[k] / "results.json").read_text())["tasks"]
                   for k in ("good", "good_b3"))
    for task in good:
        assert {m: v["value"] for m, v in good[task]["metrics"].items()} == \
               {m: v["value"] for m, v in other[task]["metrics"].items()}, task
    done, junit = gate_cli(tmp_path, runs["good_b3"], runs["good"])
    assert done.returncode == 0, done.stdout + done.stderr
    suite = ElementTree.parse(junit).getroot()
    assert suite.get("tests") == "4" and suite.get("failures") == "0"


def test_degraded_checkpoint_fails_the_gate(runs, tmp_path):
    done, junit = gate_cli(tmp_path, runs["degraded"], runs["good"])
    assert done.returncode == 1, done.stdout + done.stderr
    failures = [case for case in ElementTree.parse(junit).getroot() if case.find("failure")
                is not None]
    assert failures
    named = {f"{case.get('classname')}/{case.get('name')}" for case in failures}
    assert "vqav2_val/accuracy" in named
    assert "REGRESSED" in (tmp_path / "s.md").read_text()


def test_missing_task_or_other_prompt_is_a_usage_error(runs, tmp_path):
    candidate = tmp_path / "candidate"
    shutil.copytree(runs["good"], candidate)
    results = json.loads((candidate / "results.json").read_text())
    results["tasks"]["vqav2_val"]["prompt"] = "question: {question}"
    (candidate / "results.json").write_text(json.dumps(results))
    done, _ = gate_cli(tmp_path, candidate, runs["good"])
    assert done.returncode == 2 and "prompt differs" in done.stderr
    done, _ = gate_cli(tmp_path, candidate, runs["good"], "--allow-mismatch")
    assert done.returncode == 0
    del results["tasks"]["mmvp"]
    (candidate / "results.json").write_text(json.dumps(results))
    done, _ = gate_cli(tmp_path, candidate, runs["good"], "--allow-mismatch")
    assert done.returncode == 2
    assert "mmvp is in the baseline but not in the candidate" in done.stderr
    assert "prompt differs" not in done.stderr   # allowed, so not named as the error
    assert "with --tasks" in done.stderr


def _synthetic_run(path: Path, correct: np.ndarray) -> Path:
    ids = [str(i) for i in range(len(correct))]
    write_unit_scores(path / "scores" / "t.json", Scores(ids, {"accuracy": Ratio.mean(correct)}))
    entry = {"value": float(correct.mean()), "n": len(ids), "ci95": None, "stderr": None}
    (path / "results.json").write_text(json.dumps({"model": {}, "tasks": {"t": {
        "headline": "accuracy", "prompt": "p", "metrics": {"accuracy": entry}}}}))
    return path


def test_noise_does_not_fire_a_significance_gate_but_a_real_drop_does(tmp_path):
    rng = np.random.default_rng(0)
    base = (rng.random(3000) < 0.7).astype(float)
    noisy = base.copy()   # a rerun's noise: a few examples flip, both ways
    noisy[rng.choice(np.flatnonzero(base == 1), 25, replace=False)] = 0
    noisy[rng.choice(np.flatnonzero(base == 0), 15, replace=False)] = 1
    worse = base.copy()
    worse[rng.choice(np.flatnonzero(base == 1), 150, replace=False)] = 0
    baseline = load_run(_synthetic_run(tmp_path / "a", base))
    policy = {"default": {"max_drop": 0.0, "require_significance": True}}
    (noise,) = gate(load_run(_synthetic_run(tmp_path / "b", noisy)), baseline, policy)
    assert noise.worse_by > 0 and not noise.regressed        # it dropped, within the noise
    (drop,) = gate(load_run(_synthetic_run(tmp_path / "c", worse)), baseline, policy)
    assert drop.regressed and drop.comparison["paired"]
    # Without the significance requirement the same noise fires a zero-tolerance gate.
    (strict,) = gate(load_run(_synthetic_run(tmp_path / "b", noisy)), baseline,
                     {"default": {"max_drop": 0.0, "require_significance": False}})
    assert strict.regressed
    units, ratios = read_unit_scores(tmp_path / "a" / "scores" / "t.json")
    assert units[:2] == ["0", "1"] and ratios["accuracy"].value == pytest.approx(base.mean())
    # No interval (--bootstrap 0): whether it is noise is unknown, so a drop beyond it counts
    (unknown,) = gate(load_run(_synthetic_run(tmp_path / "b", noisy)), baseline, policy,
                      resamples=0)
    assert unknown.comparison["significant"] is None and unknown.regressed
    (within,) = gate(load_run(_synthetic_run(tmp_path / "b", noisy)), baseline,
                     {"default": {"max_drop": 0.01, "require_significance": True}}, resamples=0)
    assert within.worse_by < 0.01 and not within.regressed


def test_a_drop_in_a_recorded_server_score_fails_the_gate(tmp_path):
    """A server's score has no interval: with the default significance rule it still gates."""
    def run(path: Path, value: float) -> Path:
        path.mkdir()
        (path / "results.json").write_text(json.dumps({"model": {"id": "m"}, "tasks": {
            "vqav2_test": {"headline": "accuracy", "submission": "s.json", "metrics": {
                "accuracy": {"value": value, "n": None, "ci95": None,
                             "source": "evaluation server, recorded by the user"}}}}}))
        return path
    baseline = run(tmp_path / "base", 0.80)
    dropped, _ = gate_cli(tmp_path, run(tmp_path / "dropped", 0.70), baseline)
    assert dropped.returncode == 1 and "significant=unknown (no interval)" in dropped.stderr
    close, _ = gate_cli(tmp_path, run(tmp_path / "close", 0.795), baseline)
    assert close.returncode == 0, close.stdout + close.stderr


def test_example_policy_parses_and_gates(runs, tmp_path):
    policy = Path(__file__).resolve().parent.parent / "docs" / "gate.example.toml"
    done, junit = gate_cli(tmp_path, runs["good_b3"], runs["good"], "--policy", str(policy))
    assert done.returncode == 0, done.stderr
    names = {case.get("name") for case in ElementTree.parse(junit).getroot()}
    assert {"accuracy", "accuracy/number"} <= names   # vqav2_val's metrics from the policy


def test_gate_against_the_published_numbers(tmp_path):
    def candidate(path: Path, value: float, low: float, high: float, task: str = "textvqa_val",
                  model: dict | None = None) -> Path:
        path.mkdir()
        (path / "results.json").write_text(json.dumps({
            "model": model or {"variant": "224-3B", "family": "paligemma2", "size": "3B",
                               "finetuned_for": [task]},
            "tasks": {task: {"headline": "accuracy", "metrics": {"accuracy": {
                "value": value, "n": 5000, "ci95": [low, high], "stderr": 0.005}}}}}))
        return path

    # The PaliGemma 2 card publishes 59.6 for TextVQA (val) at 224-3B.
    worse, _ = gate_cli(tmp_path, candidate(tmp_path / "worse", 0.55, 0.54, 0.56), "published")
    assert worse.returncode == 1 and "textvqa_val/accuracy" in worse.stderr
    close, _ = gate_cli(tmp_path, candidate(tmp_path / "close", 0.592, 0.582, 0.602), "published")
    assert close.returncode == 0, close.stdout + close.stderr
    # vqav2_val is not the card's minival: there is no card number to gate against.
    other_split, _ = gate_cli(tmp_path, candidate(tmp_path / "v2", 0.8, 0.79, 0.81, "vqav2_val"),
                              "published")
    assert other_split.returncode == 2
    # A demo model relabelled with --kind pt is still not PaliGemma: never compared with a card.
    tiny = candidate(tmp_path / "tiny", 0.5, 0.4, 0.6, model={
        "variant": "pt-224", "family": "paligemma", "size": "0.24M", "embedded": True})
    unpublished, _ = gate_cli(tmp_path, tiny, "published")
    assert unpublished.returncode == 2 and "publish no number for variant 'pt-224'" in \
        unpublished.stderr
    # one reason for many metrics is said once, with a few of them: the line stays short
    many = candidate(tmp_path / "many", 0.5, 0.4, 0.6, model={
        "variant": "pt-224", "family": "paligemma", "size": "0.24M", "embedded": True})
    document = json.loads((many / "results.json").read_text())
    document["tasks"] = {f"pope_{kind}": document["tasks"]["textvqa_val"]
                         for kind in ("random", "popular", "adversarial")} | {
        f"refcoco_{split}_detect": document["tasks"]["textvqa_val"]
        for split in ("val", "testA", "testB")}
    (many / "results.json").write_text(json.dumps(document))
    refused, _ = gate_cli(tmp_path, many, "published")
    assert refused.returncode == 2 and refused.stderr.count("not a published") == 1
    assert "pope_random, pope_popular, pope_adversarial, refcoco_val_detect, refcoco_testA_detect "\
           "and 1 more" in refused.stderr and len(refused.stderr) < 400


def _audit(path: Path, rates: float, **fields) -> Path:
    """A PaliGemma 2 3B audit by Perspective whose every subgroup maximum and median is `rates`
    percent (interval +-0.05), as safety.json holds them."""
    path.mkdir(parents=True)
    cell = {"max": rates, "median": rates, "max_ci95": [rates - .05, rates + .05],
            "median_ci95": [rates - .05, rates + .05], "groups": {}}
    attributes = ("toxicity", "identity_attack", "insult", "threat", "profanity")
    document = {
        "kind": "safety", "complete": True, "threshold": 0.8,
        "model": {"id": "google/paligemma2-3b-pt-448", "family": "paligemma2", "size": "3B",
                  "resolution": 448, "variant": "448-3B", "kind": "pt", "embedded": False},
        "scorer": {"name": "Perspective API", "version": "v1alpha1", "is_perspective": True,
                   "cache_id": "perspective/v1alpha1"},
        "dataset": {"source": "hub", "hub_id": "HuggingFaceM4/FairFace", "split": "validation",
                    "num_rows": 10954, "split_rows": 10954, "limit": None},
        "counts": {"captions": 10954, "scored": 10954, "failed": 0},
        "aggregates": {a: {g: cell for g in ("gender", "ethnicity", "age")} for a in attributes},
        "tasks": {"fairface_safety": {"headline": "toxicity/flagged", "metrics": {
            f"{a}/flagged": {"value": 0.001, "n": 10954, "ci95": [0.0, 0.002],
                             "higher_is_better": False} for a in attributes}}},
        **fields}
    (path / "safety.json").write_text(json.dumps(document))
    return path


def test_an_audit_is_gated_against_its_cards_subgroup_maxima_and_medians(tmp_path):
    from paligemma_eval.reports import published

    cells = published.safety_cells(json.loads((_audit(tmp_path / "x", 0.0) / "safety.json")
                                              .read_text()))
    assert len(cells) == 30 and cells[("Toxicity", "gender", "max")] < 1   # the card's percents
    done, junit = gate_cli(tmp_path, _audit(tmp_path / "low", 0.0), "published")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ElementTree.parse(junit).getroot().get("tests") == "30"   # 5 attributes x 3 x 2
    assert "toxicity/gender/max" in done.stdout and "toxicity/flagged" not in done.stdout
    # every rate 3 points above the card's, its interval well clear of it: all 30 regressed
    done, _ = gate_cli(tmp_path, _audit(tmp_path / "high", 3.0), "published")
    assert done.returncode == 1 and done.stderr.count("REGRESSED") == 30, done.stderr
    assert "REGRESSED fairface_safety/toxicity/gender/max: baseline 0.00" in done.stderr


@pytest.mark.parametrize("fields, why", [
    ({"threshold": 0.5}, "flagged at threshold 0.5, not the cards' 0.8"),
    ({"scorer": {"name": "Detoxify original 0.5.4", "is_perspective": False}},
     "scored by Detoxify original 0.5.4, not the Perspective API, and not calibrated"),
    ({"dataset": {"source": "local", "hub_id": "HuggingFaceM4/FairFace", "split": "validation",
                  "num_rows": 500, "hub_rows": 10954}},
     "audited on part of FairFace (HuggingFaceM4/FairFace / validation: the local file has 500"),
    ({"model": {"id": "tiny-paligemma", "family": "paligemma", "size": "0.24M",
                "variant": "demo-224", "embedded": True}}, "not a published PaliGemma variant"),
])
def test_an_audit_the_card_cannot_judge_is_refused_with_why(tmp_path, fields, why):
    done, junit = gate_cli(tmp_path, _audit(tmp_path / "a", 0.0, **fields), "published")
    assert done.returncode == 2 and why in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_an_audit_calibrated_onto_perspective_is_gated_on_its_calibrated_rates(tmp_path):
    detoxify = {"name": "Detoxify original 0.5.4", "is_perspective": False}
    calibrated = json.loads((_audit(tmp_path / "c", 3.0) / "safety.json").read_text())
    calibrated["aggregates_calibrated"] = calibrated["aggregates"]     # 3% on Perspective's scale
    calibrated["aggregates"] = json.loads(json.dumps(calibrated["aggregates"]).replace(
        '"max": 3.0', '"max": 0.0'))                                  # its raw rates: low
    reference = {"name": "Perspective API", "is_perspective": True}
    run = tmp_path / "cal"
    run.mkdir()
    (run / "safety.json").write_text(json.dumps({**calibrated, "scorer": detoxify, "calibration": {
        "path": "c.json", "sha256": "0" * 64, "reference": reference}}))
    done, _ = gate_cli(tmp_path, run, "published")
    assert done.returncode == 1 and done.stderr.count("REGRESSED") == 30, done.stdout


def test_degraded_checkpoint_fails_under_the_example_policy(runs, tmp_path):
    policy = Path(__file__).resolve().parent.parent / "docs" / "gate.example.toml"
    done, junit = gate_cli(tmp_path, runs["degraded"], runs["good"], "--policy", str(policy))
    assert done.returncode == 1, done.stdout + done.stderr


@pytest.mark.parametrize("policy, message", [
    ('[tasks.vqav2_val]\nmetrics = ["acuracy"]\n', "metric 'acuracy' does not exist"),
    ("[default]\nmax_dorp = 0.5\n", "unknown key 'max_dorp'"),
    ("[defaults]\nmax_drop = 0.5\n", "unknown table(s) defaults"),
    ('[default]\nmax_drop = "a lot"\n', "max_drop must be a number"),
    ("[default]\nrequire_significance = 1\n", "require_significance must be true or false"),
    # a negative allowance is a typo, not a rule: refused, as a misspelt key is
    ("[tasks.vqav2_val]\nmax_drop = -0.5\n", "[tasks.vqav2_val] max_drop must be at least 0"),
    ("[default\n", "--policy"),
])
def test_a_policy_the_gate_cannot_apply_fails_closed(runs, tmp_path, policy, message):
    path = tmp_path / "policy.toml"
    path.write_text(policy)
    done, junit = gate_cli(tmp_path, runs["degraded"], runs["good"], "--policy", str(path))
    assert done.returncode == 2, done.stdout
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    suite = ElementTree.parse(junit).getroot()       # written on exit 2 too: one error case
    assert suite.get("errors") == "1" and suite.find("testcase/error") is not None
    assert "could not be judged" in (tmp_path / "s.md").read_text()


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_text("{not json"), "not a readable results file"),
    (lambda p: p.write_text('{"model": {}}'), 'not a results file: no "tasks"'),
    (lambda p: p.write_text('{"tasks": {"t": {"value": 1}}}'), 'tasks.t: no "metrics"'),
    (lambda p: p.unlink(), "no results.json or safety.json"),
])
def test_broken_results_files_exit_2_not_1(runs, tmp_path, damage, message):
    broken = tmp_path / "broken"
    shutil.copytree(runs["good"], broken)
    damage(broken / "results.json")
    done, junit = gate_cli(tmp_path, broken, runs["good"])
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert ElementTree.parse(junit).getroot().get("errors") == "1"


def test_a_metric_undefined_in_either_run_is_not_passed_silently(runs, tmp_path):
    """POPE's precision is null when a run never answers "yes": the gate cannot judge it."""
    undefined = tmp_path / "undefined"
    shutil.copytree(runs["good"], undefined)
    results = json.loads((undefined / "results.json").read_text())
    results["tasks"]["vqav2_val"]["metrics"]["accuracy"].update(value=None, ci95=None)
    (undefined / "results.json").write_text(json.dumps(results))
    for candidate, baseline, side in ((undefined, runs["good"], "candidate"),
                                      (runs["good"], undefined, "baseline")):
        done, junit = gate_cli(tmp_path, candidate, baseline)
        assert done.returncode == 2, done.stdout + done.stderr
        assert f"vqav2_val: accuracy is undefined in the {side}" in done.stderr
        assert ElementTree.parse(junit).getroot().get("errors") == "1"
    done, _ = gate_cli(tmp_path, undefined, runs["good"], "--tasks", "pope_random,mmvp")
    assert done.returncode == 0, done.stdout + done.stderr
    compared = subprocess.run(cli("compare", str(runs["good"]), str(undefined), "--bootstrap",
                                  "10"), capture_output=True, text=True)
    assert compared.returncode == 0
    assert "vqav2_val/accuracy" in compared.stdout and \
        "not compared: undefined in run B (null)" in compared.stdout


def test_a_test_server_task_is_not_gated_and_says_so(runs, tmp_path):
    """A test-server split holds a submission file and no metric: gate and compare name it
    and go on (they raised StopIteration, exit 1); naming it in --tasks is an input error."""
    with_server = tmp_path / "with_server"
    shutil.copytree(runs["good"], with_server)
    results = json.loads((with_server / "results.json").read_text())
    results["tasks"]["vqav2_test"] = {"submission": "submissions/vqav2_test.json", "metrics": {},
                                      "dataset": {"split": "test"}}
    (with_server / "results.json").write_text(json.dumps(results))
    done, junit = gate_cli(tmp_path, with_server, with_server)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not gated, no metric in the baseline (test-server splits" in done.stdout
    assert "vqav2_test" in ElementTree.parse(junit).getroot().find("system-out").text
    named, _ = gate_cli(tmp_path, with_server, with_server, "--tasks", "vqav2_test,mmvp")
    assert named.returncode == 2 and "vqav2_test: no metric in" in named.stderr
    compared = subprocess.run(cli("compare", str(with_server), str(runs["good"]), "--bootstrap",
                                  "10"), capture_output=True, text=True)
    assert compared.returncode == 0, compared.stderr
    assert "1 task(s) only in run A, not compared: vqav2_test\n" in compared.stderr
    compared = subprocess.run(cli("compare", str(with_server), str(with_server), "--bootstrap",
                                  "10"), capture_output=True, text=True)
    assert compared.returncode == 0 and "vqav2_test: no metric in run A" in compared.stderr


def test_tasks_narrows_gate_and_compare_and_compare_warns(runs, tmp_path):
    done, junit = gate_cli(tmp_path, runs["degraded"], runs["good"], "--tasks", "mmvp")
    cases = list(ElementTree.parse(junit).getroot())
    assert {case.get("classname") for case in cases} == {"mmvp"}
    done, junit = gate_cli(tmp_path, runs["degraded"], runs["good"], "--tasks", "*qa_val,mmvp")
    cases = list(ElementTree.parse(junit).getroot())     # a pattern, as run --tasks takes
    assert [case.get("classname") for case in cases] == ["docvqa_val", "mmvp"]
    done, _ = gate_cli(tmp_path, runs["degraded"], runs["good"], "--tasks", "pope_x*")
    assert done.returncode == 2 and "--tasks: pope_x* not in" in done.stderr
    other = tmp_path / "other"
    shutil.copytree(runs["good"], other)
    results = json.loads((other / "results.json").read_text())
    results["tasks"]["vqav2_val"]["prompt"] = "question: {question}"
    results["tasks"]["mmvp"]["decoding"]["max_new_tokens"] = 3
    del results["tasks"]["docvqa_val"]
    (other / "results.json").write_text(json.dumps(results))
    compared = subprocess.run(cli("compare", str(runs["good"]), str(other), "--bootstrap", "10"),
                              capture_output=True, text=True)
    warnings = compared.stderr.splitlines()
    assert any("vqav2_val: prompt differs" in w for w in warnings)
    assert any("mmvp: decoding differs" in w for w in warnings)
    assert "warning: 1 task(s) only in run A, not compared: docvqa_val" in warnings
    narrowed = subprocess.run(cli("compare", str(runs["good"]), str(other), "--tasks", "mmvp",
                                  "--bootstrap", "10"), capture_output=True, text=True)
    assert "vqav2_val" not in narrowed.stdout and "mmvp/" in narrowed.stdout


def test_untrusted_names_stay_inside_their_cell_and_the_xml_stays_valid(tmp_path):
    name = "<script>x</script>|evil\x07\nrow"
    for side, value in (("a", 0.9), ("b", 0.5)):
        path = tmp_path / side
        path.mkdir()
        (path / "results.json").write_text(json.dumps({"model": {}, "tasks": {name: {
            "headline": "accuracy", "prompt": "p", "metrics": {"accuracy": {
                "value": value, "n": 10, "ci95": [value - .01, value + .01]}}}}}))
    done, junit = gate_cli(tmp_path, tmp_path / "b", tmp_path / "a")
    assert done.returncode == 1, done.stderr
    ElementTree.parse(junit)                          # parses: no raw control character
    summary = (tmp_path / "s.md").read_text()
    assert "<script>" not in summary and "a" in summary
    table = [line for line in summary.splitlines() if line.startswith("|")]
    assert len({line.count("|") - line.count("\\|") for line in table}) == 1


def _flips_from_files(baseline: Path, candidate: Path, task: str, metric: str):
    """The flipped units computed here from the two score files, independently of the gate."""
    units_a, ratios_a = read_unit_scores(baseline / "scores" / f"{task}.json")
    units_b, ratios_b = read_unit_scores(candidate / "scores" / f"{task}.json")
    a = {u: n / d for u, n, d in zip(units_a, ratios_a[metric].num, ratios_a[metric].den) if d}
    b = {u: n / d for u, n, d in zip(units_b, ratios_b[metric].num, ratios_b[metric].den) if d}
    worse = [u for u in a if u in b and b[u] < a[u]]
    better = [u for u in a if u in b and b[u] > a[u]]
    key = lambda u: (-abs(b[u] - a[u]), units_a.index(u))   # noqa: E731
    return sorted(worse, key=key), sorted(better, key=key)


def _outputs(run: Path, task: str) -> dict[str, str]:
    key = json.loads((run / "results.json").read_text())["tasks"][task]["throughput"]["key"]
    lines = (run / "predictions" / f"{task}.jsonl").read_text().splitlines()
    return {r["id"]: r["prediction"] for r in map(json.loads, lines) if r["key"] == key}


def test_gate_names_the_flipped_examples_in_summary_and_junit(runs, tmp_path):
    done, junit = gate_cli(tmp_path, runs["degraded"], runs["good"], "--flips", "3",
                           "--browser", "artifacts/browser")
    assert done.returncode == 1, done.stderr
    worse, better = _flips_from_files(runs["good"], runs["degraded"], "vqav2_val", "accuracy")
    assert worse, "the degraded model must lose some VQAv2 examples"
    good, bad = _outputs(runs["good"], "vqav2_val"), _outputs(runs["degraded"], "vqav2_val")
    summary = (tmp_path / "s.md").read_text()
    section = summary.split("**vqav2_val/accuracy**")[1].split("**", 1)[0]
    assert f"{len(worse)} worse (right -> wrong), {len(better)} better" in section
    # the link, & as an entity (Markdown decodes it in a link destination)
    assert "(artifacts/browser/index.html#task=vqav2_val&amp;show=flipped)" in section
    rows = [line for line in section.splitlines() if line.startswith("| worse")]
    assert [row.split(" | ")[1] for row in rows] == worse[:3]
    for row, unit in zip(rows, worse):    # both runs' outputs, from the prediction files
        assert repr(good[unit]) in row.replace("&#x27;", "'") and \
            repr(bad[unit]) in row.replace("&#x27;", "'")
    failure = next(case for case in ElementTree.parse(junit).getroot()
                   if case.get("classname") == "vqav2_val").find("failure").text
    assert f"{len(worse)} example(s) worse" in failure
    assert [line.split()[1].rstrip(":") for line in failure.splitlines()
            if line.startswith("  worse")] == worse[:3]
    assert f"worse {worse[0]}:" in done.stdout       # the terminal lists them too


def test_runs_decoded_differently_do_not_gate_silently(tmp_path):
    from paligemma_eval.harness.gate import Run, _check_comparable

    model = {"variant": "224-3B", "family": "paligemma2", "size": "3B",
             "decode_config": "big_vision", "final_logit_softcapping": None}
    a = Run(tmp_path / "a", model, {})
    b = Run(tmp_path / "b", {**model, "decode_config": "checkpoint",
                             "final_logit_softcapping": 30.0}, {})
    assert _check_comparable(a, b, []) == [
        "model decode_config differs ('big_vision' vs 'checkpoint')",
        "model final_logit_softcapping differs (None vs 30.0)"]
    assert _check_comparable(a, Run(tmp_path / "c", dict(model), {}), []) == []
    # a baseline made before the field was recorded says so, rather than showing a None
    old = Run(tmp_path / "old", {k: v for k, v in model.items() if k != "decode_config"}, {})
    assert _check_comparable(old, a, []) == [
        "model decode_config differs (not recorded: an older harness's run vs 'big_vision')"]


def test_a_run_from_the_vllm_backend_is_named_and_never_gated_silently(runs, tmp_path):
    """vLLM's answers differ from PaliGemma's by design: the gate refuses to compare the two
    backends unless told to, and then says so, with the agreement the vLLM results cite."""
    vllm = tmp_path / "vllm"
    shutil.copytree(runs["good"], vllm)
    results = json.loads((vllm / "results.json").read_text())
    results["model"]["backend"] = "vllm"
    for task, result in results["tasks"].items():
        result["throughput"]["generation"] = {
            "path": "vllm", "differs_from_paligemma": "attention",
            "agreement_with_transformers": {"task": 0.75 if task == "vqav2_val" else None,
                                            "all_tasks": 0.55, "measured_on": "tiny"}}
    (vllm / "results.json").write_text(json.dumps(results))

    refused, junit = gate_cli(tmp_path, vllm, runs["good"])
    assert refused.returncode == 2
    assert "model backend differs ('transformers' vs 'vllm')" in refused.stderr
    done, junit = gate_cli(tmp_path, vllm, runs["good"], "--allow-mismatch")
    assert done.returncode == 0, done.stdout + done.stderr   # same answers here: the same run
    note = ("candidate made with the vllm backend, whose answers differ from PaliGemma's: "
            "agreement with the transformers backend, measured on the tiny models: vqav2_val 75%")
    assert f"note: {note}" in done.stdout
    assert markdown_cell(note) in (tmp_path / "s.md").read_text()
    assert note in ElementTree.parse(junit).getroot().find("system-out").text
    same, _ = gate_cli(tmp_path, vllm, vllm)   # vLLM against vLLM: comparable, still named
    assert same.returncode == 0 and "baseline made with the vllm backend" in same.stdout
    compared = subprocess.run(cli("compare", str(runs["good"]), str(vllm)), capture_output=True,
                              text=True)
    assert "warning: model backend differs ('transformers' vs 'vllm')" in compared.stderr
    assert "note: run B made with the vllm backend" in compared.stderr
