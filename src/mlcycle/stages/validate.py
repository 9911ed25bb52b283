"""Stage `validate`: check the input table before anything is built from it.

The checks are pandera checks built from the reviewed schema file (`mlcycle.schema`) and from
params `data` / `validate` (target present and usable, required and time columns, row count).
Validation is lazy: every failure is collected, then turned into findings (column, check, count,
examples, severity); a row-wise check keeps the count of all its failing rows but hands pandera only
the first `MAX_CASES` of them, so a large file full of bad rows is reported in bounded memory. Errors stop the pipeline with a message naming the column and what to do;
warnings (a new category value, a modest rise in nulls) are reported and the run goes on.
"""

from __future__ import annotations

import gc
import json
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mlcycle.core import config, personal, tables, tasks
from mlcycle.core import schema as schema_mod
from mlcycle.core.config import DataParams, ValidateParams
from mlcycle.core.errors import DataError
from mlcycle.core.schema import TableSchema

Msg = Callable[[int, list], str]
TABLE = "<table>"  # the column of table-level findings while grouping


@dataclass
class TaskFindings:
    """What a task's own table checks found (beside the shared checks above): errors stop the
    pipeline, warnings are shown. A task subclasses it with `key` (its section in the metrics and
    findings files, and its table's name) and `head` (the summary's first line)."""

    rows: int
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    key = "table"

    def head(self) -> str:
        return f"{self.key}: {self.rows:,} rows"

    def summary(self) -> str:
        return "\n".join([self.head(), *[f"ERROR {e}" for e in self.errors], *[f"warning {w}" for w in self.warnings]])

    def enforce(self) -> None:
        if self.errors:
            raise DataError(f"validate: the {self.key} table fails its checks:\n  " + "\n  ".join(self.errors))

    def write(self, metrics_path: Path, findings_path: Path) -> None:
        """Add these checks to what the shared checks wrote (`write`, run first): their counts and
        figures under `key` in the metrics, every finding under `key` in the findings file."""
        for path, part in ((metrics_path, {"rows": self.rows, "errors": len(self.errors),
                                           "warnings": len(self.warnings), **self.stats}),
                           (findings_path, {"errors": self.errors, "warnings": self.warnings})):
            body = json.loads(path.read_text()) if path.exists() else {}
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({**body, self.key: part}, indent=2, default=str) + "\n")


@dataclass
class Finding:
    level: str  # error | warning
    column: str | None
    check: str
    message: str
    count: int = 1  # rows (or columns) that fail
    examples: list = field(default_factory=list)  # a few failing values

    def __post_init__(self):
        # bounded whatever the data: a free-text column must not make a 300,000-character line
        self.message = _bounded(str(self.message), MAX_MESSAGE)
        self.examples = [_bounded(v, MAX_EXAMPLE) if isinstance(v, str) else v for v in list(self.examples)[:MAX_EXAMPLES]]


MAX_MESSAGE, MAX_EXAMPLE, MAX_EXAMPLES = 480, 80, 3  # characters of a message, of an example; examples


def _bounded(text: str, most: int) -> str:
    """text cut to `most` characters at most, saying how many were left out."""
    if len(text) <= most:
        return text
    longest = f" ... (+{len(text):,} chars)"  # the suffix is never longer than this (fewer are cut)
    keep = max(0, most - len(longest))
    return text[:keep] + f" ... (+{len(text) - keep:,} chars)"


@dataclass
class Result:
    rows: int
    columns: int
    findings: list[Finding] = field(default_factory=list)
    null_share: dict[str, float] = field(default_factory=dict)
    source: str = ""
    schema: str | None = None  # the schema file used (None: params checks only)
    # duplicate rows (`duplicates`): {"rows": count, "keys": columns left out, "examples": a few rows}
    duplicates: dict = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def table(self) -> pd.DataFrame:
        cols = ["level", "column", "check", "count", "examples", "message"]
        rows = [{**asdict(f), "examples": ", ".join(map(repr, f.examples))} for f in self.findings]
        return pd.DataFrame(rows, columns=cols)

    def metrics(self) -> dict:
        return {
            "rows": self.rows,
            "columns": self.columns,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "passed": self.ok,
        }

    def summary(self, footer: str | None = "see reports/validate.html and reports/validate_findings.json") -> str:
        """A few lines for the terminal: the first error first, then one line per finding, then footer."""
        head = (f"validate: {self.errors[0].message}" if self.errors
                else f"validate: {self.source} passed with {len(self.warnings)} warning(s)")
        lines = [head, f"  {len(self.errors)} error(s), {len(self.warnings)} warning(s) in {self.source} "
                       f"({self.rows:,} rows; schema {self.schema or 'none'}):"]
        for f in [*self.errors, *self.warnings]:
            lines.append(f"  {f.level:<7} {f.column or '(table)'}: {f.check}, {f.count:,}: {f.message}")
        if footer:
            lines.append(f"  {footer}")
        return "\n".join(lines)

    message = summary


MAX_CASES = 100  # failing rows kept per check for examples; the count covers every failing row


class Rules:
    """pandera checks with the message each failure gets; one set for errors, one for warnings.

    A row-wise check hands pandera at most `max_cases` failing rows (its lazy report holds one
    record per failing row it is given, which for a large file with many bad rows took gigabytes)
    and keeps the count of all of them in `counts` for the finding."""

    def __init__(self, df: pd.DataFrame, max_cases: int = MAX_CASES):
        self.df = df
        self.max_cases = max_cases
        self.cols: dict[str, dict[str, dict[str, Any]]] = {"error": {}, "warning": {}}
        self.table_checks: dict[str, list] = {"error": [], "warning": []}
        self.msgs: dict[tuple[str, str | None, str], Msg] = {}
        self.counts: dict[tuple[str, str | None, str], int] = {}
        self.strict = False

    def column(self, level: str, name: str, required: bool = True, **kw) -> dict[str, Any]:
        spec = self.cols[level].setdefault(name, {"required": False, "nullable": True, "unique": False, "checks": []})
        spec["required"] = spec["required"] or required
        for k, v in kw.items():
            spec[k] = v
        return spec

    def check(self, level: str, column: str | None, name: str, fn, msg: Msg, element: bool = False,
              ignore_na: bool = True) -> None:
        """fn: Series (DataFrame when column is None) -> bool, or a boolean Series when element
        (then nulls pass unless `ignore_na` is False)."""
        import pandera.pandas as pa

        key = (level, column, name)

        def safe(x):
            try:
                out = fn(x)
            except Exception:  # a check that cannot run on this data passes; another check names the cause
                return True if not element else pd.Series(True, index=x.index)
            return self.capped(key, x, out, ignore_na) if element else out

        chk = pa.Check(safe, name=name, ignore_na=element and ignore_na, element_wise=False)
        if column is None:
            self.table_checks[level].append(chk)
        else:
            self.column(level, column, required=False)["checks"].append(chk)
        self.msgs[(level, column, name)] = msg

    def capped(self, key, x, mask, ignore_na: bool):
        """`mask` (True: the row passes) with only its first `max_cases` failures left failing; the
        number of failures (nulls left out when `ignore_na`, as pandera counts) goes to `counts`."""
        mask = pd.Series(mask, index=x.index).fillna(True).astype(bool)
        failing = ~mask
        if ignore_na:
            failing &= x.notna() if isinstance(x, pd.Series) else ~x.isna().all(axis=1)
        n = int(failing.sum())
        self.counts[key] = n
        if n > self.max_cases:
            keep = failing.to_numpy().nonzero()[0][self.max_cases:]
            mask = mask.copy()
            mask.iloc[keep] = True
        return mask

    def row_check(self, level: str, column: str, name: str, fn, ignore_na: bool = True):
        """A capped row-wise pandera check (the message: `_default_msg`, or one set in `msgs`)."""
        import pandera.pandas as pa

        key = (level, column, name)
        return pa.Check(lambda x: self.capped(key, x, fn(x), ignore_na), name=name, ignore_na=ignore_na,
                        element_wise=False)

    def schemas(self):
        import pandera.pandas as pa

        out = {}
        for level in ("error", "warning"):  # pandera's own nullable / unique report every failing row: capped here
            cols = {}
            for n, spec in self.cols[level].items():
                checks = list(spec["checks"])
                if not spec["nullable"]:
                    checks.append(self.row_check(level, n, "not_nullable", lambda s: s.notna(), ignore_na=False))
                if spec["unique"]:
                    checks.append(self.row_check(level, n, "field_uniqueness",
                                                 lambda s: ~(s.duplicated(keep=False) & s.notna())))
                cols[n] = pa.Column(required=spec["required"], nullable=True, unique=False, checks=checks, coerce=False)
            out[level] = pa.DataFrameSchema(cols, checks=self.table_checks[level],
                                            strict=self.strict and level == "error")
        return out


