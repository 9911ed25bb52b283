"""Task `forecast`: each stage's steps with their files (the pure work is in `series`, `families`
and `backtest`; the saved model in `model`).

- validate: the series checked (`series.check`), findings naming the series;
- eda: coverage of every series, the seasonal profile, the largest and most volatile series, gaps;
- features: each series on its regular grid (gaps filled), the series too short left out, written
  to data/processed/series.parquet with the step and season in reports/metrics/features.json;
- train: the families compared on the rolling-origin backtest before the held-out horizon, the best
  by forecasting.metric fitted on everything before the holdout and saved as an MLflow pyfunc model
  (models/model) holding every series' whole history, with conformal widths from its backtest
  errors; models/baseline: the seasonal naive;
- evaluate: model and baseline (and every family) on the held-out horizon, per series and overall,
  the intervals' coverage, the worst series.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mlcycle.core import tables
from mlcycle.core.config import Params
from mlcycle.tasks.forecast import backtest, families, search, series
from mlcycle.tasks.forecast.params import METRICS
from mlcycle.tasks.forecast.series import FILLED, ID, TIME, VALUE

SERIES_FILE = "series.parquet"
BASELINE = "seasonal_naive"


# ---------------------------------------------------------------- validate

def validate(cfg: Params, root: Path, df: pd.DataFrame | None = None) -> series.Findings:
    """The series table at data.path checked (read here unless given)."""
    df = tables.load(cfg.data, root, window=cfg.retrain.window) if df is None else df
    return series.check(df, cfg.data, cfg.forecasting, cfg.validate_.min_rows)


def write_validate(findings: series.Findings, metrics_path: Path, findings_path: Path) -> None:
    """Add the task's checks to what the shared checks wrote (`validate.write`, run first)."""
    findings.write(metrics_path, findings_path)


# ---------------------------------------------------------------- features

def step_and_season(cfg: Params, frame: pd.DataFrame) -> tuple[str, int]:
    fc = cfg.forecasting
    freq = fc.freq or series.infer_freq(frame)
    if freq is None:
        raise ValueError("forecasting.freq: no series has two times to infer the step from; set it")
    return freq, series.season_length(freq, fc.season_length)


def features(cfg: Params, root: Path, df: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """(every long-enough series on its regular grid, what was done: step, season, filled and left-out series)."""
    df = tables.load(cfg.data, root, window=cfg.retrain.window) if df is None else df
    frame = series.standardise(df, cfg.data, cfg.forecasting)
    frame = frame[frame[TIME].notna()]
    freq, season = step_and_season(cfg, frame)
    regular = series.regular(frame, freq, cfg.forecasting)
    sizes = regular.groupby(ID).size()
    need = series.min_length(cfg.forecasting, season)
    short = sorted(sizes[sizes < need].index)
    kept = regular[~regular[ID].isin(short)].reset_index(drop=True)
    if kept.empty:
        raise ValueError(f"features: every series is shorter than {need} steps; lower forecasting.horizon or the lags")
    info = {"task": "forecast", "freq": freq, "season_length": season, "series": int(kept[ID].nunique()),
            "rows": len(kept), "filled_rows": int(kept[FILLED].sum()), "left_out_series": short,
            "min_length": need, "horizon": cfg.forecasting.horizon,
            "first_time": str(kept[TIME].min()), "last_time": str(kept[TIME].max())}
    return kept, info


def write_features(frame: pd.DataFrame, info: dict, folder: Path, metrics_path: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / SERIES_FILE, index=False)
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(info, indent=2, default=str) + "\n")


def read_features(folder: Path, metrics_path: Path) -> tuple[pd.DataFrame, dict]:
    return pd.read_parquet(folder / SERIES_FILE), json.loads(metrics_path.read_text())


def features_takeaways(frame: pd.DataFrame, info: dict) -> str:
    left = info["left_out_series"]
    return "\n".join([
        f"- {info['series']:,} series on a regular step of {info['freq']} (season: {info['season_length']} steps), "
        f"{info['rows']:,} rows from {info['first_time']} to {info['last_time']}.",
        f"- {info['filled_rows']:,} rows were missing steps, filled by interpolation within their series.",
        f"- Left out, shorter than {info['min_length']} steps: {series.named(left) if left else 'none'}.",
    ])


