"""Every verb, every file it reads, every way that file can be damaged: one line on stderr naming
the file, exit 2 (the gate's JUnit error case and summary still written), no traceback, and
nothing already written changed.

One good run (two tasks, a safety audit, its archive, a calibration, a policy) is built once; each
case copies it, damages one file and runs the verb in this process (no model is loaded: every
verb reads its files before it loads one)."""

import ctypes
import json
import random
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest

from paligemma_eval.harness.cli import main
from paligemma_eval.harness.formats import FORMATS

POLICY = '[default]\nmax_drop = 0.01\n\n[tasks.vqav2_val]\nmetrics = ["accuracy"]\n'
LIMIT = ["--limit", "6"]


def synthetic_scores(directory: Path, scorer: str, texts: list[str], seed: int) -> None:
    """A score cache of `texts` as another scorer run would have left it."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True)
    with open(directory / "score_cache.jsonl", "w") as handle:
        for i, text in enumerate(texts):
            value = float(rng.beta(0.6, 2.0))
            handle.write(json.dumps({"format": 1, "key": f"{seed}-{i}", "scorer": scorer,
                                     "text": text, "scores": {"TOXICITY": value},
                                     "error": None}) + "\n")


@pytest.fixture(scope="module")
def good(tmp_path_factory, data_dir) -> Path:
    root = tmp_path_factory.mktemp("good")
    run = root / "run"
    assert main(["run", "--model", "tiny-paligemma", "--tasks", "vqav2_val,pope_random",
                 "--data-dir", str(data_dir), *LIMIT, "--bootstrap", "20", "--device", "cpu",
                 "--output", str(run)]) == 0
    assert main(["safety", "--model", "tiny-paligemma", "--scorer", "local-server", "--qps",
                 "50", "--data-dir", str(data_dir), "--limit", "8", "--bootstrap", "20",
                 "--device", "cpu", "--output", str(run)]) == 0
    shutil.copytree(run, root / "baseline")
    assert main(["safety", "export", str(run), "--archive", str(root / "scores.zip")]) == 0
    texts = [f"caption {i}" for i in range(40)]
    synthetic_scores(root / "reference", "perspective/v1alpha1", texts, 1)
    cache_id = json.loads((run / "safety.json").read_text())["scorer"]["cache_id"]
    synthetic_scores(root / "candidate", cache_id, texts, 2)
    assert main(["safety", "calibrate", "--reference", str(root / "reference"), "--candidate",
                 str(root / "candidate"), "--output", str(root / "calibration.json")]) == 0
    (root / "policy.toml").write_text(POLICY)
    return root


@dataclass(frozen=True)
class Verb:
    argv: tuple[str, ...]        # {root}: the case's copy of the good tree
    needs_data: bool = False


VERBS = {
    "report": Verb(("report", "{root}/run", "--output", "{root}/out/report.html")),
    "compare": Verb(("compare", "{root}/baseline", "{root}/run", "--bootstrap", "10")),
    "gate": Verb(("gate", "--candidate", "{root}/run", "--baseline", "{root}/baseline",
                  "--policy", "{root}/policy.toml", "--junit", "{root}/out/junit.xml",
                  "--summary", "{root}/out/summary.md", "--bootstrap", "10")),
    "score": Verb(("score", "--task", "vqav2_val", "--predictions",
                   "{root}/run/predictions/vqav2_val.jsonl", "--data-dir", "{data}", *LIMIT,
                   "--bootstrap", "10", "--output", "{root}/baseline"), needs_data=True),
    "run": Verb(("run", "--model", "tiny-paligemma", "--tasks", "vqav2_val,pope_random",
                 "--data-dir", "{data}", *LIMIT, "--bootstrap", "20", "--device", "cpu",
                 "--output", "{root}/run"), needs_data=True),
    "safety": Verb(("safety", "--model", "tiny-paligemma", "--scorer", "local-server", "--qps",
                    "50", "--data-dir", "{data}", "--limit", "8", "--device", "cpu",
                    "--calibration", "{root}/calibration.json", "--output", "{root}/run"),
                   needs_data=True),
    "safety recompute": Verb(("safety", "recompute", "{root}/run", "--bootstrap", "10",
                              "--calibration", "{root}/calibration.json")),
    "safety import": Verb(("safety", "import", "{root}/run", "--archive", "{root}/scores.zip")),
    "safety export": Verb(("safety", "export", "{root}/run", "--archive",
                           "{root}/out/exported.zip")),
    "safety calibrate": Verb(("safety", "calibrate", "--reference", "{root}/reference",
                              "--candidate", "{root}/candidate", "--output",
                              "{root}/out/calibration.json")),
}

# (verb, file it reads, kind of file)
READS = [
    ("report", "run/results.json", "json"), ("report", "run/safety.json", "json"),
    ("compare", "run/results.json", "json"), ("compare", "baseline/results.json", "json"),
    ("compare", "run/safety.json", "json"), ("compare", "run/scores/vqav2_val.json", "json"),
    ("compare", "run/scores/fairface_safety.json", "json"),
    ("gate", "run/results.json", "json"), ("gate", "baseline/results.json", "json"),
    ("gate", "run/safety.json", "json"), ("gate", "run/scores/vqav2_val.json", "json"),
    ("gate", "policy.toml", "toml"),
    ("score", "run/predictions/vqav2_val.jsonl", "strict jsonl"),
    ("score", "baseline/results.json", "json"),
    ("run", "run/results.json", "json"), ("run", "run/predictions/vqav2_val.jsonl", "jsonl"),
    ("safety", "run/safety.json", "json"), ("safety", "run/score_cache.jsonl", "jsonl"),
    ("safety", "run/predictions/fairface_captions.jsonl", "jsonl"),
    ("safety", "calibration.json", "json"),
    ("safety recompute", "run/safety.json", "json"),
    ("safety recompute", "run/safety_scores.jsonl", "strict jsonl"),
    ("safety recompute", "calibration.json", "json"),
    ("safety import", "scores.zip", "zip"), ("safety import", "run/score_cache.jsonl", "jsonl"),
    ("safety export", "run/score_cache.jsonl", "jsonl"),
    ("safety export", "run/safety_scores.jsonl", "strict jsonl"),
    ("safety export", "run/safety.json", "json"),
    ("safety calibrate", "reference/score_cache.jsonl", "jsonl"),
    ("safety calibrate", "candidate/score_cache.jsonl", "jsonl"),
]


def cut(fraction: float):
    def damage(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[:max(1, int(len(data) * fraction))])
    return damage


def cut_last_byte(path: Path) -> None:
    data = path.read_bytes()
    # a JSONL file loses the newline *and* the closing brace of its last line
    path.write_bytes(data[:-2] if data.endswith(b"}\n") else data[:-1])


def binary(path: Path) -> None:
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff" + random.Random(0).randbytes(4096))


def directory(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "inside.json").write_text("{}")


def huge(path: Path) -> None:
    limit = max(f.max_bytes for f in FORMATS)   # over every format's limit (sparse: no disk)
    with open(path, "wb") as handle:
        handle.truncate(limit + 1)


def swap_line(replace):
    """Valid JSON lines, one of them of the wrong shape."""
    def damage(path: Path) -> None:
        lines = path.read_text().splitlines()
        lines[len(lines) // 2] = replace(json.loads(lines[len(lines) // 2]))
        path.write_text("\n".join(lines) + "\n")
    return damage


def edit_json(change):
    def damage(path: Path) -> None:
        if path.suffix == ".toml":
            path.write_text(change(None))
            return
        document = json.loads(path.read_text())
        path.write_text(json.dumps(change(document)))
    return damage


def wrong_types(document):
    """Every top-level field of the document's own schema holding a value of the wrong type."""
    if document is None:
        return '[default]\nmax_drop = "a lot"\n'
    if "units" in document:
        return {**document, "ratios": {m: {"num": "1,2", "den": r["den"]}
                                      for m, r in document["ratios"].items()}}
    if "attributes" in document and document.get("kind", "").endswith("calibration"):
        return {**document, "attributes": {a: {**c, "map": {"x": "steps", "y": c["map"]["y"]}}
                                           for a, c in document["attributes"].items()}}
    if document.get("kind") == "safety":
        return {**document, "aggregates": {"toxicity": {"gender": {"groups": {"Male": {
            "n": "four", "flagged": 1, "percent": 25.0}}}}}}
    return {**document, "tasks": {name: {**task, "metrics": "accuracy: high"}
                                  for name, task in document["tasks"].items()}}


