"""Notebook display helpers: what they put into an executed notebook carries no checkout path."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402

from mlcycle.stages import show  # noqa: E402


def test_figure_embeds_the_image_and_shows_no_path(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    fig = plt.figure()
    plt.plot([1, 2])
    out = show.figure(fig, tmp_path / "figs", "line")
    assert out is None  # nothing for a cell to print as its result
    assert (tmp_path / "figs" / "line.png").exists()
    bundle, _ = InteractiveShell.instance().display_formatter.format(shown[0])
    assert "image/png" in bundle and str(tmp_path) not in repr(bundle)


def test_figure_without_a_folder_shows_and_saves_nothing(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    monkeypatch.chdir(tmp_path)
    fig = plt.figure()
    plt.plot([1, 2])
    assert show.figure(fig, None, "line") is None
    bundle, _ = InteractiveShell.instance().display_formatter.format(shown[0])
    assert "image/png" in bundle and not list(tmp_path.rglob("*"))
    show.figure(None, None, "nothing")  # a plot function with nothing to draw returns None
    assert len(shown) == 1


def test_markdown_displays_generated_text(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    show.markdown("- 3 rows")
    bundle, _ = InteractiveShell.instance().display_formatter.format(shown[0])
    assert bundle["text/markdown"] == "- 3 rows"
