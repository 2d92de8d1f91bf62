"""Loading any PaliGemma / PaliGemma 2 checkpoint and generating from it in batches.

Family, size and resolution are read from the config, never from the name. `load_transformers`
reads a transformers directory or hub id; harness/loading.py picks the loader for a checkpoint.

How a Gemma 2 text tower decodes is set here, for every loader (`decode_setup`): by default as
big_vision ran every card number (no final logit soft-cap, global attention on every layer), or
with `decode_config="checkpoint"` exactly as the checkpoint's config says (soft-cap 30, a
4,096-token window on half the layers). The text tower always runs an attention that applies
Gemma 2's attention soft-cap (eager: SDPA drops it), the vision tower SDPA; what was used is in
ModelInfo and so in every run key and results file.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from paligemma_eval.harness.errors import ModelError
from paligemma_eval.harness.pixels import PixelTable

EMBEDDED_DIR = Path(__file__).parent / "demo" / "models"
EMBEDDED = {p.name: p for p in sorted(EMBEDDED_DIR.glob("tiny-*"))}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# Text tower width -> published size, per family (REFERENCE.md's configs).
_SIZES = {("paligemma", 2048): "3B", ("paligemma2", 2304): "3B", ("paligemma2", 3584): "10B",
          ("paligemma2", 4608): "28B"}

DECODE_CONFIGS = ("big_vision", "checkpoint")
# Text attention per text tower: Gemma 2's must apply its attention soft-cap, which SDPA drops
# (transformers 5.17 / 5.18 pick SDPA by default); Gemma 1 has no cap, SDPA is exact.
TEXT_ATTENTION = {"gemma": "sdpa", "gemma2": "eager"}
CAPPING_ATTENTION = ("eager",)
VISION_ATTENTION = "sdpa"


@dataclass(frozen=True)
class ModelInfo:
    id: str
    revision: str | None
    fingerprint: str     # content hash of local weights, or hub id@resolved commit
    family: str          # "paligemma" (Gemma text) or "paligemma2" (Gemma 2 text)
    size: str            # "3B" / "10B" / "28B", or the parameter count for other shapes
    resolution: int
    dtype: str
    kind: str            # "pt", "mix", "ft" or "unknown": the only field taken from the name
    embedded: bool = False
    backend: str = "transformers"
    # How it decodes (decode_setup): "big_vision" or "checkpoint", and the settings in force
    decode_config: str = "checkpoint"
    final_logit_softcapping: float | None = None
    attn_logit_softcapping: float | None = None
    sliding_window: int | None = None     # None: global attention on every layer
    text_attention: str | None = None
    vision_attention: str | None = None

    @property
    def variant(self) -> str:
        """The cards' column label: PaliGemma 2 `224-3B`, PaliGemma 1 `pt-224`."""
        if self.family == "paligemma2":
            return f"{self.resolution}-{self.size}"
        return f"{self.kind}-{self.resolution}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "variant": self.variant}

    def decoding(self) -> dict[str, Any]:
        """What decides the numbers besides the weights: part of every run key."""
        return {name: getattr(self, name) for name in (
            "decode_config", "final_logit_softcapping", "attn_logit_softcapping",
            "sliding_window", "text_attention", "vision_attention")}


def describe_config(config: Any, n_parameters: int) -> dict[str, Any]:
    """Family, size and resolution of a PaliGemmaConfig."""
    text_type = config.text_config.model_type
    family = {"gemma": "paligemma", "gemma2": "paligemma2"}.get(text_type)
    if family is None:
        raise ModelError(f"PaliGemma config with unsupported text model {text_type!r}")
    width = config.text_config.hidden_size
    size = _SIZES.get((family, width)) or f"{n_parameters / 1e6:.2f}M"
    return {"family": family, "size": size, "resolution": int(config.vision_config.image_size)}


def decode_setup(config: Any, decode_config: str) -> dict[str, Any]:
    """Set a PaliGemmaConfig (before the model is built) to decode as `decode_config` says, and
    pin the attention implementations; returns the `attn_implementation` to build it with."""
    if decode_config not in DECODE_CONFIGS:
        raise ModelError(f"--decode-config {decode_config!r}: choose one of "
                         f"{', '.join(DECODE_CONFIGS)}")
    text = config.text_config
    if decode_config == "big_vision" and text.model_type == "gemma2":
        # big_vision's paligemma.Model takes the logits before the cap (its PaliGemma 2 transfer
        # template sets final_logits_softcap=0) and its Gemma 2 has no sliding window. The
        # window's size stays in the config, unused: no layer is a sliding one.
        text.final_logit_softcapping = None
        text.layer_types = ["full_attention"] * text.num_hidden_layers
    attention = {"text_config": TEXT_ATTENTION.get(text.model_type, "eager"),
                 "vision_config": VISION_ATTENTION}
    config._attn_implementation = attention
    return attention


