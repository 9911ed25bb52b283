"""Stage `train`: a scikit-learn Pipeline (preprocessing + estimator) chosen by params `train`.

Choices are made on the validation split inside the training period, never on the holdout:
the number of boosting iterations (the best on valid) and, for binary classification, the
decision threshold (best F1 on valid). The model is then refitted on train + valid and saved in
MLflow model format with its signature and an input example.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from mlcycle.core import provenance, record
from mlcycle.core.config import TrainParams
from mlcycle.core.errors import DataError
from mlcycle.core.scoring import quiet_mlflow, scores
from mlcycle.core.spec import FeatureSpec, RowFeatures
from mlcycle.core.tables import unparse
from mlcycle.core.text import TextFeatures
from mlcycle.core.workspace import model_metadata
from mlcycle.tasks.tabular import compiled


@dataclass
class TrainResult:
    model: Pipeline
    baseline: Pipeline
    threshold: float | None
    best_iter: int | None
    valid_score: float
    valid_baseline_score: float
    score_name: str
    columns: list[str] = field(default_factory=list)
    valid_pred: np.ndarray | None = None  # the scores on valid of the model fitted on train (before the refit)
    segments: object = None  # a routed model's segments (`mlcycle.tasks.tabular.segments.Segments`), else None

    def metrics(self) -> dict:
        out = {
            f"valid_{self.score_name}": round(self.valid_score, 6),
            f"valid_baseline_{self.score_name}": round(self.valid_baseline_score, 6),
        }
        if self.best_iter is not None:
            out["best_iter"] = self.best_iter
        if self.threshold is not None:
            out["threshold"] = round(self.threshold, 6)
        return out


def text_step(column: str, params: TrainParams, for_trees: bool) -> TextFeatures:
    """The words of one text column as features (`core.text.TextFeatures`, params `train.text`): a TF-IDF
    over a bounded vocabulary; trees (HistGradientBoosting takes dense input only) get its
    `svd_components` leading SVD directions, the linear model the sparse TF-IDF, a weight per term."""
    t = params.text
    return TextFeatures(column, max_features=t.max_features, ngram_max=t.ngram_max, min_df=t.min_df,
                        lowercase=t.lowercase, components=t.svd_components if for_trees else None,
                        random_state=params.seed)


def preprocessor(numeric: list[str], categorical: list[str], params: TrainParams, for_trees: bool,
                 text: list[str] = ()) -> ColumnTransformer:
    """Column preprocessing: ordinal codes for trees (missing kept as NaN), one-hot + scaling for linear;
    each text column through its own `text_step` (after the categories and numbers). The output is a
    DataFrame, except for the linear model with text: a sparse matrix (a column per term)."""
    if for_trees:
        cat = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan,
            max_categories=params.max_categories, dtype=np.float64,
        )
        num = "passthrough"
    else:
        cat = make_pipeline(
            SimpleImputer(strategy="constant", fill_value="(missing)"),
            OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=params.max_categories,
                          sparse_output=False),
        )
        num = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
    parts = []
    if categorical:
        parts.append(("cat", cat, categorical))
    if numeric:
        parts.append(("num", num, numeric))
    for c in text:  # the column's name as a string: the step gets one Series, not a frame
        parts.append((f"text:{c}", text_step(c, params, for_trees), c))
    ct = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)
    return ct if text and not for_trees else ct.set_output(transform="pandas")


def estimator(task: str, params: TrainParams, n_categorical: int):
    """The estimator named by params.model, with its hyperparameters from params."""
    if params.model == "auto":
        raise ValueError("train.model 'auto' is resolved by mlcycle.search.select before fitting")
    classification = task == "classification"
    if params.model == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
        return cls(
            learning_rate=params.learning_rate, max_iter=params.max_iter, max_leaf_nodes=params.max_leaf_nodes,
            min_samples_leaf=params.min_samples_leaf, l2_regularization=params.l2_regularization,
            max_depth=params.max_depth, early_stopping=False, random_state=params.seed,
            categorical_features=list(range(n_categorical)) if n_categorical else None,
        )
    if params.model == "random_forest":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        cls = RandomForestClassifier if classification else RandomForestRegressor
        return cls(n_estimators=params.n_estimators, max_depth=params.max_depth,
                   min_samples_leaf=params.min_samples_leaf, n_jobs=-1, random_state=params.seed)
    from sklearn.linear_model import LogisticRegression, Ridge

    if classification:
        return LogisticRegression(C=params.C, max_iter=2000)
    return Ridge(alpha=1.0 / params.C, random_state=params.seed)


def build_pipeline(spec: FeatureSpec, params: TrainParams, columns: list[str] | None = None) -> Pipeline:
    """Preprocessing + estimator for the given feature columns (all of the spec's by default)."""
    columns = spec.features if columns is None else columns
    numeric = [c for c in spec.numeric if c in columns]
    categorical = [c for c in spec.categorical if c in columns]
    text = [c for c in spec.text if c in columns]
    # trees take ordinal codes with NaN for missing (random forests accept NaN since scikit-learn 1.4);
    # the ColumnTransformer puts categorical columns first, so they are the first n columns
    trees = params.model != "linear"
    pre = preprocessor(numeric, categorical, params, for_trees=trees, text=text)
    return Pipeline([("features", RowFeatures.from_spec(spec)), ("preprocess", pre),
                     ("model", estimator(spec.task, params, len(categorical) if trees else 0))])


def encode_label(y: pd.Series, spec: FeatureSpec) -> np.ndarray:
    """Binary labels as 0/1 (1 = the positive class), multiclass as 0..k-1 in spec.classes order,
    regression values as floats. Values outside spec.classes raise DataError."""
    if spec.task == "regression":
        return y.to_numpy(dtype=np.float64)
    if spec.positive_class is not None:
        return (y.to_numpy() == spec.positive_class).astype(np.int64)
    index = {c: i for i, c in enumerate(spec.classes)}
    unknown = set(pd.unique(y)) - set(index)
    if unknown:
        raise DataError(f"label '{spec.label}' has classes not seen in training: {sorted(map(str, unknown))}")
    return y.map(index).to_numpy(dtype=np.int64)


def score_fn(task: str, n_classes: int):
    """(name, f(y, pred) higher-is-better) for choosing on the validation split."""
    from sklearn.metrics import log_loss, roc_auc_score

    if task == "regression":
        return "neg_rmse", lambda y, p: -float(np.sqrt(np.mean((np.asarray(y, float) - p) ** 2)))
    if n_classes == 2:
        return "roc_auc", lambda y, p: float(roc_auc_score(y, p))
    return "neg_log_loss", lambda y, p: -float(log_loss(y, p, labels=np.arange(p.shape[1])))


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y, p)
    f1 = 2 * precision * recall / np.clip(precision + recall, 1e-12, None)
    return float(thresholds[int(np.argmax(f1[:-1]))]) if len(thresholds) else 0.5


