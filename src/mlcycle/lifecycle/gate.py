"""The promotion gate: does the newly trained model replace the champion?

Criteria come from params `gate`: minimums and maximums per metric (`minimums: auto`, the default:
a floor that fits the kind of model, declared by its task: `Task.gate_kinds`), "better than the
baseline" on `gate.metric` (when the
baseline's metrics are given), and "not worse than the current champion" on `gate.metric`, where the
champion is re-scored on the same current holdout (metrics it logged when it was trained are not
comparable once data change). The champion tolerance is absolute (`max_drop`) for bounded scores
(roc_auc, r2, ...) and relative (`max_relative_drop`, a share of the champion's value) for errors
in target units (rmse, mae) and losses (log_loss, brier).
Optional fairness criteria (`gate.fairness`) bound the largest gap between groups of each
`evaluate.sensitive` column (see mlcycle.fairness); a failing one names the column, the metric and
the two groups. A clean rejection is a normal outcome; only errors raise.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from mlcycle.core import tasks
from mlcycle.core.config import GateParams
from mlcycle.core.stats import GATE_METRICS, LOWER_IS_BETTER, better
from mlcycle.core.tasks import GateKind

# errors in target units or unbounded losses: the champion tolerance is a share of its value
RELATIVE = {"rmse", "mae", "log_loss", "brier"}
# what evaluate reports for some task: a criterion on one of these that the current task does not
# report is skipped (and said so); any other name is a typo and an error
KNOWN = set(GATE_METRICS)


def kinds() -> list[GateKind]:
    """Every kind of model the registered tasks train (`Task.gate_kinds`), in the order they are tried."""
    return [k for t in tasks.all_tasks() for k in t.gate_kinds]


def kind_of(candidate: dict[str, float]) -> GateKind:
    """The kind of model behind evaluate's metrics: the first whose telling metric is among them."""
    for k in kinds():
        if any(m in candidate for m in k.tells):
            return k
    raise KeyError(f"cannot tell the task from the metrics {sorted(candidate)}")


def auto_minimums(kind: str) -> dict[str, float]:
    """`gate.minimums: auto` of the kind of model named `kind` (e.g. "regression": r2 0.1)."""
    for k in kinds():
        if k.name == kind:
            return dict(k.minimums)
    raise KeyError(f"no task trains a kind of model named '{kind}'; known: {[k.name for k in kinds()]}")


def primary_metric(candidate: dict[str, float]) -> str:
    """gate.metric `auto`: the first kind's primary metric among the candidate's metrics (ROC AUC for
    binary, RMSE for regression, log loss for multiclass, NDCG@k for recommendation)."""
    for k in kinds():
        if k.primary in candidate:
            return k.primary
    raise KeyError(f"no primary metric among {sorted(candidate)}")


def task_of(candidate: dict[str, float]) -> str:
    """The kind of model behind evaluate's metrics, by name: binary or multiclass classification,
    regression or recommendation (`kind_of`)."""
    return kind_of(candidate).name


@dataclass
class Decision:
    promote: bool
    metric: str
    criteria: list[dict] = field(default_factory=list)
    candidate_version: str | None = None
    champion_version: str | None = None
    note: str = ""
    value: float | None = None  # the candidate's value of `metric` (tagged gate.value)
    task: str = ""  # the kind of model (`GateKind.name`): binary classification, regression, ...
    minimums: str = ""  # where the minimums came from: "auto (<kind>)" or "gate.minimums"

    @property
    def outcome(self) -> str:
        return "promoted" if self.promote else "rejected"

    def failed(self) -> list[dict]:
        return [c for c in self.criteria if not c["passed"]]

    def summary(self, most: int = 6) -> str:
        """One line: the criteria that passed (promotion) or failed (rejection), `most` of them at most."""
        who = f"version {self.candidate_version or '(unregistered)'}"
        if not self.criteria:
            return (f"{who} not promoted: no criterion applies to this task ({self.task or 'unknown task'}); "
                    "set gate.minimums: auto or name metrics evaluate reports, or `mlcycle model promote` it by hand")
        shown = self.criteria if self.promote else self.failed()
        text = "; ".join(_criterion_text(c) for c in shown[:most])
        if len(shown) > most:
            text += f"; and {len(shown) - most} more"
        if self.promote:
            return f"{who} promoted to champion: {len(shown)} {'criterion' if len(shown) == 1 else 'criteria'} passed ({text})"
        return f"{who} not promoted ({text})"

    def table(self) -> pd.DataFrame:
        cols = ["criterion", "value", "limit", "passed"]
        if any(c.get("detail") for c in self.criteria):
            cols.append("detail")
        rows = [{**c, "detail": c.get("detail") or ""} for c in self.criteria]  # no "nan" where none applies
        return pd.DataFrame(rows, columns=cols)

    def metrics(self) -> dict:
        out = {"promoted": self.promote, "criteria_failed": len(self.failed())}
        for c in self.criteria:
            if c["value"] == c["value"]:  # a fairness gap that could not be computed is NaN: no metric
                out[c["criterion"].replace(" ", "_")] = round(float(c["value"]), 6)
        return out


