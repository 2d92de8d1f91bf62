"""Table structure recognition metrics: TEDS, S-TEDS (Zhong et al. 2020), GriTS-Top and
GriTS-Con (Smock et al. 2023), per table, averaged over tables (as PubTabNet and the GriTS paper
report them; PaliGemma 2 Table 3 compares with such numbers).

- TEDS / S-TEDS: `table-recognition-metric` (PyPI), a packaging of IBM's reference
  `metric.py` from PubTabNet (APTED tree edit distance; cell content compared by normalised
  Levenshtein on characters; S-TEDS ignores content). TEDS = 1 - distance / max(nodes).
  Its reference code reads `body/table`, so both tables are wrapped in <html><body>, as
  PubTabNet's `format_html` writes them (a bare <table> would score 0 whatever it holds).
- GriTS: `grits-metric` (PyPI, by the GriTS author, Kensho), per-table F-score of the 2D most
  similar substructures; Top compares relative span grids, Con cell text by longest common
  subsequence. Its dataset-level "micro" aggregate is not used: the card's comparisons are per
  table means.

The model's `coords="<loc..>x4"` cell attributes (PaliGemma 2's output format) and any stray
<loc> tokens are removed before scoring. An output without a closed <table>...</table> (cut at
the decode length, or not a table at all) cannot be parsed: it scores 0 on every metric and is
counted, never repaired.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Sequence

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


def teds(prediction: str, reference: str, structure_only: bool = False) -> float:
    from table_recognition_metric import TEDS

    return float(TEDS(structure_only=structure_only)(_document(prediction),
                                                     _document(reference)))


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
