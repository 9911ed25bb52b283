"""mlcycle: a notebook-first, reproducible machine-learning lifecycle.

The package's folders are its layers, lowest first; a module imports only from its own layer
or lower ones, never upwards, and no import (function-level ones included) closes a cycle
(tests/code/test_layers.py checks both):

- core: config, paths, tables, schema, the feature spec, the one scoring function, errors
- stages: one module per DVC stage (ingest, validate, eda, features, train, evaluate, report)
- lifecycle: the registry, the gate, the audit log, model cards, experiments
- runtime: the runner every notebook stage goes through, tracking, the warm tracking daemon
- serving: the HTTP server, its model holder, request checks and prediction log
- monitoring: drift, the monitor, retraining, data batches, the replay
- cli: the `mlcycle` command

Importing the package does no work: no folders, no tracking URI, no logging set-up.
"""

LAYERS = ("core", "stages", "lifecycle", "runtime", "serving", "monitoring", "cli")
__version__ = "0.1.0"
