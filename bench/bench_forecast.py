"""Forecasting (docs/forecast.md) on the US employment example, in one process:

1. time of the train step against the libraries called directly on the same backtest: ours is
   `stages.train` on the features stage's frame (the families on the rolling-origin backtest, the
   lowest mean MASE chosen, refitted on everything before the holdout, the conformal widths of it and
   of the seasonal naive); direct is the same work written plainly: mlforecast's
   `MLForecast.cross_validation` for the global model (the same lags, rolling means, month, target
   transforms and HistGradientBoostingRegressor settings), statsmodels' `ExponentialSmoothing`
   fitted per series and window for ets (the library our ets uses, with the same settings and
   fallback), the seasonal naive and the metrics in numpy, then the choice, the refit of the chosen
   family and the conformal widths. The same origins (horizon 12, 3 windows 12 steps apart, before
   the held-out last 12 months), the same `max_history` cut (mlforecast's `input_size`). Alternating
   which goes first, `--repeats` times (default `BENCH_REPEATS`, else 2), after an untimed warm-up on
   a few series; one thread everywhere. Target: ours at most 1.3 x direct (medians). Peak memory:
   the process's RSS sampled every 50 ms during a run, less its RSS at the run's start.
2. statsforecast (reference row, not a target): `SeasonalNaive` and `AutoETS` through
   `StatsForecast.cross_validation` on the same windows, in a child process under its own
   virtualenv (`.venv-statsforecast`, created on first use by bench/statsforecast/setup_env.py:
   statsforecast 2.0.3 caps scipy below 1.16 and its fugue dependency pandas below 3); its time and
   its backtest MASE computed with the same scales. `--no-statsforecast` leaves it out.
3. accuracy from our run: every family's mean backtest MASE and sMAPE alone and the chosen one's;
   on the held-out last 12 months (`stages.evaluate`, as the evaluate stage scores the saved
   models), the chosen model's and the seasonal naive's, and every family's for the record. Targets:
   the chosen at least as good as the best single family on the backtest; better than the seasonal
   naive on the holdout. Agreement: direct's mean backtest MASE per family against ours.

    python bench/bench_forecast.py                          # writes reports/benchmarks/forecast.json
    python bench/bench_forecast.py --series-frac 0.1 --repeats 1 --no-statsforecast   # a quick run
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy, scikit-learn and numba are imported: one thread everywhere

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import psutil  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, measure, repeats, save  # noqa: E402

sys.path.insert(0, str(ROOT / "examples" / "us-employment"))
sys.path.insert(0, str(ROOT / "bench" / "statsforecast"))

from mlcycle.cli import workspace  # noqa: E402
from mlcycle.core import config  # noqa: E402
from mlcycle.tasks.forecast import families, stages  # noqa: E402
from mlcycle.tasks.forecast import model as forecast_model  # noqa: E402
from mlcycle.tasks.forecast.params import ForecastParams  # noqa: E402
from mlcycle.tasks.forecast.series import ID, TIME, VALUE, lags_of, windows_of  # noqa: E402

CHILD = ROOT / "bench" / "statsforecast" / "run_cv.py"
AGREE = 1e-3  # direct's mean backtest MASE per family within this relative difference of ours
AIM_RATIO = 1.3


def load(series_frac: float, seed: int = 42):
    """(frame, info, cfg): the example's table read as its ingest hook reads it, through the features stage."""
    import us_employment

    cfg = config.parse(workspace.example_params(ROOT, "us-employment"))
    df = us_employment.ingest({"series_frac": series_frac, "seed": seed})["us_employment"]
    frame, info = stages.features(cfg, ROOT, df)
    return frame, info, cfg


class Peak:
    """The process's peak RSS above its RSS at entry, sampled every 50 ms (MB)."""

    def __enter__(self) -> Peak:
        self.proc, self.done = psutil.Process(), threading.Event()
        self.start = self.peak = self.proc.memory_info().rss
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.done.wait(0.05):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)
        self.mb = (self.peak - self.start) / 2**20


def ours(frame: pd.DataFrame, info: dict, cfg) -> tuple[dict, float]:
    t0 = time.perf_counter()
    trained = stages.train(frame, info, cfg)
    return trained, time.perf_counter() - t0


