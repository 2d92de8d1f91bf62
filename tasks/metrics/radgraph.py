"""RadGraph F1 (Jain et al. 2021; Yu et al. 2023) through the `radgraph` package (PyPI,
`pip install 'paligemma-eval[radiology]'`): entities and relations extracted from the generated
and the reference report by the RadGraph model, compared at three reward levels (simple:
entities; partial: entities and whether they have relations; complete: entities with their
relations). PaliGemma 2 does not say which level its "RadGraph F1" is; `radgraph_f1` is
`partial`, the level usually reported under that name, and the other two are reported beside it.

The package fetches its model (StanfordAIMI/RRG_scorers, radgraph.tar.gz) from the Hugging Face
hub on first use. It is used only when already on disk (the package's cache, or the folder
named by PALIGEMMA_RADGRAPH_DIR holding `radgraph/config.json`, ...): otherwise the metric is
absent and the reason recorded, never replaced by a proxy, and no run waits on the network.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

import numpy as np

from paligemma_eval.harness.scores import Ratio

MODEL_TYPE = "radgraph"
LEVELS = ("simple", "partial", "complete")   # the order of F1RadGraph(reward_level="all")


def model_folder() -> tuple[Path | None, str | None]:
    """(the folder holding radgraph's model folder, None) or (None, why it cannot be used)."""
    # The package's own cache path, found without importing it (its import takes seconds).
    try:
        version = metadata.version("radgraph")
        from appdirs import user_cache_dir
    except (metadata.PackageNotFoundError, ImportError):
        return None, ("the radgraph package is not installed "
                      "(pip install 'paligemma-eval[radiology]')")
    folder = Path(os.environ.get("PALIGEMMA_RADGRAPH_DIR")
                  or Path(user_cache_dir("radgraph")) / version)
    if not (folder / MODEL_TYPE / "config.json").is_file():
        return None, (f"RadGraph model not found in {folder / MODEL_TYPE} (the package downloads "
                      f"StanfordAIMI/RRG_scorers radgraph.tar.gz from the Hugging Face hub: "
                      f"extract it there or set PALIGEMMA_RADGRAPH_DIR)")
    return folder, None


def radgraph_ratios(predictions: list[str], references: list[str]) -> tuple[dict[str, Ratio], str]:
    """Per-report rewards at each level, or no ratios and the reason."""
    folder, reason = model_folder()
    if folder is None:
        return {}, f"radgraph_f1 not computed: {reason}"
    from radgraph import F1RadGraph

    scorer = F1RadGraph(reward_level="all", model_type=MODEL_TYPE, model_cache_dir=str(folder))
    _, rewards, *_ = scorer(refs=references, hyps=predictions)
    by_level = dict(zip(LEVELS, rewards))
    ratios = {"radgraph_f1": Ratio.mean(np.asarray(by_level["partial"], dtype=float))}
    ratios.update({f"radgraph_f1/{level}": Ratio.mean(np.asarray(values, dtype=float))
                   for level, values in by_level.items()})
    return ratios, (f"radgraph {MODEL_TYPE} model, reward levels simple / partial / complete; "
                    f"radgraph_f1 = partial (the paper does not state its level)")