def _null_limit(r, df: pd.DataFrame, column: str, limit: float, source: str) -> None:
    """An error when `column` has a larger share of nulls than `limit` (named by `source` in the message)."""
    r.check("error", column, "max_null_share", lambda s: _share(s) <= limit,
            lambda n, ex: (f"column '{column}' has {int(df[column].isna().sum()):,} nulls "
                           f"({_share(df[column]):.1%}), above {source}; fill them or raise the limit"))


def _share(s: pd.Series) -> float:
    return float(s.isna().mean()) if len(s) else 0.0


def _few(cols, n: int = 12) -> str:
    cols = list(cols)
    return ", ".join(str(c)[:40] for c in cols[:n]) + (f" ... ({len(cols) - n:,} more)" if len(cols) > n else "")


def build_rules(df: pd.DataFrame, data: DataParams, params: ValidateParams,
                table: TableSchema | None, schema_name: str = "the schema", max_cases: int = MAX_CASES) -> Rules:
    """Every check for `df`: from the schema file (when given) and from params."""
    r = Rules(df, max_cases)
    sch = schema_name
    if table is not None:
        _schema_rules(r, df, table, params, sch)
    _params_rules(r, df, data, params, table, sch)
    return r


def _schema_rules(r: Rules, df: pd.DataFrame, table: TableSchema, params: ValidateParams, sch: str) -> None:
    r.strict = table.strict
    for name, c in table.columns.items():
        r.column("error", name, required=True, nullable=c.nullable, unique=c.unique)
        if c.dtype:
            kind = c.dtype
            r.check("error", name, "dtype", lambda s, k=kind: schema_mod.is_kind(s, k),
                    lambda n, ex, name=name, kind=kind: (
                        f"column '{name}' holds {schema_mod.kind_of(df[name])} values where {sch} says {kind}"
                        f"{_bad_examples(df[name], kind)}; fix the file (e.g. numbers stored as text) or change "
                        f"its dtype in {sch}"))
        if c.nullable and c.max_null_share is not None:
            _null_limit(r, df, name, c.max_null_share, f"max_null_share {c.max_null_share} in {sch}")
        if c.nullable:
            ref = c.null_share or 0.0
            lim = ref + params.null_share_warn_rise
            r.check("warning", name, "null_share_rise", lambda s, lim=lim: _share(s) <= lim,
                    lambda n, ex, name=name, ref=ref: (
                        f"column '{name}' has {_share(df[name]):.1%} nulls, up from {ref:.1%} in {sch} "
                        f"(more than validate.null_share_warn_rise {params.null_share_warn_rise})"))
        for bound, op in (("min", "below"), ("max", "above")):
            v = getattr(c, bound)
            if v is None:
                continue
            fn = (lambda s, v=v: s >= v) if bound == "min" else (lambda s, v=v: s <= v)
            r.check("error", name, bound,
                    lambda s, fn=fn: fn(s) if pd.api.types.is_numeric_dtype(s) else pd.Series(True, index=s.index),
                    lambda n, ex, name=name, v=v, op=op, bound=bound: (
                        f"column '{name}' has {n:,} value(s) {op} {bound} {v:g} (e.g. {_ex(ex)}); "
                        f"fix the data or, if they are right, change {bound} in {sch}"),
                    element=True)
        if c.values is not None:
            allowed = list(c.values)
            if c.new_values == "error":
                r.check("error", name, "values", lambda s, a=allowed: s.isin(a),
                        lambda n, ex, name=name, a=allowed: (
                            f"column '{name}' has {n:,} value(s) not allowed by {sch} (e.g. {_ex(ex)}; allowed: "
                            f"{_few(a)}); fix the data or add the value to {name}.values in {sch}"),
                        element=True)
            else:
                r.check("warning", name, "new_values", lambda s, a=allowed: s.isin(a),
                        lambda n, ex, name=name: (
                            f"column '{name}' has {n:,} row(s) with values not in {sch} (e.g. {_ex(ex)}); "
                            f"add them to {name}.values if they are expected"),
                        element=True)
                share = params.max_new_category_share  # the same for every column
                r.check("error", name, "new_values_share",
                        lambda s, a=allowed, share=share: float((~s.dropna().isin(a)).mean() if s.notna().any() else 0) <= share,
                        lambda n, ex, name=name, a=allowed, share=share: (
                            f"column '{name}': {float((~df[name].dropna().isin(a)).mean()):.1%} of rows hold values "
                            f"not in {sch}, above validate.max_new_category_share {share}; check the data or "
                            f"add the values to {name}.values"))
    if table.min_rows:
        n = table.min_rows
        r.check("error", None, "min_rows", lambda d, n=n: len(d) >= n,
                lambda c, ex, n=n: f"only {len(df):,} rows, fewer than min_rows {n:,} in {sch}")


