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
