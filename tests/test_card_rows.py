"""Every card row is mapped to a task or carries its reason; a card number stands beside a run
only when the run's checkpoint is the one the card measured (reports/published.card_pairing)."""

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from paligemma_eval.harness import registry
from paligemma_eval.reports import published
from paligemma_eval.reports.render import render
from tests.conftest import cli


def _resolutions(entry_or_reason: dict) -> list[dict]:
    return published.matching_rows(entry_or_reason)


def test_every_card_row_is_mapped_or_carries_a_reason_exactly_once():
    document = published.card_rows_document()
    for item in document["rows"] + document["unmapped"]:
        assert len(_resolutions(item)) == 1, item      # each names exactly one card row
    for row in published.load()["benchmarks"]:
        mapped = [e for e in document["rows"] if _resolutions(e) == [row]]
        reasons = [u for u in document["unmapped"] if _resolutions(u) == [row]]
        assert len(mapped) + len(reasons) == 1, (row["card"], row["benchmark"], row["values"])
    for reason in document["unmapped"]:
        # a test-server row with a submission task maps to it; "record its score" is no reason
        assert len(reason["reason"]) > 30 and "test server only" not in reason["reason"]
    assert published.coverage() == {
        "paligemma": {"rows": 52, "mapped": 52, "released_checkpoint": 45, "reason_only": 0},
        "paligemma2": {"rows": 84, "mapped": 81, "released_checkpoint": 4, "reason_only": 3}}


def test_every_mapped_task_and_transfer_exists():
    transfers = published.transfers()
    for entry in published.card_rows_document()["rows"]:
        assert entry.get("checkpoint") == "mix" or entry["transfer"] in transfers, entry
    missing = sorted({e["task"] for e in published.card_rows_document()["rows"]}
                     - set(registry.all_tasks()))
    assert not missing, f"card rows name tasks not registered yet: {', '.join(missing)}"


def model(**fields) -> dict:
    base = {"id": "google/paligemma-3b-pt-224", "family": "paligemma", "size": "3B",
            "resolution": 224, "dtype": "bfloat16", "kind": "pt", "embedded": False}
    return {**base, **fields}


RELEASED_VQAV2 = model(id="google/paligemma-3b-ft-vqav2-224", kind="ft")


def test_pretrained_and_mix_runs_get_no_transfer_number():
    pairing = published.card_pairing
    assert pairing("pope_random", "accuracy", model()) == (None, published.NOT_FINETUNED)
    mix = model(id="google/paligemma-3b-mix-224", kind="mix")
    assert pairing("okvqa_val", "accuracy", mix) == (None, published.NOT_FINETUNED)
    # ... except PaliGemma 1's mix table, measured on the mix checkpoints
    card, _ = pairing("pope_random", "accuracy", mix)
    assert (card["percent"], card["table"], card["checkpoint"]) == (88.0, "mix", "mix checkpoint")
    pg2_pt = model(id="google/paligemma2-3b-pt-224", family="paligemma2")
    assert pairing("textvqa_val", "accuracy", pg2_pt) == (None, published.NOT_FINETUNED)


def test_released_finetune_pairs_with_its_own_rows_only():
    card, _ = published.card_pairing("pope_random", "accuracy", RELEASED_VQAV2)
    assert (card["percent"], card["table"]) == (87.8, "single-task transfer")
    # its -jax big_vision copy is the same checkpoint; at 448 px its own column
    jax = model(id="google/paligemma-3b-ft-vqav2-448-jax", kind="ft", resolution=448)
    assert published.card_value("mmvp", "paired_accuracy", jax)["percent"] == 45.33
    # the wrong task's fine-tune: named, no number
    card, why = published.card_pairing("okvqa_val", "accuracy", RELEASED_VQAV2)
    assert card is None and "released vqav2 fine-tune" in why and "okvqa fine-tune" in why
    # a released id loaded at another resolution is not that checkpoint
    odd = model(id="google/paligemma-3b-ft-vqav2-224", kind="ft", resolution=448)
    assert published.released_transfer(odd) is None


