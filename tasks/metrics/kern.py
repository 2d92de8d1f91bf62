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
from collections.abc import Sequence

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


def error_ratio(predictions: Sequence[str], references: Sequence[str], split) -> Ratio:
    distances, lengths = [], []
    for prediction, reference in zip(predictions, references):
        hypothesis, truth = split(clean(prediction)), split(clean(reference))
        distances.append(Levenshtein.distance(hypothesis, truth))
        lengths.append(len(truth))
    return Ratio(np.array(distances, dtype=float), np.array(lengths, dtype=float))


def kern_ratios(predictions: Sequence[str], references: Sequence[str]) -> dict[str, Ratio]:
    return {"cer": error_ratio(predictions, references, characters),
            "ser": error_ratio(predictions, references, symbols),
            "ler": error_ratio(predictions, references, lines)}
