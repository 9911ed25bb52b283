"""Reading the input table (CSV or Parquet) with errors that say what is wrong and what to do.

Personal data (`data.pii_columns`) is dropped or hashed here, as the table is read, so no stage,
report, tracking run or model sees the raw values.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd

from mlcycle.config import DataParams
from mlcycle.errors import DataError


def table_format(path: Path, fmt: str = "auto") -> str:
    if fmt != "auto":
        return fmt
    suffix = "".join(path.suffixes[-2:]).lower()
    if suffix.endswith(".parquet") or suffix.endswith(".pq"):
        return "parquet"
    if suffix.endswith((".csv", ".csv.gz", ".csv.zip", ".csv.bz2", ".tsv")):
        return "csv"
    raise DataError(
        f"data.path '{path.name}': cannot tell the format from the suffix; "
        "set data.format to csv or parquet"
    )


def check_data_path(data: DataParams, root: Path) -> Path:
    """data.path resolved; a DataError saying what to do when it is missing."""
    p = Path(data.path)
    p = p if p.is_absolute() else root / p
    if not p.exists():
        dvc_file = p.with_name(p.name + ".dvc")
        hint = (f"`dvc pull {data.path}` fetches it (tracked by {dvc_file.name})" if dvc_file.exists()
                else "put the file there (and track it with `dvc add`) or correct data.path in params.yaml"
                     + ("; `dvc repro ingest` writes the default example" if "nycflights13" in data.path else ""))
        raise DataError(f"data.path '{data.path}' does not exist; {hint}")
    return p


def read_table(path: str | Path, fmt: str = "auto", columns: list[str] | None = None,
               what: str = "data.path", shown: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file; every failure is a DataError naming the file and the fix.

    what / shown: how the message names the file (e.g. "data.path" and the path as in params)."""
    p = Path(path)
    name = f"{what} '{shown or path}'"
    if not p.exists():
        raise DataError(
            f"{name} does not exist; put the file there (and track it with "
            "`dvc add`) or correct data.path in params.yaml"
        )
    if p.is_dir():
        raise DataError(f"{name} is a folder; name a CSV or Parquet file")
    if p.stat().st_size == 0:
        raise DataError(f"{name} is an empty file (0 bytes): the export or copy did not finish; write it again")
    kind = table_format(p, fmt)
    try:
        if kind == "parquet":
            df = pd.read_parquet(p, columns=columns)
        else:
            sep = "\t" if p.name.lower().endswith(".tsv") else ","
            df = pd.read_csv(p, sep=sep, usecols=columns, encoding="utf-8", low_memory=False)
            check_delimiter(p, sep, df.shape[1], name)
            _check_complete_csv(p, sep, df.shape[1], name)
    except UnicodeDecodeError:
        raise DataError(f"{name} is not UTF-8 text ({_first_bad_byte(p)}): re-save it as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} has no rows or columns: write the file again with a header row") from None
    except (pd.errors.ParserError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = first.replace(f"Could not open Parquet input source '{p}': ", "")
        why = ("damaged or incomplete (an unclosed quote or a row with extra fields?)" if kind == "csv"
               else "damaged or truncated, or not Parquet")
        raise DataError(f"{name} cannot be read as {kind}: {first}; the file is {why}: export it again") from None
    if df.shape[1] == 0:
        raise DataError(f"{name} has no columns")
    return df


DELIMITERS = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}


def check_delimiter(p: Path, sep: str, ncols: int, name: str) -> None:
    """A CSV read as one column whose header holds another delimiter: say which one fits."""
    if ncols != 1:
        return
    with open(p, encoding="utf-8", errors="replace") as f:
        lines = [f.readline() for _ in range(5)]
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        return
    counts = {d: min(ln.count(d) for ln in lines) for d in DELIMITERS if d != sep}
    best = max(counts, key=counts.get)
    if counts[best] >= 1:
        raise DataError(f"{name} looks like a {DELIMITERS[best]}-delimited file (its header splits into "
                        f"{counts[best] + 1} columns on {DELIMITERS[best]}, 1 on {DELIMITERS[sep]}): re-save it "
                        f"comma-separated" + (" or name it .tsv" if best == "\t" else ""))


def _first_bad_byte(p: Path) -> str:
    raw = p.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return f"byte 0x{raw[exc.start]:02x} on line {line}; Latin-1 or Windows-1252 perhaps"
    return "undecodable bytes"


def _check_complete_csv(p: Path, sep: str, ncols: int, name: str) -> None:
    """A CSV cut off mid-row parses (the missing fields become nulls): catch that case."""
    import csv
    import io

    with open(p, "rb") as f:
        f.seek(max(0, p.stat().st_size - 65536))
        tail = f.read()
    if tail.endswith(b"\n") or not tail:
        return
    last = tail.rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")
    fields = next(csv.reader(io.StringIO(last), delimiter=sep), [])
    if len(fields) < ncols:
        raise DataError(f"{name} looks truncated: its last line ends without a newline after {len(fields)} of "
                        f"{ncols} fields; copy or export the complete file again")


