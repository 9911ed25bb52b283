"""New data batches (`mlcycle data add --input FILE`): validated against the schema, then stored and recorded.

A batch that passes is copied to ``data/raw/batches/<name>`` (raw data is immutable: an existing
name is refused; a name is a plain file name, never a path leaving that folder; a file whose MD5 a
recorded batch already has is refused naming that batch, so retraining never counts rows twice), tracked with ``dvc add`` (git then tracks ``<name>.dvc``), and recorded as one
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
    if not src.is_file():
        raise DataError(f"batch file '{file}' does not exist" if not src.exists() else f"--input {file} is not a file")
    dest = root / BATCHES / batch_name(name if name is not None else src.name, given=name is not None)
    if dest.exists() or dest.with_name(dest.name + ".dvc").exists():
        raise DataError(f"{dest.relative_to(root)} exists: raw data is never overwritten; pass --name NEW_NAME")
    md5 = provenance.file_md5(src)
    earlier = next((r for r in records(root) if r.get("md5") == md5), None)
    if earlier is not None:
        raise DataError(f"{file} was already added as batch '{earlier.get('name')}' ({earlier.get('file')}, "
                        f"{earlier.get('added')}, md5 {md5}): adding it again would count its rows twice in "
                        "retraining; nothing was stored")
    result = check(src, params, root)
    if not result.ok:
        return result, None
    dest.parent.mkdir(parents=True, exist_ok=True)
    rel = str(dest.relative_to(root))
    try:
        shutil.copy2(src, dest)
        proc = subprocess.run([sys.executable, "-m", "dvc", "add", "--quiet", rel], cwd=root,
                              capture_output=True, text=True)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
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


def batch_name(name: str, given: bool = True) -> str:
    """`name` when it is a plain file name that stays in data/raw/batches: no folder separator, not
    `.` or `..`, not absolute, not hidden; else DataError naming --name."""
    flag = "--name" if given else "--input's file name (pass --name)"
    bad = ("is empty" if not name.strip() else
           "is absolute" if Path(name).is_absolute() or name.startswith("~") else
           "holds a folder separator" if "/" in name or "\\" in name else
           "is not a file name" if name in (".", "..") else
           "starts with '.'" if name.startswith(".") else
           "holds a control character" if any(ord(c) < 32 for c in name) else None)
    if bad:
        raise DataError(f"{flag} {name!r} {bad}: a batch is stored as data/raw/batches/<name>, so give a plain file "
                        "name such as 2024-05.parquet")
    return name


def records(root: Path) -> list[dict]:
    """The batches recorded so far, oldest first."""
    return tables.recorded_batches(root)
