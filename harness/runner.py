"""dataset -> prompts -> batched generation -> parsed outputs -> metric -> results file.

Predictions go to OUT/predictions/<task>.jsonl as they are made (one file per rank in a
data-parallel run; all of them count as done on resume, whatever the number of ranks), so a
killed run resumes where it stopped. Scoring reads only those files, so `score` on predictions made
elsewhere uses exactly the same code.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from paligemma_eval.harness import cache, data, formats, video
from paligemma_eval.harness.cache import PredictionStore, run_key
from paligemma_eval.harness.errors import first_and_more
from paligemma_eval.harness.models import PaliGemmaModel
from paligemma_eval.harness.progress import progress
from paligemma_eval.harness.registry import Task
from paligemma_eval.harness.results import task_result
from paligemma_eval.harness.scores import DEFAULT_RESAMPLES, DEFAULT_SEED
from paligemma_eval.harness.split_rows import rows_unlike_hub


@dataclass(frozen=True)
class RunOptions:
    out: Path
    data_dir: Path | None = None
    limit: int | None = None
    batch_size: int = 8
    num_beams: int | None = None   # overrides the task's beam count
    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    retry_failed: bool = True     # regenerate examples whose earlier attempt failed
    rank: int = 0
    world_size: int = 1
    barrier: Callable[[], None] = lambda: None  # waits for every rank's shard (data-parallel)
    # threads that decode and resize a batch's images (default: default_preprocess_workers())
    preprocess_workers: int | None = None


@dataclass
class Prepared:
    """A task's examples before generation: ids, prompts and targets, in dataset order."""

    task: Task
    rows: Any                     # the dataset, images undecoded
    ids: list[str]
    prompts: dict[str, str]
    targets: dict[str, Any]
    failed: dict[str, str]        # id -> reason, for rows that cannot become an example
    provenance: dict[str, Any]
    row_of: dict[str, int]        # id -> dataset row holding its image
    # row -> hash of its image, computed once (several examples may share a row: RefCOCO)
    image_hashes: dict[int, str] = field(default_factory=dict)
    # ids whose prompt the model's tokenizer cuts to the task's text length (`mark_cut`)
    cut: frozenset[str] = frozenset()


def prepare(task: Task, data_dir: Path | None, limit: int | None) -> Prepared:
    """Load and check a task's data; fails on a missing column before any generation."""
    loaded = data.load(task.source, data_dir, task.image_columns, video=task.frames is not None)
    data.check_columns(loaded.rows, tuple(c for c in (task.id_column, *task.columns,
                                                      *task.extra_image_columns) if c),
                       task.name)
    rows, selection = loaded.rows, None
    if task.select_rows is not None:   # before --limit: the first N of the split itself
        kept, selection = task.select_rows(rows[task.id_column])
        rows = rows.select(kept)
    split_rows = len(rows)   # recorded: a --limit that cut the split makes no card number
    rows = rows.select(range(min(limit, len(rows)))) if limit else rows
    meta = rows.remove_columns([c for c in task.image_columns if c in rows.column_names])
    sizes = image_sizes(rows, task.image_column) if task.image_size else None
    ids, prompts, targets, failed, row_of = [], {}, {}, {}, {}
    for index, row in enumerate(meta):
        if sizes is not None:
            row = {**row, "image_size": sizes[index]}
        # Datasets without an id column (FairFace) are keyed by row position.
        row_id = str(row[task.id_column]) if task.id_column else str(index)
        # A row may hold several examples (RefCOCO: one per referring expression).
        variants = list(task.expand(row)) if task.expand else [row]
        for k, variant in enumerate(variants):
            example_id = f"{row_id}#{k}" if task.expand else row_id
            if example_id in row_of:
                raise data.DatasetError(f"{task.name}: duplicate id {example_id!r} in column "
                                        f"{task.id_column!r}")
            ids.append(example_id)
            row_of[example_id] = index
            try:
                prompts[example_id] = task.format_prompt(variant)
                targets[example_id] = task.target(variant)
            except (KeyError, TypeError, ValueError, IndexError) as error:
                prompts.pop(example_id, None)
                failed[example_id] = f"bad row: {type(error).__name__}: {error}"
    provenance = {**loaded.provenance, "limit": limit, "split_rows": split_rows,
                  "num_examples": len(ids),
                  **({"selection": selection} if selection else {})}
    return Prepared(task, rows, ids, prompts, targets, failed, provenance, row_of)


