"""Datasets: the hub copies other harnesses load, or the same schema from local files.

Local layout under --data-dir mirrors the hub id: DIR/<owner>/<name>/<config or "default">/<split>
with suffix .parquet (as `Dataset.to_parquet` writes it) or .jsonl (image column = a path relative
to the file, or a URL). Images are decoded per example, so one broken image fails one example,
not the run.
A source of several splits (`split_column`) reads one file per split; a `nested` source reads
its nested dataset by the same layout (e.g. GQA's two configs, DIR/lmms-lab/GQA/<config>/testdev).
Data with no hub copy (COCO-35L, SciCap) is read in its own layout from DIR/<name>/ by the
task's reader.
"""

from __future__ import annotations

import dataclasses
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
from paligemma_eval.harness.split_rows import hub_rows


@dataclass
class LoadedData:
    rows: datasets.Dataset
    provenance: dict[str, Any]


def parquet_rows(path: Path) -> int | None:
    """The rows a parquet file's footer declares; None when it has no readable footer (the
    reader then names the damage)."""
    import pyarrow.parquet

    try:
        return pyarrow.parquet.ParquetFile(path).metadata.num_rows
    except Exception:  # pyarrow raises several types for a damaged file; the reader says which
        return None


def require_utf8(path: Path) -> None:
    """pyarrow takes a JSON file's strings unchecked and fails on a byte that is not UTF-8 only
    when that row is read, with a traceback: named here instead, by its line, before any model
    loads."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DatasetError(f"{path}: line {number} is not UTF-8, as JSON Lines must be "
                                   f"(byte {line[error.start]:#04x} at column "
                                   f"{error.start + 1})") from None


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


def read(source: DatasetSource, data_dir: Path | None, columns: tuple[str, ...],
         video: bool = False) -> LoadedData:
    """One split of one dataset, from --data-dir or the hub (or, for data without a hub copy,
    from its own files by the source's `reader`), image (or video) columns left undecoded."""
    if source.reader is not None:
        rows, provenance = _read_own_files(source, data_dir)
    elif data_dir is None and source.local_only:
        raise DatasetError(f"{source.describe()}: no hub copy exists; put its files under "
                           f"--data-dir DIR as DIR/{source.hub_id}/{source.config or 'default'}/"
                           f"{source.split}.jsonl (see the task's documentation)")
    elif data_dir is not None:
        path = local_path(source, data_dir)
        if path is None:
            expected = data_dir / source.hub_id / (source.config or "default") / source.split
            raise DatasetError(f"no local data for {source.describe()}: expected "
                               f"{expected}.parquet or {expected}.jsonl")
        kind = "parquet" if path.suffix == ".parquet" else "json"
        if path.stat().st_size == 0:
            raise DatasetError(f"{path}: empty file")
        if kind == "json":
            require_utf8(path)
        elif parquet_rows(path) == 0:   # datasets says "BatchSize must be greater than 0"
            raise DatasetError(f"{path}: a parquet file of no rows: the split is empty")
        verbosity = datasets.logging.get_verbosity()
        datasets.logging.set_verbosity(datasets.logging.CRITICAL)  # we say it in one line
        try:
            # Dataset.from_*, not load_dataset(kind, ...): that one first sends the hub a
            # download-count request (up to 3 s each where the network drops it), for files
            # that are on this disk
            read_file = datasets.Dataset.from_parquet if kind == "parquet" \
                else datasets.Dataset.from_json
            rows = read_file(str(path))
        except Exception as error:  # the datasets library raises many types for bad files
            cause = error.__cause__ or error
            reason = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
            raise DatasetError(f"{path}: not a readable {kind} file ({reason})") from None
        finally:
            datasets.logging.set_verbosity(verbosity)
        linked = [c for c in columns if kind == "json" and c in rows.column_names]
        if linked:  # JSONL cells name files relative to the JSONL file (or URLs)
            rows = rows.map(lambda r: {c: r[c] if "://" in r[c] else str(path.parent / r[c])
                                       for c in linked})
        images = sorted({Path(p) for c in linked for p in rows[c] if "://" not in p})
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
    if not video:  # a video cell stays as it is: bytes, or a path to the file
        for column in columns:
            if column in rows.column_names:
                rows = rows.cast_column(column, datasets.Image(decode=False))
    if len(rows) == 0:
        raise DatasetError(f"{source.describe()}: the dataset has no rows")
    provenance["num_rows"] = len(rows)
    if source.reader is None and (expected := hub_rows(source)) is not None:
        provenance["hub_rows"] = expected
    return LoadedData(rows, provenance)


def load(source: DatasetSource, data_dir: Path | None, image_columns: tuple[str, ...] | str | None,
         video: bool = False) -> LoadedData:
    """Rows with the image (or video) columns left undecoded ({bytes, path}); see `decode_image`
    and harness/video.py. Several splits (`split_column`) are read one by one, each row tagged
    with its split; a `nested` dataset is grouped into the rows."""
    columns = (image_columns,) if isinstance(image_columns, str) else tuple(image_columns or ())
    plain = dataclasses.replace(source, split_column=None, nested=None)
    loaded = read(plain, data_dir, columns, video) if source.split_column is None \
        else read_splits(source, data_dir, columns, video)
    if source.nested is not None:
        loaded = nest(loaded, source, data_dir)
    return loaded


def read_splits(source: DatasetSource, data_dir: Path | None, columns: tuple[str, ...],
                video: bool) -> LoadedData:
    """The splits of "a+b+c" interleaved (row 0 of each, then row 1, ...: a --limit covers every
    split), each row naming its split in `split_column` (MaRVL, XM3600, xGQA keep a language per
    split). Locally, absent splits are left out and listed (a few languages downloaded); at
    least one must be there."""
    plain = dataclasses.replace(source, split_column=None, nested=None)
    splits = source.split.split("+")
    absent = [s for s in splits if data_dir is not None and source.reader is None
              and local_path(dataclasses.replace(plain, split=s), data_dir) is None]
    if len(absent) == len(splits):
        folder = data_dir / source.hub_id / (source.config or "default")
        raise DatasetError(f"no local data for {source.describe()}: expected "
                           f"{folder}/<split>.parquet or .jsonl for one of its splits at least")
    parts = {split: read(dataclasses.replace(plain, split=split), data_dir, columns, video)
             for split in splits if split not in absent}
    try:
        rows = datasets.concatenate_datasets([
            part.rows.add_column(source.split_column, [split] * len(part.rows))
            for split, part in parts.items()])
    except ValueError as error:
        raise DatasetError(f"{source.describe()}: the splits do not share one schema "
                           f"({str(error).splitlines()[0]})") from None
    position = np.concatenate([np.arange(len(part.rows)) for part in parts.values()])
    order = np.concatenate([np.full(len(part.rows), k) for k, part in enumerate(parts.values())])
    provenance = {"source": next(iter(parts.values())).provenance["source"],
                  "hub_id": source.hub_id, "config": source.config, "split": source.split,
                  "split_column": source.split_column, "num_rows": len(rows),
                  "absent_splits": absent,
                  "splits": {split: part.provenance for split, part in parts.items()}}
    return LoadedData(rows.select(np.lexsort((order, position))), provenance)


def nest(outer: LoadedData, source: DatasetSource, data_dir: Path | None) -> LoadedData:
    """The nested dataset's rows grouped into the outer rows (see registry.Nested)."""
    nested = source.nested
    inner_source = nested.source
    if inner_source.hub_id == source.hub_id and inner_source.revision is None:
        # One repository's two configs: --dataset-revision pins both.
        inner_source = dataclasses.replace(inner_source, revision=source.revision)
    inner = read(inner_source, data_dir, ())
    check_columns(inner.rows, (nested.key, *nested.columns), nested.source.describe())
    check_columns(outer.rows, (nested.on,), source.describe())
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in inner.rows.select_columns([nested.key, *nested.columns]):
        groups.setdefault(str(record[nested.key]), []).append(
            {column: record[column] for column in nested.columns})
    owners = [str(value) for value in outer.rows[nested.on]]
    orphans = sorted(set(groups) - set(owners))
    if orphans:  # fail closed: a question whose image is missing would vanish silently
        raise DatasetError(f"{nested.source.describe()}: {len(orphans)} {nested.key} value(s) "
                           f"with no row in {source.describe()} (first: {orphans[0]!r})")
    rows = outer.rows.add_column(nested.into, [groups.get(owner, []) for owner in owners])
    provenance = {**outer.provenance, "nested": inner.provenance,
                  "num_nested_rows": len(inner.rows)}
    return LoadedData(rows, provenance)


def _read_own_files(source: DatasetSource, data_dir: Path | None) -> tuple[datasets.Dataset,
                                                                            dict[str, Any]]:
    if data_dir is None:
        raise DatasetError(f"{source.describe()}: no hub copy exists; put the benchmark's own "
                           f"files under --data-dir DIR as DIR/{source.hub_id}/ (see the task's "
                           "documentation)")
    root = data_dir / source.hub_id
    try:
        rows, files = source.reader(root, source.split)
    except DatasetError:
        raise
    except (OSError, KeyError, TypeError, ValueError) as error:  # a file missing or malformed
        raise DatasetError(f"{root}: not readable as {source.hub_id} "
                           f"({type(error).__name__}: {error})") from None
    provenance = {"source": "local", "path": str(root), "sha256": sha256_files(*files),
                  "files": len(files), "hub_id": source.hub_id, "split": source.split}
    return datasets.Dataset.from_list(rows), provenance


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
