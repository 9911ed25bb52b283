"""`mlcycle serve`: the registry's champion (or any MLflow model) behind a FastAPI app on uvicorn.

- `POST /predict` takes `{"dataframe_records": [{column: value, ...}, ...]}` or
  `{"dataframe_split": {"columns": [...], "data": [[...], ...]}}` (the two forms `mlflow models
  serve` reads) and answers predictions, class probabilities for classifiers, the model version
  and a request id. The request model is built from the MLflow signature, so `/docs` shows the
  real columns and types. `GET /health`, `/ready`, `/model` and `/metrics` (Prometheus) go with it.
- A client error never becomes a 500: every bad request gets a 4xx JSON body
  `{"error": ..., "field": ..., "detail": ...}` naming the field and the problem.
- Every scored row goes to the prediction log (`mlcycle.predlog`), written off the request path;
  the FastAPI lifespan flushes it on shutdown (uvicorn turns SIGTERM into that shutdown).
- A thread checks the model's alias every `reload_seconds`; when it moved (promotion, rollback),
  the new version is loaded beside the old one and swapped in with one assignment, so requests in
  flight finish on the version they started with.

Settings come from params.yaml `serve:` (CLI flags override); a uvicorn worker receives them as
JSON in $MLCYCLE_SERVE_SETTINGS and builds its app with `app_from_env`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
import json
import logging
import math
import os
import re
import tempfile
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired

import numpy as np
import pandas as pd
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from mlcycle.core import scoring
from mlcycle.core.errors import ClientError, LogFull, ServeError

log = logging.getLogger("mlcycle.serve")
SETTINGS_ENV = "MLCYCLE_SERVE_SETTINGS"
INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs, resolved from params.yaml `serve:` and the CLI."""

    model_uri: str
    tracking_uri: str
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_rows: int = 1000
    max_body_bytes: int = 8_000_000
    not_null: tuple[str, ...] = ()
    reload_seconds: float = 10.0
    log_dir: str = "data/predictions"
    log_max_rows: int = 100_000
    log_roll_seconds: float = 60.0
    log_queue_rows: int = 200_000
    token_env: str = "MLCYCLE_SERVE_TOKEN"
    log_fallback_dir: str = "data/predictions-fallback"
    log_failure: str = "refuse"  # refuse: 503 while the log cannot be written; serve: keep answering
    ranges: str = "warn"  # values outside `bounds`: warn (log and count), refuse (422), off
    bounds: dict = field(default_factory=dict)  # column -> [min, max] (either may be None) from the schema

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        raw = json.loads(text)
        raw["not_null"] = tuple(raw.get("not_null", ()))
        return cls(**raw)


def settings(root: Path, params, **overrides) -> Settings:
    """Settings from params (a `config.Params`) with CLI overrides (None values are ignored)."""
    from pydantic import ValidationError

    from mlcycle.core.config import ServeParams
    from mlcycle.runtime import tracking

    over = {k: v for k, v in overrides.items() if v is not None}
    try:  # flags get the same checks as params.yaml
        s = ServeParams.model_validate({**params.serve.model_dump(), **over})
    except ValidationError as exc:
        e = exc.errors()[0]
        raise ServeError(f"serve: --{str(e['loc'][0]).replace('_', '-')}: {e['msg']} (got {e.get('input')!r})") from None
    values = dict(
        model_uri=s.model_uri or f"models:/{params.tracking.model_name}@champion",
        tracking_uri=tracking.tracking_uri(root, params), host=s.host, port=s.port, workers=s.workers,
        max_rows=s.max_rows, max_body_bytes=int(s.max_body_mb * 1_000_000),
        not_null=tuple(params.data.required_columns if s.not_null == "auto" else s.not_null),
        reload_seconds=s.reload_seconds, log_dir=s.log_dir, log_max_rows=s.log_max_rows,
        log_roll_seconds=s.log_roll_seconds, log_queue_rows=s.log_queue_rows, token_env=s.token_env,
        log_fallback_dir=s.log_fallback_dir, log_failure=s.log_failure,
        ranges=s.ranges, bounds=schema_bounds(root, params) if s.ranges != "off" else {},
    )
    for key in ("log_dir", "log_fallback_dir"):
        folder = Path(values[key])
        values[key] = str(folder if folder.is_absolute() else Path(root) / folder)
    return Settings(**values)


