"""What the server adds for a forecast model: `POST /forecast`, `GET /forecast/series` and feedback
of actuals.

- `POST /forecast` `{"series": {<id column>: value, ...}, "horizon": h}` answers the next h steps
  (1 to the `forecasting.horizon` the model was trained for; default all of them) of one series the
  model knows, from the history it holds: one row per step with `time`, `forecast` and the conformal
  interval (`lower`, `upper` at `coverage`). `history` (`[{"time": ..., "value": ...}, ...]`) sends
  the caller's own history of the series instead (a series the model never saw too); a model with
  dynamic columns needs `future`, one row per step with `time` and those columns' values. A series
  the model does not know, without a history, is a 404 naming it and `GET /forecast/series`, which
  lists the series it knows. Each answer is one request of the prediction log, a row per step.
  `/predict` refuses a forecast model with a 409 naming this route.
- Feedback (`POST /feedback`, `mlcycle monitoring feedback --input FILE`): an entry is
  `{"request_id": ..., "time": ..., "value": ...}`, the actual value at one of the answer's forecast
  times (another time is a 422 naming `time`); it is stored as the label of that step's row (`row`
  0 is step 1) with the time, so a step gets one actual per answer. The command's file has the
  columns `request_id`, `time` and `value`.

`mlcycle.serving` reaches this module through the task registry (`Task.serving_module`).
"""

# no `from __future__ import annotations`: FastAPI reads the endpoint's signature (see serving/app.py)

import datetime as dt
import functools
import math
import uuid
from typing import Annotated

import pandas as pd

from mlcycle.core.errors import ClientError, LogFull
from mlcycle.core.tables import TIME_RANGE_TEXT, time_in_range
from mlcycle.serving.app import json_response
from mlcycle.serving.feedback import (
    KnownRequests,
    answer_of,
    cell_value,
    claim,
    entry_request_id,
    file_columns,
)
from mlcycle.serving.predlog import Batch
from mlcycle.serving.request import encodable
from mlcycle.tasks.forecast import TASK, families
from mlcycle.tasks.forecast.series import ID, TIME

ROUTE = "/forecast"
SUMMARY = "the next steps of one series, with their intervals"
NOT_PREDICT = "a forecast model"
PREDICT_HINT = 'this model forecasts series: POST /forecast {"series": {<id column>: value}, "horizon": h}'
LIST_ROUTE = "/forecast/series"
GET_ROUTES = {LIST_ROUTE: "the series the served model knows (forecast from the history it holds)"}
# the log columns of an answer beside the series' id columns (an id column of one of these names is
# logged only inside `series`, the ids joined with "/")
LOG_FIELDS = ("series", "horizon", "history_rows", "time", "step", "forecast", "lower", "upper")

FEEDBACK_ENTRY = {  # the JSON schema of one feedback entry (the /feedback body in the OpenAPI document)
    "type": "object", "additionalProperties": False, "required": ["request_id", "time", "value"],
    "properties": {"request_id": {"type": "string", "minLength": 1},
                   "time": {"type": "string", "minLength": 10, "description": "one of the answer's forecast times"},
                   "value": {"type": "number", "description": "the actual value at that time"}}}
FEEDBACK_EXAMPLE = {"request_id": "0f3c...", "time": "2025-01-01T00:00:00", "value": 123.4}


def python_model(served):
    """The served version's ForecastModel (`model.py`), under its MLflow pyfunc wrapper if any."""
    m = served.model
    return m.unwrap_python_model() if hasattr(m, "unwrap_python_model") else m


