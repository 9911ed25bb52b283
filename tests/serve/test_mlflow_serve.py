"""MLflow's own scoring server still serves the registered champion (`mlflow models serve`)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mlcycle.lifecycle.experiments import free_port
from tests.conftest import env
from tests.serve.conftest import MODEL, example_rows

pytestmark = pytest.mark.slow


def test_mlflow_models_serve_answers_on_the_champion(served_ws, tmp_path):
    port = free_port()
    e = env()
    e["MLFLOW_TRACKING_URI"] = f"sqlite:///{served_ws / 'mlruns' / 'mlflow.db'}"
    out = (tmp_path / "mlflow.out").open("wb")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", f"models:/{MODEL}@champion",
                             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
                            cwd=served_ws, env=e, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "mlflow.out").read_text()[-3000:]
            time.sleep(0.5)
        rows = example_rows(served_ws)
        r = httpx.post(f"{url}/invocations", json={"dataframe_records": rows}, timeout=60)
        assert r.status_code == 200, r.text
        probs = r.json()["predictions"]
        assert len(probs) == len(rows) and all(abs(sum(p) - 1) < 1e-9 for p in probs)  # predict_proba
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        out.close()
