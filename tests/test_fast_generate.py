"""The fast generation path (harness/fast_generate.py) answers exactly as the plain path does.

Self-contained (embedded tiny models and fixture data only, no conftest fixtures), so that it runs
as it is in a venv with another transformers version. The decode step is compiled with dynamo's
"eager" backend here: the same graph capture (fullgraph), guards and recompilation as inductor,
without its code generation, which costs minutes on two cores; bench/fast_generate.py measures
inductor's speed and agreement.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from paligemma_eval.harness import registry
from paligemma_eval.harness.demo.fixtures import DATA_DIR
from paligemma_eval.harness.fast_generate import (CACHE_STEP, allow_prebuilt_masks, batch_bucket,
                                                  cache_bucket, distinct_images)
from paligemma_eval.harness.loading import load_model
from paligemma_eval.harness.runner import RunOptions, generate, load_predictions, prepare

MODELS = ("tiny-paligemma", "tiny-paligemma2")   # Gemma text tower; Gemma 2 (sliding window)
os.environ.setdefault("TQDM_DISABLE", "1")


def predictions(model, task_name: str, limit: int, batch_size: int) -> tuple[dict, dict]:
    (task,) = registry.resolve([task_name])
    prepared = prepare(task, DATA_DIR, limit)
    with tempfile.TemporaryDirectory() as out:
        options = RunOptions(out=Path(out), data_dir=DATA_DIR, limit=limit,
                             batch_size=batch_size, resamples=0)
        throughput = generate(model, prepared, options)
        records = load_predictions(Path(out), task, throughput["key"])
    return {i: r["prediction"] for i, r in records.items()}, throughput


def vision_images(model) -> list[int]:
    """Images per vision-tower call, recorded while the model runs."""
    seen: list[int] = []
    model.model.model.vision_tower.register_forward_hook(
        lambda module, args, output: seen.append(args[0].shape[0]))
    return seen


@pytest.fixture(scope="module", params=MODELS)
def pair(request):
    plain = load_model(request.param, device="cpu")
    fast = load_model(request.param, device="cpu")
    fast.use_generation("fast", largest_batch=4, compile_backend="eager")
    return plain, fast


def test_static_cache_fix_gives_the_dynamic_cache_tokens():
    """PaliGemma 2's pre-built mask dict used to fail in create_causal_mask (AttributeError:
    'dict' object has no attribute 'ndim'); with it let through, static == dynamic."""
    allow_prebuilt_masks()
    for name in MODELS:
        model = load_model(name, device="cpu")
        images = [Image.new("RGB", (224, 224), colour) for colour in ((200, 20, 20), (20, 20, 200))]
        batch = model.prepare(images, ["caption en\n", "what colour is the shape?\n"])
        with torch.inference_mode():
            dynamic = model.model.generate(**batch, max_new_tokens=10, do_sample=False)
            static = model.model.generate(**batch, max_new_tokens=10, do_sample=False,
                                          cache_implementation="static")
        assert torch.equal(dynamic, static), name


def test_prebuilt_mask_wrapper_changes_nothing_else():
    from transformers.models.paligemma import modeling_paligemma

    allow_prebuilt_masks()
    allow_prebuilt_masks()   # idempotent: one wrapper, not two
    wrapped = modeling_paligemma.create_causal_mask
    prebuilt = {"full_attention": torch.zeros(1, 1, 3, 3), "sliding_attention": torch.ones(1)}
    assert wrapped(attention_mask=prebuilt) is prebuilt["full_attention"]
    assert modeling_paligemma.create_sliding_window_causal_mask(
        attention_mask=prebuilt) is prebuilt["sliding_attention"]
    assert not getattr(wrapped.__kwdefaults__["_builder"], "_passes_prebuilt", False)


def test_one_image_task_fast_equals_plain(pair):
    plain, fast = pair
    expected, _ = predictions(plain, "vqav2_val", 8, 4)   # two full batches: one bucket
    got, throughput = predictions(fast, "vqav2_val", 8, 4)
    assert got == expected and len(got) == 8
    assert throughput["generation"]["path"] == "fast"


def test_multi_question_task_fast_equals_plain_with_one_vision_pass_per_image(pair):
    """RefCOCO: several referring expressions per image; the vision tower sees each image of a
    batch once."""
    plain, fast = pair
    expected, _ = predictions(plain, "refcoco_val_detect", 6, 4)
    (task,) = registry.resolve(["refcoco_val_detect"])
    prepared = prepare(task, DATA_DIR, 6)
    seen = vision_images(fast)
    got, _ = predictions(fast, "refcoco_val_detect", 6, 4)
    assert got == expected and len(got) == len(prepared.ids) > 6
    # batches of 4 in dataset order; each batch costs its distinct rows, not its examples
    rows = [prepared.row_of[i] for i in prepared.ids]
    distinct = [len(set(rows[s:s + 4])) for s in range(0, len(rows), 4)]
    assert seen == distinct and sum(seen) < len(rows)


def test_second_call_in_the_same_bucket_compiles_nothing():
    graphs = []

    def counting(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    model = load_model("tiny-paligemma2", device="cpu")
    model.use_generation("fast", largest_batch=4, compile_backend=counting)
    images = [Image.new("RGB", (224, 224), (40 * k, 200, 20)) for k in range(4)]
    model.generate_prepared(model.prepare(images[:3], ["caption en\n"] * 3), 12)
    compiled = len(graphs)
    assert compiled >= 1
    # other prompts (other lengths), four rows: the same batch bucket and cache length
    model.generate_prepared(model.prepare(images, ["what colour?\n", "a b c d e\n", "x\n",
                                                   "caption en\n"]), 12)
    assert len(graphs) == compiled


def test_beams_decline_the_fast_path_and_say_so(pair):
    plain, fast = pair
    assert fast.generation_path(2) == {"path": "plain", "reason": "the fast path is greedy only "
                                                                  "(num_beams > 1)"}
    images = [Image.new("RGB", (224, 224), (200, 20, 20))] * 2
    batch = plain.prepare(images, ["caption en\n", "what colour is the shape?\n"])
    assert fast.generate_prepared(batch, 8, num_beams=2) == \
        plain.generate_prepared(batch, 8, num_beams=2)


def test_buckets():
    assert [batch_bucket(n, 8) for n in (1, 2, 3, 5, 8)] == [1, 2, 4, 8, 8]
    assert batch_bucket(5, 6) == 6 and batch_bucket(9, 8) == 9   # the run's size is a bucket
    assert (cache_bucket(1), cache_bucket(CACHE_STEP), cache_bucket(CACHE_STEP + 1)) == \
        (CACHE_STEP, CACHE_STEP, 2 * CACHE_STEP)


def test_distinct_images_merge_only_identical_pixels():
    base = torch.rand(3, 224, 224)
    nearly = base.clone()
    nearly[2, 223, 223] += 1e-3   # one pixel off, likely outside the strided sample
    images, index = distinct_images(torch.stack([base, nearly, base.clone(), nearly]))
    assert index.tolist() == [0, 1, 0, 1] and len(images) == 2
    assert torch.equal(images[0], base) and torch.equal(images[1], nearly)


def test_fast_generation_with_the_vllm_backend_is_a_usage_error(tmp_path, capsys):
    from paligemma_eval.harness.cli import main

    status = main(["run", "--model", "tiny-paligemma", "--tasks", "vqav2_val", "--backend", "vllm",
                   "--generation", "fast", "--output", str(tmp_path)])
    assert status == 2
    assert "--generation fast is a path of the transformers backend" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_beyond_the_sliding_window_fast_equals_plain():
    """PaliGemma 2 with a 64-token window (the tiny model's 512 is never reached): the prompt
    alone (256 image tokens + text) overflows it; the fast path keeps every token and masks, the
    plain path rolls its window."""
    plain, fast = (load_model("tiny-paligemma2", device="cpu") for _ in range(2))
    for model in (plain, fast):
        model.model.config.text_config.sliding_window = 64
        for layer in model.model.model.language_model.layers:
            if layer.self_attn.sliding_window is not None:
                layer.self_attn.sliding_window = 64
    fast.use_generation("fast", largest_batch=4, compile_backend="eager")
    images = [Image.new("RGB", (224, 224), (40 * k, 20, 200)) for k in range(3)]
    batch = plain.prepare(images, ["caption en\n", "what colour is the shape?\n", "detect a\n"])
    expected = plain.generate_prepared(batch, 16)
    assert fast.generate_prepared(batch, 16) == expected
    assert any(expected)


def fixture_batch(model, limit: int) -> tuple[list, list[str]]:
    """vqav2_val's fixture images, each asked four kinds of question (box output is where
    near-tied logits sit)."""
    from paligemma_eval.harness.runner import example_images

    (task,) = registry.resolve(["vqav2_val"])
    prepared = prepare(task, DATA_DIR, limit)
    images = [example_images(prepared, i, model.info.resolution) for i in prepared.ids]
    kinds = ["detect circle ; square", "caption en", "what colour is the shape?", "segment square"]
    return [shown for shown in images for _ in kinds], kinds * len(images)


def texts(model, batch, new_tokens: int = 32) -> list[str]:
    return [c.text for c in model.generate_prepared(batch, new_tokens)]


def test_in_bfloat16_the_default_backend_keeps_the_plain_paths_answers():
    """inductor's fused bfloat16 kernels round otherwise than eager's and flipped 5 and 7 of
    these 64 answers (two logits one bfloat16 step apart); the default backend runs eager's own
    kernels (exact_backend: "eager" here, CUDA graphs of them on a GPU). The same batch goes to
    both: the plain path leaves the caller's batch as it was."""
    from paligemma_eval.harness.fast_generate import exact_backend

    assert (exact_backend("cuda"), exact_backend("cpu")) == ("cudagraphs", "eager")
    for name in MODELS:
        plain = load_model(name, device="cpu", dtype="bfloat16", decode_config="checkpoint")
        fast = load_model(name, device="cpu", dtype="bfloat16", decode_config="checkpoint")
        fast.use_generation("fast", largest_batch=8)
        assert fast.fast.describe()["compiled"] == "eager"
        images, prompts = fixture_batch(plain, 16)
        for start in range(0, len(prompts), 8):
            batch = plain.prepare(images[start:start + 8], prompts[start:start + 8])
            expected = texts(plain, batch)
            assert batch["pixel_values"].dtype == torch.float32     # not the model's bfloat16
            assert texts(fast, batch) == expected, (name, start)


def test_a_batch_mixing_one_image_and_a_pair_pads_with_the_last_rows_images(pair):
    """Padding rows copy the last row: its two images, not a share of the batch's."""
    plain, fast = pair
    shown = [Image.new("RGB", (224, 224), colour) for colour in
             ((200, 20, 20), (20, 200, 20), (20, 20, 200), (200, 200, 20))]
    batch = plain.prepare([[shown[0]], [shown[1]], [shown[2], shown[3]]], ["caption en"] * 3)
    assert texts(fast, batch, 12) == texts(plain, batch, 12)
