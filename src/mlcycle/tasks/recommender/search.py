"""Task `recommendation`, stage train: a search over the collaborative-filtering hyperparameters.

With `train.search.method` `random` or `optuna`, up to `train.search.trials` candidates of implicit's
ALS (`factors`, `regularization`, `iterations`, `alpha`; ranges in `mlcycle.stages.search.SPACE`,
overridable by `train.search.space`) are each fitted on the training period; the hybrid weight is
chosen for each among `recommend.weights` and the candidate is scored by `recommend.metric` of its
best hybrid on the validation period. The holdout is never seen. `train.search.timeout_minutes` stops
the search from starting new trials (the first always runs); `train.search.seed` seeds the sampler.
Trials run one after the other (implicit's ALS uses every core itself): `engine` and `cv_folds` do
not apply. Popularity and content vectors do not depend on these hyperparameters and are fitted once.

The trials are written to models/search.json in the form of a table search (`search.write`), and each
becomes a nested MLflow run of the train run.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from mlcycle.core import record
from mlcycle.core.config import Params
from mlcycle.core.progress import Progress
from mlcycle.stages import search
from mlcycle.tasks.recommender import recommenders
from mlcycle.tasks.recommender.params import RecommendParams

FAMILY = "als"
NAMES = ("factors", "regularization", "iterations", "alpha")  # config.SEARCHABLE["als"]


@dataclass
class Found:
    """What the search found: the best candidate's params and its fitted models (on train)."""

    rec: RecommendParams  # recommend with the best hyperparameters
    models: recommenders.Recommenders  # fitted on train with them, the best weight set
    weight: float
    tried: pd.DataFrame  # the best candidate's weights on the validation period
    method: str
    trials: list[search.Trial] = field(default_factory=list)
    timed_out: bool = False

    @property
    def best(self) -> search.Trial:
        return max((t for t in self.trials if t.state == "COMPLETE"), key=lambda t: t.score)


def enabled(cfg: Params) -> bool:
    return cfg.train.search.method != "none"


def _suggest(ot, ranges: dict) -> dict:
    return {name: (ot.suggest_int(name, int(low), int(high), log=log) if integer
                   else ot.suggest_float(name, low, high, log=log))
            for name, (low, high, integer, log) in ranges.items()}


def run(base: recommenders.Recommenders, valid: pd.DataFrame, cfg: Params, threads: int = 0) -> Found:
    """Search ALS's hyperparameters on `valid` from `base` (every component fitted on train). Each
    candidate refits ALS only, chooses its hybrid weight and is scored by its best validation metric."""
    s, rec = cfg.train.search, cfg.recommend
    ranges = search.space(cfg.train, FAMILY)
    deadline = time.monotonic() + s.timeout_minutes * 60 if s.timeout_minutes else None
    study = None
    if s.method == "optuna":
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="maximize", sampler=search.sampler(cfg.train.seed))
        candidates = None
    else:
        candidates = search.random_candidates(cfg.train, FAMILY)
    trials: list[search.Trial] = []
    best: tuple | None = None
    timed_out = False
    with Progress(s.trials, "search als", "trials") as bar:
        for number in range(s.trials):
            if deadline is not None and trials and time.monotonic() >= deadline:
                timed_out = True
                break
            ot = study.ask() if study is not None else None
            values = _suggest(ot, ranges) if ot is not None else candidates[number]
            start = search.now_ms()
            cand = rec.model_copy(update=values)
            try:
                models = recommenders.with_cf(base, cand, threads)
                weight, tried = recommenders.choose_weight(models, valid, cand)
                score = float(tried.loc[tried["weight"] == weight, rec.metric].iloc[0])
            except Exception as exc:  # noqa: BLE001 - a candidate that cannot fit is a failed trial
                trials.append(search.Trial(number, FAMILY, values, None, state="FAIL",
                                           error=f"{type(exc).__name__}: {exc}"[:500], start_ms=start, end_ms=search.now_ms()))
                if study is not None:
                    study.tell(ot, state=optuna.trial.TrialState.FAIL)
                bar.update()
                continue
            trials.append(search.Trial(number, FAMILY, {**values, "weight": weight}, score, start_ms=start,
                                       end_ms=search.now_ms()))
            if study is not None:
                study.tell(ot, score)
            if best is None or score > best[0]:
                best = (score, cand, models.with_weight(weight), weight, tried)
            bar.update()
    if best is None:
        from mlcycle.core.errors import DataError

        errors = sorted({t.error for t in trials if t.error})
        raise DataError(f"train.search: no ALS candidate could be fitted: {'; '.join(errors)[:1000]}")
    _, cand, models, weight, tried = best
    return Found(cand, models, weight, tried, s.method, trials, timed_out)


def document(found: Found, metric: str) -> dict:
    """models/search.json (the form `search.write` gives a table search)."""
    best = found.best
    return {"method": found.method, "score": metric, "scored_by": "valid", "cv_folds": None,
            "chosen": {"model": "hybrid", **best.params}, "best_trial": best.number,
            "timed_out": [FAMILY] if found.timed_out else [], "engine": "serial", "cluster": {},
            "weights": found.tried.to_dict("records"), "trials": [asdict(t) for t in found.trials]}


def write(found: Found, path: Path, metric: str) -> None:
    """models/search.json, and each trial as a nested run of the train run (tracking)."""
    doc = document(found, metric)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=float) + "\n")
    record.params({f"selected.{k}": v for k, v in doc["chosen"].items()})
    record.tags({"mlcycle.model_family": "hybrid", "mlcycle.search.method": doc["method"]})
    record.child_runs(search.trial_runs(doc))


def table(found: Found, metric: str) -> pd.DataFrame:
    """The trials, best first (no timings: the report stays the same on a re-run)."""
    rows = [{"trial": t.number, "state": t.state, f"valid_{metric}": None if t.score is None else round(t.score, 5),
             **t.params} for t in found.trials]
    df = pd.DataFrame(rows)
    return df.sort_values(f"valid_{metric}", ascending=False, na_position="last", kind="stable").reset_index(drop=True)
