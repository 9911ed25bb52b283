"""The task packages: one per kind of problem, each behind the protocol of `mlcycle.core.tasks`
(registered in `mlcycle.core.tasks.REGISTRY`, picked by params `task`). The layer above every other
one but the command line: a task uses the framework, the framework reaches a task only through
the registry."""
