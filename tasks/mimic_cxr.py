"""MIMIC-CXR radiology report generation (PaliGemma 2 Table 8: CIDEr, BLEU-4, ROUGE-L, RadGraph
F1), as the paper sets it up: the study's indication is the prompt (the clinical workflow), and
the model writes the findings and impression sections.

Metrics: CIDEr-D, BLEU-4 and ROUGE-L with pycocoevalcap (PTB tokenizer, one reference report
per study; the paper does not name its implementation), RadGraph F1 through the `radgraph`
package when its model is on disk (tasks/metrics/radgraph.py; otherwise absent, with the reason
in the results' notes). The card's prompt is unpublished: ours is the indication text alone.
Greedy, 256 new tokens (the paper's decode length is unpublished); images resized bilinearly
with antialias.

Data: credentialed, local files only. Obtain MIMIC-CXR-JPG 2.0.0 and the MIMIC-CXR reports
from PhysioNet (physionet.org: a credentialed account, CITI "Data or Specimens Only Research"
training, and the data use agreement), take the test split of `mimic-cxr-2.0.0-split.csv`
(the paper uses Flamingo-CXR's splits, which follow it), and write one row per study:
DIR/local/mimic_cxr/default/test.jsonl (or .parquet) with columns `study_id`, `image` (one
frontal view; in JSONL a path relative to the file), `indication` (the report's INDICATION
section, "" when absent), `findings` and `impression` (the report's sections, "" when absent).
The reference is findings then impression, joined by a space.
"""

from __future__ import annotations

from paligemma_eval.harness.registry import DatasetSource, Row, Task, register
from paligemma_eval.harness.scores import Scores
from paligemma_eval.tasks.metrics.captioning import caption_scores, explain_cider
from paligemma_eval.tasks.metrics.radgraph import radgraph_ratios


def report_target(row: Row) -> str:
    for column in ("indication", "findings", "impression"):
        if not isinstance(row[column], str):
            raise ValueError(f"{column} must be a string ('' when the report has none)")
    report = " ".join(s.strip() for s in (row["findings"], row["impression"]) if s.strip())
    if not report:
        raise ValueError("no findings and no impression")
    return report


def score_reports(ids: list[str], predictions: list[str], targets: list[str]) -> Scores:
    scores, _ = caption_scores(predictions, [[t] for t in targets], ids, meteor=False)
    ratios, note = radgraph_ratios(predictions, targets)
    scores.ratios.update(ratios)
    scores.notes["radgraph_f1"] = note
    return scores


@register
def tasks() -> list[Task]:
    return [Task(name="mimic_cxr_test", source=DatasetSource("local/mimic_cxr", "test",
                                                              local_only=True),
                 prompt="{indication}", target=report_target, scorer=score_reports,
                 explain=explain_cider(lambda report: [report]),
                 columns=("indication", "findings", "impression"), id_column="study_id",
                 max_new_tokens=256, metric="cider", resize="bilinear-antialias",
                 rule="CIDEr-D / BLEU-4 / ROUGE-L (pycocoevalcap), RadGraph F1 (radgraph) when "
                      "its model is on disk; card's prompt unpublished (ours: the indication)",
                 groups=("radiology",),
                 description="MIMIC-CXR test (credentialed PhysioNet data, local files only), "
                             "report generation from the indication; card's prompt "
                             "unpublished: ours is the indication text alone")]
