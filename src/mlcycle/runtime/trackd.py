"""A warm tracking process, so that a stage does not pay for MLflow's imports each time.

Importing mlflow and its SQL store takes about 2.4 s of CPU in every new process: more than a small
stage's own work. The first stage forks its tracking process as usual (`runner.ForkedHooks`) and
also starts this daemon. Later stages connect to it over a Unix socket, and it forks a child that
has mlflow, SQLAlchemy's mappers and DVC already imported. That child runs the same code as a
freshly forked one (`hooks.hooks_child`), with the stage's environment, working folder, stdout
and stderr, so it records exactly the same things. The daemon itself opens no store, connection
or file of any workspace: nothing is shared between stages but imported code.

One daemon serves one interpreter and one version of mlcycle's code (the socket's name hashes
both, with the MLFLOW_* environment). Only its user can reach it: the socket sits in a 0700
folder, and clients prove they can read a 0600 key. It exits after `tracking.daemon_idle_minutes`
without a stage; 0 turns it off (every stage forks a fresh tracking process).

    python -m mlcycle.trackd status | stop      # what is running for this interpreter and code
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from mlcycle.runtime import hooks

ENV_DIR = "MLCYCLE_TRACKD_DIR"  # where sockets, keys and logs live (tests use their own)


PACKAGE = Path(__file__).resolve().parents[1]  # src/mlcycle: the daemon's code key covers all of it


def state_dir() -> Path | None:
    """The daemon's folder, private to this user; None if it cannot be made private."""
    base = os.environ.get(ENV_DIR)
    if base:
        d = Path(base)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        d = Path(os.environ["XDG_RUNTIME_DIR"]) / "mlcycle"
    else:
        d = Path(tempfile.gettempdir()) / f"mlcycle-{os.getuid()}"
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = d.stat()
    except OSError:
        return None
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None  # someone else's folder, or readable by others: do not use it
    return d


def key() -> str:
    """What a daemon must share with its clients: interpreter, mlcycle's code, MLflow settings."""
    package = PACKAGE
    h = hashlib.sha256(f"{sys.executable}\n{package}\n".encode())
    for f in sorted(package.rglob("*")):  # every file of the package, in every layer folder
        if f.suffix in (".py", ".j2"):
            st = f.stat()
            h.update(f"{f.relative_to(package)}:{st.st_mtime_ns}:{st.st_size}\n".encode())
    for k in sorted(k for k in os.environ if k.startswith("MLFLOW_")):
        h.update(f"{k}={os.environ[k]}\n".encode())
    return h.hexdigest()[:16]


def _authkey(d: Path) -> bytes:
    path = d / "authkey"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(32))
    return path.read_bytes()


def connect(sock: Path | None = None):
    """A connection to this code's daemon (or the one at `sock`), or None when there is none or
    it cannot be trusted."""
    from multiprocessing.connection import Client

    d = state_dir()
    if d is None:
        return None
    sock = sock or d / f"{key()}.sock"
    if not sock.exists():
        return None
    try:
        return Client(str(sock), family="AF_UNIX", authkey=_authkey(d))
    except Exception:  # refused (a stale socket), reset, wrong key: fork instead
        return None


