"""RefCOCO, RefCOCO+ and RefCOCOg: referring segmentation (mIoU) and detection, as big_vision.

One example per referring expression. Segmentation prompts `segment {expression}` (pt / mix
checkpoints); the `_raw` tasks send the bare expression, as big_vision evaluated its RefCOCO
transfer checkpoints. Detection prompts `detect {expression}`. 48 new tokens, greedy.

Segmentation, as big_vision's segmentation evaluator: only the output's first 4 <loc> + 16 <seg>
tokens are read (tasks/metrics/segmentation.py); the seg tokens are decoded to a 64x64 mask by the
VQ-VAE decoder (tasks/seg_decoder.py), resized bilinearly into the predicted box on the
full-resolution image, thresholded at > 0 and compared with the ground-truth mask (COCO polygon or
RLE, decoded by pycocotools). mIoU = mean of per-example IoU; an invalid output, or one whose box
covers no whole pixel after int(), has mask IoU 0 and counts as invalid. Box IoU and box accuracy
at IoU 0.5 / 0.75 compare the predicted box with the ground-truth box in normalised [0, 1]
coordinates for every valid output (also one whose box collapses to no pixel), on the `_detect`
tasks too. Also: the invalid share and cumulative IoU (cIoU = total intersection / total union,
which other papers report).

Hub copies (lmms-eval's): lmms-lab/RefCOCO, lmms-lab/RefCOCOplus (val, testA, testB) and
lmms-lab/RefCOCOg (val, test); columns question_id, image, question, answer (list of referring
expressions), segmentation (polygon), bbox [x, y, w, h] in pixels, iscrowd, file_name.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

from paligemma_eval.harness.registry import DatasetSource, Row, Task, register, text_len
from paligemma_eval.harness.scores import Ratio, Scores
from paligemma_eval.tasks.metrics import segmentation as seg

SPLITS = {"RefCOCO": ("val", "testA", "testB"), "RefCOCO+": ("val", "testA", "testB"),
          "RefCOCOg": ("val", "test")}
HUB_IDS = {"RefCOCO": "lmms-lab/RefCOCO", "RefCOCO+": "lmms-lab/RefCOCOplus",
           "RefCOCOg": "lmms-lab/RefCOCOg"}


def expressions(row: Row) -> list[dict]:
    answers = row["answer"] if isinstance(row["answer"], list) else [row["answer"]]
    return [{**row, "expression": str(a)} for a in answers]


def target(row: Row) -> dict[str, Any]:
    height, width = row["image_size"]
    return {"segmentation": row["segmentation"], "bbox": [float(v) for v in row["bbox"]],
            "height": height, "width": width}


def ground_truth_mask(t: dict[str, Any]) -> np.ndarray:
    """A boolean mask from a COCO polygon (flat or nested) or RLE segmentation."""
    segmentation, height, width = t["segmentation"], t["height"], t["width"]
    if isinstance(segmentation, dict):
        rles = coco_mask.frPyObjects(segmentation, height, width)
    else:
        polygons = [segmentation] if segmentation and not isinstance(segmentation[0], (list,
                                                                                       tuple)) \
            else segmentation
        rles = coco_mask.frPyObjects([list(map(float, p)) for p in polygons], height, width)
    return coco_mask.decode(coco_mask.merge(rles if isinstance(rles, list) else [rles])) > 0


def _truth_box(t: dict[str, Any]) -> tuple[float, float, float, float]:
    """The ground-truth box (y1, x1, y2, x2) normalised to [0, 1], as big_vision compares boxes."""
    x, y, w, h = t["bbox"]
    height, width = t["height"], t["width"]
    return y / height, x / width, (y + h) / height, (x + w) / width


def decode_masks(codes: list[tuple[int, ...]]) -> np.ndarray:
    # imported here: the decoder needs torch, which listing the tasks does not
    from paligemma_eval.tasks.seg_decoder import decode_masks as decode

    return decode(codes)


def mask_valid(o: seg.Detection, t: dict[str, Any]) -> bool:
    """A valid output whose box covers at least one whole pixel of the image."""
    return o.box is not None and not seg.collapsed(o.box, t["height"], t["width"])


def box_ratios(objects: list[seg.Detection], targets: list[dict]) -> dict[str, Ratio]:
    """Box IoU in normalised coordinates for every valid output, also one whose box collapses
    to no pixel (big_vision); an invalid output has IoU 0."""
    ious = np.array([seg.box_iou(o.box, _truth_box(t)) if o.box is not None else 0.0
                     for o, t in zip(objects, targets)])
    return {"box_acc@0.5": Ratio.mean(ious >= 0.5), "box_acc@0.75": Ratio.mean(ious >= 0.75),
            "box_iou": Ratio.mean(ious)}


def score_segmentation(ids: list[str], predictions: list[str], targets: list[dict]) -> Scores:
    objects = [seg.first_object(p, need_seg=True) for p in predictions]
    usable = [mask_valid(o, t) for o, t in zip(objects, targets)]   # else mask IoU 0
    logits = iter(decode_masks([o.seg for o, ok in zip(objects, usable) if ok]))
    ious, inter, union = [], [], []
    for obj, ok, t in zip(objects, usable, targets):
        truth = ground_truth_mask(t)
        predicted = seg.paste_mask(next(logits), obj.box, t["height"], t["width"]) if ok \
            else np.zeros_like(truth)
        i, u = seg.intersection_union(predicted, truth)
        ious.append(i / u if u else 0.0)
        inter.append(i)
        union.append(u)
    ratios = {"miou": Ratio.mean(ious), **box_ratios(objects, targets),
              "invalid": Ratio.mean([not ok for ok in usable]),
              "ciou": Ratio(np.array(inter), np.array(union))}
    return Scores(ids, ratios, notes={"ciou": "cumulative IoU (sum of intersections / sum of "
                                              "unions); the cards report miou"})


def score_detection(ids: list[str], predictions: list[str], targets: list[dict]) -> Scores:
    objects = [seg.first_object(p) for p in predictions]
    return Scores(ids, {**box_ratios(objects, targets),
                        "invalid": Ratio.mean([o.box is None for o in objects])})


def _polygons(segmentation: Any) -> list[list[float]]:
    """A COCO polygon segmentation as lists of x, y pixel pairs (an RLE mask has none)."""
    if isinstance(segmentation, dict) or not segmentation:
        return []
    nested = isinstance(segmentation[0], (list, tuple))
    return [list(map(float, p)) for p in (segmentation if nested else [segmentation])]


def explain(predictions: list[str], targets: list[dict], need_seg: bool) -> Iterator[dict]:
    """Predicted and reference boxes (x, y, w, h pixels), the reference polygon, the decoded
    mask on segmentation tasks, and why an output is invalid."""
    objects = [seg.first_object(p, need_seg=need_seg) for p in predictions]
    usable = [mask_valid(o, t) for o, t in zip(objects, targets)] if need_seg else \
        [o.box is not None for o in objects]
    try:
        logits = iter(decode_masks([o.seg for o, ok in zip(objects, usable) if ok])) \
            if need_seg else None
    except (OSError, ValueError) as error:   # no decoder: boxes only, and it says why
        logits, no_mask = None, f"mask not drawn: {error}"
    else:
        no_mask = None
    for obj, ok, t in zip(objects, usable, targets):
        x, y, w, h = t["bbox"]
        item: dict[str, Any] = {"boxes": [{"role": "reference", "xywh": [x, y, w, h]}],
                                "references": [f"box x {x:g}, y {y:g}, w {w:g}, h {h:g} px"],
                                "polygons": _polygons(t["segmentation"]), "why": []}
        if obj.box is None:
            item["why"].append(f"invalid output: {obj.problem}; IoU 0")
        else:
            y1, x1, y2, x2 = (v * size for v, size in zip(obj.box, (t["height"], t["width"]) * 2))
            item["boxes"].append({"role": "predicted", "xywh": [x1, y1, x2 - x1, y2 - y1]})
            item["why"].append(f"box IoU {seg.box_iou(obj.box, _truth_box(t)):.3f} with the "
                               f"reference box, in normalised coordinates (accuracy counts "
                               f"IoU >= 0.5)")
            if need_seg and not ok:
                item["why"].append("mask invalid: the box covers no whole pixel; mask IoU 0")
            if logits is not None and ok:
                mask = seg.paste_mask(next(logits), obj.box, t["height"], t["width"])
                item["mask"] = mask
                item["why"].append(f"mask IoU {seg.iou(mask, ground_truth_mask(t)):.3f} with "
                                   f"the reference mask")
        if need_seg and no_mask:
            item["why"].append(no_mask)
        yield item


def require_decoder() -> None:
    """The decoder file is found and loads, before any model does."""
    from paligemma_eval.tasks.seg_decoder import load

    load()


def refcoco_task(dataset: str, split: str, mode: str) -> Task:
    stem = dataset.lower().replace("+", "plus")
    suffix = {"segment": "", "raw": "_raw", "detect": "_detect"}[mode]
    prompt = {"segment": "segment {expression}", "raw": "{expression}",
              "detect": "detect {expression}"}[mode]
    segmenting = mode != "detect"
    return Task(
        name=f"{stem}_{split}{suffix}", source=DatasetSource(HUB_IDS[dataset], split),
        prompt=prompt, target=target, expand=expressions, image_size=True,
        scorer=score_segmentation if segmenting else score_detection,
        explain=partial(explain, need_seg=segmenting),
        columns=("answer", "segmentation", "bbox"), id_column="question_id",
        **text_len(48), groups=(f"refcoco_{mode}",),
        rule="big_vision segmentation evaluator" if segmenting else "box IoU >= 0.5",
        resize="bilinear",   # big_vision's refcoco_seg.py evaluates without antialias
        metric="miou" if segmenting else "box_acc@0.5",
        preflight=require_decoder if segmenting else None,
        description=f"{dataset} {split}: {'mIoU' if segmenting else 'box accuracy'}"
                    f"{' (raw expression prompt)' if mode == 'raw' else ''}")


@register
def tasks() -> list[Task]:
    return [refcoco_task(dataset, split, mode) for dataset, splits in SPLITS.items()
            for split in splits for mode in ("segment", "raw", "detect")]
