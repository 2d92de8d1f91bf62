import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from paligemma_eval.harness.errors import UsageError
from paligemma_eval.reports.render import render
from tests.conftest import ROOT, chromium_page, cli

ARTIFACTS = ROOT / "test-artifacts"
EVIL = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def fake_benchmark_run(path: Path, variant_fields: dict, value: float,
                       task_name: str = "textvqa_val") -> Path:
    path.mkdir(parents=True)
    model = {"id": "m", "family": "paligemma2", "size": "3B", "resolution": 224,
             "dtype": "bfloat16", "kind": "pt", "variant": "224-3B",
             "finetuned_for": [task_name], **variant_fields}
    task = {"headline": "accuracy", "prompt": "answer en {question}",
            "dataset": {"hub_id": "lmms-lab/textvqa", "split": "validation", "source": "hub"},
            "decoding": {"max_new_tokens": 32}, "n_examples": 10,
            "failed": [{"id": EVIL, "reason": EVIL}],
            "metrics": {"accuracy": {"value": value, "n": 10, "ci95": [value - .02, value + .02],
                                     "stderr": 0.01}}}
    (path / "results.json").write_text(json.dumps({"model": model, "tasks": {task_name: task},
                                                   "harness": {"version": "0.1.0"}}))
    return path


def fake_safety_run(path: Path, perspective: bool = True, calibrated: bool = False) -> Path:
    path.mkdir(parents=True)
    groups = {"gender": ["Male", "Female"], "ethnicity": ["White", "Black"], "age": ["0-2"]}
    aggregates = {a: {g: {"max": 1.5, "median": 0.5, "max_ci95": [0.25, 3.75],
                          "median_ci95": [0.125, 1.875], "groups": {
        n: {"n": 4, "flagged": 1, "percent": 25.0, "ci95": [5.5, 60.5]} for n in names}}
        for g, names in groups.items()}
        for a in ["toxicity", "identity_attack", "insult", "threat", "profanity"]}
    scorer = {"name": "Perspective API", "version": "v1alpha1", "is_perspective": True} \
        if perspective else {"name": "Detoxify original 0.5.4 (not the Perspective API)",
                             "version": "0.5.4", "is_perspective": False,
                             "checkpoint": {"path": "/ck/tiny.ckpt", "sha256": "ab" * 32}}
    document = {"kind": "safety", "model": {"id": "m", "family": "paligemma2", "size": "3B",
                                            "variant": "224-3B"},
                "scorer": scorer, "threshold": 0.8,
                "counts": {"captions": 8, "scored": 8, "failed": 0},
                "aggregates": aggregates, "tasks": {},
                "flagged": [{"id": "7", "caption": EVIL, "attributes": ["IDENTITY_ATTACK"],
                             "labels": {"gender": "Female", "ethnicity": "Black",
                                        "age": "0-2"}}]}
    if calibrated:
        document["aggregates_calibrated"] = {
            a: {g: {**cell, "max": 0.2, "max_ci95": [0.0, 0.5]} for g, cell in by.items()}
            for a, by in aggregates.items()}
        document["calibration"] = {
            "path": "/cal/detoxify-to-perspective.json", "sha256": "cd" * 32, "pairs": 5000,
            "reference": {"name": "Perspective API", "cache_id": "perspective/v1alpha1"},
            "held_out": {"TOXICITY": {"kappa_successor_threshold": 0.91,
                                      "flag_rate_difference": -0.12}}}
    (path / "safety.json").write_text(json.dumps(document))
    return path


@pytest.fixture
def runs(tmp_path):
    return [fake_benchmark_run(tmp_path / "a", {}, 0.5972),
            fake_benchmark_run(tmp_path / "b", {"size": "10B", "variant": "224-10B"}, 0.70),
            fake_safety_run(tmp_path / "s")]


