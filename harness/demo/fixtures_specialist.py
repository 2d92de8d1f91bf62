"""Fixture rows for PaliGemma 2's specialist benchmarks, each in its data's own schema (the hub
copy's, or for local-only data the layout the task documents): text spotting, tables, sheet
music, molecules, DOCCI, MIMIC-CXR, VSR. The images are simple PIL renderings of their targets
(words on a scene, a ruled table, kern lines, a molecule's SMILES): they only need to exercise
the pipeline.
"""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw

from paligemma_eval.harness.demo import world

ROWS = 8   # the end-to-end tests use 8; more would only lengthen the demo
WORDS = ("EXIT", "Open", "SALE", "cafe", "No.7", "Bus", "STOP", "tea")


def _png_of(image: Image.Image, kind: str = "PNG") -> dict:
    buffer = io.BytesIO()
    image.save(buffer, format=kind)
    return {"bytes": buffer.getvalue(), "path": None}


def _text_image(lines: list[str], width: int = 112, line_height: int = 12) -> Image.Image:
    image = Image.new("RGB", (width, max(56, line_height * len(lines) + 8)), "white")
    draw = ImageDraw.Draw(image)
    for k, line in enumerate(lines):
        draw.text((4, 4 + k * line_height), line.replace("\t", "  "), fill="black")
    return image


def spotting(polygons: bool):
    """HierText-schema rows: words with pixel vertices (quadrilaterals for ICDAR, eight-point
    polygons for Total-Text), one illegible word per image."""
    def make(rng: random.Random) -> list[dict]:
        rows = []
        for i in range(ROWS):
            image = world.random_scene(rng).render().resize((112, 112))
            draw = ImageDraw.Draw(image)
            words = []
            for k, text in enumerate(rng.sample(WORDS, 2) + ["###"]):
                x, y = 6 + 50 * (k % 2), 10 + 40 * k
                draw.text((x, y), text, fill="yellow")
                x1, y1 = x + 6 * len(text) + 2, y + 12
                vertices = [[x, y], [x1, y], [x1, y1], [x, y1]]
                if polygons:   # Total-Text's curved outlines: more than four points
                    vertices = [[x, y], [(x + x1) / 2, y - 1], [x1, y], [x1, (y + y1) / 2],
                                [x1, y1], [(x + x1) / 2, y1 + 1], [x, y1], [x, (y + y1) / 2]]
                words.append({"vertices": vertices, "text": text, "legible": text != "###"})
            rows.append({"image_id": f"img_{i + 1}", "image": _png_of(image), "words": words})
        return rows
    return make


def _table(rng: random.Random) -> tuple[list[str], list[list[dict]], list[list[str]]]:
    """PubTabNet structure tokens with a header cell spanning two columns, the cells' tokens,
    and the rendered grid's text."""
    values = [[str(rng.randint(1, 99)) for _ in range(2)] for _ in range(2)]
    structure = ["<thead>", "<tr>", "<td", ' colspan="2"', ">", "</td>", "</tr>", "</thead>",
                 "<tbody>"]
    cells = [{"tokens": list("Total"), "bbox": [2, 2, 60, 12]}]
    for r, row in enumerate(values):
        structure += ["<tr>", "<td>", "</td>", "<td>", "</td>", "</tr>"]
        cells += [{"tokens": list(v), "bbox": [2 + 56 * c, 16 + 14 * r, 50 + 56 * c, 28 + 14 * r]}
                  for c, v in enumerate(row)]
    structure.append("</tbody>")
    return structure, [cells], [["Total"], *values]


def tables(with_filename: bool):
    def make(rng: random.Random) -> list[dict]:
        rows = []
        for i in range(ROWS):
            structure, cells, text = _table(rng)
            image = _text_image(["  ".join(r) for r in text])
            otsl = ["fcel", "lcel", "nl", "fcel", "fcel", "nl", "fcel", "fcel", "nl"]
            row = {"cells": cells, "otsl": otsl, "html": structure, "html_restored": structure,
                   "cols": 2, "rows": 3, "html_len": len(structure), "otsl_len": len(otsl),
                   "image": _png_of(image)}
            if with_filename:
                row.update(filename=f"PMC{1000 + i}_table_0.png", split="val", imgid=i,
                           dataset="PubTabNet")
            rows.append(row)
        return rows
    return make


