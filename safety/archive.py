"""An audit's scores in one file, and audits recomputed from them with no model and no scorer.

`export` packs an audit directory's score cache, per-caption scores and safety.json into a zip
with a checksummed manifest. `import_` checks the checksums and merges the cache into another
directory (scores already there win; nothing is overwritten), so a rerun there sends no request
for a caption scored before, and `recompute` rebuilds safety.json (another threshold, a
calibration) from the per-caption scores alone: an audit scored with Perspective in 2026 stays
usable after the API is gone.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

from paligemma_eval.harness.cache import trim_cut_line
from paligemma_eval.harness.data import sha256_files
from paligemma_eval.harness.errors import UsageError
from paligemma_eval.safety.scorers import ScoreCache

KIND = "paligemma-eval score archive"
MEMBERS = ("score_cache.jsonl", "safety_scores.jsonl", "safety.json")


def export(out: Path, archive: Path) -> dict[str, Any]:
    present = [name for name in MEMBERS if (out / name).is_file()]
    if "score_cache.jsonl" not in present:
        raise UsageError(f"{out}: no score_cache.jsonl to export (not a safety audit directory?)")
    trim_cut_line(out / "score_cache.jsonl")
    manifest = {"kind": KIND, "version": 1, "source": str(out),
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "members": {name: sha256_files(out / name)
                            for name in present},
                "scores": sum(1 for _ in open(out / "score_cache.jsonl", encoding="utf-8"))}
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("manifest.json", json.dumps(manifest, indent=1))
        for name in present:
            bundle.write(out / name, name)
    partial.replace(archive)
    return manifest


def _read(archive: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    try:
        with zipfile.ZipFile(archive) as bundle:
            manifest = json.loads(bundle.read("manifest.json"))
            members = {name: bundle.read(name) for name in manifest.get("members", {})}
    except (OSError, zipfile.BadZipFile, KeyError, json.JSONDecodeError) as error:
        raise UsageError(f"--archive {archive}: not a readable score archive ({error})") from None
    if manifest.get("kind") != KIND:
        raise UsageError(f"--archive {archive}: not a score archive (no {KIND!r} manifest)")
    for name, digest in manifest["members"].items():
        if hashlib.sha256(members[name]).hexdigest() != digest:
            raise UsageError(f"--archive {archive}: {name} does not match its checksum "
                             f"(damaged); nothing imported")
    return manifest, members


def import_(out: Path, archive: Path) -> dict[str, int]:
    """Merge an archive into `out`; returns how many scores were added and already there."""
    _, members = _read(archive)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "score_cache.jsonl"
    known = set(ScoreCache(cache).entries)   # trims a cut last line, skips unreadable ones
    lines = members["score_cache.jsonl"].decode("utf-8").splitlines(keepends=True)
    new = [line for line, key in zip(lines, _keys(lines)) if key is not None and key not in known]
    with open(cache, "a", encoding="utf-8") as handle:
        handle.writelines(line if line.endswith("\n") else line + "\n" for line in new)
    for name in ("safety_scores.jsonl", "safety.json"):  # an audit already here is kept
        if name in members and not (out / name).exists():
            (out / name).write_bytes(members[name])
    return {"added": len(new), "already_there": len(lines) - len(new)}


def _keys(lines: list[str]) -> list[str | None]:
    """Each cache line's key; None for a line that is not a record (the cache skips those too)."""
    keys = []
    for line in lines:
        try:
            keys.append(json.loads(line)["key"])
        except (json.JSONDecodeError, KeyError, TypeError):
            keys.append(None)
    return keys


def read_records(out: Path) -> list[dict]:
    path = out / "safety_scores.jsonl"
    if not path.is_file():
        raise UsageError(f"{out}: no safety_scores.jsonl to recompute from")
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def recompute(out: Path, threshold: float | None, resamples: int, seed: int,
              calibration: dict[str, Any] | None) -> dict[str, Any]:
    from paligemma_eval.safety.audit import derive

    summary = out / "safety.json"
    if not summary.is_file():
        raise UsageError(f"{out}: no safety.json to recompute")
    document = json.loads(summary.read_text())
    records = read_records(out)
    document["recomputed"] = {"at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                              "from_threshold": document.get("threshold"), "requests": 0}
    return derive(document, records, document["threshold"] if threshold is None else threshold,
                  resamples, seed, calibration)