def test_declared_finetune_pairs_and_says_so():
    mine = model(id="/ck/my-okvqa", kind="unknown", finetuned_for=["okvqa_val"])
    card, _ = published.card_pairing("okvqa_val", "accuracy", mine)
    assert card["percent"] == 63.54 and card["checkpoint"].startswith(
        "fine-tune declared by the user (the card's fine-tune held this split out")
    assert published.card_value("pope_random", "accuracy", mine) is None   # declared for okvqa
    pg2 = model(id="/ck/pg2-10b", family="paligemma2", size="10B", resolution=448,
                finetuned_for=["textvqa_val"])
    assert published.card_value("textvqa_val", "accuracy", pg2)["percent"] == 76.6
    # decoded with the checkpoint's own generation config: not the card's decoding
    assert published.card_value("textvqa_val", "accuracy", {**pg2, "decode_config": {
        "source": "checkpoint"}}) is None
    # embedded models never meet a card, whatever they declare
    tiny = model(id="tiny-paligemma", size="0.24M", embedded=True, finetuned_for=["okvqa_val"])
    assert published.card_value("okvqa_val", "accuracy", tiny) is None


def test_server_rows_pair_only_with_a_recorded_server_score():
    submission = {"submission": "submissions/vqav2_test.json", "metrics": {}}
    assert published.card_pairing("vqav2_test", "accuracy", RELEASED_VQAV2, submission)[0] is None
    local = {"metrics": {"accuracy": {"value": 0.83}}}     # not from the server: refused
    card, why = published.card_pairing("vqav2_test", "accuracy", RELEASED_VQAV2, local)
    assert card is None and "record-server-score" in why
    recorded = {"metrics": {"accuracy": {"value": 0.8319, "source": published.SERVER_SOURCE}}}
    card, _ = published.card_pairing("vqav2_test", "accuracy", RELEASED_VQAV2, recorded)
    assert card["percent"] == 83.19 and card["server"]


def test_training_split_is_flagged_and_never_paired():
    # ft-vqav2 was trained on train+validation: its vqav2_val number is flagged, and a minival
    # number (the PaliGemma 2 row) never pairs with it
    assert "train+validation" in published.trained_on("vqav2_val", RELEASED_VQAV2)
    assert published.trained_on("pope_random", RELEASED_VQAV2) is None
    assert published.trained_on("vqav2_val", model()) is None


def test_additional_benchmarks_pair_with_the_checkpoint_the_paper_measured():
    docci = model(id="google/paligemma2-3b-ft-docci-448", family="paligemma2", resolution=448,
                  kind="ft")
    assert published.released_transfer(docci) == ("docci", "448-3B")
    card, _ = published.card_pairing("docci_qual_dev", "avg_chars", docci)
    assert (card["percent"], card["scale"], card["value"]) == (529.0, 1.0, 529.0)
    at_224 = {**docci, "id": "/ck/docci-224", "resolution": 224,
              "finetuned_for": ["docci_qual_dev"]}
    card, why = published.card_pairing("docci_qual_dev", "avg_chars", at_224)
    assert card is None and "measured at 448-3B" in why


def test_vqav2_minival_is_the_tail_of_tfds_key_order():
    from paligemma_eval.tasks.vqa import minival, tfds_order

    # TFDS's Hasher: md5 seeded with the salt (the split name), then the key as text
    seeded = hashlib.md5(b"validation")
    seeded.update(b"262148000")
    assert tfds_order(262148000) == int(seeded.hexdigest(), 16)
    ids = list(range(100, 20100))
    kept, selection = minival(ids)
    assert len(kept) == 10240 and kept == sorted(kept) and not selection["complete"]
    smallest_kept = min(tfds_order(ids[i]) for i in kept)
    assert all(tfds_order(i) < smallest_kept for i in set(ids) - {ids[k] for k in kept})
    incomplete = {"dataset": {"selection": selection}, "metrics": {}}
    pg2 = model(family="paligemma2", finetuned_for=["vqav2_minival"])
    card, why = published.card_pairing("vqav2_minival", "accuracy", pg2, incomplete)
    assert card is None and "20000 of 214354" in why
    assert published.card_value("vqav2_minival", "accuracy", pg2)["percent"] == 83.0


def fixture_run(path: Path, model_record: dict, tasks: dict) -> Path:
    path.mkdir(parents=True)
    (path / "results.json").write_text(json.dumps({"model": model_record, "tasks": tasks}))
    return path


