"""One model per segment (params `train.segment_by`, `train.min_segment_rows`), packed with the global
model into one routed model (`core.segments`), and the evaluate stage's comparison of the two.

`fit` trains a model for each segment with at least `min_segment_rows` training rows (train + valid)
as tasks on the Dask cluster of params `compute`, in parallel, with the global model's family and
hyperparameters; each chooses its own boosting iterations and decision threshold on its segment's
validation rows, as `train.fit` does. A segment keeps its model only when that model scores better
than the global model on the segment's validation rows (both fitted on the training rows, the same
score `train.fit` chooses by); every other segment, and any segment never seen, is scored by the
global model. Why each segment went where it went is kept (`Segments.table`).

`compare` scores the holdout per segment with the routed model and with the global model alone, so
the report and the gate (`gate.max_segment_drop`) see where the segment models win and where they
lose.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlcycle.core.config import ComputeParams, TrainParams
from mlcycle.core.errors import DataError
from mlcycle.core.scoring import better, scores, thresholds
from mlcycle.core.spec import FeatureSpec
from mlcycle.tasks.tabular import evaluate, routing
from mlcycle.tasks.tabular.train import TrainResult, encode_label, score_fn
from mlcycle.tasks.tabular.train import fit as fit_model


@dataclass
class Segment:
    key: str
    train_rows: int  # train + valid rows of the segment
    valid_rows: int
    routed: bool = False  # scored by its own model
    reason: str = ""  # why it is (or is not) scored by its own model
    best_iter: int | None = None
    threshold: float | None = None
    valid_score: float | None = None  # its own model's, on its validation rows
    valid_global: float | None = None  # the global model's, on the same rows
    seconds: float = 0.0


@dataclass
class Segments:
    """The segments of one routed model, and where each went."""

    by: list[str]
    min_rows: int
    score_name: str
    items: list[Segment] = field(default_factory=list)
    cluster: dict = field(default_factory=dict)
    seconds: float = 0.0  # wall time of the segments' training on the cluster

    @property
    def routed(self) -> list[Segment]:
        return [s for s in self.items if s.routed]

    def table(self) -> pd.DataFrame:
        cols = ["key", "train_rows", "valid_rows", "routed", "best_iter", "threshold", "valid_score",
                "valid_global", "seconds", "reason"]
        out = pd.DataFrame([{c: getattr(s, c) for c in cols} for s in self.items], columns=cols)
        return out.rename(columns={"key": "segment", "valid_score": f"valid {self.score_name}",
                                   "valid_global": f"valid {self.score_name} (global model)"})

    def metrics(self) -> dict:
        """train.json `segments`: counts, and per routed segment what was chosen on its validation rows."""
        return {"by": self.by, "segments": len(self.items), "models": len(self.routed),
                "to_global": len(self.items) - len(self.routed),
                "per_segment": {s.key: {"best_iter": s.best_iter, "threshold": s.threshold,
                                        f"valid_{self.score_name}": s.valid_score,
                                        f"valid_global_{self.score_name}": s.valid_global}
                                for s in self.routed}}

    def meta(self) -> dict:
        """What the model's MLflow metadata says of its routing."""
        return {"by": self.by, "models": [s.key for s in self.routed], "min_segment_rows": self.min_rows}


def check_columns(spec: FeatureSpec, by: list[str]) -> None:
    """train.segment_by must name input columns of the model (a request sends them)."""
    bad = [c for c in by if c not in spec.inputs]
    if bad:
        raise DataError(f"train.segment_by {bad}: not input columns of the model; choose from {spec.inputs} "
                        "(a segment column must be sent with every request)")


