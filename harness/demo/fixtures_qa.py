"""Fixtures of the short-answer families (A-OKVQA, GQA, xGQA, OCR-VQA, AI2D, TallyQA,
CountBenchQA, ChartQA, ScienceQA, RSVQA), in their hub copies' schemas (RSVQA: the local JSONL
layout tasks/rsvqa.py documents), drawn from the synthetic world."""

from __future__ import annotations

import random
from collections.abc import Callable

from paligemma_eval.harness.demo import world
from paligemma_eval.harness.demo.fixtures import ROWS, _human_answers, _png, _qa

XGQA_LANGUAGES = ("bn", "de", "en", "id", "ko", "pt", "ru", "zh")
# A word for "Question:" in each language before the world's question: xGQA asks GQA's
# questions in translation, the fixture only needs each language's text to differ.
XGQA_PREFIX = {"bn": "প্রশ্ন:", "de": "Frage:", "en": "", "id": "Pertanyaan:",
               "ko": "질문:", "pt": "Pergunta:", "ru": "Вопрос:", "zh": "问题:"}


def _choices(answer: str, rng: random.Random) -> tuple[list[str], int]:
    """Four options holding the answer once, drawn from the world's vocabulary."""
    vocabulary = sorted({*world.COLORS, *world.SHAPES, *world.BACKGROUNDS, "1", "2", "3"}
                        - {answer})
    options = [answer, *rng.sample(vocabulary, 3)]
    rng.shuffle(options)
    return options, options.index(answer)


def aokvqa(labelled: bool) -> Callable[[random.Random], list[dict]]:
    def make(rng: random.Random) -> list[dict]:
        rows = []
        for qid, scene, question, answer, _ in _qa(rng, ROWS):
            choices, correct = _choices(answer, rng)
            rows.append({"image": _png(scene), "question_id": f"aok{qid}", "question": question,
                         "choices": choices,
                         "correct_choice_idx": correct if labelled else None,
                         "direct_answers": _human_answers(answer, rng) if labelled else [],
                         "difficult_direct_answer": False,
                         "rationales": [f"The picture shows {scene.caption}."] if labelled
                         else []})
        return rows
    return make


