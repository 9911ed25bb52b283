"""Small display helpers for notebooks: show a figure (and keep it as a file), a table, generated text."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd

from mlcycle.core import literal


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
        with literal.figures():  # tick labels made while drawing: as typed, like the rest
            fig.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
        display(Image(data=buffer.getvalue(), format="png"))
        return
    path = save(fig, folder, name)
    display(Image(data=path.read_bytes(), format="png"))


def markdown(text: str) -> None:
    """Display generated text (a stage's summary of what its data showed) as Markdown.

    It is shown as the HTML mistune makes of it with raw HTML escaped (the Markdown source kept as
    the plain-text form): a column name or value such as `<script>` in the summary is shown as
    text, not run, in the notebook and its report (nbconvert passes raw HTML in Markdown through)."""
    import mistune
    from IPython.display import display

    html = mistune.create_markdown(escape=True, plugins=["table", "strikethrough"])(text)
    display({"text/html": html, "text/plain": text}, raw=True)


_tables = itertools.count(1)


def table(df, caption: str | None = None, digits: int = 4):
    """A rounded table with an optional caption, for the HTML report.

    Tables are numbered in order of display (not pandas' random ids), so a re-run with the same
    results renders the same HTML. A missing value (a statistic that does not apply to the row, such
    as the top category of a number) is an empty cell, not "nan". Values, names and the caption are
    HTML-escaped and control characters shown as escapes (`literal.visible`): a cell holding
    `<script>` shows that text.
    """
    from IPython.display import HTML, display
    from markupsafe import escape

    df = df.rename(index=_visible, columns=_visible)
    texts = [i for i, dtype in enumerate(df.dtypes) if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)]
    if texts:
        df = df.copy()
        for i in texts:
            df.isetitem(i, df.iloc[:, i].map(_visible))
    styled = (df.style.format(precision=digits, thousands=",", na_rep="", escape="html")
              .format_index(escape="html", axis=0).format_index(escape="html", axis=1)
              .set_uuid(f"table{next(_tables)}"))
    if isinstance(df.index, pd.RangeIndex):
        styled = styled.hide(axis="index")
    if caption:
        styled = styled.set_caption(str(escape(literal.visible(caption))))
    display(HTML(styled.to_html()))  # a Styler's own text form carries its memory address


def _visible(v):
    return literal.visible(v) if isinstance(v, str) else v


def save(fig, folder: Path, name: str) -> Path | None:
    if fig is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    with literal.figures():  # tick labels made while drawing: as typed, like the rest
        fig.savefig(path, dpi=90, metadata={"Software": None})
    return path


def metrics_text(shown: dict, width: int = 100) -> str:
    """`dvc metrics show --json` as a narrow table: per metrics file (per revision when several), one
    line per metric, its dotted name and its value (`make metrics`). Names longer than the column wrap
    at their dots; no line is wider than `width` unless one name part or value is."""
    import json
    import textwrap

    lines: list[str] = []
    revisions = {rev: doc for rev, doc in shown.items() if isinstance(doc, dict)}
    for rev, doc in revisions.items():
        if len(revisions) > 1 or rev not in ("", "workspace"):
            lines.append(f"== {rev or 'workspace'}")
        for file, content in (doc.get("data") or {}).items():
            if "error" in content:
                lines.append(f"{file}: not readable ({str(content['error'])[:80]})")
                continue
            rows = list(_flat(content.get("data") or {}))
            lines.append(file)
            name_width = min(max((len(k) for k, _ in rows), default=0), width // 2)
            for key, value in rows:
                text = json.dumps(value) if isinstance(value, list | dict | str | bool) or value is None else (
                    f"{value:,}" if isinstance(value, int) else f"{value:.6g}")
                text = textwrap.shorten(text, width - name_width - 4, placeholder=" ...")
                names = _wrap_name(key, name_width)
                for n in names[:-1]:
                    lines.append(f"  {n}")
                lines.append(f"  {names[-1]:<{name_width}}  {text}")
    return "\n".join(lines)


def _wrap_name(name: str, width: int) -> list[str]:
    """A dotted name in lines of at most `width` characters, broken after its dots."""
    lines = [""]
    for part in name.split("."):
        piece = part if not lines[-1] else "." + part
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines[-1] += "."
            lines.append(part)
        else:
            lines[-1] += piece
    return lines


def _flat(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


if __name__ == "__main__":  # `make metrics`: dvc metrics show --json | python -m mlcycle.stages.show
    import json
    import sys

    text = sys.stdin.read()
    print(metrics_text(json.loads(text)) if text.strip() else "no metrics (dvc metrics show printed nothing)")
