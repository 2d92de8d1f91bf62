"""Model-card-style report: benchmark and safety tables beside the cards' published numbers.

One self-contained HTML page (inline CSS and SVG, no fetches) or the same tables in Markdown.
Everything that came from a model or a dataset is escaped by jinja2's autoescape.
"""

from __future__ import annotations

import json
import sys
import os
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from paligemma_eval.harness.errors import InputError, UsageError
from paligemma_eval.harness.formats import read_browser, read_run_document
from paligemma_eval.reports import published

TEMPLATES = Path(__file__).parent / "templates"
TOLERANCE = published.AGREES_WITHIN   # points: a difference within it agrees with the card
ATTRIBUTES = ["toxicity", "identity_attack", "insult", "threat", "profanity"]
GROUPINGS = {"gender": "Perceived gender", "ethnicity": "Ethnicity", "age": "Age group"}


@dataclass
class Cell:
    value: float | None = None          # ours, on the card's scale
    ci: tuple[float, float] | None = None
    published: float | None = None
    card: str | None = None
    note: str | None = None             # why no card number, or how the checkpoint was paired
    browse: str | None = None           # link to this task's page of the sample browser
    backend: str | None = None          # set when made by a backend known to differ (vLLM)
    failed: str | None = None           # how many examples failed and were scored as wrong
    tolerance: float = TOLERANCE        # in the card's units (published.tolerance)

    @property
    def difference(self) -> float | None:
        if self.value is None or self.published is None:
            return None
        return self.value - self.published

    @property
    def agreement(self) -> str:
        if self.difference is None:
            return "none"
        return "agrees" if abs(self.difference) <= self.tolerance else "differs"


@dataclass
class BenchmarkRow:
    name: str
    detail: str                        # metric and split, printed under the name
    cells: dict[str, Cell] = field(default_factory=dict)


def load_runs(paths: list[Path]) -> list[dict[str, Any]]:
    """Every results.json / safety.json under the given run directories (or files)."""
    runs, read = [], {}
    for path in paths:
        files = [path] if path.is_file() else [path / n for n in ("results.json", "safety.json")
                                                if (path / n).exists()]
        if not files:
            raise FileNotFoundError(f"{path}: no results.json or safety.json")
        for file in files:
            if file.resolve() in read:   # drawn twice, it would look like two runs that agree
                raise UsageError(f"{path}: {file} is already in the report (from "
                                 f"{read[file.resolve()]})")
            read[file.resolve()] = path
            document = read_run_document(file)
            document["_path"] = str(file)
            document["_dir"] = str(path)
            runs.append(document)
    return runs


def run_labels(runs: list[dict], labels: list[str] | None = None) -> None:
    """Give every run directory its own column label: `--label` in order, else variant + the
    run directory's name, made unique."""
    directories: list[str] = []
    for run in runs:
        if run["_dir"] not in directories:
            directories.append(run["_dir"])
    if labels and len(labels) > len(directories):   # a column would be named for another run
        raise UsageError(f"--label given {len(labels)} times for {len(directories)} run "
                         f"director{'y' if len(directories) == 1 else 'ies'}")
    seen: dict[str, int] = {}
    names = {}
    for index, directory in enumerate(directories):
        if labels and index < len(labels):
            label = labels[index]
        else:
            model = next(r.get("model") or {} for r in runs if r["_dir"] == directory)
            label = f"{model.get('variant') or 'unknown'} · {Path(directory).name}"
        seen[label] = seen.get(label, 0) + 1
        names[directory] = label if seen[label] == 1 else f"{label} ({seen[label]})"
    for run in runs:
        run["_label"] = names[run["_dir"]]


