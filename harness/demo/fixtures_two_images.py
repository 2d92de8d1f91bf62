"""Fixtures for the two-image tasks (NLVR2, MaRVL) in their hub copies' schemas: a sentence
about a pair of synthetic scenes, true or false."""

from __future__ import annotations

import random

from paligemma_eval.harness.demo import world
from paligemma_eval.harness.demo.fixtures import ROWS, _png
from paligemma_eval.tasks.nlvr2 import MARVL_LANGUAGES


def _pair(rng: random.Random) -> tuple[world.Scene, world.Scene, str, bool]:
    left, right = world.random_scene(rng), world.random_scene(rng)
    if rng.random() < 0.5:
        return left, right, f"both images show a {left.color} shape", left.color == right.color
    return left, right, f"the left image shows a {right.shape}", left.shape == right.shape


def nlvr2(rng: random.Random) -> list[dict]:
    rows = []
    for i in range(ROWS):
        left, right, sentence, label = _pair(rng)
        rows.append({"identifier": f"test1-{i}-0-0", "sentence": sentence,
                     "left_image": _png(left), "right_image": _png(right),
                     "label": str(label)})
    return rows


def marvl(language: str):
    def make(rng: random.Random) -> list[dict]:
        rows = []
        for i in range(6):
            left, right, sentence, label = _pair(rng)
            rows.append({"id": f"{language}-{i}", "hypothesis": f"[{language}] {sentence}",
                         "hypo_en": sentence, "language": language, "label": label,
                         "chapter": "synthetic", "concept": "shape", "annotator_info": "{}",
                         "left_img_id": f"{language}-{i}-l", "right_img_id": f"{language}-{i}-r",
                         "left_img": _png(left), "right_img": _png(right)})
        return rows
    return make


FIXTURES = {("HuggingFaceM4/NLVR2", None, "test"): nlvr2,
            **{("floschne/marvl", None, language): marvl(language)
               for language in MARVL_LANGUAGES}}
