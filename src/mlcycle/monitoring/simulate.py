"""The period-by-period replay (`mlcycle monitoring simulate`, `make simulate`): the closed loop on any table
with a time column, and on a recommender's interactions (task `recommendation`: each period's
interactions judge the champion's and the frozen model's lists, `recommend.metric` for the period's
users; the monitor is the task's own, `tasks/recommender/monitor.py`).

In a workspace of its own (`simulate.workdir`, with its own DVC cache, MLflow store and registry, so
the real champion is never touched):

1. the rows of the first `simulate.train_periods` periods (`simulate.period`: day, week, month or
   quarter of `data.time_column`, in `simulate.timezone`) are the training data (data.path); the
   pipeline runs (`dvc repro`) and the gate promotes version 1; it is also kept as the **frozen**
   model, never retrained;
2. each later period arrives as a batch file. The current champion and the frozen model score it
   through the serving code's scoring (`core.scoring`), which gives each period's *out-of-time*
   performance: neither model has seen it. Then `mlcycle monitoring retrain --input` runs on it: validation, the
   monitor stage, and, when the verdict calls for it, the batch joins the training data, the pipeline
   re-runs and the gate decides;
3. `reports/simulation.html` (and `.json`) shows per period: drift, the verdict, the champion's and
   the frozen model's metric, and the retraining and promotion events with their MLflow ids.

The replay's workspace gets the project's files and the data: an ingest step, when params name one,
runs there; otherwise data.path and the enrichment's tables are copied. The holdout of every training
run is its latest rows (`split.test_start: null`), so the gate compares a retrained model with the
champion on the newest data it has.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mlcycle.core import config, literal, scoring, tables, tasks
from mlcycle.core.config import Params
from mlcycle.core.errors import SimulateError
from mlcycle.core.paths import Paths, copy_workspace
from mlcycle.core.progress import Progress
from mlcycle.core.schema import schema_path
from mlcycle.core.workspace import model_uri
from mlcycle.lifecycle import audit, registry
from mlcycle.monitoring import monitor, retrain
from mlcycle.runtime import tracking
from mlcycle.serving import model

BASE = "data/replay/base.parquet"
INCOMING = "incoming"
PERIOD_CODES = {"day": "D", "week": "W", "month": "M", "quarter": "Q"}



def _git(work: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=mlcycle", "-c", "user.email=mlcycle@localhost", *args], cwd=work,
                   check=True, capture_output=True)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)  # the replay writes to its own store only
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _copy_input(root: Path, work: Path, rel: str) -> None:
    src = Path(rel) if Path(rel).is_absolute() else root / rel
    if Path(rel).is_absolute() or not src.exists():
        return
    (work / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, work / rel)


def prepare(root: Path, params: Params, work: Path, sample_frac: float) -> Params:
    """A fresh replay workspace: the project's files, params for the replay, git and the input tables."""
    if not params.data.time_column:
        raise SimulateError("`mlcycle monitoring simulate` replays data.path period by period along data.time_column, which is "
                            "null; set it (and data.time_format if the times are text) or use `mlcycle monitoring retrain --input FILE`")
    if work.exists():
        shutil.rmtree(work)
    copy_workspace(root, work)
    raw = config.read_yaml(root / "params.yaml")
    raw["data"]["path"] = BASE
    raw.setdefault("validate", {})
    if raw["validate"].get("schema") is None:  # the schema of data.path, whatever the replay calls its file

        sp = schema_path(params.data, params.validate_, root)
        raw["validate"]["schema"] = str(sp.relative_to(root)) if sp.is_relative_to(root) else str(sp)
    raw.setdefault("split", {})["test_start"] = None
    raw.setdefault("tracking", {}).update(uri=None, experiment="mlcycle-replay",
                                          model_name=f"{params.tracking.model_name}-replay")
    raw.setdefault("serve", {})["model_uri"] = None
    (work / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    _git(work, "init", "-q")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "replay workspace")
    if params.ingest:
        subprocess.run([sys.executable, "-m", "dvc", "repro", "ingest"], cwd=work, env=_env(), check=True)
    else:
        for rel in [params.data.path, *params.features.enrich.tables.values()]:
            _copy_input(root, work, rel)
    return config.load("params.yaml", root=work)


