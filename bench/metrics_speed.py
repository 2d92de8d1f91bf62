"""Metric and bootstrap speed at benchmark scale.

VQA accuracy over 200,000 (prediction, 10 answers) pairs, ANLS over 50,000, and a 1,000-resample
bootstrap over 200,000 per-example scores; targets: under 5 s, 5 s and a few seconds. Also CIDEr
over 5,000 images (COCO val2017's size) and its interval: a bootstrap over per-image CIDEr with
the document frequencies of the whole set held fixed.
"""

from __future__ import annotations

import random
import time

import numpy as np

from paligemma_eval.harness.scores import Ratio, bootstrap
from paligemma_eval.tasks.metrics.captioning import caption_scores
from paligemma_eval.tasks.metrics.anls import anls
from paligemma_eval.tasks.metrics.vqa_accuracy import normalize, vqa_accuracy

WORDS = ["yes", "no", "2", "two", "red", "the dog", "dog", "10,000", "dont", "t.v.", "blue car",
         "a man", "left", "3", "white", "cat", "table", "none", "1.5", "tennis"]


def timed(label: str, function) -> None:
    started = time.perf_counter()
    function()
    print(f"{label}: {time.perf_counter() - started:.2f} s")


def main() -> None:
    rng = random.Random(0)
    vqa = [(rng.choice(WORDS), [rng.choice(WORDS) if rng.random() < 0.3 else w for w in
                                [rng.choice(WORDS)] * 10]) for _ in range(200_000)]
    docs = [("".join(rng.choice("abcdefgh ") for _ in range(rng.randint(0, 20))),
             ["".join(rng.choice("abcdefgh ") for _ in range(rng.randint(1, 20)))
              for _ in range(rng.randint(1, 3))]) for _ in range(50_000)]
    normalize.cache_clear()
    timed("VQA accuracy, 200,000 pairs", lambda: [vqa_accuracy(p, a) for p, a in vqa])
    timed("ANLS, 50,000 questions", lambda: [anls(p, a) for p, a in docs])
    scores = Ratio.mean(np.random.default_rng(0).random(200_000))
    timed("bootstrap, 1,000 resamples x 200,000 scores",
          lambda: bootstrap({"metric": scores}, resamples=1000, seed=0))
    captions = [" ".join(rng.choice(WORDS) for _ in range(8)) for _ in range(5000)]
    references = [[" ".join(rng.choice(WORDS) for _ in range(9)) for _ in range(5)]
                  for _ in range(5000)]
    ids = [str(i) for i in range(5000)]
    result = {}
    timed("CIDEr-D (+ROUGE-L, BLEU-4) with PTB tokenizer, 5,000 images",
          lambda: result.update(scores=caption_scores(captions, references, ids, meteor=False)[0]))
    timed("CIDEr interval, 1,000 resamples over 5,000 images",
          lambda: bootstrap(result["scores"].ratios, resamples=1000, seed=0))


if __name__ == "__main__":
    main()