# ---------------------------------------------------------------- eda

def profile(frame: pd.DataFrame, freq: str, season: int) -> dict:
    """The numbers of the EDA (reports/metrics/eda.json) of the regular, filled frame."""
    sizes = frame.groupby(ID).size()
    level = frame.groupby(ID)[VALUE].mean()
    vol = frame.groupby(ID)[VALUE].apply(lambda y: float(np.std(np.diff(y.to_numpy())) / (abs(y.mean()) or 1.0)))
    return {"task": "forecast", "series": int(len(sizes)), "rows": int(len(frame)), "freq": freq,
            "season_length": season, "length_min": int(sizes.min()), "length_median": float(sizes.median()),
            "length_max": int(sizes.max()), "filled_share": float(frame[FILLED].mean()),
            "first_time": str(frame[TIME].min()), "last_time": str(frame[TIME].max()),
            "largest_series": str(level.idxmax()), "most_volatile_series": str(vol.idxmax()),
            "seasonal_strength": float(seasonal_strength(frame, season))}


def seasonal_strength(frame: pd.DataFrame, season: int) -> float:
    """Mean over series of the share of the variance of the step-to-step changes that the position in
    the season explains (0: no season; 1: all of it)."""
    if season < 2:
        return 0.0
    out = []
    for _, part in frame.groupby(ID):
        d = part[VALUE].diff().dropna().to_numpy()
        if len(d) < 2 * season or np.var(d) == 0:
            continue
        pos = np.arange(len(d)) % season
        means = pd.Series(d).groupby(pos).transform("mean").to_numpy()
        out.append(float(np.var(means) / np.var(d)))
    return float(np.mean(out)) if out else 0.0


def coverage_table(frame: pd.DataFrame, top: int = 15) -> pd.DataFrame:
    """Per series: first and last time, length, missing steps filled, mean and volatility; largest first."""
    g = frame.groupby(ID)
    out = pd.DataFrame({"first": g[TIME].min(), "last": g[TIME].max(), "length": g.size(),
                        "filled": g[FILLED].sum().astype("int64"), "mean": g[VALUE].mean(),
                        "volatility": g[VALUE].apply(lambda y: float(np.std(np.diff(y.to_numpy())) / (abs(y.mean()) or 1.0)))})
    return out.sort_values("mean", ascending=False).head(top).reset_index()


def plot_coverage(frame: pd.DataFrame, most: int = 40) -> Figure:
    """When each series has values (a line per series, gaps filled marked with dots)."""
    ids = frame.groupby(ID)[TIME].min().sort_values().index[:most]
    fig = Figure(figsize=(9, max(2.5, 0.18 * len(ids) + 1)))
    ax = fig.subplots()
    for i, uid in enumerate(ids):
        part = frame[frame[ID] == uid]
        ax.hlines(i, part[TIME].min(), part[TIME].max(), color="#4c72b0", lw=2)
        filled = part[part[FILLED]]
        ax.plot(filled[TIME], [i] * len(filled), "o", color="#c44e52", ms=3)
    ax.set_yticks(range(len(ids)), [str(u)[:30] for u in ids], fontsize=6)
    ax.set_title(f"Coverage of {len(ids)} series (red: filled steps)")
    fig.tight_layout()
    return fig


def plot_season(frame: pd.DataFrame, season: int) -> Figure:
    """The seasonal profile: the mean step-to-step change, relative to the series' level, by position in the season."""
    fig = Figure(figsize=(6, 3))
    ax = fig.subplots()
    if season >= 2:
        rel = frame.groupby(ID)[VALUE].transform(lambda y: y.diff() / (abs(y.mean()) or 1.0))
        pos = frame.groupby(ID).cumcount() % season
        prof = rel.groupby(pos).mean()
        ax.bar(prof.index + 1, prof.to_numpy(), color="#55a868")
        ax.set_xlabel("position in the season (steps from each series' start)")
    ax.set_title(f"Seasonal profile ({season} steps)")
    fig.tight_layout()
    return fig


