"""What each key of params.yaml means: one line per key, written once, used by `mlcycle init` when it
writes params.yaml and by the parameters reference of the documentation site (`reference()`, run by
`make docs`). The keys, their types and defaults live in mlcycle.config; tests/code/test_config.py
checks that every key there has a line here."""

from __future__ import annotations

import re
import types
import typing
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from mlcycle.core import config, tasks

HEADER = """\
# The single source of truth for every stage. Each top-level section belongs to one stage
# (dvc.yaml lists which sections each stage reads, so a change re-runs only what depends on it).
# Checked before any notebook starts: `mlcycle pipeline check` (an unknown key, a wrong type or a missing
# value fails with the key's name). Written by `mlcycle init`; edit it freely.
"""

SECTIONS: dict[str, str] = {
    "task": "The task package that runs the stages: its code in src/mlcycle/tasks/<task>, its notebooks in notebooks/<task>.",
    "ingest": "Optional: a step that writes raw data (an example's download or export). Your own file needs none.",
    "data": "The table every later stage reads, its target and the roles of its columns.",
    "monitor": "Is the data the model now sees like the data it was trained on? A column drifts when its PSI\n(effect size) reaches psi_threshold and its test's p-value is below alpha / number of columns;\nso on data like the reference the chance of any false alarm is at most alpha.",
    "simulate": "`mlcycle monitoring simulate`: train on the first periods of data.path, then feed the rest one period at a time.",
    "compute": "Where parallel work runs: a Dask cluster. null scheduler: a local one started for each job, sized to\nthe machine; a scheduler address sends the same work to that cluster.",
    "release": "`mlcycle release status | promote | abort | watch`: the candidate served in canary or shadow\n(serve.release) against the champion on live traffic and the labels fed back; see docs/releases.md.",
    "score": "`mlcycle serving score --input FILES --output FOLDER`: batch scoring, partition by partition on the cluster.",
    "recommend": "Task recommendation only (null otherwise): one interaction per row of data.path, its rating in data.target,\nits time in data.time_column. See docs/recommender.md and `mlcycle init --example movielens`.",
}