def parse_time(df: pd.DataFrame, column: str | None) -> pd.DataFrame:
    """Return df with `column` parsed to timezone-naive datetimes (UTC when the text has an offset)."""
    if not column or column not in df.columns:
        return df
    s = df[column]
    if not pd.api.types.is_datetime64_any_dtype(s):
        try:
            s = pd.to_datetime(s, utc=True, format="ISO8601")
        except (ValueError, TypeError):
            try:
                s = pd.to_datetime(s, utc=True, format="mixed")
            except (ValueError, TypeError) as exc:
                raise DataError(
                    f"data.time_column '{column}' cannot be read as dates ({exc}); "
                    "fix the values or set data.time_column to null"
                ) from None
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    out = df.copy()
    out[column] = s
    return out


SALT_ENV = "MLCYCLE_PII_SALT"  # secret salt of hashed personal columns (required in hash mode)


def mask_personal(df: pd.DataFrame, columns: list[str], mode: str = "drop",
                  salt: str | None = None) -> pd.DataFrame:
    """df without the raw values of `columns`: dropped, or replaced by a salted SHA-256 digest
    (16 hex characters; equal values give equal digests, nulls stay null). Input not mutated."""
    present = [c for c in columns if c in df.columns]
    if not present:
        return df
    if mode == "drop":
        return df.drop(columns=present)
    if salt is None:
        salt = os.environ.get(SALT_ENV, "")
        if not salt:
            raise DataError(f"data.pii_mode is hash but ${SALT_ENV} is not set: without a secret salt the digests of "
                            f"{present} can be reversed by hashing guesses; export {SALT_ENV}=<a secret> "
                            "(never in params or git), or use pii_mode: drop")
    out = df.copy()
    for c in present:
        s = out[c]
        digest = s.map(lambda v: hashlib.sha256(f"{salt}{v}".encode()).hexdigest()[:16], na_action="ignore")
        out[c] = digest.astype("str").where(s.notna())
    return out


def load(data: DataParams, root: Path, path: str | Path | None = None, window: int | None = None) -> pd.DataFrame:
    """The input table named by params `data` (or another file read the same way, e.g. a new
    batch), personal columns masked, its time column parsed.

    The table of params `data` includes the batches `mlcycle add-data` recorded in data/batches.jsonl
    (appended in order). window (params `retrain.window`): keep only the newest N months of the time
    column; without a time column, the newest N sources (data.path counts as the oldest)."""
    given = path or data.path
    full = Path(given) if Path(given).is_absolute() else root / given
    if path is not None:
        df = read_table(full, "auto", what="batch", shown=str(given))
        df = mask_personal(df, data.pii_columns, data.pii_mode)
        return parse_time(df, data.time_column)
    frames = [read_table(full, data.format, what="data.path", shown=str(given))]
    for rec in recorded_batches(root):
        frames.append(read_table(root / rec["file"], "auto", what="batch", shown=rec["file"]))
    if window is not None and not data.time_column:
        frames = frames[-window:]
    df = frames[0] if len(frames) == 1 else concat_batches(frames, data)
    df = parse_time(mask_personal(df, data.pii_columns, data.pii_mode), data.time_column)
    if window is not None and data.time_column:
        t = df[data.time_column]
        newest = t.max()
        if pd.notna(newest):
            start = (newest.to_period("M") - (window - 1)).to_timestamp()
            if getattr(t.dt, "tz", None) is not None:
                start = start.tz_localize(t.dt.tz)
            df = df[t >= start].reset_index(drop=True)
    return df


def recorded_batches(root: Path) -> list[dict]:
    """The batches recorded by `mlcycle add-data` (data/batches.jsonl), oldest first."""
    manifest = root / "data" / "batches.jsonl"
    if not manifest.exists():
        return []
    return [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


def concat_batches(frames: list[pd.DataFrame], data: DataParams) -> pd.DataFrame:
    """data.path and its batches as one table; a batch's columns must match the first table's."""
    cols = list(frames[0].columns)
    for i, f in enumerate(frames[1:], start=1):
        if set(f.columns) != set(cols):
            extra, missing = sorted(set(f.columns) - set(cols)), sorted(set(cols) - set(f.columns))
            raise DataError(f"batch {i} has different columns from {data.path}: extra {extra}, missing {missing}; "
                            "fix the batch file or remove its line from data/batches.jsonl")
    return pd.concat([f[cols] for f in frames], ignore_index=True)
