"""Typed parameters: `params.yaml` parsed and checked before any work starts.

Every section of params.yaml is a pydantic model that forbids unknown keys and is strict about
types, so a typo or a wrong type fails in the first second with the key's dotted name, e.g.
``params.yaml: train.learnig_rate: unknown key (did you mean 'learning_rate'?)``.
"""

from __future__ import annotations

import datetime as dt
import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from mlcycle.core import tasks
from mlcycle.core.errors import ParamsError
from mlcycle.core.paths import find_root
from mlcycle.core.section import (  # the sections' base (a task's own section uses it too)
    Section,
    Share,
)
from mlcycle.core.stats import GATE_METRICS, RANKING_METRICS  # noqa: F401 (metric names: defined in core/stats.py)

CALENDAR_PARTS = ("year", "month", "day_of_week", "day_of_year", "hour")

# params.yaml is YAML: unquoted Yes/No/On/Off/True/False are booleans (a label "Yes" needs quotes)
BOOL_HINT = ("YAML reads unquoted Yes/No/On/Off/True/False as booleans; quote the label, "
             'e.g. positive_class: "Yes"')




# `off` unquoted is YAML 1.1's false: PyYAML reads it so after a YAML 1.2 writer (`dvc exp run -S`)
# drops the quotes params.yaml had; an option that has an "off" value takes false for it.
def _off(v: Any) -> Any:
    return "off" if v is False else v


Off = BeforeValidator(_off)
HookRef = Annotated[str, Field(pattern=r"^[^:]+\.py:[A-Za-z_][A-Za-z0-9_]*$")]  # "path/to/module.py:function"


class IngestStep(Section):
    """An optional step that writes raw tables (an example's download or export): `hook(params)`
    returns {name: DataFrame}; each is written to `<outputs>/<name>.parquet` (see mlcycle.plugins)."""

    hook: HookRef
    outputs: str  # folder the tables are written to, relative to the workspace root (a DVC output)
    params: dict[str, Any] = {}  # handed to the hook as they are


# the data.task values the registered tasks serve (e.g. classification, regression, recommendation)
Objective = Literal[tasks.objectives()]


class DataParams(Section):
    path: str
    format: Literal["auto", "csv", "parquet"] = "auto"
    target: str
    task: Objective  # what is predicted: a value one of the registered tasks serves (core/tasks.py `objectives`)
    threshold: float | None = None
    positive_class: str | int | bool | None = None
    time_column: str | None = None
    # how the time column is read: a datetime column as it is; text in ISO 8601 (2023-03-15,
    # 2023-03-15T10:00:00Z) as it is; other text needs time_format (strftime, e.g. "%d/%m/%Y"), numbers
    # time_unit (s, ms, us, ns or D since 1970-01-01) or a time_format such as "%Y%m%d"
    time_format: str | None = None
    time_unit: Literal["s", "ms", "us", "ns", "D"] | None = None
    # the time zone the data's times are local to (e.g. America/New_York): split.test_start is a date in it, the
    # model card and the features report show times in it (stored times without an offset count as UTC);
    # null: as read (UTC when they carry an offset)
    timezone: str | None = None
    id_columns: list[str] = []
    drop_columns: list[str] = []
    required_columns: list[str] = []
    pii_columns: list[str] = []  # personal data: dropped or hashed as the table is read
    pii_mode: Literal["drop", "hash"] = "drop"
    pii_features: bool = False  # true: hashed pii_columns may be model features (false: never)
    aside_columns: list[str] = []  # kept in the processed tables for evaluation slices, never features
    text_columns: list[str] = []  # free text (reviews, notes): words become features (train.text), never categories

    @model_validator(mode="after")
    def _consistent(self) -> DataParams:
        if self.threshold is not None and tasks.target_of(self.task) != "classes":
            raise ValueError(f"threshold turns a number into two classes; data.task {self.task} predicts no classes: "
                             "set it to null")
        if self.target in self.drop_columns or self.target in self.id_columns:
            raise ValueError(f"target '{self.target}' is also listed in drop_columns or id_columns")
        if self.target in self.pii_columns:
            raise ValueError(f"target '{self.target}' is listed in pii_columns; personal data cannot be the target")
        if self.target in self.aside_columns:
            raise ValueError(f"target '{self.target}' cannot be an aside column; list other columns in aside_columns")
        if self.target in self.text_columns:
            raise ValueError(f"target '{self.target}' cannot be a text column; list input columns in text_columns")
        for role in ("id_columns", "drop_columns", "aside_columns", "pii_columns"):
            both = sorted(set(self.text_columns) & set(getattr(self, role)))
            if both:
                raise ValueError(f"{both} listed in both text_columns and {role}; a column has one role: "
                                 f"remove it from one of the two lists")
        if self.time_format and self.time_unit:
            raise ValueError("set time_format (text or numbers like 20230315) or time_unit (numbers since 1970), not both")
        if (self.time_format or self.time_unit) and not self.time_column:
            raise ValueError("time_format / time_unit are set but time_column is null")
        if self.timezone:
            import zoneinfo

            try:
                zoneinfo.ZoneInfo(self.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"timezone '{self.timezone}' is not a time zone name such as America/New_York or UTC") from None
        return self


