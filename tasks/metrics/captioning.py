"""Captioning metrics with pycocoevalcap, exactly as the COCO caption server computes them.

References and predictions both go through the PTB tokenizer (Stanford CoreNLP, needs Java), then
the scorers. pycocoevalcap's `Cider` is CIDEr-D, the COCO server's CIDEr. Corpus CIDEr is the mean
of per-image scores given the document frequencies of the whole reference set, so intervals come
from a bootstrap over images with those frequencies held fixed (stated in the results' notes).
BLEU-4 is corpus-level: its interval re-sums the per-image n-gram counts and lengths over resampled
images, with pycocoevalcap's own formula. METEOR's corpus score comes from the Java scorer and is
reported as a point value.
"""

from __future__ import annotations

import atexit
import os
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from paligemma_eval.harness.scores import Ratio, Scores, Statistic
from paligemma_eval.tasks.metrics import Explain

# The PTB tokenizer reads one caption per line: a newline or control character inside a caption
# would shift every caption after it, and so would the separators Java's tokenizer (and Python's
# splitlines) also end a line at: NEL U+0085, LINE / PARAGRAPH SEPARATOR U+2028 / U+2029.
_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]+")


def _clean(text: str) -> str:
    return _CONTROL.sub(" ", text)


# pycocoevalcap is imported where captions are scored: listing or running other tasks does not
# need it (nor its 100 MB wheel, e.g. on a GPU box that only generates).
def tokenize(captions: dict[str, list[str]]) -> dict[str, list[str]]:
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    return PTBTokenizer().tokenize(
        {k: [{"caption": _clean(c)} for c in v] for k, v in captions.items()})


