"""reports/published.json against the model cards' own text (shared/seeds beside the repo)."""

import json
import re

import pytest

from paligemma_eval.reports import published
from tests.conftest import ROOT

SEEDS = ROOT.parent / "shared" / "seeds"

# (benchmark row, variant, value) read off the cards by hand.
CELLS = [("VQAv2 (minival)", "224-3B", 83.0), ("RefCOCOg (val)", "448-28B", 73.0),
         ("TextCaps", "448-10B", 157.7), ("DocVQA (val)", "448-3B", 73.6),
         ("ActivityNet-CAP", "224-10B", 35.9), ("POPE (random)", "pt-224", 87.80),
         ("POPE (adversarial)", "mix-448", 87.47), ("MMVP", "pt-448", 45.33),
         ("RefCOCO+ (val)", "pt-896", 72.18), ("COCO captions (val)", "pt-224", 141.92),
         ("TallyQA (complex)", "pt-448", 72.27), ("Total-Text (Precision)", "224-3B", 73.8),
         ("DOCCI (NES %)", "224-10B", 20.27)]


@pytest.mark.parametrize("benchmark, variant, expected", CELLS)
def test_cells(benchmark, variant, expected):
    assert published.value(benchmark, variant)[0] == expected


def test_safety_cells():
    cells = {(c["card"], c["size"], c["attribute"], c["grouping"], c["statistic"]): c["percent"]
             for c in published.load()["safety"]}
    assert cells[("paligemma2", "3B", "Threat", "ethnicity", "max")] == 0.83
    assert cells[("paligemma2", "28B", "Toxicity", "gender", "max")] == 0.19
    assert cells[("paligemma", "3B", "Insult", "age", "max")] == 0.16
    assert len(cells) == 5 * 3 * 2 * (1 + 3)


@pytest.mark.skipif(not SEEDS.exists(), reason="the model cards are not beside this checkout")
def test_the_cards_print_these_numbers():
    text = "\n".join(p.read_text() for p in SEEDS.glob("*model-card*"))
    assert re.search(r"\[VQAv2\]\[vqav2\] \(minival\) \| 83\.0 \|", text)
    assert re.search(r"POPE.*?87\.80", text, re.S)
    for benchmark, variant, expected in CELLS:
        assert str(expected) in text, (benchmark, expected)


def test_every_card_row_entry_names_exactly_one_card_row_of_a_registered_task():
    from paligemma_eval.harness import registry

    tasks = registry.all_tasks()
    entries = [e for rows in published.card_rows().values() for e in rows]
    assert len(entries) >= 30
    for entry in entries:
        row = published.card_row(entry)   # raises unless exactly one row matches
        if entry["task"] not in tasks:    # tests/test_card_rows.py lists the missing ones
            continue
        task = tasks[entry["task"]]
        # the metric exists: tests/test_tasks_end_to_end.py checks it in each fixture run
        # a validation split never sits beside a test-server or test-split number
        if task.source.split.startswith("val"):
            assert "test" not in row["benchmark"].lower() and \
                "test" not in row["metric"].lower(), entry


def test_tasks_without_the_cards_split_or_rule_have_no_card_row():
    rows = published.card_rows()
    for name in ("vqav2_val", "coco_cap_val2017", "coco_cap_karpathy_test", "okvqa_val_official",
                 "vizwiz_vqa_val_official", "pope_random_lenient", "refcoco_val",
                 "refcoco_val_detect"):
        assert name not in rows
    model = {"variant": "pt-224", "size": "3B", "family": "paligemma",
             "finetuned_for": ["okvqa_val", "textvqa_val"]}
    assert published.card_value("okvqa_val", "accuracy", model)["percent"] == 63.54
    assert published.card_value("textvqa_val", "accuracy", model) is None  # test server only


