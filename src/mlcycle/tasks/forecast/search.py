"""Task `forecast`, stage train: a search over the global model's lags and settings.

With `train.search.method` `random` or `optuna`, up to `train.search.trials` candidates of the global
family's settings are each scored by their mean `forecasting.metric` (MASE by default) over the
windows of the rolling-origin backtest the family comparison uses (`backtest.run`); the holdout is
never seen. Searched (`choices`):

- `max_iter` and `learning_rate`: ranges in `mlcycle.stages.search.SPACE`, overridable by
  `train.search.space`;
- `lags`, `windows` and `difference`: chosen among sets derived from the season s: the lags of
  params.yaml, 1-3 and s, 1-6 and s, 1-12, and 1, s, 2s; the windows of params.yaml, none, [s] and
  [3, s]; the series differenced or not.

Lower is better: the best trial has the lowest score (models/search.json says `lower_is_better`).
`train.search.engine: dask` runs the candidates as tasks on the Dask cluster of params `compute`
(`core/compute.py`), the series sent to every worker once and as many candidates at a time as the
cluster has threads; random search draws the same candidates as the serial one, so its trials are
the same. Optuna's study stays in this process (ask and tell, minimising): a candidate is asked for
when a thread is free, so a parallel Optuna search does not repeat the serial one trial for trial.
`train.search.timeout_minutes` stops the search from starting new candidates (the first always runs;
those running finish); `train.seed` seeds the sampler; `cv_folds` does not apply.

The trials are written to models/search.json in the form of a table search (`stages.search.write`),
the family comparison beside them, and each trial becomes a nested MLflow run of the train run.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mlcycle.core import record
from mlcycle.core.config import ComputeParams, Params
from mlcycle.core.errors import DataError
from mlcycle.core.progress import Progress
from mlcycle.stages import search
from mlcycle.tasks.forecast import backtest, families
from mlcycle.tasks.forecast.params import ForecastParams
from mlcycle.tasks.forecast.series import lags_of, windows_of

FAMILY = "global"
CHOSEN = ("lags", "windows", "difference")  # chosen among sets (`choices`), not drawn from a range


@dataclass
class Found:
    """What the search found: the global model's best settings and every trial."""

    fc: ForecastParams  # forecasting with the best candidate's settings
    method: str
    metric: str
    engine: str
    trials: list[search.Trial] = field(default_factory=list)
    timed_out: bool = False
    cluster: dict = field(default_factory=dict)  # where the trials ran (engine dask): scheduler, workers, dashboard

    @property
    def best(self) -> search.Trial | None:
        done = [t for t in self.trials if t.state == "COMPLETE" and t.score is not None]
        return min(done, key=lambda t: t.score) if done else None


def enabled(cfg: Params) -> bool:
    return cfg.train.search.method != "none"


def choices(fc: ForecastParams, season: int) -> dict[str, list]:
    """The sets `lags`, `windows` and `difference` are chosen among, params.yaml's own first."""
    s = season
    lags = [lags_of(fc, s), [1, 2, 3, *([s] if s > 3 else [])], [1, 2, 3, 4, 5, 6, *([s] if s > 6 else [])],
            list(range(1, 13)), *([[1, s, 2 * s]] if s >= 2 else [])]
    windows = [windows_of(fc, s), [], *([[s], [3, s]] if s >= 2 else [[3], [6]])]
    return {"lags": unique(lags), "windows": unique(windows), "difference": [fc.difference, not fc.difference]}


def unique(sets: list[list[int]]) -> list[list[int]]:
    out: list[list[int]] = []
    for values in sets:
        values = sorted(set(values))
        if values not in out:
            out.append(values)
    return out


def label(values) -> str | bool:
    """A choice as Optuna's categorical takes it: "1,2,3,12", "none" for an empty set, a bool as is."""
    if isinstance(values, bool):
        return values
    return ",".join(str(v) for v in values) or "none"


def candidates(cfg: Params, season: int) -> list[dict]:
    """The candidates random search draws (the same for both engines): the ranges through the shared
    sampler, the choices from a generator seeded alike."""
    sets = choices(cfg.forecasting, season)
    rng = np.random.default_rng(cfg.train.seed)
    out = []
    for values in search.random_candidates(cfg.train, FAMILY):
        picked = {name: sets[name][int(rng.integers(len(sets[name])))] for name in CHOSEN}
        out.append({**picked, **values})
    return out


