"""big_vision `.npz` checkpoints (PaliGemma 1 and 2), loaded directly, split `.part` files too.

Family, size and resolution come from the arrays' shapes; `--npz-base` names a transformers
checkpoint (hub id or local directory) of the same variant for the tokenizer, image processor
and the config fields that shapes cannot tell (soft-caps, sliding window); by default the hub id
of the matching published variant. Stored members are memory-mapped (as safetensors loads) and
assigned, one layer at a time, into a model created without memory (accelerate's
init_empty_weights); compressed ones are streamed once. Loading never holds more than the model
plus one stacked parameter. Split checkpoints are read in place: no concatenated copy is written.

Parameter mapping (transformers' conversion scripts; see REFERENCE.md): vision tower, projector,
Gemma / Gemma 2 text layers stacked on a leading layer axis, bfloat16 stored as 2-byte void.
"""

from __future__ import annotations

import ctypes
import io
import itertools
import re
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from paligemma_eval.harness.errors import ModelError
from paligemma_eval.harness.models import (DTYPES, ModelInfo, PaliGemmaModel, decode_settings,
                                           decode_setup, describe_config, load_processor)

HF_VOCAB, BV_VOCAB = 257216, 257152
# Published text towers: width -> (family, size, layers, heads, kv heads, head_dim, mlp, scale).
TEXT_VARIANTS = {
    ("paligemma", 2048): ("3B", 18, 8, 1, 256, 16384, None),
    ("paligemma2", 2304): ("3B", 26, 8, 4, 256, 9216, 256),
    ("paligemma2", 3584): ("10B", 42, 16, 8, 256, 14336, 256),
    ("paligemma2", 4608): ("28B", 46, 32, 16, 128, 36864, 144),
}
VISION = {"width": 1152, "layers": 27, "heads": 16, "mlp": 4304, "patch": 14}
RESOLUTIONS = {256: 224, 1024: 448, 4096: 896}   # image tokens -> pixels


# ---------------------------------------------------------------- reading (.npz and parts) --
class ByteView(io.RawIOBase):
    """A read-only, seekable byte stream of `size` bytes; subclasses say how to read."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size, self.position = size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position


class PartsReader(ByteView):
    """One stream over ordered part files."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.sizes = [p.stat().st_size for p in paths]
        self.starts = np.cumsum([0] + self.sizes[:-1]).tolist()
        super().__init__(sum(self.sizes))
        self.handles = [open(p, "rb", buffering=0) for p in paths]

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self.position < self.size:
            part = int(np.searchsorted(self.starts, self.position, side="right")) - 1
            offset = self.position - self.starts[part]
            handle = self.handles[part]
            handle.seek(offset)
            want = min(len(view) - done, self.sizes[part] - offset)
            got = handle.readinto(view[done:done + want])
            if not got:
                break
            done += got
            self.position += got
        return done

    def close(self) -> None:
        for handle in self.handles:
            handle.close()
        super().close()


class StoredMember(ByteView):
    """An uncompressed zip member read in place: seek is free and every byte is read from the
    file at most once. (zipfile's own member stream re-reads from the member's start on each
    backward seek on Python 3.11, which cost ~11x the file in reads when loading per layer.)"""

    def __init__(self, stream: Any, start: int, size: int) -> None:
        super().__init__(size)
        self.stream, self.start = stream, start

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self.size - self.position)
        if want <= 0:
            return 0
        self.stream.seek(self.start + self.position)
        got = self.stream.readinto(view[:want]) or 0
        self.position += got
        return got


_PART = re.compile(r"^(?P<stem>.+\.npz)\.part(?P<index>\w+)$")


