"""ChartQA's relaxed accuracy (big_vision evaluators/proj/paligemma/transfers/chartqa.py, after
the ChartQA paper, section 5.1): a numeric answer is right within 5% relative error of the
reference; anything else needs an exact match. Both strings are lower-cased first (the config's
`to_lower=True`). Parsing is Python's float(); a trailing "%" divides by 100, on either side. A
reference of 0 (or one that is not a number) always needs the exact string.
"""

from __future__ import annotations


def to_float(text: str) -> float | None:
    try:
        if text.endswith("%"):
            return float(text.rstrip("%")) / 100.0
        return float(text)
    except ValueError:
        return None


def relaxed_match(prediction: str, reference: str, max_relative_error: float = 0.05) -> float:
    prediction, reference = prediction.lower(), reference.lower()
    predicted, target = to_float(prediction), to_float(reference)
    if predicted is not None and target:   # target 0: exact match (no relative error exists)
        return float(abs(predicted - target) / abs(target) <= max_relative_error)
    return float(prediction == reference)
