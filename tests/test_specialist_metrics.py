"""PaliGemma 2's specialist metrics against hand-computed values on small cases taken from each
metric's paper or reference implementation."""

import math

import pytest

from paligemma_eval.tasks import docci, grandstaff, mimic_cxr, pubchem, tables, text_spotting, vsr
from paligemma_eval.tasks.metrics import caption_length, kern, radgraph
from paligemma_eval.tasks.metrics import tables as table_metrics
from paligemma_eval.tasks.metrics import text_spotting as spotting

# --- text spotting (HierText protocol) ---------------------------------------------------------

SIZE = 1023  # a 1023 x 1023 image: <loc> indices are pixels


def loc(y0, x0, y1, x1):
    return "".join(f"<loc{v:04d}>" for v in (y0, x0, y1, x1))


def word(x0, y0, x1, y1, text, legible=True):
    return {"vertices": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "text": text,
            "legible": legible}


def spot(predictions, words):
    target = {"words": words, "size": [SIZE, SIZE]}
    scores = text_spotting.score_spotting(["a"], [predictions], [target])
    return {name: ratio.value for name, ratio in scores.ratios.items()}


def test_parse_reads_boxes_and_exact_words():
    parsed = spotting.parse(f"{loc(10, 20, 30, 40)} Exit; ; {loc(50, 60, 70, 80)}  café ")
    assert [w.text for w in parsed.words] == ["Exit;", "café"]
    assert parsed.words[0].box == pytest.approx((10 / 1023, 20 / 1023, 30 / 1023, 40 / 1023))
    assert parsed.malformed == 0


def test_cut_or_bad_boxes_are_counted_not_read():
    cut = spotting.parse(f"{loc(10, 20, 30, 40)} EXIT ; <loc0050><loc0060>")
    assert [w.text for w in cut.words] == ["EXIT"] and cut.malformed == 1
    empty = spotting.parse(f"{loc(30, 20, 10, 40)} EXIT")
    assert empty.words == [] and empty.malformed == 1


def test_iou_049_is_a_miss_and_051_a_match():
    # ground truth x 0..100, y 0..100; a prediction x 0..w, y 0..100 has IoU w / 100
    truth = [word(0, 0, 100, 100, "SALE")]
    assert spot(f"{loc(0, 0, 100, 49)} SALE", truth)["f1"] == 0.0
    matched = spot(f"{loc(0, 0, 100, 51)} SALE", truth)
    assert (matched["precision"], matched["recall"], matched["f1"]) == (1.0, 1.0, 1.0)


def test_transcription_differing_in_case_or_punctuation_is_a_miss():
    truth = [word(0, 0, 100, 100, "SALE")]
    for text in ("sale", "SALE.", "Sale"):
        found = spot(f"{loc(0, 0, 100, 100)} {text}", truth)
        assert (found["det_f1"], found["f1"]) == (1.0, 0.0), text


def test_a_prediction_matches_at_most_one_word():
    # two overlapping ground-truth words (x 0..100 and x 0..90); one prediction (x 0..95) has
    # IoU 0.95 and 0.947 with them: mutually best matching gives it to the first word only.
    truth = [word(0, 0, 100, 100, "AB"), word(0, 0, 90, 100, "AB")]
    found = spot(f"{loc(0, 0, 100, 95)} AB", truth)
    assert found["precision"] == 1.0 and found["recall"] == 0.5
    assert found["f1"] == pytest.approx(2 * 1 / (1 + 2))
    # two predictions on one word: only one is a true positive
    twice = spot(f"{loc(0, 0, 100, 100)} AB ; {loc(0, 0, 100, 90)} AB", truth[:1])
    assert twice["precision"] == 0.5 and twice["recall"] == 1.0


def test_dont_care_regions_remove_predictions_inside_them():
    truth = [word(0, 0, 100, 100, "SALE"), word(300, 300, 400, 400, "###", legible=False)]
    found = spot(f"{loc(0, 0, 100, 100)} SALE ; {loc(300, 300, 400, 400)} xx", truth)
    assert (found["precision"], found["recall"]) == (1.0, 1.0)