class ValidateParams(Section):
    min_rows: Annotated[int, Field(ge=1)] = 100
    max_null_share: Share = 0.05
    max_target_null_share: Share = 0.05
    # the schema file (null: schemas/<data file stem>.yaml); `mlcycle data schema` proposes one
    schema_file: str | None = Field(None, alias="schema")
    null_share_warn_rise: Share = 0.01  # a null share above the schema's null_share by more warns
    max_new_category_share: Share = 0.01  # rows with values not in a column's list: up to this warns, above stops
    pii_scan: Annotated[Literal["warn", "refuse", "off"], Off] = "warn"  # text columns that look like e-mails, phones, card numbers
    chunk_rows: Annotated[int, Field(ge=1)] = 250_000  # `mlcycle data add` reads a batch in parts of this many rows

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


class EdaParams(Section):
    sample_rows: Annotated[int, Field(ge=0)] = 100_000
    top_categories: Annotated[int, Field(ge=1)] = 12
    max_numeric_plots: Annotated[int, Field(ge=1)] = 16
    seed: int = 42


class EnrichParams(Section):
    """An optional function adding columns from other tables or other rows (see mlcycle.plugins):
    `hook(table, tables, params)` returns the table with new columns. The columns it adds are model
    inputs that callers of the served model send too (they need data only available at prediction time)."""

    hook: HookRef | None = None  # "path/to/module.py:function"; null: no enrichment
    tables: dict[str, str] = {}  # name -> file (CSV or Parquet) the hook reads; each a DVC dependency
    params: dict[str, Any] = {}  # handed to the hook as they are

    @model_validator(mode="after")
    def _tables_need_hook(self) -> EnrichParams:
        if (self.tables or self.params) and not self.hook:
            raise ValueError("tables / params are set but hook is null; name the function that reads them")
        return self


class FeaturesParams(Section):
    # parts of data.time_column turned into features (inside the model: clients send the time itself);
    # parts that are constant in the data are left out
    calendar: list[Literal["year", "month", "day_of_week", "day_of_year", "hour"]] = [
        "month",
        "day_of_week",
        "hour",
    ]
    enrich: EnrichParams = EnrichParams()


class SplitParams(Section):
    test_start: str | None = None
    test_size: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    valid_size: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.15
    seed: int = 42

    @model_validator(mode="after")
    def _date(self) -> SplitParams:
        if self.test_start is not None:
            try:
                dt.date.fromisoformat(self.test_start[:10])
            except ValueError:
                raise ValueError(
                    f"test_start '{self.test_start}' is not an ISO date such as 2013-11-01"
                ) from None
        return self