def period_labels(t: pd.Series, period: str, timezone: str | None) -> pd.Series:
    """The period of each time (e.g. '2013-04' for months), in `timezone` when given (times are UTC)."""
    if timezone:
        t = t.dt.tz_localize("UTC").dt.tz_convert(timezone).dt.tz_localize(None)
    return t.dt.to_period(PERIOD_CODES[period]).astype("str")


def periods_of(work: Path, source: str, params: Params, train_periods: int, periods: int | None,
               sample_frac: float) -> tuple[pd.DataFrame, list[tuple[str, Path]]]:
    """Write the base training table and one batch file per later period; the files keep the source's
    columns and values (times as the source holds them)."""
    data = params.data
    path = Path(source) if Path(source).is_absolute() else work / source
    df = tables.read_table(path, data.format, shown=source)
    if sample_frac < 1.0:  # rows drawn at random, or what the task samples (a forecast: whole series)
        sample = tasks.active(params).hook("sample")
        df = (sample(df, params, sample_frac) if sample
              else df.sample(frac=sample_frac, random_state=params.split.seed).sort_index())
    t = tables.parse_series(df[data.time_column], data.time_column, data.time_format, data.time_unit)
    labels = period_labels(t, params.simulate.period, params.simulate.timezone)
    order = sorted(labels.dropna().unique())
    if len(order) <= train_periods:
        raise SimulateError(f"the data spans {len(order)} {params.simulate.period}(s); simulate.train_periods "
                            f"{train_periods} leaves nothing to replay")
    base = df[labels.isin(order[:train_periods])]
    (work / BASE).parent.mkdir(parents=True, exist_ok=True)
    base.to_parquet(work / BASE, index=False)
    later = order[train_periods:] if periods is None else order[train_periods:train_periods + periods]
    batches = []
    (work / INCOMING).mkdir(exist_ok=True)
    for name in later:
        out = work / INCOMING / f"{name}.parquet"
        df[labels == name].to_parquet(out, index=False)
        batches.append((name, out))
    return base, batches


