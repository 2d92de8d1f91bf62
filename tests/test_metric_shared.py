"""The rules shared by several task families: exact match and averages over languages."""

import numpy as np
import pytest

from paligemma_eval.harness.scores import bootstrap
from paligemma_eval.tasks.metrics.exact_match import any_exact_match, exact_match
from paligemma_eval.tasks.metrics.multilingual import group_average, per_group


def test_exact_match_keeps_case_and_spaces_unless_lowered():
    assert exact_match("Paris", "Paris") == 1.0
    assert exact_match("paris", "Paris") == 0.0          # case kept (AI2D, GQA)
    assert exact_match("paris", "Paris", lower=True) == 1.0   # OCR-VQA, RSVQA lower
    assert exact_match("Paris ", "Paris") == 0.0         # no strip, as big_vision
    assert any_exact_match("2", ["two", "2"]) == 1.0 and any_exact_match("3", []) == 0.0


def test_language_average_is_the_mean_of_per_language_means():
    # en: 3 examples, mean 1/3; de: 1 example, mean 1; zh: 2 examples, mean 0.5
    values = [1, 0, 0, 1, 1, 0]
    languages = ["en", "en", "en", "de", "zh", "zh"]
    assert group_average(values, languages).value == pytest.approx((1 / 3 + 1 + 0.5) / 3)
    non_en = group_average(values, languages, include=["de", "zh"])
    assert non_en.value == pytest.approx((1 + 0.5) / 2)
    ratios = per_group("acc", values, languages, {"avg2": ["de", "zh"], "avg": None})
    assert ratios["acc/en"].value == pytest.approx(1 / 3)
    assert ratios["acc/avg2"].value == pytest.approx(0.75)
    assert ratios["acc/avg"].value == pytest.approx(11 / 18)
    # a mean over examples would weigh en three times: 0.5, not the card's average
    assert np.mean(values) != pytest.approx(ratios["acc/avg"].value)


def test_language_average_has_an_interval_around_it():
    rng = np.random.default_rng(0)
    languages = ["a"] * 200 + ["b"] * 50
    values = np.r_[rng.random(200) < 0.9, rng.random(50) < 0.3].astype(float)
    ratio = group_average(values, languages)
    interval = bootstrap({"avg": ratio}, resamples=300, seed=1)["avg"]
    low, high = interval["ci95"]
    assert low < ratio.value < high and high - low < 0.2