MODEL_FAMILIES = ("hist_gradient_boosting", "random_forest", "linear")
FAMILY_SETTINGS = {  # the train settings each model family reads (tasks/tabular/train.py `estimator`); the rest apply to all
    "hist_gradient_boosting": ("learning_rate", "max_iter", "max_leaf_nodes", "min_samples_leaf", "l2_regularization",
                               "max_depth"),
    "random_forest": ("n_estimators", "max_depth", "min_samples_leaf"),
    "linear": ("C",),
}
SEARCHABLE = {  # hyperparameters a search may vary, per model family (see mlcycle.search)
    "hist_gradient_boosting": ("learning_rate", "max_leaf_nodes", "min_samples_leaf", "l2_regularization"),
    "random_forest": ("n_estimators", "max_depth", "min_samples_leaf"),
    "linear": ("C",),
    "als": ("factors", "regularization", "iterations", "alpha"),  # task recommendation: the CF component (section recommend)
    "global": ("max_iter", "learning_rate"),  # task forecast: the global model (section forecasting); lags, windows, difference: choices
}


class SearchParams(Section):
    method: Literal["none", "random", "optuna"] = "none"
    engine: Literal["dask", "serial"] = "dask"  # dask: trials run in parallel on the cluster of params compute
    trials: Annotated[int, Field(ge=1)] = 20  # per model family
    cv_folds: Annotated[int, Field(ge=2, le=20)] = 3
    timeout_minutes: Annotated[float, Field(gt=0.0)] | None = None  # per model family; null: no limit
    space: dict[str, Annotated[list[float], Field(min_length=2, max_length=2)]] = {}  # name -> [low, high]

    @model_validator(mode="after")
    def _space(self) -> SearchParams:
        known = sorted({n for names in SEARCHABLE.values() for n in names})
        for name, (low, high) in self.space.items():
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ValueError(f"space: '{name}' cannot be searched{hint}; searchable: {', '.join(known)}")
            if not low < high:
                raise ValueError(f"space: {name}: low {low} must be below high {high}")
        return self


class TextParams(Section):
    """How the words of data.text_columns become features (tasks/tabular/train.py `text_step`): a
    TF-IDF over a bounded vocabulary, per column; tree models get its `svd_components` leading
    directions (TruncatedSVD, a dense input), the linear model the sparse TF-IDF itself."""

    max_features: Annotated[int, Field(ge=10, le=1_000_000)] = 20_000  # vocabulary per text column at most (the most frequent terms)
    ngram_max: Annotated[int, Field(ge=1, le=3)] = 2  # terms are words (1) or runs of up to this many words
    min_df: Annotated[int, Field(ge=1)] = 2  # a term in fewer training rows than this is left out
    lowercase: bool = True  # case folded before counting
    svd_components: Annotated[int, Field(ge=1, le=1000)] = 100  # tree models: dense components per text column


class TrainParams(Section):
    model: Literal["auto", "hist_gradient_boosting", "random_forest", "linear"] = "hist_gradient_boosting"
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.05
    max_iter: Annotated[int, Field(ge=1)] = 400
    max_leaf_nodes: Annotated[int, Field(ge=2)] = 31
    min_samples_leaf: Annotated[int, Field(ge=1)] = 40
    l2_regularization: Annotated[float, Field(ge=0.0)] = 1.0
    n_estimators: Annotated[int, Field(ge=1)] = 300
    max_depth: Annotated[int, Field(ge=1)] | None = None
    C: Annotated[float, Field(gt=0.0)] = 1.0
    max_categories: Annotated[int, Field(ge=2, le=250)] = 60
    threshold: Literal["auto"] | Annotated[float, Field(gt=0.0, lt=1.0)] = "auto"
    baseline_columns: list[str] = []
    search: SearchParams = SearchParams()
    text: TextParams = TextParams()  # data.text_columns: vocabulary and size of the text features
    segment_by: list[str] = []  # one model per value of these input columns, routed with the global model ([]: one model)
    min_segment_rows: Annotated[int, Field(ge=10)] = 2000  # fewer train + valid rows: the segment is scored by the global model
    seed: int = 42

    @model_validator(mode="after")
    def _segments(self) -> TrainParams:
        dup = sorted({c for c in self.segment_by if self.segment_by.count(c) > 1})
        if dup:
            raise ValueError(f"segment_by: {dup} listed more than once")
        return self


