"""The data schema: a reviewed YAML file in the repository, turned into pandera checks.

The file (``schemas/<data file stem>.yaml`` unless ``validate.schema`` names another) says, per
column: its kind (``dtype``), whether it may hold nulls and what share at most, a range, the
allowed values and what a new one means, and whether values are unique; for the table: the
minimum row count, whether duplicate rows are allowed and whether columns not listed are an error.
``mlcycle data schema`` proposes one from the current data (`infer`); the user reviews and
commits it. `to_pandera` builds two ``pandera.pandas.DataFrameSchema`` from it, one whose failures
are errors and one whose failures are warnings (thresholds from params ``validate``).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlcycle.core import tasks
from mlcycle.core.config import DataParams, ValidateParams
from mlcycle.core.errors import DataError

Kind = Literal["integer", "number", "string", "boolean", "datetime"]
MAX_VALUES = 50  # string columns with at most this many distinct values get an allowed list


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSchema(_Strict):
    dtype: Kind | None = None  # None: any kind
    nullable: bool = True
    null_share: Annotated[float, Field(ge=0.0, le=1.0)] | None = None  # seen when inferred (reference)
    max_null_share: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    min: float | None = None
    max: float | None = None
    values: list[str | int | float | bool] | None = None
    new_values: Literal["warn", "error"] = "warn"
    unique: bool = False


class TableSchema(_Strict):
    data: str | None = None  # the file it was inferred from (information only)
    min_rows: Annotated[int, Field(ge=0)] = 0
    unique_rows: bool = False
    strict: bool = True  # columns not listed are an error
    columns: dict[str, ColumnSchema] = {}


def schema_path(data: DataParams, params: ValidateParams, root: Path) -> Path:
    """Where the schema of `data.path` lives: validate.schema, else schemas/<data file stem>.yaml."""
    if params.schema_file:
        p = Path(params.schema_file)
        return p if p.is_absolute() else root / p
    name = Path(data.path).name.split(".")[0]
    return root / "schemas" / f"{name}.yaml"


def load(path: Path) -> TableSchema:
    """Read and check a schema file; a typo in it fails naming the key."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise DataError(f"schema {path.name} is not valid YAML: {exc}") from None
    try:
        return TableSchema.model_validate(raw)
    except ValidationError as exc:
        bad = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise DataError(f"schema {path.name}: {bad}") from None


def kind_of(s: pd.Series) -> Kind:
    """The schema kind of a column: integer (also floats holding whole numbers), number, ..."""
    if pd.api.types.is_bool_dtype(s):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "datetime"
    if pd.api.types.is_integer_dtype(s):
        return "integer"
    if pd.api.types.is_numeric_dtype(s):
        present = s.dropna()
        return "integer" if len(present) and bool((present % 1 == 0).all()) else "number"
    return "string"


def is_kind(s: pd.Series, kind: Kind) -> bool:
    got = kind_of(s)
    return got == kind or (kind == "number" and got == "integer")


def _up(x: float, digits: int) -> float:
    return math.ceil(x * 10**digits) / 10**digits


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def infer(df: pd.DataFrame, data: DataParams, params: ValidateParams) -> TableSchema:
    """Propose a schema from `df` (already read and masked as the pipeline reads it).

    Ranges are the observed ones (rounded outwards to whole numbers), null limits allow
    validate.max_null_share above the share seen, string columns with few values get their value
    list (a new value warns; for the target, it is an error; never for id, personal or free-text
    columns, data.text_columns), id columns and row numbers must be unique, and unique_rows is true
    when no row repeats an earlier one but for those (`duplicated_rows`)."""
    cols: dict[str, ColumnSchema] = {}
    for name in df.columns:
        s = df[name]
        kind = kind_of(s)
        share = float(s.isna().mean()) if len(s) else 0.0
        spec: dict[str, Any] = {"dtype": kind, "nullable": share > 0}
        if share > 0:
            spec["null_share"] = _up(share, 4)
            spec["max_null_share"] = min(1.0, _up(share + params.max_null_share, 2))
        present = s.dropna()
        if kind in ("integer", "number") and len(present):
            spec["min"] = float(math.floor(present.min()))
            spec["max"] = float(math.ceil(present.max()))
        is_target_classes = name == data.target and tasks.target_of(data.task) == "classes" and data.threshold is None
        listed = (*data.id_columns, *data.pii_columns, *data.text_columns)  # values that are not a closed list
        if (kind == "string" or is_target_classes) and name not in listed:
            distinct = present.unique()
            if len(distinct) <= MAX_VALUES:
                spec["values"] = sorted((_plain(v) for v in distinct), key=str)
                spec["new_values"] = "error" if name == data.target else "warn"
        if name in data.id_columns or (name not in (data.target, data.time_column) and is_row_number(s)):
            spec["unique"] = True  # ids, and row numbers an export added (e.g. R's rownames): never repeat
        cols[str(name)] = ColumnSchema(**spec)
    dupes = bool(duplicated_rows(df, data)[0].any())
    return TableSchema(data=data.path, min_rows=params.min_rows, unique_rows=not dupes, strict=True, columns=cols)


