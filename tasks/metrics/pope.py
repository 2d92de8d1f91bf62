"""POPE (Li et al. 2023): yes/no object-existence questions.

big_vision's parser: the lower-cased prediction must be exactly "yes" or "no"; its evaluator
(evaluators/.../pope.py) strips nothing, so " yes" is invalid too. The lenient parser takes the
first word that is "yes" or "no". Invalid answers are wrong for accuracy and count as "not yes"
for recall, so they are never dropped silently. The yes-ratio is the share of *predictions* that
say yes.
"""

from __future__ import annotations

import re

import numpy as np

from paligemma_eval.harness.scores import Ratio

_WORD = re.compile(r"[a-z]+")


def parse_strict(prediction: str) -> str | None:
    answer = prediction.lower()
    return answer if answer in ("yes", "no") else None


def parse_lenient(prediction: str) -> str | None:
    for word in _WORD.findall(prediction.lower()):
        if word in ("yes", "no"):
            return word
    return None


def pope_ratios(answers: list[str | None], labels: list[str]) -> dict[str, Ratio]:
    """Per-question counts; every POPE figure is a ratio of their sums."""
    said_yes = np.array([a == "yes" for a in answers], dtype=float)
    valid = np.array([a is not None for a in answers], dtype=float)
    is_yes = np.array([label.strip().lower() == "yes" for label in labels], dtype=float)
    correct = np.array([a == label.strip().lower() for a, label in zip(answers, labels)],
                       dtype=float)
    true_positive = said_yes * is_yes
    ones = np.ones_like(said_yes)
    return {
        "accuracy": Ratio(correct, ones),
        "precision": Ratio(true_positive, said_yes),
        "recall": Ratio(true_positive, is_yes),
        # F1 = 2TP / (2TP + FP + FN) = 2TP / (predicted yes + actual yes)
        "f1": Ratio(2 * true_positive, said_yes + is_yes),
        "yes_ratio": Ratio(said_yes, ones),
        "valid_share": Ratio(valid, ones),
    }
