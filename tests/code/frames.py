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


POSITIVE_WORDS = ["delicious", "wonderful", "fresh", "perfect", "love", "tasty", "excellent", "favorite"]
NEGATIVE_WORDS = ["stale", "awful", "bland", "broken", "refund", "disappointed", "terrible", "soggy"]
FILLER_WORDS = ["the", "box", "arrived", "coffee", "tea", "snack", "flavor", "price", "package", "bought", "this",
                "for", "my", "kids", "again", "order", "bag", "cookies", "sauce", "with", "and", "it", "was", "very"]


def review_frame(n: int = 2000, seed: int = 0, signal: bool = True) -> pd.DataFrame:
    """A table with a free-text `review` column, an id, a short category and a number; the label
    `good` (yes/no) depends weakly on `price` and, when `signal`, strongly on the review's words (positive
    words in good reviews, negative ones in bad). Without `signal` the words are drawn the same way
    whatever the label (noise). Every review differs (a running order number in it)."""
    rng = np.random.default_rng(seed)
    price = rng.normal(10, 3, size=n)
    good = rng.random(n) < 1 / (1 + np.exp((price - 10) / 6))
    reviews = []
    for i in range(n):
        words = list(rng.choice(FILLER_WORDS, size=rng.integers(6, 16)))
        hint = good[i] if signal else rng.random() < 0.5
        pool = POSITIVE_WORDS if (hint if rng.random() < 0.85 else not hint) else NEGATIVE_WORDS
        words += list(rng.choice(pool, size=rng.integers(1, 3)))
        rng.shuffle(words)
        reviews.append(" ".join(words).capitalize() + f". Order {1000 + i}.")
    return pd.DataFrame({
        "review_id": [f"R{100000 + i}" for i in range(n)],
        "channel": rng.choice(["web", "app", "store"], size=n),
        "price": price.round(2),
        "review": reviews,
        "good": np.where(good, "yes", "no"),
    })
