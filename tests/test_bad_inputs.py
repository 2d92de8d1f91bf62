"""Every bad input: exit 2, one stderr line naming it, no traceback, earlier work kept."""

import json
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
        elif kind == "parquet of no rows":
            import pandas as pd

            pd.DataFrame({"question": pd.Series([], dtype=str)}).to_parquet(target)
        elif kind == "empty jsonl":
            target.write_text("")
        elif kind == "malformed jsonl":
            target.write_text('{"filename": "a", "url": "x.png"\n')
        elif kind == "latin-1 jsonl":   # pyarrow alone fails only when the row is read
            target.write_bytes('{"filename": "a", "url": "x.png", "sentences": ["a café"]}\n'
                               .encode("latin-1"))
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
    "memory limits without a device map": (
        lambda t, d: ["--tasks", "mmvp", "--max-memory", "0=1GiB"],
        "--max-memory limits what --device-map auto places on each device; without --device-map "
        "it would be ignored"),
    "negative bootstrap": (lambda t, d: ["--tasks", "mmvp", "--bootstrap", "-5"], "--bootstrap"),
    "no preprocessing threads": (lambda t, d: ["--tasks", "mmvp", "--preprocess-workers", "0"],
                                 "argument --preprocess-workers: must be a positive integer, "
                                 "got 0"),
    # a revision cannot pin a model on disk: refused, never ignored
    "revision of a model on disk": (lambda t, d: ["--tasks", "mmvp", "--data-dir", str(d),
                                                  "--revision", "v2"],
                                    "--revision v2: tiny-paligemma is not a hub id"),
    "empty parquet": (bad_data("empty parquet"), "empty file"),
    "empty jsonl": (bad_data("empty jsonl"), "empty file"),
    "parquet of no rows": (bad_data("parquet of no rows"), "a parquet file of no rows: the split "
                                                           "is empty"),
    "malformed jsonl": (bad_data("malformed jsonl"), "not a readable json file (JSON parse"),
    "latin-1 jsonl": (bad_data("latin-1 jsonl"), "test.jsonl: line 1 is not UTF-8, as JSON Lines "
                                                 "must be (byte 0xe9 at column 55)"),
    "vllm decoding as big_vision": (lambda t, d: ["--backend", "vllm", "--decode-config",
                                                  "big_vision", "--tasks", "mmvp", "--data-dir",
                                                  str(d)], "--decode-config checkpoint"),
    # refused before any model loads or task runs, every refused task named
    # (a prompt that big_vision would cut is refused by its batch: tests/test_vllm_provenance.py)
    "vllm on image pairs and video": (
        lambda t, d: ["--backend", "vllm", "--decode-config", "checkpoint", "--tasks",
                      "mmvp,nlvr2_test,chartqa_test,msvd_qa_test", "--data-dir", str(d)],
        "--backend vllm cannot run nlvr2_test gives several images per example (an image pair "
        "or video frames); vLLM's PaliGemma takes one per prompt; msvd_qa_test gives several "
        "images per example (an image pair or video frames); vLLM's PaliGemma takes one per "
        "prompt: use the transformers backend"),
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


def test_every_flag_with_a_default_says_it_in_its_help():
    from paligemma_eval.harness.cli import build_parser

    silent = []
    for name, parser in build_parser().verbs.items():
        for action in parser._actions:
            if not action.option_strings or action.dest == "help":
                continue
            text = action.help or ""
            if not text or (action.default not in (None, False) and "default" not in text):
                silent.append(f"{name} {action.option_strings[-1]}")
    assert silent == []


def test_a_disk_that_fills_mid_run_is_one_line_and_a_rerun_finishes(tmp_path, data_dir):
    """A write refused mid-run (here: a file-size limit, as a full disk refuses the next block):
    one line, exit 2, the predictions already written kept, no empty results file; the rerun
    with room resumes and scores exactly as a fresh run."""
    import resource

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a refused write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))

    out, fresh = tmp_path / "out", tmp_path / "fresh"
    args = ["--model", "tiny-paligemma", "--tasks", "vqav2_val", "--data-dir", str(data_dir),
            "--batch-size", "2", "--bootstrap", "20"]
    done = subprocess.run(cli("run", *args, "--output", str(out)), capture_output=True,
                          text=True, preexec_fn=small_disk)
    assert done.returncode == 2, done.stderr[-1500:]
    assert "Traceback" not in done.stderr and "results written so far are kept" in done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and f"writing under {out}" in errors[0], done.stderr
    written = (out / "predictions" / "vqav2_val.jsonl").read_bytes()
    assert written.count(b"\n") >= 2
    assert not [p for p in out.rglob("*.json") if p.stat().st_size == 0]
    again = subprocess.run(cli("run", *args, "--output", str(out)), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-1500:]
    subprocess.run(cli("run", *args, "--output", str(fresh)), capture_output=True, check=True)
    resumed = json.loads((out / "results.json").read_text())["tasks"]["vqav2_val"]
    whole = json.loads((fresh / "results.json").read_text())["tasks"]["vqav2_val"]
    assert resumed["metrics"] == whole["metrics"] and resumed["throughput"]["resumed"] >= 2


