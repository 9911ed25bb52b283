import json
from pathlib import Path

import nbformat
import pytest

from mlcycle.core import tasks
from mlcycle.core.errors import StageError
from mlcycle.core.paths import NOTEBOOK_FILES, SHARED_NOTEBOOKS, Paths
from mlcycle.runtime import runner
from tests.conftest import ROOT


def test_rejects_notebook_with_other_parameters(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("params_file: str = 'params.yaml'\nlearning_rate: float = 0.1")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, str(path))
    with pytest.raises(StageError, match="must declare exactly \\['params_file', 'write'\\]"):
        runner.check_notebook(path)
    with pytest.raises(StageError, match="not found"):
        runner.check_notebook(tmp_path / "missing.ipynb")


def test_every_stage_notebook_passes_the_check():
    """Every task's notebook of every stage (notebooks/<task>/, the shared ingest in notebooks/)."""
    for task in tasks.REGISTRY:
        for stage in NOTEBOOK_FILES:
            extra = runner.STAGE_PARAMETERS.get(stage, frozenset())
            runner.check_notebook(Paths(ROOT).notebook(stage, task), runner.PARAMETERS | extra)
    assert Paths(ROOT).notebook("monitor", "tabular") == ROOT / "notebooks" / "tabular" / "07_monitor.ipynb"
    assert Paths(ROOT).notebook("ingest", "recommender") == ROOT / "notebooks" / "01_ingest.ipynb"


def test_notebooks_write_only_when_the_runner_says_so():
    """A notebook opened in JupyterLab writes nothing (write defaults to False); the runner injects True."""
    import papermill

    assert "write" in runner.PARAMETERS
    notebooks = sorted({Paths(ROOT).notebook(s, t) for t in tasks.REGISTRY for s in NOTEBOOK_FILES})
    shared = len(SHARED_NOTEBOOKS)  # ingest: one notebook for every task
    assert len(notebooks) == shared + len(tasks.REGISTRY) * (len(NOTEBOOK_FILES) - shared)
    for path in notebooks:
        declared = papermill.inspect_notebook(str(path))
        assert declared["write"]["default"] == "False" and declared["write"]["inferred_type_name"] == "bool", path.name


def test_strip_timestamps():
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"start_time": "t", "end_time": "t", "duration": 1.0, "parameters": {"a": 1}}
    cell = nbformat.v4.new_code_cell("1")
    cell.metadata["execution"] = {"iopub.execute_input": "t"}
    cell.metadata["papermill"] = {"start_time": "t", "status": "completed"}
    injected = nbformat.v4.new_code_cell("params_file = 'x'")
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells = [cell, injected]
    runner.strip_timestamps(nb)
    dumped = json.dumps(nb)
    assert '"t"' not in dumped and '"parameters"' in dumped and "completed" in dumped
    assert nb.cells[1].id == "injected-parameters"


def test_unknown_stage():
    with pytest.raises(StageError, match="unknown stage 'trian'"):
        runner.run_stage("trian", root=ROOT)


def test_the_daemon_code_key_covers_every_layer_folder(tmp_path, monkeypatch):
    """A warm tracking daemon must not serve stale code: editing any module, in any layer folder,
    or a template changes the key its clients look for."""
    import shutil

    from mlcycle.runtime import trackd

    pkg = tmp_path / "mlcycle"
    shutil.copytree(trackd.PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(trackd, "PACKAGE", pkg)
    keys = {trackd.key()}
    for rel in ("core/paths.py", "monitoring/monitor.py", "templates/model_card.md.j2"):
        with (pkg / rel).open("a") as f:
            f.write("\n")
        keys.add(trackd.key())
    assert len(keys) == 4


class _Hook:
    def __init__(self, fail: bool):
        self.fail, self.ended = fail, False

    def start(self, run) -> None:
        run.tracking_run_id = "r1"

    def end(self, run) -> None:
        self.ended = True
        if self.fail:
            raise ConnectionError("the server went away")


def test_a_stage_whose_recording_failed_is_not_done(tmp_path):
    """A hook failing at the end no longer passes silently: the other hooks still end, and the failure
    travels back from the tracking process to the runner, which fails the stage with it."""
    import multiprocessing as mp
    import threading

    from mlcycle.core import config
    from mlcycle.runtime.hooks import StageRun, end_hooks, hooks_child

    run = StageRun("train", tmp_path, config.load(ROOT / "params.yaml"), tmp_path / "n.ipynb", tmp_path / "e.ipynb", tmp_path / "e.html")
    ok, bad = _Hook(False), _Hook(True)
    assert end_hooks([ok], run) is None
    assert end_hooks([bad, ok], run) == "ConnectionError: the server went away" and ok.ended

    parent, child = mp.Pipe()
    t = threading.Thread(target=hooks_child, args=([bad, _Hook(False)], run, child))
    t.start()
    parent.send("go")
    assert parent.recv() == (None, "r1")
    parent.send(("FINISHED", None, {}))
    assert parent.recv() == ("ended", "ConnectionError: the server went away")
    t.join(10)


def test_stage_report_html_is_self_contained(tmp_path):
    """A report opens offline: no script fetched from elsewhere (the lab template's require.js,
    MathJax and Mermaid come from a CDN), and figures are embedded."""
    import re

    import nbformat

    from mlcycle.runtime.runner import render_html

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell(
        "x", outputs=[nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})])])
    render_html(nb, tmp_path / "r.html", show_code=False, title="r")
    html = (tmp_path / "r.html").read_text()
    assert not re.findall(r"<script[^>]+src=", html) and "cdnjs" not in html
    assert 'src="data:image/png;base64,iVBORw0KGgo=' in html and "<title>r</title>" in html


