"""The tabular task's monitor: is the champion still seeing the data it was trained on, and still as good?

It compares *current* data with the *reference*:

- **reference**: the champion's own training rows, found through lineage: the model version's tag
  `data_md5` is the DVC hash of the `data/processed` folder it was trained on; the folder's files
  are read from the DVC cache by that hash (or from the workspace when it still holds them). The
  same folder's holdout (`test.parquet`) gives the performance *at training*.
- **current**: a data file with the raw columns of `data.path` (a new batch, features built as the
  features stage builds them; labels used when the target is there), or a time window of the
  prediction log (`--from-log`: the inputs and scores the served model saw; no labels).

It reports drift per feature (`monitoring/drift.py`), the share of drifted features, drift of the
predicted scores (the current rows scored by the champion through `core.scoring`, the
scoring the server uses), and with labels the gate metric now against at training, overall and per slice
(`evaluate.slices`). The verdict applies params `monitor` and `retrain.trigger`:

    data drift   = share of drifted features >= monitor.drift_share
    score drift  = PSI of scores >= monitor.score_psi_threshold (with p < alpha)
    decay        = gate metric worse than at training by more than monitor.max_metric_drop
    retrain      = per retrain.trigger: drift_or_decay (any of them) | drift | decay | never

`mlcycle.monitoring.monitor` calls it through the task registry (`Task.monitor_module`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mlcycle.core import literal, record, scoring, tables
from mlcycle.core.config import Params
from mlcycle.core.errors import DataError, MonitorError
from mlcycle.core.paths import Paths
from mlcycle.core.spec import LABEL, FeatureSpec, derived, with_derived
from mlcycle.core.text import TextFeatures, fitted, text_stats
from mlcycle.lifecycle import gate
from mlcycle.monitoring import drift as drift_mod
from mlcycle.monitoring import release
from mlcycle.monitoring.lineage import cache_dir, processed_files  # noqa: F401 (monitor.processed_files)
from mlcycle.serving import feedback, predlog
from mlcycle.tasks.tabular import evaluate, features, train


@dataclass
class Reference:
    version: str
    data_md5: str
    spec: FeatureSpec
    train: pd.DataFrame  # features and LABEL
    test: pd.DataFrame


def reference(root: Path, params: Params, served, max_rows: int, seed: int) -> Reference:
    data_md5 = (served.info or {}).get("data_md5") or ""
    if not data_md5:
        raise MonitorError(f"model version {served.version} has no data_md5 tag: its training data is unknown; "
                           "monitor a version registered by the train stage")
    files = processed_files(root, data_md5)
    spec = FeatureSpec.from_json(files["features.json"])

    def part(name: str, limit: int | None) -> pd.DataFrame:
        df = pd.read_parquet(files[f"{name}.parquet"]).rename(columns={spec.label: LABEL})
        if limit and len(df) > limit:
            df = df.sample(limit, random_state=seed).sort_index()
        return df.reset_index(drop=True)

    return Reference(served.version, data_md5, spec, part("train", max_rows), part("test", max_rows))


@dataclass
class Current:
    source: str
    frame: pd.DataFrame  # features, LABEL when labelled
    labelled: bool
    scores: np.ndarray | None = None  # from the prediction log
    period: tuple[str, str] | None = None  # first and last time stamp
    notes: list[str] = field(default_factory=list)
    rows: int | None = None  # set when `frame` is a dask DataFrame (read partition by partition)

    @property
    def partitioned(self) -> bool:
        return self.rows is not None

    def __len__(self) -> int:
        return self.rows if self.rows is not None else len(self.frame)


def from_file(root: Path, params: Params, file: str | Path) -> Current:
    """A data file with data.path's raw columns: features built as the features stage builds them."""

    df = tables.load(params.data, root, path=file)
    target = params.data.target
    labelled = target in df.columns and df[target].notna().any()
    notes = []
    if not labelled:
        df = df.copy()
        df[target] = 0 if params.data.task == "regression" or params.data.threshold is not None else "?"
        notes.append(f"no values of the target '{target}': drift only, no performance")
    hook, extra = features.enrichment(params.features, root)
    table, _, info = features.build(df, params.data, params.features, hook, extra)
    if info.get("rows_without_target"):
        notes.append(f"{info['rows_without_target']} rows without a target left out (as training does)")
    period = None
    tc = params.data.time_column
    if tc and tc in table.columns and table[tc].notna().any():
        period = (str(table[tc].min()), str(table[tc].max()))
    shown = Path(file).name
    return Current(f"file {shown}", table, labelled, None, period, notes)


