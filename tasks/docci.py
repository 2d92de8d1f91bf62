"""DOCCI long captions (PaliGemma 2 Table 6): average characters and sentences per caption on
the 100-image `qual_dev` split, decoded up to 192 tokens, prompt `caption en` (the one shown with
the released `google/paligemma2-*-ft-docci-448` checkpoints; the paper does not print it).

NES, the share of non-entailed sentences, comes from human raters (5 per sentence, majority
vote, PaliGemma 2 §4.6): this task reports no number for it, and no automatic proxy, only the
reason in the results' notes. The sentence splitter is ours (tasks/metrics/caption_length.py:
the paper's is unpublished); the same statistics of the human descriptions are reported beside
(`reference_avg_*`) as a yardstick. Images resized bilinearly with antialias.

Data: DOCCI's release (google/docci on the hub: per-split CSVs and an images.tar.gz;
storage.googleapis.com/docci/data: docci_descriptions.jsonlines and docci_images.tar.gz), whose
records hold `example_id`, `split`, `image_file`, `description`. The images sit in a tarball, so
the local layout (`--data-dir`) is the release's own: the `qual_dev` records as
DIR/google/docci/default/qual_dev.jsonl, `image_file` a path relative to that file (the tarball
extracted beside it).
"""

from __future__ import annotations

from paligemma_eval.harness.registry import DatasetSource, Row, Task, register
from paligemma_eval.harness.scores import Ratio, Scores
from paligemma_eval.tasks.metrics.caption_length import (count_characters, count_sentences,
                                                         explain_lengths)

NES_REASON = ("NES (non-entailment sentences %) needs human raters (5 per sentence, majority "
              "vote): not computed, and no proxy is reported")


def description_target(row: Row) -> str:
    return str(row["description"])


def score_lengths(ids: list[str], predictions: list[str], targets: list[str]) -> Scores:
    ratios = {}
    for prefix, texts in (("", predictions), ("reference_", targets)):
        ratios[f"{prefix}avg_chars"] = Ratio.mean([count_characters(t) for t in texts])
        ratios[f"{prefix}avg_sentences"] = Ratio.mean([count_sentences(t) for t in texts])
    return Scores(ids, ratios, notes={
        "nes": NES_REASON,
        "avg_sentences": "sentence ends: . ! ? followed by whitespace or the end (our rule; "
                         "the paper's splitter is unpublished)"})


@register
def tasks() -> list[Task]:
    return [Task(name="docci_qual_dev", source=DatasetSource("google/docci", "qual_dev"),
                 prompt="caption en", target=description_target, scorer=score_lengths,
                 explain=explain_lengths,
                 columns=("description",), id_column="example_id",
                 image_column="image_file", max_new_tokens=192,
                 metric="avg_chars", resize="bilinear-antialias",
                 rule="mean characters and sentences per caption (our sentence splitter); NES "
                      "needs human raters: not computed",
                 groups=("captioning_long",),
                 description="DOCCI qual_dev (100 images), caption length statistics; prompt "
                             "`caption en` from the released DOCCI checkpoints' card")]