class EvaluateParams(Section):
    calibration_bins: Annotated[int, Field(ge=2, le=50)] = 10
    slices: list[str] = []  # columns of the holdout table whose groups get their own metrics
    sensitive: list[str] = []  # columns whose group gaps the gate's fairness criteria bound
    min_group_size: Annotated[int, Field(ge=1)] = 100  # smaller groups are marked "small", left out of gaps
    bootstrap: Annotated[int, Field(ge=0, le=5000)] = 200  # resamples for per-group intervals (0: none)
    explain_rows: Annotated[int, Field(ge=10)] = 5000  # holdout rows sampled for permutation importance
    pdp_features: Annotated[int, Field(ge=0, le=10)] = 3  # partial-dependence plots for the top features
    intended_use: str = "intended_use.md"  # short user-edited file quoted by the model card
    seed: int = 42

    @model_validator(mode="after")
    def _columns(self) -> EvaluateParams:
        for key in ("slices", "sensitive"):
            cols = getattr(self, key)
            dup = sorted({c for c in cols if cols.count(c) > 1})
            if dup:
                raise ValueError(f"{key}: {dup} listed more than once")
        return self


class TrackingParams(Section):
    enabled: bool = True
    uri: str | None = None  # null: $MLFLOW_TRACKING_URI, else SQLite under the workspace's mlruns/
    experiment: str = "mlcycle"
    model_name: str | None = None  # null: derived from data.path and data.target (`_derived_names`, paramsdoc)
    # a warm tracking process (mlcycle.trackd) serves the stages; it exits after this many idle
    # minutes. 0: every stage forks a fresh tracking process (and pays mlflow's imports)
    daemon_idle_minutes: Annotated[float, Field(ge=0.0, le=1440.0)] = 15.0
    # the MLflow UI's address as a reader opens it (`make ui`: http://127.0.0.1:5000); the report
    # index links each stage's run there. null: no links
    ui_url: str | None = None

    @model_validator(mode="after")
    def _no_secret(self):
        from urllib.parse import urlsplit

        try:
            has_password = bool(self.uri and urlsplit(self.uri).password)
        except ValueError:
            has_password = False
        if self.ui_url is not None and not self.ui_url.startswith(("http://", "https://")):
            raise ValueError(f"tracking.ui_url '{self.ui_url}' is not an http(s) address; give the MLflow UI's "
                             "address as a browser opens it, e.g. http://127.0.0.1:5000, or null")
        if has_password:
            raise ValueError("tracking.uri holds a password: params.yaml is committed; give the URI in "
                             "MLFLOW_TRACKING_URI (or the password in PGPASSWORD, MLFLOW_TRACKING_PASSWORD)")
        return self


class FairnessParams(Section):
    """Bounds on the largest gap between groups of each `evaluate.sensitive` column (null: off)."""

    max_demographic_parity_difference: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    max_equalized_odds_difference: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    max_error_gap: Annotated[float, Field(ge=0.0)] | None = None  # regression: MAE gap, target units

    def bounds(self) -> dict[str, float]:
        """metric name -> bound, for the criteria that are on."""
        names = {"max_demographic_parity_difference": "demographic_parity_difference",
                 "max_equalized_odds_difference": "equalized_odds_difference",
                 "max_error_gap": "error_gap"}
        return {m: getattr(self, k) for k, m in names.items() if getattr(self, k) is not None}


