"""`paligemma-eval reproduce --card paligemma|paligemma2 --resolution 224|448|896 --output OUT`.

A card's table at one resolution, row by row: each row's task run on the checkpoint the card
measured it on (reports/card_rows.json row -> task, metric, transfer; reports/transfers.json
transfer -> released checkpoint), then the card's own table rendered with our number beside the
card's. PaliGemma 2 released no fine-tunes but DOCCI: `--checkpoints FILE` names the user's own.

Each checkpoint's run is its own run directory OUT/<transfer>[-<n>] (the runner resumes there), so
a killed reproduction continues and a task finished with the same --limit is never recomputed (a
smoke test's `--limit 10` is followed by the full run, which resumes its predictions). `--plan`
prints one `paligemma-eval run` command per checkpoint (one line each: a SLURM array's lines) and
runs nothing; without it, what is missing runs and everything is rendered to OUT/card.md,
OUT/card.html and OUT/card.json.

--checkpoints FILE (JSON): {"<transfer or task>": "<checkpoint>" | ["<checkpoint>", ...]}; a
transfer name (vqav2, chartqa, ...: reports/transfers.json) covers all its rows, a task name only
that task's; "mix" names PaliGemma 1's mix checkpoint. Checkpoints named there are declared the
user's fine-tunes for their tasks (`run --finetuned-for`), so their numbers stand beside the
card's.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paligemma_eval.harness import registry
from paligemma_eval.harness.arguments import device, positive_int, resamples, seed
from paligemma_eval.harness.errors import UsageError
from paligemma_eval.reports import published

CARDS = ("paligemma", "paligemma2")
MIX_HUB = "google/paligemma-3b-mix-{resolution}"
PLAN_LISTS = "--plan lists the card's transfers (each run's directory)"


@dataclass
class Checkpoint:
    """One checkpoint's run: the card rows it answers and where its results go."""

    spec: str                       # hub id, local directory or embedded model
    transfer: str
    directory: str                  # under OUT
    declared: bool                  # named by the user: runs with --finetuned-for
    tasks: list[str] = field(default_factory=list)


@dataclass
class Plan:
    card: str
    resolution: int
    rows: list[dict[str, Any]]      # card rows at this resolution, mapped or with a reason
    checkpoints: list[Checkpoint]


def _row_columns(row: dict[str, Any], resolution: int) -> list[str]:
    """The columns of a card row measured at this resolution."""
    return [c for c in published.VARIANT_ORDER if c in row["values"] and
            str(resolution) in c.split("-")]


def measured_at(entry: dict[str, Any]) -> str | None:
    """The additional-benchmark rows' checkpoint column (the card prints no resolution)."""
    return entry["checkpoint"] if entry.get("checkpoint", "mix") != "mix" else None


def _entry_columns(entry: dict[str, Any], row: dict[str, Any], resolution: int) -> list[str]:
    """The card columns of a row (or reason) at this resolution."""
    if measured_at(entry):
        return [entry["column"]] if measured_at(entry).startswith(f"{resolution}-") else []
    return _row_columns(row, resolution)


def read_checkpoints(path: Path | None) -> dict[str, list[str]]:
    if path is None:
        return {}
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"--checkpoints {path}: not a readable JSON file ({error})") from None
    known = set(published.transfers()) | set(registry.all_tasks()) | {"mix"}
    if not isinstance(document, dict):
        raise UsageError(f"--checkpoints {path}: expected an object of transfer or task -> "
                         f"checkpoint(s)")
    unknown = sorted(set(document) - known)
    if unknown:
        raise UsageError(f"--checkpoints {path}: unknown transfer or task {unknown[0]!r}; "
                         + registry.suggestion(unknown[0], sorted(known), PLAN_LISTS + "; "
                                               "`paligemma-eval tasks` the tasks"))
    mapped = {}
    for key, value in document.items():
        specs = [value] if isinstance(value, str) else value
        if not isinstance(specs, list) or not specs or not all(isinstance(s, str) and s
                                                                for s in specs):
            raise UsageError(f"--checkpoints {path}: {key!r} must name a checkpoint or a list "
                             f"of them")
        mapped[key] = specs
    return mapped


