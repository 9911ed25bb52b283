"""Typed exceptions for expected failures: the CLI prints their message, not a traceback."""


class MlcycleError(Exception):
    """An expected failure with a message a user can act on."""

    exit_code = 1


class ParamsError(MlcycleError):
    """params.yaml has an unknown key, a wrong type or a missing value."""

    exit_code = 2


class DataError(MlcycleError):
    """The input data cannot be used: missing file or column, unreadable, too few rows."""


class StageError(MlcycleError):
    """A pipeline stage's notebook failed."""


class MonitorError(MlcycleError):
    """Monitoring cannot run (no champion, reference data not found, ...)."""


class SimulateError(MlcycleError):
    """The replay cannot run (no time column, too few periods, a period's pipeline failed)."""


class RegistryError(MlcycleError):
    """A registry operation cannot be done (unknown version, no earlier champion...)."""


class RetrainError(MlcycleError):
    """The retraining pipeline failed; the champion is unchanged."""


class CardError(MlcycleError):
    """A card cannot be built (unknown version, no records)."""
