"""The workspace's own conventions: one name per stage everywhere, one parameters cell, no stored
outputs, notebooks that orchestrate (no def/class) and tell one task's story each (notebooks/<task>/),
dvc.yaml deps and outs that match the code."""

import ast
import json

import pytest
import yaml

from mlcycle.core import tasks
from mlcycle.core.paths import (
    MACHINE_LOCAL,
    NOTEBOOK_FILES,
    NOTEBOOKS,
    OPERATIONS,
    SHARED_NOTEBOOKS,
    STAGES,
    Paths,
)
from tests.conftest import ROOT

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def cells(path):
    return json.loads(path.read_text())["cells"]


def stage_notebooks() -> list[tuple[str, str]]:
    """(stage, task) of every stage notebook on disk: each task's own, and a shared one once (task '')."""
    return [(s, "") for s in NOTEBOOK_FILES if s in SHARED_NOTEBOOKS] + [
        (s, task) for task in tasks.REGISTRY for s in NOTEBOOK_FILES if s not in SHARED_NOTEBOOKS]


def notebook(stage: str, task: str):
    return Paths(ROOT).notebook(stage, task or next(iter(tasks.REGISTRY)))


def task_branches(cs: list[dict], task: str) -> list[str]:
    """What in a task's notebook cells asks which task runs, or names another task: a comparison of
    `data.task`, another task's objectives as literals (e.g. `"recommendation"` in a tabular notebook,
    `"regression"` in a recommender's), another task's package. Each hit as `cell id: text`."""
    own = tasks.get(task)
    others = [tasks.get(t) for t in tasks.REGISTRY if t != task]
    needles = ["data.task ==", "data.task !=", "data.task in "]
    for other in others:
        needles += [f'{o}"' for o in other.objectives if o not in own.objectives]
        needles += [f"{o}'" for o in other.objectives if o not in own.objectives]
        needles += [f"mlcycle.tasks.{other.name}", f"src/mlcycle/tasks/{other.name}/"]
    return [f"{c.get('id')}: {needle}" for c in cs for needle in needles if needle in "".join(c["source"])]


# stages dvc.yaml generates from params (`foreach`): none, or one per ingest step / enrichment table
GENERATED = {"ingest": "ingest", "tables": "features.enrich.tables"}


def module(stage: str) -> str:
    """A stage's module: the one every task shares, in whichever layer folder holds it (at most one),
    else the tabular task's (`tasks/tabular/<stage>.py`; each task's stage code is in its package)."""
    shared = sorted((ROOT / "src" / "mlcycle").glob(f"*/{stage}.py"))
    assert len(shared) <= 1, f"stage {stage}: more than one module src/mlcycle/<layer>/{stage}.py: {shared}"
    found = shared or [ROOT / "src" / "mlcycle" / "tasks" / "tabular" / f"{stage}.py"]
    assert found[0].exists(), f"stage {stage}: no module src/mlcycle/<layer>/{stage}.py or tasks/tabular/{stage}.py"
    return str(found[0].relative_to(ROOT))


def stage(name: str) -> dict:
    """A stage's definition (the `do` template of a generated one)."""
    return DVC[name].get("do", DVC[name])


def test_notebook_folder_matches_stages():
    """notebooks/ holds the shared stage notebooks (ingest), one folder per registered task with each
    of the other stage notebooks, and explore/ (a researcher's own)."""
    on_disk = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert on_disk == sorted(NOTEBOOK_FILES[s] for s in SHARED_NOTEBOOKS)
    folders = sorted(p.name for p in (ROOT / "notebooks").iterdir() if p.is_dir() and not p.name.startswith("."))
    assert folders == sorted([*tasks.REGISTRY, "explore"])
    for task in tasks.REGISTRY:
        own = sorted(p.name for p in (ROOT / "notebooks" / task).glob("*.ipynb"))
        assert own == sorted(f for s, f in NOTEBOOK_FILES.items() if s not in SHARED_NOTEBOOKS), task
        for stage in NOTEBOOK_FILES:
            path = Paths(ROOT).notebook(stage, task)
            assert path.exists() and (path.parent.name == task) == (stage not in SHARED_NOTEBOOKS), path
    assert [s for s in DVC if s not in GENERATED or s in STAGES] == list(STAGES)
    assert not set(OPERATIONS) & set(DVC)  # operations stages run on live data, outside dvc repro
    for name, key in GENERATED.items():
        assert DVC[name]["foreach"] == "${" + key + "}"