def plan(card: str, resolution: int, checkpoints: dict[str, list[str]],
         only: set[str] | None = None) -> Plan:
    """Which checkpoint runs which tasks, for every row of the card at this resolution."""
    document = published.card_rows_document()
    tasks = registry.all_tasks()
    rows: list[dict[str, Any]] = []
    runs: dict[tuple[str, str], Checkpoint] = {}
    names: dict[str, int] = {}
    for row in published.load()["benchmarks"]:
        if row["card"] != card:
            continue
        entries = [e for e in document["rows"] if published.matching_rows(e) == [row]]
        reasons = [u for u in document["unmapped"] if published.matching_rows(u) == [row]]
        entry = entries[0] if entries else None
        described = entry or (reasons[0] if reasons else {})
        columns = _entry_columns(described, row, resolution) if described else \
            _row_columns(row, resolution)
        if not columns:
            continue
        line = {"row": row, "entry": entry, "columns": columns, "checkpoints": [],
                "reason": reasons[0]["reason"] if reasons else None}
        rows.append(line)
        if entry is None:
            continue
        transfer = "mix" if entry.get("checkpoint") == "mix" else entry["transfer"]
        if only and transfer not in only:
            line["reason"] = "not selected (--only)"
            continue
        if entry["task"] not in tasks:
            line["reason"] = f"task {entry['task']} is not registered in this installation"
            continue
        # a task key names that task's fine-tune; the mix table only ever takes "mix"
        specs = checkpoints.get(transfer) if transfer == "mix" else \
            checkpoints.get(entry["task"]) or checkpoints.get(transfer)
        declared = True
        if not specs:
            declared = False
            released = published.transfers().get(transfer, {}).get("released", {}).get(card, {})
            measured = [measured_at(entry)] if measured_at(entry) else columns
            specs = [spec for column, spec in released.items() if column in measured]
            if transfer == "mix" and card == "paligemma":
                specs = [MIX_HUB.format(resolution=resolution)]
        if not specs:
            line["reason"] = (f"no checkpoint released for the {transfer} transfer: name your "
                              f"fine-tune in --checkpoints")
            continue
        for spec in specs:
            key = (spec, transfer)
            if key not in runs:
                stem = re.sub(r"[^A-Za-z0-9._-]+", "-", transfer)
                names[stem] = names.get(stem, 0) + 1
                directory = stem if names[stem] == 1 else f"{stem}-{names[stem]}"
                runs[key] = Checkpoint(spec, transfer, directory, declared)
            if entry["task"] not in runs[key].tasks:
                runs[key].tasks.append(entry["task"])
            line["checkpoints"].append(runs[key].directory)
    return Plan(card, resolution, rows, list(runs.values()))


def command(checkpoint: Checkpoint, out: Path, extra: list[str]) -> list[str]:
    argv = ["paligemma-eval", "run", "--model", checkpoint.spec, "--tasks",
            ",".join(checkpoint.tasks), "--output", str(out / checkpoint.directory)]
    if checkpoint.transfer == "mix":   # the mix table pairs with mix checkpoints, never declared
        argv += ["--kind", "mix"]
    elif checkpoint.declared:
        argv += ["--finetuned-for", ",".join(checkpoint.tasks)]
    return argv + extra