def test_polygon_ground_truth_iou_with_shapely():
    # a right triangle of area 5000 inside the predicted 100 x 100 box: IoU 0.5 exactly, which
    # HierText's epsilon (inter / (union + 1e-5)) puts just under the threshold: a miss. The
    # triangle widened by a 2-pixel band along its hypotenuse (area 5198, IoU 0.52) matches.
    triangle = {"vertices": [[0, 0], [100, 0], [0, 100]], "text": "A", "legible": True}
    assert spotting.iou(spotting.polygon(triangle["vertices"]),
                        spotting.polygon([[0, 0], [100, 0], [100, 100], [0, 100]])) \
        == pytest.approx(0.5)
    assert spot(f"{loc(0, 0, 100, 100)} A", [triangle])["f1"] == 0.0
    pentagon = {"vertices": [[0, 0], [100, 0], [100, 2], [2, 100], [0, 100]], "text": "A",
                "legible": True}
    assert spot(f"{loc(0, 0, 100, 100)} A", [pentagon])["f1"] == 1.0


# --- tables: TEDS, S-TEDS (IBM's definition), GriTS (Smock et al.) ------------------------------

SPANNING = '<table><tr><td colspan="2">A</td></tr><tr><td>B</td><td>C</td></tr></table>'


def test_teds_and_grits_on_a_table_with_a_spanning_cell():
    # The prediction misses the span: its first row has two cells. Elements under <table>:
    # tr, td, tr, td, td (5) vs one more td (6); edits: one rename (colspan differs) + one
    # insertion, so TEDS = S-TEDS = 1 - 2/6 (IBM's node count; table-recognition-metric's own
    # count, its tree's size with the root, would give 1 - 2/7).
    # GriTS-Top on the 2x2 grid: the two first-row grid cells relate
    # to a 1x2 span vs 1x1 cells (IoU 1/2 each), the others are equal: 2 * 3 / (4 + 4).
    # GriTS-Con: grid text [[A, A], [B, C]] vs [[A, ""], [B, C]]: 2 * 3 / 8.
    no_span = "<table><tr><td>A</td><td></td></tr><tr><td>B</td><td>C</td></tr></table>"
    scores = table_metrics.table_scores(no_span, SPANNING)
    assert scores["teds"] == pytest.approx(1 - 2 / 6)
    assert scores["s_teds"] == pytest.approx(1 - 2 / 6)
    assert scores["grits_top"] == pytest.approx(0.75)
    assert scores["grits_con"] == pytest.approx(0.75)
    assert table_metrics.table_scores(SPANNING, SPANNING) == {
        "teds": 1.0, "s_teds": 1.0, "grits_top": 1.0, "grits_con": 1.0}


def test_teds_compares_content_by_normalised_edit_distance_and_s_teds_ignores_it():
    wrong = SPANNING.replace(">C<", ">X<")
    scores = table_metrics.table_scores(wrong, SPANNING)
    assert (scores["teds"], scores["s_teds"]) == (pytest.approx(1 - 1 / 5), 1.0)
    # one character of four differs in the only cell; elements under <table>: tr, td
    assert table_metrics.teds("<table><tr><td>abce</td></tr></table>",
                              "<table><tr><td>abcd</td></tr></table>") \
        == pytest.approx(1 - 0.25 / 2)
    # tags inside a cell are content tokens (["<b>", "A", "</b>"] vs ["A"]: 2 edits of 3) and
    # count as elements in IBM's normaliser (tr, td, b: 3)
    assert table_metrics.teds("<table><tr><td>A</td></tr></table>",
                              "<table><tr><td><b>A</b></td></tr></table>") \
        == pytest.approx(1 - (2 / 3) / 3)


def test_teds_node_count_is_ibms_not_the_packages():
    from table_recognition_metric import TEDS

    no_span = "<table><tr><td>A</td><td></td></tr><tr><td>B</td><td>C</td></tr></table>"
    package = TEDS()(f"<html><body>{no_span}</body></html>",
                     f"<html><body>{SPANNING}</body></html>")
    assert package == pytest.approx(1 - 2 / 7)   # why the package's __call__ is not used
    assert table_metrics.teds(no_span, SPANNING) == pytest.approx(1 - 2 / 6)


def test_coords_are_stripped_and_an_unclosed_table_is_unparsable():
    boxed = SPANNING.replace("<td>B", '<td coords="<loc0001><loc0002><loc0003><loc0004>">B')
    assert table_metrics.parse_table(f"{boxed} trailing") == SPANNING
    cut = SPANNING[:-len("</tr></table>")]
    assert table_metrics.parse_table(cut) is None
    scores = tables.score_tables(["a", "b"], [SPANNING, cut], [SPANNING, SPANNING])
    assert scores.ratios["teds"].value == 0.5 and scores.ratios["unparsable_share"].value == 0.5


