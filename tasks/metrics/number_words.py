"""TallyQA's count rule (big_vision evaluators/proj/paligemma/transfers/tallyqa.py), also used
for CountBenchQA: a whole answer that is a number word up to twenty ("none", "zero", "one", ...,
"twenty", any case) becomes its numeral, on the prediction and the reference alike; then exact
string match. Nothing else is normalised: "two apples" and " 2" stay wrong.
"""

from __future__ import annotations

from paligemma_eval.tasks.metrics.exact_match import exact_match

_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
          "fourteen fifteen sixteen seventeen eighteen nineteen twenty").split()
REPLACEMENTS = {"none": "0", **{word: str(number) for number, word in enumerate(_WORDS)}}


def number_word_to_numeral(text: str) -> str:
    return REPLACEMENTS.get(text.lower(), text)


def count_match(prediction: str, reference: str) -> float:
    return exact_match(number_word_to_numeral(prediction), number_word_to_numeral(reference))
