"""PaliGemma 2's specialist tasks end to end on the second tiny model (tiny-paligemma runs them
in test_tasks_end_to_end.py): fixture data in each benchmark's schema -> generation -> parser ->
scorer -> results with intervals."""

import dataclasses
import math

import pytest

from paligemma_eval.harness import registry
from paligemma_eval.harness.runner import RunOptions, run_task

SPECIALIST = ["icdar2015_spotting", "totaltext_spotting", "fintabnet_test", "pubtabnet_val",
              "grandstaff_test", "pubchem_test", "docci_qual_dev", "mimic_cxr_test",
              "vsr_zeroshot_test", "vsr_random_test"]
# precision is undefined (null) when the tiny model spots no word at all: recall and F1 are not
METRICS = {"icdar2015_spotting": ("recall", "f1"),
           "fintabnet_test": ("s_teds", "teds", "grits_top", "grits_con"),
           "grandstaff_test": ("cer", "ler", "ser"), "pubchem_test": ("full_match",),
           "docci_qual_dev": ("avg_chars", "avg_sentences"),
           "mimic_cxr_test": ("cider", "bleu4", "rouge_l"), "vsr_zeroshot_test": ("accuracy",)}


@pytest.fixture(scope="module")
def tiny_paligemma2():
    from paligemma_eval.harness.loading import load_model

    return load_model("tiny-paligemma2", device="cpu")


@pytest.mark.parametrize("name", SPECIALIST)
def test_specialist_task_runs_on_tiny_paligemma2(name, tmp_path, data_dir, tiny_paligemma2,
                                                 monkeypatch):
    monkeypatch.setenv("PALIGEMMA_RADGRAPH_DIR", str(tmp_path))  # never the network
    (task,) = registry.resolve([name])
    # the same path at a shorter decode length: an untrained prompt can run to the limit, and
    # 256+ tokens per example cost a minute on a shared CPU (the lengths are pinned below)
    task = dataclasses.replace(task, max_new_tokens=min(task.max_new_tokens, 48))
    result = run_task(tiny_paligemma2, task, RunOptions(out=tmp_path, data_dir=data_dir, limit=4,
                                                        batch_size=4, resamples=20))
    assert result["failed"] == [] and result["n_scored"] == 4
    assert "precision" in result["metrics"] or name != "icdar2015_spotting"
    for metric in METRICS.get(name, (task.headline,)):
        entry = result["metrics"][metric]
        assert entry["value"] is not None and math.isfinite(entry["value"]), metric
    if name == "mimic_cxr_test":
        assert "radgraph_f1" not in result["metrics"]
        assert "not computed" in result["notes"]["radgraph_f1"]
    if name == "grandstaff_test":
        assert result["metrics"]["cer"]["higher_is_better"] is False


def test_every_specialist_task_states_its_decode_length_and_prompt_source():
    lengths = {"icdar2015_spotting": 2048, "fintabnet_test": 4096, "pubtabnet_val": 4096,
               "grandstaff_test": 1024, "pubchem_test": 256, "docci_qual_dev": 192,
               "vsr_zeroshot_test": 18, "vsr_random_test": 18}
    tasks = registry.all_tasks()
    for name, tokens in lengths.items():
        assert tasks[name].max_new_tokens == tokens, name
    for name in SPECIALIST:
        if name != "docci_qual_dev":   # DOCCI's prompt is the released checkpoints' own
            assert "card's prompt unpublished" in tasks[name].description, name
            assert "card's prompt unpublished" in tasks[name].rule, name
