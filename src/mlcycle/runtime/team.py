"""A local team stack: PostgreSQL, an S3-compatible endpoint and `mlflow server` on 127.0.0.1.

`mlcycle team up` starts, in this order and each on a free port:

- PostgreSQL (Debian's `postgresql` package: `initdb` / `pg_ctl` from /usr/lib/postgresql/<ver>/bin
  or PATH), its data folder under `.team/pg`. PostgreSQL refuses to run as root: when the caller
  is root, the server runs as the unprivileged `postgres` user (`runuser`), which owns the folder
  (when `postgres` cannot reach the workspace, the folder is a private one in the temp folder, named
  in `.team/state.json`). Local socket connections are trusted, TCP ones need the password.
- moto's S3 server (`moto_server`), with one bucket. moto keeps objects in memory: `mlcycle team
  down` copies every object to `.team/s3/` (files 0600 in 0700 folders) before it stops the
  endpoint, and `team up` loads them back, so artifacts and the DVC remote live as long as the PostgreSQL data does. A crash of the
  endpoint loses what was stored since the last `up` (a real S3 service keeps everything).
- `mlflow server --backend-store-uri postgresql+psycopg://... --artifacts-destination s3://...
  --serve-artifacts`, after `mlflow db upgrade`. Clients reach artifacts through the server.
  When only the server died, `team up` starts it again on the same port (clients keep their URI).

It writes `.team/env` (shell and Makefile syntax: the Makefile includes it, so `make repro` uses the
stack while it is up) and the DVC remote `team` into `.dvc/config.local`. The database password is
$MLCYCLE_TEAM_PG_PASSWORD, else one generated into `.team/pg.password` (0600); it is passed to the
server in its environment, never on a command line, in params.yaml or in a log.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from mlcycle.core import private
from mlcycle.core.errors import TeamError
from mlcycle.lifecycle.experiments import free_port

TEAM_DIR = ".team"
BUCKET = "mlcycle"
PG_USER = "mlcycle"  # the database role the tracking server uses
PG_DB = "mlflow"
RUN_AS = "postgres"  # the unprivileged system user PostgreSQL runs as when the caller is root
REMOTE = "team"  # the DVC remote's name
# boto3 >= 1.36 computes and checks CRC checksums that S3-compatible servers may not support
S3_ENV = {"AWS_REQUEST_CHECKSUM_CALCULATION": "when_required", "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required"}


def team_dir(root: Path) -> Path:
    return Path(root) / TEAM_DIR


def state_file(root: Path) -> Path:
    return team_dir(root) / "state.json"


def env_file(root: Path) -> Path:
    return team_dir(root) / "env"


def pg_bin(tool: str) -> str:
    """A PostgreSQL tool: Debian's /usr/lib/postgresql/<newest>/bin (not on PATH), else PATH."""
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
                    reverse=True):
        if (d / tool).exists():
            return str(d / tool)
    found = shutil.which(tool)
    if found:
        return found
    raise TeamError(f"team: PostgreSQL's `{tool}` is not installed; install it (Debian: `apt-get install postgresql`)")


def as_root() -> bool:
    return os.geteuid() == 0


def pg_cmd(cmd: list[str]) -> list[str]:
    """`cmd` as the unprivileged user when the caller is root (PostgreSQL refuses to run as root)."""
    return ["runuser", "-u", RUN_AS, "--", *cmd] if as_root() else cmd


