"""The captioning transfers' rules on hand-made inputs: per-language CIDEr (COCO-35L, XM3600),
the language averages, SciCap's BLEU-4, Widget Captioning's drawn box, and the data readers."""

import json

import numpy as np
import pytest
from PIL import Image
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

from paligemma_eval.harness import data, registry
from paligemma_eval.harness.errors import DatasetError
from paligemma_eval.harness.registry import SPLIT_COLUMN
from paligemma_eval.harness.runner import RunOptions, run_task
from paligemma_eval.tasks.metrics.captioning import cider_per_group
from paligemma_eval.tasks.multilingual_captioning import read_coco35l, scorer
from paligemma_eval.tasks.transfer_captioning import draw_box


def pycocoevalcap_cider(predictions, references):
    """big_vision's coco_caption evaluator on one reference set (one language)."""
    tokenizer = PTBTokenizer()
    keys = [str(k) for k in range(len(predictions))]
    gts = tokenizer.tokenize({k: [{"caption": c} for c in r] for k, r in zip(keys, references)})
    res = tokenizer.tokenize({k: [{"caption": p}] for k, p in zip(keys, predictions)})
    return Cider().compute_score(gts, res)


SHARED = ("a red circle", ["a red circle on white", "red circle"])
# Language xa: red circles everywhere, so "red circle" is common and weighs little; in xb rare.
XA = [("a red circle", ["red circle on black", "a red circle"]),
      ("red circles", ["two red circles", "red circles on gray"])]
XB = [("a blue square", ["a blue square on white", "blue square"]),
      ("green triangles", ["two green triangles", "green triangles on gray"])]


def test_each_language_is_scored_with_its_own_document_frequencies():
    examples = [SHARED, *XA, SHARED, *XB]
    languages = ["xa"] * 3 + ["xb"] * 3
    ids = [f"{k}" for k in range(6)]
    values = cider_per_group([p for p, _ in examples], [r for _, r in examples], ids, languages)
    # the same caption against the same references scores differently under the two languages
    assert values[0] != pytest.approx(values[3], abs=1e-6)
    # each language equals pycocoevalcap run on that language alone (big_vision: one evaluator
    # per language), and not one evaluation over both languages pooled
    for start in (0, 3):
        part = examples[start:start + 3]
        _, alone = pycocoevalcap_cider([p for p, _ in part], [r for _, r in part])
        np.testing.assert_allclose(values[start:start + 3], alone, rtol=1e-12)
    _, pooled = pycocoevalcap_cider([p for p, _ in examples], [r for _, r in examples])
    assert not np.allclose(values, pooled)


def test_avg34_is_the_mean_of_the_non_english_languages_and_avg_of_all():
    en = [("a red circle", ["a red circle on white", "red circle"]),
          ("two blue squares", ["two blue squares", "blue squares on black"])]
    de = [("ein roter kreis", ["ein roter kreis", "roter kreis auf weiß"]),
          ("zwei blaue quadrate", ["zwei quadrate", "blaue quadrate"]),
          ("drei grüne dreiecke", ["drei grüne dreiecke", "grüne dreiecke auf grau"])]
    zh = [("红色圆形", ["红色圆形", "一个红色圆形"]),
          ("蓝色正方形", ["两个蓝色正方形", "蓝色正方形"])]
    rows = [*(("en", e) for e in en), *(("de", e) for e in de), *(("zh", e) for e in zh)]
    ids = [str(k) for k in range(len(rows))]
    targets = [{"references": refs, "language": lang} for lang, (_, refs) in rows]
    scores = scorer("avg34")(ids, [p for _, (p, _) in rows], targets)
    mean = {lang: float(np.mean(pycocoevalcap_cider([p for p, _ in part],
                                                    [r for _, r in part])[1]))
            for lang, part in (("en", en), ("de", de), ("zh", zh))}
    ratios = scores.ratios
    for lang in mean:
        assert ratios[f"cider/{lang}"].value == pytest.approx(mean[lang], rel=1e-12)
    assert ratios["cider/avg34"].value == pytest.approx((mean["de"] + mean["zh"]) / 2, rel=1e-12)
    assert ratios["cider/avg"].value == pytest.approx(sum(mean.values()) / 3, rel=1e-12)
    # a mean over languages, not over examples (de has three examples, en and zh two)
    pooled = np.mean([v for lang, part in (("en", en), ("de", de), ("zh", zh))
                      for v in pycocoevalcap_cider([p for p, _ in part], [r for _, r in part])[1]])
    assert ratios["cider/avg"].value != pytest.approx(pooled, rel=1e-6)
    assert "3 present: de, en, zh; avg34 over 2 (de, zh)" in scores.notes["languages"]