def _fit_one(key: str, train_xy, valid_xy, spec: FeatureSpec, params: TrainParams, global_valid: np.ndarray):
    """A segment's model (a TrainResult, or None) and its Segment record; runs on a worker."""
    import time

    t = time.perf_counter()
    seg = Segment(key, len(train_xy[0]) + len(valid_xy[0]), len(valid_xy[0]))
    _, score = score_fn(spec.task, len(spec.classes) if spec.task == "classification" else 0)
    y_va = encode_label(valid_xy[1], spec)
    try:
        seg.valid_global = float(score(y_va, global_valid))
        result = fit_model(train_xy, valid_xy, spec, params, with_baseline=False)
    except (DataError, ValueError) as exc:  # one class in its rows, a score that cannot be computed...
        seg.reason = f"to the global model: its own cannot be fitted or scored ({str(exc)[:200]})"
        seg.seconds = time.perf_counter() - t
        return None, seg
    seg.best_iter, seg.threshold, seg.valid_score = result.best_iter, result.threshold, float(result.valid_score)
    seg.routed = seg.valid_score > seg.valid_global  # train.score_fn's scores: higher is better
    seg.reason = ("its own model: better than the global model on its validation rows" if seg.routed
                  else "to the global model: its own is no better on its validation rows")
    seg.seconds = time.perf_counter() - t
    return (result if seg.routed else None), seg


def fit(train: tuple[pd.DataFrame, pd.Series], valid: tuple[pd.DataFrame, pd.Series], spec: FeatureSpec,
        params: TrainParams, global_result: TrainResult, compute: ComputeParams | None = None) -> TrainResult:
    """The global result with its model replaced by the routed model of `params.segment_by` (see the
    module docstring); the segments' wall time goes to the stage run's tags."""
    import time

    from mlcycle.core import compute as dask_compute
    from mlcycle.core import record

    by, min_rows = list(params.segment_by), params.min_segment_rows
    check_columns(spec, by)
    (X_tr, y_tr), (X_va, y_va) = train, valid
    k_tr, k_va = routing.keys(X_tr, by), routing.keys(X_va, by)
    counts = pd.Series(np.concatenate([k_tr, k_va])).value_counts()
    found = Segments(list(by), min_rows, global_result.score_name)
    jobs = []
    for key, n in counts.sort_index().items():
        rows_tr, rows_va = np.flatnonzero(k_tr == key), np.flatnonzero(k_va == key)
        if n < min_rows or not len(rows_va):
            found.items.append(Segment(key, int(n), len(rows_va), reason=(
                f"to the global model: {n:,} rows < train.min_segment_rows {min_rows:,}" if n < min_rows
                else "to the global model: no validation rows")))
            continue
        jobs.append((key, (X_tr.iloc[rows_tr], y_tr.iloc[rows_tr]), (X_va.iloc[rows_va], y_va.iloc[rows_va]),
                     global_result.valid_pred[rows_va]))
    models: dict = {}
    t = time.perf_counter()
    if jobs:
        with dask_compute.cluster(compute or ComputeParams()) as dc:
            found.cluster = dask_compute.describe(dc)
            record.tags(found.cluster)
            # the largest segments first, so the last task to start is a short one
            jobs.sort(key=lambda j: -len(j[1][0]))
            # each segment's rows go to the cluster once, as data, not inside the task graph
            futures = [dc.submit(_fit_one, key, *dc.scatter([tr, va]), spec, params, gv, pure=False)
                       for key, tr, va, gv in jobs]
            for result, seg in dc.gather(futures):
                found.items.append(seg)
                if result is not None:
                    models[seg.key] = result
    found.seconds = time.perf_counter() - t
    record.tags({"mlcycle.segments.seconds": f"{found.seconds:.1f}", "mlcycle.segments.models": str(len(models))})
    found.items.sort(key=lambda s: s.key)
    model = routing.routed(by, spec.task, global_result.model, global_result.threshold,
                           {k: r.model for k, r in models.items()}, {k: r.threshold for k, r in models.items()})
    return dataclasses.replace(global_result, model=model, segments=found)


# ---------------------------------------------------------------- evaluation

