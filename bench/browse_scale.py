"""The sample browser at real size: 214,354 synthetic VQAv2 questions over 40,504 images (the
size of VQAv2 validation), one run. Prints the build time (thumbnails made, then a rebuild that
reuses them; with --thumbnails-only, the full-size copies being the image files byte for byte),
the output's size on disk by part, and in Chromium the time to first paint and
until page one's rows are drawn, the wrong-only filter, and a text search over every example.

    python bench/browse_scale.py [--questions N] [--images M] [--side PX] [--keep DIR]

Data: JSONL in the `--data-dir` layout, JPEG images of the demo's shape world at --side x
3/4 --side pixels (default 640x480, COCO's usual size); predictions right for about 60% of
the questions. Needs chromium (apt-get install chromium) for the paint figures.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_data(folder: Path, questions: int, images: int, side: int) -> Path:
    from PIL import Image

    from paligemma_eval.harness.demo import world

    split = folder / "lmms-lab" / "VQAv2" / "default"
    (split / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    answers_of = []
    for i in range(images):
        scene = world.random_scene(rng)
        path = split / "images" / f"{i}.jpg"
        if not path.exists():   # --keep: a rerun reuses the images
            scene.render().resize((side, side * 3 // 4), Image.NEAREST).save(path, quality=85)
        answers_of.append(scene.color)
    with open(split / "validation.jsonl", "w") as handle:
        for q in range(questions):
            image = q * images // questions
            answer = answers_of[image]
            handle.write(json.dumps({
                "question_id": q, "question": f"what color is the shape? ({q})",
                "answers": [{"answer": answer, "answer_confidence": "yes", "answer_id": k}
                            for k in range(10)],
                "answer_type": rng.choice(["other", "yes/no", "number"]),
                "question_type": rng.choice(["what color", "what is", "how many"]),
                "image": f"images/{image}.jpg"}) + "\n")
    return folder


def make_run(out: Path, data_dir: Path) -> None:
    """A run directory as `run` writes it, with made-up predictions (no model)."""
    from paligemma_eval.harness import registry
    from paligemma_eval.harness.results import write_results
    from paligemma_eval.harness.runner import RunOptions, prepare, score

    task = registry.all_tasks()["vqav2_val"]
    prepared = prepare(task, data_dir, None)
    rng = random.Random(1)
    key = "bench0000000000"
    records = {i: {"key": key, "id": i, "prediction": t["answers"][0] if rng.random() < 0.6
                   else "blue"} for i, t in prepared.targets.items()}
    (out / "predictions").mkdir(parents=True, exist_ok=True)
    with open(out / "predictions" / "vqav2_val.jsonl", "w") as handle:
        for record in records.values():
            handle.write(json.dumps(record) + "\n")
    result = score(prepared, records, RunOptions(out=out, resamples=0))
    result["throughput"] = {"key": key}
    write_results(out, {"id": "synthetic", "variant": "bench"}, {"vqav2_val": result})


def paint(index: Path) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        return {}
    figures = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium,
                                             args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for name, fragment in (("page one", "task=vqav2_val"),
                               ("wrong only, page one", "task=vqav2_val&show=wrong"),
                               ("page 2000", "task=vqav2_val&page=1999"),
                               ("text search over every example", "task=vqav2_val&q=%2810000%29")):
            page.goto("about:blank")
            started = time.perf_counter()
            page.goto(f"{index.as_uri()}#{fragment}")
            page.wait_for_selector(f'body[data-ready="#{fragment}"]', state="attached",
                                   timeout=600_000)
            figures[name] = time.perf_counter() - started
            if name == "page one":
                figures["first contentful paint"] = page.evaluate(
                    "performance.getEntriesByName('first-contentful-paint')[0].startTime") / 1000
                figures["rows on page one"] = page.locator("tr.example").count()
        browser.close()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=214_354)
    parser.add_argument("--images", type=int, default=40_504)
    parser.add_argument("--side", type=int, default=640)
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temp dir)")
    args = parser.parse_args()
    from paligemma_eval.reports.browse import build, size_on_disk

    work = args.keep or Path(tempfile.mkdtemp(prefix="browse-scale-"))
    try:
        started = time.perf_counter()
        data_dir = make_data(work / "data", args.questions, args.images, args.side)
        run = work / "run"
        make_run(run, data_dir)
        print(f"setup (data and run, not the browser): {time.perf_counter() - started:.1f} s")
        out = work / "browser"
        for attempt in ("first build", "rebuild (thumbnails reused)"):
            summary = build([run], out, data_dir, full_images=False)
            print(f"--thumbnails-only, {attempt}: {summary['seconds']:.1f} s for "
                  f"{summary['examples']:,} examples; thumbnails made "
                  f"{summary['thumbnails_made']:,}, reused {summary['thumbnails_reused']:,}")
        sizes = size_on_disk(out)
        files = sum(1 for f in out.rglob("*") if f.is_file())
        print(f"--thumbnails-only: {sum(sizes.values()) / 1e6:,.1f} MB in {files:,} files: " +
              ", ".join(f"{k} {v / 1e6:,.1f} MB" for k, v in sizes.items() if v))
        # the default copies each distinct image file byte for byte: exactly their sizes more
        images = data_dir / "lmms-lab" / "VQAv2" / "default" / "images"
        copies = sum(f.stat().st_size for f in images.iterdir())
        print(f"default (full-size copies too): + {copies / 1e6:,.1f} MB (the {args.images:,} "
              f"source images, copied as they are)")
        for name, value in paint(out / "index.html").items():
            print(f"chromium, {name}: " + (f"{value:.2f} s" if isinstance(value, float)
                                           else str(value)))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
