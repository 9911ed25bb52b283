"""Request checks and the request schema, built from the model's columns: the pydantic models of the
body (`request_models`: `dataframe_records` or `dataframe_split`, number and text validators), the
split form turned into records (`rows_from_split`), text checks for models without a signature
(`check_text`), validated rows as the model's DataFrame (`frame`), a validation error as the 4xx
`ClientError` naming the field and row (`describe`, `body_error`, `UNION_TAGS`), and values outside
the schema's ranges (`out_of_range`, `RangeCheck`)."""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from typing import Annotated, Any, Literal, NotRequired

import numpy as np
import pandas as pd
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from mlcycle.core.errors import ClientError
from mlcycle.core.tables import TIME_RANGE_TEXT, time_in_range
from mlcycle.serving.model import Column

log = logging.getLogger("mlcycle.serve")
INT64 = (-(2**63), 2**63 - 1)
MAX_TEXT = 100_000  # characters of one text value (serve.max_text_chars)


def _finite(v: float) -> float:
    from pydantic_core import PydanticCustomError

    if math.isinf(v):
        raise PydanticCustomError("not_finite", "infinity is not a value this model takes")
    return v


def _not_nan(v: float) -> float:
    from pydantic_core import PydanticCustomError

    if math.isnan(v):
        raise PydanticCustomError("nan_not_allowed", "NaN (a missing value) is not allowed in this column")
    return v


def encodable(v: str) -> str:
    """Refuse strings that cannot be written as UTF-8 (a lone surrogate such as "\\ud800")."""
    from pydantic_core import PydanticCustomError

    try:
        v.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PydanticCustomError("invalid_unicode", "character {position} is a lone UTF-16 surrogate, "
                                  "not a character; send valid Unicode text", {"position": exc.start}) from None
    return v


def _in_time_range(v: dt.datetime) -> dt.datetime:
    """Refuse times the training and monitoring reads cannot hold (`tables.time_in_range`)."""
    from pydantic_core import PydanticCustomError

    if not time_in_range(v):
        raise PydanticCustomError("time_out_of_range", "{value} is outside the times training and monitoring "
                                  "read ({range}); send a time within them", {"value": v.isoformat(), "range": TIME_RANGE_TEXT})
    return v


def check_text(rows: list[dict], max_text: int = MAX_TEXT) -> None:
    """ClientError 422 naming the field and row of the first string (key or value) that is not valid
    Unicode or longer than `max_text` characters; for models without a signature, whose rows pydantic
    does not type."""
    for i, r in enumerate(rows):
        for k, v in r.items():
            for text in (k, v):
                if isinstance(text, str) and len(text) > max_text:
                    name = k[:60].encode("utf-8", "backslashreplace").decode()
                    raise ClientError(422, "text too long", name, f"'{name}' (row {i}) has {len(text):,} characters, "
                                      f"more than the {max_text:,} the server takes (serve.max_text_chars)", i)
                if isinstance(text, str):
                    try:
                        text.encode("utf-8")
                    except UnicodeEncodeError:
                        name = k.encode("utf-8", "backslashreplace").decode()
                        raise ClientError(422, "invalid text", name, f"'{name}' (row {i}) holds a lone UTF-16 "
                                          "surrogate, not a character; send valid Unicode text", i) from None


def _py_type(col: Column, max_text: int = MAX_TEXT):
    """The pydantic type of one column's values. JSON null, and NaN in float columns, mean a
    missing value: accepted unless the column is in `not_null`. Infinity is always refused."""
    from pydantic import AfterValidator, Field, Strict

    if col.type in ("double", "float"):
        checks = (AfterValidator(_finite),) if col.nullable else (AfterValidator(_finite), AfterValidator(_not_nan))
        t = Annotated[float, Strict(), *checks]
    elif col.type in ("long", "integer"):
        t = Annotated[int, Strict(), Field(ge=INT64[0], le=INT64[1])]
    elif col.type == "boolean":
        t = Annotated[bool, Strict()]
    elif col.type == "string":
        t = Annotated[str, Strict(), Field(max_length=max_text), AfterValidator(encodable)]
    elif col.type == "datetime":
        t = Annotated[dt.datetime, AfterValidator(_in_time_range)]
    else:
        t = Any
    t = t | None if col.nullable else t
    return t if col.required else NotRequired[t]


