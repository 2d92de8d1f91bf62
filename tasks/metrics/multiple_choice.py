"""big_vision's multiple-choice prompt (transfers/ai2d.py and aokvqa_mc.py) and its answer.

    PREFIX = 'answer en '; PROMPT = 'choose from:'; PROMPT_SEP = ' \\t '
    strjoin(PROMPT_SEP, inkey=<options>, outkey="ansstr")
    strfmt(f"{PREFIX} {{question}} {PROMPT} {{ansstr}}", outkey="prefix")

so the prompt has two spaces after `answer en` (PREFIX ends with one, the format adds one) and
the options are joined by space-TAB-space. The reference is the correct option's *text*, scored
by exact match with the case kept (`to_lower=False`: the model sees the options' case).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from paligemma_eval.tasks.metrics.exact_match import explain_exact_match

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


# Task.explain: the target is the correct option's text alone (the options are in the prompt)
explain_choice = explain_exact_match(what="the correct option's text")
