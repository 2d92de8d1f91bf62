"""The task registry: a task is dataset + prompt + decoding + scorer, as a small declarative record.

Tasks register through the entry-point group `paligemma_eval.tasks`: each entry point names a
module (imported for its `register` calls) or a callable returning Task records. The built-in
`paligemma_eval.tasks` package is one such entry point (loaded first), so this module imports no
task code and third parties extend the registry exactly as the built-ins do.
"""

from __future__ import annotations

import difflib
import fnmatch
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paligemma_eval.harness.scores import Scores

if TYPE_CHECKING:
    from PIL.Image import Image

ENTRY_POINT_GROUP = "paligemma_eval.tasks"

Row = Mapping[str, Any]
SPLIT_COLUMN = "source_split"   # the usual `split_column`: the split a row was read from


@dataclass(frozen=True)
class DatasetSource:
    """Where a task's examples come from: a hub dataset, or the same schema in local files."""

    hub_id: str
    split: str
    config: str | None = None
    revision: str | None = None
    # Other hub ids holding the same data (one harness moved lmms-lab/* to lmms-lab-encoder/*).
    aliases: tuple[str, ...] = ()
    # No hub copy: the benchmark's own files under --data-dir/<hub_id>/, turned into rows by
    # this function, which also returns the files it read (hashed into the provenance).
    reader: Callable[[Path, str], tuple[list[dict], list[Path]]] | None = None
    # No hub copy, but local files in the usual --data-dir layout (credentialed or unpublished
    # data: MIMIC-CXR, RSVQA, MSR-VTT...): without --data-dir, one line saying so.
    local_only: bool = False

    # `split` names several splits joined by "+" (the datasets library's split syntax): each is
    # read on its own and its rows get the split's name in this column (xGQA: a split per
    # language), so the examples keep which part they came from.
    split_column: str | None = None
    # A second dataset's rows nested into each row (GQA keeps questions and images apart).
    nested: Nested | None = None

    def describe(self) -> str:
        config = f" [{self.config}]" if self.config else ""
        local = " (local files only)" if self.reader or self.local_only else ""
        splits = self.split.split("+")
        split = f"{len(splits)} splits, {splits[0]} .. {splits[-1]}" if len(splits) > 1 \
            else self.split
        nested = f" with {self.nested.source.describe()} nested by {self.nested.key}" \
            if self.nested else ""
        return f"{self.hub_id}{config}{local} / {split}{nested}"


@dataclass(frozen=True)
class Nested:
    """Rows of `source` nested into each row of the outer dataset: those whose column `key`
    equals the outer row's column `on`, as a list of {column: value} over `columns`, in column
    `into`. Each outer row (an image) is then decoded and hashed once for all its questions,
    which `Task.expand` flattens. A nested row without an outer row is an error."""

    source: DatasetSource
    key: str
    on: str
    into: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Frames:
    """How a video cell becomes the example's images: `count` frames, `stride` frames apart from
    the first (big_vision's deterministic eval sampling), the clip looped when it is too short
    (`video_replicate_img`)."""

    count: int = 16
    stride: int = 1


def as_generated(text: str) -> str:
    """The default parser: the decoded output as it is. big_vision's evaluators strip nothing
    (CARD_TASKS.md 0.2: cut at EOS, detokenised, compared), so neither does the engine; a rule
    that normalises (the official VQA script, ANLS) does it in its own metric."""
    return text


