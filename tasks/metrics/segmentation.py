"""PaliGemma location/segmentation output, and big_vision's RefCOCO rules for scoring it.

Output format: `<locA><locB><locC><locD>` (y_min, x_min, y_max, x_max; each round(v * 1023)),
then optionally sixteen `<segNNN>` tokens, then an optional label; several objects are joined by
" ; ". A location token is exactly `<loc` + four digits + `>`, a seg token `<seg` + three digits +
`>` (the vocabulary's spelling: `<loc100>` is text). Boxes decode with /1023 as big_vision's
evaluator does (the public demo parser's /1024 is a known discrepancy).

big_vision's segmentation evaluator (`evaluators/proj/paligemma/transfers/segmentation.py`) reads
only the first 4 + 16 tokens: anything after them (a 17th seg token, a label, more objects) is
ignored. An output is invalid when those 20 are not four loc tokens (0..1023) then sixteen seg
tokens (0..127), or y2 <= y1 or x2 <= x1. Parsing never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

_OBJECT = re.compile(r"((?:<loc\d{4}>){4})((?:<seg\d{3}>)*)\s*([^<;]*)")
_NUMBER = re.compile(r"<(?:loc|seg)(\d+)>")
LOC_RANGE, SEG_RANGE = 1024, 128


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float] | None   # normalised y1, x1, y2, x2; None if invalid
    seg: tuple[int, ...] | None                     # 16 codebook indices, if present and valid
    label: str
    problem: str | None = None                      # why the box is invalid


def parse(text: str) -> list[Detection]:
    """Every object in a prediction, in order."""
    found = []
    for locs, segs, label in _OBJECT.findall(text if isinstance(text, str) else ""):
        loc = [int(n) for n in _NUMBER.findall(locs)]
        seg = [int(n) for n in _NUMBER.findall(segs)]
        problem = None
        if any(v >= LOC_RANGE for v in loc):
            problem = "loc index out of range"
        elif loc[2] <= loc[0] or loc[3] <= loc[1]:
            problem = "empty box (y2 <= y1 or x2 <= x1)"
        box = None if problem else tuple(v / (LOC_RANGE - 1) for v in loc)
        valid_seg = tuple(seg[:16]) if len(seg) >= 16 and all(v < SEG_RANGE for v in seg[:16]) \
            else None
        found.append(Detection(box, valid_seg, label.strip(), problem))
    return found


_BOX = re.compile(r"\s*((?:<loc\d{4}>){4})")
_SEG16 = re.compile(r"(?:<seg\d{3}>){16}")


def first_object(text: str, need_seg: bool = False) -> Detection:
    """The object RefCOCO scores, by big_vision's rules: the output's first four tokens must be
    <loc> tokens (no searching for a box later in the text) and, on segmentation tasks, the next
    sixteen <seg> tokens, or the box does not count either. Later tokens are never read."""
    text = text if isinstance(text, str) else ""
    box = _BOX.match(text)
    if not box:
        return Detection(None, None, "", "output does not begin with four <loc> tokens")
    codes = _SEG16.match(text, box.end())
    seg = tuple(int(n) for n in _NUMBER.findall(codes.group())) if codes else None
    if need_seg and (seg is None or any(v >= SEG_RANGE for v in seg)):
        return Detection(None, None, "", "missing or malformed <seg> tokens")
    found = parse(box.group(1))[0]
    return Detection(found.box, seg if need_seg else None, "", found.problem)


def collapsed(box: tuple[float, float, float, float], height: int, width: int) -> bool:
    """A box that covers no whole pixel once converted as big_vision converts it."""
    y1, x1, y2, x2 = pixel_box(box, height, width)
    return y2 <= y1 or x2 <= x1


def pixel_box(box: tuple[float, float, float, float], height: int,
              width: int) -> tuple[int, int, int, int]:
    """big_vision's conversion: int(y1*h), int(x1*w), int(y2*h), int(x2*w)."""
    y1, x1, y2, x2 = box
    return int(y1 * height), int(x1 * width), int(y2 * height), int(x2 * width)


def paste_mask(logits: torch.Tensor | np.ndarray, box: tuple[float, float, float, float],
               height: int, width: int) -> np.ndarray:
    """A 64x64 decoded mask resized bilinearly into its box on an h x w canvas, then > 0."""
    canvas = np.zeros((height, width), dtype=bool)
    y1, x1, y2, x2 = pixel_box(box, height, width)
    y1, x1 = max(0, y1), max(0, x1)
    y2, x2 = min(height, y2), min(width, x2)
    if y2 <= y1 or x2 <= x1:
        return canvas  # the box covers no whole pixel
    import torch   # here, not above: listing the tasks must not import torch
    import torch.nn.functional as F

    mask = torch.as_tensor(np.asarray(logits), dtype=torch.float32)[None, None]
    # antialiased bilinear, as PIL's resize (and big_vision's demo) does it; without antialias
    # a 64x64 mask shrunk into a small box loses most of its shape
    resized = F.interpolate(mask, size=(y2 - y1, x2 - x1), mode="bilinear", align_corners=False,
                            antialias=True)
    canvas[y1:y2, x1:x2] = resized[0, 0].numpy() > 0
    return canvas


def intersection_union(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    return int(np.logical_and(a, b).sum()), int(np.logical_or(a, b).sum())


def iou(a: np.ndarray, b: np.ndarray) -> float:
    inter, union = intersection_union(a, b)
    return inter / union if union else 0.0


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """IoU of two (y1, x1, y2, x2) boxes in the same coordinates (continuous, not rasterised)."""
    inter_h = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_w = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_h * inter_w
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