def is_row_number(s: pd.Series) -> bool:
    """Whether `s` numbers the rows: whole numbers without nulls counting up by one from row to row
    (1, 2, 3, ... or from any start: an export's index, R's rownames). Ids that merely never repeat
    are not taken for row numbers: declare them in data.id_columns or `unique` in the schema."""
    if len(s) < 2 or not pd.api.types.is_integer_dtype(s) or pd.api.types.is_bool_dtype(s) or s.isna().any():
        return False
    return bool((s.diff().iloc[1:] == 1).all())


def row_keys(df: pd.DataFrame, data: DataParams, table: TableSchema | None = None) -> list[str]:
    """The columns that name a row rather than describe it, left out when judging duplicate rows
    (each holds a new value on every row, so it would hide every copy): data.id_columns, columns
    the schema declares unique, and row numbers (`is_row_number`). The target and the time column
    are always compared, and so is every other column: a leakage column (data.drop_columns, such as
    the flights' dep_time) still tells two records apart; personal columns are compared as the
    pipeline reads them (hashed or absent)."""
    declared = {*data.id_columns, *(n for n, c in (table.columns.items() if table else ()) if c.unique)}
    never = {data.target, data.time_column}
    return [str(c) for c in df.columns if c not in never and (c in declared or is_row_number(df[c]))]


def duplicated_rows(df: pd.DataFrame, data: DataParams, table: TableSchema | None = None) -> tuple[pd.Series, list[str]]:
    """(True for each row identical to an earlier one in every column but the `row_keys`, those
    keys). Validate's unique_rows check and `infer`'s unique_rows both judge duplicates by it."""
    keys = row_keys(df, data, table)
    compared = [c for c in df.columns if c not in keys]
    if len(df) < 2 or not compared:
        return pd.Series(False, index=df.index), keys
    return df.duplicated(subset=compared, keep="first"), keys


HEADER = """\
# Schema of {data}: what validate (and `mlcycle data add`) accept.
# Proposed by `mlcycle data schema` on {date} from {rows:,} rows; review it, then commit it.
# Per column: dtype (integer | number | string | boolean | datetime), nullable, null_share (seen
# when inferred; a rise above it by more than validate.null_share_warn_rise warns),
# max_null_share (more stops the pipeline), min / max, values (allowed) with new_values
# (warn | error: a value not listed), unique. Table: min_rows, unique_rows (no duplicate rows),
# strict (a column not listed here stops the pipeline).
"""


def dump(schema: TableSchema, rows: int) -> str:
    """The schema as commented YAML, columns in table order, unset keys left out."""
    body = schema.model_dump(exclude_defaults=False)
    def tidy(v):
        return int(v) if isinstance(v, float) and v.is_integer() else v

    body["columns"] = {
        n: {k: tidy(v) for k, v in c.model_dump().items()
            if v is not None and not (k == "new_values" and c.values is None) and not (k == "unique" and not v)}
        for n, c in schema.columns.items()
    }
    head = HEADER.format(data=schema.data, date=dt.date.today().isoformat(), rows=rows)
    return head + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None)


def write(schema: TableSchema, path: Path, rows: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump(schema, rows), encoding="utf-8")
    return path
