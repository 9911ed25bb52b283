"""Typed exceptions: expected failures (the CLI prints their message, not a traceback), the
server's client errors (answered as 4xx JSON) and the prediction log's backpressure."""


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


class ReleaseError(MlcycleError):
    """A release command that cannot run (no champion, no candidate, bad evidence)."""


class ReleaseConflict(ReleaseError):
    """A release decision lost a race: another decision or registry move came first (the candidate
    was promoted or rolled back, the champion moved) after the evidence was read. Nothing changed."""

    exit_code = 4


class SimulateError(MlcycleError):
    """The replay cannot run (no time column, too few periods, a period's pipeline failed)."""


class RegistryError(MlcycleError):
    """A registry operation cannot be done (unknown version, no earlier champion...)."""


class RetrainError(MlcycleError):
    """The retraining pipeline failed; the champion is unchanged."""


class ReproduceError(MlcycleError):
    """`mlcycle model reproduce` refuses: the version, its commit, its data or the tracking store is
    missing, or it was trained from a dirty checkout. Nothing was rebuilt."""

    exit_code = 2


class CardError(MlcycleError):
    """A card cannot be built (unknown version, no records)."""


class ExportError(MlcycleError):
    """A fitted model the compiled scoring path cannot take (its family or its preprocessing)."""


class ServeError(MlcycleError):
    """The server cannot start: no champion, an unreadable model, a bad setting."""


class ComputeError(MlcycleError):
    """The Dask cluster cannot be reached or started (compute.scheduler, compute.workers)."""


class ScoreError(MlcycleError):
    """Batch scoring cannot run or finish: no input files, a file unreadable or missing a column,
    too many rejected rows, an output that exists. Nothing is written under the output's name."""


class ClientError(Exception):
    """A bad request: its HTTP status and a JSON body naming the field (and row) and the problem."""

    def __init__(self, status: int, error: str, field_name: str | None, detail: str, row: int | None = None):
        super().__init__(detail)
        self.status, self.error, self.field, self.detail, self.row = status, error, field_name, detail, row

    def body(self, request_id: str | None = None) -> dict:
        out = {"error": self.error, "field": self.field, "detail": self.detail}
        if self.row is not None:
            out["row"] = self.row
        if request_id:
            out["request_id"] = request_id
        return out


class LogFull(Exception):
    """The writer is too far behind (or cannot write): the rows could not be queued in time."""


class TrackingError(MlcycleError):
    """The tracking store or server cannot be reached or refuses the credentials."""


class RecordingError(TrackingError):
    """A stage ran but its MLflow run could not be recorded to the end (the store went away meanwhile)."""


class TeamError(MlcycleError):
    """The local team stack cannot start or stop (a service missing or failing)."""


class MigrateError(MlcycleError):
    """A migration to the team server cannot run (the server already holds the model, a copy failed)."""


class TornLine(UserWarning):
    """A reader skipped a torn or damaged line of a JSON-lines file (a write cut short by a full
    disk or a crash); the warning names the file and the line."""