def test_scicap_bleu4_is_element_3_of_pycocoevalcap_bleu():
    task = registry.all_tasks()["scicap_test"]
    predictions = ["the accuracy of the model as a function of the number of epochs .",
                   "comparison of the two methods on the test set .",
                   "loss curves"]
    references = [["accuracy of the model versus the number of training epochs ."],
                  ["comparison of the proposed method with the baseline on the test set ."],
                  ["training and validation loss curves for the three models ."]]
    ids = ["a", "b", "c"]
    scores = task.scorer(ids, predictions, [{"references": r} for r in references])
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": c} for c in r] for i, r in zip(ids, references)})
    res = tokenizer.tokenize({i: [{"caption": p}] for i, p in zip(ids, predictions)})
    bleu, _ = Bleu().compute_score(gts, res, verbose=0)   # big_vision's "bleu-4": Bleu()
    assert scores.statistics["bleu4"].value == pytest.approx(bleu[3], rel=1e-12)
    assert 0 < bleu[3] < 1   # a fraction, as the card prints it
    assert scores.ratios["cider"].value == pytest.approx(Cider().compute_score(gts, res)[0])
    assert "meteor" not in scores.points  # big_vision's SciCap evaluator asks for CIDEr, BLEU-4


def red_pixels(image: Image.Image) -> set[tuple[int, int]]:
    rows, columns = np.nonzero(np.all(np.array(image) == (255, 0, 0), axis=-1))
    return set(zip(rows.tolist(), columns.tolist()))


# Expected pixels below: TensorFlow 2.21's tf.image.draw_bounding_boxes gave the same on these
# boxes (and on 150 random ones), checked outside the test suite.
def test_the_box_is_drawn_as_tf_draw_bounding_boxes_does():
    gray = Image.new("RGB", (10, 10), (7, 7, 7))
    # hub order [xmin, ymin, xmax, ymax]: rows int(0.25*9)=2 .. int(0.75*9)=6, columns
    # int(0.1*9)=0 .. int(0.9*9)=8
    drawn = draw_box(gray, {"bbox": [0.1, 0.25, 0.9, 0.75]})
    outline = {(r, c) for r in (2, 6) for c in range(0, 9)} | \
        {(r, c) for r in range(2, 7) for c in (0, 8)}
    assert red_pixels(drawn) == outline
    unchanged = np.all(np.array(drawn) == 7, axis=-1)
    assert unchanged.sum() == 100 - len(outline)
    # partly outside: int(-0.2*9) = -1 is off the image (top edge not drawn), int(-0.1*9)
    # truncates to 0 (left edge drawn), the rest clamped
    drawn = draw_box(gray, {"bbox": [-0.1, -0.2, 0.5, 0.5]})
    assert red_pixels(drawn) == {(4, c) for c in range(5)} | \
        {(r, c) for r in range(5) for c in (0, 4)}
    # inverted or wholly outside: nothing
    assert red_pixels(draw_box(gray, {"bbox": [0.1, 0.8, 0.9, 0.2]})) == set()
    assert red_pixels(draw_box(gray, {"bbox": [1.1, 1.2, 1.5, 1.6]})) == set()
    # float32 arithmetic: 15/223 * 223 is 15 in float64 but 14.999999 in float32, so row 14
    big = Image.new("RGB", (224, 224))
    rows = {r for r, _ in red_pixels(draw_box(big, {"bbox": [0.5, 15 / 223, 0.9, 0.5]}))}
    assert min(rows) == 14 and max(rows) == 111