@pytest.mark.parametrize("stage, task", stage_notebooks())
def test_notebook_shape(stage, task):
    path = notebook(stage, task)
    name = str(path.relative_to(ROOT / "notebooks"))
    cs = cells(path)
    tagged = [c for c in cs if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged parameters"
    for line in "".join(tagged[0]["source"]).splitlines():
        assert ":" in line and "=" in line and "#" in line, f"typed, commented literal expected: {line}"
    for c in cs:
        if c["cell_type"] == "code":
            assert not c.get("outputs") and c.get("execution_count") is None, "notebooks are committed without outputs"
            tree = ast.parse("".join(c["source"]))
            assert not [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)], \
                "functions and classes belong in src/mlcycle"
    ids = [c.get("id") for c in cs]
    assert all(ids) and len(set(ids)) == len(ids), "every cell has its own id (nbformat 4.5; nbformat warns otherwise)"
    first = "".join(cs[0]["source"])
    # the stage's module, or (a task with modules of its own) its task package's
    assert module(stage) in first or (task and f"src/mlcycle/tasks/{task}/" in first), \
        f"the first cell of {name} must name the stage's module {module(stage)}"


def test_no_notebook_branches_on_the_task():
    """Each task's notebooks tell its story only: no cell asks which task runs or names another task
    (the runner picks notebooks/<task>/ from params `task`)."""
    scanned = 0
    for task in tasks.REGISTRY:
        for path in sorted((ROOT / "notebooks" / task).glob("*.ipynb")):
            assert not task_branches(cells(path), task), f"{path.relative_to(ROOT)}: {task_branches(cells(path), task)}"
            scanned += 1
    assert scanned == len(tasks.REGISTRY) * len([s for s in NOTEBOOK_FILES if s not in SHARED_NOTEBOOKS])
    # the check sees a branch: a cell planted in each task's train notebook
    planted = {"id": "planted", "cell_type": "code", "source": ["if cfg.data.task == \"recommendation\":\n", "    pass"]}
    for task in tasks.REGISTRY:
        cs = cells(Paths(ROOT).notebook("train", task))
        assert task_branches([*cs, planted], task) == ["planted: data.task =="] + (
            ["planted: recommendation\""] if "recommendation" not in tasks.get(task).objectives else [])
    other = next(t for t in tasks.REGISTRY if t != "tabular")
    mention = {"id": "mention", "cell_type": "code", "source": [f"from mlcycle.tasks.{other} import stages"]}
    assert task_branches([mention], "tabular") == [f"mention: mlcycle.tasks.{other}"]
    assert task_branches([{"id": "own", "cell_type": "code", "source": ['spec.task == "regression"']}], "tabular") == []


@pytest.mark.parametrize("stage", STAGES)
def test_stage_has_module_test_and_deps(stage):
    shared = module(stage).startswith("src/mlcycle/stages/")
    assert shared or module(stage).startswith("src/mlcycle/tasks/tabular/")
    assert (ROOT / "tests" / "code" / f"test_{stage}.py").exists()
    spec = globals()["stage"](stage)
    deps = spec["deps"]
    # a shared module by its path; a task's own code through the active task's package
    assert module(stage) in deps if shared else "src/mlcycle/tasks/${task}" in deps
    if stage in NOTEBOOKS and stage not in SHARED_NOTEBOOKS:
        assert "src/mlcycle/tasks/${task}" in deps, f"{stage}: the active task's code is a dependency"
        assert not [d for d in deps if d.startswith("src/mlcycle/tasks/") and "${task}" not in d], \
            f"{stage}: depends on one task's code by name"
    assert "src/mlcycle/core" in deps, "every stage uses the core layer: it depends on the whole folder"
    if stage in NOTEBOOKS:
        # the notebook of the task params name (`${task}`), or the shared one
        assert Paths(ROOT).notebook(stage, "${task}").relative_to(ROOT).as_posix() in deps
        assert spec["cmd"] == f"python -m mlcycle run {stage}"
        outs = [next(iter(o)) if isinstance(o, dict) else o for o in spec["outs"]]
        paths = Paths(ROOT)
        for report in (paths.report_html(stage), paths.executed_notebook(stage)):
            rel = str(report.relative_to(ROOT))
            # declared, unless it shows this machine's registry (the evaluate report shows the gate)
            assert (rel in outs) != (rel in MACHINE_LOCAL), rel
        assert "report.show_code" in spec["params"]


def test_no_stage_reads_or_writes_what_records_this_machine():
    """A machine-local file (a registry version, run ids, the local champion) as a dependency or an
    output would put its hash into dvc.lock, and a fresh clone's `make repro` would change it."""
    for name, spec in DVC.items():
        body = spec.get("do", spec)
        named = {next(iter(p)) if isinstance(p, dict) else p
                 for kind in ("deps", "outs", "metrics", "plots") for p in body.get(kind) or []}
        assert not named & set(MACHINE_LOCAL), (name, named & set(MACHINE_LOCAL))