def _params_rules(r: Rules, df: pd.DataFrame, data: DataParams, params: ValidateParams,
                  table: TableSchema | None, sch: str) -> None:
    t = data.target
    r.column("error", t, required=True)
    r.msgs[("error", t, "column_in_dataframe")] = lambda n, ex: (
        f"target column '{t}' is missing; " + _did_you_mean(t, df.columns, "data.target", "set data.target to one of: "))
    mt = params.max_target_null_share
    r.check("error", t, "target_nulls", lambda s: _share(s) <= mt,
            lambda n, ex: (f"target '{t}' is missing in {_share(df[t]):.1%} of rows, above "
                           f"validate.max_target_null_share {mt}; fill the target or drop those rows"))
    r.check("warning", t, "target_nulls", lambda s: _share(s) == 0,
            lambda n, ex: f"target '{t}' is missing in {int(df[t].isna().sum()):,} rows ({_share(df[t]):.2%}); they are left out")
    needs_numbers = tasks.target_of(data.task) == "numbers" or data.threshold is not None

    def numeric(s):
        return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)

    if needs_numbers:
        what = f"data.threshold {data.threshold}" if data.threshold is not None else f"data.task {data.task}"
        r.check("error", t, "target_numeric", numeric,
                lambda n, ex: f"target '{t}' is not numeric (dtype {df[t].dtype}) but {what} needs numbers")
    r.check("error", t, "target_constant", lambda s: s.dropna().nunique() >= 2,
            lambda n, ex: (f"target '{t}' has {df[t].dropna().nunique()} distinct value(s); there is nothing to learn: "
                           "check data.path and data.target"))
    if tasks.target_of(data.task) == "classes":
        def labels(s):
            present = s.dropna()
            if data.threshold is not None:
                return present >= data.threshold if numeric(present) else None
            return present

        def counts(s):
            lab = labels(s)
            return None if lab is None else lab.value_counts()

        if data.threshold is not None:
            r.check("error", t, "target_classes",
                    lambda s: s.dropna().nunique() < 2 or counts(s) is None or len(counts(s)) >= 2,
                    lambda n, ex: f"target '{t}' has one class after data.threshold {data.threshold}; change the threshold")
        else:
            r.check("error", t, "target_classes", lambda s: len(counts(s)) <= 50,
                    lambda n, ex: (f"target '{t}' has {len(counts(df[t]))} classes; for a numeric target use "
                                   "task: regression or set data.threshold"))
        if data.positive_class is not None:
            r.check("error", t, "positive_class",
                    lambda s: counts(s) is None or data.positive_class in set(counts(s).index),
                    lambda n, ex: (f"data.positive_class {data.positive_class!r} is not a value of target '{t}'"
                                   + bool_label_hint(data, df[t])))
        r.check("warning", t, "rare_class", lambda s: counts(s) is None or bool((counts(s) >= 2).all()),
                lambda n, ex: rare_classes_message(t, counts(df[t])))
    for c in data.required_columns:
        r.column("error", c, required=True)
        r.msgs[("error", c, "column_in_dataframe")] = lambda n, ex, c=c: (
            f"required column '{c}' is missing; add it to the data or remove it from data.required_columns")
        has_own = table is not None and c in table.columns and table.columns[c].max_null_share is not None
        if not has_own:
            _null_limit(r, df, c, params.max_null_share, f"validate.max_null_share {params.max_null_share}")
    if data.time_column:
        tc = data.time_column
        r.column("error", tc, required=True)
        r.msgs[("error", tc, "column_in_dataframe")] = lambda n, ex: (
            f"time column '{tc}' is missing; correct data.time_column or set it to null")
        r.check("error", tc, "time_type", pd.api.types.is_datetime64_any_dtype,
                lambda n, ex: f"time column '{tc}' is not a date/time column")
        r.check("error", tc, "time_nulls", lambda s: not s.isna().any(),
                lambda n, ex: f"time column '{tc}' has {int(df[tc].isna().sum()):,} missing values; fill or drop them")
    for c in data.id_columns:
        r.column("error", c, required=False, unique=True)
    for c in [*data.id_columns, *data.drop_columns]:
        if table is None or c not in table.columns:
            r.column("warning", c, required=True)
            r.msgs[("warning", c, "column_in_dataframe")] = lambda n, ex, c=c: (
                f"column '{c}' listed in data.id_columns/drop_columns is not in the data")
    n = params.min_rows
    if table is None or table.min_rows < n:  # else the schema's min_rows check covers it
        r.check("error", None, "min_rows", lambda d: len(d) >= n,
                lambda c, ex: f"only {len(df):,} rows, fewer than validate.min_rows = {n:,}")
    for c in df.columns:
        if c != t and c not in data.required_columns and (table is None or c not in table.columns):
            r.check("warning", c, "all_null", lambda s: len(s) == 0 or not s.isna().all(),
                    lambda n, ex, c=c: f"column '{c}' is empty (all values null); it carries no information")


def _did_you_mean(name: str, columns, key: str, otherwise: str) -> str:
    """"did you mean 'x'?" for the closest column (correct `key`), else `otherwise` and a few columns."""
    import difflib

    close = difflib.get_close_matches(name, [str(c) for c in columns], n=1)
    return f"did you mean '{close[0]}'? (correct {key} in params.yaml)" if close else otherwise + _few(columns)


def rare_classes_message(target: str, counts: pd.Series) -> str:
    """How many classes have fewer than 2 rows, with three of them: bounded however many there are."""
    rare = list(counts[counts < 2].index)
    return (f"{len(rare):,} class(es) of target '{target}' have fewer than 2 rows (e.g. {_ex(rare)}); "
            "merge rare classes; if the target is free text or a number, it holds no classes: choose "
            "another data.target, or set data.threshold or task: regression")


def bool_label_hint(data: DataParams, target: pd.Series) -> str:
    """A hint when data.positive_class is a YAML boolean while the target holds other labels."""
    if not isinstance(data.positive_class, bool) or pd.api.types.is_bool_dtype(target):
        return ""
    return f"; {config.BOOL_HINT}"


def _ex(ex: list) -> str:
    return ", ".join(_bounded(repr(personal.redact(_plain(v))), 40) for v in ex[:3])


def _plain(v):
    return v.item() if hasattr(v, "item") and getattr(v, "size", 1) == 1 else v


def _bad_examples(s: pd.Series, kind: str) -> str:
    if kind in ("integer", "number") and not pd.api.types.is_numeric_dtype(s):
        present = s.dropna()
        try:
            bad = present[pd.to_numeric(present, errors="coerce").isna()]
        except (TypeError, ValueError):  # lists, dicts: not numbers either
            bad = present
        bad = distinct(bad.tolist(), 3)
        if len(bad):
            return f" (e.g. {_ex(list(bad))})"
    return ""


NESTED = (list, tuple, dict, set, frozenset, bytes, bytearray)


def distinct(values: list, n: int) -> list:
    """The first n distinct values, unhashable ones (lists, dicts, arrays) compared by repr."""
    out, seen = [], set()
    for v in values:
        key = repr(v)
        if key not in seen:
            seen.add(key)
            out.append(v)
            if len(out) == n:
                break
    return out


def _is_nested(v) -> bool:
    return isinstance(v, NESTED) or getattr(v, "ndim", 0) >= 1  # numpy arrays; numpy scalars have ndim 0


def _kind_name(v) -> str:
    if getattr(v, "ndim", 0) >= 1:  # a Parquet list column reads back as numpy arrays
        return "list"
    return {bytes: "bytes", bytearray: "bytes", dict: "dict", set: "set", frozenset: "set", tuple: "tuple",
            list: "list"}.get(type(v), type(v).__name__)


def shape_findings(df: pd.DataFrame, data: DataParams) -> tuple[list[Finding], pd.DataFrame]:
    """Findings about the table's shape that would mislead or crash the column checks, and the frame
    the column checks get (cells that are lists, dicts, bytes or arrays as their repr text):

    - no rows at all (a header-only or empty export): the only finding, the table checks are skipped;
    - a column holding lists, dicts, bytes or arrays (one value per cell expected): an error;
    - an object column mixing value types (numbers and text): a warning;
    - a target with no value at all: an error, first."""
    out: list[Finding] = []
    if len(df) == 0:
        out.append(Finding("error", None, "empty", (
            f"the file has a header with {df.shape[1]} column(s) but no rows (0 rows): the export or copy is empty; "
            "write it again with its rows")))
        return out, df
    checked = df
    for c in df.columns:
        s = df[c]
        if s.dtype != object:
            continue
        present = s.dropna()
        if present.empty:
            continue
        nested = present.map(_is_nested)
        if nested.any():
            kinds = sorted({_kind_name(v) for v in present[nested].head(1000)})
            ex = distinct([_redact(v) for v in present[nested].head(100).tolist()], 2)
            out.append(Finding("error", str(c), "nested_values", (
                f"column '{c}' holds {'/'.join(kinds)} values in {int(nested.sum()):,} row(s) (e.g. {', '.join(ex)}); "
                "a table cell must hold one value: flatten the column into several, or drop it"),
                int(nested.sum()), []))
            if checked is df:
                checked = df.copy()
            checked[c] = s.map(lambda v: _redact(v) if _is_nested(v) else v)
            continue
        types = present.map(lambda v: "number" if isinstance(v, int | float) and not isinstance(v, bool) else type(v).__name__)
        if types.nunique() > 1:
            counts = types.value_counts()
            out.append(Finding("warning", str(c), "mixed_types", (
                f"column '{c}' mixes value types ({', '.join(f'{k}: {v:,}' for k, v in counts.items())}); "
                "a column should hold one type: fix the export (numbers stored as text?)"), int(counts.iloc[1:].sum()), []))
    t = data.target
    if t in df.columns and df[t].isna().all():
        out.append(Finding("error", t, "target_all_null", (
            f"target '{t}' has no values: all {len(df):,} rows are null; the file holds no labels: check data.target "
            "or the export"), len(df), []))
    return out, checked