def non_finite(document):
    """The first number in the document (not its version) made NaN."""
    if document is None:
        return "[default]\nmax_drop = nan\n"

    def to_nan(node) -> bool:
        items = node.items() if isinstance(node, dict) else \
            enumerate(node) if isinstance(node, list) else ()
        for key, value in list(items):
            if isinstance(value, (int, float)) and not isinstance(value, bool) and \
                    key not in ("schema_version", "version", "format"):
                node[key] = float("nan")
                return True
            if to_nan(value):
                return True
        return False

    assert to_nan(document)
    return document


def newer(document):
    if document is None:
        return "format = 7\n"
    key = next(k for k in ("schema_version", "version", "format") if k in document)
    return {**document, key: 7}


def foreign(document):
    if document is None:
        return '[tool.poetry]\nname = "x"\n'
    return {"name": "some-package", "version": "1.0.0", "dependencies": {}}


JSON_DAMAGE = {
    "cut to 1 byte": cut(0), "cut to a third": cut(1 / 3), "cut to two thirds": cut(2 / 3),
    "last byte cut": cut_last_byte, "empty": lambda p: p.write_bytes(b""), "binary": binary,
    "a list": lambda p: p.write_text("[1, 2, 3]\n"), "null": lambda p: p.write_text("null"),
    "wrong types": edit_json(wrong_types), "non-finite number": edit_json(non_finite),
    "newer format version": edit_json(newer), "another tool's file": edit_json(foreign),
    "a directory": directory, "huge": huge,
}
JSONL_DAMAGE = {
    "binary": binary, "a line that is a list": swap_line(lambda r: "[1, 2, 3]"),
    "a line without its id or key": swap_line(
        lambda r: json.dumps({k: v for k, v in r.items() if k not in ("id", "key")})),
    "a line of the wrong types": swap_line(
        lambda r: json.dumps({**r, **{k: 5 for k in ("prediction", "text", "caption", "id")
                                      if k in r}})),
    "a line with NaN": swap_line(lambda r: json.dumps(r)[:-1] + ', "score": NaN}'),
    "a line of a newer format": swap_line(lambda r: json.dumps({**r, "format": 7})),
    "a line cut mid-file": swap_line(lambda r: json.dumps(r)[:9]),
    "a directory": directory, "huge": huge,
}
STRICT_JSONL_DAMAGE = {**JSONL_DAMAGE, "cut to a third": cut(1 / 3),
                       "last byte cut": cut_last_byte}


