"""SMILES match for molecule recognition (PaliGemma 2 Table 4, "Full Match").

The paper reports exact-match percentage and does not say whether SMILES were canonicalised, so
two figures: `full_match`, the predicted string equal to the reference string, and
`canonical_match`, both parsed by RDKit and their canonical SMILES equal (how MolScribe-style
evaluators compare; a prediction RDKit cannot parse does not match). RDKit is optional
(`pip install paligemma-eval[chem]`): without it `canonical_match` is absent and the results'
notes say why.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def full_match(prediction: str, reference: str) -> float:
    return float(prediction == reference)


def rdkit_missing() -> str | None:
    """Why canonical SMILES cannot be computed here, or None when they can."""
    try:
        import rdkit  # noqa: F401
    except ImportError:
        return "RDKit is not installed (pip install 'paligemma-eval[chem]')"
    return None


def canonical(smiles: str) -> str | None:
    """RDKit's canonical SMILES (stereochemistry kept), or None if it cannot parse the string."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")  # a bad prediction is counted, not printed
    molecule = Chem.MolFromSmiles(smiles) if smiles else None
    return Chem.MolToSmiles(molecule) if molecule is not None else None


def explain_smiles(predictions: list[str], references: list[str]) -> Iterator[dict[str, Any]]:
    """Task.explain: the string match, and the canonical forms compared when RDKit is here."""
    missing = rdkit_missing()
    for prediction, reference in zip(predictions, references):
        score = full_match(prediction, reference)
        why = [f"full_match: the prediction {'equals' if score else 'differs from'} the "
               f"reference SMILES string: scores {score:g}"]
        if missing:
            why.append(f"canonical_match not computed: {missing}")
        else:
            predicted, wanted = canonical(prediction), canonical(reference)
            why.append("canonical_match: RDKit cannot parse the reference (left out)"
                       if wanted is None else
                       "canonical_match 0: RDKit cannot parse the prediction"
                       if predicted is None else
                       f"canonical_match {float(predicted == wanted):g}: RDKit canonical "
                       f"{predicted!r} vs {wanted!r}")
        yield {"references": [reference], "why": why}