@dataclass(frozen=True)
class Task:
    """One benchmark task. `prompt` is a str.format template over the dataset row's columns."""

    name: str
    source: DatasetSource
    prompt: str
    target: Callable[[Row], Any]          # row -> JSON-serialisable reference for the scorer
    # (example ids, parsed predictions, targets) -> Scores; None for submission-only splits
    scorer: Callable[[list[str], list[str], list[Any]], Scores] | None
    columns: tuple[str, ...]              # required columns, checked before any generation
    id_column: str | None                 # None: examples are keyed by row position
    image_column: str = "image"
    parser: Callable[[str], str] = as_generated
    max_new_tokens: int = 32
    num_beams: int = 1
    description: str = ""
    groups: tuple[str, ...] = ()
    metric: str = ""                      # headline metric
    # How the headline is computed, in words: "big_vision vqa evaluator", "official VQA", ...
    # Which card rows a task may sit beside is data: reports/card_rows.json.
    rule: str = ""
    # Image resize before the processor: "bilinear-antialias" (big_vision's resize(res,
    # antialias=True)), "bilinear" (no antialias), or "processor" (the processor's own).
    resize: str = "processor"
    # Test-server-only splits: `run` writes this official submission file instead of a score.
    submission: Callable[[list[dict]], Any] | None = None
    # Several examples per dataset row (e.g. one per referring expression): row -> rows.
    expand: Callable[[Row], Iterable[Row]] | None = None
    image_size: bool = False              # give target() the row's (height, width) as image_size
    preflight: Callable[[], None] | None = None  # checks run before any model loads (raise)
    # Further images of the same example, after image_column (NLVR2's right image): each goes
    # through the vision tower and the image tokens are concatenated (big_vision's stack_images).
    extra_image_columns: tuple[str, ...] = ()
    frames: Frames | None = None          # image_column holds a video: sampled into frames
    # big_vision's tolen(text_len): `<bos> prompt \n` cut to this many tokens (the "\n" too).
    max_prompt_tokens: int | None = None
    # Prompt fields computed from the row (an option list joined), merged over its columns.
    prompt_fields: Callable[[Row], Mapping[str, Any]] | None = None
    # Applied to the image after the resize, with its dataset row (Widget Captioning draws the
    # target widget's box, big_vision's draw_bbox). Whatever of the row it reads must also be
    # in the target, so that an edit changes the example's resume key.
    image_transform: Callable[[Image, Row], Image] | None = None
    # The split is a subset of the hub copy's rows, chosen by id (VQAv2 minival: TFDS's order):
    # the id column's values -> (indices of the rows kept, a record of the rule for provenance).
    select_rows: Callable[[list[Any]], tuple[list[int], dict[str, Any]]] | None = None
    # Why each example scored what it did, for the sample browser: (parsed predictions, targets)
    # -> one dict per example, in order: "references" (list of str), "why" (list of str), and
    # where the task localises, "boxes" ([{"role", "xywh"}] in image pixels), "polygons" and
    # "mask" (bool array, image size); "unit" when the scoring unit is not the example (MMVP's
    # pairs). None: the browser shows the score alone.
    explain: Callable[[list[str], list[Any]], Iterable[dict[str, Any]]] | None = None

    @property
    def image_columns(self) -> tuple[str, ...]:
        """Every column holding the example's visual input, in the order the model sees it."""
        return (self.image_column, *self.extra_image_columns)

    def format_prompt(self, row: Row) -> str:
        return self.prompt.format_map({**row, **self.prompt_fields(row)} if self.prompt_fields
                                      else row)

    @property
    def headline(self) -> str:
        return self.metric


def text_len(tokens: int) -> dict[str, int]:
    """big_vision's `text_len` of an eval config, as Task fields: it is both the decode length
    (`max_decode_len`) and the cut of `<bos> prompt \n` (`tolen(text_len)`) in every PaliGemma
    transfer config, so a task that follows one sets the two together (CARD_TASKS.md 0.1)."""
    return {"max_new_tokens": tokens, "max_prompt_tokens": tokens}


_TASKS: dict[str, Task] = {}
_ORIGIN: dict[str, str] = {}          # task name -> the entry point that registered it
_BROKEN: dict[str, str] = {}          # entry point -> why it could not be loaded
_loaded = False
BUILTIN_PREFIX = "paligemma_eval."    # entry points of this package: loaded first, win clashes


class PluginError(ValueError):
    """A plugin's tasks cannot be used (it failed to import, or its names clash)."""


def register_task(task: Task, origin: str = "built-in") -> Task:
    if task.name in _TASKS and _TASKS[task.name] != task:
        raise PluginError(f"task {task.name!r} from {origin} clashes with the task of that name "
                          f"from {_ORIGIN.get(task.name, 'built-in')}; refused")
    _TASKS[task.name] = task
    _ORIGIN[task.name] = origin
    return task


