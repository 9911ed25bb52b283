"""`mlcycle serving start` starts here: `run` checks that the model URI resolves, warns when the server is
exposed without a token (`warn_exposed`), hands the settings to the workers in $MLCYCLE_SERVE_SETTINGS
and starts uvicorn with `s.workers` workers, each building its app with `app.app_from_env`, on the
HTTP protocol of `protocol.py` (a deadline on each request's headers). Routine messages (start, model
moves, flushes) are INFO; WARNING and above mean something to look at."""

from __future__ import annotations

import logging
import os
import tempfile

from mlcycle.core.errors import ServeError
from mlcycle.core.workspace import parse_model_uri
from mlcycle.serving.settings import LOG_LEVEL_ENV, SETTINGS_ENV, Settings

log = logging.getLogger("mlcycle.serve")
APP_FACTORY = "mlcycle.serving.app:app_from_env"


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


def run(s: Settings, log_level: str = "info") -> int:
    """Start uvicorn with `s.workers` workers; returns when the server stopped (SIGTERM / Ctrl-C)."""
    import uvicorn

    from mlcycle.core.workspace import open_client
    from mlcycle.runtime.tracking import check_store, masked

    check_store(s.tracking_uri)  # an unreachable server: one line now, not minutes of retries
    client = open_client(s.tracking_uri)
    name, alias, version = parse_model_uri(s.model_uri)
    if name:  # fail in a second with a clear message rather than in every worker
        try:
            client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
        except Exception:
            from mlcycle.lifecycle.registry import unresolved_message

            raise ServeError((alias and unresolved_message(client, name, s.model_uri))
                             or f"serve: {s.model_uri} does not resolve in {masked(s.tracking_uri)}; "
                             "see `mlcycle model list`, or run `make repro` to register a champion") from None
    warn_exposed(s)
    os.environ[SETTINGS_ENV] = s.to_json()
    os.environ[LOG_LEVEL_ENV] = log_level
    metrics_dir = None
    # one OpenMP thread per worker: parallelism comes from workers and concurrent requests; with
    # more, HistGradientBoosting's per-call thread team costs ~10x the latency of a small request
    # on a busy machine. An OMP_NUM_THREADS already set wins.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if s.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # /metrics adds up the workers
        metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mlcycle-serve-metrics-")
    try:
        from mlcycle.serving.protocol import HeaderDeadline

        uvicorn.run(APP_FACTORY, factory=True, host=s.host, port=s.port, workers=s.workers, http=HeaderDeadline,
                    log_level=log_level, access_log=False, timeout_graceful_shutdown=60)
    finally:
        if metrics_dir:
            import shutil

            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
