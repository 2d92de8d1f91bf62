import json
import subprocess

import numpy as np
import pytest
import torch

from paligemma_eval.harness.demo.fixtures import write_seg_decoder
from paligemma_eval.tasks.metrics import segmentation as seg
from paligemma_eval.tasks.refcoco import score_detection, score_segmentation
from paligemma_eval.tasks.seg_decoder import SegDecoder
from tests.conftest import cli

SEG16 = "".join(f"<seg{i:03d}>" for i in range(16))


# --- an independent NumPy forward pass of the decoder --------------------------------------
def conv(x, w, b, padding):
    """x [C, H, W], w [O, C, k, k] (PyTorch layout), stride 1."""
    k = w.shape[-1]
    x = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    h, wd = x.shape[1] - k + 1, x.shape[2] - k + 1
    out = np.zeros((w.shape[0], h, wd))
    for i in range(k):
        for j in range(k):
            out += np.einsum("oc,chw->ohw", w[:, :, i, j], x[:, i:i + h, j:j + wd])
    return out + b[:, None, None]


def conv_transpose(x, w, b):
    """x [C, H, W], w [C, O, 4, 4] (PyTorch layout), stride 2, padding 1, written directly."""
    c, h, wd = x.shape
    full = np.zeros((w.shape[1], 2 * (h - 1) + 4, 2 * (wd - 1) + 4))
    for i in range(h):
        for j in range(wd):
            full[:, 2 * i:2 * i + 4, 2 * j:2 * j + 4] += np.einsum("c,cokl->okl", x[:, i, j], w)
    return full[:, 1:-1, 1:-1] + b[:, None, None]


def numpy_decode(arrays, indices):
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    p = lambda name: arrays[name].astype(np.float64)  # noqa: E731
    x = p("_vq_vae._embedding")[indices].reshape(4, 4, -1).transpose(2, 0, 1)
    x = relu(conv(x, p("decoder.0.weight"), p("decoder.0.bias"), 0))
    for block in ("decoder.2", "decoder.3"):
        y = relu(conv(x, p(f"{block}.net.0.weight"), p(f"{block}.net.0.bias"), 1))
        y = relu(conv(y, p(f"{block}.net.2.weight"), p(f"{block}.net.2.bias"), 1))
        x = x + conv(y, p(f"{block}.net.4.weight"), p(f"{block}.net.4.bias"), 0)
    for layer in ("decoder.4", "decoder.6", "decoder.8", "decoder.10"):
        x = relu(conv_transpose(x, p(f"{layer}.weight"), p(f"{layer}.bias")))
    return conv(x, p("decoder.12.weight"), p("decoder.12.bias"), 0)[0]


def test_decoder_matches_numpy_forward(tmp_path):
    path = write_seg_decoder(tmp_path / "vae-oid.npz", width=24, seed=1)
    arrays = np.load(path)
    decoder = SegDecoder.from_npz(path)
    indices = np.array([[5, 17, 3, 127, 0, 64, 9, 9, 1, 2, 3, 4, 100, 50, 25, 12],
                        list(range(16))])
    ours = decoder(torch.tensor(indices)).numpy()
    assert ours.shape == (2, 64, 64)
    for row, expected in zip(ours, (numpy_decode(arrays, i) for i in indices)):
        np.testing.assert_allclose(row, expected, atol=1e-5, rtol=1e-5)


def test_not_a_decoder_file(tmp_path):
    np.savez(tmp_path / "x.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="not a PaliGemma VQ-VAE file"):
        SegDecoder.from_npz(tmp_path / "x.npz")


# --- parser, pasting and IoU on hand-made cases ---------------------------------------------
def test_parser_reads_objects_and_rejects_garbage():
    a, b = seg.parse("<loc0100><loc0200><loc0300><loc0400>" + SEG16 + " cat ; "
                     "<loc0000><loc0000><loc1023><loc1023> dog")
    assert a.box == pytest.approx((100 / 1023, 200 / 1023, 300 / 1023, 400 / 1023))
    assert a.seg == tuple(range(16)) and a.label == "cat"
    assert b.seg is None and b.label == "dog"
    assert seg.first_object("<loc0300><loc0000><loc0100><loc0500>").problem.startswith("empty")
    assert seg.first_object("<loc1024><loc0000><loc1000><loc0500>").problem.endswith("range")
    assert seg.first_object("<loc0001><loc0002>").box is None          # truncated
    assert seg.first_object("\x00\xff garbage <script>").box is None
    assert seg.first_object("<loc0100><loc0200><loc0300><loc0400><seg001><seg002>").seg is None


def test_paste_and_iou_by_hand():
    ones = np.ones((64, 64))
    # A box over the whole 10x10 image against a left-half mask: IoU 50/100.
    full = seg.paste_mask(ones, (0.0, 0.0, 1.0, 1.0), 10, 10)
    truth = np.zeros((10, 10), bool)
    truth[:, :5] = True
    assert seg.iou(full, truth) == 0.5
    # A 1-pixel box: loc 307 -> int(0.3001 * 10) = 3, loc 410 -> int(4.0078) = 4.
    y1, y2 = 307 / 1023, 410 / 1023
    pixel = seg.paste_mask(ones, (y1, y1, y2, y2), 10, 10)
    assert pixel.sum() == 1 and pixel[3, 3]
    # loc 409 -> int(3.998) = 3: no whole pixel, an empty mask, IoU 0.
    assert seg.paste_mask(ones, (y1, y1, 409 / 1023, 409 / 1023), 10, 10).sum() == 0
    # A box at the bottom-right border stays inside the canvas.
    corner = seg.paste_mask(ones, (0.8, 0.8, 1.0, 1.0), 10, 10)
    assert corner.sum() == 4 and corner[9, 9]
    # Negative logits: nothing is mask.
    assert seg.paste_mask(-ones, (0.0, 0.0, 1.0, 1.0), 10, 10).sum() == 0
    assert seg.box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)


