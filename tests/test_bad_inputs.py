"""Every bad input: exit 2, one stderr line naming it, no traceback, earlier work kept."""

import json
import shutil
import signal
import subprocess
import time

import pytest

from tests.conftest import cli

VQA = "lmms-lab/VQAv2/default/validation.parquet"
KARPATHY = "yerevann/coco-karpathy/default/test.jsonl"


def bad_data(kind: str):
    def make(tmp_path, data_dir):
        data = tmp_path / "data"
        target = data / (VQA if "parquet" in kind else KARPATHY)
        target.parent.mkdir(parents=True)
        if kind == "empty parquet":
            target.write_bytes(b"")
        elif kind == "empty jsonl":
            target.write_text("")
        elif kind == "malformed jsonl":
            target.write_text('{"filename": "a", "url": "x.png"\n')
        return ["--data-dir", str(data),
                "--tasks", "vqav2_val" if "parquet" in kind else "coco_cap_karpathy_test"]
    return make


CASES = {
    "no such model path": (lambda t, d: ["--model", "/no/such/path", "--tasks", "mmvp",
                                         "--data-dir", str(d)], "/no/such/path"),
    "misspelt embedded model": (lambda t, d: ["--model", "tiny-paligemma3", "--tasks", "mmvp",
                                              "--data-dir", str(d)], "no such embedded model"),
    "cuda without cuda": (lambda t, d: ["--device", "cuda:0", "--tasks", "mmvp", "--data-dir",
                                        str(d)], "--device cuda:0"),
    "empty task list": (lambda t, d: ["--tasks", ","], "--tasks ','"),
    "negative bootstrap": (lambda t, d: ["--tasks", "mmvp", "--bootstrap", "-5"], "--bootstrap"),
    "empty parquet": (bad_data("empty parquet"), "empty file"),
    "empty jsonl": (bad_data("empty jsonl"), "empty file"),
    "malformed jsonl": (bad_data("malformed jsonl"), "not a readable json file (JSON parse"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_run_inputs_are_one_line_exit_2(tmp_path, data_dir, case):
    make, message = CASES[case]
    args = make(tmp_path, data_dir)
    if "--model" not in args:
        args = ["--model", "tiny-paligemma", *args]
    out = tmp_path / "out"
    done = subprocess.run(cli("run", *args, "--output", str(out)), capture_output=True,
                          text=True)
    assert done.returncode == 2, (case, done.stderr[-1500:])
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr[-1500:]
    # progress bars may come before it (they go to a terminal); the error itself is one line
    lines = [line for line in done.stderr.strip().splitlines()
             if "%|" not in line and "examples/s]" not in line and line.strip()]
    assert len(lines) == 1, done.stderr


def test_tasks_into_a_closed_pipe_is_quiet():
    done = subprocess.run(" ".join(cli("tasks")) + " | head -1", shell=True, capture_output=True,
                          text=True)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_ctrl_c_keeps_predictions_and_says_how_to_resume(tmp_path, data_dir):
    out = tmp_path / "out"
    process = subprocess.Popen(cli("run", "--model", "tiny-paligemma", "--tasks", "vqav2_val,mmvp",
                                   "--data-dir", str(data_dir), "--batch-size", "1", "--output",
                                   str(out)), stderr=subprocess.PIPE, text=True)
    predictions = out / "predictions" / "vqav2_val.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not predictions.exists() or
                                      predictions.read_text().count("\n") < 2):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr[-1500:]
    assert "interrupted; rerun to resume" in stderr and "Traceback" not in stderr
    kept = predictions.read_text().count("\n")
    assert kept >= 2
    done = subprocess.run(cli("run", "--model", "tiny-paligemma", "--tasks", "vqav2_val",
                              "--data-dir", str(data_dir), "--output", str(out)),
                          capture_output=True, text=True)
    assert done.returncode == 0
    result = json.loads((out / "results.json").read_text())["tasks"]["vqav2_val"]
    assert result["throughput"]["resumed"] >= kept
