import json
import subprocess
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import ModelCard, parse_eval_result_entries

from tests.conftest import cli

RESULTS = {
    "created": "2026-12-01T09:00:00+00:00",
    "model": {"id": "me/paligemma2-3b-ft-docs", "variant": "224-3B"},
    "tasks": {
        "vqav2_val": {"headline": "accuracy", "rule": "official VQA accuracy",
                      "dataset": {"source": "hub", "hub_id": "lmms-lab/VQAv2", "config": None,
                                  "split": "validation", "revision": "main",
                                  "resolved_revision": "a" * 40},
                      "metrics": {"accuracy": {"value": 0.8123456789, "n": 10},
                                  "accuracy/number": {"value": 0.5, "n": 3}}},
        "pope_random": {"headline": "accuracy",
                        "dataset": {"source": "local", "hub_id": "lmms-lab/POPE",
                                    "config": "Full", "split": "random", "sha256": "b" * 64},
                        "metrics": {"accuracy": {"value": 0.875, "n": 8},
                                    "precision": {"value": None, "n": 0}}},
        "refcoco_val_detect": {"headline": "box_acc@0.5",
                               "dataset": {"hub_id": "lmms-lab/RefCOCO", "split": "val"},
                               "metrics": {"box_acc@0.5": {"value": 0.25, "n": 4}}},
    },
}


def _run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(RESULTS))
    return run


def test_model_index_round_trips_through_huggingface_hub_with_the_run_values(tmp_path):
    out = tmp_path / "model-index.yaml"
    done = subprocess.run(cli("export", str(_run(tmp_path)), "--model-index", str(out),
                              "--source-url", "https://ci.example/runs/7"),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    card = ModelCard(f"---\n{out.read_text()}---\n\n# card\n")   # the hub's own parser
    parsed = {(r.task_name, r.metric_type): r for r in card.data.eval_results}
    expected = {(task, metric): entry["value"] for task, result in RESULTS["tasks"].items()
                for metric, entry in result["metrics"].items() if entry["value"] is not None}
    assert {key: r.metric_value for key, r in parsed.items()} == expected   # exactly, no rounding
    vqa = parsed[("vqav2_val", "accuracy")]
    assert (vqa.dataset_type, vqa.dataset_split, vqa.dataset_revision, vqa.task_type) == \
        ("lmms-lab/VQAv2", "validation", "a" * 40, "visual-question-answering")
    assert parsed[("pope_random", "accuracy")].dataset_config == "Full"
    assert parsed[("refcoco_val_detect", "box_acc@0.5")].task_type == "object-detection"
    assert vqa.source_url == "https://ci.example/runs/7" and "self-reported" in vqa.source_name
    assert card.data.model_name == "me/paligemma2-3b-ft-docs"
    # the task's rule says how its headline is computed, not how accuracy/number is
    assert vqa.metric_name == "accuracy (official VQA accuracy)"
    assert parsed[("vqav2_val", "accuracy/number")].metric_name == "accuracy/number"
    assert all(r.verified is None and r.verify_token is None for r in parsed.values())
    assert "verified" not in out.read_text()               # never claims verification


def test_eval_results_only_for_a_named_benchmark(tmp_path):
    run, folder = _run(tmp_path), tmp_path / ".eval_results"
    refused = subprocess.run(cli("export", str(run), "--eval-results", str(folder)),
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "--benchmark" in refused.stderr
    assert not folder.exists()
    done = subprocess.run(cli("export", str(run), "--eval-results", str(folder), "--benchmark",
                              "vqav2_val=someorg/vqa-benchmark:vqav2_accuracy"),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (entry,) = parse_eval_result_entries(yaml.safe_load((folder / "vqav2_val.yaml").read_text()))
    assert (entry.dataset_id, entry.task_id, entry.value, entry.dataset_revision) == \
        ("someorg/vqa-benchmark", "vqav2_accuracy", 0.8123456789, "a" * 40)
    assert entry.verify_token is None and "self-reported" in entry.notes
    bad = subprocess.run(cli("export", str(run), "--eval-results", str(folder), "--benchmark",
                             "nosuch=org/b:t"), capture_output=True, text=True)
    assert bad.returncode == 2 and "not in the run" in bad.stderr
    # a bad --benchmark writes nothing, the model-index included; one without
    # --eval-results is not silently dropped
    index = tmp_path / "model-index.yaml"
    bad = subprocess.run(cli("export", str(run), "--model-index", str(index), "--eval-results",
                             str(tmp_path / "other"), "--benchmark", "nosuch=org/b:t"),
                         capture_output=True, text=True)
    assert bad.returncode == 2 and not index.exists() and not (tmp_path / "other").exists()
    alone = subprocess.run(cli("export", str(run), "--model-index", str(index), "--benchmark",
                               "vqav2_val=org/b:t"), capture_output=True, text=True)
    assert alone.returncode == 2 and "give that too" in alone.stderr and not index.exists()


def _export(tmp_path: Path, edits: dict[str, dict]) -> tuple[Path, Any, set[str]]:
    """results.json with these dataset fields changed, exported: (run, process, exported)."""
    results = json.loads(json.dumps(RESULTS))
    for task, fields in edits.items():
        results["tasks"][task]["dataset"].update(fields)
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(results))
    out = tmp_path / "model-index.yaml"
    done = subprocess.run(cli("export", str(run), "--model-index", str(out)),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    card = ModelCard(f"---\n{out.read_text()}---\n")
    return run, done, {r.task_name for r in card.data.eval_results}


def test_a_task_cut_by_limit_is_not_exported_as_its_split(tmp_path):
    run, done, exported = _export(tmp_path, {
        "vqav2_val": {"limit": 10, "split_rows": 214354},
        "pope_random": {"limit": 9000, "split_rows": 3000}})      # all of it
    assert "export: left out, run on part of their split (--limit, a partial local file), not " \
           "the split an entry names: vqav2_val\n" in done.stderr
    assert exported == {"pope_random", "refcoco_val_detect"}
    refused = subprocess.run(cli("export", str(run), "--eval-results", str(tmp_path / "e"),
                                 "--benchmark", "vqav2_val=org/vqa:acc"),
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "ran on part of its split (--limit 10" in refused.stderr


def test_a_task_on_a_partial_local_file_is_not_exported_as_its_split(tmp_path):
    _, done, exported = _export(tmp_path, {"pope_random": {"source": "local", "num_rows": 300,
                                                           "hub_rows": 3000}})
    assert done.stderr.endswith("names: pope_random\n") and "pope_random" not in exported
