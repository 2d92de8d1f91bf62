"""Whether preprocessing can feed the GPU targets of issue 25, and with how many threads.

    python bench/preprocess_throughput.py [--examples 128] [--repeats 3] [--json FILE]

On 640x480 JPEG photos (bench/gpu_throughput.py's data), at 224, 448 and 896 px, prints:
1. each step's cost on one thread, in ms per example: JPEG decode, big_vision's resize
   (bilinear-antialias), pixel values by the processor, and by its table (harness/pixels.py);
2. examples/s of the runner's own `load_batch` (decode, resize, prompt ids, pixel values: what
   feeds generation), batch 64, run as beside an accelerator (in a prefetch thread) with 1, 2, 4,
   ... threads up to one per core, then the same with the processor instead of the table;
3. decode + resize on a process pool of as many workers as the most threads, against those
   threads (does a process pool beat threads?), each worker with one torch thread;
4. the GIL: load_batch (on one thread fewer than the cores) beside, first, a loop that never
   lets go of the GIL (the worst case), then the tiny model's plain `generate` at batch 1 (Python
   between torch calls that let go of it, as the thread feeding a GPU runs): each one's rate
   beside the other / alone; and decode + resize on threads and on processes beside the
   GIL-holding loop / alone (does a process pool escape the GIL?);
5. the verdict against issue 25's targets (40% of the H200's limit at batch 64): the fewest
   threads that feed it, or that none here do.
Each figure of 1-3 is the best of --repeats, taken in alternation (those of 4: one run each).
No GPU is used: the figures are the host's. Run it on the GPU machine's host for its own.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from contextlib import nullcontext
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
from gpu_throughput import build, write_data
from paligemma_eval.harness import data, registry
from paligemma_eval.harness.runner import load_batch, prepare, preprocess_threads

TARGETS = {224: 190.0, 448: 60.0, 896: 14.0}   # ex/s, issue 25: 40% of the limit at batch 64
BATCH = 64


def decode_and_resize(cell: dict, size: int) -> Any:
    return data.resize(data.decode_image(cell), size, "bilinear-antialias")


def per_example_ms(work, items: list) -> float:
    started = time.perf_counter()
    for item in items:
        work(item)
    return 1e3 * (time.perf_counter() - started) / len(items)


def step_costs(model, cells: list[dict], size: int) -> dict[str, float]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # the resize is torch's: one thread, as each loader thread
    decoded = [data.decode_image(cell) for cell in cells]
    resized = [data.resize(image, size, "bilinear-antialias") for image in decoded]
    processor = model.processor.image_processor
    costs = {
        "decode": per_example_ms(data.decode_image, cells),
        "resize": per_example_ms(lambda i: data.resize(i, size, "bilinear-antialias"), decoded),
        "pixels_processor": per_example_ms(
            lambda i: processor(images=[i], return_tensors="pt"), resized),
        "pixels_table": per_example_ms(lambda i: model.pixel_table([i]), resized),
    }
    torch.set_num_threads(threads)
    return costs


def load_rate(model, prepared, threads: int, beside=None) -> tuple[float, float | None]:
    """As the runner loads beside an accelerator: in its prefetch thread, with `threads` more.
    Examples/s, and `beside(until)`'s own rate when given (run on this thread meanwhile)."""
    ids = [i for i in prepared.ids if i in prepared.prompts]
    batches = [ids[s:s + BATCH] for s in range(0, len(ids), BATCH)]
    with preprocess_threads(1) as prefetch, \
            preprocess_threads(threads) if threads > 1 else nullcontext() as loader:
        def load_all() -> None:
            for batch in batches:
                load_batch(model, prepared, batch, loader)
        prefetch.submit(load_batch, model, prepared, batches[0], loader).result()   # warm-up
        started = time.perf_counter()
        loading = prefetch.submit(load_all)
        beside_rate = beside(loading.done) if beside is not None else None
        loading.result()
    return len(ids) / (time.perf_counter() - started), beside_rate


def gil_holding_steps(until) -> float:
    """Steps/s of a loop that never lets go of the GIL but at the switch interval (sum over a
    range is C code run under it): the worst case for threads beside it."""
    steps, started = 0, time.perf_counter()
    while not until():
        for _ in range(100):
            sum(range(200))
        steps += 1
    return steps / (time.perf_counter() - started)


def generate_steps(model, batch):
    """Calls/s of the plain `generate` at batch 1 (8 tokens) on the tiny model, one torch
    thread: Python between many small torch calls, each of which lets go of the GIL, as the
    thread feeding a GPU does between kernel launches."""
    def steps(until) -> float:
        calls, started = 0, time.perf_counter()
        while not until():
            model.generate_prepared(batch, max_new_tokens=8)
            calls += 1
        return calls / (time.perf_counter() - started)
    return steps


def gil_contention(model, prepared, threads: int, loop) -> dict[str, float]:
    """`loop`'s rate and load_batch's, each beside the other / alone."""
    alone_end = time.perf_counter() + 1.5
    alone = loop(lambda: time.perf_counter() > alone_end)
    load_beside, beside = load_rate(model, prepared, threads, beside=loop)
    return {"loop_beside_over_alone": beside / alone,
            "load_beside_over_alone": load_beside / load_rate(model, prepared, threads)[0]}


