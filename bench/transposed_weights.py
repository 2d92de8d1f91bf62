"""What keeping big_vision's (in, out) kernels as transposed views costs a matmul.

    python bench/transposed_weights.py [--device cpu|cuda] [--dtype bfloat16] [--repeats 20]

`.npz` loading keeps a kernel that transformers wants as (out, in) as the transposed view of the
stored (in, out) array instead of copying it (harness/npz.py `_without_copy`). This times
`F.linear(x, W)` with W contiguous and with W such a view, on PaliGemma 2 3B's MLP shapes, for 8
tokens (a decode step at batch 8) and 2,048 tokens (a prefill), best of --repeats taken in
alternation, and prints the ratio view / contiguous (above 1: the view is slower).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

SHAPES = {"gate/up (9216 x 2304)": (9216, 2304), "down (2304 x 9216)": (2304, 9216)}


def best_time(run, device: str, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        if device != "cpu":
            torch.cuda.synchronize()
        started = time.perf_counter()
        run()
        if device != "cpu":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    name = torch.cuda.get_device_name() if args.device != "cpu" else \
        f"CPU, {torch.get_num_threads()} threads"
    print(f"{name}, {args.dtype}, torch {torch.__version__}; best of {args.repeats}")
    for label, (out_features, in_features) in SHAPES.items():
        stored = torch.randn(in_features, out_features, dtype=dtype, device=args.device)
        view, contiguous = stored.t(), stored.t().contiguous()
        for tokens in (8, 2048):
            x = torch.randn(tokens, in_features, dtype=dtype, device=args.device)
            times = {"view": float("inf"), "contiguous": float("inf")}
            for _ in range(3):   # alternate, so that noise hits both alike
                for key, weight in (("view", view), ("contiguous", contiguous)):
                    times[key] = min(times[key], best_time(lambda w=weight: F.linear(x, w),
                                                           args.device, args.repeats))
            print(f"{label}, {tokens:>5} tokens: contiguous {times['contiguous'] * 1e6:8.1f} us, "
                  f"view {times['view'] * 1e6:8.1f} us: view/contiguous "
                  f"{times['view'] / times['contiguous']:.2f}")


if __name__ == "__main__":
    main()
