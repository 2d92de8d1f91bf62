"""MMVP (Tong et al. 2024): 150 image pairs, 300 two-option questions.

Options are appended to the prompt as the dataset writes them: "{question} (a) {x} (b) {y}". An
answer is matched to an option if, lower-cased and stripped of surrounding punctuation, it is the
option's letter alone ("a", "(a)", "a)") or the option's text; anything else is invalid (wrong).
A letter is never found inside a sentence, so the article in "a red circle" is not option (a).
Headline: paired accuracy, a pair counting only if both its questions are right.
"""

from __future__ import annotations

import re

_OPTION = re.compile(r"\(([a-z])\)\s*(.*?)\s*(?=\([a-z]\)|$)", re.IGNORECASE | re.DOTALL)
_EDGES = " \t\n.,;:!?\"'"


def parse_options(options: str) -> dict[str, str]:
    """'(a) Open (b) Closed' -> {'a': 'open', 'b': 'closed'}."""
    return {letter.lower(): text.strip(_EDGES).lower() for letter, text in _OPTION.findall(options)}


def choose(prediction: str, options: dict[str, str]) -> str | None:
    answer = prediction.strip(_EDGES).lower()
    letter = answer.strip("()")
    if len(letter) == 1 and letter in options and answer in (letter, f"({letter})", f"{letter})"):
        return letter
    matches = [k for k, text in options.items() if text and answer == text]
    return matches[0] if len(matches) == 1 else None


def pair_id(index: int) -> str:
    """Rows (1, 2), (3, 4), ... are pairs: the dataset's Index is 1-based."""
    return str((index + 1) // 2)
