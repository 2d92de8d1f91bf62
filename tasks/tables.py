"""Table structure recognition: FinTabNet and PubTabNet (PaliGemma 2 Table 3: S-TEDS, TEDS,
GriTS-Top, GriTS-Con), scored per table and averaged (tasks/metrics/tables.py).

The card's prompt is unpublished: ours is `table html`; the expected output is the table's HTML
as PubTabNet writes it (`<table><thead>...</thead><tbody>...</tbody></table>`, cell text inside
`<td>`), optionally with PaliGemma 2's `coords="<loc>x4"` cell attributes, which are removed
before scoring. 4,096 new tokens (the paper's maximum output length); images resized bilinearly
with antialias (the paper pads the cropped table to a square with white first: the hub images
are used as they are). An output without a closed </table> (e.g. cut at the decode length)
scores 0 and is counted in `unparsable_share`.

Hub copies (docling's OTSL conversions; the same schema for both): `ds4sd/FinTabNet_OTSL` test
and `ds4sd/PubTabNet_OTSL` val (PubTabNet's test annotations were not released: val is the
split papers report; aliases `docling-project/*`). Columns: `html` (PubTabNet structure tokens:
"<tr>", "<td>", "<td", ' colspan="2"', ">", "</td>", ...), `cells` (list of lists of
{tokens, bbox}: the contents of each <td>, in order), `otsl`, `cols`, `rows`, `image`
(PubTabNet also `filename`, `imgid`). The reference HTML is rebuilt from `html` and `cells` with
PubTabNet's `format_html`.
"""

from __future__ import annotations

from collections.abc import Iterable

from paligemma_eval.harness.registry import DatasetSource, Row, Task, register
from paligemma_eval.harness.scores import Ratio, Scores
from paligemma_eval.tasks.metrics.tables import explain_tables, parse_table, reference_html
from paligemma_eval.tasks.metrics.tables import score_tables as score_each

PROMPT = "table html"
METRICS = ("s_teds", "teds", "grits_top", "grits_con")


def _cell_contents(cells: Iterable) -> list[list[str]]:
    """The tokens of each cell in order; the hub's `cells` is a list of lists of cells."""
    flat = []
    for item in cells:
        for cell in (item if isinstance(item, list) else [item]):
            flat.append([str(t) for t in cell["tokens"]])
    return flat


def table_target(row: Row) -> str:
    return reference_html([str(t) for t in row["html"]], _cell_contents(row["cells"]))


def score_tables(ids: list[str], predictions: list[str], targets: list[str]) -> Scores:
    tables = [parse_table(p) for p in predictions]
    per_table = score_each(tables, targets)
    ratios = {name: Ratio.mean([s[name] for s in per_table]) for name in METRICS}
    ratios["unparsable_share"] = Ratio.mean([t is None for t in tables])
    return Scores(ids, ratios, lower_is_better=("unparsable_share",), notes={
        "unparsable_share": "outputs without a closed <table>...</table> (cut at the decode "
                            "length or not HTML): 0 on every metric",
        "teds": "table-recognition-metric (IBM's PubTabNet TEDS); GriTS: grits-metric, per "
                "table F-score, mean over tables"})


def table_task(name: str, source: DatasetSource, id_column: str | None,
               description: str) -> Task:
    return Task(name=name, source=source, prompt=PROMPT, target=table_target,
                scorer=score_tables, explain=explain_tables, columns=("html", "cells"),
                id_column=id_column,
                max_new_tokens=4096, metric="teds", resize="bilinear-antialias",
                rule="TEDS / S-TEDS (table-recognition-metric), GriTS-Top / Con (grits-metric), "
                     "mean over tables; card's prompt unpublished (ours: `table html`)",
                groups=("tables",),
                description=description + "; card's prompt unpublished: ours is `table html`, "
                                          "output PubTabNet-style HTML")


@register
def tasks() -> list[Task]:
    return [
        table_task("fintabnet_test", DatasetSource("ds4sd/FinTabNet_OTSL", "test",
                                                   aliases=("docling-project/FinTabNet_OTSL",)),
                   None, "FinTabNet test (docling's OTSL copy, 10,397 tables; unfiltered as "
                         "the paper's test split)"),
        table_task("pubtabnet_val", DatasetSource("ds4sd/PubTabNet_OTSL", "val",
                                                  aliases=("docling-project/PubTabNet_OTSL",)),
                   "filename", "PubTabNet val (docling's OTSL copy, 6,942 tables)"),
    ]
