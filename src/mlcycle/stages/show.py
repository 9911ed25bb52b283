"""Small display helpers for notebooks: show a figure and keep it as a file, show a table."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd

from mlcycle.stages.eda import save


def figure(fig, folder: Path, name: str) -> None:
    """Save `fig` as folder/name.png and display it embedded (works with any matplotlib backend).

    Returns None on purpose: as the last expression of a cell, a returned path would be printed
    into the executed notebook and its HTML report, and an absolute path makes reports differ
    between two checkouts of the same commit. The image is embedded as PNG bytes, not linked."""
    path = save(fig, folder, name)
    if path is not None:
        from IPython.display import Image, display

        display(Image(data=path.read_bytes(), format="png"))


_tables = itertools.count(1)


def table(df, caption: str | None = None, digits: int = 4):
    """A rounded table with an optional caption, for the HTML report.

    Tables are numbered in order of display (not pandas' random ids), so a re-run with the same
    results renders the same HTML.
    """
    from IPython.display import HTML, display

    styled = df.style.format(precision=digits, thousands=",").set_uuid(f"table{next(_tables)}")
    if isinstance(df.index, pd.RangeIndex):
        styled = styled.hide(axis="index")
    if caption:
        styled = styled.set_caption(caption)
    display(HTML(styled.to_html()))  # a Styler's own text form carries its memory address
