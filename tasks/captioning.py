"""Captioning tasks scored with CIDEr (pycocoevalcap): COCO Karpathy test and val2017, NoCaps,
TextCaps.

Prompt `caption en`, 32 new tokens, images resized bilinearly without antialias, beam search with
2 beams (COCO, NoCaps: big_vision's cococap.py) or 3 (TextCaps: textcaps.py); `--num-beams`
overrides. CIDEr is the headline; ROUGE-L, BLEU-4 and METEOR beside it. NoCaps is broken down
into in-/near-/out-domain when the data carries a `domain` column.

Hub copies (lmms-eval's ids and columns):
- yerevann/coco-karpathy test (the Karpathy split): filename, sentences [5 captions], url (the
  image is fetched from it; locally, a path relative to the JSONL file), imgid
- lmms-lab/COCO-Caption2017 val: question_id (file name), answer [5 captions], image
- lmms-lab/NoCaps validation: image_id, annotations_captions [10 captions], image (+ domain if
  present; the official nocaps split into domains is by Open Images class, not in this copy)
- lmms-lab/TextCaps val: question_id, reference_strs [captions], image
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paligemma_eval.harness.registry import DatasetSource, Row, Task, register, text_len
from paligemma_eval.harness.scores import Scores, breakdown
from paligemma_eval.tasks.metrics.captioning import caption_scores, explain_cider

PROMPT = "caption en"


def caption_scorer(meteor: bool = True) -> Callable[[list[str], list[str], list[dict]], Scores]:
    """CIDEr (headline), ROUGE-L, BLEU-4 and, unless turned off, METEOR (its Java scorer takes
    seconds to start: the transfers whose evaluator asks only for CIDEr / BLEU-4 skip it)."""
    def score(ids: list[str], predictions: list[str], targets: list[dict]) -> Scores:
        scores, cider = caption_scores(predictions, [t["references"] for t in targets], ids,
                                       meteor=meteor)
        domains = [t.get("domain") for t in targets]
        if any(domains):
            scores.ratios.update(breakdown("cider", cider, domains))
        return scores
    return score


score_captions = caption_scorer()


def caption_task(name: str, source: DatasetSource, id_column: str | None, references: str,
                 description: str, image_column: str = "image", beams: int = 2,
                 keep: tuple[str, ...] = (), **fields: Any) -> Task:
    """A captioning task; `keep` names row columns carried into the target (the language a
    scorer groups by, the widget box drawn into the image: an edit changes the resume key);
    `fields` override the Task's captioning defaults (decode length, resize, scorer, ...)."""
    def target(row: Row) -> dict:
        refs = [str(c) for c in row[references]]
        if not refs:
            raise ValueError(f"no reference captions in {references!r}")
        return {"references": refs, "domain": row.get("domain"), **{k: row[k] for k in keep}}

    decoding = f"{beams} beams" if beams > 1 else "greedy"
    settings = {"prompt": PROMPT, "scorer": score_captions, "metric": "cider",
                "rule": f"CIDEr-D (pycocoevalcap, PTB tokenizer), {decoding}",
                **text_len(32), "resize": "bilinear", "groups": ("captioning",),
                "explain": explain_cider(), **fields}
    return Task(name=name, source=source, target=target, columns=(references, image_column, *keep),
                id_column=id_column, num_beams=beams, image_column=image_column,
                description=description, **settings)


@register
def tasks() -> list[Task]:
    karpathy = "yerevann/coco-karpathy"
    return [
        # big_vision's COCO number is TFDS coco_captions 'val': the Karpathy validation split.
        caption_task("coco_cap_karpathy_val", DatasetSource(karpathy, "validation"), "filename",
                     "sentences", "COCO captions, Karpathy validation split (the cards' split)",
                     image_column="url"),
        caption_task("coco_cap_karpathy_test", DatasetSource(karpathy, "test"), "filename",
                     "sentences", "COCO captions, Karpathy test split", image_column="url"),
        caption_task("coco_cap_val2017", DatasetSource("lmms-lab/COCO-Caption2017", "val"),
                     "question_id", "answer",
                     "COCO captions val2017 (the cards' COCO numbers use the Karpathy split)"),
        caption_task("nocaps_val", DatasetSource("lmms-lab/NoCaps", "validation"), "image_id",
                     "annotations_captions", "NoCaps validation"),
        caption_task("textcaps_val", DatasetSource("lmms-lab/TextCaps", "val"), "question_id",
                     "reference_strs", "TextCaps validation", beams=3),
    ]
