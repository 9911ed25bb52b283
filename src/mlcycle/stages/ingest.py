"""Stage `ingest` (optional): a hook writes raw tables to data/raw, once.

params.yaml `ingest` names at most one step, `{name: {hook, outputs, params}}`; `{}` (your own file,
tracked with `dvc add`) means no ingest stage at all. The hook (see mlcycle.plugins) returns
{table name: DataFrame}; each is written to `<outputs>/<table name>.parquet`. Raw data is written once
and never edited: every later stage reads it and writes elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlcycle.core import plugins
from mlcycle.core.config import IngestStep
from mlcycle.core.errors import DataError


def run(name: str, step: IngestStep, root: Path) -> dict[str, pd.DataFrame]:
    """The tables the step's hook returns (checked: a mapping of non-empty frames)."""
    hook = plugins.load(step.hook, root, f"ingest.{name}.hook")
    tables = hook(dict(step.params))
    if not isinstance(tables, dict) or not all(isinstance(v, pd.DataFrame) for v in tables.values()):
        raise DataError(f"ingest.{name}.hook {step.hook} must return a dict of table name -> DataFrame, "
                        f"got {type(tables).__name__}")
    empty = [t for t, df in tables.items() if df.shape[1] == 0]
    if empty:
        raise DataError(f"ingest.{name}.hook {step.hook} returned tables without columns: {empty}")
    return tables


def write(tables: dict[str, pd.DataFrame], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in tables.items():
        path = folder / f"{name}.parquet"
        df.to_parquet(path, index=False)
        written.append(path)
    return written


def summary(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"table": n, "rows": len(df), "columns": df.shape[1], "memory_mb": round(df.memory_usage(deep=True).sum() / 1e6, 1)}
            for n, df in tables.items()
        ]
    )


def takeaways(tables: dict[str, pd.DataFrame], top: int = 3) -> str:
    """What this run's raw tables hold, as Markdown bullets: sizes and the columns most often missing."""
    if not tables:
        return "- no ingest step in params: the input is your own file (`data.path`)."
    total = sum(len(df) for df in tables.values())
    name, largest = max(tables.items(), key=lambda kv: len(kv[1]))
    lines = [f"- {len(tables)} table(s), {total:,} rows in all; the largest, `{name}`, has "
             f"{len(largest):,} rows and {largest.shape[1]} columns."]
    missing = largest.isna().mean()
    missing = missing[missing > 0].sort_values(ascending=False).head(top)
    if missing.empty:
        lines.append(f"- `{name}` has no missing values.")
    else:
        lines.append(f"- most often missing in `{name}`: " + ", ".join(f"`{c}` ({s:.1%})" for c, s in missing.items()) + ".")
    return "\n".join(lines)
