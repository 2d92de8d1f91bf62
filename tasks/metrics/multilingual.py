"""Averages over languages, as the cards report multilingual rows (COCO-35L avg34 / avg,
XM3600 avg35 / avg, xGQA avg7, MaRVL avg5).

Each language is scored on its own (big_vision runs one evaluator per language), and the card's
average is the unweighted mean of the per-language numbers. As a ratio over examples, that mean
gives example i of language l the weight 1 / n_l: num_i = v_i / n_l, den_i = 1 / n_l, so
sum(num) / sum(den) = mean over languages of the language's mean, and the bootstrap resamples
examples with those weights held fixed (an interval for the average, not for each language).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from paligemma_eval.harness.scores import Ratio


def language_average(values: Sequence[float], languages: Sequence[str],
                     include: Iterable[str] | None = None) -> Ratio:
    """Mean over the languages in `include` (default: all present) of each one's mean value."""
    wanted = set(languages) if include is None else set(include)
    counts = Counter(lang for lang in languages if lang in wanted)
    weights = np.array([1.0 / counts[lang] if lang in counts else 0.0 for lang in languages])
    return Ratio(np.asarray(values, dtype=np.float64) * weights, weights)


def per_language(name: str, values: Sequence[float], languages: Sequence[str],
                 averages: dict[str, Iterable[str] | None]) -> dict[str, Ratio]:
    """`name/<lang>` for each language, plus `name/<label>` for each named average, e.g.
    {"avg34": every language but en, "avg": None (all)}."""
    values = np.asarray(values, dtype=np.float64)
    ratios = {f"{name}/{lang}": Ratio.mean(values, np.array([l == lang for l in languages]))
              for lang in sorted(set(languages))}
    for label, include in averages.items():
        ratios[f"{name}/{label}"] = language_average(values, languages, include)
    return ratios
