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


# --- every scored task: one explanation per example, agreeing with its scorer ---------------

SCORED = [name for name, task in registry.all_tasks().items()
          if task.scorer is not None and not name.startswith("example")]
CLAIM = re.compile(r"scores (-?[\d.]+(?:e-?\d+)?)")


def unit_values(task, scores, unit: str) -> dict[str, float]:
    """The scorer's per-unit value of the headline, or of its family (`accuracy/<group>`) for
    a unit the headline leaves out (TallyQA's complex questions, xGQA's English)."""
    family = task.headline.split("/")[0]
    index = scores.units.index(unit)
    return {name: ratio.num[index] / ratio.den[index] for name, ratio in scores.ratios.items()
            if (name == task.headline or name.split("/")[0] == family) and ratio.den[index]}


@pytest.mark.parametrize("name", SCORED)
def test_every_scored_task_explains_each_example_as_its_scorer_scores_it(name, data_dir):
    from paligemma_eval.harness.runner import prepare

    task = registry.all_tasks()[name]
    prepared = prepare(task, data_dir, 4)
    ids = [i for i in prepared.ids if i in prepared.targets]
    targets = [prepared.targets[i] for i in ids]
    first = [(e["references"] or [""])[0] for e in task.explain([""] * len(ids), targets)]
    # right, wrong in case, padded, wrong: each rule's cases where normalisation matters
    variants = [lambda r: r, str.upper, lambda r: f" {r}", lambda r: "zzz"]
    predictions = [variants[k % 4](r) for k, r in enumerate(first)]
    explained = list(task.explain(predictions, targets))
    assert len(explained) == len(ids)
    for item in explained:
        assert item["references"] and all(isinstance(r, str) for r in item["references"])
        assert item["why"] and all(isinstance(line, str) and line for line in item["why"])
    claims = [[float(v) for v in CLAIM.findall(" ".join(e["why"]))] for e in explained]
    if not any(claims):
        return     # corpus metrics and localisation: the why describes, the score is the run's
    scores = task.scorer(ids, predictions, targets)
    for unit, claim, prediction in zip(ids, claims, predictions):
        values = unit_values(task, scores, unit)
        assert len(claim) == 1 and values, (unit, prediction, claim)
        assert all(claim[0] == pytest.approx(v, abs=5e-4) for v in values.values()), \
            (unit, prediction, claim, values)


# --- each shared rule's explain, on hand-made cases ------------------------------------------

def unit_score(name: str, prediction: str, target) -> float:
    """The task's own scorer on one example: its headline's (or family's) value."""
    task = registry.all_tasks()[name]
    (value, *_) = unit_values(task, task.scorer(["0"], [prediction], [target]), "0").values()
    return value


def claimed(item: dict) -> float:
    (value,) = CLAIM.findall(" ".join(item["why"]))
    return float(value)


@pytest.mark.parametrize("name, prediction, target, says, score", [
    # case kept (GQA): "Cat" is not "cat", and the why says it is only the case
    ("gqa_testdev", "Cat", "cat", "'Cat' differs from the reference 'cat'", 0.0),
    ("gqa_testdev", " cat", "cat", "differ only in case or surrounding spaces", 0.0),
    # lower-cased (OCR-VQA): both sides shown lower-cased, then equal
    ("ocrvqa_test", "The Hobbit", "the hobbit", "'the hobbit' equals the reference 'the hobbit'",
     1.0),
    # several references (RSVQA), lower-cased: which one matched
    ("rsvqa_lr_test", "YES", {"answers": ["no", "yes"], "type": "presence"},
     "'yes' equals one of the 2 references, 'yes'", 1.0),
    ("rsvqa_lr_test", "maybe", {"answers": ["no", "yes"], "type": "presence"},
     "equals none of the 2 references", 0.0),
    # multiple choice (AI2D, A-OKVQA MC): the correct option's text, case kept
    ("ai2d_test", "Circle", {"answer": "circle", "options": ["square", "circle"]},
     "differs from the correct option's text 'circle'", 0.0),
    ("aokvqa_mc_val", "a dog", {"answer": "a dog", "options": ["a cat", "a dog"]},
     "equals the correct option's text 'a dog'", 1.0),
    # VSR: lower-cased True / False, and an answer that is neither
    ("vsr_random_test", "TRUE", "True", "'true' equals the reference 'true'", 1.0),
    ("vsr_random_test", "yes", "True", "counts against valid_share", 0.0),
    # A-OKVQA DA: big_vision's simple rule, min(1, matches / 3), no normalisation
    ("aokvqa_da_val", "dog", ["dog", "dog", "Dog", "cat"] + ["x"] * 6,
     "2 of 10 answers equal the prediction exactly", 2 / 3),
])
def test_exact_match_family_names_what_was_compared(name, prediction, target, says, score):
    (item,) = registry.all_tasks()[name].explain([prediction], [target])
    assert says in " ".join(item["why"])
    assert claimed(item) == pytest.approx(score, abs=5e-4)
    assert unit_score(name, prediction, target) == pytest.approx(score)