def checkpoint_files(spec: str) -> list[Path]:
    """The file(s) of a checkpoint: one .npz, or all parts given the first part or their folder."""
    path = Path(spec)
    if path.is_dir():
        parts = sorted(p for p in path.iterdir() if _PART.match(p.name))
        stems = {_PART.match(p.name).group("stem") for p in parts}
        if len(stems) != 1:
            raise ModelError(f"{spec}: expected the .npz.part* files of one checkpoint, found "
                             f"{sorted(stems) or 'none'}")
        path = parts[0]
    match = _PART.match(path.name)
    if not match:
        if not path.is_file():
            raise ModelError(f"{spec}: no such file")
        return [path]
    siblings = [p for p in path.parent.iterdir() if (m := _PART.match(p.name)) and
                m.group("stem") == match.group("stem")]
    indices = {p: _PART.match(p.name).group("index") for p in siblings}
    numeric = all(i.isdigit() for i in indices.values())
    ordered = sorted(siblings, key=lambda p: int(indices[p]) if numeric else indices[p])
    if numeric:
        numbers = [int(indices[p]) for p in ordered]
        expected = list(range(numbers[0], numbers[0] + len(numbers)))
        # zero-padded indices (part00, part01, ...) count from 0; plain ones from 0 or 1
        first = 0 if any(len(i) > 1 and i.startswith("0") for i in indices.values()) \
            else min(numbers[0], 1)
        if numbers[0] != first or numbers != expected:
            missing = sorted(set(range(first, numbers[-1] + 1)) - set(numbers))
            raise ModelError(f"{spec}: missing part(s) {missing} of {match.group('stem')}")
    return ordered


class NpzCheckpoint:
    """Arrays of a big_vision checkpoint, by name without the 'params/' prefix, read lazily."""

    def __init__(self, spec: str) -> None:
        self.files = checkpoint_files(spec)
        # Unbuffered: a buffered file reads ahead 8 KiB at every seek, i.e. per array header.
        self.stream = PartsReader(self.files) if len(self.files) > 1 else \
            open(self.files[0], "rb", buffering=0)
        self.headers: dict[str, tuple[tuple[int, ...], bool, np.dtype]] = {}
        try:
            self.zip = zipfile.ZipFile(self.stream)
        except zipfile.BadZipFile:
            hint = " (parts missing, out of order or truncated?)" if len(self.files) > 1 else \
                " (truncated, or not an .npz file?)"
            raise ModelError(f"{spec}: not a readable .npz archive{hint}") from None
        self.members = {self._name(i.filename): i.filename for i in self.zip.infolist()
                        if i.filename.endswith(".npy")}
        if not any(name.startswith("img/") for name in self.members) or \
                not any(name.startswith("llm/") for name in self.members):
            found = sorted(self.members)[:5]
            raise ModelError(f"{spec}: not a big_vision PaliGemma checkpoint (no img/ and llm/ "
                             f"parameters; found {found})")

    @staticmethod
    def _name(member: str) -> str:
        name = member[:-4]
        return name[len("params/"):] if name.startswith("params/") else name

    def _open(self, name: str) -> Any:
        """A member's bytes: in place when stored (big_vision writes stored .npz files),
        through zipfile's decompressor otherwise."""
        info = self.zip.getinfo(self.members[name])
        if info.compress_type != zipfile.ZIP_STORED:
            return self.zip.open(info)
        self.stream.seek(info.header_offset)
        local = self.stream.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"bad local header for {info.filename}")
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        return StoredMember(self.stream, info.header_offset + 30 + name_length + extra_length,
                            info.file_size)

    def stored(self, name: str) -> bool:
        return self.zip.getinfo(self.members[name]).compress_type == zipfile.ZIP_STORED

    def _read(self, name: str, reader: Any) -> Any:
        """reader(open member) -> value; a damaged archive becomes a ModelError naming it."""
        if name not in self.members:
            raise ModelError(f"checkpoint has no parameter {name!r}")
        try:
            with self._open(name) as handle:
                return reader(handle)
        except (zipfile.BadZipFile, ValueError, EOFError, OSError) as error:
            hint = "parts missing, out of order or truncated" if len(self.files) > 1 else \
                "truncated or damaged file"
            raise ModelError(f"{self.files[0]}: parameter {name!r} is unreadable ({error}): "
                             f"{hint}?") from None

    def header(self, name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
        if name not in self.headers:
            self.headers[name] = self._read(name, _header)
        return self.headers[name]

    def shape(self, name: str) -> tuple[int, ...]:
        return self.header(name)[0]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: self.shape(name) for name in self.members}

    def mapped(self, name: str, rows: int | None = None) -> np.ndarray | None:
        """A stored, C-ordered member mapped straight from its file, copy-on-write: nothing is
        read or copied until a page is used, and a parameter kept as a view of it costs no load
        time at all (as safetensors loads). `rows` maps that many rows when more are stored: the
        extra rows show whatever bytes follow in the file, for the caller to overwrite
        (privately: the file never changes). None when it cannot be: compressed,
        Fortran-ordered, empty, or split across two part files."""
        shape, fortran, dtype = self.header(name)
        shape = (max(rows or 0, shape[0]), *shape[1:])
        nbytes = int(np.prod(shape)) * dtype.itemsize
        if fortran or not nbytes or not self.stored(name):
            return None
        start = self._read(name, lambda handle: (_header(handle), handle.start + handle.tell())[1])
        starts = getattr(self.stream, "starts", [0])
        part = int(np.searchsorted(starts, start, side="right")) - 1
        offset = start - starts[part]
        if offset + nbytes > self.files[part].stat().st_size:
            return None
        return np.memmap(self.files[part], dtype=dtype, mode="c", offset=offset, shape=shape)

    def array(self, name: str) -> np.ndarray:
        mapped = self.mapped(name)
        if mapped is not None:
            return mapped

        def read(handle: Any) -> np.ndarray:
            shape, fortran, dtype = _header(handle)
            if fortran:  # stored column-major: read the transpose's memory, then transpose back
                return _read_into(handle, np.empty(shape[::-1], dtype)).T
            return _read_into(handle, np.empty(shape, dtype))
        return self._read(name, read)

    def layers(self, name: str) -> Iterator[np.ndarray]:
        """A stacked parameter one layer at a time, straight from the file: the whole stack
        (all layers of, say, the MLP) is never in memory at once."""
        shape, fortran, _ = self.header(name)
        mapped = self.mapped(name)
        if mapped is not None:
            yield from mapped   # each layer a view of the mapping: read when used
            return
        if fortran or not self.stored(name):
            # A Fortran-ordered layer is not contiguous; a compressed member cannot seek without
            # decompressing again from its start: read either stack once, whole.
            yield from self.array(name)
            return
        for index in range(shape[0]):
            yield self._read(name, lambda handle, i=index: _layer(handle, i))

    def close(self) -> None:
        self.zip.close()
        self.stream.close()