KEYS: dict[str, str] = {
    # every registered task with the data.task values it serves, the default task first
    "task": " | ".join(f"{t.name} ({'data.task ' if t.default else ''}{', '.join(t.objectives)})"
                       for t in sorted(tasks.all_tasks(), key=lambda t: not t.default)),
    "compute.scheduler": "null: a local cluster per job; or an address such as tcp://host:8786",
    "compute.workers": "local cluster: worker processes (auto: cores / threads_per_worker)",
    "compute.threads_per_worker": "threads per worker, also its OpenMP / BLAS threads",
    "compute.memory_limit": "per local worker: auto (the machine's memory shared out) or e.g. \"2GiB\"",
    "compute.dashboard": "the local cluster serves its dashboard on a free port (link printed and recorded)",
    "compute.connect_seconds": "wait this long for compute.scheduler",
    "score.model_uri": "null: models:/<tracking.model_name>@champion, pinned to its version for the job",
    "score.blocksize": "input read per partition (bytes, e.g. 32MiB): memory is bounded by this x workers",
    "score.max_rejected_share": "rows that cannot be scored go to rejects/ with the reason; more than this share fails the job",
    "score.compiled": "score through the compiled form proven equal at registration (false: the pipeline)",
    "serve.ranges": "values outside the schema's min/max: warn | refuse (422) | off",
    "serve.log_failure": "log unwritable: refuse (answer 503) | serve (keep scoring, logged loudly)",
    "serve.log_fallback_dir": "parts spilled here when log_dir cannot be written",
    "validate.pii_scan": "text columns that look like e-mails, phones or card numbers: warn | refuse | off",
    "data.pii_features": "true: hashed pii_columns may be model features (false: never)",
    "gate.max_relative_drop": "... and as a share of the champion's value for errors (rmse, mae, log_loss, brier): 0.01 = 1%",
    "gate.beat_baseline": "and score better than the baseline model on `metric`",
    "data.aside_columns": "optional: kept in the processed tables for evaluate's slices, never features (e.g. a sensitive attribute)",
    "data.text_columns": "optional: free text (reviews, notes): its words become features (train.text), never categories",
    "data.drop_columns": "optional: columns not known at prediction time (leakage) or not wanted",
    "data.format": "auto (by file suffix) | csv | parquet",
    "data.id_columns": "optional: identifiers, kept out of the features",
    "data.path": "the table every stage reads: a CSV or Parquet file (track it with `dvc add`)",
    "data.pii_columns": "personal data (e-mail, national id, ...): dropped or hashed as the table is read",
    "data.pii_mode": "drop | hash (salted SHA-256, salt from $MLCYCLE_PII_SALT, required)",
    "data.positive_class": "binary classification: the class scored as positive (null: True / 1 / last sorted)",
    "data.required_columns": "must be present, else validate stops",
    "data.target": "column to predict",
    "data.task": "classification | regression",
    "data.threshold": "classification only: label = target >= threshold (null: target holds the classes)",
    "data.time_column": "optional: orders rows in time; the split holds out the latest rows",
    "data.timezone": "the time zone the times are local to (e.g. America/New_York): split.test_start is a date in it, the model card and the features report give times in it (stored times without an offset count as UTC); null: as read (UTC when they carry an offset)",
    "data.time_format": "text times not in ISO 8601, or numbers like 20230315: their strftime format, e.g. \"%d/%m/%Y\"",
    "data.time_unit": "numeric times: s, ms, us, ns or D since 1970-01-01 (a number is never read as a time without a rule)",
    "eda.max_numeric_plots": "numeric columns plotted",
    "eda.sample_rows": "rows drawn for plots (0 = all)",
    "eda.top_categories": "categories shown per categorical column",
    "eda.seed": "seed of the row sample the EDA report plots",
    "evaluate.bootstrap": "resamples for the 95% intervals of metrics and groups (0 = none)",
    "evaluate.calibration_bins": "bins of the calibration curve",
    "evaluate.explain_rows": "holdout rows sampled for permutation importance",
    "evaluate.intended_use": "short file you edit, quoted by the model card",
    "evaluate.min_group_size": "smaller groups are marked \"small\" and left out of the gaps",
    "evaluate.pdp_features": "partial-dependence plots for this many of the most important features",
    "evaluate.sensitive": "columns whose group gaps gate.fairness bounds, e.g. [gender, age_band]",
    "evaluate.slices": "holdout columns (features or data.aside_columns) with metrics per group; [] for none",
    "evaluate.seed": "seed of the bootstrap intervals and of the rows sampled for explanations",
    "features.calendar": "parts of data.time_column the model derives (month, day_of_week, day_of_year, hour, year); constant ones are left out",
    "features.enrich": "optional hook adding columns from other tables or rows (see hooks/README.md)",
    "features.enrich.hook": "\"path/to/module.py:function\"; null: no enrichment",
    "features.enrich.params": "handed to the hook as they are",
    "features.enrich.tables": "name -> file the hook reads (each checked by the `tables` stage, a DVC dependency)",
    "gate.fairness": "bounds on the largest gap between groups of each evaluate.sensitive column (null = off)",
    "gate.fairness.max_demographic_parity_difference": "classification: selection-rate gap",
    "gate.fairness.max_equalized_odds_difference": "classification: larger of the true- and false-positive-rate gaps",
    "gate.fairness.max_error_gap": "regression: mean-absolute-error gap, in target units",
    "gate.max_drop": "worse than the champion on `metric` tolerated, absolute, for scores (roc_auc, pr_auc, accuracy, r2 ...)",
    "gate.maximums": "and stay below these (e.g. rmse: 10.0)",
    "gate.metric": "compared with the champion re-scored on the same holdout; auto: roc_auc (binary), log_loss (multiclass), rmse (regression)",
    "gate.minimums": "a new model must reach these; auto: roc_auc 0.6 (binary), roc_auc_ovr 0.6 (multiclass), r2 0.1 (regression); or e.g. {roc_auc: 0.65}",
    "ingest": "optional step writing raw tables: {name: {hook, outputs, params}}; {} for your own file",
    "monitor.alpha": "false-alarm rate of the drift verdict on same-distribution data",
    "monitor.bins": "quantile bins of numeric columns",
    "monitor.drift_share": "data drift: at least this share of the features drifted",
    "monitor.log_window_days": "`mlcycle monitoring run --from-log`: the last days of the prediction log",
    "monitor.max_metric_drop": "decay: gate metric worse than at training by more than this (needs labels)",
    "monitor.min_rows": "fewer current rows than this: no verdict",
    "monitor.new_item_share": "a recommender's data drifts when at least this share of current interactions is on items never seen in training",
    "monitor.min_slice_rows": "slices (evaluate.slices) with fewer rows are not compared",
    "monitor.psi_threshold": "0.1 moderate, 0.2 large shift",
    "monitor.max_memory_rows": "scored rows (the prediction log, a `mlcycle serving score` folder) beyond this many are read partition by partition on the cluster of `compute`, never all at once",
    "monitor.reference_max_rows": "the champion's training rows used at most (seeded sample)",
    "monitor.score_psi_threshold": "drift of the predicted scores (or values)",
    "monitor.seed": "seed of the reference sample (monitor.reference_max_rows)",
    "report.show_code": "true: stage reports show code cells as well as results",
    "report.title": "title of reports/index.html; null: from data.path and data.target",
    "retrain.trigger": "drift_or_decay | drift | decay | never: what makes `mlcycle monitoring retrain` retrain",
    "retrain.window": "training data: null = all; N = the newest N months of data.time_column (no time column: N batches)",
    "serve.release": "a candidate served beside the champion, in canary or shadow (docs/releases.md)",
    "serve.release.mode": "off | canary (share of routing keys answered by the candidate) | shadow (candidate scores every request, never answers)",
    "serve.release.candidate": "alias of the candidate version, served beside the champion",
    "serve.release.share": "canary: share (0..1) of routing keys answered by the candidate",
    "serve.release.key": "routing key: this input column, per row; null: the header, else the request id",
    "serve.release.header": "routing key header, used when key is null or the column is missing",
    "release.url": "server whose /metrics is read; null: http://<serve.host>:<serve.port>",
    "release.min_labelled_rows": "labelled rows per version before the gate metric decides (promotion needs them)",
    "release.min_requests": "requests answered by the candidate before error ratio and latency are judged",
    "release.max_error_ratio": "candidate 5xx share above this: a failed check",
    "release.max_latency_ratio": "candidate p99 latency above the champion's times this: a failed check",
    "release.latency_slack_seconds": "a candidate p99 above the champion's by less than this never fails (noise at millisecond latencies)",
    "release.max_score_psi": "PSI of the candidate's scores against the champion's on live rows above this: a failed check",
    "release.min_improvement": "promote only when the candidate's gate metric is better by more than this",
    "release.alpha": "false-promotion level: the bootstrap's one-sided lower bound must clear min_improvement",
    "release.bootstrap": "bootstrap resamples of the metric difference",
    "release.failed_checks": "consecutive failed checks before `mlcycle release watch` rolls back",
    "release.interval_seconds": "`mlcycle release watch`: seconds between checks",
    "release.seed": "seed of the bootstrap",
    "serve.compiled": "score through the model's compiled form when registration proved it equal (false: the pipeline)",
    "serve.host": "bind address (0.0.0.0 only behind a firewall or proxy)",
    "serve.log_dir": "prediction log (Parquet parts), relative to the workspace root",
    "serve.log_max_rows": "rows per Parquet part at most",
    "serve.log_queue_rows": "rows waiting for the log writer at most (requests wait beyond that)",
    "serve.log_queue_mb": "MB of rows waiting for the log writer, or held for a part, at most (requests beyond: 503)",
    "serve.log_roll_seconds": "a part is closed after this many seconds",
    "serve.max_body_mb": "request body size at most (more: 413, the body is not read further)",
    "serve.max_text_chars": "characters of one text value of a /predict row at most (more: 422; /recommend ids: 200)",
    "serve.body_timeout_seconds": "request line and headers not complete this long after the connection opened (or the previous answer), or a body this long after its headers: 408 and the connection closed",
    "serve.max_rows": "rows per request at most (more: 413)",
    "serve.model_uri": "null: models:/<tracking.model_name>@champion; or any MLflow model URI",
    "serve.not_null": "columns refusing null; auto: data.required_columns",
    "serve.port": "TCP port",
    "serve.reload_seconds": "how often the champion alias is checked; a moved alias is loaded and swapped in",
    "serve.token_env": "when this environment variable is set, /predict needs \"Authorization: Bearer <token>\"",
    "serve.workers": "uvicorn worker processes",
    "simulate.period": "day | week | month | quarter of data.time_column",
    "simulate.periods": "periods fed after that (null: the rest of the data)",
    "simulate.sample_frac": "share of rows used (for quick runs)",
    "simulate.timezone": "periods in this time zone (e.g. America/New_York); null: UTC",
    "simulate.train_periods": "the first model trains on these periods",
    "simulate.workdir": "the replay's own workspace: its data, MLflow store and registry",
    "split.test_size": "share held out when test_start is null (by time: cut where the time changes nearest it; stratified when there is no time column)",
    "split.test_start": "time-based holdout: rows at or after this date, from midnight in data.timezone (null: the latest test_size share)",
    "split.valid_size": "latest share of the training rows (cut where the time changes nearest it) used to choose iterations and the threshold",
    "split.seed": "seed of the random split (tables without a time column) and of simulate's row sample",
    "tracking.daemon_idle_minutes": "a warm tracking process serves the stages, exits after this idle time; 0: off",
    "tracking.enabled": "record every stage execution in MLflow",
    "tracking.experiment": "MLflow experiment of the pipeline runs",
    "tracking.model_name": ('registered model name; null: <data file name before its first dot>-<target>, lower-cased, '
                             'each run of characters other than a-z and 0-9 one "-", the target left out when the same '
                             '(Late_Flights.csv, arr_delay -> late-flights-arr-delay; churn.csv, churn -> churn)'),
    "tracking.ui_url": "MLflow UI address the report index links runs to, e.g. http://127.0.0.1:5000 (make ui); null: none",
    "tracking.uri": "null: $MLFLOW_TRACKING_URI if set, else sqlite under mlruns/ in the workspace",
    "train.C": "linear only: inverse regularisation strength",
    "train.baseline_columns": "baseline model's inputs ([] = predict the prior)",
    "train.max_categories": "categories kept per column; rarer ones share one code",
    "train.max_depth": "random_forest / hist_gradient_boosting depth limit (null: none)",
    "train.max_iter": "boosting iterations at most; the best on the validation split is kept",
    "train.model": "hist_gradient_boosting | random_forest | linear | auto (tries each, keeps the best)",
    "train.n_estimators": "random_forest only",
    "train.search": "hyperparameter search; its trials become nested MLflow runs of the train run",
    "train.search.cv_folds": "folds inside the training rows (time-ordered when there is a time column)",
    "train.search.method": "none (the values above) | random | optuna (recommendation: ALS on the validation period)",
    "train.search.engine": "dask: trials run in parallel on the cluster of `compute` | serial: one after another here",
    "train.search.space": "override a default range, e.g. learning_rate: [0.02, 0.2]",
    "train.search.timeout_minutes": "per model family: no new trial starts after this; null: no limit",
    "train.search.trials": "candidates per model family",
    "train.text": "data.text_columns: each becomes a TF-IDF over a bounded vocabulary inside the model",
    "train.text.max_features": "vocabulary per text column at most (the most frequent terms)",
    "train.text.ngram_max": "terms are single words (1) or runs of up to this many words",
    "train.text.min_df": "a term found in fewer training rows than this is left out",
    "train.text.lowercase": "fold case before counting",
    "train.text.svd_components": "tree models: the TF-IDF reduced to this many dense components per column (TruncatedSVD); linear takes the TF-IDF itself",
    "train.threshold": "classification decision threshold: auto (best F1 on validation) or a number",
    "train.segment_by": "one model per value of these input columns (e.g. [origin]), trained in parallel on `compute`, routed with the global model as one MLflow model; [] = one model",
    "train.min_segment_rows": "a segment with fewer train + valid rows is scored by the global model (so is one whose own model is no better on its validation rows)",
    "train.learning_rate": "hist_gradient_boosting: shrinkage of each boosting iteration",
    "train.max_leaf_nodes": "hist_gradient_boosting: leaves per tree at most",
    "train.min_samples_leaf": "hist_gradient_boosting / random_forest: training rows per leaf at least",
    "train.l2_regularization": "hist_gradient_boosting: L2 penalty on leaf values",
    "train.seed": "seed of the model, the search and its samplers",
    "gate.max_segment_drop": "routed model: a segment's own model may score below the global model on its holdout rows by this much on `metric` (absolute for scores, a share for errors); null: not checked",
    "validate.chunk_rows": "`mlcycle data add` validates a batch in parts of this many rows (memory bounded by it)",
    "validate.max_new_category_share": "rows with a value not in the schema's list: up to this share warns, above it stops",
    "validate.max_null_share": "a required column with more nulls than this share stops the pipeline",
    "validate.max_target_null_share": "rows without a target are dropped; more than this share stops the pipeline",
    "validate.min_rows": "fewer rows than this stops the pipeline",
    "validate.null_share_warn_rise": "a column's null share above the schema's null_share by more than this warns",
    "validate.schema": "reviewed schema file (null: schemas/<data file stem>.yaml); `mlcycle data schema` proposes one",
    "recommend": "null unless data.task is recommendation",
    "recommend.user_column": "who interacted",
    "recommend.item_column": "with what",
    "recommend.content_columns": "item content on the same rows: text (title words), lists such as genres (list_separator) or numbers (year)",
    "recommend.list_separator": "separates the values of a list column such as genres",
    "recommend.rating_min": "a rating below stops validate (null: no bound)",
    "recommend.rating_max": "a rating above stops validate (null: no bound)",
    "recommend.relevant_rating": "an interaction counts as relevant at or above this rating (null: every interaction, implicit feedback)",
    "recommend.split": "time: one cut in time for everyone, nothing after it learned from | user_time: the latest share of each user's interactions (other users' later ones are learned from)",
    "recommend.test_share": "the latest share of interactions held out (by time; never a random split)",
    "recommend.valid_share": "the latest share of the rest: chooses the hybrid weight",
    "recommend.k": "length of the ranked lists the metrics judge (NDCG@k, Recall@k, MAP@k, hit rate)",
    "recommend.factors": "collaborative filtering (implicit ALS): latent factors",
    "recommend.regularization": "ALS L2 regularisation",
    "recommend.iterations": "ALS sweeps over users and items",
    "recommend.alpha": "ALS confidence of an interaction: 1 + alpha x its weight",
    "recommend.weighting": "weight of each interaction ALS learns from: none (1 each) | bm25 | tfidf (popular items' and heavy users' interactions weigh less) | rating (the rating minus rating_centre)",
    "recommend.bm25_k1": "weighting bm25: saturation K1 (implicit's bm25_weight)",
    "recommend.bm25_b": "weighting bm25: how much an item's number of users lowers its weight, 0 to 1",
    "recommend.rating_centre": "weighting rating: subtracted from each rating (null: midway between rating_min and rating_max)",
    "recommend.popularity_discount": "CF scores divided by (the item's training users + 1) ^ this before blending, for catalogue coverage; 0: none",
    "recommend.refit_iterations": "ALS sweeps of the final fit on train + valid, started from the train fit's factors; null: a fresh fit",
    "recommend.coverage_tolerance": "relative loss of recommend.metric on the validation period accepted for catalogue coverage (a popularity penalty); null: none",
    "recommend.cf": "collaborative filtering: als (implicit's ALS) | ease (closed-form item-item model, items x items memory)",
    "recommend.ease_lambda": "EASE's L2 regularisation, added to the diagonal of the item-item Gram matrix",
    "recommend.weights": "hybrid: weights of CF tried on the validation period (the rest goes to content similarity)",
    "recommend.metric": "ranking metric that chooses the weight and that the gate compares: ndcg_at_k | recall_at_k | map_at_k | hit_rate_at_k",
    "recommend.seed": "seed of ALS and of the bootstrap over users",
}

