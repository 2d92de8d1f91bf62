"""Append-only prediction files that survive SIGKILL.

One JSON object per line; each batch is written, flushed and fsynced before the next starts. A
line cut short by a kill is dropped (and cut off the file) on the next open, so a rerun resumes
exactly where the last complete batch ended. Lines carry the run key (model fingerprint, task,
prompt, decoding): only lines under the current key count as done. Each file has one writer
(a process, or a data-parallel rank); readers of other ranks' files never modify them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from paligemma_eval.harness import formats


def run_key(**parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def trim_cut_line(path: Path) -> None:
    """Cut a trailing partial line of an append-only JSONL file (a write interrupted by a kill or
    a full disk), so the next record is not appended onto it and lost with it. Only a file's
    own writer may call this."""
    if not path.exists():
        return
    with open(path, "rb+") as handle:
        data = handle.read()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            handle.truncate(end)


def prediction_files(out: Path, task_name: str) -> list[Path]:
    """A task's prediction files in a run directory: one, or one per data-parallel rank."""
    folder = out / "predictions"
    return sorted([folder / f"{task_name}.jsonl", *folder.glob(f"{task_name}.rank*.jsonl")])


class PredictionStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.repaired = False

    def _repair(self) -> None:
        trim_cut_line(self.path)

    def lines(self, unterminated_ok: bool = False) -> list[dict]:
        """Every complete record, in the order written; any damaged line is a FormatError
        naming it. A last line without its newline is a write cut short: ignored here, cut off
        by the owner's next append (readers never truncate: another rank may be writing that
        file right now). `unterminated_ok` accepts it, for files written by other tools."""
        if not self.path.exists():
            return []
        return [record for _, record in formats.read_lines(
            self.path, formats.PREDICTION, last_line="accept" if unterminated_ok else "ignore")]

    def load(self, key: str | None = None, unterminated_ok: bool = False) -> dict[str, dict]:
        """Records by id (under `key`, if given); the last record of an id wins (the file is
        append-only: a later line is a newer attempt, e.g. a retried failure)."""
        return {str(record["id"]): record for record in self.lines(unterminated_ok)
                if key is None or record.get("key") == key}

    def append(self, records: Iterable[dict]) -> None:
        lines = "".join(formats.dump_line({"format": formats.PREDICTION.version, **r},
                                          formats.PREDICTION, self.path) for r in records)
        if not lines:
            return
        if not self.repaired:  # only the file's one writer ever truncates it
            self._repair()
            self.repaired = True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())
