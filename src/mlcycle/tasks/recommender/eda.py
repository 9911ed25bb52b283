"""Task `recommendation`, stage eda: the interactions table's own views.

On the standardised interactions (`interactions.standardise`: one row per user and item, the latest):

- activity long tail: interactions per user, most active first (log scale);
- popularity long tail: interactions per item, most popular first, and the share of all interactions
  taken by the top 20% of items;
- ratings over time: per month, the number of interactions and their mean rating;
- the rating distribution;
- sparsity: the density of the user x item matrix (interactions / (users x items));
- cold start: the shares of the latest period's users and items never seen before it, the latest
  period cut as features cuts it in time (the latest `recommend.test_share` of interactions).

The figures are Matplotlib figures (shown and saved by `mlcycle.stages.show.figure`); the numbers go
to reports/metrics/eda.json (`profile`, `write_metrics`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mlcycle.core import literal
from mlcycle.tasks.recommender import interactions as ia
from mlcycle.tasks.recommender.params import RecommendParams

HEAD_SHARE = 0.2  # the "top 20%" of items (the same head as evaluate's popularity slices)


def per_user(inter: pd.DataFrame) -> pd.Series:
    """Interactions per user, most active first."""
    return inter[ia.USER].value_counts().sort_values(ascending=False, kind="stable")


def per_item(inter: pd.DataFrame) -> pd.Series:
    """Interactions per item, most popular first."""
    return inter[ia.ITEM].value_counts().sort_values(ascending=False, kind="stable")


def top_share(counts: pd.Series, share: float = HEAD_SHARE) -> float:
    """The share of all interactions taken by the top `share` of entries (at least one) of `counts`."""
    if counts.empty or counts.sum() == 0:
        return float("nan")
    n = max(1, int(np.ceil(share * len(counts))))
    ordered = np.sort(counts.to_numpy())[::-1]
    return float(ordered[:n].sum() / ordered.sum())


def monthly(inter: pd.DataFrame) -> pd.DataFrame:
    """Per calendar month: `interactions` and `mean_rating` (months without interactions have 0 and NaN)."""
    t = inter[ia.TIME]
    if getattr(t.dt, "tz", None) is not None:
        t = t.dt.tz_convert(None)
    g = pd.DataFrame({"rating": inter[ia.RATING].to_numpy()}, index=pd.DatetimeIndex(t.to_numpy()))
    out = g.resample("MS")["rating"].agg(["size", "mean"]).rename(columns={"size": "interactions", "mean": "mean_rating"})
    out.index.name = "month"
    return out


def rating_distribution(inter: pd.DataFrame, max_values: int = 30) -> pd.Series:
    """How many interactions have each rating (few distinct values), else counts in 20 equal bins."""
    r = inter[ia.RATING]
    if r.nunique() <= max_values:
        return r.value_counts().sort_index()
    return pd.cut(r, 20).value_counts().sort_index()


def cold_start(inter: pd.DataFrame, test_share: float) -> dict:
    """The latest period (the latest `test_share` of interactions, cut once in time as features'
    `split: time` cuts its test) against everything before it: the shares of its users and items
    never seen before, and when it starts."""
    t = inter[ia.TIME]
    cut = ia.time_cut(t, test_share)
    before, latest = inter[t < cut], inter[t >= cut]
    users, items = latest[ia.USER].unique(), latest[ia.ITEM].unique()
    return {"latest_from": str(cut), "latest_interactions": len(latest),
            "latest_new_user_share": float(np.mean(~pd.Index(users).isin(before[ia.USER]))) if len(users) else float("nan"),
            "latest_new_item_share": float(np.mean(~pd.Index(items).isin(before[ia.ITEM]))) if len(items) else float("nan")}


def profile(inter: pd.DataFrame, rec: RecommendParams) -> dict:
    """The numbers of the recommender's EDA (reports/metrics/eda.json) for standardised interactions."""
    if inter.empty:
        raise ValueError("eda: no interactions to profile; check data.path and the recommend columns")
    users, items = per_user(inter), per_item(inter)
    months = monthly(inter)
    r = inter[ia.RATING]
    density = len(inter) / (len(users) * len(items))
    return {
        "task": "recommendation", "interactions": len(inter), "users": len(users), "items": len(items),
        "density": float(density), "sparsity": float(1 - density),
        "interactions_per_user_median": float(users.median()), "interactions_per_user_max": int(users.max()),
        "users_with_one_interaction_share": float((users == 1).mean()),
        "interactions_per_item_median": float(items.median()), "interactions_per_item_max": int(items.max()),
        "items_with_one_interaction_share": float((items == 1).mean()),
        "top20_items_interaction_share": top_share(items), "top20_users_interaction_share": top_share(users),
        "rating_mean": float(r.mean()), "rating_min": float(r.min()), "rating_max": float(r.max()),
        "relevant_share": float(len(ia.relevant(inter, rec)) / len(inter)),
        "months": len(months), "months_active": int((months["interactions"] > 0).sum()),
        **cold_start(inter, rec.test_share),
    }


