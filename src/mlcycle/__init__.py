"""mlcycle: a notebook-first, reproducible machine-learning lifecycle.

The package's folders are its layers, lowest first; a module imports only from its own layer
or lower ones, never upwards, and no import (function-level ones included) closes a cycle
(tests/code/test_layers.py checks both):

- core: config, paths, tables, schema, the feature spec, the one scoring function, errors
- stages: what every task's stages share (ingest, validate, the table profile, the metrics files,
  search records, the report and notebook display)
- lifecycle: the registry, the gate, the audit log, model cards, experiments
- runtime: the runner every notebook stage goes through, tracking, the warm tracking daemon
- serving: the HTTP server, its model holder, request checks and prediction log
- monitoring: drift, the monitor, retraining, data batches, the replay
- tasks: one package per kind of problem (tabular, recommender), with its own stage code, behind the protocol of
  `core.tasks`; the other layers reach a task only through that registry
- cli: the `mlcycle` command

Importing the package does no work: no folders, no tracking URI, no logging set-up.
"""

import importlib
import importlib.abc
import importlib.util
import sys

LAYERS = ("core", "stages", "lifecycle", "runtime", "serving", "monitoring", "tasks", "cli")
__version__ = "0.1.0"

# Models saved before a module moved name their classes by its old path (pickle stores
# `mlcycle.features.RowFeatures`, a recommender's `mlcycle.stages.recommenders.Recommenders`); those
# names resolve to the modules that hold the classes now, so every registered version keeps loading.
MOVED = {
    "mlcycle.features": "mlcycle.core.spec",
    "mlcycle.core.segments": "mlcycle.tasks.tabular.routing",  # a routed model's classes
    "mlcycle.stages.interactions": "mlcycle.tasks.recommender.interactions",
    "mlcycle.stages.interactions_eda": "mlcycle.tasks.recommender.eda",
    "mlcycle.stages.ranking": "mlcycle.tasks.recommender.ranking",
    "mlcycle.stages.recommenders": "mlcycle.tasks.recommender.recommenders",
    "mlcycle.stages.recommend": "mlcycle.tasks.recommender.stages",
    "mlcycle.stages.recommend_model": "mlcycle.tasks.recommender.model",
    "mlcycle.stages.recommend_search": "mlcycle.tasks.recommender.search",
    "mlcycle.monitoring.recmonitor": "mlcycle.tasks.recommender.monitor",
}


class _Moved(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])  # the same module object: one class, not two

    def exec_module(self, module):
        pass


if not any(isinstance(f, _Moved) for f in sys.meta_path):
    sys.meta_path.append(_Moved())