def note_row_counts(provenances: dict[str, dict[str, Any]]) -> None:
    """Said before generation, one line each: tasks whose local files hold another number of rows
    than the hub copy's split (no card number), and hub copies that changed since recorded."""
    for source in ("local", "hub"):
        found = {task: why for task, provenance in provenances.items()
                 if (why := rows_unlike_hub(provenance, source)) is not None}
        if not found:
            continue
        whose = "their numbers" if len(found) > 1 else "its numbers"
        line = first_and_more([f"{task}: {why}" for task, why in found.items()], "task")
        print(f"note: {line}" + (f"; {whose} will stand beside no card row"
                                 if source == "local" else ""), file=sys.stderr)


def image_sizes(rows: Any, column: str) -> list[tuple[int, int] | None]:
    """(height, width) per row from the image headers alone (no pixel decoding)."""
    sizes = []
    for cell in rows[column]:
        try:
            sizes.append(data.image_size(cell))
        except Exception:  # a broken image fails its example later, with its reason
            sizes.append(None)
    return sizes


def decoding(task: Task, options: RunOptions) -> dict[str, Any]:
    return {"max_new_tokens": task.max_new_tokens, "num_beams": options.num_beams or task.num_beams,
            "do_sample": False}


def inputs_record(task: Task) -> dict[str, Any]:
    """How the examples became model inputs beyond the prompt and resize, for the results file:
    the prompt cut (tolen) and a video's frame sampling."""
    return {"max_prompt_tokens": task.max_prompt_tokens,
            "frames": {"count": task.frames.count, "stride": task.frames.stride}
            if task.frames else None}


def prediction_files(out: Path, task: Task) -> list[Path]:
    return cache.prediction_files(out, task.name)


def _shard_store(out: Path, task: Task, options: RunOptions) -> PredictionStore:
    name = f"{task.name}.jsonl" if options.world_size == 1 else \
        f"{task.name}.rank{options.rank}.jsonl"
    return PredictionStore(out / "predictions" / name)


def load_predictions(out: Path, task: Task, key: str | None,
                     inputs: dict[str, str] | None = None) -> dict[str, dict]:
    """Records under the run key; with `inputs`, only those made from the example's current
    prompt and image (a prediction of an edited example is stale and does not count). Where
    several files (ranks) hold an example, a prediction beats a failure: the failure was retried."""
    records: dict[str, dict] = {}
    for path in prediction_files(out, task):
        for example_id, record in PredictionStore(path).load(key).items():
            if inputs is not None and record.get("input") != inputs.get(example_id):
                continue
            if example_id not in records or ("error" in records[example_id] and
                                             "error" not in record):
                records[example_id] = record
    return records


def compact_predictions(out: Path, task: Task, current: dict[str, dict],
                        order: list[str]) -> bool:
    """Leave predictions/<task>.jsonl holding one line per example, so that it reads back as
    `score --predictions` and pandas read it: the line each example of this run was scored from
    (`current`, in dataset order), then, for examples outside this run (beyond --limit, say), the
    last line written, which a later resume may reuse. Superseded lines (an edited example's,
    a retried failure's, another run key's) go; data-parallel rank files are merged in.

    Whole or not at all: a new file is written, fsynced and renamed over the old one before any
    rank file is removed, so a kill at any moment loses no line a resume could use. Rank 0 calls
    this after every rank has finished the task (no file of it is being written). Returns
    whether anything was rewritten."""
    folder = out / "predictions"
    target = folder / f"{task.name}.jsonl"
    files = prediction_files(out, task)
    written = [record for path in files for record in PredictionStore(path).lines()]
    if files == [target] and len(written) == len({str(r["id"]) for r in written}):
        return False
    latest = {str(record["id"]): record for record in written}
    kept = [current[i] for i in order if i in current]
    from_run = {i for i in order if i in current}
    kept += [record for example_id, record in latest.items() if example_id not in from_run]
    for stale in folder.glob(f".{task.name}.jsonl.*.compact"):   # left by a kill mid-compaction
        stale.unlink(missing_ok=True)
    partial = folder / f".{task.name}.jsonl.{os.getpid()}.compact"
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write("".join(formats.dump_line({"format": formats.PREDICTION.version, **r},
                                               formats.PREDICTION, target) for r in kept))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, target)
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)     # the rename itself survives a power cut before rank files go
    finally:
        os.close(directory)
    for path in files:
        if path != target:
            path.unlink()
    return True