def test_the_kernel_shows_no_mlflow_download_bar(monkeypatch, tmp_path):
    """In a kernel MLflow's artifact download bar imports tqdm.auto, whose widget warning would be
    printed into the stage's report; a user's own setting wins."""
    from mlcycle.runtime.runner import kernel_env

    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    assert kernel_env(tmp_path)["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")
    assert kernel_env(tmp_path)["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "true"


def test_stage_kernels_talk_over_unix_sockets_in_a_private_folder(tmp_path):
    """The kernel papermill starts with the runner's kernel manager listens on Unix sockets in the
    folder the runner gives it (no TCP port), as the kernel itself reports."""
    import shutil
    import tempfile

    import papermill

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": runner.KERNEL, "display_name": runner.KERNEL, "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("from ipykernel.connect import get_connection_info\n"
                                          "info = get_connection_info(unpack=True)\n"
                                          "print(info['transport'], info['ip'])")]
    src = tmp_path / "in.ipynb"
    nbformat.write(nb, str(src))
    sockets = Path(tempfile.mkdtemp(prefix="mlcycle-test-"))
    try:
        out = papermill.execute_notebook(str(src), str(tmp_path / "out.ipynb"), kernel_name=runner.KERNEL,
                                         progress_bar=False, kernel_manager_class=runner.kernel_manager_class(sockets))
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    assert out.cells[0].outputs[0]["text"].split() == ["ipc", str(sockets / "kernel")]


def test_a_cell_s_prints_are_one_output_however_the_kernel_flushed_them(tmp_path):
    """A cell that prints, waits past the kernel's flush interval and prints again reaches the
    notebook as two stream messages; executed as the runner executes a stage, it holds one output
    per stream (stdout first), so a loaded machine does not change the executed notebook's bytes."""
    import shutil
    import tempfile

    import papermill

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": runner.KERNEL, "display_name": runner.KERNEL, "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("import sys, time\nprint('first')\ntime.sleep(0.6)\n"
                                          "sys.stderr.write('said\\n')\ntime.sleep(0.6)\nprint('second')")]
    src = tmp_path / "in.ipynb"
    nbformat.write(nb, str(src))
    outputs = {}
    for name, options in {"plain": {}, "runner": runner.EXECUTE_OPTIONS}.items():
        sockets = Path(tempfile.mkdtemp(prefix="mlcycle-test-"))
        try:
            out = papermill.execute_notebook(str(src), str(tmp_path / f"{name}.ipynb"), kernel_name=runner.KERNEL,
                                             progress_bar=False, kernel_manager_class=runner.kernel_manager_class(sockets),
                                             **options)
        finally:
            shutil.rmtree(sockets, ignore_errors=True)
        outputs[name] = [(o["name"], o["text"]) for o in out.cells[0].outputs]
    assert len(outputs["plain"]) == 3  # the flushes the kernel made: what varies with the machine's load
    assert outputs["runner"] == [("stdout", "first\nsecond\n"), ("stderr", "said\n")]