def decode_settings(model: Any, decode_config: str, spec: str) -> dict[str, Any]:
    """The settings a loaded model decodes with, read from its modules; refuses a text attention
    that would drop Gemma 2's attention soft-cap."""
    text = model.model.language_model.config
    vision = model.model.vision_tower.config
    attn_cap = getattr(text, "attn_logit_softcapping", None)
    text_attention = text._attn_implementation
    if attn_cap and text_attention not in CAPPING_ATTENTION:
        raise ModelError(f"{spec}: text attention {text_attention!r} drops Gemma 2's attention "
                         f"soft-cap ({attn_cap}); this transformers must run it with "
                         f"{' or '.join(CAPPING_ATTENTION)}")
    layer_types = getattr(text, "layer_types", None) or []
    window = getattr(text, "sliding_window", None) if "sliding_attention" in layer_types else None
    return {"decode_config": decode_config,
            "final_logit_softcapping": getattr(text, "final_logit_softcapping", None),
            "attn_logit_softcapping": attn_cap, "sliding_window": window,
            "text_attention": text_attention, "vision_attention": vision._attn_implementation}


def kind_from_name(name: str) -> str:
    for kind in ("mix", "pt", "ft"):
        if f"-{kind}-" in name or name.endswith(f"-{kind}"):
            return kind
    return "unknown"


