"""The FastAPI app of `mlcycle serve`: the registry's champion (or any MLflow model) behind HTTP.

- `POST /predict` takes `{"dataframe_records": [{column: value, ...}, ...]}` or
  `{"dataframe_split": {"columns": [...], "data": [[...], ...]}}` (the two forms `mlflow models
  serve` reads) and answers predictions, class probabilities for classifiers, the model version
  and a request id. The request model is built once from the MLflow signature (`request.py`), so
  `/docs` shows the real columns and types. `GET /health`, `/ready`, `/model` and `/metrics`
  (Prometheus) go with it.
- A client error never becomes a 500: every bad request gets a 4xx JSON body
  `{"error": ..., "field": ..., "detail": ...}` naming the field and the problem; an unexpected
  error gets a 500 naming only a request id (the server log has the rest).
- Every scored row goes to the prediction log (`predlog.py`), written off the request path; the
  lifespan flushes it on shutdown (uvicorn turns SIGTERM into that shutdown).
- A recommender (a model of task `recommendation`, docs/recommender.md) also answers `POST /recommend`
  `{"user": ..., "k": 10, "exclude": [item, ...]}` with ranked items and scores, and says which model
  made the list (`source`: the served model for a known user, `content` or `popularity` for a user
  never seen); each answer is one row of the prediction log.
- The model holder (`model.Holder`) swaps in a new version when the alias moves; a request
  finishes on the version it started with.

`create_app(settings)` builds one app; `app_from_env` is the factory uvicorn workers call, with the
settings as JSON in $MLCYCLE_SERVE_SETTINGS (`server.run` puts them there).

FastAPI reads the endpoints' signatures, so this module does not postpone annotations: the
request body's annotation is built from the model's columns before its endpoint is defined.
"""

import dataclasses
import datetime as dt
import json
import logging
import math
import os
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from mlcycle.core.errors import ClientError, LogFull, ServeError
from mlcycle.serving.guard import Guard
from mlcycle.serving.metrics import Metrics
from mlcycle.serving.model import Holder
from mlcycle.serving.outputs import arrow_schema, log_inputs, log_outputs, score
from mlcycle.serving.predlog import Batch, PredictionLog
from mlcycle.serving.request import (
    RangeCheck,
    body_error,
    check_text,
    describe,
    frame,
    request_models,
    rows_from_split,
)
from mlcycle.serving.settings import SETTINGS_ENV, Settings

log = logging.getLogger("mlcycle.serve")


def create_app(s: Settings):
    """The FastAPI app serving `s.model_uri` (loads the model now; threads start with the lifespan)."""
    import mlflow
    from fastapi import FastAPI
    from fastapi.responses import Response

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(s.tracking_uri)
    mlflow.set_registry_uri(s.tracking_uri)
    client = mlflow.MlflowClient(s.tracking_uri, s.tracking_uri)
    holder = Holder(client, s.model_uri, s.not_null, compiled=s.compiled)
    first = holder.current
    metrics = Metrics(first.classifier)
    metrics.served(first)
    holder.on_switch = lambda old, new: metrics.served(new, old)
    predlog = PredictionLog(Path(s.log_dir), s.log_max_rows, s.log_roll_seconds, s.log_queue_rows,
                            schema=arrow_schema(first.columns), fallback_dir=Path(s.log_fallback_dir))
    token = os.environ.get(s.token_env) or None
    request_model, row_adapter, _ = request_models(first.columns, s.max_rows, first.example)

    app = FastAPI(title="mlcycle model server", version="1", lifespan=lifespan(s, holder, predlog),
                  description=f"Serves `{s.model_uri}`. Input columns and types come from the model's MLflow signature.")
    app.add_middleware(Guard, metrics=metrics, max_body=s.max_body_bytes, token=token)
    for kind, handler in error_handlers(s).items():
        app.add_exception_handler(kind, handler)

    ep = Endpoints(s, holder, predlog, metrics, row_adapter)
    # the bearer scheme shows in the OpenAPI document only when a token is set (the Guard checks it
    # before the body is read; the dependency documents it and checks again)
    app.add_api_route("/predict", predict_endpoint(ep, request_model), methods=["POST"],
                      responses=error_responses(token is not None), summary="score rows with the served model",
                      dependencies=[auth_dependency(token, s.token_env)] if token else [])
    if first.meta.get("task") == "recommendation":
        app.add_api_route("/recommend", recommend_endpoint(ep), methods=["POST"],
                          responses=error_responses(token is not None), summary="ranked items for one user",
                          dependencies=[auth_dependency(token, s.token_env)] if token else [])
    app.add_api_route("/health", ep.health, methods=["GET"], summary="the process is alive")
    app.add_api_route("/ready", ep.ready, methods=["GET"],
                      summary="a model is loaded and the prediction log writer runs",
                      responses={503: {"description": "not ready"}})
    app.add_api_route("/model", ep.model_info, methods=["GET"],
                      summary="the served model: name, version, alias, run, data hash, commit, input schema")
    app.add_api_route("/metrics", ep.prometheus, methods=["GET"], summary="Prometheus metrics",
                      response_class=Response)

    app.state.holder, app.state.predlog, app.state.metrics = holder, predlog, metrics
    return app