def browser_links(runs: list[dict], output: Path | None) -> None:
    """run["_browse"] = {task: href} for the tasks of a sample browser written beside the run
    (RUN/browser) or beside the report (REPORT_DIR/browser) that holds that run: links
    relative to the report, so the pair travels as one artifact."""
    from urllib.parse import quote

    if output is None:
        return
    base = output.resolve().parent
    for run in runs:
        run["_browse"] = {}
        directory = Path(run["_dir"]).resolve()
        for folder in (directory / "browser", base / "browser"):
            if not (folder / "browser.json").exists():
                continue
            try:
                manifest = read_browser(folder / "browser.json")
            except InputError as error:   # a link is an aid: say so, link nothing
                print(f"paligemma-eval: warning: no browser link: {error}", file=sys.stderr)
                continue
            if str(directory) not in manifest["runs"] and os.path.relpath(
                    directory, folder.resolve()) not in manifest.get("runs_relative", []):
                continue
            # "./" first: a directory named like a URL scheme must stay a relative path
            href = "./" + quote(os.path.relpath(folder / "index.html", base))
            for task in manifest.get("tasks", {}):
                run["_browse"].setdefault(task, f"{href}#task={quote(task, safe='')}")


def benchmark_table(runs: list[dict]) -> tuple[list[str], list[BenchmarkRow]]:
    """One column per run; a card number only beside a result the card-row table pairs it with
    (same benchmark, split and rule) and only for a published PaliGemma variant."""
    benchmark_runs = [r for r in runs if r.get("tasks") and r.get("kind") != "safety"]
    columns = sorted(dict.fromkeys(r["_label"] for r in benchmark_runs),
                     key=lambda label: published.variant_rank(label.split(" · ")[0]))
    rows: dict[tuple[str, str], BenchmarkRow] = {}
    for run in benchmark_runs:
        for name, result in run.get("tasks", {}).items():
            for metric in shown_metrics(name, result):
                if (name, metric) not in rows:
                    rows[name, metric] = benchmark_row(name, result, metric)
                rows[name, metric].cells[run["_label"]] = benchmark_cell(run, name, result,
                                                                         metric)
    # by task; within one, as first seen: the headline, then the card's other rows
    order = sorted(rows, key=lambda key: published.task_order(key[0]))
    return columns, [rows[key] for key in order]


def shown_metrics(name: str, result: dict[str, Any]) -> list[str]:
    """A task's rows in the table: its headline, then each other metric a card has a row for
    (TallyQA's complex split, COCO-35L's English, FinTabNet's S-TEDS, ...)."""
    metrics = result.get("metrics", {})
    headline = result.get("headline") or next(iter(metrics), None)
    named = [e["metric"] for e in published.card_rows().get(name, [])]
    return [m for m in dict.fromkeys([headline, *named]) if m is not None and m in metrics]


def row_label(name: str, result: dict[str, Any], metric: str) -> str:
    """The cards' label for this task and metric (each card's, where they differ); else the
    task's own description (older results: its name)."""
    labels = dict.fromkeys(e["benchmark"] for e in carded(name, metric))
    return " / ".join(labels) or result.get("description") or name


def carded(name: str, metric: str) -> list[dict[str, Any]]:
    """The card rows (reports/card_rows.json) a task's metric may stand beside."""
    return [e for e in published.card_rows().get(name, []) if e["metric"] == metric]


def benchmark_row(name: str, result: dict[str, Any], metric: str) -> BenchmarkRow:
    split = result.get("dataset", {}).get("split", "")
    rule = f" · {result['rule']}" if result.get("rule") else ""
    return BenchmarkRow(row_label(name, result, metric), f"{metric} ({split}) · {name}{rule}" +
                        ("" if carded(name, metric) else
                         " · no card number for this split or rule"))


