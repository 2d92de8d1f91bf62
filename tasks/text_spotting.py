"""Text spotting: ICDAR 2015 Incidental Scene Text and Total-Text (PaliGemma 2 Table 2).

Scored with the HierText protocol the paper names (tasks/metrics/text_spotting.py): word-level
precision, recall and F1, a word found when its box has IoU >= 0.5 with a ground-truth word
(mutually best match) and its transcription is exactly equal (no case or punctuation
normalisation, no length filter). Illegible words are "don't care".
The card's prompt and output format are unpublished: ours is the prompt `ocr with boxes` and
PaliGemma's detection format, `<loc>` x4 (y0 x0 y1 x1) then the word, objects joined by " ; ".
The paper's fine-tune used sequences of up to 2,048 tokens, so 2,048 new tokens; 896 px is the
paper's best resolution. Images are resized bilinearly with antialias.

Data: neither set has a hub copy (ICDAR 2015 from rrc.cvc.uab.es after registration, Total-Text
from github.com/cs-chan/Total-Text-Dataset), so both read local files (`--data-dir`), one row
per image, in HierText's word schema:
  DIR/local/icdar2015_incidental/default/test.{parquet,jsonl}
  DIR/local/totaltext/default/test.{parquet,jsonl}
columns `image_id`, `image` (in JSONL a path relative to the file), `words`: a list of
{"vertices": [[x, y], ...] in pixels, "text": str, "legible": bool}. ICDAR's
`gt_img_N.txt` line `x1,y1,...,x4,y4,transcription` is one word with four vertices; a
transcription of `###` (ICDAR) or `#` (Total-Text) is an illegible word (legible false).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from paligemma_eval.harness.registry import DatasetSource, Row, Task, register
from paligemma_eval.harness.scores import Scores
from paligemma_eval.tasks.metrics import text_spotting

PROMPT = "ocr with boxes"
RULE = ("HierText protocol: mutually best word match at IoU >= 0.5 with the exact transcription; "
        "card's prompt unpublished (ours: `ocr with boxes`, <loc> boxes + words)")


def spotting_target(row: Row) -> dict:
    if row.get("image_size") is None:
        raise ValueError("image size unreadable")
    words = []
    for word in row["words"]:
        vertices = [[float(x), float(y)] for x, y in word["vertices"]]
        if len(vertices) < 3:
            raise ValueError(f"a word polygon needs 3+ vertices, got {len(vertices)}")
        words.append({"vertices": vertices, "text": str(word["text"]),
                      "legible": bool(word.get("legible", True))})
    return {"words": words, "size": list(row["image_size"])}


def score_spotting(ids: list[str], predictions: list[str], targets: list[dict]) -> Scores:
    counts, malformed = [], 0
    for prediction, target in zip(predictions, targets):
        height, width = target["size"]
        spotted = text_spotting.parse(prediction)
        malformed += spotted.malformed
        predicted = [(text_spotting.word_polygon(w, height, width), w.text)
                     for w in spotted.words]
        truth = [(text_spotting.polygon(w["vertices"]), w["text"])
                 for w in target["words"] if w["legible"]]
        dont_care = [text_spotting.polygon(w["vertices"])
                     for w in target["words"] if not w["legible"]]
        counts.append(text_spotting.match_image(predicted, truth, dont_care))
    return Scores(ids, text_spotting.spotting_ratios(counts),
                  notes={"malformed_objects": f"{malformed} predicted objects unreadable (bad or "
                                              f"cut <loc> box), not counted as predictions"})


def explain_spotting(predictions: list[str], targets: list[dict]) -> Iterator[dict[str, Any]]:
    """For the sample browser: the predicted word boxes and the reference word polygons in
    pixels, the reference words, and the image's counts under the protocol."""
    for prediction, target in zip(predictions, targets):
        height, width = target["size"]
        spotted = text_spotting.parse(prediction)
        boxes = [{"role": "predicted", "xywh": [x0 * width, y0 * height, (x1 - x0) * width,
                                                (y1 - y0) * height]}
                 for y0, x0, y1, x1 in (w.box for w in spotted.words)]
        counts = text_spotting.match_image(
            [(text_spotting.word_polygon(w, height, width), w.text) for w in spotted.words],
            [(text_spotting.polygon(w["vertices"]), w["text"]) for w in target["words"]
             if w["legible"]],
            [text_spotting.polygon(w["vertices"]) for w in target["words"] if not w["legible"]])
        yield {"boxes": boxes,
               "polygons": [[c for vertex in w["vertices"] for c in vertex]
                            for w in target["words"]],
               "references": [w["text"] if w["legible"] else f"{w['text']} (illegible: ignored)"
                              for w in target["words"]],
               "why": [f"{counts.spotted} of {counts.ground_truth} legible words spotted (box "
                       f"IoU >= 0.5 and the exact text), {counts.detected} boxes found; "
                       f"{counts.predictions} predicted words counted, {spotted.malformed} "
                       f"unreadable"]}


def spotting_task(name: str, folder: str, description: str) -> Task:
    return Task(name=name, source=DatasetSource(f"local/{folder}", "test", local_only=True),
                prompt=PROMPT,
                target=spotting_target, scorer=score_spotting, explain=explain_spotting,
                columns=("words",),
                id_column="image_id", max_new_tokens=2048, metric="f1", rule=RULE,
                resize="bilinear-antialias", image_size=True, groups=("text_spotting",),
                description=description + "; local files only (no hub copy); card's prompt "
                                          "unpublished: ours is `ocr with boxes`")


@register
def tasks() -> list[Task]:
    return [
        spotting_task("icdar2015_spotting", "icdar2015_incidental",
                      "ICDAR 2015 Incidental Scene Text test (500 images), word-level E2E P/R/F1"),
        spotting_task("totaltext_spotting", "totaltext",
                      "Total-Text test (300 images), word-level E2E P/R/F1, polygon ground truth"),
    ]