def plot_largest(frame: pd.DataFrame, top: int = 6) -> Figure:
    """The largest series (by mean level) over time."""
    ids = frame.groupby(ID)[VALUE].mean().sort_values(ascending=False).index[:top]
    fig = Figure(figsize=(9, 3.2))
    ax = fig.subplots()
    for uid in ids:
        part = frame[frame[ID] == uid]
        ax.plot(part[TIME], part[VALUE], lw=1, label=str(uid)[:30])
    ax.legend(fontsize=6)
    ax.set_title(f"The {len(ids)} largest series")
    fig.tight_layout()
    return fig


def eda_takeaways(doc: dict) -> str:
    return "\n".join([
        f"- {doc['series']:,} series, {doc['rows']:,} rows on a step of {doc['freq']}, from {doc['first_time']} to "
        f"{doc['last_time']}; lengths from {doc['length_min']:,} to {doc['length_max']:,} steps (median "
        f"{doc['length_median']:g}); {doc['filled_share']:.1%} of the rows fill a missing step.",
        f"- Season of {doc['season_length']} steps: on average it explains {doc['seasonal_strength']:.0%} of the "
        "variance of the step-to-step changes.",
        f"- Largest series: '{doc['largest_series']}'; most volatile (changes relative to its level): "
        f"'{doc['most_volatile_series']}'.",
    ])


def write_metrics(doc: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=float) + "\n")


# ---------------------------------------------------------------- train

def train(frame: pd.DataFrame, info: dict, cfg: Params) -> dict:
    """The families on the rolling-origin backtest before the holdout, the best chosen by
    forecasting.metric, then it and the seasonal naive fitted on everything before the holdout, the
    conformal widths from the chosen family's backtest errors. The holdout is not looked at; the saved
    models hold every series' whole history (to max_history), so they forecast the steps after the data."""
    fc, found = search.tune(frame, info, cfg)  # train.search: the global model's settings (else params.yaml's)
    freq, season, h = info["freq"], int(info["season_length"]), fc.horizon
    names = list(dict.fromkeys([BASELINE, *fc.families]))
    makers = {n: (lambda hist, n=n: families.fitted(n, hist, freq, season, fc)) for n in names}
    table, points = backtest.run(frame, makers, h, fc.step(), fc.backtest_windows, season, fc.max_history)
    chosen, means = backtest.choose(table[table["model"].isin(fc.families)], fc.metric)
    widths = backtest.conformal(points, chosen, h, fc.coverage)
    base_widths = backtest.conformal(points, BASELINE, h, fc.coverage)
    promises = {n: promise(table, points, n, h, w) for n, w in ((chosen, widths), (BASELINE, base_widths))}
    history, _ = backtest.cut(frame, 0, h)
    history = backtest.tail(history, fc.max_history)
    cols = [ID, TIME, VALUE, *fc.static_columns, *fc.dynamic_columns]
    # fitted before the holdout (the model evaluate judges), holding every series up to its last time:
    # served, it forecasts the steps after the data, not the held-out ones
    return {"table": table, "summary": backtest.summary(table), "chosen": chosen, "means": means,
            "widths": widths, "baseline_widths": base_widths, "history": backtest.tail(frame, fc.max_history)[cols],
            "model": makers[chosen](history[cols]), "baseline": makers[BASELINE](history[cols]),
            "freq": freq, "season": season, "found": found, "promise": promises[chosen], "baseline_promise": promises[BASELINE]}


def promise(table: pd.DataFrame, points: pd.DataFrame, name: str, h: int, widths: list[float]) -> dict:
    """What the backtest promises of family `name`, saved with its model for the monitor: its mean MASE
    over windows, its mean |error| / scale per step ahead (1..h; a step without forecasts: None) and
    the share of its backtest actuals inside the conformal widths (in-sample: the widths come from
    the same errors, so about the nominal coverage)."""
    p = points[points["model"] == name]
    scaled = (p[VALUE] - p["yhat"]).abs() / p["scale"]
    by_step = scaled.groupby(p["step"]).mean()
    inside = scaled <= np.asarray(widths)[p["step"].to_numpy() - 1]
    means = table[table["model"] == name].groupby("window")["mase"].mean()
    by_step = [float(by_step.get(k, np.nan)) for k in range(1, h + 1)]
    return {"mase": float(means.mean()), "scaled_error_by_step": [v if np.isfinite(v) else None for v in by_step],
            "actuals_by_step": [int((p["step"] == k).sum()) for k in range(1, h + 1)],
            "coverage": float(inside.mean()) if len(p) else None}


