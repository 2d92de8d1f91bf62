"""`paligemma-eval report OUT1 [OUT2 ...] --output report.html [--format markdown]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def cmd_report(args: argparse.Namespace) -> int:
    from paligemma_eval.harness.formats import refuse_overwriting
    from paligemma_eval.reports.render import render

    refuse_overwriting(args.output, "--output", args.runs)
    try:
        text = render(args.runs, output_format(args.format, args.output), args.redact,
                      args.label, args.output)
    except FileNotFoundError as error:
        print(f"paligemma-eval report: error: {error}", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"report: {args.output.resolve()}")
    return 0


MARKDOWN_SUFFIXES = (".md", ".markdown")


def output_format(asked: str | None, output: Path) -> str:
    """--format, else what the output's suffix names (report.md: Markdown), else HTML."""
    return asked or ("markdown" if output.suffix.lower() in MARKDOWN_SUFFIXES else "html")


def add_commands(commands: Any) -> None:
    report = commands.add_parser("report", help="render runs as model-card-style tables")
    report.add_argument("runs", nargs="+", type=Path, help="run directories or result files")
    report.add_argument("--output", required=True, type=Path, help="file to write")
    report.add_argument("--format", choices=["html", "markdown"],
                        help="default: markdown for an --output ending .md or .markdown, else html")
    report.add_argument("--label", action="append",
                        help="column label for the runs, in order (repeat; default: variant and "
                             "run directory name)")
    report.add_argument("--redact", action="store_true",
                        help="leave flagged captions out (for shareable reports)")
    report.set_defaults(func=cmd_report)