def candidate(fc: ForecastParams, values: dict) -> ForecastParams:
    """`fc` with a candidate's settings."""
    return fc.model_copy(update=values)


def window_scores(frame: pd.DataFrame, fc: ForecastParams, freq: str, season: int) -> list[float]:
    """The global model with `fc`'s settings on the rolling-origin backtest before the holdout: per
    window (1 = the latest), the mean of `fc.metric` over series."""
    makers = {FAMILY: lambda hist: families.fitted(FAMILY, hist, freq, season, fc)}
    table, _ = backtest.run(frame, makers, fc.horizon, fc.step(), fc.backtest_windows, season, fc.max_history)
    return [float(v) for v in table.groupby("window")[fc.metric].mean().sort_index()]


def run_trial(number: int, values: dict, frame: pd.DataFrame, fc: ForecastParams, freq: str, season: int) -> search.Trial:
    """One candidate scored by its mean over the backtest windows; one that cannot fit is a failed trial."""
    start = search.now_ms()
    try:
        scores = window_scores(frame, candidate(fc, values), freq, season)
        if not scores or not np.isfinite(scores).all():
            raise ValueError(f"the backtest's {fc.metric} is not finite in every window: {scores}")
    except Exception as exc:  # noqa: BLE001 - a candidate that cannot fit is a failed trial, not a failed stage
        return search.Trial(number, FAMILY, values, None, state="FAIL", error=f"{type(exc).__name__}: {exc}"[:500],
                            start_ms=start, end_ms=search.now_ms())
    return search.Trial(number, FAMILY, values, float(np.mean(scores)), scores, start_ms=start, end_ms=search.now_ms())


class Proposals:
    """The candidates one after the other: random search's drawn list, or Optuna's ask and tell."""

    def __init__(self, cfg: Params, season: int):
        self.study, self.asked = None, {}
        if cfg.train.search.method == "optuna":
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            self.study = optuna.create_study(direction="minimize", sampler=search.sampler(cfg.train.seed))
            self.ranges = search.space(cfg.train, FAMILY)
            sets = choices(cfg.forecasting, season)
            self.sets = {name: {label(v): v for v in sets[name]} for name in CHOSEN}
        else:
            self.drawn = candidates(cfg, season)

    def ask(self, number: int) -> dict:
        if self.study is None:
            return self.drawn[number]
        ot = self.study.ask()
        self.asked[number] = ot
        values = {name: self.sets[name][ot.suggest_categorical(name, list(self.sets[name]))] for name in CHOSEN}
        for name, (low, high, integer, log) in self.ranges.items():
            values[name] = (ot.suggest_int(name, int(low), int(high), log=log) if integer
                            else ot.suggest_float(name, low, high, log=log))
        return values

    def tell(self, trial: search.Trial) -> None:
        if self.study is None:
            return
        import optuna

        ot = self.asked.pop(trial.number)
        if trial.state == "COMPLETE":
            self.study.tell(ot, trial.score)
        else:
            self.study.tell(ot, state=optuna.trial.TrialState.FAIL)


def _serial(frame, fc, freq, season, proposals: Proposals, n: int, deadline) -> tuple[list[search.Trial], bool]:
    trials: list[search.Trial] = []
    with Progress(n, f"search {FAMILY}", "trials") as bar:
        for number in range(n):
            if deadline is not None and trials and time.monotonic() >= deadline:  # the first trial always runs
                return trials, True
            trial = run_trial(number, proposals.ask(number), frame, fc, freq, season)
            proposals.tell(trial)
            trials.append(trial)
            bar.update()
    return trials, False


def _on_cluster(dc, frame, fc, freq, season, proposals: Proposals, n: int, deadline) -> tuple[list[search.Trial], bool]:
    """The candidates as tasks on the cluster, as many at a time as it has threads; after the time
    limit no new one starts and those running finish."""
    from distributed import as_completed

    data = dc.scatter(frame, broadcast=True)
    slots = max(1, sum(dc.nthreads().values()))
    running = as_completed()
    trials: list[search.Trial] = []
    started, timed_out = 0, False

    def start() -> None:
        nonlocal started
        running.add(dc.submit(run_trial, started, proposals.ask(started), data, fc, freq, season, pure=False))
        started += 1

    with Progress(n, f"search {FAMILY}", "trials") as bar:
        while started < min(n, slots):
            start()
        for done in running:
            trial = done.result()
            proposals.tell(trial)
            trials.append(trial)
            bar.update()
            if started < n:
                if deadline is not None and time.monotonic() >= deadline:
                    timed_out = True
                else:
                    start()
    return sorted(trials, key=lambda t: t.number), timed_out


