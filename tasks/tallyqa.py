"""TallyQA (simple / complex) and CountBenchQA, as big_vision's transfers/tallyqa.py evaluates
them (CountBenchQA is its `countbenchqa` eval, zero-shot from the TallyQA fine-tune).

Prompt `answer en {question}`, 32 new tokens, greedy, images resized bilinearly with antialias.
Rule (evaluators/.../tallyqa.py, tasks/metrics/number_words.py): a number word up to twenty
becomes its numeral on both sides, then exact string match. TallyQA reports `accuracy/simple`
and `accuracy/complex` from the `is_simple` flag (the card's two rows) and `accuracy` over all.

Hub copies:
- vikhyatk/tallyqa-test, split test: one row per image (image, qa [{question, answer,
  is_simple}]); flattened into one example per question (`<row>#<k>`).
- vikhyatk/CountBenchQA, split test (491 images; big_vision's builder likewise skips the
  missing ones): image, text, question, number. The prompt is the question alone: big_vision
  does not prepend the caption `text` (lmms-eval's countbenchqa does).
"""

from __future__ import annotations

from paligemma_eval.harness.registry import DatasetSource, Row, Task, register, text_len
from paligemma_eval.harness.scores import Ratio, Scores, breakdown
from paligemma_eval.tasks.metrics.multilingual import explain_in_groups
from paligemma_eval.tasks.metrics.number_words import count_match, explain_count

PROMPT = "answer en {question}"
RULE = "big_vision tallyqa evaluator: number words to numerals, exact match"


def questions(row: Row) -> list[Row]:
    return [{**row, **qa} for qa in row["qa"]]


def score_tallyqa(ids: list[str], predictions: list[str], targets: list[dict]) -> Scores:
    values = [count_match(p, t["answer"]) for p, t in zip(predictions, targets)]
    kinds = ["simple" if t["simple"] else "complex" for t in targets]
    return Scores(ids, breakdown("accuracy", values, kinds))


def score_countbench(ids: list[str], predictions: list[str], targets: list[str]) -> Scores:
    return Scores(ids, {"accuracy": Ratio.mean([count_match(p, t)
                                                for p, t in zip(predictions, targets)])})


explain_tallyqa = explain_in_groups(
    explain_count(lambda t: t["answer"]),
    lambda t: "simple question: counted in accuracy/simple (the headline)" if t["simple"] else
    "complex question: counted in accuracy/complex, not in the headline accuracy/simple")


@register
def tasks() -> list[Task]:
    common = dict(prompt=PROMPT, **text_len(32), resize="bilinear-antialias", rule=RULE,
                  id_column=None, groups=("counting",))
    return [
        Task(name="tallyqa_test", source=DatasetSource("vikhyatk/tallyqa-test", "test"),
             target=lambda r: {"answer": str(r["answer"]), "simple": bool(r["is_simple"])},
             scorer=score_tallyqa, explain=explain_tallyqa, expand=questions, columns=("qa",),
             metric="accuracy/simple",
             description="TallyQA test: simple and complex counting questions", **common),
        Task(name="countbenchqa", source=DatasetSource("vikhyatk/CountBenchQA", "test"),
             target=lambda r: str(r["number"]), scorer=score_countbench,
             explain=explain_count(),
             columns=("question", "number"), metric="accuracy",
             description="CountBenchQA (zero-shot from a TallyQA fine-tune)", **common),
    ]
