"""Fixtures for the video tasks: short synthetic clips (a shape moving across a scene) written
as video files beside JSONL annotations in the layouts tasks/video.py reads."""

from __future__ import annotations

import io
import random

from PIL import Image

from paligemma_eval.harness.demo import world
from paligemma_eval.harness.demo.fixtures import _references

CLIPS = 8
FRAMES = 20


def encode_video(frames: list[Image.Image], codec: str = "mpeg4", container: str = "mp4",
                 fps: int = 10) -> bytes:
    """A video file's bytes made with PyAV (FFmpeg's encoders inside the wheel). "ffv1" in
    "matroska" is lossless (RGB kept exactly), for tests that read pixel values back."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=fps)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "bgr0" if codec == "ffv1" else "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return buffer.getvalue()


def clip(rng: random.Random) -> tuple[world.Scene, bytes]:
    scene = world.random_scene(rng, count=1)
    x, y = scene.positions[0]
    frames = []
    for t in range(FRAMES):  # the shape drifts right, one pixel a frame, then wraps
        moved = world.Scene(scene.shape, scene.color, scene.background, 1,
                            (((x + t) % (world.IMAGE_SIZE - world.SHAPE_SIZE), y),))
        frames.append(moved.render().resize((64, 64), Image.NEAREST))
    return scene, encode_video(frames)


def captions(id_column: str, refs_column: str):
    def make(rng: random.Random) -> list[dict]:
        rows = []
        for i in range(CLIPS):
            scene, video = clip(rng)
            name = f"videos/clip{i:03d}.mp4"
            rows.append({id_column: f"clip{i:03d}", refs_column: _references(scene, rng, 4),
                         "video": name, "_files": {name: video}})
        return rows
    return make


def qa(video_id_column: str):
    def make(rng: random.Random) -> list[dict]:
        rows = []
        for i in range(CLIPS):
            scene, video = clip(rng)
            question, answer, kind = rng.choice(world.questions(scene))
            name = f"videos/clip{i:03d}.mp4"
            rows.append({"question_id": str(7000 + i), video_id_column: f"clip{i:03d}",
                         "question": question, "answer": answer, "type": kind,
                         "video": name, "_files": {name: video}})
        return rows
    return make


JSONL_FIXTURES = {
    ("msrvtt/caption", None, "test"): captions("video_id", "captions"),
    ("activitynet/captions", None, "test"): captions("video_id", "captions"),
    ("lmms-eval/VATEX", "vatex_test", "test"): captions("videoID", "enCap"),
    ("msrvtt/qa", None, "test"): qa("video_id"),
    ("msvd/qa", None, "test"): qa("video_id"),
    ("lmms-eval/ActivityNetQA", None, "test"): qa("video_name"),
}
FIXTURES: dict = {}
