"""Segmentation-token decoder throughput on CPU: masks/s at batch 1 and 64.

Uses a decoder with the real file's shapes (codebook 128 x 512) and random weights.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from paligemma_eval.harness.demo.fixtures import write_seg_decoder
from paligemma_eval.tasks.seg_decoder import SegDecoder


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        decoder = SegDecoder.from_npz(write_seg_decoder(Path(tmp) / "vae.npz", width=512))
    codes = torch.randint(0, 128, (256, 16))
    rates = {}
    for batch in (1, 64):
        decoder(codes[:batch])  # warm-up
        started, done = time.perf_counter(), 0
        while time.perf_counter() - started < 3.0:
            for start in range(0, len(codes), batch):
                decoder(codes[start:start + batch])
                done += min(batch, len(codes) - start)
        rates[batch] = done / (time.perf_counter() - started)
        print(f"batch {batch:2d}: {rates[batch]:8.1f} masks/s ({torch.get_num_threads()} threads)")
    print(f"batch 64 / batch 1: {rates[64] / rates[1]:.1f}x")


if __name__ == "__main__":
    main()
