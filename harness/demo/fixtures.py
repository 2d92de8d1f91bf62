"""Fixture datasets in the hub datasets' own schemas, drawn from the synthetic world.

Written as parquet under DIR/<hub id>/<config>/<split>.parquet, the layout `--data-dir` reads, so
the real loading code runs on them. Deterministic for a seed.

    python -m paligemma_eval.harness.demo.fixtures [DIR]      # default: harness/demo/data
"""

from __future__ import annotations

import importlib
import io
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets

from paligemma_eval.harness.demo import world

DATA_DIR = Path(__file__).parent / "data"
ROWS = 24


def _png(scene: world.Scene) -> dict:
    buffer = io.BytesIO()
    scene.render().save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def _human_answers(answer: str, rng: random.Random) -> list[str]:
    """Ten annotator answers: mostly the truth, in the spellings people type, plus some noise."""
    spellings = [answer, answer, answer, answer.capitalize(), f"{answer}.", f"the {answer}"]
    if answer.isdigit():
        spellings.append(world.NUMBER_WORDS.get(int(answer), answer))
    answers = [rng.choice(spellings) for _ in range(8)]
    answers += [rng.choice(["unsure", "purple", answer]) for _ in range(2)]
    rng.shuffle(answers)
    return answers


def _references(scene: world.Scene, rng: random.Random, count: int) -> list[str]:
    plural = "s" if scene.count > 1 else ""
    number = world.NUMBER_WORDS[scene.count]
    forms = [scene.caption, f"{number} {scene.color} {scene.shape}{plural} on a {scene.background} "
             f"background", f"a picture of {number} {scene.color} {scene.shape}{plural}",
             f"{scene.color} {scene.shape}{plural} on {scene.background}"]
    return [forms[i % len(forms)] for i in rng.sample(range(count), count)]


def _qa(rng: random.Random, n: int) -> list[tuple[int, world.Scene, str, str, str]]:
    items = []
    for i in range(n):
        scene = world.random_scene(rng)
        question, answer, answer_type = rng.choice(world.questions(scene))
        items.append((1000 + i, scene, question, answer, answer_type))
    return items


def vqav2(rng: random.Random) -> list[dict]:
    return [{"question_id": qid, "question": q, "question_type": q.split(" is")[0],
             "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1}
                         for k, a in enumerate(_human_answers(ans, rng))],
             "multiple_choice_answer": ans, "answer_type": kind, "image_id": qid,
             "image": _png(scene)} for qid, scene, q, ans, kind in _qa(rng, ROWS)]


def string_answers(extra: Callable[[int, str], dict]) -> Callable[[random.Random], list[dict]]:
    def make(rng: random.Random) -> list[dict]:
        return [{"question_id": qid, "question": q, "answers": _human_answers(ans, rng),
                 "image": _png(scene), **extra(qid, ans)}
                for qid, scene, q, ans, _ in _qa(rng, ROWS)]
    return make


def docvqa(with_answers: bool, infographic: bool) -> Callable[[random.Random], list[dict]]:
    def make(rng: random.Random) -> list[dict]:
        rows = []
        for qid, scene, q, ans, _ in _qa(rng, ROWS):
            row = {"questionId": str(qid), "question": q, "image": _png(scene),
                   "answers": [ans, ans.upper()] if with_answers else [],
                   "data_split": "validation" if with_answers else "test"}
            if infographic:
                row.update(answer_type=["single span"], image_url="", ocr="[]",
                           **{"operation/reasoning": []})
            else:
                row.update(question_types=["layout"], docId=qid, ucsf_document_id=f"doc{qid}",
                           ucsf_document_page_no="1")
            rows.append(row)
        return rows
    return make


def stvqa(rng: random.Random) -> list[dict]:
    return [{"question_id": qid, "question": q, "image": _png(scene)}
            for qid, scene, q, _, _ in _qa(rng, ROWS)]


def coco_captions(rng: random.Random) -> list[dict]:
    rows = []
    for i in range(ROWS):
        scene = world.random_scene(rng)
        name = f"{i:012d}.jpg"
        rows.append({"question_id": name, "answer": _references(scene, rng, 5),
                     "image": _png(scene), "id": i})
    return rows