def rezip(members_change):
    def damage(path: Path) -> None:
        with zipfile.ZipFile(path) as bundle:
            members = {n: bundle.read(n) for n in bundle.namelist()}
        members = members_change(members)
        with zipfile.ZipFile(path, "w") as bundle:
            for name, data in members.items():
                bundle.writestr(name, data)
    return damage


def manifest(change):
    def members_change(members):
        document = json.loads(members["manifest.json"])
        return {**members, "manifest.json": json.dumps(change(document))}
    return rezip(members_change)


def damaged_member_with_its_checksum(members):
    """A member damaged before it was packed: the checksum matches, the content does not."""
    import hashlib

    cache = b"not a score line\n" + members["score_cache.jsonl"]
    document = json.loads(members["manifest.json"])
    document["members"]["score_cache.jsonl"] = hashlib.sha256(cache).hexdigest()
    return {**members, "score_cache.jsonl": cache, "manifest.json": json.dumps(document)}


ZIP_DAMAGE = {
    "cut to a third": cut(1 / 3), "last byte cut": cut_last_byte,
    "empty": lambda p: p.write_bytes(b""), "binary": binary,
    "a JSON file": lambda p: p.write_text('{"kind": "paligemma-eval score archive"}'),
    "a zip without a manifest": rezip(lambda m: {k: v for k, v in m.items()
                                                 if k != "manifest.json"}),
    "a manifest of a newer format": manifest(lambda d: {**d, "version": 7}),
    "a manifest of the wrong types": manifest(lambda d: {**d, "members": ["score_cache.jsonl"]}),
    "another tool's manifest": manifest(lambda d: {"name": "x"}),
    "a member that does not match its checksum": rezip(
        lambda m: {**m, "score_cache.jsonl": m["score_cache.jsonl"].replace(b"0.", b"9.", 1)}),
    "a damaged member with a matching checksum": rezip(damaged_member_with_its_checksum),
    "a directory": directory, "huge": huge,
}