def staged_best(model: Pipeline, X: pd.DataFrame, y, task: str, score) -> tuple[int, np.ndarray]:
    """The boosting iteration count with the best validation score, and its predictions."""
    est = model.named_steps["model"]
    Xt = model[:-1].transform(X)
    staged = est.staged_predict(Xt) if task == "regression" else est.staged_predict_proba(Xt)
    best, best_i, best_p = -np.inf, 0, None
    for i, p in enumerate(staged, start=1):
        if task != "regression" and p.shape[1] == 2:
            p = p[:, 1]
        s = score(y, p)
        if s > best:
            best, best_i, best_p = s, i, p
    return best_i, best_p


def fit(train: tuple[pd.DataFrame, pd.Series], valid: tuple[pd.DataFrame, pd.Series],
        spec: FeatureSpec, params: TrainParams, with_baseline: bool = True) -> TrainResult:
    """Fit model and baseline; choose iterations and threshold on valid; refit on train + valid.
    Without the baseline (`with_baseline=False`, a segment's model) its fields are None and NaN."""
    (X_tr, y_tr), (X_va, y_va) = train, valid
    y_tr, y_va = encode_label(y_tr, spec), encode_label(y_va, spec)
    if spec.task == "classification":
        if len(np.unique(y_tr)) < 2:
            raise DataError("train: the training rows hold a single class; use more data or another split")
    n_classes = len(spec.classes) if spec.task == "classification" else 0
    name, score = score_fn(spec.task, n_classes)

    model = build_pipeline(spec, params)
    model.fit(X_tr, y_tr)
    best_iter = None
    if params.model == "hist_gradient_boosting":
        best_iter, valid_pred = staged_best(model, X_va, y_va, spec.task, score)
    else:
        valid_pred = scores(model, X_va, spec.task)
    valid_score = score(y_va, valid_pred)
    threshold = None
    if n_classes == 2:
        threshold = best_f1_threshold(y_va, valid_pred) if params.threshold == "auto" else float(params.threshold)

    X_all = pd.concat([X_tr, X_va])
    y_all = np.concatenate([y_tr, y_va])
    baseline_final, valid_base = None, float("nan")
    if with_baseline:
        base_cols = [c for c in params.baseline_columns if c in spec.features]
        missing = [c for c in params.baseline_columns if c not in spec.features]
        if missing:
            raise DataError(f"train.baseline_columns {missing} are not feature columns; choose from {spec.features}")
        baseline = baseline_pipeline(spec, params, base_cols)
        baseline.fit(X_tr, y_tr)
        valid_base = score(y_va, scores(baseline, X_va, spec.task))
        baseline_final = clone(baseline).fit(X_all, y_all)

    final = build_pipeline(spec, params)
    if best_iter is not None:
        final.set_params(model__max_iter=best_iter)
    final.fit(X_all, y_all)
    return TrainResult(final, baseline_final, threshold, best_iter, valid_score, valid_base, name, spec.features,
                       valid_pred=np.asarray(valid_pred))


