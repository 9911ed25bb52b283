"""The task packages: one per kind of problem, each behind the protocol of `mlcycle.core.tasks`.
A package here is registered by being here (`mlcycle.core.tasks.REGISTRY`); params `task` picks
one. The layer above every other one but the command line: a task uses the framework, the
framework reaches a task only through the registry."""
