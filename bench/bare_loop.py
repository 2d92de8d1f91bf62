"""The baseline the runner is measured against: a hand-written decode, processor, `generate` loop
(shared by runner_overhead.py and gpu_throughput.py)."""

from __future__ import annotations

from typing import Any

import torch

from paligemma_eval.harness import data
from paligemma_eval.harness.models import PaliGemmaModel


def bare_loop(model: PaliGemmaModel, prepared: Any, ids: list[str], batch_size: int) -> None:
    task = prepared.task
    for start in range(0, len(ids), batch_size):
        batch = ids[start:start + batch_size]
        images = [data.decode_image(prepared.rows[prepared.row_of[i]][task.image_column])
                  for i in batch]
        inputs = model.processor(text=["<image>" + prepared.prompts[i] for i in batch],
                                 images=images, return_tensors="pt", padding="longest")
        inputs = inputs.to(model.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(model.model.dtype)
        with torch.inference_mode():
            model.model.generate(**inputs, max_new_tokens=task.max_new_tokens, do_sample=False)
