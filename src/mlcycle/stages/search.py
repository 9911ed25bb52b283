"""Model search records every task shares: a trial, a selection, the searched ranges of a family
(`SPACE`, overridable by `train.search.space`), the random candidates and the Optuna sampler, and
models/search.json (the method, the chosen candidate and every trial; tracking turns each trial into
a nested MLflow run of the train run). How a task scores its candidates is its own
(`mlcycle.tasks.tabular.search`: cross-validated scikit-learn pipelines; `mlcycle.tasks.recommender.search`:
implicit's ALS on the validation period; `mlcycle.tasks.forecast.search`: the global model on the
rolling-origin backtest, lower is better)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from mlcycle.core import record
from mlcycle.core.config import SEARCHABLE, TrainParams

# name -> (low, high, integer, log scale): the default ranges, overridable by train.search.space
SPACE: dict[str, tuple[float, float, bool, bool]] = {
    "learning_rate": (0.02, 0.3, False, True),
    "max_leaf_nodes": (15, 127, True, True),
    "min_samples_leaf": (5, 200, True, True),
    "l2_regularization": (1e-3, 10.0, False, True),
    "n_estimators": (50, 400, True, False),
    "max_depth": (4, 30, True, False),
    "C": (1e-3, 100.0, False, True),
    # family "als" (mlcycle.tasks.recommender.search): implicit's ALS
    "factors": (8, 256, True, True),
    "regularization": (1e-3, 1.0, False, True),
    "iterations": (5, 40, True, False),
    "alpha": (1.0, 100.0, False, True),
    # family "global" (mlcycle.tasks.forecast.search): the forecast's gradient-boosted model
    "max_iter": (50, 500, True, True),
}


@dataclass
class Trial:
    number: int
    model: str
    params: dict
    score: float | None  # mean over folds (or the validation score when method is none), higher is better (a forecast: lower, its search.json says lower_is_better)
    fold_scores: list[float] = field(default_factory=list)
    state: str = "COMPLETE"  # COMPLETE | PRUNED | FAIL
    error: str = ""
    start_ms: int = 0
    end_ms: int = 0


@dataclass
class Selection:
    params: TrainParams  # what train.fit uses: a concrete family with the chosen hyperparameters
    method: str
    score_name: str
    scored_by: str  # "cv" (mean of folds inside the training rows), "valid" or "none"
    trials: list[Trial] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)  # families whose search hit the time limit
    cluster: dict = field(default_factory=dict)  # where the trials ran (engine dask): scheduler, workers, dashboard

    @property
    def best(self) -> Trial | None:
        done = [t for t in self.trials if t.state == "COMPLETE" and t.score is not None]
        return max(done, key=lambda t: t.score) if done else None

    def metrics(self) -> dict:
        best = self.best
        out = {"trials": len(self.trials)}
        if best is not None:
            out[f"best_{self.scored_by}_{self.score_name}"] = round(best.score, 6)
        return out

    def chosen(self) -> dict:
        """The family and the searched hyperparameters of the chosen candidate."""
        names = SEARCHABLE[self.params.model]
        return {"model": self.params.model, **{n: getattr(self.params, n) for n in names}}


def space(params: TrainParams, family: str) -> dict[str, tuple[float, float, bool, bool]]:
    """The searched ranges of one family: defaults with train.search.space overrides."""
    out = {}
    for name in SEARCHABLE[family]:
        low, high, integer, log = SPACE[name]
        if name in params.search.space:
            low, high = params.search.space[name]
            if integer:
                low, high = int(round(low)), int(round(high))
            log = log and low > 0
        out[name] = (low, high, integer, log)
    return out


def now_ms() -> int:
    return int(time.time() * 1000)


def sampler(seed: int):
    import optuna

    return optuna.samplers.TPESampler(seed=seed)


def random_candidates(params: TrainParams, family: str) -> list[dict]:
    """The candidates random search draws (the same for both engines)."""
    from scipy.stats import loguniform, randint, uniform
    from sklearn.model_selection import ParameterSampler

    dists, ranges = {}, space(params, family)
    for name, (low, high, integer, log) in ranges.items():
        if integer:
            dists[name] = randint(int(low), int(high) + 1)
        else:
            dists[name] = loguniform(low, high) if log else uniform(low, high - low)
    return [{n: (int(round(v)) if ranges[n][2] else float(v)) for n, v in values.items()}
            for values in ParameterSampler(dists, n_iter=params.search.trials, random_state=params.seed)]


def table(sel: Selection) -> pd.DataFrame:
    """Trials as a table, best first (for the train report); without trials, the values used."""
    if not sel.trials:
        return pd.DataFrame([{"trial": "-", "model": sel.params.model, "state": "values from params.yaml",
                              **sel.chosen()}]).drop(columns="model").rename(columns={"state": "source"})
    rows = [{"trial": t.number, "model": t.model, "state": t.state,
             f"{sel.scored_by}_{sel.score_name}": None if t.score is None else round(t.score, 5),
             **t.params} for t in sel.trials]  # no timings: the report stays identical on a re-run
    df = pd.DataFrame(rows)
    if len(df):
        df = df.sort_values(df.columns[3], ascending=False, na_position="last", kind="stable")
    return df.reset_index(drop=True)


def write(sel: Selection, path: Path) -> None:
    """models/search.json: the method, the chosen candidate and every trial (read by tracking)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    best = sel.best
    doc = {
        "method": sel.method, "score": sel.score_name, "scored_by": sel.scored_by,
        "cv_folds": sel.params.search.cv_folds if sel.scored_by == "cv" else None,
        "chosen": sel.chosen(), "best_trial": None if best is None else best.number,
        "timed_out": sel.timed_out, "engine": sel.params.search.engine if sel.scored_by == "cv" else None,
        "cluster": sel.cluster, "trials": [asdict(t) for t in sel.trials],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    record.params({f"selected.{k}": v for k, v in doc["chosen"].items()})
    record.tags({"mlcycle.model_family": doc["chosen"]["model"], "mlcycle.search.method": doc["method"]})
    record.child_runs(trial_runs(doc))


def trial_runs(doc: dict) -> list[dict]:
    """Each trial of a search document as a nested run for tracking (core/record.py `child_runs`)."""
    metric = f"{doc['scored_by']}_{doc['score']}"
    runs = []
    for t in doc["trials"]:
        tags = {"mlcycle.stage": "train.search", "mlcycle.trial": str(t["number"]),
                "mlcycle.trial.state": t["state"], "mlcycle.search.method": doc["method"],
                "mlcycle.best_trial": str(t["number"] == doc["best_trial"]).lower()}
        if t["error"]:
            tags["mlcycle.error"] = t["error"]
        metrics = [[f"fold_{metric}", v, i] for i, v in enumerate(t["fold_scores"])]
        if t["score"] is not None:
            metrics.append([metric, t["score"], 0])
        runs.append({"name": f"trial {t['number']} {t['model']}", "tags": tags, "metrics": metrics,
                     "params": {"model": t["model"], **t["params"]}, "start_ms": t["start_ms"],
                     "end_ms": t["end_ms"], "status": t["state"]})
    return runs


def read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None
