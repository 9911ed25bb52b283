"""Hooks: the functions an example (or your own data) plugs into the generic pipeline.

A hook is named in params.yaml as ``"path/to/module.py:function"``, the path relative to the
workspace root (examples keep theirs in ``examples/<name>/``, yours go in ``hooks/``). Two kinds:

- **ingest** (``ingest.<step>.hook``): ``ingest(params: dict) -> dict[str, DataFrame]``, the raw
  tables a step writes to ``ingest.<step>.outputs`` (e.g. a download, an export, a package's data).
- **enrich** (``features.enrich.hook``): ``enrich(table: DataFrame, tables: dict[str, DataFrame],
  params: dict) -> DataFrame``, the input table (target included, label not) with new columns built
  from the other tables named in ``features.enrich.tables`` or from other rows. It must keep the rows,
  their order and index, and every column it was given. The columns it adds are model inputs a caller
  of the served model sends too: they need data only available at prediction time.

The hook's module is loaded from its file (it need not be importable), once per process.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

from mlcycle.core.errors import ParamsError

_LOADED: dict[Path, object] = {}


def split(ref: str) -> tuple[str, str]:
    """("path/to/module.py", "function") of a hook reference."""
    path, _, name = ref.rpartition(":")
    return path, name


def load(ref: str, root: Path, key: str) -> Callable:
    """The function `ref` names; ParamsError naming the params key `key` when it cannot be found."""
    rel, name = split(ref)
    module = load_module(rel, root, key)
    fn = getattr(module, name, None)
    if not callable(fn):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                       and getattr(v, "__module__", None) == module.__name__)
        raise ParamsError(f"{key}: '{rel}' has no function '{name}'; it defines: {', '.join(found) or 'none'}")
    return fn


def load_module(rel: str, root: Path, key: str):
    """The module in file `rel` (relative to root), loaded once per process."""
    path = (Path(rel) if Path(rel).is_absolute() else Path(root) / rel).resolve()
    if not path.is_file():
        raise ParamsError(f"{key}: hook file '{rel}' does not exist (paths are relative to the workspace root)")
    module = _LOADED.get(path)
    if module is None:
        mod_name = "mlcycle_hook_" + "".join(c if c.isalnum() else "_" for c in str(path.with_suffix("")))
        spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(mod_name, None)
            raise ParamsError(f"{key}: hook file '{rel}' fails to import: {type(exc).__name__}: {exc}") from None
        _LOADED[path] = module
    return module


def describe(fn: Callable) -> str:
    """The first paragraph of a hook's docstring (shown in reports)."""
    doc = (fn.__doc__ or "").strip()
    return " ".join(doc.split("\n\n")[0].split())