def register(factory: Callable[[], Task | Iterable[Task]]) -> Callable[[], Task | Iterable[Task]]:
    """Decorator: register the Task (or Tasks) that `factory` returns."""
    made = factory()
    for task in [made] if isinstance(made, Task) else made:
        register_task(task, origin=factory.__module__)
    return factory


def _load_entry(entry: Any) -> None:
    loaded = entry.load()  # a module registers on import; a callable returns tasks
    if callable(loaded):
        made = loaded()
        tasks = [made] if isinstance(made, Task) else list(made or [])
        origin = f"plugin {entry.name} ({entry.value})"
        for task in tasks:  # all of a plugin's tasks or none
            if task.name in _TASKS and _TASKS[task.name] != task:
                register_task(task, origin)  # raises, naming both
        for task in tasks:
            register_task(task, origin)


def _load_plugins() -> None:
    """Load every entry point of the group, each on its own: a plugin that fails to import costs
    one warning line and its own tasks, never the built-in ones or the CLI."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    entries = sorted(entry_points(group=ENTRY_POINT_GROUP),
                     key=lambda e: (not e.value.startswith(BUILTIN_PREFIX), e.name))
    for entry in entries:
        try:
            _load_entry(entry)
        except Exception as error:  # any failure of third-party code is that plugin's alone
            reason = f"{type(error).__name__}: {error}".splitlines()[0]
            _BROKEN[f"{entry.name} ({entry.value})"] = reason
            print(f"paligemma-eval: warning: plugin {entry.name} ({entry.value}) not loaded: "
                  f"{reason}", file=sys.stderr)


def broken_plugins() -> dict[str, str]:
    """Entry points that could not be loaded, with the reason."""
    _load_plugins()
    return dict(_BROKEN)


def is_builtin(name: str) -> bool:
    """Whether this package's own task families registered the task (not a plugin)."""
    all_tasks()
    return _ORIGIN.get(name, "").startswith(BUILTIN_PREFIX)


def all_tasks() -> dict[str, Task]:
    _load_plugins()
    return dict(sorted(_TASKS.items()))


def groups() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for task in all_tasks().values():
        for group in task.groups:
            found.setdefault(group, []).append(task.name)
    return found


class UnknownTaskError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def suggestion(name: str, known: list[str],
               listing: str = "`paligemma-eval tasks` lists the tasks and groups") -> str:
    """The names closest to a misspelt one (case aside), and where the whole list is."""
    lowered = {k.lower(): k for k in known}
    close = [lowered[c] for c in difflib.get_close_matches(name.lower(), lowered, n=3,
                                                           cutoff=0.6)]
    return (f"did you mean {' or '.join(map(repr, close))}? " if close else "") + listing


def is_pattern(name: str) -> bool:
    return any(c in name for c in "*?[")


def matching(name: str, names: Iterable[str]) -> list[str]:
    """The names a task name selects: itself, or those it matches as a shell-style pattern
    ("refcoco*_raw"), in their order."""
    names = list(names)
    if name in names:
        return [name]
    return fnmatch.filter(names, name) if is_pattern(name) else []


def resolve(names: Iterable[str]) -> list[Task]:
    """Task records for names, group names, shell-style patterns ("refcoco*_raw", as lm-eval
    takes them) or "all", in the order given, without repeats."""
    tasks, known_groups = all_tasks(), groups()
    chosen: list[Task] = []
    for name in names:
        if name == "all":
            members = list(tasks)
        elif name in tasks:
            members = [name]
        elif name in known_groups:
            members = known_groups[name]
        else:
            members = matching(name, tasks)
        if not members:
            broken = "; ".join(f"plugin {plugin} is broken ({why})"
                               for plugin, why in broken_plugins().items())
            raise UnknownTaskError(("no task matches " if is_pattern(name) else "unknown task ") +
                                   repr(name) + (f" ({broken})" if broken else "") +
                                   f"; {suggestion(name, [*tasks, *known_groups, 'all'])}")
        chosen.extend(tasks[m] for m in members if tasks[m] not in chosen)
    return chosen