def test_a_large_set_is_scored_in_workers_with_the_same_numbers(monkeypatch):
    no_span = "<table><tr><td>A</td><td></td></tr><tr><td>B</td><td>C</td></tr></table>"
    predictions = [SPANNING, no_span, None, SPANNING.replace(">C<", ">X<")]
    serial = table_metrics.score_tables(predictions, [SPANNING] * 4)
    monkeypatch.setattr(table_metrics, "PARALLEL_FROM", 2)
    monkeypatch.setattr(table_metrics.os, "cpu_count", lambda: 2)
    assert table_metrics.score_tables(predictions, [SPANNING] * 4) == serial
    assert [s["s_teds"] for s in serial] == [1.0, pytest.approx(1 - 2 / 6), 0.0, 1.0]


def test_reference_html_is_pubtabnet_format_html():
    structure = ["<thead>", "<tr>", "<td", ' colspan="2"', ">", "</td>", "</tr>", "</thead>",
                 "<tbody>", "<tr>", "<td>", "</td>", "<td>", "</td>", "</tr>", "</tbody>"]
    cells = [[{"tokens": ["A"]}, {"tokens": ["<b>", "B", "&", "</b>"]}, {"tokens": []}]]
    assert tables.table_target({"html": structure, "cells": cells}) == (
        '<table><thead><tr><td colspan="2">A</td></tr></thead><tbody><tr><td><b>B&amp;</b>'
        '</td><td></td></tr></tbody></table>')
    with pytest.raises(ValueError, match="3 cells in the structure but 2"):
        tables.table_target({"html": structure, "cells": [cells[0][:2]]})


# --- GrandStaff: SMT's CER / SER / LER ---------------------------------------------------------


def test_kern_error_rates_as_smt_eval_functions():
    reference = "**kern\t**kern\n4c\t4e\n=1\t=1\n*-\t*-"
    prediction = "**kern\t**kern\n4c\t4f\n=\t=\n*-\t*-"   # one symbol wrong; bar numbers dropped
    ratios = kern.kern_ratios([prediction], [reference])
    # after clean-up (bar numbers removed) one character of 31 differs
    assert ratios["cer"].value == pytest.approx(1 / len(kern.clean(reference)))
    # symbols: 4 lines x 2 spines + tabs and line breaks = 15 tokens, one substituted
    assert len(kern.symbols(kern.clean(reference))) == 15
    assert ratios["ser"].value == pytest.approx(1 / 15)
    assert ratios["ler"].value == pytest.approx(1 / 4)


def test_kern_rates_are_corpus_level_and_lower_is_better():
    # 2 edits over a 2-char reference plus 0 over an 8-char one: 2/10, not the mean of 1 and 0
    scores = grandstaff.score_kern(["a", "b"], ["xy", "abcdefgh"], ["ab", "abcdefgh"])
    assert scores.ratios["cer"].value == pytest.approx(2 / 10)
    assert set(scores.lower_is_better) == {"cer", "ser", "ler"}


def test_lower_is_better_reaches_results_json():
    from paligemma_eval.harness.results import metric_entries

    scores = grandstaff.score_kern(["a"], ["ab"], ["ab"])
    entries = metric_entries(scores, resamples=0, seed=0)
    assert entries["cer"]["higher_is_better"] is False
    assert "higher_is_better" not in metric_entries(
        vsr.score_vsr(["a"], ["True"], ["True"]), 0, 0)["accuracy"]


# --- PubChem: SMILES ---------------------------------------------------------------------------


def test_full_match_is_the_exact_string_and_canonical_match_uses_rdkit():
    pytest.importorskip("rdkit", reason="the chem extra (make installs it)")
    # ethanol written two ways: not a full match, a canonical one; benzene Kekulé vs aromatic
    predictions = ["OCC", "C1=CC=CC=C1", "CCO", "not a molecule"]
    references = ["CCO", "c1ccccc1", "CCO", "CCO"]
    scores = pubchem.score_smiles(list("abcd"), predictions, references)
    assert scores.ratios["full_match"].value == 0.25
    assert scores.ratios["canonical_match"].value == 0.75


def test_canonical_match_keeps_stereochemistry():
    pytest.importorskip("rdkit", reason="the chem extra (make installs it)")
    scores = pubchem.score_smiles(["a"], ["C[C@@H](N)O"], ["C[C@H](N)O"])
    assert scores.ratios["canonical_match"].value == 0.0