def tokenize_both(references: dict[str, list[str]],
                  predictions: dict[str, str]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(gts, res) as two tokenizer calls would give them, from one: the PTB tokenizer reads one
    caption per line and keeps no state between lines, and each call starts a Java process."""
    both = tokenize({**{f"g{i}": refs for i, refs in references.items()},
                     **{f"r{i}": [p] for i, p in predictions.items()}})
    return {i: both[f"g{i}"] for i in references}, {i: both[f"r{i}"] for i in predictions}


_meteor_lock = threading.Lock()
_meteor: dict[int, Any] = {}   # pid -> pycocoevalcap Meteor: a forked child starts its own


def meteor_score(gts: dict[str, list[str]], res: dict[str, list[str]]) -> float:
    """Corpus METEOR from pycocoevalcap's Java scorer. One scorer serves the whole process:
    starting one loads METEOR's paraphrase tables (about 5 s, most of a small captioning task's
    time), and it keeps no state between calls, each EVAL line carrying its own statistics.
    The price: its Java process holds about 1 GiB until this process exits."""
    from pycocoevalcap.meteor.meteor import Meteor

    with _meteor_lock:
        scorer = _meteor.get(os.getpid())
        if scorer is None or scorer.meteor_p.poll() is not None:
            scorer = _meteor[os.getpid()] = Meteor()
        try:
            return float(scorer.compute_score(gts, res)[0])
        except BaseException:
            # not reused: its Java side may be mid-reply, and pycocoevalcap left its lock held
            # (which its __del__ would wait on for ever)
            del _meteor[os.getpid()]
            scorer.meteor_p.kill()
            if scorer.lock.locked():
                scorer.lock.release()
            raise


@atexit.register
def _stop_meteor() -> None:
    scorer = _meteor.pop(os.getpid(), None)
    if scorer is not None:
        scorer.meteor_p.kill()


def bleu4_statistic(gts: dict[str, list[str]], res: dict[str, list[str]],
                    ids: list[str]) -> Statistic:
    """Per-image BLEU counts (pycocoevalcap's cook functions, 'closest' reference length) whose
    sums give corpus BLEU-4 exactly as `Bleu(4).compute_score` does."""
    from pycocoevalcap.bleu.bleu_scorer import BleuScorer

    scorer = BleuScorer(n=4)
    for i in ids:
        scorer += (res[i][0], gts[i])
    parts: dict[str, list[float]] = {k: [] for k in
                                     ["testlen", "reflen", *(f"{w}{k}" for w in ("guess",
                                                                                 "correct")
                                                               for k in range(4))]}
    for comps in scorer.ctest:
        parts["testlen"].append(comps["testlen"])
        parts["reflen"].append(scorer._single_reflen(comps["reflen"], "closest",
                                                     comps["testlen"]))
        for k in range(4):
            parts[f"guess{k}"].append(comps["guess"][k])
            parts[f"correct{k}"].append(comps["correct"][k])
    return Statistic({k: np.asarray(v, dtype=float) for k, v in parts.items()}, _bleu4)


def _bleu4(sums: dict[str, np.ndarray]) -> np.ndarray:
    tiny, small = 1e-15, 1e-9   # pycocoevalcap's constants
    product = np.ones_like(sums["testlen"], dtype=float)
    for k in range(4):
        product = product * (sums[f"correct{k}"] + tiny) / (sums[f"guess{k}"] + small)
    bleu = product ** 0.25
    ratio = (sums["testlen"] + tiny) / (sums["reflen"] + small)
    return np.where(ratio < 1, bleu * np.exp(1 - 1 / np.maximum(ratio, tiny)), bleu)


def caption_scores(predictions: list[str], references: list[list[str]], ids: list[str],
                   meteor: bool = True) -> tuple[Scores, np.ndarray]:
    """Scores and the per-image CIDEr array (in `ids` order)."""
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    # pycocoevalcap iterates over gts' keys: in `ids` order, so per-image arrays line up
    gts, res = tokenize_both({i: refs for i, refs in zip(ids, references)},
                             {i: p for i, p in zip(ids, predictions)})
    _, cider = Cider().compute_score(gts, res)
    _, rouge = Rouge().compute_score(gts, res)
    points = {}
    if meteor:
        points["meteor"] = meteor_score(gts, res)
    cider = np.asarray(cider, dtype=float)
    scores = Scores(units=list(ids), ratios={"cider": Ratio.mean(cider),
                                             "rouge_l": Ratio.mean(np.asarray(rouge))},
                    points=points, statistics={"bleu4": bleu4_statistic(gts, res, ids)},
                    notes={"cider": "CIDEr-D (pycocoevalcap); interval: bootstrap over images "
                                    "with document frequencies fixed at the full set"})
    return scores, cider


def cider_per_group(predictions: list[str], references: list[list[str]], ids: list[str],
                    groups: list[str]) -> np.ndarray:
    """Per-example CIDEr-D where each group (language) is its own evaluation: its document
    frequencies come from its own references only, as big_vision's one coco_caption evaluator
    per language. The PTB tokenizer works line by line, so one call tokenizes every group."""
    from pycocoevalcap.cider.cider import Cider

    gts, res = tokenize_both({i: refs for i, refs in zip(ids, references)},
                             {i: p for i, p in zip(ids, predictions)})
    values = np.zeros(len(ids))
    for group in sorted(set(groups)):
        members = [k for k, g in enumerate(groups) if g == group]
        _, scores = Cider().compute_score({ids[k]: gts[ids[k]] for k in members},
                                          {ids[k]: res[ids[k]] for k in members})
        values[members] = scores
    return values


def explain_cider(references: Callable[[Any], list[str]] = lambda t: t["references"],
                  frequencies: str = "the whole reference set") -> Explain:
    """Task.explain for CIDEr-scored captions: the references, and what the per-example score
    is. Not recomputed here (the PTB tokenizer is a Java process): the score shown is the
    scorer's; `frequencies` says whose references give the n-gram document frequencies."""
    def explain(predictions: list[str], targets: list[Any]) -> Iterator[dict[str, Any]]:
        for target in targets:
            found = references(target)
            yield {"references": found,
                   "why": [f"the score is this caption's CIDEr-D against its {len(found)} "
                           f"reference{'s' if len(found) != 1 else ''} (both PTB-tokenised), "
                           f"with n-gram document frequencies from {frequencies}; the task's "
                           f"CIDEr is the mean over examples",
                           "BLEU-4 (and METEOR, where scored) are corpus-level: no per-example "
                           "share"]}
    return explain
