"""`safety recompute DIR` on archived scores it cannot use: one line naming the file (and line),
exit 2, and the safety.json already there left byte for byte; and counts that say what the
archive actually holds."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import cli

@pytest.fixture(scope="module")
def audited(tmp_path_factory, data_dir) -> Path:
    """One real 16-caption audit (the built-in lexicon server), min_coverage 0.5, made once."""
    out = tmp_path_factory.mktemp("recompute") / "audit"
    done = subprocess.run(cli("safety", "--model", "tiny-paligemma", "--data-dir", str(data_dir),
                              "--output", str(out), "--scorer", "local-server", "--limit", "16",
                              "--bootstrap", "0", "--min-coverage", "0.5"),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture
def audit(audited, tmp_path) -> Path:
    """A copy of the audit for one test to damage."""
    return Path(shutil.copytree(audited, tmp_path / "audit"))


def lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "safety_scores.jsonl").read_text().splitlines()]


def write_lines(out: Path, records: list[dict]) -> None:
    (out / "safety_scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def recompute(out: Path | str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(cli("safety", "recompute", str(out), "--bootstrap", "0", *extra),
                          capture_output=True, text=True)


def refused(out: Path, done: subprocess.CompletedProcess, before: bytes, *named: str) -> None:
    """Exit 2, one line with no traceback naming each of `named`, safety.json untouched."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
    for text in named:
        assert text in done.stderr, done.stderr
    assert (out / "safety.json").read_bytes() == before


def refuse(record: dict) -> dict:
    return {**record, "scores": None, "error": "COMMENT_EMPTY"}


@pytest.mark.parametrize("kept", [0, 4], ids=["all-refused", "4-of-16-scored"])
def test_too_few_scores_exit_2_and_keep_the_old_summary(audit, kept):
    before = (audit / "safety.json").read_bytes()
    records = lines(audit)
    write_lines(audit, records[:kept] + [refuse(r) for r in records[kept:]])
    done = recompute(audit)
    wanted = "no caption in it holds scores" if kept == 0 else \
        "4 of 16 captions hold scores (25.0%, below the audit's min_coverage 50%)"
    refused(audit, done, before, str(audit / "safety_scores.jsonl"), wanted)
    assert "recomputed" not in done.stdout


def test_an_empty_archive_exits_2(audit):
    before = (audit / "safety.json").read_bytes()
    (audit / "safety_scores.jsonl").write_text("")
    refused(audit, recompute(audit), before, "safety_scores.jsonl", "no caption in it holds")


def test_refused_captions_are_counted_failed_not_scored(audit):
    # ids 0-3 refused: 12 of 16 scored (75% >= the audit's 50%). TOXICITY 0.9 on id 5 only
    # (Female): Female holds 6 scored captions (5 7 9 12 13 14), 1 flagged: 100/6 %; Male 0 %.
    records = []
    for record in lines(audit):
        scores = {a: 0.0 for a in record["scores"]}
        scores["TOXICITY"] = 0.9 if record["id"] == "5" else 0.0
        records.append(refuse(record) if int(record["id"]) < 4 else {**record, "scores": scores})
    # the hand computation's premise: the fixture's labels of the scored captions
    assert {r["id"] for r in records if r["scores"] and r["labels"]["gender"] == "Female"} == \
        {"5", "7", "9", "12", "13", "14"}
    assert sum(bool(r["scores"]) and r["labels"]["gender"] == "Male" for r in records) == 6
    write_lines(audit, records)
    done = recompute(audit)
    assert done.returncode == 0, done.stderr
    assert "captions 16, scored 12, failed 4" in done.stdout
    document = json.loads((audit / "safety.json").read_text())
    assert document["counts"] == {"captions": 16, "scored": 12, "failed": 4,
                                  "failed_by_reason": {"scorer: COMMENT_EMPTY": 4}}
    assert document["coverage"] == 0.75 and document["complete"] is True
    assert sorted(f["id"] for f in document["failed"]) == ["0", "1", "2", "3"]
    assert document["tasks"]["fairface_safety"]["n_examples"] == 16
    gender = document["aggregates"]["toxicity"]["gender"]
    assert gender["groups"]["Female"] == {"n": 6, "flagged": 1, "percent": pytest.approx(100 / 6)}
    assert gender["groups"]["Male"] == {"n": 6, "flagged": 0, "percent": 0.0}
    assert gender["max"] == pytest.approx(100 / 6) and gender["median"] == pytest.approx(50 / 6)
    assert [f["id"] for f in document["flagged"]] == ["5"]