def from_log(root: Path, params: Params, days: float | None = None, now: dt.datetime | None = None) -> Current:
    """The prediction log's rows of the last `days` (monitor.log_window_days)."""

    days = days or params.monitor.log_window_days
    log_dir, files = predlog.parts_to_monitor(root, params.serve.log_dir, "the model (`mlcycle serving start`) and send predictions")
    cur = from_parts(files, params, pd.Timestamp(now or dt.datetime.now(dt.UTC)) - pd.Timedelta(days=days))
    if not len(cur):
        raise MonitorError(f"no predictions in the last {days:g} days of {params.serve.log_dir}; "
                           "widen --days or monitor.log_window_days")
    cur.source = f"prediction log, last {days:g} days"
    return with_labels(cur, log_dir)


def with_labels(cur: Current, log_dir: Path) -> Current:
    """The labels fed back (`serving/feedback.py`) joined to the log's rows by request id and row:
    performance is then assessed on live data. Rows answered by a release's candidate or shadowed
    by it are re-scored by the monitored model (`scores` None), so score drift is the model's own."""
    if cur.partitioned:
        return cur
    df = cur.frame
    if "route" in df.columns and (df["route"].fillna("champion") != "champion").any():
        cur.scores = None
        cur.notes.append("a release ran: the monitored model's scores are recomputed; "
                         "rows shadowed by the candidate are counted once")
    labels = feedback.read(log_dir)
    if labels.empty or "request_id" not in df.columns:
        return cur
    df = df.merge(labels[["request_id", "row", "label"]].rename(columns={"label": LABEL}), on=["request_id", "row"],
                  how="left")
    n = int(df[LABEL].notna().sum())
    cur.frame, cur.labelled = df, n > 0
    cur.notes.append(f"{n} rows with labels fed back")
    return cur


def from_folder(params: Params, folder: Path) -> Current:
    """A folder of scored rows with the prediction log's columns (`mlcycle serving score` output, or a copy
    of a prediction log): every row, unlabelled."""
    files = predlog.parts(folder)
    if not files:
        raise MonitorError(f"--input {folder.name}: no part-*.parquet files (a folder `mlcycle serving score` wrote, "
                           "or a prediction log); for a data file with the columns of data.path give the file")
    cur = from_parts(files, params)
    cur.source = f"scored rows in {folder.name}/"
    return cur


def from_parts(files: list[Path], params: Params, since: pd.Timestamp | None = None) -> Current:
    """Rows with the prediction log's columns (inputs, `score`, `model_version`, `ts`) from Parquet
    parts, those from `since` on: in memory up to monitor.max_memory_rows rows (by the files'
    metadata), else as a dask DataFrame that the verdict reads partition by partition."""
    import pyarrow.parquet as pq

    total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    if total <= params.monitor.max_memory_rows:
        df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        ts = pd.to_datetime(df["ts"], utc=True)
        keep = ts >= since if since is not None else pd.Series(True, index=df.index)
        df = df.loc[keep].reset_index(drop=True)
        period = (str(ts[keep].min()), str(ts[keep].max())) if len(df) else None
        versions = sorted(df["model_version"].astype(str).unique())
        return Current("", df, False, df["score"].to_numpy(dtype=np.float64, na_value=np.nan), period,
                       [f"rows scored by model versions {versions}"])
    import dask
    import dask.dataframe as dd

    ddf = dd.read_parquet([str(f) for f in files])
    if since is not None:
        ddf = ddf[dd.to_datetime(ddf["ts"], utc=True) >= since]
    ts = dd.to_datetime(ddf["ts"], utc=True)
    rows, first, last, versions = dask.compute(ddf.map_partitions(len).sum(), ts.min(), ts.max(),
                                               ddf["model_version"].astype(str).unique())
    return Current("", ddf, False, None, (str(first), str(last)) if rows else None,
                   [f"rows scored by model versions {sorted(versions)}",
                    f"{int(rows):,} rows (more than monitor.max_memory_rows {params.monitor.max_memory_rows:,}) "
                    f"read partition by partition from {len(files)} file(s) on the cluster of `compute`"],
                   rows=int(rows))


