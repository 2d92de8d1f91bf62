"""README states what the code does: its task table is the registry's own listing."""

import subprocess

from tests.conftest import ROOT, cli


def test_readme_task_table_is_the_registry_listing():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- tasks:start -->\n")[1].split("<!-- tasks:end -->")[0]
    listing = subprocess.run(cli("tasks", "--markdown"), capture_output=True, text=True,
                             check=True).stdout
    assert table == listing, "README's task table is stale: paste `paligemma-eval tasks " \
                             "--markdown` between its markers"
    assert "example_plugin_vqa" not in listing        # built-in tasks only
    assert "| `coco35l_dev` |" in listing and "(ours: the card's is unpublished)" in listing
