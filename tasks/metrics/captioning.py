"""Captioning metrics with pycocoevalcap, exactly as the COCO caption server computes them.

References and predictions both go through the PTB tokenizer (Stanford CoreNLP, needs Java), then
the scorers. pycocoevalcap's `Cider` is CIDEr-D, the COCO server's CIDEr. Corpus CIDEr is the mean of
per-image scores given the document frequencies of the whole reference set, so intervals come from
a bootstrap over images with those frequencies held fixed (stated in the results' notes). BLEU-4
and METEOR are corpus-level and reported as point values.
"""

from __future__ import annotations

import re

import numpy as np
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

from harness.scores import Ratio, Scores

# The PTB tokenizer reads one caption per line: a newline or control character inside a caption
# would shift every caption after it.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _clean(text: str) -> str:
    return _CONTROL.sub(" ", text)


def tokenize(captions: dict[str, list[str]]) -> dict[str, list[str]]:
    return PTBTokenizer().tokenize(
        {k: [{"caption": _clean(c)} for c in v] for k, v in captions.items()})


def caption_scores(predictions: list[str], references: list[list[str]], ids: list[str],
                   meteor: bool = True) -> tuple[Scores, np.ndarray]:
    """Scores and the per-image CIDEr array (in `ids` order)."""
    gts = tokenize({i: refs for i, refs in zip(ids, references)})
    res = tokenize({i: [p] for i, p in zip(ids, predictions)})
    # pycocoevalcap iterates over gts' keys; keep our order so per-image arrays line up with ids.
    gts, res = {i: gts[i] for i in ids}, {i: res[i] for i in ids}
    _, cider = Cider().compute_score(gts, res)
    _, rouge = Rouge().compute_score(gts, res)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    points = {"bleu4": float(bleu[3])}
    if meteor:
        points["meteor"] = float(Meteor().compute_score(gts, res)[0])
    cider = np.asarray(cider, dtype=float)
    scores = Scores(units=list(ids), ratios={"cider": Ratio.mean(cider),
                                             "rouge_l": Ratio.mean(np.asarray(rouge))},
                    points=points,
                    notes={"cider": "CIDEr-D (pycocoevalcap); interval: bootstrap over images "
                                    "with document frequencies fixed at the full set"})
    return scores, cider