def metric_of(spec: FeatureSpec, served, y: pd.Series, scores, X: pd.DataFrame | None = None) -> dict:
    """The served model's metrics on labelled rows; given their inputs X, a routed model's
    decisions use each row's own threshold (`scoring.thresholds`)."""
    yy = train.encode_label(y, spec)
    threshold = (served.meta or {}).get("threshold")
    if X is not None:
        threshold = scoring.thresholds(served.model, X, threshold)
    if spec.task == "classification" and len(np.unique(yy)) < 2:
        return {}
    return evaluate.metrics_for(spec.task, yy, scores, threshold, 10)


def primary(spec: FeatureSpec, params: Params, metrics: dict) -> str | None:

    m = params.gate.metric
    if m != "auto":
        return m if m in metrics else None
    try:
        return gate.primary_metric(metrics)
    except KeyError:
        return None


def scores_of(served, X: pd.DataFrame) -> np.ndarray:
    """The served model's scores (`scoring.scores`) as floats; a prediction that is not a number is NaN."""
    s = scoring.scores(served.model, X, (served.meta or {}).get("task") or "regression")
    if s.ndim == 2:  # multiclass: the probabilities, in the model's class order
        return s
    return pd.to_numeric(pd.Series(s), errors="coerce").to_numpy(dtype=np.float64)


def _top(scores: np.ndarray) -> np.ndarray:
    return scores.max(axis=1) if scores.ndim == 2 else scores


def text_steps(model, spec: FeatureSpec, reference: pd.DataFrame) -> dict[str, TextFeatures]:
    """The fitted text step of each text column (its training vocabulary and tokenizer), read off the
    model (a routed model's global one); a model without one gets a step fitted on the reference rows."""
    found = fitted(model)
    for c in spec.text:
        if c not in found:
            found[c] = TextFeatures(c, min_df=1, components=None).fit(reference[c])
    return found


def drift_columns(spec: FeatureSpec) -> list[str]:
    """What drift is measured on: the features the estimator sees, each text column as its numbers
    (`core.text.text_stats`: characters, words, out-of-vocabulary share), never its raw text."""
    stats = [f"{c} {part}" for c in spec.text for part in ("chars", "words", "oov")]
    return [*[c for c in spec.features if c not in spec.text], *stats]


def drift_frame(spec: FeatureSpec, X: pd.DataFrame, steps: dict[str, TextFeatures]) -> pd.DataFrame:
    """`derived(spec, X)` with each text column replaced by its numbers (`drift_columns`)."""
    frame = derived(spec, X)
    for c in spec.text:
        frame = pd.concat([frame.drop(columns=[c]), text_stats(frame[c], c, steps[c].vocabulary, steps[c].words)],
                          axis=1)
    return frame


def text_drift(spec: FeatureSpec, ref_X: pd.DataFrame, cur_X: pd.DataFrame, steps: dict[str, TextFeatures]) -> list[dict]:
    """Per text column: words a row, out-of-vocabulary rate and vocabulary share, reference and current."""
    return [drift_mod.text_summary(c, steps[c].words(ref_X[c]), steps[c].words(cur_X[c]), steps[c].vocabulary)
            for c in spec.text]