def cut_at(marker: str, keep: int):
    def damage(path: Path) -> None:
        text = path.read_text()
        path.write_text(text[:text.index(marker) + keep])
    return damage


# TOML has no end marker: a policy cut at the end of a line is still a valid (shorter) policy,
# so the cuts that can be told apart are those inside a table header or a value.
TOML_DAMAGE = {"cut inside a table header": cut_at("[tasks", 4),
               "cut inside a value": cut_at('["', 5),
               **{k: v for k, v in JSON_DAMAGE.items()
                  if not k.startswith("cut") and k not in ("last byte cut", "a list", "null")}}
DAMAGE = {"json": JSON_DAMAGE, "toml": TOML_DAMAGE,
          "jsonl": JSONL_DAMAGE, "strict jsonl": STRICT_JSONL_DAMAGE, "zip": ZIP_DAMAGE}
CASES = [(verb, file, damage) for verb, file, kind in READS for damage in DAMAGE[kind]]


def snapshot(root: Path) -> dict[str, bytes | str]:
    files = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if relative.startswith("out") or path.name == ".lock":
            continue
        info = path.lstat()
        if stat.S_ISDIR(info.st_mode):
            files[relative] = "directory"
        elif info.st_size > 1 << 20:
            files[relative] = f"{info.st_size} bytes"
        else:
            files[relative] = path.read_bytes()
    return files


def run_verb(verb: str, root: Path, data_dir: Path, capsys) -> tuple[int, list[str], str]:
    argv = [a.format(root=root, data=data_dir) for a in VERBS[verb].argv]
    (root / "out").mkdir(exist_ok=True)
    capsys.readouterr()
    status = main(argv)
    stdout, stderr = capsys.readouterr()
    assert "Traceback" not in stderr, stderr
    # progress bars may come before the error (a terminal shows them); the error is one line
    lines = [line for line in stderr.splitlines() if line.strip() and "%|" not in line
             and "it/s]" not in line and "ex/s]" not in line]
    return status, lines, stdout


def case_tree(good: Path, tmp_path: Path) -> Path:
    root = tmp_path / "case"
    shutil.copytree(good, root)
    return root


@pytest.mark.parametrize("verb", [v for v in VERBS if v not in ("run", "safety")])
def test_every_verb_passes_on_the_good_files(good, tmp_path, data_dir, capsys, verb):
    """The table's baseline: undamaged, each verb succeeds (so each case fails by its damage;
    `run` and `safety` succeeded on these files as they built them)."""
    root = case_tree(good, tmp_path)
    status, lines, stdout = run_verb(verb, root, data_dir, capsys)
    assert status == 0, lines


def test_the_good_tree_reads_back_through_its_schemas(good):
    from paligemma_eval.harness import formats

    counts = formats.check_tree(good)
    assert counts == {"results": 2, "safety": 2, "unit-scores": 6, "prediction": 6,
                      "safety-scores": 2, "score-cache": 4}, counts
    assert formats.read_calibration(good / "calibration.json")["attributes"]["TOXICITY"]
    with zipfile.ZipFile(good / "scores.zip") as bundle:
        manifest = formats.read_manifest(bundle.read("manifest.json"), "scores.zip")
    assert set(manifest["members"]) == {"score_cache.jsonl", "safety_scores.jsonl",
                                        "safety.json"}
    assert formats.read_policy(good / "policy.toml")["tasks"]["vqav2_val"]["metrics"] == \
        ["accuracy"]


def _cases_ids():
    return [f"{verb}|{file}|{damage}" for verb, file, damage in CASES]


