"""Shared helpers for the benchmarks: workspace copies, timed commands with peak memory, results files.

Every benchmark runs its baseline and ours in the same invocation (alternating, several times) and
reports medians and ratios, because machines here are noisy. Results go to
reports/benchmarks/<name>.json; `python bench/report.py` collects them into reports/benchmarks.md.
"""

from __future__ import annotations

import atexit
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = ROOT / "reports" / "benchmarks"
TRACKD_DIR = tempfile.mkdtemp(prefix="mlcycle-bench-trackd-")  # stopped and removed at exit


def env(**extra: str) -> dict[str, str]:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    e.update(DVC_NO_ANALYTICS="1", MPLBACKEND="Agg", GIT_AUTHOR_NAME="mlcycle bench",
             GIT_AUTHOR_EMAIL="bench@mlcycle.invalid", GIT_COMMITTER_NAME="mlcycle bench",
             GIT_COMMITTER_EMAIL="bench@mlcycle.invalid", PYTHONPATH="")
    for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLCYCLE_ROOT"):
        e.pop(k, None)
    e["MLCYCLE_TRACKD_DIR"] = TRACKD_DIR  # the benchmarks' own warm tracking daemons
    e.update(extra)
    return e


def workspace(dest: Path, params: dict | None = None) -> Path:
    """A fresh copy of the workspace (as a clone has it) with a git commit; params edits merged in."""
    if dest.exists():
        shutil.rmtree(dest)
    from mlcycle.core.paths import copy_workspace

    copy_workspace(ROOT, dest)
    if params:
        edit_params(dest, params)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "bench workspace"]):
        subprocess.run(cmd, cwd=dest, env=env(), check=True, capture_output=True)
    return dest


def edit_params(ws: Path, changes: dict) -> None:
    def merge(a, b):
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out

    p = ws / "params.yaml"
    p.write_text(yaml.safe_dump(merge(yaml.safe_load(p.read_text()), changes), sort_keys=False))


def measure(cmd: list[str] | str, cwd: Path, extra_env: dict | None = None, timeout: float = 7200,
            tracked: bool = False) -> dict:
    """Run a command; wall seconds and the peak of the summed RSS of its whole process tree
    (sampled every 50 ms, so concurrent processes such as a runner and its kernel count together).
    tracked: the command's stages are tracked by the warm tracking daemon, whose memory counts too."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env(**(extra_env or {})), shell=isinstance(cmd, str),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    done = threading.Event()

    def sample():
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                procs = {p.pid: p for p in (root, *root.children(recursive=True), *(tracking_daemons() if tracked else ()))}
                total = 0
                for p in procs.values():
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak = max(peak, total)
            except psutil.Error:
                pass
            done.wait(0.05)

    t0 = time.perf_counter()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate(timeout=timeout)
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} exited {proc.returncode} in {cwd}:\n{out[-3000:]}")
    return {"seconds": seconds, "peak_mb": peak / 2**20, "output": out}


def tracking_daemons() -> list:
    """The warm tracking daemon and the stage tracking processes it forked (mlcycle.trackd): they
    work for the measured command although they are not its children, so their memory counts."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info.get("cmdline") or []
        if "mlcycle.runtime.trackd" in cmd and "serve" in cmd:
            out.append(p)
    return out


def wait_for_tracking_daemon(cwd: Path, seconds: float = 120) -> bool:
    """Wait until the daemon a first stage started is listening (as it is for a user's next stage)."""
    code = "from mlcycle.runtime import trackd; c = trackd.connect(); raise SystemExit(c is None)"
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if subprocess.run([str(BIN / "python"), "-c", code], cwd=cwd, env=env()).returncode == 0:
            return True
        time.sleep(0.5)
    return False


def stop_tracking_daemons() -> None:
    subprocess.run([str(BIN / "python"), "-m", "mlcycle.runtime.trackd", "stop", "--all"], env=env(), capture_output=True)


@atexit.register
def _cleanup() -> None:
    stop_tracking_daemons()
    shutil.rmtree(TRACKD_DIR, ignore_errors=True)


def summarise(samples: list[dict]) -> dict:
    return {
        "runs": len(samples),
        "median_seconds": round(statistics.median(s["seconds"] for s in samples), 3),
        "min_seconds": round(min(s["seconds"] for s in samples), 3),
        "max_seconds": round(max(s["seconds"] for s in samples), 3),
        "median_peak_mb": round(statistics.median(s["peak_mb"] for s in samples), 1),
    }


def machine() -> str:
    mem = psutil.virtual_memory().total / 2**30
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GB RAM, "
            f"Python {platform.python_version()}, load average at start {load:.2f}")


def save(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {"name": name, "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), **result}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def repeats(default: int) -> int:
    return int(os.environ.get("BENCH_REPEATS", default))


def wait_for(url: str, proc: subprocess.Popen, out: Path, timeout: float = 180) -> None:
    """Until `url` answers 200; the server's output (`out`) in the error when it exits or times out."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"server did not start:\n{out.read_text()[-3000:]}")
        time.sleep(0.5)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL when it does not end within a minute."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def serve(tmp: Path, workers: int, log_dir: Path, flags: list[str], server_env: dict | None = None,
          ) -> tuple[subprocess.Popen, str]:
    """`mlcycle serving start` on a free port with `workers` workers, its prediction log in `log_dir` and
    `flags`; (process, base URL) once /ready answers. Its output goes to tmp/serve-<port>.out."""
    from mlcycle.lifecycle.experiments import free_port

    port = free_port()
    out = tmp / f"serve-{port}.out"
    cmd = [sys.executable, "-m", "mlcycle", "serving", "start", "--port", str(port), "--workers", str(workers),
           "--log-dir", str(log_dir), "--log-level", "warning", *flags]
    with out.open("wb") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=server_env or env(), stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/ready", proc, out)
    return proc, url


def load(url: str, body: Path, clients: int, seconds: float) -> dict:
    """bench_serve.py's load generator, in a process of its own, against `url` with the JSON `body`:
    {requests, errors, seconds, rps, p50_ms, p99_ms}."""
    cmd = [sys.executable, str(ROOT / "bench" / "bench_serve.py"), "load", "--url", url, "--body", str(body),
           "--clients", str(clients), "--seconds", str(seconds)]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
