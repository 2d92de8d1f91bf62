"""`paligemma-eval export RUN --model-index FILE [--eval-results DIR]`: results where the hub
reads them.

--model-index writes the Hugging Face model card's `model-index` metadata for the run's scored
tasks, built with huggingface_hub's own card types (`ModelCardData`, `EvalResult`), so a
fine-tuner can paste it into the card's YAML header: per metric the task type, the dataset (hub
id, config, split, the revision the run resolved), the metric (type, value exactly as
results.json holds it, name with the scoring rule) and, with --source-url, the source. Nothing
is marked verified: these are self-reported numbers.

--eval-results writes the hub's newer `.eval_results/<task>.yaml` entries (huggingface_hub's
`EvalResultEntry`). Those attach a score to a *registered benchmark* dataset, whose own
eval.yaml names its task ids; the register is an allow-list kept by the hub, and none of the
hub copies this harness loads (lmms-lab/*, HuggingFaceM4/FairFace, ...) is known to be on it,
so no task maps onto one by default: each entry is named with --benchmark
TASK=DATASET_ID:TASK_ID[:METRIC] by someone who has checked the benchmark's eval.yaml.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from paligemma_eval.harness import formats
from paligemma_eval.harness.errors import UsageError, first_few
from paligemma_eval.reports.published import subset_of_split

# Hugging Face task types (the hub's pipeline tags) per task group
TASK_TYPES = {"vqa": "visual-question-answering", "anls": "visual-question-answering",
              "pope": "visual-question-answering", "pope_lenient": "visual-question-answering",
              "captioning": "image-to-text", "refcoco_segment": "image-segmentation",
              "refcoco_raw": "image-segmentation", "refcoco_detect": "object-detection"}
DEFAULT_TASK_TYPE = "image-text-to-text"


# Metrics that are fractions of examples (or of a unit's score in 0..1): a value outside 0..1 is
# not one of ours. CIDEr, error rates and lengths are not bounded above, so they are not listed.
FRACTION_METRIC = re.compile(r"^(\w*accuracy|anls|precision|recall|f1|det_\w+|miou|box_acc@[\d.]+"
                             r"|\w*_match|yes_ratio|valid_share|unparsable_share)(/|$)")


def _read_results(run: Path, model_name: str | None) -> dict[str, Any]:
    """results.json through the reader every verb uses (harness/formats.py: schema, version,
    no NaN), then what a model card needs of it: a model name and, per exported value, a
    dataset and a plausible number. Any problem is one line naming the file (exit 2)."""
    path = run / "results.json" if run.is_dir() else run
    document = formats.read_results(path)
    if not model_name and not (document.get("model") or {}).get("id"):
        raise UsageError(f"{path}: names no model (no model.id), so the card would name none; "
                         f"give --model-name")
    for name, result in document["tasks"].items():
        wrong = _unexportable(result)
        if wrong:
            raise UsageError(f"{path}: tasks.{formats.clipped(name, 40)}: {wrong}")
    return document


def _unexportable(result: dict[str, Any]) -> str | None:
    """Why a task's values cannot go into a model card, or None."""
    values = {m: e["value"] for m, e in result["metrics"].items() if e["value"] is not None}
    if not values:
        return None
    dataset = result.get("dataset")
    if not isinstance(dataset, dict) or not dataset.get("hub_id") or not dataset.get("split"):
        return "records no dataset (hub_id and split), which each exported entry names"
    for metric, value in values.items():
        if value < 0 or (value > 1 and FRACTION_METRIC.match(metric)):
            return f"{formats.clipped(metric, 40)} is {value}, not a fraction in 0..1 " \
                   f"(results.json holds fractions: 0.83 for 83%)"
    return None


def _task_type(name: str) -> str:
    from paligemma_eval.harness import registry

    task = registry.all_tasks().get(name)
    groups = task.groups if task else ()
    return next((TASK_TYPES[g] for g in groups if g in TASK_TYPES), DEFAULT_TASK_TYPE)


def _version() -> str:
    from paligemma_eval.harness.results import harness_version

    return harness_version()["version"] or "unknown"


def eval_results(document: dict[str, Any], source_url: str | None) -> list[Any]:
    """One huggingface_hub EvalResult per (task, metric) with a value, for every task that ran on
    its whole split: a card entry names the split, so the number of a --limit subset, or of a
    local file short of the hub copy's split, is left out."""
    from huggingface_hub import EvalResult

    source = {"source_name": f"paligemma-eval {_version()} (self-reported)",
              "source_url": source_url} if source_url else {}
    found, cut = [], []
    for name, result in document["tasks"].items():
        dataset = result.get("dataset") or {}
        if subset_of_split(dataset) is not None:
            cut.append(name)
            continue
        rule = f" ({result['rule']})" if result.get("rule") else ""
        for metric, entry in (result.get("metrics") or {}).items():
            if not isinstance(entry, dict) or entry.get("value") is None:
                continue
            found.append(EvalResult(
                task_type=_task_type(name), task_name=name,
                dataset_type=dataset.get("hub_id") or name, dataset_name=dataset.get("hub_id")
                or name, dataset_config=dataset.get("config"), dataset_split=dataset.get("split"),
                dataset_revision=dataset.get("resolved_revision") or dataset.get("revision"),
                # the task's rule says how its headline is computed, not its other metrics
                metric_type=metric, metric_value=entry["value"],
                metric_name=f"{metric}{rule if metric == result.get('headline') else ''}",
                **source))
    if cut:
        print(f"export: left out, run on part of their split (--limit, a partial local file), "
              f"not the split an entry names: {first_few(cut, 5)}", file=sys.stderr)
    return found


