"""The examples behind a number: per-example scores and predictions of a run, and the examples
that flipped between two runs.

An example's score is its unit's value of one metric in OUT/scores/<task>.json: num / den of
that unit (a unit whose den is 0, outside a breakdown's group, has none). Two runs pair their
units by id. A flip is a unit whose score differs: "worse" when the second run's is lower
(right -> wrong, for a 0/1 metric), "better" when higher; each list is ordered by the size of
the change, then by the first run's order. `compare`, `gate` and the sample browser all use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paligemma_eval.harness.cache import PredictionStore, prediction_files
from paligemma_eval.harness.results import read_unit_scores


@dataclass(frozen=True)
class Flip:
    unit: str
    a: float
    b: float


def unit_scores(run_dir: Path, task: str, metric: str) -> dict[str, float] | None:
    """{unit: score} of one metric, in the scores file's order; None without a scores file."""
    path = run_dir / "scores" / f"{task}.json"
    if not path.exists():
        return None
    units, ratios = read_unit_scores(path)
    if metric not in ratios:
        return None
    ratio = ratios[metric]
    return {u: float(n / d) for u, n, d in zip(units, ratio.num, ratio.den) if d}


def flips(a: dict[str, float], b: dict[str, float]) -> tuple[list[Flip], list[Flip]]:
    """(worse, better): the shared units whose score went down, and up, from a to b."""
    order = {u: i for i, u in enumerate(a)}
    changed = [Flip(u, a[u], b[u]) for u in a if u in b and a[u] != b[u]]
    ranked = sorted(changed, key=lambda f: (-abs(f.b - f.a), order[f.unit]))
    return [f for f in ranked if f.b < f.a], [f for f in ranked if f.b > f.a]


def predictions(run_dir: Path, task: str, result: dict[str, Any]) -> dict[str, str]:
    """The raw output per example id that the run scored: its prediction files under the
    run's key, or the outside file `score` read; a failed example reads as its error."""
    key = (result.get("throughput") or {}).get("key")
    if key is not None:
        stores = [(PredictionStore(p), key, False) for p in prediction_files(run_dir, task)]
    elif result.get("predictions_file"):
        stores = [(PredictionStore(Path(result["predictions_file"])), None, True)]
    else:
        return {}
    found: dict[str, str] = {}
    for store, wanted, unterminated in stores:
        for example_id, record in store.load(wanted, unterminated_ok=unterminated).items():
            text = record.get("prediction")
            found.setdefault(example_id, str(text) if text is not None
                             else f"[failed: {record.get('error', 'no prediction')}]")
    return found


def units_are_examples(result: dict[str, Any]) -> bool:
    """Whether a task's scoring units are its examples (MMVP scores image pairs instead, and
    its pair ids would collide with example ids)."""
    return "units" not in (result.get("notes") or {})
