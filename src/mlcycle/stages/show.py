"""Small display helpers for notebooks: show a figure (and keep it as a file), a table, generated text."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd


def figure(fig, folder: Path | None, name: str) -> None:
    """Display `fig` embedded and, when `folder` is given, keep it as folder/name.png (works with any
    matplotlib backend). `folder=None` shows without saving: a notebook run with `write = False`.

    Returns None on purpose: as the last expression of a cell, a returned path would be printed
    into the executed notebook and its HTML report, and an absolute path makes reports differ
    between two checkouts of the same commit. The image is embedded as PNG bytes, not linked."""
    if fig is None:
        return
    from IPython.display import Image, display

    if folder is None:
        import io

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
        display(Image(data=buffer.getvalue(), format="png"))
        return
    path = save(fig, folder, name)
    display(Image(data=path.read_bytes(), format="png"))


def markdown(text: str) -> None:
    """Display generated text (a stage's summary of what its data showed) as Markdown."""
    from IPython.display import Markdown, display

    display(Markdown(text))


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


def save(fig, folder: Path, name: str) -> Path | None:
    if fig is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=90, metadata={"Software": None})
    return path