def _criterion_text(c: dict) -> str:
    value = f"{c['value']:.4f}" if c["value"] == c["value"] else "nan"
    return (f"{c['criterion']}: {value} vs {c['limit']:.4f}"
            + (f" ({str(c['detail'])[:200]})" if c.get("detail") else ""))


def champion_limit(metric: str, champion_value: float, params: GateParams) -> tuple[float, str]:
    """(the worst acceptable candidate value, the tolerance in words) against the champion's value."""
    if metric in RELATIVE:
        tol = params.max_relative_drop
        slack = abs(champion_value) * tol
        words = f"within {tol * 100:g}% relative"
    else:
        slack = params.max_drop
        words = f"within {params.max_drop:g} absolute"
    limit = champion_value + slack if metric in LOWER_IS_BETTER else champion_value - slack
    return limit, words


def decide(candidate: dict[str, float], champion: dict[str, float] | None, params: GateParams,
           candidate_version: str | None = None, champion_version: str | None = None, note: str = "",
           fairness: list | None = None, baseline: dict[str, float] | None = None,
           segments: list[dict] | None = None) -> Decision:
    """Check every criterion; the candidate is promoted when all pass (the first model: no champion
    criterion). A decision without any criterion is not promoted.

    `baseline`: the baseline model's metrics on the same holdout (evaluate's `results["baseline"]`);
    with `gate.beat_baseline` the candidate must be strictly better on the gate metric.
    `fairness`: the gaps of the sensitive columns (`mlcycle.fairness.Gap`), checked against
    `params.fairness`; one criterion per bound and column, naming the two groups behind the gap.
    `segments`: a routed model's segments scored by their own model (`stages.segments.gate_rows`),
    checked against `params.max_segment_drop`: one criterion, the worst segment's drop."""
    criteria = []
    skipped = []
    kind = kind_of(candidate)
    task = kind.name
    if params.minimums == "auto":
        minimums, source = dict(kind.minimums), f"auto ({task})"
    else:
        minimums, source = params.minimums, "gate.minimums"
    for key, bounds, ok in (("minimums", minimums, lambda v, lim: v >= lim),
                            ("maximums", params.maximums, lambda v, lim: v <= lim)):
        for m, limit in bounds.items():
            if m not in candidate:
                if m in KNOWN:
                    skipped.append(m)
                    continue
                raise KeyError(f"gate.{key} names '{m}', which evaluate does not report; known: {sorted(candidate)}")
            sign = ">=" if key == "minimums" else "<="
            criteria.append({"criterion": f"{m} {sign} {key[:-1]}", "value": candidate[m], "limit": limit,
                             "passed": bool(ok(candidate[m], limit))})
    if skipped:
        note = (note + "; " if note else "") + f"skipped, not reported for this task: {', '.join(skipped)}"
        if params.minimums != "auto" and not any(c["criterion"].endswith(">= minimum") for c in criteria):
            # every minimum names another task's metric (params copied from the example): the floor of
            # this task applies, so the model is not promoted on no minimum at all
            for m, limit in kind.minimums.items():
                if m in candidate:
                    criteria.append({"criterion": f"{m} >= minimum", "value": candidate[m], "limit": limit,
                                     "passed": bool(candidate[m] >= limit)})
            source = f"auto ({task}), as gate.minimums names no metric of this task"
            note += f"; the {task} floor of gate.minimums: auto applies instead"
    m = primary_metric(candidate) if params.metric == "auto" else params.metric
    if m not in candidate:
        raise KeyError(f"gate.metric '{m}' is not reported by evaluate for this task; known: {sorted(candidate)} (or use auto)")
    if baseline is not None and params.beat_baseline and m in baseline:
        criteria.append({"criterion": f"{m} beats baseline", "value": candidate[m], "limit": baseline[m],
                         "passed": bool(better(m, candidate[m], baseline[m]))})
    if champion is not None:
        limit, words = champion_limit(m, champion[m], params)
        ok = candidate[m] <= limit if m in LOWER_IS_BETTER else candidate[m] >= limit
        criteria.append({"criterion": f"{m} vs champion v{champion_version}", "value": candidate[m], "limit": limit,
                         "passed": bool(ok), "detail": f"{words} of {champion[m]:.4f}"})
    criteria += fairness_criteria(fairness or [], params)
    if segments and params.max_segment_drop is not None:
        criterion, why = segment_criterion(segments, m, params.max_segment_drop)
        criteria += [criterion] if criterion else []
        note = (note + "; " if note else "") + why if why else note
    promote = bool(criteria) and all(c["passed"] for c in criteria)
    return Decision(promote, m, criteria, candidate_version, champion_version, note,
                    value=float(candidate[m]), task=task, minimums=source)


