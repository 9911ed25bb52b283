"""Monitoring a forecast (task `forecast`): do the champion's forecasts still hold what its backtest
promised, and do the series still move as they did in the history it holds?

The *reference* is the history the served model holds (`ForecastModel.history`: each series' training data,
the held-out horizon included) and what the rolling-origin backtest promised of its family, saved with
it at train time (`backtest` in its metadata, `stages.promise`): the mean |error| / scale per step
ahead and the share of actuals its intervals held. The *current* data is either

- the `/forecast` answers of the last `days` (`monitor.log_window_days`) of the prediction log with
  the actuals fed back on them (`serving/feedback.py`: the actual of a step is the label of its row),
  or
- a file of new observations with the columns of data.path (`mlcycle monitoring run --input FILE`):
  the served model forecasts its times from the workspace's data before them (`score`).

It reports:

- **error now against the promise**: MASE (per series the mean |actual - forecast| over the series'
  scale, `backtest.scales`, then the mean over series), sMAPE and the share of actuals inside the
  intervals (against the nominal `forecasting.coverage`); the promise for the same actuals is the
  backtest's mean scaled error per step ahead, weighted by how many actuals each step has. From the
  log: per model version (`live`). A series forecast from a caller's own history has its scale read
  back from its logged interval (the half-width is the step's conformal width times that scale);
- **level drift** per series: the mean seasonal change of the current values (y_t - y_{t-season},
  the earlier value from the history) over the series' scale, a z; drifted at |z| >=
  `forecasting.level_drift`;
- **seasonality drift** per series with a full season of current values: the correlation of the
  current season's profile (values minus their mean) with the reference's last full season at the
  same positions; drifted below `forecasting.season_drift`. With less than a season of current values
  the check cannot run and says so: it never counts as passed.

Data drift is the share of series drifted (level or seasonality) at or above `monitor.drift_share`;
decay is MASE now worse than the promise by more than `monitor.max_metric_drop` with the 95% bootstrap
interval over series above the promise; fewer than `monitor.min_rows` actuals (or rows of a file)
give no verdict ("insufficient"). `retrain.trigger` turns them into the retrain decision.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mlcycle.core import stats, tables
from mlcycle.core.config import Params
from mlcycle.core.errors import MonitorError
from mlcycle.serving import feedback, predlog
from mlcycle.tasks.forecast import backtest, series
from mlcycle.tasks.forecast.series import ID, TIME, VALUE
from mlcycle.tasks.forecast.serve import python_model

N_BOOT = 1000  # bootstrap resamples of the mean over series
MIN_SERIES = 2  # fewer series with actuals: MASE has no interval, and no decay is claimed
TOP = 10  # drifted series named in the reasons and the summary
LIVE_COLUMNS = ["request_id", "row", "series", "time", "step", "forecast", "lower", "upper", "history_rows",
                "model_version", "ts"]


@dataclass
class Observations:
    """Current values in the canonical columns (series.ID, TIME, VALUE) and, from the log, the
    forecast steps they answer (`live`: LIVE_COLUMNS and `actual`, NaN without feedback)."""

    source: str
    frame: pd.DataFrame
    period: tuple[str, str] | None = None
    live: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


def _period(frame: pd.DataFrame) -> tuple[str, str] | None:
    t = frame[TIME] if TIME in frame.columns else pd.Series(dtype="datetime64[ns]")
    return (str(t.min()), str(t.max())) if t.notna().any() else None


# ---------------------------------------------------------------- current data

def from_file(root: Path, params: Params, file: str | Path) -> Observations:
    """A file of new observations with the columns of data.path, in the canonical columns (rows
    without a time or a value left out, counted in the notes)."""
    df = tables.load(params.data, root, path=file)
    fc = params.forecasting
    need = [*fc.id_columns, params.data.time_column, params.data.target]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise MonitorError(f"--input {Path(file).name}: no column '{missing[0]}'; a file of observations needs "
                           f"forecasting.id_columns, data.time_column and data.target ({', '.join(need)})")
    frame = series.standardise(df, params.data, fc)
    usable = frame[TIME].notna() & frame[VALUE].notna()
    notes = [] if usable.all() else [f"{int((~usable).sum()):,} rows without a time or a value left out"]
    frame = frame[usable].drop_duplicates([ID, TIME], keep="last").reset_index(drop=True)
    return Observations(f"file {Path(file).name}", frame, _period(frame), notes=notes)


def served_forecasts(log: pd.DataFrame) -> pd.DataFrame:
    """The `/forecast` rows of a prediction log (not shadowed): one per forecast step, LIVE_COLUMNS."""
    need = ["series", "time", "step", "forecast", "lower", "upper", "request_id", "row", "model_version", "ts"]
    if any(c not in log.columns for c in need):
        return pd.DataFrame(columns=LIVE_COLUMNS)
    df = log[log["step"].notna() & log["forecast"].notna() & log["series"].notna()].copy()
    if "route" in df.columns:
        df = df[df["route"].fillna("champion") != "shadow"]
    df["history_rows"] = df["history_rows"].fillna(0).astype("int64") if "history_rows" in df.columns else 0
    df["time"] = pd.to_datetime(df["time"])
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    df["series"], df["model_version"] = df["series"].astype("str"), df["model_version"].astype("str")
    df["row"], df["step"] = df["row"].astype("int64"), df["step"].astype("int64")
    return df[LIVE_COLUMNS].reset_index(drop=True)


def with_actuals(rows: pd.DataFrame, labels: pd.DataFrame) -> Observations:
    """The forecast steps with the actual fed back on each (`actual`), and the current values: each
    series' actuals by time (one per time: the last fed back)."""
    lab = labels[["request_id", "row", "label"]] if not labels.empty else pd.DataFrame(columns=["request_id", "row", "label"])
    lab = lab.assign(request_id=lab["request_id"].astype("str"), row=lab["row"].astype("int64"),
                     actual=pd.to_numeric(lab["label"], errors="coerce"))[["request_id", "row", "actual"]]
    live = rows.assign(request_id=rows["request_id"].astype("str")).merge(lab, on=["request_id", "row"], how="left")
    fed = live[live["actual"].notna()]
    frame = (pd.DataFrame({ID: fed["series"], TIME: fed["time"], VALUE: fed["actual"].astype("float64")})
             .drop_duplicates([ID, TIME], keep="last").sort_values([ID, TIME]).reset_index(drop=True))
    notes = [f"{live['request_id'].nunique():,} forecasts served ({len(live):,} steps), {len(fed):,} steps with "
             f"their actual ({frame[ID].nunique():,} series)"]
    return Observations("", frame, _period(frame), live, notes)


