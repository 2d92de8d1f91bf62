import json

from paligemma_eval.harness import formats
from paligemma_eval.harness.results import ResultsFile, write_results

MODEL_A = {"id": "a", "variant": "224-3B"}
MODEL_B = {"id": "b", "variant": "224-3B"}


def result(value: float) -> dict:
    return {"headline": "accuracy", "metrics": {"accuracy": {"value": value, "n": 1}}}


def tasks_on_disk(out) -> dict[str, float]:
    document = json.loads((out / "results.json").read_text())
    return {name: task["metrics"]["accuracy"]["value"] for name, task in document["tasks"].items()}


def test_a_run_reads_results_json_once_and_keeps_earlier_tasks(tmp_path, monkeypatch):
    write_results(tmp_path, MODEL_A, {"earlier": result(0.1)})
    reads = []
    real_read = formats.read_results
    monkeypatch.setattr(formats, "read_results",
                        lambda *args: reads.append(args) or real_read(*args))
    run = ResultsFile(tmp_path, MODEL_A)
    for index, name in enumerate(["first", "second", "earlier"]):
        run.add({name: result(0.5 + index / 10)})
        assert tasks_on_disk(tmp_path)[name] == 0.5 + index / 10   # written as each task ends
    assert len(reads) == 1
    assert tasks_on_disk(tmp_path) == {"earlier": 0.7, "first": 0.5, "second": 0.6}


def test_another_models_tasks_are_dropped(tmp_path):
    write_results(tmp_path, MODEL_A, {"earlier": result(0.1)})
    ResultsFile(tmp_path, MODEL_B).add({"new": result(0.2)})
    assert tasks_on_disk(tmp_path) == {"new": 0.2}
