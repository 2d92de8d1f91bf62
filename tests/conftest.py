import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from paligemma_eval.harness.demo.fixtures import DATA_DIR

ROOT = Path(__file__).resolve().parent.parent

# Every file the harness writes, in this process and in the CLI processes the tests start, is
# checked against its schema as it is written (harness/formats.py): it must read back.
os.environ["PALIGEMMA_EVAL_CHECK_WRITES"] = "1"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR


@pytest.fixture(scope="session", autouse=True)
def seg_decoder(tmp_path_factory) -> Path:
    """A vae-oid.npz with the real layout and random weights, for every segmentation task."""
    import os

    from paligemma_eval.harness.demo.fixtures import write_seg_decoder

    path = write_seg_decoder(tmp_path_factory.mktemp("vae") / "vae-oid.npz")
    os.environ["PALIGEMMA_SEG_DECODER"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_model():
    from paligemma_eval.harness.loading import load_model

    return load_model("tiny-paligemma", device="cpu")


def cli(*args: str) -> list[str]:
    """The command line a user types, run with this interpreter."""
    return [sys.executable, "-m", "paligemma_eval", *args]



@contextmanager
def chromium_page(events: list[str]) -> Iterator[Any]:
    """A headless Chromium page (1280 px wide) that records script errors and dialogs (dismissed)
    in `events`; a loud skip without Chromium or Playwright: CI installs both, and a browser test
    that did not run must not pass unnoticed."""
    import shutil

    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if not chromium or sync_playwright is None:
        print("\n" + "!" * 70 + "\nSKIPPING BROWSER TEST: chromium or playwright is not installed"
              "\n" + "!" * 70, file=sys.stderr)
        pytest.skip("chromium / playwright not installed: the browser check did NOT run")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: events.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: events.append(str(e)))
        page.on("dialog", lambda d: (events.append(f"dialog: {d.message}"), d.dismiss()))
        try:
            yield page
        finally:
            browser.close()