class GateParams(Section):
    metric: str = "auto"  # compared with the champion re-scored on the same holdout; auto: by task
    # metric -> lowest acceptable value; auto: a floor by task (each task's `gate_kinds`, lifecycle/gate.py `auto_minimums`)
    minimums: Literal["auto"] | dict[str, float] = "auto"
    maximums: dict[str, float] = {}  # metric -> highest acceptable value (rmse, log_loss, ...)
    beat_baseline: bool = True  # the model must score better than the baseline on `metric`
    max_drop: Annotated[float, Field(ge=0.0)] = 0.005  # worse than the champion tolerated: scores (roc_auc, r2, ...), absolute
    max_relative_drop: Annotated[float, Field(ge=0.0)] = 0.01  # errors (rmse, mae, log_loss, brier): share of the champion's
    # a routed model (train.segment_by): how far a segment's own model may fall below the global model
    # on that segment's holdout rows, on `metric` (absolute for scores, a share for errors); null: not checked
    max_segment_drop: Annotated[float, Field(ge=0.0)] | None = 0.02

    @model_validator(mode="after")
    def _metric_names(self) -> GateParams:
        named = [("metric", self.metric)] if self.metric != "auto" else []
        for key in ("minimums", "maximums"):
            bounds = getattr(self, key)
            named += [(key, m) for m in (bounds if isinstance(bounds, dict) else {})]
        for key, m in named:
            if m not in GATE_METRICS:
                close = difflib.get_close_matches(m, GATE_METRICS, n=2)
                hint = (f"did you mean {' or '.join(repr(c) for c in close)}?" if close
                        else f"evaluate reports: {', '.join(GATE_METRICS)}")
                raise ValueError(f"{key}: '{m}' is not a metric evaluate reports ({hint})")
        return self
    fairness: FairnessParams = FairnessParams()  # bounds on group gaps of evaluate.sensitive columns


class ReportParams(Section):
    show_code: bool = False
    title: str | None = None  # null: from data.path and data.target


class ServeReleaseParams(Section):
    """A candidate served beside the champion (src/mlcycle/serving/release.py): canary or shadow."""

    mode: Annotated[Literal["off", "canary", "shadow"], Off] = "off"  # canary: `share` of entities answered by the candidate; shadow: scored, never answered
    candidate: str = "challenger"  # the alias of the candidate version (same registered model)
    share: Annotated[float, Field(ge=0.0, le=1.0)] = 0.1  # canary: share of routing keys answered by the candidate
    key: str | None = None  # routing key: this input column (per row); null: the header, else the request id
    header: str = "X-Route-Key"  # routing key header (used when `key` is null or the column is missing)


class ServeParams(Section):
    """`mlcycle serving start`: the prediction server (src/mlcycle/serving/); CLI flags override these."""

    model_uri: str | None = None  # null: models:/<tracking.model_name>@champion
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    max_rows: Annotated[int, Field(ge=1)] = 1000  # rows per request at most
    max_body_mb: Annotated[float, Field(gt=0.0)] = 8.0  # request body size at most
    max_text_chars: Annotated[int, Field(ge=1)] = 100_000  # characters of one text value at most
    body_timeout_seconds: Annotated[float, Field(gt=0.0)] = 30.0  # a request body not complete by then: 408
    not_null: Literal["auto"] | list[str] = "auto"  # columns refusing null; auto: data.required_columns
    reload_seconds: Annotated[float, Field(gt=0.0)] = 10.0  # how often the alias is checked
    log_dir: str = "data/predictions"  # prediction log, relative to the workspace root
    log_max_rows: Annotated[int, Field(ge=1)] = 100_000  # rows per Parquet part at most
    log_roll_seconds: Annotated[float, Field(gt=0.0)] = 60.0  # a part is closed after this long
    log_queue_rows: Annotated[int, Field(ge=1)] = 200_000  # rows waiting for the writer at most
    log_queue_mb: Annotated[float, Field(gt=0.0)] = 64.0  # bytes of rows waiting for the writer at most
    token_env: str = "MLCYCLE_SERVE_TOKEN"  # environment variable holding the bearer token
    log_fallback_dir: str = "data/predictions-fallback"  # parts spilled here when log_dir cannot be written
    log_failure: Literal["refuse", "serve"] = "refuse"  # log unwritable: refuse answers 503; serve keeps scoring (logged)
    ranges: Annotated[Literal["warn", "refuse", "off"], Off] = "warn"  # values outside the schema's min/max: log, 422, or no check
    compiled: bool = True  # score through the compiled form proven equal at registration; false: the pipeline
    release: ServeReleaseParams = ServeReleaseParams()


