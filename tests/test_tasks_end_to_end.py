import json
import math
import subprocess
import sys

import pytest

from paligemma_eval.harness import registry
from paligemma_eval.harness.loading import load_model
from paligemma_eval.harness.runner import RunOptions, run_task
from tests.conftest import cli

BUILTIN = [name for name, task in registry.all_tasks().items() if not name.startswith("example")]


@pytest.mark.parametrize("name", BUILTIN)
def test_every_task_runs_on_its_fixture(name, tmp_path, data_dir, tiny_model):
    (task,) = registry.resolve([name])
    result = run_task(tiny_model, task, RunOptions(out=tmp_path, data_dir=data_dir, limit=8,
                                                   batch_size=4, resamples=50))
    assert result["failed"] == []
    if task.submission:
        rows = json.loads((tmp_path / result["submission"]).read_text())
        if isinstance(rows, dict):  # {question_id: {setting: answer}} (A-OKVQA's leaderboard)
            assert len(rows) == 8 and all(len(entry) == 1 for entry in rows.values())
        else:
            assert len(rows) == 8 and {"answer"} < set(rows[0])
        return
    headline = result["metrics"][task.headline]
    # every metric that reports/card_rows.json pairs with a card row is one this task reports,
    # or one it says in its notes why it cannot (RadGraph F1 without the radgraph model)
    from paligemma_eval.reports.published import card_rows
    paired = {e["metric"] for e in card_rows().get(name, []) if not e.get("server")}
    assert paired <= set(result["metrics"]) | set(result["notes"]), name
    assert 0 <= headline["value"] and math.isfinite(headline["value"])
    assert headline["ci95"] is not None


def test_demo_model_beats_chance_on_fixture_tasks(tmp_path, data_dir, tiny_model):
    """The embedded model is trained on the synthetic world: its numbers must mean something.
    Chance: VQA about 1/3 (three colours, shapes, backgrounds), MMVP pairs 1/4, a random box
    rarely overlaps a 16-pixel shape by half. (POPE is not here: the demo model has not learnt
    yes/no existence questions; README says so.)"""
    chance = {"vqav2_val": ("accuracy", 0.5), "mmvp": ("paired_accuracy", 0.5),
              "refcoco_val_detect": ("box_acc@0.5", 0.5), "docvqa_val": ("anls", 0.4)}
    for name, (metric, level) in chance.items():
        (task,) = registry.resolve([name])
        result = run_task(tiny_model, task, RunOptions(out=tmp_path, data_dir=data_dir,
                                                       resamples=0))
        assert result["metrics"][metric]["value"] > level, name


def test_paligemma2_family_is_read_from_the_config():
    model = load_model("tiny-paligemma2", device="cpu")
    assert (model.info.family, model.info.resolution) == ("paligemma2", 224)
    assert model.info.variant == f"224-{model.info.size}"


def test_plugin_task_from_entry_point_is_listed_and_runs(tmp_path, data_dir):
    listing = subprocess.run(cli("tasks"), capture_output=True, text=True, check=True).stdout
    assert "example_plugin_vqa" in listing
    done = subprocess.run(cli("run", "--model", "tiny-paligemma", "--tasks", "example_plugin_vqa",
                              "--data-dir", str(data_dir), "--limit", "6", "--output",
                              str(tmp_path)), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "results.json").read_text())["tasks"]["example_plugin_vqa"]
    assert result["metrics"]["exact_match"]["n"] == 6


def test_tasks_are_chosen_by_name_group_or_pattern_and_listed_the_same_way():
    from paligemma_eval.harness import registry

    raw = [t.name for t in registry.resolve(["refcoco*_raw"])]
    assert raw == sorted(n for n in registry.groups()["refcoco_raw"])
    # in the order given, each once; a pattern that matches nothing is an error, not nothing
    assert [t.name for t in registry.resolve(["pope_random", "pope_r*"])] == [
        "pope_random", "pope_random_lenient"]
    with pytest.raises(registry.UnknownTaskError, match=r"no task matches 'mmvp_\*'"):
        registry.resolve(["mmvp_*"])
    listing = subprocess.run(cli("tasks", "pope_r*", "mmvp"), capture_output=True, text=True,
                             check=True).stdout.splitlines()
    assert [line.split()[0] for line in listing] == [
        "pope_random", "pope_random_lenient", "mmvp", "group", "group"]
    assert {line.split()[1] for line in listing[3:]} == {"pope:", "pope_lenient:"}
    refused = subprocess.run(cli("tasks", "mmvp_*"), capture_output=True, text=True)
    assert refused.returncode == 2 and "no task matches 'mmvp_*'" in refused.stderr


def test_listing_the_tasks_imports_neither_torch_nor_datasets():
    """`paligemma-eval tasks` answers in a fraction of a second: the engines load on use."""
    probe = ("import sys; from paligemma_eval.harness import registry; "
             "assert len(registry.all_tasks()) > 80; "
             "print(sorted(m for m in ('torch', 'datasets', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
