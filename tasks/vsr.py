"""Visual Spatial Reasoning (Liu et al. 2023), zero-shot and random splits (PaliGemma 2 Table 7),
framed as the paper does "as a QA task with True / False answers": is the caption's spatial
relation true of the image? Accuracy; greedy, 18 new tokens (the paper's maximum output length);
images resized bilinearly with antialias.

The card's prompt is unpublished: ours is `answer en Is this statement true or false?
{caption}`, the answer `True` or `False`, compared lower-cased and exact (big_vision's vqa rule
with to_lower); any other output is wrong and lowers `valid_share`.

Hub copies: `cambridgeltl/vsr_zeroshot` and `cambridgeltl/vsr_random`, split `test` (jsonl);
columns `image` (a COCO 2017 file name), `image_link`, `caption`, `label` (1 true, 0 false),
`relation`, ... The images are COCO 2017's and not in the copy: local layout, the hub's
test.jsonl at DIR/cambridgeltl/vsr_<split>/default/test.jsonl with those COCO images (train2017
and val2017 together: the names are unique) beside it. No id column: keyed by row position.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from paligemma_eval.harness.registry import DatasetSource, Row, Task, register
from paligemma_eval.harness.scores import Ratio, Scores
from paligemma_eval.tasks.metrics.exact_match import exact_match, explain_exact_match

PROMPT = "answer en Is this statement true or false? {caption}"
ANSWERS = {1: "True", 0: "False"}


def vsr_target(row: Row) -> str:
    label = int(row["label"])
    if label not in ANSWERS:
        raise ValueError(f"VSR label must be 0 or 1, got {row['label']!r}")
    return ANSWERS[label]


def valid(prediction: str) -> bool:
    return prediction.lower() in ("true", "false")


def score_vsr(ids: list[str], predictions: list[str], targets: list[str]) -> Scores:
    correct = [exact_match(p, t, lower=True) for p, t in zip(predictions, targets)]
    answered = np.array([valid(p) for p in predictions], dtype=float)
    return Scores(ids, {"accuracy": Ratio.mean(correct), "valid_share": Ratio.mean(answered)})


def explain_vsr(predictions: list[str], targets: list[str]) -> Iterator[dict[str, Any]]:
    explained = explain_exact_match(lower=True)(predictions, targets)
    for prediction, item in zip(predictions, explained):
        yield item if valid(prediction) else \
            {**item, "why": [*item["why"], "neither true nor false: counts against valid_share"]}


def vsr_task(split: str) -> Task:
    return Task(name=f"vsr_{split}_test", source=DatasetSource(f"cambridgeltl/vsr_{split}", "test"),
                prompt=PROMPT, target=vsr_target, scorer=score_vsr, explain=explain_vsr,
                columns=("caption", "label"), id_column=None, max_new_tokens=18,
                metric="accuracy", resize="bilinear-antialias",
                rule="True / False, lower-cased exact match; card's prompt unpublished (ours: "
                     "`answer en Is this statement true or false? {caption}`)",
                groups=("vsr",),
                description=f"VSR {split} split, test; images from COCO 2017 beside the jsonl "
                            f"(--data-dir); card's prompt unpublished")


@register
def tasks() -> list[Task]:
    return [vsr_task("zeroshot"), vsr_task("random")]