@pytest.fixture
def constant_decoder(tmp_path, monkeypatch):
    """A decoder whose every mask logit is `value`: all weights 0, final bias = value."""
    def make(value: float):
        path = write_seg_decoder(tmp_path / f"vae{value}.npz", width=8)
        arrays = {k: np.zeros_like(v) for k, v in np.load(path).items()}
        arrays["decoder.12.bias"] = np.array([value], dtype=np.float32)
        np.savez(path, **arrays)
        monkeypatch.setenv("PALIGEMMA_SEG_DECODER", str(path))
    return make


def target(height=10, width=10):
    # Ground truth: the 4x4 square at rows/cols 2..5 (pixels), as a COCO polygon.
    return {"segmentation": [2, 2, 6, 2, 6, 6, 2, 6], "bbox": [2.0, 2.0, 4.0, 4.0],
            "height": height, "width": width}


def locs(y1, x1, y2, x2):
    return "".join(f"<loc{v:04d}>" for v in (y1, x1, y2, x2))


def test_segmentation_scores_by_hand(constant_decoder):
    constant_decoder(1.0)
    exact = locs(205, 205, 614, 614) + SEG16     # int(2.004)=2 .. int(6.002)=6: the square
    wide = locs(205, 205, 818, 818) + SEG16      # int(7.996)=7: rows/cols 2..6, 16 of 25 px
    predictions = [exact, wide, locs(205, 205, 614, 614) + "<seg001>",  # too few seg tokens
                   locs(600, 205, 205, 614) + SEG16, "garbage"]
    scores = score_segmentation([str(i) for i in range(5)], predictions, [target()] * 5)
    values = {k: r.value for k, r in scores.ratios.items()}
    assert values["miou"] == pytest.approx((1 + 16 / 25) / 5)
    assert values["invalid"] == pytest.approx(3 / 5)
    # Invalid outputs predict nothing: intersection 0, union = the 16 truth pixels.
    assert values["ciou"] == pytest.approx((16 + 16) / (16 + 25 + 16 + 16 + 16))
    # Boxes (continuous): exact IoU 1, wide ~0.45 < 0.5; the short-seg one loses its box too.
    assert values["box_acc@0.5"] == pytest.approx(1 / 5)
    assert values["box_acc@0.75"] == pytest.approx(1 / 5)


@pytest.mark.parametrize("prediction, problem", [
    ("the dog " + locs(205, 205, 614, 614) + SEG16, "does not begin with four <loc>"),
    ("<loc0205><loc0205><loc0614>" + SEG16, "does not begin with four <loc>"),
    (locs(205, 205, 614, 614) + SEG16[:-len("<seg001>")], "missing or malformed <seg>"),
    (locs(205, 205, 614, 614) + "<seg001> x" + SEG16, "missing or malformed <seg>"),
    (locs(205, 205, 614, 614) + SEG16.replace("<seg001>", "<seg200>", 1), "malformed <seg>"),
])
def test_big_vision_parsing_rules(constant_decoder, prediction, problem):
    constant_decoder(1.0)
    assert problem in seg.first_object(prediction, need_seg=True).problem
    scores = score_segmentation(["a"], [prediction], [target()])
    assert scores.ratios["invalid"].value == 1.0 and scores.ratios["miou"].value == 0.0
    assert scores.ratios["box_acc@0.5"].value == 0.0   # invalid for box accuracy too