def parse_time(v, where: str = "time") -> dt.datetime:
    """An ISO 8601 date or date-time text as a naive time (a time zone is dropped, its wall time
    kept, as the model reads times); a ClientError naming `where` for anything else (a number, a
    numeric string, a time pandas cannot hold)."""
    if not isinstance(v, str) or v.strip().isdigit():
        raise ClientError(422, "wrong type", where, f"'{where}' is an ISO 8601 date or time as text, "
                          f"e.g. \"2025-01-01\" or \"2025-01-01T00:00:00\", got {str(v)[:40]!r}")
    try:
        t = dt.datetime.fromisoformat(v)
    except ValueError:
        raise ClientError(422, "wrong type", where, f"'{where}': {v[:40]!r} is not an ISO 8601 date or time, "
                          "e.g. \"2025-01-01\" or \"2025-01-01T00:00:00\"") from None
    if not time_in_range(t):
        raise ClientError(422, "time out of range", where, f"'{where}': {v[:40]!r} is outside the times "
                          f"the model reads ({TIME_RANGE_TEXT})")
    return t.replace(tzinfo=None)


def time_text(t) -> str:
    """A forecast time as the answer and the feedback check write it (ISO 8601, seconds at least)."""
    return pd.Timestamp(t).isoformat()


def _time(v: str) -> dt.datetime:
    from pydantic_core import PydanticCustomError

    try:
        return parse_time(v)
    except ClientError as exc:
        if exc.error == "time out of range":
            raise PydanticCustomError("time_out_of_range", f"outside the times the model reads ({TIME_RANGE_TEXT})") from None
        raise PydanticCustomError("datetime_parsing", 'an ISO 8601 date or time as text, e.g. "2025-01-01" or '
                                  '"2025-01-01T00:00:00"') from None


def _finite(v: float) -> float:
    from pydantic_core import PydanticCustomError

    try:
        ok = math.isfinite(float(v))
    except OverflowError:  # an integer of hundreds of digits
        ok = False
    if not ok:
        raise PydanticCustomError("finite_number", "must be a finite number")
    return float(v)


def id_values(uid: str, id_columns: list[str]) -> dict:
    """A series' id columns as a request names them, from the model's id (the values joined with "/")."""
    parts = uid.split("/", len(id_columns) - 1) if len(id_columns) > 1 else [uid]
    return dict(zip(id_columns, parts, strict=False)) if len(parts) == len(id_columns) else {id_columns[0]: uid}


def example(pm) -> dict:
    """The published /forecast body: the model's first series, every step it was trained for (and the
    future values of its dynamic columns: the series' last ones, carried forward)."""
    fc = pm.fc
    first = str(pm.history[ID].iloc[0])
    body = {"series": id_values(first, list(fc.id_columns)), "horizon": int(fc.horizon)}
    if fc.dynamic_columns:
        own = pm.history[pm.history[ID] == first]
        last = own.iloc[-1]
        body["future"] = [{"time": time_text(t), **{c: cell_value(last[c]) for c in fc.dynamic_columns}}
                          for t in families.future_times(own, int(fc.horizon), pm.family.freq)[TIME]]
        body.pop("horizon")
    return body


