"""A-OKVQA, direct answer (DA) and multiple choice (MC), as big_vision's transfers/aokvqa_da.py
and aokvqa_mc.py evaluate them.

- DA: prompt `answer en {question}`, 32 new tokens, greedy, images resized bilinearly with
  antialias. Rule (evaluators/.../vqa.py on `answers` = the ten `direct_answers`): min(1,
  exact matches / 3), no lower-casing or other normalisation, no leave-one-out; every example
  counts (the official script's DA score skips `difficult_direct_answer` questions; big_vision's
  does not).
- MC: prompt `answer en  {question} choose from: {c0} \\t {c1} \\t {c2} \\t {c3}` (two spaces, see
  tasks/metrics/multiple_choice.py), 128 new tokens, the prompt cut to 128 tokens as
  big_vision's `tolen(128)`, antialiased resize. Rule: exact match with the correct choice's text.

The card's PaliGemma 2 rows are on val (`aokvqa_*_val`); PaliGemma 1's are the test server's:
`aokvqa_*_test` write the leaderboard's file, {question_id: {"direct_answer": answer}} or
{question_id: {"multiple_choice": answer}} (allenai/aokvqa evaluation/prepare_predictions.py;
merge the two into one dict to submit both settings at once).

Hub copy: HuggingFaceM4/A-OKVQA, splits validation (1,145) / test (6,702; no labels); columns
image, question_id, question, choices [4 str], correct_choice_idx, direct_answers [10 str],
difficult_direct_answer, rationales.
"""

from __future__ import annotations

from paligemma_eval.harness.registry import DatasetSource, Task, register, text_len
from paligemma_eval.harness.scores import Ratio, Scores
from paligemma_eval.tasks.metrics import multiple_choice as mc
from paligemma_eval.tasks.metrics.vqa_accuracy import explain_simple, simple_vqa_accuracy

HUB_ID = "HuggingFaceM4/A-OKVQA"


def score_direct(ids: list[str], predictions: list[str], targets: list[list[str]]) -> Scores:
    return Scores(ids, {"accuracy": Ratio.mean([simple_vqa_accuracy(p, t)
                                                for p, t in zip(predictions, targets)])})


def leaderboard(setting: str):
    def submission(rows: list[dict]) -> dict[str, dict[str, str]]:
        return {r["id"]: {setting: r["prediction"]} for r in rows}
    return submission


def aokvqa_tasks(split: str) -> list[Task]:
    stem = {"validation": "val", "test": "test"}[split]
    scored = split != "test"
    common = dict(source=DatasetSource(HUB_ID, split), id_column="question_id",
                  resize="bilinear-antialias", groups=("aokvqa",),
                  metric="accuracy" if scored else "")
    direct = Task(name=f"aokvqa_da_{stem}", prompt="answer en {question}",
                  target=(lambda r: [str(a) for a in r["direct_answers"]]) if scored
                  else (lambda r: None),
                  scorer=score_direct if scored else None,
                  explain=explain_simple(lambda answers: answers) if scored else None,
                  submission=None if scored else leaderboard("direct_answer"),
                  columns=("question", "direct_answers") if scored else ("question",),
                  **text_len(32),
                  rule="big_vision vqa evaluator: min(1, exact matches / 3), no normalisation",
                  description=f"A-OKVQA {split}, direct answer" + (
                      "" if scored else ": writes the leaderboard file"), **common)
    choice = Task(name=f"aokvqa_mc_{stem}", prompt=mc.PROMPT,
                  prompt_fields=mc.options_field("choices"),
                  target=mc.choice_target("choices", "correct_choice_idx") if scored
                  else (lambda r: None),
                  scorer=mc.score_choice if scored else None,
                  explain=mc.explain_choice if scored else None,
                  submission=None if scored else leaderboard("multiple_choice"),
                  columns=("question", "choices", "correct_choice_idx") if scored
                  else ("question", "choices"),
                  **text_len(128),
                  rule="exact match with the correct choice's text, case kept",
                  description=f"A-OKVQA {split}, multiple choice" + (
                      "" if scored else ": writes the leaderboard file"), **common)
    return [direct, choice]


@register
def tasks() -> list[Task]:
    return [*aokvqa_tasks("validation"), *aokvqa_tasks("test")]
