"""Stage `eda`: tables and figures that describe the input table and its label.

Each plot function takes a frame and returns a matplotlib Figure; the notebook shows it and
`save` keeps it under reports/figures/eda/. Names and values are drawn as typed
(`core/literal.py`): labels shortened, never read as mathtext.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mlcycle.core import literal, tasks
from mlcycle.core.config import DataParams
from mlcycle.core.spec import LABEL, classes_of


def overview(df: pd.DataFrame) -> pd.DataFrame:
    """One row per column: dtype, nulls, distinct values and an example value."""
    rows = []
    for c in df.columns:
        s = df[c]
        nonnull = s.dropna()
        rows.append({
            "column": c, "dtype": str(s.dtype), "nulls": int(s.isna().sum()),
            "null_share": round(float(s.isna().mean()), 4) if len(s) else 0.0,
            "distinct": int(nonnull.nunique()), "example": str(nonnull.iloc[0])[:40] if len(nonnull) else "",
        })
    return pd.DataFrame(rows)


def sample(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return df if n == 0 or len(df) <= n else df.sample(n=n, random_state=seed)


def numeric_columns(df: pd.DataFrame, exclude: set[str]) -> list[str]:
    return [c for c in df.columns if c not in exclude and pd.api.types.is_numeric_dtype(df[c])
            and not pd.api.types.is_bool_dtype(df[c])]


def categorical_columns(df: pd.DataFrame, exclude: set[str], max_distinct: int = 200) -> list[str]:
    return [c for c in df.columns if c not in exclude and not pd.api.types.is_numeric_dtype(df[c])
            and not pd.api.types.is_datetime64_any_dtype(df[c]) and df[c].nunique() <= max_distinct]


@literal.figures()
def plot_missing(df: pd.DataFrame) -> Figure | None:
    share = df.isna().mean()
    share = share[share > 0].sort_values()
    if share.empty:
        return None
    fig = Figure(figsize=(7, 0.3 * len(share) + 1.2))
    ax = fig.subplots()
    ax.barh(literal.labels(share.index), share.to_numpy(), color="#c0504d")
    ax.set_xlabel("share of rows missing")
    ax.set_title("Missing values by column")
    fig.tight_layout()
    return fig


@literal.figures()
def plot_label(y: pd.Series, task: str, name: str) -> Figure:
    fig = Figure(figsize=(6, 3.2))
    ax = fig.subplots()
    if tasks.target_of(task) == "numbers":
        ax.hist(y.dropna().to_numpy(dtype=float), bins=50, color="#4f81bd")
        ax.set_xlabel(literal.label(name, 80))
    else:
        counts = y.value_counts().sort_index()
        ax.bar(literal.labels(counts.index, 20), counts.to_numpy(), color="#4f81bd")
        for i, v in enumerate(counts.to_numpy()):
            ax.annotate(f"{v / counts.sum():.1%}", (i, v), ha="center", va="bottom", fontsize=8)
        ax.set_xlabel(literal.label(name, 80))
    ax.set_ylabel("rows")
    ax.set_title(f"Label: {literal.label(name, 60)}")
    fig.tight_layout()
    return fig


@literal.figures()
def small_multiples(columns: list[str], ncol: int, width: float, height: float, draw, title: str) -> Figure | None:
    """One small panel per column, `ncol` per row; draw(ax, column) fills a panel."""
    if not columns:
        return None
    n = len(columns)
    ncol = min(ncol, n)
    nrow = int(np.ceil(n / ncol))
    fig = Figure(figsize=(width * ncol, height * nrow))
    axes = np.atleast_1d(fig.subplots(nrow, ncol)).ravel()
    for ax, c in zip(axes, columns, strict=False):
        draw(ax, c)
        ax.set_title(literal.label(c, 36), fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(literal.label(title, 110), fontsize=10)
    fig.tight_layout()
    return fig


def plot_numeric(df: pd.DataFrame, columns: list[str]) -> Figure | None:
    def draw(ax, c):
        v = df[c].dropna().to_numpy(dtype=float)
        if len(v):
            lo, hi = np.quantile(v, [0.005, 0.995])
            ax.hist(np.clip(v, lo, hi), bins=40, color="#4f81bd")

    return small_multiples(columns, 4, 3.2, 2.4, draw,
                           "Numeric distributions (clipped at the 0.5% and 99.5% quantiles)")


def label_rate(df: pd.DataFrame, column: str, label: pd.Series, top: int) -> pd.DataFrame:
    """Rows and mean label per category of `column` (the `top` most frequent)."""
    g = pd.DataFrame({"cat": df[column].astype("str").fillna("(missing)"), "y": label.astype(float)})
    table = g.groupby("cat", observed=True)["y"].agg(rows="size", label_mean="mean")
    return table.sort_values("rows", ascending=False).head(top)


def plot_label_by_category(df: pd.DataFrame, columns: list[str], label: pd.Series, top: int, name: str) -> Figure | None:
    def draw(ax, c):
        t = label_rate(df, c, label, top).sort_values("label_mean")
        ax.barh(literal.labels(t.index, 32), t["label_mean"].to_numpy(), color="#9bbb59")

    return small_multiples(columns, 3, 4.2, 2.8, draw, f"{name}, by category (the {top} most frequent)")


def correlations(df: pd.DataFrame, columns: list[str], label: pd.Series) -> pd.DataFrame:
    frame = df[columns].astype(float).assign(__label__=label.astype(float).to_numpy())
    return frame.corr(method="spearman")


@literal.figures()
def plot_correlations(corr: pd.DataFrame) -> Figure | None:
    if corr.shape[0] < 2:
        return None
    k = corr.shape[0]
    fig = Figure(figsize=(0.45 * k + 2.5, 0.45 * k + 2))
    ax = fig.subplots()
    im = ax.imshow(corr.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    labels = literal.labels(("label" if c == "__label__" else c) for c in corr.columns)
    ax.set_xticks(range(k), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(k), labels, fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.7)
    ax.set_title("Spearman correlations")
    fig.tight_layout()
    return fig


def trend(df: pd.DataFrame, time_column: str, label: pd.Series, freq: str = "W") -> pd.DataFrame:
    g = pd.DataFrame({"t": df[time_column], "y": label.astype(float).to_numpy()})
    return g.set_index("t").resample(freq)["y"].agg(rows="size", label_mean="mean")


@literal.figures()
def plot_trend(table: pd.DataFrame, name: str) -> Figure:
    fig = Figure(figsize=(8, 3.2))
    ax = fig.subplots()
    ax.plot(table.index, table["label_mean"], color="#c0504d")
    ax.set_ylabel("rate")
    ax2 = ax.twinx()
    ax2.bar(table.index, table["rows"], width=5, alpha=0.25, color="#4f81bd")
    ax2.set_ylabel("rows")
    ax.set_title(literal.label(f"{name}, weekly", 90))
    fig.tight_layout()
    return fig


def numeric_label(label: pd.Series, task: str, positive_class=None, name: str = "label") -> tuple[pd.Series, str]:
    """The label as numbers for rates, correlations and trends, and a title saying what its mean is.

    Regression: the value itself. Binary: 1 for the positive class. Multiclass: 1 for the rarest
    class (the one a model most often misses).
    """
    if tasks.target_of(task) == "numbers":
        return label.astype("float64"), f"mean of {name}"

    _, positive = classes_of(label, positive_class)
    if positive is None:
        positive = label.value_counts().idxmin()
    return label.eq(positive).astype("float64"), f"share of rows with {name} = {positive!r}"


def takeaways(df: pd.DataFrame, rate: pd.Series, rate_name: str, corr: pd.DataFrame | None = None,
              top: int = 3) -> str:
    """What this run's table showed, as Markdown bullets: size, missing values, the label's rate and
    the numeric columns most correlated with it (`corr` from `correlations`)."""
    lines = [f"- {len(df):,} rows and {df.shape[1]} columns; {rate.notna().sum():,} rows have a label."]
    missing = df.isna().mean()
    missing = missing[missing > 0].sort_values(ascending=False)
    if missing.empty:
        lines.append("- no missing values.")
    else:
        lines.append(f"- {len(missing)} column(s) with missing values; most: "
                     + ", ".join(f"`{c}` ({s:.1%})" for c, s in missing.head(top).items()) + ".")
    lines.append(f"- {rate_name}: {rate.mean():.4g}.")
    if corr is not None and "__label__" in corr:
        with_label = corr["__label__"].drop(index="__label__", errors="ignore").dropna()
        strongest = with_label.reindex(with_label.abs().sort_values(ascending=False).index).head(top)
        if len(strongest):
            lines.append("- strongest Spearman correlations with the label: "
                         + ", ".join(f"`{c}` ({v:+.2f})" for c, v in strongest.items()) + ".")
    return "\n".join(lines)


def metrics(df: pd.DataFrame, rate: pd.Series, rate_name: str, task: str) -> dict:
    """reports/metrics/eda.json of a table: its size, missing values and the label's rate."""
    return {"task": task, "rows": len(df), "columns": int(df.shape[1]),
            "missing_share": float(df.isna().to_numpy().mean()) if df.size else 0.0,
            "labelled_rows": int(rate.notna().sum()), "label_rate": float(rate.mean()), "label_rate_is": rate_name}


