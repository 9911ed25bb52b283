"""Data values shown as typed: in figures, HTML and Markdown, a value is text, never markup.

A category, a column name or a class comes from the user's table and may hold anything: `$5 and
$10` (which matplotlib would read as mathtext, and fail on or draw in italics), `<script>`, `{x}`,
backslashes, control characters, ten thousand characters. Every figure, report and card shows it
through these helpers:

- `FIGURE_STYLE` / `figures()`: matplotlib draws text as written (no mathtext, no LaTeX). The stage
  kernel applies the style for the whole process (`runtime/kernel.py`); every plot function runs
  inside `figures()` too, so a caller outside a stage (a test, a notebook opened by hand, the
  command line) gets the same.
- `label` / `labels`: a value as a figure's label: control characters made visible, shortened with
  an ellipsis; `labels` keeps distinct values distinct after shortening (matplotlib puts equal
  category labels on one bar).
- `visible`: control characters as their escapes (`\\x00`, `\\x1b`, `\\n`), the rest as typed.
- `md_text` / `md_code`: a value in generated Markdown (a table cell, a sentence, a code span).

HTML escaping itself is Jinja's autoescape and markupsafe's `escape`, and pandas' Styler `escape`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

FIGURE_STYLE = {"text.parse_math": False, "text.usetex": False}
ELLIPSIS = "\u2026"
HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})  # control, format, surrogate, line/paragraph separators
# what Markdown would read as markup, escaped with a backslash: `\ ` * < & | $ ~` anywhere, `_` at a word's
# edge, `]` that would close a link, and `> # + -` starting the text (a quote, heading or list)
MD_SPECIAL = re.compile(r"[\\`*<&|$~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])|\](?=[(\[])|^[>#+-]")


def figures():
    """matplotlib's settings for literal text (`FIGURE_STYLE`), as a context manager or decorator:
    `with literal.figures(): ...` or `@literal.figures()` on a plot function."""
    import matplotlib

    return matplotlib.rc_context(FIGURE_STYLE)


def use_figure_style() -> None:
    """Apply `FIGURE_STYLE` for the rest of the process (a stage's kernel)."""
    import matplotlib

    matplotlib.rcParams.update(FIGURE_STYLE)


def _escape_char(ch: str) -> str:
    if ch == "\n":
        return "\\n"
    if ch == "\t":
        return "\\t"
    if ch == "\r":
        return "\\r"
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible(value, keep: str = "") -> str:
    """`value` as text with every control or format character (NUL, ESC, a line break, a
    right-to-left override...) written as its escape, so it is seen rather than acted on; the
    characters in `keep` stay as they are."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable() and not keep:
        return text
    return "".join(ch if ch in keep or unicodedata.category(ch) not in HIDDEN else _escape_char(ch) for ch in text)


def label(value, width: int = 40) -> str:
    """A value as a figure's label: `visible`, and at most `width` characters (the last one an
    ellipsis when shortened). A missing value is "(missing)"."""
    if value is None or (isinstance(value, float) and value != value):
        return "(missing)"
    text = visible(value)
    return text if len(text) <= width else text[: max(width - 1, 0)] + ELLIPSIS


def labels(values: Iterable, width: int = 40) -> list[str]:
    """`label` of each value, kept distinct: two values that shorten alike get " (2)", " (3)"...,
    so that each keeps its own bar or tick."""
    out: list[str] = []
    seen: set[str] = set()
    for v in values:
        text = label(v, width)
        n = 1
        candidate = text
        while candidate in seen:
            n += 1
            suffix = f" ({n})"
            candidate = (text[: max(width - len(suffix) - 1, 0)] + ELLIPSIS if len(text) + len(suffix) > width
                         else text) + suffix
        seen.add(candidate)
        out.append(candidate)
    return out


def md_text(value) -> str:
    """A value in generated Markdown text or a table cell: Markdown's special characters
    backslash-escaped (`|` cannot end a cell, `<script>` is text, `$5 and $10` is no formula),
    control characters and line breaks as escapes."""
    return MD_SPECIAL.sub(lambda m: "\\" + m.group(0), visible(value))


def md_code(value) -> str:
    """A value as a Markdown code span, whatever backticks it holds (the fence is one longer than
    its longest run of backticks); `|` escaped for table cells, control characters as escapes."""
    text = visible(value).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"