def request_models(columns: tuple[Column, ...], max_rows: int, example: list[dict] | None = None,
                   max_text: int = MAX_TEXT):
    """(PredictRequest, Row adapter): pydantic models of the body, built from the model's columns;
    text values of at most `max_text` characters; the published example as `complete_example` makes it."""
    from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

    if columns and example:
        example = complete_example(example, columns)
    if columns:
        Row = TypedDict("Row", {c.name: _py_type(c, max_text) for c in columns})  # noqa: UP013 (names may be any string)
        Row.__pydantic_config__ = ConfigDict(extra="forbid")
        names = tuple(c.name for c in columns)
        ColumnName = Literal[names]  # type: ignore[valid-type]
    else:  # a model without a signature: any columns
        Row = dict[str, Any]
        ColumnName = str
    Rows = Annotated[list[Row], Field(min_length=1, max_length=max_rows)]
    Scalar = float | int | str | bool | None

    class Split(BaseModel):
        """Columns plus rows of values in that column order (pandas `orient="split"`)."""

        model_config = ConfigDict(extra="forbid")
        columns: Annotated[list[ColumnName], Field(min_length=1)]  # type: ignore[valid-type]
        data: Annotated[list[list[Scalar]], Field(min_length=1, max_length=max_rows)]
        index: list[Any] | None = None

    examples = [{"dataframe_records": example}] if example else None
    # exactly one of the two forms, so `{}` is not a valid body by the schema either
    extra = {"oneOf": [{"required": ["dataframe_records"]}, {"required": ["dataframe_split"]}]}
    if examples:
        extra["examples"] = examples
    Request = create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid", json_schema_extra=extra),
        __doc__=f"Rows to score, 1 to {max_rows}: `dataframe_records` or `dataframe_split`, not both.",
        dataframe_records=(Rows, None),
        dataframe_split=(Split, None),
    )
    return Request, TypeAdapter(list[Row]), Row


PLACEHOLDER = {"double": 0.0, "float": 0.0, "long": 0, "integer": 0, "string": "", "boolean": False}


def complete_example(example: list[dict], columns: tuple[Column, ...]) -> list[dict]:
    """The model's input example as the OpenAPI document can publish it: FastAPI drops null values
    from the document, so a required column whose value is null (or left out) gets the value another
    example row has, else a placeholder of its type; posting the published example is then answered."""
    out = []
    for r in example:
        row = dict(r)
        for c in columns:
            if c.required and row.get(c.name) is None:
                other = next((o[c.name] for o in example if o.get(c.name) is not None), None)
                value = other if other is not None else PLACEHOLDER.get(c.type)
                if value is None:
                    row.pop(c.name, None)
                else:
                    row[c.name] = value
        out.append(row)
    return out


def frame(rows: list[dict], columns: tuple[Column, ...]) -> pd.DataFrame:
    """Validated rows as the DataFrame the model was trained on (null -> NaN, typed columns)."""
    if not columns:
        return pd.DataFrame.from_records(rows)
    data = {}
    for c in columns:
        values = [r.get(c.name) for r in rows]
        if c.type in ("double", "float"):
            data[c.name] = np.array(values, dtype=np.float64)
        elif c.type in ("long", "integer"):
            data[c.name] = np.array(values, dtype=np.float64 if None in values else np.int64)
        elif c.type == "string":
            data[c.name] = pd.array(values, dtype="str")
        elif c.type == "datetime":
            data[c.name] = pd.to_datetime(values, utc=False)
        else:
            data[c.name] = pd.array(values, dtype=object)
    return pd.DataFrame(data)


