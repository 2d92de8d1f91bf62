"""Peak memory of loading a big_vision .npz checkpoint, against the size of the weights.

Builds a synthetic PaliGemma 2 checkpoint of a few hundred MB (bfloat16, stored as big_vision
does), splits it into parts, and loads it in a fresh process with paligemma_eval.harness.npz,
printing the process's peak resident memory above its baseline (imports done) as a multiple of the
weights.
Target: about one copy of the weights plus one stacked parameter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys
import torch, transformers, accelerate, numpy
from paligemma_eval.harness.npz import load_npz
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
def rss(): return status("VmHWM:")
# Warm up what loading imports and builds besides the weights (modeling code, tokenizer), so the
# baseline holds everything except the weights.
from accelerate import init_empty_weights
with init_empty_weights():
    transformers.PaliGemmaForConditionalGeneration(
        transformers.AutoConfig.from_pretrained(sys.argv[2]))
transformers.AutoProcessor.from_pretrained(sys.argv[2])
base = status("VmRSS:")
model = load_npz(sys.argv[1], dtype="bfloat16", device="cpu", base=sys.argv[2])
weights = sum(p.numel() * p.element_size() for p in model.model.parameters())
after = status("VmRSS:")
import ctypes, gc
gc.collect(); ctypes.CDLL("libc.so.6").malloc_trim(0)
print(json.dumps({"baseline": base, "peak": rss(), "weights": weights, "after": after,
                  "trimmed": status("VmRSS:")}))
"""


def main() -> None:
    import torch
    from transformers import (Gemma2Config, PaliGemmaConfig, PaliGemmaForConditionalGeneration,
                              SiglipVisionConfig)

    from paligemma_eval.harness.loading import load_model
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.npz_writer import split, write_npz

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tiny = load_model("tiny-paligemma2", device="cpu")
        vocab = len(tiny.processor.tokenizer)
        config = PaliGemmaConfig(
            vision_config=SiglipVisionConfig(hidden_size=512, intermediate_size=2048,
                                             num_hidden_layers=8, num_attention_heads=8,
                                             patch_size=14, image_size=224,
                                             vision_use_head=False).to_dict(),
            text_config=Gemma2Config(hidden_size=1024, intermediate_size=4096, num_hidden_layers=8,
                                     num_attention_heads=8, num_key_value_heads=4, head_dim=128,
                                     vocab_size=vocab).to_dict(),
            image_token_index=tiny.processor.image_token_id, vocab_size=vocab, projection_dim=1024)
        torch.manual_seed(0)
        model = PaliGemmaForConditionalGeneration(config)
        base = tmp / "base"
        model.config.save_pretrained(base)
        tiny.processor.save_pretrained(base)
        path = write_npz(model, tmp / "synthetic.npz", bfloat16=True)
        del model
        parts = split(path, 4)
        path.unlink()
        size = sum(p.stat().st_size for p in parts)
        for label, spec in (("4 parts, read in place", parts[0]),):
            done = subprocess.run([sys.executable, "-c", CHILD, str(spec), str(base)],
                                  capture_output=True, text=True)
            if done.returncode:
                sys.exit(done.stderr[-3000:])
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            used = figures["peak"] - figures["baseline"]
            print(f"checkpoint: {size / 2**20:.0f} MiB on disk ({label}); weights in memory "
                  f"{figures['weights'] / 2**20:.0f} MiB (bfloat16)")
            print(f"RSS: baseline {figures['baseline'] / 2**20:.0f} MiB, after loading "
                  f"{figures['after'] / 2**20:.0f} MiB ({figures['trimmed'] / 2**20:.0f} MiB once "
                  f"the allocator returns freed pages), peak {figures['peak'] / 2**20:.0f} MiB")
            print(f"peak RSS above baseline: {used / 2**20:.0f} MiB = "
                  f"{used / figures['weights']:.2f} x the weights")


if __name__ == "__main__":
    main()
