"""Pixel values by the processor's own table equal the processor's, bit for bit; and a batch's
images decoded on several threads give the run that one thread gives."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch
from PIL import Image
from paligemma_eval.harness import registry
from paligemma_eval.harness.models import EMBEDDED, load_processor
from paligemma_eval.harness.pixels import PixelTable
from paligemma_eval.harness.runner import RunOptions, run_task


def processor_at(size: int):
    image_processor = load_processor(EMBEDDED["tiny-paligemma2"]).image_processor
    image_processor.size = {"height": size, "width": size}
    return image_processor


def random_images(size: int, count: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
            for _ in range(count)]


@pytest.mark.parametrize("size", [224, 448, 896])
def test_the_table_gives_the_processors_pixel_values(size):
    image_processor = processor_at(size)
    table = PixelTable.of(image_processor, size)
    images = random_images(size, 3)
    made = image_processor(images=images, return_tensors="pt")["pixel_values"]
    assert table.applies(images) and torch.equal(table(images), made)
    # value_range(-1, 1), as big_vision's: 0 -> -1, 255 -> 1
    assert table.values[:, 0].tolist() == [-1.0] * 3 and table.values[:, 255].tolist() == [1.0] * 3


def test_a_processor_that_looks_at_neighbours_makes_no_table():
    image_processor = processor_at(224)

    def blurred(images, **kwargs):   # each pixel averaged with the next one along the row
        made = image_processor(images=images, **kwargs)
        made["pixel_values"] = (made["pixel_values"] + made["pixel_values"].roll(1, -1)) / 2
        return made

    assert PixelTable.of(blurred, 224) is None
    # and one that resizes the probe to another size makes none either
    assert PixelTable.of(processor_at(112), 224) is None


def test_prepare_uses_the_processor_where_an_image_is_not_at_its_size(tiny_model):
    at_size = random_images(224, 2)
    other = Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 30, 3), np.uint8))
    assert not tiny_model.pixel_table.applies(at_size + [other])
    for images in (at_size, at_size + [other], [image.convert("L").convert("RGBA")
                                               for image in at_size]):
        made = tiny_model.processor.image_processor(images=images,
                                                    return_tensors="pt")["pixel_values"]
        batch = tiny_model.prepare(images, ["caption en"] * len(images))
        assert torch.equal(batch["pixel_values"], made)


def test_threads_decoding_a_batch_give_the_same_run_and_a_broken_image_fails_alone(
        tmp_path, data_dir, tiny_model):
    from tests.test_runner import _broken_copy

    (task,) = registry.resolve(["vqav2_val"])
    broken = _broken_copy(data_dir, tmp_path)
    lines, results = {}, {}
    for workers in (1, 3):
        out = tmp_path / f"workers{workers}"
        results[workers] = run_task(tiny_model, task, RunOptions(
            out=out, data_dir=broken, resamples=0, batch_size=4, preprocess_workers=workers))
        lines[workers] = [json.loads(line) for line in
                          (out / "predictions" / "vqav2_val.jsonl").read_text().splitlines()]
    assert results[3]["throughput"]["preprocess_workers"] == 3
    assert lines[1] == lines[3] and len(lines[1]) == 6
    assert [r["id"] for r in lines[3] if "error" in r] == [f["id"] for f in results[3]["failed"]]
    assert results[1]["metrics"] == results[3]["metrics"]
    # the loading threads ran torch on one thread each; threads started later get the usual count
    later = []
    thread = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    assert later == [torch.get_num_threads()]


def test_the_pil_image_processor_is_loaded_even_where_torchvision_is_installed(monkeypatch):
    """transformers would pick torchvision's where it imports, and its pixel values differ."""
    from transformers.models.auto import image_processing_auto as auto

    chosen, resolve = [], auto._resolve_backend
    monkeypatch.setattr(auto, "is_torchvision_available", lambda: True)
    monkeypatch.setattr(auto, "_resolve_backend",
                        lambda *args: chosen.append(resolve(*args)) or chosen[-1])
    assert resolve(None, None, "SiglipImageProcessor") == "torchvision"   # transformers' default
    load_processor(EMBEDDED["tiny-paligemma2"])
    assert chosen == ["pil"]


def test_preprocessing_threads_share_the_cores_with_the_other_ranks(monkeypatch):
    from paligemma_eval.harness import runner

    monkeypatch.setattr(runner.os, "sched_getaffinity", lambda pid: set(range(12)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert runner.default_preprocess_workers() == 8         # at most 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert runner.default_preprocess_workers() == 3         # 12 cores, 4 ranks
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
    assert runner.default_preprocess_workers() == 1         # never none


def test_loading_leaves_torchs_threads_alone_where_something_else_owns_them(monkeypatch):
    """vLLM's CPU worker replaces torch.set_num_threads with a warning once it binds threads."""
    from paligemma_eval.harness.runner import preprocess_threads

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    with preprocess_threads(2) as pool:
        assert list(pool.map(lambda n: n * 2, [1, 2, 3])) == [2, 4, 6]
    assert calls == []