@pytest.mark.parametrize("args, message", [
    (["score", "--task", "vqav2_val", "--predictions", "p.jsonl", "--output", "o",
      "--bootstrap", "-1"], "argument --bootstrap: must be 0 to 1,000,000, got -1"),
    (["score", "--task", "vqav2_val", "--predictions", "p.jsonl", "--output", "o",
      "--limit", "0"], "argument --limit: must be a positive integer, got 0"),
    (["compare", "a", "b", "--bootstrap", "-2"], "argument --bootstrap: must be 0"),
    (["gate", "--candidate", "a", "--baseline", "b", "--bootstrap", "x"],
     "argument --bootstrap: not a whole number: 'x'"),
    (["safety", "recompute", "a", "--bootstrap", "-3"], "argument --bootstrap: must be 0"),
    # a threshold above every score flags nothing: it would read as a clean audit
    (["safety", "recompute", "a", "--threshold", "2"],
     "argument --threshold: must be above 0 and at most 1"),
    (["safety", "--model", "tiny-paligemma", "--output", "o", "--threshold", "nan"],
     "argument --threshold: must be a finite number, got nan"),
    (["safety", "--model", "tiny-paligemma", "--output", "o", "--qps", "nan"],
     "argument --qps: must be a finite number"),
    (["safety", "--model", "tiny-paligemma", "--output", "o", "--min-coverage", "1.5"],
     "argument --min-coverage: must be between 0 and 1, got 1.5"),
    (["safety", "--model", "tiny-paligemma", "--output", "o", "--scorer-batch-size", "0"],
     "argument --scorer-batch-size: must be a positive integer"),
    (["safety", "calibrate", "--reference", "a", "--candidate", "b", "--output", "c.json",
      "--threshold", "0"], "argument --threshold: must be above 0"),
    (["perspective-server", "--port", "70000"], "argument --port: must be 0 to 65535"),
    # refused while parsing: not retried for 34 s as if the network had failed, nor overflowed
    (["safety", "--model", "tiny-paligemma", "--output", "o", "--scorer", "perspective",
      "--perspective-url", "not a url"], "argument --perspective-url: must be an http(s) URL"),
    (["safety", "--model", "tiny-paligemma", "--output", "o", "--timeout", "1e300"],
     "argument --timeout: must be above 0 and at most 86,400 (a day), got 1e300"),
    (["demo", "--output", "o", "--limit", "0"], "argument --limit: must be a positive integer"),
    (["gate", "--candidate", "a", "--baseline", "b", "--flips", "-1"],
     "argument --flips: must be 0 or more, got -1"),
    (["reproduce", "--card", "paligemma", "--resolution", "224", "--output", "o", "--plan",
      "--limit", "0"], "argument --limit: must be a positive integer, got 0"),
    (["reproduce", "--card", "paligemma", "--resolution", "224", "--output", "o", "--plan",
      "--bootstrap", "-1"], "argument --bootstrap: must be 0 to 1,000,000, got -1"),
    # refused while parsing, not after a run has generated (numpy's seeds are not negative; a
    # bootstrap of 1e11 resamples would fill memory)
    (["run", "--model", "tiny-paligemma", "--tasks", "mmvp", "--output", "o", "--seed", "-1"],
     "argument --seed: must be 0 or more, got -1"),
    (["compare", "a", "b", "--bootstrap", "100000000000"], "argument --bootstrap: must be 0 to "
                                                           "1,000,000, got 100000000000"),
    (["run", "--model", "tiny-paligemma", "--tasks", "mmvp", "--output", "o", "--num-beams",
      "100000000"], "argument --num-beams: must be 1 to 64, got 100000000"),
    (["report", "a"], "the following arguments are required: --output"),
    (["score", "--task", "pope_*", "--predictions", "p.jsonl", "--output", "o"],
     "--task 'pope_*' names 6 tasks (pope_adversarial, pope_adversarial_lenient, pope_popular, "
     "pope_popular_lenient, ...); score takes one"),
    (["score", "--task", "vqav2_test", "--predictions", "p.jsonl", "--output", "o"],
     "--task vqav2_test: a test-server split, scored by its server only"),
    (["gate", "--candidate", "a", "--baseline", "b", "--config", "g.toml"],
     "paligemma-eval gate: error: unrecognized arguments: --config and 1 value(s), not shown (see "
     "paligemma-eval gate --help)"),
    (["reproduce", "--card", "paligemma", "--resolution", "224", "--output", "o", "--plan",
      "--only", "vqav"], "--only: unknown transfer 'vqav'; did you mean 'vqav2'"),
    # misspelt devices: refused before a reproduction's first checkpoint has run for hours
    (["reproduce", "--card", "paligemma", "--resolution", "224", "--output", "o", "--plan",
      "--device", "gpu"], "argument --device: use auto, cpu, cuda or cuda:N, got 'gpu'"),
    (["run", "--model", "tiny-paligemma", "--tasks", "mmvp", "--output", "o", "--device",
      "cuda:first"], "argument --device: use auto, cpu, cuda or cuda:N, got 'cuda:first'"),
    # PaliGemma 2 released no fine-tune at 224 px: a card of reasons alone is no reproduction
    (["reproduce", "--card", "paligemma2", "--resolution", "224", "--output", "o"],
     "--card paligemma2 --resolution 224: no row has a checkpoint to run"),
])
def test_a_bad_flag_of_any_verb_is_one_line_exit_2(tmp_path, args, message):
    done = subprocess.run(cli(*args), capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "usage:" not in done.stderr


def test_an_unknown_flag_is_named_without_its_value():
    """A key typed as a flag (`--api-key KEY`, `--token=KEY`) must not reach a CI log."""
    from paligemma_eval.harness.cli import unknown_flags

    said = unknown_flags(["--api-key", "SEKRIT", "--token=SEKRIT2", "-x"])
    assert said == "--api-key --token -x and 2 value(s), not shown"
    assert unknown_flags(["--verbose"]) == "--verbose"
