"""A third-party task: background colour questions, exact match, on VQAv2-schema data."""

from paligemma_eval.harness.registry import DatasetSource, Task
from paligemma_eval.harness.scores import Ratio, Scores


def exact_match(ids, predictions, targets):
    return Scores(ids, {"exact_match": Ratio.mean([p.lower() == t for p, t in
                                                   zip(predictions, targets)])})


def tasks():
    return [Task(name="example_plugin_vqa", source=DatasetSource("lmms-lab/VQAv2", "validation"),
                 prompt="answer en {question}", target=lambda row: row["multiple_choice_answer"],
                 scorer=exact_match, columns=("question", "multiple_choice_answer"),
                 id_column="question_id", metric="exact_match",
                 description="plugin example: exact match")]
