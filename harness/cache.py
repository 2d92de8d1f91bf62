"""Append-only prediction files that survive SIGKILL.

One JSON object per line; each batch is written, flushed and fsynced before the next starts. A
line cut short by a kill is dropped (and cut off the file) on the next open, so a rerun resumes
exactly where the last complete batch ended. Lines carry the run key (model fingerprint, task,
prompt, decoding): only lines under the current key count as done.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def run_key(**parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class PredictionStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _repair(self) -> None:
        """Cut a trailing partial line (a write interrupted by a kill)."""
        if not self.path.exists():
            return
        with open(self.path, "rb+") as handle:
            data = handle.read()
            end = data.rfind(b"\n") + 1
            if end != len(data):
                handle.truncate(end)

    def load(self, key: str | None = None) -> dict[str, dict]:
        """Records by id (under `key`, if given); the first record of an id wins."""
        self._repair()
        records: dict[str, dict] = {}
        if not self.path.exists():
            return records
        with open(self.path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if key is None or record.get("key") == key:
                    records.setdefault(str(record["id"]), record)
        return records

    def append(self, records: Iterable[dict]) -> None:
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        if not lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())