def from_log(root: Path, params: Params, days: float | None = None, now: dt.datetime | None = None) -> Observations:
    """The `/forecast` answers of the last `days` (monitor.log_window_days) and the actuals fed back."""
    days = days or params.monitor.log_window_days
    log_dir, rows = predlog.answers_to_monitor(
        root, params.serve.log_dir, "the forecast model (`mlcycle serving start`) and send /forecast requests",
        served_forecasts, days, now, "/forecast answers")
    cur = with_actuals(rows, feedback.read(log_dir))
    cur.source = f"prediction log, last {days:g} days"
    return cur


# ---------------------------------------------------------------- the promise and the error now

def promised(meta: dict, step_counts: dict[int, int]) -> float | None:
    """What the backtest promised for these actuals: its mean |error| / scale per step ahead, weighted
    by the actuals of each step (steps it has no figure for left out); None for a model saved
    without its backtest figures."""
    by_step = ((meta or {}).get("backtest") or {}).get("scaled_error_by_step") or []
    pairs = [(n, by_step[k - 1]) for k, n in step_counts.items() if 1 <= k <= len(by_step) and by_step[k - 1] is not None]
    total = sum(n for n, _ in pairs)
    return float(sum(n * e for n, e in pairs) / total) if total else None


def judge(per_series: np.ndarray, promise: float | None, actuals: int, params: Params) -> dict:
    """MASE now (mean over series), its 95% bootstrap interval over series (seed monitor.seed) and
    decay: worse than the promise by more than monitor.max_metric_drop with the interval above it,
    judged only with at least monitor.min_rows actuals."""
    mp = params.monitor
    v = per_series[np.isfinite(per_series)]
    now = float(v.mean()) if len(v) else float("nan")
    interval = None
    if len(v) >= MIN_SERIES:
        lo, hi = stats.bootstrap_mean_intervals(v, N_BOOT, np.random.default_rng(mp.seed), stats.CI95)
        interval = [float(lo), float(hi)]
    enough = actuals >= mp.min_rows
    decayed = bool(enough and promise is not None and interval is not None
                   and now - promise > mp.max_metric_drop and interval[0] > promise)
    return {"metric": "mase", "now": now, "at_training": promise,
            "change": None if promise is None else now - promise, "interval_now": interval,
            "actuals": int(actuals), "series": int(len(v)), "decayed": decayed, "judged": bool(enough and promise is not None)}