def test_a_stage_report_warns_only_when_the_environment_differs(tmp_path):
    """What differs from requirements.lock (`core/environment.py`) opens the report as a warning,
    the only addition: when nothing differs, the report is byte for byte what it was."""
    runner.skip_unused_imports()  # as the runner does: no IRI grammars built for nbformat's validation
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title", id="c0")])
    exporter = runner.html_exporter(show_code=False)
    runner.render_html(nb, tmp_path / "same.html", show_code=False, title="r", exporter=exporter)
    runner.render_html(nb, tmp_path / "differs.html", show_code=False, title="r", exporter=exporter,
                       env_differs="pandas 3.0.1 (lock 3.0.2), <x>")
    same, differs = (tmp_path / "same.html").read_text(), (tmp_path / "differs.html").read_text()
    assert "mlcycle-environment" not in same and "requirements.lock" not in same
    assert "differs from requirements.lock:</strong> pandas 3.0.1 (lock 3.0.2), &lt;x&gt;." in differs
    start = differs.index('<p class="mlcycle-environment"')
    assert differs[:start] + differs[differs.index("</p>", start) + len("</p>\n"):] == same


def test_library_warnings_and_log_records_go_to_the_stage_log_not_the_report(tmp_path, monkeypatch):
    """The kernel the runner starts (its arguments and environment) sends what libraries say to the
    stage's log file: a library's warning, a record of a library's logger (with its timestamp), one a
    library logs through its own console handler. The notebook's own warning and print, and
    mlcycle's own log lines, stay in the report, without timestamps."""
    import os
    import shutil
    import tempfile

    import papermill

    cells = [
        "import logging, warnings\nimport sklearn.utils\n"
        "warnings.warn_explicit('a library speaks', FutureWarning, sklearn.utils.__file__, 1)",
        "logging.getLogger('mlflow.models').warning('Saving the model with pickle')",
        "lib = logging.getLogger('chatty'); lib.propagate = False; lib.addHandler(logging.StreamHandler())",
        "lib.warning('a console handler of its own')",
        "warnings.warn('the notebook itself warns the reader')\nprint('a result')",
        "logging.getLogger('mlcycle.stage').warning('mlcycle tells the reader')",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": runner.KERNEL, "display_name": runner.KERNEL, "language": "python"}
    src, log = tmp_path / "in.ipynb", Paths(tmp_path).stage_log("train")
    nbformat.write(nb, str(src))
    for k, v in {**runner.kernel_env(ROOT), runner.kernel.ENV: str(log)}.items():
        monkeypatch.setenv(k, v)
    sockets = Path(tempfile.mkdtemp(prefix="mlcycle-test-"))
    try:
        out = papermill.execute_notebook(str(src), str(tmp_path / "out.ipynb"), kernel_name=runner.KERNEL,
                                         progress_bar=False, kernel_manager_class=runner.kernel_manager_class(sockets),
                                         extra_arguments=runner.kernel_arguments(), cwd=str(tmp_path))
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    shown = "".join(o.get("text", "") for c in out.cells for o in c.outputs)
    assert "the notebook itself warns the reader" in shown and "a result" in shown
    assert "mlcycle tells the reader\n" in shown
    for said in ("a library speaks", "Saving the model with pickle", "a console handler of its own"):
        assert said not in shown and said in log.read_text()
    assert not [line for line in shown.splitlines() if line[:4].isdigit()], "no timestamped line in the report"
    assert "WARNING mlflow.models: Saving the model with pickle" in log.read_text()
    assert "IPKernelApp" not in log.read_text() and " DEBUG " not in log.read_text()  # not the kernel's own log
    assert os.environ.get(runner.kernel.ENV) == str(log)


def test_only_code_outside_the_installed_libraries_and_mlcycle_s_warning_classes_are_the_reader_s():
    import sklearn

    from mlcycle.runtime import kernel

    assert not kernel.is_own(sklearn.__file__, FutureWarning)
    assert not kernel.is_own(json.__file__, DeprecationWarning)  # the standard library
    assert kernel.is_own("/tmp/ipykernel_1/123.py", UserWarning)  # a notebook cell
    assert kernel.is_own(str(ROOT / "examples" / "flights" / "flights.py"), UserWarning)  # a workspace hook
    assert kernel.is_own(runner.__file__, UserWarning)
    assert kernel.is_own(sklearn.__file__, type("Notice", (UserWarning,), {"__module__": "mlcycle.core.x"}))