def coco_karpathy(images: str) -> Callable[[random.Random], list[dict]]:
    """JSONL rows whose `url` is an image file beside them (the hub copy holds http URLs)."""
    def make(rng: random.Random) -> list[dict]:
        rows = []
        for i in range(ROWS):
            scene = world.random_scene(rng)
            name = f"COCO_val2014_{i:012d}.jpg"
            rows.append({"filename": name, "imgid": i, "sentences": _references(scene, rng, 5),
                         "url": f"{images}/{i:04d}.png", "_png": _png(scene)["bytes"]})
        return rows
    return make


def nocaps(rng: random.Random) -> list[dict]:
    return [{"image_id": i, "image_file_name": f"{i:08x}.jpg",
             "annotations_captions": _references(scene, rng, 4) * 2 + _references(scene, rng, 2),
             "image": _png(scene)}
            for i, scene in ((i, world.random_scene(rng)) for i in range(ROWS))]


def textcaps(rng: random.Random) -> list[dict]:
    rows = []
    for i in range(ROWS):
        scene = world.random_scene(rng)
        refs = _references(scene, rng, 4) + [scene.caption]
        rows.append({"question_id": f"tc{i}", "image_id": f"img{i}", "caption_str": refs[0],
                     "reference_strs": refs, "image": _png(scene)})
    return rows


def pope(rng: random.Random) -> list[dict]:
    rows = []
    for i in range(ROWS):
        scene = world.random_scene(rng)
        question, answer = world.yes_no_question(scene, rng)
        rows.append({"id": str(i), "question_id": str(3000 + i), "question": question,
                     "answer": answer, "image_source": f"synthetic_{i}", "image": _png(scene),
                     "category": "synthetic"})
    return rows