def sh(cmd: list[str], what: str, env: dict | None = None, timeout: float = 120) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise TeamError(f"team: {what} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc.stdout


def chown_to_runner(path: Path) -> None:
    if as_root():
        import pwd

        pw = pwd.getpwnam(RUN_AS)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def runner_can_reach(path: Path) -> bool:
    if not as_root():
        return True
    return subprocess.run(["runuser", "-u", RUN_AS, "--", "test", "-x", str(path)], capture_output=True).returncode == 0


def pg_data_dir(root: Path) -> Path:
    """Where PostgreSQL keeps its data: `.team/pg`, unless the unprivileged user cannot reach it."""
    d = team_dir(root)
    if runner_can_reach(d):
        return d / "pg"
    import hashlib

    name = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"mlcycle-team-pg-{name}"


def password(root: Path) -> str:
    """$MLCYCLE_TEAM_PG_PASSWORD, else the stack's generated one (kept 0600 in `.team`)."""
    if os.environ.get("MLCYCLE_TEAM_PG_PASSWORD"):
        return os.environ["MLCYCLE_TEAM_PG_PASSWORD"]
    f = team_dir(root) / "pg.password"
    if not f.exists():
        f.touch(mode=0o600)
        f.write_text(secrets.token_urlsafe(18))
    return f.read_text().strip()


def wait_http(url: str, proc: subprocess.Popen | None, what: str, log: Path, timeout: float = 600) -> None:
    """Wait for `url` to answer: at once an error when `proc` exits; while it runs, `timeout`
    seconds (a loaded machine can take minutes to start a server), a bound against a hang."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise TeamError(f"team: {what} exited with code {proc.returncode} before it answered; see {log}") from None
            if time.monotonic() > deadline:
                raise TeamError(f"team: {what} did not answer {url} within {timeout:.0f} s; see {log}") from None
            time.sleep(0.3)


def start_postgres(root: Path, state: dict) -> None:
    data = pg_data_dir(root)
    private.mkdir(data)
    chown_to_runner(data)
    pw = password(root)
    if not (data / "PG_VERSION").exists():
        fd, name = tempfile.mkstemp(prefix="mlcycle-pw-")
        pwfile = Path(name)
        os.write(fd, pw.encode())
        os.close(fd)
        chown_to_runner(pwfile)
        try:
            sh(pg_cmd([pg_bin("initdb"), "-D", str(data), "-U", PG_USER, "--pwfile", str(pwfile), "-E", "UTF8",
                       "--auth-local=trust", "--auth-host=scram-sha-256"]), "initdb")
        finally:
            pwfile.unlink(missing_ok=True)
    port = free_port()
    opts = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={data}"
    sh(pg_cmd([pg_bin("pg_ctl"), "-D", str(data), "-l", str(data / "server.log"), "-o", opts, "-w", "-t", "60",
               "start"]), f"PostgreSQL start (see {data / 'server.log'})")
    state["pg"] = {"data": str(data), "port": port}
    exists = sh(pg_cmd([pg_bin("psql"), "-h", str(data), "-p", str(port), "-U", PG_USER,
                        "-d", "postgres", "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{PG_DB}'"]), "psql")
    if exists.strip() != "1":
        sh(pg_cmd([pg_bin("createdb"), "-h", str(data), "-p", str(port), "-U", PG_USER, PG_DB]), "createdb")


def s3_env(endpoint: str) -> dict[str, str]:
    """What boto3 (MLflow's artifact store, DVC's s3fs) needs for the stack's S3 endpoint. The local
    endpoint accepts any key: fixed ones, so that no real AWS credential of the caller's
    environment is ever written to `.team/env` or sent to it."""
    return {"MLFLOW_S3_ENDPOINT_URL": endpoint, **S3_ENV, "AWS_ACCESS_KEY_ID": "mlcycle-local",
            "AWS_SECRET_ACCESS_KEY": "mlcycle-local", "AWS_DEFAULT_REGION": "us-east-1"}


def start_s3(root: Path, state: dict) -> None:
    port = free_port()
    log = team_dir(root) / "s3.log"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    state["s3"] = {"pid": proc.pid, "port": port, "endpoint": endpoint, "bucket": BUCKET}
    wait_http(f"{endpoint}/moto-api/", proc, "the S3 endpoint (moto_server)", log)
    s3_client(endpoint).create_bucket(Bucket=BUCKET)


def s3_client(endpoint: str):
    """A boto3 S3 client on the stack's endpoint (checksums only when required, as in S3_ENV)."""
    import boto3
    from botocore.config import Config

    e = s3_env(endpoint)
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=e["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=e["AWS_SECRET_ACCESS_KEY"], region_name=e["AWS_DEFAULT_REGION"],
                        config=Config(request_checksum_calculation="when_required",
                                      response_checksum_validation="when_required"))


def saved_bucket(root: Path) -> Path:
    return team_dir(root) / "s3"


def object_file(folder: Path, key: str) -> Path:
    parts = key.split("/")
    if key.startswith("/") or any(p in ("", ".", "..") for p in parts[:-1]) or parts[-1] in (".", ".."):
        raise TeamError(f"team: S3 object key {key!r} cannot be saved as a file; copy the bucket with an S3 tool")
    return folder / "objects" / key


def save_bucket(root: Path, state: dict) -> int:
    """Copy every object of the stack's bucket to `.team/s3/` (replacing the earlier copy only once
    the new one is complete); the number of objects."""
    from concurrent.futures import ThreadPoolExecutor

    c = s3_client(state["s3"]["endpoint"])
    keys = [o["Key"] for page in c.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for o in page.get("Contents", [])]
    new = team_dir(root) / "s3.saving"
    shutil.rmtree(new, ignore_errors=True)
    private.mkdir(new, exist_ok=False)  # the objects are the workspace's artifacts and data: the owner's only
    private.mkdir(new / "objects", exist_ok=False)

    def get(key: str) -> None:
        if key.endswith("/"):  # a folder marker: kept in keys.json only
            return
        dest = object_file(new, key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        c.download_file(BUCKET, key, str(dest))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(get, keys))
    (new / "keys.json").write_text(json.dumps(keys))
    private.owner_only(new)
    final, old = saved_bucket(root), team_dir(root) / "s3.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    new.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return len(keys)


def load_bucket(root: Path, state: dict) -> int:
    """Put the objects `save_bucket` copied back into the (new, empty) bucket; the number of objects."""
    from concurrent.futures import ThreadPoolExecutor

    folder = saved_bucket(root)
    if not (folder / "keys.json").exists():
        return 0
    keys = json.loads((folder / "keys.json").read_text())
    c = s3_client(state["s3"]["endpoint"])

    def put(key: str) -> None:
        if key.endswith("/"):
            c.put_object(Bucket=BUCKET, Key=key, Body=b"")
        else:
            c.upload_file(str(object_file(folder, key)), BUCKET, key)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, keys))
    return len(keys)