def grandstaff(rng: random.Random) -> list[dict]:
    rows = []
    for _ in range(ROWS):
        notes = [f"4{rng.choice('cdefgab')}\t4{rng.choice('CDEFGAB')}" for _ in range(3)]
        kern = "\n".join(["**kern\t**kern", "*clefF4\t*clefG2", "=1\t=1", *notes, "*-\t*-"])
        rows.append({"image": _png_of(_text_image(kern.split("\n"))), "transcription": kern})
    return rows


SMILES = ("CCO", "c1ccccc1", "CC(=O)O", "C1CCCCC1", "CCN", "OC(=O)c1ccccc1")


def molscribe(rng: random.Random) -> list[dict]:
    return [{"image_id": f"chemdraw_{i}", "file_path": _png_of(_text_image([smiles])),
             "SMILES": smiles} for i, smiles in enumerate(rng.choice(SMILES) for _ in range(ROWS))]


def docci(rng: random.Random) -> list[dict]:
    """docci_descriptions.jsonlines records of the qual_dev split, images beside the file."""
    rows = []
    for i in range(ROWS):
        scene = world.random_scene(rng)
        description = (f"A {scene.background} background. {scene.caption.capitalize()}. "
                       f"Nothing else is visible in the image.")
        rows.append({"example_id": f"qual_dev_{i:05d}", "split": "qual_dev",
                     "image_file": f"images/qual_dev_{i:05d}.jpg", "description": description,
                     "_png": _png_of(scene.render(), "JPEG")["bytes"],
                     "_path_column": "image_file"})
    return rows


def mimic_cxr(rng: random.Random) -> list[dict]:
    rows = []
    for i in range(ROWS):
        image = Image.new("RGB", (64, 64), (20, 20, 20))
        ImageDraw.Draw(image).ellipse((12, 8, 52, 58), fill=(rng.randint(90, 200),) * 3)
        rows.append({"study_id": 50000000 + i, "image": _png_of(image),
                     "indication": rng.choice(["", "Cough.", "Shortness of breath."]),
                     "findings": "The lungs are clear. No pleural effusion.",
                     "impression": rng.choice(["No acute process.", ""])})
    return rows


def vsr(rng: random.Random) -> list[dict]:
    """The hub's jsonl rows, each COCO image written beside the file under its own name."""
    rows = []
    for i in range(ROWS):
        scene = world.random_scene(rng)
        name = f"{100000 + i:012d}.jpg"
        label = rng.randint(0, 1)
        relation = "left of" if label else "right of"
        rows.append({"image": name, "image_link": f"http://images.cocodataset.org/val2017/{name}",
                     "caption": f"The {scene.shape} is {relation} the frame.", "label": label,
                     "relation": relation, "subj": scene.shape, "obj": "frame",
                     "annotator_id": i, "vote_true_validator_id": [1],
                     "vote_false_validator_id": [],
                     "_png": _png_of(scene.render(), "JPEG")["bytes"],
                     "_path_column": "image"})
    return rows


FIXTURES = {
    ("local/icdar2015_incidental", None, "test"): spotting(polygons=False),
    ("local/totaltext", None, "test"): spotting(polygons=True),
    ("ds4sd/FinTabNet_OTSL", None, "test"): tables(with_filename=False),
    ("ds4sd/PubTabNet_OTSL", None, "val"): tables(with_filename=True),
    ("antoniorv6/grandstaff", None, "test"): grandstaff,
    ("local/molscribe_chemdraw", None, "test"): molscribe,
    ("local/mimic_cxr", None, "test"): mimic_cxr,
}

JSONL_FIXTURES = {("google/docci", None, "qual_dev"): docci,
                  ("cambridgeltl/vsr_zeroshot", None, "test"): vsr,
                  ("cambridgeltl/vsr_random", None, "test"): vsr}
