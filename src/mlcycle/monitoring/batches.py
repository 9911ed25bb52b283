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
from mlcycle.core.config import DataParams, Params, ValidateParams
from mlcycle.core.errors import DataError
from mlcycle.core.paths import Paths
from mlcycle.stages import validate

BATCHES = Path("data/raw/batches")


def check(file: Path, params: Params, root: Path) -> validate.Result:
    """Validate a batch as the pipeline reads data (personal columns masked) against the schema, read
    in parts of `validate.chunk_rows` rows so memory is bounded by that, not by the file
    (`validate.check_chunks`: the same findings as validating the whole file)."""
    spath = schema.schema_path(params.data, params.validate_, root)
    rel = str(spath.relative_to(root)) if spath.is_relative_to(root) else str(spath)
    if not spath.exists():
        raise DataError(f"no schema at {rel} to check the batch against; run `mlcycle data schema`, "
                        "review the file and commit it, then add the batch")
    res = check_file(file, params.data, params.validate_, schema.load(spath), rel, root)
    res.source = str(file)
    return res


def check_file(file: str | Path, data: DataParams, params: ValidateParams, table: schema.TableSchema | None,
               schema_name: str, root: Path) -> validate.Result:
    """`validate.check` of a file read as `tables.load` reads a batch, in parts of `params.chunk_rows`
    rows (`validate.ChunkedCheck`): memory is bounded by a part, not by the file. A file that cannot be
    read is an error finding."""
    def parts(dtype=None):
        return tables.load_chunks(data, root, file, params.chunk_rows, dtype)

    def checked(dtype=None, seen=None):
        acc = validate.ChunkedCheck(data, params, table, schema_name)
        for df in parts(dtype):
            if seen is not None:
                for c in df.columns:
                    seen.setdefault(c, set()).add(str(df[c].dtype))
            acc.add(df)
        return acc

    try:
        seen: dict[str, set[str]] = {}
        acc = checked(seen=seen)
        # a CSV part's types come from its rows alone: read again with the whole file's types when parts differ
        fix = tables.chunk_dtypes(seen, tables.table_format(Path(file)))
        if fix:
            acc = None  # free the first pass's hashes before the second
            acc = checked(fix)
        res = acc.result(reread=lambda: parts(fix or None))
    except DataError as exc:
        res = validate.Result(rows=0, columns=0, source=str(file), schema=schema_name if table else None)
        res.findings.append(validate.Finding("error", None, "read", str(exc)))
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
