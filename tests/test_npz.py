import copy
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
    batch = model.prepare([[image]], [prompt])
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
    images = [[Image.new("RGB", (56, 56), c)] for c in ((200, 30, 30), (30, 30, 200))]
    prompts = ["caption en", "answer en what shape is it?"]
    assert loaded.generate(images, prompts, 12) == model.generate(images, prompts, 12)


@pytest.mark.parametrize("compressed", [False, True])
def test_padded_embedding_rows_are_zeros_and_the_file_is_never_written(tmp_path, compressed):
    """Stored, the embedding is mapped with transformers' extra rows over the bytes that follow
    it and those rows zeroed in the private mapping; compressed, it is copied into a padded
    table. Either way the padding is zeros and the file is unchanged."""
    import hashlib

    from paligemma_eval.harness.npz import NpzCheckpoint
    from tests.npz_writer import big_vision_arrays

    model = load_model("tiny-paligemma", device="cpu")
    arrays = big_vision_arrays(model.model)
    path = tmp_path / "m.npz"
    (np.savez_compressed if compressed else np.savez)(
        path, **{f"params/{k}": v for k, v in arrays.items()})
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    embedding = arrays["llm/embedder/input_embedding"]
    vocab = model.model.config.text_config.vocab_size
    assert vocab > embedding.shape[0]
    ckpt = NpzCheckpoint(str(path))
    assert (ckpt.mapped("llm/embedder/input_embedding", rows=vocab) is None) == compressed
    ckpt.close()
    loaded = load_npz(str(path), dtype="float32", device="cpu", base="tiny-paligemma")
    table = loaded.model.get_input_embeddings().weight.detach()
    assert table.shape[0] == vocab
    assert torch.equal(table[:embedding.shape[0]], torch.from_numpy(embedding))
    assert not table[embedding.shape[0]:].any()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_layers_stream_from_c_and_fortran_ordered_stacks(tmp_path):
    from paligemma_eval.harness.npz import NpzCheckpoint

    stack = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    np.savez(tmp_path / "m.npz",
             **{"params/img/a": stack, "params/llm/b": np.asfortranarray(stack)})
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


def _rchar() -> int:
    for line in open("/proc/self/io"):
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.mark.parametrize("compressed", [False, True])
def test_loading_reads_each_byte_of_the_file_about_once(original, tmp_path, compressed):
    from paligemma_eval.harness.npz import NpzCheckpoint, _all_params
    from tests.npz_writer import big_vision_arrays

    name, model = original
    path = tmp_path / "ckpt.npz"
    arrays = {f"params/{k}": v for k, v in big_vision_arrays(model.model).items()}
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    before = _rchar()
    ckpt = NpzCheckpoint(str(path))
    variant = infer_variant(ckpt.shapes(), strict=False)
    vocab = model.model.config.text_config.vocab_size
    loaded = sum(t.numel() for _, t in _all_params(ckpt, variant, vocab))
    ckpt.close()
    read = _rchar() - before
    assert loaded > 0
    # stored: every byte at most once (plus headers); deflated: the compressed stream once
    assert read <= 1.1 * path.stat().st_size + 64 * 1024, (read, path.stat().st_size)


def test_device_map_auto_places_each_tensor_as_it_is_read(original, tmp_path):
    name, model = original
    path = write_npz(model.model, tmp_path / "m.npz", bfloat16=name.endswith("2"))
    placed = load_model(str(path), dtype="float32", device="cpu", device_map="auto",
                        npz_base=name)
    assert {p.device.type for p in placed.model.parameters()} == {"cpu"}
    torch.testing.assert_close(logits(placed), logits(model), atol=1e-5, rtol=1e-5)


