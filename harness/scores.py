"""Scores and their uncertainty.

Every bootstrappable metric is a ratio of sums over resampling units: sum(num) / sum(den). With den
all ones that is a mean of per-example scores (VQA accuracy, ANLS, mIoU, flagged rates); precision,
recall and F1 are ratios of counts; a breakdown (VQA answer type, NoCaps domain) has den = 1 only on
its own units. MMVP's units are image pairs. One representation gives vectorised bootstrap intervals
and paired comparisons for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
_CHUNK_CELLS = 20_000_000  # resample indices held at once: bounds memory at ~160 MB


@dataclass
class Ratio:
    num: np.ndarray
    den: np.ndarray

    def __post_init__(self) -> None:
        self.num = np.asarray(self.num, dtype=np.float64)
        self.den = np.asarray(self.den, dtype=np.float64)

    @property
    def n(self) -> int:
        return int(np.count_nonzero(self.den))

    @property
    def value(self) -> float:
        total = self.den.sum()
        return float(self.num.sum() / total) if total else float("nan")

    @classmethod
    def mean(cls, values: np.ndarray | list[float], mask: np.ndarray | None = None) -> "Ratio":
        values = np.asarray(values, dtype=np.float64)
        den = np.ones_like(values) if mask is None else np.asarray(mask, dtype=np.float64)
        return cls(values * den, den)


@dataclass
class Statistic:
    """A corpus-level metric that is a function of sums of per-unit counts (BLEU's n-gram
    matches and lengths): resampling units and re-summing gives its bootstrap interval."""

    parts: dict[str, np.ndarray]
    # sums: name -> array over resamples (or a 1-element array) -> metric values
    combine: Callable[[dict[str, np.ndarray]], np.ndarray]

    @property
    def value(self) -> float:
        return float(self.combine({k: np.array([v.sum()]) for k, v in self.parts.items()})[0])

    @property
    def n(self) -> int:
        return len(next(iter(self.parts.values())))


@dataclass
class Scores:
    """A scorer's output: per-unit ratios, corpus statistics, and point values (no interval)."""

    units: list[str]
    ratios: dict[str, Ratio]
    points: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    statistics: dict[str, Statistic] = field(default_factory=dict)
    # metrics where less is better (error rates): results.json marks them higher_is_better:
    # false, which `gate` reads
    lower_is_better: tuple[str, ...] = ()


def breakdown(name: str, values: np.ndarray | list[float],
              groups: list[str | None]) -> dict[str, Ratio]:
    """`name` over all units, and `name/<group>` over each group's units (None: no group)."""
    values = np.asarray(values, dtype=np.float64)
    ratios = {name: Ratio.mean(values)}
    for group in sorted({g for g in groups if g is not None}):
        mask = np.array([g == group for g in groups], dtype=np.float64)
        ratios[f"{name}/{group}"] = Ratio.mean(values, mask)
    return ratios


def _resample_sums(arrays: list[np.ndarray], resamples: int, seed: int) -> list[np.ndarray]:
    """Sums of each array over `resamples` bootstrap resamples of its indices (the same indices
    for all)."""
    n = len(arrays[0])
    rng = np.random.default_rng(seed)
    sums = [np.empty(resamples) for _ in arrays]
    all_ones = [bool(np.all(array == 1.0)) for array in arrays]
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        index = rng.integers(0, n, size=(stop - start, n), dtype=np.int32)
        for array, ones, out in zip(arrays, all_ones, sums):
            # A mean's denominator is all ones: its resampled sum is always n.
            out[start:stop] = n if ones else array[index].sum(axis=1)
    return sums


def _interval(samples: np.ndarray) -> dict:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return {"stderr": None, "ci95": None}
    low, high = np.percentile(samples, [2.5, 97.5])
    return {"stderr": float(samples.std(ddof=1)) if samples.size > 1 else 0.0,
            "ci95": [float(low), float(high)]}


def bootstrap(metrics: dict[str, Ratio | Statistic], resamples: int = DEFAULT_RESAMPLES,
              seed: int = DEFAULT_SEED) -> dict[str, dict]:
    """Percentile bootstrap over units: {metric: {stderr, ci95}}; deterministic for a seed.
    All metrics of one task see the same resamples."""
    def parts(metric: Ratio | Statistic) -> dict[str, np.ndarray]:
        return {"num": metric.num, "den": metric.den} if isinstance(metric, Ratio) \
            else metric.parts

    def combine(metric: Ratio | Statistic, sums: dict[str, np.ndarray]) -> np.ndarray:
        return sums["num"] / sums["den"] if isinstance(metric, Ratio) else metric.combine(sums)

    empty = {name: {"stderr": None, "ci95": None} for name in metrics}
    first = next(iter(metrics.values()), None)
    if first is None or resamples <= 0 or len(next(iter(parts(first).values()))) == 0:
        return empty
    keys = [(name, part) for name, metric in metrics.items() for part in parts(metric)]
    # An array shared by several metrics (one group's membership, say) is resampled once.
    unique = {id(parts(metrics[name])[part]): parts(metrics[name])[part] for name, part in keys}
    sums = dict(zip(unique, _resample_sums(list(unique.values()), resamples, seed)))
    resampled = {(name, part): sums[id(parts(metrics[name])[part])] for name, part in keys}
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, metric in metrics.items():
            sums = {part: resampled[(name, part)] for part in parts(metric)}
            out[name] = _interval(np.asarray(combine(metric, sums), dtype=float))
    return out


def paired_difference(a: Ratio, b: Ratio, resamples: int = DEFAULT_RESAMPLES,
                      seed: int = DEFAULT_SEED) -> dict:
    """B - A over the same units (aligned arrays), with a paired percentile bootstrap interval;
    `significant` is None when there is no interval (no resamples): unknown, not "no"."""
    num_a, den_a, num_b, den_b = _resample_sums([a.num, a.den, b.num, b.den], resamples, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        diffs = num_b / den_b - num_a / den_a
    interval = _interval(diffs)
    ci = interval["ci95"]
    significant = None if ci is None else bool(ci[0] > 0 or ci[1] < 0)
    return {"a": a.value, "b": b.value, "difference": b.value - a.value, **interval,
            "significant": significant, "n": int(np.count_nonzero(a.den + b.den))}
