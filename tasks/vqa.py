"""VQA accuracy tasks: VQAv2, OK-VQA, TextVQA, VizWiz-VQA.

Prompt `answer en {question}`, greedy, 32 new tokens, images resized bilinearly with antialias
(big_vision's transfer configs). Each task is scored the way its card number was:
- VQAv2 and TextVQA: big_vision's `vqav2` evaluator, i.e. the official VQA accuracy.
- OK-VQA and VizWiz-VQA: big_vision's simple `vqa` evaluator: min(1, matches / 3) over the raw
  answers, exact string match, no normalisation, no leave-one-out. VizWiz decodes up to 48
  tokens and resizes without antialias. `okvqa_val_official` / `vizwiz_vqa_val_official` score
  the same predictions with the official rule (VizWiz's official evaluation is the VQA code).
Answer-type breakdown where the data has one.

Test-server splits (the PaliGemma 1 card's rows): `run` writes the server's submission file, its
official format; `record-server-score` stores the score the server returned.
- vqav2_test: test2015 questions (test-std is scored on the full set), EvalAI JSON list of
  {"question_id": int, "answer": str}
- textvqa_test: EvalAI JSON list of {"question_id": int, "answer": str}
- vizwiz_vqa_test: JSON list of {"image": "VizWiz_test_XXXXXXXX.jpg", "answer": str}

Hub copies (the lmms-eval task configs' ids; columns as their dataset cards list them):
- lmms-lab/VQAv2 validation: question_id, question, answers [{answer, answer_confidence,
  answer_id}], answer_type, image
- lmms-lab/OK-VQA val2014: question_id, question, answers [str], image
- lmms-lab/textvqa validation: question_id, question, answers [str], image
- lmms-lab/VizWiz-VQA val: question_id, question, answers [str], category, image
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from paligemma_eval.harness.registry import DatasetSource, Row, Task, register, text_len
from paligemma_eval.harness.scores import Scores, breakdown
from paligemma_eval.tasks.docvqa import submission_as
from paligemma_eval.tasks.metrics.vqa_accuracy import (explain_official, explain_simple,
                                                          simple_vqa_accuracy, vqa_accuracy)

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


VQAV2_VAL_QUESTIONS = 214_354    # v2_OpenEnded_mscoco_val2014_questions.json
MINIVAL_SIZE = 10_240
MINIVAL_RULE = ("big_vision's minival = TFDS vqa validation[-10240:]: the 10,240 question ids "
                "with the largest md5('validation' + str(question_id)) (TFDS stores a split "
                "sorted by that hash: core/hashing.py Hasher, salt = split name; "
                "big_vision/datasets/vqa/vqa.py yields question_id as the key)")


def tfds_order(question_id: Any, split: str = "validation") -> int:
    """TFDS's stable record order: md5(salt = split name, then the key as text) as an integer."""
    return int(hashlib.md5(split.encode() + str(question_id).encode()).hexdigest(), 16)


def minival(question_ids: list[Any]) -> tuple[list[int], dict[str, Any]]:
    """The rows of big_vision's minival, in the hub copy's order. Derived from the whole
    validation set: from a copy with fewer questions it is another subset, and says so."""
    by_order = sorted(range(len(question_ids)), key=lambda i: tfds_order(question_ids[i]))
    kept = sorted(by_order[-MINIVAL_SIZE:])
    return kept, {"rule": MINIVAL_RULE, "from_rows": len(question_ids),
                  "expected_rows": VQAV2_VAL_QUESTIONS,
                  "complete": len(question_ids) == VQAV2_VAL_QUESTIONS}


def vizwiz_submission(rows: list[dict]) -> list[dict[str, str]]:
    """VizWiz's format names the image file (the hub copy's question_id is its stem)."""
    return [{"image": r["id"] if r["id"].endswith(".jpg") else f"{r['id']}.jpg",
             "answer": r["prediction"]} for r in rows]