def _header(handle: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(handle)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
        np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read_header(handle)
    return tuple(shape), fortran, dtype


def _read_into(handle: Any, array: np.ndarray) -> np.ndarray:
    """Fill `array` from the stream without an intermediate bytes copy."""
    view = memoryview(array.reshape(-1).view(np.uint8))
    filled = 0
    while filled < len(view):
        got = handle.readinto(view[filled:])
        if not got:
            raise EOFError(f"array data ends after {filled} of {len(view)} bytes")
        filled += got
    return array


def _layer(handle: Any, index: int) -> np.ndarray:
    shape, _, dtype = _header(handle)
    layer = np.empty(shape[1:], dtype)
    handle.seek(handle.tell() + index * layer.nbytes)  # stored members seek cheaply
    return _read_into(handle, layer)


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """bfloat16 saved as 2-byte void (big_vision's PaliGemma 2 files) -> torch.bfloat16."""
    if array.dtype.kind == "V" and array.dtype.itemsize == 2:
        return torch.from_numpy(np.ascontiguousarray(array).view(np.uint16)).view(torch.bfloat16)
    if array.dtype.name == "bfloat16":  # ml_dtypes
        return torch.from_numpy(np.ascontiguousarray(array).view(np.uint16)).view(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(array))


# ------------------------------------------------------------------------ shape inference --
@dataclass(frozen=True)
class Variant:
    family: str
    size: str            # "3B"/"10B"/"28B", or "custom"
    resolution: int
    vision: dict[str, int]
    text: dict[str, Any]

    @property
    def hub_id(self) -> str:
        return f"google/{self.family}-{self.size.lower()}-pt-{self.resolution}"


def infer_variant(shapes: dict[str, tuple[int, ...]], strict: bool = True) -> Variant:
    """Family, size, resolution and every dimension from parameter shapes alone."""
    def need(name: str) -> tuple[int, ...]:
        if name not in shapes:
            raise ModelError(f"not a big_vision PaliGemma checkpoint: no {name!r}")
        return shapes[name]

    block = "img/Transformer/encoderblock"
    patch, _, _, width = need("img/embedding/kernel")
    tokens = need("img/pos_embedding")[-2]
    side = int(round(tokens ** 0.5))
    vision = {"width": width, "layers": need(f"{block}/LayerNorm_0/scale")[0],
              "heads": need(f"{block}/MultiHeadDotProductAttention_0/query/kernel")[2],
              "mlp": need(f"{block}/MlpBlock_0/Dense_0/kernel")[-1], "patch": patch,
              "image_size": side * patch, "tokens": tokens}
    family = "paligemma2" if "llm/layers/post_attention_norm/scale" in shapes else "paligemma"
    vocab, text_width = need("llm/embedder/input_embedding")
    layers, heads, _, head_dim = need("llm/layers/attn/q_einsum/w")
    text = {"width": text_width, "layers": layers, "heads": heads, "head_dim": head_dim,
            "kv_heads": need("llm/layers/attn/kv_einsum/w")[2],
            "mlp": need("llm/layers/mlp/gating_einsum")[-1], "vocab": vocab}
    published = TEXT_VARIANTS.get((family, text_width))
    standard_vision = all(vision[k] == v for k, v in VISION.items()) and tokens in RESOLUTIONS
    if published and standard_vision:
        size, *dims, scale = published
        expected = dict(zip(("layers", "heads", "kv_heads", "head_dim", "mlp"), dims))
        if all(text[k] == v for k, v in expected.items()) and vocab == BV_VOCAB:
            return Variant(family, size, RESOLUTIONS[tokens], vision,
                           {**text, "query_pre_attn_scalar": scale})
    if strict:
        raise ModelError(
            f"unknown shape combination: {family} text {text}, vision {vision}; it matches no "
            f"published PaliGemma variant (pass --npz-base with a config for this shape)")
    return Variant(family, "custom", side * patch, vision, text)


# ----------------------------------------------------------------------------- mapping ------
def _vision_params(ckpt: NpzCheckpoint, v: dict[str, int]) -> Iterator[tuple[str, torch.Tensor]]:
    prefix, block = "model.vision_tower", "img/Transformer/encoderblock"
    width = v["width"]
    yield f"{prefix}.embeddings.patch_embedding.weight", \
        to_tensor(ckpt.array("img/embedding/kernel")).permute(3, 2, 0, 1)
    yield f"{prefix}.embeddings.patch_embedding.bias", to_tensor(ckpt.array("img/embedding/bias"))
    yield f"{prefix}.embeddings.position_embedding.weight", \
        to_tensor(ckpt.array("img/pos_embedding")).reshape(-1, width)
    per_layer = {
        "LayerNorm_0/scale": ("layer_norm1.weight", lambda a: a),
        "LayerNorm_0/bias": ("layer_norm1.bias", lambda a: a),
        "LayerNorm_1/scale": ("layer_norm2.weight", lambda a: a),
        "LayerNorm_1/bias": ("layer_norm2.bias", lambda a: a),
        "MlpBlock_0/Dense_0/kernel": ("mlp.fc1.weight", lambda a: a.T),
        "MlpBlock_0/Dense_0/bias": ("mlp.fc1.bias", lambda a: a),
        "MlpBlock_0/Dense_1/kernel": ("mlp.fc2.weight", lambda a: a.T),
        "MlpBlock_0/Dense_1/bias": ("mlp.fc2.bias", lambda a: a),
        **{f"MultiHeadDotProductAttention_0/{jax}/kernel":
           (f"self_attn.{torch_name}.weight", lambda a: a.reshape(width, -1).T)
           for jax, torch_name in (("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj"))},
        **{f"MultiHeadDotProductAttention_0/{jax}/bias":
           (f"self_attn.{torch_name}.bias", lambda a: a.reshape(-1))
           for jax, torch_name in (("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj"))},
        "MultiHeadDotProductAttention_0/out/kernel": ("self_attn.out_proj.weight",
                                                      lambda a: a.reshape(-1, width).T),
        "MultiHeadDotProductAttention_0/out/bias": ("self_attn.out_proj.bias", lambda a: a),
    }
    for name, (target, transform) in per_layer.items():
        for i, layer in enumerate(ckpt.layers(f"{block}/{name}")):
            yield f"{prefix}.encoder.layers.{i}.{target}", transform(to_tensor(layer))
    yield f"{prefix}.post_layernorm.weight", \
        to_tensor(ckpt.array("img/Transformer/encoder_norm/scale"))
    yield f"{prefix}.post_layernorm.bias", \
        to_tensor(ckpt.array("img/Transformer/encoder_norm/bias"))
    yield "model.multi_modal_projector.linear.weight", to_tensor(ckpt.array("img/head/kernel")).T
    yield "model.multi_modal_projector.linear.bias", to_tensor(ckpt.array("img/head/bias"))


def _text_params(ckpt: NpzCheckpoint, t: dict[str, Any], family: str,
                 vocab_size: int) -> Iterator[tuple[str, torch.Tensor]]:
    prefix = "model.language_model"
    yield f"{prefix}.embed_tokens.weight", _padded_embedding(ckpt, vocab_size)
    heads, head_dim, width, kv = t["heads"], t["head_dim"], t["width"], t["kv_heads"]
    per_layer = {
        "attn/q_einsum/w": [("self_attn.q_proj.weight",
                             lambda a: a.permute(0, 2, 1).reshape(heads * head_dim, width))],
        "attn/kv_einsum/w": [
            ("self_attn.k_proj.weight", lambda a: a[0].permute(0, 2, 1).reshape(kv * head_dim,
                                                                                width)),
            ("self_attn.v_proj.weight", lambda a: a[1].permute(0, 2, 1).reshape(kv * head_dim,
                                                                                width))],
        "attn/attn_vec_einsum/w": [("self_attn.o_proj.weight",
                                    lambda a: a.permute(2, 0, 1).reshape(width, heads * head_dim))],
        "mlp/gating_einsum": [("mlp.gate_proj.weight", lambda a: a[0].T),
                              ("mlp.up_proj.weight", lambda a: a[1].T)],
        "mlp/linear": [("mlp.down_proj.weight", lambda a: a.T)],
        "pre_attention_norm/scale": [("input_layernorm.weight", lambda a: a)],
        "pre_ffw_norm/scale": [("post_attention_layernorm.weight" if family == "paligemma"
                                else "pre_feedforward_layernorm.weight", lambda a: a)],
    }
    if family == "paligemma2":
        per_layer["post_attention_norm/scale"] = [("post_attention_layernorm.weight", lambda a: a)]
        per_layer["post_ffw_norm/scale"] = [("post_feedforward_layernorm.weight", lambda a: a)]
    for name, targets in per_layer.items():
        for i, layer in enumerate(ckpt.layers(f"llm/layers/{name}")):
            for target, transform in targets:
                yield f"{prefix}.layers.{i}.{target}", transform(to_tensor(layer))
    yield f"{prefix}.norm.weight", to_tensor(ckpt.array("llm/final_norm/scale"))


def _padded_embedding(ckpt: NpzCheckpoint, vocab_size: int) -> torch.Tensor:
    """The input embedding with transformers' extra rows (<image> and padding) as zeros. Mapped
    with the extra rows over the bytes that follow it in the file, then those rows zeroed in the
    private mapping: the 1.2 GB table (3B) is neither copied nor read at load time. A table larger
    than the model's vocabulary keeps its size, for the shape check to name."""
    name = "llm/embedder/input_embedding"
    stored = ckpt.shape(name)[0]
    mapped = ckpt.mapped(name, rows=vocab_size)
    if mapped is not None:
        padded = to_tensor(mapped)
    else:   # last in its file, compressed or Fortran-ordered: copy it into a padded table
        embedding = to_tensor(ckpt.array(name))
        padded = torch.empty(max(vocab_size, stored), embedding.shape[1], dtype=embedding.dtype)
        padded[:stored] = embedding
    padded[stored:] = 0
    return padded


def published_config(variant: Variant) -> Any:
    """A PaliGemmaConfig for a published variant, from REFERENCE.md's table."""
    from transformers import Gemma2Config, GemmaConfig, PaliGemmaConfig, SiglipVisionConfig

    v, t = variant.vision, variant.text
    vision = SiglipVisionConfig(hidden_size=v["width"], intermediate_size=v["mlp"],
                                num_hidden_layers=v["layers"], num_attention_heads=v["heads"],
                                patch_size=v["patch"], image_size=variant.resolution,
                                vision_use_head=False)
    common = dict(hidden_size=t["width"], intermediate_size=t["mlp"], vocab_size=HF_VOCAB,
                  num_hidden_layers=t["layers"], num_attention_heads=t["heads"],
                  num_key_value_heads=t["kv_heads"], head_dim=t["head_dim"])
    if variant.family == "paligemma":
        text = GemmaConfig(**common)
    else:
        text = Gemma2Config(query_pre_attn_scalar=t["query_pre_attn_scalar"],
                            attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
                            sliding_window=4096, **common)
    return PaliGemmaConfig(vision_config=vision.to_dict(), text_config=text.to_dict(),
                           image_token_index=BV_VOCAB, vocab_size=HF_VOCAB,
                           projection_dim=t["width"])


def _check_config(config: Any, variant: Variant, base: str) -> None:
    v, t = config.vision_config, config.text_config
    found = {"vision width": (v.hidden_size, variant.vision["width"]),
             "vision layers": (v.num_hidden_layers, variant.vision["layers"]),
             "image size": (v.image_size, variant.vision["image_size"]),
             "text width": (t.hidden_size, variant.text["width"]),
             "text layers": (t.num_hidden_layers, variant.text["layers"]),
             "heads": (t.num_attention_heads, variant.text["heads"]),
             "kv heads": (t.num_key_value_heads, variant.text["kv_heads"]),
             "mlp": (t.intermediate_size, variant.text["mlp"])}
    wrong = {k: v for k, v in found.items() if v[0] != v[1]}
    base_family = "paligemma2" if config.text_config.model_type == "gemma2" else "paligemma"
    if base_family != variant.family:
        raise ModelError(f"--npz-base {base} is a {base_family} (Gemma"
                         f"{' 2' if base_family == 'paligemma2' else ''}) checkpoint, the .npz is "
                         f"{variant.family}" + (f"; also differs in {next(iter(wrong))}"
                                                if wrong else ""))
    if wrong:
        raise ModelError(f"--npz-base {base} does not match the checkpoint's shapes: "
                         + ", ".join(f"{k} {a} vs {b}" for k, (a, b) in wrong.items()))
    if variant.text["vocab"] > t.vocab_size:
        raise ModelError(f"--npz-base {base}: the checkpoint's vocabulary ({variant.text['vocab']}"
                         f") is larger than the base's ({t.vocab_size})")


def _base_config(base: str, base_name: str, revision: str | None) -> Any:
    from transformers import AutoConfig

    path = Path(base_name)
    if path.exists() and not (path / "config.json").is_file():
        raise ModelError(f"--npz-base {base}: no config.json in it (not a transformers "
                         f"checkpoint directory)")
    if not path.exists() and (base_name.startswith((".", "/", "~")) or base_name.count("/") != 1):
        raise ModelError(f"--npz-base {base}: no such directory")
    try:
        return AutoConfig.from_pretrained(base_name, revision=revision)
    except (OSError, ValueError) as error:
        raise ModelError(f"--npz-base {base}: cannot read its config "
                         f"({str(error).splitlines()[0]})") from None


def _processor(spec: str, base_name: str, revision: str | None) -> Any:
    """Tokenizer and image processor, resolved before any weight is read: a 28B checkpoint is
    minutes of reading, too long to wait for a missing tokenizer."""
    try:
        if not Path(base_name).exists():
            _hub_reachable()
        return load_processor(base_name, revision)
    except (OSError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelError(f"tokenizer/image processor for {spec}: cannot load {base_name!r} "
                         f"({reason}); pass --npz-base with a local PaliGemma directory of the "
                         f"same variant") from None


def _hub_reachable() -> None:
    """Without a network the hub client retries with backoff for minutes before it gives up:
    a failed name lookup says as much at once."""
    import os
    import socket

    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return  # offline mode: the hub client looks in its cache only, at once
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1]
    try:
        socket.getaddrinfo(endpoint.split("/")[0].split(":")[0], 443)
    except OSError as error:
        raise OSError(f"the hub ({endpoint}) cannot be reached: {error.strerror or error}") \
            from None


def _placement(model: Any, device: str, device_map: str | None,
               max_memory: dict | None) -> dict[str, Any]:
    """Module name -> device: everything on `device`, or accelerate's plan over the GPUs (and
    CPU) for --device-map auto, computed on the memory-less model before any weight is read."""
    if not device_map:
        return {"": device}
    from accelerate import infer_auto_device_map

    return infer_auto_device_map(model, max_memory=max_memory,
                                 no_split_module_classes=model._no_split_modules or [])


def _place_buffers(model: Any, plan: dict[str, Any]) -> None:
    """Buffers (position ids, rotary frequencies, the embedding scale) are made on the CPU with
    the memory-less model; each goes where the plan puts its module, as the parameters did."""
    from accelerate.utils import set_module_tensor_to_device

    for name, _ in list(model.named_buffers()):
        set_module_tensor_to_device(model, name, _device_for(plan, name))


def _device_for(plan: dict[str, Any], name: str) -> Any:
    while name and name not in plan:
        name = name.rpartition(".")[0]
    return plan.get(name, plan.get(""))


def load_weights(spec: str, *, dtype: str, device: str = "cpu", device_map: str | None = None,
                 max_memory: dict | None = None, config: Any = None,
                 ckpt: NpzCheckpoint | None = None,
                 decode_config: str = "big_vision") -> tuple[Any, Any, Variant]:
    """The model with the checkpoint's weights, each tensor placed on its device as it is read
    (never a full copy in host memory first). Returns (model, config, variant)."""
    from accelerate import dispatch_model, init_empty_weights
    from accelerate.utils import set_module_tensor_to_device
    from transformers import PaliGemmaForConditionalGeneration
    from transformers.initialization import no_init_weights

    own = ckpt is None
    ckpt = ckpt or NpzCheckpoint(spec)
    try:
        variant = infer_variant(ckpt.shapes(), strict=config is None)
        config = config or published_config(variant)
        decode_setup(config, decode_config)
        # No random initialisation of parameters about to be overwritten (0.3 s for the 3B,
        # even on the meta device); buffers (rotary frequencies, embedding scale) are computed
        # in the modules' constructors and stay.
        with init_empty_weights(), no_init_weights():
            model = PaliGemmaForConditionalGeneration(config)
        model.tie_weights()   # before planning: the tied embedding and head share one device
        plan = _placement(model, device, device_map, max_memory)
        target = DTYPES[dtype]
        expected = dict(model.named_parameters())
        for name, tensor in _all_params(ckpt, variant, config.text_config.vocab_size):
            if name in expected and tuple(expected[name].shape) != tuple(tensor.shape):
                raise ModelError(f"{spec}: {name} has shape {tuple(tensor.shape)} in the "
                                 f"checkpoint, the model expects {tuple(expected[name].shape)}")
            # dtype given: otherwise accelerate casts to the empty model's float32 (2x memory)
            set_module_tensor_to_device(model, name, _device_for(plan, name),
                                        value=_without_copy(tensor), dtype=target)
        _place_buffers(model, plan)
        model.tie_weights()
        left = [n for n, p in model.named_parameters() if p.device.type == "meta"]
        if left:
            raise ModelError(f"{spec}: checkpoint is missing parameters for {left[:4]}")
    finally:
        if own:
            ckpt.close()
    if device_map:
        model = dispatch_model(model, device_map=plan)
    return model.eval(), config, variant


def load_npz(spec: str, *, dtype: str, device: str, device_map: str | None = None,
             revision: str | None = None, kind: str | None = None,
             base: str | None = None, max_memory: dict | None = None,
             decode_config: str = "big_vision") -> PaliGemmaModel:
    from paligemma_eval.harness.models import EMBEDDED, kind_from_name

    ckpt = NpzCheckpoint(spec)
    try:
        variant = infer_variant(ckpt.shapes(), strict=base is None)
        base_name = str(EMBEDDED.get(base, base)) if base else variant.hub_id
        config = None
        if base:
            config = _base_config(base, base_name, revision)
            _check_config(config, variant, base)
        processor = _processor(spec, base_name, revision)
        model, config, variant = load_weights(spec, dtype=dtype, device=device,
                                              device_map=device_map, max_memory=max_memory,
                                              config=config, ckpt=ckpt,
                                              decode_config=decode_config)
    finally:
        ckpt.close()
    n_parameters = sum(p.numel() for p in model.parameters())
    info = ModelInfo(id=spec, revision=None, fingerprint=_fingerprint(ckpt.files), dtype=dtype,
                     kind=kind or kind_from_name(Path(spec).name),
                     **describe_config(config, n_parameters),
                     **decode_settings(model, decode_config, spec))
    return PaliGemmaModel(model, processor, info)


def _without_copy(tensor: torch.Tensor) -> torch.Tensor:
    """A matrix in transposed layout (big_vision's (in, out) kernel seen as (out, in)) is kept as
    that view: a matmul reads either layout at the same speed, and copying it into transformers'
    layout was most of the load time (bf16 transposes: 15 of 33 s for the 3B on 2 cores). Any
    other view is copied into a contiguous tensor."""
    if tensor.dim() == 2 and tensor.stride() == (1, tensor.shape[0]):
        return tensor
    return tensor.contiguous()


def _all_params(ckpt: NpzCheckpoint, variant: Variant,
                vocab_size: int) -> Iterator[tuple[str, torch.Tensor]]:
    for count, item in enumerate(itertools.chain(
            _vision_params(ckpt, variant.vision),
            _text_params(ckpt, variant.text, variant.family, vocab_size))):
        yield item
        if count % 16 == 15:
            _release_freed_memory()


def _release_freed_memory() -> None:
    """Hand freed temporaries back to the OS: glibc keeps large freed blocks in its heap, which
    would otherwise count as a second copy of the weights at the peak."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to do


def _fingerprint(files: list[Path]) -> str:
    """Names and sizes plus the first and last MiB of each part: cheap for 56 GB files."""
    import hashlib

    digest = hashlib.sha256()
    for file in files:
        size = file.stat().st_size
        digest.update(f"{file.name}:{size}".encode())
        with open(file, "rb") as handle:
            digest.update(handle.read(1 << 20))
            handle.seek(max(0, size - (1 << 20)))
            digest.update(handle.read(1 << 20))
    return "npz-sha256:" + digest.hexdigest()


def is_npz(spec: str) -> bool:
    path = Path(spec)
    return path.suffix == ".npz" or bool(_PART.match(path.name)) or \
        (path.is_dir() and any(_PART.match(p.name) for p in path.iterdir()))