def _headers_only_npz(path, shapes: dict) -> None:
    """A published-variant-shaped .npz whose members hold only their .npy headers: enough for
    shape inference, nothing to load (the checks must fail before any weight is read)."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, shape in shapes.items():
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                          "shape": shape})
            archive.writestr(f"params/{name}.npy", header.getvalue())


def test_missing_tokenizer_fails_fast_naming_npz_base(tmp_path, data_dir):
    import os

    from tests.npz_writer import published_shapes

    path = tmp_path / "paligemma2-28b-pt-224.npz"
    _headers_only_npz(path, published_shapes("paligemma2", "28B", 224))
    # Not a timing: the hub client's minutes of retries (146 s measured) would end in the
    # timeout's exception instead of the one-line error.
    done = subprocess.run(cli("run", "--model", str(path), "--tasks", "vqav2_val", "--data-dir",
                              str(data_dir), "--output", str(tmp_path / "o")),
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2 and "--npz-base" in done.stderr, done.stderr
    assert "google/paligemma2-28b-pt-224" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def _npz_case(tmp_path, case: str) -> tuple[str, list[str]]:
    from tests.npz_writer import big_vision_arrays

    model = load_model("tiny-paligemma", device="cpu")
    arrays = big_vision_arrays(model.model)
    base = ["--npz-base", "tiny-paligemma"]
    if case == "wrong shape":
        arrays["img/head/bias"] = np.zeros(arrays["img/head/bias"].shape[0] + 1, np.float32)
    if case == "vocabulary larger than the base's":
        embedding = arrays["llm/embedder/input_embedding"]
        arrays["llm/embedder/input_embedding"] = np.concatenate([embedding, embedding])
    path = tmp_path / "m.npz"
    np.savez(path, **{f"params/{k}": v for k, v in arrays.items()})
    if case == "no such base":
        base = ["--npz-base", str(tmp_path / "nowhere")]
    if case == "base without config":
        (tmp_path / "empty").mkdir()
        base = ["--npz-base", str(tmp_path / "empty")]
    if case == "base of the other family":
        base = ["--npz-base", "tiny-paligemma2"]
    if case == "missing part00":
        parts = split(path, 3)
        path.unlink()
        parts[0].unlink()
        return str(parts[1]), base
    return str(path), base


@pytest.mark.parametrize("case, message", [
    ("wrong shape", "linear.bias has shape (65,)"),
    ("vocabulary larger than the base's", "vocabulary"),
    ("no such base", "no such directory"), ("base without config", "no config.json"),
    ("base of the other family", "paligemma2"), ("missing part00", "missing part(s) [0]"),
])
def test_bad_checkpoints_are_one_line_errors(tmp_path, data_dir, case, message):
    spec, base = _npz_case(tmp_path, case)
    done = subprocess.run(cli("run", "--model", spec, *base, "--tasks", "mmvp", "--data-dir",
                              str(data_dir), "--output", str(tmp_path / "o")),
                          capture_output=True, text=True)
    assert done.returncode == 2, (case, done.stderr[-800:])
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr[-800:]
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_buffers_go_where_the_plan_puts_their_module(tmp_path):
    """The memory-less model makes its buffers (position ids, rotary frequencies) on the CPU;
    left there, a model loaded onto a GPU fails at its first forward."""
    from paligemma_eval.harness.npz import _place_buffers

    model = load_model("tiny-paligemma2", device="cpu")
    path = write_npz(model.model, tmp_path / "m.npz", bfloat16=True)
    loaded = load_npz(str(path), dtype="float32", device="cpu", base="tiny-paligemma2").model
    buffers = dict(loaded.named_buffers())
    assert any(n.startswith("model.vision_tower") for n in buffers) and \
        any(n.startswith("model.language_model") for n in buffers)
    _place_buffers(loaded, {"": "cpu", "model.vision_tower": "meta"})
    for name, buffer in loaded.named_buffers():
        assert buffer.device.type == ("meta" if name.startswith("model.vision_tower") else "cpu")


def test_an_embedding_larger_than_the_models_vocabulary_is_named_not_truncated(tmp_path):
    from paligemma_eval.harness.npz import load_weights

    model = load_model("tiny-paligemma", device="cpu")
    path = write_npz(model.model, tmp_path / "m.npz")
    config = copy.deepcopy(model.model.config)
    config.text_config.vocab_size = 100
    with pytest.raises(ModelError, match=r"embed_tokens.weight has shape \(\d+, \d+\) in the "
                                         r"checkpoint, the model expects \(100, "):
        load_weights(str(path), dtype="float32", config=config)
