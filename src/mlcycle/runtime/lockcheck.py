"""`mlcycle pipeline lock-check`: is the committed `dvc.lock` current for the committed code, notebooks and params?

DVC records in `dvc.lock` the hash of every input a stage ran with. The inputs git keeps (the
package, notebooks, templates, schemas, examples, hooks, `params.yaml` values) can change without
the pipeline running again; the committed figures then come from other code than the committed
one. This check compares those inputs with `dvc.lock` and names each stale stage and file. Data
inputs (DVC-tracked files, other stages' outputs) are not read: a fresh clone has none of them,
and the check runs no stage. It costs one pass of hashing over the tracked inputs (seconds).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class Stale:
    stage: str
    path: str  # a file or folder, or `params.yaml:<key>` for a parameter
    why: str  # modified | deleted | new | not in dvc.lock | added | removed

    def __str__(self) -> str:
        return f"{self.stage}: {self.path} ({self.why})"


def tracked_paths(root: Path) -> set[PurePosixPath]:
    """Every file git tracks in the workspace (empty outside a git checkout)."""
    proc = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, timeout=60)
    if proc.returncode != 0:
        return set()
    return {PurePosixPath(p) for p in proc.stdout.decode().split("\0") if p}


def in_git(path: str, tracked: set[PurePosixPath], folders: set[PurePosixPath]) -> bool:
    p = PurePosixPath(path)
    return p in tracked or p in folders


def produced(path: str, outputs: set[PurePosixPath]) -> bool:
    """Whether a stage writes `path` or something inside it (its hash then follows the data)."""
    p = PurePosixPath(path)
    return any(o == p or p in o.parents or o in p.parents for o in outputs)


def check(root: Path) -> list[Stale]:
    """Every stage input kept by git whose hash (or, for params, value) differs from `dvc.lock`."""
    from dvc.repo import Repo

    root = Path(root)
    if not (root / "dvc.lock").exists():
        return [Stale("(all)", "dvc.lock", "missing: run `make repro` and commit dvc.lock")]
    tracked = tracked_paths(root)
    folders = {parent for p in tracked for parent in p.parents}
    found: list[Stale] = []
    with Repo(str(root)) as repo:
        outputs = {PurePosixPath(str(o.def_path)) for st in repo.index.stages for o in st.outs}
        for stage in repo.index.stages:
            if not stage.cmd:  # a `.dvc` file (data added with `dvc add`): no code
                continue
            name = getattr(stage, "name", None) or stage.addressing
            for dep in stage.deps:
                if type(dep).__name__ == "ParamsDependency":
                    found += _params(name, dep)
                    continue
                if not in_git(str(dep.def_path), tracked, folders) or produced(str(dep.def_path), outputs):
                    continue  # data: a DVC-tracked file or another stage's output
                if not dep.hash_info or not dep.hash_info.value:
                    found.append(Stale(name, str(dep.def_path), "not in dvc.lock"))
                    continue
                for path, why in (dep.status() or {}).items():
                    found.append(Stale(name, str(path), str(why)))
    return found


def _params(stage: str, dep) -> list[Stale]:
    """Changed parameter values of one stage (keys named as in params.yaml)."""
    out = []
    for _file, changes in (dep.status() or {}).items():
        if isinstance(changes, dict):
            out += [Stale(stage, f"params.yaml:{key}", str(why)) for key, why in sorted(changes.items())]
        else:
            out.append(Stale(stage, "params.yaml", str(changes)))
    return out


def report(found: list[Stale]) -> str:
    """One line per stale input, then what to do."""
    if not found:
        return "dvc.lock is current: every code, notebook and params input matches what the pipeline last ran with"
    stages = sorted({s.stage for s in found})
    lines = [f"dvc.lock is stale for {len(stages)} stage(s): the committed results were not produced by the "
             "committed code, notebooks or params:"]
    lines += [f"  {s}" for s in found]
    lines.append("run `make repro` and commit dvc.lock with the outputs it tracks")
    return "\n".join(lines)