def start_mlflow(root: Path, state: dict, port: int | None = None) -> None:
    """Start `mlflow server` (on `port`: a restart keeps the address clients know; then the schema is current)."""
    upgrade = port is None
    port = port or free_port()
    log = team_dir(root) / "mlflow.log"
    db = f"postgresql+psycopg://{PG_USER}:{password(root)}@127.0.0.1:{state['pg']['port']}/{PG_DB}"
    e = {**os.environ, **s3_env(state["s3"]["endpoint"]), "MLFLOW_BACKEND_STORE_URI": db}
    e.pop("MLFLOW_TRACKING_URI", None)
    mlflow_bin = str(Path(sys.executable).parent / "mlflow")
    # the URI goes through the environment (`mlflow db upgrade` takes it as an argument: a short-lived
    # process of this user; the long-running server reads MLFLOW_BACKEND_STORE_URI)
    if upgrade:
        sh([mlflow_bin, "db", "upgrade", db], "mlflow db upgrade", env=e, timeout=300)
    proc = subprocess.Popen(
        [mlflow_bin, "server", "--app-name", "mlcycle", "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
         "--artifacts-destination", f"s3://{BUCKET}/mlflow", "--serve-artifacts"],
        env=e, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    state["mlflow"] = {"pid": proc.pid, "port": port, "url": url}
    wait_http(f"{url}/health", proc, "mlflow server", log)


def exports(state: dict) -> dict[str, str]:
    """The variables a shell (and the Makefile) needs to use the stack."""
    return {"MLFLOW_TRACKING_URI": state["mlflow"]["url"], **s3_env(state["s3"]["endpoint"])}


def write_env(root: Path, state: dict) -> Path:
    f = env_file(root)
    f.touch(mode=0o600)
    lines = ["# written by `mlcycle team up`, removed by `mlcycle team down`; `source` it in a shell",
             *(f"export {k}={v}" for k, v in exports(state).items())]
    f.write_text("\n".join(lines) + "\n")
    return f


def dvc_bin() -> str:
    """This interpreter's `dvc` (the workspace's .venv), else the one on PATH."""
    own = Path(sys.executable).parent / "dvc"
    return str(own) if own.exists() else "dvc"


def add_dvc_remote(root: Path, state: dict) -> None:
    """The DVC remote `team` on the stack's bucket, in `.dvc/config.local` (the port changes each time)."""
    if not (Path(root) / ".dvc").is_dir():
        return
    url = f"s3://{BUCKET}/dvc"
    for cmd in ([dvc_bin(), "remote", "add", "--local", "--force", "--default", REMOTE, url],
                [dvc_bin(), "remote", "modify", "--local", REMOTE, "endpointurl", state["s3"]["endpoint"]]):
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
        if proc.returncode != 0:
            raise TeamError(f"team: `{' '.join(cmd)}` failed: {proc.stderr.strip()[-400:]}")


def remove_dvc_remote(root: Path) -> None:
    if (Path(root) / ".dvc").is_dir():
        subprocess.run([dvc_bin(), "remote", "remove", "--local", REMOTE], cwd=root, capture_output=True)


def read_state(root: Path) -> dict | None:
    f = state_file(root)
    return json.loads(f.read_text()) if f.exists() else None


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie child of this process counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def up(root: Path) -> dict:
    """Start the stack (an error if it runs already); returns its state (ports, pids, URLs)."""
    root = Path(root).resolve()
    current = read_state(root)
    services = status(root)["services"] if current else {}
    if current and all(v == "up" for v in services.values()):
        raise TeamError(f"team: the stack runs already ({current['mlflow']['url']}); `mlcycle team down` first")
    if current and services.get("postgresql") == "up" and services.get("s3") == "up" and "mlflow" in current:
        # only the tracking server died: start it again on its port, so every client's URI stays valid
        stop_pid(current["mlflow"].get("pid"))
        start_mlflow(root, current, port=current["mlflow"]["port"])
        state_file(root).write_text(json.dumps(current, indent=1))
        return current
    if current:  # a stack that half died: stop what is left of it first
        down(root)
    d = team_dir(root)
    d.mkdir(exist_ok=True)
    d.chmod(0o711)  # PostgreSQL's user passes through to .team/pg (0700, its own); files here are 0600
    (d / ".gitignore").write_text("*\n")
    state: dict = {"root": str(root)}
    try:
        start_postgres(root, state)
        start_s3(root, state)
        state["s3"]["loaded"] = load_bucket(root, state)  # what the last `team down` saved
        start_mlflow(root, state)
    except BaseException:
        state_file(root).write_text(json.dumps(state, indent=1))
        down(root)
        raise
    state_file(root).write_text(json.dumps(state, indent=1))
    write_env(root, state)
    add_dvc_remote(root, state)
    return state


def stop_pid(pid: int | None, timeout: float = 30) -> None:
    if not alive(pid):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while (alive(pid) or group_alive(pid)) and time.monotonic() < deadline:  # the server's workers too
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.2)
    if alive(pid) or group_alive(pid):
        os.killpg(pid, signal.SIGKILL)


