"""Examples with several images or video frames are one record to the engine; prompts cut as
big_vision's tolen; outputs cut at max_new_tokens are flagged and counted."""

import json

import pytest
import torch
from PIL import Image

from paligemma_eval.harness import registry
from paligemma_eval.harness.demo.fixtures_video import encode_video
from paligemma_eval.harness.registry import Frames
from paligemma_eval.harness.runner import RunOptions, input_fingerprints, prepare, run_task
from paligemma_eval.harness.video import decode_frames, sample_indices
from paligemma_eval.tasks.nlvr2 import label_text, score_marvl


@pytest.fixture(scope="module")
def tiny2():
    from paligemma_eval.harness.loading import load_model

    return load_model("tiny-paligemma2", device="cpu")


def indexed_video(n: int) -> bytes:
    """A lossless clip whose frame i is filled with grey level 5 * i."""
    return encode_video([Image.new("RGB", (16, 16), (5 * i,) * 3) for i in range(n)],
                        codec="ffv1", container="matroska")


@pytest.mark.parametrize("available, frames, expected", [
    (40, Frames(16, 2), list(range(0, 32, 2))),           # long enough: 0, 2, ..., 30
    (40, Frames(16, 9), [0, 9, 18, 27, 36] * 3 + [0]),     # 5 frames exist: the clip loops
    (3, Frames(8, 1), [0, 1, 2, 0, 1, 2, 0, 1]),
    (1, Frames(4, 26), [0, 0, 0, 0]),
])
def test_frames_are_sampled_as_big_vision_samples_them(available, frames, expected):
    assert sample_indices(available, frames) == expected
    decoded = decode_frames({"bytes": indexed_video(available), "path": None}, frames)
    assert [image.getpixel((0, 0))[0] // 5 for image in decoded] == expected


def test_a_video_with_no_frames_fails_its_example():
    with pytest.raises(ValueError, match="no frames"):
        sample_indices(0, Frames(16, 1))


def test_both_images_of_a_pair_reach_the_model(tiny_model, data_dir):
    red, blue = (Image.new("RGB", (224, 224), c) for c in ((220, 30, 30), (40, 60, 220)))
    prompt = "answer en both images show a red shape"

    def last_logits(images):
        batch = tiny_model.prepare([images], [prompt])
        assert batch["pixel_values"].shape[0] == len(images)
        assert int((batch["input_ids"] == tiny_model.processor.image_token_id).sum()) == \
            256 * len(images)
        with torch.inference_mode():
            return tiny_model.model(**batch).logits[0, -1]

    pair = last_logits([red, blue])
    assert not torch.allclose(pair, last_logits([blue, blue]))   # the left image counts
    assert not torch.allclose(pair, last_logits([red, red]))     # and the right one
    assert not torch.allclose(pair, last_logits([blue, red]))    # in its order


def test_an_example_is_regenerated_when_either_image_changes(data_dir):
    (task,) = registry.resolve(["nlvr2_test"])
    prepared = prepare(task, data_dir, limit=3)
    before = input_fingerprints(prepared, prepared.ids)
    right = prepared.rows[1]["right_image"]
    prepared.rows = prepared.rows.map(
        lambda row, i: {"right_image": right} if i == 0 else {}, with_indices=True)
    prepared.image_hashes.clear()
    after = input_fingerprints(prepared, prepared.ids)
    assert after[prepared.ids[0]] != before[prepared.ids[0]]
    assert after[prepared.ids[2]] == before[prepared.ids[2]]


def test_marvl_averages_the_five_languages_not_the_examples():
    targets = [{"answer": "True", "language": lang} for lang in
               ["id"] * 4 + ["sw", "ta", "tr", "zh"]]
    predictions = ["True", "False", "False", "False", "True", "True", "True", "true"]
    scores = score_marvl([str(i) for i in range(8)], predictions, targets).ratios
    # id 1/4, sw 1, ta 1, tr 1, zh 0 ("true" is not "True": case-sensitive)
    assert scores["accuracy/avg5"].value == pytest.approx((0.25 + 1 + 1 + 1 + 0) / 5)
    assert scores["accuracy/id"].value == 0.25
    assert label_text(True) == "True" and label_text("false") == "False"
    with pytest.raises(ValueError):
        label_text(1)   # an integer label: which class is True is not known


def test_prompt_cut_to_the_task_text_length(tiny_model):
    tokenizer = tiny_model.processor.tokenizer
    image = [Image.new("RGB", (224, 224), (220, 30, 30))]
    prompt = "answer en what color is the shape in the picture?"
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    fits = tiny_model.prepare([image], [prompt], max_prompt_tokens=len(ids) + 2)
    assert fits.prompt_truncated == [False]
    cut = tiny_model.prepare([image, image], [prompt, "caption en"], max_prompt_tokens=5)
    assert cut.prompt_truncated == [True, False] and "prompt_truncated" not in cut
    row = cut["input_ids"][0][cut["attention_mask"][0].bool()].tolist()
    # image tokens, <bos>, then 4 prompt tokens: 5 tokens of text, the "\n" cut off too
    assert row[256:] == [tokenizer.bos_token_id] + ids[:4]
    whole = tiny_model.prepare([image], ["caption en"])["input_ids"][0].tolist()
    assert cut["input_ids"][1].tolist()[-len(whole):] == whole   # the other row is untouched


def test_prompt_tokens_are_laid_out_as_big_vision_does(tiny_model, monkeypatch):
    """<image> x N, <bos>, the prompt's ids, then the "\n" ids tokenized on their own (CARD_TASKS
    0.1); for prompts the tokenizer does not merge with the newline, the processor's inputs."""
    tokenizer, processor = tiny_model.processor.tokenizer, tiny_model.processor
    images = [[Image.new("RGB", (30, 40), (220, 30, 30))],
              [Image.new("RGB", (224, 224)), Image.new("RGB", (64, 64), (0, 0, 200))]]
    prompts = ["detect blue square", "caption en"]
    batch = tiny_model.prepare(images, prompts)
    made = processor(text=["<image>" * len(i) + p for i, p in zip(images, prompts)],
                     images=images, return_tensors="pt", padding="longest")
    for key in ("input_ids", "attention_mask", "token_type_ids", "pixel_values"):
        assert torch.equal(batch[key], made[key]), key
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
    assert tiny_model.prompt_ids("detect blue square", None) == (
        tokenizer("detect blue square", add_special_tokens=False)["input_ids"] + newline, False)
    # a tokenizer with a piece across the newline: the processor would feed that piece,
    # big_vision (and this harness) the prompt's last piece and then the "\n" token
    merged = tokenizer("square\n", add_special_tokens=False)["input_ids"]
    monkeypatch.setattr(type(tokenizer), "__call__", lambda self, text, **_: {
        "input_ids": merged if text == "square\n" else
        (newline if text == "\n" else [7, 8])})
    assert tiny_model.prompt_ids("square", None) == ([7, 8] + newline, False)


def test_cut_prompts_and_cut_outputs_are_counted(tiny_model, data_dir, tmp_path):
    import dataclasses

    (task,) = registry.resolve(["vqav2_val"])
    task = dataclasses.replace(task, max_prompt_tokens=4, max_new_tokens=2)
    result = run_task(tiny_model, task, RunOptions(out=tmp_path, data_dir=data_dir, limit=5,
                                                   resamples=0))
    lines = [json.loads(line) for line in
             (tmp_path / "predictions" / "vqav2_val.jsonl").read_text().splitlines()]
    assert result["n_prompt_truncated"] == 5 == sum(r.get("prompt_truncated", 0) for r in lines)
    outputs = sum(r.get("output_truncated", 0) for r in lines)
    assert result["n_output_truncated"] == outputs > 0


@pytest.mark.parametrize("model_name", ["tiny-paligemma", "tiny-paligemma2"])
@pytest.mark.parametrize("name", ["marvl", "msvd_qa_test"])
def test_pairs_and_videos_run_and_resume_on_both_models(model_name, name, data_dir, tmp_path):
    from paligemma_eval.harness.loading import load_model

    model = load_model(model_name, device="cpu")
    (task,) = registry.resolve([name])
    options = RunOptions(out=tmp_path, data_dir=data_dir, limit=2, batch_size=2, resamples=20)
    first = run_task(model, task, options)
    assert first["failed"] == [] and first["throughput"]["generated"] == 2
    assert first["metrics"][task.headline]["value"] is not None
    again = run_task(model, task, options)
    assert again["throughput"]["generated"] == 0 and again["metrics"] == first["metrics"]


@pytest.mark.parametrize("name", ["nlvr2_test", "msrvtt_cap_test", "msrvtt_qa_test",
                                  "activitynet_cap_test", "activitynet_qa_test", "vatex_test"])
def test_every_pair_and_video_task_runs_on_tiny_paligemma2(name, data_dir, tmp_path, tiny2):
    """tests/test_tasks_end_to_end.py runs every task on tiny-paligemma; these on the other."""
    (task,) = registry.resolve([name])
    result = run_task(tiny2, task, RunOptions(out=tmp_path, data_dir=data_dir, limit=1,
                                              resamples=10))
    assert result["failed"] == [] and result["n_scored"] == 1
    assert result["metrics"][task.headline]["value"] is not None
    # the results file says how a video was sampled (None for an image pair)
    assert result["frames"] == ({"count": task.frames.count, "stride": task.frames.stride}
                                if task.frames else None)


def test_a_text_length_change_regenerates_only_the_prompts_it_cuts(tiny_model, data_dir,
                                                                   tmp_path):
    """A cut prompt is another input, an uncut one the same whatever the text length: resuming
    after the length changes reuses exactly the predictions of prompts that stay whole."""
    import dataclasses

    (task,) = registry.resolve(["okvqa_val"])
    lengths = [len(tiny_model.prompt_ids(p, None)[0]) + 1
               for p in prepare(task, data_dir, limit=8).prompts.values()]
    assert min(lengths) <= 10 < max(lengths)     # the fixture's questions straddle the cut
    options = RunOptions(out=tmp_path, data_dir=data_dir, limit=8, resamples=0)
    whole = run_task(tiny_model, dataclasses.replace(task, max_prompt_tokens=64), options)
    assert whole["n_prompt_truncated"] == 0 and whole["max_prompt_tokens"] == 64
    cut = run_task(tiny_model, dataclasses.replace(task, max_prompt_tokens=10), options)
    assert cut["n_prompt_truncated"] == sum(n > 10 for n in lengths)
    assert cut["throughput"]["resumed"] == sum(n <= 10 for n in lengths)
    assert cut["max_prompt_tokens"] == 10 and cut["frames"] is None
