"""TallyQA's count rule (big_vision evaluators/proj/paligemma/transfers/tallyqa.py), also used
for CountBenchQA: a whole answer that is a number word up to twenty ("none", "zero", "one", ...,
"twenty", any case) becomes its numeral, on the prediction and the reference alike; then exact
string match. Nothing else is normalised: "two apples" and " 2" stay wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from paligemma_eval.tasks.metrics import Explain
from paligemma_eval.tasks.metrics.exact_match import exact_match

_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
          "fourteen fifteen sixteen seventeen eighteen nineteen twenty").split()
REPLACEMENTS = {"none": "0", **{word: str(number) for number, word in enumerate(_WORDS)}}


def number_word_to_numeral(text: str) -> str:
    return REPLACEMENTS.get(text.lower(), text)


def count_match(prediction: str, reference: str) -> float:
    return exact_match(number_word_to_numeral(prediction), number_word_to_numeral(reference))


def explain_count(answer: Callable[[Any], str] = lambda t: t) -> Explain:
    """Task.explain for this rule: both sides after the number-word rule, and the score."""
    def explain(predictions: list[str], targets: list[Any]) -> Iterator[dict[str, Any]]:
        for prediction, target in zip(predictions, targets):
            reference = answer(target)
            sides = []
            for label, text in (("prediction", prediction), ("answer", reference)):
                numeral = number_word_to_numeral(text)
                sides.append(f"{label} {text!r}" + (f" read as {numeral!r}"
                                                    if numeral != text else ""))
            yield {"references": [reference],
                   "why": [f"number words up to twenty become numerals, then exact match: "
                           f"{', '.join(sides)}: scores {count_match(prediction, reference):g}"]}
    return explain