UNION_TAGS = {"float", "int", "str", "bool", "none", "datetime", "any"}


def describe(errors: list[dict], max_rows: int, route: str = "/predict") -> ClientError:
    """The first pydantic / FastAPI validation error as a ClientError naming the field (`route`: the
    path asked, whose body the hints describe)."""
    errors = list(errors)
    # too many rows wins: the client should split the request, whatever else is wrong
    for e in errors:
        if e.get("type") == "too_long" and (e["loc"][-1:] in (("dataframe_records",), ("data",))):
            return ClientError(413, "too many rows", str(e["loc"][-1]),
                               f"at most {max_rows} rows per request; split the request")
    e = errors[0]
    kind = e.get("type", "")
    # drop "body" and the union-branch tags pydantic adds to locations ("float", "list[...]", ...)
    loc = [p for p in e.get("loc", ()) if p != "body" and not (isinstance(p, str) and p in UNION_TAGS or "[" in str(p))]
    ints = [p for p in loc if isinstance(p, int)]
    row = ints[0] if ints and ("dataframe_records" in loc or "data" in loc or loc[:1] == [ints[0]]) else None
    names = [p for p in loc if isinstance(p, str)]
    fieldname = names[-1] if names else "body"
    got = e.get("input")
    if kind == "json_invalid":
        return ClientError(400, "malformed JSON", "body",
                           f"the body is not valid JSON: {e.get('ctx', {}).get('error', 'decode error')} at character {loc[0] if loc else '?'}")
    if kind == "missing" and not names:
        return ClientError(400, "empty body", "body",
                           'send a JSON object: {"dataframe_records": [...]} or {"dataframe_split": {...}}'
                           if route == "/predict" else f"send a JSON object (/docs shows the body of {route})")
    if kind == "missing":
        return ClientError(422, "missing column" if row is not None else "missing field", fieldname,
                           f"'{fieldname}' is required" + (f" (row {row})" if row is not None else ""), row)
    if kind == "extra_forbidden":
        what = "unknown column" if row is not None else "unknown field"
        return ClientError(422, what, fieldname, f"'{fieldname}' is not an input of this model"
                           if row is not None else f"'{fieldname}' is not part of the request; " + (
                               "use dataframe_records or dataframe_split" if route == "/predict" else
                               f"/docs shows the fields of {route}"), row)
    if kind == "literal_error" and "columns" in names:
        return ClientError(422, "unknown column", str(got), f"'{got}' is not an input of this model")
    if kind == "too_short":
        return ClientError(422, "no rows" if fieldname in ("dataframe_records", "data") else "empty", fieldname,
                           f"'{fieldname}' is empty; send at least one")
    if kind == "nan_not_allowed":
        return ClientError(422, "NaN not allowed", fieldname, f"'{fieldname}' must have a value (got NaN)", row)
    if kind in ("invalid_unicode", "string_unicode"):  # (the second: pydantic's own, for a length-bounded str)
        msg = e.get("msg", "") if kind == "invalid_unicode" else "a lone UTF-16 surrogate, not a character; send valid Unicode text"
        return ClientError(422, "invalid text", fieldname, f"'{fieldname}'" + (f" (row {row})" if row is not None else "")
                           + f": {msg}", row)
    if kind == "string_too_long":
        limit = (e.get("ctx") or {}).get("max_length")
        return ClientError(422, "text too long", fieldname, f"'{fieldname}'" + (f" (row {row})" if row is not None else "")
                           + f" has more than the {limit:,} characters the server takes (serve.max_text_chars)", row)
    if kind == "time_out_of_range":
        return ClientError(422, "time out of range", fieldname, f"'{fieldname}'" + (f" (row {row})" if row is not None else "")
                           + f": {e.get('msg')}", row)
    if kind == "not_finite":
        return ClientError(422, "infinity not allowed", fieldname,
                           f"'{fieldname}' is infinite; send a finite number, or null for a missing value", row)
    if isinstance(got, bytes) and not names:
        return ClientError(415, "not JSON", "Content-Type", "send the body as JSON with 'Content-Type: application/json'")
    if got is None and kind.endswith(("_type", "_parsing")):
        return ClientError(422, "null not allowed", fieldname, f"'{fieldname}' must have a value", row)
    shown = repr(got)[:60]
    return ClientError(422, "wrong type" if kind.endswith(("_type", "_parsing")) else "invalid value", fieldname,
                       f"'{fieldname}': {e.get('msg', kind)} (got {shown})", row)


