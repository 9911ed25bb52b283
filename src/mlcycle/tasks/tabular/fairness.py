"""Slices and fairness (stage `evaluate`): metrics per group with bootstrap intervals, and the gaps
between groups that the gate's fairness criteria bound.

Per-group metrics are fairlearn's and scikit-learn's metric functions called on each group's rows (as
fairlearn's `MetricFrame` would, faster; the intervals from a bootstrap of each group's rows, core/stats.py), the
gaps from fairlearn's `demographic_parity_difference` and `equalized_odds_difference` (binary
classification) and `MetricFrame.difference` of the mean absolute error (regression: the error
gap). Groups with fewer than `min_group_size` holdout rows are marked `small`: their metrics are
shown, but they are left out of every gap, so one noisy group of twelve rows cannot block a model.

Everything here is a pure function of arrays and frames.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from fairlearn import metrics as flm
from sklearn import metrics as skm

from mlcycle.core import literal, record, stats
from mlcycle.core.errors import DataError

MISSING = "(missing)"
MAX_NUMERIC_GROUPS = 10  # a numeric column with more distinct values is cut into quintiles
CI = stats.CI95  # bootstrap quantiles of the intervals (95%)
# gap metric -> the per-group metrics it is the largest difference of
GAP_PARTS = {
    "demographic_parity_difference": ("selection_rate",),
    "equalized_odds_difference": ("true_positive_rate", "false_positive_rate"),
    "error_gap": ("mae",),
    "accuracy_gap": ("accuracy",),
}


def check_columns(available, slices: list[str], sensitive: list[str]) -> None:
    """Every slice and sensitive column must be in the holdout table; raise naming the missing ones."""
    cols = [str(c) for c in available]
    for key, names in (("evaluate.slices", slices), ("evaluate.sensitive", sensitive)):
        missing = [c for c in names if c not in cols]
        if missing:
            raise DataError(
                f"{key} names {missing}, not in the holdout table data/processed/test.parquet; "
                f"available: {sorted(cols)}. A column that is not a feature can be kept for slicing "
                f"with data.aside_columns")


def group_labels(values: pd.Series) -> pd.Series:
    """Group of each row as text: the value itself, numeric columns with many values cut into
    quintiles ("[a, b]"), and missing values as "(missing)"."""
    s = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) and s.nunique() > MAX_NUMERIC_GROUPS:
        cut = pd.qcut(s, q=5, duplicates="drop")
        out = cut.map(lambda iv: f"[{iv.left:.4g}, {iv.right:.4g}]").astype("object")
    else:
        out = s.astype("object").map(lambda v: v if isinstance(v, str) else (
            str(int(v)) if isinstance(v, float) and float(v).is_integer() else str(v)))
    out = out.where(s.notna(), MISSING)
    out = out.where(out != "nan", MISSING)
    return out.astype(str)


# ---------------------------------------------------------------- per-group metrics

def _safe_auc(y, s) -> float:
    y = np.asarray(y)
    return float(skm.roc_auc_score(y, s)) if len(np.unique(y)) == 2 else float("nan")


def _at(metric):
    """A metric of predicted labels, applied to scores cut at their rows' thresholds."""
    def fn(y, s, threshold):
        return float(metric(np.asarray(y), (np.asarray(s) >= np.asarray(threshold)).astype(int)))
    return fn


def _share_predicted(y, pred, label: int) -> float:
    """The share of rows of class `label` predicted positive: nan when the group has none of them
    (fairlearn's rates give 0.0 there, which reads as a measured value)."""
    of = np.asarray(y) == label
    return float(np.asarray(pred)[of].mean()) if of.any() else float("nan")


UNDEFINED = {  # why a binary group metric has no value (it is stored as null, shown as n/a)
    "roc_auc": "one class in the group",
    "true_positive_rate": "no positive rows in the group",
    "false_positive_rate": "no negative rows in the group",
}


def undefined_reason(metric: str) -> str:
    """Why `metric` of a group is undefined, for "n/a (reason)"."""
    return UNDEFINED.get(metric, "no rows to compute it on")


CUT = ("selection_rate", "true_positive_rate", "false_positive_rate")  # metrics of decisions at the threshold


def per_row(threshold, n: int) -> np.ndarray:
    """The decision threshold of each of n rows: 0.5 when None, one repeated, or the rows' own (a
    routed model's, `core.scoring.thresholds`)."""
    t = 0.5 if threshold is None else threshold
    return np.broadcast_to(np.asarray(t, dtype=np.float64), (n,))


