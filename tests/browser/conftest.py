"""What users see, in a real browser: Debian's Chromium driven through its chromedriver (Selenium),
headless, with a fresh profile and no network beyond localhost. One sample workspace where the
pipeline ran (`dvc repro`) is shared by every browser test.

Each test leaves a screenshot of the page it ended on in `reports/screenshots/<test>.png` of that
workspace, and prints where it is when the test fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

from mlcycle.lifecycle.experiments import free_port
from tests.conftest import BIN, SAMPLE, deep_merge, env, make_workspace, run, stop, wait_http

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# the sample, with fewer bootstrap resamples and explained rows: seconds per stage
PARAMS = deep_merge(SAMPLE, {"evaluate": {"bootstrap": 10, "explain_rows": 500}})
# a closed network refuses Chromium's own connections (updates, sync, safe browsing): keep it from trying
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000"]


def pytest_runtest_makereport(item, call):
    """Keep each phase's outcome on the test item, for the screenshot fixture's failure message."""
    if call.when == "call":
        item.browser_failed = call.excinfo is not None


def require_chromium() -> None:
    """Fail (not skip) when Chromium or its driver is missing, saying how to install them."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"browser tests need Debian's chromium and chromium-driver ({', '.join(missing)} missing): "
                    "apt-get install chromium chromium-driver (.ci/run installs them)")


@pytest.fixture(scope="session")
def browser_ws(tmp_path_factory) -> dict:
    """A sample workspace where `dvc repro` ran with tracking, and the MLflow UI address its index
    links stage runs to (`tracking.ui_url`; the UI test serves the store there)."""
    require_chromium()
    port = free_port()
    ws = make_workspace(tmp_path_factory.mktemp("browser") / "ws",
                        params=deep_merge(PARAMS, {"tracking": {"ui_url": f"http://127.0.0.1:{port}"}}))
    run(["dvc", "repro"], ws, timeout=1200)
    return {"ws": ws, "ui_port": port}


@pytest.fixture
def browser(browser_ws, request):
    """A headless Chromium with a fresh profile; the page it ends on is saved as a screenshot."""
    with chromium(browser_ws["ws"], request) as driver:
        yield driver


@contextmanager
def chromium(ws: Path, request):
    """A headless Chromium with a fresh profile; the page it ends on is saved as a screenshot in
    ws/reports/screenshots (said when the test failed)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="mlcycle-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for f in FLAGS:
        opts.add_argument(f)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        shots = ws / "reports" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        shot = shots / f"{request.node.name}.png"
        try:
            driver.save_screenshot(str(shot))
        except Exception as exc:  # the browser itself died: say so next to the failure
            shot = f"no screenshot ({type(exc).__name__})"
        if getattr(request.node, "browser_failed", False):
            print(f"screenshot of the page at the failure: {shot}")
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver) -> list[str]:
    """The browser console's errors since the last call (Chromium's SEVERE entries)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.fixture(scope="session")
def mlflow_ui(browser_ws, tmp_path_factory):
    """`make ui`'s MLflow UI on the workspace's store, at the address its index links to."""
    ws, port = browser_ws["ws"], browser_ws["ui_port"]
    cmd = [str(BIN / "mlflow"), "ui", "--app-name", "mlcycle", "--backend-store-uri", f"sqlite:///{ws / 'mlruns' / 'mlflow.db'}",
           "--default-artifact-root", str(ws / "mlruns" / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1"]
    log = tmp_path_factory.mktemp("mlflow-ui") / "ui.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ws, env=env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc, log, "mlflow ui")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def lab(browser_ws, tmp_path_factory):
    """`make lab`'s JupyterLab on the workspace, with a known token; yields its base URL and token."""
    ws = browser_ws["ws"]
    port, token = free_port(), "mlcycle-browser-token"
    cmd = [str(BIN / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--notebook-dir={ws}",
           f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    e = env()
    runtime = tmp_path_factory.mktemp("jupyter-runtime")
    e["JUPYTER_RUNTIME_DIR"] = str(runtime)
    e["JUPYTERLAB_WORKSPACES_DIR"] = str(runtime / "workspaces")  # the Lab's layout: not the user's own
    e["JUPYTERLAB_SETTINGS_DIR"] = str(runtime / "settings")
    log = runtime / "lab.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ws, env=e, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/api/status?token={token}", proc, log, "jupyter lab")
        yield f"http://127.0.0.1:{port}", token
    finally:
        stop(proc)
