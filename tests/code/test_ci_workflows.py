"""The GitHub workflows shipped for the user's repository, checked offline: GitHub's workflow schema
(bundled by check-jsonschema) and the security linter zizmor; actions pinned to a commit."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.conftest import BIN, ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _run(*cmd) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, capture_output=True, text=True)


def test_both_workflows_ship():
    names = {p.name for p in WORKFLOWS}
    assert {"pull-request.yml", "monitor.yml"} <= names
    pr = yaml.safe_load((ROOT / ".github" / "workflows" / "pull-request.yml").read_text())
    steps = "\n".join(s.get("run", "") for job in pr["jobs"].values() for s in job["steps"])
    for command in ("make test-fast", "dvc exp run", "dvc metrics diff", "gh pr comment"):
        assert command in steps
    monitor = yaml.safe_load((ROOT / ".github" / "workflows" / "monitor.yml").read_text())
    assert monitor[True]["schedule"]  # YAML 1.1 reads the key `on` as true
    steps = "\n".join(s.get("run", "") for job in monitor["jobs"].values() for s in job["steps"])
    assert "mlcycle monitoring run" in steps and "--exit-code" in steps and "mlcycle monitoring retrain" in steps


def test_workflows_match_githubs_schema():
    run = _run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *WORKFLOWS)
    assert run.returncode == 0, run.stdout + run.stderr


def test_schema_check_fails_on_a_wrong_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    step: []\n")
    run = _run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", bad)
    assert run.returncode != 0


def test_zizmor_finds_nothing():
    run = _run(BIN / "zizmor", "--offline", "--no-progress", ROOT / ".github" / "workflows")
    assert run.returncode == 0, run.stdout + run.stderr


def test_zizmor_finds_a_template_injection(tmp_path):
    """The linter is not a formality: a pull request's title expanded into a shell line is flagged."""
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "bad.yml").write_text(
        "on: pull_request\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n')
    run = _run(BIN / "zizmor", "--offline", "--no-progress", folder)
    assert run.returncode != 0
    assert "template-injection" in run.stdout + run.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actions_pinned_and_permissions_minimal(workflow):
    text = workflow.read_text()
    uses = re.findall(r"uses:\s*(\S+)(.*)", text)
    assert uses
    for ref, rest in uses:
        assert re.search(r"@[0-9a-f]{40}$", ref), f"{workflow.name}: {ref} is not pinned to a commit"
        assert re.search(r"#\s*v\d", rest), f"{workflow.name}: {ref} has no version comment"
    data = yaml.safe_load(text)
    assert data["permissions"] == {}, "top-level permissions: {} (each job asks for its own)"
    for name, job in data["jobs"].items():
        assert "permissions" in job, f"{workflow.name}: job {name} states no permissions"

