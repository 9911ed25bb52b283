"""The FastAPI app of `mlcycle serving start`: the registry's champion (or any MLflow model) behind HTTP.

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
- A task with its own endpoint adds it (its serving module, found through `core.tasks`): a
  recommender answers `POST /recommend` (`mlcycle.tasks.recommender.serve`, docs/recommender.md),
  a forecast model `POST /forecast` and `GET /forecast/series` (`mlcycle.tasks.forecast.serve`,
  docs/forecast.md), and either refuses `/predict` with a 409 naming its route.
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

from mlcycle.core import tasks
from mlcycle.core.errors import ClientError, LogFull, ServeError
from mlcycle.core.workspace import CHALLENGER, model_uri, open_client, parse_model_uri
from mlcycle.lifecycle.registry import candidate_refusal
from mlcycle.serving.feedback import FeedbackStore, entries_of
from mlcycle.serving.guard import Guard
from mlcycle.serving.metrics import Metrics
from mlcycle.serving.model import Holder, Served
from mlcycle.serving.outputs import arrow_schema, log_inputs, log_outputs, score
from mlcycle.serving.predlog import Batch, PredictionLog
from mlcycle.serving.release import Router
from mlcycle.serving.request import (
    RangeCheck,
    body_error,
    check_text,
    describe,
    frame,
    request_models,
    rows_from_split,
)
from mlcycle.serving.settings import LOG_LEVEL_ENV, SETTINGS_ENV, Settings

log = logging.getLogger("mlcycle.serve")


def create_app(s: Settings):
    """The FastAPI app serving `s.model_uri` (loads the model now; threads start with the lifespan)."""
    from fastapi import FastAPI
    from fastapi.responses import Response

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    client = open_client(s.tracking_uri)
    holder = Holder(client, s.model_uri, s.not_null, compiled=s.compiled)
    first = holder.current
    holder.columns = first.columns
    metrics = Metrics(first.classifier)
    metrics.served(first)
    router = Router(s.release)
    candidate = candidate_holder(client, s, first)
    ep_ref: list = []

    def switched(old, new):
        metrics.served(new, old)
        if new.info.get("release_decision") == "promote" and candidate is not None:
            metrics.decision("promote", new.version)
        if ep_ref:
            ep_ref[0].release_changed()

    holder.on_switch = switched
    if candidate is not None:
        def candidate_switched(old, new):
            if new is None and old is not None:
                try:
                    tags = client.get_model_version(candidate.name, old.version).tags or {}
                except Exception:
                    tags = {}
                if tags.get("release.decision") == "rollback":
                    metrics.decision("rollback", old.version)
            if ep_ref:
                ep_ref[0].release_changed()

        candidate.on_switch = candidate_switched
    predlog = PredictionLog(Path(s.log_dir), s.log_max_rows, s.log_roll_seconds, s.log_queue_rows,
                            schema=arrow_schema(first.columns), fallback_dir=Path(s.log_fallback_dir),
                            max_queue_bytes=s.log_queue_bytes)
    token = os.environ.get(s.token_env) or None
    request_model, row_adapter, _ = request_models(first.columns, s.max_rows, first.example, s.max_text_chars)
    own = tasks.for_objective(first.meta.get("task")).serving()

    app = FastAPI(title="mlcycle model server", version="1", lifespan=lifespan(s, holder, predlog, candidate, ep_ref),
                  description=f"Serves `{s.model_uri}`. Input columns and types come from the model's MLflow signature.")
    gets = getattr(own, "GET_ROUTES", {})  # the task's GET routes: path -> summary
    app.add_middleware(Guard, metrics=metrics, max_body=s.max_body_bytes, token=token,
                       routes=(own.ROUTE, *gets) if own is not None else (), body_timeout=s.body_timeout_seconds)
    for kind, handler in error_handlers(s).items():
        app.add_exception_handler(kind, handler)

    ep_ref.append(ep := Endpoints(s, holder, predlog, metrics, row_adapter, candidate, router))
    ep.release_changed()
    # the bearer scheme shows in the OpenAPI document only when a token is set (the Guard checks it
    # before the body is read; the dependency documents it and checks again)
    app.add_api_route("/predict", predict_endpoint(ep, request_model), methods=["POST"],
                      responses=error_responses(token is not None), summary="score rows with the served model",
                      dependencies=[auth_dependency(token, s.token_env)] if token else [])
    app.add_api_route("/feedback", feedback_endpoint(ep), methods=["POST"], openapi_extra=feedback_schema(own),
                      summary="the observed outcome of logged predictions, by request id (and row)",
                      responses={404: {"description": "unknown request id"}, 409: {"description": "already labelled"},
                                 422: {"description": "a wrong label type, a missing field or a row out of range"}},
                      dependencies=[auth_dependency(token, s.token_env)] if token else [])
    if own is not None:  # the task's own endpoint (a recommender's /recommend)
        app.add_api_route(own.ROUTE, own.endpoint(ep), methods=["POST"],
                          responses=error_responses(token is not None), summary=own.SUMMARY,
                          dependencies=[auth_dependency(token, s.token_env)] if token else [])
        for path, endpoint in (own.get_endpoints(ep) if gets else {}).items():  # e.g. a forecast's series list
            app.add_api_route(path, endpoint, methods=["GET"], summary=gets[path],
                              responses={401: {"description": "missing or wrong bearer token"}} if token else None,
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
    app.state.candidate = candidate
    return app


class ShadowQueue:
    """The candidate's shadow scorings, done by one thread of the worker after the answers are sent,
    so they hold neither the answer nor the connection's next request. At most `max_pending`
    requests wait (beyond that a shadow scoring is skipped and counted); `close` does every one
    still waiting, so a SIGTERM loses no shadow row."""

    STOP = object()

    def __init__(self, work, max_pending: int = 10_000):
        import queue
        import threading

        self.work, self.max_pending = work, max_pending
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.pending = 0
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        import threading

        self.thread = threading.Thread(target=self.run, name="shadow", daemon=True)
        self.thread.start()

    def submit(self, item) -> bool:
        with self.lock:
            if self.thread is None or self.pending >= self.max_pending:
                return False
            self.pending += 1
        self.queue.put(item)
        return True

    def run(self) -> None:
        while True:
            item = self.queue.get()
            if item is self.STOP:
                return
            try:
                self.work(item)
            finally:
                with self.lock:
                    self.pending -= 1

    def close(self, timeout: float = 120.0) -> None:
        if self.thread is not None:
            self.queue.put(self.STOP)
            self.thread.join(timeout)
            self.thread = None


def candidate_holder(client, s: Settings, champion) -> Holder | None:
    """The candidate's holder when serve.release.mode is canary or shadow (its alias may name no
    version yet: then the champion answers everything until it does); None when off."""
    mode = s.release.get("mode", "off")
    if mode == "off":
        return None
    name, _, _ = parse_model_uri(s.model_uri)
    if not name:
        raise ServeError(f"serve.release.mode {mode} needs a registered model (models:/<name>@<alias>), "
                         f"not {s.model_uri}; set serve.release.mode: off to serve this URI")
    uri = model_uri(name, alias=s.release.get("candidate") or CHALLENGER)
    # only a version the gate passed answers live traffic, however its alias was set
    cand = Holder(client, uri, s.not_null, compiled=s.compiled, optional=True,
                  refuse=lambda version: candidate_refusal(client, name, version))
    cand.columns = champion.columns
    if cand.current is not None and [(c.name, c.type) for c in cand.current.columns] != \
            [(c.name, c.type) for c in champion.columns]:
        raise ServeError(f"serve: the candidate {uri} (v{cand.current.version}) takes other input columns than "
                         f"the champion v{champion.version}; it cannot be served beside it")
    log.info("serve: release %s: candidate %s is %s", mode, uri,
             f"v{cand.current.version}" if cand.current else
             f"refused ({cand.refused}); the champion answers everything" if cand.refused else
             "not registered yet (the champion answers everything)")
    return cand


def app_from_env():
    """The app factory uvicorn workers call: settings from $MLCYCLE_SERVE_SETTINGS."""
    logging.basicConfig(level=os.environ.get(LOG_LEVEL_ENV, "info").upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise ServeError(f"${SETTINGS_ENV} is not set: start the server with `mlcycle serving start`")
    return create_app(Settings.from_json(text))


# ---------------------------------------------------------------- start and stop

def lifespan(s: Settings, holder: Holder, predlog: PredictionLog, candidate: Holder | None = None,
             endpoints: list | None = None):
    """Start the prediction log writer, the reload threads and the shadow scorer; on shutdown stop
    them, finish the shadow scorings still waiting and flush the log."""

    @asynccontextmanager
    async def running(app):
        predlog.start()
        holder.start(s.reload_seconds)
        if candidate is not None:
            candidate.start(s.reload_seconds)
        shadows = endpoints[0].shadows if endpoints else None
        if shadows is not None:
            shadows.start()
        log.info("serve: %s v%s on http://%s:%s (pid %s)", s.model_uri, holder.current.version,
                 s.host, s.port, os.getpid())
        try:
            yield
        finally:
            holder.stop()
            if candidate is not None:
                candidate.stop()
            if shadows is not None:
                shadows.close()  # its rows go to the log before it is flushed
            predlog.close()
            log.info("serve: prediction log flushed (%d rows in %d parts by pid %s)",
                     predlog.rows_written, predlog.parts_written, os.getpid())
            if predlog.rows_spilled or predlog.rows_lost:
                log.error("serve: prediction log: %d rows spilled to %s, %d rows lost (pid %s)",
                          predlog.rows_spilled, s.log_fallback_dir, predlog.rows_lost, os.getpid())

    return running


# ---------------------------------------------------------------- responses and errors

def json_response(body: dict, status: int = 200, request_id: str | None = None, headers: dict | None = None):
    from fastapi.responses import Response

    headers = {**({"X-Request-ID": request_id} if request_id else {}), **(headers or {})} or None
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
        return error_response(describe(exc.errors(), s.max_rows, request.url.path))

    async def http_error(request, exc: HTTPException):
        if exc.status_code == 413:
            err = ClientError(413, "body too large", "body", f"the body is larger than {s.max_body_bytes} bytes "
                              "(serve.max_body_mb); split the request")
        elif exc.status_code == 408:
            err = ClientError(408, "request timeout", "body", str(exc.detail))
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

    def __init__(self, s: Settings, holder: Holder, predlog: PredictionLog, metrics: Metrics, row_adapter,
                 candidate: Holder | None = None, router: Router | None = None):
        self.s, self.holder, self.predlog, self.metrics, self.row_adapter = s, holder, predlog, metrics, row_adapter
        self.check_ranges = RangeCheck(s.bounds, s.ranges, metrics.out_of_range)
        self.candidate, self.router = candidate, router or Router({"mode": "off"})
        self.feedback_store = FeedbackStore(predlog.dir)
        self.shadows = ShadowQueue(lambda item: self.shadow(*item))

    def challenger(self, champion: Served) -> Served | None:
        """The loaded candidate, None when there is none or it is the champion's own version."""
        cand = self.candidate.current if self.candidate is not None else None
        return None if cand is None or cand.version == champion.version else cand

    def release_changed(self) -> None:
        cand = self.challenger(self.holder.current)
        self.metrics.release(self.router.mode, self.router.share_now(cand is not None), cand)

    def score_rows(self, served: Served, rows: list[dict]):
        """(X, outputs) of `served` on `rows`; a 422 when the model cannot score them."""
        # the compiled form reads request rows itself (no DataFrame) when it takes all their values
        X = served.model.prepare(rows) if served.path == "compiled" and served.columns else None
        if X is None:
            X = frame(rows, served.columns)
        try:
            return X, score(served, X)
        except (ValueError, TypeError, KeyError) as exc:
            # the column the model's message names (e.g. "time column 'time_hour': ... outside the times ...")
            named = next((c.name for c in served.columns if f"'{c.name}'" in str(exc)), None)
            raise ClientError(422, "cannot score", named, f"the model cannot score these rows: {exc}"[:400]) from None

    def log_rows(self, served: Served, rows, X, out, rid, route, positions, now) -> None:
        try:
            self.predlog.submit(Batch(log_inputs(rows, served.columns, X), log_outputs(out), served.version, rid,
                                      now, route, positions))
        except LogFull as exc:
            raise ClientError(503, "busy", None, f"{exc}; retry later") from None
        observe = self.metrics.scores.labels(served.version, route).observe
        for v in out["score"]:
            if v is not None and math.isfinite(v):
                observe(v)

    def predict(self, body, route_header: str | None = None):
        s, predlog, metrics = self.s, self.predlog, self.metrics
        served = self.holder.current  # this request finishes on this version, whatever reloads meanwhile
        own = tasks.for_objective(served.meta.get("task")).serving()
        if own is not None:  # a task answering on its own route (e.g. /recommend) takes no rows
            raise ClientError(409, own.NOT_PREDICT, None, own.PREDICT_HINT)
        cand = self.challenger(served)
        rows = self.rows(body, served.columns)
        if not served.columns:
            check_text(rows, s.max_text_chars)
        if not predlog.healthy and s.log_failure == "refuse":  # never answer a row that cannot be recorded
            raise ClientError(503, "prediction log unavailable", None,
                              f"the prediction log cannot be written ({type(predlog.error).__name__}); retry later")
        if s.bounds:
            self.check_ranges(rows, served.columns)
        rid = uuid.uuid4().hex
        now = dt.datetime.now(dt.UTC)
        to_candidate = self.router.canary_rows(rows, route_header, rid) if cand is not None else [False] * len(rows)
        groups = [(m, route, [i for i, c in enumerate(to_candidate) if c == flag])
                  for m, route, flag in ((served, "champion", False), (cand, "canary", True))]
        groups = [(m, route, idx) for m, route, idx in groups if idx]
        merged: dict[str, list] = {}
        scored = []
        for m, route, idx in groups:
            part = rows if len(idx) == len(rows) else [rows[i] for i in idx]
            X, out = self.score_rows(m, part)
            scored.append((m, route, idx, part, X, out))
            for k, v in out.items():
                merged.setdefault(k, [None] * len(rows))
                for i, value in zip(idx, v, strict=True):
                    merged[k][i] = value
        for m, route, idx, part, X, out in scored:
            self.log_rows(m, part, X, out, rid, route, None if len(groups) == 1 else idx, now)
        self.feedback_store.known.add(rid, len(rows))
        metrics.rows.inc(len(rows))
        metrics.log_rows.set(predlog.pending)
        body_out = {"predictions": merged["prediction"]}
        if "probabilities" in merged:
            body_out["probabilities"] = merged["probabilities"]
        versions = [m.version for m, _, _ in groups]
        version = ",".join(versions)
        body_out.update(model_name=served.info.get("name"), model_version=version, request_id=rid)
        if len(groups) > 1:
            body_out["model_versions"] = [cand.version if c else served.version for c in to_candidate]
        route = "canary" if any(r == "canary" for _, r, _ in groups) else "champion"
        resp = json_response(body_out, 200, rid, {"X-Model-Version": version, "X-Route": route})
        if cand is not None and self.router.mode == "shadow" and not self.shadows.submit((cand, rows, rid, now)):
            metrics.requests.labels("/predict", "503", cand.version, "shadow").inc()  # the queue is full: skipped
        return resp

    def shadow(self, cand: Served, rows: list[dict], rid: str, now) -> None:
        """The candidate scores the rows the champion answered, after the answer was sent; logged as
        `shadow` rows, never returned. A failure is counted and logged, the answer stands."""
        import time

        start = time.perf_counter()
        status = "200"
        try:
            X, out = self.score_rows(cand, rows)
            self.log_rows(cand, rows, X, out, rid, "shadow", None, now)
        except ClientError as exc:
            status = str(exc.status)
            log.error("serve: shadow v%s could not score request %s: %s", cand.version, rid, exc)
        except Exception:
            status = "500"
            log.exception("serve: shadow v%s failed on request %s", cand.version, rid)
        finally:
            self.metrics.latency.labels("/predict", cand.version, "shadow").observe(time.perf_counter() - start)
            self.metrics.requests.labels("/predict", status, cand.version, "shadow").inc()

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

    def feedback(self, body):
        served = self.holder.current
        if isinstance(body, dict) and "feedback" in body and len(body) > 1:
            other = sorted(k for k in body if k != "feedback")[0]
            raise ClientError(422, "unknown field", other, f"'{other}' is not part of a feedback batch: "
                              '{"feedback": [entry, ...]} holds only the entries')
        n = self.feedback_store.add(entries_of(body), served.meta or {}, "api")
        return json_response({"accepted": n}, 200)

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
        cand = self.challenger(served)
        release = {"mode": self.router.mode, "share": self.router.share_now(cand is not None),
                   "configured_share": self.router.share, "key": self.router.key, "header": self.router.header,
                   "candidate_alias": self.candidate.alias if self.candidate else None,
                   "candidate": None if cand is None else {
                       "version": cand.version, "run_id": cand.info.get("run_id"), "data_md5": cand.info.get("data_md5"),
                       "scoring_path": cand.path, "uri": cand.info.get("uri")},
                   "candidate_reload_error": self.candidate.last_error if self.candidate else None}
        return {"release": release, "name": i.get("name"), "version": served.version, "alias": i.get("alias"),
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


TABLE_FEEDBACK_ENTRY = {
    "type": "object", "additionalProperties": False, "required": ["request_id", "label"],
    "properties": {"request_id": {"type": "string", "minLength": 1}, "row": {"type": "integer", "minimum": 0},
                   "label": {"not": {"type": "null"}}}}


def feedback_schema(own) -> dict:
    """The /feedback request body in the OpenAPI document: one entry, or {"feedback": [entries]}, with
    the entry of the served task (`own`: its serving module, None for a table model); `{}` and
    unknown fields are outside it, as the endpoint refuses them."""
    from mlcycle.serving.feedback import MAX_ENTRIES

    entry = getattr(own, "FEEDBACK_ENTRY", None) or TABLE_FEEDBACK_ENTRY
    example = getattr(own, "FEEDBACK_EXAMPLE", None) or {"request_id": "0f3c...", "row": 0, "label": 1}
    batch = {"type": "object", "additionalProperties": False, "required": ["feedback"],
             "properties": {"feedback": {"type": "array", "minItems": 1, "maxItems": MAX_ENTRIES, "items": entry}}}
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"oneOf": [entry, batch]}, "examples": {"one": {"value": example},
                                                          "batch": {"value": {"feedback": [example]}}}}}}}


def feedback_endpoint(ep: Endpoints):
    from fastapi import Body

    def feedback(body: Annotated[dict, Body()]):
        """Labels for logged predictions: `{request_id, row, label}` or `{"feedback": [...]}`; for a
        recommender `{request_id, item, rating}` (an item of the /recommend answer; no rating: a click); for
        a forecast `{request_id, time, value}` (the actual at a forecast time of the /forecast answer). An
        unknown request id (404), a duplicate (409), a wrong type or an item not in the answer (422) refuses
        the whole call: nothing is stored."""
        return ep.feedback(body)

    return feedback
def predict_endpoint(ep: Endpoints, request_model):
    """The /predict endpoint, its body typed as `request_model` (built from the model's columns)."""
    from fastapi import Body, Request

    PredictBody = Annotated[request_model, Body()]

    def predict(body: PredictBody, request: Request):
        """Predictions (and class probabilities for classifiers) for 1 to `max_rows` rows. In a canary
        release the routing header (serve.release.header) keeps one caller on one model."""
        return ep.predict(body, request.headers.get(ep.router.header))

    return predict
