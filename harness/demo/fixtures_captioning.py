"""Fixtures of the captioning transfers (tasks/multilingual_captioning.py,
tasks/transfer_captioning.py), each in its data's own schema: the hub copies' columns for XM3600,
Screen2Words and Widget Captioning; the original release's file layout for COCO-35L and SciCap,
which have no hub copy (FILE_FIXTURES: writer(DIR/<name>, rng) -> the files written).

Non-English captions come from small word tables (German; Chinese unsegmented, as XM3600's raw
Chinese captions are), so the per-language rules run on text of that language's shape.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from pathlib import Path

from paligemma_eval.harness.demo import world
from paligemma_eval.harness.demo.fixtures import _png, _references

IMAGES = 8
LANGUAGES = ("de", "en", "zh")
WORDS = {
    "de": {"one": "ein", "two": "zwei", "three": "drei", "red": "rot", "green": "grün",
           "blue": "blau", "circle": "kreis", "square": "quadrat", "triangle": "dreieck",
           "white": "weiß", "black": "schwarz", "gray": "grau"},
    "zh": {"one": "一个", "two": "两个", "three": "三个", "red": "红色", "green": "绿色",
           "blue": "蓝色", "circle": "圆形", "square": "正方形", "triangle": "三角形",
           "white": "白色", "black": "黑色", "gray": "灰色"},
}


def caption_in(language: str, scene: world.Scene, rng: random.Random) -> str:
    """A caption of the scene in `language`: English as the world writes it, others word by
    word (German spaced, Chinese unspaced), sometimes without the background."""
    if language == "en":
        return rng.choice(_references(scene, rng, 4))
    words = WORDS[language]
    parts = [words[world.NUMBER_WORDS[scene.count]], words[scene.color], words[scene.shape]]
    if rng.random() < 0.7:
        parts += ["auf", words[scene.background]] if language == "de" else \
            ["在", words[scene.background], "背景上"]
    return (" " if language == "de" else "").join(parts)


def _scenes(name: str, count: int = IMAGES) -> list[world.Scene]:
    """The same images in every split of a dataset (XM3600's languages share their images)."""
    rng = random.Random(f"{name}-images")
    return [world.random_scene(rng) for _ in range(count)]


def xm3600(language: str) -> Callable[[random.Random], list[dict]]:
    def make(rng: random.Random) -> list[dict]:
        rows = []
        for i, scene in enumerate(_scenes("xm3600")):
            captions = [caption_in(language, scene, rng) for _ in range(2)]
            rows.append({"image_id": f"{i:016x}", "image_locale": rng.choice(["de", "en", "zh"]),
                         "captions": captions, "captions_tokenized": captions,
                         "captions_tokenized_lowercase": [c.lower() for c in captions],
                         "image": _png(scene)})
        return rows
    return make


def _rico(screen_id: int, scene: world.Scene, rng: random.Random) -> dict:
    """The RICO metadata columns both rootsautomation copies carry."""
    return {"screenId": screen_id, "file_name": f"{screen_id}.jpg",
            "app_package_name": f"com.example.app{screen_id % 5}",
            "play_store_name": f"App {screen_id % 5}", "category": "Tools",
            "average_rating": round(rng.uniform(3, 5), 1), "number_of_ratings": "1,024",
            "number_of_downloads": "10,000 - 50,000", "file_name_icon": f"{screen_id}_icon.png",
            "file_name_semantic": f"{screen_id}_semantic.png", "semantic_annotations": "{}",
            "view_hierarchy": "{}", "image": _png(scene),
            "image_icon": _png(world.random_scene(rng, count=1)),
            "image_semantic": _png(scene)}


def screen2words(rng: random.Random) -> list[dict]:
    return [{**_rico(20000 + i, scene, rng), "captions": _references(scene, rng, 5)}
            for i, scene in enumerate(_scenes("screen2words", 12))]


def widget_captioning(rng: random.Random) -> list[dict]:
    """One row per shape (several widgets per screen); bbox relative [xmin, ymin, xmax, ymax]."""
    rows = []
    for i, scene in enumerate(_scenes("widgetcap", 6)):
        for ymin, xmin, ymax, xmax in scene.boxes():
            name = f"{scene.color} {scene.shape}"
            rows.append({**_rico(30000 + i, scene, rng), "bbox": [xmin, ymin, xmax, ymax],
                         "captions": [name, f"the {name}", f"{scene.shape}"]})
    return rows


def _jpeg(scene: world.Scene) -> bytes:
    buffer = io.BytesIO()
    scene.render().save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def coco35l(root: Path, rng: random.Random) -> list[Path]:
    """coco_mt_dev.jsonl (one row per English caption and target language), Karpathy's
    dataset_coco.json (one image more than the dev file names) and val2014/ JPEG images."""
    images, lines = [], []
    (root / "val2014").mkdir(parents=True, exist_ok=True)
    for i, scene in enumerate(_scenes("coco35l", IMAGES + 1)):
        coco_id = 391000 + 7 * i
        name = f"COCO_val2014_{coco_id:012d}.jpg"
        (root / "val2014" / name).write_bytes(_jpeg(scene))
        english = [caption_in("en", scene, rng) for _ in range(3)]
        images.append({"filepath": "val2014", "filename": name, "imgid": i, "split": "val",
                       "cocoid": coco_id, "sentences": [{"raw": c} for c in english]})
        if i == IMAGES:
            continue
        for n, caption in enumerate(english):
            for target in ("de", "zh"):
                lines.append({"image_id": f"{coco_id}_{n}", "src_lang": "en",
                              "caption_tokenized": caption, "trg_lang": target,
                              "translation_tokenized": caption_in(target, scene, rng),
                              "backtranslation_tokenized": caption})
    (root / "dataset_coco.json").write_text(json.dumps({"images": images, "dataset": "coco"}))
    (root / "coco_mt_dev.jsonl").write_text(
        "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    return [root / "coco_mt_dev.jsonl", root / "dataset_coco.json",
            *sorted((root / "val2014").iterdir())]


def scicap(root: Path, rng: random.Random) -> list[Path]:
    """The unzipped scicap_data release, test split of First-Sentence / No-Subfig."""
    index = root / "List-of-Files-for-Each-Experiments/First-Sentence/No-Subfig/test"
    captions, figures = root / "SciCap-Caption-All/test", root / "SciCap-No-Subfig-Img/test"
    for folder in (index, captions, figures):
        folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, scene in enumerate(_scenes("scicap")):
        figure_id = f"2101.{1000 + i:05d}v1-Figure{i % 3 + 1}-1"
        caption = caption_in("en", scene, rng)
        (figures / f"{figure_id}.png").write_bytes(_png(scene)["bytes"])
        (captions / f"{figure_id}.json").write_text(json.dumps({
            "contains-subfigure": False, "paper-ID": figure_id.split("-")[0],
            "figure-ID": f"{figure_id}.png", "0-originally-extracted": f"Figure 1: {caption}.",
            "1-lowercase-and-token-and-remove-figure-index": {
                "caption": f"{caption} .", "sentence": [f"{caption} ."],
                "token": [*caption.split(), "."]},
            "2-normalized": {"2-1-basic-num": {"caption": f"{caption} ."},
                             "2-2-advanced-euqation-bracket": {"caption": f"{caption} ."}}}))
        names.append(f"{figure_id}.png")
    (index / "file_idx.json").write_text(json.dumps(names))
    return [index / "file_idx.json", *sorted(captions.iterdir()), *sorted(figures.iterdir())]


FIXTURES = {
    **{("floschne/xm3600", None, language): xm3600(language) for language in LANGUAGES},
    ("rootsautomation/RICO-Screen2Words", None, "test"): screen2words,
    ("rootsautomation/RICO-WidgetCaptioning", None, "test"): widget_captioning,
}
FILE_FIXTURES = {"coco35l": coco35l, "scicap": scicap}
