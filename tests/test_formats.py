"""The schemas themselves, format versions, and the readers' checks that the bad-file table does
not reach one by one."""

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from paligemma_eval.harness import formats
from paligemma_eval.harness.formats import FormatError


def test_every_format_has_a_valid_schema_in_the_package():
    names = {path.name for path in formats.SCHEMAS.glob("*.schema.json")}
    assert names == {f"{fmt.schema}.schema.json" for fmt in formats.FORMATS}
    for fmt in formats.FORMATS:
        document = formats.schema(fmt)
        Draft202012Validator.check_schema(document)
        assert document["$id"] == f"urn:paligemma-eval:schema:{fmt.schema}"
        assert document["description"]


def test_files_from_before_the_format_key_are_read_as_version_1(tmp_path):
    old_scores = tmp_path / "scores.json"
    old_scores.write_text(json.dumps({"units": ["a", "b"],
                                      "ratios": {"accuracy": {"num": [1, 0], "den": [1, 1]}}}))
    assert formats.read_unit_scores(old_scores)["units"] == ["a", "b"]
    old_lines = tmp_path / "p.jsonl"
    old_lines.write_text('{"key": "k", "id": "a", "prediction": "yes"}\n')
    assert formats.read_lines(old_lines, formats.PREDICTION)[0][1]["id"] == "a"
    unversioned = tmp_path / "results.json"
    unversioned.write_text(json.dumps({"tasks": {"t": {"metrics": {"m": {"value": 0.5}}}}}))
    assert formats.read_results(unversioned)["tasks"]["t"]["metrics"]["m"]["value"] == 0.5


@pytest.mark.parametrize("found, words", [(2, "format version 2 (from a newer paligemma-eval"),
                                          (0, "format version 0, which this paligemma-eval no "
                                              "longer reads"),
                                          ("1", "is a string ('1'), not a format version")])
def test_another_format_version_is_refused_naming_it(tmp_path, found, words):
    path = tmp_path / "scores.json"
    path.write_text(json.dumps({"format": found, "units": [], "ratios": {}}))
    with pytest.raises(FormatError, match=r"scores.json: .*") as error:
        formats.read_unit_scores(path)
    assert words in str(error.value)


def test_the_fast_array_check_finds_what_the_plain_validator_finds():
    """Arrays of numbers are checked in one pass; a bad item is still found and named."""
    plain = Draft202012Validator(formats.schema(formats.UNIT_SCORES))
    for num in ([0.5, 1, 0], [0.5, True, 0], [0.5, "1", 0], [0.5, None], []):
        document = {"units": ["a"] * len(num), "ratios": {"m": {"num": num, "den": num}}}
        assert (formats.problem(document, formats.UNIT_SCORES) is None) == \
            plain.is_valid(document), num
    wrong = {"units": ["a", "b"], "ratios": {"m": {"num": [0.5, "x"], "den": [1, 1]}}}
    assert formats.problem(wrong, formats.UNIT_SCORES) == \
        "ratios.m.num.1 must be a number, got a string ('x')"


def test_units_and_scores_of_different_lengths_are_refused(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"format": 1, "units": ["a", "b"],
                                "ratios": {"m": {"num": [1], "den": [1, 1]}}}))
    with pytest.raises(FormatError, match="ratios.m.num holds 1 values for 2 units"):
        formats.read_unit_scores(path)


def test_a_write_the_harness_could_not_read_back_fails_in_tests(tmp_path, monkeypatch):
    monkeypatch.setenv("PALIGEMMA_EVAL_CHECK_WRITES", "1")
    with pytest.raises(AssertionError, match="holds NaN"):
        formats.dumps({"tasks": {"t": {"metrics": {"m": {"value": float("nan")}}}}},
                      formats.RESULTS, tmp_path / "results.json")
    with pytest.raises(AssertionError, match='without "id"'):
        formats.dump_line({"prediction": "yes"}, formats.PREDICTION, tmp_path / "p.jsonl")
    monkeypatch.setenv("PALIGEMMA_EVAL_CHECK_WRITES", "0")    # outside tests: not checked
    assert formats.dump_line({"prediction": "yes"}, formats.PREDICTION, Path("p")) == \
        '{"prediction": "yes"}\n'


def test_jsonl_problems_are_grouped_into_one_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(['{"id": 1, "prediction": "a"}', "{cut", "[1]",
                               '{"prediction": "b"}', '{"id": 2, "prediction": 3}',
                               '{"id": 1, "prediction": "again"}']) + "\n")
    with pytest.raises(FormatError) as error:
        formats.read_lines(path, formats.PREDICTION, extra_check=formats.prediction_ids_unique())
    assert str(error.value) == (
        f'{path}: line 2 not a JSON object; line 3 not a JSON object but an array (JSON Lines: '
        f'one object per line); line 4 without "id"; line 5 prediction must be a string, got an '
        f"integer (3); line 6 repeat an id given earlier")
    assert "\n" not in str(error.value)


def test_lines_checked_once_per_shape_get_the_plain_validators_verdict():
    """JSONL lines are checked by jsonschema once per shape (keys, value types): sound only for
    schemas of shape keywords alone, which every line format is."""
    lines = [{"id": "a", "prediction": "x"}, {"id": 1, "prediction": "x"},
             {"id": 1.0, "prediction": "x"}, {"id": 1.5, "prediction": "x"},
             {"id": "a", "error": "timeout"}, {"id": "a"}, {"id": None, "prediction": "x"},
             {"id": "b", "prediction": "y", "extra": [1, "2"]}, {"prediction": "x"}]
    cache_lines = [{"key": "k", "text": "t", "scores": {"A": 0.5}},
                   {"key": "", "text": "t", "scores": {"A": 0.5}},
                   {"key": "k", "text": "t", "scores": {"A": "high"}},
                   {"key": "k", "text": "t", "scores": None, "error": "LANGUAGE"}]
    for fmt, records in ((formats.PREDICTION, lines), (formats.SCORE_CACHE, cache_lines)):
        plain = Draft202012Validator(formats.schema(fmt))
        for _ in range(2):   # the second pass answers from the shape cache
            for record in records:
                assert (formats.problem(record, fmt) is None) == plain.is_valid(record), record
    assert formats.problem({"id": 1.5, "prediction": "x"}, formats.PREDICTION) == \
        "id must be a string or an integer, got a number (1.5)"
