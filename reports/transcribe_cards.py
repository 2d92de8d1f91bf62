"""Transcribe the model cards' tables into reports/published.json.

    python -m reports.transcribe_cards ../shared/seeds

Reads the PaliGemma 1 card (HTML tables) and the PaliGemma 2 card (Markdown transfer table,
additional-benchmark tables, HTML safety table), and writes every number with the card, table and
row it came from. Cells holding several numbers ("87.80 / 85.87 / 84.27") become one row per
number, named by the split list the card gives in the metric cell. Rerun it when a card changes;
tests/test_published.py checks cells against the card text.
"""

from __future__ import annotations

import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

OUT = Path(__file__).parent / "published.json"
PALIGEMMA1 = "paligemma-3b-pt-224.model-card.md"
PALIGEMMA2 = "paligemma2-28b-pt-448-jax.model-card.md"

# Sub-row labels for PaliGemma 1 cells that hold several numbers, from the card's metric column.
_SPLITS = {
    "COCO-35L": ["COCO-35L (en)", "COCO-35L (avg34)", "COCO-35L (avg)"],
    "XM3600": ["XM3600 (en)", "XM3600 (avg34)", "XM3600 (avg)"],
    "SciCap": ["SciCap (CIDEr)", "SciCap (BLEU-4)"],
    "POPE": ["POPE (random)", "POPE (popular)", "POPE (adversarial)"],
    "RSVQA-HR (Non numeric)": ["RSVQA-hr (test)", "RSVQA-hr (test2)"],
    "TallyQA": ["TallyQA (simple)", "TallyQA (complex)"],
    "RefCOCO": ["RefCOCO (val)", "RefCOCO+ (val)", "RefCOCOg (val)"],
}
_ATTRIBUTES = ["Toxicity", "Identity Attack", "Insult", "Threat", "Profanity"]
_GROUPINGS = ["gender", "ethnicity", "age"]


