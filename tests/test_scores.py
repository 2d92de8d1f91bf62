import numpy as np
import pytest

from paligemma_eval.harness.scores import Ratio, bootstrap, breakdown, paired_difference


def test_ratio_and_breakdown_values():
    values = [1.0, 0.0, 0.5, 1.0]
    ratios = breakdown("acc", values, ["x", "y", "x", None])
    assert ratios["acc"].value == pytest.approx(2.5 / 4)
    assert ratios["acc/x"].value == pytest.approx(0.75) and ratios["acc/x"].n == 2
    assert ratios["acc/y"].value == 0.0


def test_bootstrap_is_deterministic_and_covers_the_value():
    rng = np.random.default_rng(1)
    scores = Ratio.mean(rng.random(500) < 0.7)
    first = bootstrap({"acc": scores}, resamples=300, seed=3)["acc"]
    again = bootstrap({"acc": scores}, resamples=300, seed=3)["acc"]
    other = bootstrap({"acc": scores}, resamples=300, seed=4)["acc"]
    assert first == again and first != other
    low, high = first["ci95"]
    assert low < scores.value < high
    # Binomial standard error sqrt(p(1-p)/n) is the analytic answer for a mean of 0/1 scores.
    p = scores.value
    assert first["stderr"] == pytest.approx(np.sqrt(p * (1 - p) / 500), rel=0.15)


def test_paired_difference_detects_a_real_drop_and_not_noise():
    rng = np.random.default_rng(0)
    base = (rng.random(2000) < 0.8).astype(float)
    worse = base.copy()
    worse[rng.choice(np.flatnonzero(base), 300, replace=False)] = 0  # 15 points lower
    noisy = base.copy()
    # Rerun noise: a few examples flip, in both directions.
    noisy[rng.choice(np.flatnonzero(base == 1), 4, replace=False)] = 0
    noisy[rng.choice(np.flatnonzero(base == 0), 3, replace=False)] = 1
    drop = paired_difference(Ratio.mean(base), Ratio.mean(worse), 500, 0)
    assert drop["difference"] == pytest.approx(-0.15) and drop["significant"]
    noise = paired_difference(Ratio.mean(base), Ratio.mean(noisy), 500, 0)
    assert not noise["significant"]


def test_statistic_interval_matches_its_value_and_brackets_it():
    from paligemma_eval.harness.scores import Statistic

    rng = np.random.default_rng(2)
    hits, tries = rng.integers(0, 5, 400).astype(float), np.full(400, 5.0)
    statistic = Statistic({"hits": hits, "tries": tries}, lambda s: s["hits"] / s["tries"])
    ratio = Ratio(hits, tries)
    assert statistic.value == pytest.approx(ratio.value)
    ours = bootstrap({"s": statistic, "r": ratio}, resamples=300, seed=1)
    assert ours["s"] == ours["r"]   # same resamples, same function: the same interval