# ---------------------------------------------------------------- direct: the libraries called plainly

def scale_of(y: np.ndarray, season: int) -> float:
    """MASE's denominator: the seasonal naive's mean absolute error within the history (a flat one's
    mean absolute value, or 1)."""
    m = season if len(y) > season else 1
    s = float(np.abs(y[m:] - y[:-m]).mean()) if len(y) > m else 0.0
    return s if s > 0 else (float(np.abs(y).mean()) or 1.0)


def naive_of(y: np.ndarray, h: int, season: int) -> np.ndarray:
    m = season if len(y) >= season else 1
    return y[len(y) - m + np.arange(h) % m].astype("float64")


def ets_of(y: np.ndarray, h: int, season: int) -> np.ndarray:
    """statsmodels' Holt-Winters as the ets family sets it up; the seasonal naive when it cannot fit."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    seasonal = season > 1 and len(y) >= 2 * season
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = ExponentialSmoothing(y, trend="add", damped_trend=True, seasonal="add" if seasonal else None,
                                       seasonal_periods=season if seasonal else None,
                                       initialization_method="estimated").fit()
            out = np.asarray(fit.forecast(h), dtype="float64")
        if np.isfinite(out).all():
            return out
    except (ValueError, np.linalg.LinAlgError):
        pass
    return naive_of(y, h, season)


def mlforecast_of(freq: str, season: int, fc: ForecastParams):
    """The global model's MLForecast, with the settings the global family takes from params."""
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean
    from mlforecast.target_transforms import Differences, LocalStandardScaler
    from sklearn.ensemble import HistGradientBoostingRegressor

    windows = windows_of(fc, season)
    return MLForecast(
        models={"global": HistGradientBoostingRegressor(max_iter=fc.max_iter, learning_rate=fc.learning_rate,
                                                        categorical_features="from_dtype", random_state=fc.seed)},
        freq=freq, lags=lags_of(fc, season),
        lag_transforms={1: [RollingMean(window_size=w) for w in windows]} if windows else None,
        date_features=families.CALENDAR.get(season, []),
        target_transforms=[*([Differences([1])] if fc.difference else []), LocalStandardScaler()], num_threads=1)


def window_and_step(cv: pd.DataFrame) -> pd.DataFrame:
    """A cross-validation frame (unique_id, ds, cutoff, ...) with `window` (1 = the latest cutoff of
    its series) and `step` (1..h within the window)."""
    cv = cv.sort_values([ID, "cutoff", TIME]).reset_index(drop=True)
    cv["window"] = cv.groupby(ID)["cutoff"].rank(method="dense", ascending=False).astype("int64")
    cv["step"] = cv.groupby([ID, "cutoff"]).cumcount() + 1
    return cv


def metrics(points: pd.DataFrame) -> pd.DataFrame:
    """Per family: the mean over windows of the mean over series of MASE, sMAPE and RMSE (points:
    family, unique_id, window, y, yhat, scale)."""
    e = (points["yhat"] - points[VALUE]).abs()
    den = points[VALUE].abs() + points["yhat"].abs()
    p = points.assign(ae=e / points["scale"], sape=np.where(den > 0, e / den.where(den > 0, 1.0), 0.0), se=e**2)
    per = p.groupby(["family", "window", ID])[["ae", "sape", "se"]].mean()
    per["se"] = np.sqrt(per["se"])
    out = per.groupby(["family", "window"]).mean().groupby("family").mean()
    return out.rename(columns={"ae": "mase", "sape": "smape", "se": "rmse"})


def widths_of(points: pd.DataFrame, family: str, h: int, coverage: float) -> list[float]:
    """Split-conformal half-widths per step in units of the series' scale (as backtest.conformal)."""
    p = points[points["family"] == family]
    r = ((p[VALUE] - p["yhat"]).abs() / p["scale"]).to_numpy()
    q = []
    for k in range(1, h + 1):
        x = r[(p["step"] == k).to_numpy()]
        x = x[~np.isnan(x)]
        q.append(float(np.quantile(x, min(math.ceil((len(x) + 1) * coverage) / len(x), 1.0), method="higher"))
                 if len(x) else float("nan"))
    widest = np.nanmax(q) if np.isfinite(q).any() else 0.0
    return [v if np.isfinite(v) else float(widest) for v in q]