def group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process of process group `pgid` is left."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def down(root: Path) -> bool:
    """Stop what `up` started (MLflow, then S3, then PostgreSQL); False when nothing was recorded."""
    root = Path(root).resolve()
    state = read_state(root)
    if state is None:
        return False
    stop_pid(state.get("mlflow", {}).get("pid"))
    s3 = state.get("s3", {})
    # save only a bucket that holds everything: one whose earlier copy was loaded back completely
    if "loaded" in s3 and alive(s3.get("pid")):
        try:
            save_bucket(root, state)
        except Exception as exc:  # keep the endpoint (and what it holds) running rather than lose it
            raise TeamError(f"team: copying the S3 bucket to {saved_bucket(root)} failed ({type(exc).__name__}: "
                            f"{str(exc)[:200]}); the S3 endpoint still runs at {s3['endpoint']}: free disk "
                            "space, then `mlcycle team down` again") from None
    stop_pid(s3.get("pid"))
    pg = state.get("pg")
    if pg and (Path(pg["data"]) / "postmaster.pid").exists():
        subprocess.run(pg_cmd([pg_bin("pg_ctl"), "-D", pg["data"], "-m", "fast", "-w", "stop"]), capture_output=True)
    env_file(root).unlink(missing_ok=True)
    state_file(root).unlink(missing_ok=True)
    remove_dvc_remote(root)
    return True


def status(root: Path) -> dict:
    """Which services of the stack run: {"running": bool, "services": {name: "up"/"down"}, "state": ...}."""
    state = read_state(Path(root).resolve())
    if state is None:
        return {"running": False, "services": {}, "state": None}
    services = {}
    pg = state.get("pg")
    pid_file = Path(pg["data"]) / "postmaster.pid" if pg else None
    try:
        services["postgresql"] = "up" if pid_file and alive(int(pid_file.read_text().split()[0])) else "down"
    except (OSError, ValueError, IndexError):
        services["postgresql"] = "down"
    services["s3"] = "up" if alive(state.get("s3", {}).get("pid")) else "down"
    try:
        urllib.request.urlopen(f"{state['mlflow']['url']}/health", timeout=3)
        services["mlflow"] = "up"
    except (OSError, KeyError):
        services["mlflow"] = "down"
    return {"running": all(v == "up" for v in services.values()), "services": services, "state": state}


def describe(state: dict, root: Path) -> str:
    """What `team up` prints: the services and the variables to export (no secret among them)."""
    e = exports(state)
    shown = {k: v for k, v in e.items() if k not in ("AWS_SECRET_ACCESS_KEY",)}
    lines = [f"team stack up: PostgreSQL on 127.0.0.1:{state['pg']['port']}, S3 (moto; kept in .team/s3 between down and up) at "
             f"{state['s3']['endpoint']} bucket '{state['s3']['bucket']}', MLflow at {state['mlflow']['url']}",
             f"DVC remote '{REMOTE}' (default, .dvc/config.local): s3://{BUCKET}/dvc",
             f"the Makefile reads {env_file(root).relative_to(root)}; in a shell: source {env_file(root).relative_to(root)}",
             *(f"  {k}={v}" for k, v in shown.items())]
    return "\n".join(lines)
