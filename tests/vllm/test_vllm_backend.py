"""The vLLM backend run for real (vllm-cpu, `make test-vllm`), against the transformers backend.

Skipped where vllm does not import (the main test venv). `make test-vllm` first writes the
transformers backend's predictions in the main venv (tests/vllm/reference.py) and passes them in
$PALIGEMMA_EVAL_VLLM_REFERENCE. Both embedded tiny models are written in the hub checkpoints'
weight layout (`vision_tower.vision_model.*`, what vLLM's loader expects; the embedded copies were
saved by transformers 5.x without the `vision_model.` level), then every task of the demo (one
per family; PALIGEMMA_EVAL_VLLM_TASKS=all: every one) runs on the fixture data through the runner
with vLLM. vLLM's attention is not PaliGemma's (harness/vllm_backend.py says how), so answers may
differ: the agreement is measured per task, printed, and written to
$PALIGEMMA_EVAL_VLLM_AGREEMENT when set (`make test-vllm` writes harness/vllm_agreement.json,
which results made with vLLM cite). The variables avoid the VLLM_ prefix, which vLLM claims.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")   # one process: faster start
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")            # GiB of KV cache on the CPU
os.environ.setdefault("TQDM_DISABLE", "1")
vllm = pytest.importorskip("vllm")

from paligemma_eval.harness import registry  # noqa: E402
from paligemma_eval.harness.models import EMBEDDED  # noqa: E402
from paligemma_eval.harness.vllm_backend import AGREEMENT, load_vllm  # noqa: E402
from tests.vllm.cases import DECODE_CONFIG, LIMIT, MODELS, predictions, task_names  # noqa: E402


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


def reference() -> dict:
    path = os.environ.get("PALIGEMMA_EVAL_VLLM_REFERENCE")
    if not path or not Path(path).is_file():
        pytest.fail("no transformers reference: run `make test-vllm` (it writes one with the "
                    "main venv's transformers and passes it in PALIGEMMA_EVAL_VLLM_REFERENCE)")
    made = json.loads(Path(path).read_text())
    assert made["decode_config"] == DECODE_CONFIG and made["limit"] == LIMIT, path
    return made


def test_vllm_runs_every_task_and_its_agreement_is_measured(tmp_path):
    made = reference()
    measured: dict[str, dict[str, int]] = {}
    for name in MODELS:
        path = hub_layout(name, tmp_path)
        model = load_vllm(str(path), dtype="float32", max_model_len=512, enforce_eager=True,
                          gpu_memory_utilization=0.1)
        for task in registry.resolve(task_names()):
            got, throughput = predictions(model, task)
            assert throughput["generation"]["path"] == "vllm"
            entry = measured.setdefault(task.name, {"paligemma": 0, "as_vllm_cpu": 0, "n": 0})
            same = {}
            for variant in ("paligemma", "as_vllm_cpu"):
                expected = made["predictions"][variant][name][task.name]
                assert set(got) == set(expected), (name, task.name)   # every example answered
                same[variant] = sum(got[i] == p for i, p in expected.items())
                entry[variant] += same[variant]
            entry["n"] += len(got)
            print(f"vllm {name} {task.name}: {same['paligemma']}/{len(got)} as transformers runs "
                  f"PaliGemma, {same['as_vllm_cpu']}/{len(got)} attending as on vllm-cpu")
        del model
    tasks = {t: round(e["paligemma"] / e["n"], 4) for t, e in measured.items()}
    same, total = (sum(e[k] for e in measured.values()) for k in ("paligemma", "n"))
    record = {"tasks": tasks, "all_tasks": round(same / total, 4),
              "measured_on": f"embedded tiny models ({', '.join(MODELS)}), {LIMIT} fixture "
                             f"examples per task, float32, CPU: vllm-cpu {vllm.__version__} "
                             f"against transformers {made['transformers']}, both with the "
                             f"checkpoint's decode config",
              "as_vllm_cpu": {t: round(e["as_vllm_cpu"] / e["n"], 4)
                              for t, e in measured.items()}}
    print(f"vllm agreement with PaliGemma, all tasks: {same}/{total}")
    if AGREEMENT.is_file():   # what results cite: say when this machine measures otherwise
        cited = {t: json.loads(AGREEMENT.read_text())["tasks"].get(t) for t in tasks}
        if cited != tasks:
            print(f"note: measured agreement differs from {AGREEMENT}: {cited}")
    if os.environ.get("PALIGEMMA_EVAL_VLLM_AGREEMENT"):
        Path(os.environ["PALIGEMMA_EVAL_VLLM_AGREEMENT"]).write_text(
            json.dumps(record, indent=1) + "\n")
    # The backend is right when the only difference is the one vllm-cpu makes by design
    # (causal attention): attending so, transformers gives vLLM's greedy answers exactly. Beam
    # search is vLLM's own implementation (recorded, not asserted).
    greedy = [t for t in tasks if registry.resolve([t])[0].num_beams == 1]
    assert {t: record["as_vllm_cpu"][t] for t in greedy} == {t: 1.0 for t in greedy}