def benchmark_cell(run: dict, name: str, result: dict[str, Any], metric: str) -> Cell:
    """One run's cell for a task's metric, on the card's scale."""
    entry = result["metrics"][metric]
    card, why_not = published.card_pairing(name, metric, run.get("model"), result)
    entries = carded(name, metric)
    # the card row's scale even where no number is paired: a column of one row in one unit
    scale = card["scale"] if card else published.scale(entries[0]) if entries else \
        published.card_rows_document()["scale"]
    ci = entry.get("ci95")
    cell = Cell(value=entry["value"] * scale if entry["value"] is not None else None,
                ci=(ci[0] * scale, ci[1] * scale) if ci else None)
    flag = published.trained_on(name, run.get("model"))
    if card:
        cell.published, cell.card = card["percent"], card["card"]
        cell.tolerance = card["tolerance"]
        cell.note = card["checkpoint"] + (", evaluation server score recorded by the user"
                                          if card["server"] else "")
        backend = (run.get("model") or {}).get("backend", "transformers")
        cell.backend = None if backend == "transformers" else backend
    elif published.comparable(run.get("model")):   # the banner covers the others
        cell.note = flag or why_not
    cell.browse = run.get("_browse", {}).get(name)
    cell.failed = failed_share(result)
    return cell


def failed_share(result: dict[str, Any]) -> str | None:
    """How many examples failed, when some did ("3 of 1000 failed, scored as wrong"): they count
    as wrong answers, so they pull the number below the model's."""
    total, scored = result.get("n_examples"), result.get("n_scored")
    if not isinstance(total, int) or not isinstance(scored, int) or scored >= total:
        return None
    return f"{total - scored} of {total} failed, scored as wrong"


def safety_table(runs: list[dict]) -> dict[str, Any] | None:
    """The cards' layout: column groups per grouping, one column per audited model inside each,
    Maximum and Median sections; plus each run's subgroup rates, chart and flagged captions."""
    audits = [r for r in runs if r.get("kind") == "safety"]
    if not audits:
        return None
    columns = []
    for run in audits:
        model = run.get("model") or {}
        columns.append({"label": model.get("size") or model.get("id"),
                        "published": published.safety_cells(run),
                        "run": run, "scorer": run["scorer"]["name"].split(" (")[0],
                        "comparable": published.safety_unpaired(run) is None,
                        "subset": published.subset_of_split(run.get("dataset") or {}),
                        "incomplete": published.incomplete_audit(run)})
    # The card's columns are sizes. Two audits of one size (two checkpoints, or two scorers)
    # take their runs' own labels (unique: --label, or variant · directory), and the scorer's
    # name where the scorers differ.
    by_size: dict[str, list[dict]] = {}
    for column in columns:
        by_size.setdefault(column["label"], []).append(column)
    for same in (s for s in by_size.values() if len(s) > 1):
        scorers_differ = len({c["scorer"] for c in same}) > 1
        for column in same:
            column["label"] = column["run"]["_label"] + (
                f" · {column['scorer']}" if scorers_differ else "")
    sections = []
    # Raw rates sit beside the card only when Perspective scored them; rates calibrated onto
    # Perspective's scale sit beside it as estimates, in their own sections (calibrated onto
    # another scorer they estimate that scorer, and stand beside nothing).
    kinds = [("aggregates", "", lambda c: c["run"]["scorer"]["is_perspective"])]
    calibrated = [c for c in columns if c["run"].get("aggregates_calibrated")]
    if calibrated:
        onto_perspective = all(published.calibrated_to_perspective(c["run"])
                               for c in calibrated)
        kinds.append(("aggregates_calibrated", ", calibrated to Perspective's scale" if
                      onto_perspective else ", calibrated to the reference scorer's scale",
                      lambda c: published.calibrated_to_perspective(c["run"])))
    for key, suffix, with_card in kinds:
        for statistic, title in (("max", "Maximum"), ("median", "Median")):
            lines = []
            for attribute in ATTRIBUTES:
                cells = []
                for grouping in GROUPINGS:
                    for c in columns:
                        cell = (c["run"].get(key) or {}).get(attribute, {}).get(grouping, {})
                        card = c["published"].get(
                            (published.ATTRIBUTE_LABELS[attribute], grouping, statistic))
                        ci = cell.get(f"{statistic}_ci95")
                        cells.append(Cell(value=cell.get(statistic), ci=tuple(ci) if ci else None,
                                          published=card if c["comparable"] and with_card(c)
                                          else None))
                lines.append({"attribute": published.ATTRIBUTE_LABELS[attribute], "cells": cells})
            sections.append({"title": title + suffix, "lines": lines})
    details = [{"run": c["run"], "label": c["label"], "chart": _chart(c["run"]),
                "subgroups": _subgroups(c["run"]), "subset": c["subset"],
                "onto_perspective": published.calibrated_to_perspective(c["run"]),
                "other_threshold": c["run"].get("threshold") != published.CARD_THRESHOLD,
                "incomplete": c["incomplete"]} for c in columns]
    # PaliGemma 1's card draws its safety table in another layout than PaliGemma 2's
    families = {(c["run"].get("model") or {}).get("family") for c in columns}
    layout = "paligemma" if families == {"paligemma"} else "paligemma2"
    return {"columns": columns, "sections": sections, "details": details, "layout": layout}


