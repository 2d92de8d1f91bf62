import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest

from paligemma_eval.harness.data import sha256_files
from paligemma_eval.harness.results import read_unit_scores
from paligemma_eval.reports.render import render
from tests.conftest import chromium_page, cli
from tests.test_report import EVIL, RTL

TASKS = "vqav2_val,refcoco_val_detect"


def _run(model: str, out: Path, data_dir: Path) -> Path:
    done = subprocess.run(cli("run", "--model", model, "--tasks", TASKS, "--data-dir",
                              str(data_dir), "--bootstrap", "20", "--output", str(out)),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("browse")
    good = _run("tiny-paligemma", root / "good", data_dir)
    audit = subprocess.run(cli("safety", "--model", "tiny-paligemma", "--scorer", "local-server",
                               "--qps", "50", "--limit", "12", "--data-dir", str(data_dir),
                               "--bootstrap", "20", "--output", str(good)),
                           capture_output=True, text=True)
    assert audit.returncode == 0, audit.stderr[-2000:]
    # the demo's captions are harmless: a low threshold flags some, for the flagged view
    recompute = subprocess.run(cli("safety", "recompute", str(good), "--threshold", "0.2",
                                   "--bootstrap", "20"), capture_output=True, text=True)
    assert recompute.returncode == 0, recompute.stderr[-2000:]
    degraded = _run("tiny-paligemma-degraded", root / "degraded", data_dir)
    browse(good / "browser", good, data_dir=data_dir)    # RUN/browser: beside the run
    return {"good": good, "degraded": degraded, "single": good / "browser" / "index.html"}


def browse(out: Path, *runs: Path, data_dir: Path) -> Path:
    done = subprocess.run(cli("browse", *map(str, runs), "--data-dir", str(data_dir),
                              "--output", str(out)), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return out / "index.html"


def scores(run: Path, task: str, metric: str) -> dict[str, float]:
    units, ratios = read_unit_scores(run / "scores" / f"{task}.json")
    ratio = ratios[metric]
    return {u: n / d for u, n, d in zip(units, ratio.num, ratio.den) if d}


def test_the_browser_refuses_data_other_than_the_runs(runs, tmp_path, data_dir):
    other = tmp_path / "data"
    shutil.copytree(data_dir / "lmms-lab" / "VQAv2", other / "lmms-lab" / "VQAv2")
    frame = pd.read_parquet(other / "lmms-lab/VQAv2/default/validation.parquet")
    frame.loc[0, "question"] = "edited since the run"
    frame.to_parquet(other / "lmms-lab/VQAv2/default/validation.parquet")
    done = subprocess.run(cli("browse", str(runs["good"]), "--tasks", "vqav2_val",
                              "--data-dir", str(other), "--output", str(tmp_path / "b")),
                          capture_output=True, text=True)
    assert done.returncode == 2 and "is not the data the run scored (sha256" in done.stderr
    assert "Traceback" not in done.stderr
    # a run of local files, browsed without --data-dir: said at once, the hub never asked
    offline = subprocess.run(cli("browse", str(runs["good"]), "--tasks", "vqav2_val",
                                 "--output", str(tmp_path / "b")), capture_output=True,
                             text=True, env={**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9"})
    assert offline.returncode == 2 and "vqav2_val: the run read local files (--data-dir); pass " \
        "the same --data-dir" in offline.stderr and "Hub" not in offline.stderr


def test_the_report_links_each_row_to_its_browser_page(runs, tmp_path):
    run = runs["good"]
    html = render([run], output=run.parent / "report.html")
    assert 'href="./good/browser/index.html#task=vqav2_val"' in html
    assert "#task=refcoco_val_detect" in html
    elsewhere = render([run], output=tmp_path / "report.html")    # relative from anywhere
    assert f'href="./{Path(os.path.relpath(run, tmp_path)).as_posix()}/browser/index.html' \
        f'#task=vqav2_val"' in elsewhere
    assert "index.html#task" not in render([run])      # no output path: no link is guessed
    # the Markdown report: the same relative link in each cell, as a Markdown link
    markdown = render([run], fmt="md", output=run.parent / "report.md")
    assert "· [examples](./good/browser/index.html#task=vqav2_val) |" in markdown
    assert "(./good/browser/index.html#task=refcoco_val_detect)" in markdown
    assert "index.html#task" not in render([run], fmt="md")
    # the pair copied elsewhere (browser.json's absolute paths now name the old place) still links
    copied = tmp_path / "copied elsewhere" / "good"
    shutil.copytree(run, copied)
    moved = render([copied], output=copied.parent / "report.html")
    assert 'href="./good/browser/index.html#task=vqav2_val"' in moved


def hostile_copy(runs: dict, directory: Path, data_dir: Path) -> tuple[Path, Path]:
    """The good run with hostile strings in its outputs, failure reasons and model id, and in
    the dataset's questions (a copy of the fixture, recorded as the run's data)."""
    run = directory / "hostile"
    shutil.copytree(runs["good"], run)
    (run / "safety.json").unlink()
    predictions = run / "predictions" / "vqav2_val.jsonl"
    lines = [json.loads(line) for line in predictions.read_text().splitlines()]
    for record in lines:
        record["prediction"] = RTL + EVIL + record["prediction"]
    predictions.write_text("".join(json.dumps(r) + "\n" for r in lines))
    data = directory / "data"
    shutil.copytree(data_dir / "lmms-lab" / "VQAv2", data / "lmms-lab" / "VQAv2")
    parquet = data / "lmms-lab/VQAv2/default/validation.parquet"
    frame = pd.read_parquet(parquet)
    frame["question"] = EVIL + RTL + frame["question"]
    frame.to_parquet(parquet)
    results = json.loads((run / "results.json").read_text())
    results["model"]["id"] = EVIL + RTL
    task = results["tasks"]["vqav2_val"]
    task["dataset"]["sha256"] = sha256_files(parquet)
    task["failed"] = [{"id": lines[0]["id"], "reason": EVIL}]
    results["tasks"] = {"vqav2_val": task}
    (run / "results.json").write_text(json.dumps(results))
    return run, data


def test_the_browser_in_chromium(runs, tmp_path, data_dir):
    good, degraded, single = runs["good"], runs["degraded"], runs["single"]
    pair = browse(tmp_path / "pair", good, degraded, data_dir=data_dir)
    hostile_run, hostile_data = hostile_copy(runs, tmp_path, data_dir)
    hostile = browse(tmp_path / "hostile-browser", hostile_run, data_dir=hostile_data)
    events = []
    with chromium_page(events) as page:

        def open_page(path: Path, fragment: str) -> list[str]:
            page.goto(f"{path.as_uri()}#{fragment}")
            # drawn for this address (a selector: the page's CSP allows no string evaluation)
            page.wait_for_selector(f'body[data-ready="#{fragment}"]', state="attached")
            return page.locator("tr.example").evaluate_all("rows => rows.map(r => r.dataset.id)")

        # wrong only: exactly the examples whose score is below 1 (one page: 24 examples)
        for task, metric in (("vqav2_val", "accuracy"), ("refcoco_val_detect", "box_acc@0.5")):
            wrong = [u for u, s in scores(good, task, metric).items() if s < 1]
            assert open_page(single, f"task={task}&show=wrong") == wrong, task
        assert len(open_page(single, "task=vqav2_val")) == 24
        # a pair: the flipped list is the per-example scores' differences, worse ones first
        a, b = scores(good, "vqav2_val", "accuracy"), scores(degraded, "vqav2_val", "accuracy")
        units = list(a)
        rank = lambda u: (-abs(b[u] - a[u]), units.index(u))   # noqa: E731
        flipped = sorted([u for u in a if b[u] < a[u]], key=rank) + \
            sorted([u for u in a if b[u] > a[u]], key=rank)
        assert flipped and open_page(pair, "task=vqav2_val&show=flipped") == flipped
        assert open_page(pair, "task=vqav2_val")[:len(flipped)] == flipped   # flipped first
        both = page.locator("tr.example").first.locator("td").count()
        assert both == 2 + 2                                 # image, example, A and B
        # RefCOCO: the fixture's known box, and the prediction's, at the right pixels
        shown = open_page(single, "task=refcoco_val_detect")
        page.locator("tr.example .figure").first.click()
        image = page.locator("#zoomed img").bounding_box()
        natural = page.locator("#zoomed img").evaluate("i => [i.naturalWidth, i.naturalHeight]")
        frame = pd.read_parquet(data_dir / "lmms-lab/RefCOCO/default/val.parquet")
        x, y, w, h = frame.set_index("question_id").loc[shown[0].split("#")[0], "bbox"]
        scale = image["width"] / natural[0]
        reference = page.locator("#zoomed rect.reference-box").bounding_box()
        # the 2 px outline is drawn centred on the box's edges: 1 px outside it
        for got, want in zip((reference["x"] - image["x"] + 1, reference["y"] - image["y"] + 1,
                              reference["width"] - 2, reference["height"] - 2), (x, y, w, h)):
            assert abs(got - want * scale) <= 0.5, (reference, image, (x, y, w, h))
        output = next(json.loads(line)["prediction"] for line in
                      (good / "predictions/refcoco_val_detect.jsonl").read_text().splitlines()
                      if json.loads(line)["id"] == shown[0])
        y1, x1, y2, x2 = (int(v) / 1023 for v in re.findall(r"<loc(\d+)>", output)[:4])
        predicted = page.locator("#zoomed rect.predicted-box").bounding_box()
        assert abs(predicted["x"] + 1 - image["x"] - x1 * natural[0] * scale) <= 0.5
        assert abs(predicted["width"] - 2 - (x2 - x1) * natural[0] * scale) <= 0.5
        assert abs(predicted["y"] + 1 - image["y"] - y1 * natural[1] * scale) <= 0.5
        page.keyboard.press("Escape")
        # FairFace: the flagged captions, with their subgroup
        flagged = [f["id"] for f in json.loads((good / "safety.json").read_text())["flagged"]]
        assert open_page(single, "task=fairface_safety&show=wrong") == flagged
        assert page.locator("#facets select[data-facet=ethnicity]").count() == 1
        # a filter by subgroup and a text search narrow the list
        ethnicity = page.locator("#facets select[data-facet=ethnicity] option").nth(1) \
            .get_attribute("value")
        labels = {r["id"]: r["labels"]["ethnicity"] for r in map(
            json.loads, (good / "safety_scores.jsonl").read_text().splitlines())}
        assert flagged, "the low threshold must flag some captions"
        assert open_page(single, f"task=fairface_safety&f.ethnicity={quote(ethnicity)}") == \
            [i for i, v in labels.items() if v == ethnicity]
        question = next(iter(questions(data_dir).values()))    # no output or answer holds it
        assert open_page(single, f"task=vqav2_val&q={quote(question)}") == \
            [i for i, q in questions(data_dir).items() if question.lower() in q.lower()]
        # hostile strings everywhere: inert, shown as text, directional controls visible
        assert len(open_page(hostile, "task=vqav2_val")) == 24
        text = page.evaluate("document.body.innerText")
        width = page.evaluate("document.documentElement.scrollWidth")
        injected = page.evaluate("document.querySelectorAll('main img[src=x], script:not([src])')"
                                 ".length")
    assert events == []                       # no dialog, no script error
    assert EVIL in text and "\u202e" not in text and "[U+202E]" in text
    assert injected == 1                      # only the viewer's own inline script
    assert width <= 1280


def questions(data_dir: Path) -> dict[str, str]:
    frame = pd.read_parquet(data_dir / "lmms-lab/VQAv2/default/validation.parquet")
    return dict(zip(frame["question_id"].astype(str), frame["question"]))


@pytest.fixture(scope="module")
def media(tmp_path_factory, data_dir) -> tuple[Path, Path]:
    """A run of an image-pair task and a video task, and its browser."""
    root = tmp_path_factory.mktemp("media")
    done = subprocess.run(cli("run", "--model", "tiny-paligemma", "--tasks",
                              "nlvr2_test,msrvtt_qa_test", "--limit", "3", "--bootstrap", "20",
                              "--data-dir", str(data_dir), "--output", str(root / "run")),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return root / "run", browse(root / "browser", root / "run", data_dir=data_dir).parent


def test_an_example_shows_every_image_the_model_sees(media, data_dir):
    """A pair shows both images, a video FRAMES_SHOWN of its sampled frames (the first is the
    model's first frame); rebuilding the directory decodes no video again."""
    import numpy as np
    from PIL import Image

    from paligemma_eval.harness import registry, runner
    from paligemma_eval.reports.browse import FRAMES_SHOWN

    run, out = media
    manifest = (out / "data" / "manifest.js").read_text()
    pages = {p["name"]: p for p in json.loads(manifest[manifest.index("{"):-len(");\n")])["tasks"]}

    def records(task: str) -> list[dict]:
        chunk = (out / "data" / f"t{pages[task]['number']}" / "c0.js").read_text()
        return json.loads(chunk[chunk.index("["):-len(");\n")])

    for record in records("nlvr2_test"):
        assert [record["image"]["caption"]] + [m["caption"] for m in record["more"]] == \
            ["left_image", "right_image"] and record["images"] == "left_image · right_image"
    video = registry.resolve(["msrvtt_qa_test"])[0]
    prepared = runner.prepare(video, data_dir, 3)
    for record in records("msrvtt_qa_test"):
        shown = [record["image"], *record["more"]]
        assert len(shown) == FRAMES_SHOWN and shown[0]["caption"] == "frame 1 of 16"
        assert shown[-1]["caption"] == "frame 16 of 16" and "of the 16 the model" in \
            record["images"]
        assert all((out / s["thumb"]).is_file() and (out / s["full"]).is_file() for s in shown)
        first = runner.example_images(prepared, record["id"], 64)[0]   # the fixture's size
        full = np.asarray(Image.open(out / shown[0]["full"]).convert("RGB"), dtype=float)
        assert full.shape == (*first.size[::-1], 3)
        assert np.abs(full - np.asarray(first, dtype=float)).mean() < 4   # JPEG, same frame
    again = subprocess.run(cli("browse", str(run), "--data-dir", str(data_dir), "--output",
                               str(out)), capture_output=True, text=True)
    assert again.returncode == 0
    assert json.loads((out / "browser.json").read_text())["thumbnails_made"] == 0


def test_the_other_images_show_and_open_in_chromium(media):
    events = []
    with chromium_page(events) as page:
        page.goto(f"{(media[1] / 'index.html').as_uri()}#task=nlvr2_test")
        page.wait_for_selector('body[data-ready="#task=nlvr2_test"]', state="attached")
        assert page.locator("tr.example .more img").count() == 3      # each pair's right image
        assert page.locator("tr.example .more .muted").first.inner_text() == \
            "left_image · right_image"
        page.locator("tr.example .more img").first.click()
        opened = page.locator("#zoomed img").get_attribute("src")
        assert opened.endswith("-full.png") and page.locator("#zoomed p").inner_text() == \
            "right_image"
    assert events == []
