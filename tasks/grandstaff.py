"""GrandStaff: pianoform sheet-music systems transcribed to `**kern` (PaliGemma 2 Table 5: CER,
SER, LER; lower is better), scored as the Sheet Music Transformer paper does
(tasks/metrics/kern.py).

The card's prompt is unpublished: ours is `kern`, the expected output the system's `**kern`
transcription, tabs between spines and newlines between records, as the hub copy stores it.
1,024 new tokens (the paper's maximum output length); images resized bilinearly with antialias
(the paper pads to a square with white first). A transcription cut at the decode length is
scored as it is (its missing tail counts as deletions); the engine reports how many were cut.

Hub copy: `antoniorv6/grandstaff` (the SMT authors'), split `test`; columns `image`,
`transcription`. No id column: examples are keyed by row position.
"""

from __future__ import annotations

from paligemma_eval.harness.registry import DatasetSource, Row, Task, register
from paligemma_eval.harness.scores import Scores
from paligemma_eval.tasks.metrics.kern import explain_kern, kern_ratios


def kern_target(row: Row) -> str:
    transcription = str(row["transcription"])
    if not transcription.strip():
        raise ValueError("empty transcription")
    return transcription


def score_kern(ids: list[str], predictions: list[str], targets: list[str]) -> Scores:
    return Scores(ids, kern_ratios(predictions, targets), lower_is_better=("cer", "ser", "ler"),
                  notes={"cer": "lower is better; corpus-level error rates (summed edit "
                                "distances / summed reference lengths), as fractions"})


@register
def tasks() -> list[Task]:
    return [Task(name="grandstaff_test", source=DatasetSource("antoniorv6/grandstaff", "test"),
                 prompt="kern", target=kern_target, scorer=score_kern, explain=explain_kern,
                 columns=("transcription",), id_column=None, max_new_tokens=1024,
                 metric="cer",
                 resize="bilinear-antialias",
                 rule="SMT eval_functions: corpus CER / SER / LER, lower is better; card's "
                      "prompt unpublished (ours: `kern`)",
                 groups=("music",),
                 description="GrandStaff test, **kern transcription; lower is better; card's "
                             "prompt unpublished: ours is `kern`")]
