"""`load_model`: any checkpoint spec to a loaded PaliGemmaModel, by the first loader taking it.

Checkpoint formats are loaders tried in order (`LOADERS`): big_vision .npz files, then a
transformers directory, hub id or embedded demo model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paligemma_eval.harness.errors import ModelError
from paligemma_eval.harness.models import (DTYPES, PaliGemmaModel, default_dtype, load_transformers,
                                           resolve_device)
from paligemma_eval.harness.npz import is_npz, load_npz


def _load_npz(spec: str, *, npz_base: str | None = None, **options: Any) -> PaliGemmaModel:
    return load_npz(spec, base=npz_base, **options)


# (accepts(spec) -> bool, load(spec, **options) -> PaliGemmaModel), tried in order.
LOADERS: list[tuple[Callable[[str], bool], Callable[..., PaliGemmaModel]]] = [
    (is_npz, _load_npz),
    (lambda spec: True, load_transformers),
]


def load_model(spec: str, *, dtype: str | None = None, device: str = "auto",
               device_map: str | None = None, revision: str | None = None,
               kind: str | None = None, npz_base: str | None = None,
               max_memory: dict | None = None,
               decode_config: str = "big_vision") -> PaliGemmaModel:
    """Load a checkpoint: embedded short name, local directory, hub id or big_vision .npz."""
    device = resolve_device(device)
    dtype = dtype or default_dtype(device)
    if dtype not in DTYPES:
        raise ModelError(f"--dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    for accepts, loader in LOADERS:
        if accepts(spec):
            return loader(spec, dtype=dtype, device=device, device_map=device_map,
                          revision=revision, kind=kind, npz_base=npz_base, max_memory=max_memory,
                          decode_config=decode_config)
    raise ModelError(f"no loader accepts {spec!r}")