def save(trained: dict, cfg: Params, model_dir: Path, baseline_dir: Path) -> None:
    """models/model: the chosen family; models/baseline: the seasonal naive; both MLflow pyfunc models."""
    from mlcycle.tasks.forecast import model as forecast_model

    fc = cfg.forecasting
    meta = {"id_columns": fc.id_columns, "time_column": cfg.data.time_column, "target": cfg.data.target,
            "freq": trained["freq"], "season_length": trained["season"], "coverage": fc.coverage,
            "dynamic_columns": fc.dynamic_columns, "static_columns": fc.static_columns,
            "series": int(trained["history"][ID].nunique())}
    for key, folder, widths, promised in (("model", model_dir, trained["widths"], trained["promise"]),
                                          ("baseline", baseline_dir, trained["baseline_widths"], trained["baseline_promise"])):
        m = forecast_model.ForecastModel(trained[key], trained["history"], widths, fc, cfg.data.time_column,
                                         cfg.data.target, trained["season"])
        forecast_model.save(m, folder, {**meta, "backtest": promised})  # the monitor's promise (monitor.py)


def write_train_metrics(trained: dict, path: Path, metric: str) -> None:
    """reports/metrics/train.json: the family chosen and every family's mean backtest metrics."""
    s = trained["summary"]
    mean = s[s["window"] == "mean"].set_index("model")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"task": "forecast", "chosen": trained["chosen"], "metric": metric,
                                "backtest": {m: {k: float(mean.loc[m, k]) for k in METRICS} for m in mean.index},
                                "interval_widths": trained["widths"]}, indent=2) + "\n")


def write_search(trained: dict, path: Path, metric: str) -> None:
    """models/search.json: every family's backtest metrics per window (the comparison that chose it)."""
    if trained.get("found") is not None:  # train.search: the global model's trials, the families beside them
        search.write(trained["found"], path, trained["summary"], trained["chosen"])
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    s = trained["summary"].astype({"window": "str"})
    path.write_text(json.dumps({"method": "backtest", "score": metric, "scored_by": "backtest",
                                "chosen": {"model": trained["chosen"]},
                                "trials": s.to_dict("records")}, indent=2, default=float) + "\n")


def train_takeaways(trained: dict, metric: str) -> str:
    means = trained["means"]
    s = trained["summary"]
    base = float(s[(s["model"] == BASELINE) & (s["window"] == "mean")][metric].iloc[0])
    return "\n".join([
        f"- Chosen on the backtest by {metric}: {trained['chosen']} ({means.iloc[0]:.4f}; seasonal naive {base:.4f}).",
        "- Every family's mean over windows: " + ", ".join(f"{m} {v:.4f}" for m, v in means.items()) + ".",
        "- Interval half-widths per step, in units of each series' scale: "
        + ", ".join(f"{w:.2f}" for w in trained["widths"]) + ".",
        *([search.takeaway(trained["found"])] if trained.get("found") is not None else []),
    ])


# ---------------------------------------------------------------- evaluate

