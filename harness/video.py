"""Video examples as big_vision's video transfers read them: `count` frames, `stride` apart.

big_vision's eval reader (DMVR-style, not released) samples with `deterministic_fs=True`: from the
first frame, `stride` frames apart; `video_replicate_img(n, n)` then tiles a short clip and keeps
the first n frames, so a clip with fewer frames loops. Each frame is then resized on its own
(`video_decode(res)`: bilinear, no antialias) and goes through the vision tower on its own.

Decoded with PyAV: FFmpeg's decoders inside the wheel, so no system FFmpeg and no shelling out
(torchcodec needs a system FFmpeg of a matching version and a torch of its own release line).
Frames are decoded one by one and only the sampled ones are kept, so a long clip never sits in
memory whole.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

from paligemma_eval.harness.registry import Frames


def sample_indices(available: int, frames: Frames) -> list[int]:
    """Indices into a clip of `available` frames: 0, stride, 2 * stride, ... while they exist,
    then the selection tiled until there are `count` (video_replicate_img)."""
    if available <= 0:
        raise ValueError("the video has no frames")
    chosen = list(range(0, available, frames.stride))[:frames.count]
    return [chosen[i % len(chosen)] for i in range(frames.count)]


def _source(cell: Any) -> Any:
    if isinstance(cell, dict):
        if cell.get("bytes"):
            return io.BytesIO(cell["bytes"])
        cell = cell.get("path")
    if isinstance(cell, (str, Path)) and str(cell):
        return str(cell)
    raise ValueError("video cell is empty")


def decode_frames(cell: Any, frames: Frames) -> list[Image.Image]:
    """The sampled frames of a video cell ({bytes, path} or a path), as RGB images."""
    import av

    kept: list[Image.Image] = []
    seen = 0
    with av.open(_source(cell)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            seen = index + 1
            if index % frames.stride == 0:
                kept.append(frame.to_image().convert("RGB"))
                if len(kept) == frames.count:
                    break
    order = sample_indices(seen, frames)
    by_index = dict(zip(range(0, seen, frames.stride), kept))
    return [by_index[i] for i in order]
