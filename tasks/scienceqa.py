"""ScienceQA, image subset, test, as big_vision's transfers/science_qa.py evaluates it (its
default QCM -> A format, no chain of thought).

Prompt, with real newlines (big_vision's builder and config; PaliGemma paper B.26):

    Question: {question}
    Context: {hint}            ("N/A" when empty)
    Options: (A) {choice 0}, (B) {choice 1}, ...
    Answer:

cut to 512 tokens as big_vision's `tolen(512)`, 512 new tokens, greedy, images resized
bilinearly without antialias; options in the dataset's order (shuffled only in training).
Rule (evaluators/.../science_qa.py): `re.match(r"the answer is ([a-z])\\.", text.lower())` on
the prediction and on the reference `The answer is {letter}.`; equal letters score 1. The
match is anchored at the start: an output that is not the sentence (a bare "A", say) "fails"
and scores 0.

Hub copy: lmms-lab/ScienceQA, config ScienceQA-IMG (the questions with an image), split test
(2,017): question, choices [str], answer (index), hint, image, task, grade, subject, topic,
category, skill, lecture, solution.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from typing import Any

from paligemma_eval.harness.registry import DatasetSource, Row, Task, register, text_len
from paligemma_eval.harness.scores import Ratio, Scores

PROMPT = "Question: {question}\nContext: {hint}\nOptions: {indexed_choices}\nAnswer:"
FAILURE = "failed"


def prompt_fields(row: Row) -> dict[str, str]:
    choices = ", ".join(f"({string.ascii_uppercase[i]}) {c}" for i, c in enumerate(row["choices"]))
    return {"hint": row["hint"] or "N/A", "indexed_choices": choices}


def target(row: Row) -> str:
    return f"The answer is {string.ascii_uppercase[int(row['answer'])]}."


def answer_letter(text: str) -> str:
    match = re.match(r"the answer is ([a-z])\.", text.lower())
    return match.group(1) if match else FAILURE


def score(ids: list[str], predictions: list[str], targets: list[str]) -> Scores:
    letters = [answer_letter(p) for p in predictions]
    values = [float(letter == answer_letter(t)) for letter, t in zip(letters, targets)]
    return Scores(ids, {"accuracy": Ratio.mean(values),
                        "parse_failed": Ratio.mean([letter == FAILURE for letter in letters])})


def explain(predictions: list[str], targets: list[str]) -> Iterator[dict[str, Any]]:
    for prediction, target in zip(predictions, targets):
        letter, right = answer_letter(prediction), answer_letter(target)
        read = "the output does not begin with \"the answer is <letter>.\": parse failed " \
            "(counted in parse_failed)" if letter == FAILURE else f"read letter {letter!r}"
        yield {"references": [target],
               "why": [f"lower-cased, then \"the answer is X.\" at the start: {read}; the "
                       f"correct letter is {right!r}: scores {float(letter == right):g}"]}


@register
def tasks() -> Task:
    return Task(name="scienceqa_img_test",
                source=DatasetSource("lmms-lab/ScienceQA", "test", "ScienceQA-IMG",
                                     aliases=("lmms-lab-encoder/ScienceQA",)),
                prompt=PROMPT, prompt_fields=prompt_fields, target=target, scorer=score,
                explain=explain,
                columns=("question", "choices", "answer", "hint"), id_column=None,
                **text_len(512), resize="bilinear", metric="accuracy",
                rule='"the answer is X." on prediction and reference, letters equal',
                description="ScienceQA image subset, test")