def _rate(y, s, value: int) -> float:
    y = np.asarray(y)
    return float(np.mean(y == value)) if len(y) else float("nan")


def _rmse(y, p) -> float:
    return float(np.sqrt(skm.mean_squared_error(y, p)))


def _bias(y, p) -> float:
    return float(np.mean(np.asarray(p) - np.asarray(y)))


def _accuracy_argmax(y, p) -> float:
    return float(np.mean(np.asarray(p).argmax(axis=1) == np.asarray(y)))


def metric_functions(task: str, binary: bool) -> dict:
    """Per-group metrics by task, each f(y_true, scores) as MetricFrame takes them (those of CUT
    also take the rows' `threshold`)."""
    if task == "regression":
        return {"mae": skm.mean_absolute_error, "rmse": _rmse, "mean_error": _bias}
    if not binary:
        return {"accuracy": _accuracy_argmax}
    return {
        "positive_rate": functools.partial(_rate, value=1),  # the observed base rate
        "selection_rate": _at(flm.selection_rate),
        "true_positive_rate": _at(functools.partial(_share_predicted, label=1)),
        "false_positive_rate": _at(functools.partial(_share_predicted, label=0)),
        "roc_auc": _safe_auc,
    }


def metric_frame(y, scores, groups, task: str, threshold: float | None) -> tuple[pd.DataFrame, list[str]]:
    """The task's metrics (`metric_functions`) by group (point estimates): a row per group, in sorted
    order, as fairlearn's `MetricFrame(...).by_group` gives them. The same functions called on each
    group's rows directly: MetricFrame stacks every cell of its columns one by one, which took about
    ten seconds on the 54,065-row flights holdout."""
    y, scores = np.asarray(y), np.asarray(scores)
    fns = metric_functions(task, scores.ndim == 1 and task != "regression")
    cuts = per_row(threshold, len(scores))
    g_arr = np.asarray(groups)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rates of a group without positives are 0/0 (nan)
        for g in np.unique(g_arr):
            at = g_arr == g
            rows.append({m: (fn(y[at], scores[at], threshold=cuts[at]) if m in CUT else fn(y[at], scores[at]))
                         for m, fn in fns.items()})
    return pd.DataFrame(rows, index=pd.Index(np.unique(g_arr)), columns=list(fns), dtype=float), list(fns)


