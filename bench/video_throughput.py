"""Video tasks on this machine: frames decoded per second, examples/s of a 16-frame task, and
memory at 4,096 image tokens per example.

1. PyAV decoding of a synthetic 224 px clip (mpeg4, as the fixtures) into PIL frames: frames/s
   over the whole clip, and for the sampled frames of big_vision's MSR-VTT setting (16 frames,
   stride 9: 144 frames decoded to keep 16).
2. The runner on the VATEX fixture (16 frames of 64 px clips, resized to 224 px), tiny models:
   examples/s at batch 1 and 4, and peak resident memory of the process.
3. What a real PaliGemma 2 3B would hold per example at 4,096 image tokens: the KV cache
   (computed from the config's shapes, bf16), printed beside the measured figures as a computed
   one; no real-size model runs here.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from PIL import Image

from paligemma_eval.harness import registry
from paligemma_eval.harness.demo.fixtures import DATA_DIR
from paligemma_eval.harness.demo.fixtures_video import encode_video
from paligemma_eval.harness.loading import load_model
from paligemma_eval.harness.registry import Frames
from paligemma_eval.harness.runner import RunOptions, run_task
from paligemma_eval.harness.video import decode_frames


def decode_rate(frames: int, size: int) -> tuple[float, float]:
    clip = encode_video([Image.new("RGB", (size, size), ((7 * i) % 256, 80, 160))
                         for i in range(frames)])
    cell = {"bytes": clip, "path": None}
    started = time.perf_counter()
    everything = decode_frames(cell, Frames(frames, 1))
    whole = len(everything) / (time.perf_counter() - started)
    started = time.perf_counter()
    decode_frames(cell, Frames(16, 9))
    sampled = 16 / (time.perf_counter() - started)
    return whole, sampled


def kv_cache_bytes(tokens: int, layers: int = 26, kv_heads: int = 4, head_dim: int = 256) -> int:
    """PaliGemma 2 3B's text tower (Gemma 2 2B: 26 layers, 4 KV heads of 256), bf16, K and V."""
    return 2 * layers * kv_heads * head_dim * tokens * 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=160)
    parser.add_argument("--limit", type=int, default=8)
    args = parser.parse_args()
    whole, sampled = decode_rate(args.frames, 224)
    print(f"PyAV decode, 224 px mpeg4: {whole:.0f} frames/s over the clip; "
          f"{sampled:.0f} kept frames/s for 16 frames at stride 9")
    (task,) = registry.resolve(["vatex_test"])
    for name in ("tiny-paligemma", "tiny-paligemma2"):
        model = load_model(name, device="cpu")
        for batch in (1, 4):
            with tempfile.TemporaryDirectory() as out:
                result = run_task(model, task, RunOptions(out=Path(out), data_dir=DATA_DIR,
                                                          limit=args.limit, batch_size=batch,
                                                          resamples=0))
            rate = result["throughput"]["examples_per_second"]
            print(f"{name} vatex_test (16 frames = 4,096 image tokens), batch {batch}: "
                  f"{rate:.2f} ex/s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak resident memory of this process: {peak:.2f} GiB")
    tokens = 4096 + 16 + 64
    print(f"computed, not measured: PaliGemma 2 3B KV cache at {tokens} tokens = "
          f"{kv_cache_bytes(tokens) / 2**20:.0f} MiB per example (bf16)")


if __name__ == "__main__":
    main()
