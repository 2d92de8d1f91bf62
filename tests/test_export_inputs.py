"""export reads results.json through the shared reader (harness/formats.py) and refuses, on one
line with exit 2 and nothing written, what a model card must not carry. In-process (cli.main)."""

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from paligemma_eval.harness.cli import main
from tests.test_export import RESULTS


def _run(tmp_path: Path, edit=None, text: str | None = None) -> Path:
    results = json.loads(json.dumps(RESULTS))
    if edit is not None:
        edit(results)
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(text if text is not None else json.dumps(results))
    return run


def _set(path: str, value):
    def edit(document: dict) -> None:
        *parents, last = path.split(".")
        for key in parents:
            document = document[key]
        document[last] = value
    return edit


def _delete(path: str):
    def edit(document: dict) -> None:
        *parents, last = path.split(".")
        for key in parents:
            document = document[key]
        del document[last]
    return edit


NAN = json.dumps(RESULTS).replace('"value": 0.875', '"value": NaN')


@pytest.mark.parametrize("edit, text, why", [
    (None, NAN, "holds NaN"),
    (_set("tasks.vqav2_val.metrics.accuracy.value", 7.0), None,
     "tasks.vqav2_val: accuracy is 7.0, not a fraction in 0..1"),
    (_set("tasks.vqav2_val.metrics.accuracy/number.value", -0.5), None,
     "accuracy/number is -0.5, not a fraction"),
    (_set("schema_version", 7), None, "format version 7"),
    (_delete("model"), None, "names no model (no model.id)"),
    (_delete("tasks.vqav2_val.dataset"), None, "tasks.vqav2_val: records no dataset"),
    (_set("tasks.vqav2_val.metrics", "x"), None, "tasks.vqav2_val.metrics must be an object"),
    (_set("tasks.vqav2_val", [1]), None, "tasks.vqav2_val must be an object"),
    (None, "[1]", "not a results file"),
])
def test_export_refuses_what_the_shared_reader_refuses(tmp_path, capsys, edit, text, why):
    run = _run(tmp_path, edit, text)
    out = tmp_path / "out" / "mi.yaml"
    assert main(["export", str(run), "--model-index", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"paligemma-eval export: error: {run / 'results.json'}: "), err
    assert why in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists() and not out.parent.exists()


def test_a_run_without_a_model_exports_under_model_name(tmp_path, capsys):
    run = _run(tmp_path, _delete("model"))
    out = tmp_path / "mi.yaml"
    assert main(["export", str(run), "--model-index", str(out), "--model-name", "me/x"]) == 0
    assert ModelCard(f"---\n{out.read_text()}---\n").data.model_name == "me/x"


def test_cider_above_one_is_exported_as_is(tmp_path, capsys):
    """CIDEr is not a fraction: 1.38 is an ordinary score and goes into the card exactly."""
    def cider(document: dict) -> None:
        document["tasks"]["refcoco_val_detect"]["metrics"] = {"cider": {"value": 1.38, "n": 4}}
    run = _run(tmp_path, cider)
    out = tmp_path / "mi.yaml"
    assert main(["export", str(run), "--model-index", str(out)]) == 0, capsys.readouterr().err
    values = {r.metric_type: r.metric_value
              for r in ModelCard(f"---\n{out.read_text()}---\n").data.eval_results}
    assert values["cider"] == 1.38


def test_model_index_into_a_missing_folder_creates_it_as_report_does(tmp_path, capsys):
    run = _run(tmp_path)
    out = tmp_path / "out" / "deeper" / "mi.yaml"
    assert main(["export", str(run), "--model-index", str(out)]) == 0, capsys.readouterr().err
    assert ModelCard(f"---\n{out.read_text()}---\n").data.eval_results
    report = tmp_path / "rep" / "deeper" / "r.md"     # the behaviour it is made consistent with
    assert main(["report", str(run), "--output", str(report)]) == 0
    assert report.is_file()
