"""Progress of long work: plain lines where a bar would be noise (CI logs, pipes, a notebook's
kernel), a bar in a terminal, nothing when turned off; a search reports its trials."""

from __future__ import annotations

import io
import re
import threading

import nbformat
import pytest
from nbclient import NotebookClient

from mlcycle.core import progress
from mlcycle.core.progress import Progress
from mlcycle.tasks.tabular import search
from tests.code.test_search import prepared


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def no_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("MLCYCLE_PROGRESS", raising=False)


def test_mode_follows_terminal_ci_and_the_variable(no_ci, monkeypatch):
    assert progress.mode(Terminal()) == "bar"
    assert progress.mode(io.StringIO()) == "lines"  # a pipe or a file: lines
    monkeypatch.setenv("CI", "true")
    assert progress.mode(Terminal()) == "lines"
    monkeypatch.setenv("CI", "false")
    assert progress.mode(Terminal()) == "bar"
    monkeypatch.setenv("MLCYCLE_PROGRESS", "off")
    assert progress.mode(Terminal()) == "off"


def test_lines_mode_prints_about_ten_plain_lines(no_ci, monkeypatch):
    monkeypatch.setenv("CI", "true")
    out = io.StringIO()
    with Progress(250, "search hist_gradient_boosting", "trials", out=out) as bar:
        for _ in range(250):
            bar.update()
    lines = out.getvalue().splitlines()
    assert 10 <= len(lines) <= 12
    assert lines[0].startswith("search hist_gradient_boosting: 1/250 trials (0%")
    assert lines[-1].startswith("search hist_gradient_boosting: 250/250 trials (100%")
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()  # no bar, no escape codes
    counts = [int(re.search(r": (\d+)/", line).group(1)) for line in lines]
    assert counts == sorted(counts)


def test_bar_mode_draws_a_bar_on_a_terminal(no_ci):
    out = Terminal()
    with Progress(5, "score", "partitions", out=out) as bar:
        for _ in range(5):
            bar.update()
    assert "\r" in out.getvalue() and "5/5" in out.getvalue()


def test_off_prints_nothing(no_ci):
    out = io.StringIO()
    with Progress(3, "x", out=out, how="off") as bar:
        bar.update(3)
    assert out.getvalue() == ""


def test_updates_from_threads_are_all_counted(no_ci):
    out = io.StringIO()
    bar = Progress(400, "score", "partitions", out=out, how="lines")
    threads = [threading.Thread(target=lambda: [bar.update() for _ in range(100)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bar.close()
    assert bar.n == 400 and out.getvalue().splitlines()[-1].startswith("score: 400/400 partitions")


def test_search_reports_its_trials(no_ci, monkeypatch, capsys):
    """(Optuna's trials report through the study's callback; test_search.py runs that path.)"""
    monkeypatch.setenv("CI", "true")
    xy, spec, params = prepared(search={"method": "random", "trials": 2, "cv_folds": 2})
    search.select(xy["train"], xy["valid"], spec, params)
    err = capsys.readouterr().err
    assert f"search {params.model}: 2/2 trials (100%" in err


def test_in_a_kernel_lines_go_to_the_process_stderr_not_the_notebook(capfd):
    """What a stage notebook shows (and its HTML report) carries no progress line; the runner's
    terminal or CI log gets them."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(
        "from mlcycle.core.progress import Progress\n"
        "with Progress(4, 'kernel-progress', 'trials') as bar:\n"
        "    for _ in range(4):\n"
        "        bar.update()\n"
        "print('done')"))
    NotebookClient(nb, kernel_name="mlcycle", timeout=120).execute()
    shown = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert shown == "done\n"
    err = capfd.readouterr().err
    assert "kernel-progress: 4/4 trials (100%" in err