MAX_DUPLICATE_GROUPS, MAX_COPIES = 3, 3  # duplicate examples: groups of identical rows, rows shown per group


def duplicates(df: pd.DataFrame, data: DataParams, table: TableSchema | None,
               sch: str = "the schema") -> tuple[list[Finding], dict]:
    """Rows identical to an earlier one in every column but the row keys (`schema.duplicated_rows`:
    ids, columns the schema declares unique, row numbers): ([finding], {"rows", "keys", "examples"}).

    The finding is an error under the schema's `unique_rows: true`, a warning without a schema, and
    none under `unique_rows: false` (the count is still reported). Examples: the first
    `MAX_DUPLICATE_GROUPS` groups of identical rows, up to `MAX_COPIES` rows each, with their keys
    (or, without keys, their row number in the table as read, from 1)."""
    if len(df) < 2:
        return [], {}
    try:
        dup, keys = schema_mod.duplicated_rows(df, data, table)
    except TypeError:  # values that cannot be compared: another check names the column
        return [], {}
    count = int(dup.sum())
    info: dict[str, Any] = {"rows": count, "keys": keys, "examples": []}
    if not count:
        return [], info
    compared = [c for c in df.columns if c not in keys]
    try:
        digest = pd.util.hash_pandas_object(df[compared], index=False).to_numpy()
    except (TypeError, ValueError):  # values that cannot be hashed: the count stands, without examples
        digest = None
    names, groups = [], []
    for h in dict.fromkeys(digest[dup.to_numpy()][:1000] if digest is not None else []):  # the first groups with a copy, in order
        rows = (digest == h).nonzero()[0]
        groups.append(rows[:MAX_COPIES])
        more = f" (+{len(rows) - MAX_COPIES:,} more)" if len(rows) > MAX_COPIES else ""
        names.append(_rows_named(df, keys, rows[:MAX_COPIES]) + more)
        if len(groups) == MAX_DUPLICATE_GROUPS:
            break
    for g, rows in enumerate(groups, 1):
        for i in rows:
            rec = {"duplicate_group": g, "row_in_table": int(i) + 1, **{str(c): _cell(df[c].iloc[i]) for c in df.columns}}
            info["examples"].append(rec)
    return duplicate_finding(count, keys, names, table, sch), info


def duplicate_finding(count: int, keys: list[str], names: list[str], table: TableSchema | None,
                      sch: str) -> list[Finding]:
    """The `unique_rows` finding for `count` duplicate rows (compared without the row `keys`;
    `names`: example groups): an error under a schema with `unique_rows: true`, a warning without a
    schema, none under `unique_rows: false`."""
    if table is not None and not table.unique_rows:
        return []
    level = "error" if table is not None else "warning"
    without = f"every column but the row keys {_few(keys)} (not compared)" if keys else "every column"
    todo = (f"remove them or set unique_rows: false in {sch}" if level == "error" else
            "remove them if they are copies of one record (under a schema with unique_rows: true they stop the pipeline)")
    eg = f" (e.g. {'; '.join(names)})" if names else ""
    msg = f"{count:,} duplicate row(s): identical to an earlier row in {without}{eg}; {todo}"
    return [Finding(level, None, "unique_rows", msg, count, names)]


def _rows_named(df: pd.DataFrame, keys: list[str], rows) -> str:
    """Copies named by their key values ("rownames 3 = 17"), or by their number in the table (from 1)
    without keys ("rows 3 = 17")."""
    def value(k, i):
        return _bounded(repr(personal.redact(_plain(df[k].iloc[i]))), 30)

    if not keys:
        return "rows " + " = ".join(f"{int(i) + 1:,}" for i in rows)
    if len(keys) == 1:
        return f"{keys[0]} " + " = ".join(value(keys[0], int(i)) for i in rows)
    return " = ".join("(" + ", ".join(f"{k} {value(k, int(i))}" for k in keys[:2]) + ")" for i in rows)


def _cell(v):
    """A value of an example row, safe to show and to write as JSON: plain, redacted, bounded."""
    v = _plain(v)
    if pd.api.types.is_scalar(v) and pd.isna(v):
        return None
    if isinstance(v, pd.Timestamp):
        return str(v)
    if isinstance(v, str):
        return _bounded(personal.redact(v), 40)
    return v


def duplicate_table(result: Result) -> pd.DataFrame:
    """The example duplicate rows of `result` (`duplicates`): one line per row, `duplicate_group`
    numbering the rows that are copies of each other, `row_in_table` its number in the table as read
    (from 1), then its values."""
    return pd.DataFrame(result.duplicates.get("examples", []))


def pii_findings(df: pd.DataFrame, data: DataParams, params: ValidateParams) -> list[Finding]:
    """Text columns that look like e-mail addresses, phone numbers or card numbers and are not in
    data.pii_columns: a warning, or an error with validate.pii_scan: refuse (no values shown)."""
    if params.pii_scan == "off" or len(df) == 0:
        return []
    level = "error" if params.pii_scan == "refuse" else "warning"
    return [Finding(level, col, "personal_data", (
        f"column '{col}' looks like {k}s ({n:,} of {m:,} sampled values); list it in data.pii_columns (dropped or "
        "hashed as the table is read), or set validate.pii_scan: off if it is not personal"), n, [])
        for col, k, n, m in personal.scan(df, exclude=set(data.pii_columns))]


def _redact(v) -> str:
    """A nested value shown by its type and size only (it may hold personal data)."""
    try:
        size = len(v)
    except TypeError:
        size = None
    return f"<{_kind_name(v)}" + (f" of {size}" if size is not None else "") + ">"


def _default_msg(level: str, column: str | None, check: str, n: int, ex: list, sch: str) -> str:
    where = f"column '{column}'" if column else "the table"
    if check == "column_in_dataframe":
        return f"column '{ex[0] if ex else column}' is missing; add it to the data or remove it from {sch}"
    if check == "column_in_schema":
        return (f"unexpected column '{ex[0] if ex else column}' is not in {sch}; remove it from the data, or add it "
                f"to {sch} (or set strict: false)")
    if check == "not_nullable":
        return f"{where} has {n:,} null(s) but is not nullable in {sch}; fill them or set nullable: true"
    if check == "field_uniqueness":
        return (f"{where} has {n:,} rows with duplicate values (e.g. {_ex(ex)}) but must be unique "
                f"(data.id_columns or unique in {sch}); remove the duplicates")
    return f"{where} fails {check} in {n:,} row(s) (e.g. {_ex(ex)})"