def is_routed(model) -> bool:
    """Whether `model` routes rows to segment models (a `core.segments.Routed`)."""
    return routing.is_routed(model)


def compare(model, X: pd.DataFrame, y: np.ndarray, spec: FeatureSpec, n_bins: int,
            min_rows: int, metrics: list[str] | None = None) -> pd.DataFrame:
    """Holdout metrics per segment for the routed model and for its global model alone: one row per
    segment of the holdout (and one `(all rows)`), with `rows`, `scored_by` (its own model or the
    global one) and, for the headline metrics (and `metrics`), both values. Segments of fewer than
    `min_rows` holdout rows are marked `small` (too few rows to judge)."""
    names = list(dict.fromkeys([*evaluate.headline(spec), *(metrics or [])]))
    keys = routing.keys(X, model.by)
    where = model.route(X)
    s_routed = scores(model, X, spec.task)
    s_global = scores(model.global_model, X, spec.task)
    t_routed = thresholds(model, X, model.global_threshold)
    t_global = model.global_threshold
    out = []
    for key in ["(all rows)", *sorted(pd.unique(keys))]:
        rows = np.arange(len(X)) if key == "(all rows)" else np.flatnonzero(keys == key)
        row = {"segment": key, "rows": len(rows),
               "scored_by": "mixed" if key == "(all rows)" else
               ("own model" if where[rows[0]] != routing.GLOBAL else "global model"),
               "small": key != "(all rows)" and len(rows) < min_rows}
        for name, s, t in (("routed", s_routed, t_routed), ("global", s_global, t_global)):
            try:
                m = evaluate.metrics_for(spec.task, y[rows], s[rows], evaluate.rows_of(t, rows), n_bins)
            except ValueError:  # one class in the segment's rows: no ROC AUC
                m = {}
            for metric in names:
                row[f"{metric} {name}"] = m.get(metric, float("nan"))
        out.append(row)
    return pd.DataFrame(out)


def comparison_metrics(table: pd.DataFrame) -> dict:
    """evaluate.json `segments`: per segment the rows, who scored it and both models' headline metrics."""
    out = {}
    for r in table.to_dict("records"):
        out[r["segment"]] = {k.replace(" ", "_"): (bool(v) if isinstance(v, bool | np.bool_) else v)
                             for k, v in r.items() if k != "segment"}
    return out


def gate_rows(table: pd.DataFrame, metric: str) -> list[dict]:
    """What the gate judges: each segment scored by its own model with its rows, small flag and the
    two values of `metric` (routed, global)."""
    rows = table[(table["segment"] != "(all rows)") & (table["scored_by"] == "own model")]
    return [{"segment": r["segment"], "rows": int(r["rows"]), "small": bool(r["small"]),
             "routed": float(r.get(f"{metric} routed", float("nan"))),
             "global": float(r.get(f"{metric} global", float("nan")))} for r in rows.to_dict("records")]


def takeaways(table: pd.DataFrame, metric: str) -> str:
    """Where the segment models beat the global model on the holdout, as Markdown bullets."""
    own = table[(table["scored_by"] == "own model") & ~table["small"]]
    col_r, col_g = f"{metric} routed", f"{metric} global"
    if col_r not in table:
        return f"- {metric} is not reported for this task."
    total = table[table["segment"] == "(all rows)"].iloc[0]
    lines = [f"- all holdout rows: {metric} {total[col_r]:.4f} routed, {total[col_g]:.4f} for the global model alone."]
    if not len(own):
        lines.append("- no segment of at least evaluate.min_group_size holdout rows is scored by its own model.")
        return "\n".join(lines)
    wins = [r for r in own.to_dict("records") if better(metric, r[col_r], r[col_g])]
    lines.append(f"- the segment model wins on {len(wins)} of {len(own)} segments scored by their own model "
                 f"(judged on at least evaluate.min_group_size holdout rows).")
    return "\n".join(lines)
