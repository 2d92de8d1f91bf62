"""Datasets: the hub copies other harnesses load, or the same schema from local files.

Local layout under --data-dir mirrors the hub id: DIR/<owner>/<name>/<config or "default">/<split>
with suffix .parquet (as `Dataset.to_parquet` writes it) or .jsonl (image column = a path relative
to the file, or a URL). Images are decoded per example, so one broken image fails one example, not the run.
"""

from __future__ import annotations

import hashlib
import io
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from PIL import Image

from paligemma_eval.harness import images
from paligemma_eval.harness.errors import DatasetError
from paligemma_eval.harness.registry import DatasetSource


@dataclass
class LoadedData:
    rows: datasets.Dataset
    provenance: dict[str, Any]


def local_path(source: DatasetSource, data_dir: Path) -> Path | None:
    for hub_id in (source.hub_id, *source.aliases):
        base = data_dir / hub_id / (source.config or "default") / source.split
        for suffix in (".parquet", ".jsonl"):
            if base.with_suffix(suffix).is_file():
                return base.with_suffix(suffix)
    return None


def sha256_files(*paths: Path) -> str:
    """One digest over the files' bytes, in order."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def cell_fingerprint(value: Any) -> str:
    """A short hash of what an image cell holds, without decoding it: its bytes, a local file's
    bytes, or a URL. Part of each prediction's resume key, so an edited image is regenerated."""
    digest = hashlib.sha256()
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    if isinstance(value, bytes):
        digest.update(value)
    elif isinstance(value, str) and "://" not in value and Path(value).is_file():
        digest.update(Path(value).read_bytes())
    else:
        digest.update(str(value).encode())
    return digest.hexdigest()[:16]


def load(source: DatasetSource, data_dir: Path | None, image_column: str | None) -> LoadedData:
    """Rows with the image column left undecoded ({bytes, path}); see `decode_image`."""
    if data_dir is not None:
        path = local_path(source, data_dir)
        if path is None:
            expected = data_dir / source.hub_id / (source.config or "default") / source.split
            raise DatasetError(f"no local data for {source.describe()}: expected "
                               f"{expected}.parquet or {expected}.jsonl")
        kind = "parquet" if path.suffix == ".parquet" else "json"
        if path.stat().st_size == 0:
            raise DatasetError(f"{path}: empty file")
        verbosity = datasets.logging.get_verbosity()
        datasets.logging.set_verbosity(datasets.logging.CRITICAL)  # we say it in one line
        try:
            rows = datasets.load_dataset(kind, data_files=str(path), split="train")
        except Exception as error:  # the datasets library raises many types for bad files
            cause = error.__cause__ or error
            reason = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
            raise DatasetError(f"{path}: not a readable {kind} file ({reason})") from None
        finally:
            datasets.logging.set_verbosity(verbosity)
        if kind == "json" and image_column in rows.column_names:
            rows = rows.map(lambda r: {image_column: r[image_column] if "://" in r[image_column]
                                       else str(path.parent / r[image_column])})
        images = sorted({path.parent / p for p in rows[image_column] if "://" not in p}) \
            if kind == "json" and image_column in rows.column_names else []
        missing = [p for p in images if not p.is_file()]
        # The hash covers the image files a JSONL names, not only the JSONL itself.
        files = [path, *(p for p in images if p.is_file())]
        provenance = {"source": "local", "path": str(path), "sha256": sha256_files(*files),
                      "image_files": len(images), "missing_image_files": len(missing),
                      "hub_id": source.hub_id, "config": source.config, "split": source.split}
    else:
        rows = datasets.load_dataset(source.hub_id, source.config, split=source.split,
                                     revision=source.revision)
        provenance = {"source": "hub", "hub_id": source.hub_id, "config": source.config,
                      "split": source.split, "revision": source.revision,
                      "resolved_revision": resolved_revision(source),
                      "fingerprint": rows._fingerprint}
    if image_column and image_column in rows.column_names:
        rows = rows.cast_column(image_column, datasets.Image(decode=False))
    if len(rows) == 0:
        raise DatasetError(f"{source.describe()}: the dataset has no rows")
    provenance["num_rows"] = len(rows)
    return LoadedData(rows, provenance)


def resolved_revision(source: DatasetSource) -> str | None:
    """The commit sha of the hub dataset that was loaded (the branch or tag asked for, resolved),
    so a rerun can pin it with --dataset-revision. None when the hub cannot say (offline)."""
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(source.hub_id, revision=source.revision, timeout=10).sha
    except Exception:  # offline or unreachable: the request's revision stays recorded
        return None


def check_columns(rows: datasets.Dataset, required: tuple[str, ...], what: str) -> None:
    missing = [c for c in required if c not in rows.column_names]
    if missing:
        raise DatasetError(f"{what}: dataset is missing required column(s) {', '.join(missing)} "
                           f"(it has: {', '.join(rows.column_names)})")


def _read(value: Any) -> bytes | Image.Image:
    """The encoded bytes of an image cell (or the PIL image it already holds)."""
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict):
        if value.get("bytes"):
            return value["bytes"]
        value = value.get("path")
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        # Datasets that carry image URLs (COCO Karpathy): fetched per example, so a dead link
        # fails that example only.
        with urllib.request.urlopen(value, timeout=60) as response:
            return response.read()
    if value:
        return Path(value).read_bytes()
    raise ValueError("image cell is empty")


def _open(value: Any) -> Image.Image:
    content = _read(value)
    return content if isinstance(content, Image.Image) else Image.open(io.BytesIO(content))


def image_size(value: Any) -> tuple[int, int]:
    """(height, width) read from the image header."""
    width, height = _open(value).size
    return height, width


def resize(image: Image.Image, size: int, method: str) -> Image.Image:
    """Resize to size x size as big_vision's `resize(size[, antialias=True])` does before the model
    sees the image: "bilinear-antialias" or "bilinear" (harness/images.py: TensorFlow's filter,
    truncated back to 8 bits). "processor" leaves resizing to the transformers processor
    (bicubic). An image already at the target size passes through the processor's resize
    unchanged."""
    if method == "processor":
        return image
    if method not in images.RESIZE_METHODS:
        raise ValueError(f"unknown resize method {method!r}")
    return Image.fromarray(images.resize(np.asarray(image.convert("RGB")), size,
                                         antialias=method == "bilinear-antialias"))


def decode_image(value: Any) -> Image.Image:
    """An RGB image from a dataset cell ({bytes, path}, a path, or a PIL image), decoded as
    big_vision's tf.io.decode_image(channels=3) decodes it (harness/images.py)."""
    content = _read(value)
    if isinstance(content, Image.Image):
        return Image.fromarray(images.rgb(content))
    return Image.fromarray(images.decode(content))