class ReleaseParams(Section):
    """`mlcycle release`: when live evidence promotes the candidate or rolls it back (src/mlcycle/monitoring/release.py)."""

    url: str | None = None  # the server whose /metrics is read; null: http://<serve.host>:<serve.port>
    min_labelled_rows: Annotated[int, Field(ge=10)] = 500  # labelled rows per version before the gate metric decides
    min_requests: Annotated[int, Field(ge=1)] = 100  # requests answered by the candidate before error and latency are judged
    max_error_ratio: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01  # candidate 5xx share above this: a failed check
    max_latency_ratio: Annotated[float, Field(gt=0.0)] = 1.5  # candidate p99 above champion p99 x this: a failed check
    latency_slack_seconds: Annotated[float, Field(ge=0.0)] = 0.025  # p99 above the champion's by less than this never fails
    max_score_psi: Annotated[float, Field(gt=0.0)] = 0.25  # candidate scores vs champion scores on live rows: above: failed
    min_improvement: Annotated[float, Field(ge=0.0)] = 0.0  # promote when the candidate's gate metric is better by more than this
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.05  # false-promotion level of the one-sided bootstrap test
    bootstrap: Annotated[int, Field(ge=100, le=100_000)] = 1000  # bootstrap resamples of the metric difference
    failed_checks: Annotated[int, Field(ge=1)] = 3  # consecutive failed checks before `watch` rolls back
    interval_seconds: Annotated[float, Field(gt=0.0)] = 30.0  # `watch`: time between checks
    seed: int = 42


class ComputeParams(Section):
    """Where parallel work runs (src/mlcycle/core/compute.py): a Dask cluster."""

    scheduler: str | None = None  # null: a local cluster started for the job; "tcp://host:8786": that cluster
    workers: Literal["auto"] | Annotated[int, Field(ge=1, le=256)] = "auto"  # local cluster: worker processes (auto: cores / threads_per_worker)
    threads_per_worker: Annotated[int, Field(ge=1, le=64)] = 1  # also each local worker's OpenMP / BLAS threads
    memory_limit: str = "auto"  # per local worker: auto (the machine's memory shared out) or e.g. "2GiB"
    dashboard: bool = True  # the local cluster serves its dashboard on a free port (link printed and recorded)
    connect_seconds: Annotated[float, Field(gt=0.0)] = 30.0  # wait this long for compute.scheduler


class ScoreParams(Section):
    """`mlcycle serving score`: batch scoring of files (src/mlcycle/serving/batch.py); CLI flags override these."""

    model_uri: str | None = None  # null: models:/<tracking.model_name>@champion (pinned to its version for the job)
    blocksize: str = "32MiB"  # rows read per partition, as bytes of input; memory is bounded by this x workers
    max_rejected_share: Annotated[float, Field(ge=0.0, le=1.0)] = 0.1  # more rejected rows than this share: the job fails
    compiled: bool = True  # score through the compiled form proven equal at registration; false: the pipeline


class MonitorParams(Section):
    """Drift and performance monitoring (the monitor stage, `mlcycle monitoring run`)."""

    psi_threshold: Annotated[float, Field(gt=0.0)] = 0.2   # a column drifts when its PSI reaches this ...
    alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.01  # ... and its p-value is below alpha / columns
    bins: Annotated[int, Field(ge=2, le=100)] = 10
    drift_share: Annotated[float, Field(gt=0.0, le=1.0)] = 0.25  # share of drifted features that is data drift
    score_psi_threshold: Annotated[float, Field(gt=0.0)] = 0.2   # drift of the predicted scores
    max_metric_drop: Annotated[float, Field(ge=0.0)] = 0.02      # decay: the gate metric worse than at training by more
    min_rows: Annotated[int, Field(ge=1)] = 500                  # fewer current rows: no verdict
    min_slice_rows: Annotated[int, Field(ge=1)] = 200            # slices smaller than this are not compared
    reference_max_rows: Annotated[int, Field(ge=1000)] = 200_000  # reference rows used at most (seeded sample)
    log_window_days: Annotated[float, Field(gt=0.0)] = 7.0       # --from-log: the last days of the prediction log
    max_memory_rows: Annotated[int, Field(ge=1)] = 2_000_000  # more scored rows (log, folder): read partition by partition on `compute`
    # a recommender (monitoring/recmonitor.py): drift when this share of current interactions is on items never seen
    new_item_share: Annotated[float, Field(gt=0.0, le=1.0)] = 0.2
    seed: int = 42


