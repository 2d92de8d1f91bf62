"""Start-up time of the CLI verbs CI calls, as a ratio to a bare `python -c pass`.

    python bench/cli_start.py [REPEATS]

Best of REPEATS (default 5) per command, taken in alternation with the bare interpreter so that
machine noise hits both. `report` renders a small results directory written here first.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def best(command: list[str], repeats: int, cwd: Path) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    work = Path(tempfile.mkdtemp())
    run = work / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"model": {"id": "m", "variant": "224-3B"},
        "tasks": {"vqav2_val": {"headline": "accuracy", "dataset": {"split": "validation"},
                                "metrics": {"accuracy": {"value": 0.8, "ci95": [0.79, 0.81]}}}}}))
    cli = [sys.executable, "-m", "paligemma_eval"]
    verbs = {"--help": ["--help"], "gate --help": ["gate", "--help"],
             "compare --help": ["compare", "--help"],
             "report (1 run)": ["report", str(run), "--output", str(work / "r.html")],
             "tasks": ["tasks"]}
    bare = best([sys.executable, "-c", "pass"], repeats, work)
    print(f"bare python: {bare:.3f} s")
    for label, args in verbs.items():
        seconds = best(cli + args, repeats, work)
        print(f"{label:<16} {seconds:.3f} s  ({seconds / bare:.1f}x bare python)")


if __name__ == "__main__":
    main()
