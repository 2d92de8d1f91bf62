"""A tiny synthetic visual world: coloured shapes on a plain background.

The embedded demo models are trained on it and every fixture dataset is drawn from it, so the
demo's numbers mean something (a model that looks at the image beats chance) while staying small
enough to commit. Scenes are a pure function of a seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

COLORS = {"red": (220, 30, 30), "green": (30, 170, 40), "blue": (40, 60, 220)}
BACKGROUNDS = {"white": (250, 250, 250), "black": (10, 10, 10), "gray": (128, 128, 128)}
SHAPES = ("circle", "square", "triangle")
NUMBER_WORDS = {1: "one", 2: "two", 3: "three"}
IMAGE_SIZE = 56


@dataclass(frozen=True)
class Scene:
    shape: str
    color: str
    background: str
    count: int
    # Top-left corners of each shape, in pixels; every shape is SHAPE_SIZE square.
    positions: tuple[tuple[int, int], ...]

    @property
    def caption(self) -> str:
        plural = "s" if self.count > 1 else ""
        return f"{NUMBER_WORDS[self.count]} {self.color} {self.shape}{plural} on {self.background}"

    def boxes(self) -> list[tuple[float, float, float, float]]:
        """Normalised (y_min, x_min, y_max, x_max) of each shape, PaliGemma's box order."""
        return [(y / IMAGE_SIZE, x / IMAGE_SIZE, (y + SHAPE_SIZE) / IMAGE_SIZE,
                 (x + SHAPE_SIZE) / IMAGE_SIZE) for x, y in self.positions]

    def polygon(self, index: int = 0) -> list[float]:
        """The shape's outline as a flat COCO polygon [x1, y1, x2, y2, ...] in pixels."""
        x, y = self.positions[index]
        size = SHAPE_SIZE
        if self.shape == "triangle":
            points = [(x + size / 2, y), (x, y + size), (x + size, y + size)]
        elif self.shape == "square":
            points = [(x, y), (x + size, y), (x + size, y + size), (x, y + size)]
        else:
            import math
            points = [(x + size / 2 + size / 2 * math.cos(2 * math.pi * k / 16),
                       y + size / 2 + size / 2 * math.sin(2 * math.pi * k / 16)) for k in range(16)]
        return [round(c, 2) for point in points for c in point]

    def render(self) -> Image.Image:
        image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), BACKGROUNDS[self.background])
        draw = ImageDraw.Draw(image)
        fill = COLORS[self.color]
        for x, y in self.positions:
            box = (x, y, x + SHAPE_SIZE - 1, y + SHAPE_SIZE - 1)
            if self.shape == "circle":
                draw.ellipse(box, fill=fill)
            elif self.shape == "square":
                draw.rectangle(box, fill=fill)
            else:
                draw.polygon([(x + SHAPE_SIZE // 2, y), (x, y + SHAPE_SIZE - 1),
                              (x + SHAPE_SIZE - 1, y + SHAPE_SIZE - 1)], fill=fill)
        return image


SHAPE_SIZE = 16
# Three fixed slots that never overlap, so counting is well defined.
_SLOTS = ((4, 4), (34, 8), (18, 34))


def random_scene(rng: random.Random, **fixed: object) -> Scene:
    """A random scene; keyword arguments pin attributes (shape=, color=, background=, count=)."""
    shape = fixed.get("shape") or rng.choice(SHAPES)
    color = fixed.get("color") or rng.choice(sorted(COLORS))
    background = fixed.get("background") or rng.choice(sorted(BACKGROUNDS))
    count = int(fixed.get("count") or rng.randint(1, 3))
    slots = rng.sample(_SLOTS, count)
    jitter = [(x + rng.randint(0, 4), y + rng.randint(0, 4)) for x, y in slots]
    return Scene(str(shape), str(color), str(background), count, tuple(jitter))


def questions(scene: Scene) -> list[tuple[str, str, str]]:
    """(question, answer, VQA answer type) triples that the scene answers."""
    return [
        ("what color is the shape?", scene.color, "other"),
        ("what shape is it?", scene.shape, "other"),
        ("what color is the background?", scene.background, "other"),
        ("how many shapes are there?", str(scene.count), "number"),
    ]


def yes_no_question(scene: Scene, rng: random.Random) -> tuple[str, str]:
    """A POPE-style existence question, answered yes half of the time."""
    others = [s for s in SHAPES if s != scene.shape]
    asked = scene.shape if rng.random() < 0.5 else rng.choice(others)
    return f"is there a {asked} in the image?", "yes" if asked == scene.shape else "no"


def loc_tokens(box: tuple[float, float, float, float]) -> str:
    """Four <locNNNN> tokens: round(coordinate * 1023), as PaliGemma writes boxes."""
    return "".join(f"<loc{round(v * 1023):04d}>" for v in box)


# An arbitrary but fixed 16-token mask code per shape, so the demo model learns the output format.
SEG_CODES = {shape: "".join(f"<seg{(7 * i + 31 * k) % 128:03d}>" for i in range(16))
             for k, shape in enumerate(SHAPES)}