class RetrainParams(Section):
    """When monitoring retrains, and on which data."""

    trigger: Literal["drift_or_decay", "drift", "decay", "never"] = "drift_or_decay"
    window: Annotated[int, Field(ge=1)] | None = None  # null: all data; N: the newest N periods (months of the time column, else batches)


class SimulateParams(Section):
    """The period-by-period replay (`mlcycle monitoring simulate`) of data.path along data.time_column."""

    period: Literal["day", "week", "month", "quarter"] = "month"
    timezone: str | None = None  # periods in this time zone (e.g. America/New_York); null: as the data says (UTC)
    train_periods: Annotated[int, Field(ge=1)] = 3  # the first model trains on these periods
    periods: Annotated[int, Field(ge=1)] | None = None  # periods fed after that (null: the rest of the data)
    sample_frac: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0  # share of rows used (for quick runs)
    workdir: str = "build/simulation"  # the replay's own workspace (data, MLflow store, registry)


def with_task(raw: dict[str, Any]) -> dict[str, Any]:
    """Raw params with `task` filled from data.task when left out (dvc.yaml reads it to pick the notebooks)."""
    if raw.get("task") is None and isinstance(raw.get("data"), dict):
        raw = {**raw, "task": tasks.name_for(raw["data"].get("task"))}
    return raw


class _Params(Section):
    """The whole of params.yaml."""

    # the task package that runs the stages (src/mlcycle/tasks/<task>, notebooks/<task>): it must
    # serve data.task (tabular: classification and regression; recommender: recommendation); left
    # out, the one that serves data.task (dvc.yaml reads it, so `mlcycle init` writes it)
    task: str | None = None
    ingest: dict[str, IngestStep] = {}  # at most one step; {} for your own file
    data: DataParams
    validate_: ValidateParams = Field(ValidateParams(), alias="validate")
    eda: EdaParams = EdaParams()
    features: FeaturesParams = FeaturesParams()
    split: SplitParams = SplitParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    gate: GateParams = GateParams()
    tracking: TrackingParams = TrackingParams()
    report: ReportParams = ReportParams()
    serve: ServeParams = ServeParams()
    release: ReleaseParams = ReleaseParams()
    compute: ComputeParams = ComputeParams()
    score: ScoreParams = ScoreParams()
    monitor: MonitorParams = MonitorParams()
    retrain: RetrainParams = RetrainParams()
    simulate: SimulateParams = SimulateParams()
    # and one section per task that has its own (`Task.params_section`, e.g. `recommend`), typed by the
    # task's model and null unless that task runs: added below, from the registry

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _derived_names(cls, raw: Any) -> Any:
        """Names that default to the data: the registered model's name and the report's title."""
        if not isinstance(raw, dict) or not isinstance(raw.get("data"), dict):
            return raw
        data = raw["data"]
        stem = _slug(Path(str(data.get("path", "data"))).name.split(".")[0])
        target = str(data.get("target", "target"))
        raw = dict(raw)
        tracking = dict(raw.get("tracking") or {})
        if tracking.get("model_name") is None:
            tracking["model_name"] = stem if _slug(target) == stem else f"{stem}-{_slug(target)}"
            raw["tracking"] = tracking
        report = dict(raw.get("report") or {})
        if report.get("title") is None:
            rule = f"{target} >= {data['threshold']:g}" if isinstance(data.get("threshold"), int | float) else target
            report["title"] = f"mlcycle: {Path(str(data.get('path', ''))).name}, predicting {rule}"
            raw["report"] = report
        return raw

    @model_validator(mode="before")
    @classmethod
    def _task_of_data(cls, raw: Any) -> Any:
        return with_task(raw) if isinstance(raw, dict) else raw

    @model_validator(mode="after")
    def _task_serves_data(self) -> Params:
        try:
            task = tasks.get(self.task)
        except ParamsError as exc:
            raise ValueError(str(exc).removeprefix("task: ")) from None
        if self.data.task not in task.objectives:
            raise ValueError(f"task {self.task} serves data.task {' or '.join(task.objectives)}, not "
                             f"{self.data.task}: set task: {tasks.name_for(self.data.task)}")
        return self

    @model_validator(mode="after")
    def _task_sections(self) -> Params:
        """A task's own section is set only when that task runs; the running task checks what it needs."""
        for other in tasks.all_tasks():
            section = other.params_section
            if section and other.name != self.task and getattr(self, section, None) is not None:
                raise ValueError(f"the `{section}` section is for task {other.name} (data.task "
                                 f"{' or '.join(other.objectives)}), not {self.task}: set it to null")
        check = tasks.get(self.task).hook("check_params")
        if check:
            check(self)
        return self

    @model_validator(mode="after")
    def _one_ingest_step(self) -> Params:
        if len(self.ingest) > 1:
            raise ValueError(f"ingest: one step at most, got {sorted(self.ingest)}")
        return self

    @model_validator(mode="after")
    def _fairness_needs_columns(self) -> Params:
        if self.gate.fairness.bounds() and not self.evaluate.sensitive:
            raise ValueError("gate.fairness bounds group gaps but evaluate.sensitive names no column; "
                             "list the sensitive columns there or set the bounds to null")
        return self

    def section(self, name: str) -> Section:
        return self.validate_ if name == "validate" else getattr(self, name)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")


