"""PubChem molecule recognition: an image of a molecule to its SMILES (PaliGemma 2 Table 4,
"Full Match", exact-match percentage), on MolScribe's ChemDraw-rendered evaluation set (5.7k
images), as the paper evaluates.

`full_match` is the exact string (the output stripped of surrounding spaces); `canonical_match`
compares RDKit canonical SMILES (tasks/metrics/smiles.py): the paper does not say which it used.
The card's prompt is unpublished: ours is `smiles`. 256 new tokens (the paper's maximum output
length); images resized bilinearly with antialias.

No hub copy was found: local files only (`--data-dir`), MolScribe's evaluation CSV (columns
`image_id`, `file_path`, `SMILES`, from github.com/thomas0809/MolScribe's data release) written
as JSONL beside its images: DIR/local/molscribe_chemdraw/default/test.jsonl, `file_path`
relative to that file (or the same columns as parquet with the image bytes).
"""

from __future__ import annotations

import numpy as np

from paligemma_eval.harness.registry import DatasetSource, Row, Task, register
from paligemma_eval.harness.scores import Ratio, Scores
from paligemma_eval.tasks.metrics.smiles import (canonical, explain_smiles, full_match,
                                                 rdkit_missing)


def smiles_target(row: Row) -> str:
    smiles = str(row["SMILES"]).strip()
    if not smiles:
        raise ValueError("empty SMILES")
    return smiles


def score_smiles(ids: list[str], predictions: list[str], targets: list[str]) -> Scores:
    ratios = {"full_match": Ratio.mean([full_match(p, t) for p, t in zip(predictions, targets)])}
    notes = {}
    missing = rdkit_missing()
    if missing:
        notes["canonical_match"] = f"not computed: {missing}"
    else:
        references = [canonical(t) for t in targets]
        matched = [float(r is not None and canonical(p) == r)
                   for p, r in zip(predictions, references)]
        # a reference RDKit cannot parse has no canonical form: left out, and counted
        usable = np.array([r is not None for r in references], dtype=float)
        ratios["canonical_match"] = Ratio.mean(matched, usable)
        notes["canonical_match"] = (f"RDKit canonical SMILES; {int(len(usable) - usable.sum())} "
                                    f"references RDKit cannot parse left out")
    return Scores(ids, ratios, notes=notes)


@register
def tasks() -> list[Task]:
    return [Task(name="pubchem_test", source=DatasetSource("local/molscribe_chemdraw", "test",
                                                            local_only=True),
                 prompt="smiles", target=smiles_target, scorer=score_smiles, explain=explain_smiles,
                 columns=("SMILES",), id_column="image_id", image_column="file_path",
                 max_new_tokens=256, metric="full_match", resize="bilinear-antialias",
                 parser=str.strip,   # our rule (no published evaluator): spaces are no SMILES
                 rule="exact SMILES string (full_match) and RDKit canonical (canonical_match); "
                      "card's prompt unpublished (ours: `smiles`)",
                 groups=("molecules",),
                 description="MolScribe ChemDraw evaluation set (5.7k), SMILES exact match; "
                             "local files only (no hub copy); card's prompt unpublished: ours "
                             "is `smiles`")]