def schema_bounds(root: Path, params) -> dict[str, list]:
    """{column: [min, max]} of the reviewed schema's numeric ranges (`validate.schema`, else
    schemas/<data file stem>.yaml); {} without a schema file. Only columns the model takes are checked."""
    from mlcycle.core import schema as schema_mod

    path = schema_mod.schema_path(params.data, params.validate_, Path(root))
    if not path.exists():
        return {}
    table = schema_mod.load(path)
    return {name: [c.min, c.max] for name, c in table.columns.items() if c.min is not None or c.max is not None}


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


# ---------------------------------------------------------------- the model and its reloading

@dataclass(frozen=True)
class Column:
    name: str
    type: str  # MLflow data type: double, float, long, integer, string, boolean, datetime, ...
    required: bool = True  # may the column be left out of a request
    nullable: bool = True  # may a value be null (a missing value)


@dataclass(frozen=True)
class Served:
    """One loaded model version with what the API says about it."""

    model: Any
    flavor: str  # "sklearn" (predict_proba / predict on a Pipeline) or "pyfunc"
    info: dict  # name, version, alias, run_id, data_md5, git_commit, uri
    columns: tuple[Column, ...]
    meta: dict = field(default_factory=dict)  # mlcycle metadata: task, classes, positive_class, threshold
    example: list[dict] = field(default_factory=list)

    @property
    def version(self) -> str:
        return str(self.info.get("version") or "")

    @property
    def classifier(self) -> bool:
        return self.flavor == "sklearn" and self.meta.get("task") == "classification"


def parse_uri(uri: str) -> tuple[str | None, str | None, str | None]:
    """(name, alias, version) of a `models:/` URI; (None, None, None) for any other URI."""
    m = re.fullmatch(r"models:/([^/@]+)@([^/]+)", uri)
    if m:
        return m.group(1), m.group(2), None
    m = re.fullmatch(r"models:/([^/@]+)/([^/]+)", uri)
    if m:
        return m.group(1), None, m.group(2)
    return None, None, None


def columns_from_signature(signature, not_null: tuple[str, ...] = ()) -> tuple[Column, ...]:
    if signature is None or signature.inputs is None or not signature.inputs.has_input_names():
        return ()
    out = []
    for spec in signature.inputs.inputs:
        kind = getattr(spec.type, "name", None) or str(spec.type)
        out.append(Column(spec.name, kind, bool(getattr(spec, "required", True)), spec.name not in not_null))
    return tuple(out)


def load(client, uri: str, not_null: tuple[str, ...] = ()) -> Served:
    """Download and load the model behind `uri` (an alias is resolved to its version first)."""
    import mlflow
    from mlflow.models import Model

    from mlcycle.core.scoring import quiet_mlflow

    name, alias, version = parse_uri(uri)
    info: dict = {"uri": uri, "name": name, "alias": alias, "version": version}
    source = uri
    if name:
        try:
            mv = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
        except Exception as exc:
            from mlcycle.lifecycle.registry import unresolved_message

            raise ServeError((alias and unresolved_message(client, name, uri))
                             or f"serve: {uri} does not resolve ({type(exc).__name__}: {str(exc)[:200]}); "
                             "see `mlcycle models`, or run `make repro` to register a champion") from None
        tags = mv.tags or {}
        info.update(version=str(mv.version), run_id=mv.run_id, data_md5=tags.get("data_md5"),
                    git_commit=tags.get("git_commit"), aliases=sorted(mv.aliases or []))
        source = f"models:/{name}/{mv.version}"
    with quiet_mlflow(), tempfile.TemporaryDirectory(prefix="mlcycle-serve-") as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tmp)
        mlmodel = Model.load(local)
        info["run_id"] = info.get("run_id") or mlmodel.run_id
        meta = (mlmodel.metadata or {}).get("mlcycle", {})
        if "sklearn" in mlmodel.flavors:
            import mlflow.sklearn

            model, flavor = mlflow.sklearn.load_model(local), "sklearn"
        else:
            import mlflow.pyfunc

            model, flavor = mlflow.pyfunc.load_model(local), "pyfunc"
        example = []
        try:
            ex = mlmodel.load_input_example(local)
            if isinstance(ex, pd.DataFrame):
                example = json.loads(ex.head(2).to_json(orient="records"))
        except Exception:
            pass
    cols = columns_from_signature(mlmodel.signature, not_null)
    return Served(model, flavor, info, cols, meta, example)