def findings_from(failures: pd.DataFrame, level: str, rules: Rules, sch: str) -> list[Finding]:
    """One finding per (column, check) from pandera's failure_cases."""
    fc = failures.copy()
    table_level = (fc["schema_context"] == "DataFrameSchema") & ~fc["check"].isin(["column_in_dataframe", "column_in_schema"])
    fc.loc[table_level, "column"] = None
    presence = fc["check"].isin(["column_in_dataframe", "column_in_schema"])
    fc.loc[presence, "column"] = fc.loc[presence, "failure_case"].astype(str)
    out = []
    for (col, chk), g in fc.groupby([fc["column"].fillna(TABLE), "check"], sort=False, dropna=False):
        col = None if col == TABLE else str(col)
        idx = g["index"].dropna()
        count = rules.counts.get((level, col, chk)) or (idx.nunique() if len(idx) else 1)
        ex = [v for v in distinct(g["failure_case"].dropna().tolist(), 4) if v is not False][:3]
        if not len(idx) and chk not in ("column_in_dataframe", "column_in_schema"):
            ex = []  # a table-level check's failure case is its False (0 once pandera mixes it with numbers)
        msg_fn = rules.msgs.get((level, col, chk))
        msg = msg_fn(count, ex) if msg_fn else _default_msg(level, col, chk, count, ex, sch)
        out.append(Finding(level, col, chk, msg, int(count), [personal.redact(_plain(v)) for v in ex]))
    return out


def check(df: pd.DataFrame, data: DataParams, params: ValidateParams,
          table: TableSchema | None = None, schema_name: str = "the schema", max_cases: int = MAX_CASES) -> Result:
    """Check `df` against the schema (if any) and params with pandera, lazily; never raises for bad data.
    Each row-wise check reports its count of failing rows and examples from its first `max_cases`."""
    import pandera.pandas as pa

    res = Result(rows=len(df), columns=df.shape[1])
    res.null_share = {str(c): round(_share(df[c]), 6) for c in df.columns}
    shape, df = shape_findings(df, data)
    res.findings += shape + pii_findings(df, data, params)
    if len(df) == 0:
        res.schema = schema_name if table is not None else None
        return res
    dup, res.duplicates = duplicates(df, data, table, schema_name)
    res.findings += dup
    rules = build_rules(df, data, params, table, schema_name, max_cases)
    for level, sch in rules.schemas().items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                sch.validate(df, lazy=True)
            except pa.errors.SchemaErrors as exc:
                res.findings += findings_from(exc.failure_cases, level, rules, schema_name)
    first = ["read", "empty", "target_all_null", "nested_values", "personal_data", "column_in_dataframe", "column_in_schema", "dtype",
             "target_constant", "target_numeric"]
    res.findings.sort(key=lambda f: (f.level != "error", first.index(f.check) if f.check in first else len(first)))
    res.schema = schema_name if table is not None else None
    return res


def run(data: DataParams, params: ValidateParams, root: Path, window: int | None = None) -> Result:
    """Read data.path as every stage reads it (personal columns masked), then check it.

    A file that cannot be read is an error finding too, so the report and findings file say why.
    Without a schema file, the params checks run and a warning says how to make one."""

    path = schema_mod.schema_path(data, params, root)
    rel = _rel(path, root)
    table = schema_mod.load(path) if path.exists() else None
    try:
        df = tables.load(data, root, window=window)
    except DataError as exc:
        res = Result(rows=0, columns=0, source=data.path, schema=rel if table else None)
        res.findings.append(Finding("error", None, "read", str(exc)))
        return res
    res = check(df, data, params, table, rel)
    res.source, res.schema = data.path, (rel if table else None)
    if table is None:
        res.findings.append(Finding(
            "warning", None, "schema",
            f"no schema at {rel}: only the params checks ran; run `mlcycle data schema`, review {rel} and commit it"))
    return res


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def write(result: Result, metrics_path: Path, findings_path: Path) -> None:
    """Counts as DVC metrics, and every finding (with counts and examples) for tools."""
    for p in (metrics_path, findings_path):
        p.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(result.metrics(), indent=2) + "\n")
    body = {"source": result.source, "schema": result.schema, **result.metrics(),
            "findings": [asdict(f) for f in result.findings], "duplicates": result.duplicates}
    findings_path.write_text(json.dumps(body, indent=2, default=str) + "\n")


def enforce(result: Result) -> None:
    """Raise DataError (stopping the pipeline) when the result has errors."""
    if not result.ok:
        raise DataError(result.summary(footer="findings: reports/validate_findings.json"))  # the runner adds the report


def summary_from_file(findings_path: Path) -> str:
    """The terminal lines for a finished validate run (its warnings), from the findings file."""
    if not findings_path.exists():
        return ""
    body = json.loads(findings_path.read_text())
    found = [Finding(**f) for f in body.get("findings", [])]
    res = Result(rows=body.get("rows", 0), columns=body.get("columns", 0), findings=found,
                 source=body.get("source", ""), schema=body.get("schema"))
    return res.summary()


def takeaways(result: Result, top: int = 3) -> str:
    """What the checks found in this run's table, as Markdown bullets (counts, not the check list)."""
    lines = [f"- `{result.source}`: {result.rows:,} rows and {result.columns} columns; "
             f"{len(result.errors)} error(s) and {len(result.warnings)} warning(s) "
             f"(schema {f'`{result.schema}`' if result.schema else 'none: params checks only'})."]
    for f in sorted([*result.errors, *result.warnings], key=lambda f: (f.level != "error", -f.count))[:top]:
        lines.append(f"- {f.level} on `{f.column or '(table)'}` ({f.check}): {f.count:,} row(s).")
    dup = result.duplicates
    if dup:
        without = f", judged without the row ids {', '.join(f'`{k}`' for k in dup['keys'])}" if dup["keys"] else ""
        lines.append(f"- {dup['rows']:,} duplicate row(s){without}." if dup["rows"] else f"- no duplicate rows{without}.")
    missing = {c: s for c, s in result.null_share.items() if s > 0}
    if missing:
        worst = sorted(missing.items(), key=lambda kv: -kv[1])[:top]
        lines.append(f"- {len(missing)} column(s) with missing values; most: "
                     + ", ".join(f"`{c}` ({s:.1%})" for c, s in worst) + ".")
    else:
        lines.append("- no missing values.")
    return "\n".join(lines)


# --- chunked validation: `mlcycle data add` checks a large file part by part -----------------------
#
# How each check of `check` is merged across parts, so the result equals a whole-file `check`:
# - row-wise checks (min, max, values, new_values, not_nullable): run on each part; counts add up,
#   examples are the first distinct failing values in file order;
# - column presence, strict (column_in_dataframe / column_in_schema): every part has the file's columns;
# - rows, min_rows, empty: the parts' rows add up;
# - null counts (null_share, max_null_share, null_share_rise, target_nulls, time_nulls, all_null,
#   target_all_null): null counts and rows add up;
# - new_values_share: non-null rows and rows outside the list add up;
# - dtype, time_type, target_numeric: every part has the whole-file column types (a CSV is read again
#   with the whole-file types when its parts were inferred differently: `tables.chunk_dtypes`); the
#   kind of a float column is "integer" when every part's values are whole numbers;
# - target_constant, target_classes, positive_class, rare_class: the target's value counts add up
#   (up to MAX_TARGET_VALUES distinct values; above that a finding says these checks were not run);
# - unique (field_uniqueness of data.id_columns / `unique` in the schema): 64-bit hashes of each
#   value, counted over the file;
# - unique_rows (duplicates): 64-bit hashes of the compared columns of each row; row numbers are
#   row numbers when they count up by one across part boundaries too; examples come from a second read;
# - nested_values, mixed_types: counts add up, value types and examples merged in file order;
# - personal_data: the scan reads the first 2,000 text values of each column, kept across parts.
# Hashes take 8 bytes per row (the only memory that grows with the file): a collision of two 64-bit
# hashes (about 1 in 10^7 for ten million rows) would count one false duplicate.

