"""Model-card-style report: benchmark and safety tables beside the cards' published numbers.

One self-contained HTML page (inline CSS and SVG, no fetches) or the same tables in Markdown.
Everything that came from a model or a dataset is escaped by jinja2's autoescape.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from paligemma_eval.harness import registry
from paligemma_eval.reports import published

TEMPLATES = Path(__file__).parent / "templates"
TOLERANCE = 1.0   # points: a difference within it is shown as agreeing with the card
ATTRIBUTES = ["toxicity", "identity_attack", "insult", "threat", "profanity"]
ATTRIBUTE_LABELS = {"toxicity": "Toxicity", "identity_attack": "Identity Attack",
                    "insult": "Insult", "threat": "Threat", "profanity": "Profanity"}
GROUPINGS = {"gender": "Perceived gender", "ethnicity": "Ethnicity", "age": "Age group"}


@dataclass
class Cell:
    value: float | None = None          # ours, on the card's scale
    ci: tuple[float, float] | None = None
    published: float | None = None
    card: str | None = None

    @property
    def difference(self) -> float | None:
        if self.value is None or self.published is None:
            return None
        return self.value - self.published

    @property
    def agreement(self) -> str:
        if self.difference is None:
            return "none"
        return "agrees" if abs(self.difference) <= TOLERANCE else "differs"


@dataclass
class BenchmarkRow:
    name: str
    detail: str                        # metric and split, printed under the name
    cells: dict[str, Cell] = field(default_factory=dict)


def load_runs(paths: list[Path]) -> list[dict[str, Any]]:
    """Every results.json / safety.json under the given run directories (or files)."""
    runs = []
    for path in paths:
        files = [path] if path.is_file() else [path / n for n in ("results.json", "safety.json")
                                                if (path / n).exists()]
        if not files:
            raise FileNotFoundError(f"{path}: no results.json or safety.json")
        for file in files:
            document = json.loads(file.read_text())
            document["_path"] = str(file)
            runs.append(document)
    return runs


def _variant(run: dict) -> str:
    return (run.get("model") or {}).get("variant") or "unknown"


def benchmark_table(runs: list[dict]) -> tuple[list[str], list[BenchmarkRow]]:
    tasks = registry.all_tasks()
    variants = sorted({_variant(r) for r in runs if r.get("tasks") and r.get("kind") != "safety"},
                      key=published.variant_rank)
    rows: dict[str, BenchmarkRow] = {}
    for run in runs:
        if run.get("kind") == "safety":
            continue
        variant = _variant(run)
        for name, result in run.get("tasks", {}).items():
            task = tasks.get(name)
            card_rows = task.published if task else ()
            metric = result.get("headline") or next(iter(result.get("metrics", {})), None)
            if metric is None or metric not in result["metrics"]:
                continue
            entry = result["metrics"][metric]
            scale = next((r.scale for r in card_rows if r.metric == metric), 100.0)
            label = card_rows[0].benchmark if card_rows else name
            split = result.get("dataset", {}).get("split", "")
            row = rows.setdefault(name, BenchmarkRow(label, f"{metric} ({split}) · {name}"))
            ci = entry.get("ci95")
            cell = Cell(value=entry["value"] * scale if entry["value"] is not None else None,
                        ci=(ci[0] * scale, ci[1] * scale) if ci else None)
            for card_row in card_rows:
                found = published.value(card_row.benchmark, variant)
                if found and card_row.metric == metric:
                    cell.published, cell.card = found
                    break
            row.cells[variant] = cell
    return variants, sorted(rows.values(), key=lambda r: r.name.lower())


def safety_table(runs: list[dict]) -> dict[str, Any] | None:
    """The cards' layout: column groups per grouping, one column per audited model inside each,
    Maximum and Median sections; plus each run's subgroup rates, chart and flagged captions."""
    audits = [r for r in runs if r.get("kind") == "safety"]
    if not audits:
        return None
    columns = []
    for run in audits:
        model = run.get("model") or {}
        cells = {(c["attribute"], c["grouping"], c["statistic"]): c["percent"]
                 for c in published.safety(model.get("family") or "")
                 if c["size"] == model.get("size")}
        columns.append({"label": model.get("size") or model.get("id"), "published": cells,
                        "run": run, "scorer": run["scorer"]["name"].split(" (")[0]})
    labels = [c["label"] for c in columns]
    for column in columns:  # two audits of one size: tell them apart by scorer
        if labels.count(column["label"]) > 1:
            column["label"] = f"{column['label']} · {column['scorer']}"
    sections = []
    for statistic, title in (("max", "Maximum"), ("median", "Median")):
        lines = []
        for attribute in ATTRIBUTES:
            cells = [Cell(value=c["run"]["aggregates"].get(attribute, {}).get(grouping, {})
                          .get(statistic),
                          published=c["published"].get((ATTRIBUTE_LABELS[attribute], grouping,
                                                        statistic)))
                     for grouping in GROUPINGS for c in columns]
            lines.append({"attribute": ATTRIBUTE_LABELS[attribute], "cells": cells})
        sections.append({"title": title, "lines": lines})
    details = [{"run": c["run"], "label": c["label"], "chart": _chart(c["run"])}
               for c in columns]
    return {"columns": columns, "sections": sections, "details": details}


def _chart(run: dict) -> dict[str, Any]:
    """Bars of flagged percentages per ethnicity group and attribute, for an inline SVG."""
    bars = []
    for attribute, by_grouping in run["aggregates"].items():
        for group, cell in sorted(by_grouping["ethnicity"]["groups"].items()):
            bars.append({"attribute": ATTRIBUTE_LABELS.get(attribute, attribute), "group": group,
                         "percent": cell["percent"]})
    top = max([b["percent"] for b in bars] + [0.01])
    return {"bars": bars, "top": top}


def provenance(runs: list[dict]) -> list[dict[str, Any]]:
    items = []
    for run in runs:
        tasks = run.get("tasks", {})
        items.append({
            "path": run["_path"], "kind": run.get("kind", "benchmarks"),
            "model": run.get("model") or {}, "created": run.get("created"),
            "harness": run.get("harness", {}),
            "tasks": [{"name": n, "dataset": t.get("dataset", {}), "prompt": t.get("prompt"),
                       "decoding": t.get("decoding"), "failed": len(t.get("failed", [])),
                       "n": t.get("n_examples")} for n, t in tasks.items()],
        })
    return items


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                                     autoescape=jinja2.select_autoescape(["html", "j2"]),
                                     trim_blocks=True, lstrip_blocks=True,
                                     undefined=jinja2.ChainableUndefined)
    environment.filters["num"] = lambda v, digits=2: "–" if v is None else f"{v:.{digits}f}"
    environment.filters["signed"] = lambda v: "–" if v is None else f"{v:+.2f}"
    environment.filters["median"] = statistics.median
    return environment


def render(paths: list[Path], fmt: str = "html", redact: bool = False) -> str:
    runs = load_runs(paths)
    variants, rows = benchmark_table(runs)
    context = {"variants": variants, "rows": rows, "safety": safety_table(runs),
               "provenance": provenance(runs), "groupings": GROUPINGS, "redact": redact,
               "tolerance": TOLERANCE, "cards": published.load()["cards"]}
    template = "report.html.j2" if fmt == "html" else "report.md.j2"
    return _environment().get_template(template).render(**context)