def holdout(frame: pd.DataFrame, h: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(everything before the held-out horizon, the held-out horizon)."""
    return backtest.cut(frame, 0, h)


def score(m, frame: pd.DataFrame, h: int, season: int, max_history: int | None = None) -> dict:
    """A model's forecasts of the held-out horizon from the history before it, its metrics overall
    (`metrics`), per series (`per_series`) and its intervals' coverage."""
    history, actuals = holdout(frame, h)
    history = backtest.tail(history, max_history)
    f = m.forecast(history, h, actuals)
    table = backtest.per_series(actuals, {"m": f}, history, season).drop(columns="model")
    overall = backtest.aggregate(table.assign(model="m"), actuals, {"m": f})["m"]
    overall["coverage"] = backtest.coverage(f, actuals)
    return {"metrics": overall, "per_series": table, "forecast": f, "actuals": actuals}


def evaluate(model, baseline, frame: pd.DataFrame, cfg: Params, season: int) -> dict:
    fc = cfg.forecasting
    ev = {name: score(m, frame, fc.horizon, season, fc.max_history) for name, m in (("model", model), ("baseline", baseline))}
    per = ev["model"]["per_series"].merge(ev["baseline"]["per_series"][[ID, "mase"]].rename(columns={"mase": "baseline_mase"}), on=ID)
    ev["worst"] = per.sort_values("mase", ascending=False).head(10).reset_index(drop=True)
    ev["beats_baseline_share"] = float((per["mase"] < per["baseline_mase"]).mean())
    return ev


def metrics_document(ev: dict, coverage: float, chosen: str) -> dict:
    """reports/metrics/evaluate.json: model and baseline on the held-out horizon, the nominal coverage."""
    return {"model": ev["model"]["metrics"], "baseline": ev["baseline"]["metrics"], "family": chosen,
            "nominal_coverage": coverage, "beats_baseline_share": ev["beats_baseline_share"],
            "worst_series": ev["worst"][[ID, "mase"]].head(5).to_dict("records")}


def comparison(ev: dict) -> pd.DataFrame:
    rows = [{"model": n, **{k: ev[n]["metrics"][k] for k in (*METRICS, "coverage", "series")}} for n in ("model", "baseline")]
    return pd.DataFrame(rows)


def plot_worst(ev: dict, history: pd.DataFrame, most: int = 4, context: int = 36) -> Figure:
    """The worst series by MASE: the end of their history, the held-out actuals, the forecast and its interval."""
    ids = ev["worst"][ID].head(most).tolist()
    fig = Figure(figsize=(9, 2.4 * max(1, (len(ids) + 1) // 2)))
    axes = np.atleast_1d(fig.subplots(max(1, (len(ids) + 1) // 2), 2)).ravel()
    f, a = ev["model"]["forecast"], ev["model"]["actuals"]
    for ax, uid in zip(axes, ids, strict=False):
        h = history[history[ID] == uid].tail(context)
        ax.plot(h[TIME], h[VALUE], color="#333333", lw=1)
        fa, aa = f[f[ID] == uid], a[a[ID] == uid]
        ax.plot(aa[TIME], aa[VALUE], color="#333333", lw=1, ls="--")
        ax.plot(fa[TIME], fa["yhat"], color="#4c72b0")
        ax.fill_between(fa[TIME], fa["lower"], fa["upper"], color="#4c72b0", alpha=0.2)
        ax.set_title(str(uid)[:40], fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes[len(ids):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def evaluate_takeaways(ev: dict, coverage: float, chosen: str) -> str:
    m, b = ev["model"]["metrics"], ev["baseline"]["metrics"]
    worst = ev["worst"].iloc[0]
    return "\n".join([
        f"- Held-out horizon, {m['series']:,} series: {chosen} MASE {m['mase']:.4f}, sMAPE {m['smape']:.4f}, RMSE "
        f"{m['rmse']:.4g}; seasonal naive MASE {b['mase']:.4f}, sMAPE {b['smape']:.4f}, RMSE {b['rmse']:.4g}.",
        f"- It beats the seasonal naive on {ev['beats_baseline_share']:.0%} of the series (by MASE).",
        f"- Its {coverage:.0%} conformal intervals hold {m['coverage']:.1%} of the held-out values.",
        f"- Worst series: '{worst[ID]}' (MASE {worst['mase']:.2f}, seasonal naive {worst['baseline_mase']:.2f}).",
    ])


def write_reports(paths, ev: dict) -> None:
    """reports/fairness.json: the slices of a forecast are its series (MASE, sMAPE, RMSE of each);
    reports/explanations.json: the worst series."""
    per = ev["model"]["per_series"].rename(columns={ID: "group"}).assign(column="series")
    paths.fairness.write_text(json.dumps({"slices": per.to_dict("records")}, indent=1, default=str) + "\n")
    paths.explanations.write_text(json.dumps({"examples": ev["worst"].to_dict("records")}, indent=1, default=str) + "\n")


def index_section(paths, cfg: Params, read) -> dict:
    """The index page's headline for a forecast (the task's "index" hook)."""
    f = read(paths.metrics("features")) or {}
    return {"headline": list(METRICS),
            "baseline": "seasonal naive (each step repeats the value one season earlier)",
            "rows": (f"Holdout: the last {cfg.forecasting.horizon} steps of each of {f.get('series', '-')} series "
                     f"(step {f.get('freq', '-')})."),
            "model": f"the family chosen on a rolling-origin backtest of {cfg.forecasting.backtest_windows} windows"}