def by_step(steps: pd.Series, scaled: pd.Series, meta: dict) -> list[dict]:
    """Per step ahead: the actuals, their mean |error| / scale now and what the backtest promised."""
    promise = ((meta or {}).get("backtest") or {}).get("scaled_error_by_step") or []
    out = []
    for k, g in scaled.groupby(steps.to_numpy(), sort=True):
        out.append({"step": int(k), "actuals": int(len(g)), "scaled_error": float(g.mean()),
                    "promised": promise[k - 1] if 1 <= k <= len(promise) else None})
    return out


def live_scales(rows: pd.DataFrame, reference_scales: pd.Series, widths: list[float]) -> pd.Series:
    """Each logged step's series scale: the reference history's for a series the model holds, else read
    back from the logged interval ((upper - lower) / 2 / the step's width: the scale of the caller's
    history the interval was built with); NaN when neither is known (a zero width)."""
    known = rows["series"].map(reference_scales).astype("float64")
    w = np.append(np.asarray(widths, dtype="float64"), np.nan)  # a step beyond the widths: unknown
    k = rows["step"].to_numpy()
    width = w[np.where((k >= 1) & (k <= len(widths)), k - 1, len(widths))]
    with np.errstate(divide="ignore", invalid="ignore"):
        back = (rows["upper"] - rows["lower"]).to_numpy(dtype="float64") / 2 / width
    back = pd.Series(np.where(np.isfinite(back) & (back > 0), back, np.nan), index=rows.index)
    return known.fillna(back)


def live_error(live: pd.DataFrame, reference_scales: pd.Series, widths: list[float], meta: dict, served_version: str,
               params: Params) -> tuple[list[dict], dict | None]:
    """Per model version: the steps served, the actuals received, MASE, sMAPE and coverage of those
    actuals; and the performance of the served version (MASE now against the promise, by step)."""
    fed = live[live["actual"].notna()].copy()
    fed["scale"] = live_scales(fed, reference_scales, widths) if len(fed) else pd.Series(dtype="float64")
    fed["abs_error"] = (fed["actual"] - fed["forecast"]).abs()
    denom = fed["actual"].abs() + fed["forecast"].abs()
    fed["smape"] = np.where(denom > 0, fed["abs_error"] / denom.where(denom > 0, 1.0), 0.0)
    fed["scaled"] = fed["abs_error"] / fed["scale"]
    fed["inside"] = (fed["actual"] >= fed["lower"]) & (fed["actual"] <= fed["upper"])
    rows, perf = [], None
    for version, g in live.groupby("model_version", sort=True):
        f = fed[fed["model_version"] == version]
        scaled = f.dropna(subset=["scale"])
        per_series = scaled.groupby("series")["scaled"].mean().to_numpy()
        row = {"version": str(version), "forecasts": int(g["request_id"].nunique()), "steps": int(len(g)),
               "actuals": int(len(f)), "series": int(f["series"].nunique()),
               "mase": float(per_series.mean()) if len(per_series) else None,
               "smape": float(f.groupby("series")["smape"].mean().mean()) if len(f) else None,
               "coverage": float(f["inside"].mean()) if len(f) else None,
               "series_without_scale": int(f.loc[f["scale"].isna(), "series"].nunique())}
        if str(version) == str(served_version):
            promise = promised(meta, scaled["step"].value_counts().to_dict())
            row["mase_promised"] = promise
            if len(scaled):
                perf = judge(per_series, promise, len(f), params)
                perf.update(smape=row["smape"], coverage=row["coverage"],
                            nominal_coverage=float(meta.get("coverage") or params.forecasting.coverage),
                            promised_coverage=((meta.get("backtest") or {}).get("coverage")),
                            left_out_series=row["series_without_scale"],
                            by_step=by_step(scaled["step"], scaled["scaled"], meta))
        rows.append(row)
    return rows, perf


def frame_history(root: Path, params: Params, pm) -> pd.DataFrame:
    """The workspace's data (data.path and the recorded batches, retrain.window) on the model's regular
    grid, as the features stage puts it, in the columns of the model's history."""
    df = tables.load(params.data, root, window=params.retrain.window)
    frame = series.standardise(df, params.data, pm.fc)
    frame = frame[frame[TIME].notna()]
    regular = series.regular(frame, pm.family.freq, pm.fc)
    return regular[[c for c in pm.history.columns if c in regular.columns]]


