"""Task `forecast`: the held-out horizon, the rolling-origin backtest, the metrics and the conformal
intervals.

Splits are by position from each series' end, so series ending at different times are cut alike:
the holdout is each series' last `horizon` steps; backtest window j (1 = the latest) forecasts the
`horizon` steps that end `step x (j - 1)` steps before the holdout, from everything before them.

Metrics per series (utilsforecast.losses): MASE (mean absolute error over the in-sample mean absolute
error of the seasonal naive forecast on the series' history: below 1 beats it), sMAPE (in [0, 1]:
mean of |error| / (|actual| + |forecast|)) and RMSE; aggregated over series as their mean (RMSE: over
every point). The intervals: split-conformal on the backtest's errors, scaled by each series' MASE
scale, one width per step ahead.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mlcycle.tasks.forecast.params import METRICS
from mlcycle.tasks.forecast.series import ID, TIME, VALUE


def cut(frame: pd.DataFrame, back: int, h: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(history, actuals): per series, the h rows ending `back` rows before its end, and every row before them."""
    from_end = frame.groupby(ID, sort=False).cumcount(ascending=False)
    test = (from_end >= back) & (from_end < back + h)
    return frame[from_end >= back + h].reset_index(drop=True), frame[test].reset_index(drop=True)


def tail(frame: pd.DataFrame, n: int | None) -> pd.DataFrame:
    """Each series' latest n rows (all when n is None)."""
    if n is None:
        return frame
    return frame[frame.groupby(ID, sort=False).cumcount(ascending=False) < n].reset_index(drop=True)


def scales(history: pd.DataFrame, season: int) -> pd.Series:
    """Per series, the mean absolute error of the seasonal naive forecast within its history (MASE's
    denominator; one step when the history is shorter than two seasons' worth); a constant history's 0
    becomes the mean absolute value (or 1), so errors stay finite."""
    out = {}
    for uid, part in history.groupby(ID, sort=True):
        y = part[VALUE].to_numpy(dtype="float64")
        m = season if len(y) > season else 1
        d = np.abs(y[m:] - y[:-m]) if len(y) > m else np.array([])
        s = float(d.mean()) if len(d) else 0.0
        out[uid] = s if s > 0 else (float(np.abs(y).mean()) or 1.0)
    return pd.Series(out, name="scale")


def per_series(actuals: pd.DataFrame, forecasts: dict[str, pd.DataFrame], history: pd.DataFrame,
               season: int) -> pd.DataFrame:
    """One row per model and series: MASE, sMAPE and RMSE of its forecasts against the actuals."""
    from utilsforecast.losses import mase, rmse, smape

    both = actuals[[ID, TIME, VALUE]].copy()
    for name, f in forecasts.items():
        both = both.merge(f[[ID, TIME, "yhat"]].rename(columns={"yhat": name}), on=[ID, TIME], how="left")
    both = both.dropna()
    names = list(forecasts)
    train = history[[ID, TIME, VALUE]]
    parts = {"mase": mase(both, names, season, train), "smape": smape(both, names), "rmse": rmse(both, names)}
    rows = []
    for metric, table in parts.items():
        long = table.melt(id_vars=[ID], value_vars=names, var_name="model", value_name=metric)
        rows.append(long.set_index([ID, "model"]))
    out = pd.concat(rows, axis=1).reset_index()
    sc = scales(history, season)  # MASE as defined above (utilsforecast's with a guard for a flat history)
    err = {n: both.assign(e=(both[n] - both[VALUE]).abs()).groupby(ID)["e"].mean() for n in names}
    out["mase"] = [float(err[m].get(u, np.nan) / sc.get(u, 1.0)) for u, m in zip(out[ID], out["model"], strict=True)]
    return out[["model", ID, *METRICS]]


def aggregate(table: pd.DataFrame, actuals: pd.DataFrame, forecasts: dict[str, pd.DataFrame]) -> dict[str, dict]:
    """Per model: the mean MASE and sMAPE over series, RMSE over every point, the number of series."""
    out = {}
    for name, f in forecasts.items():
        rows = table[table["model"] == name]
        both = actuals[[ID, TIME, VALUE]].merge(f[[ID, TIME, "yhat"]], on=[ID, TIME]).dropna()
        out[name] = {"mase": float(rows["mase"].mean()), "smape": float(rows["smape"].mean()),
                     "rmse": float(np.sqrt(np.mean((both["yhat"] - both[VALUE]) ** 2))) if len(both) else float("nan"),
                     "series": int(rows[ID].nunique())}
    return out


