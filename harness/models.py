"""Loading any PaliGemma / PaliGemma 2 checkpoint and generating from it in batches.

Family, size and resolution are read from the config, never from the name. `load_transformers`
reads a transformers directory or hub id; harness/loading.py picks the loader for a checkpoint.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from paligemma_eval.harness.errors import ModelError

EMBEDDED_DIR = Path(__file__).parent / "demo" / "models"
EMBEDDED = {p.name: p for p in sorted(EMBEDDED_DIR.glob("tiny-*"))}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# Text tower width -> published size, per family (REFERENCE.md's configs).
_SIZES = {("paligemma", 2048): "3B", ("paligemma2", 2304): "3B", ("paligemma2", 3584): "10B",
          ("paligemma2", 4608): "28B"}


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

    @property
    def variant(self) -> str:
        """The cards' column label: PaliGemma 2 `224-3B`, PaliGemma 1 `pt-224`."""
        if self.family == "paligemma2":
            return f"{self.resolution}-{self.size}"
        return f"{self.kind}-{self.resolution}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "variant": self.variant}


def describe_config(config: Any, n_parameters: int) -> dict[str, Any]:
    """Family, size and resolution of a PaliGemmaConfig."""
    text_type = config.text_config.model_type
    family = {"gemma": "paligemma", "gemma2": "paligemma2"}.get(text_type)
    if family is None:
        raise ModelError(f"PaliGemma config with unsupported text model {text_type!r}")
    width = config.text_config.hidden_size
    size = _SIZES.get((family, width)) or f"{n_parameters / 1e6:.2f}M"
    return {"family": family, "size": size, "resolution": int(config.vision_config.image_size)}


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


class PaliGemmaModel:
    """A loaded checkpoint: `generate` maps (images, prompts) to decoded suffixes."""

    def __init__(self, model: Any, processor: Any, info: ModelInfo) -> None:
        self.model, self.processor, self.info = model, processor, info
        self.processor.tokenizer.padding_side = "left"  # batched generation continues on the right
        self.fast: Any = None  # a FastGenerator after use_generation("fast")

    def use_generation(self, path: str, largest_batch: int,
                       compile_backend: str | None = "inductor") -> None:
        """"plain" (`generate` with a dynamic cache) or "fast" (harness/fast_generate.py)."""
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

    def prepare(self, images: list[Image.Image], prompts: list[str]) -> Any:
        """Processor inputs for one batch (CPU work; can run ahead of generation)."""
        text = ["<image>" + prompt for prompt in prompts]
        return self.processor(text=text, images=images, return_tensors="pt", padding="longest")

    @torch.inference_mode()
    def generate_prepared(self, batch: Any, max_new_tokens: int, num_beams: int = 1) -> list[str]:
        if self.fast is not None and self.fast.supports(num_beams):
            output = self.fast.generate(batch, max_new_tokens)
            return self.processor.batch_decode(output, skip_special_tokens=True)
        batch = batch.to(self.device)
        batch["pixel_values"] = batch["pixel_values"].to(self.model.dtype)
        prompt_length = batch["input_ids"].shape[1]
        output = self.model.generate(**batch, max_new_tokens=max_new_tokens, num_beams=num_beams,
                                     do_sample=False)
        return self.processor.batch_decode(output[:, prompt_length:], skip_special_tokens=True)

    def generate(self, images: list[Image.Image], prompts: list[str], max_new_tokens: int,
                 num_beams: int = 1) -> list[str]:
        return self.generate_prepared(self.prepare(images, prompts), max_new_tokens, num_beams)


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


def _is_transformers_dir(path: Path) -> bool:
    return (path / "config.json").is_file()


def load_transformers(spec: str, *, dtype: str, device: str, device_map: str | None,
                       revision: str | None, kind: str | None, max_memory: dict | None = None,
                       **_: Any) -> PaliGemmaModel:
    from transformers import AutoConfig, AutoProcessor, PaliGemmaForConditionalGeneration

    name = str(EMBEDDED.get(spec, spec))
    path = Path(name)
    if spec.startswith("tiny-") and spec not in EMBEDDED:
        raise ModelError(f"--model {spec}: no such embedded model (embedded: "
                         f"{', '.join(EMBEDDED)})")
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
    model = PaliGemmaForConditionalGeneration.from_pretrained(
        name, revision=revision, dtype=DTYPES[dtype], device_map=device_map or None,
        max_memory=max_memory if device_map else None)
    if not device_map:
        model = model.to(device)
    model.eval()
    processor = AutoProcessor.from_pretrained(name, revision=revision)
    n_parameters = sum(p.numel() for p in model.parameters())
    if path.exists():
        fingerprint, resolved = _fingerprint_dir(path), None
    else:
        resolved = getattr(config, "_commit_hash", None) or revision
        fingerprint = f"{name}@{resolved or 'main'}"
    info = ModelInfo(id=spec, revision=resolved, fingerprint=fingerprint, dtype=dtype,
                     kind=kind or ("demo" if spec in EMBEDDED else
                                   kind_from_name(path.name if path.exists() else name)),
                     embedded=spec in EMBEDDED, **describe_config(config, n_parameters))
    return PaliGemmaModel(model, processor, info)
