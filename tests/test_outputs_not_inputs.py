"""An output flag never overwrites what its command reads: a run's results.json, predictions,
safety.json, or another input. One line, exit 2, every file as it was."""

from pathlib import Path

import pytest

from paligemma_eval.harness.cli import main


def a_run(path: Path) -> Path:
    (path / "predictions").mkdir(parents=True)
    for name, text in (("results.json", '{"tasks": {}}'), ("safety.json", "{}"),
                       ("predictions/vqav2_val.jsonl", '{"id": "1"}\n')):
        (path / name).write_text(text)
    return path


@pytest.mark.parametrize("args", [
    ["report", "{run}", "--output", "{run}/results.json"],
    ["report", "{run}", "--output", "{run}/predictions/vqav2_val.jsonl"],
    ["report", "{run}/results.json", "--output", "{run}/results.json"],
    ["gate", "--candidate", "{run}", "--baseline", "{base}", "--junit", "{base}/results.json"],
    ["gate", "--candidate", "{run}", "--baseline", "{base}", "--summary", "{run}/results.json"],
    ["export", "{run}", "--model-index", "{run}/results.json"],
    ["safety", "export", "{run}", "--archive", "{run}/safety.json"],
])
def test_an_output_that_is_an_input_is_refused_and_nothing_changes(tmp_path, capsys, args):
    run, base = a_run(tmp_path / "run"), a_run(tmp_path / "base")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert main([a.format(run=run, base=base) for a in args]) == 2
    error = capsys.readouterr().err
    assert "it would be overwritten: write elsewhere" in error, error
    assert len(error.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_a_report_beside_the_runs_data_is_written(tmp_path):
    """A report may live in the run directory, beside the data it reads."""
    from tests.test_report import fake_benchmark_run

    run = fake_benchmark_run(tmp_path / "run", {}, 0.5)
    results = (run / "results.json").read_bytes()
    assert main(["report", str(run), "--output", str(run / "report.html")]) == 0
    assert "textvqa" in (run / "report.html").read_text().lower()
    assert (run / "results.json").read_bytes() == results
