import importlib.util
import json
import os
import subprocess
import sys

from tests.conftest import cli


def test_two_gloo_processes_give_the_single_process_results(tmp_path, data_dir):
    args = ["run", "--model", "tiny-paligemma", "--tasks", "vqav2_val,mmvp", "--data-dir",
            str(data_dir), "--batch-size", "4", "--bootstrap", "100"]
    single = tmp_path / "single"
    subprocess.run(cli(*args, "--output", str(single)), check=True, capture_output=True)
    parallel = tmp_path / "parallel"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                           "--standalone", "-m", "paligemma_eval", *args, "--output",
                           str(parallel)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # Each rank wrote its own shard; at the end of each task rank 0 merged them into the task's
    # one file (one line per example), which `score --predictions` reads as the run did.
    merged = sorted(p.name for p in (parallel / "predictions").iterdir())
    assert merged == ["mmvp.jsonl", "vqav2_val.jsonl"]

    def predictions(out, task):
        rows = {}
        for path in (out / "predictions").glob(f"{task}*.jsonl"):
            for line in path.read_text().splitlines():
                record = json.loads(line)
                assert record["id"] not in rows
                rows[record["id"]] = record["prediction"]
        return rows

    def metrics(out):
        tasks = json.loads((out / "results.json").read_text())["tasks"]
        return json.dumps({t: r["metrics"] for t, r in tasks.items()}, sort_keys=True)

    for task in ("vqav2_val", "mmvp"):
        assert predictions(parallel, task) == predictions(single, task)
    assert metrics(parallel) == metrics(single)   # byte-identical, intervals included
    # A rerun with another number of processes resumes from them: nothing regenerated.
    done = subprocess.run(cli(*args, "--output", str(parallel)), capture_output=True, text=True)
    assert done.returncode == 0
    results = json.loads((parallel / "results.json").read_text())["tasks"]
    assert results["vqav2_val"]["throughput"]["generated"] == 0


def test_vllm_backend_requests_and_outputs_without_a_gpu(tmp_path, data_dir):
    from types import SimpleNamespace

    from PIL import Image

    from paligemma_eval.harness.vllm_backend import build_requests, map_beams, map_outputs

    images = [Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8), (255, 0, 0))]
    requests = build_requests([[images[0]], [images[1]]], ["caption en", "answer en what color?"])
    assert requests[1] == {"prompt": "answer en what color?", "multi_modal_data": {
        "image": images[1]}}
    # token ids decoded by the backend's own call (here: joined), never vLLM's text
    fake = [SimpleNamespace(outputs=[SimpleNamespace(token_ids=[7, 1], text="x",
                                                     finish_reason="stop")]),
            SimpleNamespace(outputs=[SimpleNamespace(token_ids=(3, 4), text="x",
                                                     finish_reason="length")]),
            SimpleNamespace(outputs=[])]
    def joined(ids: list[int]) -> str:
        return "-".join(map(str, ids))

    assert [(c.text, c.output_truncated) for c in map_outputs(fake, joined)] == [
        ("7-1", False), ("3-4", True), ("", False)]
    # a beam's tokens hold the prompt (vLLM's text too): only what follows it is the answer
    beams = [SimpleNamespace(sequences=[
        SimpleNamespace(tokens=[2, 5, 6, 8, 9, 1], orig_prompt={"prompt_token_ids": [2, 5, 6]},
                        text="caption en\na cat"),
        SimpleNamespace(tokens=[2, 5, 6, 4, 1], orig_prompt={"prompt_token_ids": [2, 5, 6]})]),
        SimpleNamespace(sequences=[])]
    assert [c.text for c in map_beams(beams, joined)] == ["8-9-1", ""]
    done = subprocess.run(cli("run", "--model", "tiny-paligemma", "--backend", "vllm", "--tasks",
                              "mmvp", "--data-dir", str(data_dir), "--output", str(tmp_path)),
                          capture_output=True, text=True)
    if importlib.util.find_spec("vllm") is None:
        assert done.returncode == 2 and "pip install 'paligemma-eval[vllm]'" in done.stderr
