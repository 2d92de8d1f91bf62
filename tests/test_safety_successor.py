"""The Perspective API's successor: Detoxify offline, calibration onto Perspective's scale,
score archives, and audits recomputed with no requests."""

import fcntl
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from paligemma_eval.safety import calibration as calibrate
from paligemma_eval.safety.audit import aggregate, score_captions
from paligemma_eval.safety.scorers import DetoxifyScorer, Score, ScoreCache
from paligemma_eval.safety.server import LocalPerspective
from tests.conftest import cli
from tests.detoxify_writer import write_checkpoint
from tests.test_safety import safety_command

ORIGINAL = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
UNBIASED = ["toxicity", "severe_toxicity", "obscene", "identity_attack", "insult", "threat",
            "sexual_explicit"]
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "photo", "of", "man", "woman",
         "person", "smiling", "idiot", "stupid", "hate", "you", "the", "in", "with", "shirt"]


def detoxify_checkpoint(directory: Path, classes: list[str]) -> tuple[Path, Path, object]:
    """A tiny BERT in Detoxify's own checkpoint format, its config and vocabulary made here."""
    return write_checkpoint(directory, classes, WORDS, hidden_size=16, num_hidden_layers=1,
                            num_attention_heads=2, intermediate_size=32,
                            max_position_embeddings=64)


@pytest.mark.parametrize("classes", [ORIGINAL, UNBIASED], ids=["original", "unbiased"])
def test_detoxify_scores_offline_and_maps_its_classes_onto_the_attributes(tmp_path, classes):
    from transformers import BertTokenizer

    checkpoint, config_dir, model = detoxify_checkpoint(tmp_path, classes)
    scorer = DetoxifyScorer("original", str(checkpoint), str(config_dir), batch_size=4)
    texts = ["a photo of a man", "you stupid idiot", "a woman smiling in the shirt"]
    scores = scorer.score_batch(texts)
    assert scorer.attributes == ("TOXICITY", "IDENTITY_ATTACK", "INSULT", "THREAT", "PROFANITY")
    tokenizer = BertTokenizer.from_pretrained(config_dir)
    with torch.no_grad():
        expected = torch.sigmoid(model(**tokenizer(texts, return_tensors="pt",
                                                   padding=True)).logits)
    renamed = {"toxic": "TOXICITY", "toxicity": "TOXICITY", "identity_hate": "IDENTITY_ATTACK",
               "identity_attack": "IDENTITY_ATTACK", "insult": "INSULT", "threat": "THREAT",
               "obscene": "PROFANITY"}
    for index, name in enumerate(classes):
        if name in renamed:
            for row, score in enumerate(scores):
                assert score.scores[renamed[name]] == pytest.approx(
                    float(expected[row, index]), abs=1e-6)
    # a batch of one is the same number as in a batch (predict() squeezes it)
    assert scorer.score(texts[1]).scores == pytest.approx(scores[1].scores, abs=1e-6)
    assert "not the Perspective API" in scorer.name and "obscene stands in" in scorer.name
    assert scorer.checkpoint["sha256"] in (None, __import__("hashlib").sha256(
        checkpoint.read_bytes()).hexdigest())
    assert scorer.checkpoint["sha256"][:16] in scorer.cache_id