def endpoint(ep):
    """The /forecast endpoint of a forecast model, its body built from the served model's id and
    dynamic columns and horizon. Types are strict (no true for 1, no "5" for 5), unknown fields refused."""
    from fastapi import Body
    from pydantic import (
        AfterValidator,
        ConfigDict,
        Field,
        StrictBool,
        StrictFloat,
        StrictInt,
        StrictStr,
        create_model,
    )

    pm = python_model(ep.holder.current)
    fc = pm.fc
    Id = Annotated[StrictStr, Field(min_length=1, max_length=200), AfterValidator(encodable)] | \
        Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]
    Time = Annotated[StrictStr, Field(max_length=40), AfterValidator(_time)]
    Number = Annotated[StrictInt | StrictFloat, AfterValidator(_finite)]

    def kind(c):  # the type of a dynamic column's values, from the history the model holds
        d = pm.history[c].dtype if c in pm.history else None
        if d is not None and pd.api.types.is_bool_dtype(d):
            return StrictBool
        if d is not None and pd.api.types.is_numeric_dtype(d):
            return Number
        return Annotated[StrictStr, Field(max_length=ep.s.max_text_chars), AfterValidator(encodable)]

    def fields(cols, required: bool) -> dict:  # f0, f1, ... named by alias (a column's name may be any text)
        return {f"f{i}": (kind(c), Field(alias=c)) if required else (kind(c) | None, Field(None, alias=c))
                for i, c in enumerate(cols)}

    strict = ConfigDict(extra="forbid")
    Series = create_model("ForecastSeries", __config__=strict,
                          **{f"f{i}": (Id, Field(alias=c)) for i, c in enumerate(fc.id_columns)})
    HistoryRow = create_model("HistoryRow", __config__=strict, time=(Time, ...), value=(Number, ...),
                              **fields(fc.dynamic_columns, required=False))
    rows = Annotated[list[HistoryRow], Field(min_length=1, max_length=ep.s.max_rows)]
    extra = {"history": (rows | None, None)}
    if fc.dynamic_columns:
        FutureRow = create_model("FutureRow", __config__=strict, time=(Time, ...),
                                 **fields(fc.dynamic_columns, required=True))
        extra["future"] = (Annotated[list[FutureRow], Field(min_length=1, max_length=int(fc.horizon))], ...)
    ForecastRequest = create_model(  # noqa: N806 (a class)
        "ForecastRequest", __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [example(pm)]}),
        series=(Series, ...),  # the series' id columns and values
        horizon=(Annotated[StrictInt, Field(ge=1, le=int(fc.horizon))] | None, None),  # steps; null: all trained for
        **extra)

    def forecast(body: Annotated[ForecastRequest, Body()]):
        """The next `horizon` steps of one series with their intervals, from the history the model holds or
        the one sent (`history`); an unknown series without a history is a 404 (GET /forecast/series lists them)."""
        return answer(ep, body)

    return forecast


def get_endpoints(ep) -> dict:
    """The GET routes of GET_ROUTES: path -> endpoint."""

    def series():
        """The series the served model knows: their id columns' values, as POST /forecast takes them."""
        pm = python_model(ep.holder.current)
        ids = pm.history[ID].drop_duplicates().astype(str).tolist()
        return json_response({"id_columns": list(pm.fc.id_columns), "count": len(ids),
                              "series": [id_values(u, list(pm.fc.id_columns)) for u in ids],
                              "model_version": ep.holder.current.version}, 200)

    return {LIST_ROUTE: series}


@functools.lru_cache(maxsize=4)
def known_ids(pm) -> frozenset[str]:
    """The ids of the series a model holds the history of (a model's history never changes)."""
    return frozenset(pm.history[ID].astype(str))


def _frame(body, pm) -> tuple[pd.DataFrame, str, int]:
    """(the pyfunc's input rows, the series id, rows of history sent) of a /forecast body; a 422
    naming the field the served model cannot take."""
    fc = pm.fc
    sent = body.series.model_dump(by_alias=True)
    missing = [c for c in fc.id_columns if c not in sent]
    unknown = [c for c in sent if c not in fc.id_columns]
    if missing or unknown:  # the model was reloaded with other id columns than the body was built for
        raise ClientError(422, "missing field" if missing else "unknown field", (missing or unknown)[0],
                          f"series: this model's series are named by {list(fc.id_columns)}")
    ids = {c: str(sent[c]) for c in fc.id_columns}
    uid = "/".join(ids.values())
    h = body.horizon if body.horizon is not None else int(fc.horizon)
    if h > len(pm.widths):
        raise ClientError(422, "out of range", "horizon", f"horizon is at most {len(pm.widths)} (the "
                          f"forecasting.horizon this model was trained for), got {h}")
    future = getattr(body, "future", None)
    if future is not None and body.horizon is not None and body.horizon != len(future):
        raise ClientError(422, "out of range", "horizon", f"horizon {body.horizon} differs from the {len(future)} "
                          "future rows sent; leave horizon out or send that many rows")
    history = body.history or []
    times = [r.time for r in history]
    if len(set(times)) < len(times):
        dup = next(t for i, t in enumerate(times) if t in times[:i])
        raise ClientError(422, "duplicate time", "history", f"history holds {time_text(dup)} more than once; "
                          "send one value per time")
    if not history and uid not in known_ids(pm):
        raise ClientError(404, "unknown series", "series",
                          f"series {ids} is not one of the {len(known_ids(pm)):,} series this model was trained "
                          f"on; GET {LIST_ROUTE} lists them, or send the series' own history "
                          '("history": [{"time": ..., "value": ...}, ...])')
    dyn = list(fc.dynamic_columns)
    recs = [{**ids, pm.time_column: r.time, pm.target: r.value,
             **{c: getattr(r, f"f{i}") for i, c in enumerate(dyn)}} for r in history]
    if future is not None:
        recs += [{**ids, pm.time_column: r.time, pm.target: None,
                  **{c: getattr(r, f"f{i}") for i, c in enumerate(dyn)}} for r in future]
    if not recs:
        recs = [ids]
    frame = pd.DataFrame(recs)
    frame["horizon"] = h
    if pm.time_column in frame:
        frame[pm.time_column] = pd.to_datetime(frame[pm.time_column])
    return frame, uid, len(history)