class _Tables(HTMLParser):
    """Rows of cell texts for each HTML table; <br> becomes '|'."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.row: list[str] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th"):
            self.cell = []
        elif tag == "br" and self.cell is not None:
            self.cell.append("|")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None and self.row is not None:
            self.row.append(re.sub(r"\s+", " ", "".join(self.cell)).strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.tables[-1].append(self.row)
            self.row = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def _numbers(cell: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", cell)]


def _html_tables(text: str) -> list[list[list[str]]]:
    parser = _Tables()
    parser.feed(text)
    return parser.tables


def paligemma1(text: str) -> tuple[list[dict], list[dict]]:
    single, mix, safety = [t for t in _html_tables(text) if t]
    rows = []
    for table_name, table in (("single-task transfer", single), ("mix", mix)):
        columns = table[0][2:]
        for cells in table[1:]:
            if len(cells) < 3:
                continue  # a section heading (Captioning, Question answering, ...)
            name = cells[0].split("|")[0].strip()
            metric_split = cells[1].replace("|", " ")
            per_column = [_numbers(c) for c in cells[2:]]
            labels = _SPLITS.get(name) or [f"{name} ({_split(metric_split)})"
                                           if _split(metric_split) else name]
            for k, label in enumerate(labels):
                values = {col: nums[k] for col, nums in zip(columns, per_column) if len(nums) > k}
                rows.append({"card": "paligemma", "table": table_name, "benchmark": label,
                             "metric": metric_split, "values": values})
    return rows, _safety_rows("paligemma", safety[2:], ["3B"], columns_per_grouping=2)


def _split(metric_cell: str) -> str:
    found = re.search(r"\(([^)]*)\)", metric_cell)
    return found.group(1).strip() if found else ""


def _safety_rows(card: str, rows: list[list[str]], sizes: list[str],
                 columns_per_grouping: int) -> list[dict]:
    """PaliGemma 1: columns (grouping x {max, median}); PaliGemma 2: one section per statistic."""
    out = []
    for cells in rows:
        if cells[0] not in _ATTRIBUTES:
            continue
        values = [float(c.rstrip("%")) for c in cells[1:]]
        for g, grouping in enumerate(_GROUPINGS):
            for s, statistic in enumerate(("max", "median")[:columns_per_grouping]):
                out.append({"card": card, "attribute": cells[0], "grouping": grouping,
                            "statistic": statistic, "size": sizes[0],
                            "percent": values[g * columns_per_grouping + s]})
    return out


def paligemma2(text: str) -> tuple[list[dict], list[dict]]:
    rows = []
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Benchmark | 224-3B"))
    columns = [c.strip() for c in lines[start].strip("| ").split("|")][1:]
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = re.sub(r"\[([^\]]+)\]\[[^\]]*\]", r"\1", cells[0])
        values = {col: float(v) for col, v in zip(columns, cells[1:]) if v not in ("-", "")}
        rows.append({"card": "paligemma2", "table": "transfer by resolution and size",
                     "benchmark": name, "metric": "", "values": values})
    rows += _additional(lines)
    safety_table = _html_tables(text[text.index("## Ethics and safety"):])[0]
    safety, statistic = [], None
    for cells in safety_table:
        if len(cells) == 2 and cells[1] in ("Maximum", "Median"):
            statistic = "max" if cells[1] == "Maximum" else "median"
        elif cells and cells[0] in _ATTRIBUTES:
            values = [float(c.rstrip("%")) for c in cells[1:]]
            for g, grouping in enumerate(_GROUPINGS):
                for s, size in enumerate(("3B", "10B", "28B")):
                    safety.append({"card": "paligemma2", "attribute": cells[0],
                                   "grouping": grouping, "statistic": statistic, "size": size,
                                   "percent": values[g * 3 + s]})
    return rows, safety


def _additional(lines: list[str]) -> list[dict]:
    """The 'Additional Benchmarks' tables: one table per benchmark, rows are model sizes."""
    rows, benchmark, header = [], None, None
    begin = lines.index("#### Additional Benchmarks")
    for line in lines[begin:]:
        if line.startswith("## "):
            break
        title = re.match(r"\*\*\[([^\]]+)\]", line)
        if title:
            benchmark, header = title.group(1), None
        elif line.startswith("| Model"):
            header = [c.strip() for c in line.strip("| ").split("|")][1:]
        elif line.startswith("| PaliGemma 2") and header:
            cells = [c.strip() for c in line.strip("| ").split("|")]
            size = cells[0].split()[-1]
            for metric, value in zip(header, cells[1:]):
                rows.append({"card": "paligemma2", "table": "additional benchmarks",
                             "benchmark": f"{benchmark} ({metric})", "metric": metric,
                             "values": {f"224-{size}": _numbers(value)[0]}})
        elif line.startswith("* PaliGemma 2") and benchmark:
            size = line.split(",")[0].split()[-1]
            metric, value = line.split(",", 1)[1].split(":")
            rows.append({"card": "paligemma2", "table": "additional benchmarks",
                         "benchmark": f"{benchmark} ({metric.strip()})", "metric": metric.strip(),
                         "values": {f"224-{size}": float(value)}})
    return rows


def main(seeds: Path) -> None:
    rows1, safety1 = paligemma1((seeds / PALIGEMMA1).read_text())
    rows2, safety2 = paligemma2((seeds / PALIGEMMA2).read_text())
    document = {
        "note": "Numbers transcribed from the published model cards by reports/transcribe_cards.py."
                " Benchmark values are as printed (percent or CIDEr x100); safety values are the"
                " percentage of captions at or above the Perspective threshold 0.8. The"
                " PaliGemma 2 224 and 448 cards print the same tables. The additional-benchmark"
                " rows carry no resolution in the card; they are filed under 224.",
        "cards": {"paligemma": PALIGEMMA1, "paligemma2": PALIGEMMA2},
        "benchmarks": rows1 + rows2,
        "safety": safety1 + safety2,
    }
    OUT.write_text(json.dumps(document, indent=1) + "\n")
    print(f"{OUT}: {len(rows1) + len(rows2)} benchmark rows, {len(safety1) + len(safety2)} "
          f"safety cells")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