def baseline_pipeline(spec: FeatureSpec, params: TrainParams, columns: list[str]) -> Pipeline:
    """A plain gradient-boosting model on `columns` (default hyperparameters), or the prior if none."""
    if not columns:
        est = DummyRegressor() if spec.task == "regression" else DummyClassifier(strategy="prior")
        return Pipeline([("model", est)])
    plain = TrainParams(model="hist_gradient_boosting", max_iter=100, learning_rate=0.1,
                        max_leaf_nodes=31, min_samples_leaf=20, l2_regularization=0.0,
                        max_categories=params.max_categories, seed=params.seed)
    return build_pipeline(spec, plain, columns)


def save(result: TrainResult, spec: FeatureSpec, X_example: pd.DataFrame, model_dir: Path, baseline_dir: Path) -> None:
    """Save model and baseline in MLflow sklearn format with signature and input example."""
    with quiet_mlflow():
        _save(result, spec, X_example, model_dir, baseline_dir)


def signature(spec: FeatureSpec, X: pd.DataFrame, outputs: np.ndarray):
    """The MLflow signature of the model's inputs: the source columns it uses (required) and the id,
    aside and left-out columns a client may send with them (optional: accepted and logged, not used),
    each typed as the source holds it (the time column too: the model reads it by the data's rule)."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, DataType, Schema

    cols = [ColSpec(DataType[spec.input_types.get(c, "string")], c) for c in spec.inputs]
    cols += [ColSpec(DataType[spec.input_types.get(c, "string")], c, required=False) for c in spec.passthrough]
    # the outputs' schema only: inferring one from X would warn about its integer columns, which the
    # signature above already types from the source
    return ModelSignature(Schema(cols), infer_signature(pd.DataFrame({"x": [0.0]}), outputs).outputs)


def input_example(spec: FeatureSpec, X: pd.DataFrame) -> pd.DataFrame:
    """A few training rows as a client sends them (the time column back in its source form)."""

    example = X.head(5).reset_index(drop=True).copy()
    if spec.time_column and spec.time_column in example:
        example[spec.time_column] = unparse(example[spec.time_column], spec.input_types.get(spec.time_column, "datetime"),
                                            spec.time_format, spec.time_unit)
    return example


def _save(result: TrainResult, spec: FeatureSpec, X_example: pd.DataFrame, model_dir: Path, baseline_dir: Path) -> None:
    import shutil

    import mlflow.sklearn

    example = input_example(spec, X_example)
    for pipe, folder in ((result.model, model_dir), (result.baseline, baseline_dir)):
        if folder.exists():
            shutil.rmtree(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        out = scores(pipe, X_example.head(5), spec.task)
        provenance.without_thread_counts(pipe)  # the same bytes whatever the training machine's cores
        mlflow.sklearn.save_model(
            pipe, str(folder),
            signature=signature(spec, X_example.head(5), out),
            input_example=example,
            serialization_format="cloudpickle",
            pyfunc_predict_fn="predict" if spec.task == "regression" else "predict_proba",
            pip_requirements=_requirements(),
            metadata={"mlcycle": json.loads(json.dumps({
                "task": spec.task, "label": spec.label, "classes": spec.classes,
                "positive_class": spec.positive_class, "threshold": result.threshold,
                "best_iter": result.best_iter, "inputs": spec.inputs, "passthrough": spec.passthrough,
                "provided_at_prediction": spec.provided_at_prediction, "time_column": spec.time_column,
                **({"segments": result.segments.meta()} if result.segments is not None and pipe is result.model else {}),
            }, default=str))},
        )
        provenance.stable_model_identity(folder)  # the same model, the same bytes (no save time, uuid from content)


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("scikit-learn", "pandas", "numpy", "cloudpickle")]


def load(model_dir: Path):
    """The sklearn Pipeline and the mlcycle metadata saved with it."""
    meta = model_metadata(Path(model_dir))
    with quiet_mlflow():
        import mlflow.sklearn

        return mlflow.sklearn.load_model(str(model_dir)), meta


def compile_check(result: TrainResult, spec: FeatureSpec, model_dir: Path,
                  rows: list[pd.DataFrame]) -> compiled.Verdict:
    """Export the saved model to its compiled scoring form (`core.compiled`) and prove it on `rows`
    (the validation and holdout inputs: only the two paths' answers are compared, nothing is chosen
    on them): the form and the verdict go into the model folder, registered with it; a form that
    does not agree, or a family that cannot be exported, leaves the version to the pipeline. The
    verdict's tags go to the stage run (the version gets them at registration)."""
    verdict = compiled.build(result.model, model_dir, rows, spec.task, result.threshold)
    provenance.stable_model_identity(model_dir)  # the compiled form is part of the model's content
    record.tags(verdict.tags())
    return verdict


