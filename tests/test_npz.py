import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from paligemma_eval.harness.errors import ModelError
from paligemma_eval.harness.loading import load_model
from paligemma_eval.harness.npz import checkpoint_files, infer_variant, load_npz
from tests.conftest import cli
from tests.npz_writer import published_shapes, round_to_bf16, split, write_npz


@pytest.mark.parametrize("family, size, resolution", [
    ("paligemma2", s, r) for s in ("3B", "10B", "28B") for r in (224, 448, 896)] + [
    ("paligemma", "3B", r) for r in (224, 448, 896)])
def test_shape_inference_for_every_published_variant(family, size, resolution):
    variant = infer_variant(published_shapes(family, size, resolution))
    assert (variant.family, variant.size, variant.resolution) == (family, size, resolution)
    assert variant.hub_id == f"google/{family}-{size.lower()}-pt-{resolution}"
    if size == "28B":
        assert variant.text["query_pre_attn_scalar"] == 144


def test_unknown_shape_combination_is_refused():
    shapes = published_shapes("paligemma2", "3B", 224)
    shapes["llm/layers/mlp/gating_einsum"] = (26, 2, 2304, 1234)
    with pytest.raises(ModelError, match="unknown shape combination"):
        infer_variant(shapes)


@pytest.fixture(scope="module", params=["tiny-paligemma", "tiny-paligemma2"])
def original(request):
    model = load_model(request.param, device="cpu")
    round_to_bf16(model.model)   # the v2 file stores bfloat16: make the original exactly that
    return request.param, model


def logits(model, prompt="answer en what color is the shape?"):
    image = Image.new("RGB", (56, 56), (200, 30, 30))
    batch = model.prepare([image], [prompt])
    with torch.inference_mode():
        return model.model(**batch).logits[0, :, :model.model.config.image_token_index]


def test_npz_and_parts_load_to_the_same_model(original, tmp_path):
    name, model = original
    path = write_npz(model.model, tmp_path / f"{name}.npz", bfloat16=name.endswith("2"))
    whole = load_npz(str(path), dtype="float32", device="cpu", base=name)
    assert (whole.info.family, whole.info.resolution) == (model.info.family, 224)
    torch.testing.assert_close(logits(whole), logits(model), atol=1e-5, rtol=1e-5)
    parts = split(path, 3)
    path.unlink()
    for spec in (parts[0], tmp_path):           # the first part, or the folder of parts
        loaded = load_npz(str(spec), dtype="float32", device="cpu", base=name)
        torch.testing.assert_close(logits(loaded), logits(model), atol=1e-5, rtol=1e-5)
    images = [Image.new("RGB", (56, 56), c) for c in ((200, 30, 30), (30, 30, 200))]
    prompts = ["caption en", "answer en what shape is it?"]
    assert loaded.generate(images, prompts, 12) == model.generate(images, prompts, 12)


def test_layers_stream_from_c_and_fortran_ordered_stacks(tmp_path):
    from paligemma_eval.harness.npz import NpzCheckpoint

    stack = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    np.savez(tmp_path / "m.npz", **{"params/img/a": stack, "params/llm/b": np.asfortranarray(stack)})
    checkpoint = NpzCheckpoint(str(tmp_path / "m.npz"))
    for name in ("img/a", "llm/b"):
        layers = list(checkpoint.layers(name))
        assert len(layers) == 2 and all(np.array_equal(a, b) for a, b in zip(layers, stack))
        assert np.array_equal(checkpoint.array(name), stack)


def test_broken_checkpoints_say_what_is_wrong(tmp_path):
    model = load_model("tiny-paligemma", device="cpu")
    path = write_npz(model.model, tmp_path / "m.npz")
    parts = split(path, 3)
    path.unlink()
    parts[1].rename(tmp_path / "moved")
    with pytest.raises(ModelError, match="missing part"):
        checkpoint_files(str(parts[0]))
    (tmp_path / "moved").rename(parts[1])
    data = [p.read_bytes() for p in parts]
    parts[0].write_bytes(data[1])      # parts swapped: the archive no longer reads
    parts[1].write_bytes(data[0])
    with pytest.raises(ModelError, match="parts missing, out of order or truncated"):
        load_npz(str(parts[0]), dtype="float32", device="cpu", base="tiny-paligemma")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ModelError, match="not a big_vision PaliGemma checkpoint"):
        load_npz(str(tmp_path / "other.npz"), dtype="float32", device="cpu")
    truncated = tmp_path / "cut.npz"
    write_npz(model.model, truncated)
    truncated.write_bytes(truncated.read_bytes()[:-4000])
    with pytest.raises(ModelError):
        load_npz(str(truncated), dtype="float32", device="cpu", base="tiny-paligemma")


def test_run_on_npz_matches_the_transformers_model_and_convert_writes_one(tmp_path, data_dir):
    model = load_model("tiny-paligemma", device="cpu")
    path = write_npz(model.model, tmp_path / "tiny.npz")
    common = ["--tasks", "vqav2_val", "--data-dir", str(data_dir), "--limit", "8",
              "--bootstrap", "20"]
    predictions = {}
    for label, spec in (("hf", "tiny-paligemma"), ("npz", str(path))):
        out = tmp_path / label
        done = subprocess.run(cli("run", "--model", spec, "--npz-base", "tiny-paligemma",
                                  "--output", str(out), *common), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        lines = (out / "predictions" / "vqav2_val.jsonl").read_text().splitlines()
        predictions[label] = sorted(line.split('"id"')[1] for line in lines)
    assert predictions["hf"] == predictions["npz"]
    done = subprocess.run(cli("convert", str(path), "--npz-base", "tiny-paligemma", "--dtype",
                              "float32", "--output", str(tmp_path / "converted")),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    converted = load_model(str(tmp_path / "converted"), device="cpu")
    torch.testing.assert_close(logits(converted), logits(model), atol=1e-5, rtol=1e-5)
