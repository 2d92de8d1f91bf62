"""The short-answer families of issue 22: each rule on hand-made predictions taken from its
big_vision evaluator, each prompt as big_vision builds it, the data joins, and a run of every
task on tiny-paligemma2 (the parametrised end-to-end test runs them on tiny-paligemma)."""

import dataclasses
import json
import math

import pytest

from paligemma_eval.harness import registry
from paligemma_eval.harness.errors import DatasetError
from paligemma_eval.harness.registry import DatasetSource, Nested
from paligemma_eval.harness.runner import RunOptions, prepare, run_task
from paligemma_eval.tasks import aokvqa, chartqa, gqa, rsvqa, scienceqa, tallyqa
from paligemma_eval.tasks.metrics.multiple_choice import correct_option
from paligemma_eval.tasks.metrics.number_words import count_match, number_word_to_numeral
from paligemma_eval.tasks.metrics.relaxed_match import relaxed_match

QA_TASKS = ["aokvqa_da_val", "aokvqa_mc_val", "aokvqa_da_test", "aokvqa_mc_test", "gqa_testdev",
            "xgqa", "ocrvqa_test", "ai2d_test", "tallyqa_test", "countbenchqa", "chartqa_test",
            "scienceqa_img_test", "rsvqa_lr_test", "rsvqa_hr_test", "rsvqa_hr_test2"]


def task(name):
    return registry.all_tasks()[name]


def ids(n):
    return [str(i) for i in range(n)]


# ---- prompts, byte for byte -------------------------------------------------------------------

def test_multiple_choice_prompt_has_big_visions_double_space_and_tab_separators():
    row = {"question": "What is the man by the bags awaiting?",
           "choices": ["skateboarder", "train", "delivery", "cab"], "correct_choice_idx": 3}
    expected = ("answer en  What is the man by the bags awaiting? choose from: "
                "skateboarder \t train \t delivery \t cab")
    assert task("aokvqa_mc_val").format_prompt(row) == expected
    assert task("aokvqa_mc_val").target(row) == {"answer": "cab", "options": row["choices"]}
    ai2d_row = {"question": "Which label is the sun?", "options": ["A", "b", "C"], "answer": "1"}
    assert task("ai2d_test").format_prompt(ai2d_row) == \
        "answer en  Which label is the sun? choose from: A \t b \t C"
    assert task("ai2d_test").target(ai2d_row)["answer"] == "b"
    with pytest.raises(IndexError):
        correct_option(["a", "b"], "2")


def test_scienceqa_prompt_is_question_context_options_answer_with_na_hint():
    row = {"question": "Which of these is a mammal?", "hint": "", "choices": ["frog", "cow"],
           "answer": 1}
    assert task("scienceqa_img_test").format_prompt(row) == (
        "Question: Which of these is a mammal?\nContext: N/A\nOptions: (A) frog, (B) cow\n"
        "Answer:")
    assert task("scienceqa_img_test").target(row) == "The answer is B."
    assert "Context: It lives on a farm.\n" in task("scienceqa_img_test").format_prompt(
        {**row, "hint": "It lives on a farm."})


def test_chartqa_prompt_is_the_bare_question_and_countbench_omits_the_caption():
    assert task("chartqa_test").format_prompt({"question": "What is the peak?"}) == \
        "What is the peak?"
    assert task("countbenchqa").format_prompt(
        {"question": "How many dogs?", "text": "three dogs on grass"}) == "answer en How many dogs?"


# ---- rules on hand-made predictions -----------------------------------------------------------

def test_chartqa_relaxed_match_as_big_vision():
    assert relaxed_match("10.4", "10") == 1.0        # 4% off: within 5%
    assert relaxed_match("10.6", "10") == 0.0        # 6% off
    assert relaxed_match("ten", "10") == 0.0         # not a number: exact string needed
    assert relaxed_match("0.5", "0") == 0.0 and relaxed_match("0", "0") == 1.0  # target 0: exact
    assert relaxed_match("50%", "0.5") == 1.0        # "%" divides by 100
    assert relaxed_match("10%", "10") == 0.0
    assert relaxed_match("Yes", "yes") == 1.0        # both lower-cased (to_lower=True)


def test_chartqa_mean_is_the_mean_of_the_two_split_accuracies():
    targets = [{"answer": "10", "split": "human"}, {"answer": "yes", "split": "human"},
               *({"answer": "5", "split": "augmented"} for _ in range(4))]
    predictions = ["10.4", "no", "5", "ten", "4", "6"]   # human 1/2, augmented 1/4
    scores = chartqa.score(ids(6), predictions, targets)
    assert scores.ratios["accuracy/human"].value == pytest.approx(0.5)
    assert scores.ratios["accuracy/augmented"].value == pytest.approx(0.25)
    assert scores.ratios["accuracy/mean"].value == pytest.approx(0.375)   # pooled: 2/6