def check_earlier_outputs(out: Path, tasks: list[Task]) -> None:
    """Read every file of an earlier run that this one will resume from or merge into, before
    any model loads: a damaged one is a one-line error that costs no generation."""
    if (out / "results.json").exists():
        formats.read_results(out / "results.json")
    for task in tasks:
        for path in prediction_files(out, task):
            PredictionStore(path).lines()


def input_fingerprints(prepared: Prepared, ids: list[str]) -> dict[str, str]:
    """Per example: hash of its prompt text and the content of every image (or video) it shows,
    the data half of its resume key."""
    columns = [c for c in prepared.task.image_columns if c in prepared.rows.column_names]
    cells = prepared.rows.select_columns(columns) if columns else None
    fingerprints = {}
    for example_id in ids:
        row = prepared.row_of[example_id]
        if row not in prepared.image_hashes:
            prepared.image_hashes[row] = "+".join(
                data.cell_fingerprint(cells[row][c]) for c in columns) if cells is not None else ""
        # a cut prompt is another input than the whole one; an uncut one is the same input
        # whatever the text length, so its predictions stay valid when that changes
        cut = {"cut_to": prepared.task.max_prompt_tokens} if example_id in prepared.cut else {}
        fingerprints[example_id] = run_key(prompt=prepared.prompts.get(example_id),
                                           image=prepared.image_hashes[row],
                                           target=prepared.targets.get(example_id), **cut)
    return fingerprints


def mark_cut(model: Any, prepared: Prepared) -> None:
    """Note which prompts this model's tokenizer cuts to the task's text length (big_vision's
    tolen), for their resume keys. A backend without `prompt_ids` (vLLM) refuses such prompts."""
    limit = prepared.task.max_prompt_tokens
    if limit is not None and hasattr(model, "prompt_ids"):
        prepared.cut = frozenset(i for i, prompt in prepared.prompts.items()
                                 if model.prompt_ids(prompt, limit)[1])