def bootstrap_metrics(y, scores, task: str, threshold: float | None, n_boot: int,
                      rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The metrics of `metric_functions` on `n_boot` resamples (with replacement, same size) of one
    group's rows; vectorised over resamples (the same definitions, without a call per resample)."""
    y, scores = np.asarray(y), np.asarray(scores)
    idx = stats.resample_indices(rng, len(y), n_boot)
    yb = y[idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        if task == "regression":
            err = scores[idx] - yb
            return {"mae": np.abs(err).mean(axis=1), "rmse": np.sqrt((err ** 2).mean(axis=1)),
                    "mean_error": err.mean(axis=1)}
        if scores.ndim == 2:
            return {"accuracy": (scores.argmax(axis=1)[idx] == yb).mean(axis=1)}
        pred = (scores >= per_row(threshold, len(scores)))[idx]
        pos = yb == 1
        auc = stats.weighted_metric("roc_auc", y, scores, stats.counts_of(idx))
        return {"positive_rate": pos.mean(axis=1), "selection_rate": pred.mean(axis=1),
                "true_positive_rate": (pred & pos).sum(axis=1) / pos.sum(axis=1),
                "false_positive_rate": (pred & ~pos).sum(axis=1) / (~pos).sum(axis=1),
                "roc_auc": auc}


def group_table(column: str, groups: pd.Series, y, scores, task: str, threshold: float | None,
                min_group_size: int, n_boot: int = 0, seed: int = 0,
                samples: dict | None = None) -> pd.DataFrame:
    """One row per group: n, small, each metric and (with n_boot) its `_lo`/`_hi` interval.

    Intervals are percentile bootstrap intervals resampled within each group (the group's size
    stays fixed). fairlearn's own `MetricFrame(n_boot=...)` resamples and re-splits the whole
    holdout per resample, which took over ten minutes for 200 resamples of the 54,065-row flights
    holdout on two cores; this takes seconds. `samples`, when given, receives the resampled values
    ({group: {metric: array}}) for the gap intervals."""
    groups = pd.Series(np.asarray(groups), dtype=str)
    y, scores = np.asarray(y), np.asarray(scores)
    by, names = metric_frame(y, scores, groups, task, threshold)
    counts = groups.value_counts()
    out = pd.DataFrame({"column": column, "group": [str(g) for g in by.index]})
    out["n"] = [int(counts[g]) for g in out["group"]]
    out["small"] = out["n"] < min_group_size
    for m in names:
        out[m] = by[m].to_numpy(dtype=float)
    if n_boot:
        rng = np.random.default_rng(seed)
        lo = {m: [] for m in names}
        hi = {m: [] for m in names}
        g_arr = groups.to_numpy()
        cuts = per_row(threshold, len(scores))
        for g in out["group"]:
            rows = g_arr == g
            boot = bootstrap_metrics(y[rows], scores[rows], task, cuts[rows], n_boot, rng)
            if samples is not None:
                samples[g] = boot
            for m in names:
                finite = boot[m][np.isfinite(boot[m])]
                q = stats.percentile_interval(finite, CI) if len(finite) else (np.nan, np.nan)
                lo[m].append(float(q[0]))
                hi[m].append(float(q[1]))
        for m in names:
            out[f"{m}_lo"], out[f"{m}_hi"] = lo[m], hi[m]
    return out.sort_values(["n", "group"], ascending=[False, True], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------- gaps between groups

@dataclass
class Gap:
    """The largest difference of one metric between the groups of one column (small groups left out)."""

    column: str
    metric: str
    value: float | None
    high_group: str | None = None  # the pair the value is the difference of
    low_group: str | None = None
    part: str | None = None  # the per-group metric behind it (equalized odds: TPR or FPR)
    high: float | None = None
    low: float | None = None
    groups: int = 0  # groups compared
    excluded: list[str] = field(default_factory=list)  # small groups left out
    note: str = ""
    lo: float | None = None  # bootstrap interval of the gap (groups resampled within themselves)
    hi: float | None = None

    def describe(self) -> str:
        if self.value is None:
            return f"{self.metric} on {self.column}: not computed ({self.note})"
        return (f"{self.metric} on {self.column} = {self.value:.4f} (group '{self.high_group}' "
                f"{self.part} {self.high:.4f} vs '{self.low_group}' {self.low:.4f})")


def gap_metrics(task: str, binary: bool) -> list[str]:
    if task == "regression":
        return ["error_gap"]
    return ["demographic_parity_difference", "equalized_odds_difference"] if binary else ["accuracy_gap"]


def gaps(column: str, table: pd.DataFrame, groups: pd.Series, y, scores, task: str,
         threshold: float | None, samples: dict | None = None) -> list[Gap]:
    """Gaps between the groups of `column` that are not small (`table` from `group_table`);
    with `samples` (bootstrap values by group from `group_table`), an interval for each gap."""
    scores = np.asarray(scores)
    binary = scores.ndim == 1 and task != "regression"
    big = table[~table["small"]]
    excluded = table.loc[table["small"], "group"].tolist()
    out = []
    for metric in gap_metrics(task, binary):
        if len(big) < 2:
            out.append(Gap(column, metric, None, groups=len(big), excluded=excluded,
                           note=f"{len(big)} group(s) of at least evaluate.min_group_size rows; a gap needs two"))
            continue
        parts = list(GAP_PARTS[metric])
        if big[parts].notna().all().all():
            # every group's rates defined: fairlearn's gap is the largest spread of the group table's
            # values (the same functions on the same rows), without splitting the rows again
            value = max(big[p].max() - big[p].min() for p in parts)
        else:
            value = fairlearn_gap(metric, big, groups, y, scores, threshold)
        # which pair: the per-group metric with the widest spread (for equalized odds, TPR or FPR)
        spreads = {p: big[p].max() - big[p].min() for p in GAP_PARTS[metric]}
        part = max(spreads, key=lambda p: (np.nan_to_num(spreads[p], nan=-1.0)))
        hi = big.loc[big[part].idxmax()]
        lo = big.loc[big[part].idxmin()]
        value = float(value)
        interval = _gap_interval(metric, big["group"].tolist(), samples) if samples else (None, None)
        out.append(Gap(column, metric, None if np.isnan(value) else value, str(hi["group"]), str(lo["group"]), part,
                       float(hi[part]), float(lo[part]), len(big), excluded,
                       "" if not np.isnan(value) else "undefined: a group has no positive or no negative rows",
                       *interval))
    return out


def fairlearn_gap(metric: str, big: pd.DataFrame, groups, y, scores, threshold) -> float:
    """The gap by fairlearn's functions over the rows of the groups in `big` (its conventions for a
    group whose rate is undefined, e.g. no positive rows)."""
    keep = np.asarray(pd.Series(np.asarray(groups), dtype=str).isin(big["group"]))
    yk, sk, gk = np.asarray(y)[keep], scores[keep], np.asarray(groups, dtype=str)[keep]
    tk = per_row(threshold, len(scores))[keep]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if metric == "demographic_parity_difference":
            return flm.demographic_parity_difference(yk, (sk >= tk).astype(int), sensitive_features=gk)
        if metric == "equalized_odds_difference":
            return flm.equalized_odds_difference(yk, (sk >= tk).astype(int), sensitive_features=gk)
        if metric == "error_gap":
            return flm.MetricFrame(metrics=skm.mean_absolute_error, y_true=yk, y_pred=sk,
                                   sensitive_features=gk).difference()
        return big["accuracy"].max() - big["accuracy"].min()


def _gap_interval(metric: str, groups: list[str], samples: dict) -> tuple[float | None, float | None]:
    """Percentile interval of the gap over the resamples (largest minus smallest group value; for
    equalized odds the larger of the TPR and FPR spreads, as fairlearn defines it)."""
    spreads = []
    for part in GAP_PARTS[metric]:
        values = np.stack([samples[g][part] for g in groups])  # groups x resamples
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            spreads.append(np.nanmax(values, axis=0) - np.nanmin(values, axis=0))
    gap = np.max(np.stack(spreads), axis=0)
    gap = gap[np.isfinite(gap)]
    if not len(gap):
        return None, None
    lo, hi = stats.percentile_interval(gap, CI)
    return float(lo), float(hi)


# ---------------------------------------------------------------- the whole assessment

@dataclass
class Assessment:
    """Per-group tables and gaps of every slice and sensitive column."""

    tables: dict[str, pd.DataFrame]
    gaps: list[Gap]
    roles: dict[str, str]  # column -> slice | sensitive | slice, sensitive
    min_group_size: int
    bootstrap: int

    def table(self, column: str) -> pd.DataFrame:
        return self.tables[column]

    def gap_table(self) -> pd.DataFrame:
        rows = [{"column": g.column, "role": self.roles[g.column], "metric": g.metric,
                 "gap": f"n/a ({g.note})" if g.value is None else round(g.value, 4),
                 "interval": "" if g.lo is None else f"[{g.lo:.3f}, {g.hi:.3f}]",
                 "between": "" if g.value is None else f"{g.high_group} vs {g.low_group}",
                 "per-group metric": g.part or "", "groups compared": g.groups,
                 "small groups left out": len(g.excluded)} for g in self.gaps]
        return pd.DataFrame(rows, columns=["column", "role", "metric", "gap", "interval", "between", "per-group metric",
                                           "groups compared", "small groups left out"])

    def sensitive_gaps(self) -> list[Gap]:
        return [g for g in self.gaps if "sensitive" in self.roles[g.column]]

    def metrics(self) -> dict:
        """{column: {gap metric: value}} for reports/metrics/evaluate.json (DVC and MLflow metrics)."""
        out: dict[str, dict] = {}
        for g in self.gaps:
            if g.value is not None:
                out.setdefault(g.column, {})[g.metric] = round(g.value, 6)
        return out

    def to_dict(self) -> dict:
        return {
            "min_group_size": self.min_group_size, "bootstrap": self.bootstrap, "ci": list(CI),
            "columns": {c: {"role": self.roles[c], "groups": [_with_reasons(r) for r in _records(t)]}
                        for c, t in self.tables.items()},
            "gaps": [asdict(g) for g in self.gaps],
        }


def _with_reasons(row: dict) -> dict:
    """A group's record with `undefined`: {metric: why} for each metric without a value (null)."""
    why = {k: undefined_reason(k) for k, v in row.items()
           if v is None and k not in ("column", "group") and not k.endswith(("_lo", "_hi"))}
    return {**row, "undefined": why} if why else row


def _records(df: pd.DataFrame) -> list[dict]:
    rows = []
    for r in df.to_dict(orient="records"):
        rows.append({k: (None if isinstance(v, float) and np.isnan(v) else
                         round(v, 6) if isinstance(v, float) else
                         bool(v) if isinstance(v, np.bool_ | bool) else
                         int(v) if isinstance(v, np.integer) else v) for k, v in r.items()})
    return rows


def assess(frame: pd.DataFrame, y, scores, task: str, threshold: float | None, slices: list[str],
           sensitive: list[str], min_group_size: int, n_boot: int = 0, seed: int = 0) -> Assessment:
    """Group metrics and gaps for each slice and sensitive column of `frame` (the holdout rows)."""
    check_columns(frame.columns, slices, sensitive)
    roles = {}
    for c in [*slices, *sensitive]:
        roles[c] = ", ".join(r for r, names in (("slice", slices), ("sensitive", sensitive)) if c in names)
    tables, found = {}, []
    for i, c in enumerate(roles):
        groups = group_labels(frame[c])
        samples: dict = {}
        t = group_table(c, groups, y, scores, task, threshold, min_group_size, n_boot, seed + i, samples)
        tables[c] = t
        found.extend(gaps(c, t, groups, y, scores, task, threshold, samples))
    return Assessment(tables, found, roles, min_group_size, n_boot)


def display_table(table: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """A group table for reading: each metric as "value [lo, hi]" (the value alone when every resample
    gave it), "n/a (reason)" where it is undefined, small groups marked."""
    names = metrics or [c for c in table.columns
                        if c not in ("column", "group", "n", "small") and not c.endswith(("_lo", "_hi"))]
    out = pd.DataFrame({"group": table["group"], "n": table["n"],
                        "small": np.where(table["small"], "small", "")})
    for m in names:
        if f"{m}_lo" in table:
            out[m] = [format_value(m, v, lo, hi) for v, lo, hi in zip(table[m], table[f"{m}_lo"], table[f"{m}_hi"], strict=True)]
        else:
            out[m] = [format_value(m, v) for v in table[m]]
    return out


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def format_value(metric: str, v, lo=None, hi=None, digits: int = 3) -> str:
    """One group metric for reading: "0.712 [0.690, 0.731]"; the value alone when the interval is
    missing or has no width (every resample gave the same value, e.g. a rate of 0 in a small group:
    a percentile interval cannot show that uncertainty); "n/a (reason)" when it is undefined."""
    if _missing(v):
        return f"n/a ({undefined_reason(metric)})"
    if _missing(lo) or _missing(hi) or lo == hi:
        return f"{v:.{digits}f}"
    return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def write(assessment: Assessment, path) -> None:
    """reports/fairness.json: every group table and gap (read by the model card)."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(assessment.to_dict(), indent=1, default=str) + "\n")
    record.artifacts([path], "evaluation")


def headline_metric(table: pd.DataFrame) -> str:
    """The per-group metric plotted: ROC AUC (binary), MAE (regression) or accuracy (multiclass)."""
    return next(m for m in ("roc_auc", "mae", "accuracy") if m in table)


@literal.figures()
def plot_groups(table: pd.DataFrame, metric: str | None = None, top: int = 20):
    """The metric of the largest groups with their intervals; small groups in grey."""
    from matplotlib.figure import Figure

    metric = metric or headline_metric(table)
    t = table.head(top).iloc[::-1]
    fig = Figure(figsize=(7, 0.28 * len(t) + 1.4))
    ax = fig.subplots()
    y = np.arange(len(t))
    colors = np.where(t["small"], "#aaaaaa", "#4c72b0")
    if f"{metric}_lo" in t:
        err = np.vstack([t[metric] - t[f"{metric}_lo"], t[f"{metric}_hi"] - t[metric]])
        ax.errorbar(t[metric], y, xerr=np.nan_to_num(err), fmt="none", ecolor="#999999", capsize=2)
    ax.scatter(t[metric], y, c=colors, zorder=3)
    groups = literal.labels(t["group"], 30)  # values as typed, shortened, each its own tick
    ax.set_yticks(y, [f"{g} (n={n:,})" for g, n in zip(groups, t["n"], strict=True)], fontsize=8)
    col = literal.label(table["column"].iloc[0]) if len(table) else ""
    ax.set(xlabel=metric, title=f"{metric} by {col} (95% intervals; grey: small groups)")
    fig.tight_layout()
    return fig
