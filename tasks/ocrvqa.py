"""OCR-VQA test, as big_vision's transfers/ocrvqa.py evaluates it.

Prompt `answer en {question}`, 32 new tokens, greedy, images resized bilinearly with antialias.
Rule (evaluators/.../vqa.py, one `answer`, `to_lower=True`): exact match after lower-casing the
prediction and the answer, nothing else normalised.

Hub copy: howard-hou/OCR-VQA, split test (20,796 book covers); one row per image with parallel
lists `questions` and `answers` (and image_id, ocr_tokens, ocr_info, title, authorName, genre,
...). Each row is flattened into one example per question (`<image_id>#<k>`). big_vision read
its own `ocrvqa_id` TFDS build (not released); that the hub copy's test split is the official
one is not verified.
"""

from __future__ import annotations

from paligemma_eval.harness.errors import DatasetError
from paligemma_eval.harness.registry import DatasetSource, Row, Task, register, text_len
from paligemma_eval.harness.scores import Ratio, Scores
from paligemma_eval.tasks.metrics.exact_match import exact_match, explain_exact_match


def questions(row: Row) -> list[Row]:
    if len(row["questions"]) != len(row["answers"]):
        raise DatasetError(f"ocrvqa_test: image {row['image_id']}: {len(row['questions'])} "
                           f"questions but {len(row['answers'])} answers")
    return [{**row, "question": question, "answer": answer}
            for question, answer in zip(row["questions"], row["answers"])]


def score(ids: list[str], predictions: list[str], targets: list[str]) -> Scores:
    return Scores(ids, {"accuracy": Ratio.mean([exact_match(p, t, lower=True)
                                                for p, t in zip(predictions, targets)])})


@register
def tasks() -> Task:
    return Task(name="ocrvqa_test", source=DatasetSource("howard-hou/OCR-VQA", "test"),
                prompt="answer en {question}", target=lambda r: str(r["answer"]), scorer=score,
                explain=explain_exact_match(lower=True),
                expand=questions, columns=("questions", "answers"), id_column="image_id",
                **text_len(32), resize="bilinear-antialias", metric="accuracy",
                rule="big_vision vqa evaluator: exact match, lower-cased",
                description="OCR-VQA test, lower-cased exact match")
