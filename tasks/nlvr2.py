"""Two images per example: NLVR2 and MaRVL, as big_vision's nlvr2.py evaluates them.

Each image is resized to the model's resolution (bilinear, no antialias), the pair is stacked as
two "frames" (left first) and each goes through the vision tower; the image tokens are
concatenated. Prompt `answer en {sentence}` (MaRVL: the hypothesis in its own language), greedy,
64 new tokens. Rule: big_vision's `vqa` evaluator with one reference, exact and case-sensitive
match against the label written "True" or "False". MaRVL is a zero-shot evaluation of the NLVR2
transfer; its card number is the mean of the five languages' accuracies (avg5).

Hub copies:
- HuggingFaceM4/NLVR2 test: sentence, left_image, right_image, label (keyed by row position).
  It is a loading script that datasets>=4 does not run, and its test joins test1 and test2:
  run it from local files (docs/tasks-multi-image.md).
- floschne/marvl, one split per language (id, sw, ta, tr, zh): id, hypothesis, hypo_en,
  language, label (bool), left_img, right_img, ... (keyed by language and row position)
"""

from __future__ import annotations

from paligemma_eval.harness.registry import (SPLIT_COLUMN, DatasetSource, Row, Task, register,
                                             text_len)
from paligemma_eval.harness.scores import Ratio, Scores
from paligemma_eval.tasks.metrics.exact_match import exact_match, explain_exact_match
from paligemma_eval.tasks.metrics.multilingual import explain_in_groups, per_group

MARVL_LANGUAGES = ("id", "sw", "ta", "tr", "zh")
RULE = "big_vision vqa evaluator: exact, case-sensitive match with \"True\" / \"False\""


def label_text(value: object) -> str:
    """The label as the model was trained to write it: "True" or "False"."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.capitalize()
    raise ValueError(f"label {value!r} is neither a boolean nor the text True / False")


def nlvr2_target(row: Row) -> dict:
    return {"answer": label_text(row["label"])}


def marvl_target(row: Row) -> dict:
    return {"answer": label_text(row["label"]), "language": row[SPLIT_COLUMN]}


def score_nlvr2(ids: list[str], predictions: list[str], targets: list[dict]) -> Scores:
    return Scores(ids, {"accuracy": Ratio.mean(
        [exact_match(p, t["answer"]) for p, t in zip(predictions, targets)])})


def score_marvl(ids: list[str], predictions: list[str], targets: list[dict]) -> Scores:
    values = [exact_match(p, t["answer"]) for p, t in zip(predictions, targets)]
    return Scores(ids, per_group("accuracy", values, [t["language"] for t in targets],
                                 {"avg5": None}))


explain_nlvr2 = explain_exact_match(answers=lambda t: [t["answer"]])
explain_marvl = explain_in_groups(
    explain_nlvr2, lambda t: f"counted in accuracy/{t['language']}; accuracy/avg5 (the "
                             f"headline) weighs the five languages equally")


@register
def tasks() -> list[Task]:
    common = dict(**text_len(64), resize="bilinear", rule=RULE, id_column=None,
                  groups=("two_images",))
    return [
        Task(name="nlvr2_test", source=DatasetSource("HuggingFaceM4/NLVR2", "test"),
             prompt="answer en {sentence}", target=nlvr2_target, scorer=score_nlvr2,
             explain=explain_nlvr2,
             columns=("sentence", "label"), image_column="left_image",
             extra_image_columns=("right_image",), metric="accuracy",
             description="NLVR2 test: a sentence about two images, True or False", **common),
        Task(name="marvl", source=DatasetSource("floschne/marvl", "+".join(MARVL_LANGUAGES),
                                                 split_column=SPLIT_COLUMN),
             prompt="answer en {hypothesis}", target=marvl_target, scorer=score_marvl,
             explain=explain_marvl,
             columns=("hypothesis", "label"), image_column="left_img",
             extra_image_columns=("right_img",), metric="accuracy/avg5",
             description="MaRVL (id, sw, ta, tr, zh): NLVR2's task in five languages, "
                         "zero-shot from the NLVR2 transfer; avg5 = mean of the languages",
             **common),
    ]
