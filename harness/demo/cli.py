"""`paligemma-eval demo --output DIR`: the main job end to end on what ships inside the package.

Every registered task on both embedded models with the fixture data, the FairFace audit against
the built-in Perspective-compatible server (deterministic, not Perspective), then the sample
browser of both models' examples and the report. Needs
no source tree: models, fixtures and a segmentation decoder with the real layout (random weights:
the real vae-oid.npz cannot be shipped) come from the installed package.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from paligemma_eval.harness.arguments import positive_int

DEMO_MODELS = ("tiny-paligemma", "tiny-paligemma2")


def cmd_demo(args: argparse.Namespace) -> int:
    from paligemma_eval.harness.cli import main, writable_dir
    from paligemma_eval.harness.demo.fixtures import DATA_DIR, write_seg_decoder

    out = writable_dir(args.output)
    decoder = out / "vae-oid-fixture.npz"
    if not decoder.exists():
        write_seg_decoder(decoder)
    limit = ["--limit", str(args.limit)] if args.limit is not None else []
    common = ["--data-dir", str(DATA_DIR), *limit]
    steps = [["run", "--model", model, "--tasks", args.tasks, "--seg-decoder", str(decoder),
              "--output", str(out / model), *common] for model in DEMO_MODELS]
    steps.append(["safety", "--model", DEMO_MODELS[0], "--scorer", "local-server", "--qps", "50",
                  "--output", str(out / DEMO_MODELS[0]), *common])
    # the examples behind the numbers, the two models side by side (the report links to it)
    steps.append(["browse", *(str(out / m) for m in DEMO_MODELS), "--data-dir", str(DATA_DIR),
                  "--seg-decoder", str(decoder), "--output", str(out / "browser")])
    steps.append(["report", *(str(out / m) for m in DEMO_MODELS), "--output",
                  str(out / "report.html")])
    for step in steps:
        status = main(step)
        if status:
            return status
    return 0


def add_commands(commands: Any) -> None:
    demo = commands.add_parser("demo", help="run the embedded demo end to end (models, fixture "
                                            "data, safety audit, sample browser, report)")
    demo.add_argument("--output", required=True, type=Path, help="directory for every output")
    demo.add_argument("--tasks", default="all", help="tasks or groups (default: %(default)s)")
    demo.add_argument("--limit", type=positive_int,
                      help="first N examples of each task (default: all)")
    demo.set_defaults(func=cmd_demo)
