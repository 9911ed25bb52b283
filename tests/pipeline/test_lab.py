"""`make lab`'s JupyterLab starts on the workspace, on localhost, with the workspace's kernels."""

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from mlcycle.lifecycle.experiments import free_port
from tests.conftest import ROOT, env, stop

pytestmark = pytest.mark.slow


def api(url: str, method: str = "GET", body: dict | None = None):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        data = r.read()
        return json.loads(data) if data else None


async def execute(url: str, code: str, timeout: float = 60) -> str:
    """Run `code` in a kernel through JupyterLab's websocket, as the browser does; return its stdout."""
    from tornado.websocket import websocket_connect

    ws = await websocket_connect(url)
    msg_id = uuid.uuid4().hex
    ws.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": uuid.uuid4().hex,
                   "username": "test", "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }))
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = await asyncio.wait_for(ws.read_message(), timeout=deadline - time.monotonic())
        msg = json.loads(raw)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("\n".join(msg["content"]["traceback"]))
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    ws.close()
    return "".join(out)


def test_jupyterlab_serves_workspace_and_starts_kernel(tmp_path):
    port, token = free_port(), "mlcycle-test-token"
    jupyter = Path(sys.executable).parent / "jupyter"
    cmd = [str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--notebook-dir={ROOT}",
           f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    e = env()
    e["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    proc = subprocess.Popen(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}/api"
    q = f"?token={token}"
    try:
        for _ in range(120):
            try:
                api(f"{base}/status{q}")
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 60 s")
        assert "python3" in api(f"{base}/kernelspecs{q}")["kernelspecs"]
        listing = api(f"{base}/contents/notebooks{q}")
        assert {c["name"] for c in listing["content"]} >= {"01_ingest.ipynb", "tabular", "recommender", "explore"}
        listing = api(f"{base}/contents/notebooks/tabular{q}")
        assert {c["name"] for c in listing["content"]} >= {"02_validate.ipynb", "05_train.ipynb"}
        # a kernel started where a task's notebook is, as the Lab starts it: params.yaml is two folders up
        kernel = api(f"{base}/kernels{q}", "POST", {"name": "python3", "path": "notebooks/tabular"})
        code = "from mlcycle.core import config; print('target=' + config.load('params.yaml').data.target)"
        out = asyncio.run(execute(f"ws://127.0.0.1:{port}/api/kernels/{kernel['id']}/channels{q}", code))
        assert "target=arr_delay" in out
        api(f"{base}/kernels/{kernel['id']}{q}", "DELETE")
    finally:
        stop(proc)