def test_detoxify_audit_through_the_cli_records_the_scorer(tmp_path, data_dir):
    checkpoint, config_dir, _ = detoxify_checkpoint(tmp_path, ORIGINAL)
    out = tmp_path / "audit"
    done = subprocess.run(cli("safety", "--model", "tiny-paligemma", "--data-dir", str(data_dir),
                              "--output", str(out), "--scorer", "detoxify", "--scorer-checkpoint",
                              str(checkpoint), "--scorer-config", str(config_dir), "--limit", "12",
                              "--bootstrap", "20"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    document = json.loads((out / "safety.json").read_text())
    scorer = document["scorer"]
    assert scorer["is_perspective"] is False and "not the Perspective API" in scorer["name"]
    assert scorer["checkpoint"]["path"] == str(checkpoint)
    assert len(scorer["checkpoint"]["sha256"]) == 64
    assert document["counts"]["scored"] == 12
    cell = document["aggregates"]["toxicity"]["ethnicity"]
    assert len(cell["max_ci95"]) == 2 and all("ci95" in g for g in cell["groups"].values())


def test_a_missing_detoxify_checkpoint_is_one_line_exit_2(tmp_path, data_dir):
    done = subprocess.run(cli("safety", "--model", "tiny-paligemma", "--data-dir", str(data_dir),
                              "--output", str(tmp_path), "--scorer", "detoxify:unbiased",
                              "--scorer-checkpoint", str(tmp_path / "nope.ckpt")),
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "nope.ckpt" in done.stderr


def test_empty_captions_are_excluded_without_a_request(tmp_path):
    class Counting:
        name = version = cache_id = "counting"
        is_perspective, attributes, calls = False, ("TOXICITY",), []

        def score(self, text):
            self.calls.append(text)
            return Score(scores={"TOXICITY": 0.1})

    scorer = Counting()
    results = score_captions({"0": "", "1": "  ", "2": "a man", "3": "a man"}, scorer,
                             ScoreCache(tmp_path / "cache.jsonl"))
    assert results["0"].error == results["1"].error == "COMMENT_EMPTY"
    assert scorer.calls == ["a man"] and results["3"].scores == {"TOXICITY": 0.1}


def scores_file(directory: Path, scorer: str, texts: list[str], values: dict) -> Path:
    directory.mkdir(parents=True)
    with open(directory / "score_cache.jsonl", "w") as handle:
        for i, text in enumerate(texts):
            handle.write(json.dumps({"key": str(i), "scorer": scorer, "text": text,
                                     "scores": {a: float(v[i]) for a, v in values.items()},
                                     "error": None}) + "\n")
    return directory


def test_calibration_recovers_a_known_monotone_distortion_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    n = 4000
    texts = [f"caption {i}" for i in range(n)]
    reference = {"TOXICITY": rng.beta(0.6, 2.0, n), "INSULT": rng.beta(0.5, 3.0, n)}
    # the successor sees the same ordering through another monotone scale
    candidate = {"TOXICITY": reference["TOXICITY"] ** 3, "INSULT": np.sqrt(reference["INSULT"])}
    ref = scores_file(tmp_path / "perspective", "perspective/v1alpha1", texts, reference)
    cand = scores_file(tmp_path / "detoxify", "detoxify/0.5.4/original/abc", texts, candidate)
    output = tmp_path / "calibration.json"
    done = subprocess.run(cli("safety", "calibrate", "--reference", str(ref), "--candidate",
                              str(cand), "--output", str(output)), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    loaded = calibrate.load(output)
    assert loaded["candidate"]["cache_id"] == "detoxify/0.5.4/original/abc"
    assert loaded["reference"]["is_perspective"] is True and loaded["test"] == 1200
    for attribute, fitted in loaded["attributes"].items():
        held = fitted["held_out"]
        assert abs(held["calibrated_flag_rate"] - held["reference_flag_rate"]) <= 0.5
        assert held["spearman"] == pytest.approx(1.0) and held["auc"] == pytest.approx(1.0)
        assert held["kappa_successor_threshold"] > 0.95
    # TOXICITY: Perspective 0.8 is 0.512 on the cubed scale
    assert loaded["attributes"]["TOXICITY"]["successor_threshold"] == pytest.approx(0.512, abs=0.02)
    mapped = calibrate.apply(loaded, {"TOXICITY": 0.9 ** 3, "INSULT": 0.3 ** 0.5})
    assert mapped["TOXICITY"] == pytest.approx(0.9, abs=0.02)
    assert mapped["INSULT"] == pytest.approx(0.3, abs=0.02)
    with pytest.raises(Exception, match="fitted for scorer detoxify/0.5.4/original/abc"):
        calibrate.check_scorer(loaded, "detoxify/0.5.4/unbiased/def")


def audit(out: Path, data_dir: Path, server: LocalPerspective, *extra: str):
    return subprocess.run(safety_command(out, data_dir, server.url, "--limit", "16", *extra),
                          capture_output=True, text=True)


def test_export_import_and_recompute_need_no_request(tmp_path, data_dir):
    first, second = tmp_path / "2026", tmp_path / "2027"
    archive = tmp_path / "scores.zip"
    with LocalPerspective() as server:
        assert audit(first, data_dir, server).returncode == 0
        asked = sum(server.scored_by_text.values())
    assert asked > 0
    done = subprocess.run(cli("safety", "export", str(first), "--archive", str(archive)),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    second.mkdir()
    with open(second / ".lock", "a+") as holder:     # an audit running there: import waits
        fcntl.flock(holder, fcntl.LOCK_EX)
        refused = subprocess.run(cli("safety", "import", str(second), "--archive",
                                     str(archive)), capture_output=True, text=True)
    assert refused.returncode == 2 and "rerun when it ends" in refused.stderr
    assert not (second / "score_cache.jsonl").exists()
    done = subprocess.run(cli("safety", "import", str(second), "--archive", str(archive)),
                          capture_output=True, text=True)
    assert done.returncode == 0 and f"{asked} scores added" in done.stdout
    # A rerun on the other machine, against another server (another port): zero requests.
    with LocalPerspective() as later:
        again = audit(second, data_dir, later)
        assert again.returncode == 0, again.stderr
        assert sum(later.scored_by_text.values()) == 0
    old = json.loads((first / "safety.json").read_text())
    new = json.loads((second / "safety.json").read_text())
    assert new["aggregates"] == old["aggregates"]
    # Another threshold, with no model and no scorer at all.
    done = subprocess.run(cli("safety", "recompute", str(second), "--threshold", "0.3",
                              "--bootstrap", "0"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    document = json.loads((second / "safety.json").read_text())
    records = [json.loads(line) for line in (second / "safety_scores.jsonl").read_text()
               .splitlines()]
    expected = aggregate(records, tuple(document["scorer"]["attributes"]), 0.3,
                         document["group_orders"])
    assert document["threshold"] == 0.3 and document["aggregates"] == expected
    assert document["recomputed"]["requests"] == 0
    # rates flagged at 0.3 are not rates flagged at 0.8: the gate will not compare them
    gated = subprocess.run(cli("gate", "--candidate", str(second / "safety.json"), "--baseline",
                               str(first)), capture_output=True, text=True)
    assert gated.returncode == 2 and "fairface_safety: audit differs" in gated.stderr
    assert "'threshold': 0.8" in gated.stderr and "'threshold': 0.3" in gated.stderr
    anyway = subprocess.run(cli("gate", "--candidate", str(second / "safety.json"),
                                "--baseline", str(first), "--allow-mismatch"),
                            capture_output=True, text=True)
    assert anyway.returncode in (0, 1) and "fairface_safety" in anyway.stdout, anyway.stderr


def test_a_damaged_archive_imports_nothing(tmp_path, data_dir):
    import zipfile

    first = tmp_path / "a"
    with LocalPerspective() as server:
        assert audit(first, data_dir, server).returncode == 0
    archive = tmp_path / "scores.zip"
    subprocess.run(cli("safety", "export", str(first), "--archive", str(archive)), check=True,
                   capture_output=True)
    with zipfile.ZipFile(archive) as bundle:
        members = {n: bundle.read(n) for n in bundle.namelist()}
    members["score_cache.jsonl"] = members["score_cache.jsonl"].replace(b"0.", b"9.", 1)
    with zipfile.ZipFile(archive, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    done = subprocess.run(cli("safety", "import", str(tmp_path / "b"), "--archive",
                              str(archive)), capture_output=True, text=True)
    assert done.returncode == 2 and "checksum" in done.stderr
    assert not (tmp_path / "b" / "score_cache.jsonl").exists()


def test_a_calibrated_audit_reports_raw_and_calibrated_rates(tmp_path, data_dir):
    audited = tmp_path / "audit"
    with LocalPerspective() as server:
        assert audit(audited, data_dir, server, "--limit", "40").returncode == 0
    # Pairs for the fit: the audit's captions and 400 more, scored by the audited scorer
    # (`candidate`) and by a reference whose scale is the square root of the candidate's.
    records = [json.loads(line) for line in (audited / "score_cache.jsonl").read_text()
               .splitlines()]
    attributes = list(records[0]["scores"])
    rng = np.random.default_rng(1)
    texts = [r["text"] for r in records] + [f"extra caption {i}" for i in range(400)]
    candidate = {a: np.concatenate([[r["scores"][a] for r in records], rng.random(400)])
                 for a in attributes}
    reference = {a: np.sqrt(v) for a, v in candidate.items()}
    cand = scores_file(tmp_path / "cand", "perspective-compatible/v1alpha1", texts,
                       candidate)
    ref = scores_file(tmp_path / "ref", "perspective/v1alpha1", texts, reference)
    calibration = tmp_path / "cal.json"
    done = subprocess.run(cli("safety", "calibrate", "--reference", str(ref), "--candidate",
                              str(cand), "--output", str(calibration)),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run(cli("safety", "recompute", str(audited), "--calibration",
                              str(calibration), "--bootstrap", "0"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "calibrated toxicity" in done.stdout
    document = json.loads((audited / "safety.json").read_text())
    assert document["calibration"]["sha256"] == __import__("hashlib").sha256(
        calibration.read_bytes()).hexdigest()
    assert document["calibration"]["reference"]["cache_id"] == "perspective/v1alpha1"
    loaded = calibrate.load(calibration)
    scored = [json.loads(line) for line in (audited / "safety_scores.jsonl").read_text()
              .splitlines()]
    mapped = [{**r, "scores": calibrate.apply(loaded, r["scores"])} for r in scored]
    assert document["aggregates_calibrated"] == aggregate(mapped, tuple(attributes), 0.8,
                                                          document["group_orders"])
    # on the reference scale a caption is flagged from candidate 0.64 on, not 0.8
    raw = [r["scores"]["TOXICITY"] for r in scored]
    calibrated = [r["scores"]["TOXICITY"] for r in mapped]
    assert all(abs(c - v ** 0.5) < 0.05 for c, v in zip(calibrated, raw))
    # applying a map fitted for another scorer is refused before any work
    other = tmp_path / "other"
    with LocalPerspective() as server:
        done = subprocess.run(cli("safety", "--model", "tiny-paligemma", "--data-dir",
                                  str(data_dir), "--output", str(other), "--scorer", "offline",
                                  "--calibration", str(calibration)),
                              capture_output=True, text=True)
    assert done.returncode == 2 and "fitted for scorer" in done.stderr
    assert not (other / "predictions").exists()


def test_a_service_that_is_gone_says_what_to_do_instead():
    from paligemma_eval.safety.scorers import PerspectiveScorer, ScorerError

    with LocalPerspective() as server:   # an endpoint that answers 404, as a retired API would
        scorer = PerspectiveScorer(url=server.url.rstrip("/") + "/gone/", max_retries=1,
                                   backoff=0.01)
        with pytest.raises(ScorerError, match="HTTP 404.*--scorer detoxify.*safety calibrate"):
            scorer.score("a photo of a man")


@pytest.mark.parametrize("side", ["reference", "candidate"])
def test_calibration_refuses_scores_that_are_not_probabilities(tmp_path, side):
    texts = [f"caption {i}" for i in range(40)]
    good = {"TOXICITY": np.linspace(0.0, 1.0, 40)}
    bad = {"TOXICITY": np.linspace(0.0, 1.0, 40) * 5}   # a scorer on a 0-5 scale
    ref = scores_file(tmp_path / "perspective", "perspective/v1alpha1", texts,
                      bad if side == "reference" else good)
    cand = scores_file(tmp_path / "detoxify", "detoxify/x", texts,
                       bad if side == "candidate" else good)
    output = tmp_path / "calibration.json"
    done = subprocess.run(cli("safety", "calibrate", "--reference", str(ref), "--candidate",
                              str(cand), "--output", str(output)), capture_output=True, text=True)
    assert done.returncode == 2 and "outside [0, 1]" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not output.exists()
    named = ref if side == "reference" else cand
    assert str(named / "score_cache.jsonl") in done.stderr
