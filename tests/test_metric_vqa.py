import random

import pytest

from paligemma_eval.tasks.metrics.vqa_accuracy import normalize, vqa_accuracy
from tests.official_vqa_eval import official_accuracy


@pytest.mark.parametrize("prediction, answers, expected", [
    # 3 of the other 9 match for each of the 10 leave-one-out subsets -> 1.0
    ("yes", ["yes"] * 10, 1.0),
    # all-identical answers: no normalisation, so case matters (official behaviour)
    ("Yes", ["yes"] * 10, 0.0),
    # 2 matches: subsets dropping a match see 1 (1/3), the 8 others see 2 (2/3)
    ("red", ["red", "red"] + ["blue"] * 8, (2 * (1 / 3) + 8 * (2 / 3)) / 10),
    # number words become digits, articles go, once answers disagree
    ("two", ["2", "2", "2", "2", "3", "3", "3", "3", "3", "3"], (4 * 1 + 6 * 1) / 10),
    # 3 matches: the 3 subsets without one of them see 2 (2/3), the other 7 see 3 (1)
    ("the dog", ["dog", "dog", "dog", "cat"] + ["cats"] * 6, (3 * (2 / 3) + 7) / 10),
    # contractions restored: "dont" -> "don't"
    ("dont know", ["don't know"] * 3 + ["no"] * 7, (3 * (2 / 3) + 7 * 1) / 10),
    # a period next to digits is kept; at the end of a word it goes
    ("1.5", ["1.5"] * 4 + ["2"] * 6, 1.0),
    ("dog.", ["dog"] * 5 + ["cat"] * 5, 1.0),
    # 4 exact matches: every subset keeps at least 3
    ("cat", ["cat"] * 4 + ["dog"] * 6, 1.0),
    # "a" is an article: normalised to "", it matches an empty prediction (official behaviour)
    ("", ["a"] * 3 + ["b"] * 7, (3 * (2 / 3) + 7) / 10),
    ("", ["c"] * 3 + ["b"] * 7, 0.0),
])
def test_hand_computed_cases(prediction, answers, expected):
    assert vqa_accuracy(prediction, answers) == pytest.approx(expected)


def test_normalisation_rules():
    assert normalize("The Dog!") == "dog"
    assert normalize("10,000") == "10000"     # comma between digits: punctuation removed
    assert normalize("yes/no") == "yes no"     # punctuation inside a word becomes a space
    assert normalize("ten") == "10"
    assert normalize("an apple") == "apple"
    assert normalize("isnt") == "isn't"


def test_agrees_with_official_algorithm_on_generated_cases():
    rng = random.Random(7)
    vocabulary = ["yes", "Yes", "no", "2", "two", "Two.", "the dog", "dog", "a dog", "dogs",
                  "10,000", "10000", "dont", "don't", "red!", "red", "1.5", "x-ray", "x ray",
                  "isnt", "none", "0", "tv", "t.v.", " cat ", "cat\n"]
    cases = 0
    for _ in range(400):
        base = rng.choice(vocabulary)
        answers = [base if rng.random() < 0.6 else rng.choice(vocabulary) for _ in range(10)]
        prediction = rng.choice(vocabulary + [""])
        assert vqa_accuracy(prediction, answers) == pytest.approx(
            official_accuracy(prediction, answers)), (prediction, answers)
        cases += 1
    assert cases == 400


def test_garbage_scores_zero_without_raising():
    assert vqa_accuracy("\x00\xff" * 1000, ["yes"] * 10) == 0.0
    assert vqa_accuracy("yes", []) == 0.0


def test_big_vision_simple_rule_for_okvqa_and_vizwiz():
    from paligemma_eval.tasks.metrics.vqa_accuracy import simple_vqa_accuracy

    answers = ["red", "red", "blue", "green", "teal", "navy", "pink", "gray", "tan", "lime"]
    assert simple_vqa_accuracy("red", answers) == pytest.approx(2 / 3)
    assert simple_vqa_accuracy("red", ["red"] * 4) == 1.0
    # exact string match: no lower-casing, number words or articles
    two = ["2"] * 8 + ["two", "2"]
    assert simple_vqa_accuracy("Two", two) == 0.0
    assert vqa_accuracy("Two", two) == 1.0
    assert simple_vqa_accuracy("the red", ["red"] * 10) == 0.0


def test_card_comparable_tasks_use_the_card_rule():
    from paligemma_eval.harness import registry

    tasks = registry.all_tasks()
    assert tasks["okvqa_val"].scorer(["1"], ["Two"], [{"answers": ["2"] * 8 + ["two", "2"],
                                                      "answer_type": None}]).ratios[
        "accuracy"].value == 0.0
    assert tasks["okvqa_val_official"].scorer(["1"], ["Two"], [{"answers": ["2"] * 8 + ["two", "2"],
                                                               "answer_type": None}]).ratios[
        "accuracy"].value == 1.0
    assert tasks["vizwiz_vqa_val"].max_new_tokens == 48 and tasks["vizwiz_vqa_val"].resize == \
        "bilinear"
    assert tasks["vqav2_val"].resize == "bilinear-antialias"
