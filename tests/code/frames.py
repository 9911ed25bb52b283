"""Tiny synthetic frames for unit tests."""

import numpy as np
import pandas as pd

from mlcycle.core import config


def data_params(**kw) -> config.DataParams:
    base = dict(path="x.csv", target="y", task="classification", threshold=None, time_column=None)
    base.update(kw)
    return config.DataParams(**base)


def mixed_frame(n: int = 400, seed: int = 0, task: str = "binary") -> pd.DataFrame:
    """Numeric, categorical (with missing), boolean and datetime columns; the label depends on x1 and cat."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    cat = rng.choice(["a", "b", "c"], size=n)
    signal = x1 + (cat == "a") * 1.5
    df = pd.DataFrame({
        "x1": x1,
        "x2": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
        "cat": pd.array(np.where(rng.random(n) < 0.05, None, cat), dtype="str"),
        "flag": rng.random(n) < 0.5,
        "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), unit="h"),
    })
    if task == "binary":
        df["y"] = np.where(signal + rng.normal(scale=0.5, size=n) > 0.5, "yes", "no")
    elif task == "multiclass":
        df["y"] = np.select([signal < -0.3, signal < 0.8], ["low", "mid"], "high")
    else:
        df["y"] = 3 * signal + rng.normal(scale=0.3, size=n)
    return df
