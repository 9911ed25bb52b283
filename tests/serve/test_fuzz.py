"""Property-based fuzzing of the served OpenAPI schema (schemathesis): no input yields a 5xx."""

import re
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import env
from tests.serve.conftest import TOKEN, serving

pytestmark = pytest.mark.slow


def test_openapi_fuzz_finds_no_server_error(served_ws, tmp_path):
    import subprocess

    st = Path(sys.executable).parent / "schemathesis"
    with serving(served_ws, tmp_path / "predictions", TOKEN) as s:
        proc = subprocess.run(
            [str(st), "run", f"{s.url}/openapi.json", "--checks", "not_a_server_error",
             "--phases", "examples,coverage,fuzzing", "--max-examples", "40", "--seed", "1",
             "--header", f"Authorization: Bearer {TOKEN}", "--workers", "2", "--request-timeout", "30",
             "--generation-database", "none"],
            cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=300)
        metrics = httpx.get(f"{s.url}/metrics").text
        assert httpx.get(f"{s.url}/health").status_code == 200  # still serving
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert 'status="5' not in metrics
    # (labels print sorted: endpoint, route, status, version)
    assert re.search(r'endpoint="/predict",route="champion",status="200"', metrics)  # the fuzzer did reach the model
    assert re.search(r'endpoint="/predict",route="[^"]*",status="422"', metrics)