# Eval settings of big_vision's PaliGemma transfer configs
# (big_vision/configs/proj/paligemma/transfers/<file>: the eval pp's prompt, max_decode_len,
# resize(res[, antialias=True])) for every task that may stand beside a card number.
BIG_VISION_EVAL = {
    "coco_cap_karpathy_val": ("caption en", 32, "bilinear", "cococap.py"),
    "nocaps_val": ("caption en", 32, "bilinear", "cococap.py"),
    "textcaps_val": ("caption en", 32, "bilinear", "textcaps.py"),
    "okvqa_val": ("answer en {question}", 32, "bilinear-antialias", "okvqa.py"),
    "textvqa_val": ("answer en {question}", 32, "bilinear-antialias", "textvqa.py"),
    "vizwiz_vqa_val": ("answer en {question}", 48, "bilinear", "vizwizvqa.py"),
    "docvqa_val": ("{question}", 32, "bilinear-antialias", "docvqa.py"),
    "infovqa_val": ("answer en {question}", 48, "bilinear-antialias", "infovqa.py"),
    # pope.py's own default prefix is the bare question (a 0-shot pt model); the cards evaluate
    # the VQAv2 transfer, which was trained on `answer en {question}` (REFERENCE.md)
    **{f"pope_{split}": ("answer en {question}", 48, "bilinear", "pope.py")
       for split in ("random", "popular", "adversarial")},
    # test-server splits and VQAv2 minival (issue 22)
    "vqav2_minival": ("answer en {question}", 32, "bilinear-antialias", "vqav2.py"),
    "vqav2_test": ("answer en {question}", 32, "bilinear-antialias", "vqav2.py"),
    "textvqa_test": ("answer en {question}", 32, "bilinear-antialias", "textvqa.py"),
    "vizwiz_vqa_test": ("answer en {question}", 48, "bilinear", "vizwizvqa.py"),
    "docvqa_test": ("{question}", 32, "bilinear-antialias", "docvqa.py"),
    "infovqa_test": ("answer en {question}", 48, "bilinear-antialias", "infovqa.py"),
    "stvqa_test": ("answer en {question}", 48, "bilinear-antialias", "stvqa.py"),
    **{f"{name}_raw": ("{expression}", 48, "bilinear", "refcoco_seg.py")
       for name in ("refcoco_val", "refcoco_testA", "refcoco_testB", "refcocoplus_val",
                    "refcocoplus_testA", "refcocoplus_testB", "refcocog_val", "refcocog_test")},
    "nlvr2_test": ("answer en {sentence}", 64, "bilinear", "nlvr2.py"),
    "marvl": ("answer en {hypothesis}", 64, "bilinear", "nlvr2.py"),
    "msrvtt_cap_test": ("caption en", 32, "bilinear", "msrvtt_cap.py"),
    "msrvtt_qa_test": ("answer en {question}", 64, "bilinear", "msrvtt_qa.py"),
    "activitynet_cap_test": ("caption en", 64, "bilinear", "activitynet_cap.py"),
    "activitynet_qa_test": ("answer en {question}", 64, "bilinear", "activitynet_qa.py"),
    "vatex_test": ("caption en", 64, "bilinear", "vatex_cap.py"),
    "msvd_qa_test": ("answer en {question}", 64, "bilinear", "msvd_qa.py"),
    # The short-answer families (CARD_TASKS.md A6-A8, A11-A18). MC prompt: PREFIX 'answer en '
    # + ' {question} choose from: {ansstr}', options joined by ' \t '.
    **{f"aokvqa_da_{split}": ("answer en {question}", 32, "bilinear-antialias", "aokvqa_da.py")
       for split in ("val", "test")},
    **{f"aokvqa_mc_{split}": ("answer en  {question} choose from: {options}", 128,
                              "bilinear-antialias", "aokvqa_mc.py") for split in ("val", "test")},
    "gqa_testdev": ("answer en {question}", 32, "bilinear", "gqa.py"),
    "xgqa": ("answer en {question}", 32, "bilinear", "gqa.py"),
    "ocrvqa_test": ("answer en {question}", 32, "bilinear-antialias", "ocrvqa.py"),
    "ai2d_test": ("answer en  {question} choose from: {options}", 128, "bilinear", "ai2d.py"),
    "tallyqa_test": ("answer en {question}", 32, "bilinear-antialias", "tallyqa.py"),
    "countbenchqa": ("answer en {question}", 32, "bilinear-antialias", "tallyqa.py"),
    "chartqa_test": ("{question}", 48, "bilinear-antialias", "chartqa.py"),
    "scienceqa_img_test": ("Question: {question}\nContext: {hint}\nOptions: {indexed_choices}"
                           "\nAnswer:", 512, "bilinear", "science_qa.py"),
    "rsvqa_lr_test": ("answer en {question}", 32, "bilinear", "rsvqa_lr.py"),
    "rsvqa_hr_test": ("answer en {question}", 32, "bilinear", "rsvqa_hr.py"),
    "rsvqa_hr_test2": ("answer en {question}", 32, "bilinear", "rsvqa_hr.py"),
    "coco35l_dev": ("caption {language}", 32, "bilinear", "coco35l.py"),
    "xm3600": ("caption {source_split}", 32, "bilinear", "coco35l.py"),  # split = language
    "scicap_test": ("caption en", 96, "bilinear", "scicap.py"),
    "screen2words_test": ("caption en", 24, "bilinear", "screen2words.py"),
    "widgetcap_test": ("caption en", 32, "bilinear-antialias", "widgetcap.py"),
}

