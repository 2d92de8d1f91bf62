"""The model cards' published numbers (reports/published.json), looked up by row and variant."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

PATH = Path(__file__).parent / "published.json"
# Column order as the cards print them: PaliGemma 2 by resolution then size, PaliGemma 1 by kind.
VARIANT_ORDER = ["224-3B", "224-10B", "224-28B", "448-3B", "448-10B", "448-28B", "896-3B",
                 "896-10B", "896-28B", "pt-224", "pt-448", "pt-896", "mix-224", "mix-448",
                 "mix-896"]


@lru_cache(maxsize=1)
def load() -> dict[str, Any]:
    return json.loads(PATH.read_text())


def value(benchmark: str, variant: str) -> tuple[float, str] | None:
    """(published value, card) for a card row label and a variant column, if the card has one."""
    for row in load()["benchmarks"]:
        if row["benchmark"] == benchmark and variant in row["values"]:
            return row["values"][variant], row["card"]
    return None


def safety(card: str) -> list[dict[str, Any]]:
    return [cell for cell in load()["safety"] if cell["card"] == card]


def variant_rank(variant: str) -> tuple[int, str]:
    return (VARIANT_ORDER.index(variant) if variant in VARIANT_ORDER else len(VARIANT_ORDER),
            variant)
