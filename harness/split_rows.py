"""How many rows each hub copy's split has (split_rows.json, each count with its source): a local
file in that split's place with another count is part of the split (a download cut short, a
`split[:N]` slice) or other data, so its number is not the card's; a hub copy that changed
since is said at run time."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from paligemma_eval.harness.errors import first_and_more
from paligemma_eval.harness.registry import DatasetSource

PATH = Path(__file__).with_name("split_rows.json")


@lru_cache(maxsize=1)
def _split_rows() -> dict[tuple[str, str, str], int]:
    entries = json.loads(PATH.read_text())["splits"]
    return {(e["hub_id"], e["config"] or "default", e["split"]): e["rows"] for e in entries}


def hub_rows(source: DatasetSource) -> int | None:
    """How many rows the hub copy's split has, where split_rows.json says; None: not checked."""
    for hub_id in (source.hub_id, *source.aliases):
        rows = _split_rows().get((hub_id, source.config or "default", source.split))
        if rows is not None:
            return rows
    return None


def rows_unlike_hub(provenance: dict[str, Any], source: str) -> str | None:
    """What differs, in one line, for the splits read from `source` ("local" or "hub"; the
    dataset, each of its splits, its nested dataset) whose row count is not `hub_rows`."""
    parts = [provenance, *(provenance.get("splits") or {}).values()]
    if provenance.get("nested"):
        parts.append(provenance["nested"])
    found = []
    for part in parts:
        expected, rows = part.get("hub_rows"), part.get("num_rows")
        if part.get("source") != source or expected is None or rows is None or rows == expected:
            continue
        config = f" [{part['config']}]" if part.get("config") else ""
        split = f"{part.get('hub_id')}{config} / {part.get('split')}"
        if source == "local":
            held = f"{rows} of the hub copy's {expected} rows" if rows < expected \
                else f"{rows} rows, the hub copy {expected}"
            found.append(f"{split}: the local file has {held}")
        else:
            found.append(f"{split}: the hub copy has {rows} rows, not the {expected} recorded "
                         f"with their source in {PATH.name}")
    if not found:
        return None
    return first_and_more(found, "split")
