"""VQA accuracy tasks: VQAv2, OK-VQA, TextVQA, VizWiz-VQA.

Prompt `answer en {question}`, greedy, 32 new tokens (big_vision's transfer configs). Scored with
the official VQA accuracy, broken down by answer type where the data has one. VizWiz's
"unanswerable" is one of its ordinary answer strings, as in its official evaluation (which is
the same VQA accuracy code).

Hub copies (the lmms-eval task configs' ids; columns as their dataset cards list them):
- lmms-lab/VQAv2 validation: question_id, question, answers [{answer, answer_confidence,
  answer_id}], answer_type, image
- lmms-lab/OK-VQA val2014: question_id, question, answers [str], image
- lmms-lab/textvqa validation: question_id, question, answers [str], image
- lmms-lab/VizWiz-VQA val: question_id, question, answers [str], category, image
"""

from __future__ import annotations

from typing import Any

from paligemma_eval.harness.registry import CardRow, DatasetSource, Row, Task, register
from paligemma_eval.harness.scores import Scores, breakdown
from paligemma_eval.tasks.metrics.vqa_accuracy import vqa_accuracy

PROMPT = "answer en {question}"


def answer_texts(value: Any) -> list[str]:
    """Answer strings from either schema: [str] or [{"answer": str, ...}]."""
    return [a["answer"] if isinstance(a, dict) else str(a) for a in value]


def vqa_target(row: Row) -> dict[str, Any]:
    answer_type = row.get("answer_type") or row.get("category")
    return {"answers": answer_texts(row["answers"]), "answer_type": answer_type}


def score_vqa(ids: list[str], predictions: list[str], targets: list[dict]) -> Scores:
    values = [vqa_accuracy(p, t["answers"]) for p, t in zip(predictions, targets)]
    return Scores(ids, breakdown("accuracy", values, [t["answer_type"] for t in targets]))


def vqa_task(name: str, source: DatasetSource, rows: tuple[CardRow, ...],
             description: str) -> Task:
    return Task(name=name, source=source, prompt=PROMPT, target=vqa_target, scorer=score_vqa,
                columns=("question", "answers"), id_column="question_id", published=rows,
                description=description, groups=("vqa",))


@register
def tasks() -> list[Task]:
    return [
        vqa_task("vqav2_val", DatasetSource("lmms-lab/VQAv2", "validation",
                                            aliases=("lmms-lab-encoder/VQAv2",)),
                 (CardRow("VQAv2 (minival)", "accuracy"),
                  CardRow("VQAv2 (Test server - std)", "accuracy")),
                 "VQAv2 validation (the card's minival is a 25k subset of it)"),
        vqa_task("okvqa_val", DatasetSource("lmms-lab/OK-VQA", "val2014",
                                            aliases=("lmms-lab-encoder/OK-VQA",)),
                 (CardRow("OKVQA", "accuracy"), CardRow("OKVQA (val)", "accuracy")), "OK-VQA val2014"),
        vqa_task("textvqa_val", DatasetSource("lmms-lab/textvqa", "validation",
                                              aliases=("lmms-lab-encoder/textvqa",)),
                 (CardRow("TextVQA (val)", "accuracy"),
                  CardRow("TextVQA (Test server - std)", "accuracy")), "TextVQA validation"),
        vqa_task("vizwiz_vqa_val", DatasetSource("lmms-lab/VizWiz-VQA", "val",
                                                 aliases=("lmms-lab-encoder/VizWiz-VQA",)),
                 (CardRow("VizWizVQA (val)", "accuracy"),
                  CardRow("VizWiz VQA (Test server - std)", "accuracy")), "VizWiz-VQA val"),
    ]
