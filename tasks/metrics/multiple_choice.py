"""big_vision's multiple-choice prompt (transfers/ai2d.py and aokvqa_mc.py) and its answer.

    PREFIX = 'answer en '; PROMPT = 'choose from:'; PROMPT_SEP = ' \\t '
    strjoin(PROMPT_SEP, inkey=<options>, outkey="ansstr")
    strfmt(f"{PREFIX} {{question}} {PROMPT} {{ansstr}}", outkey="prefix")

so the prompt has two spaces after `answer en` (PREFIX ends with one, the format adds one) and
the options are joined by space-TAB-space. The reference is the correct option's *text*, scored
by exact match with the case kept (`to_lower=False`: the model sees the options' case). The
target keeps the options beside it, so an example's explanation can say which one was picked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from paligemma_eval.harness.scores import Ratio, Scores
from paligemma_eval.tasks.metrics.exact_match import exact_match, explain_exact_match

PROMPT = "answer en  {question} choose from: {options}"
SEPARATOR = " \t "


def join_options(options: Sequence[str]) -> str:
    return SEPARATOR.join(str(option) for option in options)


def options_field(column: str) -> Callable[[Mapping[str, Any]], dict[str, str]]:
    """Task.prompt_fields: the row's option list (in `column`) joined as `{options}`."""
    return lambda row: {"options": join_options(row[column])}


def correct_option(options: Sequence[str], index: Any) -> str:
    """The text of option `index` (an int, or a digit string as lmms-lab/ai2d stores it)."""
    position = int(index)
    if not 0 <= position < len(options):
        raise IndexError(f"answer index {position} outside the {len(options)} options")
    return str(options[position])


def choice_target(options_column: str, answer_column: str
                  ) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """Task.target: {"answer": the correct option's text, "options": every option's text}."""
    return lambda row: {"answer": correct_option(row[options_column], row[answer_column]),
                        "options": [str(option) for option in row[options_column]]}


def score_choice(ids: list[str], predictions: list[str], targets: list[dict]) -> Scores:
    return Scores(ids, {"accuracy": Ratio.mean([exact_match(p, t["answer"])
                                                for p, t in zip(predictions, targets)])})


_explain_answer = explain_exact_match(answers=lambda t: [t["answer"]],
                                      what="the correct option's text")


def explain_choice(predictions: list[str], targets: list[dict]) -> Iterator[dict[str, Any]]:
    """Task.explain: the exact-match rule against the correct option's text, then which option
    the prediction is (counted from 1, in the prompt's order), or that it is none of them."""
    for item, prediction, target in zip(_explain_answer(predictions, targets), predictions,
                                        targets):
        options = target["options"]
        picked = [k + 1 for k, option in enumerate(options) if option == prediction]
        correct = [k + 1 for k, option in enumerate(options) if option == target["answer"]]
        shown = len(options)
        chosen = f"the text of option {' and '.join(map(str, picked))} of the {shown}" if picked \
            else f"none of the {shown} options' texts (an answer outside the choices)"
        item["why"].append(f"the prediction is {chosen}; the correct one is option "
                           f"{' and '.join(map(str, correct))}")
        yield item