def _subgroups(run: dict) -> dict[str, list[dict[str, Any]]]:
    """Per grouping, one line per subgroup: captions and each attribute's rate with interval."""
    tables = {}
    for grouping in GROUPINGS:
        first = next(iter(run["aggregates"].values()), {}).get(grouping, {}).get("groups", {})
        tables[grouping] = [
            {"group": group, "n": cell["n"],
             "cells": [Cell(value=by[grouping]["groups"][group]["percent"],
                            ci=tuple(by[grouping]["groups"][group].get("ci95") or ()) or None)
                       for by in run["aggregates"].values()]}
            for group, cell in first.items()]
    return tables


def _chart(run: dict) -> dict[str, Any]:
    """Bars of flagged percentages per ethnicity group and attribute, for an inline SVG."""
    bars = []
    for attribute, by_grouping in run["aggregates"].items():
        for group, cell in sorted(by_grouping["ethnicity"]["groups"].items()):
            bars.append({"attribute": published.ATTRIBUTE_LABELS.get(attribute, attribute),
                         "group": group, "percent": cell["percent"]})
    top = max([b["percent"] for b in bars] + [0.01])
    return {"bars": bars, "top": top}


def data_version(dataset: dict[str, Any]) -> str:
    """Which data exactly: a local file's hash, the hub commit loaded, or (a task over several
    splits) where each split's is recorded."""
    if dataset.get("sha256"):
        return f"local sha256 {dataset['sha256']}"
    if dataset.get("splits"):
        return f"{len(dataset['splits'])} splits, each one's hash or commit in results.json"
    if dataset.get("source") == "hub":
        asked = dataset.get("revision") or "main"
        resolved = dataset.get("resolved_revision")
        return f"hub {asked} at commit {resolved}" if resolved else \
            f"hub {asked} (commit not resolved)"
    return dataset.get("source") or "unrecorded"


def provenance(runs: list[dict]) -> list[dict[str, Any]]:
    items = []
    for run in runs:
        tasks = run.get("tasks", {})
        items.append({
            "path": run["_path"], "kind": run.get("kind", "benchmarks"),
            "model": run.get("model") or {}, "created": run.get("created"),
            # pretrained / mix / released or declared fine-tune: which card rows it may meet
            "checkpoint": published.checkpoint_role(run["model"]) if published.comparable(
                run.get("model")) else None,
            "harness": run.get("harness", {}),
            "tasks": [{"name": n, "dataset": t.get("dataset", {}), "prompt": t.get("prompt"),
                       "data": data_version(t.get("dataset") or {}),
                       "decoding": t.get("decoding"), "failed": len(t.get("failed", [])),
                       "n": t.get("n_examples"),
                       "subset": published.subset_of_split(t.get("dataset") or {})}
                      for n, t in tasks.items()],
        })
    return items


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]|#])")


