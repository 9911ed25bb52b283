"""Model selection for the `train` stage: which model family and which hyperparameters.

`train.model` names a family or `auto` (try every family); `train.search.method` chooses how
hyperparameters are found:

- `none`: the values in params. With `model: auto` each family is fitted once on the train split
  and the best validation score wins.
- `random` (scikit-learn's ParameterSampler) or `optuna` (TPE sampler with a median pruner): up to
  `trials` candidates per family, each scored by the mean of `cv_folds` cross-validation folds
  inside the training rows (train + valid; time-ordered folds when the data has a time column,
  shuffled stratified folds otherwise). The holdout is never seen. `timeout_minutes` stops a
  family's search from starting new trials.

`train.search.engine: dask` (the default) runs the trials as tasks on the Dask cluster of params
`compute` (`core/compute.py`: a local cluster started for the search, or a scheduler's address),
the training rows sent to every worker once. Random search draws the same candidates as the serial
one, so its trials and choice are the same. Optuna's study lives on the scheduler
(`optuna_integration.dask.DaskStorage`): each task loads it, asks for one trial (its own TPE
sampler seeded with `seed + task`), reports to the shared pruner and records the result; the
candidates depend on which trials finished before each ask, so a parallel Optuna search does not
repeat the serial one trial for trial (`engine: serial` does that). Each trial stays a nested
MLflow run, recorded by mlcycle from the returned trials.

The result is a `TrainParams` for `train.fit` plus a record of every trial, written to
`models/search.json`; the tracking hook turns each trial into a nested MLflow run of the train run.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from mlcycle.core import record, scoring
from mlcycle.core.config import MODEL_FAMILIES, SEARCHABLE, ComputeParams, TrainParams
from mlcycle.core.errors import DataError
from mlcycle.core.progress import Progress
from mlcycle.core.spec import FeatureSpec
from mlcycle.stages.search import (  # noqa: F401 (the records: tabular callers read them here)
    SPACE,
    Selection,
    Trial,
    now_ms,
    random_candidates,
    read,
    sampler,
    space,
    table,
    trial_runs,
    write,
)
from mlcycle.tasks.tabular.train import build_pipeline, encode_label, score_fn, staged_best


def folds(n_rows: int, y: np.ndarray, spec: FeatureSpec, n_folds: int, seed: int):
    """(train_idx, valid_idx) pairs inside the training rows; time-ordered when there is a time column."""
    from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

    X_dummy = np.zeros((n_rows, 1))
    if spec.time_column:
        return list(TimeSeriesSplit(n_splits=n_folds).split(X_dummy))
    if spec.task == "classification" and np.bincount(y).min() >= n_folds:
        return list(StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(X_dummy, y))
    return list(KFold(n_folds, shuffle=True, random_state=seed).split(X_dummy))


def _candidate(params: TrainParams, family: str, values: dict) -> TrainParams:
    return params.model_copy(update={"model": family, "search": params.search, **values})


def cv_score(X: pd.DataFrame, y: np.ndarray, spec: FeatureSpec, params: TrainParams, splits, score,
             report=None) -> list[float]:
    """Fold scores of one candidate. Boosting stops early on a slice of each fold's training rows, so
    a trial costs what it needs; `report(i, mean_so_far)` lets a pruner stop a poor trial."""

    scores = []
    for i, (tr, va) in enumerate(splits):
        pipe = build_pipeline(spec, params)
        if params.model == "hist_gradient_boosting":
            pipe.set_params(model__early_stopping=True, model__n_iter_no_change=20, model__validation_fraction=0.1)
        pipe.fit(X.iloc[tr], y[tr])
        y_va = y[va]
        if spec.task == "classification" and len(np.unique(y_va)) < 2:
            raise DataError(f"search: cross-validation fold {i + 1} holds a single class; use fewer cv_folds")
        scores.append(float(score(y_va, scoring.scores(pipe, X.iloc[va], spec.task))))
        if report is not None:
            report(i, float(np.mean(scores)))
    return scores


def _valid_selection(train, valid, spec: FeatureSpec, params: TrainParams, score) -> list[Trial]:
    """`model: auto` without a search: each family with the params' values, scored on the valid split."""

    (X_tr, y_tr), (X_va, y_va) = train, valid
    trials = []
    for number, family in enumerate(MODEL_FAMILIES):
        cand = _candidate(params, family, {})
        start = now_ms()
        pipe = build_pipeline(spec, cand).fit(X_tr, y_tr)
        if family == "hist_gradient_boosting":
            _, pred = staged_best(pipe, X_va, y_va, spec.task, score)
        else:
            pred = scoring.scores(pipe, X_va, spec.task)
        values = {n: getattr(cand, n) for n in SEARCHABLE[family]}
        trials.append(Trial(number, family, values, float(score(y_va, pred)), start_ms=start, end_ms=now_ms()))
    return trials


