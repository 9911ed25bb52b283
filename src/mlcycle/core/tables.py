"""Reading the input table (CSV or Parquet) with errors that say what is wrong and what to do.

Personal data (`data.pii_columns`) is dropped or hashed here, as the table is read, so no stage,
report, tracking run or model sees the raw values.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from mlcycle.core.config import DataParams
from mlcycle.core.errors import DataError
from mlcycle.core.paths import Paths


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
                else "put the file there (and track it with `dvc add`) or correct data.path in params.yaml")
        raise DataError(f"data.path '{data.path}' does not exist; {hint}")
    return p


def read_table(path: str | Path, fmt: str = "auto", columns: list[str] | None = None,
               what: str = "data.path", shown: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file; every failure is a DataError naming the file and the fix.

    what / shown: how the message names the file (e.g. "data.path" and the path as in params)."""
    p = Path(path)
    name = f"{what} '{shown or path}'"
    kind = _readable(p, fmt, name)
    with _read_errors(p, kind, name):
        if kind == "parquet":
            df = pd.read_parquet(p, columns=columns)
        else:
            sep = "\t" if p.name.lower().endswith(".tsv") else ","
            df = pd.read_csv(p, sep=sep, usecols=columns, encoding="utf-8", low_memory=False)
            check_delimiter(p, sep, df.shape[1], name)
            _check_complete_csv(p, sep, df.shape[1], name)
    if df.shape[1] == 0:
        raise DataError(f"{name} has no columns")
    return df


def _readable(p: Path, fmt: str, name: str) -> str:
    """The format of an existing, non-empty file (a DataError saying what to do otherwise)."""
    if not p.exists():
        raise DataError(
            f"{name} does not exist; put the file there (and track it with "
            "`dvc add`) or correct data.path in params.yaml"
        )
    if p.is_dir():
        raise DataError(f"{name} is a folder; name a CSV or Parquet file")
    if p.stat().st_size == 0:
        raise DataError(f"{name} is an empty file (0 bytes): the export or copy did not finish; write it again")
    return table_format(p, fmt)


@contextlib.contextmanager
def _read_errors(p: Path, kind: str, name: str):
    """Reading errors as DataErrors naming the file and the fix."""
    try:
        yield
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


def read_chunks(path: str | Path, rows: int, fmt: str = "auto", what: str = "batch", shown: str | None = None,
                dtype: dict[str, str] | None = None) -> Iterator[pd.DataFrame]:
    """The file of `read_table` in parts of at most `rows` rows (CSV by pandas' chunksize, Parquet by
    pyarrow batches), with the same checks and errors; the row index counts on across parts.

    A CSV part's column types are inferred from that part alone (a whole-file read infers them from
    every row): `dtype` fixes them, see `chunk_dtypes`. A file without rows yields one empty part."""
    p = Path(path)
    name = f"{what} '{shown or path}'"
    kind = _readable(p, fmt, name)
    start = 0
    with _read_errors(p, kind, name):
        if kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(p)
            meta = pf.schema_arrow.metadata
            parts = (pa.Table.from_batches([b]).replace_schema_metadata(meta).to_pandas().astype(dtype or {})
                     for b in pf.iter_batches(batch_size=rows))
            empty = pf.schema_arrow.empty_table().to_pandas()
        else:
            sep = "\t" if p.name.lower().endswith(".tsv") else ","
            parts = pd.read_csv(p, sep=sep, encoding="utf-8", chunksize=rows, dtype=dtype, low_memory=False)
            empty = None
        seen = False
        for df in parts:
            if not seen:
                if df.shape[1] == 0:
                    raise DataError(f"{name} has no columns")
                if kind == "csv":
                    check_delimiter(p, sep, df.shape[1], name)
                    _check_complete_csv(p, sep, df.shape[1], name)
            seen = True
            df.index = pd.RangeIndex(start, start + len(df))
            start += len(df)
            yield df
        if not seen:
            if empty is None:  # a CSV with a header only: pandas yields no part
                empty = pd.read_csv(p, sep=sep, encoding="utf-8", nrows=0)
            if empty.shape[1] == 0:
                raise DataError(f"{name} has no columns")
            yield empty


def chunk_dtypes(seen: dict[str, set[str]], kind: str = "csv") -> dict[str, str]:
    """The column types a whole-file read gives, from the types each part was read with (`seen`:
    column -> dtype names), for the columns whose parts disagree: integers and floats make floats
    (integers with nulls in some parts); anything else makes text in a CSV (pandas then keeps every
    value as written) and Python objects in Parquet (booleans with nulls in some parts)."""
    out = {}
    for col, kinds in seen.items():
        if len(kinds) < 2:
            continue
        out[col] = "float64" if kinds <= {"int64", "float64"} else "str" if kind == "csv" else "object"
    return out


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