def launch(idle_minutes: float) -> None:
    """Start this code's daemon in the background, detached from the stage (no-op if running)."""
    d = state_dir()
    if d is None or idle_minutes <= 0:
        return
    package_parent = str(PACKAGE.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    k = key()
    try:
        with open(d / f"{k}.log", "ab") as log:
            subprocess.Popen([sys.executable, "-m", "mlcycle.runtime.trackd", "serve", "--idle-minutes", str(idle_minutes),
                              "--key", k], cwd="/", env=env, stdin=subprocess.DEVNULL, stdout=log,
                             stderr=log, start_new_session=True, close_fds=True)
    except OSError:  # no daemon: every stage forks its own tracking process, as with 0
        pass


def submit(conn, hooks, run, environ: dict[str, str]) -> None:
    """Hand a stage to the daemon: it forks the child that runs `hooks.hooks_child` on `conn`."""
    import socket
    from multiprocessing.reduction import sendfds

    conn.send(("stage", hooks, run, environ, os.getcwd()))
    with socket.socket(fileno=os.dup(conn.fileno())) as s:
        sendfds(s, [sys.stdout.fileno(), sys.stderr.fileno()])


def warm() -> None:
    """Import what a stage's tracking needs, without opening any store: the daemon's purpose, so
    these imports sit here, run once, and every forked child inherits them."""
    import dvc.repo  # noqa: F401
    import mlflow  # noqa: F401
    import mlflow.sklearn  # noqa: F401
    import mlflow.store.model_registry.sqlalchemy_store  # noqa: F401
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    import sqlalchemy.orm

    from mlcycle.runtime import hooks, tracking  # noqa: F401

    sqlalchemy.orm.configure_mappers()


def serve(idle_minutes: float, expected_key: str) -> int:
    import fcntl
    import socket
    from multiprocessing.connection import Listener
    from multiprocessing.reduction import recvfds

    d = state_dir()
    if d is None or key() != expected_key:
        return 1  # the code changed while starting: the next stage starts the right one
    lock = open(d / f"{expected_key}.lock", "w")  # noqa: SIM115 (held for the daemon's life)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another daemon for this code is running or starting
    warm()
    sock = d / f"{expected_key}.sock"
    sock.unlink(missing_ok=True)  # left by a daemon that was killed
    listener = Listener(str(sock), family="AF_UNIX", authkey=_authkey(d))
    idle = max(1, int(idle_minutes * 60))

    def leave(*_):
        sock.unlink(missing_ok=True)
        os._exit(0)

    signal.signal(signal.SIGALRM, leave)
    signal.signal(signal.SIGTERM, leave)
    print(f"mlcycle tracking daemon {os.getpid()} serves {sock} (idle exit after {idle} s)", flush=True)
    while True:
        signal.alarm(idle)
        try:
            conn = listener.accept()
        except Exception:  # a client that failed authentication, or went away
            continue
        finally:
            _reap()
        signal.alarm(0)
        try:
            msg = conn.recv()
            if msg == "stop":
                conn.send("stopping")
                leave()
            if msg == "status":
                conn.send({"pid": os.getpid(), "socket": str(sock), "idle_seconds": idle})
                conn.close()
                continue
            _, stage_hooks, run, environ, cwd = msg
            with socket.socket(fileno=os.dup(conn.fileno())) as s:
                fds = recvfds(s, 2)
        except Exception as exc:
            print(f"a client sent something else: {type(exc).__name__}: {exc}", flush=True)
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:  # the stage's tracking process
            signal.alarm(0)
            lock.close()  # the daemon alone holds its lock
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.setsid()
            code = 0
            try:
                os.dup2(fds[0], 1)
                os.dup2(fds[1], 2)
                os.environ.clear()
                os.environ.update(environ)
                os.chdir(cwd)

                hooks.hooks_child(stage_hooks, run, conn)
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        conn.close()
        for fd in fds:
            os.close(fd)


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _ask(message: str, sock: Path | None = None):
    conn = connect(sock)
    if conn is None:
        return None
    with conn:
        conn.send(message)
        try:
            return conn.recv()
        except EOFError:
            return None


def stop_all() -> int:
    """Stop every daemon in this user's folder (any interpreter or code version); how many."""
    d = state_dir()
    return sum(_ask("stop", sock) is not None for sock in (d.glob("*.sock") if d else ()))


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m mlcycle.trackd", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="(started by the runner) run the daemon")
    s.add_argument("--idle-minutes", type=float, default=15)
    s.add_argument("--key", required=True)
    sub.add_parser("status", help="the daemon for this interpreter and code, if running")
    st = sub.add_parser("stop", help="stop it")
    st.add_argument("--all", action="store_true", help="stop every daemon of this user")
    args = ap.parse_args(argv)
    if args.command == "serve":
        return serve(args.idle_minutes, args.key)
    if args.command == "stop" and args.all:
        print(f"stopped {stop_all()} tracking daemon(s)")
        return 0
    answer = _ask(args.command)
    if answer is None:
        print("no tracking daemon is running for this interpreter and code")
        return 0 if args.command == "stop" else 1
    print(answer if args.command == "status" else "stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