def simulate(root: Path, params: Params, periods: int | None = None, train_periods: int | None = None,
             sample_frac: float | None = None, log=print) -> dict:
    sp = params.simulate
    train_periods = train_periods or sp.train_periods
    periods = periods if periods is not None else sp.periods
    sample_frac = sample_frac or sp.sample_frac
    work = Path(sp.workdir)
    work = work if work.is_absolute() else root / work
    t0 = dt.datetime.now(dt.UTC)
    saved_uri = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        log(f"simulate: replay workspace {work}")
        wparams = prepare(root, params, work, sample_frac)
        base, batches = periods_of(work, params.data.path, wparams, train_periods, periods, sample_frac)
        log(f"simulate: training on the first {train_periods} {sp.period}(s) ({len(base):,} rows), "
            f"then {len(batches)} {sp.period}(s)")
        retrain.repro(work, None)
        client, _ = tracking.setup(work, wparams)
        name = wparams.tracking.model_name
        champ = registry.champion(client, name)
        if champ is None:
            raise SimulateError("the first model did not pass the gate's minimums; nothing to replay")
        frozen = model.load(client, model_uri(name, version=champ.version))
        rows = []
        own = tasks.active(wparams).monitor()
        bar = Progress(len(batches), "simulate", "periods")
        for label, file in batches:
            champ = registry.champion(client, name)
            served = model.load(client, model_uri(name, version=champ.version))
            cur = own.from_file(work, wparams, file)  # the period read once (a table's features built once), judged for both
            n = len(cur.frame)
            loop_metric, metric = own.score(work, wparams, served, cur)
            frozen_metric, _ = own.score(work, wparams, frozen, cur)
            log(f"simulate: {label}: champion v{champ.version} {metric} {_f(loop_metric)}, frozen {_f(frozen_metric)}")
            out = retrain.retrain(work, wparams, file, log=lambda s: log("  " + s.replace("\n", "\n  ")))
            v = monitor.read_verdict(work)
            rows.append({
                "period": label, "rows": n, "champion": f"v{champ.version}", "metric": metric,
                "champion_score": loop_metric, "frozen_score": frozen_metric,
                **own.figures(v),  # the task's drift figures (features and scores; popularity and activity)
                "perf_now": (v.get("performance") or {}).get("now"),
                "perf_at_training": (v.get("performance") or {}).get("at_training"),
                "status": v["status"], "retrain": v["retrain"], "reasons": v["reasons"],
                "monitor_run": out.get("monitor_run_id"),
                "new_version": out.get("candidate_version"), "gate": out.get("gate"),
                "champion_after": f"v{out['champion_version']}" if out.get("champion_version") else f"v{champ.version}",
            })
            bar.update()
        bar.close()
        history = audit.read(Paths(work).audit_log, name)
    finally:
        if saved_uri is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved_uri
    result = {"created": t0.isoformat(timespec="seconds"),
              "seconds": round((dt.datetime.now(dt.UTC) - t0).total_seconds(), 1),
              "data": params.data.path, "period": sp.period, "timezone": sp.timezone,
              "train_periods": train_periods, "sample_frac": sample_frac, "base_rows": len(base),
              "workdir": str(Path(sp.workdir)), "model_name": name, "periods": rows, "audit": history,
              "policy": {**wparams.monitor.model_dump(), **wparams.retrain.model_dump()},
              "replay": {"columns": list(own.REPLAY["columns"]), "bar": list(own.REPLAY["bar"])}}
    result["summary"] = summarise(rows)
    out_json = root / "reports" / "simulation.json"
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    (root / "reports" / "simulation.html").write_text(render(result), encoding="utf-8")
    return result


def _f(v) -> str:
    return "-" if v is None else f"{v:.4f}"


def summarise(rows: list[dict]) -> dict:
    if not rows:
        return {}
    loop = np.array([r["champion_score"] for r in rows], dtype=float)
    frozen = np.array([r["frozen_score"] for r in rows], dtype=float)
    metric = rows[0]["metric"]
    lower = metric in scoring.LOWER_IS_BETTER
    gain = (frozen - loop) if lower else (loop - frozen)
    return {"metric": metric, "periods": len(rows), "retrainings": sum(bool(r["new_version"]) for r in rows),
            "promotions": sum(r["gate"] == "promoted" for r in rows),
            "triggered": sum(bool(r["retrain"]) for r in rows),
            "mean_champion": float(np.nanmean(loop)), "mean_frozen": float(np.nanmean(frozen)),
            "mean_gain": float(np.nanmean(gain)), "periods_better": int((gain > 0).sum()),
            "periods_worse": int((gain < 0).sum())}


