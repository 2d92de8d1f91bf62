"""Averages over languages, as the cards report multilingual rows (COCO-35L avg34 / avg,
XM3600 avg35 / avg, xGQA avg7, MaRVL avg5), and over any groups the card weighs alike the same
way (ChartQA's two splits, RSVQA's question types).

Each language is scored on its own (big_vision runs one evaluator per language), and the card's
average is the unweighted mean of the per-language numbers. As a ratio over examples, that mean
gives example i of language l the weight 1 / n_l: num_i = v_i / n_l, den_i = 1 / n_l, so
sum(num) / sum(den) = mean over languages of the language's mean, and the bootstrap resamples
examples with those weights held fixed (an interval for the average, not for each language).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from paligemma_eval.harness.scores import Ratio
from paligemma_eval.tasks.metrics import Explain


def group_average(values: Sequence[float], groups: Sequence[str],
                  include: Iterable[str] | None = None) -> Ratio:
    """Mean over the groups in `include` (default: all present) of each group's mean value."""
    wanted = set(groups) if include is None else set(include)
    counts = Counter(group for group in groups if group in wanted)
    weights = np.array([1.0 / counts[group] if group in counts else 0.0 for group in groups])
    return Ratio(np.asarray(values, dtype=np.float64) * weights, weights)


def per_group(name: str, values: Sequence[float], groups: Sequence[str],
              averages: dict[str, Iterable[str] | None]) -> dict[str, Ratio]:
    """`name/<group>` for each group (a language, a split, a question type), plus
    `name/<label>` for each named average, e.g. {"avg34": every language but en, "avg": None}."""
    values = np.asarray(values, dtype=np.float64)
    ratios = {f"{name}/{group}": Ratio.mean(values, np.array([g == group for g in groups]))
              for group in sorted(set(groups))}
    for label, include in averages.items():
        ratios[f"{name}/{label}"] = group_average(values, groups, include)
    return ratios


def explain_in_groups(explain: Explain, note: Callable[[Any], str]) -> Explain:
    """Task.explain `explain` with one more line per example: `note(target)`, which group the
    example counts in and how the average weighs it."""
    def grouped(predictions: list[str], targets: list[Any]) -> Iterator[dict[str, Any]]:
        for item, target in zip(explain(predictions, targets), targets):
            yield {**item, "why": [*item["why"], note(target)]}
    return grouped
