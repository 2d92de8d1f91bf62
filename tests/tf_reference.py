"""Run under a Python with tensorflow: big_vision's `decode|resize(size[, antialias=True])` on every
file of a folder, written to one .npz (keys `<file>/decoded`, `<file>/<size>/<antialias>`).

big_vision's ops: tf.io.decode_image(data, channels=3, expand_animations=False), then
tf.cast(tf.image.resize(image, (size, size), method="bilinear", antialias=...), tf.uint8).
Usage: python tf_reference.py FOLDER OUT.npz SIZE [SIZE ...]
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def main() -> None:
    folder, out, sizes = Path(sys.argv[1]), sys.argv[2], [int(s) for s in sys.argv[3:]]
    arrays = {}
    for path in sorted(folder.iterdir()):
        image = tf.io.decode_image(path.read_bytes(), channels=3, expand_animations=False)
        arrays[f"{path.name}/decoded"] = image.numpy()
        for size in sizes:
            for antialias in (False, True):
                resized = tf.image.resize(image, (size, size), method="bilinear",
                                          antialias=antialias)
                arrays[f"{path.name}/{size}/{antialias}"] = tf.cast(resized, tf.uint8).numpy()
    np.savez(out, **arrays)


if __name__ == "__main__":
    main()
