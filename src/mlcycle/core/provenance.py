"""Where a result came from: file digests and the workspace's git state, read one way everywhere."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path


def file_md5(path: Path) -> str | None:
    """MD5 of a file, the same digest DVC records for it; None when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return None
    h = hashlib.md5()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_state(root: Path, results: tuple[str, ...] = ()) -> dict:
    """{commit, dirty, changed} of the workspace at `root` (tracked files only), or None for commit
    and dirty with a note saying why (not a git repository, no commit yet).

    `results`: paths the pipeline itself writes (`dvc.lock`, the outputs git keeps, such as the
    metrics files), left out of `dirty`: DVC removes and rewrites them while the stages of one
    `dvc repro` run, so they say nothing about the code a model was trained from. `changed` lists
    the other modified files (at most 20)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=20)

    head = git("rev-parse", "HEAD")
    if head.returncode != 0:
        return {"commit": None, "dirty": None, "note": "not a git repository or no commit yet"}
    status = git("-c", "core.quotePath=false", "status", "--porcelain", "--untracked-files=no")
    changed = [p for p in changed_paths(status.stdout) if not _under(p, results)]
    return {"commit": head.stdout.strip(), "dirty": bool(changed), "changed": changed[:20]}


def pipeline_results(root: Path) -> tuple[str, ...]:
    """What `dvc repro` writes among the files git may track: `dvc.lock` and every output, metric
    and plot `dvc.yaml` declares (templated paths, which name data folders, are skipped)."""
    import yaml

    try:
        stages = (yaml.safe_load((Path(root) / "dvc.yaml").read_text()) or {}).get("stages", {})
    except (OSError, yaml.YAMLError):
        return ("dvc.lock",)
    found = ["dvc.lock"]
    for stage in stages.values():
        body = stage.get("do", stage) if isinstance(stage, dict) else {}
        for kind in ("outs", "metrics", "plots"):
            for item in body.get(kind) or []:
                path = next(iter(item)) if isinstance(item, dict) else item
                if isinstance(path, str) and "${" not in path:
                    found.append(path)
    return tuple(found)


def changed_paths(porcelain: str) -> list[str]:
    """The paths of `git status --porcelain` (v1) output; a rename gives both of its paths."""
    out = []
    for line in porcelain.splitlines():
        if len(line) > 3:
            out += [p.strip('"') for p in line[3:].split(" -> ")]
    return out


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def folder_digest(folder: Path, skip: tuple[str, ...] = ()) -> str:
    """SHA-256 over every file below `folder` (relative paths and bytes, in sorted order), files
    named in `skip` left out: the same files give the same digest on any machine and path."""
    h = hashlib.sha256()
    folder = Path(folder)
    for f in sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in skip):
        h.update(f.relative_to(folder).as_posix().encode() + b"\0")
        with f.open("rb") as src:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def stable_model_identity(folder: Path) -> str:
    """Give an MLflow model folder an identity that follows from its content, so that the same model
    saved twice (two clones, two paths, two days) is the same bytes: `model_uuid` becomes a UUID made
    from the digest of the folder's other files, and the save time (`utc_time_created`) is left
    out (MLflow reads a model without it; when a version was made is the registry's record).
    Returns the uuid."""
    import uuid

    mlmodel = Path(folder) / "MLmodel"
    digest = folder_digest(folder, skip=("MLmodel",))
    ident = uuid.UUID(digest[:32], version=4).hex
    lines = mlmodel.read_text().splitlines(keepends=True)
    out = []
    for line in lines:
        if line.startswith("utc_time_created:"):
            continue
        out.append(f"model_uuid: {ident}\n" if line.startswith("model_uuid:") else line)
    mlmodel.write_text("".join(out))
    return ident


def without_thread_counts(model):
    """`model` with the thread count its fit recorded cleared: scikit-learn's histogram gradient
    boosting keeps the number of OpenMP threads of the training machine in its bin mapper
    (`_bin_mapper.n_threads`), so the same model pickled on 1 and on 2 cores would be other bytes.
    None there means "as many as OpenMP allows", as at fit time; predictions do not change. Walks
    pipelines, column transformers, routed models and any estimator held in their attributes."""
    seen: set[int] = set()

    def walk(obj, depth: int) -> None:
        if depth > 10 or id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, dict):
            for value in obj.values():
                walk(value, depth + 1)
        elif isinstance(obj, list | tuple):
            for value in obj:
                walk(value, depth + 1)
        elif hasattr(obj, "get_params") or hasattr(obj, "predict"):  # an estimator or a model of ours
            mapper = getattr(obj, "_bin_mapper", None)
            if mapper is not None and hasattr(mapper, "n_threads"):
                mapper.n_threads = None
            for value in getattr(obj, "__dict__", {}).values():
                walk(value, depth + 1)

    walk(model, 0)
    return model
