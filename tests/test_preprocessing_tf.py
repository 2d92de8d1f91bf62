"""Images reach the model as big_vision's `decode|resize` makes them with TensorFlow: within one
8-bit level, for PNG (RGB, grayscale, RGBA, palette and RGB with a transparency colour, 16-bit
grayscale and RGB) and JPEG (4:2:0, 4:4:4, grayscale, CMYK), at 224 / 448 / 896, bilinear with
and without antialias.

TensorFlow runs in its own interpreter (tests/tf_reference.py): $PALIGEMMA_EVAL_TF_PYTHON, else
.venv-tf/bin/python (`make test-tf` builds it), else this interpreter if it imports tensorflow.
"""

from __future__ import annotations

import importlib.util
import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from paligemma_eval.harness import data

ROOT = Path(__file__).resolve().parent.parent
SIZES = (224, 448, 896)
METHODS = {False: "bilinear", True: "bilinear-antialias"}


def tf_python() -> str | None:
    configured = os.environ.get("PALIGEMMA_EVAL_TF_PYTHON")
    if configured:
        return configured
    if (ROOT / ".venv-tf" / "bin" / "python").is_file():
        return str(ROOT / ".venv-tf" / "bin" / "python")
    return sys.executable if importlib.util.find_spec("tensorflow") else None


def scene(rng: np.random.Generator, height: int = 301, width: int = 397) -> np.ndarray:
    """Gradients, hard-edged shapes and noise: the detail that DCT and filters treat differently."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (height + width)], -1)
    for _ in range(12):
        cy, cx, r = rng.integers(0, height), rng.integers(0, width), rng.integers(8, 60)
        image[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.integers(0, 256, 3)
    image += rng.normal(0, 12, image.shape)
    return image.clip(0, 255).astype(np.uint8)


def png_16bit_rgb(pixels: np.ndarray) -> bytes:
    """A 16-bit RGB PNG (PIL cannot write one), samples v * 257 + noise in the low byte."""
    height, width, _ = pixels.shape
    samples = (pixels.astype(np.int32) * 257 - (pixels > 0) * 100).astype(">u2")
    raw = b"".join(b"\x00" + samples[row].tobytes() for row in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + checksum

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def made_images(rng: np.random.Generator) -> dict[str, bytes]:
    pixels = scene(rng)
    rgb = Image.fromarray(pixels)
    alpha = Image.fromarray(rng.integers(0, 256, pixels.shape[:2], dtype=np.uint8))
    palette = rgb.quantize(64)
    common = tuple(int(v) for v in np.asarray(palette.convert("RGB"))[150, 200])
    gray16 = (pixels[..., 0].astype(np.uint16) * 257 - 77).clip(0).astype(np.uint16)
    return {
        "rgb.png": encoded(rgb, "PNG"),
        "gray.png": encoded(rgb.convert("L"), "PNG"),
        "rgba.png": encoded(Image.merge("RGBA", (*rgb.split(), alpha)), "PNG"),
        # the most common palette entry transparent: TF keeps its colour
        "palette_transparent.png": encoded(palette, "PNG", transparency=int(
            np.bincount(np.asarray(palette).ravel()).argmax())),
        "rgb_transparent_colour.png": encoded(palette.convert("RGB"), "PNG", transparency=common),
        "gray16.png": encoded(Image.fromarray(gray16), "PNG"),
        "rgb16.png": png_16bit_rgb(pixels),
        "420.jpg": encoded(rgb, "JPEG", quality=85, subsampling=2),
        "444.jpg": encoded(rgb, "JPEG", quality=95, subsampling=0),
        "gray.jpg": encoded(rgb.convert("L"), "JPEG", quality=90),
        "cmyk.jpg": encoded(rgb.convert("CMYK"), "JPEG", quality=90),
    }


@pytest.fixture(scope="module")
def tensorflow_pipeline(tmp_path_factory) -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    python = tf_python()
    if python is None:
        pytest.skip("tensorflow is not installed (make test-tf builds .venv-tf with it)")
    folder = tmp_path_factory.mktemp("images")
    images = made_images(np.random.default_rng(0))
    for name, content in images.items():
        (folder / name).write_bytes(content)
    out = folder.parent / "tf.npz"
    subprocess.run([python, str(ROOT / "tests" / "tf_reference.py"), str(folder), str(out),
                    *map(str, SIZES)], check=True, timeout=300)
    with np.load(out) as arrays:
        return images, dict(arrays)


def steps(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def test_decoding_equals_tensorflow(tensorflow_pipeline):
    images, reference = tensorflow_pipeline
    worst = {name: steps(np.asarray(data.decode_image({"bytes": content})),
                         reference[f"{name}/decoded"]) for name, content in images.items()}
    assert all(v <= 1 for v in worst.values()), worst


@pytest.mark.parametrize("size", SIZES)
def test_decode_and_resize_equal_tensorflow(tensorflow_pipeline, size):
    images, reference = tensorflow_pipeline
    worst = {}
    for name, content in images.items():
        for antialias, method in METHODS.items():
            ours = data.resize(data.decode_image({"bytes": content}), size, method)
            worst[name, method] = steps(np.asarray(ours), reference[f"{name}/{size}/{antialias}"])
    assert all(v <= 1 for v in worst.values()), worst


# Without TensorFlow: the rules the comparison above measures, on hand-computed cases.

def test_resize_truncates_back_to_8_bits_as_tf_cast():
    image = Image.fromarray(np.array([[[0] * 3, [3] * 3], [[0] * 3, [3] * 3]], dtype=np.uint8))
    for method in METHODS.values():   # both filters average the four pixels: 1.5 -> 1, not 2
        assert np.asarray(data.resize(image, 1, method)).tolist() == [[[1, 1, 1]]]


def test_16bit_png_keeps_the_high_byte_and_transparency_is_not_carried():
    images = made_images(np.random.default_rng(1))
    with Image.open(io.BytesIO(images["gray16.png"])) as source:
        expected = np.asarray(source).astype(np.uint32) >> 8
    decoded = data.decode_image({"bytes": images["gray16.png"]})
    assert np.array_equal(np.asarray(decoded)[..., 1], expected)
    assert decoded.mode == "RGB" and (np.asarray(decoded) == 255).mean() < 0.1  # not clipped white
    for name in ("palette_transparent.png", "rgb_transparent_colour.png", "rgba.png"):
        decoded = data.decode_image({"bytes": images[name]})
        assert decoded.mode == "RGB" and "transparency" not in decoded.info, name


def test_the_processor_only_rescales_a_resized_image():
    """value_range(-1, 1) of exactly these pixels: no composite onto white, no second resize."""
    from transformers import AutoProcessor

    from paligemma_eval.harness.models import EMBEDDED

    processor = AutoProcessor.from_pretrained(EMBEDDED["tiny-paligemma2"])
    content = made_images(np.random.default_rng(2))["palette_transparent.png"]
    image = data.resize(data.decode_image({"bytes": content}), 224, "bilinear-antialias")
    pixels = processor(text=["<image>caption en"], images=[image],
                       return_tensors="pt")["pixel_values"][0].permute(1, 2, 0).numpy()
    assert np.abs(pixels - (np.asarray(image) / 127.5 - 1)).max() < 1e-5


def test_stvqa_is_resized_as_big_vision_stvqa_config():
    from paligemma_eval.harness.registry import all_tasks

    assert all_tasks()["stvqa_test"].resize == "bilinear-antialias"