def assess(params: Params, served, ref: Reference, cur: Current) -> dict:
    """The verdict (a JSON-ready dict): drift, score drift, performance, and whether to retrain."""

    mp = params.monitor
    spec = ref.spec
    missing = [c for c in spec.inputs if c not in cur.frame.columns]
    if missing:
        raise DataError(f"current data lacks the model's input columns {missing}; it must have the columns of "
                        f"{params.data.path} (or of the prediction log)")
    feats = drift_columns(spec)  # drift is measured on what the estimator sees, derived from the inputs
    verdict: dict = {
        "model": {"name": served.info.get("name"), "version": served.version, "uri": served.info.get("uri"),
                  "data_md5": ref.data_md5, "run_id": served.info.get("run_id")},
        "current": {"source": cur.source, "rows": len(cur), "labelled": cur.labelled,
                    "period": list(cur.period) if cur.period else None, "notes": cur.notes},
        "reference": {"rows": len(ref.train), "holdout_rows": len(ref.test), "data_md5": ref.data_md5},
        "policy": {**mp.model_dump(), "trigger": params.retrain.trigger},
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if len(cur) < mp.min_rows:
        verdict.update(status="insufficient", retrain=False, reasons=[
            f"{len(cur)} current rows, fewer than monitor.min_rows {mp.min_rows}: no verdict"])
        return verdict
    if cur.partitioned:
        d, sd = partitioned_drift(params, served, ref, cur)
        verdict.update(drift=d.to_dict(), score_drift=sd, performance=None)
        return conclude(verdict, params, d, sd, None, feats)
    live = None
    if "route" in cur.frame.columns and "request_id" in cur.frame.columns:  # the prediction log
        live = cur.frame
        if LABEL in live.columns:
            name = release.metric_name(served.meta or {}, params.gate.metric)
            verdict["live"] = release.per_version(live.rename(columns={LABEL: "label"}), served.meta or {}, name,
                                                  seed=mp.seed)
        answered = live["route"].fillna("champion") != "shadow"
        cur = dataclasses.replace(cur, frame=live[answered].reset_index(drop=True),
                                  scores=None if cur.scores is None else cur.scores[answered.to_numpy()])
    ref_X, cur_X = ref.train[spec.inputs], cur.frame[spec.inputs]
    steps = text_steps(served.model, spec, ref_X)
    d = drift_mod.compare(drift_frame(spec, ref_X, steps), drift_frame(spec, cur_X, steps), feats,
                          psi_threshold=mp.psi_threshold, alpha=mp.alpha, bins=mp.bins, seed=mp.seed)
    verdict["drift"] = d.to_dict()
    if spec.text:
        verdict["text"] = text_drift(spec, ref_X, cur_X, steps)
    ref_scores = scores_of(served, ref_X)
    cur_scores = cur.scores if cur.scores is not None and not np.isnan(cur.scores).all() else scores_of(served, cur_X)
    sd = drift_mod.score_drift(_top(ref_scores), _top(cur_scores), mp.bins, seed=mp.seed)
    sd["drifted"] = bool(sd["psi"] >= mp.score_psi_threshold and sd["p_value"] < mp.alpha)
    verdict["score_drift"] = sd
    perf = None
    if cur.labelled:
        ref_test_scores = scores_of(served, ref.test[spec.inputs])
        at_training = metric_of(spec, served, ref.test[LABEL], ref_test_scores, ref.test[spec.inputs])
        known = cur.frame[LABEL].notna().to_numpy()  # the log: only rows with labels fed back
        now = metric_of(spec, served, cur.frame[LABEL][known].reset_index(drop=True), cur_scores[known],
                        cur_X[known].reset_index(drop=True)) if known.sum() >= 2 else {}
        name = primary(spec, params, {**at_training, **now}) if at_training and now else None
        if name and name in at_training and name in now:
            lower = name in scoring.LOWER_IS_BETTER
            change = (now[name] - at_training[name]) * (-1 if lower else 1)  # > 0: better
            perf = {"metric": name, "at_training": at_training[name], "now": now[name], "change": change,
                    "decayed": bool(-change > mp.max_metric_drop), "all_at_training": at_training, "all_now": now,
                    "slices": slices(params, served, spec, ref, cur, name, cur_scores, ref_test_scores)}
    verdict["performance"] = perf
    return conclude(verdict, params, d, sd, perf, feats)


def partitioned_drift(params: Params, served, ref: Reference, cur: Current) -> tuple:
    """Drift and score drift of current rows held as a dask DataFrame (`from_parts`), read partition
    by partition on the cluster of params `compute` (`drift.compare_partitions`): the scores are the
    rows' own `score` column (what the model answered), the reference's are the served model's."""
    from mlcycle.core import compute

    mp, spec = params.monitor, ref.spec
    ref_X = ref.train[spec.inputs]
    steps = text_steps(served.model, spec, ref_X)
    reference = drift_frame(spec, ref_X, steps).assign(score=_top(scores_of(served, ref_X)))

    def features_and_score(part: pd.DataFrame) -> pd.DataFrame:
        return drift_frame(spec, part[spec.inputs], steps).assign(
            score=pd.to_numeric(part["score"], errors="coerce").astype("float64").to_numpy())

    current = cur.frame.map_partitions(features_and_score, meta=features_and_score(cur.frame._meta))
    with compute.cluster(params.compute) as dc:
        record.tags(compute.describe(dc))
        d, sd = drift_mod.compare_partitions(reference, current, drift_columns(spec), psi_threshold=mp.psi_threshold,
                                             alpha=mp.alpha, bins=mp.bins, seed=mp.seed, score_column="score",
                                             rows=cur.rows)
    sd["drifted"] = bool(sd["psi"] >= mp.score_psi_threshold and sd["p_value"] < mp.alpha)
    return d, sd


def conclude(verdict: dict, params: Params, d, sd: dict, perf: dict | None, feats: list[str]) -> dict:
    """The verdict's status, reasons and retrain decision from the drift, score drift and performance."""
    mp = params.monitor
    reasons = []
    data_drift = d.share >= mp.drift_share
    if data_drift:
        reasons.append(f"data drift: {len(d.drifted)} of {len(feats)} features drifted "
                       f"({d.share:.0%} >= {mp.drift_share:.0%}): {', '.join(d.drifted[:8])}")
    if sd["drifted"]:
        reasons.append(f"score drift: PSI {sd['psi']:.3f} >= {mp.score_psi_threshold}")
    if perf and perf["decayed"]:
        reasons.append(f"decay: {perf['metric']} {perf['now']:.4f} now against {perf['at_training']:.4f} at training "
                       f"(worse by more than {mp.max_metric_drop})")
    drifted = data_drift or sd["drifted"]
    decayed = bool(perf and perf["decayed"])
    trigger = params.retrain.trigger
    retrain = {"drift_or_decay": drifted or decayed, "drift": drifted, "decay": decayed, "never": False}[trigger]
    if not reasons:
        reasons.append("no drift or decay beyond the policy")
    verdict.update(status="drift" if drifted or decayed else "ok", data_drift=data_drift,
                   score_drifted=sd["drifted"], decayed=decayed, retrain=bool(retrain), reasons=reasons)
    return verdict


def slices(params: Params, served, spec: FeatureSpec, ref: Reference, cur: Current, metric: str,
           cur_scores: np.ndarray, ref_scores: np.ndarray) -> list[dict]:
    """The metric per group of each evaluate.slices column, at training (holdout) and now."""

    out = []
    cur, ref = Current(cur.source, with_derived(cur.frame, spec), cur.labelled), Reference(
        ref.version, ref.data_md5, spec, ref.train, with_derived(ref.test, spec))
    for col in params.evaluate.slices:
        if col not in cur.frame.columns or col not in ref.test.columns:
            continue
        groups = cur.frame[col].astype("str").value_counts()
        for g, n in groups.items():
            m_cur = ((cur.frame[col].astype("str") == g) & cur.frame[LABEL].notna()).to_numpy()
            m_ref = (ref.test[col].astype("str") == g).to_numpy()
            n = int(m_cur.sum())
            if n < params.monitor.min_slice_rows or m_ref.sum() < params.monitor.min_slice_rows:
                continue
            now = metric_of(spec, served, cur.frame[LABEL][m_cur], cur_scores[m_cur], cur.frame[spec.inputs][m_cur])
            then = metric_of(spec, served, ref.test[LABEL][m_ref], ref_scores[m_ref], ref.test[spec.inputs][m_ref])
            if metric in now and metric in then:
                change = (now[metric] - then[metric]) * (-1 if metric in scoring.LOWER_IS_BETTER else 1)
                out.append({"column": col, "group": g, "rows": int(n), "at_training": then[metric],
                            "now": now[metric], "change": change})
    return sorted(out, key=lambda r: r["change"])


def drift_table(verdict: dict) -> pd.DataFrame:
    cols = pd.DataFrame(verdict["drift"]["columns"])
    cols["new_categories"] = cols["new_categories"].map(lambda v: ", ".join(map(str, v[:5])))
    return cols[["column", "kind", "psi", "distance", "p_value", "drifted", "null_ref", "null_cur",
                 "mean_ref", "mean_cur", "new_categories", "new_share"]]


@literal.figures()
def plot_drift(verdict: dict, threshold: float):
    import matplotlib.pyplot as plt

    cols = pd.DataFrame(verdict["drift"]["columns"]).sort_values("psi")
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.28 * len(cols))))
    ax.barh(literal.labels(cols["column"]), cols["psi"].clip(upper=max(2.0, threshold * 3)),
            color=np.where(cols["drifted"], "#c0392b", "#7f8c8d"))
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"psi_threshold {threshold}")
    ax.set_xlabel("PSI (current against the champion's training data)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def check(root: Path, params: Params, served, current: str | None = None, days: float | None = None,
          now: dt.datetime | None = None) -> dict:
    """The champion's reference, the current data (a file, a folder of parts or the prediction log),
    assessed; writes nothing."""
    ref = reference(root, params, served, params.monitor.reference_max_rows, params.monitor.seed)
    if current and Path(current).is_dir():
        cur = from_folder(params, Path(current))
    else:
        cur = from_file(root, params, current) if current else from_log(root, params, days, now)
    return assess(params, served, ref, cur)


