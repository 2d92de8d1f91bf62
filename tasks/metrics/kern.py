"""Error rates of `**kern` music transcriptions, as the Sheet Music Transformer's
`eval_functions.py` (antoniorv6/SMT) computes them and PaliGemma 2 Table 5 reports them.

Each transcription is split three ways: characters (CER), symbols (SER: newlines become the
token `<b>` and tabs `<t>`, then split on spaces) and lines (LER: split on newlines). The rate
is corpus-level: the summed Levenshtein distances over the summed reference lengths, so each
example contributes a ratio's numerator (its distance) and denominator (its reference length),
and the bootstrap resamples examples. Values are fractions (the paper prints percentages).
Lower is better.

Before splitting, prediction and reference go through SMT's `prepare_data` clean-up of the
reference: outer newlines and spaces stripped, bar numbers after `=` removed, `·` removed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from rapidfuzz.distance import Levenshtein

from paligemma_eval.harness.scores import Ratio

_BAR_NUMBER = re.compile(r"(?<==)\d+")


def clean(kern: str) -> str:
    return _BAR_NUMBER.sub("", kern.strip("\n ")).replace("·", "")


def characters(kern: str) -> list[str]:
    return list(kern)


def symbols(kern: str) -> list[str]:
    return kern.replace("\n", " <b> ").replace("\t", " <t> ").split(" ")


def lines(kern: str) -> list[str]:
    return kern.split("\n")


SPLITS = {"cer": characters, "ser": symbols, "ler": lines}
UNITS = {"cer": "characters", "ser": "symbols", "ler": "lines"}


def distance_and_length(prediction: str, reference: str, split) -> tuple[int, int]:
    """One example's share of a rate: its edit distance and its reference's length."""
    hypothesis, truth = split(clean(prediction)), split(clean(reference))
    return Levenshtein.distance(hypothesis, truth), len(truth)


def error_ratio(predictions: Sequence[str], references: Sequence[str], split) -> Ratio:
    pairs = [distance_and_length(p, r, split) for p, r in zip(predictions, references)]
    return Ratio(np.array([d for d, _ in pairs], dtype=float),
                 np.array([n for _, n in pairs], dtype=float))


def kern_ratios(predictions: Sequence[str], references: Sequence[str]) -> dict[str, Ratio]:
    return {name: error_ratio(predictions, references, split) for name, split in SPLITS.items()}


def explain_kern(predictions: list[str], references: list[str]) -> Iterator[dict[str, Any]]:
    """Task.explain: each rate's edit distance over the reference's length for this example,
    and that the task's rates are corpus-level (longer references weigh more)."""
    for prediction, reference in zip(predictions, references):
        parts = []
        for name, split in SPLITS.items():
            distance, length = distance_and_length(prediction, reference, split)
            parts.append(f"{name.upper()} {distance} edits / {length} {UNITS[name]}" +
                         (f" = {distance / length:.4g}" if length else ""))
        yield {"references": [reference],
               "why": ["after SMT's clean-up (bar numbers, ·, outer spaces removed): " +
                       "; ".join(parts),
                       "the task's rates are corpus-level: summed edits over summed reference "
                       "lengths, so this example weighs by its reference's length"]}
