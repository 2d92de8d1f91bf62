"""ChartQA test (human and augmented), as big_vision's transfers/chartqa.py evaluates it.

Prompt: the bare question (no `answer en`), cut to 48 tokens as big_vision's `tolen(48)`, 48 new
tokens, greedy, images resized bilinearly with antialias. Rule (evaluators/.../chartqa.py,
tasks/metrics/relaxed_match.py): relaxed accuracy, lower-cased: a number within 5% of a nonzero
numeric answer, otherwise the exact string. Metrics `accuracy/human`, `accuracy/augmented` (the
PaliGemma 2 card's two rows) and `accuracy/mean`, the mean of the two split accuracies (the
PaliGemma 1 card's "Mean Relaxed Accuracy (test_human, test_aug)").

Hub copy: lmms-lab/ChartQA, split test (1,250 human + 1,250 augmented): question, answer,
type (`human_test` / `augmented_test`), image. big_vision's configs score the two as separate
datasets; here one task, split by `type`.
"""

from __future__ import annotations

from paligemma_eval.harness.registry import DatasetSource, Row, Task, register, text_len
from paligemma_eval.harness.scores import Scores
from paligemma_eval.tasks.metrics.multilingual import explain_in_groups, per_group
from paligemma_eval.tasks.metrics.relaxed_match import explain_relaxed, relaxed_match

SPLITS = {"human_test": "human", "augmented_test": "augmented"}


def target(row: Row) -> dict[str, str]:
    if row["type"] not in SPLITS:
        raise ValueError(f"type {row['type']!r} is neither of {', '.join(SPLITS)}")
    return {"answer": str(row["answer"]), "split": SPLITS[row["type"]]}


def score(ids: list[str], predictions: list[str], targets: list[dict]) -> Scores:
    values = [relaxed_match(p, t["answer"]) for p, t in zip(predictions, targets)]
    # The card's mean gives each split equal weight: the per-group average of multilingual.py.
    return Scores(ids, per_group("accuracy", values, [t["split"] for t in targets],
                                 {"mean": None}))


explain = explain_in_groups(
    explain_relaxed(lambda t: t["answer"]),
    lambda t: f"{t['split']} split: counted in accuracy/{t['split']}; accuracy/mean weighs the "
              f"two splits equally")


@register
def tasks() -> Task:
    return Task(name="chartqa_test",
                source=DatasetSource("lmms-lab/ChartQA", "test",
                                     aliases=("lmms-lab-encoder/ChartQA",)),
                prompt="{question}", target=target, scorer=score, explain=explain,
                columns=("question", "answer", "type"), id_column=None,
                **text_len(48), resize="bilinear-antialias",
                metric="accuracy/mean",
                rule="relaxed accuracy: 5% for numbers, else exact; lower-cased",
                description="ChartQA test, human and augmented, relaxed accuracy")
