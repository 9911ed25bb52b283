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
class Task:
    """What a task provides. Hooks left None mean the generic table behaviour applies."""

    name: str
    objectives: tuple[str, ...]  # the data.task values it serves (e.g. classification, regression)
    summary: str  # one line for `mlcycle` help and the docs
    params_section: str | None = None  # its own params.yaml section, if any (checked and logged with its stages)
    # per stage, the params sections its run logs beyond the generic ones (paths.PARAMS_SECTIONS)
    stage_params: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # the module of its monitor (check, summary, takeaways, tables_of, metrics_of, from_file, score,
    # figures), loaded when first used; None: the generic table monitor (monitoring/monitor.py)
    monitor_module: str | None = None
    # the module of what the server adds (ROUTE, SUMMARY, endpoint(ep), NOT_PREDICT, PREDICT_HINT,
    # checked_feedback, feedback_items); None: rows in, predictions out (`POST /predict`)
    serving_module: str | None = None
    # what the task puts in its model card (lifecycle/card.py), as "module:function", loaded when first
    # used: function(paths, cfg, documents) -> {"family", "purpose", "data", "sections", "limitations"}
    # (see `card.collect`); None: the table card (features, fairness, explanations)
    card_sections: str | None = None

    def monitor(self) -> ModuleType | None:
        return importlib.import_module(self.monitor_module) if self.monitor_module else None

    def serving(self) -> ModuleType | None:
        return importlib.import_module(self.serving_module) if self.serving_module else None

    def card(self) -> Callable | None:
        """The function giving the task's model card parts (`card_sections`), or None."""
        if not self.card_sections:
            return None
        module, _, name = self.card_sections.partition(":")
        return getattr(importlib.import_module(module), name)


def get(name: str) -> Task:
    """The registered task `name`; ParamsError listing the registered ones when there is none."""
    if name not in REGISTRY:
        raise ParamsError(f"task: no task named '{name}'; registered tasks: {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[name]).TASK


def all_tasks() -> list[Task]:
    return [get(n) for n in REGISTRY]


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