def direct(frame: pd.DataFrame, freq: str, season: int, fc: ForecastParams) -> tuple[dict, float]:
    """The train step's work with mlforecast, statsmodels and numpy called directly: (result, seconds)."""
    t0 = time.perf_counter()
    h, step, n, keep = fc.horizon, fc.step(), fc.backtest_windows, fc.max_history
    names = list(dict.fromkeys(["seasonal_naive", *fc.families]))
    df = frame[[ID, TIME, VALUE]]
    before = df[df.groupby(ID, sort=False).cumcount(ascending=False) >= h].reset_index(drop=True)
    uids, starts = np.unique(df[ID].to_numpy(), return_index=True)  # the frame is sorted by series and time
    ends = np.append(starts[1:], len(df))
    values = df[VALUE].to_numpy("float64")
    local = {name: fn for name, fn in (("seasonal_naive", naive_of), ("ets", ets_of)) if name in names}
    cols: dict[str, list] = {"family": [], ID: [], "window": [], VALUE: [], "yhat": []}
    scales = {}
    for uid, a, b in zip(uids, starts, ends, strict=True):
        y = values[a:b]
        for j in range(1, n + 1):
            stop = len(y) - (h + step * (j - 1)) - h  # window j's history ends here
            if stop <= 0:
                continue
            hist = y[max(0, stop - keep) if keep else 0:stop]
            scales[(uid, j)] = scale_of(hist, season)
            for name, fn in local.items():
                cols["family"].append(name)
                cols[ID].append(uid)
                cols["window"].append(j)
                cols[VALUE].append(y[stop:stop + h])
                cols["yhat"].append(fn(hist, h, season))
    k = len(cols["family"])
    parts = [pd.DataFrame({"family": np.repeat(cols["family"], h), ID: np.repeat(cols[ID], h),
                           "window": np.repeat(cols["window"], h), "step": np.tile(np.arange(1, h + 1), k),
                           VALUE: np.concatenate(cols[VALUE]) if k else [], "yhat": np.concatenate(cols["yhat"]) if k else []})]
    if "global" in names:
        cv = mlforecast_of(freq, season, fc).cross_validation(before, n_windows=n, h=h, step_size=step,
                                                              input_size=keep, static_features=[])
        cv = window_and_step(cv).rename(columns={"global": "yhat"})
        parts.append(cv[[ID, "window", "step", VALUE, "yhat"]].assign(family="global"))
    points = pd.concat(parts, ignore_index=True)
    points["scale"] = [scales[k] for k in zip(points[ID], points["window"], strict=True)]
    means = metrics(points)
    chosen = str(means.loc[list(fc.families), fc.metric].idxmin())
    widths = widths_of(points, chosen, h, fc.coverage)
    baseline_widths = widths_of(points, "seasonal_naive", h, fc.coverage)
    model = None
    if chosen == "global":  # the statistical families fit when they forecast, as ours do
        recent = before[before.groupby(ID, sort=False).cumcount(ascending=False) < keep] if keep else before
        model = mlforecast_of(freq, season, fc).fit(recent, static_features=[])
    seconds = time.perf_counter() - t0
    return {"means": means, "chosen": chosen, "widths": widths, "baseline_widths": baseline_widths,
            "scales": scales, "model": model}, seconds


# ---------------------------------------------------------------- statsforecast, in its own virtualenv

def statsforecast_run(python: Path, frame: pd.DataFrame, freq: str, season: int, fc: ForecastParams,
                      tmp: Path, i: int) -> dict:
    data = tmp / "before_holdout.parquet"
    if not data.exists():
        h = fc.horizon
        frame[frame.groupby(ID, sort=False).cumcount(ascending=False) >= h][[ID, TIME, VALUE]].to_parquet(data)
    out = tmp / f"statsforecast-{i}.parquet"
    cmd = [str(python), str(CHILD), "--data", str(data), "--out", str(out), "--freq", freq, "--season", str(season),
           "--h", str(fc.horizon), "--step", str(fc.step()), "--windows", str(fc.backtest_windows)]
    if fc.max_history:
        cmd += ["--input-size", str(fc.max_history)]
    s = measure(cmd, ROOT)
    return {**json.loads(out.with_suffix(".json").read_text()), "peak_mb": s["peak_mb"],
            "process_seconds": s["seconds"], "forecasts": out}


