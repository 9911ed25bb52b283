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