def test_widgetcap_draws_the_box_after_the_resize(tmp_path, data_dir, tiny_model, monkeypatch):
    task = registry.all_tasks()["widgetcap_test"]
    seen = []
    original = tiny_model.prepare
    monkeypatch.setattr(tiny_model, "prepare", lambda images, prompts, *rest: (
        seen.extend(shown for (shown,) in images), original(images, prompts, *rest))[1])
    run_task(tiny_model, task, RunOptions(out=tmp_path, data_dir=data_dir, limit=2,
                                          batch_size=2, resamples=0))
    rows = data.load(task.source, data_dir, task.image_column).rows
    size = tiny_model.info.resolution
    for image, row in zip(seen, rows):   # one batch: prompts are equal, so dataset order
        resized = data.resize(data.decode_image(row["image"]), size, "bilinear-antialias")
        assert image.size == (size, size)
        assert np.array_equal(np.array(image), np.array(draw_box(resized, row)))
        outline = red_pixels(image)
        assert len(outline) >= 4 * 8  # a 1-pixel outline at model resolution, not a scaled one
    assert len(seen) == 2


def test_coco35l_reads_big_vision_source_files(data_dir):
    rows, files = read_coco35l(data_dir / "coco35l", "dev")
    lines = [json.loads(line) for line in
             (data_dir / "coco35l" / "coco_mt_dev.jsonl").read_text().splitlines()]
    first = lines[0]["image_id"].split("_")[0]
    # one example per (image, language), image by image, ids as big_vision's image/id
    assert [r["image/id"] for r in rows[:3]] == [f"{first}_de", f"{first}_en", f"{first}_zh"]
    by_id = {r["image/id"]: r for r in rows}
    mine = [line for line in lines if line["image_id"].startswith(f"{first}_")]
    # English: the source captions of the rows translated to German; others: the translations
    assert by_id[f"{first}_en"]["captions"] == \
        [line["caption_tokenized"] for line in mine if line["trg_lang"] == "de"]
    assert by_id[f"{first}_zh"]["captions"] == \
        [line["translation_tokenized"] for line in mine if line["trg_lang"] == "zh"]
    assert by_id[f"{first}_de"]["image"].endswith(f"val2014/COCO_val2014_{int(first):012d}.jpg")
    # Karpathy's file names one image more than the dev file: it is not an example
    assert len(rows) == 3 * len({line["image_id"].split("_")[0] for line in lines})
    assert len(files) == 2 + len(rows) // 3


def test_coco35l_image_missing_from_karpathy_is_a_named_error(tmp_path, data_dir):
    root = tmp_path / "coco35l"
    root.mkdir()
    (root / "dataset_coco.json").write_text(json.dumps({"images": []}))
    (root / "coco_mt_dev.jsonl").write_text(json.dumps(
        {"image_id": "42_0", "trg_lang": "de", "caption_tokenized": "a", "translation_tokenized":
         "b"}) + "\n")
    with pytest.raises(DatasetError, match="coco_mt_dev.jsonl:1: image 42 is not in"):
        data.load(registry.all_tasks()["coco35l_dev"].source, tmp_path, "image")
    with pytest.raises(DatasetError, match="no hub copy"):
        data.load(registry.all_tasks()["coco35l_dev"].source, None, "image")


def test_xm3600_splits_are_languages_interleaved(data_dir):
    source = registry.all_tasks()["xm3600"].source
    loaded = data.load(source, data_dir, "image")
    languages = loaded.rows[SPLIT_COLUMN]
    assert languages[:6] == ["de", "en", "zh"] * 2    # --limit covers every language present
    assert sorted(set(languages)) == ["de", "en", "zh"]
    assert len(loaded.provenance["absent_splits"]) == 33 and "quz" in \
        loaded.provenance["absent_splits"]
    first = [r for r in loaded.rows if r[SPLIT_COLUMN] == "de"][0]
    assert first["image_id"] == loaded.rows[0]["image_id"]
    task = registry.all_tasks()["xm3600"]
    assert task.format_prompt(loaded.rows[2]) == "caption zh"
    with pytest.raises(DatasetError, match="for one of its splits at least"):
        data.load(source, data_dir / "nowhere", "image")
