"""Each task's `explain` (the sample browser's "why") agrees with the score its scorer gives."""

import re

import pytest

from paligemma_eval.harness import registry
from paligemma_eval.tasks.metrics.vqa_accuracy import vqa_accuracy


def explain(task: str, predictions: list[str], targets: list) -> list[dict]:
    return list(registry.all_tasks()[task].explain(predictions, targets))


@pytest.mark.parametrize("prediction, answers", [
    ("2", ["two"] * 5 + ["2"] * 2 + ["three"] * 3),      # disagreeing answers: normalised
    ("Yes", ["yes"] * 10),                                # all agree: compared as written
    ("red", ["red", "red", "blue"] + ["green"] * 7),
])
def test_vqa_why_counts_the_matches_the_official_rule_counts(prediction, answers):
    (why,) = explain("vqav2_val", [prediction], [{"answers": answers, "answer_type": None}])
    matches = int(re.match(r"(\d+) of 10", why["why"][0]).group(1))
    # the official leave-one-out rule, from the match count the why states
    expected = (matches * min(1, (matches - 1) / 3) + (10 - matches) * min(1, matches / 3)) / 10
    assert vqa_accuracy(prediction, answers) == pytest.approx(expected)
    assert why["references"] == answers
    assert ("normalisation" in why["why"][0]) and \
        (("reads '2'" in why["why"][0]) == (prediction == "2"))


def test_simple_anls_pope_and_mmvp_say_what_was_matched():
    (okvqa,) = explain("okvqa_val", ["cat"], [{"answers": ["cat", "cat", "dog"],
                                               "answer_type": None}])
    assert "2 of 3 answers equal the prediction exactly" in okvqa["why"][0]
    (anls,) = explain("docvqa_val", ["invoice"], [["Invoices", "receipt"]])
    assert "closest answer 'Invoices': similarity 0.875" in anls["why"][0]   # 1 - 1/8
    invalid, read = explain("pope_random", ["Yes, there is", "no"], ["yes", "no"])
    assert "invalid, counts wrong" in invalid["why"][0] and "read as 'no'" in read["why"][0]
    (mmvp,) = explain("mmvp", ["(b)"], [{"options": {"a": "open", "b": "closed"},
                                         "correct": "a", "pair": "7"}])
    assert mmvp["unit"] == "7" and "picked (b) 'closed'" in mmvp["why"][0] and \
        "question is wrong" in mmvp["why"][0]


def test_refcoco_why_draws_both_boxes_in_pixels_and_names_invalid_outputs():
    target = {"bbox": [10.0, 20.0, 30.0, 40.0], "height": 100, "width": 200,
              "segmentation": [10, 20, 40, 20, 40, 60, 10, 60]}
    # y1 x1 y2 x2 of 1023: x 10.0..40.0 of 200 px, y 20.0..60.0 of 100 px -> the reference box
    loc = [round(v * 1023) for v in (0.2, 0.05, 0.6, 0.2)]
    good, bad = explain("refcoco_val_detect", ["".join(f"<loc{v:04d}>" for v in loc) + " cat",
                                               "a cat"], [target, target])
    boxes = {b["role"]: b["xywh"] for b in good["boxes"]}
    assert boxes["reference"] == [10.0, 20.0, 30.0, 40.0]
    assert boxes["predicted"] == pytest.approx([10.0, 20.0, 30.0, 40.0], abs=0.2)
    assert good["polygons"] == [[10.0, 20.0, 40.0, 20.0, 40.0, 60.0, 10.0, 60.0]]
    assert re.search(r"box IoU 0\.99\d|box IoU 1\.000", good["why"][0])
    assert [b["role"] for b in bad["boxes"]] == ["reference"]
    assert "does not begin with four <loc> tokens" in bad["why"][0]


def test_text_spotting_explains_its_word_boxes_and_counts():
    target = {"size": [100, 200], "words": [
        {"vertices": [[20, 10], [60, 10], [60, 30], [20, 30]], "text": "Shop", "legible": True},
        {"vertices": [[100, 50], [140, 50], [140, 70], [100, 70]], "text": "###",
         "legible": False}]}
    # one word at exactly the first reference box (y 10-30 of 100, x 20-60 of 200), wrong case
    box = "".join(f"<loc{round(v * 1023):04d}>" for v in (0.1, 0.1, 0.3, 0.3))
    (item,) = explain("icdar2015_spotting", [f"{box} shop"], [target])
    assert item["boxes"] == [{"role": "predicted",
                              "xywh": pytest.approx([20.0, 10.0, 40.0, 20.0], abs=0.2)}]
    assert item["polygons"][0] == [20, 10, 60, 10, 60, 30, 20, 30]
    assert "0 of 1 legible words spotted" in item["why"][0]   # the box matches, "shop" != "Shop"
    assert "1 boxes found" in item["why"][0]
