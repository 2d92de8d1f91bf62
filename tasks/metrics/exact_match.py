"""Exact match, as big_vision's `vqa` evaluator scores a single reference (`answer == gt`).

No strip, no punctuation or article rules: the only normalisation big_vision applies is optional
lower-casing (`to_lower`, per config), to the prediction and the reference alike. Multiple-choice
rows (AI2D, A-OKVQA MC) are this rule with the correct option's text as the reference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from paligemma_eval.tasks.metrics import Explain


def exact_match(prediction: str, reference: str, lower: bool = False) -> float:
    if lower:
        prediction, reference = prediction.lower(), reference.lower()
    return float(prediction == reference)


def any_exact_match(prediction: str, references: list[str], lower: bool = False) -> float:
    """1 if the prediction equals any reference (big_vision's `accuracies_any`)."""
    return max((exact_match(prediction, r, lower) for r in references), default=0.0)


def explain_exact_match(lower: bool = False, answers: Callable[[Any], list[str]] = lambda t: [t],
                        what: str = "the reference") -> Explain:
    """Task.explain for this rule: the strings as compared, which reference matched, the score.
    `answers` reads the target's reference strings; `what` names a single one in the text."""
    rule = "lower-cased, then exact string match" if lower else "exact string match, case kept"

    def explain(predictions: list[str], targets: list[Any]) -> Iterator[dict[str, Any]]:
        for prediction, target in zip(predictions, targets):
            references = answers(target)
            score = any_exact_match(prediction, references, lower)
            seen = prediction.lower() if lower else prediction
            matched = next((r for r in references if exact_match(prediction, r, lower)), None)
            if matched is not None:
                which = what if len(references) == 1 else \
                    f"one of the {len(references)} references,"
                outcome = f"{seen!r} equals {which} {matched.lower() if lower else matched!r}"
            elif len(references) == 1:
                reference = references[0].lower() if lower else references[0]
                outcome = f"{seen!r} differs from {what} {reference!r}"
            else:
                outcome = f"{seen!r} equals none of the {len(references)} references"
            near = matched is None and any(prediction.strip().lower() == r.strip().lower()
                                           for r in references)
            yield {"references": references,
                   "why": [f"{rule}, no other normalisation: {outcome}: scores {score:g}"] +
                          ([f"they differ only in {'' if lower else 'case or '}surrounding "
                            f"spaces, which this rule counts as wrong"] if near else [])}
    return explain
