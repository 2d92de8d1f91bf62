"""The model cards' published numbers (reports/published.json), looked up by row and variant."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

PATH = Path(__file__).parent / "published.json"
CARD_ROWS = Path(__file__).parent / "card_rows.json"
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


@lru_cache(maxsize=1)
def card_rows() -> dict[str, list[dict[str, Any]]]:
    """reports/card_rows.json by task: the card rows each task may be compared with."""
    by_task: dict[str, list[dict[str, Any]]] = {}
    for entry in json.loads(CARD_ROWS.read_text())["rows"]:
        by_task.setdefault(entry["task"], []).append(entry)
    return by_task


def card_row(entry: dict[str, Any]) -> dict[str, Any]:
    """The one row of the shipped card tables that a card_rows.json entry names."""
    found = [row for row in load()["benchmarks"] if row["card"] == entry["card"] and
             row["table"] == entry["table"] and row["benchmark"] == entry["benchmark"]]
    if len(found) != 1:
        raise LookupError(f"card_rows.json entry {entry} matches {len(found)} card rows")
    return found[0]


def comparable(model: dict[str, Any] | None) -> bool:
    """Only a published PaliGemma variant may stand beside card numbers: never an embedded or
    unknown model, whatever `--kind` says."""
    model = model or {}
    return not model.get("embedded") and model.get("size") in ("3B", "10B", "28B") and \
        model.get("variant") in VARIANT_ORDER


def decoded_as_cards(model: dict[str, Any] | None) -> bool:
    """Whether the run decoded as the card numbers were made (big_vision: no final soft-cap, no
    sliding window). A PaliGemma 2 run with `decode_config` "checkpoint" is not; PaliGemma 1 has
    neither setting. Results without the field predate it and count as big_vision's."""
    model = model or {}
    return model.get("family") != "paligemma2" or \
        model.get("decode_config", "big_vision") == "big_vision"


def card_value(task: str, metric: str, model: dict[str, Any] | None) -> dict[str, Any] | None:
    """The card number this task's metric may be compared with, for the model's column:
    {value (fraction), percent, card, table, benchmark}; None when no card has one or the run
    did not decode as the cards did (see `decoded_as_cards`)."""
    if not comparable(model) or not decoded_as_cards(model):
        return None
    scale = json.loads(CARD_ROWS.read_text())["scale"]
    for entry in card_rows().get(task, []):
        row = card_row(entry)
        if entry["metric"] == metric and model["variant"] in row["values"]:
            percent = row["values"][model["variant"]]
            return {"value": percent / scale, "percent": percent, "card": entry["card"],
                    "table": entry["table"], "benchmark": entry["benchmark"]}
    return None


def task_order(task: str) -> tuple[int, str]:
    """Rows in the cards' order; tasks without a card row after them, by name."""
    benchmarks = load()["benchmarks"]
    entries = card_rows().get(task, [])
    return (min((benchmarks.index(card_row(e)) for e in entries), default=len(benchmarks)), task)


def safety(card: str) -> list[dict[str, Any]]:
    return [cell for cell in load()["safety"] if cell["card"] == card]


def variant_rank(variant: str) -> tuple[int, str]:
    return (VARIANT_ORDER.index(variant) if variant in VARIANT_ORDER else len(VARIANT_ORDER),
            variant)