def _fingerprint_dir(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(file.name.encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()


@dataclass(frozen=True)
class Completion:
    """One decoded output. `output_truncated`: generation stopped at max_new_tokens without an
    end-of-sequence token; `prompt_truncated`: the prompt was cut to the task's text length."""

    text: str
    output_truncated: bool = False
    prompt_truncated: bool = False

    def flags(self) -> dict[str, bool]:
        """The flags that are set, for a prediction record (absent means false)."""
        return {k: True for k in ("output_truncated", "prompt_truncated") if getattr(self, k)}


def tolen(ids: list[int], max_prompt_tokens: int | None) -> tuple[list[int], bool]:
    """big_vision's tolen(text_len) on `<bos> ids`: the ids cut so that, with the <bos> before
    them, they fit `max_prompt_tokens` (None: no cut); and whether they were cut."""
    if max_prompt_tokens is not None and len(ids) + 1 > max_prompt_tokens:
        return ids[:max_prompt_tokens - 1], True
    return ids, False


class PaliGemmaModel:
    """A loaded checkpoint: `generate` maps (images, prompts) to decoded suffixes."""

    def __init__(self, model: Any, processor: Any, info: ModelInfo) -> None:
        self.model, self.processor, self.info = model, processor, info
        self.processor.tokenizer.padding_side = "left"  # batched generation continues on the right
        self.fast: Any = None  # a FastGenerator after use_generation("fast")

    def use_generation(self, path: str, largest_batch: int,
                       compile_backend: str | None = "exact") -> None:
        """"plain" (`generate` with a dynamic cache) or "fast" (harness/fast_generate.py; its
        `compile_backend`)."""
        from paligemma_eval.harness.fast_generate import FAST, FastGenerator

        self.fast = FastGenerator(self.model, largest_batch=largest_batch,
                                  compile_backend=compile_backend) if path == FAST else None

    @property
    def shares_images(self) -> bool:
        """True when one batch's questions about one image cost one pass of the vision tower."""
        return self.fast is not None

    def generation_path(self, num_beams: int, task: str = "") -> dict[str, Any]:
        """What generates under these settings, for results.json."""
        if self.fast is None:
            return {"path": "plain"}
        if not self.fast.supports(num_beams):
            return {"path": "plain", "reason": "the fast path is greedy only (num_beams > 1)"}
        return self.fast.describe()

    @property
    def device(self) -> torch.device:
        return self.model.device

    @cached_property
    def separator_ids(self) -> list[int]:
        """big_vision's `septok`: the "\n" after the prompt, tokenized on its own (once)."""
        return self.processor.tokenizer("\n", add_special_tokens=False)["input_ids"]

    @cached_property
    def pixel_table(self) -> PixelTable | None:
        """The processor's pixel values as a table, for images already at its size (made once)."""
        size = self.processor.image_processor.size
        if not size.get("height") or size.get("height") != size.get("width"):
            return None
        return PixelTable.of(self.processor.image_processor, size["height"])

    def pixel_values(self, images: list[Image.Image]) -> torch.Tensor:
        """The processor's `pixel_values` for these images: by its table where every image is
        already at its size (as resized tasks' images are), else by the processor itself."""
        table = self.pixel_table
        if table is not None and table.applies(images):
            return table(images)
        return self.processor.image_processor(images=images, return_tensors="pt")["pixel_values"]

    def prompt_ids(self, prompt: str, max_prompt_tokens: int | None) -> tuple[list[int], bool]:
        """big_vision's text input after <bos>: the prompt and the "\n" separator, each
        tokenized on its own (`tok(key='prefix')`, `tok(key='septok', text='\n')`), then
        tolen(text_len) on `<bos> prompt \n`: cut to `max_prompt_tokens` with the bos, so a cut
        loses the "\n" first. And whether it was cut. (The HF processor tokenizes prompt + "\n"
        as one string: the same ids unless the tokenizer merges the newline.)"""
        return tolen(self.processor.tokenizer(prompt, add_special_tokens=False)["input_ids"] +
                     self.separator_ids, max_prompt_tokens)

    def prepare(self, images: list[list[Image.Image] | Image.Image], prompts: list[str],
                max_prompt_tokens: int | None = None) -> Any:
        """Model inputs for one batch (CPU work; can run ahead of generation), in big_vision's
        layout: image tokens, <bos>, prompt ids (`prompt_ids`), left-padded, all prefix (attended
        both ways). Each example brings its own list of images (one, a pair, or video frames; a
        bare image is a list of one): each image becomes its own block of image tokens,
        concatenated, as big_vision encodes frames. The pixels are the image processor's
        (`pixel_values`). `prompt_truncated` (an attribute, not a model input) flags the prompts
        cut to `max_prompt_tokens`."""
        from transformers import BatchFeature

        images = [[shown] if isinstance(shown, Image.Image) else list(shown) for shown in images]
        tokenizer = self.processor.tokenizer
        image_tokens = [self.processor.image_token_id] * self.processor.image_seq_length
        rows, cut = [], []
        for shown, prompt in zip(images, prompts):
            ids, was_cut = self.prompt_ids(prompt, max_prompt_tokens)
            rows.append(image_tokens * len(shown) + [tokenizer.bos_token_id] + ids)
            cut.append(was_cut)
        width = max(map(len, rows))
        input_ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(row)) + row
                                  for row in rows])
        attention_mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in rows])
        batch = BatchFeature({"input_ids": input_ids, "token_type_ids": torch.zeros_like(input_ids),
                              "attention_mask": attention_mask,
                              "pixel_values": self.pixel_values(
                                  [image for shown in images for image in shown])})
        batch.prompt_truncated = cut
        return batch

    def end_token_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
        return ids | {self.processor.tokenizer.eos_token_id}

    @torch.inference_mode()
    def generate_prepared(self, batch: Any, max_new_tokens: int,
                          num_beams: int = 1) -> list[Completion]:
        prompt_truncated = getattr(batch, "prompt_truncated", None) or \
            [False] * len(batch["input_ids"])
        if self.fast is not None and self.fast.supports(num_beams):
            return self._completions(self.fast.generate(batch, max_new_tokens), max_new_tokens,
                                     prompt_truncated)
        # a dict of its own: the caller's batch keeps its CPU float pixels (the fast path reads it)
        inputs = {key: value.to(self.device) for key, value in batch.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        prompt_length = inputs["input_ids"].shape[1]
        output = self.model.generate(**inputs, max_new_tokens=max_new_tokens, num_beams=num_beams,
                                     do_sample=False)
        return self._completions(output[:, prompt_length:], max_new_tokens, prompt_truncated)

    def _completions(self, new_tokens: torch.Tensor, max_new_tokens: int,
                     prompt_truncated: list[bool]) -> list[Completion]:
        """Decoded texts, each flagged when it stopped at max_new_tokens without an end token."""
        texts = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
        ends = self.end_token_ids()
        return [Completion(text, output_truncated=len(tokens) >= max_new_tokens and
                           not ends & set(tokens.tolist()), prompt_truncated=cut)
                for text, tokens, cut in zip(texts, new_tokens, prompt_truncated)]

    def generate(self, images: list[list[Image.Image] | Image.Image], prompts: list[str],
                 max_new_tokens: int, num_beams: int = 1) -> list[str]:
        """Decoded texts for a batch (each example a list of images)."""
        return [c.text for c in self.generate_prepared(self.prepare(images, prompts),
                                                       max_new_tokens, num_beams)]


def default_dtype(device: str) -> str:
    return "float32" if device == "cpu" else "bfloat16"


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ModelError(f"--device {device}: this machine has no CUDA device (use cpu)")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ModelError(f"--device {device}: only {torch.cuda.device_count()} CUDA "
                             f"device(s) here")
    elif device != "cpu":
        raise ModelError(f"--device {device!r}: use auto, cpu or cuda:N")
    return device


def load_processor(name: str, revision: str | None = None) -> Any:
    """A checkpoint's tokenizer and image processor. The image processor is always the PIL one:
    where torchvision is installed transformers picks its own, whose pixel values differ (by an
    ulp for an image already at its size, a level where it resizes), so numbers would depend on
    what else is installed."""
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(name, revision=revision, backend="pil")


def _is_transformers_dir(path: Path) -> bool:
    return (path / "config.json").is_file()


def load_transformers(spec: str, *, dtype: str, device: str, device_map: str | None,
                       revision: str | None, kind: str | None, max_memory: dict | None = None,
                       decode_config: str = "big_vision", **_: Any) -> PaliGemmaModel:
    from transformers import AutoConfig, PaliGemmaForConditionalGeneration

    name = str(EMBEDDED.get(spec, spec))
    path = Path(name)
    if spec.startswith("tiny-") and spec not in EMBEDDED:
        raise ModelError(f"--model {spec}: no such embedded model (embedded: "
                         f"{', '.join(EMBEDDED)})")
    # refused, not ignored: the results would not be of the revision it asked for
    if revision and path.exists():
        raise ModelError(f"--revision {revision}: {spec} is not a hub id (a revision pins a hub "
                         f"model; this one is read as it is on disk)")
    if not path.exists() and (spec.startswith((".", "/", "~")) or spec.count("/") != 1):
        raise ModelError(f"--model {spec}: no such file or directory, and not a hub id "
                         f"(owner/name)")
    if path.exists():
        if not path.is_dir() or not _is_transformers_dir(path):
            found = sorted(p.name for p in path.iterdir())[:12] if path.is_dir() else [path.name]
            raise ModelError(f"{spec}: not a transformers checkpoint directory (no config.json; "
                             f"found {found})")
        config = AutoConfig.from_pretrained(path)
    else:
        try:
            config = AutoConfig.from_pretrained(name, revision=revision)
        except (OSError, ValueError) as error:
            raise ModelError(f"--model {spec}: cannot load its config from the hub "
                             f"({str(error).splitlines()[0]})") from None
    if config.model_type != "paligemma":
        raise ModelError(f"{spec}: model_type is {config.model_type!r}, not a PaliGemma checkpoint")
    attention = decode_setup(config, decode_config)
    model = PaliGemmaForConditionalGeneration.from_pretrained(
        name, revision=revision, config=config, attn_implementation=attention,
        dtype=DTYPES[dtype], device_map=device_map or None,
        max_memory=max_memory if device_map else None)
    if not device_map:
        model = model.to(device)
    model.eval()
    processor = load_processor(name, revision)
    n_parameters = sum(p.numel() for p in model.parameters())
    if path.exists():
        fingerprint, resolved = _fingerprint_dir(path), None
    else:
        resolved = getattr(config, "_commit_hash", None) or revision
        fingerprint = f"{name}@{resolved or 'main'}"
    info = ModelInfo(id=spec, revision=resolved, fingerprint=fingerprint, dtype=dtype,
                     kind=kind or ("demo" if spec in EMBEDDED else
                                   kind_from_name(path.name if path.exists() else name)),
                     embedded=spec in EMBEDDED, **describe_config(config, n_parameters),
                     **decode_settings(model, decode_config, spec))
    return PaliGemmaModel(model, processor, info)
