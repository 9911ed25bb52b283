"""The promotion gate: does the newly trained model replace the champion?

Criteria come from params `gate`: minimums and maximums per metric, and "not worse than the
current champion by more than `max_drop`" on `gate.metric`, where the champion is re-scored on the
same current holdout (metrics it logged when it was trained are not comparable once data change).
Optional fairness criteria (`gate.fairness`) bound the largest gap between groups of each
`evaluate.sensitive` column (see mlcycle.fairness); a failing one names the column, the metric and
the two groups. A clean rejection is a normal outcome; only errors raise.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from mlcycle.config import GateParams

LOWER_IS_BETTER = {"rmse", "mae", "log_loss", "brier", "ece"}
# what evaluate reports for some task: a criterion on one of these that the current task does not
# report is skipped (and said so); any other name is a typo and an error
KNOWN = {"roc_auc", "pr_auc", "log_loss", "brier", "ece", "f1", "precision", "recall", "accuracy",
         "f1_macro", "balanced_accuracy", "roc_auc_ovr", "rmse", "mae", "r2"}


def primary_metric(candidate: dict[str, float]) -> str:
    """gate.metric `auto`: ROC AUC for binary, log loss for multiclass, RMSE for regression."""
    for m in ("roc_auc", "rmse", "log_loss"):
        if m in candidate:
            return m
    raise KeyError(f"no primary metric among {sorted(candidate)}")


@dataclass
class Decision:
    promote: bool
    metric: str
    criteria: list[dict] = field(default_factory=list)
    candidate_version: str | None = None
    champion_version: str | None = None
    note: str = ""

    @property
    def outcome(self) -> str:
        return "promoted" if self.promote else "rejected"

    def failed(self) -> list[dict]:
        return [c for c in self.criteria if not c["passed"]]

    def summary(self) -> str:
        if self.promote:
            return f"version {self.candidate_version or '(unregistered)'} promoted to champion: every criterion passed"
        why = "; ".join(f"{c['criterion']}: {c['value']:.4f} vs {c['limit']:.4f}"
                        + (f" ({c['detail']})" if c.get("detail") else "") for c in self.failed())
        return f"version {self.candidate_version or '(unregistered)'} not promoted ({why})"

    def table(self) -> pd.DataFrame:
        cols = ["criterion", "value", "limit", "passed"]
        if any(c.get("detail") for c in self.criteria):
            cols.append("detail")
        return pd.DataFrame(self.criteria, columns=cols)

    def metrics(self) -> dict:
        out = {"promoted": self.promote, "criteria_failed": len(self.failed())}
        for c in self.criteria:
            if c["value"] == c["value"]:  # a fairness gap that could not be computed is NaN: no metric
                out[c["criterion"].replace(" ", "_")] = round(float(c["value"]), 6)
        return out


def better(metric: str, a: float, b: float) -> bool:
    return a < b if metric in LOWER_IS_BETTER else a > b


def decide(candidate: dict[str, float], champion: dict[str, float] | None, params: GateParams,
           candidate_version: str | None = None, champion_version: str | None = None, note: str = "",
           fairness: list | None = None) -> Decision:
    """Check every criterion; the candidate is promoted when all pass (the first model: minimums only).

    `fairness`: the gaps of the sensitive columns (`mlcycle.fairness.Gap`), checked against
    `params.fairness`; one criterion per bound and column, naming the two groups behind the gap."""
    criteria = []
    skipped = []
    for key, bounds, ok in (("minimums", params.minimums, lambda v, lim: v >= lim),
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
    m = primary_metric(candidate) if params.metric == "auto" else params.metric
    if m not in candidate:
        raise KeyError(f"gate.metric '{m}' is not reported by evaluate for this task; known: {sorted(candidate)} (or use auto)")
    if champion is not None:
        if m in LOWER_IS_BETTER:
            limit = champion[m] + params.max_drop
            ok = candidate[m] <= limit
        else:
            limit = champion[m] - params.max_drop
            ok = candidate[m] >= limit
        criteria.append({"criterion": f"{m} vs champion v{champion_version}", "value": candidate[m], "limit": limit, "passed": ok})
    criteria += fairness_criteria(fairness or [], params)
    promote = all(c["passed"] for c in criteria)
    return Decision(promote, m, criteria, candidate_version, champion_version, note)


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


def write(decision: Decision, metrics_path: Path, decision_path: Path) -> None:
    """Counts as DVC metrics; the whole decision, every criterion with its value, as JSON."""
    for p in (metrics_path, decision_path):
        p.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(decision.metrics(), indent=2) + "\n")
    decision_path.write_text(json.dumps({**asdict(decision), "outcome": decision.outcome,
                                         "summary": decision.summary()}, indent=2, default=str) + "\n")
