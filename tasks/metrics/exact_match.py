"""Exact match, as big_vision's `vqa` evaluator scores a single reference (`answer == gt`).

No strip, no punctuation or article rules: the only normalisation big_vision applies is optional
lower-casing (`to_lower`, per config), to the prediction and the reference alike. Multiple-choice
rows (AI2D, A-OKVQA MC) are this rule with the correct option's text as the reference.
"""

from __future__ import annotations


def exact_match(prediction: str, reference: str, lower: bool = False) -> float:
    if lower:
        prediction, reference = prediction.lower(), reference.lower()
    return float(prediction == reference)


def any_exact_match(prediction: str, references: list[str], lower: bool = False) -> float:
    """1 if the prediction equals any reference (big_vision's `accuracies_any`)."""
    return max((exact_match(prediction, r, lower) for r in references), default=0.0)