class Holder:
    """The served model; a thread swaps in a new version when the alias moves."""

    def __init__(self, client, uri: str, not_null: tuple[str, ...] = (), on_switch=None):
        self.client, self.uri, self.not_null = client, uri, not_null
        self.name, self.alias, _ = parse_uri(uri)
        self.current: Served = load(client, uri, not_null)
        self.on_switch = on_switch
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """Load and swap in the alias's version when it differs from the served one; True if switched."""
        if not (self.name and self.alias):
            return False
        mv = self.client.get_model_version_by_alias(self.name, self.alias)
        if str(mv.version) == self.current.version:
            return False
        new = load(self.client, self.uri, self.not_null)
        if [(c.name, c.type) for c in new.columns] != [(c.name, c.type) for c in self.current.columns]:
            raise ServeError(f"v{new.version} takes other input columns than v{self.current.version}; "
                             "restart the server to serve it")
        old, self.current = self.current, new  # requests in flight keep their reference to `old`
        log.warning("serve: %s moved: v%s -> v%s", self.uri, old.version, new.version)
        if self.on_switch:
            self.on_switch(old, new)
        return True

    def start(self, every: float) -> None:
        def loop():
            while not self._stop.wait(every):
                try:
                    self.check()
                    self.last_error = None
                except Exception as exc:  # keep serving the loaded version
                    self.last_error = f"{type(exc).__name__}: {exc}"[:500]
                    log.error("serve: reload failed, still serving v%s: %s", self.current.version, self.last_error)

        if self.name and self.alias:
            self._thread = threading.Thread(target=loop, name="model-reload", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()


# ---------------------------------------------------------------- request models from the signature

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


def _encodable(v: str) -> str:
    """Refuse strings that cannot be written as UTF-8 (a lone surrogate such as "\\ud800")."""
    from pydantic_core import PydanticCustomError

    try:
        v.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PydanticCustomError("invalid_unicode", "character {position} is a lone UTF-16 surrogate, "
                                  "not a character; send valid Unicode text", {"position": exc.start}) from None
    return v


def check_text(rows: list[dict]) -> None:
    """ClientError 422 naming the field and row of the first string (key or value) that is not valid
    Unicode; for models without a signature, whose rows pydantic does not type."""
    for i, r in enumerate(rows):
        for k, v in r.items():
            for text in (k, v):
                if isinstance(text, str):
                    try:
                        text.encode("utf-8")
                    except UnicodeEncodeError:
                        name = k.encode("utf-8", "backslashreplace").decode()
                        raise ClientError(422, "invalid text", name, f"'{name}' (row {i}) holds a lone UTF-16 "
                                          "surrogate, not a character; send valid Unicode text", i) from None


def _py_type(col: Column):
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
        t = Annotated[str, Strict(), AfterValidator(_encodable)]
    elif col.type == "datetime":
        t = dt.datetime
    else:
        t = Any
    t = t | None if col.nullable else t
    return t if col.required else NotRequired[t]


def request_models(columns: tuple[Column, ...], max_rows: int, example: list[dict] | None = None):
    """(PredictRequest, Row adapter): pydantic models of the body, built from the model's columns."""
    from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

    if columns:
        Row = TypedDict("Row", {c.name: _py_type(c) for c in columns})  # noqa: UP013 (names may be any string)
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


def arrow_schema(columns: tuple[Column, ...]):
    """Parquet types of the input columns in the prediction log, so every part agrees."""
    import pyarrow as pa

    types = {"double": pa.float64(), "float": pa.float64(), "long": pa.int64(), "integer": pa.int64(),
             "string": pa.string(), "boolean": pa.bool_(), "datetime": pa.timestamp("us")}
    return pa.schema([pa.field(c.name, types[c.type]) for c in columns if c.type in types])


# ---------------------------------------------------------------- scoring

def score(served: Served, X: pd.DataFrame) -> dict[str, list]:
    """Outputs per row: `prediction`, `score` and, for classifiers, `probabilities` (from `scoring`)."""
    meta, model = served.meta, served.model
    if served.flavor == "sklearn" and meta.get("task") == "classification" and hasattr(model, "predict_proba"):
        proba = scoring.class_probabilities(model, X)
        classes = list(meta.get("classes") or range(proba.shape[1]))
        if proba.shape[1] == 2:
            pos = meta.get("positive_class")
            positive = pos if pos is not None and pos in classes else classes[-1]
            negative = next(c for c in classes if c != positive) if len(classes) == 2 else classes[0]
            threshold = meta.get("threshold") or 0.5
            p = proba[:, 1]
            pred = np.where(p >= threshold, 1, 0)
            labels = [negative, positive]
            order = [negative, positive]
            return {"prediction": [labels[i] for i in pred.tolist()], "score": p.tolist(),
                    "probabilities": [dict(zip(map(str, order), row, strict=True)) for row in proba.tolist()]}
        top = proba.argmax(axis=1)
        return {"prediction": [classes[i] for i in top.tolist()], "score": proba.max(axis=1).tolist(),
                "probabilities": [dict(zip(map(str, classes), row, strict=True)) for row in proba.tolist()]}
    values = scoring.scores(model, X, "regression").tolist()  # a regressor's values, or another flavor's predictions
    scores = [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None for v in values]
    return {"prediction": values, "score": scores}


def log_inputs(rows: list[dict], columns: tuple[Column, ...], X: pd.DataFrame) -> dict[str, list] | pd.DataFrame:
    """The input columns for the prediction log as lists (cheaper than a frame per request); the
    frame itself for a model without a signature."""
    if not columns:
        return X
    return {c.name: [r.get(c.name) for r in rows] for c in columns}


def log_outputs(out: dict[str, list]) -> dict[str, list]:
    """Outputs as prediction log columns (`proba_<class>` for multiclass probabilities)."""
    cols = {"prediction": out["prediction"], "score": out["score"]}
    probs = out.get("probabilities")
    if probs and len(probs[0]) > 2:
        for k in probs[0]:
            cols[f"proba_{k}"] = [p[k] for p in probs]
    return cols


# ---------------------------------------------------------------- errors

UNION_TAGS = {"float", "int", "str", "bool", "none", "datetime", "any"}


def describe(errors: list[dict], max_rows: int) -> ClientError:
    """The first pydantic / FastAPI validation error as a ClientError naming the field."""
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
                           'send a JSON object: {"dataframe_records": [...]} or {"dataframe_split": {...}}')
    if kind == "missing":
        return ClientError(422, "missing column" if row is not None else "missing field", fieldname,
                           f"'{fieldname}' is required" + (f" (row {row})" if row is not None else ""), row)
    if kind == "extra_forbidden":
        what = "unknown column" if row is not None else "unknown field"
        return ClientError(422, what, fieldname, f"'{fieldname}' is not an input of this model"
                           if row is not None else f"'{fieldname}' is not part of the request; use dataframe_records or dataframe_split", row)
    if kind == "literal_error" and "columns" in names:
        return ClientError(422, "unknown column", str(got), f"'{got}' is not an input of this model")
    if kind == "too_short":
        return ClientError(422, "no rows" if fieldname in ("dataframe_records", "data") else "empty", fieldname,
                           f"'{fieldname}' is empty; send at least one")
    if kind == "nan_not_allowed":
        return ClientError(422, "NaN not allowed", fieldname, f"'{fieldname}' must have a value (got NaN)", row)
    if kind == "invalid_unicode":
        return ClientError(422, "invalid text", fieldname, f"'{fieldname}'" + (f" (row {row})" if row is not None else "")
                           + f": {e.get('msg', 'not valid Unicode')}", row)
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


