"""Tasks register themselves: a package under mlcycle/tasks/ is a task with no line elsewhere (its
objectives become data.task values, its own params section a typed section), and the shared stages
read a target by its kind."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from mlcycle.core import config, tasks
from mlcycle.core.errors import ParamsError
from tests.conftest import ROOT

PLANTED = '''"""A planted task."""
from mlcycle.core.tasks import Task

TASK = Task(name="planted", objectives=("planting",), summary="a planted task", targets={"planting": "numbers"},
            params_section="plant", params_model="mlcycle.tasks.planted.params:PlantParams",
            hooks={"check_params": "mlcycle.tasks.planted.params:check"})
'''
PLANTED_PARAMS = '''from mlcycle.core.section import Section


class PlantParams(Section):
    depth: int = 3


def check(params):
    if params.plant is None:
        raise ValueError("data.task is planting: the `plant` section must be set")
'''
PROBE = '''
import json
from mlcycle.core import config, tasks
raw = {"data": {"path": "x.csv", "target": "y", "task": "planting"}, "plant": {"depth": 5}}
p = config.parse(raw)
try:
    config.parse({"data": raw["data"]})
    missing = None
except Exception as exc:
    missing = str(exc)
print(json.dumps({"registry": list(tasks.REGISTRY), "objectives": list(tasks.objectives()), "task": p.task,
                  "depth": p.plant.depth, "kind": tasks.target_of("planting"), "missing": missing}))
'''


def test_the_registry_is_every_package_under_tasks():
    folder = ROOT / "src" / "mlcycle" / "tasks"
    assert list(tasks.REGISTRY) == sorted(d.name for d in folder.iterdir() if (d / "__init__.py").exists())
    assert sum(t.default for t in tasks.all_tasks()) == 1
    assert tasks.objectives()[: len(tasks.default().objectives)] == tasks.default().objectives
    for t in tasks.all_tasks():
        assert set(t.targets) == set(t.objectives) and set(t.targets.values()) <= set(tasks.TARGET_KINDS), t.name


def test_a_planted_task_package_plugs_in_with_no_edit_outside_its_folder(tmp_path):
    pkg = tmp_path / "mlcycle"
    shutil.copytree(ROOT / "src" / "mlcycle", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "tasks" / "planted").mkdir()
    (pkg / "tasks" / "planted" / "__init__.py").write_text(PLANTED)
    (pkg / "tasks" / "planted" / "params.py").write_text(PLANTED_PARAMS)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["registry"] == sorted([*tasks.REGISTRY, "planted"])
    assert "planting" in got["objectives"] and got["task"] == "planted" and got["depth"] == 5
    assert got["kind"] == "numbers"
    assert "the `plant` section must be set" in got["missing"]


def test_an_unknown_data_task_lists_the_values_the_registered_tasks_serve():
    with pytest.raises(ParamsError) as exc:
        config.parse({"data": {"path": "x.csv", "target": "y", "task": "forecasting"}})
    for objective in tasks.objectives():
        assert f"'{objective}'" in str(exc.value)
    assert "data.task" in str(exc.value)


def test_the_kind_of_a_target_decides_the_shared_checks():
    assert [tasks.target_of(o) for o in tasks.default().objectives] == ["classes", "numbers"]
    assert tasks.target_of("no such objective") is None
    # a threshold makes two classes: refused for a task whose target is no classes
    with pytest.raises(ParamsError, match="threshold turns a number into two classes"):
        config.parse({"data": {"path": "x.csv", "target": "y", "task": "regression", "threshold": 3}})

