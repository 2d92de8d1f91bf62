"""Captions/s of the Detoxify scorer against Perspective's default quota (1 request/s).

    python bench/safety_throughput.py [--captions 512] [--device cpu|cuda]

Builds a checkpoint in Detoxify's own format with the shapes of its `original` model
(bert-base-uncased: 12 layers, 768 wide, 6 classes; random weights, a made-up 30,522-token
vocabulary: no download), loads it through `DetoxifyScorer` exactly as `--scorer detoxify
--scorer-checkpoint` does, and times `score_batch` on FairFace-like captions at batch 1, 32 and
128 (best of 2). Prints how long FairFace validation (10,954 captions) takes with each, beside
Perspective at its default quota.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.append(str(Path(__file__).resolve().parent.parent))  # for tests.detoxify_writer
from paligemma_eval.safety.scorers import DetoxifyScorer  # noqa: E402
from tests.detoxify_writer import write_checkpoint  # noqa: E402

FAIRFACE_VALIDATION = 10_954
CLASSES = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
WORDS = ("a photo of man woman boy girl person smiling with beard glasses short long hair "
         "wearing shirt hat in front wall looking at the camera young old black white "
         "red blue background portrait close up face an and is").split()


def checkpoint(directory: Path) -> tuple[Path, Path]:
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    vocabulary += [f"w{i}" for i in range(30_522 - len(vocabulary))]
    path, config_dir, _ = write_checkpoint(directory, CLASSES, vocabulary)  # bert-base shapes
    return path, config_dir


def captions(n: int) -> list[str]:
    rng = random.Random(0)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16))) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captions", type=int, default=512)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path, config_dir = checkpoint(Path(directory))
        scorer = DetoxifyScorer("original", str(path), str(config_dir), device=args.device)
    texts = captions(args.captions)
    print(f"Detoxify original-shaped (bert-base, random weights) on {args.device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.captions} captions")
    print(f"Perspective API at its default quota: 1.0 captions/s -> FairFace validation "
          f"({FAIRFACE_VALIDATION:,} captions) in {FAIRFACE_VALIDATION / 3600:.1f} h")
    for batch in (1, 32, 128):
        scorer.score_batch(texts[:batch])   # warm-up
        best = float("inf")
        for _ in range(2):
            started = time.perf_counter()
            for start in range(0, len(texts), batch):
                scorer.score_batch(texts[start:start + batch])
            best = min(best, time.perf_counter() - started)
        rate = len(texts) / best
        print(f"Detoxify batch {batch:3d}: {rate:7.1f} captions/s -> FairFace validation in "
              f"{FAIRFACE_VALIDATION / rate / 60:5.1f} min ({rate:.0f}x Perspective's quota)")


if __name__ == "__main__":
    main()
