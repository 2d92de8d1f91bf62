"""Captioning transfers of the PaliGemma card scored with CIDEr: SciCap, Screen2Words and Widget
Captioning, as big_vision's scicap.py, screen2words.py and widgetcap.py configs evaluate them
(coco_caption evaluator: PTB tokenizer, pycocoevalcap), greedy, prompt `caption en`.

- SciCap test ("first sentence, no subfigure"): 96 new tokens, bilinear resize without
  antialias; one reference, `1-lowercase-and-token-and-remove-figure-index`; CIDEr and BLEU-4
  (pycocoevalcap Bleu()[3], corpus-level, a fraction as the card prints it). No faithful hub copy
  (CrowdAILab/scicap is the later challenge's data): the original release (scicap_data.zip,
  CC BY-NC-SA 4.0) unzipped under --data-dir DIR as DIR/scicap/: List-of-Files-for-Each-
  Experiments/First-Sentence/No-Subfig/test/file_idx.json (the split's file names),
  SciCap-Caption-All/test/<id>.json, SciCap-No-Subfig-Img/test/<id>.png; id = file name
  without .png (big_vision's image/id).
- Screen2Words test: 24 new tokens, bilinear without antialias, references = the screen's
  summaries. rootsautomation/RICO-Screen2Words test: screenId, captions [5], file_name,
  app_package_name, ..., image (its middle split is named `val`, big_vision's `dev`).
- Widget Captioning test: 32 new tokens, bilinear resize with antialias, then the target widget's
  box drawn into the resized image as big_vision's draw_bbox (tf.image.draw_bounding_boxes: a
  1-pixel red outline); references = all of the widget's captions.
  rootsautomation/RICO-WidgetCaptioning test: screenId (several widgets per screen, so examples
  are keyed by position), captions, bbox (relative [xmin, ymin, xmax, ymax], where TF takes
  [ymin, xmin, ymax, xmax]), file_name, app_package_name, ..., image.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from paligemma_eval.harness.errors import DatasetError
from paligemma_eval.harness.registry import DatasetSource, Row, Task, register, text_len
from paligemma_eval.tasks.captioning import caption_scorer, caption_task

RED = (255, 0, 0)


def draw_box(image: Image.Image, row: Row) -> Image.Image:
    """tf.image.draw_bounding_boxes with one box and colour red, on the resized image: each edge
    at float32(coordinate) * (size - 1) truncated toward zero; an edge outside the image is not
    drawn (the others are, clamped); an inverted or wholly outside box draws nothing."""
    xmin, ymin, xmax, ymax = (np.float32(v) for v in row["bbox"])
    pixels = np.array(image.convert("RGB"))
    height, width = pixels.shape[:2]
    top, bottom = (int(v * np.float32(height - 1)) for v in (ymin, ymax))
    left, right = (int(v * np.float32(width - 1)) for v in (xmin, xmax))
    if top > bottom or left > right or top >= height or bottom < 0 or left >= width or right < 0:
        return image
    rows = slice(max(top, 0), min(bottom, height - 1) + 1)
    columns = slice(max(left, 0), min(right, width - 1) + 1)
    if top >= 0:
        pixels[top, columns] = RED
    if bottom < height:
        pixels[bottom, columns] = RED
    if left >= 0:
        pixels[rows, left] = RED
    if right < width:
        pixels[rows, right] = RED
    return Image.fromarray(pixels)


def read_scicap(root: Path, split: str) -> tuple[list[dict], list[Path]]:
    """big_vision's datasets/scicap builder, config first_sentence_subfig_no."""
    index = root / "List-of-Files-for-Each-Experiments" / "First-Sentence" / "No-Subfig" / split \
        / "file_idx.json"
    if not index.is_file():
        raise DatasetError(f"SciCap: {index} not found (scicap_test needs the unzipped "
                           "scicap_data release under DIR/scicap/)")
    rows, files = [], [index]
    for name in json.loads(index.read_text()):
        if not name.endswith(".png"):
            raise DatasetError(f"{index}: {name!r} is not a .png file name")
        annotation = root / "SciCap-Caption-All" / split / f"{name[:-4]}.json"
        caption = json.loads(annotation.read_text())[
            "1-lowercase-and-token-and-remove-figure-index"]["caption"]
        image = root / "SciCap-No-Subfig-Img" / split / name
        rows.append({"image/id": name[:-4], "image": str(image), "captions": [caption]})
        files += [annotation, *([image] if image.is_file() else [])]
    return rows, files


@register
def tasks() -> list[Task]:
    greedy = dict(beams=1, scorer=caption_scorer(meteor=False))
    return [
        caption_task("scicap_test", DatasetSource("scicap", "test", reader=read_scicap),
                     "image/id", "captions", "SciCap test, first sentence, no subfigures "
                     "(local files: see the module)", **text_len(96),
                     rule="CIDEr-D and BLEU-4 (pycocoevalcap Bleu()[3], corpus), PTB tokenizer, "
                          "one reference; greedy", **greedy),
        caption_task("screen2words_test", DatasetSource("rootsautomation/RICO-Screen2Words",
                                                        "test"),
                     "screenId", "captions", "Screen2Words test", **text_len(24), **greedy),
        caption_task("widgetcap_test", DatasetSource("rootsautomation/RICO-WidgetCaptioning",
                                                     "test"),
                     None, "captions", "Widget Captioning test, the widget's box drawn in red",
                     keep=("bbox",), resize="bilinear-antialias", image_transform=draw_box,
                     rule="CIDEr-D (pycocoevalcap, PTB tokenizer), greedy; the widget's box "
                          "drawn in red after the resize (big_vision draw_bbox)", **greedy),
    ]