TIME_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%Y", "%m-%d-%Y", "%Y%m%d",
                "%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S",
                "%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M", "%b %d %Y", "%d %b %Y", "%Y-%m")


def _examples(values: pd.Series, n: int = 3) -> str:
    return ", ".join(repr(v if not hasattr(v, "item") else v.item()) for v in values.dropna().unique()[:n])


def guess_formats(s: pd.Series, sample: int = 2000) -> list[str]:
    """The strftime formats of TIME_FORMATS that read every (sampled) non-null value of a text or
    integer column; "ISO8601" first when plain ISO 8601 reads them. Used by `mlcycle init` to propose a
    rule the user confirms, and by error messages."""
    present = s.dropna()
    if present.empty:
        return []
    present = present.sample(min(sample, len(present)), random_state=0).astype("str")
    out = []
    try:
        pd.to_datetime(present, format="ISO8601", utc=True)
        if present.str.match(r"^\d{4}-\d{2}").all():
            out.append("ISO8601")
    except (ValueError, TypeError):
        pass
    for fmt in TIME_FORMATS:
        if fmt == "%Y-%m-%d" and out:
            continue
        try:
            pd.to_datetime(present, format=fmt)
        except (ValueError, TypeError):
            continue
        out.append(fmt)
    return out


def parse_time(df: pd.DataFrame, column: str | None, fmt: str | None = None, unit: str | None = None,
               key: str = "data.time_column") -> pd.DataFrame:
    """Return df with `column` parsed to timezone-naive datetimes (UTC when the values carry an offset),
    by an explicit rule only: a datetime column as it is; text in ISO 8601 as it is; other text by
    `fmt` (strftime); numbers by `unit` (s, ms, us, ns, D since 1970-01-01) or `fmt` (e.g. %Y%m%d).
    Anything else, or a value the rule does not read, is a DataError naming the column and examples:
    a number is never silently read as nanoseconds since 1970."""
    if not column or column not in df.columns:
        return df
    out = df.copy()
    raw = df[column]
    out[column] = parse_series(raw, column, fmt, unit, key)
    out.attrs["time_raw_type"] = client_type(raw)  # how clients send the time: see features.build
    return out


def client_type(s: pd.Series) -> str:
    """The MLflow column type a client sends a source column as (the served model's signature)."""
    if pd.api.types.is_bool_dtype(s):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "datetime"
    if pd.api.types.is_integer_dtype(s):
        return "long"
    if pd.api.types.is_numeric_dtype(s):
        return "double"
    return "string"


def parse_series(s: pd.Series, column: str, fmt: str | None = None, unit: str | None = None,
                 key: str = "data.time_column") -> pd.Series:
    """One column read as `parse_time` reads it (see there)."""
    where = f"{key} '{column}'"
    if pd.api.types.is_datetime64_any_dtype(s):
        parsed = s
    elif pd.api.types.is_bool_dtype(s):
        raise DataError(f"{where} holds true/false values, not times; set {key} to a date or time column")
    elif pd.api.types.is_numeric_dtype(s):
        if unit:
            parsed = pd.to_datetime(s, unit=unit, errors="coerce")
        elif fmt:
            whole = s.dropna()
            if (whole % 1 != 0).any():
                raise DataError(f"{where} holds fractional numbers (e.g. {_examples(whole[whole % 1 != 0])}); "
                                f"data.time_format {fmt!r} reads whole numbers only; use data.time_unit")
            text = s.astype("Int64").astype("str").where(s.notna())
            parsed = pd.to_datetime(text, format=fmt, errors="coerce")
        else:
            guesses = [g for g in guess_formats(s.dropna().astype("int64") if (s.dropna() % 1 == 0).all() else s)
                       if g != "ISO8601"]
            hint = f" or data.time_format: '{guesses[0]}' (it reads every value)" if guesses else ""
            raise DataError(f"{where} holds numbers (e.g. {_examples(s)}), which are not read as times without a "
                            f"rule: set data.time_unit: s (seconds since 1970-01-01; ms, us, ns or D for the other "
                            f"units){hint}, or run `mlcycle init` to have one proposed")
    else:
        text = s.astype("str").where(s.notna())
        if unit:
            raise DataError(f"{where} holds text (e.g. {_examples(s)}), not numbers; data.time_unit reads numbers: "
                            "use data.time_format instead")
        if fmt and fmt != "ISO8601":
            parsed = pd.to_datetime(text, format=fmt, errors="coerce")
        else:
            try:
                parsed = pd.to_datetime(text, utc=True, format="ISO8601")
            except (ValueError, TypeError):
                guesses = [g for g in guess_formats(text) if g != "ISO8601"]
                hint = (f"set data.time_format: '{guesses[0]}' (it reads every value; check day and month order)"
                        if guesses else "set data.time_format to the strftime format of the values")
                raise DataError(f"{where} holds text that is not ISO 8601 dates (e.g. {_examples(s)}); {hint}, "
                                "or run `mlcycle init` to have one proposed") from None
            if fmt is None and not text.dropna().str.match(r"^\d{4}-\d{2}").all():
                bad = text.dropna()[~text.dropna().str.match(r"^\d{4}-\d{2}")]
                raise DataError(f"{where} has values that are not ISO 8601 dates (e.g. {_examples(bad)}); "
                                "set data.time_format to the strftime format of the values")
    failed = parsed.isna() & s.notna()
    if failed.any():
        rule = f"data.time_unit {unit!r}" if unit else f"data.time_format {fmt!r}"
        raise DataError(f"{where}: {int(failed.sum()):,} value(s) cannot be read by {rule} "
                        f"(e.g. {_examples(s[failed])}); fix the values or the rule")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    outside = (parsed < TIME_RANGE[0]) | (parsed > TIME_RANGE[1])
    if outside.any():
        raise DataError(f"{where}: {int(outside.sum()):,} value(s) outside the times every step reads "
                        f"({TIME_RANGE_TEXT}; e.g. {_examples(s[outside])}); fix the values")
    return parsed


