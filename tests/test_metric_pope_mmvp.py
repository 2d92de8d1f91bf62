import json

import pytest

from paligemma_eval.harness import registry
from paligemma_eval.harness.cli import main
from paligemma_eval.harness.runner import prepare
from paligemma_eval.harness.scores import Scores
from paligemma_eval.tasks.metrics.mmvp import choose, pair_id, parse_options
from paligemma_eval.tasks.metrics.pope import parse_lenient, parse_strict, pope_ratios
from paligemma_eval.tasks.mmvp import score_mmvp, target


def test_pope_parsers():
    assert parse_strict("Yes") == "yes"
    assert parse_strict(" yes") is None and parse_strict("no ") is None   # big_vision: no strip
    assert parse_strict("yes, there is") is None
    assert parse_lenient("Yes, there is") == "yes"
    assert parse_lenient("I think no.") == "no"
    assert parse_lenient("maybe") is None


def test_score_takes_outputs_as_generated(tmp_path, data_dir):
    """The engine strips nothing before a scorer, as big_vision's evaluators: an output with a
    space around the right answer is invalid under POPE's strict rule, valid under the lenient."""
    prepared = prepare(registry.all_tasks()["pope_random"], data_dir, 4)
    spaced = {i: f" {prepared.targets[i]}" if k < 2 else prepared.targets[i]
              for k, i in enumerate(prepared.ids)}
    predictions = tmp_path / "p.jsonl"
    predictions.write_text("".join(json.dumps({"id": i, "prediction": p}) + "\n"
                                   for i, p in spaced.items()))
    for task, accuracy in (("pope_random", 0.5), ("pope_random_lenient", 1.0)):
        assert main(["score", "--task", task, "--predictions", str(predictions), "--data-dir",
                     str(data_dir), "--limit", "4", "--output", str(tmp_path / task),
                     "--bootstrap", "0"]) == 0
        metrics = json.loads((tmp_path / task / "results.json").read_text())["tasks"][task][
            "metrics"]
        assert metrics["accuracy"]["value"] == accuracy
        assert metrics["valid_share"]["value"] == accuracy


def test_pope_hand_computed():
    # labels:  yes  yes  no   no   yes
    # answers: yes  None yes  no   no
    ratios = pope_ratios(["yes", None, "yes", "no", "no"], ["yes", "yes", "no", "no", "yes"])
    values = {k: r.value for k, r in ratios.items()}
    assert values["accuracy"] == pytest.approx(2 / 5)      # the invalid answer is wrong
    assert values["precision"] == pytest.approx(1 / 2)     # TP=1, predicted yes=2
    assert values["recall"] == pytest.approx(1 / 3)        # TP=1, actual yes=3 (invalid kept)
    assert values["f1"] == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))
    assert values["yes_ratio"] == pytest.approx(2 / 5)     # from predictions, not labels
    assert values["valid_share"] == pytest.approx(4 / 5)


def test_mmvp_option_matching():
    options = parse_options("(a) Open (b) Closed")
    assert options == {"a": "open", "b": "closed"}
    assert choose("(a)", options) == "a"
    assert choose("b", options) == "b"
    assert choose("Closed.", options) == "b"
    assert choose("a closed door", options) is None     # the article is not option (a)
    assert choose("", options) is None
    assert pair_id(1) == pair_id(2) == "1" and pair_id(3) == "2"


def test_mmvp_pair_with_one_wrong_answer():
    rows = [{"Index": i, "Options": "(a) red (b) blue", "Correct Answer": c}
            for i, c in [(1, "(a)"), (2, "(b)"), (3, "(a)"), (4, "(b)")]]
    targets = [target(r) for r in rows]
    # pair 1 both right; pair 2 second answer wrong
    scores: Scores = score_mmvp(["1", "2", "3", "4"], ["red", "(b)", "a", "red"], targets)
    assert scores.units == ["1", "2"]
    assert scores.ratios["paired_accuracy"].value == pytest.approx(0.5)
    assert scores.ratios["question_accuracy"].value == pytest.approx(3 / 4)