def write_metrics(result: TrainResult, path: Path, search: dict | None = None,
                  verdict: compiled.Verdict | None = None) -> None:
    """reports/metrics/train.json: validation scores, the model selection's under `search`, the
    compiled form's check under `compiled`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = result.metrics() | ({"search": search} if search else {}) | (
        {"compiled": verdict.metrics()} if verdict else {}) | (
        {"segments": result.segments.metrics()} if result.segments is not None else {})
    path.write_text(json.dumps(out, indent=2) + "\n")



def summary(result: TrainResult, spec: FeatureSpec) -> pd.DataFrame:
    """What was chosen on the validation split, for the report."""
    rows = [
        {"item": "model", "value": type(getattr(result.model, "global_model", result.model).named_steps["model"]).__name__},
        {"item": "features", "value": f"{len(spec.numeric)} numeric, {len(spec.categorical)} categorical"
                                       + (f", {len(spec.text)} text ({', '.join(spec.text)})" if spec.text else "")},
        {"item": f"validation {result.score_name}", "value": f"{result.valid_score:.4f}"},
        {"item": f"baseline validation {result.score_name}", "value": f"{result.valid_baseline_score:.4f}"},
    ]
    if result.best_iter is not None:
        rows.append({"item": "boosting iterations (best on valid)", "value": str(result.best_iter)})
    if result.threshold is not None:
        rows.append({"item": "decision threshold (best F1 on valid)", "value": f"{result.threshold:.4f}"})
    if result.segments is not None:
        seg = result.segments
        rows.append({"item": f"segment models ({', '.join(seg.by)})",
                     "value": f"{len(seg.routed)} of {len(seg.items)} segments; the rest go to the global model"})
    return pd.DataFrame(rows).set_index("item")


def takeaways(result: TrainResult, trials: int = 0) -> str:
    """What this run's fit showed on the validation split, as Markdown bullets: the model against the
    baseline, and what was chosen there. `trials`: candidates the model selection scored."""
    from mlcycle.core.scoring import better

    name = result.score_name
    diff = result.valid_score - result.valid_baseline_score
    verdict = ("better than" if better(name, result.valid_score, result.valid_baseline_score)
               else "no better than")
    lines = [f"- validation {name}: {result.valid_score:.4f} for the model, {result.valid_baseline_score:.4f} "
             f"for the baseline ({diff:+.4f}): the model is {verdict} the baseline."]
    chosen = [f"{result.best_iter} boosting iterations"] if result.best_iter is not None else []
    if result.threshold is not None:
        chosen.append(f"decision threshold {result.threshold:.3f}")
    if chosen:
        lines.append("- chosen on the validation split: " + ", ".join(chosen) + ".")
    if trials:
        lines.append(f"- the model selection scored {trials} candidate(s).")
    return "\n".join(lines)
