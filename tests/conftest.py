import os
import sys
from pathlib import Path

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


def require_chromium():
    """(chromium's path, playwright's sync_playwright), or a loud skip: CI installs both, and a
    browser test that did not run must not pass unnoticed."""
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
    return chromium, sync_playwright