def statsforecast_metrics(path: Path, scales: dict) -> pd.DataFrame:
    cv = window_and_step(pd.read_parquet(path))
    parts = [cv[[ID, "window", "step", VALUE]].assign(family=f"statsforecast {col}", yhat=cv[col].to_numpy())
             for col in ("SeasonalNaive", "AutoETS")]
    points = pd.concat(parts, ignore_index=True)
    points["scale"] = [scales[k] for k in zip(points[ID], points["window"], strict=True)]
    return metrics(points)


# ---------------------------------------------------------------- accuracy on the holdout

def holdout(trained: dict, frame: pd.DataFrame, cfg) -> dict:
    """MASE and sMAPE on the held-out horizon: the chosen model and the baseline as evaluate scores
    them (the saved models' forecasts with their intervals), and every family alone."""
    fc, season = cfg.forecasting, trained["season"]

    def saved(family, widths):
        return forecast_model.ForecastModel(family, trained["history"], widths, fc, cfg.data.time_column,
                                            cfg.data.target, season)

    ev = stages.evaluate(saved(trained["model"], trained["widths"]), saved(trained["baseline"], trained["baseline_widths"]),
                         frame, cfg, season)
    out = {"chosen": ev["model"]["metrics"], "seasonal_naive": ev["baseline"]["metrics"],
           "beats_baseline_share": ev["beats_baseline_share"], "families": {}}
    for name in dict.fromkeys(["seasonal_naive", *fc.families]):  # point forecasts only: no intervals
        if name in (trained["chosen"], "seasonal_naive"):  # scored above
            out["families"][name] = {k: out[name if name == "seasonal_naive" else "chosen"][k]
                                     for k in ("mase", "smape", "rmse", "series")}
            continue
        m = saved(families.fitted(name, trained["history"], trained["freq"], season, fc), [0.0] * fc.horizon)
        got = stages.score(m, frame, fc.horizon, season, fc.max_history)["metrics"]
        out["families"][name] = {k: got[k] for k in ("mase", "smape", "rmse", "series")}
    return out


# ---------------------------------------------------------------- report

def summary(samples: list[dict]) -> dict:
    sec = [s["seconds"] for s in samples]
    return {"runs": len(sec), "median_seconds": round(statistics.median(sec), 2), "min_seconds": round(min(sec), 2),
            "max_seconds": round(max(sec), 2),
            "median_peak_increase_mb": round(statistics.median(s["peak_mb"] for s in samples), 1)}


