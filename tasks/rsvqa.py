"""RSVQA-LR and RSVQA-HR (test, test 2), non-numeric questions, as big_vision's
transfers/rsvqa_lr.py and rsvqa_hr.py evaluate them.

Prompt `answer en {question}`, 32 new tokens, greedy, images resized bilinearly without
antialias. Rule (evaluators/.../rsvqa.py, `to_lower=True`, answers lower-cased): per question
type, the share of predictions equal to one of the answers; the card's number is the mean over
the types ("average accuracy", `acc_avg`), reported as `accuracy/type_mean`, beside
`accuracy/<type>` and `accuracy` over all questions ("overall accuracy").

Types: big_vision scores the `nonum` builds, which drop the numeric questions:
- RSVQA-LR: comp, presence, rural_urban (count dropped);
- RSVQA-HR: comp, presence (count and area dropped).
Rows of a dropped type are skipped here too; any other type fails the load.

No hub copy holds them (Zenodo records 6344334 for LR, 6344367 for HR), so these tasks read
local files only: `--data-dir DIR` with one JSONL per split,
    DIR/zenodo/RSVQA-LR/default/test.jsonl
    DIR/zenodo/RSVQA-HR/default/test.jsonl          (USGS_split_test_*: the card's "test")
    DIR/zenodo/RSVQA-HR/default/test_phili.jsonl    (USGS_split_test_phili_*: "test 2")
one line per active question of `<LR|USGS>_split_<split>_questions.json`, with the fields of
that file and its answers file: {"id": question id, "img_id": ..., "type": ..., "question": ...,
"answers": [the `answer` of each active entry of `answers_ids`], "image": path of the image
relative to the JSONL, e.g. "Images_LR/<img_id>.tif" or "Data/<img_id>.png"}. (big_vision's
builders pair the i-th question with the i-th answer record; each question has one answer. They
read the LR TIFFs with tifffile and cast to uint8: convert to PNG any TIFF that PIL cannot open.)
"""

from __future__ import annotations

from paligemma_eval.harness.errors import DatasetError
from paligemma_eval.harness.registry import DatasetSource, Row, Task, register, text_len
from paligemma_eval.harness.scores import Ratio, Scores
from paligemma_eval.tasks.metrics.exact_match import any_exact_match, explain_exact_match
from paligemma_eval.tasks.metrics.multilingual import explain_in_groups, per_group

NUMERIC = ("count", "area")
TYPES = {"RSVQA-LR": ("comp", "presence", "rural_urban"), "RSVQA-HR": ("comp", "presence")}


def non_numeric(dataset: str):
    def keep(row: Row) -> list[Row]:
        if row["type"] in TYPES[dataset]:
            return [row]
        if row["type"] in NUMERIC:
            return []
        raise DatasetError(f"{dataset} question {row['id']}: unknown type {row['type']!r} "
                           f"(expected {', '.join(TYPES[dataset] + NUMERIC)})")
    return keep


def score(ids: list[str], predictions: list[str], targets: list[dict]) -> Scores:
    values = [any_exact_match(p, t["answers"], lower=True) for p, t in zip(predictions, targets)]
    types = [t["type"] for t in targets]
    # The mean over types weighs each type equally: the per-group average of multilingual.py.
    ratios = per_group("accuracy", values, types, {"type_mean": None})
    return Scores(ids, {"accuracy": Ratio.mean(values), **ratios})


explain = explain_in_groups(
    explain_exact_match(lower=True, answers=lambda t: t["answers"]),
    lambda t: f"question type {t['type']}: counted in accuracy/{t['type']}; "
              f"accuracy/type_mean (the headline) weighs the types equally")


def rsvqa_task(name: str, dataset: str, split: str, description: str) -> Task:
    return Task(name=name, source=DatasetSource(f"zenodo/{dataset}", split, local_only=True),
                prompt="answer en {question}",
                target=lambda r: {"answers": [str(a) for a in r["answers"]], "type": r["type"]},
                scorer=score, explain=explain, expand=non_numeric(dataset),
                columns=("question", "answers", "type"), id_column="id", **text_len(32),
                resize="bilinear", metric="accuracy/type_mean", groups=("rsvqa",),
                rule="big_vision rsvqa evaluator: mean over question types of exact-match "
                     "accuracy, lower-cased",
                description=description)


@register
def tasks() -> list[Task]:
    return [rsvqa_task("rsvqa_lr_test", "RSVQA-LR", "test", "RSVQA-LR test, non-numeric "
                       "(local files)"),
            rsvqa_task("rsvqa_hr_test", "RSVQA-HR", "test", "RSVQA-HR test, non-numeric "
                       "(local files)"),
            rsvqa_task("rsvqa_hr_test2", "RSVQA-HR", "test_phili", "RSVQA-HR test 2 "
                       "(Philadelphia), non-numeric (local files)")]
