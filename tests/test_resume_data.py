"""Resume is keyed on the data: an edited example is regenerated, an unchanged one is not, and
a failure fixed between runs is retried."""

import json
import shutil
import subprocess

import datasets

from tests.conftest import cli

VQA = "lmms-lab/VQAv2/default/validation.parquet"
KARPATHY = "yerevann/coco-karpathy/default"


def run(data_dir, out, task="vqav2_val", limit="8"):
    done = subprocess.run(cli("run", "--model", "tiny-paligemma", "--tasks", task, "--data-dir",
                              str(data_dir), "--limit", limit, "--bootstrap", "20", "--output",
                              str(out)), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads((out / "results.json").read_text())["tasks"][task]


def test_an_edited_question_is_regenerated_alone(tmp_path, data_dir):
    data = tmp_path / "data"
    (data / VQA).parent.mkdir(parents=True)
    shutil.copy(data_dir / VQA, data / VQA)
    first = run(data, tmp_path / "out")
    assert first["throughput"]["generated"] == 8
    rows = datasets.load_dataset("parquet", data_files=str(data / VQA), split="train")
    rows = rows.map(lambda row, i: {"question": "what color is the shape?" if i == 3 else
                                    row["question"]}, with_indices=True)
    rows.to_parquet(str(tmp_path / "edited.parquet"))
    shutil.move(tmp_path / "edited.parquet", data / VQA)
    second = run(data, tmp_path / "out")
    assert second["throughput"]["generated"] == 1 and second["throughput"]["resumed"] == 7
    fresh = run(data, tmp_path / "fresh")
    assert second["metrics"]["accuracy"]["value"] == fresh["metrics"]["accuracy"]["value"]
    assert second["dataset"]["sha256"] != first["dataset"]["sha256"]


def test_an_edited_image_file_is_regenerated_and_changes_the_data_hash(tmp_path, data_dir):
    data = tmp_path / "data"
    shutil.copytree(data_dir / KARPATHY, data / KARPATHY)
    first = run(data, tmp_path / "out", "coco_cap_karpathy_test", "4")
    rows = [json.loads(line) for line in (data / KARPATHY / "test.jsonl").read_text().splitlines()]
    shutil.copy(data / KARPATHY / rows[3]["url"], data / KARPATHY / rows[1]["url"])
    second = run(data, tmp_path / "out", "coco_cap_karpathy_test", "4")
    assert second["throughput"]["generated"] == 1
    assert second["dataset"]["sha256"] != first["dataset"]["sha256"]
    fresh = run(data, tmp_path / "fresh", "coco_cap_karpathy_test", "4")
    assert second["metrics"]["cider"]["value"] == fresh["metrics"]["cider"]["value"]


def test_a_failed_image_fixed_between_runs_is_retried(tmp_path, data_dir):
    data = tmp_path / "data"
    shutil.copytree(data_dir / KARPATHY, data / KARPATHY)
    rows = [json.loads(line) for line in (data / KARPATHY / "test.jsonl").read_text().splitlines()]
    image = data / KARPATHY / rows[2]["url"]
    saved = image.read_bytes()
    image.write_bytes(b"not a png")
    first = run(data, tmp_path / "out", "coco_cap_karpathy_test", "4")
    assert [f["id"] for f in first["failed"]] == [rows[2]["filename"]]
    image.write_bytes(saved)
    second = run(data, tmp_path / "out", "coco_cap_karpathy_test", "4")
    assert second["failed"] == [] and second["n_scored"] == 4
    assert second["throughput"]["generated"] == 1


def test_two_runs_into_one_output_take_turns_and_keep_both_tasks(tmp_path, data_dir):
    import fcntl
    import os

    out = tmp_path / "out"
    out.mkdir()
    holder = open(out / ".lock", "a+")          # a run in progress holds the directory
    fcntl.flock(holder, fcntl.LOCK_EX)
    holder.write(str(os.getpid()))
    holder.flush()
    command = cli("run", "--model", "tiny-paligemma", "--tasks", "pope_random", "--data-dir",
                  str(data_dir), "--limit", "4", "--bootstrap", "10", "--output", str(out))
    refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode == 2 and f"(pid {os.getpid()})" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    waiting = subprocess.Popen([*command, "--wait"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    run(data_dir, tmp_path / "elsewhere", "vqav2_val", "2")   # meanwhile, time passes
    assert waiting.poll() is None                              # still waiting for the lock
    holder.close()                                             # the first run ends
    assert waiting.wait(timeout=300) == 0
    run(data_dir, out, "vqav2_val", "4")
    tasks = json.loads((out / "results.json").read_text())["tasks"]
    assert set(tasks) == {"pope_random", "vqav2_val"}


def test_score_waits_its_turn_and_says_when_it_replaces_another_models_results(tmp_path,
                                                                               data_dir):
    import fcntl
    import os

    out = tmp_path / "out"
    run(data_dir, out, "pope_random", "4")
    predictions = out / "predictions" / "pope_random.jsonl"
    command = cli("score", "--task", "pope_random", "--predictions", str(predictions),
                  "--data-dir", str(data_dir), "--limit", "4", "--bootstrap", "10",
                  "--output", str(out))
    with open(out / ".lock", "a+") as holder:       # a run in progress holds the directory
        fcntl.flock(holder, fcntl.LOCK_EX)
        holder.truncate(0)                          # as the lock's holder writes its pid
        holder.write(str(os.getpid()))
        holder.flush()
        refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode == 2 and f"(pid {os.getpid()})" in refused.stderr
    assert "rerun when it ends" in refused.stderr and "--wait" not in refused.stderr
    assert set(json.loads((out / "results.json").read_text())["tasks"]) == {"pope_random"}
    scored = subprocess.run(command, capture_output=True, text=True)
    assert scored.returncode == 0, scored.stderr
    assert "held 1 task result(s) of another model (tiny-paligemma); this run's replace them" \
        in scored.stderr
    assert json.loads((out / "results.json").read_text())["model"] is None
    # the replaced results are kept whole beside it, named in the note
    (kept,) = out.glob("results.replaced-*.json")
    assert f"those stay in {kept.name}" in scored.stderr
    assert json.loads(kept.read_text())["model"]["id"] == "tiny-paligemma"
    assert set(json.loads(kept.read_text())["tasks"]) == {"pope_random"}


def test_a_hub_dataset_records_the_commit_its_revision_resolved_to(tmp_path):
    """Against a local server speaking the hub's dataset-info API (HF_ENDPOINT): the branch or tag
    asked for is resolved to its commit sha; offline, None, never a guess."""
    import os
    import sys
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    sha, asked = "0123456789abcdef0123456789abcdef01234567", []

    class Hub(BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            body = json.dumps({"id": "lmms-lab/VQAv2", "sha": sha, "private": False}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    probe = ("from paligemma_eval.harness.data import resolved_revision\n"
             "from paligemma_eval.harness.registry import DatasetSource\n"
             "print(resolved_revision(DatasetSource('lmms-lab/VQAv2', 'validation', "
             "revision='v1.0')))")
    try:
        for endpoint, expected in ((f"http://127.0.0.1:{server.server_port}", sha),
                                   ("http://127.0.0.1:9", "None")):   # nothing listens there
            done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                  env={**os.environ, "HF_ENDPOINT": endpoint}, timeout=120)
            assert done.stdout.strip() == expected, done.stderr[-800:]
    finally:
        server.shutdown()
    assert "/api/datasets/lmms-lab/VQAv2/revision/v1.0" in asked


def test_local_data_is_read_without_touching_the_network(data_dir, monkeypatch):
    """--data-dir files are on this disk: reading them sends nothing (datasets' load_dataset
    would first send the hub a download-count request, up to 3 s where a firewall drops it)."""
    import socket

    from paligemma_eval.harness import data, registry

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:2])
        raise OSError("no network in this test")
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    tasks = registry.all_tasks()
    for name in ("vqav2_val", "ocrvqa_test", "rsvqa_hr_test"):   # parquet, parquet, JSONL
        task = tasks[name]
        loaded = data.load(task.source, data_dir, task.image_column)
        assert loaded.provenance["source"] == "local" and len(loaded.rows) > 0, name
    assert attempts == []
