"""One process vs two data-parallel processes (torchrun, gloo on CPU), same task and model.

Prints the wall time of each and the speed-up. On a 2-core machine the two ranks share the
cores, so expect little; the figure is about overhead, and the identity of the results is
checked by tests/test_data_parallel.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from paligemma_eval.harness.demo.fixtures import DATA_DIR

ARGS = ["run", "--model", "tiny-paligemma", "--tasks", "vqav2_val,pope,mmvp,docvqa_val",
        "--data-dir", str(DATA_DIR), "--batch-size", "4", "--bootstrap", "0"]


def timed(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def main() -> None:
    cores = os.cpu_count() or 1
    results = {}
    for processes in (1, 2):
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // processes))}
        runs = []
        for _ in range(2):
            with tempfile.TemporaryDirectory() as out:
                launcher = [sys.executable, "-m", "paligemma_eval"] if processes == 1 else \
                    [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                     "--standalone", "-m", "paligemma_eval"]
                runs.append(timed(launcher + ARGS + ["--output", out], env))
        results[processes] = min(runs)
        print(f"{processes} process(es), {env['OMP_NUM_THREADS']} threads each: "
              f"{results[processes]:.1f} s (best of 2, model loading included)")
    print(f"speed-up 2 vs 1: {results[1] / results[2]:.2f}x on {cores} cores")


if __name__ == "__main__":
    main()
