"""A workspace copy with a registered champion, and real `mlcycle serving start` processes on free ports.

The sampled pipeline up to `train` takes about two minutes on 2 cores, too long for these tests:
the copy gets small feature tables in the shape the features stage writes (flights-like columns,
missing values included), then the real `train` stage runs through the runner, which fits, saves
and registers version 1; `champion` is given to it with `mlcycle model promote`, as an operator would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from mlcycle.lifecycle.experiments import free_port
from tests.conftest import SAMPLE, env, make_workspace, mlflow_client, run

MODEL = "nycflights13-late-arrival"
TOKEN = "s3cret-test-token"
# small limits so the tests can reach them cheaply
PARAMS = {
    "serve": {"max_rows": 50, "max_body_mb": 0.2, "reload_seconds": 1.0, "log_roll_seconds": 2.0},
    "train": {**SAMPLE["train"], "baseline_columns": ["sched_dep_time", "carrier"]},
}


def feature_tables(ws: Path, n: int = 3000, seed: int = 0, time: bool = False) -> None:
    """data/processed/{train,valid}.parquet and features.json as the features stage writes them.
    `time`: with a time column, `time_hour` (hourly, in order), whose day of week the model uses."""
    import numpy as np
    import pandas as pd

    from mlcycle.core.paths import Paths
    from mlcycle.tasks.tabular.features import FeatureSpec

    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "sched_dep_time": rng.integers(500, 2300, n).astype(float),
        "distance": rng.uniform(100, 2500, n).round(),
        "temp": np.where(rng.random(n) < 0.05, np.nan, rng.normal(55, 15, n).round(1)),
        "carrier": pd.array(rng.choice(["UA", "AA", "DL", "B6", "EV"], n), dtype="str"),
        "origin": pd.array(rng.choice(["EWR", "JFK", "LGA"], n), dtype="str"),
        "plane_type": pd.array(np.where(rng.random(n) < 0.1, None, rng.choice(["Fixed wing multi engine", "Rotorcraft"], n)), dtype="str"),
    })
    logit = (df["sched_dep_time"] - 1400) / 400 + (df["carrier"] == "EV") - df["temp"].fillna(55) / 60
    df["arr_delay>=15"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int64")
    spec = FeatureSpec(target="arr_delay", task="classification", label="arr_delay>=15",
                       numeric=["sched_dep_time", "distance", "temp"], categorical=["carrier", "origin", "plane_type"],
                       classes=[0, 1], positive_class=1, label_rule="arr_delay >= 15")
    if time:
        df.insert(0, "time_hour", pd.date_range("2013-01-01", periods=n, freq="h", tz="UTC"))
        inputs = [*spec.inputs, "time_hour"]
        spec = FeatureSpec(target="arr_delay", task="classification", label="arr_delay>=15",
                           numeric=[*spec.numeric, "day_of_week"], categorical=spec.categorical,
                           classes=[0, 1], positive_class=1, label_rule="arr_delay >= 15", time_column="time_hour",
                           inputs=inputs, kinds={**spec.kinds, "time_hour": "time"},
                           input_types={**spec.input_types, "time_hour": "datetime"}, calendar=["day_of_week"])
    paths = Paths(ws)
    cut = int(n * 0.8)
    paths.processed.mkdir(parents=True, exist_ok=True)
    df.iloc[:cut].to_parquet(paths.split_file("train"))
    df.iloc[cut:].to_parquet(paths.split_file("valid"))
    spec.to_json(paths.feature_spec)


@pytest.fixture(scope="session")
def served_ws(tmp_path_factory) -> Path:
    ws = make_workspace(tmp_path_factory.mktemp("serve") / "ws", params=PARAMS)
    feature_tables(ws)
    run([sys.executable, "-m", "mlcycle", "run", "train"], ws, timeout=600)
    run([sys.executable, "-m", "mlcycle", "model", "promote", "--model", "1", "--reason", "serving tests"], ws)
    return ws


def register_again(ws: Path) -> str:
    """Register the trained model folder once more, as a new version (what a retrain would add)."""
    from mlcycle.lifecycle import registry

    c = mlflow_client(ws)
    exp = c.get_experiment_by_name("mlcycle")
    run_id = c.create_run(exp.experiment_id, tags={"mlflow.runName": "serving test"}).info.run_id
    version = registry.register(c, MODEL, run_id, ws / "models" / "model",
                                {"git_commit": "test", "data_md5": "test", "stage_run_id": run_id})
    c.set_terminated(run_id)
    return version


def example_rows(ws: Path) -> list[dict]:
    """The model's own input example (5 rows), NaN as null."""
    ex = json.loads((ws / "models" / "model" / "serving_input_example.json").read_text().replace("NaN", "null"))
    split = ex["dataframe_split"]
    return [dict(zip(split["columns"], row, strict=True)) for row in split["data"]]


class Server:
    def __init__(self, proc: subprocess.Popen, url: str, log_dir: Path, out: Path):
        self.proc, self.url, self.log_dir, self.out = proc, url, log_dir, out

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as a process manager would, and wait for the exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode

    def output(self) -> str:
        return self.out.read_text(errors="replace")


@contextmanager
def serving(ws: Path, log_dir: Path, token: str | None = TOKEN, *args: str):
    """`python -m mlcycle serving start` in ws on a free port; yields a Server once /ready answers 200."""
    port = free_port()
    e = env()
    e.pop("MLCYCLE_SERVE_TOKEN", None)
    if token:
        e["MLCYCLE_SERVE_TOKEN"] = token
    out = log_dir.parent / f"server-{port}.out"
    log_dir.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "mlcycle", "serving", "start", "--port", str(port),
                                 "--log-dir", str(log_dir), *args],
                                cwd=ws, env=e, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(proc, f"http://127.0.0.1:{port}", log_dir, out)
    try:
        deadline = time.monotonic() + 90
        # every worker logs "serve: ... (pid N)" once it accepts requests; wait for all of them, so a
        # test does not put its whole load on the first worker up
        workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 1
        while True:
            try:
                if (httpx.get(f"{server.url}/ready", timeout=2).status_code == 200
                        and server.output().count(" (pid ") >= workers):
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlcycle serving start did not become ready:\n{server.output()[-3000:]}")
            time.sleep(0.3)
        yield server
    finally:
        server.stop()
