"""The one runner every notebook stage goes through (`dvc repro`, tests and `mlcycle run` alike).

In one process it checks params.yaml, executes the stage's notebook with papermill in the
workspace's own Python, strips run timestamps from the executed notebook, and renders it to HTML
(code hidden unless `report.show_code`). Hooks see each execution start and end, so tracking can
record every stage run without the notebooks knowing about it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mlcycle.core import environment, record
from mlcycle.core.errors import RecordingError, StageError
from mlcycle.core.paths import NOTEBOOK_FILES, Paths
from mlcycle.core.workspace import Workspace
from mlcycle.runtime import hooks as hooks_mod
from mlcycle.runtime import kernel, trackd
from mlcycle.runtime.hooks import Hook, StageRun
from mlcycle.runtime.tracking import TrackingHook, pipeline_key

PARAMETERS = frozenset({"params_file", "write"})  # what the runner injects; every notebook's parameters cell declares these
STAGE_PARAMETERS = {"monitor": frozenset({"current", "days", "model_uri"})}  # and these, for operations stages
KERNEL = "python3"


def kernel_env(root: Path) -> dict[str, str]:
    """Environment for the kernel: this interpreter's folder first on PATH (so the `python3` kernel
    is the workspace's Python, also inside `dvc exp` temp copies), the stage's own src importable,
    a non-interactive plotting backend, and no MLflow download bar (in a kernel it imports
    tqdm.auto, whose widget warning would land in the stage's report)."""
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join(p for p in [str(root / "src"), os.environ.get("PYTHONPATH", "")] if p),
        "MPLBACKEND": "Agg",
        "MLCYCLE_ROOT": str(root),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"),
        "MLFLOW_CONFIGURE_LOGGING": "false",  # MLflow's records reach the root logger, hence the stage log
    }
    return env


def kernel_arguments() -> list[str]:
    """The kernel's start-up: library warnings and log records go to the stage's log file
    ($MLCYCLE_STAGE_LOG), not into its report (`runtime/kernel.py`)."""
    return ["--IPKernelApp.exec_lines=import mlcycle.runtime.kernel as _k; _k.setup(); del _k"]


def kernel_manager_class(folder: Path):
    """The kernel manager papermill starts a stage's kernel with: on POSIX systems the kernel talks
    over Unix sockets in `folder` (a private temporary folder), so no TCP port is opened that another
    local user could reach or read (ipykernel warns about unencrypted TCP); elsewhere jupyter_client's
    own (TCP on localhost)."""
    from jupyter_client.manager import AsyncKernelManager

    if os.name != "posix":
        return AsyncKernelManager
    from traitlets import default

    class StageKernelManager(AsyncKernelManager):
        @default("transport")
        def _transport_default(self) -> str:
            return "ipc"

        @default("ip")
        def _ip_default(self) -> str:
            return str(folder / "kernel")

    return StageKernelManager


# The kernel sends what a cell prints in pieces, as its output buffer is flushed (every 0.2 s and
# when a display is shown); a cell's prints would become one output or several depending on the
# machine's load, and the executed notebook and its report would differ byte for byte from run to
# run. Merged, a cell holds one output per stream, stdout before stderr.
EXECUTE_OPTIONS = {"coalesce_streams": True}


def check_notebook(nb_path: Path, expected: set[str] | frozenset[str] = PARAMETERS) -> None:
    """The notebook must exist and declare exactly the parameters the runner injects."""
    import papermill

    if not nb_path.exists():
        raise StageError(f"notebook {nb_path.name} not found under notebooks/")
    try:
        declared = set(papermill.inspect_notebook(str(nb_path)))
    except ValueError as exc:  # e.g. no kernelspec in the notebook's metadata
        raise StageError(f"{nb_path.name}: {exc}") from None
    if declared != set(expected):
        raise StageError(
            f"{nb_path.name}: the cell tagged 'parameters' declares {sorted(declared) or 'nothing'}; "
            f"it must declare exactly {sorted(expected)}"
        )


def strip_timestamps(nb) -> None:
    """Remove what changes from run to run although results do not (times, durations, random ids)."""
    nb.metadata.get("papermill", {}).pop("start_time", None)
    nb.metadata.get("papermill", {}).pop("end_time", None)
    nb.metadata.get("papermill", {}).pop("duration", None)
    for key in ("input_path", "output_path"):
        nb.metadata.get("papermill", {}).pop(key, None)
    for cell in nb.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"  # papermill gives it a random id each run
        cell.metadata.pop("execution", None)
        pm = cell.metadata.get("papermill")
        if pm:
            for k in ("start_time", "end_time", "duration"):
                pm.pop(k, None)


def skip_unused_imports() -> None:
    """Keep jsonschema from building the IRI grammars of `rfc3987_syntax` at import.

    nbformat imports jsonschema, whose format checkers import `rfc3987_syntax` when it is installed
    (a Jupyter dependency) and compile 39 lark grammars: 2-3 s per process, for IRI formats that
    notebook schemas never use. Marking the module absent makes jsonschema skip those two checkers.
    """
    sys.modules.setdefault("rfc3987_syntax", None)