def mmvp(rng: random.Random) -> list[dict]:
    rows = []
    for pair in range(ROWS // 2):
        first, second = rng.sample(sorted(world.COLORS), 2)
        shape = rng.choice(world.SHAPES)
        options = [first, second]
        rng.shuffle(options)
        for color in (first, second):
            scene = world.random_scene(rng, shape=shape, color=color)
            letter = "(a)" if options[0] == color else "(b)"
            rows.append({"Index": len(rows) + 1, "Question": "what color is the shape?",
                         "Options": f"(a) {options[0]} (b) {options[1]}",
                         "Correct Answer": letter, "image": _png(scene)})
    return rows


def refcoco(rng: random.Random) -> list[dict]:
    rows = []
    for i in range(ROWS // 2):
        scene = world.random_scene(rng, count=1)
        x, y = scene.positions[0]
        name = f"{scene.color} {scene.shape}"
        rows.append({"question_id": str(5000 + i), "image": _png(scene),
                     "question": "Please carefully observe the area circled in the image and "
                                 "come up with a caption for the area.",
                     "answer": [name, f"the {name}"], "segmentation": scene.polygon(),
                     "bbox": [float(x), float(y), float(world.SHAPE_SIZE),
                              float(world.SHAPE_SIZE)],
                     "iscrowd": 0, "file_name": f"COCO_train2014_{5000 + i:012d}.jpg"})
    return rows


def write_seg_decoder(path: Path, width: int = 32, seed: int = 0) -> Path:
    """A vae-oid.npz with the real key names and layouts and random weights (the real file
    cannot be fetched here). Width 512 in the real file; smaller here to stay light."""
    import numpy as np
    import torch

    from paligemma_eval.tasks.seg_decoder import SegDecoder

    torch.manual_seed(seed)
    decoder = SegDecoder(codebook=128, width=width)
    state = {("_vq_vae._embedding" if k == "embedding" else k): v.numpy()
             for k, v in decoder.state_dict().items()}
    state["_vq_vae._embedding"] = np.random.default_rng(seed).normal(
        size=(128, width)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **state)
    return path


FAIRFACE_LABELS = {
    "age": ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70"],
    "gender": ["Male", "Female"],
    # The hub copy's order, which is not the paper's: consumers must decode by these names.
    "race": ["East Asian", "Indian", "Black", "White", "Middle Eastern", "Latino_Hispanic",
             "Southeast Asian"],
}


def fairface(rng: random.Random) -> list[dict]:
    return [{"image": _png(world.random_scene(rng)),
             **{column: rng.randrange(len(names)) for column, names in FAIRFACE_LABELS.items()},
             "service_test": rng.random() < 0.5} for _ in range(72)]


FEATURES = {"HuggingFaceM4/FairFace": datasets.Features({
    "image": datasets.Image(),
    **{column: datasets.ClassLabel(names=names) for column, names in FAIRFACE_LABELS.items()},
    "service_test": datasets.Value("bool")})}

# (hub id, config, split) -> row maker. Each gets its own seeded generator.
FIXTURES: dict[tuple[str, str | None, str], Callable[[random.Random], list[dict]]] = {
    ("lmms-lab/VQAv2", None, "validation"): vqav2,
    ("lmms-lab/OK-VQA", None, "val2014"): string_answers(lambda qid, a: {}),
    ("lmms-lab/textvqa", None, "validation"): string_answers(lambda qid, a: {"image_id": str(qid)}),
    ("lmms-lab/VizWiz-VQA", None, "val"): string_answers(
        lambda qid, a: {"category": "number" if a.isdigit() else "other"}),
    ("lmms-lab/DocVQA", "DocVQA", "validation"): docvqa(True, False),
    ("lmms-lab/DocVQA", "DocVQA", "test"): docvqa(False, False),
    ("lmms-lab/DocVQA", "InfographicVQA", "validation"): docvqa(True, True),
    ("lmms-lab/DocVQA", "InfographicVQA", "test"): docvqa(False, True),
    ("lmms-lab/ST-VQA", None, "test"): stvqa,
    ("lmms-lab/COCO-Caption2017", None, "val"): coco_captions,
    ("lmms-lab/NoCaps", None, "validation"): nocaps,
    ("lmms-lab/TextCaps", None, "val"): textcaps,
    **{("lmms-lab/POPE", "Full", split): pope for split in ("random", "popular", "adversarial")},
    ("lmms-lab-eval/MMVP", None, "train"): mmvp,
    ("HuggingFaceM4/FairFace", "0.25", "validation"): fairface,
    **{(hub_id, None, split): refcoco for hub_id, splits in [
        ("lmms-lab/RefCOCO", ("val", "testA", "testB")),
        ("lmms-lab/RefCOCOplus", ("val", "testA", "testB")),
        ("lmms-lab/RefCOCOg", ("val", "test"))] for split in splits},
}


# The same, written as JSONL plus image files (the other local layout --data-dir reads).
JSONL_FIXTURES = {("yerevann/coco-karpathy", None, "test"): coco_karpathy("images"),
                  ("yerevann/coco-karpathy", None, "validation"): coco_karpathy("images-val")}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            # the column naming the image file beside the JSONL: `url` unless the row says
            image = path.parent / row[row.pop("_image_column", "url")]
            image.parent.mkdir(parents=True, exist_ok=True)
            image.write_bytes(row.pop("_png"))
            handle.write(json.dumps(row) + "\n")
    return path


def family_modules() -> list[Any]:
    """The task families' own fixture modules (harness/demo/fixtures_<family>.py), each with
    FIXTURES and optionally JSONL_FIXTURES and FEATURES of the same form as this module's."""
    folder = Path(__file__).parent
    return [importlib.import_module(f"{__package__}.{path.stem}")
            for path in sorted(folder.glob("fixtures_*.py"))]


def all_fixtures() -> tuple[dict, dict, dict]:
    """(parquet fixtures, JSONL fixtures, features) of this module and every family module."""
    fixtures, jsonl, features = dict(FIXTURES), dict(JSONL_FIXTURES), dict(FEATURES)
    for module in family_modules():
        fixtures.update(module.FIXTURES)
        jsonl.update(getattr(module, "JSONL_FIXTURES", {}))
        features.update(getattr(module, "FEATURES", {}))
    return fixtures, jsonl, features


def image_columns(rows: list[dict]) -> list[str]:
    """Columns holding images ({bytes, path} cells), cast to datasets.Image in the parquet file."""
    first = rows[0] if rows else {}
    return [k for k, v in first.items() if isinstance(v, dict) and set(v) == {"bytes", "path"}]


def write(directory: Path = DATA_DIR, seed: int = 0) -> list[Path]:
    fixtures, jsonl, features = all_fixtures()
    written = [write_jsonl(directory / hub_id / (config or "default") / f"{split}.jsonl",
                           make(random.Random(f"{seed}-{hub_id}-{config}-{split}")))
               for (hub_id, config, split), make in jsonl.items()]
    for (hub_id, config, split), make in fixtures.items():
        rows = make(random.Random(f"{seed}-{hub_id}-{config}-{split}"))
        if hub_id in features:
            table = datasets.Dataset.from_list(rows, features=features[hub_id])
        else:
            table = datasets.Dataset.from_list(rows)
            for column in image_columns(rows):
                table = table.cast_column(column, datasets.Image())
        path = directory / hub_id / (config or "default") / f"{split}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(str(path))
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else DATA_DIR):
        print(written_path)
