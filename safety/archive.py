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
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

from paligemma_eval.harness import formats
from paligemma_eval.harness.cache import trim_cut_line
from paligemma_eval.harness.data import sha256_files
from paligemma_eval.harness.errors import UsageError
from paligemma_eval.harness.lock import output_lock
from paligemma_eval.harness.results import write_atomically
from paligemma_eval.safety.scorers import ScoreCache

KIND = "paligemma-eval score archive"
MEMBERS = ("score_cache.jsonl", "safety_scores.jsonl", "safety.json")


def export(out: Path, archive: Path) -> dict[str, Any]:
    present = [name for name in MEMBERS if (out / name).exists()]
    if "score_cache.jsonl" not in present:
        raise UsageError(f"{out}: no score_cache.jsonl to export (not a safety audit directory?)")
    for name in present:    # an archive outlives its source: never pack a damaged file
        _check_member(out / name, name, str(out / name), cut_cache_line="ignore")
    trim_cut_line(out / "score_cache.jsonl")
    manifest = {"kind": KIND, "version": formats.MANIFEST.version, "source": str(out),
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "members": {name: sha256_files(out / name)
                            for name in present},
                "scores": len(formats.read_lines(out / "score_cache.jsonl", formats.SCORE_CACHE))}
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("manifest.json", formats.dumps(manifest, formats.MANIFEST, archive,
                                                       indent=1))
        for name in present:
            bundle.write(out / name, name)
    partial.replace(archive)
    return manifest


def _check_member(path: Path, member: str, name: str,
                  cut_cache_line: formats.LastLine = "refuse") -> None:
    """Read a member of an audit directory (or of an archive, extracted) with its own reader.
    A cache's cut last line is its writer's to trim (`ignore`); an archived cache has none."""
    if member == "safety.json":
        formats.read_safety(path, name)
    elif member == "score_cache.jsonl":
        formats.read_lines(path, formats.SCORE_CACHE, name, last_line=cut_cache_line)
    else:
        formats.read_lines(path, formats.SAFETY_SCORES, name, last_line="refuse")


def _read(archive: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and members of an archive, every member checked against its checksum and
    read back by its own reader: a damaged or foreign archive imports nothing."""
    name = f"--archive {archive}"
    if archive.is_dir():
        raise formats.FormatError(f"{name}: a directory, not a score archive")
    try:
        with zipfile.ZipFile(archive) as bundle:
            manifest = formats.read_manifest(bundle.read("manifest.json"), name)
            members = {member: bundle.read(member) for member in manifest["members"]}
    except (OSError, zipfile.BadZipFile, KeyError, EOFError, zlib.error) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise formats.FormatError(f"{name}: not a readable score archive ({reason})") from None
    for member, digest in manifest["members"].items():
        if hashlib.sha256(members[member]).hexdigest() != digest:
            raise formats.FormatError(f"{name}: {member} does not match its checksum "
                                      f"(damaged); nothing imported")
    with tempfile.TemporaryDirectory() as scratch:
        for member, data in members.items():
            (Path(scratch) / member).write_bytes(data)
            _check_member(Path(scratch) / member, member, f"{name}: {member}")
    return manifest, members


def import_(out: Path, archive: Path) -> dict[str, int]:
    """Merge an archive into `out`; returns how many scores were added and already there."""
    _, members = _read(archive)
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out, can_wait=False):   # an audit running there appends to the same cache
        cache = out / "score_cache.jsonl"
        known = set(ScoreCache(cache).entries)   # trims a cut last line; refuses a damaged one
        lines = members["score_cache.jsonl"].decode("utf-8").splitlines(keepends=True)
        new = [line for line in lines if line.strip() and json.loads(line)["key"] not in known]
        with open(cache, "a", encoding="utf-8") as handle:
            handle.writelines(new)
        for name in ("safety_scores.jsonl", "safety.json"):  # an audit already here is kept
            if name in members and not (out / name).exists():
                write_atomically(out / name, members[name].decode("utf-8"))
    return {"added": len(new), "already_there": len(lines) - len(new)}


def read_records(out: Path) -> list[dict]:
    path = out / "safety_scores.jsonl"
    if not path.exists():
        raise UsageError(f"{out}: no safety_scores.jsonl to recompute from")
    return [record for _, record in formats.read_lines(path, formats.SAFETY_SCORES,
                                                       last_line="refuse")]


def recompute(out: Path, threshold: float | None, resamples: int, seed: int,
              calibration: dict[str, Any] | None) -> dict[str, Any]:
    from paligemma_eval.safety.audit import derive

    summary = out / "safety.json"
    if not summary.exists():
        raise UsageError(f"{out}: no safety.json to recompute")
    document = formats.read_safety(summary)
    if not document["scorer"].get("attributes"):
        raise formats.FormatError(f"{summary}: scorer.attributes missing: which attributes were "
                                  f"scored is unknown, so nothing can be recomputed")
    records = read_records(out)
    document["recomputed"] = {"at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                              "from_threshold": document.get("threshold"), "requests": 0}
    return derive(document, records, document["threshold"] if threshold is None else threshold,
                  resamples, seed, calibration)
