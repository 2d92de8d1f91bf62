"""The fast greedy path of the transformers backend (`--generation fast`).

Same model, same weights, same attention implementations (eager Gemma 2 text tower with its
soft-caps, SDPA vision tower) and same `generate` greedy loop as the plain path
(`PaliGemmaModel.generate_prepared`); what changes is the machinery around it:

- a static KV cache, one per shape bucket, kept and reset between calls, so the decode step has
  fixed shapes and fixed addresses (what CUDA graphs need);
- the decode step compiled with `torch.compile(fullgraph=True)` through transformers' own
  `compile_config`, by default with a backend that keeps eager's kernels (`exact_backend`: CUDA
  graphs of them on a GPU, dynamo's capture alone on a CPU); inductor, which writes kernels of
  its own, is an option that bench/fast_generate.py and bench/gpu_throughput.py measure;
- shape buckets: the batch is padded to a power of two (up to the run's batch size) with copies of
  its last row, the cache length rounded up to a multiple of `CACHE_STEP`, so a later batch of the
  same bucket compiles nothing new (the prompt length enters only the prefill, which `generate`
  runs eagerly);
- the vision tower runs once per distinct image of a batch (RefCOCO asks several questions of one
  image; the runner puts a row's questions in one batch when `shares_images` is set).

Beam search is declined (`supports(num_beams)` is False): beams run on the plain path, and the
results say so. Answers are the plain path's (tests/test_fast_generate.py: a one-image and a
multi-question task on both tiny models; bench/fast_generate.py: one task per family, or all);
the run key therefore does not include the path, like the batch size, which moves floating-point
sums in the same way. That holds for the default backend only: in bfloat16, inductor's fused
kernels round otherwise than eager's, and 5 and 7 of 64 greedy answers of the tiny models changed
where two logits were one bfloat16 step apart (CPU, tests/test_fast_generate.py).
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

FAST = "fast"
CACHE_STEP = 128            # cache lengths are rounded up to a multiple of this
EXACT = "exact"             # compile_backend: exact_backend() for the model's device
_RECOMPILE_LIMIT = 64       # graphs per decode step: batch buckets x cache-length buckets


def allow_prebuilt_masks() -> None:
    """Let `PaliGemmaModel.forward` take the mask dict `generate` pre-builds for a static cache.

    With a compilable cache, `generate` builds the masks itself (`create_masks_for_generate`): for
    a model with sliding-window layers (PaliGemma 2) a dict {"full_attention", "sliding_attention"}
    that `PaliGemmaModel.forward` hands on to `create_causal_mask`, which fails with
    `AttributeError: 'dict' object has no attribute 'ndim'` (transformers 5.17 to 5.24 at least).
    Gemma 2 and Gemma 3 let such a dict through themselves (`if not isinstance(attention_mask,
    dict)` in their forward); the upstream fix is that check in `PaliGemmaModel.forward`. Here the
    two mask builders that modeling_paligemma calls are wrapped to return the pre-built entry for
    their layer type, and do exactly what they did before for anything else (a dict used to fail).
    Idempotent.
    """
    from transformers.models.paligemma import modeling_paligemma as module

    for name, layer_type in (("create_causal_mask", "full_attention"),
                             ("create_sliding_window_causal_mask", "sliding_attention")):
        builder = getattr(module, name)
        if getattr(builder, "_passes_prebuilt", False):
            continue

        def passing(*args: Any, _builder: Any = builder, _type: str = layer_type,
                    **kwargs: Any) -> Any:
            mask = kwargs.get("attention_mask")
            if not isinstance(mask, dict):
                return _builder(*args, **kwargs)
            # decoded as big_vision (every layer global: no "sliding_attention" entry is
            # pre-built), the sliding mask is never read: the full one stands in
            return mask.get(_type, mask["full_attention"])

        passing._passes_prebuilt = True  # type: ignore[attr-defined]
        setattr(module, name, passing)


def batch_bucket(size: int, largest: int) -> int:
    """The next power of two >= size, capped at the run's batch size (itself a bucket)."""
    bucket = 1
    while bucket < size:
        bucket *= 2
    return min(bucket, max(largest, size))


