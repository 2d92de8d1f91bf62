"""Multilingual captioning: COCO-35L (dev) and Crossmodal-3600 (XM3600), as big_vision's
coco35l.py transfer config scores them (XM3600 zero-shot from the COCO-35L fine-tune).

Prompt `caption {lang}` with the language's code, greedy, 32 new tokens, images resized
bilinearly without antialias. Each language is its own evaluation, as big_vision runs one
coco_caption evaluator per language: the PTB tokenizer on every language alike (no
language-specific segmentation, for zh, ja or th neither), then CIDEr-D with that language's own
document frequencies. Metrics: `cider/<lang>`; `cider/avg34` (COCO-35L) or `cider/avg35` (XM3600),
the mean over the non-English languages; `cider/avg`, the mean over all (headline). Averages are
over the languages present in the run, which the notes list; the cards' are over all 35 / 36.

- COCO-35L: no hub copy (SEACrowd/coco_35l covers 4 languages). Its own files, as big_vision's
  TFDS builder reads them, under --data-dir DIR as DIR/coco35l/: `coco_mt_dev.jsonl`
  (storage.googleapis.com/crossmodal-3600/coco_mt_dev.jsonl.bz2, decompressed; rows image_id
  `<coco id>_<n>`, trg_lang, caption_tokenized, translation_tokenized), `dataset_coco.json`
  (Karpathy's split file: images[].cocoid / filepath / filename) and the COCO-2014 images at
  DIR/coco35l/<filepath>/<filename> (val2014/). References of language L: translation_tokenized
  of the rows with trg_lang L; of English: caption_tokenized of the rows with trg_lang `de`. One
  example per (image, language), id `<coco id>_<lang>` (big_vision's image/id), image by image so
  that --limit covers every language.
- XM3600: floschne/xm3600, one split per language (36, `quz` included): image_id, image_locale,
  captions, captions_tokenized, captions_tokenized_lowercase, image. References: the raw
  `captions`, the feature big_vision's eval keeps (whether the card's numbers used the tokenized
  ones is not known). The splits are read as one dataset, each row's language being its split
  (`source_split`); examples are keyed by position (image_id repeats across languages).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from paligemma_eval.harness.errors import DatasetError
from paligemma_eval.harness.registry import SPLIT_COLUMN, DatasetSource, Task, register
from paligemma_eval.harness.scores import Scores
from paligemma_eval.tasks.captioning import caption_task
from paligemma_eval.tasks.metrics.captioning import cider_per_group, explain_cider
from paligemma_eval.tasks.metrics.multilingual import per_group

# big_vision configs/proj/paligemma/transfers/coco35l.py
LANGUAGES = ("ar", "bn", "cs", "da", "de", "el", "en", "es", "fa", "fi", "fil", "fr", "he", "hi",
             "hr", "hu", "id", "it", "ja", "ko", "mi", "nl", "no", "pl", "pt", "ro", "ru", "sv",
             "sw", "te", "th", "tr", "uk", "vi", "zh")
LANGUAGES_XM3600 = tuple(sorted((*LANGUAGES, "quz")))


def scorer(average_label: str, language: str = "language"):
    """Per-language CIDEr, the mean over the non-English languages and over all of them; the
    target's `language` key names the language."""
    def score(ids: list[str], predictions: list[str], targets: list[dict]) -> Scores:
        languages = [t[language] for t in targets]
        cider = cider_per_group(predictions, [t["references"] for t in targets], ids, languages)
        present = sorted(set(languages))
        others = [lang for lang in present if lang != "en"]
        ratios = per_group("cider", cider, languages, {average_label: others, "avg": None})
        return Scores(ids, ratios, notes={
            "cider": "CIDEr-D per language (pycocoevalcap, PTB tokenizer for every language), "
                     "each language with its own document frequencies; averages are unweighted "
                     "means over languages",
            "languages": f"{len(present)} present: {', '.join(present)}; {average_label} over "
                         f"{len(others)} ({', '.join(others)}), avg over {len(present)}"})
    return score


def read_coco35l(root: Path, split: str) -> tuple[list[dict], list[Path]]:
    """big_vision's datasets/coco35l builder, split `dev`: rows in the order of the images'
    first appearance, each image's languages together."""
    captions_file, karpathy = root / f"coco_mt_{split}.jsonl", root / "dataset_coco.json"
    for path in (captions_file, karpathy):
        if not path.is_file():
            raise DatasetError(f"COCO-35L: {path} not found (see `paligemma-eval tasks`: "
                               f"coco35l_dev needs coco_mt_{split}.jsonl, dataset_coco.json and "
                               "the COCO-2014 images under DIR/coco35l/)")
    image_of = {entry["cocoid"]: root / entry["filepath"] / entry["filename"]
                for entry in json.loads(karpathy.read_text())["images"]}
    references: dict[tuple[int, str], list[str]] = defaultdict(list)
    images: dict[int, None] = {}
    with open(captions_file, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            coco_id = int(row["image_id"].split("_")[0])
            if coco_id not in image_of:
                raise DatasetError(f"{captions_file}:{number}: image {coco_id} is not in "
                                   f"{karpathy}")
            images.setdefault(coco_id)
            if row["trg_lang"] == "de":  # English: the source captions, once (via one language)
                references[coco_id, "en"].append(row["caption_tokenized"])
            references[coco_id, row["trg_lang"]].append(row["translation_tokenized"])
    languages = sorted({lang for _, lang in references})
    # Every (image, language) is an example; one without captions fails, visibly.
    rows = [{"image/id": f"{coco_id}_{lang}", "image": str(image_of[coco_id]), "language": lang,
             "captions": references.get((coco_id, lang), [])}
            for coco_id in images for lang in languages]
    pictures = [image_of[coco_id] for coco_id in images if image_of[coco_id].is_file()]
    return rows, [captions_file, karpathy, *pictures]


@register
def tasks() -> list[Task]:
    rule = ("CIDEr-D per language (pycocoevalcap, PTB tokenizer, the language's own document "
            "frequencies), unweighted mean over languages; greedy")
    common = dict(beams=1, metric="cider/avg", rule=rule,
                  explain=explain_cider(frequencies="its language's references (each language "
                                                    "is scored on its own)"))
    return [
        caption_task("coco35l_dev", DatasetSource("coco35l", "dev", reader=read_coco35l),
                     "image/id", "captions", "COCO-35L dev, 35 languages (local files: see "
                     "the module)", keep=("language",), prompt="caption {language}",
                     scorer=scorer("avg34"), **common),
        # one split per language, joined: each row's language is its split (SPLIT_COLUMN)
        caption_task("xm3600", DatasetSource("floschne/xm3600", "+".join(LANGUAGES_XM3600),
                                           split_column=SPLIT_COLUMN),
                     None, "captions", "Crossmodal-3600, 36 languages, raw captions as "
                     "references", keep=(SPLIT_COLUMN,), prompt=f"caption {{{SPLIT_COLUMN}}}",
                     scorer=scorer("avg35", SPLIT_COLUMN), **common),
    ]
