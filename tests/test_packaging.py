"""The wheel as a user installs it: one import name, the demo without the source tree, plugins
that cannot break the tool, and no clash with other packages' generic names."""

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    shutil.rmtree(ROOT / "build", ignore_errors=True)   # no stale files from an earlier build
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True, capture_output=True)
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    (path,) = out.glob("paligemma_eval-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv holding only the wheel; torch and the other dependencies come from the running
    environment through a .pth line (which adds the directory but runs none of its .pth hooks, so
    the editable install of the checkout stays invisible)."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], capture_output=True, text=True,
                               check=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    before = set(p.name for p in site.iterdir())
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    root.joinpath("new-names").write_text("\n".join(sorted(
        set(p.name for p in site.iterdir()) - before)))
    return root


def _site(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def test_wheel_adds_one_import_name(wheel, venv):
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert tops == {"paligemma_eval", f"{wheel.name.split('-')[0]}-"
                    f"{wheel.name.split('-')[1]}.dist-info"}
    new = (venv / "new-names").read_text().split()
    assert [n for n in new if not n.endswith(".dist-info")] == ["paligemma_eval"], new


def test_wheel_alone_runs_the_demo(venv, tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run([venv / "bin" / "paligemma-eval", "demo", "--output", str(out),
                           "--limit", "2"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    for model in ("tiny-paligemma", "tiny-paligemma2"):
        tasks = json.loads((out / model / "results.json").read_text())["tasks"]
        assert "coco_cap_karpathy_test" in tasks and "vqav2_val" in tasks
        # installed from a wheel: no git commit of whatever repository surrounds it
        assert json.loads((out / model / "results.json").read_text())["harness"]["git_commit"] \
            is None
    assert json.loads((out / "tiny-paligemma" / "safety.json").read_text())["aggregates"]
    assert "<table" in (out / "report.html").read_text()
    # Every file the demo wrote reads back through its schema, with the schemas of the wheel.
    check = ("import json, sys; from pathlib import Path; from paligemma_eval.harness import "
             "formats; root = Path(sys.argv[1]); print(json.dumps([formats.check_tree(root), "
             "sorted(str(p.relative_to(root)) for p in root.rglob('*') if p.is_file() and "
             "formats.format_of(p) is None)]))")
    done = subprocess.run([venv / "bin" / "python", "-c", check, str(out)], capture_output=True,
                          text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    counts, others = json.loads(done.stdout)
    assert set(counts) == {"results", "unit-scores", "prediction", "submission", "safety",
                           "safety-scores", "score-cache", "browser"}, counts
    assert counts["results"] == 2 and counts["prediction"] > 40
    # besides those: the report and the browser's static pages, scripts and images (what a
    # browser reads, never the harness), the demo's decoder and the run locks
    assert {p for p in others if not p.startswith("browser/")} == {
        "report.html", "vae-oid-fixture.npz", "tiny-paligemma/.lock", "tiny-paligemma2/.lock"}
    assert {p.rsplit(".", 1)[-1] for p in others if p.startswith("browser/")} <= {
        "html", "js", "jpg", "png"}, others


def test_a_package_named_safety_installs_beside_it(venv, tmp_path):
    other = _site(venv) / "safety"
    other.mkdir()
    (other / "__init__.py").write_text("SCANNER = 'dependency scanner'\n")
    check = ("import safety, paligemma_eval.safety.scorers as ours; "
             "assert safety.SCANNER == 'dependency scanner'; print(ours.__name__)")
    done = subprocess.run([venv / "bin" / "python", "-c", check], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "paligemma_eval.safety.scorers"


def _fake_plugin(site: Path, name: str, code: str) -> None:
    (site / f"{name}.py").write_text(code)
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[paligemma_eval.tasks]\n{name} = {name}:tasks\n")


def test_broken_plugins_cost_a_warning_not_the_tool(venv, tmp_path, data_dir):
    site = _site(venv)
    _fake_plugin(site, "broken_plugin", "raise ImportError('needs libfoo')\n")
    _fake_plugin(site, "clashing_plugin", (
        "from paligemma_eval.harness.registry import DatasetSource, Task\n"
        "def tasks():\n"
        "    return [Task(name='vqav2_val', source=DatasetSource('x/y', 'val'), prompt='{q}',\n"
        "                 target=str, scorer=None, columns=(), id_column=None)]\n"))
    exe = venv / "bin" / "paligemma-eval"
    listing = subprocess.run([exe, "tasks"], capture_output=True, text=True, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "broken plugin broken_plugin (broken_plugin:tasks): ImportError: needs libfoo" \
        in listing.stdout
    assert "clashes with the task of that name" in listing.stdout
    warnings = [line for line in listing.stderr.splitlines() if "broken_plugin" in line]
    assert len(warnings) == 1 and "Traceback" not in listing.stderr
    done = subprocess.run([exe, "run", "--model", "tiny-paligemma", "--tasks", "vqav2_val",
                           "--data-dir", str(data_dir), "--limit", "2", "--output",
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out" / "results.json").read_text())["tasks"]["vqav2_val"]
    assert result["prompt"].startswith("answer en")   # the built-in task, not the clashing one
    refused = subprocess.run([exe, "run", "--model", "tiny-paligemma", "--tasks", "nope",
                              "--output", str(tmp_path / "o2")], capture_output=True, text=True)
    assert refused.returncode == 2 and "plugin broken_plugin" in refused.stderr
    *warned, error = refused.stderr.strip().splitlines()
    assert error.startswith("paligemma-eval run: error: unknown task 'nope'")
    assert all("warning: plugin" in line for line in warned), warned


def test_a_users_own_tasks_package_does_not_hide_the_built_ins(tmp_path, data_dir):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "__init__.py").write_text("raise RuntimeError('the user tasks')\n")
    (tmp_path / "harness").mkdir()
    (tmp_path / "harness" / "__init__.py").write_text("raise RuntimeError('the user harness')\n")
    done = subprocess.run(cli("run", "--model", "tiny-paligemma", "--tasks", "vqav2_val",
                              "--data-dir", str(data_dir), "--limit", "2", "--output",
                              str(tmp_path / "out")), capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "vqav2_val" in json.loads((tmp_path / "out" / "results.json").read_text())["tasks"]