@pytest.mark.parametrize("name", ["ai2d_test", "aokvqa_mc_val"])
@pytest.mark.parametrize("prediction, says", [
    ("a bus", "the prediction is the text of option 3 of the 4; the correct one is option 1"),
    ("a cab", "the prediction is the text of option 1 of the 4; the correct one is option 1"),
    ("A cab", "the prediction is none of the 4 options' texts (an answer outside the choices); "
              "the correct one is option 1"),
])
def test_multiple_choice_names_the_option_picked(name, prediction, says):
    task = registry.all_tasks()[name]
    columns = {"ai2d_test": ("options", "answer"), "aokvqa_mc_val": ("choices",
                                                                     "correct_choice_idx")}[name]
    row = {columns[0]: ["a cab", "a train", "a bus", "a car"], columns[1]: "0"}
    target = task.target(row)
    (item,) = task.explain([prediction], [target])
    assert item["why"][-1] == says
    assert unit_score(name, prediction, target) == float(prediction == "a cab")


@pytest.mark.parametrize("prediction, answer, says, score", [
    ("12.5", "12", "prediction 12.5, answer 12: relative error 4.17% within 5%", 1.0),
    ("12.7", "12", "prediction 12.7, answer 12: relative error 5.83% above 5%", 0.0),
    ("5%", "0.05", "prediction 0.05, answer 0.05", 1.0),           # "%" divides by 100
    ("0.0", "0", "the answer is 0 (no relative error exists): exact match", 0.0),
    ("Yes", "yes", "the answer is not a number: exact match after lower-casing, 'yes' vs 'yes'",
     1.0),
    ("twelve", "12", "the prediction is not a number", 0.0),
])
def test_relaxed_match_names_the_numbers_and_the_tolerance(prediction, answer, says, score):
    target = {"answer": answer, "split": "human"}
    (item,) = registry.all_tasks()["chartqa_test"].explain([prediction], [target])
    assert says in item["why"][0] and claimed(item) == score
    assert "human split: counted in accuracy/human" in item["why"][1]
    assert unit_score("chartqa_test", prediction, target) == score


def test_number_words_show_both_sides_after_the_rule():
    tally = registry.all_tasks()["tallyqa_test"]
    two, apples = tally.explain(["Two", "two apples"], [{"answer": "2", "simple": True},
                                                        {"answer": "2", "simple": False}])
    assert "prediction 'Two' read as '2', answer '2': scores 1" in two["why"][0]
    assert "prediction 'two apples', answer '2': scores 0" in apples["why"][0]
    assert "not in the headline accuracy/simple" in apples["why"][1]
    assert unit_score("tallyqa_test", "Two", {"answer": "2", "simple": True}) == 1.0
    (none,) = registry.all_tasks()["countbenchqa"].explain(["none"], ["zero"])
    assert "'none' read as '0', answer 'zero' read as '0': scores 1" in none["why"][0]


def test_groups_say_which_average_counts_the_example():
    xgqa = registry.all_tasks()["xgqa"]
    english, german = xgqa.explain(["yes", "no"], [{"answer": "yes", "language": "en"},
                                                   {"answer": "yes", "language": "de"}])
    assert "accuracy/en" in english["why"][1] and "not in avg7" in english["why"][1]
    assert "accuracy/de" in german["why"][1] and "avg7 (the headline)" in german["why"][1]
    (marvl,) = registry.all_tasks()["marvl"].explain(["True"], [{"answer": "True",
                                                                 "language": "sw"}])
    assert "accuracy/sw" in marvl["why"][1] and claimed(marvl) == 1.0


def test_scienceqa_names_the_parsed_letter_and_the_right_one():
    task = registry.all_tasks()["scienceqa_img_test"]
    wrong, failed = task.explain(["The answer is B.", "B"], ["The answer is A."] * 2)
    assert "read letter 'b'; the correct letter is 'a': scores 0" in wrong["why"][0]
    assert "parse failed" in failed["why"][0] and claimed(failed) == 0.0
    assert unit_score("scienceqa_img_test", "the answer is a.", "The answer is A.") == 1.0


def test_kern_states_this_examples_edits_over_its_length_as_the_rate_counts_them():
    from paligemma_eval.tasks.grandstaff import score_kern

    reference, prediction = "**kern\n4c\t4e\n=2", "**kern\n4c\t4d\n=7"
    (item,) = registry.all_tasks()["grandstaff_test"].explain([prediction], [reference])
    scores = score_kern(["0"], [prediction], [reference])
    for name, unit in (("cer", "characters"), ("ser", "symbols"), ("ler", "lines")):
        found = re.search(rf"{name.upper()} (\d+) edits / (\d+) {unit}", item["why"][0])
        ratio = scores.ratios[name]
        assert (int(found.group(1)), int(found.group(2))) == (ratio.num[0], ratio.den[0])
    # bar numbers after "=" are removed: only 4d / 4e differs, one character of 14
    assert "CER 1 edits / 14 characters" in item["why"][0]
    assert "corpus-level" in item["why"][1] and item["references"] == [reference]