def app_from_env():
    """The app factory uvicorn workers call: settings from $MLCYCLE_SERVE_SETTINGS."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise ServeError(f"${SETTINGS_ENV} is not set: start the server with `mlcycle serve`")
    return create_app(Settings.from_json(text))


# ---------------------------------------------------------------- start and stop

def lifespan(s: Settings, holder: Holder, predlog: PredictionLog):
    """Start the prediction log writer and the reload thread; on shutdown stop them and flush the log."""

    @asynccontextmanager
    async def running(app):
        predlog.start()
        holder.start(s.reload_seconds)
        log.warning("serve: %s v%s on http://%s:%s (pid %s)", s.model_uri, holder.current.version,
                    s.host, s.port, os.getpid())
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

    return running


# ---------------------------------------------------------------- responses and errors

def json_response(body: dict, status: int = 200, request_id: str | None = None):
    from fastapi.responses import Response

    headers = {"X-Request-ID": request_id} if request_id else None
    return Response(json.dumps(body, allow_nan=False, default=str), status, headers=headers,
                    media_type="application/json")


def error_response(err: ClientError):
    rid = uuid.uuid4().hex
    return json_response(err.body(rid), err.status, rid)


def error_handlers(s: Settings) -> dict:
    """Exception class -> handler: client errors, validation errors and HTTP errors as 4xx JSON
    bodies naming the field; anything else as a 500 naming only a request id."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    async def client_error(request, exc: ClientError):
        return error_response(exc)

    async def validation_error(request, exc: RequestValidationError):
        return error_response(describe(exc.errors(), s.max_rows))

    async def http_error(request, exc: HTTPException):
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

    async def bug(request, exc: Exception):
        rid = uuid.uuid4().hex  # the body names no exception: the server log has it under this id
        log.exception("serve: unexpected error on %s (request id %s)", request.url.path, rid)
        return json_response({"error": "internal error", "field": None, "request_id": rid,
                              "detail": f"an unexpected server error; the server log has it under request id {rid}"},
                             500, rid)

    return {ClientError: client_error, RequestValidationError: validation_error, HTTPException: http_error,
            Exception: bug}


def error_responses(with_token: bool) -> dict:
    """The 4xx / 503 answers of /predict as the OpenAPI document shows them (401 only with a token)."""
    return {code: {"description": what, "content": {"application/json": {"example": {
        "error": err, "field": fld, "detail": "..."}}}} for code, what, err, fld in (
        (400, "malformed JSON or empty body", "malformed JSON", "body"),
        (401, "missing or wrong bearer token", "unauthorized", "Authorization"),
        (413, "too many rows or too large a body", "too many rows", "dataframe_records"),
        (422, "a missing, unknown, null or wrongly typed column", "wrong type", "distance"),
        (503, "the prediction log is behind or cannot be written", "busy", None)) if code != 401 or with_token}