def write_metrics(doc: dict, path: Path) -> None:
    """reports/metrics/eda.json: `metrics` as JSON (indent 2, numpy numbers as floats), one trailing newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=float) + "\n")


# ---------------------------------------------------------------- the label the profile shows

def make_label(df: pd.DataFrame, data: DataParams) -> tuple[pd.DataFrame, dict]:
    """Rows with a target, and the label column LABEL. Returns (frame, info)."""
    y = df[data.target]
    keep = y.notna()
    out = df.loc[keep].copy()
    info = {"rows_in": len(df), "rows_without_target": int((~keep).sum())}
    if tasks.target_of(data.task) == "numbers":
        out[LABEL] = out[data.target].astype("float64")
        info["rule"] = f"{data.target} (numeric)"
    elif data.threshold is not None:
        out[LABEL] = (out[data.target] >= data.threshold).astype("int64")
        info["rule"] = f"{data.target} >= {data.threshold:g}"
    else:
        lab = out[data.target]
        if pd.api.types.is_bool_dtype(lab):
            lab = lab.astype("int64")
        elif not pd.api.types.is_numeric_dtype(lab):
            lab = lab.astype("str")
        out[LABEL] = lab
        info["rule"] = f"{data.target} (classes)"
    info["rows_out"] = len(out)
    return out, info


def label_name(data: DataParams) -> str:
    """The label's column name: the target's, or e.g. `arr_delay>=15` when a threshold makes it."""
    return data.target if data.threshold is None else f"{data.target}>={data.threshold:g}"
