"""The one runner every notebook stage goes through (`dvc repro`, tests and `mlcycle run` alike).

In one process it checks params.yaml, executes the stage's notebook with papermill in the
workspace's own Python, strips run timestamps from the executed notebook, and renders it to HTML
(code hidden unless `report.show_code`). Hooks see each execution start and end, so tracking can
record every stage run without the notebooks knowing about it.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mlcycle import config
from mlcycle.errors import StageError
from mlcycle.paths import NOTEBOOKS, Paths

PARAMETERS = {"params_file"}  # what the runner injects; every notebook's parameters cell declares exactly this
KERNEL = "python3"


@dataclass
class StageRun:
    stage: str
    root: Path
    params: config.Params
    notebook: Path
    executed: Path
    html: Path
    status: str = "RUNNING"  # RUNNING | FINISHED | FAILED
    tracking_run_id: str | None = None
    error: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)


class Hook(Protocol):
    def start(self, run: StageRun) -> None: ...
    def end(self, run: StageRun) -> None: ...


def kernel_env(root: Path) -> dict[str, str]:
    """Environment for the kernel: this interpreter's folder first on PATH (so the `python3` kernel
    is the workspace's Python, also inside `dvc exp` temp copies), the stage's own src importable,
    and a non-interactive plotting backend."""
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join(p for p in [str(root / "src"), os.environ.get("PYTHONPATH", "")] if p),
        "MPLBACKEND": "Agg",
        "MLCYCLE_ROOT": str(root),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    return env


def check_notebook(nb_path: Path) -> None:
    """The notebook must exist and declare exactly the parameters the runner injects."""
    import papermill

    if not nb_path.exists():
        raise StageError(f"notebook {nb_path.name} not found under notebooks/")
    try:
        declared = set(papermill.inspect_notebook(str(nb_path)))
    except ValueError as exc:  # e.g. no kernelspec in the notebook's metadata
        raise StageError(f"{nb_path.name}: {exc}") from None
    if declared != PARAMETERS:
        raise StageError(
            f"{nb_path.name}: the cell tagged 'parameters' declares {sorted(declared) or 'nothing'}; "
            f"it must declare exactly {sorted(PARAMETERS)}"
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


def render_html(nb, html_path: Path, show_code: bool, title: str) -> None:
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from traitlets.config import Config

    c = Config()
    c.TagRemovePreprocessor.remove_cell_tags = () if show_code else ("injected-parameters", "parameters")
    c.TagRemovePreprocessor.enabled = True
    exporter = HTMLExporter(config=c, template_name="lab")
    exporter.register_preprocessor(TagRemovePreprocessor(config=c), enabled=True)
    exporter.exclude_input = not show_code
    exporter.exclude_input_prompt = not show_code
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(body, encoding="utf-8")


def run_stage(stage: str, root: str | Path | None = None, params_file: str = "params.yaml",
              hooks: tuple[Hook, ...] | None = None) -> StageRun:
    """Execute one notebook stage; raise StageError (after rendering what ran) if it fails.

    hooks: None means the default ones (MLflow tracking when `tracking.enabled`)."""
    import nbformat

    if stage not in NOTEBOOKS:
        raise StageError(f"unknown stage '{stage}'; notebook stages are: {', '.join(NOTEBOOKS)}")
    t0 = time.perf_counter()
    paths = Paths.at(root)
    params = config.load(params_file, root=paths.root)  # fails fast, before any kernel starts
    run = StageRun(stage, paths.root, params, paths.notebook(stage), paths.executed_notebook(stage),
                   paths.report_html(stage))
    check_notebook(run.notebook)
    if hooks is None:
        from mlcycle.tracking import TrackingHook

        hooks = (TrackingHook(),) if params.tracking.enabled else ()
    run.seconds["check"] = time.perf_counter() - t0
    for h in hooks:
        try:
            h.start(run)
        except Exception as exc:
            raise StageError(
                f"stage '{stage}': tracking could not start ({type(exc).__name__}: {str(exc)[:300]}); "
                "check MLFLOW_TRACKING_URI / tracking.uri, or set tracking.enabled: false"
            ) from None

    import papermill
    from papermill.exceptions import PapermillExecutionError

    run.executed.parent.mkdir(parents=True, exist_ok=True)
    saved_env = {k: os.environ.get(k) for k in kernel_env(paths.root)}
    os.environ.update(kernel_env(paths.root))
    t1 = time.perf_counter()
    failure: BaseException | None = None
    try:
        nb = papermill.execute_notebook(
            str(run.notebook), str(run.executed), parameters={"params_file": params_file},
            kernel_name=KERNEL, cwd=str(paths.root), progress_bar=False, log_output=False,
            request_save_on_cell_execute=False, autosave_cell_every=0,
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
        render_html(nb, run.html, params.report.show_code, f"mlcycle: {stage}")
    run.seconds["render"] = time.perf_counter() - t2
    run.status = "FAILED" if failure else "FINISHED"
    for h in hooks:
        try:
            h.end(run)
        except Exception:  # a hook must never hide the stage's own outcome
            traceback.print_exc()
    if failure is not None:
        raise StageError(
            f"stage '{stage}' failed: {run.error}\n  see {run.html.relative_to(paths.root)}"
            if run.html.exists() else f"stage '{stage}' failed: {run.error}"
        ) from None
    return run