def body_error(exc: Exception) -> ClientError | None:
    """A precise 400 for a body FastAPI could not parse (its generic 400 names no cause)."""
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return ClientError(400, "invalid UTF-8", "body", f"the body is not valid UTF-8 (byte 0x{cause.object[cause.start]:02x} "
                           f"at position {cause.start}); send JSON encoded as UTF-8")
    if isinstance(cause, RecursionError):
        return ClientError(400, "nested too deeply", "body", "the JSON nests arrays or objects too deeply; "
                           "send rows as flat objects")
    return None


def rows_from_split(split, adapter, columns: tuple[Column, ...], max_rows: int) -> list[dict]:
    """Split form -> validated records; ClientError naming the column and row on any problem."""
    from pydantic import ValidationError

    cols = list(split.columns)
    seen = set()
    for c in cols:
        if c in seen:
            raise ClientError(422, "duplicate column", c, f"'{c}' appears twice in columns")
        seen.add(c)
    for c in columns:
        if c.required and c.name not in seen:
            raise ClientError(422, "missing column", c.name, f"'{c.name}' is required")
    for i, r in enumerate(split.data):
        if len(r) != len(cols):
            raise ClientError(422, "wrong row length", "data",
                              f"row {i} has {len(r)} values for {len(cols)} columns", i)
    rows = [dict(zip(cols, r, strict=True)) for r in split.data]
    try:
        return adapter.validate_python(rows)
    except ValidationError as exc:
        raise describe(exc.errors(include_url=False), max_rows) from None


# ---------------------------------------------------------------- ranges

def out_of_range(rows: list[dict], columns: tuple[Column, ...], bounds: dict) -> list[tuple[str, int, int, float, list]]:
    """(column, values outside, first row, its value, [min, max]) per numeric input column with
    values outside `bounds`; nulls and NaN are not counted."""
    out = []
    for c in columns:
        if c.name not in bounds or c.type not in ("double", "float", "long", "integer"):
            continue
        lo, hi = bounds[c.name]
        bad = [(i, v) for i, r in enumerate(rows) if isinstance(v := r.get(c.name), int | float)
               and not isinstance(v, bool) and v == v and ((lo is not None and v < lo) or (hi is not None and v > hi))]
        if bad:
            out.append((c.name, len(bad), bad[0][0], bad[0][1], [lo, hi]))
    return out


class RangeCheck:
    """Values outside the schema's ranges: counted in `counter` (by column), then refused (422) with
    `policy` "refuse", or logged (at most once a minute per column) with "warn"."""

    def __init__(self, bounds: dict, policy: str, counter):
        self.bounds, self.policy, self.counter = bounds, policy, counter
        self.warned_at: dict[str, float] = {}

    def __call__(self, rows: list[dict], columns: tuple[Column, ...]) -> None:
        for col, n, row, value, (lo, hi) in out_of_range(rows, columns, self.bounds):
            self.counter.labels(col).inc(n)
            what = f"'{col}' is {value:g} (row {row}), outside the training range [{lo}, {hi}] of the schema"
            if self.policy == "refuse":
                raise ClientError(422, "out of range", col, f"{what}; send values within it", row)
            if time.monotonic() - self.warned_at.get(col, -1e9) > 60:
                self.warned_at[col] = time.monotonic()
                log.warning("serve: %s (%d value(s) in this request; scored anyway, serve.ranges: warn)", what, n)