def generate(model: PaliGemmaModel, prepared: Prepared, options: RunOptions) -> dict[str, Any]:
    """Generate every missing prediction of this rank's shard; returns throughput figures."""
    task = prepared.task
    settings = decoding(task, options)
    key = run_key(model=model.info.fingerprint, dtype=model.info.dtype,
                  backend=model.info.backend, task=task.name,
                  prompt=task.prompt, decoding=settings,
                  model_decoding=model.info.decoding())   # caps, window, attention in force
    position = {example_id: i for i, example_id in enumerate(prepared.ids)}
    mine = [i for i in prepared.ids if position[i] % options.world_size == options.rank]
    mark_cut(model, prepared)
    fingerprints = input_fingerprints(prepared, mine)
    done = load_predictions(options.out, task, key, fingerprints)
    if options.retry_failed:
        done = {i: r for i, r in done.items() if "error" not in r or i in prepared.failed}
    store = _shard_store(options.out, task, options)
    store.append({"key": key, "id": i, "input": fingerprints[i], "error": prepared.failed[i]}
                 for i in mine if i in prepared.failed and i not in done)
    todo = [i for i in mine if i in prepared.prompts and i not in done]
    # Length-aware batching: similar prompt lengths share a batch, so little padding.
    todo.sort(key=lambda i: (len(prepared.prompts[i]), position[i]))
    if task.expand and getattr(model, "shares_images", False):
        todo.sort(key=lambda i: position[i])  # a row's questions in one batch: one vision pass
    batches = [todo[s:s + options.batch_size] for s in range(0, len(todo), options.batch_size)]

    started, generated = time.perf_counter(), 0
    # On an accelerator, decode and preprocess the next batch on the CPU while the device
    # generates this one. On a CPU-only run the two would compete for the same cores (measured
    # slower, bench/runner_overhead.py), so batches are prepared in turn.
    overlap = str(getattr(model, "device", "cpu")).split(":")[0] != "cpu"
    workers = options.preprocess_workers or default_preprocess_workers()
    with preprocess_threads(1) as pool, \
            preprocess_threads(workers) if workers > 1 else nullcontext() as loader, \
            progress(len(todo), f"generate {task.name}") as bar:
        pending = pool.submit(load_batch, model, prepared, batches[0], loader) \
            if overlap and batches else None
        for index, batch_ids in enumerate(batches):
            good, inputs, bad = pending.result() if overlap else \
                load_batch(model, prepared, batch_ids, loader)
            if overlap and index + 1 < len(batches):
                pending = pool.submit(load_batch, model, prepared, batches[index + 1], loader)
            outputs = model.generate_prepared(inputs, settings["max_new_tokens"],
                                              settings["num_beams"]) if good else []
            records = [{"key": key, "id": i, "input": fingerprints[i],
                        "prompt": prepared.prompts[i], "prediction": out.text, **out.flags()}
                       for i, out in zip(good, outputs)]
            records += [{"key": key, "id": i, "input": fingerprints[i], "error": reason}
                        for i, reason in bad.items()]
            store.append(records)
            generated += len(good)
            bar.update(len(good) + len(bad))
    seconds = time.perf_counter() - started
    path = model.generation_path(settings["num_beams"], task.name) \
        if hasattr(model, "generation_path") else {"path": model.info.backend}
    return {"key": key, "generated": generated, "seconds": round(seconds, 3), "generation": path,
            "preprocess_workers": workers,
            "examples_per_second": round(generated / seconds, 3) if generated and seconds else None,
            "resumed": len([i for i in mine if i in done])}


