import sys
from pathlib import Path

import pytest

from harness.demo.fixtures import DATA_DIR

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR


@pytest.fixture(scope="session")
def tiny_model():
    from harness.models import load_model

    return load_model("tiny-paligemma", device="cpu")


def cli(*args: str) -> list[str]:
    """The command line a user types, run with this interpreter."""
    return [sys.executable, "-m", "harness", *args]
