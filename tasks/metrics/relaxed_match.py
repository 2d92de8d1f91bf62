"""ChartQA's relaxed accuracy (big_vision evaluators/proj/paligemma/transfers/chartqa.py, after
the ChartQA paper, section 5.1): a numeric answer is right within 5% relative error of the
reference; anything else needs an exact match. Both strings are lower-cased first (the config's
`to_lower=True`). Parsing is Python's float(); a trailing "%" divides by 100, on either side. A
reference of 0 (or one that is not a number) always needs the exact string.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from paligemma_eval.tasks.metrics import Explain

MAX_RELATIVE_ERROR = 0.05


def to_float(text: str) -> float | None:
    try:
        if text.endswith("%"):
            return float(text.rstrip("%")) / 100.0
        return float(text)
    except ValueError:
        return None


def relaxed_match(prediction: str, reference: str,
                  max_relative_error: float = MAX_RELATIVE_ERROR) -> float:
    prediction, reference = prediction.lower(), reference.lower()
    predicted, target = to_float(prediction), to_float(reference)
    if predicted is not None and target:   # target 0: exact match (no relative error exists)
        return float(abs(predicted - target) / abs(target) <= max_relative_error)
    return float(prediction == reference)


def explain_relaxed(answer: Callable[[Any], str] = lambda t: t) -> Explain:
    """Task.explain for this rule: the numbers compared and their relative error, or why the
    strings had to match exactly; `answer` reads the target's reference."""
    def explain(predictions: list[str], targets: list[Any]) -> Iterator[dict[str, Any]]:
        for prediction, target in zip(predictions, targets):
            reference = answer(target)
            score = relaxed_match(prediction, reference)
            seen, wanted = prediction.lower(), reference.lower()
            predicted, number = to_float(seen), to_float(wanted)
            if predicted is not None and number:
                error = abs(predicted - number) / abs(number)
                why = (f"numbers (lower-cased, float(), a trailing % divides by 100): prediction "
                       f"{predicted:g}, answer {number:g}: relative error {error:.2%} "
                       f"{'within' if score else 'above'} {MAX_RELATIVE_ERROR:.0%}")
            else:
                reason = "the answer is not a number" if number is None else \
                    "the answer is 0 (no relative error exists)" if number == 0 else \
                    "the prediction is not a number"
                why = f"{reason}: exact match after lower-casing, {seen!r} vs {wanted!r}"
            yield {"references": [reference], "why": [f"{why}: scores {score:g}"]}
    return explain
