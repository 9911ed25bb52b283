"""Stage `validate`: check the input table before anything is built from it.

All problems are collected at once (not the first only). Errors stop the pipeline with a message
naming the column and what to do; warnings are reported and the run goes on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from mlcycle.config import DataParams, ValidateParams
from mlcycle.errors import DataError


@dataclass
class Finding:
    level: str  # error | warning
    column: str | None
    check: str
    message: str


@dataclass
class Result:
    rows: int
    columns: int
    findings: list[Finding] = field(default_factory=list)
    null_share: dict[str, float] = field(default_factory=dict)

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
        return pd.DataFrame([asdict(f) for f in self.findings], columns=["level", "column", "check", "message"])

    def metrics(self) -> dict:
        return {
            "rows": self.rows,
            "columns": self.columns,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "passed": self.ok,
        }

    def message(self, report: str = "reports/validate.html") -> str:
        lines = [f"validate: {len(self.errors)} error(s), {len(self.warnings)} warning(s) in the input table"]
        lines += [f"  error: {f.message}" for f in self.errors]
        lines += [f"  warning: {f.message}" for f in self.warnings]
        lines.append(f"  see {report}")
        return "\n".join(lines)


def check(df: pd.DataFrame, data: DataParams, params: ValidateParams) -> Result:
    """Check `df` against the columns and limits in params; never raises for bad data."""
    res = Result(rows=len(df), columns=df.shape[1])
    add = res.findings.append

    def err(col, chk, msg):
        add(Finding("error", col, chk, msg))

    def warn(col, chk, msg):
        add(Finding("warning", col, chk, msg))

    cols = set(df.columns)
    if data.target not in cols:
        err(data.target, "target_present",
            f"target column '{data.target}' is missing; set data.target to one of: {_few(df.columns)}")
    for c in data.required_columns:
        if c not in cols:
            err(c, "required_present", f"required column '{c}' is missing; add it to the data or remove it from data.required_columns")
    if data.time_column and data.time_column not in cols:
        err(data.time_column, "time_present",
            f"time column '{data.time_column}' is missing; correct data.time_column or set it to null")
    for c in [*data.id_columns, *data.drop_columns]:
        if c not in cols:
            warn(c, "listed_present", f"column '{c}' listed in data.id_columns/drop_columns is not in the data")

    if len(df) < params.min_rows:
        err(None, "min_rows", f"only {len(df):,} rows, fewer than validate.min_rows = {params.min_rows:,}")

    nulls = df.isna().mean() if len(df) else pd.Series(0.0, index=df.columns)
    res.null_share = {c: round(float(v), 6) for c, v in nulls.items()}
    for c in data.required_columns:
        if c in cols and nulls[c] > params.max_null_share:
            err(c, "max_null_share",
                f"column '{c}' has {int(df[c].isna().sum()):,} nulls ({nulls[c]:.1%}), above validate.max_null_share {params.max_null_share}")
    for c in df.columns:
        if c != data.target and c not in data.required_columns and len(df) and nulls[c] == 1.0:
            warn(c, "all_null", f"column '{c}' is empty (all values null); it carries no information")

    if data.target in cols and len(df):
        _check_target(df[data.target], data, params, err, warn)
    if data.time_column in cols and len(df):
        t = df[data.time_column]
        if not pd.api.types.is_datetime64_any_dtype(t):
            err(data.time_column, "time_type", f"time column '{data.time_column}' is not a date/time column")
        elif t.isna().any():
            err(data.time_column, "time_nulls",
                f"time column '{data.time_column}' has {int(t.isna().sum()):,} missing values; fill or drop them")
    return res


def _check_target(y: pd.Series, data: DataParams, params: ValidateParams, err, warn) -> None:
    name = data.target
    share = float(y.isna().mean())
    if share > params.max_target_null_share:
        err(name, "target_nulls",
            f"target '{name}' is missing in {share:.1%} of rows, above validate.max_target_null_share {params.max_target_null_share}")
    elif share > 0:
        warn(name, "target_nulls", f"target '{name}' is missing in {int(y.isna().sum()):,} rows ({share:.2%}); they are left out")
    present = y.dropna()
    numeric = pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present)
    if data.task == "regression" or data.threshold is not None:
        if not numeric:
            what = "regression" if data.task == "regression" else f"data.threshold {data.threshold}"
            err(name, "target_numeric", f"target '{name}' is not numeric (dtype {y.dtype}) but {what} needs numbers")
            return
    if present.nunique() < 2:
        err(name, "target_constant", f"target '{name}' has a single value; there is nothing to learn")
        return
    if data.task == "classification":
        labels = present >= data.threshold if data.threshold is not None else present
        counts = labels.value_counts()
        if len(counts) < 2:
            err(name, "target_classes", f"target '{name}' has one class after data.threshold {data.threshold}")
        if data.threshold is None and len(counts) > 50:
            err(name, "target_classes",
                f"target '{name}' has {len(counts)} classes; for a numeric target use task: regression or set data.threshold")
        if data.positive_class is not None and data.positive_class not in set(labels.unique()):
            err(name, "positive_class", f"data.positive_class {data.positive_class!r} is not a value of target '{name}'")
        small = counts[counts < 2]
        for cls in small.index:
            warn(name, "rare_class", f"class {cls!r} of target '{name}' has fewer than 2 rows")


def _few(cols, n: int = 12) -> str:
    cols = list(cols)
    return ", ".join(map(str, cols[:n])) + (" ..." if len(cols) > n else "")


def write(result: Result, metrics_path: Path, findings_path: Path) -> None:
    """Counts as DVC metrics, and every finding as a list for tools."""
    for p in (metrics_path, findings_path):
        p.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(result.metrics(), indent=2) + "\n")
    findings_path.write_text(json.dumps([asdict(f) for f in result.findings], indent=2) + "\n")


def enforce(result: Result) -> None:
    """Raise DataError (stopping the pipeline) when the result has errors."""
    if not result.ok:
        raise DataError(result.message())