def test_without_rdkit_canonical_match_is_absent_with_its_reason(monkeypatch):
    monkeypatch.setattr(pubchem, "rdkit_missing", lambda: "RDKit is not installed")
    scores = pubchem.score_smiles(["a"], ["CCO"], ["CCO"])
    assert "canonical_match" not in scores.ratios
    assert scores.notes["canonical_match"] == "not computed: RDKit is not installed"


# --- DOCCI -------------------------------------------------------------------------------------


def test_sentence_splitting_rule():
    assert caption_length.sentences("A dog. It runs") == ["A dog.", "It runs"]
    assert caption_length.count_sentences("It is 3.5 cm wide, e.g., small. \"Yes!\" he said.") == 3
    assert caption_length.count_sentences("Wow?! Great.") == 2
    assert caption_length.count_sentences("   ") == 0


def test_docci_lengths_and_no_nes_number():
    scores = docci.score_lengths(["a", "b"], ["A cat. A hat.", "Red"], ["Ref one.", "Ref two."])
    assert scores.ratios["avg_chars"].value == pytest.approx((13 + 3) / 2)
    assert scores.ratios["avg_sentences"].value == pytest.approx((2 + 1) / 2)
    assert scores.ratios["reference_avg_sentences"].value == 1.0
    assert not any("nes" in name for name in scores.ratios)
    assert "human raters" in scores.notes["nes"]


# --- MIMIC-CXR ---------------------------------------------------------------------------------


def test_report_reference_is_findings_then_impression():
    row = {"indication": "", "findings": " Clear lungs. ", "impression": "No acute process."}
    assert mimic_cxr.report_target(row) == "Clear lungs. No acute process."
    with pytest.raises(ValueError, match="indication must be a string"):
        mimic_cxr.report_target({**row, "indication": None})


def test_radgraph_without_its_model_is_absent_with_a_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("PALIGEMMA_RADGRAPH_DIR", str(tmp_path))
    ratios, note = radgraph.radgraph_ratios(["No effusion."], ["No effusion."])
    assert ratios == {}
    assert note.startswith("radgraph_f1 not computed: ") and "\n" not in note


def test_mimic_scores_captions_metrics_and_records_radgraph_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("PALIGEMMA_RADGRAPH_DIR", str(tmp_path))
    reports = ["The lungs are clear.", "Small left pleural effusion."]
    scores = mimic_cxr.score_reports(["a", "b"], reports, reports)
    assert scores.ratios["rouge_l"].value == pytest.approx(1.0)
    assert scores.statistics["bleu4"].value == pytest.approx(1.0, abs=1e-6)
    assert math.isfinite(scores.ratios["cider"].value)
    assert "radgraph_f1" not in scores.ratios and "not computed" in scores.notes["radgraph_f1"]


def test_radgraph_levels_are_mapped_by_name(monkeypatch, tmp_path):
    """The package's "all" output is (simple, partial, complete): radgraph_f1 is partial."""
    (tmp_path / "radgraph").mkdir()
    (tmp_path / "radgraph" / "config.json").write_text("{}")
    monkeypatch.setenv("PALIGEMMA_RADGRAPH_DIR", str(tmp_path))
    package = pytest.importorskip("radgraph", reason="the radiology extra")

    class Levels:
        def __init__(self, **kwargs):
            assert kwargs["reward_level"] == "all" and kwargs["model_type"] == "radgraph"

        def __call__(self, refs, hyps):
            return None, ([0.1, 0.2], [0.3, 0.5], [0.0, 1.0]), [], []

    monkeypatch.setattr(package, "F1RadGraph", Levels)
    ratios, _ = radgraph.radgraph_ratios(["x", "y"], ["x", "y"])
    assert ratios["radgraph_f1"].value == pytest.approx(0.4)
    assert ratios["radgraph_f1/simple"].value == pytest.approx(0.15)
    assert ratios["radgraph_f1/complete"].value == pytest.approx(0.5)


# --- VSR ---------------------------------------------------------------------------------------


def test_vsr_true_false_accuracy():
    assert vsr.vsr_target({"label": 1}) == "True" and vsr.vsr_target({"label": 0}) == "False"
    scores = vsr.score_vsr(list("abcd"), ["True", "false", "yes", "False"],
                           ["True", "False", "True", "True"])
    assert scores.ratios["accuracy"].value == 0.5
    assert scores.ratios["valid_share"].value == 0.75