def test_a_box_that_collapses_to_no_pixel_keeps_its_box_iou(constant_decoder):
    """big_vision: box IoU in normalised coordinates for every valid output; only the mask of
    a box with no whole pixel after int() is invalid."""
    constant_decoder(1.0)
    thin = locs(205, 205, 207, 614) + SEG16          # rows int(2.004)..int(2.024): no whole row
    assert seg.first_object(thin, need_seg=True).box is not None
    scores = score_segmentation(["a"], [thin], [target()])
    box = (205 / 1023, 205 / 1023, 207 / 1023, 614 / 1023)
    expected = seg.box_iou(box, (0.2, 0.2, 0.6, 0.6))
    assert expected > 0
    assert scores.ratios["box_iou"].value == pytest.approx(expected)
    assert scores.ratios["invalid"].value == 1.0 and scores.ratios["miou"].value == 0.0
    detection = score_detection(["a"], [thin], [target()])
    assert detection.ratios["invalid"].value == 0.0
    assert detection.ratios["box_iou"].value == pytest.approx(expected)


def test_only_the_first_20_tokens_are_read(constant_decoder):
    constant_decoder(1.0)
    exact = locs(205, 205, 614, 614) + SEG16
    for prediction in (exact + "<seg016>",                       # 17 seg tokens: valid
                       exact + " the dog ; <loc0000>garbage<seg999>",  # text after the 20th
                       exact + "<seg200><loc100>"):
        scores = score_segmentation(["a"], [prediction], [target()])
        assert scores.ratios["invalid"].value == 0.0, prediction
        assert scores.ratios["miou"].value == 1.0, prediction
        assert scores.ratios["box_acc@0.75"].value == 1.0, prediction


@pytest.mark.parametrize("prediction", [
    "<loc100><loc0205><loc0614><loc0614>" + SEG16,     # three digits: text, not a location
    "<loc00205><loc0205><loc0614><loc0614>" + SEG16,   # five digits
    locs(205, 205, 614, 614) + "<seg01>" + SEG16[8:],  # two-digit seg
])
def test_a_location_is_exactly_loc_and_four_digits(constant_decoder, prediction):
    constant_decoder(1.0)
    scores = score_segmentation(["a"], [prediction], [target()])
    assert scores.ratios["invalid"].value == 1.0 and scores.ratios["box_iou"].value == 0.0
    box_only = prediction.split("<seg")[0]
    if box_only != locs(205, 205, 614, 614):   # the malformed location, on a _detect task too
        assert score_detection(["a"], [box_only], [target()]).ratios["invalid"].value == 1.0
        assert seg.parse(box_only) == []


def test_detection_does_not_need_seg_tokens():
    scores = score_detection(["a", "b"], [locs(205, 205, 614, 614) + " thing", "nothing"],
                             [target(), target()])
    assert scores.ratios["box_acc@0.5"].value == 0.5 and scores.ratios["invalid"].value == 0.5


def test_refcoco_end_to_end_and_missing_decoder_fails_up_front(tmp_path, data_dir):
    vae = write_seg_decoder(tmp_path / "vae-oid.npz")
    out = tmp_path / "out"
    done = subprocess.run(cli("run", "--model", "tiny-paligemma", "--tasks", "refcoco_val",
                              "--data-dir", str(data_dir), "--seg-decoder", str(vae),
                              "--output", str(out), "--bootstrap", "50"),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "results.json").read_text())["tasks"]["refcoco_val"]["metrics"]
    assert {"miou", "box_acc@0.5", "box_acc@0.75", "invalid", "ciou"} <= set(metrics)
    assert metrics["miou"]["n"] == 24       # 12 objects x 2 referring expressions
    env_free = subprocess.run(cli("run", "--model", "tiny-paligemma", "--tasks", "refcoco_val",
                                  "--data-dir", str(data_dir), "--output", str(tmp_path / "o2")),
                              capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert env_free.returncode == 2 and "vae-oid.npz" in env_free.stderr
    # a file that is not the decoder: one line naming it, before the model loads
    not_npz = tmp_path / "notes.txt"
    not_npz.write_text("not weights\n")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(vae.read_bytes()[:5000])
    for bad, message in ((not_npz, "not a readable .npz file (another kind of file)"),
                         (cut, "not a readable .npz file (File is not a zip file)")):
        refused = subprocess.run(cli("run", "--model", "/nonexistent/model", "--tasks",
                                     "refcoco_val", "--data-dir", str(data_dir), "--seg-decoder",
                                     str(bad), "--output", str(tmp_path / "o3")),
                                 capture_output=True, text=True)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert refused.stderr.strip() == f"paligemma-eval run: error: refcoco_val: {bad}: " \
            f"{message}", refused.stderr
