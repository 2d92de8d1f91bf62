"""The captioning transfers end to end on the PaliGemma 2 tiny model (the parametrised test in
test_tasks_end_to_end.py runs every task on the PaliGemma 1 one)."""

import math

import pytest

from paligemma_eval.harness import registry
from paligemma_eval.harness.loading import load_model
from paligemma_eval.harness.runner import RunOptions, run_task

HEADLINES = {"coco35l_dev": ("cider/avg", {"cider/en", "cider/avg34"}),
             "xm3600": ("cider/avg", {"cider/en", "cider/avg35"}),
             "scicap_test": ("cider", {"bleu4"}), "screen2words_test": ("cider", set()),
             "widgetcap_test": ("cider", set())}


@pytest.fixture(scope="module")
def tiny_paligemma2():
    return load_model("tiny-paligemma2", device="cpu")


@pytest.mark.parametrize("name", sorted(HEADLINES))
def test_runs_on_tiny_paligemma2(name, tmp_path, data_dir, tiny_paligemma2):
    (task,) = registry.resolve([name])
    result = run_task(tiny_paligemma2, task, RunOptions(out=tmp_path, data_dir=data_dir, limit=6,
                                                        batch_size=6, resamples=20))
    headline, others = HEADLINES[name]
    assert task.headline == headline and result["failed"] == []
    assert others <= set(result["metrics"])
    value = result["metrics"][headline]["value"]
    assert math.isfinite(value) and value >= 0
    assert result["decoding"]["num_beams"] == 1
