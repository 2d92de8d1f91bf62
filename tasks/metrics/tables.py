"""Table structure recognition metrics: TEDS, S-TEDS (Zhong et al. 2020), GriTS-Top and
GriTS-Con (Smock et al. 2023), per table, averaged over tables (as PubTabNet and the GriTS paper
report them; PaliGemma 2 Table 3 compares with such numbers).

- TEDS / S-TEDS: IBM's reference `metric.py` (ibm-aur-nlp/PubTabNet), whose tree building and
  edit costs `table-recognition-metric` (PyPI) packages: APTED tree edit distance, a node
  renamed at cost 1 unless tag, colspan and rowspan agree, cell content compared by Levenshtein
  over its characters and tags, normalised by the longer; S-TEDS ignores content. TEDS = 1 -
  distance / max(nodes). One difference, checked on hand-made tables: the package counts nodes
  as its tree's size (the <table> root included, tags inside cells not), while IBM's code, which
  produced the published numbers, counts every element under <table> (`.//*`): for a two-row
  table that misses a two-column span the package says 1 - 2/7, IBM 1 - 2/6. We use the
  package's tree and costs with IBM's count. IBM's code reads `body/table`, so both tables are
  wrapped in <html><body>, as PubTabNet's `format_html` writes them.
- GriTS: `grits-metric` (PyPI, by the GriTS author, Kensho), per-table F-score of the 2D most
  similar substructures; Top compares relative span grids, Con cell text by longest common
  subsequence. Its dataset-level "micro" aggregate is not used: the card's comparisons are per
  table means.

The model's `coords="<loc..>x4"` cell attributes (PaliGemma 2's output format) and any stray
<loc> tokens are removed before scoring. An output without a closed <table>...</table> (cut at
the decode length, or not a table at all) cannot be parsed: it scores 0 on every metric and is
counted, never repaired.

Tree edit distance is slow (pure-Python APTED: about a second for a 30 x 8 table), so a large
set is scored in worker processes, one table per task: the same numbers, in the same order.
"""

from __future__ import annotations

import html as html_lib
import multiprocessing
import os
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

_TABLE = re.compile(r"<table\b.*?</table>", re.DOTALL | re.IGNORECASE)
_COORDS = re.compile(r"""\s+coords\s*=\s*("[^"]*"|'[^']*')""", re.IGNORECASE)
_LOC = re.compile(r"<loc\d+>")


def parse_table(prediction: str) -> str | None:
    """The first complete <table>...</table> of an output, cell boxes removed; None if there
    is none (an unclosed table is what an output cut at max_new_tokens looks like)."""
    found = _TABLE.search(_LOC.sub("", _COORDS.sub("", prediction)))
    return found.group(0) if found else None


