"""GQA test-dev balanced and xGQA, as big_vision's transfers/gqa.py evaluates them.

Prompt `answer en {question}` (xGQA: the question in its language, "answer en" kept), 32 new
tokens, greedy, images resized bilinearly *without* antialias. Rule (evaluators/.../vqa.py, one
`answer`): exact string match, case kept, no normalisation.

- `gqa_testdev`: 12,578 questions on 398 images. The hub copy keeps them in two configs of
  lmms-lab/GQA, split `testdev`: `testdev_balanced_images` (id, image) and
  `testdev_balanced_instructions` (id, imageId, question, answer, fullAnswer, ...). The
  questions are nested into their image's row by imageId (registry.Nested) and flattened, so
  each image is decoded and hashed once; example ids are `<imageId>#<k>`, k the question's
  position among its image's questions in file order. A question whose image is missing fails
  the load.
- `xgqa`: the zero-shot xGQA test sets in 8 languages (bn, de, en, id, ko, pt, ru, zh), English
  answers. Hub copy neulab/PangeaBench-xgqa, one split per language (question, answer,
  full_answer, image_id, image), read as one dataset tagged with its language. Metrics:
  `accuracy/<lang>`, `accuracy/avg7` (mean of the 7 non-English languages: PaliGemma 2's and the
  PaliGemma paper's "xGQA (avg7)") and `accuracy/avg8` (all 8: big_vision's README row "Mean
  Accuracy (bn,de,en,id,ko,pt,ru,zh)", which the PaliGemma 1 card prints). Without an id column,
  examples are keyed by position; `--limit` takes the first rows, i.e. Bengali first.
"""

from __future__ import annotations

from paligemma_eval.harness.registry import DatasetSource, Nested, Row, Task, register, text_len
from paligemma_eval.harness.scores import Ratio, Scores
from paligemma_eval.tasks.metrics.exact_match import exact_match, explain_exact_match
from paligemma_eval.tasks.metrics.multilingual import explain_in_groups, per_group

PROMPT = "answer en {question}"
RULE = "big_vision vqa evaluator: exact match, case kept"
LANGUAGES = ("bn", "de", "en", "id", "ko", "pt", "ru", "zh")
GQA_ALIASES = ("lmms-lab-encoder/GQA",)


def score_gqa(ids: list[str], predictions: list[str], targets: list[str]) -> Scores:
    return Scores(ids, {"accuracy": Ratio.mean([exact_match(p, t)
                                                for p, t in zip(predictions, targets)])})


def score_xgqa(ids: list[str], predictions: list[str], targets: list[dict]) -> Scores:
    values = [exact_match(p, t["answer"]) for p, t in zip(predictions, targets)]
    languages = [t["language"] for t in targets]
    non_english = [lang for lang in LANGUAGES if lang != "en"]
    return Scores(ids, per_group("accuracy", values, languages,
                                 {"avg7": non_english, "avg8": LANGUAGES}))


explain_xgqa = explain_in_groups(
    explain_exact_match(answers=lambda t: [t["answer"]]),
    lambda t: f"counted in accuracy/{t['language']} and avg8" + (
        "; not in avg7 (the headline: non-English only)" if t["language"] == "en" else
        " and avg7 (the headline)") + ": each language weighed equally")


def questions(row: Row) -> list[Row]:
    return [{**row, **question} for question in row["questions"]]


@register
def tasks() -> list[Task]:
    testdev_questions = DatasetSource("lmms-lab/GQA", "testdev", "testdev_balanced_instructions",
                                      aliases=GQA_ALIASES)
    testdev = DatasetSource("lmms-lab/GQA", "testdev", "testdev_balanced_images",
                            aliases=GQA_ALIASES,
                            nested=Nested(testdev_questions, key="imageId", on="id",
                                          into="questions", columns=("question", "answer")))
    xgqa = DatasetSource("neulab/PangeaBench-xgqa", "+".join(LANGUAGES), split_column="language")
    common = dict(prompt=PROMPT, **text_len(32), resize="bilinear", rule=RULE,
                  groups=("gqa",))
    return [
        Task(name="gqa_testdev", source=testdev, target=lambda r: str(r["answer"]),
             scorer=score_gqa, explain=explain_exact_match(), expand=questions,
             columns=("questions",), id_column="id",
             metric="accuracy", description="GQA test-dev balanced, exact match", **common),
        Task(name="xgqa", source=xgqa,
             target=lambda r: {"answer": str(r["answer"]), "language": r["language"]},
             scorer=score_xgqa, explain=explain_xgqa, columns=("question", "answer"),
             id_column=None,
             metric="accuracy/avg7",
             description="xGQA zero-shot test, 8 languages, English answers: avg7 (non-English) "
                         "and avg8", **common),
    ]