def html_exporter(show_code: bool):
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from traitlets.config import Config

    c = Config()
    c.TagRemovePreprocessor.remove_cell_tags = () if show_code else ("injected-parameters", "parameters")
    c.TagRemovePreprocessor.enabled = True
    # the lab template without its CDN scripts (src/mlcycle/templates/stage_report.html.j2)
    templates = str(Path(__file__).resolve().parents[1] / "templates")
    exporter = HTMLExporter(config=c, template_name="lab", extra_template_paths=[templates],
                            template_file="stage_report.html.j2")
    exporter.register_preprocessor(TagRemovePreprocessor(config=c), enabled=True)
    exporter.exclude_input = not show_code
    exporter.exclude_input_prompt = not show_code
    exporter.exclude_output_prompt = True
    return exporter


def render_html(nb, html_path: Path, show_code: bool, title: str, exporter=None, env_differs: str = "") -> None:
    """env_differs: what differs from requirements.lock (`core/environment.py`), shown as a warning
    at the top; empty when the packages are the locked ones, and the report then says nothing of it."""
    exporter = exporter or html_exporter(show_code)
    resources = {"metadata": {"name": title}}
    if env_differs:
        resources["mlcycle_environment"] = env_differs
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(body, encoding="utf-8")


def run_stage(stage: str, root: str | Path | None = None, params_file: str = "params.yaml",
              hooks: tuple[Hook, ...] | None = None, parameters: dict | None = None) -> StageRun:
    """Execute one notebook stage; raise StageError (after rendering what ran) if it fails.

    parameters: values for the notebook's parameters cell beyond `params_file` (the monitor stage
    takes its current data this way); pipeline stages take everything from the params file.

    hooks: None means the default ones (MLflow tracking when `tracking.enabled`).

    While the kernel runs the notebook (in its own process), the hooks start elsewhere: the default
    tracking hook in a forked process (`ForkedHooks`: it imports mlflow, opens the store, hashes
    the inputs on the other core), hooks given by the caller in a helper thread. The thread also
    prepares the HTML exporter. That fixed cost overlaps the stage's own work instead of adding to it."""
    skip_unused_imports()

    if stage not in NOTEBOOK_FILES:
        raise StageError(f"unknown stage '{stage}'; notebook stages are: {', '.join(NOTEBOOK_FILES)}")
    t0 = time.perf_counter()
    ws = Workspace.open(params_file, root)  # params checked: fails fast, before any kernel starts
    paths, params = ws.paths, ws.params
    run = StageRun(stage, paths.root, params, paths.notebook(stage, params.task), paths.executed_notebook(stage),
                   paths.report_html(stage))
    try:
        return _run(run, params_file, hooks, parameters, t0)
    finally:
        if run.record is not None:
            run.record.unlink(missing_ok=True)