def _random(X, y, spec, params, family, splits, score, first: int) -> tuple[list[Trial], bool]:
    s = params.search
    deadline = time.monotonic() + s.timeout_minutes * 60 if s.timeout_minutes else None
    trials, timed_out = [], False
    with Progress(s.trials, f"search {family}", "trials") as bar:
        for k, values in enumerate(random_candidates(params, family)):
            if deadline is not None and trials and time.monotonic() >= deadline:  # the first trial always runs
                timed_out = True
                break
            trials.append(_run_trial(first + k, family, values, X, y, spec, params, splits, score))
            bar.update()
    return trials, timed_out


def _run_trial(number, family, values, X, y, spec, params, splits, score, report=None) -> Trial:
    start = now_ms()
    try:
        folds_ = cv_score(X, y, spec, _candidate(params, family, values), splits, score, report)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - a candidate that cannot fit is a failed trial, not a failed stage
        if type(exc).__name__ == "TrialPruned":  # optuna's pruner stopping the trial
            raise
        return Trial(number, family, values, None, state="FAIL", error=f"{type(exc).__name__}: {exc}"[:500],
                     start_ms=start, end_ms=now_ms())
    return Trial(number, family, values, float(np.mean(folds_)), folds_, start_ms=start, end_ms=now_ms())


def _objective(rng: dict, family: str, X, y, spec, params, splits, score, first: int, trials: list):
    """The Optuna objective of one family: suggest, cross-validate with pruning, record the trial."""
    import optuna

    def objective(ot: optuna.Trial) -> float:
        values = {}
        for name, (low, high, integer, log) in rng.items():
            values[name] = (ot.suggest_int(name, int(low), int(high), log=log) if integer
                            else ot.suggest_float(name, low, high, log=log))
        start = now_ms()

        def report(i, mean):
            ot.report(mean, i)
            if ot.should_prune():
                raise optuna.TrialPruned()

        try:
            trial = _run_trial(first + ot.number, family, values, X, y, spec, params, splits, score, report)
        except optuna.TrialPruned:
            trials.append(Trial(first + ot.number, family, values, None, state="PRUNED", start_ms=start, end_ms=now_ms()))
            raise
        trials.append(trial)
        if trial.state == "FAIL":
            raise optuna.TrialPruned(trial.error)  # recorded as FAIL above; optuna just moves on
        return trial.score

    return objective


def _pruner():
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)


def _optuna(X, y, spec, params, family, splits, score, first: int) -> tuple[list[Trial], bool]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = params.search
    trials: list[Trial] = []
    study = optuna.create_study(direction="maximize", sampler=sampler(params.seed), pruner=_pruner())
    timeout = s.timeout_minutes * 60 if s.timeout_minutes else None
    with Progress(s.trials, f"search {family}", "trials") as bar:
        study.optimize(_objective(space(params, family), family, X, y, spec, params, splits, score, first, trials),
                       n_trials=s.trials, timeout=timeout, catch=(), callbacks=[lambda _s, _t: bar.update()])
    return trials, len(study.trials) < s.trials