def default_preprocess_workers() -> int:
    """Threads that decode a batch's images: one per core this process may use, shared with the
    other ranks on this machine (torchrun's LOCAL_WORLD_SIZE), at most 8. JPEG decoding and the
    resize release the GIL, so threads run side by side; a process pool was slower
    (bench/preprocess_throughput.py: every image comes back pickled)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    ranks = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(8, (cores or 1) // ranks))


@contextmanager
def preprocess_threads(workers: int) -> Iterator[ThreadPoolExecutor]:
    """`workers` threads for loading, each running torch on one thread of its own: otherwise every
    thread that resizes starts a whole OpenMP team, whose spinning made CPU runs twice as slow
    (runner/bare on the CPU: 2.1 with one loading thread, 0.9 with this). torch's thread count
    for threads started later is put back afterwards. Where something else owns torch's threads
    (vLLM's CPU worker binds them to cores and replaces `torch.set_num_threads` with a warning),
    they are left alone."""
    if torch.set_num_threads is not torch._C.set_num_threads:
        with ThreadPoolExecutor(workers) as pool:
            yield pool
        return
    before = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            yield pool
    finally:
        torch.set_num_threads(before)


def load_batch(model: PaliGemmaModel, prepared: Prepared, batch_ids: list[str],
               loader: Executor | None) -> tuple[list[str], Any, dict[str, str]]:
    """One batch's model inputs: each example's images decoded and resized on `loader`'s threads
    (None: on this thread), then `model.prepare`. Returns the ids it holds, the inputs, and the
    examples whose images could not be read, with the reason (they fail alone)."""
    def shown_or_error(example_id: str) -> list[Any] | Exception:
        try:
            return example_images(prepared, example_id, model.info.resolution)
        except Exception as error:  # any undecodable image fails that example only
            return error

    images, good, bad = [], [], {}
    each = loader.map if loader is not None else map
    for example_id, shown in zip(batch_ids, each(shown_or_error, batch_ids)):
        if isinstance(shown, Exception):
            bad[example_id] = f"image: {type(shown).__name__}: {shown}"
        else:
            images.append(shown)
            good.append(example_id)
    inputs = model.prepare(images, [prepared.prompts[i] for i in good],
                           prepared.task.max_prompt_tokens) if good else None
    return good, inputs, bad


def example_images(prepared: Prepared, example_id: str, resolution: int) -> list[Any]:
    """What the model sees of one example: one image, several (NLVR2's pair) or a video's
    frames, each resized as the task's config does. The engine treats them all alike."""
    task = prepared.task
    row = prepared.rows[prepared.row_of[example_id]]
    if task.frames is not None:
        shown = video.decode_frames(row[task.image_column], task.frames)
    else:
        shown = [data.decode_image(row[column]) for column in task.image_columns]
    resized = [data.resize(image, resolution, task.resize) for image in shown]
    if task.image_transform is not None:  # after the resize, as big_vision's draw_bbox
        resized = [task.image_transform(image, row) for image in resized]
    return resized


def current_predictions(prepared: Prepared, out: Path, key: str) -> dict[str, dict]:
    return load_predictions(out, prepared.task, key, input_fingerprints(prepared, prepared.ids))


def score(prepared: Prepared, records: dict[str, dict], options: RunOptions) -> dict[str, Any]:
    """Score predictions (from this run or elsewhere) with the task's parser and scorer.

    An example that failed (image unreadable, generation error) or has no prediction is scored
    as an empty answer, i.e. wrong: a missing prediction can never raise a score. Only rows
    without a reference (malformed data) cannot be scored; `coverage` says how many were."""
    task = prepared.task
    failed = dict(prepared.failed)
    failed.update({i: r["error"] for i, r in records.items() if "error" in r and i not in failed})
    missing = [i for i in prepared.ids if i not in records and i not in failed]
    for example_id in missing:
        failed[example_id] = "no prediction"
    units = [i for i in prepared.ids if i in prepared.targets]
    predictions = [task.parser("" if i in failed else str(records[i].get("prediction") or ""))
                   for i in units]
    targets = [prepared.targets[i] for i in units]
    with progress(1, f"score {task.name}", "task") as bar:
        scores = task.scorer(units, predictions, targets) if units else None
        bar.update(1)
    result = task_result(task, prepared.provenance, [i for i in units if i not in failed], scores,
                         failed, options.resamples, options.seed)
    # Scored as big_vision scores them, but never silently: prompts cut to the task's text
    # length (tolen) and outputs that stopped at max_new_tokens without an end token.
    result.update({f"n_{flag}": sum(1 for i in units if records.get(i, {}).get(flag))
                   for flag in ("prompt_truncated", "output_truncated")})
    return result


def run_task(model: PaliGemmaModel, task: Task, options: RunOptions,
             prepared: Prepared | None = None) -> dict[str, Any] | None:
    """Generate (resuming) and, on rank 0 of a complete set of shards, score one task."""
    prepared = prepared or prepare(task, options.data_dir, options.limit)
    throughput = generate(model, prepared, options)
    options.barrier()
    if options.rank != 0:
        return None
    records = current_predictions(prepared, options.out, throughput["key"])
    compact_predictions(options.out, task, records, prepared.ids)
    if task.submission is not None:  # test-server split: no references to score against
        result = submission_result(task, prepared, records, options.out)
    else:
        result = score(prepared, records, options)
    result.update(decoding=decoding(task, options), **inputs_record(task), throughput=throughput)
    return result


def submission_result(task: Task, prepared: Prepared, records: dict[str, dict],
                      out: Path) -> dict[str, Any]:
    rows = [{"id": i, "prediction": task.parser(str(records[i].get("prediction") or ""))}
            for i in prepared.ids if i in records and "prediction" in records[i]]
    path = out / "submissions" / f"{task.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(formats.dumps(task.submission(rows), formats.SUBMISSION, path, indent=1))
    failed = {i: r.get("error", "no prediction") for i in prepared.ids
              for r in [records.get(i, {})] if "prediction" not in r}
    return {"dataset": prepared.provenance, "prompt": task.prompt, "metrics": {},
            "submission": str(path.relative_to(out)), "n_examples": len(prepared.ids),
            "failed": [{"id": i, "reason": why} for i, why in failed.items()]}
