import pytest

from paligemma_eval.tasks.metrics.anls import anls, similarity


@pytest.mark.parametrize("answer, prediction, expected", [
    ("hello", "hello", 1.0),
    ("Hello", "hello ", 1.0),            # lower-cased and stripped
    ("abcd", "abce", 1 - 1 / 4),         # one substitution over length 4
    ("abcd", "ab", 1 - 2 / 4),           # nld 0.5 exactly -> 0, tested below
    ("abcdefghij", "abcdefgxyz", 1 - 3 / 10),
    ("", "", 1.0),                       # empty answer matches only an empty prediction
    ("", "x", 0.0),
    ("abc", "", 0.0),
])
def test_similarity(answer, prediction, expected):
    nld = 1 - expected
    want = 0.0 if nld >= 0.5 and answer + prediction else expected
    assert similarity(answer, prediction) == pytest.approx(want)


def test_exactly_half_scores_zero():
    assert similarity("abcd", "ab") == 0.0      # nld = 2/4 = 0.5, not < 0.5
    assert similarity("abcd", "abc") == pytest.approx(0.75)


def test_max_over_answers():
    assert anls("colour", ["color", "colour"]) == 1.0
    assert anls("color", ["colour", "xyz"]) == pytest.approx(1 - 1 / 6)
    assert anls("anything", []) == 0.0


def test_garbage_never_raises():
    assert anls("\x00" * 10_000, ["answer"]) == 0.0
