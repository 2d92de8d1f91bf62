"""PaliGemma 2 decodes as big_vision decodes: no final logit soft-cap, global attention on every
layer, and an attention that applies Gemma 2's attention soft-cap; `checkpoint` runs the config
as written. CI runs this file on the lowest and the highest supported transformers.

The model: the embedded tiny PaliGemma 2's weights under a config whose caps and window are small
enough to bind (attention cap 1, final cap 1, window 16 on a 256-token image), so that each
setting changes what is decoded. The reference is built here from that config, with the settings
changed explicitly (not through the harness), decoding one example at a time.
"""

from __future__ import annotations

import shutil
from functools import lru_cache

import pytest
import torch
from transformers import AutoConfig, PaliGemmaForConditionalGeneration

from paligemma_eval.harness import data
from paligemma_eval.harness.demo.fixtures import DATA_DIR
from paligemma_eval.harness.errors import ModelError
from paligemma_eval.harness.loading import load_model
from paligemma_eval.harness.models import EMBEDDED, decode_settings
from paligemma_eval.harness.registry import all_tasks
from paligemma_eval.harness.runner import RunOptions, generate, prepare

CAPS = {"attn_logit_softcapping": 1.0, "final_logit_softcapping": 1.0, "sliding_window": 16}
# card tasks: greedy (VQA, RefCOCO) and beams (COCO 2, TextCaps 3)
TASKS = ("okvqa_val", "refcoco_val_raw", "coco_cap_karpathy_val", "textcaps_val")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A transformers directory: the tiny model's weights and tokenizer, binding caps."""
    folder = tmp_path_factory.mktemp("tiny-capped")
    for path in EMBEDDED["tiny-paligemma2"].iterdir():
        shutil.copy(path, folder / path.name)
    config = AutoConfig.from_pretrained(folder)
    for name, value in CAPS.items():
        setattr(config.text_config, name, value)
    config.save_pretrained(folder)
    return folder


@lru_cache(maxsize=8)
def reference_model(folder, *, final_cap=None, window=None,
                    attn_cap=CAPS["attn_logit_softcapping"]):
    config = AutoConfig.from_pretrained(folder)
    text = config.text_config
    text.final_logit_softcapping, text.attn_logit_softcapping = final_cap, attn_cap
    if window is None:
        text.layer_types = ["full_attention"] * text.num_hidden_layers
    model = PaliGemmaForConditionalGeneration.from_pretrained(
        folder, config=config, attn_implementation={"text_config": "eager",
                                                    "vision_config": "eager"})
    return model.eval()


@torch.inference_mode()
def decode(model, inputs, max_new_tokens: int, num_beams: int) -> list[int]:
    tokens = model.generate(**inputs, max_new_tokens=max_new_tokens, num_beams=num_beams,
                            do_sample=False)
    return tokens[0, inputs["input_ids"].shape[1]:].tolist()


def examples(task_name: str, resolution: int, limit: int = 2):
    task = all_tasks()[task_name]
    prepared = prepare(task, DATA_DIR, limit)
    ids = [i for i in prepared.ids if i in prepared.prompts][:limit]
    images = [data.resize(data.decode_image(prepared.rows[prepared.row_of[i]][task.image_column]),
                          resolution, task.resize) for i in ids]
    return task, images, [prepared.prompts[i] for i in ids]


@pytest.fixture(scope="module")
def big_vision(checkpoint):
    return load_model(str(checkpoint), device="cpu")


def test_provenance_records_what_decodes(checkpoint, big_vision):
    assert big_vision.info.decoding() == {
        "decode_config": "big_vision", "final_logit_softcapping": None,
        "attn_logit_softcapping": 1.0, "sliding_window": None, "text_attention": "eager",
        "vision_attention": "sdpa"}
    as_written = load_model(str(checkpoint), device="cpu", decode_config="checkpoint")
    assert as_written.info.decoding() == {**big_vision.info.decoding(), **CAPS,
                                          "decode_config": "checkpoint"}
    assert as_written.info.to_dict()["sliding_window"] == 16


@pytest.mark.parametrize("task_name", TASKS)
def test_decoding_equals_big_vision_reference(checkpoint, big_vision, task_name):
    task, images, prompts = examples(task_name, big_vision.info.resolution)
    ours = big_vision.generate(images, prompts, task.max_new_tokens, task.num_beams)
    reference = reference_model(checkpoint)
    tokenizer = big_vision.processor.tokenizer
    expected = [tokenizer.decode(decode(reference, big_vision.prepare([image], [prompt]),
                                        task.max_new_tokens, task.num_beams),
                                 skip_special_tokens=True)
                for image, prompt in zip(images, prompts)]
    assert ours == expected


def test_each_setting_changes_what_is_decoded(checkpoint, big_vision):
    """The test model is one where the window, the final cap and the attention cap all matter."""
    task, images, prompts = examples("refcoco_val_raw", big_vision.info.resolution, limit=1)
    inputs = big_vision.prepare(images, prompts)
    plain = decode(reference_model(checkpoint), inputs, 24, 1)
    assert plain != decode(reference_model(checkpoint, window=16), inputs, 24, 1)
    assert plain != decode(reference_model(checkpoint, attn_cap=None), inputs, 24, 1)
    task, images, prompts = examples("textcaps_val", big_vision.info.resolution, limit=1)
    beams = {final_cap: [decode(reference_model(checkpoint, final_cap=final_cap),
                                big_vision.prepare([i], [p]), 16, 3)
                         for i, p in zip(images, prompts)] for final_cap in (None, 1.0)}
    assert beams[None] != beams[1.0]
    checkpoint_run = load_model(str(checkpoint), device="cpu", decode_config="checkpoint")
    assert checkpoint_run.generate(images, prompts, 16, 3) != big_vision.generate(images, prompts,
                                                                                  16, 3)


def test_run_key_changes_with_the_decode_config(checkpoint, big_vision, tmp_path):
    task = all_tasks()["okvqa_val"]
    prepared = prepare(task, DATA_DIR, 1)
    keys = {}
    for decode_config in ("big_vision", "checkpoint"):
        model = big_vision if decode_config == "big_vision" else \
            load_model(str(checkpoint), device="cpu", decode_config=decode_config)
        keys[decode_config] = generate(model, prepared, RunOptions(out=tmp_path))["key"]
    assert keys["big_vision"] != keys["checkpoint"]


def test_an_attention_that_drops_the_cap_is_refused(big_vision):
    config = big_vision.model.model.language_model.config
    config._attn_implementation_internal = "sdpa"   # what 5.17 / 5.18 picked by default
    try:
        with pytest.raises(ModelError, match="drops Gemma 2's attention soft-cap"):
            decode_settings(big_vision.model, "big_vision", "m")
    finally:
        config._attn_implementation_internal = "eager"


def test_unknown_decode_config_is_a_one_line_error(checkpoint):
    with pytest.raises(ModelError, match="--decode-config 'jax'"):
        load_model(str(checkpoint), device="cpu", decode_config="jax")