# params.yaml's sections: the framework's above, and each registered task's own section (its model, null
# unless the task runs), e.g. `params.recommend`
Params = create_model(
    "Params", __base__=_Params, __module__=__name__,
    **{t.params_section: (t.section_model() | None, None) for t in tasks.all_tasks() if t.params_section},
)
Params.__doc__ = _Params.__doc__


def _slug(text: str) -> str:
    """Lower-case letters, digits and dashes: a name MLflow, URLs and file systems all take."""
    import re

    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "model"


def _model_for(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    import typing

    model: type[BaseModel] | None = Params
    keyed = False  # the previous part was a mapping of models (e.g. ingest steps): this part is a key
    for part in loc[:-1]:
        if keyed:
            keyed = False
            continue
        if model is None:
            return None
        field = next(
            (f for n, f in model.model_fields.items() if part in (n, f.alias)),
            None,
        )
        ann = getattr(field, "annotation", None) if field else None
        if typing.get_origin(ann) is dict:
            ann, keyed = typing.get_args(ann)[1], True
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return model


def _describe(err: dict[str, Any]) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    # strip the union/literal branch names pydantic adds to locations
    loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in {"str", "int", "float", "bool", "none"})))
    key = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        model = _model_for(loc)
        allowed = sorted(f.alias or n for n, f in model.model_fields.items()) if model else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (allowed: {', '.join(allowed)})"
        return f"{key}: unknown key{hint}"
    if err["type"] == "missing":
        return f"{key}: required value is missing"
    got = err.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{key}: {err['msg']}{shown}"


def parse(raw: Any, source: str = "params.yaml") -> Params:
    """Check a parsed params mapping; raise ParamsError naming every bad key."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        seen: list[str] = []
        for err in exc.errors():
            msg = _describe(err)
            if msg not in seen:
                seen.append(msg)
        lines = "\n".join(f"  {source}: {m}" for m in seen)
        raise ParamsError(f"invalid parameters:\n{lines}") from None


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml, in PyYAML's wheels: about 8x faster


def read_yaml(path: str | Path):
    """A YAML file's content (safe loading), parsed by libyaml when PyYAML has it."""
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_LOADER)


def load(path: str | Path = "params.yaml", root: str | Path | None = None) -> Params:
    """Read and check params.yaml; a relative path is taken from the workspace root."""

    p = Path(path)
    if not p.is_absolute():
        p = (Path(root) if root else find_root()) / p
    if not p.exists():
        raise ParamsError(f"parameters file not found: {p.name} (expected at the workspace root)")
    try:
        raw = read_yaml(p)
    except yaml.YAMLError as exc:
        raise ParamsError(f"{p.name} is not valid YAML: {exc}") from None
    return parse(raw, source=p.name)
