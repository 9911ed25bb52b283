"""Small display helpers for notebooks: show a figure and keep it as a file, show a table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlcycle.eda import save


def figure(fig, folder: Path, name: str) -> Path | None:
    """Save `fig` as folder/name.png and display that file (works with any matplotlib backend)."""
    path = save(fig, folder, name)
    if path is not None:
        from IPython.display import Image, display

        display(Image(filename=str(path)))
    return path


def table(df, caption: str | None = None, digits: int = 4):
    """A rounded table with an optional caption, for the HTML report."""
    from IPython.display import display

    styled = df.style.format(precision=digits, thousands=",")
    if isinstance(df.index, pd.RangeIndex):
        styled = styled.hide(axis="index")
    if caption:
        styled = styled.set_caption(caption)
    display(styled)