def forecast_file(root: Path, params: Params, served, cur: Observations, history: pd.DataFrame | None = None) -> dict:
    """The served model's forecasts of a file's observations, each series from the workspace's data
    before its first current time (`frame_history`), as evaluate scores the holdout: per series
    (`backtest.per_series`) and overall (`backtest.aggregate`), coverage, the steps counted. The
    observations more than the model's horizon after a series' history (in steps, a gap before the
    file counted) are left out and counted."""
    pm = python_model(served)
    h_max = len(pm.widths)
    history = frame_history(root, params, pm) if history is None else history
    first = cur.frame.groupby(ID)[TIME].min()
    history = history[history[ID].isin(first.index)]
    history = history[history[TIME] < history[ID].map(first)].reset_index(drop=True)
    history = backtest.tail(history, pm.fc.max_history)
    known = set(history[ID])
    actuals = cur.frame[cur.frame[ID].isin(known)].reset_index(drop=True)
    out = {"history": history, "unknown_series": sorted(set(cur.frame[ID]) - known), "beyond_horizon": 0,
           "actuals": 0, "per_series": None}
    if actuals.empty:
        return out
    # steps from each series' last time in the data to its last observation (a file may start after a gap)
    last, off = history.groupby(ID)[TIME].max(), _offset(pm.family.freq)
    ahead = max(len(pd.date_range(last[u], t, freq=off)) - 1 for u, t in actuals.groupby(ID)[TIME].max().items())
    h = int(min(h_max, max(ahead, 1)))
    future = actuals if pm.fc.dynamic_columns else None
    try:
        f = pm.forecast(history, h, future)
    except (ValueError, KeyError) as exc:
        raise MonitorError(f"monitor: the served model cannot forecast the times of the file from the data before "
                           f"them: {exc}"[:500]) from None
    matched = actuals.merge(f[[ID, TIME, "step"]], on=[ID, TIME])
    out["beyond_horizon"] = int(len(actuals) - len(matched))
    if matched.empty:
        return out
    table = backtest.per_series(matched, {"m": f}, history, pm.season).drop(columns="model")
    overall = backtest.aggregate(table.assign(model="m"), matched, {"m": f})["m"]
    sc = backtest.scales(history, pm.season)
    both = matched.merge(f[[ID, TIME, "yhat"]], on=[ID, TIME])
    scaled = (both[VALUE] - both["yhat"]).abs() / both[ID].map(sc)
    out.update(actuals=len(matched), per_series=table, overall=overall, coverage=backtest.coverage(f, matched),
               steps=both["step"], scaled=scaled)
    return out


def file_performance(scored: dict, served, params: Params) -> dict | None:
    """The performance of a scored file (`forecast_file`): MASE now against the promise for its steps."""
    if scored["per_series"] is None:
        return None
    meta = served.meta or {}
    counts = scored["steps"].value_counts().to_dict()
    perf = judge(scored["per_series"]["mase"].to_numpy(dtype="float64"), promised(meta, counts), scored["actuals"], params)
    perf.update(smape=scored["overall"]["smape"], coverage=scored["coverage"],
                nominal_coverage=float(meta.get("coverage") or params.forecasting.coverage),
                promised_coverage=(meta.get("backtest") or {}).get("coverage"), left_out_series=len(scored["unknown_series"]),
                by_step=by_step(scored["steps"], scored["scaled"], meta))
    return perf


# ---------------------------------------------------------------- drift of level and seasonality

def _offset(freq: str):
    return pd.tseries.frequencies.to_offset(freq)


def level_drift(reference: pd.DataFrame, current: pd.DataFrame, season: int, freq: str, threshold: float) -> dict:
    """Per series of the current values: z, the mean of y_t - y_{t-season} (the earlier value from the
    reference or the current values) over the series' scale (`backtest.scales` of the reference);
    drifted at |z| >= threshold. A series the reference does not hold, or without a value one season
    before any current one, is not judged (counted, with the reason)."""
    sc = backtest.scales(reference, season)
    sizes = reference.groupby(ID).size()
    values = {uid: part.set_index(TIME)[VALUE] for uid, part in
              pd.concat([reference[[ID, TIME, VALUE]], current[[ID, TIME, VALUE]]]).drop_duplicates([ID, TIME], keep="last")
              .groupby(ID, sort=False)}
    off = _offset(freq)
    rows, not_judged = [], {"not in the reference history": [], "no value one season before": []}
    for uid, part in current.groupby(ID, sort=True):
        if uid not in sc.index:
            not_judged["not in the reference history"].append(str(uid))
            continue
        lag = season if sizes.get(uid, 0) > season else 1
        earlier = values[uid].reindex(pd.DatetimeIndex(part[TIME]) - lag * off).to_numpy(dtype="float64")
        d = part[VALUE].to_numpy(dtype="float64") - earlier
        d = d[np.isfinite(d)]
        if not len(d):
            not_judged["no value one season before"].append(str(uid))
            continue
        z = float(d.mean() / sc[uid])
        rows.append({"series": str(uid), "z": z, "values": int(len(d)), "mean_change": float(d.mean()),
                     "scale": float(sc[uid]), "drifted": bool(abs(z) >= threshold)})
    rows.sort(key=lambda r: -abs(r["z"]))
    drifted = [r["series"] for r in rows if r["drifted"]]
    return {"threshold": threshold, "ran": bool(rows), "series": len(rows), "drifted": drifted,
            "share": len(drifted) / len(rows) if rows else None, "rows": rows,
            "not_judged": {k: v for k, v in not_judged.items() if v},
            "reason": None if rows else "no current value has a value of its series one season before it in the history"}


