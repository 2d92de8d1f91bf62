"""ANLS tasks: DocVQA, InfographicVQA, ST-VQA (validation scored; test splits write submissions).

big_vision prompts DocVQA with the raw question and InfoVQA with `answer en {question}`; 32 and
48 new tokens. ANLS at threshold 0.5, answers and prediction lower-cased.

Hub copy: lmms-lab/DocVQA, configs "DocVQA" and "InfographicVQA"; splits validation / test;
columns questionId, question, answers [str], image (test rows carry no answers). The official
submission format is a JSON list of {"questionId": int, "answer": str}.
ST-VQA: lmms-lab/ST-VQA has only the test split (question_id, question, image); the card's "val"
row is big_vision's held-out part of train, which no hub copy carries. Its submission format is a
JSON list of {"question_id": int, "answer": str}.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from paligemma_eval.harness.registry import DatasetSource, Row, Task, register, text_len
from paligemma_eval.harness.scores import Ratio, Scores
from paligemma_eval.tasks.metrics.anls import anls, similarity


def anls_target(row: Row) -> list[str]:
    return [str(a) for a in row["answers"]]


def score_anls(ids: list[str], predictions: list[str], targets: list[list[str]]) -> Scores:
    return Scores(ids, {"anls": Ratio.mean([anls(p, t) for p, t in zip(predictions, targets)])})


def explain_anls(predictions: list[str], targets: list[list[str]]) -> Iterator[dict[str, Any]]:
    for prediction, answers in zip(predictions, targets):
        best = max(answers, key=lambda a: similarity(a, prediction), default=None)
        why = [f"closest answer {best!r}: similarity {similarity(best, prediction):.3f} "
               f"(1 - edit distance / length, lower-cased; below 0.5 counts 0)"] \
            if best is not None else ["no reference answer"]
        yield {"references": answers, "why": why}


def submission_as(id_field: str):
    def submission(rows: list[dict]) -> list[dict[str, Any]]:
        return [{id_field: int(r["id"]) if r["id"].isdigit() else r["id"],
                 "answer": r["prediction"]} for r in rows]
    return submission


def anls_tasks(stem: str, config: str, prompt: str, max_new_tokens: int) -> list[Task]:
    common = dict(prompt=prompt, id_column="questionId", **text_len(max_new_tokens),
                  groups=("anls",), resize="bilinear-antialias")
    source = DatasetSource("lmms-lab/DocVQA", "validation", config)
    test = DatasetSource("lmms-lab/DocVQA", "test", config)
    return [
        Task(name=f"{stem}_val", source=source, target=anls_target, scorer=score_anls,
             explain=explain_anls, columns=("question", "answers"), metric="anls",
             rule="ANLS, threshold 0.5",
             description=f"{config} validation, ANLS", **common),
        Task(name=f"{stem}_test", source=test, target=lambda r: None, scorer=None,
             columns=("question",), submission=submission_as("questionId"),
             description=f"{config} test: writes the official submission file", **common),
    ]


@register
def tasks() -> list[Task]:
    return [*anls_tasks("docvqa", "DocVQA", "{question}", 32),
            *anls_tasks("infovqa", "InfographicVQA", "answer en {question}", 48),
            Task(name="stvqa_test", source=DatasetSource("lmms-lab/ST-VQA", "test"),
                 prompt="answer en {question}", id_column="question_id", **text_len(48),
                 target=lambda r: None, scorer=None, columns=("question",),
                 submission=submission_as("question_id"), groups=("anls",),
                 resize="bilinear-antialias",   # stvqa.py: resize(res, antialias=True)
                 description="ST-VQA test: writes the official submission file")]