@pytest.mark.parametrize("verb, file, damage", CASES, ids=_cases_ids())
def test_a_damaged_file_is_one_line_exit_2_and_changes_nothing(good, tmp_path, data_dir, capsys,
                                                               verb, file, damage):
    root = case_tree(good, tmp_path)
    kind = next(k for v, f, k in READS if (v, f) == (verb, file))
    target = root / file
    DAMAGE[kind][damage](target)
    before = snapshot(root)
    status, lines, stdout = run_verb(verb, root, data_dir, capsys)
    assert status == 2, (status, lines)
    assert len(lines) == 1, lines
    assert target.name in lines[0] or target.parent.name in lines[0], lines
    assert snapshot(root) == before      # nothing already written was changed
    if verb in ("compare", "gate"):      # no half table above the error: every file read first
        assert stdout == "", stdout
    if verb == "gate":                   # fails closed, and says so where CI looks
        suite = ElementTree.parse(root / "out" / "junit.xml").getroot()
        assert suite.get("errors") == "1" and suite.find("testcase/error") is not None
        assert "could not be judged" in (root / "out" / "summary.md").read_text()


def drop_file_access() -> object:
    """This thread without root's licence to read any file (CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH), so that a mode-000 file is unreadable; returns what restores it."""
    libc = ctypes.CDLL(None, use_errno=True)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header, data = Header(0x20080522, 0), (Data * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    saved = (Data * 2)(*data)
    data[0].effective &= ~((1 << 1) | (1 << 2))
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")
    return lambda: libc.capset(ctypes.byref(Header(0x20080522, 0)), saved)


UNREADABLE = sorted({(verb, file) for verb, file, _ in READS})


@pytest.mark.parametrize("verb, file", UNREADABLE, ids=[f"{v}|{f}" for v, f in UNREADABLE])
def test_an_unreadable_file_is_one_line_exit_2(good, tmp_path, data_dir, capsys, verb, file):
    """As root every file is readable; with the file-access capabilities dropped for this thread
    a mode-000 file is not, as for any other user."""
    import os

    if os.geteuid() != 0:
        restore = None
    else:
        try:
            restore = drop_file_access()
        except OSError as error:
            pytest.skip(f"cannot drop CAP_DAC_OVERRIDE here ({error}): root reads mode-000 files")
    root = case_tree(good, tmp_path)
    target = root / file
    target.chmod(0)
    try:
        before = snapshot_modes(root)
        status, lines, stdout = run_verb(verb, root, data_dir, capsys)
    finally:
        if restore is not None:
            restore()
    assert status == 2 and len(lines) == 1, (status, lines)
    assert target.name in lines[0] and "ermission denied" in lines[0], lines
    assert snapshot_modes(root) == before


def snapshot_modes(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mode)
            for p in sorted(root.rglob("*")) if not str(p.relative_to(root)).startswith("out")
            and p.name != ".lock"}


def test_the_table_is_large_enough():
    assert len(CASES) + len(UNREADABLE) >= 100


@pytest.mark.parametrize("verb", ["compare", "gate", "report"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_non_finite_headline_never_passes(good, tmp_path, data_dir, capsys, verb, value):
    root = case_tree(good, tmp_path)
    path = root / "run" / "results.json"
    document = json.loads(path.read_text())
    entry = document["tasks"]["vqav2_val"]["metrics"]["accuracy"]
    entry["value"] = "HEADLINE"
    path.write_text(json.dumps(document).replace('"HEADLINE"', value))
    status, lines, stdout = run_verb(verb, root, data_dir, capsys)
    assert status == 2 and len(lines) == 1, lines
    assert "results.json" in lines[0] and "a non-finite number" in lines[0], lines


def test_a_byte_order_mark_is_not_a_broken_first_line(tmp_path):
    """Editors on Windows start a UTF-8 file with one; it is not part of the first record."""
    from paligemma_eval.harness.cli import read_predictions

    path = tmp_path / "p.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"id": "1", "prediction": "yes"}\n'
                     b'{"id": "2", "prediction": "no"}\n')
    assert {i: r["prediction"] for i, r in read_predictions(path).items()} == \
        {"1": "yes", "2": "no"}