def _optuna_task(study_name: str, storage, task: int, family: str, X, y, spec, params, splits, score,
                 first: int) -> Trial | None:
    """One Optuna trial on a worker: the shared study (on the scheduler), a sampler of its own."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler(params.seed + task),
                              pruner=_pruner())
    trials: list[Trial] = []
    study.optimize(_objective(space(params, family), family, X, y, spec, params, splits, score, first, trials),
                   n_trials=1, catch=())
    return trials[0] if trials else None


def _on_cluster(dc, X, y, spec, params, family, splits, score, first: int, method: str) -> tuple[list[Trial], bool]:
    """A family's trials as tasks on the cluster; those not finished at the time limit are cancelled
    (the first to finish always counts)."""
    from distributed import wait

    s = params.search
    Xf, yf = dc.scatter([X, y], broadcast=True)
    if method == "random":
        futures = [dc.submit(_run_trial, first + k, family, values, Xf, yf, spec, params, splits, score, pure=False)
                   for k, values in enumerate(random_candidates(params, family))]
    else:
        import optuna
        from optuna_integration.dask import DaskStorage

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = DaskStorage(client=dc)
        study = optuna.create_study(storage=storage, direction="maximize", sampler=sampler(params.seed),
                                    pruner=_pruner())
        futures = [dc.submit(_optuna_task, study.study_name, storage, k, family, Xf, yf, spec, params, splits, score,
                             first, pure=False) for k in range(s.trials)]
    timed_out = False
    with Progress(len(futures), f"search {family}", "trials") as bar:
        for f in futures:
            f.add_done_callback(lambda done: bar.update() if done.status == "finished" else None)
        if s.timeout_minutes:
            done, pending = wait(futures, timeout=s.timeout_minutes * 60)
            if not done:
                done, pending = wait(futures, return_when="FIRST_COMPLETED")
            if pending:
                dc.cancel(list(pending))
                timed_out = True
            futures = [f for f in futures if f in done]
        trials = [t for t in dc.gather(futures) if t is not None]
    return sorted(trials, key=lambda t: t.number), timed_out


def select(train: tuple[pd.DataFrame, pd.Series], valid: tuple[pd.DataFrame, pd.Series],
           spec: FeatureSpec, params: TrainParams, compute: ComputeParams | None = None) -> Selection:
    """Choose the model family and hyperparameters as `params.model` and `params.search` say; a
    search with `engine: dask` runs on the cluster of `compute` (default: a local one)."""

    n_classes = len(spec.classes) if spec.task == "classification" else 0
    name, score = score_fn(spec.task, n_classes)
    method = params.search.method
    families = list(MODEL_FAMILIES) if params.model == "auto" else [params.model]
    if method == "none":
        if params.model != "auto":
            return Selection(params, "none", name, "none")
        y_tr, y_va = encode_label(train[1], spec), encode_label(valid[1], spec)
        trials = _valid_selection((train[0], y_tr), (valid[0], y_va), spec, params, score)
        sel = Selection(params, "none", name, "valid", trials)
    else:
        X = pd.concat([train[0], valid[0]])
        y = encode_label(pd.concat([train[1], valid[1]]), spec)
        splits = folds(len(X), y, spec, params.search.cv_folds, params.seed)
        sel = Selection(params, method, name, "cv")
        if params.search.engine == "dask":
            from mlcycle.core import compute as dask_compute

            with dask_compute.cluster(compute or ComputeParams()) as dc:
                sel.cluster = dask_compute.describe(dc)
                record.tags(sel.cluster)
                for family in families:
                    trials, timed_out = _on_cluster(dc, X, y, spec, params, family, splits, score, len(sel.trials),
                                                    method)
                    sel.trials += trials
                    if timed_out:
                        sel.timed_out.append(family)
        else:
            run = _optuna if method == "optuna" else _random
            for family in families:
                trials, timed_out = run(X, y, spec, params, family, splits, score, first=len(sel.trials))
                sel.trials += trials
                if timed_out:
                    sel.timed_out.append(family)
    best = sel.best
    if best is None:
        errors = sorted({t.error for t in sel.trials if t.error}) or ["every trial was pruned"]
        raise DataError(f"train.search: no candidate could be fitted: {'; '.join(errors)[:1000]}")
    sel.params = _candidate(params, best.model, best.params)
    return sel
