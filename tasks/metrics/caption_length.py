"""Length statistics of long captions, as PaliGemma 2 Table 6 reports DOCCI's: average number of
characters and of sentences per caption.

The paper's sentence splitter is unpublished. Ours: a sentence ends at `.`, `!` or `?` (a run of
them, with closing quotes or brackets) followed by whitespace or the end of the text; a
non-empty remainder without final punctuation is a sentence too. So "3.5 cm" and "e.g.," do
not end one, and "A dog. It runs" has two. Characters are the caption's characters as output
(surrounding spaces stripped), spaces included.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)")


def sentences(text: str) -> list[str]:
    pieces, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        pieces.append(text[start:end.end()])
        start = end.end()
    pieces.append(text[start:])
    return [p.strip() for p in pieces if p.strip()]


def count_sentences(text: str) -> int:
    return len(sentences(text))


def count_characters(text: str) -> int:
    return len(text.strip())


def explain_lengths(predictions: list[str], references: list[str]) -> Iterator[dict[str, Any]]:
    """Task.explain: this caption's counts beside its reference's (the task reports means)."""
    for prediction, reference in zip(predictions, references):
        yield {"references": [reference],
               "why": [f"{count_characters(prediction)} characters and "
                       f"{count_sentences(prediction)} sentences (the reference: "
                       f"{count_characters(reference)} and {count_sentences(reference)}); "
                       f"avg_chars and avg_sentences are the means over captions",
                       "a sentence ends at . ! ? before whitespace or the end (our splitter: "
                       "the paper's is unpublished)"]}