# Video configs' eval defaults: (num_frames, stride) of the frame reader.
BIG_VISION_FRAMES = {"msrvtt_cap_test": (16, 9), "msrvtt_qa_test": (16, 9),
                     "activitynet_cap_test": (16, 30), "activitynet_qa_test": (16, 70),
                     "vatex_test": (16, 7), "msvd_qa_test": (8, 26)}


def test_video_tasks_sample_frames_as_their_configs():
    from paligemma_eval.harness import registry

    tasks = registry.all_tasks()
    for name, (count, stride) in BIG_VISION_FRAMES.items():
        assert (tasks[name].frames.count, tasks[name].frames.stride) == (count, stride), name
    assert tasks["nlvr2_test"].image_columns == ("left_image", "right_image")   # left first


def test_every_card_linked_task_decodes_as_its_big_vision_config():
    from paligemma_eval.harness import registry

    tasks = registry.all_tasks()
    rows = json.loads(published.CARD_ROWS.read_text())["rows"]
    # PaliGemma 2's additional benchmarks have no big_vision config (CARD_TASKS.md §B)
    linked = {entry["task"] for entry in rows if entry["table"] != "additional benchmarks"}
    missing = sorted(linked - {"mmvp"} - set(BIG_VISION_EVAL))
    assert not missing, f"card-linked tasks without their config here: {', '.join(missing)}"
    for name, (prompt, tokens, resize, config) in BIG_VISION_EVAL.items():
        task = tasks[name]
        assert (task.prompt, task.max_new_tokens, task.resize) == (prompt, tokens, resize), \
            f"{name} differs from big_vision's {config}"
        # greedy, except captioning: cococap.py's beam_size=2, textcaps.py's beam_size=3
        assert task.num_beams == {"cococap.py": 2, "textcaps.py": 3}.get(config, 1), name


def test_prompts_are_cut_where_big_vision_cuts_them():
    """Every eval config cuts `<bos> prompt \n` to its text_len (combine_and_keep_eval's
    tolen), the decode length: a long question, not only a long option list (CARD_TASKS.md 0.1)."""
    from paligemma_eval.harness import registry

    tasks = registry.all_tasks()
    for name, (_, tokens, _, _) in BIG_VISION_EVAL.items():
        assert tasks[name].max_prompt_tokens == tokens, name


def test_a_checkpoint_config_run_is_never_paired_with_a_card_row():
    model = {"id": "/ck/mine", "variant": "224-3B", "size": "3B", "family": "paligemma2",
             "resolution": 224, "finetuned_for": ["okvqa_val"]}
    assert published.card_value("okvqa_val", "accuracy", model)["percent"] == 64.2
    assert published.card_value("okvqa_val", "accuracy",
                                {**model, "decode_config": "big_vision"})["percent"] == 64.2
    assert published.card_value("okvqa_val", "accuracy",
                                {**model, "decode_config": "checkpoint"}) is None
    # PaliGemma 1 has no final soft-cap or window: its decode config changes nothing
    v1 = {**model, "variant": "ft-224", "family": "paligemma", "decode_config": "checkpoint"}
    assert published.card_value("okvqa_val", "accuracy", v1)["percent"] == 63.54
