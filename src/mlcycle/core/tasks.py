"""Tasks: the kinds of problem the pipeline solves, each a package under `mlcycle/tasks/<name>/`
with its own notebooks under `notebooks/<name>/` (docs/tasks.md).

A task package defines `TASK`, a `Task`: its name, the `data.task` values it serves and the hooks
the generic layers call. The stages, serving and monitoring ask the registry for the active task
(`active(params)`, `for_objective(meta["task"])`) and call its hooks; they never compare a task's
name. Adding a task is its folder and its notebooks: the registry finds every package under
`mlcycle/tasks/` (and any a separate distribution declares under the entry-point group
`mlcycle.tasks`, `name = "package.module"`), nothing lists them.

The registry imports a task's package when it is first asked for (`importlib`), so this module,
low in the layers, never imports the task packages, which sit above every other layer.

The shared stages (validate, the table profile, the label) read a target by its kind, not by the
task: `target_of(data.task)` is one of `TARGET_KINDS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from mlcycle.core.errors import ParamsError

ENTRY_POINTS = "mlcycle.tasks"  # the entry-point group of tasks another distribution provides

# how the shared stages read a target (`Task.targets`): "classes", labels (numbers too, or numbers made
# two classes by data.threshold), stratified, their counts profiled; "numbers", a value predicted as
# it is, its distribution profiled; "ratings", an interaction's rating or signal, checked by the task
TARGET_KINDS = ("classes", "numbers", "ratings")


def _discover() -> dict[str, str]:
    """Task name -> its package: each package under mlcycle/tasks/ (the folder's name), then those of
    the entry-point group, sorted by name. Nothing is imported."""
    folder = Path(__file__).resolve().parent.parent / "tasks"
    found = {d.name: f"mlcycle.tasks.{d.name}" for d in sorted(folder.iterdir())
             if (d / "__init__.py").exists() and not d.name.startswith("_")}
    for ep in entry_points(group=ENTRY_POINTS):
        found.setdefault(ep.name, ep.value)
    return dict(sorted(found.items()))


# task name -> its package (each defines TASK); the name is also its notebooks' folder
REGISTRY: dict[str, str] = _discover()


@dataclass(frozen=True)
class GateKind:
    """One kind of model a task trains, as the promotion gate (lifecycle/gate.py) tells it from the
    metrics evaluate reports, with the gate's defaults for it."""

    name: str  # the gate decision's `task` (reports/gate_decision.json, "auto (<name>)"), e.g. "binary classification"
    tells: tuple[str, ...]  # evaluate reports one of these metrics for this kind (and for no kind tried before it)
    primary: str  # `gate.metric: auto`: the metric compared with the baseline and the champion
    minimums: dict[str, float]  # `gate.minimums: auto`: the floor a model with real signal passes
    # metrics evaluate reports for this kind beyond the shared ones (core/stats.py GATE_METRICS): the
    # gate may name them (gate.metric, gate.minimums, gate.maximums), e.g. a forecast's "mase"
    metrics: tuple[str, ...] = ()
    # of those (and of the shared ones), the metrics where lower is better (core/stats.py LOWER_IS_BETTER)
    lower_is_better: tuple[str, ...] = ()


@dataclass(frozen=True)
class Task:
    """What a task provides: its name, what it serves, and the hooks the other layers call."""

    name: str
    objectives: tuple[str, ...]  # the data.task values it serves (e.g. classification, regression)
    summary: str  # one line for `mlcycle` help and the docs
    # per objective, how the shared stages read its target (one of TARGET_KINDS)
    targets: dict[str, str] = field(default_factory=dict)
    # the task of models and params that name none (models registered before tasks were packages) and
    # of `mlcycle init` on a table: one registered task says so
    default: bool = False
    feedback_noun: str = "labels"  # what `mlcycle monitoring feedback` stored, as it reports it ("42 labels")
    params_section: str | None = None  # its own params.yaml section, if any (checked and logged with its stages)
    # the pydantic model of that section, "module:Class" (a core.section.Section): params.yaml's
    # `<params_section>` is checked with it (null unless this task runs)
    params_model: str | None = None
    # what each key of that section means, "module:NAME" of a dict {"section": the comment above the
    # section in params.yaml, "keys": {dotted key: its one line}} (core/paramsdoc.py merges it); None:
    # the section's lines are in core/paramsdoc.py
    params_doc: str | None = None
    # per stage, the params sections its run logs beyond the generic ones (paths.PARAMS_SECTIONS)
    stage_params: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # the module of its monitor (check, summary, takeaways, tables_of, metrics_of, and for the replay
    # from_file, score, figures and REPLAY {"columns": the keys figures gives, "bar": (the one drawn per
    # period, what it is, its monitor threshold key)}), loaded when first used (monitoring/monitor.py calls it)
    monitor_module: str = ""
    # a batch of new rows joins the data even when the monitor calls for no retraining (`mlcycle
    # monitoring retrain`): a forecast's observations are the history the next forecast and the next
    # training start from, so none may be left out
    keeps_batches: bool = False
    # the module of what the server adds (ROUTE, SUMMARY, endpoint(ep), NOT_PREDICT, PREDICT_HINT,
    # checked_feedback, feedback_items, FEEDBACK_ENTRY, FEEDBACK_EXAMPLE; optionally GET_ROUTES {path:
    # summary} with get_endpoints(ep) {path: endpoint}); None: rows in, predictions out (`POST /predict`)
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
    # the release modes (serve.release.mode) its serving can route a candidate in: "canary" (the
    # candidate answers a share of callers), "shadow" (it scores the champion's rows); a mode not
    # listed is refused by `mlcycle serving start` and `mlcycle release` (serving/release.py `refusal`)
    releases: tuple[str, ...] = ("canary", "shadow")
    # other hooks by name, each "module:function", loaded when first used (`hook(name)`):
    #   "compiled": function(model_dir, pipeline) -> (fast scorer or None, verdict), the compiled
    #       scoring path the server and batch scoring use when registration proved it equal
    #   "reproduce": function(tree, original_dir) -> dict, the holdout predictions of a rebuilt
    #       version compared with the original's (`mlcycle model reproduce`)
    #   "load": function(uri) -> the model of a registered version (`models:/<name>/<version>`) that
    #       `registry.load_version` gives (re-scoring the champion); none: the scikit-learn pipeline
    #   "feedback_label": function(value, meta, where) -> a `POST /feedback` / `mlcycle monitoring feedback` label
    #       as stored, a ClientError(422) naming `where` when the served model cannot have it (a task
    #       without its own `checked_feedback`: serving/feedback.py); none: the label as sent
    #   "live_metric": function(meta, gate_metric) -> the metric (one of monitoring/release.py
    #       SUPPORTED) a release compares candidate and champion on, on labelled live rows
    #   "live_scores": function(frame, meta) -> (y, s), the arrays that metric takes from the
    #       prediction log's rows with their labels (`score`, `prediction`, `label`); a task without
    #       "live_metric" and "live_scores" judges no live rows in a release (it waits, saying so)
    #   "check_params": function(params) -> None, raising ValueError: what the task needs of the
    #       whole params file when it runs (core/config.py calls it after the sections are checked)
    #   "index": function(paths, params, read) -> {"headline": metric names, "baseline": what the
    #       baseline is, "rows": the data behind the holdout, "model": the model}: the index page's
    #       headline section (stages/report.py; `read(path)` gives a JSON file's content or None)
    #   "sample": function(table, params, frac) -> the share `frac` of the table's rows the replay
    #       (`mlcycle monitoring simulate --sample-frac`) keeps; none: rows drawn at random
    #   "infer_objective": function(target column) -> the data.task value `mlcycle init` writes
    #   "infer_params": function(table, data section) -> ({section: values}, notes): what else
    #       `mlcycle init --data ... --task <objective>` writes for the task (its own section), raising
    #       DataError naming what to set when it cannot tell
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

    def section_model(self) -> type | None:
        """The pydantic model of its params section (`params_model`), or None."""
        return _function(self.params_model) if self.params_model else None

    def section_doc(self) -> dict:
        """What its params section's keys mean (`params_doc`): {"section": text, "keys": {...}}, or {}."""
        return dict(_function(self.params_doc)) if self.params_doc else {}


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


def default() -> Task:
    """The task that says it is the default (`Task.default`)."""
    found = [t for t in all_tasks() if t.default]
    if len(found) != 1:
        raise ParamsError(f"one registered task must be the default, found {len(found)}: "
                          f"{', '.join(t.name for t in found) or 'none'}")
    return found[0]


def objectives() -> tuple[str, ...]:
    """Every data.task value a registered task serves, the default task's first."""
    first = default()
    return (*first.objectives, *(o for t in all_tasks() if t is not first for o in t.objectives))


def target_of(objective: str | None) -> str | None:
    """How the shared stages read the target of data.task `objective` (one of TARGET_KINDS), or None
    when no task serves it."""
    for t in all_tasks():
        if objective in t.objectives:
            return t.targets.get(objective)
    return None


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


def for_objective(objective: str | None) -> Task:
    """The task of a model's or a params file's `data.task` value (older models: the default task)."""
    name = name_for(objective)
    return get(name) if name else default()


def active(params) -> Task:
    """The task a workspace's params run: `task`, which serves its `data.task`."""
    return get(params.task)