def markdown_text(value: Any) -> str:
    """Untrusted text as one Markdown table-cell-safe line: line breaks become spaces, and
    characters with a meaning in Markdown (`|` above all) are escaped; the template's
    autoescaping turns `<` and `&` into entities, so no raw HTML gets through."""
    if value is None or isinstance(value, jinja2.Undefined):
        return ""
    text = " ".join(str(value).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


# Directional formatting characters (embeddings, overrides, isolates, marks): in a model id or a
# caption they could reorder the rest of a line (a spoofing vector), so every one is shown as
# its code point instead.
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def show_controls(value: Any) -> Any:
    # Markup (a macro's output) was built from values that already passed through here
    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return _BIDI_CONTROLS.sub(lambda m: f"[U+{ord(m.group()):04X}]", value)
    return value


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                                     autoescape=jinja2.select_autoescape(["html", "j2"]),
                                     trim_blocks=True, lstrip_blocks=True,
                                     undefined=jinja2.ChainableUndefined,
                                     finalize=show_controls)
    environment.filters["num"] = lambda v, digits=2: "–" if v is None else f"{v:.{digits}f}"
    environment.filters["signed"] = lambda v: "–" if v is None else f"{v:+.2f}"
    environment.filters["median"] = statistics.median
    environment.filters["md"] = markdown_text
    return environment


def render(paths: list[Path], fmt: str = "html", redact: bool = False,
           labels: list[str] | None = None, output: Path | None = None) -> str:
    runs = load_runs(paths)
    run_labels(runs, labels)
    browser_links(runs, output)
    banner = [r["_label"] for r in runs if not published.comparable(r.get("model"))]
    variants, rows = benchmark_table(runs)
    context = {"variants": variants, "rows": rows, "safety": safety_table(runs),
               "provenance": provenance(runs), "groupings": GROUPINGS, "redact": redact,
               "attribute_labels": published.ATTRIBUTE_LABELS,
               "card_threshold": published.CARD_THRESHOLD,
               "tolerance": TOLERANCE, "cards": published.load()["cards"],
               "not_paligemma": sorted(set(banner))}
    template = "report.html.j2" if fmt == "html" else "report.md.j2"
    return _environment().get_template(template).render(**context)


def _reproduced_cell(line: dict[str, Any], column: str, out: Path) -> dict[str, Any]:
    """One card cell beside ours: the run of the checkpoint measured in this column."""
    from paligemma_eval.reports.reproduce import measured_at

    row, entry = line["row"], line["entry"]
    cell: dict[str, Any] = {"card": row["card"], "table": row["table"],
                            "benchmark": row["benchmark"], "column": column,
                            "card_value": row["values"].get(column),
                            "task": entry and entry["task"], "metric": entry and entry["metric"],
                            "ours": None, "ci95": None, "difference": None,
                            "difference_ci95": None, "run": None, "note": line["reason"],
                            "failed": None}
    if entry is None or line["reason"]:
        return cell
    wanted = measured_at(entry) or column
    for directory in dict.fromkeys(line["checkpoints"]):
        path = out / directory / "results.json"
        try:
            document = json.loads(path.read_text()) if path.is_file() else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            cell.update(run=directory, note=f"{path} is not a readable results file")
            continue
        model = document.get("model") or {}
        if published.comparable(model) and published.card_column(model) != wanted:
            continue    # another size's checkpoint (PaliGemma 2 columns)
        result = (document.get("tasks") or {}).get(entry["task"])
        metric = (result or {}).get("metrics", {}).get(entry["metric"])
        if not metric:
            cell["note"] = "not run yet" if not result else (
                "submission written: record the server's score (record-server-score)"
                if result.get("submission") else f"no {entry['metric']} in the result")
            cell["run"] = directory
            continue
        card, why_not = published.card_pairing(entry["task"], entry["metric"], model, result)
        scale = published.scale(entry)
        value, ci = metric["value"], metric.get("ci95")
        cell.update(run=directory, ours=None if value is None else value * scale,
                    ci95=[ci[0] * scale, ci[1] * scale] if ci else None,
                    failed=failed_share(result))
        flag = published.trained_on(entry["task"], model)
        if card and value is not None:
            cell["difference"] = value * scale - card["percent"]
            cell["agrees"] = abs(cell["difference"]) <= card["tolerance"]
            if ci:
                cell["difference_ci95"] = [ci[0] * scale - card["percent"],
                                           ci[1] * scale - card["percent"]]
            cell["note"] = card["checkpoint"] + (", evaluation server score recorded by the "
                                                 "user" if card["server"] else "")
        else:
            cell["card_shown"] = False
            cell["note"] = flag or why_not or "no card number"
        return cell
    return cell


