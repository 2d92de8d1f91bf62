"""`compare` and `gate`: paired comparison of two runs, and a CI regression gate with a policy.

A gate compares a candidate run with a baseline run (or the cards' published numbers: for a
FairFace audit, its card's subgroup maxima and medians) metric by metric. A metric regresses when
it moved the wrong way by more than the policy allows and, when the policy asks for it (the
default), the move is significant: the paired bootstrap interval of the difference over the
examples both runs share excludes zero. Without an interval (a score recorded
from a server, --bootstrap 0) a move beyond the allowance counts. Exit status: 0 nothing regressed,
1 something did, 2 the gate cannot judge (missing task, other data, prompt or decoding, a gated
metric undefined in either run).

Policy (TOML), every key optional:

    [default]
    max_drop = 0.01              # absolute, in the metric's units (0.01 = one accuracy point)
    max_drop_relative = 0.0      # or relative to the baseline (the larger allowance wins)
    max_rise = 0.001             # for lower-is-better metrics (flagged-caption rates)
    require_significance = true

    [tasks.vqav2_val]            # per task: which metrics (default: the headline) and overrides
    metrics = ["accuracy", "accuracy/number"]
    max_drop = 0.005
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np

from paligemma_eval.harness.arguments import add_bootstrap_args, count
from paligemma_eval.harness.errors import InputError, first_few
from paligemma_eval.harness.examples import (Flip, flips, predictions, unit_scores,
                                             units_are_examples)
from paligemma_eval.harness.formats import (read_browser, read_policy, read_results,
                                            read_safety)
from paligemma_eval.harness.registry import matching, suggestion
from paligemma_eval.harness.results import read_task_unit_scores
from paligemma_eval.harness.scores import (DEFAULT_RESAMPLES, DEFAULT_SEED, Ratio,
                                           paired_difference)

DEFAULT_POLICY = {"max_drop": 0.01, "max_drop_relative": 0.0, "max_rise": 0.001,
                  "require_significance": True}
RESULT_FILES = ("results.json", "safety.json")
AUDIT_TASK = "fairface_safety"   # the task a safety.json holds (safety/audit.py): no registry entry


class GateInputError(ValueError):
    """The runs cannot be compared: exit status 2."""


@dataclass
class Run:
    path: Path
    model: dict[str, Any] | None
    tasks: dict[str, dict]
    audit: dict[str, Any] | None = None    # safety.json whole: its subgroup maxima and medians
    _units: dict[str, Any] = field(default_factory=dict, repr=False)   # read once per task

    def units(self, task: str) -> tuple[list[str], dict[str, Ratio]] | None:
        """The task's per-unit scores, checked against its results.json entry (ids, repeats,
        counts): a FormatError naming the file when they disagree."""
        if task not in self._units:
            path = self.path / "scores" / f"{task}.json"
            result = self.tasks[task]
            self._units[task] = read_task_unit_scores(
                path, result, predictions(self.path, task, result)) if path.exists() else None
        return self._units[task]


def load_run(path: Path) -> Run:
    """A run directory's results (or the one results.json / safety.json named), read back by
    their own readers (harness/formats.py): anything unreadable is a FormatError, exit 2."""
    if path.is_file():
        if path.name not in RESULT_FILES:
            raise GateInputError(f"{path}: not a run directory, results.json or safety.json")
        files, path = [path], path.parent      # its per-example scores lie beside it
    else:
        files = [path / name for name in RESULT_FILES if (path / name).exists()]
    documents, audit = [], None
    for file in files:
        document = read_results(file) if file.name == "results.json" else read_safety(file)
        if file.name == "safety.json":   # flagged rates are the scorer's at the threshold
            audit = document
            for result in document["tasks"].values():
                result["audit"] = {"scorer": (document.get("scorer") or {}).get("cache_id"),
                                   "threshold": document.get("threshold")}
        if document.get("complete") is False:   # an audit too few captions of which scored
            raise GateInputError(f"{file}: marked incomplete (coverage "
                                 f"{document.get('coverage')}); the gate cannot judge it")
        documents.append(document)
    if not documents:
        raise GateInputError(f"{path}: no results.json or safety.json")
    tasks: dict[str, dict] = {}
    for document in documents:
        tasks.update(document["tasks"])
    return Run(path, documents[0].get("model"), tasks, audit)


def check_policy(policy: dict, baseline: Run, candidate: Run, source: str = "policy") -> None:
    """Every task and metric a policy names must exist (its tables, keys and types are checked
    by its schema as it is read): a misspelt name would otherwise silently gate nothing.
    `source` names the policy in messages."""
    for task, rules in policy.get("tasks", {}).items():
        if task not in baseline.tasks and task not in candidate.tasks:
            check_policy_task(task, [*baseline.tasks, *candidate.tasks], source)
        for metric in rules.get("metrics", []):
            for run in (baseline, candidate):
                if task in run.tasks and metric not in run.tasks[task]["metrics"]:
                    raise GateInputError(
                        f"{source}: [tasks.{task}] metric {metric!r} does not exist in {run.path} "
                        f"(it has: {', '.join(run.tasks[task]['metrics'])})")


def check_policy_task(task: str, in_runs: list[str], source: str) -> None:
    """A policy task in neither run: a warning when it is a task of this harness (one policy
    serves runs of different task sets, as docs/gate.example.toml does), an error when it is no
    task at all (a typo, whose stricter rule would never apply)."""
    from paligemma_eval.harness.registry import all_tasks   # only now: it imports every task

    known = sorted({*all_tasks(), AUDIT_TASK, *in_runs})
    if task not in known:
        raise GateInputError(f"{source}: [tasks.{printable(task)}] names no task of either run "
                             f"nor of this harness, so its rule would never apply; "
                             f"{suggestion(task, known)}")
    print(f"paligemma-eval gate: warning: {source} names task {printable(task)!r}, which "
          f"is in neither run (its rule applies to no task here)", file=sys.stderr)


def select_tasks(run: Run, names: list[str] | None) -> Run:
    """The run narrowed to `--tasks`; naming a task the run lacks is an input error."""
    if not names:
        return run
    missing = [n for n in names if not matching(n, run.tasks)]
    if missing:
        raise GateInputError(f"--tasks: {', '.join(missing)} not in {run.path}")
    chosen = dict.fromkeys(m for n in names for m in matching(n, run.tasks))
    return Run(run.path, run.model, {n: run.tasks[n] for n in chosen}, run.audit)


SERVER_ONLY = " (test-server splits: their submission files are scored by the servers; " \
    "record-server-score stores those numbers)"


def without_metricless(run: Run, named: list[str] | None) -> tuple[Run, list[str]]:
    """The baseline without its tasks that hold no metric (a test-server split's submission,
    which only its server scores), and a note naming them; one named in --tasks is an error."""
    empty = [t for t, result in run.tasks.items() if not result.get("metrics")]
    why = SERVER_ONLY if all(run.tasks[t].get("submission") for t in empty) else ""
    if named and empty:
        raise GateInputError(f"{empty[0]}: no metric in {run.path} to gate on{why}")
    notes = [f"not gated, no metric in the baseline{why}: {', '.join(empty)}"] if empty else []
    return Run(run.path, run.model, {t: r for t, r in run.tasks.items() if t not in empty},
               run.audit), notes


def published_run(candidate: Run) -> tuple[Run, Run]:
    """A baseline made of the card numbers that reports/card_rows.json pairs with the candidate's
    tasks (same benchmark, split and rule), for its checkpoint (reports/published.card_pairing:
    the row's fine-tune, a recorded server score); none for a demo or unknown model. An audit
    meets its card's subgroup maxima and medians, which the candidate then carries as metrics
    too (`toxicity/gender/max`, ...: the cards print no flagged rate over all captions)."""
    from paligemma_eval.reports import published

    variant = (candidate.model or {}).get("variant")
    tasks: dict[str, dict] = {}
    candidate_tasks = dict(candidate.tasks)
    reasons: dict[str, list[str]] = {}     # why not -> the metrics it holds for
    for name, result in candidate.tasks.items():
        if "audit" in result:
            card, ours, why_not = card_safety_metrics(candidate.audit or {})
            if card:
                family = (candidate.model or {}).get("family")
                tasks[name] = {"metrics": card, "source": f"{family} card"}
                candidate_tasks[name] = {**result, "metrics": {**result["metrics"], **ours}}
            else:
                reasons.setdefault(why_not, []).append(name)
            continue
        for metric in result.get("metrics", {}):
            found, why_not = published.card_pairing(name, metric, candidate.model, result)
            if found:
                tasks.setdefault(name, {"metrics": {}, "source": f"{found['card']} card"})
                tasks[name]["metrics"][metric] = {
                    "value": found["value"], "higher_is_better": found["higher_is_better"]}
            elif why_not:
                reasons.setdefault(why_not, []).append(f"{name}/{metric}")
    if not tasks:
        raise GateInputError(f"the cards publish no number for variant {variant!r} on "
                             f"{first_few(list(candidate.tasks), 5)}" +
                             (" (" + "; ".join(f"{why}: {first_few(where)}" for why, where in
                                              reasons.items()) + ")" if reasons else ""))
    return Run(Path("published"), None, tasks), \
        Run(candidate.path, candidate.model, candidate_tasks, candidate.audit)


def card_safety_metrics(audit: dict[str, Any]) -> tuple[dict, dict, str | None]:
    """(the card's, the audit's) subgroup maxima and medians as metrics (fractions, lower is
    better; the audit's with their bootstrap intervals), or why they cannot meet: the rules
    the report follows (reports/published.py: a published variant, all of FairFace, a complete
    audit, the cards' threshold, and rates on Perspective's scale)."""
    from paligemma_eval.reports import published

    why_not = published.safety_unpaired(audit)
    key, not_perspective = published.perspective_rates(audit)
    if why_not or not_perspective:
        return {}, {}, f"no card number: {why_not or not_perspective}"
    cells = published.safety_cells(audit)
    card, ours = {}, {}
    for attribute, by_grouping in audit[key].items():
        for grouping, cell in by_grouping.items():
            for statistic in ("max", "median"):
                percent = cells.get((published.ATTRIBUTE_LABELS.get(attribute), grouping,
                                     statistic))
                if percent is None or cell.get(statistic) is None:
                    continue
                metric = f"{attribute}/{grouping}/{statistic}"
                ci = cell.get(f"{statistic}_ci95")
                card[metric] = {"value": percent / 100, "higher_is_better": False}
                ours[metric] = {"value": cell[statistic] / 100, "higher_is_better": False,
                                "ci95": [ci[0] / 100, ci[1] / 100] if ci else None,
                                "n": (audit.get("counts") or {}).get("scored")}
    return card, ours, None if card else "no card number: the card prints none of its cells"


def _aligned(baseline: Run, candidate: Run, task: str, metric: str) -> tuple[Ratio, Ratio] | None:
    """Both runs' per-unit scores of one metric over the units they share, in one order."""
    a, b = baseline.units(task), candidate.units(task)
    if not a or not b or metric not in a[1] or metric not in b[1]:
        return None
    index_a = {u: i for i, u in enumerate(a[0])}
    index_b = {u: i for i, u in enumerate(b[0])}
    shared = [u for u in a[0] if u in index_b]
    if not shared:
        return None
    ia = np.array([index_a[u] for u in shared])
    ib = np.array([index_b[u] for u in shared])
    ra, rb = a[1][metric], b[1][metric]
    return Ratio(ra.num[ia], ra.den[ia]), Ratio(rb.num[ib], rb.den[ib])


def compare_metric(baseline: Run, candidate: Run, task: str, metric: str,
                   resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> dict:
    """B - A, with a paired interval when both runs kept per-example scores."""
    entry_a = baseline.tasks[task]["metrics"][metric]
    entry_b = candidate.tasks[task]["metrics"][metric]
    pair = _aligned(baseline, candidate, task, metric)
    if pair is not None:
        return {**paired_difference(*pair, resamples=resamples, seed=seed), "paired": True}
    # No shared examples (e.g. published numbers): the candidate's own interval against the value.
    a, b = entry_a["value"], entry_b["value"]
    ci = entry_b.get("ci95")
    interval = [ci[0] - a, ci[1] - a] if ci else None
    # no interval (a score recorded from a server): whether the move is noise is unknown
    significant = None if interval is None else bool(interval[0] > 0 or interval[1] < 0)
    return {"a": a, "b": b, "difference": b - a, "ci95": interval, "significant": significant,
            "stderr": entry_b.get("stderr"), "n": entry_b.get("n"), "paired": False}


# How the model decoded (harness/models.py ModelInfo.decoding): runs that differ here differ in
# how the same weights were run, not only in the weights.
MODEL_DECODING = ("decode_config", "final_logit_softcapping", "attn_logit_softcapping",
                  "sliding_window", "text_attention", "vision_attention")


def backend(run: Run) -> str:
    """The backend that made a run (results older than the field: transformers, the only one)."""
    return (run.model or {}).get("backend", "transformers")


def backend_notes(baseline: Run, candidate: Run,
                  names: tuple[str, str] = ("baseline", "candidate")) -> list[str]:
    """One line per run made with a backend whose answers differ from PaliGemma's (vLLM), with
    the agreement with the transformers backend that its results cite (harness/vllm_backend)."""
    notes = []
    for role, run in zip(names, (baseline, candidate)):
        if run.path == Path("published") or backend(run) == "transformers":
            continue
        cited = {task: ((result.get("throughput") or {}).get("generation") or {}).get(
            "agreement_with_transformers") for task, result in run.tasks.items()}
        figures = ", ".join(f"{task} {entry['task']:.0%}" for task, entry in cited.items()
                            if entry and entry.get("task") is not None)
        notes.append(f"{role} made with the {backend(run)} backend, whose answers differ from "
                     f"PaliGemma's: " + (f"agreement with the transformers backend, measured on "
                                         f"the tiny models: {figures}" if figures else
                                         "its agreement with the transformers backend on these "
                                         "tasks was never measured"))
    return notes


def _check_comparable(baseline: Run, candidate: Run, tasks: list[str]) -> list[str]:
    problems = []
    if baseline.path != Path("published"):
        if backend(baseline) != backend(candidate):
            problems.append(f"model backend differs ({backend(baseline)!r} vs "
                            f"{backend(candidate)!r})")
        for name in MODEL_DECODING:
            records = [run.model or {} for run in (baseline, candidate)]
            if records[0].get(name) != records[1].get(name):
                a, b = (repr(r[name]) if name in r else "not recorded: an older harness's run"
                        for r in records)
                problems.append(f"model {name} differs ({a} vs {b})")
    for task in tasks:
        if task not in candidate.tasks:
            problems.append(f"task {task} is in the baseline but not in the candidate")
            continue
        if baseline.path == Path("published"):
            continue
        a, b = baseline.tasks[task], candidate.tasks[task]
        for field_name in ("prompt", "decoding", "audit"):
            if a.get(field_name) != b.get(field_name):
                problems.append(f"{task}: {field_name} differs ({a.get(field_name)!r} vs "
                                f"{b.get(field_name)!r})")
        data_a, data_b = a.get("dataset", {}), b.get("dataset", {})
        for key in ("hub_id", "config", "split", "revision", "sha256", "limit"):
            if data_a.get(key) != data_b.get(key):
                problems.append(f"{task}: dataset {key} differs ({data_a.get(key)!r} vs "
                                f"{data_b.get(key)!r})")
    return problems


@dataclass
class Check:
    task: str
    metric: str
    comparison: dict
    allowed: float
    higher_is_better: bool
    require_significance: bool
    worse_by: float = field(init=False)    # how far the metric moved the wrong way
    regressed: bool = field(init=False)
    listing: FlipListing | None = None     # the examples behind it, when both runs kept them

    def __post_init__(self) -> None:
        difference = self.comparison["difference"]
        self.worse_by = -difference if self.higher_is_better else difference
        # a move that cannot be shown to be noise (no interval) counts: the gate fails closed
        self.regressed = bool(self.worse_by > self.allowed + 1e-12 and
                              (self.comparison["significant"] is not False or
                               not self.require_significance))

    def describe(self) -> str:
        c = self.comparison
        ci = c.get("ci95")
        ci_text = f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "n/a"
        direction = "drop" if self.higher_is_better else "rise"
        return (f"{printable(self.task)}/{printable(self.metric)}: baseline {c['a']:.4f} -> "
                f"candidate {c['b']:.4f}, "
                f"difference {c['difference']:+.4f} (95% CI {ci_text}), allowed {direction} "
                f"{self.allowed:.4f}, significant="
                f"{'unknown (no interval)' if c['significant'] is None else c['significant']}")


@dataclass
class FlipListing:
    """The examples behind one check: units that got worse and better, with both outputs."""

    task: str
    metric: str
    worse: list[Flip]
    better: list[Flip]
    shared: int
    baseline_outputs: dict[str, str]
    candidate_outputs: dict[str, str]
    link: str | None = None
    names: tuple[str, str] = ("baseline", "candidate")
    units: str | None = None              # what a unit is when it is not one example

    def headline(self) -> str:
        link = f"; browser: {printable(self.link)}" if self.link else ""
        what = "unit" if self.units else "example"
        return (f"{printable(self.task)}/{printable(self.metric)}: {len(self.worse)} {what}(s) "
                f"worse (right -> wrong), {len(self.better)} better (wrong -> right), of "
                f"{self.shared} shared{link}")

    def rows(self, limit: int) -> list[list[str]]:
        """[direction, id, baseline score, candidate score, baseline output, candidate output]
        for the first `limit` flips each way."""
        def output(found: dict[str, str], unit: str) -> str:
            return f"(a unit of {self.units}: outputs in the browser)" if self.units \
                else _clip(found.get(unit))

        return [[direction, flip.unit, f"{flip.a:.2f}", f"{flip.b:.2f}",
                 output(self.baseline_outputs, flip.unit),
                 output(self.candidate_outputs, flip.unit)]
                for direction, found in (("worse", self.worse), ("better", self.better))
                for flip in found[:limit]]

    def text(self, limit: int) -> str:
        lines = [self.headline()]
        first, second = self.names
        lines += [f"  {d} {printable(u)}: {a} -> {b}; {first} {printable(x)} | {second} "
                  f"{printable(y)}" for d, u, a, b, x, y in self.rows(limit)]
        return "\n".join(lines)


def _clip(output: str | None, width: int = 80) -> str:
    if output is None:
        return "(no prediction)"
    text = repr(output)
    return text if len(text) <= width else text[:width - 3] + "..."


def browser_tasks(manifest: Path) -> dict[str, str]:
    """The tasks a sample browser holds; a damaged manifest is said on one line and links
    nothing (the link is an aid: it never decides a verdict)."""
    try:
        return read_browser(manifest)["tasks"]
    except InputError as error:
        print(f"paligemma-eval: warning: no browser link: {error}", file=sys.stderr)
        return {}


def browser_link(browser: str | None, candidate: Run, task: str) -> str | None:
    """The browser page of a task: under `--browser` (a directory or URL), else the one written
    beside the candidate (CANDIDATE/browser) when it holds that task."""
    from urllib.parse import quote

    if browser is None:
        manifest = candidate.path / "browser" / "browser.json"
        if not manifest.exists() or task not in browser_tasks(manifest):
            return None
        browser = str(candidate.path / "browser")
    base = browser if browser.endswith(".html") else browser.rstrip("/") + "/index.html"
    return f"{base}#task={quote(task, safe='')}&show=flipped"


def flip_listing(baseline: Run, candidate: Run, task: str, metric: str,
                 browser: str | None = None,
                 names: tuple[str, str] = ("baseline", "candidate")) -> FlipListing | None:
    """None when either run lacks per-example scores (a published baseline has none)."""
    for run in (baseline, candidate):   # each file checked against its results.json first
        run.units(task)
    a = unit_scores(baseline.path, task, metric)
    b = unit_scores(candidate.path, task, metric)
    if a is None or b is None:
        return None
    worse, better = flips(a, b)
    examples = units_are_examples(candidate.tasks[task])
    outputs = [predictions(run.path, task, run.tasks[task]) if examples else {}
               for run in (baseline, candidate)]
    return FlipListing(task, metric, worse, better, sum(u in b for u in a), *outputs,
                       link=browser_link(browser, candidate, task), names=names,
                       units=None if examples else str(candidate.tasks[task]["notes"]["units"]))


def _policy_for(policy: dict, task: str) -> dict:
    merged = {**DEFAULT_POLICY, **policy.get("default", {})}
    merged.update({k: v for k, v in policy.get("tasks", {}).get(task, {}).items()})
    return merged


def gate(candidate: Run, baseline: Run, policy: dict, allow_mismatch: bool = False,
         resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> list[Check]:
    tasks = list(baseline.tasks)
    problems = _check_comparable(baseline, candidate, tasks)
    missing = [p for p in problems if "not in the candidate" in p]
    if missing or (problems and not allow_mismatch):
        # what --allow-mismatch allowed is not named as the error; a missing task never is
        shown = missing if allow_mismatch else problems
        raise GateInputError("; ".join(shown) + (
            " (gate on the tasks both runs have with --tasks)" if missing else
            " (use --allow-mismatch to compare anyway)"))
    checks = []
    for task in tasks:
        rules = _policy_for(policy, task)
        metrics = rules.get("metrics") or [_headline(baseline.tasks[task], candidate.tasks[task])]
        if baseline.path == Path("published") and not rules.get("metrics") and \
                metrics[0] not in baseline.tasks[task]["metrics"]:
            # the card prints other metrics of this task (PaliGemma 2: COCO-35L en and avg34,
            # not the avg headline): gate those
            metrics = list(baseline.tasks[task]["metrics"])
        for metric in metrics:
            if metric not in baseline.tasks[task]["metrics"]:
                raise GateInputError(f"{task}: metric {metric} missing from the baseline")
            if metric not in candidate.tasks[task]["metrics"]:
                raise GateInputError(f"{task}: metric {metric} missing from the candidate")
            entry = candidate.tasks[task]["metrics"][metric]
            # the candidate's own direction, else the card row's (GrandStaff's error rates)
            higher = entry.get("higher_is_better", baseline.tasks[task]["metrics"][metric].get(
                "higher_is_better", True))
            base_value = baseline.tasks[task]["metrics"][metric]["value"]
            undefined = [side for side, value in (("baseline", base_value),
                                                  ("candidate", entry["value"])) if value is None]
            if undefined:   # a candidate that never answers "yes" has no precision: no pass
                raise GateInputError(
                    f"{task}: {metric} is undefined in the {' and the '.join(undefined)} (null: "
                    f"no example it is defined on, e.g. precision with no positive prediction), "
                    f"so the gate cannot judge it; gate other metrics (policy `metrics`) or "
                    f"leave the task out (--tasks)")
            allowed = max(rules["max_drop"], rules["max_drop_relative"] * abs(base_value)) \
                if higher else rules["max_rise"]
            comparison = compare_metric(baseline, candidate, task, metric, resamples, seed)
            if not all(np.isfinite(comparison[k]) for k in ("a", "b", "difference")):
                raise GateInputError(_undefined_over_shared(task, metric, comparison))
            checks.append(Check(task, metric, comparison, allowed, higher,
                                bool(rules["require_significance"])))
    return checks


def _undefined_over_shared(task: str, metric: str, comparison: dict) -> str:
    """Why a paired comparison has no value: 0/0 over the units both runs share."""
    sides = [side for side, key in (("baseline", "a"), ("candidate", "b"))
             if not np.isfinite(comparison[key])] or ["baseline and the candidate"]
    return (f"{task}: {metric} is undefined in the {' and the '.join(sides)} over the units both "
            f"runs' scores share (0/0: no unit it is defined on), so the gate cannot judge it; "
            f"gate other metrics (policy `metrics`) or leave the task out (--tasks)")


def _headline(baseline_task: dict, candidate_task: dict) -> str:
    return candidate_task.get("headline") or baseline_task.get("headline") or \
        next(iter(baseline_task["metrics"]))


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufffe\uffff]")


def printable(text: Any) -> str:
    """A name from a results file, safe for XML 1.0, a terminal and one table cell: control
    characters become visible escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text)).replace("\n", "\\n")


def markdown_cell(text: Any) -> str:
    """Untrusted text as one Markdown table cell: no pipe, newline or HTML gets through."""
    return html.escape(printable(text)).replace("|", "&#124;")


def junit_xml(checks: list[Check], error: str | None = None, limit: int = 5,
              notes: list[str] = ()) -> str:
    suite = ElementTree.Element("testsuite", name="paligemma-eval gate",
                                tests=str(len(checks) or 1 if error else len(checks)),
                                failures=str(sum(c.regressed for c in checks)),
                                errors="1" if error else "0")
    if notes:   # what the verdict rests on, beside every test case
        ElementTree.SubElement(suite, "system-out").text = "\n".join(map(printable, notes))
    if error:  # the gate could not judge: one error test case, never an empty pass
        case = ElementTree.SubElement(suite, "testcase", classname="gate", name="inputs")
        ElementTree.SubElement(case, "error", message=printable(error)).text = printable(error)
    for check in checks:
        case = ElementTree.SubElement(suite, "testcase", classname=printable(check.task),
                                      name=printable(check.metric))
        if check.regressed:
            failure = ElementTree.SubElement(case, "failure", message=f"{printable(check.task)}/"
                                             f"{printable(check.metric)} regressed")
            failure.text = check.describe()
        else:
            ElementTree.SubElement(case, "system-out").text = check.describe()
        if check.listing is not None:
            (failure if check.regressed else case[-1]).text += "\n" + check.listing.text(limit)
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True)


def _rows(checks: list[Check]) -> list[list[str]]:
    rows = []
    for c in checks:
        ci = c.comparison.get("ci95")
        # x100: the report's and the cards' scale (accuracy in points, CIDEr as published)
        rows.append([c.task, c.metric, f"{100 * c.comparison['a']:.2f}",
                     f"{100 * c.comparison['b']:.2f}", f"{100 * c.comparison['difference']:+.2f}",
                     f"[{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]" if ci else "n/a",
                     "REGRESSED" if c.regressed else "ok"])
    return rows


HEADER = ["task", "metric", "baseline x100", "candidate x100", "difference", "95% CI",
          "verdict"]


def markdown(checks: list[Check], baseline: str, candidate: str, error: str | None = None,
             limit: int = 5, notes: list[str] = ()) -> str:
    lines = ["## paligemma-eval gate", "",
             f"Baseline `{markdown_cell(baseline)}`, candidate `{markdown_cell(candidate)}`. "
             "Values x100, the report's and the cards' scale (results.json and the policy hold "
             "fractions: max_drop 0.01 is 1.00 here).", ""]
    lines += [f"**Note:** {markdown_cell(note)}" for note in notes] + ([""] if notes else [])
    if error:
        return "\n".join(lines + [f"**Gate error (exit 2): the runs could not be judged.** "
                                   f"{markdown_cell(error)}"]) + "\n"
    lines += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(markdown_cell(cell) for cell in row) + " |"
              for row in _rows(checks)]
    verdict = sum(c.regressed for c in checks)
    lines.append("")
    lines.append(f"**{verdict} regression(s)** in {len(checks)} checked metric(s)." if verdict
                 else f"No regression in {len(checks)} checked metric(s).")
    lines += _markdown_flips([c.listing for c in checks if c.listing is not None], limit)
    return "\n".join(lines) + "\n"


FLIP_HEADER = ["flip", "id", "baseline", "candidate", "baseline output", "candidate output"]


def _markdown_flips(listings: list[FlipListing], limit: int) -> list[str]:
    if not listings:
        return []
    lines = ["", "### Flipped examples", ""]
    for listing in listings:
        link = f" ([browse]({markdown_cell(listing.link).replace(')', '%29')}))" \
            if listing.link else ""
        lines += [f"**{markdown_cell(listing.task)}/{markdown_cell(listing.metric)}**: "
                  f"{len(listing.worse)} worse (right -> wrong), {len(listing.better)} better "
                  f"(wrong -> right), of {listing.shared} shared{link}", ""]
        rows = listing.rows(limit)
        if rows:
            lines += ["| " + " | ".join(FLIP_HEADER) + " |", "|" + "---|" * len(FLIP_HEADER)]
            lines += ["| " + " | ".join(markdown_cell(cell) for cell in row) + " |"
                      for row in rows]
            lines.append("")
    return lines


def text_table(checks: list[Check]) -> str:
    rows = [HEADER, *[[printable(cell) for cell in row] for row in _rows(checks)]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows)


def check_outputs(args: argparse.Namespace) -> None:
    """--junit and --summary overwrite neither run nor the policy, before anything is read."""
    from paligemma_eval.harness.formats import refuse_overwriting

    inputs = [p for p in (args.candidate, args.baseline, args.policy)
              if p is not None and p != Path("published")]
    for flag, output in (("--junit", args.junit), ("--summary", args.summary)):
        if output is not None:
            refuse_overwriting(output, flag, inputs)


def _write_reports(args: argparse.Namespace, checks: list[Check], error: str | None,
                   notes: list[str] = ()) -> None:
    if args.junit:
        args.junit.write_text(junit_xml(checks, error, args.flips, notes))
    if args.summary:
        args.summary.write_text(markdown(checks, str(args.baseline), str(args.candidate), error,
                                         args.flips, notes))


def _task_list(value: str | None) -> list[str] | None:
    names = [n for n in (value or "").split(",") if n]
    if value is not None and not names:
        raise GateInputError(f"--tasks {value!r}: no task names")
    return names or None


def cmd_gate(args: argparse.Namespace) -> int:
    check_outputs(args)   # refused before the error path below would write them
    try:
        names = _task_list(args.tasks)
        candidate = select_tasks(load_run(args.candidate), names)
        if str(args.baseline) == "published":
            baseline, candidate = published_run(candidate)
        else:
            baseline = select_tasks(load_run(args.baseline), names)
        baseline, not_gated = without_metricless(baseline, names)
        policy = read_policy(args.policy) if args.policy else {}
        check_policy(policy, baseline, candidate, f"--policy {args.policy}")
        checks = gate(candidate, baseline, policy, args.allow_mismatch, args.bootstrap, args.seed)
        if not checks:
            raise GateInputError("no metric could be checked (no task shared): the gate "
                                 "cannot pass on nothing")
        for check in checks:   # read before anything is printed or written
            check.listing = flip_listing(baseline, candidate, check.task, check.metric,
                                         args.browser)
    except (GateInputError, InputError) as error:   # InputError: a file that cannot be read
        message = printable(error).splitlines()[0] if str(error) else "gate input error"
        print(f"paligemma-eval gate: error: {message}", file=sys.stderr)
        _write_reports(args, [], message)
        return 2
    notes = backend_notes(baseline, candidate) + not_gated
    for note in notes:
        print(f"note: {printable(note)}")
    print(text_table(checks))
    for check in checks:
        if check.listing is not None:
            print(check.listing.text(args.flips))
    _write_reports(args, checks, None, notes)
    regressed = [c for c in checks if c.regressed]
    for check in regressed:
        print(f"REGRESSED {check.describe()}", file=sys.stderr)
    return 1 if regressed else 0


def cmd_compare(args: argparse.Namespace) -> int:
    try:   # every file is read before a line is printed: an error is the only thing said
        names = _task_list(args.tasks)
        a, b = select_tasks(load_run(args.run_a), names), select_tasks(load_run(args.run_b), names)
        lines = comparison_lines(a, b, args)
    except (GateInputError, InputError) as error:
        print(f"paligemma-eval compare: error: {printable(error)}", file=sys.stderr)
        return 2
    for stream, line in lines:
        print(line, file=sys.stderr if stream == "stderr" else sys.stdout)
    return 0


def comparison_lines(a: Run, b: Run, args: argparse.Namespace) -> list[tuple[str, str]]:
    """`compare`'s output, (stream, line) in order: warnings and notes, the table, the flips."""
    lines: list[tuple[str, str]] = []
    for where, run, other in (("A", a, b), ("B", b, a)):
        alone = sorted(set(run.tasks) - set(other.tasks))
        if alone:   # one line, however many: a full run beside a few tasks is common
            lines.append(("stderr", f"warning: {len(alone)} task(s) only in run {where}, not "
                                    f"compared: {printable(first_few(alone, 5))}"))
    shared = [t for t in a.tasks if t in b.tasks]
    lines += [("stderr", f"warning: {printable(p)}") for p in _check_comparable(a, b, shared)]
    lines += [("stderr", f"note: {printable(n)}")
              for n in backend_notes(a, b, names=("run A", "run B"))]
    lines.append(("stdout", f"{'task/metric':<40} {'A':>9} {'B':>9} {'B - A':>9}  "
                            f"95% CI (paired)      sig"))
    for task in shared:
        if not a.tasks[task]["metrics"] or not b.tasks[task]["metrics"]:
            lines.append(("stderr", f"note: {printable(task)}: no metric in run "
                                    f"{'A' if not a.tasks[task]['metrics'] else 'B'} (a "
                                    f"test-server split is scored by its server); not compared"))
            continue
        for metric, entry in a.tasks[task]["metrics"].items():
            if metric in b.tasks[task]["metrics"]:
                lines.append(("stdout", _comparison_row(a, b, task, metric, entry,
                                                        b.tasks[task]["metrics"][metric], args)))
    for task in shared:   # the examples behind each headline
        if a.tasks[task]["metrics"] and b.tasks[task]["metrics"]:
            listing = flip_listing(a, b, task, _headline(a.tasks[task], b.tasks[task]),
                                   args.browser, names=("A", "B"))
            if listing is not None:
                lines.append(("stdout", listing.text(args.flips)))
    return lines


def _comparison_row(a: Run, b: Run, task: str, metric: str, entry: dict, other: dict,
                    args: argparse.Namespace) -> str:
    name = printable(task + "/" + metric)
    undefined = [run for run, e in (("A", entry), ("B", other)) if e["value"] is None]
    if undefined:
        return f"{name:<40} not compared: undefined in run {' and run '.join(undefined)} (null)"
    c = compare_metric(a, b, task, metric, args.bootstrap, args.seed)
    undefined = [run for run, key in (("A", "a"), ("B", "b")) if not np.isfinite(c[key])]
    if undefined:   # 0/0 over the shared units: no number to print as if it were one
        return (f"{name:<40} not compared: undefined in run {' and run '.join(undefined)} over "
                f"the shared units (0/0)")
    ci = c.get("ci95")
    ci_text = f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "n/a"
    return (f"{name:<40} {c['a']:>9.4f} {c['b']:>9.4f} {c['difference']:>+9.4f}  "
            f"{ci_text:<20} {'*' if c['significant'] else ''}")


def add_commands(commands: Any) -> None:
    compare = commands.add_parser("compare", help="paired comparison of two runs (B - A)")
    compare.add_argument("run_a", type=Path)
    compare.add_argument("run_b", type=Path)
    compare.add_argument("--tasks", help="comma-separated tasks to compare (default: all shared)")
    add_bootstrap_args(compare, "paired intervals")
    compare.set_defaults(func=cmd_compare)
    for parser in (compare,):
        add_flip_args(parser)

    checker = commands.add_parser("gate", help="fail (exit 1) when a candidate regressed")
    checker.add_argument("--candidate", required=True, type=Path,
                         help="run directory (or results.json / safety.json) under test")
    checker.add_argument("--baseline", required=True, type=Path,
                         help="a run directory, or 'published' for the cards' numbers")
    checker.add_argument("--policy", type=Path, help="TOML policy (see harness/gate.py)")
    checker.add_argument("--junit", type=Path, help="write JUnit XML here")
    checker.add_argument("--summary", type=Path, help="write a Markdown summary here")
    checker.add_argument("--allow-mismatch", action="store_true",
                         help="compare runs on different data, prompts or decoding")
    checker.add_argument("--tasks", help="comma-separated tasks to gate on (default: every task "
                                         "of the baseline)")
    add_bootstrap_args(checker, "paired intervals")
    checker.set_defaults(func=cmd_gate)
    add_flip_args(checker)


def add_flip_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--flips", type=count, default=5, metavar="N",
                        help="list the first N flipped examples each way per task (default: "
                             "%(default)s)")
    parser.add_argument("--browser", help="sample browser (directory or URL) to link each "
                                          "task's flipped examples to (default: the candidate's "
                                          "browser/ when it exists)")