# ---------------------------------------------------------------- metrics

class Metrics:
    """Prometheus metrics of one app; multiprocess-aware when $PROMETHEUS_MULTIPROC_DIR is set."""

    LATENCY = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

    def __init__(self, classifier: bool):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("mlcycle_serve_requests", "HTTP requests by endpoint and status",
                                ["endpoint", "status"], registry=r)
        self.latency = Histogram("mlcycle_serve_request_seconds", "request latency in seconds by endpoint",
                                 ["endpoint"], buckets=self.LATENCY, registry=r)
        self.rows = Counter("mlcycle_serve_rows_scored", "rows scored", registry=r)
        buckets = tuple(round(0.05 * i, 2) for i in range(1, 21)) if classifier else \
            (-1e3, -1e2, -10, -1, 0, 1, 10, 1e2, 1e3, 1e4)
        self.scores = Histogram("mlcycle_serve_prediction_score",
                                "predicted positive-class probability (top-class for multiclass) or predicted value",
                                buckets=buckets, registry=r)
        self.version = Gauge("mlcycle_serve_model_version", "the served model version (number)",
                             multiprocess_mode="livemostrecent", registry=r)
        self.info = Gauge("mlcycle_serve_model_info", "1 for the served version, 0 for earlier ones",
                          ["name", "version", "alias", "run_id"], multiprocess_mode="livemostrecent", registry=r)
        self.reloads = Counter("mlcycle_serve_model_reloads", "switches to a new model version", registry=r)
        self.out_of_range = Counter("mlcycle_serve_out_of_range_values",
                                    "input values outside the schema's min/max, by column", ["column"], registry=r)
        self.log_rows = Gauge("mlcycle_serve_predlog_pending_rows", "rows waiting for the prediction log writer",
                              multiprocess_mode="livesum", registry=r)

    def served(self, s: Served, old: Served | None = None) -> None:
        if old is not None:
            self.info.labels(*self._labels(old)).set(0)
            self.reloads.inc()
        self.info.labels(*self._labels(s)).set(1)
        try:
            self.version.set(float(s.version))
        except ValueError:
            self.version.set(float("nan"))

    @staticmethod
    def _labels(s: Served):
        i = s.info
        return (str(i.get("name") or ""), s.version, str(i.get("alias") or ""), str(i.get("run_id") or ""))

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import CollectorRegistry, multiprocess

            reg = CollectorRegistry()
            multiprocess.MultiProcessCollector(reg)
            return generate_latest(reg)
        return generate_latest(self.registry)


