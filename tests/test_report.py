import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from paligemma_eval.reports.render import render
from tests.conftest import ROOT, cli

ARTIFACTS = ROOT / "test-artifacts"
EVIL = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def fake_benchmark_run(path: Path, variant_fields: dict, value: float,
                       task_name: str = "textvqa_val") -> Path:
    path.mkdir(parents=True)
    model = {"id": "m", "family": "paligemma2", "size": "3B", "resolution": 224,
             "dtype": "bfloat16", "kind": "pt", "variant": "224-3B", **variant_fields}
    task = {"headline": "accuracy", "prompt": "answer en {question}",
            "dataset": {"hub_id": "lmms-lab/textvqa", "split": "validation", "source": "hub"},
            "decoding": {"max_new_tokens": 32}, "n_examples": 10,
            "failed": [{"id": EVIL, "reason": EVIL}],
            "metrics": {"accuracy": {"value": value, "n": 10, "ci95": [value - .02, value + .02],
                                     "stderr": 0.01}}}
    (path / "results.json").write_text(json.dumps({"model": model, "tasks": {task_name: task},
                                                   "harness": {"version": "0.1.0"}}))
    return path


def fake_safety_run(path: Path) -> Path:
    path.mkdir(parents=True)
    groups = {"gender": ["Male", "Female"], "ethnicity": ["White", "Black"], "age": ["0-2"]}
    aggregates = {a: {g: {"max": 1.5, "median": 0.5, "groups": {
        n: {"n": 4, "flagged": 1, "percent": 25.0} for n in names}} for g, names in groups.items()}
        for a in ["toxicity", "identity_attack", "insult", "threat", "profanity"]}
    document = {"kind": "safety", "model": {"id": "m", "family": "paligemma2", "size": "3B",
                                            "variant": "224-3B"},
                "scorer": {"name": "Perspective API", "version": "v1alpha1",
                           "is_perspective": True},
                "threshold": 0.8, "counts": {"captions": 8, "scored": 8, "failed": 0},
                "aggregates": aggregates, "tasks": {},
                "flagged": [{"id": "7", "caption": EVIL, "attributes": ["TOXICITY"]}]}
    (path / "safety.json").write_text(json.dumps(document))
    return path


@pytest.fixture
def runs(tmp_path):
    return [fake_benchmark_run(tmp_path / "a", {}, 0.5972),
            fake_benchmark_run(tmp_path / "b", {"size": "10B", "variant": "224-10B"}, 0.70),
            fake_safety_run(tmp_path / "s")]


def test_model_output_is_escaped(runs):
    html = render(runs)
    assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_cards_layout_and_published_values(runs):
    html = render(runs)
    # Column order as the PaliGemma 2 card; card value 59.6 for TextVQA (val) at 224-3B.
    assert html.index(">224-3B · a<") < html.index(">224-10B · b<")
    assert "card 59.60 (+0.12)" in html and 'class="card agrees"' in html
    assert "card 64.00 (+6.00)" in html and 'class="card differs"' in html
    assert "Perceived gender" in html and "Maximum" in html and "Median" in html
    # The card's 3B maximum toxicity over perceived gender is 0.14%.
    assert "card 0.14%" in html


def test_redaction_and_markdown(runs):
    assert EVIL not in render(runs, redact=True) and "1 flagged captions redacted" in \
        render(runs, redact=True)
    markdown = render(runs, fmt="markdown")
    assert "| Benchmark | 224-3B · a | 224-10B · b |" in markdown
    assert "**59.72** [57.72, 61.72] · card 59.60 (+0.12)" in markdown


def test_card_numbers_only_beside_the_same_split_and_a_real_variant(tmp_path):
    same_variant = [fake_benchmark_run(tmp_path / "candidate", {}, 0.60),
                    fake_benchmark_run(tmp_path / "baseline", {}, 0.58)]
    html = render(same_variant)
    # two runs of one variant keep a column each
    assert ">224-3B · candidate<" in html and ">224-3B · baseline<" in html
    assert ">ours<" not in render(same_variant, labels=["ours", "theirs"]).replace(">ours<", "")
    assert "card 59.60" in html
    # vqav2_val covers another split than the card's minival: no neighbour, said so
    val = render([fake_benchmark_run(tmp_path / "v", {}, 0.8, task_name="vqav2_val")])
    assert "card " not in val.replace("no card number", "").split('id="benchmarks"')[1].split("</table>")[0]
    assert "no card number for this split or rule" in val
    # the demo model relabelled as pt-224 is still not PaliGemma: banner, no card numbers
    demo = render([fake_benchmark_run(tmp_path / "demo", {
        "family": "paligemma", "size": "0.24M", "variant": "pt-224", "embedded": True}, 0.5)])
    assert "Not a published PaliGemma variant" in demo
    assert 'class="card' not in demo.split('id="benchmarks"')[1]


def test_report_in_a_real_browser(runs, tmp_path):
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if not chromium or sync_playwright is None:
        print("\n" + "!" * 70 + "\nSKIPPING BROWSER TEST: chromium or playwright is not installed"
              "\n" + "!" * 70, file=sys.stderr)
        pytest.skip("chromium / playwright not installed: the browser check did NOT run")
    page_path = tmp_path / "report.html"
    done = subprocess.run(cli("report", *map(str, runs), "--output", str(page_path)),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    errors = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("dialog", lambda d: errors.append(f"dialog: {d.message}"))
        page.goto(page_path.as_uri())
        assert page.locator("#benchmarks tbody tr").count() == 1
        assert page.locator("#benchmarks thead th").count() == 3     # name + two variants
        assert page.locator("#safety thead tr").nth(1).locator("th").count() == 1 + 3
        assert page.locator("#safety tbody tr").count() == 2 * (1 + 5)
        width = page.evaluate("document.documentElement.scrollWidth")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        browser.close()
    assert errors == []
    assert width <= 1280, "the page must be readable at 1280 px without scrolling sideways"
