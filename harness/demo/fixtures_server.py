"""Fixtures for the test-server splits (questions and images, no answers), in the hub copies'
schemas (the columns a test row carries): lmms-lab/VQAv2 test, lmms-lab/textvqa test,
lmms-lab/VizWiz-VQA test."""

from __future__ import annotations

import random

from paligemma_eval.harness.demo.fixtures import ROWS, _png, _qa


def vqav2_test(rng: random.Random) -> list[dict]:
    return [{"question_id": qid, "question": q, "image_id": qid, "image": _png(scene)}
            for qid, scene, q, _, _ in _qa(rng, ROWS)]


def textvqa_test(rng: random.Random) -> list[dict]:
    return [{"question_id": qid, "question": q, "image_id": f"{qid:016x}", "image": _png(scene)}
            for qid, scene, q, _, _ in _qa(rng, ROWS)]


def vizwiz_test(rng: random.Random) -> list[dict]:
    # the hub copy's question_id is the image's file name without ".jpg"
    return [{"question_id": f"VizWiz_test_{qid:08d}", "question": q, "image": _png(scene)}
            for qid, scene, q, _, _ in _qa(rng, ROWS)]


FIXTURES = {
    ("lmms-lab/VQAv2", None, "test"): vqav2_test,
    ("lmms-lab/textvqa", None, "test"): textvqa_test,
    ("lmms-lab/VizWiz-VQA", None, "test"): vizwiz_test,
}
