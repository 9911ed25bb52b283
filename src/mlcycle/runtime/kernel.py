"""The set-up of a stage's kernel: what libraries say goes to the stage's log file, not its report.

The runner starts every stage's kernel with `setup()` (`runner.kernel_arguments`), so a rendered
report holds what the notebook shows and what mlcycle tells its reader, without a library's
warnings (MLflow's pickle notice, a deprecation in pandas) or log lines with their timestamps.
Those go to `reports/logs/<stage>.log` (`Paths.stage_log`, not a pipeline output), where nothing is
lost. A notebook opened by hand in Jupyter does not run this: there everything stays visible.

It also sets matplotlib's style for literal text once matplotlib is imported (`core/literal.py`):
no value a figure shows is read as mathtext or LaTeX (`$5 and $10` is drawn as typed).

A warning stays in the report when it is meant for the reader: its class is mlcycle's, or the code
that raised it is the notebook's own or the workspace's (a hook), not an installed library. Records
of mlcycle's own loggers stay in the report too, as plain lines.
"""

from __future__ import annotations

import logging
import os
import sys
import sysconfig
import warnings
from pathlib import Path

from mlcycle.core import literal

ENV = "MLCYCLE_STAGE_LOG"  # the log file of the stage the kernel runs (set by the runner)
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def library_folders() -> tuple[str, ...]:
    """Where installed code lives: the standard library and site-packages (mlcycle's own folder aside)."""
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    return tuple(dict.fromkeys(str(Path(p).resolve()) for p in (sysconfig.get_paths().get(n) for n in names) if p))


def is_own(filename: str, category: type) -> bool:
    """True for a warning meant for the report's reader: a warning class of mlcycle's, or raised by code
    outside the installed libraries (the notebook's cells, the workspace's hooks, mlcycle itself)."""
    if (getattr(category, "__module__", "") or "").split(".")[0] == "mlcycle":
        return True
    path = str(Path(filename).resolve()) if filename else ""
    if path.startswith(str(Path(__file__).resolve().parents[1])):  # mlcycle's own code, wherever installed
        return True
    return not path.startswith(library_folders()) and "site-packages" not in path and "dist-packages" not in path


def setup(log_file: str | os.PathLike | None = None) -> Path | None:
    """Route library warnings and log records of this process to `log_file` ($MLCYCLE_STAGE_LOG when
    None); returns the file, or None (no log file) when there is none. Either way matplotlib draws
    text literally in this kernel (`literal_figures`)."""
    literal_figures()
    try:
        get_ipython().events.register("pre_run_cell", literal_figures)  # noqa: F821 (an IPython kernel)
    except NameError:
        pass
    log_file = log_file or os.environ.get(ENV)
    if not log_file:
        return None
    path = Path(log_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(path, mode="a", encoding="utf-8", delay=True)
    to_file.setFormatter(logging.Formatter(FORMAT))
    to_file.setLevel(logging.INFO)  # not a library's debugging
    to_file.set_name("mlcycle-stage-log")
    root = logging.getLogger()
    root.addHandler(to_file)
    own = logging.getLogger("mlcycle")  # mlcycle's records: for the reader, as plain lines
    if not any(h.get_name() == "mlcycle-report" for h in own.handlers):
        plain = logging.StreamHandler(sys.stderr)
        plain.setFormatter(logging.Formatter("%(message)s"))
        plain.set_name("mlcycle-report")
        own.addHandler(plain)
    shown = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if is_own(filename, category):
            return shown(message, category, filename, lineno, file, line)
        logging.getLogger("py.warnings").warning(
            "%s", warnings.formatwarning(message, category, filename, lineno, line).rstrip())

    warnings.showwarning = showwarning
    reroute(to_file)
    try:  # a library that attaches its own console handler when imported: rerouted before each cell
        ip = get_ipython()  # noqa: F821 (defined in an IPython kernel)
        ip.events.register("pre_run_cell", lambda *_: reroute(to_file))
    except NameError:
        pass
    return path


def literal_figures(*_) -> None:
    """matplotlib's style for literal text (`literal.FIGURE_STYLE`: no mathtext, no LaTeX), once the
    kernel has imported matplotlib: checked before each cell, so a stage that draws nothing does not
    pay for importing it."""
    if "matplotlib" in sys.modules:
        literal.use_figure_style()


def reroute(to_file: logging.Handler) -> None:
    """Replace the handlers libraries attached to their loggers (or to the root logger) that write
    into the notebook (the kernel's sys.stdout and sys.stderr) by `to_file`; mlcycle's own loggers
    keep theirs. The kernel's own log (to the process's real stderr) is left alone."""
    into_notebook = {id(sys.stderr), id(sys.stdout)} - {id(sys.__stderr__), id(sys.__stdout__)}
    named = [lg for name, lg in list(logging.Logger.manager.loggerDict.items())
             if isinstance(lg, logging.Logger) and name.split(".")[0] != "mlcycle"]
    for lg in [logging.getLogger(), *named]:
        for h in list(lg.handlers):
            if (isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
                    and id(getattr(h, "stream", None)) in into_notebook):
                lg.removeHandler(h)
                if lg is not logging.getLogger() and not lg.propagate and to_file not in lg.handlers:
                    lg.addHandler(to_file)