def damage(audit: Path, line: int, change) -> bytes:
    records = lines(audit)
    records[line - 1] = change(records[line - 1])
    write_lines(audit, records)
    return (audit / "safety.json").read_bytes()


@pytest.mark.parametrize("change, problem", [
    (lambda r: {**r, "scores": {"TOXICITY": 0.1}}, "lacks the scores of IDENTITY_ATTACK"),
    (lambda r: {**r, "labels": {}}, "lacks the labels gender, ethnicity, age"),
    (lambda r: {**r, "labels": {"gender": "Male", "ethnicity": "White"}}, "lacks the label age"),
    (lambda r: {**r, "scores": {**r["scores"], "INSULT": 5.0}}, "holds INSULT scores outside"),
    (lambda r: {**r, "scores": {**r["scores"], "THREAT": -1.0}}, "holds THREAT scores outside"),
], ids=["missing-attribute", "no-labels", "missing-grouping", "above-1", "below-0"])
def test_a_damaged_line_is_one_line_exit_2_naming_file_and_line(audit, change, problem):
    before = damage(audit, 3, change)
    refused(audit, recompute(audit), before, f"{audit / 'safety_scores.jsonl'}: line 3 ",
            problem)


def test_a_repeated_caption_is_refused_not_counted_twice(audit):
    records = lines(audit)
    write_lines(audit, records + [records[1]])
    before = (audit / "safety.json").read_bytes()
    refused(audit, recompute(audit), before, "safety_scores.jsonl: line 17 ",
            "repeat an id given earlier")


def test_score_bounds_are_inclusive(audit):
    # 0 and 1 are scores a scorer gives; only outside them is refused
    damage(audit, 3, lambda r: {**r, "scores": {**r["scores"], "TOXICITY": 1, "INSULT": 0}})
    done = recompute(audit)
    assert done.returncode == 0, done.stderr
    assert json.loads((audit / "safety.json").read_text())["counts"]["scored"] == 16


def test_a_missing_directory_is_named_not_its_lock_file(tmp_path):
    done = recompute(tmp_path / "nope")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert f"{tmp_path / 'nope'}: no such directory" in done.stderr and ".lock" not in done.stderr
    assert not (tmp_path / "nope").exists()
    (tmp_path / "file").write_text("")
    done = recompute(tmp_path / "file")
    assert done.returncode == 2 and f"{tmp_path / 'file'}: not a directory" in done.stderr


def test_a_failed_later_run_keeps_the_audit_incomplete(audit):
    document = json.loads((audit / "safety.json").read_text())
    document.update(complete=False, last_run_failed="HTTP 503")   # as mark_incomplete leaves it
    (audit / "safety.json").write_text(json.dumps(document))
    done = recompute(audit)
    assert done.returncode == 1 and "last run failed (HTTP 503)" in done.stderr
    assert json.loads((audit / "safety.json").read_text())["complete"] is False


def test_an_audit_says_when_it_was_made_and_how_its_intervals_were_drawn(audit):
    import datetime

    made = json.loads((audit / "safety.json").read_text())
    assert datetime.datetime.fromisoformat(made["created"]).tzinfo is not None
    assert (made["bootstrap"]["resamples"], made["bootstrap"]["seed"]) == (0, 0)
    done = subprocess.run(cli("safety", "recompute", str(audit), "--bootstrap", "7", "--seed",
                              "3"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    again = json.loads((audit / "safety.json").read_text())
    assert (again["bootstrap"]["resamples"], again["bootstrap"]["seed"]) == (7, 3)
    assert again["created"] == made["created"]          # made then; recomputed is said apart
    assert "at" in again["recomputed"]
