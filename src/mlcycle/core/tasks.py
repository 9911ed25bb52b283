"""Tasks: the kinds of problem the pipeline solves, each a package under `mlcycle/tasks/<name>/`
with its own notebooks under `notebooks/<name>/` (docs/tasks.md).

A task package defines `TASK`, a `Task`: its name, the `data.task` values it serves and the hooks
the generic layers call. The stages, serving and monitoring ask the registry for the active task
(`active(params)`, `for_objective(meta["task"])`) and call its hooks; they never compare a task's
name. Adding a task is its folder, its notebooks and one line in `REGISTRY`.

The registry imports a task's package when it is first asked for (`importlib`), so this module,
low in the layers, never imports the task packages, which sit above every other layer.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

from mlcycle.core.errors import ParamsError

# task name -> its package (each defines TASK); the name is also its notebooks' folder
REGISTRY: dict[str, str] = {
    "tabular": "mlcycle.tasks.tabular",
    "recommender": "mlcycle.tasks.recommender",
}


@dataclass(frozen=True)
class GateKind:
    """One kind of model a task trains, as the promotion gate (lifecycle/gate.py) tells it from the
    metrics evaluate reports, with the gate's defaults for it."""

    name: str  # the gate decision's `task` (reports/gate_decision.json, "auto (<name>)"), e.g. "binary classification"
    tells: tuple[str, ...]  # evaluate reports one of these metrics for this kind (and for no kind tried before it)
    primary: str  # `gate.metric: auto`: the metric compared with the baseline and the champion
    minimums: dict[str, float]  # `gate.minimums: auto`: the floor a model with real signal passes


@dataclass(frozen=True)
class Task:
    """What a task provides: its name, what it serves, and the hooks the other layers call."""

    name: str
    objectives: tuple[str, ...]  # the data.task values it serves (e.g. classification, regression)
    summary: str  # one line for `mlcycle` help and the docs
    params_section: str | None = None  # its own params.yaml section, if any (checked and logged with its stages)
    # per stage, the params sections its run logs beyond the generic ones (paths.PARAMS_SECTIONS)
    stage_params: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # the module of its monitor (check, summary, takeaways, tables_of, metrics_of, and for the replay
    # from_file, score, figures), loaded when first used (monitoring/monitor.py calls it)
    monitor_module: str = ""
    # the module of what the server adds (ROUTE, SUMMARY, endpoint(ep), NOT_PREDICT, PREDICT_HINT,
    # checked_feedback, feedback_items); None: rows in, predictions out (`POST /predict`)
    serving_module: str | None = None
    # what the task puts in its model card (lifecycle/card.py), as "module:function", loaded when first
    # used: function(paths, cfg, documents) -> {"family", "purpose", "data", "sections", "limitations"}
    # (see `card.collect`); None: the table card (features, fairness, explanations)
    card_sections: str | None = None
    # the kinds of model it trains as the promotion gate tells them from evaluate's metrics, with their
    # `gate.minimums: auto` and `gate.metric: auto` (lifecycle/gate.py asks every registered task, in order)
    gate_kinds: tuple[GateKind, ...] = ()
    # the data.task values whose scikit-learn models answer class probabilities (`POST /predict`
    # `probabilities`, the score histogram's buckets: serving/model.py `Served.classifier`)
    probabilities: tuple[str, ...] = ()
    # other hooks by name, each "module:function", loaded when first used (`hook(name)`):
    #   "compiled": function(model_dir, pipeline) -> (fast scorer or None, verdict), the compiled
    #       scoring path the server and batch scoring use when registration proved it equal
    #   "reproduce": function(tree, original_dir) -> dict, the holdout predictions of a rebuilt
    #       version compared with the original's (`mlcycle reproduce`)
    #   "load": function(uri) -> the model of a registered version (`models:/<name>/<version>`) that
    #       `registry.load_version` gives (re-scoring the champion); none: the scikit-learn pipeline
    #   "feedback_label": function(value, meta, where) -> a `POST /feedback` / `mlcycle feedback` label
    #       as stored, a ClientError(422) naming `where` when the served model cannot have it (a task
    #       without its own `checked_feedback`: serving/feedback.py); none: the label as sent
    #   "live_metric": function(meta, gate_metric) -> the metric (one of monitoring/release.py
    #       SUPPORTED) a release compares candidate and champion on, on labelled live rows
    #   "live_scores": function(frame, meta) -> (y, s), the arrays that metric takes from the
    #       prediction log's rows with their labels (`score`, `prediction`, `label`); a task without
    #       "live_metric" and "live_scores" judges no live rows in a release (it waits, saying so)
    hooks: dict[str, str] = field(default_factory=dict)

    def monitor(self) -> ModuleType:
        return importlib.import_module(self.monitor_module)

    def serving(self) -> ModuleType | None:
        return importlib.import_module(self.serving_module) if self.serving_module else None

    def card(self) -> Callable | None:
        """The function giving the task's model card parts (`card_sections`), or None."""
        return _function(self.card_sections) if self.card_sections else None

    def hook(self, name: str) -> Callable | None:
        """The task's function for hook `name` (see `hooks`), or None when it has none."""
        return _function(self.hooks[name]) if name in self.hooks else None


def _function(ref: str) -> Callable:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def get(name: str) -> Task:
    """The registered task `name`; ParamsError listing the registered ones when there is none."""
    if name not in REGISTRY:
        raise ParamsError(f"task: no task named '{name}'; registered tasks: {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[name]).TASK


def all_tasks() -> list[Task]:
    return [get(n) for n in REGISTRY]


def answers_probabilities(objective: str | None) -> bool:
    """Whether a scikit-learn model of `data.task` `objective` answers class probabilities (its task's
    `probabilities`; older models without a task: the tabular task's)."""
    return objective is not None and objective in for_objective(objective).probabilities


def name_for(objective: str | None) -> str | None:
    """The task serving `data.task` value `objective` (None when no task serves it)."""
    for t in all_tasks():
        if objective in t.objectives:
            return t.name
    return None


def for_objective(objective: str | None, default: str = "tabular") -> Task:
    """The task of a model's or a params file's `data.task` value (older models: the tabular task)."""
    return get(name_for(objective) or default)


def active(params) -> Task:
    """The task a workspace's params run: `task`, which serves its `data.task`."""
    return get(params.task)