def accuracy(value: float) -> dict:
    return {"value": value, "n": 100, "ci95": [value - 0.01, value + 0.01], "stderr": 0.005}


def test_report_says_why_a_pretrained_run_has_no_card_number(tmp_path):
    run = fixture_run(tmp_path / "pt", model(), {"pope_random": {
        "headline": "accuracy", "metrics": {"accuracy": accuracy(0.5417)}}})
    html = render([run])
    assert "Not a published PaliGemma variant" not in html and "card 87.80" not in html
    assert published.NOT_FINETUNED in html
    released = fixture_run(tmp_path / "ft", RELEASED_VQAV2, {"pope_random": {
        "headline": "accuracy", "metrics": {"accuracy": accuracy(0.88)}}})
    html = render([released])
    assert "Not a published PaliGemma variant" not in html
    assert "card 87.80 (+0.20)" in html and "released vqav2 fine-tune" in html
    assert "checkpoint: <bdi>released vqav2 fine-tune</bdi>" in html   # provenance too


def test_card_layout_from_fixture_results_with_a_recorded_server_score(tmp_path):
    from paligemma_eval.reports.render import render_card
    from paligemma_eval.reports.reproduce import plan

    the_plan = plan("paligemma", 224, {}, only={"vqav2", "chartqa"})
    by_directory = {c.directory: c for c in the_plan.checkpoints}
    assert by_directory["vqav2"].spec == "google/paligemma-3b-ft-vqav2-224"
    assert not by_directory["vqav2"].declared and "vqav2_test" in by_directory["vqav2"].tasks
    server = {"source": published.SERVER_SOURCE, "value": 0.8419, "n": None, "ci95": None}
    fixture_run(tmp_path / "vqav2", RELEASED_VQAV2, {
        "vqav2_test": {"submission": "submissions/vqav2_test.json",
                       "metrics": {"accuracy": server}},
        "pope_random": {"headline": "accuracy", "metrics": {"accuracy": accuracy(0.8680)},
                        "n_examples": 100, "n_scored": 97}})
    markdown, cells = render_card(the_plan, tmp_path)
    assert "## single-task transfer" in markdown and "| Benchmark | pt-224 |" in markdown
    line = next(l for l in markdown.splitlines() if l.startswith("| VQAv2 (Test server - std)"))
    assert "card 83.19 · **84.19** · +1.00" in line and "recorded by the user" in line
    pope = next(c for c in cells if c["benchmark"] == "POPE (random)" and c["table"] != "mix")
    assert pope["difference"] == pytest.approx(-1.0) and \
        pope["difference_ci95"] == pytest.approx([-2.0, 0.0])
    assert pope["failed"] == "3 of 100 failed, scored as wrong"
    assert "3 of 100 failed, scored as wrong" in next(
        l for l in markdown.splitlines() if l.startswith("| POPE (random)"))
    assert next(c for c in cells if c["benchmark"] == "POPE (popular)" and
                c["table"] != "mix")["note"] == "not run yet"
    chart = next(c for c in cells if c["benchmark"].startswith("ChartQA"))
    # no ChartQA fine-tune was released (or the task is not built yet in this installation)
    assert chart["ours"] is None and ("no checkpoint released" in chart["note"] or
                                      "not registered" in chart["note"])
    from paligemma_eval.reports.render import render_card_html

    html = render_card_html(the_plan, cells)
    assert "<th>VQAv2 (Test server - std)</th>" in html and "card 83.19" in html
    assert 'class="agrees">+1.00</span>' in html and 'class="ours">86.80</span>' in html
    assert '<span class="note">3 of 100 failed, scored as wrong</span>' in html
    # rows outside --only are listed, with that reason
    assert next(c for c in cells if c["benchmark"] == "OKVQA (val)")["note"] == \
        "not selected (--only)"


