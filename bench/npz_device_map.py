"""`--device-map auto` for a real-size `.npz`, split over a GPU and the CPU: placement, logits.

    python bench/npz_device_map.py FILE.npz [--gpu-memory 4GiB]

With one GPU the multi-device path (accelerate's plan for the memory-less model, each tensor
placed on its device as it is read, then dispatch hooks between devices) is exercised by capping
the GPU's share (`--max-memory 0=4GiB,cpu=200GiB` on the command line). Loads FILE wholly onto
cuda:0, then split; prints how many parameters landed on each device, both load times, and the
largest difference between the two models' last-position logits for one synthetic image and
prompt (bfloat16). accelerate runs the CPU share by moving each offloaded layer's weights to
cuda:0 for its forward, so the same kernels run and the logits should be equal.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import torch
import transformers  # noqa: F401  imported before the clocks: a fixed cost, not the file's

from paligemma_eval.harness.npz import load_weights


def logits(model, image_size: int) -> torch.Tensor:
    config = model.config
    tokens = (image_size // config.vision_config.patch_size) ** 2
    prompt = torch.tensor([2, 1, 2, 3, 4, 108])   # any ids below the image token
    ids = torch.cat([torch.full((tokens,), config.image_token_index), prompt])[None]
    generator = torch.Generator().manual_seed(0)
    pixels = torch.rand(1, 3, image_size, image_size, generator=generator) * 2 - 1
    with torch.inference_mode():
        out = model(input_ids=ids.to("cuda:0"), attention_mask=torch.ones_like(ids).to("cuda:0"),
                    pixel_values=pixels.to("cuda:0", torch.bfloat16))
    return out.logits[0, -1].float().cpu()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--gpu-memory", default="4GiB", help="cuda:0's share when split (4GiB)")
    args = parser.parse_args()
    torch.zeros(1, device="cuda:0")
    started = time.perf_counter()
    whole, config, variant = load_weights(args.file, dtype="bfloat16", device="cuda:0")
    torch.cuda.synchronize()
    whole_seconds = time.perf_counter() - started
    reference = logits(whole, variant.resolution)
    del whole
    torch.cuda.empty_cache()
    started = time.perf_counter()
    split, _, _ = load_weights(args.file, dtype="bfloat16", device_map="auto",
                               max_memory={0: args.gpu_memory, "cpu": "200GiB"})
    torch.cuda.synchronize()
    split_seconds = time.perf_counter() - started
    placed = Counter()
    for parameter in split.parameters():
        # accelerate keeps the CPU share in a weights map and leaves meta tensors in the model
        device = "cpu (offloaded)" if parameter.device.type == "meta" else str(parameter.device)
        placed[device] += parameter.numel()
    split_logits = logits(split, variant.resolution)
    difference = (split_logits - reference).abs().max().item()
    print(f"{torch.cuda.get_device_name()}: {variant.family} {variant.size} "
          f"{variant.resolution} px")
    print(f"whole on cuda:0: load {whole_seconds:.1f} s")
    print(f"split (max_memory 0={args.gpu_memory}): load {split_seconds:.1f} s; parameters "
          + ", ".join(f"{device} {count / 1e9:.2f} B" for device, count in sorted(placed.items())))
    print(f"last-position logits: max |split - whole| {difference:.4f} "
          f"(max |whole| {reference.abs().max().item():.2f}); same argmax: "
          f"{bool(split_logits.argmax() == reference.argmax())}")


if __name__ == "__main__":
    main()