def origins(h: int, step: int, windows: int) -> list[int]:
    """How far before the holdout each backtest window ends (rows from each series' end): window 1 the latest."""
    return [h + step * j for j in range(windows)]


def run(frame: pd.DataFrame, models: dict, h: int, step: int, windows: int, season: int,
        max_history: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rolling-origin backtest before the holdout: every model refitted at each origin (`models`:
    name -> function(history) giving a fitted model). Returns (per window, model and series: the
    metrics; every forecast with its actual, step and series scale, for the intervals)."""
    tables, points = [], []
    for j, back in enumerate(origins(h, step, windows), start=1):
        history, actuals = cut(frame, back, h)
        history = history[history[ID].isin(actuals[ID].unique())]
        if history.empty:
            continue
        history = tail(history, max_history)
        forecasts = {name: make(history).forecast(history, h, actuals) for name, make in models.items()}
        t = per_series(actuals, forecasts, history, season).assign(window=j)
        tables.append(t)
        sc = scales(history, season)
        for name, f in forecasts.items():
            p = f.merge(actuals[[ID, TIME, VALUE]], on=[ID, TIME]).assign(model=name, window=j)
            points.append(p.assign(scale=p[ID].map(sc)))
    if not tables:
        raise ValueError(f"no series is long enough for a backtest window of {h} steps before the holdout; "
                         "lower forecasting.backtest_windows or forecasting.horizon")
    return pd.concat(tables, ignore_index=True), pd.concat(points, ignore_index=True)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per model and window: the mean MASE and sMAPE over series and the series' mean RMSE, then per
    model the mean over windows (window "mean")."""
    per = table.groupby(["model", "window"])[list(METRICS)].mean().reset_index()
    mean = per.groupby("model")[list(METRICS)].mean().reset_index().assign(window="mean")
    return pd.concat([per.astype({"window": "object"}), mean], ignore_index=True)


def choose(table: pd.DataFrame, metric: str) -> tuple[str, pd.Series]:
    """The family with the lowest mean `metric` over the backtest windows, and every family's."""
    means = table.groupby(["model", "window"])[metric].mean().groupby("model").mean().sort_values()
    return str(means.index[0]), means


def conformal(points: pd.DataFrame, model: str, h: int, coverage: float) -> list[float]:
    """Per step ahead (1..h), the half-width of the interval in units of the series' scale: the
    conformal quantile (level ceil((n + 1) x coverage) / n) of |error| / scale over the backtest's
    forecasts of `model`; the widest step's when a step has none."""
    p = points[points["model"] == model]
    q = []
    for k in range(1, h + 1):
        r = (p.loc[p["step"] == k, VALUE] - p.loc[p["step"] == k, "yhat"]).abs() / p.loc[p["step"] == k, "scale"]
        r = r.dropna().to_numpy()
        if len(r) == 0:
            q.append(float("nan"))
            continue
        level = min(math.ceil((len(r) + 1) * coverage) / len(r), 1.0)
        q.append(float(np.quantile(r, level, method="higher")))
    widest = np.nanmax(q) if np.isfinite(q).any() else 0.0
    return [float(v) if np.isfinite(v) else float(widest) for v in q]


def intervals(forecast: pd.DataFrame, widths: list[float], sc: pd.Series) -> pd.DataFrame:
    """The forecast with `lower` and `upper`: yhat -/+ the step's width x the series' scale."""
    w = np.asarray(widths)[forecast["step"].to_numpy() - 1] * forecast[ID].map(sc).fillna(0.0).to_numpy()
    return forecast.assign(lower=forecast["yhat"] - w, upper=forecast["yhat"] + w)


def coverage(forecast: pd.DataFrame, actuals: pd.DataFrame) -> float:
    """Share of actuals inside [lower, upper]."""
    both = forecast.merge(actuals[[ID, TIME, VALUE]], on=[ID, TIME]).dropna(subset=[VALUE, "lower", "upper"])
    if both.empty:
        return float("nan")
    return float(((both[VALUE] >= both["lower"]) & (both[VALUE] <= both["upper"])).mean())