def test_reproduce_end_to_end_on_the_embedded_model(tmp_path, data_dir):
    checkpoints = tmp_path / "checkpoints.json"
    checkpoints.write_text(json.dumps({"docvqa": "tiny-paligemma"}))
    out = tmp_path / "card"
    base = ["reproduce", "--card", "paligemma", "--resolution", "224", "--output", str(out),
            "--checkpoints", str(checkpoints), "--only", "docvqa", "--data-dir",
            str(data_dir), "--limit", "4", "--bootstrap", "20"]
    planned = subprocess.run(cli(*base, "--plan"), capture_output=True, text=True, check=True)
    assert planned.stdout.splitlines() == [
        f"paligemma-eval run --model tiny-paligemma --tasks docvqa_test --output "
        f"{out / 'docvqa'} --finetuned-for docvqa_test --data-dir {data_dir} --limit 4 "
        f"--bootstrap 20"]
    assert not out.exists()   # --plan runs nothing
    tuned = subprocess.run(cli(*base, "--plan", "--generation", "fast", "--seed", "3",
                               "--preprocess-workers", "1"), capture_output=True, text=True)
    assert tuned.stdout.rstrip().endswith(
        "--generation fast --preprocess-workers 1 --bootstrap 20 --seed 3"), tuned.stdout
    done = subprocess.run(cli(*base), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # the run's own lines are passed on as they come, led by the checkpoint's directory
    assert "docvqa: docvqa_test: " in done.stderr and "docvqa: results: " in done.stderr, \
        done.stderr
    results = json.loads((out / "docvqa" / "results.json").read_text())
    assert results["model"]["finetuned_for"] == ["docvqa_test"]
    assert len(json.loads((out / "docvqa" / "submissions" / "docvqa_test.json").read_text())) == 4
    line = next(l for l in (out / "card.md").read_text().splitlines()
                if l.startswith("| DocVQA (Test server)"))
    assert "record the server" in line
    # record the server's score: kept, with provenance
    evidence = tmp_path / "server.json"
    evidence.write_text('{"overall": 0.4374}')
    recorded = subprocess.run(cli("record-server-score", str(out / "docvqa"), "--task",
                                  "docvqa_test", "--metric", "anls", "--value", "0.4374",
                                  "--evidence", str(evidence)), capture_output=True, text=True)
    assert recorded.returncode == 0, recorded.stderr
    entry = json.loads((out / "docvqa" / "results.json").read_text())["tasks"]["docvqa_test"][
        "metrics"]["anls"]
    assert entry["source"] == "evaluation server, recorded by the user"
    assert entry["evidence"]["sha256"] == hashlib.sha256(evidence.read_bytes()).hexdigest()
    # a second reproduce recomputes nothing, keeps the recorded score and shows it; the
    # embedded model is never compared with the card: our number, no card number
    again = subprocess.run(cli(*base), capture_output=True, text=True)
    assert again.returncode == 0 and "docvqa: done" in again.stderr, again.stderr
    line = next(l for l in (out / "card.md").read_text().splitlines()
                if l.startswith("| DocVQA (Test server)"))
    assert "**43.74**" in line and "not a published PaliGemma variant" in line
    assert "card " not in line.replace("no card number", "")
    # a smoke test's --limit 4 result is not the --limit 6 run: that one runs (and resumes)
    bigger = [*base[:base.index("--limit")], "--limit", "6", "--bootstrap", "20"]
    more = subprocess.run(cli(*bigger), capture_output=True, text=True)
    assert more.returncode == 0 and "docvqa: done" not in more.stderr, more.stderr
    assert json.loads((out / "docvqa" / "results.json").read_text())["tasks"]["docvqa_test"][
        "dataset"]["limit"] == 6
    assert len(json.loads((out / "docvqa" / "submissions" / "docvqa_test.json").read_text())) == 6


def test_record_server_score_refuses_what_it_cannot_vouch_for(tmp_path):
    from paligemma_eval.harness.errors import UsageError
    from paligemma_eval.harness.server_scores import record

    done = subprocess.run(cli("record-server-score", str(tmp_path), "--task", "okvqa_val",
                              "--metric", "accuracy", "--value", "0.6"),
                          capture_output=True, text=True)
    assert done.returncode == 2 and "not a test-server task" in done.stderr
    with pytest.raises(UsageError, match="as a fraction"):
        record(tmp_path, "vqav2_test", "accuracy", 83.19)
    with pytest.raises(UsageError, match=r": a directory; give the server's result file$"):
        record(tmp_path, "vqav2_test", "accuracy", 0.8319, evidence=tmp_path)
    with pytest.raises(UsageError, match=r"server\.json: no such file$"):
        record(tmp_path, "vqav2_test", "accuracy", 0.8319, evidence=tmp_path / "server.json")
    with pytest.raises(UsageError, match="no results.json"):
        record(tmp_path, "vqav2_test", "accuracy", 0.8319)
    (tmp_path / "results.json").write_text(json.dumps({"model": {}, "tasks": {}}))
    with pytest.raises(UsageError, match="wrote no submission file here"):
        record(tmp_path, "vqav2_test", "accuracy", 0.8319)


def test_a_rerun_keeps_the_score_recorded_for_the_same_submission(tmp_path):
    from paligemma_eval.harness.results import write_results
    from paligemma_eval.harness.server_scores import record

    (tmp_path / "submissions").mkdir()
    submission = tmp_path / "submissions" / "vqav2_test.json"
    submission.write_text('[{"question_id": 1, "answer": "yes"}]')
    result = lambda: {"submission": "submissions/vqav2_test.json", "metrics": {}}  # noqa: E731
    write_results(tmp_path, RELEASED_VQAV2, {"vqav2_test": result()})
    record(tmp_path, "vqav2_test", "accuracy", 0.8319)
    write_results(tmp_path, RELEASED_VQAV2, {"vqav2_test": result()})     # same file: kept
    task = json.loads((tmp_path / "results.json").read_text())["tasks"]["vqav2_test"]
    assert task["metrics"]["accuracy"]["value"] == 0.8319
    submission.write_text('[{"question_id": 1, "answer": "no"}]')         # new predictions
    write_results(tmp_path, RELEASED_VQAV2, {"vqav2_test": result()})
    assert json.loads((tmp_path / "results.json").read_text())["tasks"]["vqav2_test"][
        "metrics"] == {}


def test_finetuned_for_names_registered_tasks():
    from paligemma_eval.harness.cli import finetuned_for
    from paligemma_eval.harness.errors import UsageError

    assert finetuned_for("okvqa_val,docvqa_val,okvqa_val") == ["docvqa_val", "okvqa_val"]
    assert finetuned_for(None) == []
    with pytest.raises(UsageError, match="unknown task"):
        finetuned_for("okvqa_val,chart_qa")


def test_a_lower_is_better_card_row_gates_a_rise(tmp_path):
    from paligemma_eval.harness.gate import Run, gate, published_run

    mine = model(id="/ck/pg2-3b-grandstaff-896", family="paligemma2", resolution=896,
                 finetuned_for=["grandstaff_test"])
    cer = {"value": 0.030, "n": 500, "ci95": [0.025, 0.035], "stderr": 0.002}
    candidate = Run(tmp_path, mine, {"grandstaff_test": {"headline": "cer",
                                                         "metrics": {"cer": cer}}})
    baseline, candidate = published_run(candidate)
    assert baseline.tasks["grandstaff_test"]["metrics"]["cer"] == {"value": 0.016,
                                                                   "higher_is_better": False}
    (check,) = gate(candidate, baseline, {})
    assert not check.higher_is_better and check.regressed     # 3.0% against the card's 1.6%


def test_the_published_gate_checks_the_metrics_the_card_prints(tmp_path):
    from paligemma_eval.harness.gate import Run, gate, published_run

    mine = model(id="/ck/pg2-coco35l", family="paligemma2", finetuned_for=["coco35l_dev"])
    cider = lambda v: {"value": v, "n": 35, "ci95": [v - .02, v + .02], "stderr": .01}  # noqa
    candidate = Run(tmp_path, mine, {"coco35l_dev": {"headline": "cider/avg", "metrics": {
        "cider/avg": cider(1.14), "cider/avg34": cider(1.139), "cider/en": cider(1.384)}}})
    checks = gate(*reversed(published_run(candidate)), {})
    # PaliGemma 2's card prints en and avg34, not the avg headline
    assert sorted(c.metric for c in checks) == ["cider/avg34", "cider/en"]
    assert not any(c.regressed for c in checks)


def test_a_run_missing_some_of_the_cards_splits_gets_no_card_number():
    mine = model(id="/ck/my-nlvr2", kind="unknown", finetuned_for=["marvl"])
    whole = {"dataset": {"split": "id+sw+ta+tr+zh", "absent_splits": []}}
    card, _ = published.card_pairing("marvl", "accuracy/avg5", mine, whole)
    assert card is not None and card["percent"] == 80.57
    partial = {"dataset": {"split": "id+sw+ta+tr+zh", "absent_splits": ["ta", "tr"]}}
    card, why = published.card_pairing("marvl", "accuracy/avg5", mine, partial)
    assert card is None and "2 of the card's splits" in why and "ta" in why


def test_a_run_cut_by_limit_gets_no_card_number_and_the_report_says_so(tmp_path):
    mine = model(id="/ck/my-okvqa", kind="unknown", finetuned_for=["okvqa_val"])
    whole = {"limit": 6000, "split_rows": 5046}          # --limit above the split's size
    card, _ = published.card_pairing("okvqa_val", "accuracy", mine, {"dataset": whole})
    assert card is not None and card["percent"] == 63.54
    for cut, shown in (({"limit": 50, "split_rows": 5046}, "the first 50 of the split's 5046 rows"),
                       ({"limit": 50}, "the first 50 rows of the split")):   # an older file
        card, why = published.card_pairing("okvqa_val", "accuracy", mine, {"dataset": cut})
        assert card is None
        assert why == f"no card number: --limit 50: {shown}, not the card's whole split"
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"model": mine, "tasks": {"okvqa_val": {
        "headline": "accuracy", "dataset": {"split": "validation", "limit": 50,
                                            "split_rows": 5046},
        "n_examples": 50, "metrics": {"accuracy": {"value": 0.6, "n": 50,
                                                   "ci95": [0.5, 0.7]}}}}}))
    for suffix in ("html", "md"):
        done = subprocess.run(cli("report", str(run), "--output", str(tmp_path / f"r.{suffix}")),
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        text = (tmp_path / f"r.{suffix}").read_text()
        assert text.startswith("<!DOCTYPE html>") == (suffix == "html")   # r.md: Markdown
        assert "card 63.54" not in text and "the first 50 of the split" in text
        assert "not the card&#39;s whole split" in text or "not the card's whole split" in text


def _marvl_split(split: str, rows: int, source: str = "local") -> dict:
    return {"source": source, "hub_id": "floschne/marvl", "split": split, "num_rows": rows,
            "hub_rows": published_rows("floschne/marvl", split)}


def published_rows(hub_id: str, split: str, config: str | None = None) -> int:
    from paligemma_eval.harness.registry import DatasetSource
    from paligemma_eval.harness.split_rows import hub_rows

    return hub_rows(DatasetSource(hub_id, split, config))


def test_a_local_file_with_other_rows_than_the_hub_copy_gets_no_card_number():
    mine = model(id="/ck/my-nlvr2", kind="unknown", finetuned_for=["marvl"])
    counts = {"id": 1128, "sw": 1108, "ta": 1242, "tr": 1180, "zh": 1012}    # the dataset card's
    assert {s: published_rows("floschne/marvl", s) for s in counts} == counts

    def run(**rows) -> dict:
        return {"dataset": {"split": "id+sw+ta+tr+zh", "absent_splits": [], "splits": {
            s: _marvl_split(s, rows.get(s, n)) for s, n in counts.items()}}}

    card, _ = published.card_pairing("marvl", "accuracy/avg5", mine, run())
    assert card is not None and card["percent"] == 80.57        # whole local files pair
    card, why = published.card_pairing("marvl", "accuracy/avg5", mine, run(ta=100))
    assert card is None and why == ("no card number: floschne/marvl / ta: the local file has 100 "
                                    "of the hub copy's 1242 rows, not the card's whole split")
    card, why = published.card_pairing("marvl", "accuracy/avg5", mine, run(ta=1, tr=2000))
    assert card is None and "(and 1 more split like it)" in why
    assert "floschne/marvl / tr: the local file has 2000 rows, the hub copy 1180" in \
        published.subset_of_split(run(tr=2000)["dataset"])
    # the hub copy itself is what the task loads: a changed count is said at run time, not here
    hub = run()
    hub["dataset"]["splits"]["ta"] = _marvl_split("ta", 1200, source="hub")
    assert published.card_pairing("marvl", "accuracy/avg5", mine, hub)[0] is not None
    # a split the file does not list is not checked (no count read from a source)
    assert published_rows("floschne/marvl", "xx") is None


def test_split_rows_name_splits_the_tasks_read_with_a_source_each():
    from paligemma_eval.harness.split_rows import PATH

    read = {("HuggingFaceM4/FairFace", c, s) for c in ("0.25", "1.25")
            for s in ("train", "validation")}
    for task in registry.all_tasks().values():
        for source in (task.source, *([task.source.nested.source] if task.source.nested else [])):
            read |= {(source.hub_id, source.config, split) for split in source.split.split("+")}
    entries = json.loads(PATH.read_text())["splits"]
    for entry in entries:
        assert (entry["hub_id"], entry["config"], entry["split"]) in read, entry
        assert isinstance(entry["rows"], int) and entry["rows"] > 0 and entry["source"], entry
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert f"`harness/split_rows.json`: {len(entries)} splits" in readme     # README stays true


def test_run_and_report_say_when_local_files_hold_part_of_the_split(data_dir, tmp_path):
    out = tmp_path / "run"
    done = subprocess.run(cli("run", "--model", "tiny-paligemma", "--tasks", "mmvp,docvqa_val",
                              "--data-dir", str(data_dir), "--output", str(out)),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    note = [line for line in done.stderr.splitlines() if "the hub copy" in line]
    assert note == ["note: mmvp: lmms-lab-eval/MMVP / train: the local file has 24 of the hub "
                    "copy's 300 rows (and 1 more task like it); their numbers will stand beside "
                    "no card row"]
    dataset = json.loads((out / "results.json").read_text())["tasks"]["docvqa_val"]["dataset"]
    assert (dataset["num_rows"], dataset["hub_rows"]) == (24, 5349)
    assert "lmms-lab/DocVQA [DocVQA] / validation: the local file has 24 of the hub copy&#39;s " \
        "5349 rows" in render([out])


def test_the_run_says_when_the_hub_copy_no_longer_has_the_rows_its_card_gave(capsys):
    from paligemma_eval.harness.runner import note_row_counts

    pope = {"source": "hub", "hub_id": "lmms-lab/POPE", "config": "Full", "split": "random",
            "num_rows": 2990, "hub_rows": 3000}
    note_row_counts({"pope_random": pope, "mmvp": {**pope, "num_rows": 3000}})
    assert capsys.readouterr().err == (
        "note: pope_random: lmms-lab/POPE [Full] / random: the hub copy has 2990 rows, not the "
        "3000 recorded with their source in split_rows.json\n")
    note_row_counts({"mmvp": {**pope, "num_rows": 3000}})     # as the card says: nothing to say
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("document, message", [
    ({"cocopcap": "me/cococap"}, "unknown transfer or task 'cocopcap'; did you mean 'cococap'?"),
    (["me/cococap"], "expected an object of transfer or task -> checkpoint(s)"),
    ({"cococap": []}, "'cococap' must name a checkpoint or a list of them"),
    ({"cococap": ["me/a", 3]}, "'cococap' must name a checkpoint or a list of them"),
])
def test_a_bad_checkpoints_file_is_named_with_what_is_wrong(tmp_path, document, message):
    from paligemma_eval.harness.errors import UsageError
    from paligemma_eval.reports.reproduce import read_checkpoints

    path = tmp_path / "checkpoints.json"
    path.write_text(json.dumps(document))
    with pytest.raises(UsageError) as raised:
        read_checkpoints(path)
    assert str(raised.value).startswith(f"--checkpoints {path}: ") and message in str(raised.value)
    assert len(str(raised.value)) < 300


def test_a_checkpoints_file_maps_transfers_and_tasks_to_lists(tmp_path):
    from paligemma_eval.reports.reproduce import read_checkpoints

    path = tmp_path / "checkpoints.json"
    path.write_text(json.dumps({"cococap": "me/cococap", "mmvp": ["me/a", "me/b"]}))
    assert read_checkpoints(path) == {"cococap": ["me/cococap"], "mmvp": ["me/a", "me/b"]}


def test_a_note_names_the_first_finding_and_counts_the_rest():
    from paligemma_eval.harness.errors import first_and_more

    assert first_and_more(["x: 3 of 9 rows"], "task") == "x: 3 of 9 rows"
    assert first_and_more(["a", "b", "c"], "split") == "a (and 2 more splits like it)"