def answer(ep, body):
    """One series' forecast from the served version (`ep`: the server's `Endpoints`), logged and
    remembered for feedback; a 409 when the served version is not a forecast model."""
    s, predlog, metrics = ep.s, ep.predlog, ep.metrics
    served = ep.holder.current
    if served.meta.get("task") not in TASK.objectives:
        raise ClientError(409, "not a forecast model", None,
                          f"version {served.version} is not a forecast model (task {served.meta.get('task')}); use /predict")
    if not predlog.healthy and s.log_failure == "refuse":
        raise ClientError(503, "prediction log unavailable", None,
                          f"the prediction log cannot be written ({type(predlog.error).__name__}); retry later")
    pm = python_model(served)
    frame, uid, n_history = _frame(body, pm)
    try:
        out = pm.predict(None, frame)
    except (ValueError, KeyError, TypeError) as exc:
        where = "future" if "future" in str(exc) else "history" if n_history else "series"
        raise ClientError(422, "cannot forecast", where, f"the model cannot forecast this series: {exc}"[:400]) from None
    out = out[out["series"] == uid].sort_values("step").reset_index(drop=True)
    times = [time_text(t) for t in out["time"]]
    steps = [int(k) for k in out["step"]]
    cols = {c: [float(v) for v in out[c]] for c in ("forecast", "lower", "upper")}
    rid = uuid.uuid4().hex
    n = len(out)
    ids = {c: str(v) for c, v in body.series.model_dump(by_alias=True).items()}
    inputs = {c: [v] * n for c, v in ids.items() if c not in LOG_FIELDS}
    inputs.update(series=[uid] * n, horizon=[n] * n, history_rows=[n_history] * n)
    try:
        predlog.submit(Batch(inputs, {"time": list(pd.to_datetime(out["time"])), "step": steps, **cols},
                             served.version, rid, dt.datetime.now(dt.UTC)))
    except LogFull as exc:
        raise ClientError(503, "busy", None, f"{exc}; retry later") from None
    ep.feedback_store.known.add(rid, n, times)  # actuals at these times: POST /feedback
    metrics.rows.inc(n)
    metrics.log_rows.set(predlog.pending)
    body_out = {"series": ids, "horizon": n, "coverage": float(pm.fc.coverage),
                "history": "sent" if n_history else "stored",
                "forecasts": [{"step": k, "time": t, "forecast": f, "lower": lo, "upper": hi}
                              for k, t, f, lo, hi in zip(steps, times, cols["forecast"], cols["lower"], cols["upper"],
                                                         strict=True)],
                "model": pm.name, "model_name": served.info.get("name"), "model_version": served.version,
                "request_id": rid}
    return json_response(body_out, 200, rid, {"X-Model-Version": served.version, "X-Route": "champion"})  # labels its metrics