def table(rows: list[dict], columns: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """The periods as a table, with the task's drift figures (`columns`: its monitor's REPLAY)."""
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    return df[["period", "rows", "champion", "champion_score", "frozen_score",
               *[c for c in columns if c in df.columns], "status", "retrain", "new_version", "gate", "champion_after"]]


@literal.figures()
def _figure(rows: list[dict], metric: str, bar: tuple[str, str, str], threshold: float | None = None) -> str:
    """The metric per period with the loop and frozen; below, the task's drift figure `bar` (column, label,
    its policy key) per period against `threshold`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = pd.DataFrame(rows)
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    df["period"] = literal.labels(df["period"], 16)
    a1.plot(df["period"], df["champion_score"], "o-", label="champion with the loop")
    a1.plot(df["period"], df["frozen_score"], "s--", label="frozen after the first training")
    for i, r in df.iterrows():
        if r["gate"] == "promoted":
            a1.annotate(f"then {r['champion_after']}", (i, r["champion_score"]), textcoords="offset points",
                        xytext=(0, 8), ha="center", fontsize=8)
    a1.set_ylabel(f"{metric} on the period (unseen)")
    a1.legend()
    column, what, key = bar
    values = pd.to_numeric(df[column], errors="coerce") if column in df.columns else pd.Series(np.nan, index=df.index)
    a2.bar(df["period"], values.astype("float64").fillna(0), color=np.where(df["retrain"], "#c0392b", "#7f8c8d"))
    if threshold is not None:
        a2.axhline(threshold, color="k", ls="--", lw=1, label=f"monitor.{key} {threshold:g}")
        a2.legend(loc="upper left")
    a2.set_ylabel(what)
    a2.set_xlabel("period fed (red: retraining triggered, by drift or decay)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def render(result: dict) -> str:
    rows, s = result["periods"], result["summary"]
    esc = html.escape
    per = result["period"]
    tz = f" ({result['timezone']})" if result.get("timezone") else ""
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>mlcycle: replay</title>"
             "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
             "th{background:#f3f3f3}</style></head><body>",
             f"<h1>Monitoring and retraining: {esc(per)}-by-{esc(per)} replay of {esc(result['data'])}</h1>",
             f"<p>Trained on the first {result['train_periods']} {esc(per)}(s){esc(tz)} ({result['base_rows']:,} rows, "
             f"sample {result['sample_frac']:g}), then each later {esc(per)} fed in turn: scored by the current champion "
             f"and by the model frozen after the first training (both through the serving code, on a {esc(per)} neither "
             "has seen), then monitored against the champion's training data; retrained when the verdict called for it, "
             "the gate deciding the promotion. Replay workspace: <code>" + esc(result["workdir"]) + "</code> (its MLflow "
             "store: <code>mlruns/mlflow.db</code> there). Took " + f"{result['seconds']:.0f} s.</p>"]
    if s:
        verdict = "gained" if s["mean_gain"] > 0 else ("lost" if s["mean_gain"] < 0 else "changed nothing")
        parts.append(f"<h2>Result</h2><p>Over {s['periods']} {esc(per)}(s) the loop retrained {s['retrainings']} times "
                     f"({s['triggered']} triggers, {s['promotions']} promotions). Mean {esc(s['metric'])}: "
                     f"<b>{s['mean_champion']:.4f}</b> with the loop, <b>{s['mean_frozen']:.4f}</b> frozen: "
                     f"the loop {verdict} {abs(s['mean_gain']):.4f} on average (better in {s['periods_better']}, "
                     f"worse in {s['periods_worse']}).</p>")
        bar = tuple(result["replay"]["bar"])
        parts.append(f"<img alt='metric and drift per {esc(per)}' src='data:image/png;base64,"
                     f"{_figure(rows, s['metric'], bar, result['policy'].get(bar[2]))}'>")
    parts.append(f"<h2>{esc(per.capitalize())} by {esc(per)}</h2>")
    parts.append(table(rows, result["replay"]["columns"]).to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-", border=0))
    parts.append("<h2>Verdicts and events</h2><ul>")
    for r in rows:
        ev = f"<b>{esc(r['period'])}</b>: {esc('; '.join(r['reasons']))}"
        if r["new_version"]:
            ev += f" &rarr; retrained: version {esc(str(r['new_version']))} {esc(str(r['gate']))}"
        ev += f" (monitor run <code>{esc(str(r['monitor_run']))}</code>)"
        parts.append(f"<li>{ev}</li>")
    parts.append("</ul><h2>Audit log of the replay's registry</h2><table><tr><th>when</th><th>action</th>"
                 "<th>from</th><th>to</th><th>reason</th></tr>")
    for e in result["audit"]:
        parts.append(f"<tr><td>{esc(e['when'])}</td><td>{esc(e['action'])}</td><td>{esc(str(e['from_version']))}</td>"
                     f"<td>{esc(str(e['to_version']))}</td><td>{esc(e['reason'][:300])}</td></tr>")
    parts.append("</table><h2>Policy</h2><pre>" + esc(json.dumps(result["policy"], indent=1)) + "</pre></body></html>")
    return "\n".join(parts)
