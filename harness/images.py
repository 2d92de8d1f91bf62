"""Pixels as big_vision's input pipeline makes them: `decode` as `tf.io.decode_image(channels=3)`,
`resize` as `tf.image.resize` followed by `tf.cast` back to uint8 (ops_image.py's `resize`).

- JPEG: TensorFlow decodes with libjpeg-turbo's fast integer DCT (JDCT_IFAST) and fancy
  upsampling; PIL uses the accurate DCT (up to 11 levels apart). simplejpeg wraps libjpeg-turbo
  and exposes both switches. CMYK / YCCK JPEGs are converted to RGB with TensorFlow's formula.
- PNG and the rest (PIL, lossless): alpha and a transparency colour are dropped, never
  composited (TensorFlow ignores transparency); palette and grayscale expanded to RGB; 16-bit
  samples reduced to 8 bits by their high byte, as libpng's strip_16 does for TensorFlow.
- Resize: bilinear with half-pixel centres, with or without antialias (a triangle filter widened
  by the downscale factor), computed in float32 and truncated to uint8 (`tf.cast`), not rounded.

tests/test_preprocessing_tf.py checks every case against TensorFlow's own ops, within one level.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

JPEG_SOI = b"\xff\xd8"
RESIZE_METHODS = ("bilinear", "bilinear-antialias")


def decode(data: bytes) -> np.ndarray:
    """An (h, w, 3) uint8 array, as tf.io.decode_image(data, channels=3) gives it."""
    if data[:2] == JPEG_SOI:
        return decode_jpeg(data)
    try:
        opened = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:   # PIL's message names a buffer's address: say what it held
        raise UnidentifiedImageError(
            f"cannot identify image file ({len(data)} bytes, starting {data[:8]!r})") from None
    with opened as image:
        return rgb(image)


def decode_jpeg(data: bytes) -> np.ndarray:
    import simplejpeg

    colorspace = simplejpeg.decode_jpeg_header(data)[2]
    if colorspace not in ("CMYK", "YCCK"):
        return simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=True, fastupsample=False)
    cmyk = simplejpeg.decode_jpeg(data, colorspace="CMYK", fastdct=True,
                                  fastupsample=False).astype(np.int32)
    ink, k = cmyk[..., :3], cmyk[..., 3:]
    # TensorFlow's jpeg_mem.cc: Adobe files store inverted CMYK
    rgb = ink * k // 255 if _adobe_marker(data) else (255 - ink) * (255 - k) // 255
    return rgb.astype(np.uint8)


def _adobe_marker(data: bytes) -> bool:
    """Whether an APP14 "Adobe" segment precedes the image data (libjpeg's saw_Adobe_marker)."""
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker in (0xDA, 0xD9):   # start of scan / end of image: no more header segments
            return False
        length = int.from_bytes(data[position + 2:position + 4], "big")
        if marker == 0xEE and data[position + 4:position + 9] == b"Adobe":
            return True
        position += 2 + length
    return False


def rgb(image: Image.Image) -> np.ndarray:
    image.seek(0)   # animations: the first frame (decode_image with expand_animations=False)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):   # 16-bit grayscale
        gray = (np.asarray(image).astype(np.uint32) >> 8).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    # Alpha is dropped (convert does not composite), and the array carries no `transparency`
    # tag that the processor would later composite onto white.
    return np.array(image.convert("RGB"), dtype=np.uint8)


def resize(pixels: np.ndarray, size: int, antialias: bool) -> np.ndarray:
    """(h, w, 3) uint8 -> (size, size, 3) uint8 as tf.cast(tf.image.resize(..., "bilinear",
    antialias), tf.uint8)."""
    if pixels.shape[:2] == (size, size):
        return pixels
    import torch   # here: the verbs that only read images' headers need no torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.array(pixels, dtype=np.uint8)).permute(2, 0, 1)[None].float()
    out = F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False,
                        antialias=antialias)
    # tf.cast truncates toward zero; the filter's weights are non-negative, so out >= 0
    return out[0].permute(1, 2, 0).clamp(0, 255).to(torch.uint8).numpy()