def submission_task(name: str, source: DatasetSource, description: str,
                    submission: Callable[[list[dict]], Any], max_new_tokens: int = 32,
                    resize: str = "bilinear-antialias") -> Task:
    return Task(name=name, source=source, prompt=PROMPT, target=lambda r: None, scorer=None,
                columns=("question",), id_column="question_id", submission=submission,
                **text_len(max_new_tokens), resize=resize, description=description,
                groups=("vqa",))


def vqa_task(name: str, source: DatasetSource, description: str, rule: str = OFFICIAL,
             max_new_tokens: int = 32, resize: str = "bilinear-antialias",
             select_rows: Callable[[list[Any]], tuple[list[int], dict]] | None = None) -> Task:
    return Task(name=name, source=source, prompt=PROMPT, target=vqa_target,
                scorer=score_vqa if rule == OFFICIAL else score_vqa_simple, rule=rule,
                explain=explain_official if rule == OFFICIAL else explain_simple(),
                columns=("question", "answers"), id_column="question_id", metric="accuracy",
                **text_len(max_new_tokens), resize=resize, description=description,
                groups=("vqa",), select_rows=select_rows)


@register
def tasks() -> list[Task]:
    okvqa = DatasetSource("lmms-lab/OK-VQA", "val2014", aliases=("lmms-lab-encoder/OK-VQA",))
    vizwiz = DatasetSource("lmms-lab/VizWiz-VQA", "val", aliases=("lmms-lab-encoder/VizWiz-VQA",))
    vizwiz_decoding = dict(max_new_tokens=48, resize="bilinear")
    vqav2 = DatasetSource("lmms-lab/VQAv2", "validation", aliases=("lmms-lab-encoder/VQAv2",))
    return [
        vqa_task("vqav2_val", vqav2,
                 "VQAv2 validation, all of it in the hub copy's order (the card's minival is "
                 "big_vision's validation[-10240:]: vqav2_minival)"),
        vqa_task("vqav2_minival", vqav2,
                 f"VQAv2 minival (PaliGemma 2 card): {MINIVAL_RULE}. Exact when the copy holds "
                 f"all {VQAV2_VAL_QUESTIONS:,} validation questions and big_vision's TFDS build "
                 f"used this ordering (TFDS's md5 key order; its first releases hashed keys "
                 f"with CityHash, then SipHash)", select_rows=minival),
        vqa_task("okvqa_val", okvqa, "OK-VQA val2014, big_vision's rule", SIMPLE),
        vqa_task("okvqa_val_official", okvqa, "OK-VQA val2014, official VQA rule"),
        vqa_task("textvqa_val", DatasetSource("lmms-lab/textvqa", "validation",
                                              aliases=("lmms-lab-encoder/textvqa",)),
                 "TextVQA validation"),
        vqa_task("vizwiz_vqa_val", vizwiz, "VizWiz-VQA val, big_vision's rule", SIMPLE,
                 **vizwiz_decoding),
        vqa_task("vizwiz_vqa_val_official", vizwiz, "VizWiz-VQA val, official VQA rule",
                 **vizwiz_decoding),
        submission_task("vqav2_test", DatasetSource("lmms-lab/VQAv2", "test",
                                                    aliases=("lmms-lab-encoder/VQAv2",)),
                        "VQAv2 test2015 (test-std): writes the EvalAI submission file",
                        submission_as("question_id")),
        submission_task("textvqa_test", DatasetSource("lmms-lab/textvqa", "test",
                                                      aliases=("lmms-lab-encoder/textvqa",)),
                        "TextVQA test: writes the EvalAI submission file",
                        submission_as("question_id")),
        submission_task("vizwiz_vqa_test", DatasetSource("lmms-lab/VizWiz-VQA", "test", aliases=(
            "lmms-lab-encoder/VizWiz-VQA",)), "VizWiz-VQA test: writes the submission file",
            vizwiz_submission, **vizwiz_decoding),
    ]