def auth_dependency(token: str, token_env: str):
    """The dependency checking `Authorization: Bearer <token>` (401 otherwise); it puts the bearer
    scheme in the OpenAPI document."""
    import hmac

    from fastapi import Depends
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    bearer = HTTPBearer(auto_error=False, description=f"needed when ${token_env} is set on the server")

    def authorize(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if creds is None or not hmac.compare_digest(creds.credentials.encode(), token.encode()):
            raise ClientError(401, "unauthorized", "Authorization",
                              "send the header 'Authorization: Bearer <token>' with the server's token")

    return Depends(authorize)


# ---------------------------------------------------------------- the endpoints

class Endpoints:
    """What the endpoints answer, over one app's model holder, prediction log and metrics.
    (The methods have no docstrings: FastAPI would show them in the OpenAPI document.)"""

    def __init__(self, s: Settings, holder: Holder, predlog: PredictionLog, metrics: Metrics, row_adapter):
        self.s, self.holder, self.predlog, self.metrics, self.row_adapter = s, holder, predlog, metrics, row_adapter
        self.check_ranges = RangeCheck(s.bounds, s.ranges, metrics.out_of_range)

    def predict(self, body):
        s, predlog, metrics = self.s, self.predlog, self.metrics
        served = self.holder.current  # this request finishes on this version, whatever reloads meanwhile
        if served.meta.get("task") == "recommendation":
            raise ClientError(409, "a recommender", None,
                              'this model ranks items for a user: POST /recommend {"user": ..., "k": 10, "exclude": [...]}')
        rows = self.rows(body, served.columns)
        if not served.columns:
            check_text(rows)
        if not predlog.healthy and s.log_failure == "refuse":  # never answer a row that cannot be recorded
            raise ClientError(503, "prediction log unavailable", None,
                              f"the prediction log cannot be written ({type(predlog.error).__name__}); retry later")
        if s.bounds:
            self.check_ranges(rows, served.columns)
        # the compiled form reads request rows itself (no DataFrame) when it takes all their values
        X = served.model.prepare(rows) if served.path == "compiled" and served.columns else None
        if X is None:
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

    def recommend(self, body):
        s, predlog, metrics = self.s, self.predlog, self.metrics
        served = self.holder.current
        if served.meta.get("task") != "recommendation":
            raise ClientError(409, "not a recommender", None,
                              f"version {served.version} is not a recommender (task {served.meta.get('task')}); use /predict")
        if not predlog.healthy and s.log_failure == "refuse":
            raise ClientError(503, "prediction log unavailable", None,
                              f"the prediction log cannot be written ({type(predlog.error).__name__}); retry later")
        import pandas as pd

        user, exclude = str(body.user), ",".join(str(i) for i in body.exclude)
        out = served.model.predict(pd.DataFrame({"user": [user], "k": [body.k], "exclude": [exclude]}))
        items, scores = out["item"].astype(str).tolist(), [float(v) for v in out["score"]]
        source = str(out["source"].iloc[0]) if len(out) else "none"
        rid = uuid.uuid4().hex
        try:
            predlog.submit(Batch({"user": [user], "k": [body.k], "exclude": [exclude]},
                                 {"prediction": [json.dumps(items)], "score": [scores[0] if scores else None],
                                  "source": [source]}, served.version, rid, dt.datetime.now(dt.UTC)))
        except LogFull as exc:
            raise ClientError(503, "busy", None, f"{exc}; retry later") from None
        metrics.rows.inc(1)
        metrics.log_rows.set(predlog.pending)
        body_out = {"user": user, "items": [{"item": i, "score": v} for i, v in zip(items, scores, strict=True)],
                    "source": source, "known_user": source == served.meta.get("model"),
                    "model_name": served.info.get("name"), "model_version": served.version, "request_id": rid}
        return json_response(body_out, 200, rid)

    def rows(self, body, columns) -> list[dict]:
        """The body's rows as records, from exactly one of its two forms."""
        if body.dataframe_records is not None and body.dataframe_split is not None:
            raise ClientError(422, "ambiguous body", "body", "send dataframe_records or dataframe_split, not both")
        if body.dataframe_records is not None:
            return body.dataframe_records
        if body.dataframe_split is not None:
            return rows_from_split(body.dataframe_split, self.row_adapter, columns, self.s.max_rows)
        raise ClientError(422, "missing field", "dataframe_records",
                          "send dataframe_records (a list of rows) or dataframe_split (columns and data)")

    def health(self):
        return {"status": "ok"}

    def ready(self):
        served, predlog = self.holder.current, self.predlog
        ok = served is not None and predlog.running and (predlog.healthy or self.s.log_failure == "serve")
        body = {"ready": ok, "model_version": served.version if served else None,
                "log_error": None if predlog.error is None else repr(predlog.error)[:300],
                "log_pending_rows": predlog.pending}
        return json_response(body, 200 if ok else 503)

    def model_info(self):
        served, s = self.holder.current, self.s
        i = served.info
        return {"name": i.get("name"), "version": served.version, "alias": i.get("alias"),
                "aliases": i.get("aliases", []), "uri": s.model_uri, "run_id": i.get("run_id"),
                "data_md5": i.get("data_md5"), "git_commit": i.get("git_commit"),
                "flavor": served.flavor, "scoring_path": served.path, "scoring": served.scoring,
                "task": served.meta.get("task"), "classes": served.meta.get("classes"),
                "threshold": served.meta.get("threshold"),
                "input_schema": [dataclasses.asdict(c) for c in served.columns],
                # inputs an enrichment hook adds in training: callers compute and send them
                "provided_at_prediction": served.meta.get("provided_at_prediction", []),
                "reload_seconds": s.reload_seconds if self.holder.alias else None,
                "reload_error": self.holder.last_error}

    def prometheus(self):
        from fastapi.responses import Response
        from prometheus_client import CONTENT_TYPE_LATEST

        self.metrics.log_rows.set(self.predlog.pending)
        return Response(self.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def recommend_endpoint(ep: Endpoints):
    """The /recommend endpoint of a recommender: one user, k, the items not to recommend."""
    from fastapi import Body
    from pydantic import BaseModel, ConfigDict, Field

    class RecommendRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        user: Annotated[str, Field(min_length=1, max_length=200)] | int  # the user id
        k: Annotated[int, Field(ge=1, le=1000)] = 10  # items in the list
        exclude: Annotated[list[str | int], Field(max_length=100_000)] = []  # items not to recommend (e.g. already seen)

    def recommend(body: Annotated[RecommendRequest, Body()]):
        """Ranked items and scores for one user; a user never seen gets content-based or popular items (`source`)."""
        return ep.recommend(body)

    return recommend


def predict_endpoint(ep: Endpoints, request_model):
    """The /predict endpoint, its body typed as `request_model` (built from the model's columns)."""
    from fastapi import Body

    PredictBody = Annotated[request_model, Body()]

    def predict(body: PredictBody):
        """Predictions (and class probabilities for classifiers) for 1 to `max_rows` rows."""
        return ep.predict(body)

    return predict