def summary(verdict: dict) -> str:
    """A few terminal lines."""
    m, c = verdict["model"], verdict["current"]
    lines = [f"monitor: {m['name']} v{m['version']} on {c['source']} ({c['rows']} rows): "
             f"{verdict['status'].upper()}, retrain: {'yes' if verdict['retrain'] else 'no'}"]
    if "drift" in verdict:
        d = verdict["drift"]
        lines.append(f"  drifted features: {len(d['drifted'])} ({d['share_drifted']:.0%}): {', '.join(d['drifted'][:10]) or '-'}")
        if d["new_categories"]:
            lines.append("  new categories: " + "; ".join(f"{k}: {', '.join(map(str, v[:5]))}"
                                                          for k, v in d["new_categories"].items()))
        lines.append(f"  score PSI {verdict['score_drift']['psi']:.3f}")
    for t in verdict.get("text") or []:
        lines.append(f"  text '{t['column']}': out-of-vocabulary {_share(t['oov_rate_cur'])} now, "
                     f"{_share(t['oov_rate_ref'])} at training; words a row {_num(t['mean_words_cur'])} now, "
                     f"{_num(t['mean_words_ref'])} at training")
    p = verdict.get("performance")
    if p:
        lines.append(f"  {p['metric']}: {p['now']:.4f} now, {p['at_training']:.4f} at training")
    for v in verdict.get("live") or []:
        figure = (f"{v['metric']} {v['value']:.4f} [{v['low']:.4f}, {v['high']:.4f}]" if "value" in v
                  else "too few labels for the metric")
        lines.append(f"  live v{v['version']} ({v['route']}): {v['rows']} rows, {v['labelled']} labelled; {figure}")
    lines += [f"  - {r}" for r in verdict["reasons"]]
    return "\n".join(lines)