ENDPOINTS = {"/predict", "/health", "/ready", "/model", "/metrics", "/docs", "/openapi.json", "/redoc"}


class Guard:
    """ASGI middleware: refuses bodies over `max_body` bytes with a JSON 413 before they are read,
    and counts and times every HTTP request by endpoint and status."""

    def __init__(self, app, metrics: Metrics, max_body: int, token: str | None = None):
        self.app, self.metrics, self.max_body, self.token = app, metrics, max_body, token

    def authorized(self, scope) -> bool:
        """No token set, or `Authorization: Bearer <token>` matches (checked before any body is read)."""
        if self.token is None or scope.get("path") != "/predict" or scope.get("method") != "POST":
            return True
        header = next((v for k, v in scope.get("headers", ()) if k == b"authorization"), b"")
        scheme, _, given = header.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token.encode())

    @staticmethod
    async def refuse(send, err: ClientError, headers: tuple = ()) -> None:
        rid = uuid.uuid4().hex
        body = json.dumps(err.body(rid)).encode()
        await send({"type": "http.response.start", "status": err.status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"x-request-id", rid.encode()), (b"connection", b"close"), *headers]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from starlette.exceptions import HTTPException

        path = scope.get("path", "")
        endpoint = path if path in ENDPOINTS else "other"
        status = [500]
        start = time.perf_counter()

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        size = [0]

        async def receiving():
            message = await receive()
            if message["type"] == "http.request":
                size[0] += len(message.get("body", b""))
                if size[0] > self.max_body:  # a body sent without Content-Length
                    raise HTTPException(413)
            return message

        try:
            if not self.authorized(scope):
                return await self.refuse(sending, ClientError(
                    401, "unauthorized", "Authorization", "send the header 'Authorization: Bearer <token>' with the "
                    "server's token"), ((b"www-authenticate", b"Bearer"),))
            length = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
            if length is not None and length.isdigit() and int(length) > self.max_body:
                err = ClientError(413, "body too large", "body", f"the body is larger than {self.max_body} bytes")
                body = json.dumps(err.body(uuid.uuid4().hex)).encode()
                await sending({"type": "http.response.start", "status": 413,
                               "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                           (b"connection", b"close")]})
                await send({"type": "http.response.body", "body": body})
                return
            await self.app(scope, receiving, sending)
        finally:
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
            self.metrics.requests.labels(endpoint, str(status[0])).inc()


# ---------------------------------------------------------------- the app

def create_app(s: Settings):
    """The FastAPI app serving `s.model_uri` (loads the model now; threads start with the lifespan)."""
    import mlflow
    from fastapi import Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import Response
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from mlcycle.serving.predlog import Batch, PredictionLog

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(s.tracking_uri)
    mlflow.set_registry_uri(s.tracking_uri)
    client = mlflow.MlflowClient(s.tracking_uri, s.tracking_uri)
    holder = Holder(client, s.model_uri, s.not_null)
    first = holder.current
    metrics = Metrics(first.classifier)
    metrics.served(first)
    holder.on_switch = lambda old, new: metrics.served(new, old)
    predlog = PredictionLog(Path(s.log_dir), s.log_max_rows, s.log_roll_seconds, s.log_queue_rows,
                            schema=arrow_schema(first.columns), fallback_dir=Path(s.log_fallback_dir))
    token = os.environ.get(s.token_env) or None
    PredictRequest, row_adapter, _ = request_models(first.columns, s.max_rows, first.example)

    @asynccontextmanager
    async def lifespan(app):
        predlog.start()
        holder.start(s.reload_seconds)
        log.warning("serve: %s v%s on http://%s:%s (pid %s)", s.model_uri, first.version, s.host, s.port, os.getpid())
        try:
            yield
        finally:
            holder.stop()
            predlog.close()
            log.warning("serve: prediction log flushed (%d rows in %d parts by pid %s)",
                        predlog.rows_written, predlog.parts_written, os.getpid())
            if predlog.rows_spilled or predlog.rows_lost:
                log.error("serve: prediction log: %d rows spilled to %s, %d rows lost (pid %s)",
                          predlog.rows_spilled, s.log_fallback_dir, predlog.rows_lost, os.getpid())

    app = FastAPI(title="mlcycle model server", version="1", lifespan=lifespan,
                  description=f"Serves `{s.model_uri}`. Input columns and types come from the model's MLflow signature.")
    app.add_middleware(Guard, metrics=metrics, max_body=s.max_body_bytes, token=token)
    bearer = HTTPBearer(auto_error=False, description=f"needed when ${s.token_env} is set on the server")

    def json_response(body: dict, status: int = 200, request_id: str | None = None) -> Response:
        headers = {"X-Request-ID": request_id} if request_id else None
        return Response(json.dumps(body, allow_nan=False, default=str), status, headers=headers,
                        media_type="application/json")

    def error_response(err: ClientError) -> Response:
        rid = uuid.uuid4().hex
        return json_response(err.body(rid), err.status, rid)

    @app.exception_handler(ClientError)
    async def _client_error(request: Request, exc: ClientError):
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return error_response(describe(exc.errors(), s.max_rows))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 413:
            err = ClientError(413, "body too large", "body", f"the body is larger than {s.max_body_bytes} bytes")
        elif exc.status_code == 404:
            err = ClientError(404, "not found", "path", f"no endpoint {request.url.path}; see /docs")
        elif exc.status_code == 405:
            err = ClientError(405, "method not allowed", "method", f"{request.method} is not allowed on {request.url.path}")
        else:
            err = body_error(exc) or ClientError(exc.status_code, "bad request", "body", str(exc.detail))
        resp = error_response(err)
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        return resp

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        rid = uuid.uuid4().hex  # the body names no exception: the server log has it under this id
        log.exception("serve: unexpected error on %s (request id %s)", request.url.path, rid)
        return json_response({"error": "internal error", "field": None, "request_id": rid,
                              "detail": f"an unexpected server error; the server log has it under request id {rid}"},
                             500, rid)

    def authorize(creds) -> None:
        if token is None:
            return
        if creds is None or not hmac.compare_digest(creds.credentials.encode(), token.encode()):
            raise ClientError(401, "unauthorized", "Authorization",
                              "send the header 'Authorization: Bearer <token>' with the server's token")

    # this module uses postponed annotations; FastAPI reads these two signatures, so they get real types
    authorize.__annotations__ = {"creds": Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]}

    error_responses = {code: {"description": what, "content": {"application/json": {"example": {
        "error": err, "field": fld, "detail": "..."}}}} for code, what, err, fld in (
        (400, "malformed JSON or empty body", "malformed JSON", "body"),
        (401, "missing or wrong bearer token", "unauthorized", "Authorization"),
        (413, "too many rows or too large a body", "too many rows", "dataframe_records"),
        (422, "a missing, unknown, null or wrongly typed column", "wrong type", "distance"),
        (503, "the prediction log is behind or cannot be written", "busy", None)) if code != 401 or token}

    warned_at: dict[str, float] = {}

    def check_ranges(rows, columns) -> None:
        """Count values outside the schema's ranges; refuse them (422) or warn (at most once a minute per column)."""
        for col, n, row, value, (lo, hi) in out_of_range(rows, columns, s.bounds):
            metrics.out_of_range.labels(col).inc(n)
            what = f"'{col}' is {value:g} (row {row}), outside the training range [{lo}, {hi}] of the schema"
            if s.ranges == "refuse":
                raise ClientError(422, "out of range", col, f"{what}; send values within it", row)
            if time.monotonic() - warned_at.get(col, -1e9) > 60:
                warned_at[col] = time.monotonic()
                log.warning("serve: %s (%d value(s) in this request; scored anyway, serve.ranges: warn)", what, n)

    def predict(body):
        """Predictions (and class probabilities for classifiers) for 1 to `max_rows` rows."""
        served = holder.current  # this request finishes on this version, whatever reloads meanwhile
        if body.dataframe_records is not None and body.dataframe_split is not None:
            raise ClientError(422, "ambiguous body", "body", "send dataframe_records or dataframe_split, not both")
        if body.dataframe_records is not None:
            rows = body.dataframe_records
        elif body.dataframe_split is not None:
            rows = rows_from_split(body.dataframe_split, row_adapter, served.columns, s.max_rows)
        else:
            raise ClientError(422, "missing field", "dataframe_records",
                              "send dataframe_records (a list of rows) or dataframe_split (columns and data)")
        if not served.columns:
            check_text(rows)
        if not predlog.healthy and s.log_failure == "refuse":  # never answer a row that cannot be recorded
            raise ClientError(503, "prediction log unavailable", None,
                              f"the prediction log cannot be written ({type(predlog.error).__name__}); retry later")
        if s.bounds:
            check_ranges(rows, served.columns)
        X = frame(rows, served.columns)
        try:
            out = score(served, X)
        except (ValueError, TypeError, KeyError) as exc:
            raise ClientError(422, "cannot score", None, f"the model cannot score these rows: {exc}"[:400]) from None
        rid = uuid.uuid4().hex
        try:
            predlog.submit(Batch(log_inputs(rows, served.columns, X), log_outputs(out), served.version, rid,
                                 dt.datetime.now(dt.UTC)))
        except LogFull as exc:
            raise ClientError(503, "busy", None, f"{exc}; retry later") from None
        metrics.rows.inc(len(X))
        for v in out["score"]:
            if v is not None and math.isfinite(v):
                metrics.scores.observe(v)
        metrics.log_rows.set(predlog.pending)
        body_out = {"predictions": out["prediction"]}
        if "probabilities" in out:
            body_out["probabilities"] = out["probabilities"]
        body_out.update(model_name=served.info.get("name"), model_version=served.version, request_id=rid)
        return json_response(body_out, 200, rid)

    # the bearer scheme shows in the OpenAPI document only when a token is set (the Guard checks it
    # before the body is read; the dependency documents it and checks again)
    predict.__annotations__ = {"body": PredictRequest}
    app.post("/predict", responses=error_responses, summary="score rows with the served model",
             dependencies=[Depends(authorize)] if token else [])(predict)

    @app.get("/health", summary="the process is alive")
    def health():
        return {"status": "ok"}

    @app.get("/ready", summary="a model is loaded and the prediction log writer runs",
             responses={503: {"description": "not ready"}})
    def ready():
        served = holder.current
        ok = served is not None and predlog.running and (predlog.healthy or s.log_failure == "serve")
        body = {"ready": ok, "model_version": served.version if served else None,
                "log_error": None if predlog.error is None else repr(predlog.error)[:300],
                "log_pending_rows": predlog.pending}
        return json_response(body, 200 if ok else 503)

    @app.get("/model", summary="the served model: name, version, alias, run, data hash, commit, input schema")
    def model_info():
        served = holder.current
        i = served.info
        return {"name": i.get("name"), "version": served.version, "alias": i.get("alias"),
                "aliases": i.get("aliases", []), "uri": s.model_uri, "run_id": i.get("run_id"),
                "data_md5": i.get("data_md5"), "git_commit": i.get("git_commit"),
                "flavor": served.flavor, "task": served.meta.get("task"), "classes": served.meta.get("classes"),
                "threshold": served.meta.get("threshold"),
                "input_schema": [dataclasses.asdict(c) for c in served.columns],
                # inputs an enrichment hook adds in training: callers compute and send them
                "provided_at_prediction": served.meta.get("provided_at_prediction", []),
                "reload_seconds": s.reload_seconds if holder.alias else None, "reload_error": holder.last_error}

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def prometheus():
        from prometheus_client import CONTENT_TYPE_LATEST

        metrics.log_rows.set(predlog.pending)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app.state.holder, app.state.predlog, app.state.metrics = holder, predlog, metrics
    return app


def app_from_env():
    """The app factory uvicorn workers call: settings from $MLCYCLE_SERVE_SETTINGS."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise ServeError(f"${SETTINGS_ENV} is not set: start the server with `mlcycle serve`")
    return create_app(Settings.from_json(text))


def warn_exposed(s: Settings) -> bool:
    """Warn (stderr and log) when the server binds beyond loopback with no token; True if it warned."""
    import ipaddress
    import sys

    if os.environ.get(s.token_env):
        return False
    try:
        loopback = s.host == "localhost" or ipaddress.ip_address(s.host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return False
    msg = (f"serve: WARNING: listening on {s.host} without a token: anyone who reaches this port can score "
           f"rows and fill the prediction log; set ${s.token_env}, or bind to 127.0.0.1")
    print(msg, file=sys.stderr, flush=True)
    log.warning(msg)
    return True


def run(s: Settings, log_level: str = "warning") -> int:
    """Start uvicorn with `s.workers` workers; returns when the server stopped (SIGTERM / Ctrl-C)."""
    import mlflow
    import uvicorn

    mlflow.set_tracking_uri(s.tracking_uri)
    client = mlflow.MlflowClient(s.tracking_uri, s.tracking_uri)
    name, alias, version = parse_uri(s.model_uri)
    if name:  # fail in a second with a clear message rather than in every worker
        try:
            client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
        except Exception:
            from mlcycle.lifecycle.registry import unresolved_message

            raise ServeError((alias and unresolved_message(client, name, s.model_uri))
                             or f"serve: {s.model_uri} does not resolve in {s.tracking_uri}; "
                             "see `mlcycle models`, or run `make repro` to register a champion") from None
    warn_exposed(s)
    os.environ[SETTINGS_ENV] = s.to_json()
    metrics_dir = None
    # one OpenMP thread per worker: parallelism comes from workers and concurrent requests; with
    # more, HistGradientBoosting's per-call thread team costs ~10x the latency of a small request
    # on a busy machine. An OMP_NUM_THREADS already set wins.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if s.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # /metrics adds up the workers
        metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mlcycle-serve-metrics-")
    try:
        uvicorn.run("mlcycle.serving.serve:app_from_env", factory=True, host=s.host, port=s.port, workers=s.workers,
                    log_level=log_level, access_log=False, timeout_graceful_shutdown=60)
    finally:
        if metrics_dir:
            import shutil

            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
