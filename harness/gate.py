"""`compare` and `gate`: paired comparison of two runs, and a CI regression gate with a policy.

A gate compares a candidate run with a baseline run (or the cards' published numbers) metric by
metric. A metric regresses when it moved the wrong way by more than the policy allows and, when
the policy asks for it (the default), the move is significant: the paired bootstrap interval of
the difference over the examples both runs share excludes zero. Exit status: 0 nothing regressed,
1 something did, 2 the runs cannot be compared (missing task, other data, prompt or decoding).

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
import json
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np

from paligemma_eval.harness.results import read_unit_scores
from paligemma_eval.harness.scores import DEFAULT_RESAMPLES, DEFAULT_SEED, Ratio, paired_difference

DEFAULT_POLICY = {"max_drop": 0.01, "max_drop_relative": 0.0, "max_rise": 0.001,
                  "require_significance": True}
RESULT_FILES = ("results.json", "safety.json")


class GateInputError(ValueError):
    """The runs cannot be compared: exit status 2."""


@dataclass
class Run:
    path: Path
    model: dict[str, Any] | None
    tasks: dict[str, dict]

    def units(self, task: str) -> tuple[list[str], dict[str, Ratio]] | None:
        path = self.path / "scores" / f"{task}.json"
        return read_unit_scores(path) if path.exists() else None


def load_run(path: Path) -> Run:
    documents = [json.loads((path / name).read_text()) for name in RESULT_FILES
                 if (path / name).exists()]
    if not documents:
        raise GateInputError(f"{path}: no results.json or safety.json")
    tasks: dict[str, dict] = {}
    for document in documents:
        tasks.update(document.get("tasks", {}))
    return Run(path, documents[0].get("model"), tasks)


def published_run(candidate: Run) -> Run:
    """A baseline made of the card numbers that reports/card_rows.json pairs with the candidate's
    tasks (same benchmark, split and rule), for its variant; none for a demo or unknown model."""
    from paligemma_eval.reports import published

    variant = (candidate.model or {}).get("variant")
    tasks = {}
    for name, result in candidate.tasks.items():
        for metric in result.get("metrics", {}):
            found = published.card_value(name, metric, candidate.model)
            if found:
                tasks.setdefault(name, {"metrics": {}, "source": f"{found['card']} card"})
                tasks[name]["metrics"][metric] = {"value": found["value"]}
    if not tasks:
        raise GateInputError(f"the cards publish no number for variant {variant!r} on "
                             f"{', '.join(candidate.tasks)}")
    return Run(Path("published"), None, tasks)


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
    significant = bool(interval and (interval[0] > 0 or interval[1] < 0))
    return {"a": a, "b": b, "difference": b - a, "ci95": interval, "significant": significant,
            "stderr": entry_b.get("stderr"), "n": entry_b.get("n"), "paired": False}


def _check_comparable(baseline: Run, candidate: Run, tasks: list[str]) -> list[str]:
    problems = []
    for task in tasks:
        if task not in candidate.tasks:
            problems.append(f"task {task} is in the baseline but not in the candidate")
            continue
        if baseline.path == Path("published"):
            continue
        a, b = baseline.tasks[task], candidate.tasks[task]
        for field_name in ("prompt", "decoding"):
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

    def __post_init__(self) -> None:
        difference = self.comparison["difference"]
        self.worse_by = -difference if self.higher_is_better else difference
        self.regressed = bool(self.worse_by > self.allowed + 1e-12 and
                              (self.comparison["significant"] or not self.require_significance))

    def describe(self) -> str:
        c = self.comparison
        ci = c.get("ci95")
        ci_text = f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "n/a"
        direction = "drop" if self.higher_is_better else "rise"
        return (f"{self.task}/{self.metric}: baseline {c['a']:.4f} -> candidate {c['b']:.4f}, "
                f"difference {c['difference']:+.4f} (95% CI {ci_text}), allowed {direction} "
                f"{self.allowed:.4f}, significant={c['significant']}")


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
        raise GateInputError("; ".join(problems) + ("" if missing else
                                                    " (use --allow-mismatch to compare anyway)"))
    checks = []
    for task in tasks:
        rules = _policy_for(policy, task)
        metrics = rules.get("metrics") or [_headline(baseline.tasks[task], candidate.tasks[task])]
        for metric in metrics:
            if metric not in baseline.tasks[task]["metrics"]:
                continue
            if metric not in candidate.tasks[task]["metrics"]:
                raise GateInputError(f"{task}: metric {metric} missing from the candidate")
            entry = candidate.tasks[task]["metrics"][metric]
            higher = entry.get("higher_is_better", True)
            base_value = baseline.tasks[task]["metrics"][metric]["value"]
            if base_value is None or entry["value"] is None:
                continue  # undefined in one run (e.g. precision with no positive prediction)
            allowed = max(rules["max_drop"], rules["max_drop_relative"] * abs(base_value)) \
                if higher else rules["max_rise"]
            comparison = compare_metric(baseline, candidate, task, metric, resamples, seed)
            checks.append(Check(task, metric, comparison, allowed, higher,
                                bool(rules["require_significance"])))
    return checks


def _headline(baseline_task: dict, candidate_task: dict) -> str:
    return candidate_task.get("headline") or baseline_task.get("headline") or \
        next(iter(baseline_task["metrics"]))


def junit_xml(checks: list[Check]) -> str:
    suite = ElementTree.Element("testsuite", name="paligemma-eval gate", tests=str(len(checks)),
                                failures=str(sum(c.regressed for c in checks)))
    for check in checks:
        case = ElementTree.SubElement(suite, "testcase", classname=check.task, name=check.metric)
        if check.regressed:
            failure = ElementTree.SubElement(case, "failure", message=f"{check.task}/"
                                             f"{check.metric} regressed")
            failure.text = check.describe()
        else:
            ElementTree.SubElement(case, "system-out").text = check.describe()
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True)


def _rows(checks: list[Check]) -> list[list[str]]:
    rows = []
    for c in checks:
        ci = c.comparison.get("ci95")
        rows.append([c.task, c.metric, f"{c.comparison['a']:.4f}", f"{c.comparison['b']:.4f}",
                     f"{c.comparison['difference']:+.4f}",
                     f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "n/a",
                     "REGRESSED" if c.regressed else "ok"])
    return rows


HEADER = ["task", "metric", "baseline", "candidate", "difference", "95% CI", "verdict"]


def markdown(checks: list[Check]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(checks)]
    verdict = sum(c.regressed for c in checks)
    lines.append("")
    lines.append(f"**{verdict} regression(s)** in {len(checks)} checked metric(s)." if verdict
                 else f"No regression in {len(checks)} checked metric(s).")
    return "\n".join(lines) + "\n"


def text_table(checks: list[Check]) -> str:
    rows = [HEADER, *_rows(checks)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows)


def cmd_gate(args: argparse.Namespace) -> int:
    try:
        candidate = load_run(args.candidate)
        baseline = published_run(candidate) if str(args.baseline) == "published" \
            else load_run(args.baseline)
        policy = tomllib.loads(args.policy.read_text()) if args.policy else {}
        checks = gate(candidate, baseline, policy, args.allow_mismatch, args.bootstrap, args.seed)
    except (GateInputError, OSError, tomllib.TOMLDecodeError) as error:
        print(f"paligemma-eval gate: error: {error}", file=sys.stderr)
        return 2
    print(text_table(checks))
    if args.junit:
        args.junit.write_text(junit_xml(checks))
    if args.summary:
        args.summary.write_text(markdown(checks))
    regressed = [c for c in checks if c.regressed]
    for check in regressed:
        print(f"REGRESSED {check.describe()}", file=sys.stderr)
    return 1 if regressed else 0


def cmd_compare(args: argparse.Namespace) -> int:
    try:
        a, b = load_run(args.run_a), load_run(args.run_b)
    except GateInputError as error:
        print(f"paligemma-eval compare: error: {error}", file=sys.stderr)
        return 2
    print(f"{'task/metric':<40} {'A':>9} {'B':>9} {'B - A':>9}  95% CI (paired)      sig")
    for task in a.tasks:
        if task not in b.tasks:
            continue
        for metric, entry in a.tasks[task]["metrics"].items():
            other = b.tasks[task]["metrics"].get(metric)
            if other is None or entry["value"] is None or other["value"] is None:
                continue
            c = compare_metric(a, b, task, metric, args.bootstrap, args.seed)
            ci = c.get("ci95")
            ci_text = f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "n/a"
            print(f"{task + '/' + metric:<40} {c['a']:>9.4f} {c['b']:>9.4f} "
                  f"{c['difference']:>+9.4f}  {ci_text:<20} {'*' if c['significant'] else ''}")
    return 0


def add_commands(commands: Any) -> None:
    compare = commands.add_parser("compare", help="paired comparison of two runs (B - A)")
    compare.add_argument("run_a", type=Path)
    compare.add_argument("run_b", type=Path)
    compare.add_argument("--bootstrap", type=int, default=DEFAULT_RESAMPLES)
    compare.add_argument("--seed", type=int, default=DEFAULT_SEED)
    compare.set_defaults(func=cmd_compare)

    checker = commands.add_parser("gate", help="fail (exit 1) when a candidate regressed")
    checker.add_argument("--candidate", required=True, type=Path)
    checker.add_argument("--baseline", required=True, type=Path,
                         help="a run directory, or 'published' for the cards' numbers")
    checker.add_argument("--policy", type=Path, help="TOML policy (see harness/gate.py)")
    checker.add_argument("--junit", type=Path, help="write JUnit XML here")
    checker.add_argument("--summary", type=Path, help="write a Markdown summary here")
    checker.add_argument("--allow-mismatch", action="store_true",
                         help="compare runs on different data, prompts or decoding")
    checker.add_argument("--bootstrap", type=int, default=DEFAULT_RESAMPLES)
    checker.add_argument("--seed", type=int, default=DEFAULT_SEED)
    checker.set_defaults(func=cmd_gate)
