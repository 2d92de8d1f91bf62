"""`record-server-score OUT --task T --metric M --value V [--evidence FILE]`.

A test-server split (VQAv2 test-std, TextVQA, VizWiz, DocVQA, InfoVQA, ST-VQA, A-OKVQA test) has
no public answers: `run` writes the server's submission file, the user uploads it, and this verb
stores the score the server returned beside that run's task in OUT/results.json:

    tasks[T]["metrics"][M] = {"value": V, "n": null, "stderr": null, "ci95": null,
                              "source": "evaluation server, recorded by the user",
                              "recorded": ISO time, "submission_sha256": sha256 of the file
                              uploaded, "evidence": {"file", "sha256"} or null}

Only such an entry pairs with a card's test-server row (reports/published.card_pairing). The
evidence file (the server's result page or JSON) is copied to OUT/server/ and hashed.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import math
import re
import shutil
from pathlib import Path
from typing import Any

from paligemma_eval.harness import formats, registry
from paligemma_eval.harness.errors import UsageError
from paligemma_eval.harness.lock import output_lock

SOURCE = "evaluation server, recorded by the user"
_METRIC_NAME = re.compile(r"^[A-Za-z0-9_./@-]+$")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record(out: Path, task_name: str, metric: str, value: float,
           evidence: Path | None = None) -> dict[str, Any]:
    """Store the server's score in OUT/results.json; returns the metric entry written."""
    from paligemma_eval.harness.results import write_atomically

    tasks = registry.all_tasks()
    if task_name not in tasks or tasks[task_name].submission is None:
        servers = sorted(n for n, t in tasks.items() if t.submission is not None)
        raise UsageError(f"--task {task_name}: not a test-server task (those are: "
                         f"{', '.join(servers)})")
    if not _METRIC_NAME.match(metric):
        raise UsageError(f"--metric {metric!r}: use a plain metric name such as accuracy or anls")
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise UsageError(f"--value {value}: give the score as a fraction (e.g. 0.8319 for "
                         f"83.19%); results.json holds fractions")
    if evidence is not None and not evidence.is_file():
        raise UsageError(f"--evidence {evidence}: "
                         + ("a directory; give the server's result file" if evidence.is_dir()
                            else "no such file"))
    path = out / "results.json"
    if not path.is_file():
        raise UsageError(f"{out}: no results.json (run --tasks {task_name} there first: the "
                         f"score belongs to that run's submission)")
    with output_lock(out, can_wait=False):
        # the shared reader, before anything is written: a damaged or foreign file is one line
        document = formats.read_results(path)
        result = document["tasks"].get(task_name)
        if result is None or not result.get("submission"):
            raise UsageError(f"{path}: task {task_name} wrote no submission file here; run it "
                             f"into this directory first")
        submission = _submission_file(out, path, task_name, result["submission"])
        entry: dict[str, Any] = {
            "value": value, "n": None, "stderr": None, "ci95": None, "source": SOURCE,
            "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
            "submission_sha256": sha256(submission), "evidence": None}
        if evidence is not None:
            kept = out / "server" / f"{task_name}.{metric.replace('/', '_')}{evidence.suffix}"
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(evidence, kept)
            entry["evidence"] = {"file": str(kept.relative_to(out)), "sha256": sha256(kept)}
        result.setdefault("metrics", {})[metric] = entry
        result["headline"] = result.get("headline") or metric
        write_atomically(path, formats.dumps(document, formats.RESULTS, path, indent=2))
    return entry


def _submission_file(out: Path, path: Path, task_name: str, named: str) -> Path:
    """The run's own submission file that results.json names: inside the run directory (a
    path that leaves it would hash, and vouch for, some other file)."""
    submission = out / named
    if not submission.resolve().is_relative_to(out.resolve()):
        raise UsageError(f"{path}: tasks.{task_name}.submission {named!r} lies outside {out}; "
                         f"the score answers the run's own submission file, written there")
    if not submission.is_file():
        raise UsageError(f"{submission}: the submission file this score answers is missing")
    return submission


def carry_recorded(previous: dict[str, Any] | None, result: dict[str, Any], out: Path) -> None:
    """A rerun that writes the same submission file keeps the scores recorded for it (a changed
    file drops them: the server scored other predictions)."""
    if not previous or not result.get("submission") or not (out / result["submission"]).is_file():
        return
    digest = sha256(out / result["submission"])
    for metric, entry in (previous.get("metrics") or {}).items():
        if entry.get("source") == SOURCE and entry.get("submission_sha256") == digest:
            result.setdefault("metrics", {})[metric] = entry
            result["headline"] = result.get("headline") or metric


def cmd_record(args: argparse.Namespace) -> int:
    from paligemma_eval.reports.published import card_pairing

    entry = record(args.output, args.task, args.metric, args.value, args.evidence)
    document = formats.read_results(args.output / "results.json")
    card, why_not = card_pairing(args.task, args.metric, document.get("model"),
                                 document["tasks"][args.task])
    where = f"pairs with {card['card']} card: {card['benchmark']} ({card['percent']})" if card \
        else (why_not or "no card row names this task and metric")
    print(f"{args.task}/{args.metric} = {entry['value']} recorded in "
          f"{args.output / 'results.json'} ({where})")
    return 0


def add_commands(commands: Any) -> None:
    parser = commands.add_parser("record-server-score",
                                 help="store the score an evaluation server returned for a "
                                      "run's submission file")
    parser.add_argument("output", type=Path, help="the run directory that wrote the submission")
    parser.add_argument("--task", required=True, help="the test-server task, e.g. vqav2_test")
    parser.add_argument("--metric", required=True, help="metric name, e.g. accuracy or anls")
    parser.add_argument("--value", required=True, type=float,
                        help="the server's score as a fraction (0.8319, not 83.19)")
    parser.add_argument("--evidence", type=Path,
                        help="the server's result page or file: copied beside the run, hashed")
    parser.set_defaults(func=cmd_record)