def gqa_images(rng: random.Random) -> list[dict]:
    return [{"id": f"n{i}", "image": _png(world.random_scene(random.Random(f"gqa-{i}")))}
            for i in range(ROWS // 3)]


def gqa_questions(rng: random.Random) -> list[dict]:
    """Three questions per image of `gqa_images` (the same seeded scenes), in shuffled order."""
    rows = []
    for i in range(ROWS // 3):
        scene = world.random_scene(random.Random(f"gqa-{i}"))
        for k, (question, answer, _) in enumerate(rng.sample(world.questions(scene), 3)):
            rows.append({"id": f"{2000 + 3 * i + k}", "imageId": f"n{i}", "question": question,
                         "answer": answer, "fullAnswer": f"The answer is {answer}.",
                         "isBalanced": True})
    rng.shuffle(rows)
    return rows


def xgqa(language: str) -> Callable[[random.Random], list[dict]]:
    def make(rng: random.Random) -> list[dict]:
        prefix = XGQA_PREFIX[language]
        return [{"question": f"{prefix} {q}".strip(), "answer": a, "full_answer": f"It is {a}.",
                 "image_id": f"x{qid}", "image": _png(scene)}
                for qid, scene, q, a, _ in _qa(rng, ROWS // 3)]
    return make


def ocrvqa(rng: random.Random) -> list[dict]:
    rows = []
    for i in range(ROWS // 3):
        scene = world.random_scene(rng)
        asked = rng.sample(world.questions(scene), 3)
        rows.append({"image": _png(scene), "image_id": f"{100000 + i}",
                     "questions": [q for q, _, _ in asked],
                     # OCR-VQA's answers are title-cased book data: the rule lower-cases
                     "answers": [a.title() for _, a, _ in asked],
                     "ocr_tokens": [], "ocr_info": [], "title": scene.caption,
                     "authorName": "A. Painter", "genre": "Art", "image_width": 56,
                     "image_height": 56, "image_url": "", "set_name": "test"})
    return rows


def ai2d(rng: random.Random) -> list[dict]:
    rows = []
    for _, scene, question, answer, _ in _qa(rng, ROWS):
        options, correct = _choices(answer, rng)
        rows.append({"question": question, "options": options, "answer": str(correct),
                     "image": _png(scene)})
    return rows


def tallyqa(rng: random.Random) -> list[dict]:
    rows = []
    for _ in range(ROWS // 2):
        scene = world.random_scene(rng)
        plural = f"{scene.shape}s"
        rows.append({"image": _png(scene), "qa": [
            {"question": "how many shapes are there?", "answer": scene.count, "is_simple": True},
            {"question": f"how many {scene.color} {plural} are on the {scene.background} "
                         f"background?", "answer": scene.count, "is_simple": False}]})
    return rows


def countbenchqa(rng: random.Random) -> list[dict]:
    rows = []
    for _ in range(ROWS):
        scene = world.random_scene(rng)
        rows.append({"image": _png(scene), "text": scene.caption,
                     "question": "how many shapes are there?", "number": scene.count})
    return rows


def chartqa(rng: random.Random) -> list[dict]:
    rows = []
    for _, scene, question, answer, _ in _qa(rng, ROWS):
        rows.append({"type": rng.choice(["human_test", "augmented_test"]), "question": question,
                     "answer": answer, "image": _png(scene)})
    return rows


def scienceqa(rng: random.Random) -> list[dict]:
    rows = []
    for _, scene, question, answer, _ in _qa(rng, ROWS):
        choices, correct = _choices(answer, rng)
        choices = choices[:2] if correct < 2 else [choices[0], answer]
        rows.append({"image": _png(scene), "question": question, "choices": choices,
                     "answer": choices.index(answer),
                     "hint": rng.choice(["", f"The background is {scene.background}."]),
                     "task": "closed choice", "grade": "grade2", "subject": "natural science",
                     "topic": "shapes", "category": "Colors", "skill": "Identify shapes",
                     "lecture": "", "solution": f"It is {answer}."})
    return rows


def rsvqa(types: tuple[str, ...], folder: str) -> Callable[[random.Random], list[dict]]:
    """JSONL rows with an image file beside them (write_jsonl's `_png` convention), in
    the layout tasks/rsvqa.py documents; one numeric question per image, which the task skips."""
    def make(rng: random.Random) -> list[dict]:
        rows = []
        for i in range(ROWS // 3):
            scene = world.random_scene(rng)
            image = f"{folder}/{i}.png"
            asked = {"comp": (f"is the {scene.shape} {scene.color}?", "Yes"),
                     "presence": (f"is there a {scene.shape}?", "yes"),
                     "rural_urban": ("is it a rural or an urban area?",
                                     "rural" if scene.background == "white" else "urban")}
            for kind in (*types, "count"):
                question, answer = asked.get(kind, ("how many shapes are there?",
                                                    str(scene.count)))
                rows.append({"id": len(rows), "img_id": i, "type": kind, "question": question,
                             "answers": [answer], "image": image, "_path_column": "image",
                             "_png": _png(scene)["bytes"]})
        return rows
    return make


FIXTURES = {
    ("HuggingFaceM4/A-OKVQA", None, "validation"): aokvqa(True),
    ("HuggingFaceM4/A-OKVQA", None, "test"): aokvqa(False),
    ("lmms-lab/GQA", "testdev_balanced_images", "testdev"): gqa_images,
    ("lmms-lab/GQA", "testdev_balanced_instructions", "testdev"): gqa_questions,
    **{("neulab/PangeaBench-xgqa", None, lang): xgqa(lang) for lang in XGQA_LANGUAGES},
    ("howard-hou/OCR-VQA", None, "test"): ocrvqa,
    ("lmms-lab/ai2d", None, "test"): ai2d,
    ("vikhyatk/tallyqa-test", None, "test"): tallyqa,
    ("vikhyatk/CountBenchQA", None, "test"): countbenchqa,
    ("lmms-lab/ChartQA", None, "test"): chartqa,
    ("lmms-lab/ScienceQA", "ScienceQA-IMG", "test"): scienceqa,
}

JSONL_FIXTURES = {
    ("zenodo/RSVQA-LR", None, "test"): rsvqa(("comp", "presence", "rural_urban"), "Images_LR"),
    ("zenodo/RSVQA-HR", None, "test"): rsvqa(("comp", "presence"), "Data"),
    ("zenodo/RSVQA-HR", None, "test_phili"): rsvqa(("comp", "presence"), "Data_phili"),
}
