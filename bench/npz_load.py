"""Loading a real-size big_vision .npz: bytes read, seconds against `cat`, peak memory.

    python bench/npz_load.py [--variant 3B] [--dir DIR] [--keep] [--reuse] [--repeat 3]
                             [--device cpu]

Writes a PaliGemma 2 224px checkpoint of the published shapes with random bfloat16 values
(3B: about 6 GB) one array at a time, then in a fresh process loads it with
`paligemma_eval.harness.npz.load_weights` (the weights path of `run --model X.npz`; the tokenizer is
not needed; transformers and accelerate are imported before the clock starts) and prints: bytes
read through read() (/proc/self/io rchar) / file size, load seconds
/ seconds of `cat FILE > /dev/null` on the same file (run just before, so both see the same page
cache), the same with every page of every weight touched once (memory-mapped weights are read on
first use), and peak RSS above the process's baseline / weight bytes; with the file in the
page cache and with it evicted before each reader (cold), --repeat times each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parent.parent))  # for tests.npz_writer
from tests.npz_writer import big_vision_shapes, published_shapes  # noqa: E402


def all_shapes(size: str) -> dict[str, tuple[int, ...]]:
    """Every array of a published variant, from a memory-less model of its config."""
    from accelerate import init_empty_weights
    from transformers import PaliGemmaForConditionalGeneration

    from paligemma_eval.harness.npz import infer_variant, published_config

    config = published_config(infer_variant(published_shapes("paligemma2", size, 224)))
    with init_empty_weights():
        model = PaliGemmaForConditionalGeneration(config)
    return big_vision_shapes(model)

LOADER = r"""
import json, resource, sys, time
def io():
    fields = dict(line.split(": ") for line in open("/proc/self/io").read().splitlines())
    return int(fields["rchar"])
def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
from paligemma_eval.harness.npz import load_weights
import torch
# Imported before the clock starts: a fixed cost of any load (a few seconds on 2 cores), not a
# cost of reading the checkpoint.
from accelerate import init_empty_weights
from transformers import PaliGemmaForConditionalGeneration
device = sys.argv[2]
if device != "cpu":
    torch.zeros(1, device=device)   # the CUDA context: a fixed cost too
base_rss, before, started = rss_kib(), io(), time.perf_counter()
model, _, _ = load_weights(sys.argv[1], dtype="bfloat16", device=device)
if device != "cpu":
    torch.cuda.synchronize()
seconds, read = time.perf_counter() - started, io() - before
# Mapped parameters are read when first used: touch one element of every page of every
# parameter, so the figure below includes all the reading a first forward pass would do (on a
# GPU every weight has been copied over already).
with torch.no_grad():
    for p in model.parameters():
        flat = p.view(-1) if p.is_contiguous() else p.t().reshape(-1)
        flat[::2048].float().sum()
touched = time.perf_counter() - started
weights = sum(p.numel() * p.element_size() for p in model.parameters())
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "touched": touched, "read": read, "weights": weights,
                  "peak_above_baseline": (peak - base_rss) * 1024}))
"""


def write_checkpoint(path: Path, size: str) -> int:
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w", allowZip64=True) as archive:   # stored, as big_vision's
        for name, shape in all_shapes(size).items():
            count = int(np.prod(shape))
            # random sign and mantissa, exponent fixed: finite values of size 2^-7..2^-6 (random
            # bytes would include NaN and infinity, and every logit would be NaN)
            bits = np.frombuffer(rng.bytes(2 * count), dtype=np.uint16) & 0x807F | 0x3C00
            array = bits.view("V2").reshape(shape)
            with archive.open(f"params/{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
            del array
    return path.stat().st_size


def evict(path: Path) -> None:
    """Drop the file's pages from the page cache (no root needed: only clean pages of a file
    this process can open), so the next reader goes to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _cat_and_load(path: Path, cold: bool, device: str) -> tuple[float, dict]:
    """Seconds of `cat FILE > /dev/null`, then the loader's figures, each from the same cache
    state: warm (cat just read the file) or cold (evicted before each)."""
    if cold:
        evict(path)
    started = time.perf_counter()
    subprocess.run(f"cat '{path}' > /dev/null", shell=True, check=True)
    cat = time.perf_counter() - started
    if cold:
        evict(path)
    done = subprocess.run([sys.executable, "-c", LOADER, str(path), device],
                          capture_output=True, text=True, cwd=tempfile.gettempdir())
    if done.returncode:
        sys.exit(f"loading failed: {done.stderr[-3000:]}")
    return cat, json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", default="3B", choices=["3B", "10B", "28B"])
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--keep", action="store_true", help="leave the file (default: removed)")
    parser.add_argument("--reuse", action="store_true", help="load the file left by --keep")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cache state (3)")
    parser.add_argument("--device", default="cpu", help="load onto this device (cpu)")
    args = parser.parse_args()
    path = args.dir / f"bench-paligemma2-{args.variant.lower()}-pt-224.npz"
    try:
        if args.reuse and path.is_file():
            size = path.stat().st_size
        else:
            started = time.perf_counter()
            size = write_checkpoint(path, args.variant)
            print(f"wrote {path} ({size / 1e9:.2f} GB) in {time.perf_counter() - started:.0f} s")
        print(f"python {sys.version.split()[0]}, loading onto {args.device}; per run: load s, "
              f"load + first touch of every weight page s, cat s, their ratios to cat, bytes "
              f"through read() / file size (mapped pages come in on first use, not through "
              f"read()), peak RSS above baseline / weight bytes")
        for cache in ("warm", "cold"):
            for run in range(args.repeat):
                cat, f = _cat_and_load(path, cache == "cold", args.device)
                print(f"{cache} {run + 1}: load {f['seconds']:.2f} touched {f['touched']:.2f} "
                      f"cat {cat:.2f}: {f['seconds'] / cat:.2f}x / {f['touched'] / cat:.2f}x; "
                      f"read {f['read'] / size:.3f}; "
                      f"RSS {f['peak_above_baseline'] / f['weights']:.3f}")
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
