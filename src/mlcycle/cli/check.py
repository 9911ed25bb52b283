"""`mlcycle pipeline check`: the columns params.yaml names, checked against the data file's header.

Only the header is read (Parquet: the schema in the footer; CSV: the first line), so a misspelled
`data.target` or slice column fails in the first second, naming the key, the column and the
closest real column, instead of minutes later inside a stage. Columns a features step adds
(`features_adds`) may be named where the holdout table is meant (slices, baseline columns).
"""

from __future__ import annotations

import csv
import difflib
from pathlib import Path

from mlcycle.core import plugins, tasks
from mlcycle.core.config import BOOL_HINT, Params
from mlcycle.core.errors import ParamsError
from mlcycle.core.paths import find_root
from mlcycle.core.tables import table_format

_MAX_LISTED = 12  # columns listed in a message at most


def read_header(path: Path, fmt: str) -> dict[str, str]:
    """Column name -> type name ('' when the format does not say, CSV) from the file's header only."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return {f.name: str(f.type) for f in pq.read_schema(path)}
    sep = "\t" if path.name.lower().endswith(".tsv") else ","
    if path.name.lower().endswith((".gz", ".zip", ".bz2", ".xz")):
        import pandas as pd

        return {str(c): "" for c in pd.read_csv(path, sep=sep, nrows=0).columns}
    with open(path, encoding="utf-8", newline="") as f:
        first = next(csv.reader(f, delimiter=sep), [])
    return {c.lstrip("\ufeff") if i == 0 else c: "" for i, c in enumerate(first)}


def csv_column_kind(path: Path, column: str, rows: int = 1000) -> str:
    """'bool', 'number' or 'text': how pandas reads the first `rows` values of a CSV column."""
    import pandas as pd

    sep = "\t" if path.name.lower().endswith(".tsv") else ","
    s = pd.read_csv(path, sep=sep, usecols=[column], nrows=rows)[column]
    if pd.api.types.is_bool_dtype(s):
        return "bool"
    return "number" if pd.api.types.is_numeric_dtype(s) else "text"


def features_adds(params: Params, header: dict[str, str], root: Path | None = None) -> set[str] | None:
    """The columns the features step may add to the table, given params and the raw header: calendar
    parts of the time column, parts of other date/time columns, and the enrichment hook's columns
    (as its `adds` attribute declares them; None when a hook declares nothing: they cannot be known
    before it runs)."""
    added: set[str] = set()
    if params.data.time_column:
        added |= set(params.features.calendar)
    for col, kind in header.items():
        if kind.startswith(("timestamp", "date")) and col != params.data.time_column:
            added |= {f"{col}_{p}" for p in ("year", "month", "day_of_week")}
    hook = params.features.enrich.hook
    if hook:

        declared = getattr(plugins.load(hook, root or find_root(), "features.enrich.hook"), "adds", None)
        if declared is None:
            return None
        added |= set(declared)
    return added


def named_columns(params: Params) -> list[tuple[str, list[str], bool]]:
    """(params key, columns it names, whether columns the features step adds may be named)."""
    d, e, t = params.data, params.evaluate, params.train
    return [
        ("data.target", [d.target], False),
        ("data.time_column", [d.time_column] if d.time_column else [], False),
        ("data.id_columns", list(d.id_columns), False),
        ("data.required_columns", list(d.required_columns), False),
        ("data.pii_columns", list(d.pii_columns), False),
        ("data.drop_columns", list(d.drop_columns), True),
        ("data.aside_columns", list(d.aside_columns), True),
        ("data.text_columns", list(d.text_columns), True),
        ("evaluate.slices", list(e.slices), True),
        ("evaluate.sensitive", list(e.sensitive), True),
        ("train.baseline_columns", list(t.baseline_columns), True),
    ]


def listed(columns, most: int = _MAX_LISTED) -> str:
    """A few column names and how many more: bounded whatever the table's width."""
    cols = [str(c)[:40] for c in columns]
    more = f" ... ({len(cols) - most:,} more)" if len(cols) > most else ""
    return ", ".join(cols[:most]) + more


def unknown_columns(params: Params, header: dict[str, str]) -> list[str]:
    """One line per column params names that the table does not have (nor the features step adds)."""
    raw = list(header)
    added = features_adds(params, header)
    out = []
    for key, cols, may_be_added in named_columns(params):
        if may_be_added and added is None:  # an enrichment hook adds columns it does not declare
            continue
        known = set(raw) | (added if may_be_added else set())
        for c in cols:
            if c in known:
                continue
            close = difflib.get_close_matches(c, sorted(known, key=str), n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else f"columns: {listed(raw)}"
            out.append(f"{key}: '{str(c)[:60]}' is not a column of the data ({hint})")
    if out and len(raw) == 1 and any(s in raw[0] for s in (";", "\t", "|")):
        out.append(f"data.path: the header is one column '{raw[0][:60]}': is the file delimited by something "
                   "other than commas (';', tab, '|')? Save it as comma-separated")
    return out


def positive_class_hint(params: Params, target_kind: str) -> str | None:
    """A message when `data.positive_class` is a YAML boolean but the target holds text labels."""
    d = params.data
    if not isinstance(d.positive_class, bool) or d.threshold is not None or tasks.target_of(d.task) != "classes":
        return None
    if target_kind in ("bool", "") or target_kind.startswith(("bool", "int", "uint", "float", "double", "number")):
        return None
    return (f"data.positive_class: {d.positive_class!r} is a boolean but target '{d.target}' holds "
            f"{target_kind} labels; {BOOL_HINT}")


def columns(params: Params, path: Path, fmt: str) -> list[str]:
    """Every problem with the columns params names, one line each (an empty list: all found)."""
    header = read_header(path, fmt)
    problems = unknown_columns(params, header)
    if params.data.target in header:
        kind = header[params.data.target]
        if fmt == "parquet":
            kind = "text" if kind in ("string", "large_string") or kind.startswith("dictionary") else kind
        elif isinstance(params.data.positive_class, bool):
            kind = csv_column_kind(path, params.data.target)
        hint = positive_class_hint(params, kind)
        if hint:
            problems.append(hint)
    return problems


def check_columns(params: Params, path: Path, fmt: str, source: str = "params.yaml") -> None:
    """Raise ParamsError (exit code 2) listing every problem at once, one line each."""
    problems = columns(params, path, fmt)
    if problems:
        lines = "\n".join(f"  {source}: {p}" for p in problems)
        raise ParamsError(f"{len(problems)} problem(s) with the columns params name, checked against the header "
                          f"of {params.data.path}:\n{lines}")


def header_checked(params: Params, path: Path, source: str = "params.yaml") -> str:
    """check_columns on data.path; a line for the terminal. A header that cannot be read is left
    to the validate stage, which says why (the line says the columns were not checked)."""

    fmt = table_format(path, params.data.format)
    try:
        header = read_header(path, fmt)
    except Exception as exc:  # damaged, empty or not the format: validate's read finding names the cause
        return f"columns not checked, the header cannot be read ({type(exc).__name__}); `mlcycle run validate` says why"
    if not header:
        return "columns not checked, the file has no header; `mlcycle run validate` says why"
    check_columns(params, path, fmt, source)
    return f"every column params name is in the header ({len(header):,} columns)"