def test_tallyqa_number_words_and_simple_complex_split():
    assert number_word_to_numeral("two") == "2" and number_word_to_numeral("None") == "0"
    assert count_match("two", "2") == 1.0 and count_match("Twenty", "20") == 1.0
    assert count_match("2", "two") == 1.0            # the reference is mapped too
    assert count_match("two apples", "2") == 0.0 and count_match(" 2", "2") == 0.0
    assert count_match("twenty-one", "21") == 0.0    # the map stops at twenty
    targets = [{"answer": "2", "simple": True}, {"answer": "3", "simple": True},
               {"answer": "0", "simple": False}]
    scores = tallyqa.score_tallyqa(ids(3), ["two", "2", "none"], targets)
    assert scores.ratios["accuracy/simple"].value == 0.5
    assert scores.ratios["accuracy/complex"].value == 1.0
    assert scores.ratios["accuracy"].value == pytest.approx(2 / 3)


def test_scienceqa_needs_the_answer_sentence_at_the_start():
    assert scienceqa.answer_letter("The answer is B.") == "b"
    targets = ["The answer is B."] * 5
    predictions = ["The answer is B.", "the answer is b. Because cows", "B",
                   "The answer is B", "So the answer is B."]
    scores = scienceqa.score(ids(5), predictions, targets)
    assert scores.ratios["accuracy"].value == pytest.approx(2 / 5)
    assert scores.ratios["parse_failed"].value == pytest.approx(3 / 5)


def test_ai2d_and_gqa_keep_case_ocrvqa_lowers():
    ai2d = task("ai2d_test").scorer
    circle = {"answer": "circle", "options": ["Circle", "circle"]}
    assert ai2d(ids(2), ["Circle", "circle"], [circle, circle]).ratios["accuracy"].value == 0.5
    assert gqa.score_gqa(ids(2), ["Yes", "yes"], ["yes", "yes"]).ratios["accuracy"].value == 0.5
    ocr = task("ocrvqa_test").scorer
    assert ocr(ids(2), ["harry potter", "Harry"], ["Harry Potter", "Harry Potter"]
               ).ratios["accuracy"].value == 0.5


def test_aokvqa_direct_answer_is_min_one_matches_over_three_without_normalisation():
    answers = ["cab", "cab", "taxi", "Cab", "cab.", "car", "taxi", "taxi", "taxi", "bus"]
    scores = aokvqa.score_direct(ids(4), ["cab", "taxi", "Cab", "car"], [answers] * 4)
    values = scores.ratios["accuracy"].num
    assert list(values) == pytest.approx([2 / 3, 1.0, 1 / 3, 1 / 3])


def test_aokvqa_test_splits_write_the_leaderboard_file():
    rows = [{"id": "22MexNkBPpdZGX6sxbxVBH", "prediction": "cab"}]
    assert task("aokvqa_mc_test").submission(rows) == \
        {"22MexNkBPpdZGX6sxbxVBH": {"multiple_choice": "cab"}}
    assert task("aokvqa_da_test").submission(rows) == \
        {"22MexNkBPpdZGX6sxbxVBH": {"direct_answer": "cab"}}
    assert task("aokvqa_mc_test").scorer is None


def test_rsvqa_type_mean_by_hand_and_numeric_types_dropped():
    targets = [{"answers": ["yes"], "type": "comp"}, {"answers": ["no"], "type": "comp"},
               {"answers": ["yes"], "type": "presence"}, {"answers": ["yes"], "type": "presence"},
               {"answers": ["rural"], "type": "rural_urban"}]
    predictions = ["Yes", "no", "yes", "no", "urban"]   # comp 2/2, presence 1/2, rural_urban 0/1
    scores = rsvqa.score(ids(5), predictions, targets)
    assert scores.ratios["accuracy/type_mean"].value == pytest.approx((1 + 0.5 + 0) / 3)
    assert scores.ratios["accuracy"].value == pytest.approx(3 / 5)     # overall, not the card's
    keep = rsvqa.non_numeric("RSVQA-HR")
    assert keep({"id": 1, "type": "presence"}) and keep({"id": 2, "type": "area"}) == []
    assert rsvqa.non_numeric("RSVQA-LR")({"id": 3, "type": "rural_urban"})
    with pytest.raises(DatasetError, match="unknown type 'colour'"):
        keep({"id": 5, "type": "colour"})


def test_xgqa_averages_over_languages_avg7_without_english():
    targets = [{"answer": "yes", "language": "en"}] * 2 + \
        [{"answer": "yes", "language": "de"}] + [{"answer": "no", "language": "zh"}] * 2
    predictions = ["yes", "yes", "yes", "no", "No"]      # en 1, de 1, zh 1/2 (case kept)
    scores = gqa.score_xgqa(ids(5), predictions, targets)
    assert scores.ratios["accuracy/avg7"].value == pytest.approx((1 + 0.5) / 2)
    assert scores.ratios["accuracy/avg8"].value == pytest.approx((1 + 1 + 0.5) / 3)
    assert scores.ratios["accuracy/zh"].value == 0.5


# ---- data: nested configs, several splits, flattened rows --------------------------------------