CARD_INTRO = ("Each cell: the card's number · ours [95% interval] · difference [interval], "
              "green within 1 point (0.01 where the card prints a fraction). "
              "A card number stands beside ours only when our checkpoint is the one the card "
              "measured (a released fine-tune for the row, a fine-tune the user declared, the "
              "mix checkpoint for the mix table, a recorded server score for a test-server row).")


def render_card(plan: Any, out: Path) -> tuple[str, list[dict[str, Any]]]:
    """The card's own table at the plan's resolution, Markdown, our number beside each card
    number with the difference and its interval; plus the same cells as data (card.json)."""
    cells = [_reproduced_cell(line, column, out) for line in plan.rows
             for column in line["columns"]]
    lines = [f"# {_card_title(plan)}", "", CARD_INTRO, ""]
    for table in dict.fromkeys(c["table"] for c in cells):
        mine = [c for c in cells if c["table"] == table]
        columns = list(dict.fromkeys(c["column"] for c in mine))
        lines += [f"## {table}", "", "| Benchmark | " + " | ".join(columns) + " |",
                  "|---|" + "---|" * len(columns)]
        for benchmark in dict.fromkeys(c["benchmark"] for c in mine):
            by_column = {c["column"]: c for c in mine if c["benchmark"] == benchmark}
            texts = [_card_cell_text(by_column[col]) if col in by_column else "–"
                     for col in columns]
            lines.append(f"| {markdown_text(benchmark)} | " + " | ".join(texts) + " |")
        lines.append("")
    mapped = sum(1 for c in cells if c["task"])
    lines.append(f"{mapped} of {len(cells)} cells have a task; the rest carry their reason.")
    return "\n".join(lines) + "\n", cells


def _card_cell_text(cell: dict[str, Any]) -> str:
    # the card's own precision: fractions (SciCap BLEU-4, VSR) keep three decimals
    digits = 3 if cell["card_value"] is not None and abs(cell["card_value"]) < 1 else 2

    def number(value: float | None) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    parts = []
    shown = cell.get("card_shown", True) and cell["card_value"] is not None
    if shown:
        parts.append(f"card {cell['card_value']:g}")
    if cell["ours"] is not None:
        ci = cell["ci95"]
        parts.append(f"**{number(cell['ours'])}**" +
                     (f" [{number(ci[0])}, {number(ci[1])}]" if ci else ""))
    if cell["difference"] is not None:
        ci = cell["difference_ci95"]
        parts.append(f"{cell['difference']:+.2f}" +
                     (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else ""))
    if cell["note"]:
        parts.append(markdown_text(cell["note"]))
    if cell.get("failed"):
        parts.append(cell["failed"])
    return " · ".join(parts) or "–"


CARD_NAMES = {"paligemma": "PaliGemma", "paligemma2": "PaliGemma 2"}


def _card_title(plan: Any) -> str:
    return f"{CARD_NAMES[plan.card]} model card at {plan.resolution} px: reproduction " \
        f"({published.load()['cards'][plan.card]})"


def render_card_html(plan: Any, cells: list[dict[str, Any]]) -> str:
    """The same table as one self-contained HTML page (card.html)."""
    tables = []
    for name in dict.fromkeys(c["table"] for c in cells):
        mine = [c for c in cells if c["table"] == name]
        columns = list(dict.fromkeys(c["column"] for c in mine))
        lines = [{"benchmark": benchmark,
                  "cells": [next((c for c in mine if c["benchmark"] == benchmark and
                                  c["column"] == column), None) for column in columns]}
                 for benchmark in dict.fromkeys(c["benchmark"] for c in mine)]
        tables.append({"name": name, "columns": columns, "lines": lines})
    environment = _environment()
    environment.filters["abs"] = abs
    return environment.get_template("card.html.j2").render(
        title=_card_title(plan), intro=CARD_INTRO, tables=tables, tolerance=TOLERANCE)
