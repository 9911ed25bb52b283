"""Shared fixtures: temporary copies of the workspace, params edits, and running commands there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from mlcycle.core.paths import WORKSPACE_FILES, copy_workspace

ROOT = Path(__file__).resolve().parents[1]
# the tests' own warm tracking daemons (mlcycle.trackd), stopped when the session ends
TRACKD_DIR = tempfile.mkdtemp(prefix="mlcycle-trackd-")
os.environ["MLCYCLE_TRACKD_DIR"] = TRACKD_DIR
# `make test` runs two test processes on the machine's cores: one OpenMP thread each, for them and
# for the stages, kernels and servers they start (two processes with a thread per core each
# oversubscribe the cores, and OpenMP's spinning threads then slow training many times over)
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
# hashed personal columns need a secret salt (the workspaces of tests/pipeline hash theirs)
os.environ.setdefault("MLCYCLE_PII_SALT", "mlcycle-tests-salt")
BIN = Path(sys.executable).parent
COPY = WORKSPACE_FILES

# small enough for seconds per stage, large enough for every stage to mean something
SAMPLE = {
    "ingest": {"nycflights13": {"params": {"sample_frac": 0.04}}},
    "validate": {"min_rows": 100},
    "eda": {"sample_rows": 4000},
    "train": {"max_iter": 40},
}


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    e.update(DVC_NO_ANALYTICS="1", MPLBACKEND="Agg", GIT_AUTHOR_NAME="mlcycle tests",
             GIT_AUTHOR_EMAIL="tests@mlcycle.invalid", GIT_COMMITTER_NAME="mlcycle tests",
             GIT_COMMITTER_EMAIL="tests@mlcycle.invalid")
    e.pop("MLCYCLE_ROOT", None)
    # mlflow.set_tracking_uri() in this process (registry tests) also sets these variables: a
    # workspace copy must use its own store unless a test points it at a server on purpose
    e.pop("MLFLOW_TRACKING_URI", None)
    e.pop("MLFLOW_REGISTRY_URI", None)
    return e


def run(cmd: list[str] | str, cwd: Path, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run a command in a workspace copy; on failure show its output."""
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout,
                          shell=isinstance(cmd, str))
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}")
    return proc


def up_to_date(status: str) -> bool:
    """Whether `dvc status` printed a pipeline with nothing to run: every stage it lists is only
    "always changed" (the report stage, which shows the registry's live state, is rebuilt every time)."""
    if "up to date" in status.lower():
        return True
    lines = [line.strip() for line in status.strip().splitlines() if line.strip()]
    stages = [line for line in lines if line.endswith(":")]
    return bool(lines) and len(lines) == 2 * len(stages) and all(
        lines[i].endswith(":") and lines[i + 1] == "always changed" for i in range(0, len(lines), 2))


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and v and isinstance(out.get(k), dict) else v
    return out


def edit_params(ws: Path, changes: dict) -> dict:
    """Apply `changes` (nested sections) to ws/params.yaml, as a user would by editing it."""
    p = ws / "params.yaml"
    params = deep_merge(yaml.safe_load(p.read_text()), changes)
    p.write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def make_workspace(dest: Path, params: dict | None = None, git: bool = True) -> Path:
    """A fresh copy of the workspace (as a clone would have it) at dest, optionally with params edits."""
    copy_workspace(ROOT, dest)
    if params:
        edit_params(dest, params)
    if git:
        run(["git", "init", "-q"], dest)
        run(["git", "add", "-A"], dest)
        run(["git", "commit", "-q", "-m", "workspace copy"], dest)
    return dest


def init_data(ws: Path, data: str, target: str, *flags: str, params: dict | None = None) -> str:
    """`mlcycle init --data DATA --target TARGET` in a workspace copy, as a user starts with their own
    table, then `params` edits on top; returns what init printed."""
    out = run(["mlcycle", "init", "--data", data, "--target", target, "--force", *flags], ws)
    if params:
        edit_params(ws, params)
    return out.stdout


def wait_http(url: str, proc: subprocess.Popen, log: Path, what: str, seconds: float = 120) -> None:
    """Wait until `url` answers; fail with the process's output if it exits or the time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"{what} did not answer at {url} within {seconds:.0f} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """Terminate a server a test started; kill it if it has not exited within 20 s."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def mlflow_client(ws: Path):
    """A client on a workspace copy's own tracking store and registry."""
    import mlflow

    uri = f"sqlite:///{ws / 'mlruns' / 'mlflow.db'}"
    return mlflow.MlflowClient(uri, registry_uri=uri)


# `make test` runs test files in two processes (pytest-xdist, --dist loadfile: a file's tests stay in
# one process, so its module fixtures are built once; a session fixture is built once per process)


def pytest_collection_modifyitems(config, items):
    """Start with the files that hold slow tests, so that the quick ones fill the processes' last
    minutes instead of one long file running alone at the end."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: a file's own order stays


_FILE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report):
    """Add each test's setup, call and teardown time to its file's (with xdist the controller sees
    every worker's reports)."""
    _FILE_SECONDS[report.nodeid.split("::")[0]] = _FILE_SECONDS.get(report.nodeid.split("::")[0], 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    """The files that took longest, with their share of the whole (docs/testing.md holds the budget)."""
    if not _FILE_SECONDS:
        return
    total = sum(_FILE_SECONDS.values())
    terminalreporter.write_sep("=", f"slowest test files (setup + call + teardown; {total:.0f} s in all)")
    for path, seconds in sorted(_FILE_SECONDS.items(), key=lambda kv: -kv[1])[:20]:
        terminalreporter.write_line(f"{seconds:8.1f}s {100 * seconds / total:5.1f}%  {path}")


@pytest.fixture(scope="session", autouse=True)
def _tracking_daemons():
    yield
    from mlcycle.runtime import trackd

    trackd.stop_all()
    shutil.rmtree(TRACKD_DIR, ignore_errors=True)


def forget_tracking_choice(mp: pytest.MonkeyPatch, process_wide: bool = False) -> None:
    """No MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI: mlflow.set_tracking_uri() in an earlier test
    sets them for the whole process, and a workspace copy must use its own store. `process_wide`:
    nor the URI mlflow keeps for the process (a file's fixtures set it again for its tests)."""
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
    if process_wide and "mlflow" in sys.modules:
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        mp.setattr(tracking_utils, "_tracking_uri", None)
        mp.setattr(registry_utils, "_registry_uri", None)


@pytest.fixture(scope="module", autouse=True)
def _own_tracking_store_per_file():
    """Before a file's module fixtures build their workspaces (whichever file ran before it)."""
    mp = pytest.MonkeyPatch()
    forget_tracking_choice(mp, process_wide=True)
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def _own_tracking_store(monkeypatch):
    forget_tracking_choice(monkeypatch)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws")


@contextmanager
def external_cluster(tmp_path: Path):
    """A `dask scheduler` and two `dask worker` processes on localhost, stopped at the end."""
    file = tmp_path / "scheduler.json"
    e = env()
    e["OMP_NUM_THREADS"] = "1"
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--dashboard-address", ":0", "--scheduler-file", str(file)],
                              env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        deadline = time.monotonic() + 60
        while not file.exists():
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.2)
        address = json.loads(file.read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--nworkers", "1",
                                           "--no-dashboard"], env=e, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True))
        from distributed import Client

        with Client(address, timeout=30) as c:
            c.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