def summary_table(doc: dict) -> pd.DataFrame:
    """Sparsity and cold start from `profile`, as a two-column table for the report."""
    rows = [("users", doc["users"]), ("items", doc["items"]), ("interactions", doc["interactions"]),
            ("density of the user x item matrix", doc["density"]), ("sparsity", doc["sparsity"]),
            ("users with one interaction", doc["users_with_one_interaction_share"]),
            ("items with one interaction", doc["items_with_one_interaction_share"]),
            ("latest period from", doc["latest_from"]),
            ("latest period: users never seen before", doc["latest_new_user_share"]),
            ("latest period: items never seen before", doc["latest_new_item_share"])]
    return pd.DataFrame({"measure": [r[0] for r in rows], "value": [r[1] for r in rows]}).astype({"value": "object"})


def write_metrics(doc: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=float) + "\n")


# ---------------------------------------------------------------- figures

@literal.figures()
def plot_long_tails(inter: pd.DataFrame) -> Figure:
    """Interactions per user and per item against their rank, log scale: the two long tails."""
    fig = Figure(figsize=(9, 3.2))
    axes = fig.subplots(1, 2)
    for ax, counts, what, color in ((axes[0], per_user(inter), "user", "#4c72b0"),
                                    (axes[1], per_item(inter), "item", "#c44e52")):
        rank = np.arange(1, len(counts) + 1)
        ax.plot(rank, counts.to_numpy(), color=color)
        ax.set_yscale("log")
        ax.set_xlabel(f"{what}s, most interactions first")
        ax.set_ylabel("interactions (log)")
        head = max(1, int(np.ceil(HEAD_SHARE * len(counts))))
        ax.axvline(head, color="#777777", linestyle=":", linewidth=1)
        ax.set_title(f"per {what}: top 20% take {top_share(counts):.0%}")
    fig.tight_layout()
    return fig


@literal.figures()
def plot_over_time(months: pd.DataFrame) -> Figure:
    """Interactions per month (bars) and their mean rating (line)."""
    fig = Figure(figsize=(9, 3.2))
    ax = fig.subplots()
    ax.bar(months.index, months["interactions"], width=25, alpha=0.35, color="#4c72b0")
    ax.set_ylabel("interactions per month")
    ax2 = ax.twinx()
    ax2.plot(months.index, months["mean_rating"], color="#c44e52", marker=".", linewidth=1)
    ax2.set_ylabel("mean rating")
    ax.set_title("interactions and mean rating, monthly")
    fig.tight_layout()
    return fig


@literal.figures()
def plot_ratings(dist: pd.Series) -> Figure:
    fig = Figure(figsize=(6, 3))
    ax = fig.subplots()
    ax.bar(literal.labels(dist.index, 16), dist.to_numpy(), color="#55a868")
    ax.set_xlabel("rating")
    ax.set_ylabel("interactions")
    ax.set_title("rating distribution")
    if len(dist) > 12:
        ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    fig.tight_layout()
    return fig


def takeaways(doc: dict) -> str:
    """What the interactions showed, as Markdown bullets."""
    return "\n".join([
        f"- {doc['interactions']:,} interactions of {doc['users']:,} users with {doc['items']:,} items: the user x "
        f"item matrix is {doc['density']:.2%} filled (sparsity {doc['sparsity']:.2%}).",
        f"- Activity: the median user has {doc['interactions_per_user_median']:g} interactions, the most active "
        f"{doc['interactions_per_user_max']:,}; the top 20% of users make {doc['top20_users_interaction_share']:.0%} of them.",
        f"- Popularity: the top 20% of items take {doc['top20_items_interaction_share']:.0%} of the interactions; "
        f"{doc['items_with_one_interaction_share']:.0%} of items have a single one.",
        f"- Ratings from {doc['rating_min']:g} to {doc['rating_max']:g}, mean {doc['rating_mean']:.2f}; "
        f"{doc['relevant_share']:.0%} count as relevant (recommend.relevant_rating).",
        f"- Cold start: in the latest period (from {doc['latest_from']}, {doc['latest_interactions']:,} interactions), "
        f"{doc['latest_new_user_share']:.0%} of the users and {doc['latest_new_item_share']:.0%} of the items were never "
        "seen before it (with `recommend.split: time` only popularity and content can serve them).",
    ])
