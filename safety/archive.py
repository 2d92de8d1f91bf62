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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from paligemma_eval.harness import formats
from paligemma_eval.harness.cache import trim_cut_line
from paligemma_eval.harness.data import sha256_files
from paligemma_eval.harness.errors import UsageError, first_few
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


def outside_unit_interval(scores: dict[str, float]) -> str | None:
    """What is wrong with scores that should be probabilities, or None."""
    outside = [a for a, value in scores.items() if not 0.0 <= value <= 1.0]
    return f"holds {first_few(outside)} scores outside [0, 1]" if outside else None


def _line_check(attributes: tuple[str, ...],
                groupings: tuple[str, ...]) -> Callable[[dict], str | None]:
    """A check for `read_lines` of what the schema cannot say: every line holds the labels the
    rates group by and, when scored, the audit's attributes as probabilities in [0, 1] (a 5.0
    would be flagged at any threshold), and each caption once. The audit writes each caption
    once and `safety import` never merges this file (one already there is kept whole), so no
    writer makes a repeat: a repeated id is a damaged or concatenated file, refused rather than
    counted twice in its group (as `score` refuses a repeated prediction id)."""
    unique = formats.prediction_ids_unique()

    def check(record: dict) -> str | None:
        missing = [g for g in groupings if g not in record["labels"]]
        if missing:
            return f"lacks the label{'s' * (len(missing) > 1)} {first_few(missing)}"
        scores = record["scores"]
        if scores is not None:
            missing = [a for a in attributes if a not in scores]
            if missing:
                return f"lacks the score{'s' * (len(missing) > 1)} of {first_few(missing)} " \
                       f"(scored attributes of the audit)"
            outside = outside_unit_interval(scores)
            if outside:
                return outside
        return unique(record)
    return check


def read_records(out: Path, attributes: tuple[str, ...]) -> list[dict]:
    from paligemma_eval.safety.audit import GROUPINGS

    path = out / "safety_scores.jsonl"
    if not path.exists():
        raise UsageError(f"{out}: no safety_scores.jsonl to recompute from")
    return [record for _, record in formats.read_lines(
        path, formats.SAFETY_SCORES, last_line="refuse",
        extra_check=_line_check(attributes, tuple(GROUPINGS)))]


def _failures(document: dict[str, Any], records: list[dict]) -> dict[str, str]:
    """The recomputed audit's failures: captioning failures as the audit recorded them (their
    images have no line here, and there is no model to retry them) and the archive's refused
    captions. A scorer failure recorded before is judged again from the archive alone."""
    archived = {r["id"] for r in records}
    failed = {f["id"]: f["reason"] for f in document.get("failed", [])
              if f["id"] not in archived and not f["reason"].startswith("scorer: ")}
    failed.update({r["id"]: f"scorer: {r.get('error') or 'no scores'}"
                   for r in records if r["scores"] is None})
    return failed


def _recount(document: dict[str, Any], records: list[dict]) -> None:
    """counts, coverage and complete from what the archive holds, never from the audit's old
    figures: an error line is a caption not scored."""
    from paligemma_eval.safety.audit import AuditOptions, coverage

    failed = _failures(document, records)
    # at least the captions seen here, so a foreign line cannot push coverage past 1
    seen = {*failed, *(r["id"] for r in records)}
    captions = max(document["counts"].get("captions", 0), len(seen))
    counted = coverage(records, failed, captions,
                       document.get("min_coverage", AuditOptions.min_coverage))
    # a rerun that stopped on a scorer error left the directory unfinished (mark_incomplete):
    # recomputing the older scores does not finish it
    counted["complete"] = counted["complete"] and "last_run_failed" not in document
    listed = [{"id": i, "reason": why} for i, why in failed.items()]
    document.update(counted, failed=listed)
    document["tasks"]["fairface_safety"].update(n_examples=len(records), failed=listed)


def _refuse_too_few(path: Path, document: dict[str, Any], summary: Path) -> None:
    """Nothing usable, or fewer scored captions than the audit itself requires: a one-line
    error, and safety.json is not rewritten (an audit of the few would read as the whole)."""
    counts, needed = document["counts"], document["min_coverage"]
    kept = f"{summary} is left as it was"
    if counts["scored"] == 0:
        reasons = sorted(counts["failed_by_reason"])
        why = f" (failed: {first_few(reasons)})" if reasons else ""
        raise formats.FormatError(f"{path}: no caption in it holds scores{why}: nothing to "
                                  f"recompute from; {kept}")
    if document["coverage"] < needed:
        raise formats.FormatError(
            f"{path}: {counts['scored']} of {counts['captions']} captions hold scores "
            f"({document['coverage']:.1%}, below the audit's min_coverage {needed:.0%}): too few "
            f"to recompute from; {kept}")


def recompute(out: Path, threshold: float | None, resamples: int, seed: int,
              calibration: dict[str, Any] | None) -> dict[str, Any]:
    """safety.json rebuilt from safety_scores.jsonl; refuses (FormatError) rather than return an
    audit of too few scores, so the caller writes only a document that stands for the audit."""
    from paligemma_eval.safety.audit import derive

    summary = out / "safety.json"
    if not summary.exists():
        raise UsageError(f"{out}: no safety.json to recompute")
    document = formats.read_safety(summary)
    attributes = document["scorer"].get("attributes")
    if not attributes:
        raise formats.FormatError(f"{summary}: scorer.attributes missing: which attributes were "
                                  f"scored is unknown, so nothing can be recomputed")
    if "fairface_safety" not in document["tasks"]:
        raise formats.FormatError(f"{summary}: tasks.fairface_safety missing: not a safety audit "
                                  f"this harness wrote, so nothing can be recomputed")
    records = read_records(out, tuple(attributes))
    _recount(document, records)
    _refuse_too_few(out / "safety_scores.jsonl", document, summary)
    document["recomputed"] = {"at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                              "from_threshold": document.get("threshold"), "requests": 0}
    return derive(document, records, document["threshold"] if threshold is None else threshold,
                  resamples, seed, calibration)
