"""MMVP: 150 pairs of CLIP-blind images, 300 questions with two options each.

Prompt `answer en {Question} {Options}` (the options exactly as the dataset writes them,
"(a) ... (b) ..."), 32 new tokens; matching rules in tasks/metrics/mmvp.py. Headline: paired
accuracy; per-question accuracy beside it. Intervals resample pairs, not questions.

Hub copy: lmms-lab-eval/MMVP, split train (300 rows, with the ground-truth fixes for indices
99/100 and 279/280): Index (1-based), Question, Options, Correct Answer ("(a)"/"(b)"), image.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np

from paligemma_eval.harness.registry import DatasetSource, Row, Task, register
from paligemma_eval.harness.scores import Ratio, Scores
from paligemma_eval.tasks.metrics.mmvp import choose, pair_id, parse_options


def target(row: Row) -> dict:
    options = parse_options(row["Options"])
    correct = str(row["Correct Answer"]).strip().strip("()").lower()
    if correct not in options:
        raise ValueError(f"correct answer {row['Correct Answer']!r} is not among the options")
    return {"options": options, "correct": correct, "pair": pair_id(int(row["Index"]))}


def score_mmvp(ids: list[str], predictions: list[str], targets: list[dict]) -> Scores:
    right: dict[str, list[bool]] = defaultdict(list)
    for prediction, t in zip(predictions, targets):
        right[t["pair"]].append(choose(prediction, t["options"]) == t["correct"])
    pairs = sorted(right, key=int)
    # A pair with a failed (unscored) question cannot be right: it counts with what remains.
    both = np.array([len(right[p]) == 2 and all(right[p]) for p in pairs], dtype=float)
    correct = np.array([sum(right[p]) for p in pairs], dtype=float)
    asked = np.array([len(right[p]) for p in pairs], dtype=float)
    return Scores(pairs, {"paired_accuracy": Ratio.mean(both),
                          "question_accuracy": Ratio(correct, asked)},
                  notes={"units": "image pairs"})


def explain_mmvp(predictions: list[str], targets: list[dict]) -> Iterator[dict[str, Any]]:
    for prediction, t in zip(predictions, targets):
        chosen = choose(prediction, t["options"])
        read = f"picked ({chosen}) {t['options'][chosen]!r}" if chosen else \
            "matches no option (neither its letter nor its text): wrong"
        yield {"references": [f"({t['correct']}) {t['options'][t['correct']]}"],
               "unit": t["pair"],
               "why": [f"{read}; this question is {'right' if chosen == t['correct'] else 'wrong'}",
                       f"scored per image pair {t['pair']}: right only if both its questions are"]}


@register
def task() -> Task:
    return Task(name="mmvp", source=DatasetSource("lmms-lab-eval/MMVP", "train"),
                prompt="answer en {Question} {Options}", target=target, scorer=score_mmvp,
                explain=explain_mmvp,
                columns=("Question", "Options", "Correct Answer"), id_column="Index",
                metric="paired_accuracy", resize="bilinear-antialias",
                rule="both questions of a pair right",
                description="MMVP, paired accuracy over 150 image pairs")