def tune(frame: pd.DataFrame, info: dict, cfg: Params, compute: ComputeParams | None = None) -> tuple[ForecastParams, Found | None]:
    """(forecasting with the global model's best settings, the search) as `train.search` says; without
    a search (method none), params.yaml's forecasting and None. `frame` is the features stage's
    series (the holdout included: only the backtest windows before it are scored); `info` its
    features.json (step and season); `compute` the cluster of engine dask (default: params compute)."""
    fc = cfg.forecasting
    if not enabled(cfg):
        return fc, None
    s = cfg.train.search
    freq, season = info["freq"], int(info["season_length"])
    proposals = Proposals(cfg, season)
    deadline = time.monotonic() + s.timeout_minutes * 60 if s.timeout_minutes else None
    found = Found(fc, s.method, fc.metric, s.engine)
    if s.engine == "dask":
        from mlcycle.core import compute as dask_compute

        with dask_compute.cluster(compute or cfg.compute) as dc:
            found.cluster = dask_compute.describe(dc)
            record.tags(found.cluster)
            found.trials, found.timed_out = _on_cluster(dc, frame, fc, freq, season, proposals, s.trials, deadline)
    else:
        found.trials, found.timed_out = _serial(frame, fc, freq, season, proposals, s.trials, deadline)
    best = found.best
    if best is None:
        errors = sorted({t.error for t in found.trials if t.error})
        raise DataError(f"train.search: no candidate of the global model could be fitted: {'; '.join(errors)[:1000]}")
    found.fc = candidate(fc, best.params)
    return found.fc, found


def document(found: Found, summary: pd.DataFrame, chosen: str) -> dict:
    """models/search.json (the form `stages.search.write` gives a table search): the search of the
    global model's settings, then every family's backtest per window with them (`summary`, as
    `backtest.summary` gives it) and the family `chosen`."""
    best = found.best
    return {"method": found.method, "score": found.metric, "scored_by": "backtest", "lower_is_better": True,
            "cv_folds": None, "backtest_windows": found.fc.backtest_windows,
            "chosen": {"model": chosen, **(best.params if chosen == FAMILY else {})},
            "best_trial": best.number, "global": best.params,
            "timed_out": [FAMILY] if found.timed_out else [], "engine": found.engine, "cluster": found.cluster,
            "families": summary.astype({"window": "str"}).to_dict("records"),
            "trials": [asdict(t) for t in found.trials]}


def write(found: Found, path: Path, summary: pd.DataFrame, chosen: str) -> None:
    """models/search.json, and each trial as a nested run of the train run (tracking)."""
    doc = document(found, summary, chosen)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=float) + "\n")
    record.params({f"selected.{k}": v for k, v in doc["chosen"].items()})
    record.tags({"mlcycle.model_family": chosen, "mlcycle.search.method": doc["method"]})
    record.child_runs(search.trial_runs(doc))


def table(found: Found) -> pd.DataFrame:
    """The trials, best (lowest) first; no timings, so the report stays the same on a re-run."""
    column = f"backtest_{found.metric}"
    rows = [{"trial": t.number, "state": t.state, column: None if t.score is None else round(t.score, 5),
             **{k: (label(v) if isinstance(v, list) else v) for k, v in t.params.items()}} for t in found.trials]
    return pd.DataFrame(rows).sort_values(column, na_position="last", kind="stable").reset_index(drop=True)


def takeaway(found: Found) -> str:
    """One line for the train report: what the search tried and the settings it kept."""
    best = found.best
    p = best.params
    return (f"- Search ({found.method}, {len(found.trials)} candidates{', stopped by the time limit' if found.timed_out else ''}): "
            f"the global model's best backtest {found.metric} {best.score:.4f} with lags {label(p['lags'])}, windows "
            f"{label(p['windows'])}, {'differenced' if p['difference'] else 'not differenced'}, max_iter {p['max_iter']}, "
            f"learning rate {p['learning_rate']:.3g}.")