def fairness_criteria(gaps: list, params: GateParams) -> list[dict]:
    """One criterion per `gate.fairness` bound and sensitive column. A gap that could not be
    computed (fewer than two groups of `evaluate.min_group_size` rows) fails: the bound cannot be
    shown to hold; a bound on a metric this task does not report (error gap for a classifier) is
    not applied."""
    out = []
    for metric, limit in params.fairness.bounds().items():
        for g in (g for g in gaps if g.metric == metric):
            key = f"{metric} on {g.column} <= gate.fairness"
            if g.value is None:
                out.append({"criterion": key, "value": float("nan"), "limit": limit, "passed": False,
                            "detail": f"not computed: {g.note}"})
                continue
            detail = (f"group '{g.high_group}' vs '{g.low_group}': {g.part} {g.high:.4f} vs {g.low:.4f}")
            out.append({"criterion": key, "value": g.value, "limit": limit, "passed": bool(g.value <= limit),
                        "detail": detail, "column": g.column, "metric": metric,
                        "groups": [g.high_group, g.low_group]})
    return out


def segment_drop(metric: str, routed: float, global_: float) -> float:
    """How much worse a segment's own model scores than the global model on its rows: absolute for
    scores, a share of the global model's value for errors and losses (RELATIVE)."""
    worse = global_ - routed if metric not in LOWER_IS_BETTER else routed - global_
    return worse / abs(global_) if metric in RELATIVE and global_ else worse


def segment_criterion(segments: list[dict], metric: str, bound: float) -> tuple[dict | None, str]:
    """(the criterion on the worst judged segment, or None when none can be judged; a note on the
    segments left out: too few holdout rows, or the metric not computable on their rows)."""
    judged = [s for s in segments if not s["small"] and s["routed"] == s["routed"] and s["global"] == s["global"]]
    left = [s["segment"] for s in segments if s not in judged]
    why = (f"segments not judged by gate.max_segment_drop (too few holdout rows or {metric} not computable): "
           f"{', '.join(left[:10])}{' ...' if len(left) > 10 else ''}") if left else ""
    if not judged:
        return None, why or "no segment is scored by its own model"
    drops = [(segment_drop(metric, s["routed"], s["global"]), s) for s in judged]
    worst, s = max(drops, key=lambda d: d[0])
    kind = "relative" if metric in RELATIVE else "absolute"
    return {"criterion": f"{metric} segment drop <= gate.max_segment_drop", "value": float(worst), "limit": bound,
            "passed": bool(worst <= bound),
            "detail": (f"worst of {len(judged)} segment model(s): '{s['segment']}' {s['routed']:.4f} vs the global "
                       f"model's {s['global']:.4f} on its {s['rows']:,} holdout rows ({kind})")}, why


def write(decision: Decision, metrics_path: Path, decision_path: Path) -> None:
    """Counts as DVC metrics; the whole decision, every criterion with its value, as JSON."""
    for p in (metrics_path, decision_path):
        p.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(decision.metrics(), indent=2) + "\n")
    decision_path.write_text(json.dumps(document(decision), indent=2, default=str) + "\n")


def document(decision: Decision) -> dict:
    """The whole decision as reports/gate_decision.json holds it (read by the model card)."""
    return {**asdict(decision), "outcome": decision.outcome, "summary": decision.summary()}
