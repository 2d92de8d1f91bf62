"""ANLS, Average Normalized Levenshtein Similarity (Biten et al. 2019), as big_vision scores it.

Answers and prediction are lower-cased and stripped. Per answer nld = edit distance / max length;
the similarity is 1 - nld when nld < 0.5, else 0 (exactly 0.5 scores 0). An empty answer matches
only an empty prediction. Per question: the max over its answers; ANLS is the mean over questions.
"""

from __future__ import annotations

from rapidfuzz.distance import Levenshtein

THRESHOLD = 0.5


def similarity(answer: str, prediction: str, threshold: float = THRESHOLD) -> float:
    answer, prediction = answer.strip().lower(), prediction.strip().lower()
    longest = max(len(answer), len(prediction))
    if longest == 0:
        return 1.0
    nld = Levenshtein.distance(answer, prediction) / longest
    return 1.0 - nld if nld < threshold else 0.0


def anls(prediction: str, answers: list[str], threshold: float = THRESHOLD) -> float:
    return max((similarity(a, prediction, threshold) for a in answers), default=0.0)
