"""Word-level text spotting, scored with the HierText protocol (PaliGemma 2 §4.2).

Output format (ours; the card's is unpublished): one object per word, as PaliGemma's detection
output, `<locY0><locX0><locY1><locX1> transcription`, objects joined by " ; ". Boxes are axis
aligned, each coordinate round(v * 1023) of the image height or width, decoded with /1023 as
segmentation.parse does. The transcription is the text up to the next box (the " ; " separator
and surrounding spaces removed), kept as written: no case or punctuation normalisation.

Matching follows google-research-datasets/hiertext `evaluator/evaluator.py`:
- a prediction is dropped when at least half of its area lies inside "don't care" ground truth
  (illegible words, ICDAR's `###`), and illegible words are not counted as ground truth;
- IoU between every remaining prediction and ground-truth word (polygons, shapely); a ground-truth
  word and a prediction match when each is the other's best (highest IoU) and IoU >= 0.5, so a
  prediction matches at most one word;
- a matched pair is an end-to-end true positive when the transcriptions are equal, exactly.
precision = tp / predictions, recall = tp / ground-truth words, F1 = 2 tp / (predictions + words),
each a ratio of per-image counts (their intervals bootstrap over images). The same with box
matches alone is the detection score (`det_*`). Areas and IoU are HierText's polygon ones, with
its epsilon (1e-5) in each denominator. One difference: with no prediction at all, precision is
undefined (null) here, where HierText's evaluator prints 1.0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from shapely.geometry import Polygon, box as rectangle

from paligemma_eval.harness.scores import Ratio

IOU_THRESHOLD = 0.5
DONT_CARE_THRESHOLD = 0.5  # HierText's filter_invalid_thr: share of a prediction inside don't-care
LOC_MAX = 1023
EPSILON = 1e-5  # HierText's, in every area ratio

_BOX = re.compile(r"<loc(\d{4})><loc(\d{4})><loc(\d{4})><loc(\d{4})>")
_STRAY_LOC = re.compile(r"<loc\d+>")
_SEPARATOR = re.compile(r"\s*;\s*$")


@dataclass(frozen=True)
class SpottedWord:
    box: tuple[float, float, float, float]   # normalised y0, x0, y1, x1
    text: str


@dataclass(frozen=True)
class Spotting:
    words: list[SpottedWord]
    malformed: int     # objects that could not be read: a bad box, or a cut (incomplete) box


def parse(prediction: str) -> Spotting:
    """The words of one output. An incomplete box (an output cut at the decode length ends in one
    to three <loc> tokens) or an empty or out-of-range box is counted as malformed, never
    guessed at."""
    words, malformed = [], 0
    matches = list(_BOX.finditer(prediction))
    for k, found in enumerate(matches):
        end = matches[k + 1].start() if k + 1 < len(matches) else len(prediction)
        text = prediction[found.end():end]
        if _STRAY_LOC.search(text):   # loc tokens that do not form a box of four
            malformed += 1
            text = text[:_STRAY_LOC.search(text).start()]
        text = _SEPARATOR.sub("", text).strip()
        y0, x0, y1, x1 = (int(v) for v in found.groups())
        if max(y0, x0, y1, x1) > LOC_MAX or y1 <= y0 or x1 <= x0:
            malformed += 1
            continue
        words.append(SpottedWord(tuple(v / LOC_MAX for v in (y0, x0, y1, x1)), text))
    before_first = prediction[:matches[0].start()] if matches else prediction
    malformed += bool(_STRAY_LOC.search(before_first))
    return Spotting(words, malformed)


def word_polygon(word: SpottedWord, height: int, width: int) -> Polygon:
    y0, x0, y1, x1 = word.box
    return rectangle(x0 * width, y0 * height, x1 * width, y1 * height)


def polygon(vertices: list[list[float]]) -> Polygon:
    """A ground-truth polygon from [[x, y], ...]; self-intersecting outlines (some Total-Text
    annotations) are repaired with buffer(0), as is usual for shapely."""
    shape = Polygon(vertices)
    return shape if shape.is_valid else shape.buffer(0)


def iou(a: Polygon, b: Polygon) -> float:
    """HierText's polygon IoU, its epsilon included: IoU exactly 0.5 falls just short."""
    inter = a.intersection(b).area if a.area >= EPSILON and b.area >= EPSILON else 0.0
    return inter / (a.area + b.area - inter + EPSILON)


def inside_share(prediction: Polygon, region: Polygon) -> float:
    """HierText's pixel precision of a prediction against a don't-care region."""
    return prediction.intersection(region).area / (prediction.area + EPSILON)


@dataclass(frozen=True)
class ImageCounts:
    predictions: int
    ground_truth: int
    detected: int      # mutually best box matches at IoU >= 0.5
    spotted: int       # of those, with the exact transcription


def match_image(predicted: list[tuple[Polygon, str]], truth: list[tuple[Polygon, str]],
                dont_care: list[Polygon]) -> ImageCounts:
    """HierText's per-image counts."""
    kept = [(shape, text) for shape, text in predicted
            if not any(inside_share(shape, region) >= DONT_CARE_THRESHOLD
                       for region in dont_care)]
    detected = spotted = 0
    if kept and truth:
        ious = np.array([[iou(g, p) for p, _ in kept] for g, _ in truth])
        best_prediction = ious.argmax(axis=1)
        best_truth = ious.argmax(axis=0)
        for i, j in enumerate(best_prediction):
            if ious[i, j] >= IOU_THRESHOLD and best_truth[j] == i:
                detected += 1
                spotted += kept[j][1] == truth[i][1]
    return ImageCounts(len(kept), len(truth), detected, spotted)


def spotting_ratios(counts: list[ImageCounts]) -> dict[str, Ratio]:
    predictions = np.array([c.predictions for c in counts], dtype=float)
    truth = np.array([c.ground_truth for c in counts], dtype=float)
    ratios = {}
    for prefix, field in (("", "spotted"), ("det_", "detected")):
        tp = np.array([getattr(c, field) for c in counts], dtype=float)
        ratios[f"{prefix}precision"] = Ratio(tp, predictions)
        ratios[f"{prefix}recall"] = Ratio(tp, truth)
        ratios[f"{prefix}f1"] = Ratio(2 * tp, predictions + truth)
    return ratios
