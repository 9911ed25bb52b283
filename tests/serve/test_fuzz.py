"""Property-based fuzzing of the served OpenAPI schema (schemathesis): no input yields a 5xx, and
every row the server accepted is one monitoring reads (`mlcycle monitoring run --from-log` on the
fuzzed server's log succeeds). The served model has a time column (its day of week is a feature), so
the fuzzer's times, out-of-range ones included, reach the server and the monitor."""

import re
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import env, make_workspace, mlflow_client, run
from tests.serve.conftest import MODEL, PARAMS, TOKEN, feature_tables, serving

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def timed_ws(tmp_path_factory) -> Path:
    """The serving tests' workspace, with a time column the model reads."""
    ws = make_workspace(tmp_path_factory.mktemp("fuzz") / "ws", params=PARAMS)
    feature_tables(ws, time=True)
    run([sys.executable, "-m", "mlcycle", "run", "train"], ws, timeout=600)
    run([sys.executable, "-m", "mlcycle", "model", "promote", "--model", "1", "--reason", "fuzz tests"], ws)
    return ws


def test_openapi_fuzz_finds_no_server_error(timed_ws, tmp_path):
    import subprocess

    served_ws = timed_ws
    st = Path(sys.executable).parent / "schemathesis"
    with serving(served_ws, tmp_path / "predictions", TOKEN) as s:
        proc = subprocess.run(
            [str(st), "run", f"{s.url}/openapi.json", "--checks", "not_a_server_error",
             "--phases", "examples,coverage,fuzzing", "--max-examples", "40", "--seed", "1",
             # one worker: Python 3.11's AST constructor keeps its recursion depth in state its threads
             # share, so hypothesis describing a strategy in two threads at once can fail with
             # "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905)
             "--header", f"Authorization: Bearer {TOKEN}", "--workers", "1", "--request-timeout", "30",
             "--generation-database", "none"],
            cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=300)
        metrics = httpx.get(f"{s.url}/metrics").text
        assert httpx.get(f"{s.url}/health").status_code == 200  # still serving
        assert "time_hour" in httpx.get(f"{s.url}/openapi.json").text
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert 'status="5' not in metrics
    # (labels print sorted: endpoint, route, status, version)
    assert re.search(r'endpoint="/predict",route="champion",status="200"', metrics)  # the fuzzer did reach the model
    assert re.search(r'endpoint="/predict",route="[^"]*",status="422"', metrics)

    # every accepted row is one monitoring can read: the monitor over the fuzzed log succeeds
    import yaml

    params = yaml.safe_load((served_ws / "params.yaml").read_text())
    params["serve"]["log_dir"] = str(tmp_path / "predictions")
    params["monitor"]["min_rows"] = 1  # judge the fuzzed rows, however few
    (served_ws / "params-fuzz.yaml").write_text(yaml.safe_dump(params))
    # the fixture wrote data/processed itself: dvc.lock names it by the hash the champion was trained on,
    # as `dvc repro` would, so the monitor finds its reference data (restored afterwards)
    md5 = mlflow_client(served_ws).get_model_version(MODEL, "1").tags["data_md5"]
    lock = served_ws / "dvc.lock"
    saved = lock.read_bytes() if lock.exists() else None
    lock.write_text(yaml.safe_dump({"schema": "2.0", "stages": {"features": {"outs": [{"path": "data/processed", "md5": md5}]}}}))
    test_split = served_ws / "data" / "processed" / "test.parquet"  # the fixture writes train and valid only
    made = not test_split.exists()
    if made:
        shutil.copyfile(served_ws / "data" / "processed" / "valid.parquet", test_split)
    try:
        mon = subprocess.run([sys.executable, "-m", "mlcycle", "monitoring", "run", "--from-log", "--days", "1",
                              "--params", "params-fuzz.yaml"], cwd=served_ws, env=env(), capture_output=True, text=True,
                             timeout=600)
    finally:
        if saved is not None:
            lock.write_bytes(saved)
        else:
            lock.unlink()
        if made:
            test_split.unlink()
    assert mon.returncode == 0, (mon.stdout + mon.stderr)[-4000:]
    assert "monitor:" in mon.stdout
