"""The package's layers (mlcycle.LAYERS, lowest first): no module imports a higher layer, and no
imports close a cycle, function-level imports included. The checks are run on a planted upward
import and a planted cycle too, so they are shown able to fail."""

import ast
import shutil
from pathlib import Path

import mlcycle
from mlcycle.core import tasks
from tests.conftest import ROOT

PACKAGE = ROOT / "src" / "mlcycle"


def module_name(pkg: Path, f: Path) -> str:
    parts = f.relative_to(pkg.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(pkg: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, anywhere in its body (functions included)."""
    modules = {module_name(pkg, f): f for f in pkg.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, f in modules.items():
        found = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:  # `from pkg.layer import module` imports the module
                    sub = f"{node.module}.{a.name}"
                    found.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        graph[name] = {m for m in found if m in modules and m != name and m != pkg.name}
    return graph


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else None


def upward(graph: dict[str, set[str]], layers=mlcycle.LAYERS) -> list[str]:
    rank = {name: i for i, name in enumerate(layers)}
    found = []
    for m, deps in graph.items():
        for d in deps:
            lm, ld = layer(m), layer(d)
            if lm in rank and ld in rank and rank[ld] > rank[lm]:
                found.append(f"{m} ({lm}) imports {d} ({ld})")
    return sorted(found)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_module_sits_in_a_layer_folder():
    top = sorted(f.name for f in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "__main__.py"], f"modules outside the layer folders: {top}"
    folders = sorted(d.name for d in PACKAGE.iterdir() if d.is_dir() and (d / "__init__.py").exists())
    assert folders == sorted(mlcycle.LAYERS)


def test_no_upward_imports():
    assert upward(imports(PACKAGE)) == []


def test_no_import_cycles():
    assert cycles(imports(PACKAGE)) == []


def test_no_private_names_across_modules():
    """`from mlcycle.x import _name` or `module._name` of another mlcycle module."""
    graph_modules = {module_name(PACKAGE, f): f for f in PACKAGE.rglob("*.py")}
    found = []
    for name, f in graph_modules.items():
        tree = ast.parse(f.read_text())
        imported = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mlcycle"):
                for a in node.names:
                    if a.name.startswith("_"):
                        found.append(f"{name} imports {node.module}.{a.name}")
                    imported[a.asname or a.name] = f"{node.module}.{a.name}"
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Name) and imported.get(node.value.id) in graph_modules):
                found.append(f"{name} uses {imported[node.value.id]}.{node.attr}")
    assert found == []


def _copy(tmp_path: Path) -> Path:
    pkg = tmp_path / "mlcycle"
    shutil.copytree(PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return pkg


def test_a_planted_upward_import_is_found(tmp_path):
    pkg = _copy(tmp_path)
    target = pkg / "core" / "paths.py"
    target.write_text(target.read_text() + "\n\ndef planted():\n    from mlcycle.serving import app  # noqa\n")
    assert "mlcycle.core.paths (core) imports mlcycle.serving.app (serving)" in upward(imports(pkg))


def test_a_planted_cycle_is_found(tmp_path):
    pkg = _copy(tmp_path)
    target = pkg / "core" / "errors.py"  # errors is imported by core.config: importing config back closes a cycle
    target.write_text(target.read_text() + "\n\ndef planted():\n    from mlcycle.core import config  # noqa\n")
    assert any({"mlcycle.core.config", "mlcycle.core.errors"} <= set(c) for c in cycles(imports(pkg)))


def test_models_pickled_under_the_old_module_path_still_load():
    """A model saved before the layer folders pickled `mlcycle.features.RowFeatures`."""
    import pickle

    import pandas as pd

    from mlcycle.core.spec import RowFeatures

    step = RowFeatures(inputs=("x",), kinds={"x": "numeric"})
    old = pickle.dumps(step, protocol=0).replace(b"mlcycle.core.spec", b"mlcycle.features")
    assert b"mlcycle.features" in old and b"mlcycle.core.spec" not in old
    loaded = pickle.loads(old)
    assert type(loaded) is RowFeatures
    frame = pd.DataFrame({"x": [1, 2]})
    assert loaded.fit(frame).transform(frame).equals(step.fit(frame).transform(frame))


def unlisted_modules(pkg: Path, doc: str) -> list[str]:
    """Modules of `pkg` (as layer/path.py) that the module table of docs/architecture.md does not name."""
    import re

    listed = set()
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) >= 3:
            listed.update(f"{cells[0]}/{m}" for m in re.findall(r"`([\w/]+\.py)`", cells[1]))
    def counted(m: str) -> bool:  # a task's __init__ defines its Task: listed; other __init__ files are not
        return not m.endswith(("__init__.py", "__main__.py")) or m.startswith("tasks/") and m.count("/") == 2
    modules = (f.relative_to(pkg).as_posix() for f in pkg.rglob("*.py"))
    return sorted(m for m in modules if counted(m) and m not in listed)


def test_architecture_page_lists_every_module(tmp_path):
    doc = (ROOT / "docs" / "architecture.md").read_text()
    assert unlisted_modules(PACKAGE, doc) == []
    pkg = _copy(tmp_path)
    (pkg / "monitoring" / "planted.py").write_text('"""planted"""\n')
    assert unlisted_modules(pkg, doc) == ["monitoring/planted.py"]


TASK_NAMES = {*tasks.REGISTRY, *tasks.objectives()}  # the registered tasks and the data.task values they serve


def task_literals(pkg: Path) -> dict[str, int]:
    """Module outside tasks/ -> how many string literals name a task or a data.task value, docstrings aside."""
    import ast

    out: dict[str, int] = {}
    for f in sorted(pkg.rglob("*.py")):
        rel = f.relative_to(pkg).as_posix()
        if rel.startswith("tasks/"):
            continue
        tree = ast.parse(f.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        n = sum(isinstance(c, ast.Constant) and c.value in TASK_NAMES and id(c) not in docs for c in ast.walk(tree))
        if n:
            out[rel] = n
    return out


def test_no_module_outside_the_task_packages_names_a_task(tmp_path):
    found = task_literals(PACKAGE)
    assert found == {}, "branch on the task's hooks and attributes (core/tasks.py), not on its name"
    pkg = _copy(tmp_path)
    planted = pkg / "serving" / "planted.py"
    planted.write_text('"""A planted branch."""\n\n\ndef route(meta):\n    return meta.get("task") == "recommendation"\n')
    assert task_literals(pkg) == {"serving/planted.py": 1}
    (pkg / "core" / "planted.py").write_text('DEFAULT = "tabular"\n')  # a task's own name counts too
    assert task_literals(pkg) == {"serving/planted.py": 1, "core/planted.py": 1}


def test_a_routed_model_pickled_under_core_segments_still_loads():
    """Routed models registered before the tabular task's package pickled their classes under
    `mlcycle.core.segments`."""
    import pickle

    from mlcycle.tasks.tabular import routing

    for cls in (routing.RoutedClassifier, routing.RoutedRegressor):
        old = pickle.dumps(cls, protocol=0).replace(b"mlcycle.tasks.tabular.routing", b"mlcycle.core.segments")
        assert b"mlcycle.core.segments" in old
        assert pickle.loads(old) is cls
