"""VQA accuracy tasks: VQAv2, OK-VQA, TextVQA, VizWiz-VQA.

Prompt `answer en {question}`, greedy, 32 new tokens, images resized bilinearly with antialias
(big_vision's transfer configs). Each task is scored the way its card number was:
- VQAv2 and TextVQA: big_vision's `vqav2` evaluator, i.e. the official VQA accuracy.
- OK-VQA and VizWiz-VQA: big_vision's simple `vqa` evaluator: min(1, matches / 3) over the raw
  answers, exact string match, no normalisation, no leave-one-out. VizWiz decodes up to 48
  tokens and resizes without antialias. `okvqa_val_official` / `vizwiz_vqa_val_official` score
  the same predictions with the official rule (VizWiz's official evaluation is the VQA code).
Answer-type breakdown where the data has one.

Hub copies (the lmms-eval task configs' ids; columns as their dataset cards list them):
- lmms-lab/VQAv2 validation: question_id, question, answers [{answer, answer_confidence,
  answer_id}], answer_type, image
- lmms-lab/OK-VQA val2014: question_id, question, answers [str], image
- lmms-lab/textvqa validation: question_id, question, answers [str], image
- lmms-lab/VizWiz-VQA val: question_id, question, answers [str], category, image
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from paligemma_eval.harness.registry import DatasetSource, Row, Task, register
from paligemma_eval.harness.scores import Scores, breakdown
from paligemma_eval.tasks.metrics.vqa_accuracy import compared, simple_vqa_accuracy, vqa_accuracy

OFFICIAL = "official VQA accuracy (big_vision vqav2 evaluator)"
SIMPLE = "big_vision vqa evaluator: min(1, exact matches / 3), no normalisation"

PROMPT = "answer en {question}"


def answer_texts(value: Any) -> list[str]:
    """Answer strings from either schema: [str] or [{"answer": str, ...}]."""
    return [a["answer"] if isinstance(a, dict) else str(a) for a in value]


def vqa_target(row: Row) -> dict[str, Any]:
    answer_type = row.get("answer_type") or row.get("category")
    return {"answers": answer_texts(row["answers"]), "answer_type": answer_type}


def scorer(accuracy: Callable[[str, list[str]], float]) -> Callable[..., Scores]:
    def score(ids: list[str], predictions: list[str], targets: list[dict]) -> Scores:
        values = [accuracy(p, t["answers"]) for p, t in zip(predictions, targets)]
        return Scores(ids, breakdown("accuracy", values, [t["answer_type"] for t in targets]))
    return score


score_vqa, score_vqa_simple = scorer(vqa_accuracy), scorer(simple_vqa_accuracy)


def explain_official(predictions: list[str], targets: list[dict]) -> Iterator[dict[str, Any]]:
    for prediction, t in zip(predictions, targets):
        seen, answers, normalised = compared(prediction, t["answers"])
        matches = answers.count(seen)
        how = f"after normalisation the prediction reads {seen!r}" if normalised else \
            "compared as written (the answers agree: no normalisation)"
        yield {"references": t["answers"],
               "why": [f"{matches} of {len(answers)} human answers match; {how}",
                       "score: mean over the leave-one-out subsets of min(1, matches / 3)"]}


def explain_simple(predictions: list[str], targets: list[dict]) -> Iterator[dict[str, Any]]:
    for prediction, t in zip(predictions, targets):
        matches = sum(a == prediction for a in t["answers"])
        yield {"references": t["answers"],
               "why": [f"{matches} of {len(t['answers'])} answers equal the prediction exactly "
                       f"(no normalisation); score min(1, {matches} / 3)"]}


def vqa_task(name: str, source: DatasetSource, description: str, rule: str = OFFICIAL,
             max_new_tokens: int = 32, resize: str = "bilinear-antialias") -> Task:
    return Task(name=name, source=source, prompt=PROMPT, target=vqa_target,
                scorer=score_vqa if rule == OFFICIAL else score_vqa_simple, rule=rule,
                explain=explain_official if rule == OFFICIAL else explain_simple,
                columns=("question", "answers"), id_column="question_id", metric="accuracy",
                max_new_tokens=max_new_tokens, resize=resize, description=description,
                groups=("vqa",))


@register
def tasks() -> list[Task]:
    okvqa = DatasetSource("lmms-lab/OK-VQA", "val2014", aliases=("lmms-lab-encoder/OK-VQA",))
    vizwiz = DatasetSource("lmms-lab/VizWiz-VQA", "val", aliases=("lmms-lab-encoder/VizWiz-VQA",))
    vizwiz_decoding = dict(max_new_tokens=48, resize="bilinear")
    return [
        vqa_task("vqav2_val", DatasetSource("lmms-lab/VQAv2", "validation",
                                            aliases=("lmms-lab-encoder/VQAv2",)),
                 "VQAv2 validation, all of it in the hub copy's order (the card's minival is "
                 "big_vision's validation[-10240:]: not these examples, so no card number)"),
        vqa_task("okvqa_val", okvqa, "OK-VQA val2014, big_vision's rule", SIMPLE),
        vqa_task("okvqa_val_official", okvqa, "OK-VQA val2014, official VQA rule"),
        vqa_task("textvqa_val", DatasetSource("lmms-lab/textvqa", "validation",
                                              aliases=("lmms-lab-encoder/textvqa",)),
                 "TextVQA validation"),
        vqa_task("vizwiz_vqa_val", vizwiz, "VizWiz-VQA val, big_vision's rule", SIMPLE,
                 **vizwiz_decoding),
        vqa_task("vizwiz_vqa_val_official", vizwiz, "VizWiz-VQA val, official VQA rule",
                 **vizwiz_decoding),
    ]