ROW_CHECKS = {"min", "max", "values", "new_values", "not_nullable"}
TABLE_CHECKS = {"dtype", "max_null_share", "null_share_rise", "new_values_share", "min_rows", "target_nulls",
                "target_numeric", "target_constant", "target_classes", "positive_class", "rare_class", "time_type",
                "time_nulls", "all_null", "field_uniqueness"}  # merged below, each in its own way
MAX_TARGET_VALUES = 100_000  # distinct target values counted across parts


class _Hashes:
    """The set of 64-bit hashes seen so far: sorted arrays, merged while they stay below four parts' worth
    (a merge copies its arrays: merging everything would take three times the set's 8 bytes a row)."""

    def __init__(self):
        self.parts: list = []
        self.most = 0

    def seen(self, h):
        import numpy as np

        out = np.zeros(len(h), dtype=bool)
        for part in self.parts:
            i = np.searchsorted(part, h).clip(max=len(part) - 1)
            out |= part[i] == h
        return out

    def add(self, h):
        import numpy as np

        self.parts.append(np.unique(h))
        self.most = max(self.most, 4 * len(h))
        while len(self.parts) > 1 and len(self.parts[-2]) <= 2 * len(self.parts[-1]) \
                and len(self.parts[-2]) + len(self.parts[-1]) <= self.most:
            last = self.parts.pop()
            self.parts[-1] = np.union1d(self.parts[-1], last)


def _hashes(df: pd.DataFrame):
    return pd.util.hash_pandas_object(df, index=False).to_numpy()


