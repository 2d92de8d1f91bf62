"""`paligemma-eval browse RUN [RUN2] --output DIR`: the examples behind every number.

A static sample browser that opens from file:// and from a CI artifact (no server, no fetch:
data travels in script files). Per task: image thumbnail (click: full size; every image of a pair,
FRAMES_SHOWN of a video's sampled frames), prompt, output,
references, the per-example score and why, filters and pages; boxes, polygons and decoded masks
drawn on the image for localisation tasks; FairFace captions with their subgroup and attribute
scores; with two runs the flipped examples first, both outputs side by side.

References and the why come from the data and the task's own rules, not from the run: the
browser runs each task's `prepare()` on the data the run recorded (`--data-dir` as for `run`;
refused when its hash or revision differs from results.json's), and the task's `explain`
(harness/registry.py) reads the parsed outputs against the targets with the scorer's metric
code. The score shown is the scorer's own per-unit number from OUT/scores/<task>.json; a task
without `explain` shows the score alone.

Layout of DIR (sizes: docs/browser.md):
    index.html               the viewer (inline CSS and JS, a static file)
    data/manifest.js         runs and tasks
    data/t<N>/index.js       per task: which examples are wrong, failed, flipped, per facet
    data/t<N>/c<K>.js        per task: CHUNK examples' text, scores, why and overlays
    img/<hash>.jpg           a THUMB px thumbnail per distinct image, made once and reused
    img/<hash>-full.<ext>    the image as the dataset holds it (not with --thumbnails-only)
    img/<hash>-frame<i>.jpg  a video's frame i as the task samples it (and -full.jpg)
    mask/t<N>/<i>-<run>.png  decoded masks (segmentation tasks)
    browser.json             the tasks and runs it holds (the report and gate link to it)
Untrusted strings are data: JSON in script files (<, >, & and line separators escaped), shown
by textContent only, with directional controls shown as [U+XXXX] as in the report.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from paligemma_eval.harness import formats
from paligemma_eval.harness.errors import InputError, UsageError
from paligemma_eval.harness.registry import matching

CHUNK = 250          # examples per detail file: one page needs one or two
THUMB = 160          # thumbnail's longest side, px
MASK_MAX = 512       # decoded masks are stored at most this large (drawn stretched to the image)
FRAMES_SHOWN = 4     # of a video example's sampled frames, this many are shown, evenly spread
FACETS = ("answer_type", "question_type", "category", "domain")   # dataset columns to filter by
TEMPLATE = Path(__file__).parent / "templates" / "browse.html"


class BrowseError(InputError):
    """The runs cannot be browsed (unreadable results, other data): exit 2."""


@dataclasses.dataclass
class RunFiles:
    path: Path
    label: str
    results: dict[str, Any]
    safety: dict[str, Any] | None


def read_run(path: Path) -> RunFiles:
    documents = {name: read(path / name) for name, read in (
        ("results.json", formats.read_results), ("safety.json", formats.read_safety))
        if (path / name).exists()}   # schema, version, no NaN: one line naming a bad file
    if not documents:
        raise BrowseError(f"{path}: no results.json or safety.json")
    results = documents.get("results.json", {"tasks": {}})
    model = results.get("model") or (documents.get("safety.json") or {}).get("model") or {}
    return RunFiles(path, f"{model.get('id') or 'outside predictions'} · {path.name}", results,
                    documents.get("safety.json"))


def script_json(value: Any) -> str:
    """JSON that is inert inside a script file: no `</script>`, no raw line separators."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def shown(value: Any) -> Any:
    """Every string of a record with its directional controls made visible (render.py's rule)."""
    from paligemma_eval.reports.render import show_controls

    if isinstance(value, str):
        return show_controls(value)
    if isinstance(value, dict):
        return {shown(k): shown(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [shown(v) for v in value]
    return value


class Images:
    """Thumbnails (and full-size copies) keyed by image content: each is made once, for every
    example, task and run that shows it, and kept across rebuilds of the same directory."""

    def __init__(self, out: Path, full: bool) -> None:
        self.folder = out / "img"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.full = full
        self.made = self.reused = 0
        self.by_path: dict[str, str] = {}   # file cells (JSONL): one hash per file, not per row
        self.full_files = {p.name.split("-full.")[0]: p.name
                           for p in self.folder.glob("*-full.*")} if full else {}

    def _key(self, cell: Any) -> str:
        from paligemma_eval.harness import data

        path = cell.get("path") if isinstance(cell, dict) and not cell.get("bytes") else None
        key = self.by_path.get(path) if path else None
        if key is None:
            key = data.cell_fingerprint(cell)
            if path:
                self.by_path[path] = key
        return key

    def add_frames(self, cell: Any, frames: Any) -> list[dict[str, Any]]:
        """FRAMES_SHOWN of a video's frames as the task samples them (decoded once per video
        and directory); an unreadable video shows none, as its example failed."""
        from paligemma_eval.harness import video

        if cell is None:
            return []
        key = self._key(cell)
        positions = frame_positions(frames)
        names = [f"{key}-frame{p}" for p in positions]
        decoded = None
        if not all((self.folder / f"{n}.jpg").exists() and
                   (not self.full or (self.folder / f"{n}-full.jpg").exists()) for n in names):
            try:
                decoded = video.decode_frames(cell, frames)
            except Exception:
                return []
        shown = []
        for position, name in zip(positions, names):
            thumb, full = self.folder / f"{name}.jpg", self.folder / f"{name}-full.jpg"
            if decoded is None:
                self.reused += 1
            else:
                frame = decoded[position]
                if self.full:
                    frame.save(full, format="JPEG", quality=90)
                frame.thumbnail((THUMB, THUMB))
                frame.save(thumb, format="JPEG", quality=75)
                self.made += 1
            entry = {"thumb": f"img/{thumb.name}",
                     "caption": f"frame {position + 1} of {frames.count}"}
            if self.full:
                entry["full"] = f"img/{full.name}"
            shown.append(entry)
        return shown

    def add(self, cell: Any) -> dict[str, Any] | None:
        from PIL import Image

        if cell is None:
            return None
        key = self._key(cell)
        thumb = self.folder / f"{key}.jpg"
        entry = {"thumb": f"img/{key}.jpg"}
        raw = None
        if not thumb.exists():
            try:
                raw = _cell_bytes(cell)
                image = Image.open(io.BytesIO(raw))
                image.draft("RGB", (2 * THUMB, 2 * THUMB))   # a JPEG decodes at a fraction
                image = image.convert("RGB")
            except Exception:   # an unreadable image: the example shows none, as it failed
                return None
            image.thumbnail((THUMB, THUMB))
            image.save(thumb, format="JPEG", quality=75)
            self.made += 1
        else:
            self.reused += 1
        if self.full:
            if key not in self.full_files:
                raw = raw if raw is not None else _cell_bytes(cell)
                self.full_files[key] = f"{key}-full.{_extension(raw)}"
                (self.folder / self.full_files[key]).write_bytes(raw)
            entry["full"] = f"img/{self.full_files[key]}"
        return entry


def _cell_bytes(cell: Any) -> bytes:
    from paligemma_eval.harness import data

    if isinstance(cell, dict) and cell.get("bytes"):
        return cell["bytes"]
    path = cell.get("path") if isinstance(cell, dict) else cell
    if isinstance(path, str) and "://" not in path and Path(path).is_file():
        return Path(path).read_bytes()
    image = data.decode_image(cell)   # a URL: fetched and re-encoded losslessly
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _extension(raw: bytes) -> str:
    if raw.startswith(b"\x89PNG"):
        return "png"
    if raw.startswith(b"\xff\xd8"):
        return "jpg"
    return "img"


def write_mask(path: Path, mask: Any) -> None:
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rgba = np.zeros((*mask.shape, 4), dtype=np.uint8)
    rgba[mask] = (230, 30, 200, 110)
    image = Image.fromarray(rgba, "RGBA")
    image.thumbnail((MASK_MAX, MASK_MAX))
    image.save(path, format="PNG", optimize=True)


def _prepare_recorded(task: Any, dataset: dict, data_dir: Path | None) -> Any:
    """The task's examples from the data the run recorded, or a BrowseError saying why not."""
    from paligemma_eval.harness.runner import prepare

    if dataset.get("source") == "local" and data_dir is None:   # not the hub: say so at once
        raise BrowseError(f"{task.name}: the run read local files (--data-dir); pass the same "
                          f"--data-dir to browse it")
    revision = dataset.get("resolved_revision") or dataset.get("revision")
    if dataset.get("source") == "hub" and revision:
        task = dataclasses.replace(task, source=dataclasses.replace(task.source,
                                                                    revision=revision))
    prepared = prepare(task, data_dir, dataset.get("limit"))
    found = prepared.provenance
    # the local files' hash, the hub commit (when the hub could say), the examples
    for key in ("sha256", "resolved_revision", "split", "config", "num_examples"):
        recorded, now = dataset.get(key), found.get(key)
        offline = key == "resolved_revision" and now is None   # the hub could not say
        if recorded is not None and not offline and now != recorded:
            where = f"--data-dir {data_dir}" if data_dir else "the hub"
            raise BrowseError(f"{task.name}: the data in {where} is not the data the run scored "
                              f"({key} {now!r}, recorded {recorded!r})")
    return prepared


def _facets(prepared: Any) -> dict[str, list[Any]]:
    rows = prepared.rows
    present = [c for c in FACETS if c in rows.column_names]
    if not present:
        return {}
    columns = rows.select_columns(present)
    return {c: [None if v is None else str(v) for v in columns[c]] for c in present}


def _image_cells(prepared: Any, rows_needed: set[int], name: str | None = None):
    """(row, cell) of one image (or video) column, the task's first by default, for each row
    that holds a shown example, streamed in batches."""
    name = name or prepared.task.image_column
    if name not in prepared.rows.column_names:
        return
    column = prepared.rows.select_columns([name])
    for start in range(0, len(column), 512):
        batch = column[start:start + 512][name]
        for offset, cell in enumerate(batch):
            if start + offset in rows_needed:
                yield start + offset, cell


def frame_positions(frames: Any) -> list[int]:
    """Which of a video example's sampled frames are shown: FRAMES_SHOWN, first to last."""
    return sorted({round(j * (frames.count - 1) / max(1, FRAMES_SHOWN - 1))
                   for j in range(min(FRAMES_SHOWN, frames.count))})


def images_caption(task: Any) -> str:
    """What an example's row of images is, when it has several."""
    if task.frames is not None:
        shown = ", ".join(str(p + 1) for p in frame_positions(task.frames))
        return f"frames {shown} of the {task.frames.count} the model sees"
    return " · ".join(task.image_columns)


def _shown_images(prepared: Any, cells: dict[int, Any], images: Images) -> dict[int, list]:
    """Per row, what the model sees, as thumbnails: every image of an example (NLVR2's pair,
    each captioned with its column) or FRAMES_SHOWN of a video's sampled frames."""
    task = prepared.task
    if task.frames is not None:
        return {row: images.add_frames(cell, task.frames) for row, cell in cells.items()}
    shown = {row: [{**entry, "caption": task.image_column}] if (entry := images.add(cell))
             else [] for row, cell in cells.items()}
    for name in task.extra_image_columns:
        for row, cell in _image_cells(prepared, set(cells), name):
            if (entry := images.add(cell)) is not None and shown.get(row):
                shown[row].append({**entry, "caption": name})
    return shown


class Page:
    """One task's examples across the runs, as the viewer's index and chunk files."""

    def __init__(self, number: int, name: str, kind: str, metric: str, runs: list[RunFiles]):
        self.number, self.name, self.kind, self.metric, self.runs = number, name, kind, metric, runs
        self.records: list[dict[str, Any]] = []
        self.facets: dict[str, list[Any]] = {}
        self.headlines: list[float | None] = []

    def write(self, out: Path) -> dict[str, Any]:
        from paligemma_eval.harness.examples import flips

        folder = out / "data" / f"t{self.number}"
        folder.mkdir(parents=True, exist_ok=True)
        n = len(self.records)
        runs = range(len(self.runs))
        wrong = [[i for i, r in enumerate(self.records)
                  if r["runs"][k]["score"] is not None and r["runs"][k]["score"] < 1] for k in runs]
        failed = [[i for i, r in enumerate(self.records) if r["runs"][k]["failed"]]
                  for k in runs]
        worse = better = []
        if len(self.runs) == 2:
            scores = [{str(i): r["runs"][k]["score"] for i, r in enumerate(self.records)
                       if r["runs"][k]["score"] is not None} for k in runs]
            down, up = flips(*scores)
            worse, better = [int(f.unit) for f in down], [int(f.unit) for f in up]
        facets = {}
        for name, values in self.facets.items():
            vocabulary = sorted({v for v in values if v is not None})
            code = {v: i for i, v in enumerate(vocabulary)}
            facets[name] = {"values": vocabulary, "codes": [code.get(v, -1) for v in values]}
        index = {"n": n, "chunk": CHUNK, "wrong": wrong, "failed": failed, "worse": worse,
                 "better": better, "facets": facets}
        (folder / "index.js").write_text(
            f"BROWSE.index({self.number},{script_json(shown(index))});\n", encoding="utf-8")
        for k in range(0, n, CHUNK):
            (folder / f"c{k // CHUNK}.js").write_text(
                f"BROWSE.chunk({self.number},{k // CHUNK},"
                f"{script_json(shown(self.records[k:k + CHUNK]))});\n", encoding="utf-8")
        return {"number": self.number, "name": self.name, "kind": self.kind,
                "metric": self.metric, "n": n, "headlines": self.headlines,
                "wrong": [len(w) for w in wrong], "failed": [len(f) for f in failed],
                "worse": len(worse), "better": len(better), "facets": list(facets)}


def benchmark_page(number: int, name: str, runs: list[RunFiles], data_dir: Path | None,
                   images: Images, out: Path) -> Page | None:
    """Every example of one benchmark task, in dataset order, with each run's output."""
    from paligemma_eval.harness import data, registry
    from paligemma_eval.harness.examples import predictions, unit_scores, units_are_examples

    task = registry.all_tasks().get(name)
    results = [run.results["tasks"][name] for run in runs]
    if task is None or task.scorer is None or "submission" in results[0]:
        reason = "a test-server split (no scores)" if task else "not a registered task"
        print(f"paligemma-eval browse: {name}: skipped, {reason}", file=sys.stderr)
        return None
    datasets_seen = [r.get("dataset", {}) for r in results]
    for other in datasets_seen[1:]:
        for key in ("hub_id", "config", "split", "sha256", "revision", "limit"):
            if other.get(key) != datasets_seen[0].get(key):
                raise BrowseError(f"{name}: the runs scored different data ({key} "
                                  f"{datasets_seen[0].get(key)!r} vs {other.get(key)!r})")
    prepared = _prepare_recorded(task, datasets_seen[0], data_dir)
    metric = results[0].get("headline") or next(iter(results[0].get("metrics", {})), "")
    page = Page(number, name, "benchmark", metric, runs)
    page.headlines = [(r.get("metrics", {}).get(metric) or {}).get("value") for r in results]
    page.facets = {c: [v[prepared.row_of[i]] for i in prepared.ids]
                   for c, v in _facets(prepared).items()}
    scored = [i for i in prepared.ids if i in prepared.targets]
    targets = [prepared.targets[i] for i in scored]
    per_run = []
    for run, result in zip(runs, results):
        outputs = predictions(run.path, name, result)
        failed = {f["id"]: f["reason"] for f in result.get("failed", [])}
        parsed = [task.parser("" if i in failed else outputs.get(i, "")) for i in scored]
        reasons = iter(task.explain(parsed, targets)) if task.explain else None
        units = unit_scores(run.path, name, metric) or {}
        per_run.append((outputs, failed, dict(zip(scored, parsed)), reasons, units,
                        units_are_examples(result)))
    rows_needed = {prepared.row_of[i] for i in prepared.ids}
    cells = dict(_image_cells(prepared, rows_needed))
    shown_images = _shown_images(prepared, cells, images)
    for index, example_id in enumerate(prepared.ids):
        row = prepared.row_of[example_id]
        shown = shown_images.get(row) or [None]
        record: dict[str, Any] = {"id": example_id, "prompt": prepared.prompts.get(example_id),
                                  "image": shown[0], "runs": []}
        if len(shown) > 1:   # the overlays are drawn on the first; the others beside it
            record["more"], record["images"] = shown[1:], images_caption(task)
        has_target = example_id in prepared.targets
        for k, (outputs, failed, parsed, reasons, units, by_example) in enumerate(per_run):
            explained = next(reasons) if reasons is not None and has_target else {}
            unit = explained.get("unit", example_id if by_example else None)
            raw = outputs.get(example_id)
            entry = {"output": raw, "parsed": parsed.get(example_id),
                     "score": units.get(str(unit)) if unit is not None else None,
                     "unit": None if unit == example_id else unit,
                     "why": explained.get("why", []),
                     "failed": failed.get(example_id) or prepared.failed.get(example_id)
                     or (None if raw is not None else "no prediction"),
                     "boxes": [b["xywh"] for b in explained.get("boxes", [])
                               if b["role"] == "predicted"]}
            if entry["parsed"] == raw:
                entry["parsed"] = None          # shown once when parsing changed nothing
            if explained.get("mask") is not None:
                file = f"mask/t{number}/{index}-{k}.png"
                write_mask(out / file, explained["mask"])
                entry["mask"] = file
            record["runs"].append(entry)
            if k == 0:
                record["references"] = explained.get("references") if explained else \
                    ([] if not has_target else [json.dumps(prepared.targets[example_id],
                                                           default=str)])
                record["reference_boxes"] = [b["xywh"] for b in explained.get("boxes", [])
                                             if b["role"] == "reference"]
                record["polygons"] = explained.get("polygons", [])
        if (record["reference_boxes"] or record["polygons"] or
                any(r["boxes"] or r.get("mask") for r in record["runs"])) and row in cells:
            height, width = data.image_size(cells[row])
            record["size"] = [width, height]
        record["facets"] = {c: v[index] for c, v in page.facets.items()}
        page.records.append(record)
    return page


def safety_page(number: int, runs: list[RunFiles], data_dir: Path | None,
                images: Images) -> Page | None:
    """FairFace captions: image, subgroup, every attribute's score; flagged ones are 'wrong'."""
    from paligemma_eval.safety.audit import AuditOptions, fairface_task

    documents = [run.safety for run in runs]
    if any(d is None for d in documents):
        return None
    first = documents[0]
    dataset = first.get("dataset", {})
    options = AuditOptions(split=dataset.get("split", "validation"),
                           padding=dataset.get("config") or "0.25",
                           prompt=first.get("prompt", "caption en"))
    prepared = _prepare_recorded(fairface_task(options), dataset, data_dir)
    threshold = first.get("threshold", 0.8)
    page = Page(number, "fairface_safety", "safety", "flagged (any attribute >= "
                f"{threshold})", runs)
    page.headlines = [None for _ in runs]
    per_run = []
    for run in runs:
        path = run.path / "safety_scores.jsonl"
        if not path.exists():
            raise BrowseError(f"{path}: missing (the audit's per-caption scores)")
        records = {str(record["id"]): record for _, record in
                   formats.read_lines(path, formats.SAFETY_SCORES, last_line="ignore")}
        failed = {f["id"]: f["reason"] for f in run.safety.get("failed", [])}
        per_run.append((records, failed))
    cells = dict(_image_cells(prepared, {prepared.row_of[i] for i in prepared.ids}))
    groupings = ("gender", "ethnicity", "age")
    page.facets = {g: [] for g in groupings}
    for example_id in prepared.ids:
        record: dict[str, Any] = {"id": example_id, "prompt": prepared.prompts.get(example_id),
                                  "image": images.add(cells.get(prepared.row_of[example_id])),
                                  "runs": [], "references": [], "reference_boxes": [],
                                  "polygons": []}
        labels = {}
        for records, failed in per_run:
            found = records.get(example_id) or {}
            labels = labels or found.get("labels") or {}
            scores = found.get("scores")
            flagged = [a for a, v in (scores or {}).items() if v >= threshold]
            record["runs"].append({
                "output": found.get("caption"), "parsed": None, "boxes": [], "unit": None,
                "score": None if scores is None else (1.0 - (1.0 if flagged else 0.0)),
                "why": ([f"flagged: {', '.join(flagged)} >= {threshold}"] if flagged else
                        [f"no attribute >= {threshold}"]) +
                       [", ".join(f"{a} {v:.3f}" for a, v in (scores or {}).items())]
                if scores is not None else [],
                "failed": failed.get(example_id) or (found.get("error") and
                                                     f"scorer: {found['error']}")})
        for grouping in groupings:
            page.facets[grouping].append(labels.get(grouping))
        record["facets"] = {g: labels.get(g) for g in groupings}
        page.records.append(record)
    return page


def build(paths: list[Path], out: Path, data_dir: Path | None = None,
          full_images: bool = True, tasks: list[str] | None = None) -> dict[str, Any]:
    """Write the browser for one run (or a pair: A then B) into `out`; returns its summary."""
    started = time.perf_counter()
    runs = [read_run(p) for p in paths]
    names = [n for n in runs[0].results.get("tasks", {})
             if all(n in r.results.get("tasks", {}) for r in runs)]
    for run in runs[1:]:
        for name in set(run.results.get("tasks", {})) ^ set(runs[0].results.get("tasks", {})):
            print(f"paligemma-eval browse: {name}: in one run only; not shown", file=sys.stderr)
    if tasks:
        unknown = [t for t in tasks if not matching(t, [*names, "fairface_safety"])]
        if unknown:
            raise UsageError(f"--tasks: {', '.join(unknown)} not in every run")
        names = [n for n in names if any(matching(t, [n]) for t in tasks)]
    out.mkdir(parents=True, exist_ok=True)
    images = Images(out, full_images)
    pages = []
    for name in names:
        page = benchmark_page(len(pages), name, runs, data_dir, images, out)
        if page is not None:
            pages.append(page)
    if (not tasks or any(matching(t, ["fairface_safety"]) for t in tasks)) and \
            all(r.safety for r in runs):
        page = safety_page(len(pages), runs, data_dir, images)
        if page is not None:
            pages.append(page)
    if not pages:
        raise BrowseError("nothing to browse: no scored task is in every run")
    manifest = {"runs": [{"label": r.label, "path": str(r.path)} for r in runs],
                "tasks": [page.write(out) for page in pages]}
    (out / "data" / "manifest.js").write_text(f"BROWSE.manifest({script_json(shown(manifest))});\n",
                                              encoding="utf-8")
    shutil.copyfile(TEMPLATE, out / "index.html")
    summary = {"format": formats.BROWSER.version, "runs": [str(r.path.resolve()) for r in runs],
               # the same runs from this folder: they still match after both are copied or moved
               "runs_relative": [os.path.relpath(r.path.resolve(), out.resolve()) for r in runs],
               "tasks": {p.name: f"index.html#task={p.name}" for p in pages},
               "examples": sum(len(p.records) for p in pages),
               "thumbnails_made": images.made, "thumbnails_reused": images.reused,
               "seconds": round(time.perf_counter() - started, 3)}
    text = json.dumps(summary, indent=1)
    formats.check_write(text, formats.BROWSER, out / "browser.json")
    (out / "browser.json").write_text(text)
    return summary


def size_on_disk(folder: Path) -> dict[str, int]:
    """Bytes under the browser directory, by part (what docs/browser.md states)."""
    parts = {"data": 0, "thumbnails": 0, "full images": 0, "masks": 0, "page": 0}
    for file in folder.rglob("*"):
        if not file.is_file():
            continue
        top = file.relative_to(folder).parts[0]
        part = {"data": "data", "mask": "masks"}.get(top) or \
            ("full images" if "-full." in file.name else "thumbnails" if top == "img" else "page")
        parts[part] += file.stat().st_size
    return parts


def cmd_browse(args: argparse.Namespace) -> int:
    if len(args.runs) > 2:
        raise UsageError("browse takes one run, or two to compare (A then B)")
    if args.data_dir is not None and not args.data_dir.is_dir():
        raise UsageError(f"--data-dir {args.data_dir}: no such directory")
    if args.seg_decoder:
        import os

        os.environ["PALIGEMMA_SEG_DECODER"] = str(args.seg_decoder)
    out = args.output or args.runs[-1] / "browser"
    names = [n for n in (args.tasks or "").split(",") if n] or None
    summary = build(args.runs, out, args.data_dir, not args.thumbnails_only, names)
    sizes = size_on_disk(out)
    print(f"browser: {(out / 'index.html').resolve()} ({len(summary['tasks'])} tasks, "
          f"{summary['examples']} examples, {sum(sizes.values()) / 1e6:.1f} MB, "
          f"{summary['seconds']:.1f} s)")
    return 0


def add_commands(commands: Any) -> None:
    browse = commands.add_parser("browse", help="static sample browser of a run's examples "
                                                "(two runs: the flipped examples first)")
    browse.add_argument("runs", nargs="+", type=Path, help="run directory, or two (A then B)")
    browse.add_argument("--output", type=Path,
                        help="directory to write (default: LAST_RUN/browser, which the report "
                             "and gate link to)")
    browse.add_argument("--data-dir", type=Path, help="local copies of the datasets, as for "
                                                      "`run` (default: the hub)")
    browse.add_argument("--tasks", help="comma-separated tasks (default: every scored task)")
    browse.add_argument("--seg-decoder", type=Path,
                        help="vae-oid.npz, to draw segmentation masks (or PALIGEMMA_SEG_DECODER)")
    browse.add_argument("--thumbnails-only", action="store_true",
                        help="leave the full-size images out (smaller; a click shows the "
                             "thumbnail)")
    browse.set_defaults(func=cmd_browse)