def markdown(r: dict) -> str:
    t, a = r["time"], r["accuracy"]
    sf = r.get("statsforecast")
    lines = [
        "## forecast (US employment)", "",
        f"{r['series']} series, {r['rows']:,} rows (monthly); backtest of {r['windows']} windows of {r['horizon']} "
        f"months before the held-out last {r['horizon']}, each window learning from at most {r['max_history']} months; "
        f"{t['ours']['runs']} runs each, alternating, one thread. Seconds are the train step's work alone "
        "(reading, features and imports outside).", "",
        "| variant | runs | median s | min s | max s | peak increase MB |", "|---|---|---|---|---|---|",
    ]
    rows = [("ours: `stages.train` (backtest of seasonal_naive, ets, global; choice; refit; conformal widths)", t["ours"]),
            ("direct: mlforecast `cross_validation` + statsmodels `ExponentialSmoothing` per series + numpy; "
             "the same choice, refit and widths", t["direct"])]
    if sf and "time" in sf:
        rows.append((f"reference: statsforecast {sf['version']} `SeasonalNaive` + `AutoETS` `cross_validation` "
                     f"(own virtualenv, pandas {sf['pandas']}, scipy {sf['scipy']}; peak is the child process's RSS)",
                     sf["time"]))
    lines += [f"| {name} | {v['runs']} | {v['median_seconds']} | {v['min_seconds']} | {v['max_seconds']} "
              f"| {v['median_peak_increase_mb']} |" for name, v in rows]
    lines += ["", "Peak increase: the process's RSS during a run above its RSS at the run's start (one process: the "
              "memory the first run takes stays with the allocator and serves later runs, so it shows on the first).",
              "", f"Time ratio ours / direct: **{t['ratio']}** (target at most {AIM_RATIO} x: "
              f"**{'met' if t['ratio_met'] else 'not met'}**).", ""]
    if sf and "time" in sf:
        lines += [f"statsforecast (reference, not a target): median {sf['time']['median_seconds']} s for its "
                  f"cross-validation, after a {sf['warmup_seconds']:.1f} s warm-up (numba compiling) and a "
                  f"{sf['import_seconds']:.1f} s import, not counted.", ""]
    elif sf:
        lines += [f"statsforecast: {sf['note']}", ""]
    lines += ["| family | backtest MASE | backtest sMAPE | direct's backtest MASE | holdout MASE | holdout sMAPE |",
              "|---|---|---|---|---|---|"]
    for name, v in a["backtest"].items():
        ho = a["holdout"]["families"].get(name, {})
        lines.append(f"| {name}{' (chosen)' if name == a['chosen'] else ''} | {v['mase']:.4f} | {v['smape']:.4f} "
                     f"| {a['direct_backtest'][name]['mase']:.4f} | {ho.get('mase', float('nan')):.4f} "
                     f"| {ho.get('smape', float('nan')):.4f} |")
    for name, v in (sf or {}).get("backtest", {}).items():
        lines.append(f"| {name} (reference) | {v['mase']:.4f} | {v['smape']:.4f} | - | - | - |")
    c, b = a["holdout"]["chosen"], a["holdout"]["seasonal_naive"]
    lines += [
        "", f"Chosen on the backtest: **{a['chosen']}**, mean MASE {a['chosen_backtest_mase']:.4f}; the best single "
        f"family's {a['best_family_backtest_mase']:.4f}: at least as good: **{'met' if a['backtest_met'] else 'not met'}**.",
        f"Held-out last {r['horizon']} months, as evaluate scores the saved models: chosen MASE {c['mase']:.4f} "
        f"(sMAPE {c['smape']:.4f}, interval coverage {c['coverage']:.1%}), seasonal naive MASE {b['mase']:.4f} "
        f"(sMAPE {b['smape']:.4f}); better than the seasonal naive: **{'met' if a['holdout_met'] else 'not met'}** "
        f"(it beats it on {a['holdout']['beats_baseline_share']:.0%} of the series).",
        f"Direct's mean backtest MASE per family against ours: largest relative difference "
        f"{a['agreement']['max_relative_difference']:.2e} (within {AGREE:g}: "
        f"**{'yes' if a['agreement']['agree'] else 'no'}**); the same family chosen: "
        f"**{'yes' if a['agreement']['same_choice'] else 'no'}**; the largest difference of the chosen family's conformal "
        f"widths: {a['agreement']['widths_max_difference']:.2e}.", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series-frac", type=float, default=1.0, help="share of the 148 series (for quick runs)")
    ap.add_argument("--repeats", type=int, default=repeats(2))
    ap.add_argument("--no-statsforecast", action="store_true", help="leave out the statsforecast reference row")
    ap.add_argument("--name", default="forecast", help="results file reports/benchmarks/<name>.json")
    args = ap.parse_args()

    frame, info, cfg = load(args.series_frac)
    fc, freq, season = cfg.forecasting, info["freq"], int(info["season_length"])
    print(f"{info['series']} series, {info['rows']:,} rows, step {freq}, season {season}", flush=True)

    sf_python, sf_note = None, None
    if not args.no_statsforecast:
        import setup_env

        try:
            sf_python = setup_env.ensure()
        except setup_env.SetupError as e:
            sf_note = f"not run: its virtualenv could not be set up ({str(e).splitlines()[0]})"
            print(f"statsforecast {sf_note}", file=sys.stderr)

    few = frame[frame[ID].isin(frame[ID].drop_duplicates().head(3))]  # untimed warm-up: first-call imports
    ours(few, {**info, "series": 3}, cfg)
    direct(few, freq, season, fc)

    samples: dict[str, list[dict]] = {"ours": [], "direct": [], "statsforecast": []}
    sf = {"note": sf_note or "not run (--no-statsforecast)"} if sf_python is None else None
    ho = None
    with tempfile.TemporaryDirectory(prefix="mlcycle-bench-forecast-") as d:
        for i in range(args.repeats):
            for variant in (("direct", "ours") if i % 2 == 0 else ("ours", "direct")):
                with Peak() as peak:
                    if variant == "ours":
                        trained, seconds = ours(frame, info, cfg)
                    else:
                        result, seconds = direct(frame, freq, season, fc)
                samples[variant].append({"seconds": seconds, "peak_mb": peak.mb})
                print(f"repeat {i + 1}/{args.repeats} {variant}: {seconds:.1f} s, peak increase {peak.mb:.0f} MB",
                      flush=True)
            if sf is None:  # once: a reference row, not a target
                run = statsforecast_run(sf_python, frame, freq, season, fc, Path(d), i)
                samples["statsforecast"].append({"seconds": run["seconds"], "peak_mb": run["peak_mb"]})
                print(f"statsforecast: {run['seconds']:.1f} s (process {run['process_seconds']:.1f} s), "
                      f"peak {run['peak_mb']:.0f} MB", flush=True)
                sf = {k: run[k] for k in ("version", "pandas", "scipy", "import_seconds", "load_seconds", "warmup_seconds")}
                sf["time"] = summary(samples["statsforecast"])
                sf["backtest"] = {m: {k: float(v) for k, v in row.items()}
                                  for m, row in statsforecast_metrics(run["forecasts"], result["scales"]).iterrows()}
            ho = ho or holdout(trained, frame, cfg)
            res = results(args, info, fc, samples, trained, result, ho, sf)
            path = save(args.name, json.loads(json.dumps(res, default=float)))  # after every repeat
    print(res["markdown"])
    print(path)
    return 0


def results(args, info: dict, fc: ForecastParams, samples: dict, trained: dict, result: dict, ho: dict,
            sf: dict | None) -> dict:
    s = trained["summary"]
    mean = s[s["window"] == "mean"].set_index("model")
    backtest_means = {m: {k: float(mean.loc[m, k]) for k in ("mase", "smape", "rmse")} for m in mean.index}
    direct_means = {m: {k: float(v) for k, v in row.items()} for m, row in result["means"].iterrows()}
    diffs = {m: abs(direct_means[m]["mase"] - v["mase"]) / abs(v["mase"]) for m, v in backtest_means.items()}
    best = min(backtest_means[f]["mase"] for f in fc.families)
    chosen_mase = backtest_means[trained["chosen"]]["mase"]
    accuracy = {
        "chosen": trained["chosen"], "backtest": backtest_means, "direct_backtest": direct_means, "holdout": ho,
        "chosen_backtest_mase": chosen_mase, "best_family_backtest_mase": best, "backtest_met": chosen_mase <= best,
        "holdout_met": ho["chosen"]["mase"] < ho["seasonal_naive"]["mase"],
        "agreement": {"relative_difference": diffs, "max_relative_difference": max(diffs.values()),
                      "agree": max(diffs.values()) <= AGREE, "same_choice": result["chosen"] == trained["chosen"],
                      "widths_max_difference": float(np.max(np.abs(np.subtract(result["widths"], trained["widths"]))))},
    }
    times = {"ours": summary(samples["ours"]), "direct": summary(samples["direct"]), "seconds": samples}
    times["ratio"] = round(times["ours"]["median_seconds"] / times["direct"]["median_seconds"], 2)
    times["ratio_met"] = times["ratio"] <= AIM_RATIO
    res = {"series": info["series"], "rows": info["rows"], "series_frac": args.series_frac, "horizon": fc.horizon,
           "windows": fc.backtest_windows, "max_history": fc.max_history, "repeats": len(samples["ours"]),
           "time": times, "accuracy": accuracy, "statsforecast": sf}
    res["markdown"] = markdown(res)
    return res


if __name__ == "__main__":
    sys.exit(main())
