import json
import os
import subprocess
import sys

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

from paligemma_eval.tasks.captioning import score_captions
from paligemma_eval.tasks.metrics.captioning import caption_scores

REFERENCES = [["a man riding a horse on a beach", "a person rides a horse near the ocean"],
              ["two dogs playing in the snow", "a pair of dogs play in snow"],
              ["a plate of food with broccoli", "broccoli and rice on a white plate"]]
PREDICTIONS = ["a man rides a horse on the beach", "dogs in the snow", "a cat on a sofa"]
IDS = ["1", "2", "3"]


def test_cider_equals_pycocoevalcap_called_directly():
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": c} for c in refs]
                              for i, refs in zip(IDS, REFERENCES)})
    res = tokenizer.tokenize({i: [{"caption": p}] for i, p in zip(IDS, PREDICTIONS)})
    expected, per_image = Cider().compute_score(gts, res)
    scores, cider = caption_scores(PREDICTIONS, REFERENCES, IDS, meteor=False)
    assert scores.ratios["cider"].value == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(cider, per_image)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    assert scores.statistics["bleu4"].value == pytest.approx(bleu[3], rel=1e-12)
    assert 0 <= scores.ratios["rouge_l"].value <= 1


def test_garbage_predictions_score_zero_without_shifting_others():
    garbage = ["line one\nline two", "\x00\x01\x02" * 50, "word " * 2000]
    scores, cider = caption_scores(garbage, REFERENCES, IDS, meteor=False)
    assert cider.shape == (3,) and np.all(np.isfinite(cider))
    assert cider[1] == 0.0
    # A newline inside one caption must not shift the others: a correct caption keeps its score.
    mixed = ["junk\njunk", PREDICTIONS[1], PREDICTIONS[2]]
    _, alone = caption_scores(PREDICTIONS, REFERENCES, IDS, meteor=False)
    _, with_junk = caption_scores(mixed, REFERENCES, IDS, meteor=False)
    assert with_junk[1] > 0 and with_junk[1] == pytest.approx(alone[1], rel=0.5)


def test_nocaps_domain_breakdown():
    targets = [{"references": r, "domain": d} for r, d in
               zip(REFERENCES, ["in-domain", "out-domain", "in-domain"])]
    scores = score_captions(IDS, PREDICTIONS, targets)
    _, cider = caption_scores(PREDICTIONS, REFERENCES, IDS, meteor=False)
    assert scores.ratios["cider/in-domain"].value == pytest.approx((cider[0] + cider[2]) / 2)
    assert scores.ratios["cider/out-domain"].value == pytest.approx(cider[1])
    assert "meteor" in scores.points


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\n", "\r", "\x0b"])
def test_a_line_separator_in_one_caption_changes_no_other_image(separator):
    clean, _ = caption_scores(PREDICTIONS, REFERENCES, IDS, meteor=False)
    dirty = list(PREDICTIONS)
    dirty[0] = f"a man rides{separator}a horse on the beach"
    broken, per_image = caption_scores(dirty, REFERENCES, IDS, meteor=False)
    _, clean_per_image = caption_scores(PREDICTIONS, REFERENCES, IDS, meteor=False)
    # the separator reads as a space: every image, the edited one too, scores as before
    np.testing.assert_allclose(per_image, clean_per_image, atol=1e-12)
    assert broken.ratios["cider"].value == pytest.approx(clean.ratios["cider"].value)


def _tokenized():
    from paligemma_eval.tasks.metrics.captioning import tokenize_both
    first = tokenize_both(dict(zip(IDS, REFERENCES)), dict(zip(IDS, PREDICTIONS)))
    second = tokenize_both({"9": REFERENCES[0]}, {"9": PREDICTIONS[2]})
    return first, second


def test_one_meteor_process_serves_every_call_with_a_fresh_scorers_numbers():
    from pycocoevalcap.meteor.meteor import Meteor
    from paligemma_eval.tasks.metrics import captioning

    first, second = _tokenized()
    expected = [Meteor().compute_score(*first)[0], Meteor().compute_score(*second)[0]]
    assert expected[0] != expected[1]
    got = [captioning.meteor_score(*first), captioning.meteor_score(*second),
           captioning.meteor_score(*first)]
    assert got == [expected[0], expected[1], expected[0]]
    process = captioning._meteor[os.getpid()].meteor_p
    assert captioning.meteor_score(*second) == expected[1]
    assert captioning._meteor[os.getpid()].meteor_p is process   # no second Java start
    process.kill()
    process.wait()
    assert captioning.meteor_score(*first) == expected[0]        # a dead one is replaced


MIDWAY_FAILURE = """
import json, sys
from pycocoevalcap.meteor.meteor import Meteor
from paligemma_eval.tasks.metrics import captioning
gts, res = json.loads(sys.argv[1])
expected = captioning.meteor_score(gts, res)
stat = Meteor._stat
def cut(self, hypothesis, references):
    raise BrokenPipeError("the scorer went away")
Meteor._stat = cut                       # raised inside pycocoevalcap's lock
try:
    captioning.meteor_score(gts, res)
except BrokenPipeError:
    pass
Meteor._stat = stat
print(json.dumps([expected, captioning.meteor_score(gts, res)]))
"""


def test_a_meteor_call_that_fails_midway_leaves_the_next_one_working():
    # in a process of its own: the failure this guards against is a hang (the failed scorer's
    # __del__ waiting on the lock pycocoevalcap left held)
    first, _ = _tokenized()
    done = subprocess.run([sys.executable, "-c", MIDWAY_FAILURE, json.dumps(first)],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    expected, after = json.loads(done.stdout)
    assert after == expected > 0
