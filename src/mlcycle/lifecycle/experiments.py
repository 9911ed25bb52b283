"""Queued DVC experiments in parallel, recorded through a tracking server started for them.

SQLite locks under parallel writers, so `run_queue` starts `mlflow server` on the workspace's own
store (unless MLFLOW_TRACKING_URI already names a server), points the queue workers at it, runs
`dvc queue start -j N`, waits for the queue to drain and stops the server. With a team server
(MLFLOW_TRACKING_URI or `tracking.uri`) the workers record there and no server is started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from mlcycle.core.errors import MlcycleError
from mlcycle.core.paths import store_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def tracking_server(root: Path, timeout: float = 600):
    """A `mlflow server` on 127.0.0.1 over the workspace's SQLite store; yields its URL. The wait
    for its first answer ends at once when the server exits; while it runs it is given `timeout`
    seconds (a loaded machine can take minutes to start its workers), a bound against a hang."""
    store = store_dir(root)
    store.mkdir(parents=True, exist_ok=True)
    port = free_port()
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    log = (store / "server.log").open("ab")
    proc = subprocess.Popen(
        [str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
         "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}", "--artifacts-destination", str(store / "artifacts")],
        stdout=log, stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    raise MlcycleError(f"mlflow server exited with code {proc.returncode} before it answered; "
                                       f"see {store / 'server.log'}") from None
                if time.monotonic() > deadline:
                    raise MlcycleError(f"mlflow server did not answer {url}/health within {timeout:.0f} s; "
                                       f"see {store / 'server.log'}") from None
                time.sleep(0.5)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def queue_status(root: Path, env: dict) -> str:
    return subprocess.run(["dvc", "queue", "status"], cwd=root, env=env, capture_output=True, text=True).stdout


def run_queue(root: Path, jobs: int = 2, poll: float = 3.0) -> int:
    """Run every queued experiment with `jobs` workers; 0 when all succeeded, 1 otherwise."""
    def drain(env):
        subprocess.run(["dvc", "queue", "start", "-j", str(jobs)], cwd=root, env=env, check=True)
        while True:
            status = queue_status(root, env)
            tasks = [line.split() for line in status.splitlines()[1:] if line.strip() and not line.startswith("Worker")]
            if not any(t[-1] in ("Queued", "Running") for t in tasks if t):
                print(status.strip())
                return 1 if any(t[-1] == "Failed" for t in tasks if t) else 0
            time.sleep(poll)

    env = dict(os.environ)
    if env.get("MLFLOW_TRACKING_URI"):
        return drain(env)
    from mlcycle.core import config

    uri = config.load(root / "params.yaml", root=root).tracking.uri
    if uri and not uri.startswith("sqlite:"):  # a server named in params: the workers record there
        return drain(env)
    with tracking_server(root) as url:
        env["MLFLOW_TRACKING_URI"] = url
        print(f"tracking server for the queue: {url}")
        return drain(env)