# the times every step can hold: pandas' datetime64[ns] range (1677-09-21 .. 2262-04-11)
TIME_RANGE = (pd.Timestamp.min.ceil("s"), pd.Timestamp.max.floor("s"))
TIME_RANGE_TEXT = "1677-09-21 00:12:44 to 2262-04-11 23:47:16"


def time_in_range(t: dt.datetime) -> bool:
    """Whether a time (naive, or aware and then compared in UTC) is one `parse_series` accepts."""
    try:
        if t.tzinfo is not None:
            t = t.astimezone(dt.UTC).replace(tzinfo=None)
    except OverflowError:  # year 1 or 9999 moved past the calendar's ends
        return False
    return TIME_RANGE[0].to_pydatetime() <= t <= TIME_RANGE[1].to_pydatetime()


def unparse(s: pd.Series, raw_type: str, fmt: str | None = None, unit: str | None = None) -> pd.Series:
    """Parsed times back in the form the source holds them (MLflow type `raw_type`): what a client sends."""
    if raw_type == "datetime":
        return s
    if unit:
        return ((s - pd.Timestamp("1970-01-01")) // pd.Timedelta(1, unit=unit)).astype("int64")
    if fmt and fmt != "ISO8601":
        text = s.dt.strftime(fmt)
        return text.astype("int64") if raw_type in ("long", "integer") else text.astype("str")
    return s.map(lambda v: v.isoformat() if pd.notna(v) else None).astype("str")


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

    The table of params `data` includes the batches `mlcycle data add` recorded in data/batches.jsonl
    (appended in order). window (params `retrain.window`): keep only the newest N months of the time
    column; without a time column, the newest N sources (data.path counts as the oldest)."""
    given = path or data.path
    full = Path(given) if Path(given).is_absolute() else root / given
    if path is not None:
        df = read_table(full, "auto", what="batch", shown=str(given))
        df = mask_personal(df, data.pii_columns, data.pii_mode)
        return parse_time(df, data.time_column, data.time_format, data.time_unit)
    frames = [read_table(full, data.format, what="data.path", shown=str(given))]
    for rec in recorded_batches(root):
        frames.append(read_table(root / rec["file"], "auto", what="batch", shown=rec["file"]))
    if window is not None and not data.time_column:
        frames = frames[-window:]
    df = frames[0] if len(frames) == 1 else concat_batches(frames, data)
    df = parse_time(mask_personal(df, data.pii_columns, data.pii_mode), data.time_column, data.time_format,
                    data.time_unit)
    if window is not None and data.time_column:
        t = df[data.time_column]
        newest = t.max()
        if pd.notna(newest):
            start = (newest.to_period("M") - (window - 1)).to_timestamp()
            if getattr(t.dt, "tz", None) is not None:
                start = start.tz_localize(t.dt.tz)
            df = df[t >= start].reset_index(drop=True)
    return df


def load_chunks(data: DataParams, root: Path, path: str | Path, rows: int,
                dtype: dict[str, str] | None = None) -> Iterator[pd.DataFrame]:
    """A batch file as `load(data, root, path=path)` reads it (personal columns masked, its time
    column parsed), in parts of at most `rows` rows: what `mlcycle data add` validates in bounded memory."""
    full = Path(path) if Path(path).is_absolute() else root / path
    for df in read_chunks(full, rows, "auto", what="batch", shown=str(path), dtype=dtype):
        df = mask_personal(df, data.pii_columns, data.pii_mode)
        yield parse_time(df, data.time_column, data.time_format, data.time_unit)


def recorded_batches(root: Path) -> list[dict]:
    """The batches recorded by `mlcycle data add` (data/batches.jsonl), oldest first."""

    manifest = Paths(root).batches_manifest
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
