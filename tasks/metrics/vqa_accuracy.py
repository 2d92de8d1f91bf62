"""VQA accuracy, as the official VQA evaluation script (vqaEval.py) computes it.

Whitespace (newline, tab, ends) is always normalised. Only when the ten human answers are not all
identical are the punctuation and digit/article/contraction rules applied, to the answers and the
prediction alike (so an all-identical "yes" does not match "Yes"). The score is the mean over the
ten leave-one-out subsets of min(1, matches / 3).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

from paligemma_eval.tasks.metrics import Explain

_CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
    "couldnt": "couldn't", "couldn'tve": "couldn't've", "couldnt've": "couldn't've",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
    "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
    "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've",
    "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't",
    "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've",
    "weve": "we've", "werent": "weren't", "whatll": "what'll", "whatre": "what're",
    "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
    "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've",
    "wouldnt": "wouldn't", "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've",
    "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've",
    "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've",
    "you'dve": "you'd've", "youll": "you'll", "youre": "you're", "youve": "you've",
}
_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
            "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}
_PUNCTUATION = [";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<",
                "@", "`", ",", "?", "!"]
_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")  # sic: the official pattern, lookbehind typo included
_COMMA_IN_NUMBER = re.compile(r"(\d)(,)(\d)")


def _punctuation(text: str) -> str:
    out = text
    number_comma = _COMMA_IN_NUMBER.search(text) is not None
    for p in _PUNCTUATION:
        if (p + " " in text or " " + p in text) or number_comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    # The official call passes re.UNICODE as `count`, so at most 32 periods are removed.
    return _PERIOD.sub("", out, count=re.UNICODE)


def _digits_articles(text: str) -> str:
    words = [_NUMBERS.get(w, w) for w in text.lower().split()]
    words = [_CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES]
    return " ".join(words)


def clean_whitespace(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


@lru_cache(maxsize=1 << 18)
def normalize(text: str) -> str:
    """The official answer normalisation (punctuation, then digits/articles/contractions)."""
    return _digits_articles(_punctuation(clean_whitespace(text)))


def simple_vqa_accuracy(prediction: str, answers: list[str]) -> float:
    """big_vision's `vqa` evaluator (OK-VQA, VizWiz, A-OKVQA, GQA): min(1, matches / 3) over the
    raw answers, the decoded text compared as it is: no normalisation, no leave-one-out."""
    return min(1.0, sum(answer == prediction for answer in answers) / 3)


def compared(prediction: str, answers: list[str]) -> tuple[str, list[str], bool]:
    """The prediction and answers as the official script compares them, and whether the
    normalisation applied (only when the answers disagree)."""
    answers = [clean_whitespace(a) for a in answers]
    prediction = clean_whitespace(prediction)
    if len(set(answers)) > 1:
        return normalize(prediction), [normalize(a) for a in answers], True
    return prediction, answers, False


def vqa_accuracy(prediction: str, answers: list[str]) -> float:
    """One question's accuracy against its human answers (usually ten)."""
    if not answers:
        return 0.0
    prediction, answers, _ = compared(prediction, answers)
    counts = Counter(answers)
    matches = counts.get(prediction, 0)
    # Leave-one-out: dropping an answer equal to the prediction removes one match.
    total = sum(min(1.0, (matches - (a == prediction)) / 3) for a in answers)
    return total / len(answers)


def explain_official(predictions: list[str], targets: list[dict]) -> Iterator[dict[str, Any]]:
    """Task.explain for the official rule: the match count after its normalisation."""
    for prediction, t in zip(predictions, targets):
        seen, answers, normalised = compared(prediction, t["answers"])
        matches = answers.count(seen)
        how = f"after normalisation the prediction reads {seen!r}" if normalised else \
            "compared as written (the answers agree: no normalisation)"
        yield {"references": t["answers"],
               "why": [f"{matches} of {len(answers)} human answers match; {how}",
                       f"score: mean over the leave-one-out subsets of min(1, matches / 3): "
                       f"scores {vqa_accuracy(prediction, t['answers']):.4g}"]}


def explain_simple(answers: Callable[[Any], list[str]] = lambda t: t["answers"]) -> Explain:
    """Task.explain for big_vision's simple rule; `answers` reads the target's answers."""
    def explain(predictions: list[str], targets: list[Any]) -> Iterator[dict[str, Any]]:
        for prediction, target in zip(predictions, targets):
            found = answers(target)
            matches = sum(a == prediction for a in found)
            yield {"references": found,
                   "why": [f"{matches} of {len(found)} answers equal the prediction exactly "
                           f"(no normalisation); score min(1, {matches} / 3): scores "
                           f"{simple_vqa_accuracy(prediction, found):.4g}"]}
    return explain