def model_index(document: dict[str, Any], model_name: str | None,
                source_url: str | None) -> str:
    """The card metadata as YAML (the part between a model card's `---` lines)."""
    from huggingface_hub import ModelCardData

    results = eval_results(document, source_url)
    if not results:
        raise UsageError("the run has no metric values to export (of a whole split)")
    name = model_name or (document.get("model") or {}).get("id") or "model"
    return ModelCardData(model_name=name, eval_results=results).to_yaml().rstrip("\n") + "\n"


def benchmark_entries(document: dict[str, Any], benchmarks: list[str],
                      source_url: str | None) -> dict[str, list[dict[str, Any]]]:
    """{file stem: .eval_results YAML list} for each --benchmark TASK=DATASET:TASK_ID[:METRIC]."""
    from huggingface_hub import EvalResultEntry, eval_result_entries_to_yaml

    files: dict[str, list[dict[str, Any]]] = {}
    for spec in benchmarks:
        task, _, target = spec.partition("=")
        parts = target.split(":")
        if not task or len(parts) not in (2, 3) or not all(parts):
            raise UsageError(f"--benchmark {spec!r}: expected TASK=DATASET_ID:TASK_ID[:METRIC]")
        result = document["tasks"].get(task)
        if result is None:
            raise UsageError(f"--benchmark {spec!r}: task {task!r} is not in the run")
        metric = parts[2] if len(parts) == 3 else result.get("headline")
        entry = (result.get("metrics") or {}).get(metric) or {}
        if entry.get("value") is None:
            raise UsageError(f"--benchmark {spec!r}: {task} has no value for metric {metric!r}")
        dataset = result.get("dataset") or {}
        if (subset := subset_of_split(dataset)) is not None:
            raise UsageError(f"--benchmark {spec!r}: {task} ran on part of its split ({subset})")
        files.setdefault(task, []).extend(eval_result_entries_to_yaml([EvalResultEntry(
            dataset_id=parts[0], task_id=parts[1], value=entry["value"],
            dataset_revision=dataset.get("resolved_revision") or dataset.get("revision"),
            date=document.get("created"),
            notes=f"paligemma-eval {_version()}, {task}: {metric}"
                  + (f" ({result['rule']})" if result.get("rule") else "") + "; self-reported",
            **({"source_url": source_url, "source_name": "paligemma-eval"} if source_url
               else {}))]))
    return files


def cmd_export(args: argparse.Namespace) -> int:
    import yaml

    if not args.model_index and not args.eval_results:
        raise UsageError("export: say what to write: --model-index FILE and/or "
                         "--eval-results DIR")
    if args.eval_results and not args.benchmark:
        raise UsageError("--eval-results: name each registered benchmark entry with --benchmark "
                         "TASK=DATASET_ID:TASK_ID[:METRIC] (no task of this harness maps onto a "
                         "registered hub benchmark by default: docs/browser.md)")
    if args.benchmark and not args.eval_results:
        raise UsageError("--benchmark names entries of --eval-results DIR; give that too")
    if args.model_index and str(args.model_index) != "-":
        formats.refuse_overwriting(args.model_index, "--model-index", [args.run])
    document = _read_results(args.run, args.model_name)
    # every --benchmark is checked before anything is written
    entries = benchmark_entries(document, args.benchmark, args.source_url) \
        if args.eval_results else {}
    if args.model_index:
        text = model_index(document, args.model_name, args.source_url)
        if str(args.model_index) == "-":
            sys.stdout.write(text)
        else:
            args.model_index.parent.mkdir(parents=True, exist_ok=True)   # as `report` does
            args.model_index.write_text(text, encoding="utf-8")
            print(f"model-index: {args.model_index} ({text.count('- type:')} metrics)")
    if args.eval_results:
        folder = args.eval_results
        folder.mkdir(parents=True, exist_ok=True)
        for stem, listed in entries.items():
            path = folder / f"{stem}.yaml"
            path.write_text(yaml.safe_dump(listed, sort_keys=False), encoding="utf-8")
            print(f"eval results: {path}")
    return 0


def add_commands(commands: Any) -> None:
    export = commands.add_parser("export", help="write a run's results as Hugging Face model-card "
                                                "metadata (model-index, .eval_results)")
    export.add_argument("run", type=Path, help="run directory (or its results.json)")
    export.add_argument("--model-index", type=Path, metavar="FILE",
                        help="write the model card's model-index YAML here ('-': stdout)")
    export.add_argument("--eval-results", type=Path, metavar="DIR",
                        help="write .eval_results/*.yaml entries here (with --benchmark)")
    export.add_argument("--benchmark", action="append", default=[],
                        metavar="TASK=DATASET_ID:TASK_ID[:METRIC]",
                        help="a registered hub benchmark this task's number belongs to "
                             "(repeat; default metric: the task's headline)")
    export.add_argument("--model-name", help="model name in the card (default: the run's model)")
    export.add_argument("--source-url", help="where the results can be seen (a CI run, a "
                                             "report); recorded as the results' source")
    export.set_defaults(func=cmd_export)