class ChunkedCheck:
    """`check` of a table read in parts: `add` each part in file order, then `result()`.

    `reread` gives the parts again (the same reader): used for the examples of duplicate rows and of
    duplicate unique values, and when row numbers turn out not to be row numbers in a later part."""

    def __init__(self, data: DataParams, params: ValidateParams, table: TableSchema | None = None,
                 schema_name: str = "the schema", max_cases: int = MAX_CASES):
        self.data, self.params, self.table, self.sch, self.max_cases = data, params, table, schema_name, max_cases
        self.rows = 0
        self.columns: list | None = None
        self.width = 0
        self.nulls: dict[str, int] = {}
        self.dtypes: dict[str, Any] = {}
        self.whole: dict[str, bool] = {}  # float columns: every present value a whole number
        self.present: dict[str, bool] = {}
        self.bad_text: dict[str, list] = {}
        self.outside: dict[str, list[int]] = {}  # new_values_share: [non-null rows, rows not in the list]
        self.target_counts: pd.Series | None = None
        self.target_over = False
        self.row: dict[tuple, list] = {}  # (level, column, check) -> [count, examples]
        self.first_findings: list[Finding] = []  # column presence / strict, from the first part
        self.nested: dict[str, list] = {}  # column -> [count, kinds, examples]
        self.mixed: dict[str, pd.Series] = {}
        self.pii_heads: dict[str, list] = {}
        self.unique_cols: list[str] = []
        self.unique_hashes: dict[str, list | None] = {}
        self.keys: list[str] | None = None
        self.rownum: dict[str, Any] = {}  # candidate row-number column -> its last value
        self.compared: list[str] = []
        self.dup_seen = _Hashes()
        self.dup_count = 0
        self.dup_groups: list = []  # hashes of the first groups of duplicate rows, in order
        self.dup_scanned = 0  # duplicate rows looked at for groups (the whole-file check looks at 1,000)
        self.hashable = True
        self.unmerged: set = set()  # (column, check) of checks this class does not know how to merge

    # -- one part --
    def add(self, df: pd.DataFrame) -> None:
        import pandera.pandas as pa

        data, table = self.data, self.table
        if self.columns is None:
            self._first(df)
        offset, self.rows = self.rows, self.rows + len(df)
        for c in df.columns:
            s = df[c]
            self.nulls[c] = self.nulls.get(c, 0) + int(s.isna().sum())
            if pd.api.types.is_float_dtype(s):
                present = s.dropna()
                if len(present):
                    self.present[c] = True
                    self.whole[c] = self.whole.get(c, True) and bool((present % 1 == 0).all())
            elif not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s)) \
                    and len(self.bad_text.get(c, [])) < 3:
                present = s.dropna()
                try:
                    bad = present[pd.to_numeric(present, errors="coerce").isna()]
                except (TypeError, ValueError):
                    bad = present
                self.bad_text[c] = distinct([*self.bad_text.get(c, []), *bad.tolist()], 3)
        if len(df) == 0:
            return
        _, checked = shape_findings(df, data)  # its findings are merged by `_shape` and `result`
        self._shape(df)
        self._pii(df)
        self._target(df)
        self._unique(df)
        self._duplicates(df, offset)
        if table is not None:
            for name, c in table.columns.items():
                if c.values is not None and c.new_values != "error" and name in df.columns:
                    present = df[name].dropna()
                    acc = self.outside.setdefault(name, [0, 0])
                    acc[0] += len(present)
                    acc[1] += int((~present.isin(list(c.values))).sum())
        rules = build_rules(checked, data, self.params, table, self.sch, self.max_cases)
        self.msgs = rules.msgs
        for level, schema in rules.schemas().items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    schema.validate(checked, lazy=True)
                except pa.errors.SchemaErrors as exc:
                    for f in findings_from(exc.failure_cases, level, rules, self.sch):
                        if f.check in ROW_CHECKS:
                            acc = self.row.setdefault((f.level, f.column, f.check), [0, []])
                            acc[0] += f.count
                            acc[1] = distinct([*acc[1], *f.examples], 3)
                        elif f.check in ("column_in_dataframe", "column_in_schema"):
                            if offset == 0:
                                self.first_findings.append(f)
                        elif f.check not in TABLE_CHECKS:
                            self.unmerged.add((f.column, f.check))
        del rules, checked, df
        gc.collect()  # the part's pandera checks hold it in reference cycles: free it before the next is read

    def _first(self, df: pd.DataFrame) -> None:
        data, table = self.data, self.table
        self.columns, self.width = list(df.columns), df.shape[1]
        self.dtypes = {c: df[c].dtype for c in df.columns}
        declared = {*data.id_columns, *(n for n, c in (table.columns.items() if table else ()) if c.unique)}
        never = {data.target, data.time_column}
        self.unique_cols = [c for c in df.columns if c in declared]  # field_uniqueness, as `_params_rules` sets it
        for c in df.columns:
            s = df[c]
            if c in never or c in declared:
                continue
            if (len(s) >= 2 and schema_mod.is_row_number(s)) or (
                    len(s) == 1 and pd.api.types.is_integer_dtype(s) and not pd.api.types.is_bool_dtype(s)
                    and s.notna().all()):
                self.rownum[c] = None
        self.keys = [str(c) for c in df.columns if c not in never and (c in declared or c in self.rownum)]
        self.compared = [c for c in df.columns if c not in self.keys]

    def _shape(self, df: pd.DataFrame) -> None:
        for c in df.columns:
            s = df[c]
            if s.dtype != object:
                continue
            present = s.dropna()
            if present.empty:
                continue
            nested = present.map(_is_nested)
            if nested.any():
                acc = self.nested.setdefault(str(c), [0, [], []])
                if len(acc[1]) < 1000:
                    acc[1] = [*acc[1], *present[nested].head(1000 - len(acc[1])).tolist()]
                acc[0] += int(nested.sum())
                acc[2] = distinct([*acc[2], *[_redact(v) for v in present[nested].head(100).tolist()]], 2)
                continue
            types = present.map(lambda v: "number" if isinstance(v, int | float) and not isinstance(v, bool) else type(v).__name__)
            counts = types.value_counts()
            self.mixed[str(c)] = counts if str(c) not in self.mixed else self.mixed[str(c)].add(counts, fill_value=0)

    def _pii(self, df: pd.DataFrame) -> None:
        if self.params.pii_scan == "off":
            return
        for c in df.columns:
            s = df[c]
            if c in self.data.pii_columns or pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
                continue
            head = self.pii_heads.setdefault(c, [])
            if len(head) < 2000:
                present = s.dropna()
                head += present[present.map(lambda v: isinstance(v, str))].head(2000 - len(head)).tolist()

    def _target(self, df: pd.DataFrame) -> None:
        t = self.data.target
        if t not in df.columns or self.target_over:
            return
        try:
            counts = df[t].value_counts(sort=False)
        except TypeError:
            self.target_over = True
            return
        self.target_counts = counts if self.target_counts is None else self.target_counts.add(counts, fill_value=0)
        if len(self.target_counts) > MAX_TARGET_VALUES:
            self.target_over, self.target_counts = True, None

    def _unique(self, df: pd.DataFrame) -> None:
        """Per unique column: [values seen, values repeated, rows repeating an earlier value]; the
        rows that fail (every copy, the first too) are the repeats plus one per repeated value."""
        for c in self.unique_cols:
            acc = self.unique_hashes.setdefault(c, [_Hashes(), _Hashes(), 0])
            if acc is None:
                continue
            try:
                h = _hashes(df[c].dropna().to_frame())
            except (TypeError, ValueError):  # values that cannot be hashed: not checked, as pandera cannot
                self.unique_hashes[c] = None
                continue
            again = pd.Series(h).duplicated().to_numpy() | acc[0].seen(h)
            acc[0].add(h)
            if again.any():
                acc[1].add(h[again])
                acc[2] += int(again.sum())

    def _duplicates(self, df: pd.DataFrame, offset: int) -> None:
        for c in list(self.rownum):
            s = df[c]
            last = self.rownum[c]
            ok = (pd.api.types.is_integer_dtype(s) and not pd.api.types.is_bool_dtype(s) and s.notna().all()
                  and (len(s) < 2 or schema_mod.is_row_number(s)) and (last is None or s.iloc[0] == last + 1))
            if ok:
                self.rownum[c] = s.iloc[-1]
            else:
                del self.rownum[c]
        if not self.hashable or not self.compared:
            return
        try:
            h = _hashes(df[self.compared])
        except (TypeError, ValueError):
            self.hashable = False
            return
        self._dup_hashes(h)

    def _dup_hashes(self, h) -> None:
        dup = pd.Series(h).duplicated().to_numpy() | self.dup_seen.seen(h)
        self.dup_seen.add(h)
        self.dup_count += int(dup.sum())
        if len(self.dup_groups) < MAX_DUPLICATE_GROUPS and self.dup_scanned < 1000:
            for x in h[dup][: 1000 - self.dup_scanned]:
                if x not in self.dup_groups:
                    self.dup_groups.append(x)
                    if len(self.dup_groups) == MAX_DUPLICATE_GROUPS:
                        break
        self.dup_scanned += int(dup.sum())

    # -- the merged result --
    def result(self, reread: Callable[[], Any] | None = None) -> Result:
        data, params, table, sch = self.data, self.params, self.table, self.sch
        res = Result(rows=self.rows, columns=self.width)
        cols = self.columns or []
        res.null_share = {str(c): round(self.nulls[c] / self.rows, 6) if self.rows else 0.0 for c in cols}
        if self.rows == 0:
            res.findings.append(Finding("error", None, "empty", (
                f"the file has a header with {self.width} column(s) but no rows (0 rows): the export or copy is "
                "empty; write it again with its rows")))
            res.schema = sch if table is not None else None
            return res
        out = res.findings
        for c, (n, kinds, ex) in self.nested.items():
            names = sorted({_kind_name(v) for v in kinds})
            out.append(Finding("error", c, "nested_values", (
                f"column '{c}' holds {'/'.join(names)} values in {n:,} row(s) (e.g. {', '.join(ex)}); "
                "a table cell must hold one value: flatten the column into several, or drop it"), n, []))
        for c, counts in self.mixed.items():
            if c in self.nested or len(counts) < 2:
                continue
            counts = counts.astype(int).sort_values(ascending=False, kind="stable")
            out.append(Finding("warning", c, "mixed_types", (
                f"column '{c}' mixes value types ({', '.join(f'{k}: {v:,}' for k, v in counts.items())}); "
                "a column should hold one type: fix the export (numbers stored as text?)"), int(counts.iloc[1:].sum()), []))
        t = data.target
        if t in cols and self.nulls[t] == self.rows:
            out.append(Finding("error", t, "target_all_null", (
                f"target '{t}' has no values: all {self.rows:,} rows are null; the file holds no labels: check "
                "data.target or the export"), self.rows, []))
        if params.pii_scan != "off":
            heads = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in self.pii_heads.items()})
            level = "error" if params.pii_scan == "refuse" else "warning"
            out += [Finding(level, col, "personal_data", (
                f"column '{col}' looks like {k}s ({n:,} of {m:,} sampled values); list it in data.pii_columns "
                "(dropped or hashed as the table is read), or set validate.pii_scan: off if it is not personal"), n, [])
                for col, k, n, m in personal.scan(heads, exclude=set(data.pii_columns))]
        dup, res.duplicates = self._duplicate_findings(reread)
        out += dup
        out += self.first_findings
        out += self._row_findings()
        out += self._table_findings(reread)
        first = ["read", "empty", "target_all_null", "nested_values", "personal_data", "column_in_dataframe",
                 "column_in_schema", "dtype", "target_constant", "target_numeric"]
        out.sort(key=lambda f: (f.level != "error", first.index(f.check) if f.check in first else len(first)))
        res.schema = sch if table is not None else None
        return res

    def _row_findings(self) -> list[Finding]:
        out = []
        for (level, col, chk), (n, ex) in self.row.items():
            msg_fn = self.msgs.get((level, col, chk))
            msg = msg_fn(n, ex) if msg_fn else _default_msg(level, col, chk, n, ex, self.sch)
            out.append(Finding(level, col, chk, msg, n, ex))
        return out

    def _surrogate(self, c: str) -> pd.Series:
        """A few values standing for column `c` in the messages and checks that read only its type,
        kind, first non-numbers and (the target) its distinct values with counts capped at 2."""
        dtype = self.dtypes[c]
        if c == self.data.target and self.target_counts is not None:
            vals = self.target_counts.index.repeat(self.target_counts.clip(upper=2).astype(int).to_numpy())
            return pd.Series(list(vals), dtype=dtype)
        if pd.api.types.is_float_dtype(dtype):
            vals = ([] if not self.present.get(c) else [1.0] if self.whole.get(c, True) else [0.5])
            return pd.Series(vals, dtype=dtype)
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype) \
                or pd.api.types.is_datetime64_any_dtype(dtype):
            return pd.Series([], dtype=dtype)
        return pd.Series(self.bad_text.get(c, []), dtype=dtype)

    def _table_findings(self, reread) -> list[Finding]:
        import pandera.pandas as pa

        data, params, table, sch = self.data, self.params, self.table, self.sch
        cols, rows, t = self.columns, self.rows, data.target
        out = []

        def share(c):
            return self.nulls[c] / rows

        def nulls(level, c, check, limit, text):
            if share(c) > limit:
                out.append(Finding(level, c, check, text))

        # the checks reading a column's kind or the target's values, run on stand-in columns
        kinds = {"dtype", "time_type", "target_numeric", "target_constant", "target_classes", "positive_class",
                 "rare_class"}
        for c in cols:
            small = pd.DataFrame({c: self._surrogate(c)})
            rules = build_rules(small, data, params, table, sch, self.max_cases)
            for level, schema in rules.schemas().items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        schema.validate(small, lazy=True)
                    except pa.errors.SchemaErrors as exc:
                        out += [f for f in findings_from(exc.failure_cases, level, rules, sch)
                                if f.check in kinds and f.column == c]
        if t in cols and self.target_over:
            out.append(Finding("warning", t, "target_values_not_merged", (
                f"target '{t}' has more than {MAX_TARGET_VALUES:,} distinct values: read in parts, its class checks "
                "(target_constant, target_classes, positive_class, rare_class) were not run; validate the file "
                "whole (the pipeline's validate stage) to run them")))
        if table is not None:
            for name, c in table.columns.items():
                if name not in cols:
                    continue
                if c.nullable and c.max_null_share is not None:
                    nulls("error", name, "max_null_share", c.max_null_share, (
                        f"column '{name}' has {self.nulls[name]:,} nulls ({share(name):.1%}), above max_null_share "
                        f"{c.max_null_share} in {sch}; fill them or raise the limit"))
                if c.nullable:
                    ref = c.null_share or 0.0
                    nulls("warning", name, "null_share_rise", ref + params.null_share_warn_rise, (
                        f"column '{name}' has {share(name):.1%} nulls, up from {ref:.1%} in {sch} "
                        f"(more than validate.null_share_warn_rise {params.null_share_warn_rise})"))
                if name in self.outside and self.outside[name][0]:
                    n_present, n_out = self.outside[name]
                    s_out = n_out / n_present
                    if s_out > params.max_new_category_share:
                        out.append(Finding("error", name, "new_values_share", (
                            f"column '{name}': {s_out:.1%} of rows hold values not in {sch}, above "
                            f"validate.max_new_category_share {params.max_new_category_share}; check the data or "
                            f"add the values to {name}.values")))
            if table.min_rows and rows < table.min_rows:
                out.append(Finding("error", None, "min_rows",
                                   f"only {rows:,} rows, fewer than min_rows {table.min_rows:,} in {sch}"))
        if t in cols:
            mt = params.max_target_null_share
            nulls("error", t, "target_nulls", mt, (
                f"target '{t}' is missing in {share(t):.1%} of rows, above validate.max_target_null_share {mt}; "
                "fill the target or drop those rows"))
            nulls("warning", t, "target_nulls", 0, (
                f"target '{t}' is missing in {self.nulls[t]:,} rows ({share(t):.2%}); they are left out"))
        for c in data.required_columns:
            has_own = table is not None and c in table.columns and table.columns[c].max_null_share is not None
            if not has_own and c in cols:
                nulls("error", c, "max_null_share", params.max_null_share, (
                    f"column '{c}' has {self.nulls[c]:,} nulls ({share(c):.1%}), above validate.max_null_share "
                    f"{params.max_null_share}; fill them or raise the limit"))
        tc = data.time_column
        if tc and tc in cols and self.nulls[tc]:
            out.append(Finding("error", tc, "time_nulls", f"time column '{tc}' has {self.nulls[tc]:,} missing values; "
                                                          "fill or drop them"))
        n = params.min_rows
        if (table is None or table.min_rows < n) and rows < n:
            out.append(Finding("error", None, "min_rows", f"only {rows:,} rows, fewer than validate.min_rows = {n:,}"))
        for c in cols:
            if c != t and c not in data.required_columns and (table is None or c not in table.columns) \
                    and self.nulls[c] == rows:
                out.append(Finding("warning", c, "all_null", f"column '{c}' is empty (all values null); it carries no information"))
        out += self._unique_findings(reread)
        if t in cols and self.target_over:
            out = [f for f in out if not (f.column == t and f.check in
                                          ("target_constant", "target_classes", "positive_class", "rare_class"))]
        for col, chk in sorted(self.unmerged, key=str):
            out.append(Finding("warning", col, "not_merged", (
                f"check {chk} on {col or 'the table'} failed on a part of the file and is not merged across parts: "
                "its result for the whole file is unknown; validate the file whole (the pipeline's validate stage)")))
        return out

    def _unique_findings(self, reread) -> list[Finding]:
        import numpy as np

        out = []
        for c in self.unique_cols:
            acc = self.unique_hashes.get(c)
            if not acc or not acc[2]:
                continue
            twice = np.unique(np.concatenate(acc[1].parts))
            n = acc[2] + len(twice)
            ex: list = []
            if reread is not None:
                for df in reread():
                    present = df[c].dropna()
                    hit = present[np.isin(_hashes(present.to_frame()), twice)]
                    ex = distinct([*ex, *hit.head(self.max_cases).tolist()], 3)
                    if len(ex) == 3:
                        break
            ex = [personal.redact(_plain(v)) for v in ex]
            msg_fn = self.msgs.get(("error", c, "field_uniqueness"))
            msg = msg_fn(n, ex) if msg_fn else _default_msg("error", c, "field_uniqueness", n, ex, self.sch)
            out.append(Finding("error", c, "field_uniqueness", msg, n, ex))
        return out

    def _duplicate_findings(self, reread) -> tuple[list[Finding], dict]:
        table, sch = self.table, self.sch
        if self.rows < 2 or not self.hashable:
            return [], {}
        keys = [k for k in self.keys if k in self._declared() or k in self.rownum]
        if keys != self.keys and reread is not None:  # a row number that stopped counting: judge again without it
            self.keys, self.compared = keys, [c for c in self.columns if c not in keys]
            self.dup_seen, self.dup_count, self.dup_groups, self.dup_scanned = _Hashes(), 0, [], 0
            for df in reread():
                if self.compared:
                    self._dup_hashes(_hashes(df[self.compared]))
        keys = self.keys
        info: dict[str, Any] = {"rows": self.dup_count, "keys": keys, "examples": []}
        if not self.dup_count:
            return [], info
        names, groups = [], []
        if reread is not None and self.dup_groups:
            found = {g: [] for g in self.dup_groups}
            total = dict.fromkeys(self.dup_groups, 0)
            for df in reread():
                h = _hashes(df[self.compared])
                for g in self.dup_groups:
                    at = (h == g).nonzero()[0]
                    total[g] += len(at)
                    for i in at[: MAX_COPIES - len(found[g])]:
                        found[g].append((df.index[i], df.iloc[[i]]))
            for g in self.dup_groups:
                rows = pd.concat([r for _, r in found[g]])
                pos = [int(i) for i, _ in found[g]]
                more = f" (+{total[g] - MAX_COPIES:,} more)" if total[g] > MAX_COPIES else ""
                local = rows.reset_index(drop=True)
                names.append((_rows_named(local, keys, range(len(local))) if keys
                              else _rows_named(local, keys, pos)) + more)
                groups.append((pos, local))
        for gi, (pos, local) in enumerate(groups, 1):
            for j, i in enumerate(pos):
                rec = {"duplicate_group": gi, "row_in_table": i + 1,
                       **{str(c): _cell(local[c].iloc[j]) for c in local.columns}}
                info["examples"].append(rec)
        return duplicate_finding(self.dup_count, keys, names, table, sch), info

    def _declared(self) -> set:
        table = self.table
        return {*self.data.id_columns, *(n for n, c in (table.columns.items() if table else ()) if c.unique)}


def check_chunks(chunks, data: DataParams, params: ValidateParams, table: TableSchema | None = None,
                 schema_name: str = "the schema", max_cases: int = MAX_CASES,
                 reread: Callable[[], Any] | None = None) -> Result:
    """`check` of a table given as parts (DataFrames in file order, same columns and types): the same
    findings as `check` of the whole table, holding one part at a time (see `ChunkedCheck`)."""
    acc = ChunkedCheck(data, params, table, schema_name, max_cases)
    for df in chunks:
        acc.add(df)
    return acc.result(reread)