def season_drift(reference: pd.DataFrame, current: pd.DataFrame, season: int, freq: str, threshold: float) -> dict:
    """Per series with a full season of consecutive current values: the correlation of the latest
    season's profile (values minus their mean) with the reference's last full season at the same
    positions in the season; drifted below threshold. Fewer current values than a season: not run."""
    out = {"threshold": threshold, "season": season, "ran": False, "series": 0, "drifted": [], "share": None,
           "rows": [], "not_judged": {}}
    if season < 2:
        return {**out, "reason": "the series have no season (forecasting.season_length 1)"}
    off = _offset(freq)
    ref = {uid: part.set_index(TIME)[VALUE] for uid, part in reference.groupby(ID, sort=False)}
    rows, short, other = [], [], {}
    for uid, part in current.groupby(ID, sort=True):
        part = part.sort_values(TIME).tail(season)
        t = pd.DatetimeIndex(part[TIME])
        if len(part) < season or t[-1] != t[0] + (season - 1) * off:
            short.append(str(uid))
            continue
        r = ref.get(uid)
        if r is None or len(r) < season:
            other.setdefault("no full season in the reference history", []).append(str(uid))
            continue
        end = r.index.max()
        at = []
        for s in t:  # the same position in the reference's last full season: whole seasons back
            while s > end:
                s = s - season * off
            at.append(s)
        rv = r.reindex(pd.DatetimeIndex(at)).to_numpy(dtype="float64")
        cv = part[VALUE].to_numpy(dtype="float64")
        a, b = cv - cv.mean(), rv - np.nanmean(rv)
        if not np.isfinite(b).all() or a.std() == 0 or b.std() == 0:
            other.setdefault("a flat or incomplete season", []).append(str(uid))
            continue
        corr = float(np.corrcoef(a, b)[0, 1])
        rows.append({"series": str(uid), "correlation": corr, "drifted": bool(corr < threshold)})
    rows.sort(key=lambda r: r["correlation"])
    drifted = [r["series"] for r in rows if r["drifted"]]
    if short:
        other[f"fewer than {season} consecutive current values (a full season)"] = short
    reason = None
    if not rows:
        reason = (f"no series has a full season ({season} consecutive steps) of current values" if short
                  else "no series could be compared: " + "; ".join(other))
    return {**out, "ran": bool(rows), "series": len(rows), "drifted": drifted,
            "share": len(drifted) / len(rows) if rows else None, "rows": rows, "not_judged": other, "reason": reason}


# ---------------------------------------------------------------- the verdict