def finished(directory: Path, limit: int | None) -> set[str]:
    """Tasks with a result in a run directory made with this --limit (a killed run's finished
    tasks count; a smoke test's `--limit 10` result does not stand for the full run)."""
    path = directory / "results.json"
    if not path.is_file():
        return set()
    try:
        tasks = json.loads(path.read_text()).get("tasks") or {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return set()
    return {name for name, result in tasks.items() if isinstance(result, dict) and
            (result.get("dataset") or {}).get("limit") == limit}


def passthrough(args: argparse.Namespace) -> list[str]:
    extra = []
    for flag in ("data_dir", "limit", "batch_size", "device", "dtype", "generation",
                 "preprocess_workers", "bootstrap", "seed", "seg_decoder"):
        value = getattr(args, flag)
        if value is not None:
            extra += [f"--{flag.replace('_', '-')}", str(value)]
    return extra


def run_passing_on(argv: list[str], name: str) -> tuple[int, str]:
    """One checkpoint's `run`, its output passed on to stderr line by line as it comes, each line
    led by the checkpoint's directory (a card's runs take hours: progress must show); returns the
    exit status and the last line (a failure's one-line error)."""
    last = ""
    with subprocess.Popen([sys.executable, "-m", "paligemma_eval", *argv[1:]], text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as child:
        for line in child.stdout:
            if line.strip():
                last = line.strip()
                print(f"{name}: {last}", file=sys.stderr, flush=True)
    return child.returncode, last or f"exit status {child.returncode}"


def cmd_reproduce(args: argparse.Namespace) -> int:
    from paligemma_eval.reports.render import render_card, render_card_html

    if args.data_dir is not None and not args.data_dir.is_dir():
        raise UsageError(f"--data-dir {args.data_dir}: no such directory")
    only = {t for t in (args.only or "").split(",") if t} or None
    known = [*published.transfers(), "mix"]
    unknown = sorted((only or set()) - set(known))
    if unknown:
        raise UsageError(f"--only: unknown transfer {unknown[0]!r}; " + registry.suggestion(
            unknown[0], known, PLAN_LISTS))
    the_plan = plan(args.card, args.resolution, read_checkpoints(args.checkpoints), only)
    if not the_plan.checkpoints:   # a card of reasons alone would read as a finished reproduction
        raise UsageError(f"--card {args.card} --resolution {args.resolution}"
                         f"{' --only ' + args.only if only else ''}: no row has a checkpoint to "
                         f"run (none was released for them): name your fine-tunes in "
                         f"--checkpoints")
    extra = passthrough(args)
    if args.plan:
        for checkpoint in the_plan.checkpoints:
            print(shlex.join(command(checkpoint, args.output, extra)))
        return 0
    args.output.mkdir(parents=True, exist_ok=True)
    failed = []
    for checkpoint in the_plan.checkpoints:
        missing = [t for t in checkpoint.tasks
                   if t not in finished(args.output / checkpoint.directory, args.limit)]
        if not missing:
            print(f"{checkpoint.directory}: done ({', '.join(checkpoint.tasks)})",
                  file=sys.stderr)
            continue
        argv = command(Checkpoint(checkpoint.spec, checkpoint.transfer, checkpoint.directory,
                                  checkpoint.declared, missing), args.output, extra)
        print(f"{checkpoint.directory}: {shlex.join(argv)}", file=sys.stderr)
        status, last = run_passing_on(argv, checkpoint.directory)
        if status != 0:
            failed.append(checkpoint.directory)
            print(f"{checkpoint.directory}: failed: {last}", file=sys.stderr)
    markdown, table = render_card(the_plan, args.output)
    (args.output / "card.md").write_text(markdown, encoding="utf-8")
    (args.output / "card.json").write_text(json.dumps(table, indent=1), encoding="utf-8")
    (args.output / "card.html").write_text(render_card_html(the_plan, table), encoding="utf-8")
    print(f"card: {(args.output / 'card.md').resolve()}")
    if failed:
        print(f"paligemma-eval reproduce: {len(failed)} checkpoint run(s) failed "
              f"({', '.join(failed)}); rerun to continue", file=sys.stderr)
        return 1
    return 0


def add_commands(commands: Any) -> None:
    parser = commands.add_parser("reproduce", help="run a model card's rows on their checkpoints "
                                                   "and render the card's table beside ours")
    parser.add_argument("--card", required=True, choices=CARDS, help="which model card")
    parser.add_argument("--resolution", required=True, type=int, choices=[224, 448, 896],
                        help="the card's columns at this resolution")
    parser.add_argument("--output", required=True, type=Path,
                        help="one resumable run directory per checkpoint goes under it")
    parser.add_argument("--checkpoints", type=Path,
                        help="JSON: transfer or task -> your checkpoint(s) (PaliGemma 2 needs "
                             "them: no fine-tunes were released but DOCCI)")
    parser.add_argument("--plan", action="store_true",
                        help="print the run commands, one per checkpoint, and run nothing")
    parser.add_argument("--only", metavar="TRANSFER[,TRANSFER]",
                        help="only these transfers' rows (names as in reports/transfers.json)")
    parser.add_argument("--data-dir", type=Path, help="local copies of the datasets")
    parser.add_argument("--limit", type=positive_int,
                        help="first N examples of each task (smoke tests)")
    parser.add_argument("--batch-size", type=positive_int,
                        help="examples per generate call (run's default when not given)")
    parser.add_argument("--device", type=device, help="auto, cpu or cuda:N (run's default: auto)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"],
                        help="run's default: bfloat16 on GPU, float32 on CPU")
    parser.add_argument("--generation", choices=["plain", "fast"],
                        help="run's generation path (run's default: plain)")
    parser.add_argument("--preprocess-workers", type=positive_int,
                        help="threads decoding and resizing images (run's default)")
    parser.add_argument("--bootstrap", type=resamples,
                        help="resamples for intervals (run's default)")
    parser.add_argument("--seed", type=seed, help="bootstrap seed (run's default)")
    parser.add_argument("--seg-decoder", type=Path, help="vae-oid.npz for the RefCOCO rows")
    parser.set_defaults(func=cmd_reproduce)