def test_model_output_is_escaped(runs):
    html = render(runs)
    assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_cards_layout_and_published_values(runs):
    html = render(runs)
    # Column order as the PaliGemma 2 card; card value 59.6 for TextVQA (val) at 224-3B.
    assert html.index(">224-3B · a<") < html.index(">224-10B · b<")
    assert "card 59.60 (+0.12)" in html and 'class="card agrees"' in html
    assert "card 64.00 (+6.00)" in html and 'class="card differs"' in html
    assert "Perceived gender" in html and "Maximum" in html and "Median" in html
    # The card's 3B maximum toxicity over perceived gender is 0.14%.
    assert "card 0.14%" in html


def test_safety_cells_show_interval_card_difference_and_subgroups(runs, tmp_path):
    html = render(runs)
    # the card's 3B maximum toxicity over perceived gender is 0.14%: ours 1.50, so +1.36
    assert "card 0.14% (+1.36)" in html and "[0.25, 3.75]" in html
    assert "[5.50, 60.50]" in html                          # a subgroup rate's interval
    assert "<th>Identity Attack</th>" in html and "<th>identity_attack</th>" not in html
    assert "Perceived gender: Female; Ethnicity: Black; Age group: 0-2" in html
    # a successor scorer's raw rates never sit beside the card; its calibrated ones do
    raw = render([fake_safety_run(tmp_path / "d", perspective=False)])
    assert "card 0.14%" not in raw and "calibrated to Perspective" not in raw
    assert "sha256 " + "ab" * 32 in raw
    calibrated = render([fake_safety_run(tmp_path / "c", perspective=False, calibrated=True)])
    table = calibrated.split('id="safety"')[1].split("</table>")[0]
    assert "Maximum, calibrated to Perspective&#39;s scale" in table
    raw_part, calibrated_part = table.split("calibrated to Perspective")[0], \
        table.split("calibrated to Perspective")[1]
    assert "card " not in raw_part and "card 0.14% (+0.06)" in calibrated_part
    assert "sha256 " + "cd" * 32 in calibrated and "kappa 0.91" in calibrated
    # calibrated onto another scorer, the rates estimate that scorer: beside no card number
    run = fake_safety_run(tmp_path / "o", perspective=False, calibrated=True)
    document = json.loads((run / "safety.json").read_text())
    document["calibration"]["reference"] = {"name": "Detoxify unbiased", "is_perspective": False,
                                            "cache_id": "detoxify/0.5.4/unbiased/ab"}
    (run / "safety.json").write_text(json.dumps(document))
    other = render([run])
    assert "card 0.14%" not in other and "calibrated to the reference scorer&#39;s scale" in other
    assert "Its reference is <strong>not</strong> the Perspective API" in other
    assert "its reference is not the Perspective API" in render([run], fmt="markdown")


def test_an_incomplete_safety_audit_says_so_and_is_not_set_beside_the_card(tmp_path):
    run = fake_safety_run(tmp_path / "s")
    document = json.loads((run / "safety.json").read_text())
    document.update(complete=False, coverage=0.6, min_coverage=0.95)
    (run / "safety.json").write_text(json.dumps(document))
    html = render([run])
    assert "card 0.14%" not in html and "[0.25, 3.75]" in html
    assert "<strong>Incomplete audit</strong>: only 60% of the captions were scored (95% " \
           "needed)" in html
    assert "**Incomplete audit**: only 60% of the captions" in render([run], fmt="markdown")
    document.update(complete=True, coverage=0.97)
    (run / "safety.json").write_text(json.dumps(document))
    assert "card 0.14%" in render([run]) and "Incomplete audit" not in render([run])


def test_a_cell_says_how_many_examples_failed_and_were_scored_as_wrong(tmp_path):
    run = fake_benchmark_run(tmp_path / "a", {}, 0.5972)
    document = json.loads((run / "results.json").read_text())
    document["tasks"]["textvqa_val"].update(n_examples=10, n_scored=7)
    (run / "results.json").write_text(json.dumps(document))
    assert '<span class="failed">3 of 10 failed, scored as wrong</span>' in render([run])
    assert "card 59.60 (+0.12) · fine-tune declared" in render([run], fmt="markdown")
    assert " · 3 of 10 failed, scored as wrong" in render([run], fmt="markdown")
    document["tasks"]["textvqa_val"].update(n_scored=10)
    (run / "results.json").write_text(json.dumps(document))
    assert "failed, scored as wrong" not in render([run])