def reference_html(structure: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """PubTabNet's `format_html`: each cell's tokens are inserted after its `<td>` (or the `>`
    closing a `<td` with span attributes), single characters HTML-escaped, tags kept."""
    tokens = list(structure)
    slots = [i for i, tag in enumerate(tokens) if tag in ("<td>", ">")]
    if len(slots) != len(cells):
        raise ValueError(f"{len(slots)} cells in the structure but {len(cells)} cell contents")
    for i, cell in zip(reversed(slots), reversed(list(cells))):
        if cell:
            tokens.insert(i + 1, "".join(html_lib.escape(t) if len(t) == 1 else t for t in cell))
    body = "".join(tokens)
    return body if body.lstrip().lower().startswith("<table") else f"<table>{body}</table>"


def _document(table: str) -> str:
    return f"<html><body>{table}</body></html>"


def _elements(prediction: str, reference: str) -> tuple[Any, Any, int] | None:
    """Both tables as IBM's code reads them (`body/table`) and its node count, the larger
    tree's elements under <table>; None when either has no table there (TEDS 0)."""
    from lxml import html

    parser = html.HTMLParser(remove_comments=True, encoding="utf-8")
    tables = [html.fromstring(_document(t), parser=parser).xpath("body/table")
              for t in (prediction, reference)]
    if not all(tables):
        return None
    predicted, truth = (found[0] for found in tables)
    return predicted, truth, max(len(predicted.xpath(".//*")), len(truth.xpath(".//*")))


def teds(prediction: str, reference: str, structure_only: bool = False) -> float:
    """IBM's `TEDS.evaluate`, on table-recognition-metric's tree and edit costs."""
    from apted import APTED
    from table_recognition_metric import TEDS
    from table_recognition_metric.utils import CustomConfig

    found = _elements(prediction, reference)
    if found is None:
        return 0.0
    predicted, truth, nodes = found
    if nodes == 0:   # two empty tables (IBM's code would divide by zero)
        return 1.0
    trees = TEDS(structure_only=structure_only)
    distance = APTED(trees.load_html_tree(predicted), trees.load_html_tree(truth),
                     CustomConfig()).compute_edit_distance()
    return 1.0 - float(distance) / nodes


def grits(prediction: str, reference: str) -> dict[str, float]:
    """GriTS-Top and GriTS-Con F-scores of one table (0 if the prediction holds no cell)."""
    from grits import grits_con, grits_top, html_to_grids

    truth, predicted = html_to_grids(reference), html_to_grids(prediction)
    if truth is None:
        raise ValueError("reference table has no <table>")
    if predicted is None or not predicted["top"] or not predicted["top"][0]:
        return {"grits_top": 0.0, "grits_con": 0.0}
    return {"grits_top": float(grits_top(truth["top"], predicted["top"])[0]),
            "grits_con": float(grits_con(truth["con"], predicted["con"])[0])}


def table_scores(prediction: str | None, reference: str) -> dict[str, float]:
    """All four metrics for one table; an unparsable prediction scores 0."""
    if prediction is None:
        return {"teds": 0.0, "s_teds": 0.0, "grits_top": 0.0, "grits_con": 0.0}
    return {"teds": teds(prediction, reference), "s_teds": teds(prediction, reference, True),
            **grits(prediction, reference)}


PARALLEL_FROM = 64   # tables; fewer are scored in this process (worker start-up costs seconds)


def score_tables(predictions: Sequence[str | None], references: Sequence[str]) -> list[dict]:
    """table_scores for each pair, in order; in worker processes for a large set ("spawn":
    the caller may hold an accelerator, which a forked child must not inherit)."""
    workers = min(os.cpu_count() or 1, 16, len(references))
    if len(references) < PARALLEL_FROM or workers < 2:
        return [table_scores(p, r) for p, r in zip(predictions, references)]
    with ProcessPoolExecutor(max_workers=workers,
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(table_scores, predictions, references, chunksize=4))


def _cells(table: Any) -> int:
    return len(table.xpath(".//td | .//th"))


def explain_tables(predictions: list[str], references: list[str]) -> Iterator[dict[str, Any]]:
    """Task.explain: whether a table was parsed and, when it was, the node count TEDS divides
    by (the tree edit distance itself is the slow part: the score shown is the scorer's)."""
    for prediction, reference in zip(predictions, references):
        table = parse_table(prediction)
        found = _elements(table, reference) if table is not None else None
        if table is None:
            why = ["no closed <table>...</table> in the output (cut at the decode length, or "
                   "not HTML): 0 on every metric, counted in unparsable_share"]
        elif found is None:
            why = ["the table is not at body/table once parsed as HTML: TEDS and S-TEDS 0"]
        else:
            predicted, truth, nodes = found
            why = [f"table parsed (cell boxes removed): {_cells(predicted)} cells, the "
                   f"reference {_cells(truth)}",
                   f"TEDS = 1 - tree edit distance / {nodes} nodes (the larger table's "
                   f"elements); S-TEDS ignores cell text; GriTS-Top / Con compare the cell "
                   f"grids; each metric is a mean over tables"]
        yield {"references": [reference], "why": why}
