"""results.json: every number with its interval, and everything needed to reproduce it.

Per-unit scores go beside it in OUT/scores/<task>.json, so `compare` and `gate` can pair two runs
example by example.
"""

from __future__ import annotations

import datetime
import functools
import os
import platform
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Collection
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from paligemma_eval.harness import formats
from paligemma_eval.harness.registry import Task
from paligemma_eval.harness.scores import Ratio, Scores, bootstrap
from paligemma_eval.harness.server_scores import carry_recorded

SCHEMA_VERSION = formats.RESULTS.version
PACKAGES = ("paligemma-eval", "torch", "transformers", "datasets", "numpy", "pycocoevalcap",
            "accelerate", "google-api-python-client",
            # the specialist tasks' metric libraries (absent ones are recorded as null)
            "shapely", "table-recognition-metric", "apted", "grits-metric", "rdkit", "radgraph")


def _own_checkout() -> Path | None:
    """The paligemma-eval source checkout this code runs from, if it runs from one (an editable
    install); None for an installed wheel, even one inside somebody else's git repository."""
    root = Path(__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if not (root / ".git").exists() or not pyproject.is_file() or \
            'name = "paligemma-eval"' not in pyproject.read_text():
        return None
    return root


@functools.cache   # the code this process runs is the code it imported: asked once, not per task
def harness_version() -> dict[str, Any]:
    """The harness's own version, and its commit only when it runs from its own checkout."""
    commit = dirty = None
    root = _own_checkout()
    if root is not None:
        try:
            commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                                    capture_output=True, text=True, timeout=10).stdout.strip()
            commit = commit or None
            dirty = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain"],
                                        capture_output=True, text=True, timeout=10).stdout.strip())
        except (OSError, subprocess.SubprocessError):
            commit, dirty = None, None
    return {"version": _version("paligemma-eval"), "git_commit": commit, "git_dirty": dirty}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def environment() -> dict[str, Any]:
    return {"python": platform.python_version(), "platform": platform.platform(),
            "packages": {p: _version(p) for p in PACKAGES}}


def metric_entries(scores: Scores, resamples: int, seed: int) -> dict[str, dict]:
    metrics = {**scores.ratios, **scores.statistics}
    intervals = bootstrap(metrics, resamples, seed)
    # An undefined metric (precision with no "yes" predicted: 0/0) is null, not NaN, in JSON.
    entries = {name: {"value": metric.value if np.isfinite(metric.value) else None,
                      "n": metric.n, **intervals[name]} for name, metric in metrics.items()}
    entries.update({name: {"value": value, "n": len(scores.units), "stderr": None, "ci95": None,
                           "note": "corpus-level point value; no interval"}
                    for name, value in scores.points.items()})
    for name in scores.lower_is_better:
        entries[name]["higher_is_better"] = False
    return entries


def task_result(task: Task, dataset: dict, scored: list[str], scores: Scores | None,
                failed: dict[str, str], resamples: int, seed: int) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "description": task.description,
        "prompt": task.prompt,
        "headline": task.headline,
        "rule": task.rule,
        "resize": task.resize,
        "n_examples": len(scored) + len(failed),
        "n_scored": len(scored),
        # failed and missing examples count as wrong in every metric; coverage says how many
        "coverage": len(scored) / (len(scored) + len(failed)) if scored or failed else None,
        "metrics": metric_entries(scores, resamples, seed) if scores else {},
        "notes": scores.notes if scores else {},
        "bootstrap": {"resamples": resamples, "seed": seed, "method": "percentile, over units"},
        "failed": [{"id": i, "reason": why} for i, why in failed.items()],
        "_scores": scores,  # written to scores/<task>.json, not to results.json
    }


def write_unit_scores(path: Path, scores: Scores) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": formats.UNIT_SCORES.version, "units": scores.units,
               "ratios": {name: {"num": r.num.tolist(), "den": r.den.tolist()}
                          for name, r in scores.ratios.items()}}
    write_atomically(path, formats.dumps(payload, formats.UNIT_SCORES, path))