def assess(params: Params, served, reference: pd.DataFrame, cur: Observations, scored: dict | None = None) -> dict:
    """The verdict of a forecast (a JSON-ready dict, the keys of the other tasks' verdicts where they
    mean the same): error now against the promise, level and seasonality drift, retrain."""
    mp, fc = params.monitor, params.forecasting
    pm = python_model(served)
    meta = served.meta or {}
    season, freq = int(pm.season), pm.family.freq
    verdict: dict = {
        "task": "forecast",
        "model": {"name": served.info.get("name"), "version": served.version, "uri": served.info.get("uri"),
                  "data_md5": served.info.get("data_md5"), "run_id": served.info.get("run_id"), "serves": pm.name},
        "current": {"source": cur.source, "rows": len(cur.frame), "series": int(cur.frame[ID].nunique()),
                    "labelled": True, "period": list(cur.period) if cur.period else None, "notes": list(cur.notes)},
        "reference": {"rows": len(reference), "series": int(reference[ID].nunique()), "season": season, "freq": freq,
                      "first_time": str(reference[TIME].min()), "last_time": str(reference[TIME].max()),
                      "promise": meta.get("backtest")},
        "policy": {**mp.model_dump(), "trigger": params.retrain.trigger, "level_drift": fc.level_drift,
                   "season_drift": fc.season_drift},
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    notes = verdict["current"]["notes"]
    if not meta.get("backtest"):
        notes.append("the model was saved without its backtest figures (trained before they were kept): no promise "
                     "to compare the error with; retrain to store them")
    perf = None
    if cur.live is not None:
        verdict["live"], perf = live_error(cur.live, backtest.scales(pm.history, season), pm.widths, meta,
                                           served.version, params)
        if perf and perf["left_out_series"]:
            notes.append(f"{perf['left_out_series']} series forecast from a caller's history had no scale to read "
                         "back (no interval width): left out of MASE")
        if perf is None:
            notes.append(f"no actual fed back with a scale on the forecasts of version {served.version} in this window: "
                         "its error is not judged (the other versions' are in `live`)")
    elif scored is not None:
        perf = file_performance(scored, served, params)
        if scored["unknown_series"]:
            notes.append(f"{len(scored['unknown_series'])} series of the file have no history in the workspace's data: "
                         f"not forecast ({series.named(scored['unknown_series'])})")
        if scored["beyond_horizon"]:
            notes.append(f"{scored['beyond_horizon']:,} observations lie more than the model's {len(pm.widths)} steps "
                         "after their series' history: left out of the error")
    verdict["performance"] = perf
    n = int(cur.live["actual"].notna().sum()) if cur.live is not None else len(cur.frame)
    if n < mp.min_rows:
        noun = "actuals fed back" if cur.live is not None else "observations"
        verdict.update(status="insufficient", retrain=False, data_drift=False, decayed=False, reasons=[
            f"{n} {noun}, fewer than monitor.min_rows {mp.min_rows}: no verdict (no drift or decay claimed)"])
        return verdict
    verdict["level_drift"] = level_drift(reference, cur.frame, season, freq, fc.level_drift)
    verdict["seasonality"] = season_drift(reference, cur.frame, season, freq, fc.season_drift)
    return conclude(verdict, params)


def drift_share(verdict: dict) -> tuple[float | None, list[str]]:
    """The share of judged series drifted in level or seasonality, and those series (by |z|, then by
    correlation)."""
    lv, se = verdict["level_drift"], verdict["seasonality"]
    judged = {r["series"] for r in lv["rows"]} | {r["series"] for r in se["rows"]}
    drifted = list(dict.fromkeys(lv["drifted"] + se["drifted"]))
    return (len(drifted) / len(judged) if judged else None), drifted


def conclude(verdict: dict, params: Params) -> dict:
    """Status, reasons and the retrain decision (retrain.trigger) from the drifts and the error now."""
    mp = params.monitor
    lv, se, perf = verdict["level_drift"], verdict["seasonality"], verdict.get("performance")
    share, drifted_series = drift_share(verdict)
    drifted = bool(share is not None and share >= mp.drift_share)
    verdict["drift"] = {"share": share, "drifted": drifted_series,
                        "top": [{"series": r["series"], "z": r["z"]} for r in lv["rows"] if r["drifted"]][:TOP]}
    reasons = []
    if drifted:
        top = ", ".join(f"'{r['series']}' (z {r['z']:+.1f})" for r in verdict["drift"]["top"])
        reasons.append(f"data drift: {share:.0%} of the series judged drifted (>= monitor.drift_share "
                       f"{mp.drift_share:.0%}): {len(lv['drifted'])} in level (|z| >= forecasting.level_drift "
                       f"{lv['threshold']:g})" + (f", the most {top}" if top else "")
                       + f"; {len(se['drifted'])} in seasonality (correlation < forecasting.season_drift {se['threshold']:g})"
                       + (f": {series.named(se['drifted'])}" if se["drifted"] else ""))
    elif drifted_series:
        reasons.append(f"{len(drifted_series)} series drifted ({series.named(drifted_series)}), {share:.0%} of those "
                       f"judged: below monitor.drift_share {mp.drift_share:.0%}")
    if not se["ran"]:
        reasons.append(f"seasonality not checked: {se['reason']}")
    decayed = bool(perf and perf["decayed"])
    if decayed:
        lo, hi = perf["interval_now"]
        reasons.append(f"decay: MASE {perf['now']:.3f} [{lo:.3f}, {hi:.3f}] on {perf['actuals']:,} actuals of "
                       f"{perf['series']} series, against {perf['at_training']:.3f} promised by the backtest for the "
                       f"same steps (worse by more than monitor.max_metric_drop {mp.max_metric_drop})")
    elif perf and not perf["judged"] and perf["at_training"] is not None:
        reasons.append(f"MASE {perf['now']:.3f} on {perf['actuals']} actuals, fewer than monitor.min_rows "
                       f"{mp.min_rows}: no decay claimed")
    retrain = {"drift_or_decay": drifted or decayed, "drift": drifted, "decay": decayed,
               "never": False}[params.retrain.trigger]
    if not drifted and not decayed:
        reasons.insert(0, "no drift or decay beyond the policy")
    verdict.update(status="drift" if drifted or decayed else "ok", data_drift=drifted, score_drifted=False,
                   decayed=decayed, retrain=bool(retrain), reasons=reasons)
    return verdict


def check(root: Path, params: Params, served, current: str | None = None, days: float | None = None,
          now: dt.datetime | None = None) -> dict:
    """The served forecast model's history and the current data (a file, else the log), assessed."""
    if current and Path(current).is_dir():
        raise MonitorError(f"--input {Path(current).name} is a folder: for a forecast give a file of observations "
                           "(the columns of data.path), or --from-log")
    pm = python_model(served)
    if current:
        cur = from_file(root, params, current)
        scored = forecast_file(root, params, served, cur)
        reference = scored["history"] if len(scored["history"]) else pm.history
        return assess(params, served, reference, cur, scored)
    return assess(params, served, pm.history, from_log(root, params, days, now))


def score(root: Path, params: Params, served, cur: Observations) -> tuple[float | None, str]:
    """MASE of `served`'s forecasts of a file's observations (`cur`: `from_file`), each series forecast
    from the workspace's data before them (`forecast_file`); None when none could be forecast."""
    scored = forecast_file(root, params, served, cur)
    if scored["per_series"] is None:
        return None, "mase"
    return float(scored["overall"]["mase"]), "mase"


# ---------------------------------------------------------------- what the commands and notebook show

def _f(v, spec: str = ".3f") -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def summary(verdict: dict) -> str:
    m, c = verdict["model"], verdict["current"]
    lines = [f"monitor: {m['name']} v{m['version']} ({m.get('serves')}) on {c['source']} ({c['rows']} values of "
             f"{c['series']} series): {verdict['status'].upper()}, retrain: {'yes' if verdict['retrain'] else 'no'}"]
    perf = verdict.get("performance")
    if perf:
        ci = perf.get("interval_now")
        lines.append(f"  MASE {_f(perf['now'])}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
                     + f" now ({perf['actuals']} actuals, {perf['series']} series), {_f(perf['at_training'])} promised; "
                     f"coverage {_f(perf.get('coverage'), '.1%')} (nominal {_f(perf.get('nominal_coverage'), '.0%')})")
    if "level_drift" in verdict:
        lv, se = verdict["level_drift"], verdict["seasonality"]
        lines.append(f"  level: {len(lv['drifted'])} of {lv['series']} series drifted (|z| >= {lv['threshold']:g})"
                     + (f": {', '.join(lv['drifted'][:TOP])}" if lv["drifted"] else ""))
        lines.append(f"  seasonality: {len(se['drifted'])} of {se['series']} series drifted" if se["ran"]
                     else f"  seasonality: not run ({se['reason']})")
    for v in verdict.get("live") or []:
        lines.append(f"  live v{v['version']}: {v['forecasts']} forecasts, {v['actuals']} actuals; MASE {_f(v['mase'])}"
                     f", sMAPE {_f(v['smape'])}, coverage {_f(v['coverage'], '.1%')}")
    lines += [f"  - {r}" for r in verdict["reasons"]]
    lines += [f"  note: {n}" for n in verdict["current"].get("notes") or []]
    return "\n".join(lines)


def takeaways(verdict: dict) -> str:
    m, c = verdict["model"], verdict["current"]
    lines = [f"- {c['rows']:,} current values of {c['series']:,} series ({c['source']}) against {m['name']} "
             f"v{m['version']}: {verdict['status']}, retrain {'yes' if verdict['retrain'] else 'no'}."]
    perf = verdict.get("performance")
    if perf:
        lines.append(f"- MASE {_f(perf['now'])} now on {perf['actuals']:,} actuals against {_f(perf['at_training'])} "
                     f"promised by the backtest for the same steps ({'decayed' if perf['decayed'] else 'no decay claimed'}); "
                     f"the intervals held {_f(perf.get('coverage'), '.1%')} of the actuals "
                     f"(nominal {_f(perf.get('nominal_coverage'), '.0%')}).")
    if "level_drift" in verdict:
        lv, se = verdict["level_drift"], verdict["seasonality"]
        lines.append(f"- Level: {len(lv['drifted'])} of {lv['series']} series moved by |z| >= {lv['threshold']:g} "
                     "seasonal changes of their history" + (f" (most: '{lv['rows'][0]['series']}', z "
                                                             f"{lv['rows'][0]['z']:+.1f})" if lv["rows"] else "") + ".")
        lines.append(f"- Seasonality: {len(se['drifted'])} of {se['series']} series lost their seasonal profile."
                     if se["ran"] else f"- Seasonality not checked: {se['reason']}.")
    return "\n".join(lines)


def tables_of(verdict: dict) -> dict[str, pd.DataFrame]:
    """The verdict's figures as tables (for the notebook): level drift and seasonality per series,
    the error by step ahead, live per version."""
    out = {}
    if "level_drift" in verdict:
        out["level"] = pd.DataFrame(verdict["level_drift"]["rows"], columns=["series", "z", "values", "mean_change",
                                                                             "scale", "drifted"])
        out["seasonality"] = pd.DataFrame(verdict["seasonality"]["rows"], columns=["series", "correlation", "drifted"])
    perf = verdict.get("performance")
    if perf and perf.get("by_step"):
        out["error_by_step"] = pd.DataFrame(perf["by_step"])
    if verdict.get("live"):
        out["live"] = pd.DataFrame(verdict["live"])
    return out


# the replay's table (monitoring/simulate.py): the columns `figures` gives, and the one drawn per
# period (column, what it is, the monitor key of its threshold)
REPLAY = {"columns": ("level_drift_share", "season_drift_share", "mase_now"),
          "bar": ("level_drift_share", "share of series drifted in level", "drift_share")}


def figures(verdict: dict) -> dict:
    """A forecast's verdict in a period's row: the share of series drifted in level (and seasonality),
    MASE now."""
    lv, se = verdict.get("level_drift") or {}, verdict.get("seasonality") or {}
    return {"level_drift_share": lv.get("share"), "season_drift_share": se.get("share"),
            "mase_now": (verdict.get("performance") or {}).get("now")}


def metrics_of(verdict: dict) -> dict:
    """A verdict's figures for reports/metrics/monitor.json (those it has)."""
    out = {}
    perf = verdict.get("performance")
    if perf:
        out.update(mase_now=perf["now"], mase_promised=perf["at_training"], coverage_now=perf.get("coverage"),
                   actuals=perf["actuals"])
    if "level_drift" in verdict:
        out["level_drift_share"] = verdict["level_drift"]["share"]
        if verdict["seasonality"]["ran"]:
            out["season_drift_share"] = verdict["seasonality"]["share"]
    for v in verdict.get("live") or []:
        if v.get("mase") is not None:
            out[f"live_mase_v{v['version']}"] = v["mase"]
    return {k: v for k, v in out.items() if v is not None}


def plot_error_by_step(verdict: dict):
    """Mean |error| / scale now per step ahead (bars) against what the backtest promised (dots); None
    without actuals."""
    from matplotlib.figure import Figure

    rows = (verdict.get("performance") or {}).get("by_step") or []
    if not rows:
        return None
    t = pd.DataFrame(rows)
    fig = Figure(figsize=(6, 3))
    ax = fig.subplots()
    ax.bar(t["step"], t["scaled_error"], color="#4c72b0", label="now")
    ax.plot(t["step"], t["promised"].astype("float64"), "o-", color="#c44e52", label="promised by the backtest")
    ax.set_xlabel("step ahead")
    ax.set_ylabel("mean |error| / scale")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_level(verdict: dict, most: int = 30):
    """The level z of the series furthest from 0 (red: drifted), with the thresholds; None without it."""
    from matplotlib.figure import Figure

    lv = verdict.get("level_drift") or {}
    if not lv.get("rows"):
        return None
    t = pd.DataFrame(lv["rows"]).head(most).iloc[::-1]
    fig = Figure(figsize=(6, max(2.5, 0.2 * len(t) + 1)))
    ax = fig.subplots()
    ax.barh(t["series"].str[:30], t["z"], color=["#c44e52" if d else "#4c72b0" for d in t["drifted"]])
    for x in (-lv["threshold"], lv["threshold"]):
        ax.axvline(x, color="#333333", lw=0.8, ls="--")
    ax.set_xlabel("level z: mean seasonal change now / the series' scale (red: drifted)")
    ax.tick_params(labelsize=6)
    fig.tight_layout()
    return fig