def test_gqa_questions_are_nested_into_their_images(data_dir):
    prepared = prepare(task("gqa_testdev"), data_dir, None)
    assert len(prepared.ids) == 24 and prepared.ids[:3] == ["n0#0", "n0#1", "n0#2"]
    assert len(set(prepared.row_of.values())) == 8          # 8 images, each decoded once
    assert prepared.provenance["nested"]["config"] == "testdev_balanced_instructions"
    assert prepared.prompts["n0#0"].startswith("answer en ")


def test_a_question_without_its_image_fails_the_load(data_dir, tmp_path):
    import shutil

    import datasets

    root = tmp_path / "lmms-lab" / "GQA"
    shutil.copytree(data_dir / "lmms-lab" / "GQA", root)
    path = root / "testdev_balanced_instructions" / "testdev.parquet"
    questions = datasets.Dataset.from_parquet(str(path)).to_list()
    questions.append({**questions[0], "id": "9999", "imageId": "n404"})
    datasets.Dataset.from_list(questions).to_parquet(str(path))
    with pytest.raises(DatasetError, match="1 imageId value.*'n404'"):
        prepare(task("gqa_testdev"), tmp_path, None)


def test_a_pinned_revision_reaches_the_nested_config(monkeypatch):
    from paligemma_eval.harness import data

    asked = []

    def fake_load_dataset(hub_id, config, split, revision):
        asked.append((config, revision))
        import datasets

        if config == "testdev_balanced_images":
            return datasets.Dataset.from_list([{"id": "n1", "image": None}])
        return datasets.Dataset.from_list([{"imageId": "n1", "question": "q?", "answer": "a"}])

    monkeypatch.setattr(data.datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setattr(data, "resolved_revision", lambda source: source.revision)
    source = dataclasses.replace(task("gqa_testdev").source, revision="abc123")
    loaded = data.load(source, None, "image")
    assert asked == [("testdev_balanced_images", "abc123"),
                     ("testdev_balanced_instructions", "abc123")]
    assert loaded.rows[0]["questions"] == [{"question": "q?", "answer": "a"}]
    assert loaded.provenance["nested"]["revision"] == "abc123"


def test_xgqa_reads_every_language_split_tagged(data_dir):
    prepared = prepare(task("xgqa"), data_dir, None)
    languages = [t["language"] for t in prepared.targets.values()]
    assert sorted(set(languages)) == sorted(gqa.LANGUAGES) and len(languages) == 8 * 8
    assert list(prepared.provenance["splits"]) == list(gqa.LANGUAGES)
    assert languages[:8] == list(gqa.LANGUAGES)   # interleaved: --limit 8 is one per language


def test_a_missing_language_split_is_named(data_dir):
    from paligemma_eval.harness import data

    partial = data.load(DatasetSource("neulab/PangeaBench-xgqa", "bn+xx", split_column="language"),
                        data_dir, "image")
    assert partial.provenance["absent_splits"] == ["xx"]   # recorded; card pairing needs none
    with pytest.raises(DatasetError, match="PangeaBench-xgqa.*one of its splits"):
        data.load(DatasetSource("neulab/PangeaBench-xgqa", "xx+yy", split_column="language"),
                  data_dir, "image")
    assert isinstance(task("gqa_testdev").source.nested, Nested)


def test_rows_with_question_lists_are_flattened(data_dir):
    ocr = prepare(task("ocrvqa_test"), data_dir, None)
    assert len(ocr.ids) == 24 and ocr.ids[0] == "100000#0"
    tally = prepare(task("tallyqa_test"), data_dir, None)
    kinds = [t["simple"] for t in tally.targets.values()]
    assert kinds.count(True) == kinds.count(False) == 12
    with pytest.raises(DatasetError, match="image 7: 2 questions but 1 answers"):
        task("ocrvqa_test").expand({"image_id": "7", "questions": ["a", "b"], "answers": ["x"]})
    lr = prepare(task("rsvqa_lr_test"), data_dir, None)     # count questions skipped
    assert len(lr.ids) == 8 * 3 and {t["type"] for t in lr.targets.values()} == \
        {"comp", "presence", "rural_urban"}


# ---- every task on the PaliGemma 2 tiny model ---------------------------------------------------

@pytest.fixture(scope="module")
def tiny_paligemma2():
    from paligemma_eval.harness.loading import load_model

    return load_model("tiny-paligemma2", device="cpu")


@pytest.mark.parametrize("name", QA_TASKS)
def test_task_runs_on_tiny_paligemma2(name, tmp_path, data_dir, tiny_paligemma2):
    result = run_task(tiny_paligemma2, task(name), RunOptions(
        out=tmp_path, data_dir=data_dir, limit=1, batch_size=4, resamples=20))
    assert result["failed"] == []
    if task(name).submission:
        assert len(json.loads((tmp_path / result["submission"]).read_text())) == 1
        return
    headline = result["metrics"][task(name).headline]
    assert 0 <= headline["value"] <= 1 and math.isfinite(headline["value"])
