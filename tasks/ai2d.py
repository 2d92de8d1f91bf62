"""AI2D test, as big_vision's transfers/ai2d.py evaluates it.

Prompt `answer en  {question} choose from: {o1} \\t {o2} \\t ...` (tasks/metrics/
multiple_choice.py: two spaces after `answer en`, options joined by space-TAB-space), cut to 128
tokens as big_vision's `tolen(128)`, 128 new tokens, greedy. The eval resize is bilinear
*without* antialias (training used antialias=True). Rule (evaluators/.../vqa.py, one `answer`,
`to_lower=False` "Model sees options in prompt and can match the case"): exact match with the
correct option's text, case kept.

Hub copy: lmms-lab/ai2d, split test (3,088; the AI2D test ids): question, options [str], answer
(the correct option's index, as a string), image. Image variant: big_vision's TFDS builder
redraws the diagrams of `abcLabel` questions (text boxes painted white, the replacement letter
written in), which the hub copy's images are not verified to match (`Efficient-Large-Model/
ai2d-no-mask` is another rendering); numbers on another rendering may differ from the card.
"""

from __future__ import annotations

from paligemma_eval.harness.registry import DatasetSource, Task, register, text_len
from paligemma_eval.tasks.metrics import multiple_choice as mc


@register
def tasks() -> Task:
    return Task(name="ai2d_test",
                source=DatasetSource("lmms-lab/ai2d", "test", aliases=("lmms-lab-encoder/ai2d",)),
                prompt=mc.PROMPT, prompt_fields=mc.options_field("options"),
                target=mc.choice_target("options", "answer"), scorer=mc.score_choice,
                explain=mc.explain_choice,
                columns=("question", "options", "answer"), id_column=None,
                **text_len(128), resize="bilinear", metric="accuracy",
                rule="exact match with the correct option's text, case kept",
                description="AI2D test, multiple choice by option text")