def _run(run: StageRun, params_file: str, hooks, parameters: dict | None, t0: float) -> StageRun:
    stage, params, paths = run.stage, run.params, Paths(run.root)
    fd, name = tempfile.mkstemp(prefix=f"mlcycle-{stage}-", suffix=".record.jsonl")
    os.close(fd)
    run.record = Path(name)
    if hooks is None:

        hooks = (TrackingHook(),) if params.tracking.enabled else ()
        if hooks and sys.platform.startswith("linux"):
            hooks = (ForkedHooks(hooks),)
    forked = len(hooks) == 1 and isinstance(hooks[0], ForkedHooks)
    if forked:  # fork first, before any thread or kernel exists: the child prepares (imports mlflow,
        hooks[0].start(run)  # opens the store) while the checks below run, and records nothing yet
    try:
        extra = STAGE_PARAMETERS.get(stage, frozenset())
        unknown = sorted(set(parameters or {}) - extra)
        if unknown:
            raise StageError(f"stage '{stage}' takes no parameters {unknown}; it takes {sorted(extra) or 'none besides params_file'}")
        check_notebook(run.notebook, PARAMETERS | extra)
    except BaseException:
        if forked:
            hooks[0].abort()  # the stage never ran: no tracking run for it
        raise
    if forked:
        hooks[0].go()
    import nbformat

    run.seconds["check"] = time.perf_counter() - t0
    background = ThreadPoolExecutor(1, thread_name_prefix="mlcycle-stage")
    started = None if forked else background.submit(hooks_mod.start_hooks, hooks, run)
    exporter = background.submit(html_exporter, params.report.show_code)
    env_status = background.submit(environment.status, paths.root)  # the packages against requirements.lock

    import papermill
    from papermill.exceptions import PapermillExecutionError

    run.executed.parent.mkdir(parents=True, exist_ok=True)
    log = paths.stage_log(stage)
    log.unlink(missing_ok=True)  # this run's, not the last one's too
    env = {**kernel_env(paths.root), record.ENV: str(run.record), kernel.ENV: str(log)}
    saved_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    t1 = time.perf_counter()
    failure: BaseException | None = None
    sockets = Path(tempfile.mkdtemp(prefix="mlcycle-kernel-"))  # short: a Unix socket path has ~100 characters at most
    try:
        nb = papermill.execute_notebook(
            str(run.notebook), str(run.executed), parameters={"params_file": params_file, "write": True, **(parameters or {})},
            kernel_name=KERNEL, cwd=str(paths.root), progress_bar=False, log_output=False,
            request_save_on_cell_execute=False, autosave_cell_every=0, shutdown_kernel="immediate",
            kernel_manager_class=kernel_manager_class(sockets), extra_arguments=kernel_arguments(),
            **EXECUTE_OPTIONS,
        )
    except PapermillExecutionError as exc:
        failure = exc
        nb = nbformat.read(str(run.executed), as_version=4)
        run.error = f"{exc.ename}: {exc.evalue}"
    except BaseException as exc:  # kernel died, interrupted...
        failure = exc
        nb = None
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    run.seconds["execute"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    if nb is not None:
        strip_timestamps(nb)
        nbformat.write(nb, str(run.executed))
        locked = env_status.result()
        render_html(nb, run.html, params.report.show_code, f"mlcycle: {stage}", exporter.result(),
                    env_differs=locked.summary() if locked.matches is False else "")
    run.seconds["render"] = time.perf_counter() - t2
    start_error = hooks[0].wait_started(run) if forked else started.result()
    background.shutdown()
    if start_error is not None:
        raise StageError(
            f"stage '{stage}': tracking could not start ({start_error}); "
            "check MLFLOW_TRACKING_URI / tracking.uri, or set tracking.enabled: false"
        ) from None
    run.status = "FAILED" if failure else "FINISHED"
    unrecorded = hooks_mod.end_hooks(hooks, run)
    if failure is not None:  # the stage's own failure comes first; a recording failure is said beside it
        also = f"\n  and recording it failed: {unrecorded}" if unrecorded else ""
        raise StageError(
            f"stage '{stage}' failed: {run.error}\n  see {run.html.relative_to(paths.root)}{also}"
            if run.html.exists() else f"stage '{stage}' failed: {run.error}{also}"
        ) from None
    if unrecorded:  # the notebook ran, but its run, model or lineage is not (all) in the store: not done
        raise StageError(f"stage '{stage}' ran, but {unrecorded}") from None
    return run


class ForkedHooks:
    """Runs hooks in another process, so their imports and I/O (mlflow, DVC hashing, git) use the
    other core while the kernel executes the notebook, instead of adding to the stage's time.

    That process is forked from the warm tracking daemon when one runs (`mlcycle.trackd`: mlflow
    is imported already), else from this one (and the daemon is started for the next stages).
    It prepares the hooks at once, starts them on `go`, then waits for the runner to send the
    stage's outcome and ends them. If the runner dies first, it records the stage as FAILED rather
    than leave it RUNNING.
    """

    def __init__(self, hooks):
        self.hooks = hooks
        self.proc = None

    def start(self, run: StageRun) -> None:
        """Hand the hooks to the daemon, or fork; they wait for `go` (or `abort`) before starting."""

        idle = run.params.tracking.daemon_idle_minutes
        conn = trackd.connect() if idle > 0 else None
        if conn is not None:

            environ = {**os.environ, "MLCYCLE_TRACKING_PROCESS": "warm"}
            key = pipeline_key()  # the DVC process is this runner's ancestor, not the daemon's child's
            if key:
                environ["MLCYCLE_PIPELINE_KEY"] = key
            try:
                trackd.submit(conn, self.hooks, run, environ)
                self.conn = conn
                return
            except Exception:  # the daemon went away meanwhile: fork instead
                conn.close()
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=hooks_mod.hooks_child, args=(self.hooks, run, child), name="mlcycle-tracking")
        self.proc.start()
        child.close()
        trackd.launch(idle)

    def go(self) -> None:
        try:
            self.conn.send("go")
        except OSError:  # the tracking process is gone: wait_started says so after the stage
            pass

    def abort(self) -> None:
        try:
            self.conn.send("abort")
        except OSError:
            pass
        self._join()

    def wait_started(self, run: StageRun) -> str | None:
        try:
            error, run.tracking_run_id = self.conn.recv()
        except (EOFError, OSError):
            error = f"the tracking process ended unexpectedly{self._code()}"
        if error is not None:
            self._join()
        return error

    def end(self, run: StageRun) -> None:
        """Send the outcome; raise RecordingError when the hooks could not record the stage."""
        try:
            self.conn.send((run.status, run.error, run.seconds))
            _, failed = self.conn.recv()
        except (EOFError, OSError):
            failed = f"the tracking process ended unexpectedly{self._code()}"
        self._join()
        if failed:
            raise RecordingError(failed)

    def _join(self) -> None:
        if self.proc is not None:
            self.proc.join()
        self.conn.close()

    def _code(self) -> str:
        if self.proc is None:
            return ""
        self.proc.join(5)
        return f" (exit code {self.proc.exitcode})"