@pytest.mark.parametrize("stage", [s for s in STAGES if s in PARAMS])
def test_stage_reads_its_own_section(stage):
    params = globals()["stage"](stage)["params"]
    assert any(p == stage or str(p).startswith(f"{stage}.") for p in params)


def test_metrics_paths_match_code():
    paths = Paths(ROOT)
    for stage in ("validate", "eda", "features", "train", "evaluate"):
        declared = [next(iter(m)) for m in DVC[stage]["metrics"]]
        assert str(paths.metrics(stage).relative_to(ROOT)) in declared


def test_makefile_targets_are_documented():
    text = (ROOT / "Makefile").read_text()
    for target in ("repro", "test", "test-fast", "lab", "clean", "help"):
        assert f"\n{target}:" in text and "##" in text.split(f"\n{target}:")[1].splitlines()[0]


@pytest.mark.parametrize("stage", OPERATIONS)
def test_operations_stage_has_module_tests_and_params(stage):
    assert module(stage).startswith("src/mlcycle/monitoring/")
    assert (ROOT / "tests" / "code" / f"test_{stage}.py").exists()
    assert stage in PARAMS


def test_docs_map_every_stage():
    """docs/stages.md (linked from the README) names every stage's module and notebook."""
    readme = (ROOT / "README.md").read_text()
    stages = (ROOT / "docs" / "stages.md").read_text()
    assert "docs/stages.md" in readme
    for stage in (*STAGES, *OPERATIONS):
        assert module(stage) in stages, f"docs/stages.md: no link to {module(stage)}"
        if stage in SHARED_NOTEBOOKS:
            assert f"notebooks/{NOTEBOOK_FILES[stage]}" in stages, f"docs/stages.md: no link to the {stage} notebook"
        elif stage in NOTEBOOK_FILES:  # each task's notebook, or at least the task's notebook folder
            for task in tasks.REGISTRY:
                named = Paths(ROOT).notebook(stage, task).relative_to(ROOT).as_posix()
                assert named in stages or f"notebooks/{task}/" in stages, f"docs/stages.md: no link to {named}"
            assert any(Paths(ROOT).notebook(stage, t).relative_to(ROOT).as_posix() in stages for t in tasks.REGISTRY), \
                f"docs/stages.md: no {stage} notebook named"
    assert "make repro" in readme and "make test" in readme


def test_explore_notebooks_are_not_pipeline_stages():
    """notebooks/explore holds a researcher's own notebooks: dvc.yaml names none of its files (editing
    them never reruns a stage) and no dependency covers the whole notebooks/ folder."""
    explore = ROOT / "notebooks" / "explore"
    assert (explore / "README.md").exists() and (explore / "starter.ipynb").exists()
    text = (ROOT / "dvc.yaml").read_text()
    assert "notebooks/explore" not in text and "explore/" not in text
    deps = [str(d) for s in DVC.values() for d in s.get("do", s).get("deps", [])]
    for dep in deps:
        if dep.rstrip("/").startswith("notebooks"):
            folder = dep.rsplit("/", 1)[0] if "/" in dep else ""
            assert dep.endswith(".ipynb") and folder in ("notebooks", "notebooks/${task}"), \
                f"dvc.yaml: {dep} would cover notebooks/explore"


def test_starter_notebook_shape():
    cs = json.loads((ROOT / "notebooks" / "explore" / "starter.ipynb").read_text())["cells"]
    for c in cs:
        if c["cell_type"] == "code":
            assert not c.get("outputs") and c.get("execution_count") is None, "the starter is committed without outputs"
            tree = ast.parse("".join(c["source"]))
            assert not [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    text = "".join(line for c in cs for line in c["source"])
    assert "flights" not in text.lower() and "arr_delay" not in text, "the starter works on any data set"


def logged_sections(stage: str) -> set[str]:
    """The params sections a stage's MLflow run logs: the generic ones and every task's own."""
    from mlcycle.core.paths import PARAMS_SECTIONS

    return {*PARAMS_SECTIONS.get(stage, ()), *(s for t in tasks.all_tasks() for s in t.stage_params.get(stage, ()))}


@pytest.mark.parametrize("stage", [s for s in NOTEBOOKS])
def test_the_sections_a_stage_depends_on_are_the_sections_its_run_logs(stage):
    """dvc.yaml's whole sections of a stage (those it re-runs on) and the sections tracking logs on its
    run (paths.PARAMS_SECTIONS and each task's `stage_params`) are the same list: a run shows every
    value its stage depended on, and nothing it did not."""
    listed = [p if isinstance(p, str) else next(iter(p)) for p in globals()["stage"](stage).get("params", [])]
    whole = {p for p in listed if "." not in p and not p.startswith("${")}
    assert whole == logged_sections(stage), f"{stage}: dvc.yaml {sorted(whole)} against tracking {sorted(logged_sections(stage))}"
