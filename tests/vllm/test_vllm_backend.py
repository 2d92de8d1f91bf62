"""The vLLM backend run for real (vllm-cpu, `make test-vllm`), against the transformers backend.

Skipped where vllm does not import (the main test venv). Both embedded tiny models are written in
the hub checkpoints' weight layout (`vision_tower.vision_model.*`, what vLLM's loader expects; the
embedded copies were saved by transformers 5.x without the `vision_model.` level), then every
task of the demo (one per family; VLLM_TEST_TASKS=all: every one) runs on the fixture data through the runner with both backends. vLLM's PaliGemma
attends bidirectionally over the image tokens only (PaliGemma: image + prompt), so answers may
differ: the agreement is measured per task, printed, and written to $VLLM_AGREEMENT_OUT when set
(`make test-vllm` writes harness/vllm_agreement.json, which results made with vLLM cite).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")   # one process: faster start
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")            # GiB of KV cache on the CPU
os.environ.setdefault("TQDM_DISABLE", "1")
pytest.importorskip("vllm")

from paligemma_eval.harness import registry  # noqa: E402
from paligemma_eval.harness.demo import FAMILY_TASKS  # noqa: E402
from paligemma_eval.harness.demo.fixtures import DATA_DIR  # noqa: E402
from paligemma_eval.harness.loading import load_model  # noqa: E402
from paligemma_eval.harness.models import EMBEDDED  # noqa: E402
from paligemma_eval.harness.runner import RunOptions, generate, load_predictions, prepare  # noqa
from paligemma_eval.harness.vllm_backend import load_vllm  # noqa: E402

MODELS = ("tiny-paligemma", "tiny-paligemma2")
LIMIT = 8
# every built-in task with VLLM_TEST_TASKS=all; by default one per family (minutes each on 2 cores)
TASKS = [name for name in registry.all_tasks() if not name.startswith("example")] \
    if os.environ.get("VLLM_TEST_TASKS") == "all" else list(FAMILY_TASKS)


def hub_layout(name: str, directory: Path) -> Path:
    from safetensors.torch import load_file, save_file

    source, target = EMBEDDED[name], directory / name
    target.mkdir(parents=True)
    for file in source.iterdir():
        if file.name != "model.safetensors":
            shutil.copy(file, target / file.name)
    weights = load_file(source / "model.safetensors")
    prefix = "vision_tower."
    save_file({prefix + "vision_model." + key[len(prefix):] if key.startswith(prefix) else key:
               value for key, value in weights.items()}, target / "model.safetensors",
              metadata={"format": "pt"})
    return target


def predictions(model, task, limit: int) -> tuple[dict[str, str], dict]:
    prepared = prepare(task, DATA_DIR, limit)
    with tempfile.TemporaryDirectory() as out:
        options = RunOptions(out=Path(out), data_dir=DATA_DIR, limit=limit, batch_size=8,
                             resamples=0)
        throughput = generate(model, prepared, options)
        records = load_predictions(Path(out), task, throughput["key"])
    return {i: r.get("prediction", r.get("error")) for i, r in records.items()}, throughput


def test_vllm_runs_every_task_and_its_agreement_is_measured(tmp_path):
    measured: dict[str, dict] = {}
    same = total = 0
    for name in MODELS:
        path = hub_layout(name, tmp_path)
        vllm = load_vllm(str(path), dtype="float32", max_model_len=512, enforce_eager=True,
                         gpu_memory_utilization=0.1)
        plain = load_model(name, device="cpu")
        for task in registry.resolve(TASKS):
            expected, _ = predictions(plain, task, LIMIT)
            got, throughput = predictions(vllm, task, LIMIT)
            assert set(got) == set(expected), (name, task.name)   # every example answered
            assert throughput["generation"]["path"] == "vllm"
            agree = sum(got[i] == p for i, p in expected.items())
            entry = measured.setdefault(task.name, {"same": 0, "n": 0})
            entry["same"] += agree
            entry["n"] += len(expected)
            same, total = same + agree, total + len(expected)
            print(f"vllm {name} {task.name}: {agree}/{len(expected)} as transformers")
        del vllm
    tasks = {t: round(e["same"] / e["n"], 4) for t, e in measured.items()}
    record = {"tasks": tasks, "all_tasks": round(same / total, 4),
              "measured_on": f"embedded tiny models ({', '.join(MODELS)}), {LIMIT} fixture "
                             f"examples per task, vllm-cpu, float32"}
    print(f"vllm agreement, all tasks: {same}/{total}")
    if os.environ.get("VLLM_AGREEMENT_OUT"):
        Path(os.environ["VLLM_AGREEMENT_OUT"]).write_text(json.dumps(record, indent=1) + "\n")
    # Same weights, same greedy decoding: on the short-answer families most answers agree even
    # with the narrower prefix attention (far less would mean a wrong weight mapping or prompt).
    # Detection, segmentation and beam captions on the tiny models depend on the image tokens
    # attending to the prompt: measured 0 there (recorded, not asserted).
    short = [t for t in tasks if registry.resolve([t])[0].num_beams == 1 and
             not t.startswith("refcoco")]
    assert sum(measured[t]["same"] for t in short) / sum(measured[t]["n"] for t in short) >= 0.6
