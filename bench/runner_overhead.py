"""Runner vs a bare processor + generate loop: same model, examples, batch size, one process.

Prints examples/s for both and the ratio runner/bare in wall time (target <= 1.03), then the
runner's examples/s at batch 1, 4 and 16. The runner's time includes everything it does (loading
the dataset, writing and fsyncing predictions, scoring, results); the examples are --rows
VQAv2-schema fixture rows. Each figure is the best of --repeats runs, taken in alternation so
that machine noise hits both sides alike.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import datasets

from bare_loop import bare_loop
from paligemma_eval.harness import registry
from paligemma_eval.harness.demo import fixtures
from paligemma_eval.harness.loading import load_model
from paligemma_eval.harness.runner import RunOptions, prepare, run_task


def bare_time(model, prepared, batch_size: int) -> float:
    started = time.perf_counter()
    bare_loop(model, prepared, [i for i in prepared.ids if i in prepared.prompts], batch_size)
    return time.perf_counter() - started


def runner(model, task, batch_size: int, data_dir: Path) -> float:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        run_task(model, task, RunOptions(out=Path(out), data_dir=data_dir, batch_size=batch_size,
                                         resamples=0))
        return time.perf_counter() - started


def fixture(rows: int, directory: Path) -> Path:
    """A VQAv2-schema parquet of `rows` synthetic examples."""
    fixtures.ROWS = rows
    table = datasets.Dataset.from_list(fixtures.vqav2(random.Random(0)))
    path = directory / "lmms-lab/VQAv2/default/validation.parquet"
    path.parent.mkdir(parents=True)
    table.cast_column("image", datasets.Image()).to_parquet(str(path))
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-paligemma")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=400)
    args = parser.parse_args()
    model = load_model(args.model)
    task = registry.resolve(["vqav2_val"])[0]
    data_dir = fixture(args.rows, Path(tempfile.mkdtemp()))
    prepared = prepare(task, data_dir, None)
    n = len(prepared.prompts)
    runner(model, task, args.batch_size, data_dir)  # warm-up: first-call costs belong to neither
    bare, ours = [], []
    for _ in range(args.repeats):
        bare.append(bare_time(model, prepared, args.batch_size))
        ours.append(runner(model, task, args.batch_size, data_dir))
    print(f"model {args.model}, task vqav2_val, {n} examples, batch {args.batch_size}, "
          f"device {model.device}, best of {args.repeats}")
    print(f"bare generate loop: {n / min(bare):8.1f} examples/s")
    print(f"runner (all steps): {n / min(ours):8.1f} examples/s")
    print(f"ratio runner/bare wall time: {min(ours) / min(bare):.3f}  (target <= 1.03)")
    rates = {}
    for batch_size in (1, 4, 16):
        rates[batch_size] = n / min(runner(model, task, batch_size, data_dir)
                                    for _ in range(args.repeats))
        print(f"runner batch {batch_size:2d}: {rates[batch_size]:8.1f} examples/s")
    print(f"speed-up batch 16 / batch 1: {rates[16] / rates[1]:.2f}x  (target >= 3x)")


if __name__ == "__main__":
    main()