def cache_bucket(length: int) -> int:
    return -(-length // CACHE_STEP) * CACHE_STEP


def exact_backend(device_type: str) -> str:
    """The torch.compile backend that runs eager's own kernels, so answers stay the plain path's
    bit for bit: "cudagraphs" on a GPU (the per-step launches and Python, batch 1's cost, replayed
    as one graph), "eager" elsewhere (dynamo's capture and guards, no code generated)."""
    return "cudagraphs" if device_type == "cuda" else "eager"


def distinct_images(pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the distinct images, index of each row's image among them), by exact content.

    A strided sample of each image keys it; a key match is confirmed by full equality, so two
    images that differ anywhere are never merged."""
    flat = pixel_values.reshape(len(pixel_values), -1)
    step = max(1, flat.shape[1] // 4096)
    firsts: dict[bytes, list[int]] = {}
    index: list[int] = []
    kept: list[int] = []
    for row in range(len(flat)):
        # as bytes: numpy has no bfloat16, and bytes are exact for every dtype
        sample = flat[row, ::step].contiguous().cpu().view(torch.uint8)
        key = hashlib.blake2b(sample.numpy().tobytes(), digest_size=16).digest()
        for position in firsts.get(key, []):
            if torch.equal(flat[kept[position]], flat[row]):
                index.append(position)
                break
        else:
            firsts.setdefault(key, []).append(len(kept))
            index.append(len(kept))
            kept.append(row)
    return pixel_values[kept], torch.tensor(index)


@contextmanager
def image_features_once(base_model: Any, index: torch.Tensor) -> Iterator[None]:
    """While inside, the vision tower is fed the distinct images only and its output is spread to
    the rows by `index`. `generate` (5.24: before the prefill) and `forward` (older versions) both
    reach the vision tower through `base_model.get_image_features`, so an instance attribute
    shadowing the method covers both."""
    encode = type(base_model).get_image_features.__get__(base_model)

    def spread(pixel_values: torch.Tensor, **kwargs: Any) -> Any:
        output = encode(pixel_values, **kwargs)
        output.pooler_output = output.pooler_output[index]
        return output

    base_model.get_image_features = spread
    try:
        yield
    finally:
        del base_model.get_image_features


class FastGenerator:
    """Greedy generation for one loaded PaliGemmaForConditionalGeneration.

    `compile_backend` is torch.compile's backend: EXACT (the default, `exact_backend`), a name
    ("inductor": kernels of its own, with CUDA graphs on a GPU; answers can differ in bfloat16),
    or None, which turns compilation off."""

    def __init__(self, model: Any, *, largest_batch: int = 8,
                 compile_backend: str | None = EXACT) -> None:
        from transformers.generation import CompileConfig

        allow_prebuilt_masks()
        self.model, self.largest_batch = model, largest_batch
        self.caches: dict[tuple[int, int], Any] = {}
        # `generate` names the cache `cache` in recent versions (5.24), `past_key_values` before
        self.cache_argument = "cache" if "cache" in inspect.signature(
            type(model).forward).parameters else "past_key_values"
        self.compile_config = None
        if compile_backend == EXACT:
            compile_backend = exact_backend(model.device.type)
        if compile_backend is not None:
            on_gpu = model.device.type == "cuda"
            # dynamic=None: dynamo's default, a dimension seen with two sizes becomes symbolic
            self.compile_config = CompileConfig(
                fullgraph=True, dynamic=None, backend=compile_backend,
                mode="reduce-overhead" if on_gpu and compile_backend == "inductor" else None)
            # transformers compiles the decode step on accelerators only unless told otherwise
            self.compile_config._compile_all_devices = True
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit,
                                                       _RECOMPILE_LIMIT)

    @staticmethod
    def supports(num_beams: int) -> bool:
        return num_beams == 1

    def describe(self) -> dict[str, Any]:
        config = self.compile_config
        return {"path": FAST, "cache": "static", "cache_step": CACHE_STEP,
                "batch_buckets": f"powers of two up to {self.largest_batch}",
                "compiled": None if config is None else
                f"{config.backend}" + (f" ({config.mode})" if config.mode else ""),
                "vision": "once per distinct image of a batch"}

    def _cache(self, batch: int, length: int) -> Any:
        from transformers import StaticCache
        from transformers.cache_utils import StaticLayer

        if any(key[1] != length for key in self.caches):
            self.caches.clear()   # a new cache length (another task): drop the old buckets' memory
        cache = self.caches.get((batch, length))
        if cache is None:
            text_config = self.model.config.get_text_config(decoder=True)
            cache = StaticCache(config=text_config, max_cache_len=length)
            # Sliding-window layers (PaliGemma 2) keep every token, as full layers do: the
            # sliding-window mask (from the config, over absolute positions) hides the old ones,
            # so they attend to the same keys as with a rolling window. A full layer counts its
            # tokens in a tensor; the sliding one in a Python int that dynamo guards on (a
            # recompilation, under CUDA graphs a re-recording, per decode step).
            cache.layers = [StaticLayer(max_cache_len=length) if layer.is_sliding else layer
                            for layer in cache.layers]
            self.caches[(batch, length)] = cache
        else:
            cache.reset()
        return cache

    @torch.inference_mode()
    def generate(self, batch: Any, max_new_tokens: int) -> torch.Tensor:
        """New token ids per row of a processor batch still on the CPU (the distinct images are
        found there, without a device sync per row); padding after EOS as `generate` leaves it."""
        rows = batch["input_ids"].shape[0]
        size = batch_bucket(rows, self.largest_batch)
        device, dtype = self.model.device, self.model.dtype
        images, index = distinct_images(batch["pixel_values"])
        inputs = {key: _pad_rows(value, size).to(device) for key, value in batch.items()
                  if key != "pixel_values"}
        prompt_length = inputs["input_ids"].shape[1]
        cache = self._cache(size, cache_bucket(prompt_length + max_new_tokens))
        # padded rows repeat the last row, images included: as many as its image tokens say (a
        # caller's batch may mix rows of one image, a pair, frames)
        image_tokens = batch["input_ids"] == self.model.config.image_token_id
        last_images = len(index) * int(image_tokens[-1].sum()) // max(1, int(image_tokens.sum()))
        index = torch.cat([index, index[len(index) - last_images:].repeat(size - rows)])
        with image_features_once(self.model.model, index.to(device)):
            output = self.model.generate(**inputs, pixel_values=images.to(device, dtype),
                                         **{self.cache_argument: cache},
                                         max_new_tokens=max_new_tokens,
                                         do_sample=False, num_beams=1,
                                         compile_config=self.compile_config,
                                         disable_compile=self.compile_config is None)
        return output[:rows, prompt_length:]


def _pad_rows(tensor: torch.Tensor, size: int) -> torch.Tensor:
    """Pads the batch dimension to `size` with copies of the last row (their outputs are
    dropped)."""
    missing = size - tensor.shape[0]
    if missing <= 0:
        return tensor
    return torch.cat([tensor, tensor[-1:].expand(missing, *tensor.shape[1:])])