def logged_times(known: KnownRequests, request_ids: set[str]) -> None:
    """Put the forecast times of these requests, read from the prediction log's parts, in `known`
    (answers of another worker or an earlier server: `mlcycle monitoring feedback` knows only those)."""
    import pyarrow.dataset as pads

    parts = sorted(known.log_dir.glob("part-*.parquet"))
    if not parts or not request_ids:
        return
    frames = []
    for p in parts:
        try:
            d = pads.dataset(p, format="parquet")
            if not {"request_id", "row", "time", "step", "forecast"} <= set(d.schema.names):
                continue
            t = d.to_table(columns=["request_id", "row", "time"],
                           filter=pads.field("request_id").isin(sorted(request_ids))).to_pandas()
        except Exception:  # being replaced, or not a log part
            continue
        frames.append(t)
    if not frames:
        return
    found = pd.concat(frames, ignore_index=True).sort_values(["request_id", "row"])
    for rid, g in found.groupby("request_id", sort=False):
        known.add(str(rid), len(g), [time_text(t) for t in g["time"]])


def check_value(value, where: str) -> float:
    """An actual as stored: a finite number (not a boolean, not text)."""
    if value is None:
        raise ClientError(422, "missing field", where, "the actual value observed at that time")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ClientError(422, "wrong type", where, f"the actual value must be a number, got {str(value)[:40]!r}")
    try:
        finite = math.isfinite(float(value))
    except OverflowError:
        finite = False
    if not finite:
        raise ClientError(422, "out of range", where, f"the actual value must be a finite number, got {str(value)[:40]!r}")
    return float(value)


def checked_feedback(items: list, meta: dict, known: KnownRequests, labelled: set, prefix: str = "") -> list[dict]:
    """A forecast's actuals as stored ({request_id, row, time, label}); a ClientError naming the first
    bad one (see the module docstring)."""
    ats = [f"{prefix}[{i}]." if len(items) > 1 or prefix else "" for i in range(len(items))]
    rids = [entry_request_id(e, at, ("request_id", "time", "value"),
                             "an entry of a forecast has request_id, time and value",
                             "the request id a /forecast answer gave (its request_id)") for e, at in zip(items, ats, strict=True)]
    logged_times(known, {r for r in rids if r not in known.items})
    out, seen = [], set()
    for e, at, rid in zip(items, ats, rids, strict=True):
        if "time" not in e or e["time"] is None:
            raise ClientError(422, "missing field", f"{at}time", "the forecast time the actual value is for")
        t = time_text(parse_time(e["time"], f"{at}time"))
        value = check_value(e.get("value"), f"{at}value")
        times = answer_of(known, rid, at, "forecast", ROUTE)
        if t not in times:
            raise ClientError(422, "not in the answer", f"{at}time",
                              f"{t} is not one of the {len(times)} forecast times of request {rid} "
                              f"({times[0]} to {times[-1]}): actuals are for the times the answer forecast")
        row = times.index(t)
        claim(labelled, seen, rid, row, f"{at}time", f"time {t} of request {rid} already has its actual; feedback is never replaced")
        out.append({"request_id": rid, "row": row, "time": t, "label": value})
    return out


def feedback_items(frame: pd.DataFrame) -> list[dict]:
    """The entries of a forecast's feedback file (columns request_id, time, value); a time read as a
    date or time by the file's reader is written back as ISO 8601 text."""
    file_columns(frame, ("request_id", "time", "value"), (), "(the request id, a forecast time, the actual value)")
    items = []
    for rec in frame.to_dict("records"):
        t = cell_value(rec["time"])
        if isinstance(t, dt.datetime | dt.date | pd.Timestamp):
            t = time_text(t)
        items.append({"request_id": None if pd.isna(rec["request_id"]) else str(rec["request_id"]), "time": t,
                      "value": cell_value(rec["value"])})
    return items