# a task that documents its own section (`Task.params_doc`): its lines join the framework's
for _task in tasks.all_tasks():
    _doc = _task.section_doc()
    if _doc and _task.params_section:
        SECTIONS.setdefault(_task.params_section, _doc.get("section", ""))
        for _key, _line in _doc.get("keys", {}).items():
            KEYS.setdefault(_key, _line)


def _bounds(metadata: Any) -> list[str]:
    """`>= 1`, `<= 1.0`: the numeric constraints pydantic keeps as a field's metadata."""
    out = []
    for meta in metadata:
        for item in getattr(meta, "metadata", [meta]):
            for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
                if getattr(item, attr, None) is not None:
                    out.append(f"{sign} {getattr(item, attr)}")
    return out


def _type_name(annotation: Any) -> str:
    """A reader's name for a field's type: `int >= 1`, `csv | parquet`, `list[str] | null`."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return " ".join([_type_name(args[0]), *_bounds(args[1:])])
    if origin is Literal:
        return " | ".join(str(a) for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join("null" if a is type(None) else _type_name(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(_type_name(a) for a in args)}]"
    if isinstance(annotation, type):
        return "section" if issubclass(annotation, BaseModel) else annotation.__name__
    return str(annotation)


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.default
    if value is PydanticUndefined or isinstance(value, BaseModel):
        return ""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _cell(text: str) -> str:
    """A table cell of the reference: `|` escaped, one line, and `<` as `&lt;` (the site's Markdown
    would read `<data file name>` as an HTML element and show nothing of it)."""
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text.replace("|", "\\|").replace("\n", " "))


def _section_model(annotation: Any) -> type[BaseModel] | None:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    for candidate in (annotation, *args):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def reference() -> str:
    """The parameters reference (Markdown): one table per section of params.yaml, each key with its
    type and default from mlcycle.config and its line from KEYS. Written once: the documentation
    site renders this, `mlcycle init` writes the same lines as comments."""
    out: list[str] = []

    def rows(model: type[BaseModel], prefix: str) -> list[str]:
        lines = []
        for name, field in model.model_fields.items():
            key = field.alias or name
            dotted = f"{prefix}{key}"
            nested = _section_model(field.annotation)
            kind = "section" if nested else " ".join([_type_name(field.annotation), *_bounds(field.metadata)])
            lines.append(f"| `{dotted}` | {_cell(kind)} | {_cell(_default(field))} | {_cell(KEYS.get(dotted, ''))} |")
            if nested and typing.get_origin(field.annotation) is not dict:
                lines += rows(nested, f"{dotted}.")
        return lines

    for name, field in config.Params.model_fields.items():
        section = field.alias or name
        out += ["", f"### `{section}`", ""]
        if section in SECTIONS:
            out += [SECTIONS[section].replace("\n", " "), ""]
        nested = _section_model(field.annotation)
        out += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        if nested is None:
            out.append(f"| `{section}` | {_cell(_type_name(field.annotation))} | {_cell(_default(field))} | {_cell(KEYS.get(section, ''))} |")
        else:
            if typing.get_origin(field.annotation) is dict:
                out.append(f"| `{section}` | {_cell(_type_name(field.annotation))} | {_cell(_default(field))} | {_cell(KEYS.get(section, ''))} |")
                prefix = f"{section}.<name>."
            else:
                if field.default is None:  # a section that is null unless its task needs it (recommend)
                    out.append(f"| `{section}` | {_cell(_type_name(field.annotation))} | {_cell(_default(field))} | {_cell(KEYS.get(section, ''))} |")
                prefix = f"{section}."
            out += rows(nested, prefix)
    return "\n".join(out).lstrip("\n") + "\n"
