"""New data batches (`mlcycle data add --input FILE`): validated against the schema, then stored and recorded.

A batch that passes is copied to ``data/raw/batches/<name>`` (raw data is immutable: an existing
name is refused), tracked with ``dvc add`` (git then tracks ``<name>.dvc``), and recorded as one
JSON line in ``data/batches.jsonl`` (file, rows, md5, time, validation summary) for retraining to
build on. A batch that fails validation is refused and stored nowhere.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

from mlcycle.core import provenance, schema, tables
from mlcycle.core.config import Params
from mlcycle.core.errors import DataError
from mlcycle.core.paths import Paths
from mlcycle.stages import validate

BATCHES = Path("data/raw/batches")


def check(file: Path, params: Params, root: Path) -> validate.Result:
    """Validate a batch as the pipeline reads data (personal columns masked) against the schema."""
    spath = schema.schema_path(params.data, params.validate_, root)
    rel = str(spath.relative_to(root)) if spath.is_relative_to(root) else str(spath)
    if not spath.exists():
        raise DataError(f"no schema at {rel} to check the batch against; run `mlcycle data schema`, "
                        "review the file and commit it, then add the batch")
    table = schema.load(spath)
    try:
        df = tables.load(params.data, root, path=file)
    except DataError as exc:
        res = validate.Result(rows=0, columns=0, source=str(file), schema=rel)
        res.findings.append(validate.Finding("error", None, "read", str(exc)))
        return res
    res = validate.check(df, params.data, params.validate_, table, rel)
    res.source = str(file)
    return res


def add(file: str | Path, params: Params, root: Path, name: str | None = None,
        now: dt.datetime | None = None) -> tuple[validate.Result, dict | None]:
    """Validate `file`; when it passes, store, `dvc add` and record it. Returns (result, record or None)."""
    src = Path(file).expanduser()
    src = src if src.is_absolute() else Path.cwd() / src
    if not src.exists():
        raise DataError(f"batch file '{file}' does not exist")
    dest = root / BATCHES / (name or src.name)
    if dest.exists() or dest.with_name(dest.name + ".dvc").exists():
        raise DataError(f"{dest.relative_to(root)} exists: raw data is never overwritten; pass --name NEW_NAME")
    result = check(src, params, root)
    if not result.ok:
        return result, None
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)
    rel = str(dest.relative_to(root))
    proc = subprocess.run([sys.executable, "-m", "dvc", "add", "--quiet", rel], cwd=root,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        dest.unlink(missing_ok=True)
        raise DataError(f"`dvc add {rel}` failed: {(proc.stderr or proc.stdout).strip()[:500]}")
    record = {
        "name": dest.name,
        "file": rel,
        "gitignore": str((dest.parent / ".gitignore").relative_to(root)),
        "rows": result.rows,
        "columns": result.columns,
        "md5": provenance.file_md5(dest),
        "added": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        "source": src.name,
        "schema": result.schema,
        # counts only: this file goes to git, and a message may quote values of the data
        "warnings": [f"{f.column or '(table)'}: {f.check}: {f.count:,} row(s)" for f in result.warnings],
    }
    manifest = Paths(root).batches_manifest
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with open(manifest, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    return result, record


def records(root: Path) -> list[dict]:
    """The batches recorded so far, oldest first."""
    return tables.recorded_batches(root)
