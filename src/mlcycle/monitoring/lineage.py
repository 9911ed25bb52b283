"""A model version's training data through lineage: its tag `data_md5` is the DVC hash of the
`data/processed` folder it was trained on, read from the DVC cache by that hash (or from the
workspace when it still holds them)."""

from __future__ import annotations

import json
from pathlib import Path

from mlcycle.core import config
from mlcycle.core.errors import MonitorError
from mlcycle.core.paths import main_root


def cache_dir(root: Path) -> Path:

    return main_root(root) / ".dvc" / "cache" / "files" / "md5"


def _cached(root: Path, md5: str) -> Path:
    return cache_dir(root) / md5[:2] / md5[2:]


def processed_files(root: Path, dir_md5: str) -> dict[str, Path]:
    """relpath -> file of the data/processed folder whose DVC hash is dir_md5 (DVC cache, else workspace)."""
    listing = _cached(root, dir_md5)
    if listing.exists():
        entries = json.loads(listing.read_text())
        files = {e["relpath"]: _cached(root, e["md5"]) for e in entries}
        if all(p.exists() for p in files.values()):
            return files
    lock = root / "dvc.lock"
    if lock.exists():
        for st in (config.read_yaml(lock) or {}).get("stages", {}).values():
            for o in st.get("outs", []):
                if o.get("path") == "data/processed" and o.get("md5") == dir_md5:
                    folder = root / "data" / "processed"
                    return {p.name: p for p in folder.iterdir() if p.is_file()}
    raise MonitorError(f"the champion's training data (data/processed, DVC hash {dir_md5}) is neither in the "
                       "DVC cache nor in the workspace; run `dvc pull` (or `dvc fetch`) to restore it")