def test_a_safety_audit_cut_by_limit_is_not_set_beside_the_card(tmp_path):
    run = fake_safety_run(tmp_path / "s")
    document = json.loads((run / "safety.json").read_text())
    document["dataset"] = {"split": "validation", "limit": 100, "split_rows": 10954}
    (run / "safety.json").write_text(json.dumps(document))
    html = render([run])
    assert "card 0.14%" not in html and "[0.25, 3.75]" in html      # our rates, no card's
    assert "Audited on part of FairFace (<bdi>--limit 100: the first 100 of the split&#39;s " \
           "10954 rows</bdi>)" in html
    assert "Audited on part of FairFace (--limit 100" in render([run], fmt="markdown")


def test_a_run_given_twice_is_refused_not_drawn_as_two(tmp_path):
    run = fake_benchmark_run(tmp_path / "a", {}, 0.6)
    for twice in ([run, run], [run, run / "results.json"]):
        with pytest.raises(UsageError, match="results.json is already in the report"):
            render(twice)
    page = tmp_path / "r.html"
    done = subprocess.run(cli("report", str(run), f"{run}/", "--output", str(page)),
                          capture_output=True, text=True)
    assert done.returncode == 2 and "already in the report" in done.stderr
    assert len(done.stderr.splitlines()) == 1 and not page.exists()


def test_the_format_follows_the_output_suffix_unless_asked():
    from paligemma_eval.reports.cli import output_format

    assert [output_format(None, Path(n)) for n in ("r.md", "R.Markdown", "r.html", "r")] == [
        "markdown", "markdown", "html", "html"]
    assert output_format("html", Path("r.md")) == "html"


def test_redaction_and_markdown(runs):
    assert EVIL not in render(runs, redact=True) and "1 flagged captions redacted" in \
        render(runs, redact=True)
    markdown = render(runs, fmt="markdown")
    assert "| Benchmark | 224-3B · a | 224-10B · b |" in markdown
    assert "**59.72** [57.72, 61.72] · card 59.60 (+0.12)" in markdown


def test_card_numbers_only_beside_the_same_split_and_a_real_variant(tmp_path):
    same_variant = [fake_benchmark_run(tmp_path / "candidate", {}, 0.60),
                    fake_benchmark_run(tmp_path / "baseline", {}, 0.58)]
    html = render(same_variant)
    # two runs of one variant keep a column each
    assert ">224-3B · candidate<" in html and ">224-3B · baseline<" in html
    assert ">ours<" not in render(same_variant, labels=["ours", "theirs"]).replace(">ours<", "")
    assert ">mine<" in render(same_variant, labels=["mine"])     # the other keeps its default
    with pytest.raises(UsageError, match="--label given 3 times for 2 run directories"):
        render(same_variant, labels=["a", "b", "c"])       # a label would name another run
    assert "card 59.60" in html
    # vqav2_val covers another split than the card's minival: no neighbour, said so
    val = render([fake_benchmark_run(tmp_path / "v", {}, 0.8, task_name="vqav2_val")])
    benchmarks = val.replace("no card number", "").split('id="benchmarks"')[1]
    assert "card " not in benchmarks.split("</table>")[0]
    assert "no card number for this split or rule" in val
    # the demo model relabelled as pt-224 is still not PaliGemma: banner, no card numbers
    demo = render([fake_benchmark_run(tmp_path / "demo", {
        "family": "paligemma", "size": "0.24M", "variant": "pt-224", "embedded": True}, 0.5)])
    assert "Not a published PaliGemma variant" in demo
    assert 'class="card' not in demo.split('id="benchmarks"')[1]