def takeaways(verdict: dict, top: int = 3) -> str:
    """What this run's current data showed against the reference, as Markdown bullets."""
    m, c = verdict["model"], verdict["current"]
    lines = [f"- {c['rows']:,} current rows ({c['source']}) against {m['name']} v{m['version']}: "
             f"{verdict['status']}, retrain {'yes' if verdict['retrain'] else 'no'}."]
    if "drift" in verdict:
        d = verdict["drift"]
        cols = sorted(d.get("columns", []), key=lambda r: -(r.get("psi") or 0))[:top]
        lines.append(f"- {len(d['drifted'])} drifted feature(s) ({d['share_drifted']:.0%} of them); largest PSI: "
                     + (", ".join(f"`{r['column']}` ({r['psi']:.3f})" for r in cols) or "-") + ".")
        if verdict.get("score_drift"):
            lines.append(f"- predicted scores: PSI {verdict['score_drift']['psi']:.3f}.")
    p = verdict.get("performance")
    if p:
        lines.append(f"- {p['metric']}: {p['now']:.4f} now against {p['at_training']:.4f} at training "
                     f"({'decayed' if p['decayed'] else 'within the allowed drop'}).")
    else:
        lines.append("- no labels in the current data: performance not assessed.")
    return "\n".join(lines)