def gil_figures(model, prepared, threads: int) -> dict[str, dict[str, float]]:
    """gil_contention beside each loop, the loop on one torch thread."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    _, one, _ = load_batch(model, prepared, prepared.ids[:1], None)
    try:
        return {name: gil_contention(model, prepared, threads, loop) for name, loop in
                (("gil_holding_loop", gil_holding_steps),
                 ("generate_batch1", generate_steps(model, one)))}
    finally:
        torch.set_num_threads(saved)


def pool_rate(pool, cells: list[dict], size: int) -> float:
    list(pool.map(decode_and_resize, cells[:8], [size] * 8))   # warm-up (workers start)
    started = time.perf_counter()
    list(pool.map(decode_and_resize, cells, [size] * len(cells), chunksize=4))
    return len(cells) / (time.perf_counter() - started)


def pools_beside_gil_holding_loop(cells: list[dict], size: int, workers: int) -> dict[str, float]:
    """Decode + resize ex/s on `workers` threads and on as many processes, beside the
    GIL-holding loop / alone: a worker process holds its own GIL, but its results come back
    through a thread of this process."""
    spawn = multiprocessing.get_context("spawn")
    ratios = {}
    with preprocess_threads(workers) as threads, \
            ProcessPoolExecutor(workers, mp_context=spawn, initializer=torch.set_num_threads,
                                initargs=(1,)) as pool:
        for name, executor in (("threads", threads), ("processes", pool)):
            alone = pool_rate(executor, cells, size)
            started = time.perf_counter()
            pending = [executor.submit(decode_and_resize, cell, size) for cell in cells]
            gil_holding_steps(lambda: all(job.done() for job in pending))
            ratios[name] = len(cells) / (time.perf_counter() - started) / alone
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    counts = [n for n in (1, 2, 4, 8, 16) if n <= cores]
    print(f"{cores} CPU cores; batch {BATCH}, {args.examples} examples of 640x480 JPEG photos")
    data_dir = write_data(Path(tempfile.mkdtemp()), args.examples)
    (task,) = registry.resolve(["vqav2_val"])
    prepared = prepare(task, data_dir, args.examples)
    cells = [prepared.rows[prepared.row_of[i]]["image"] for i in prepared.ids]
    figures: dict[str, Any] = {"cores": cores}
    for size in (224, 448, 896):
        model = build(size, tiny=True, device="cpu")
        costs = step_costs(model, cells[:16], size)
        print(f"{size} px, ms per example on one thread: " + ", ".join(
            f"{step} {ms:.2f}" for step, ms in costs.items()))
        rates, processor_rate = {n: 0.0 for n in counts}, 0.0
        table = model.pixel_table
        for _ in range(args.repeats):   # best of, in alternation: noise hits every figure alike
            for n in counts:
                rates[n] = max(rates[n], load_rate(model, prepared, n)[0])
            model.__dict__["pixel_table"] = None    # the processor for every image, as before
            processor_rate = max(processor_rate, load_rate(model, prepared, counts[-1])[0])
            model.__dict__["pixel_table"] = table
        print(f"{size} px, load_batch ex/s by threads: " + ", ".join(
            f"{n}: {rate:.1f}" for n, rate in rates.items())
            + f"; with the processor's pixels at {counts[-1]}: {processor_rate:.1f}")
        # spawned, not forked: a worker forked after torch has run its threads can hang (it did)
        spawn = multiprocessing.get_context("spawn")
        with preprocess_threads(counts[-1]) as threads, \
                ProcessPoolExecutor(counts[-1], mp_context=spawn,
                                    initializer=torch.set_num_threads, initargs=(1,)) as pool:
            versus = {"threads": 0.0, "processes": 0.0}
            for _ in range(args.repeats):
                versus["threads"] = max(versus["threads"], pool_rate(threads, cells, size))
                versus["processes"] = max(versus["processes"], pool_rate(pool, cells, size))
        print(f"{size} px, decode + resize ex/s with {counts[-1]} workers: threads "
              f"{versus['threads']:.1f}, processes {versus['processes']:.1f}")
        beside = max(1, min(cores - 1, counts[-1]))   # a core left for the loop beside
        gil = gil_figures(model, prepared, beside)
        gil["pools_beside_gil_holding_loop"] = pools_beside_gil_holding_loop(cells, size, beside)
        for name in ("gil_holding_loop", "generate_batch1"):
            print(f"{size} px, beside {name.replace('_', ' ')} ({beside} loading thread(s)): "
                  f"it runs at {gil[name]['loop_beside_over_alone']:.2f}x its rate alone, "
                  f"load_batch at {gil[name]['load_beside_over_alone']:.2f}x")
        print(f"{size} px, decode + resize beside the GIL-holding loop / alone, {beside} "
              "worker(s): " + ", ".join(f"{name} {ratio:.2f}x" for name, ratio in
                                        gil["pools_beside_gil_holding_loop"].items()))
        feeding = [n for n, rate in rates.items() if rate >= TARGETS[size]]
        print(f"{size} px: target {TARGETS[size]:.0f} ex/s: " + (
            f"fed from {feeding[0]} thread(s)" if feeding else
            f"not fed by up to {counts[-1]} threads here ({max(rates.values()):.1f} ex/s)"))
        figures[str(size)] = {"ms_per_example": costs, "load_batch_by_threads": rates,
                              "load_batch_processor_pixels": processor_rate,
                              "decode_resize_workers": versus,
                              "gil": {"loading_threads": beside, **gil}, "target": TARGETS[size]}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
