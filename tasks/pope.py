"""POPE: random, popular and adversarial splits, each its own task; group `pope` runs all three.

Prompt `answer en {question}`: the cards evaluate the VQAv2 transfer, trained on that prefix
(pope.py's own default is the bare question, for a 0-shot pt model). Text length 48, images
resized bilinearly without antialias (big_vision's pope.py config). Strict
parsing as big_vision (exact yes/no after lower-casing); the `_lenient` tasks take the first yes/no
word instead and are labelled so in their names.

Hub copy: lmms-lab/POPE, config "Full", splits random / popular / adversarial; columns id,
question_id, question, answer ("yes"/"no"), image_source, image, category.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from paligemma_eval.harness.registry import DatasetSource, Row, Task, register, text_len
from paligemma_eval.harness.scores import Scores
from paligemma_eval.tasks.metrics.pope import parse_lenient, parse_strict, pope_ratios

SPLITS = ("random", "popular", "adversarial")


def pope_task(split: str, parse: Callable[[str], str | None], suffix: str) -> Task:
    def scorer(ids: list[str], predictions: list[str], labels: list[str]) -> Scores:
        return Scores(ids, pope_ratios([parse(p) for p in predictions], labels))

    def explain(predictions: list[str], labels: list[str]) -> Iterator[dict[str, Any]]:
        for prediction, label in zip(predictions, labels):
            answer = parse(prediction)
            read = f"read as {answer!r}" if answer else \
                f"not {'a yes/no word' if suffix else 'exactly yes or no'}: invalid, counts wrong"
            yield {"references": [label], "why": [f"{read}; the label is {label!r}"]}

    def target(row: Row) -> str:
        label = str(row["answer"]).strip().lower()
        if label not in ("yes", "no"):
            raise ValueError(f"POPE answer must be yes or no, got {row['answer']!r}")
        return label

    return Task(name=f"pope_{split}{suffix}", source=DatasetSource("lmms-lab/POPE", split, "Full"),
                prompt="answer en {question}", target=target, scorer=scorer, explain=explain,
                columns=("question", "answer"), id_column="question_id", **text_len(48),
                metric="accuracy", resize="bilinear",
                rule=f"{'lenient' if suffix else 'strict'} yes/no; anything else counts wrong",
                groups=(f"pope{suffix}",),
                description=f"POPE {split}, {'lenient' if suffix else 'strict'} yes/no parsing")


@register
def tasks() -> list[Task]:
    return [pope_task(split, parse, suffix) for suffix, parse in
            (("", parse_strict), ("_lenient", parse_lenient)) for split in SPLITS]