def metrics_of(verdict: dict) -> dict:
    """A verdict's figures for reports/metrics/monitor.json: drift of the features and the scores."""
    if "drift" not in verdict:
        return {}
    return {"share_drifted": verdict["drift"]["share_drifted"], "drifted_features": len(verdict["drift"]["drifted"]),
            "score_psi": verdict["score_drift"]["psi"]}


def _share(v) -> str:
    return "-" if v is None else f"{v:.1%}"


def _num(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def tables_of(verdict: dict) -> dict[str, pd.DataFrame]:
    """Beyond the drift table the notebook shows (`drift_table`): the text columns' vocabulary figures
    (counts and shares only, never a word)."""
    return {"text columns": pd.DataFrame(verdict["text"])} if verdict.get("text") else {}


def score(root: Path, params: Params, served, cur: Current) -> tuple[float | None, str]:
    """The gate metric of `served` on a period it has not seen (`cur`: `from_file`), through the
    serving code (the replay, monitoring/simulate.py)."""
    spec = FeatureSpec.from_json(Paths(root).feature_spec)
    X = cur.frame[spec.inputs]
    m = metric_of(spec, served, cur.frame[LABEL], scores_of(served, X), X)
    name = primary(spec, params, m)
    return (m.get(name) if name else None), name or "-"


# the replay's table (monitoring/simulate.py): the columns `figures` gives, and the one drawn per
# period (column, what it is, the monitor key of its threshold)
REPLAY = {"columns": ("share_drifted", "score_psi", "drifted"),
          "bar": ("share_drifted", "share of drifted features", "drift_share")}


def figures(verdict: dict) -> dict:
    """A verdict in a period's row of the replay: the share of drifted features, which, score PSI."""
    return {"share_drifted": verdict.get("drift", {}).get("share_drifted"),
            "drifted": ", ".join(verdict.get("drift", {}).get("drifted", [])[:6]),
            "score_psi": verdict.get("score_drift", {}).get("psi")}