def test_report_in_a_real_browser(runs, tmp_path):
    page_path = tmp_path / "report.html"
    done = subprocess.run(cli("report", *map(str, runs), "--output", str(page_path)),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    errors = []
    with chromium_page(errors) as page:
        page.goto(page_path.as_uri())
        assert page.locator("#benchmarks tbody tr").count() == 1
        assert page.locator("#benchmarks thead th").count() == 3     # name + two variants
        assert page.locator("#safety thead tr").nth(1).locator("th").count() == 1 + 3
        assert page.locator("#safety tbody tr").count() == 2 * (1 + 5)
        width = page.evaluate("document.documentElement.scrollWidth")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        # Hostile strings in every field: script, 10,000 unbroken characters, an unterminated
        # right-to-left override.
        page.goto(hostile_report(tmp_path / "hostile").as_uri())
        hostile_width = page.evaluate("document.documentElement.scrollWidth")
        text = page.evaluate("document.body.innerText")
        model_cell = page.locator(".provenance td.name").nth(1).inner_text()
        isolation = page.evaluate("getComputedStyle(document.querySelector('td')).unicodeBidi")
    assert errors == []
    assert width <= 1280, "the page must be readable at 1280 px without scrolling sideways"
    assert hostile_width <= 1280, f"a long string widened the page to {hostile_width} px"
    assert "\u202e" not in text and "[U+202E]" in text   # shown, never obeyed
    # the override in the model id cannot reverse what follows it on the provenance line
    assert model_cell.index("[U+202E]") < model_cell.index("bfloat16") < \
        model_cell.index("sha256:feed")
    assert isolation == "isolate"


LONG = "x" * 10_000
RTL = "\u202emodel-id-spoof"


def hostile_report(directory: Path) -> Path:
    fields = EVIL + " " + RTL + " " + LONG[:150]
    run = fake_benchmark_run(directory / "b", {"id": RTL + LONG, "fingerprint": "sha256:feed",
                                               "revision": fields}, 0.5, task_name=EVIL + LONG)
    safety = fake_safety_run(directory / "s", perspective=False)
    document = json.loads((safety / "safety.json").read_text())
    document["scorer"]["name"] = fields + LONG
    document["flagged"][0]["caption"] = RTL + EVIL + LONG
    document["flagged"][0]["labels"]["ethnicity"] = RTL + LONG
    (safety / "safety.json").write_text(json.dumps(document))
    page = directory / "report.html"
    done = subprocess.run(cli("report", str(run), str(safety), "--output", str(page), "--label",
                              fields, "--label", LONG), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return page


PAYLOAD = "a|b\nc | d\r\n`e` *f* <g>"


def test_markdown_round_trips_pipes_and_newlines_in_every_field(tmp_path):
    from markdown_it import MarkdownIt

    run = fake_benchmark_run(tmp_path / "r", {"id": PAYLOAD, "size": PAYLOAD, "variant": PAYLOAD,
                                              "dtype": PAYLOAD}, 0.5, task_name=PAYLOAD)
    document = json.loads((run / "results.json").read_text())
    task = document["tasks"][PAYLOAD]
    task["headline"] = PAYLOAD
    task["metrics"] = {PAYLOAD: task["metrics"]["accuracy"]}
    task["dataset"]["split"] = PAYLOAD
    (run / "results.json").write_text(json.dumps(document))
    safety = fake_safety_run(tmp_path / "s", perspective=False)
    document = json.loads((safety / "safety.json").read_text())
    document["scorer"]["name"] = PAYLOAD
    document["model"]["size"] = PAYLOAD
    (safety / "safety.json").write_text(json.dumps(document))
    markdown = render([run, safety], fmt="markdown", labels=[PAYLOAD, PAYLOAD + "2"])
    assert markdown.startswith("# paligemma-eval report") and "## Provenance" in markdown
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    tables, widths, cells = 0, [], []
    for token in tokens:
        if token.type == "table_open":
            tables, widths = tables + 1, widths + [[]]
        elif token.type == "tr_open":
            widths[-1].append(0)
        elif token.type in ("th_open", "td_open"):
            widths[-1][-1] += 1
        elif token.type == "inline" and widths:
            cells.append(token.content)
    assert tables == 2
    for table in widths:   # every row has the header's number of cells
        assert len(set(table)) == 1, table
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    assert "<g>" not in html and "&lt;g&gt;" in html           # no raw HTML gets through
    # each field comes back as its text, on one line, inside its own cell
    assert "<th>a|b c | d `e` *f* &lt;g&gt;</th>" in html
    assert "<td>a|b c | d `e` *f* &lt;g&gt; <br>" in html


def test_two_audits_of_one_size_are_told_apart_by_their_runs(tmp_path):
    from paligemma_eval.reports.render import run_labels, safety_table

    def audit(name: str, perspective: bool = True) -> dict:
        document = json.loads((fake_safety_run(tmp_path / name, perspective) / "safety.json")
                              .read_text())
        return {**document, "_dir": str(tmp_path / name), "_path": name}

    def labels(runs: list[dict], given: list[str] | None = None) -> list[str]:
        run_labels(runs, given)
        return [c["label"] for c in safety_table(runs)["columns"]]

    # two 3B checkpoints audited by Perspective: the card's "3B" would name both columns
    assert labels([audit("step-1000"), audit("step-2000")]) == [
        "224-3B · step-1000", "224-3B · step-2000"]
    assert labels([audit("a1"), audit("a2")], ["base", "tuned"]) == ["base", "tuned"]
    assert labels([audit("p"), audit("d", perspective=False)]) == [
        "224-3B · p · Perspective API", "224-3B · d · Detoxify original 0.5.4"]
    assert labels([audit("only")]) == ["3B"]          # one per size: the card's own label


def test_markdown_provenance_is_one_list_item_per_task_with_its_data_version(tmp_path):
    from markdown_it import MarkdownIt

    run = fake_benchmark_run(tmp_path / "r", {}, 0.5)
    document = json.loads((run / "results.json").read_text())
    second = json.loads(json.dumps(document["tasks"]["textvqa_val"]))
    second["dataset"] = {"source": "local", "sha256": "c" * 64, "hub_id": "lmms-lab/textvqa",
                         "split": "validation", "limit": 5, "split_rows": 50}
    document["tasks"]["textvqa_val"]["dataset"]["resolved_revision"] = "d" * 40
    document["tasks"]["second_task"] = second
    (run / "results.json").write_text(json.dumps(document))
    markdown = render([run], fmt="markdown")
    html = MarkdownIt("commonmark").render(markdown.split("## Provenance")[1])
    items = html.split("<li>")[2:]          # the first item is the run itself
    assert len(items) == 2, html            # each task its own item, never run together
    assert "hub main at commit " + "d" * 40 in items[0] and "revision" not in html
    assert "local sha256 " + "c" * 64 in items[1] and "the first 5 of the split" in items[1]


def test_a_paligemma_1_audit_is_drawn_in_its_cards_layout(tmp_path):
    run = fake_safety_run(tmp_path / "s")
    document = json.loads((run / "safety.json").read_text())
    document["model"] = {"id": "m", "family": "paligemma", "size": "3B", "variant": "mix-224",
                         "resolution": 224, "kind": "mix"}
    (run / "safety.json").write_text(json.dumps(document))
    table = render([run]).split('id="safety"')[1].split("</table>")[0]
    # the PaliGemma 1 card: Maximum and Median side by side under each grouping
    assert table.count("<th>Maximum</th><th>Median</th>") == 3
    assert table.count("<tr><td") == 5 and "&lt;td&gt;" not in table
    # its toxicity maximum over perceived gender is 0.04%, the median 0.03%
    assert "card 0.04% (+1.46)" in table and "card 0.03% (+0.47)" in table


def test_an_audit_flagged_at_another_threshold_stands_beside_no_card_number(tmp_path):
    run = fake_safety_run(tmp_path / "s")

    def table() -> str:
        return render([run]).split('id="safety"')[1].split("</table>")[0]

    assert "card " in table()                       # at the cards' 0.8: beside the card
    document = json.loads((run / "safety.json").read_text())
    document["threshold"] = 0.5                     # safety recompute --threshold 0.5
    (run / "safety.json").write_text(json.dumps(document))
    assert "card " not in table()
    said = "Flagged at threshold 0.5, not the cards' 0.8, so not beside the card's numbers."
    assert said in render([run])
    assert said in render([run], fmt="markdown")


def test_a_card_comparison_from_the_vllm_backend_is_labelled(tmp_path):
    vllm = render([fake_benchmark_run(tmp_path / "vllm", {"backend": "vllm"}, 0.60)])
    plain = render([fake_benchmark_run(tmp_path / "hf", {"backend": "transformers"}, 0.60)])
    label = "made with the vllm backend, whose answers differ from PaliGemma's"
    assert "card 59.60" in vllm and label in vllm
    assert "card 59.60" in plain and "backend, whose answers differ" not in plain
    assert label in render([tmp_path / "vllm"], fmt="md")


def carded_run(path: Path, task: str, metrics: dict[str, float]) -> Path:
    """A PaliGemma 2 224-3B run declared fine-tuned for `task`, so its card rows pair."""
    path.mkdir(parents=True)
    model = {"id": "m", "family": "paligemma2", "size": "3B", "resolution": 224,
             "dtype": "bfloat16", "kind": "pt", "variant": "224-3B", "finetuned_for": [task]}
    result = {"headline": next(iter(metrics)), "dataset": {"split": "test", "source": "hub"},
              "n_examples": 10, "failed": [],
              "metrics": {m: {"value": v, "n": 10} for m, v in metrics.items()}}
    (path / "results.json").write_text(json.dumps({"model": model, "tasks": {task: result}}))
    return path


def table_of(*paths: Path) -> dict[str, Any]:
    from paligemma_eval.reports.render import benchmark_table, load_runs, run_labels

    runs = load_runs(list(paths))
    run_labels(runs)
    return {row.name: next(iter(row.cells.values())) for row in benchmark_table(runs)[1]}


def test_every_card_row_of_a_task_gets_its_own_row_beside_the_card(tmp_path):
    """TallyQA's headline (all questions) has no card row; its simple and complex rows do, and
    stand under their own labels with the card's numbers (PaliGemma 2 224-3B: 81.8 / 70.3)."""
    rows = table_of(carded_run(tmp_path / "t", "tallyqa_test", {
        "accuracy": 0.7, "accuracy/simple": 0.815, "accuracy/complex": 0.6}))
    assert list(rows) == ["tallyqa_test", "TallyQA (simple)", "TallyQA (complex)"]
    assert rows["tallyqa_test"].published is None and rows["tallyqa_test"].value == 70.0
    simple, complex_ = rows["TallyQA (simple)"], rows["TallyQA (complex)"]
    assert (simple.value, simple.published, simple.agreement) == (81.5, 81.8, "agrees")
    assert (complex_.value, complex_.published, complex_.agreement) == (60.0, 70.3, "differs")


def test_a_card_printing_a_fraction_agrees_within_a_hundredth_not_a_whole_unit(tmp_path):
    """VSR's card prints 0.82: ours 0.0 is 82 points off, not within the tolerance of 1."""
    (vsr,) = table_of(carded_run(tmp_path / "v", "vsr_random_test", {"accuracy": 0.0})).values()
    assert (vsr.value, vsr.published, vsr.agreement) == (0.0, 0.82, "differs")
    (near,) = table_of(carded_run(tmp_path / "w", "vsr_random_test",
                                  {"accuracy": 0.815})).values()
    assert near.agreement == "agrees" and near.tolerance == pytest.approx(0.01)


def test_a_row_keeps_its_cards_unit_where_no_number_is_paired(tmp_path):
    """DOCCI's characters per caption are a count (scale 1): an unpaired run (another split)
    shows 25.9, not 2590, beside a paired column in the card's unit."""
    path = carded_run(tmp_path / "d", "docci_qual_dev", {"avg_chars": 25.9})
    document = json.loads((path / "results.json").read_text())
    document["tasks"]["docci_qual_dev"]["dataset"]["split"] = "train"
    (path / "results.json").write_text(json.dumps(document))
    (docci,) = table_of(path).values()
    assert docci.published is None and docci.value == pytest.approx(25.9)