def test_tables_say_whether_a_table_parsed_and_what_teds_divides_by():
    from paligemma_eval.tasks.metrics.tables import teds

    reference = "<table><tr><td>a</td><td>b</td></tr></table>"
    half = '<table><tr><td coords="<loc0001><loc0002><loc0003><loc0004>">a</td></tr></table>'
    parsed, cut = registry.all_tasks()["pubtabnet_val"].explain([half, "<table><tr><td>a"],
                                                                 [reference, reference])
    assert "1 cells, the reference 2" in parsed["why"][0]
    assert "1 - tree edit distance / 3 nodes" in parsed["why"][1]
    assert teds(half.replace(' coords="<loc0001><loc0002><loc0003><loc0004>"', ""),
                reference) == pytest.approx(1 - 1 / 3)        # one td deleted, of 3 nodes
    assert "counted in unparsable_share" in cut["why"][0]


def test_smiles_string_and_canonical_match():
    pytest.importorskip("rdkit")
    (item,) = registry.all_tasks()["pubchem_test"].explain(["OCC"], ["CCO"])
    assert "differs from the reference SMILES string: scores 0" in item["why"][0]
    assert "canonical_match 1: RDKit canonical 'CCO' vs 'CCO'" in item["why"][1]
    task = registry.all_tasks()["pubchem_test"]
    scores = task.scorer(["0"], ["OCC"], ["CCO"])
    assert scores.ratios["canonical_match"].num[0] == 1.0
    assert scores.ratios["full_match"].num[0] == 0.0


def test_caption_lengths_and_cider_explain_what_the_score_is():
    from paligemma_eval.tasks.metrics.caption_length import count_characters

    caption = "A red circle. It sits on grass"
    (docci,) = registry.all_tasks()["docci_qual_dev"].explain([caption], ["A circle."])
    assert docci["why"][0].startswith(f"{count_characters(caption)} characters and 2 sentences "
                                      f"(the reference: 9 and 1)")
    for name, frequencies in (("msrvtt_cap_test", "the whole reference set"),
                              ("xm3600", "its language's references")):
        target = {"references": ["a dog runs", "a dog"], "domain": None, "language": "de"}
        (item,) = registry.all_tasks()[name].explain(["a dog"], [target])
        assert item["references"] == ["a dog runs", "a dog"]
        assert "CIDEr-D against its 2 references" in item["why"][0]
        assert frequencies in item["why"][0]
    (report,) = registry.all_tasks()["mimic_cxr_test"].explain(["clear"], ["No effusion."])
    assert report["references"] == ["No effusion."] and "its 1 reference " in report["why"][0]


# --- end to end: the browser shows the why of newly covered tasks ---------------------------

BROWSED = ("chartqa_test", "tallyqa_test", "grandstaff_test")


def test_browse_writes_the_why_and_references_of_each_example(tmp_path, data_dir):
    import json
    import subprocess

    from tests.conftest import cli

    run = tmp_path / "run"
    for command in (("run", "--model", "tiny-paligemma", "--tasks", ",".join(BROWSED),
                     "--limit", "8", "--bootstrap", "20", "--output", str(run)),
                    ("browse", str(run), "--output", str(run / "browser"))):
        done = subprocess.run(cli(*command, "--data-dir", str(data_dir)), capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    manifest = (run / "browser" / "data" / "manifest.js").read_text()
    pages = json.loads(manifest[len("BROWSE.manifest("):-len(");\n")])["tasks"]
    assert [p["name"] for p in pages] == list(BROWSED)
    for page in pages:
        chunk = (run / "browser" / "data" / f"t{page['number']}" / "c0.js").read_text()
        records = json.loads(chunk[chunk.index("["):-len(");\n")])
        assert len(records) == page["n"] > 0
        for record in records:
            (shown,) = record["runs"]
            assert record["references"] and shown["why"], (page["name"], record)
            if shown["score"] is None:       # TallyQA's complex questions: not in the headline
                assert "not in the headline" in shown["why"][-1]
            elif page["name"] == "grandstaff_test":   # the example's CER, as the run scored it
                cer = float(re.search(r"CER \d+ edits / \d+ characters = ([\d.e-]+)",
                                      shown["why"][0]).group(1))
                assert cer == pytest.approx(shown["score"], rel=1e-3)
            else:                            # the why's score is the run's score
                assert claimed(shown) == pytest.approx(shown["score"], abs=5e-4)