def write_atomically(path: Path, text: str) -> None:
    """Whole or not at all: a full disk leaves the old file (or none), never a cut one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_unit_scores(path: Path) -> tuple[list[str], dict[str, Ratio]]:
    payload = formats.read_unit_scores(path)
    ratios = {name: Ratio(np.array(r["num"]), np.array(r["den"]))
              for name, r in payload["ratios"].items()}
    return payload["units"], ratios


def read_task_unit_scores(path: Path, result: dict[str, Any],
                          predicted: Collection[str] = ()) -> tuple[list[str], dict[str, Ratio]]:
    """scores/<task>.json, refused (a FormatError naming it) unless it is the per-unit scores
    behind `result`, its task's entry in results.json. `predicted`: the example ids the run's
    predictions hold (empty: not known). A paired comparison matches units by id, so a file with
    repeated ids, other ids or other units than its results.json would otherwise be compared on
    whatever happens to be shared, and pass."""
    units, ratios = read_unit_scores(path)
    wrong = unit_scores_mismatch(units, ratios, result, predicted)
    if wrong:
        raise formats.FormatError(f"{path}: does not match its results.json ({wrong}); the "
                                  f"runs cannot be compared on it")
    return units, ratios


def unit_scores_mismatch(units: list[str], ratios: dict[str, Ratio], result: dict[str, Any],
                         predicted: Collection[str] = ()) -> str | None:
    """What a scores file holds that its task's results.json entry contradicts, or None."""
    from paligemma_eval.harness.examples import units_are_examples   # it imports this module

    counts = Counter(units)
    repeated = [u for u, times in counts.items() if times > 1]
    if repeated:
        return f"unit {formats.clipped(repeated[0], 40)!r} appears {counts[repeated[0]]} times"
    for name, ratio in ratios.items():
        entry = result.get("metrics", {}).get(name)
        n = entry.get("n") if isinstance(entry, dict) else None
        # results.json's n is the units a metric is defined on: those with a nonzero den
        if type(n) is int and n != ratio.n:
            return f"{formats.clipped(name, 40)} is defined on {ratio.n} unit(s), " \
                   f"results.json says n={n}"
    if not units_are_examples(result):   # MMVP's units are image pairs: no example counts
        return None
    total, scored = result.get("n_examples"), result.get("n_scored")
    if type(total) is int and len(units) > total:
        return f"{len(units)} units for the run's {total} examples (n_examples)"
    if type(scored) is int and len(units) < scored:
        return f"{len(units)} units for the run's {scored} scored examples (n_scored)"
    if predicted:
        # every unit that did not fail was scored from one of the run's predictions
        failed = {str(f.get("id")) for f in result.get("failed", []) if isinstance(f, dict)}
        known = set(predicted)
        stray = [u for u in units if u not in known and u not in failed]
        if stray:
            return f"{len(stray)} unit(s) the run's predictions do not hold, e.g. " \
                   f"{formats.clipped(stray[0], 40)!r}"
    return None


class ResultsFile:
    """OUT/results.json of one run: read once, then written whole as each task finishes.

    Earlier tasks of the same model in that directory are kept. Another model's (or the same
    checkpoint's as an older version of the harness recorded it: a model field it lacks may have
    decoded otherwise) leave results.json, kept whole beside it as results.replaced-<created>.json,
    and `replaced` says so. Reading once is safe because a run holds OUT's lock, as does
    everything else that writes the file; re-reading it per task made a run of n tasks parse and
    check O(n^2) entries."""

    def __init__(self, out: Path, model: dict[str, Any] | None,
                 extra: dict[str, Any] | None = None) -> None:
        self.out, self.model, self.extra = out, model, extra or {}
        self.path = out / "results.json"
        previous = formats.read_results(self.path) if self.path.exists() else {}
        same = previous.get("model") == model
        self.tasks: dict[str, dict] = previous.get("tasks", {}) if same else {}
        self.replaced: str | None = None
        if not same and previous.get("tasks"):
            kept = self.keep_aside(previous)
            self.replaced = (
                f"{self.path} held {len(previous['tasks'])} task result(s) of another model "
                f"({(previous.get('model') or {}).get('id', 'external predictions')}); this run's "
                f"replace them, and those stay in {kept.name} (a directory per checkpoint keeps "
                f"both in its results.json)")

    def keep_aside(self, previous: dict[str, Any]) -> Path:
        """Copy the results.json about to be replaced beside it, named by when it was made (a
        number suffix where that name is taken): a replacement never loses a computed result."""
        stamp = re.sub(r"[^0-9A-Za-z]+", "-", str(previous.get("created") or "unknown")).strip("-")
        kept, number = self.out / f"results.replaced-{stamp}.json", 1
        while kept.exists():
            number += 1
            kept = self.out / f"results.replaced-{stamp}-{number}.json"
        shutil.copy2(self.path, kept)
        return kept

    def add(self, tasks: dict[str, dict]) -> Path:
        for name, result in tasks.items():
            scores = result.pop("_scores", None)
            if scores is not None:
                write_unit_scores(self.out / "scores" / f"{name}.json", scores)
            carry_recorded(self.tasks.get(name), result, self.out)  # a server's score for it
        document = {
            "schema_version": SCHEMA_VERSION,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "harness": harness_version(),
            "environment": environment(),
            "model": self.model,
            **self.extra,
            "tasks": {**self.tasks, **tasks},
        }
        write_atomically(self.path, formats.dumps(document, formats.RESULTS, self.path, indent=2,
                                                  default=_jsonable))
        self.tasks = document["tasks"]
        return self.path


def write_results(out: Path, model: dict[str, Any] | None, tasks: dict[str, dict],
                  extra: dict[str, Any] | None = None) -> Path:
    """Write OUT/results.json, keeping earlier tasks of the same model in that directory."""
    return ResultsFile(out, model, extra).add(tasks)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
