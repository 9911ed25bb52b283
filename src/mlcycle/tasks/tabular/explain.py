"""Explanations (stage `evaluate`, and `mlcycle model explain`): which features the model relies on.

- Permutation importance on a sample of the holdout (scikit-learn's `permutation_importance`: how
  much the holdout score drops when one feature's values are shuffled), on the raw input columns
  the Pipeline takes, so a categorical column counts once.
- Partial dependence of the top features (scikit-learn's `partial_dependence`: the average
  prediction as one feature is set to each value of a grid).
- Contributions for single rows: for each feature, the row's predicted score minus the average
  score when that feature alone takes values drawn from the training rows (the rest of the row
  kept). Positive: this value pushes the score up compared with a typical value. One feature at a
  time, so contributions do not add up to the prediction exactly (unlike SHAP values); they need
  nothing but the model's own predict and work for any Pipeline.
- Words of text columns (data.text_columns): for the most frequent terms of the fitted vocabulary,
  the average change of the score of the rows holding the word when it is deleted from their text
  (occlusion). Measured through the model's own predict, it works whether the words reach the
  estimator as TF-IDF weights (linear) or through SVD components (trees), where no coefficient
  belongs to a word; and it is in the score's units, as the row contributions are.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd

from mlcycle.core import literal, record, text
from mlcycle.core.errors import DataError
from mlcycle.core.scoring import scores
from mlcycle.core.tables import read_table


def scoring(task: str, binary: bool) -> str:
    """The holdout score permutation importance measures the drop of."""
    if task == "regression":
        return "neg_root_mean_squared_error"
    return "roc_auc" if binary else "neg_log_loss"


def sample(X: pd.DataFrame, y, n: int, seed: int):
    """At most n rows of (X, y), drawn without replacement, in their original order."""
    if len(X) <= n:
        return X, np.asarray(y)
    rows = np.sort(np.random.default_rng(seed).choice(len(X), n, replace=False))
    return X.iloc[rows], np.asarray(y)[rows]


def permutation_importance(model, X: pd.DataFrame, y, task: str, binary: bool, rows: int, seed: int,
                           repeats: int = 5, fast=None) -> pd.DataFrame:
    """Mean and standard deviation of the score drop per feature, most important first.

    `fast`: the model's compiled form (`compiled.load`, proven equal to the pipeline at training).
    Its feature matrix is made once and each shuffle moves the rows of one input column's features,
    scored by the pipeline's own estimator, instead of the pipeline converting every shuffled copy
    of the rows again: the same shuffles (scikit-learn's, same seed) and the same scores, when
    `InputBlocks.proven` finds the matrix equal to the pipeline's on the rows and on a copy with
    every column shuffled; else (or without `fast`) the pipeline scores every copy.
    `attrs["path"]` says which."""
    from sklearn.inspection import permutation_importance as pi

    Xs, ys = sample(X, y, rows, seed)
    blocks = InputBlocks.proven(model, fast, Xs, seed)
    target, data = (model, Xs) if blocks is None else (blocks, blocks.positions())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = pi(target, data, ys, scoring=scoring(task, binary), n_repeats=repeats, random_state=seed)
    out = pd.DataFrame({"feature": list(X.columns), "importance": r.importances_mean, "std": r.importances_std})
    out["rank"] = out["importance"].rank(ascending=False, method="first").astype(int)
    out.attrs["scoring"] = scoring(task, binary)
    out.attrs["rows"] = len(Xs)
    out.attrs["path"] = "pipeline" if blocks is None else "compiled features"
    return out.sort_values("rank").reset_index(drop=True)


class InputBlocks:
    """Rows given as row positions, one column per input column (what permutation importance shuffles),
    scored by a pipeline's estimator on the feature matrix of the original rows: input column j of
    row i takes the features input column j made for row `positions[i, j]`. Built by `proven`."""

    def __init__(self, pipeline, matrix: np.ndarray, owners: list[list[int]]):
        self.pipeline, self.estimator = pipeline, pipeline[-1]
        self.matrix, self.owners = matrix, owners
        self.classes_ = getattr(self.estimator, "classes_", None)
        self._base: dict[str, np.ndarray] = {}  # the estimator's answers on the original rows, by method

    def __sklearn_tags__(self):  # a classifier or a regressor as the pipeline is (scikit-learn's scorers ask)
        return self.pipeline.__sklearn_tags__()

    def fit(self, *_):  # scikit-learn's scorers take estimators only; this one is fitted already
        return self

    def positions(self) -> np.ndarray:
        """The unshuffled rows: every input column at its own row."""
        return np.repeat(np.arange(len(self.matrix))[:, None], len(self.owners), axis=1)

    def rows(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The feature matrix of the rows at `positions` and which of its rows differ from the original
        rows' (a shuffled category often lands on its own value: that row's score is known)."""
        F, changed = self.matrix.copy(), np.zeros(len(self.matrix), dtype=bool)
        for j, cols in enumerate(self.owners):
            if cols and not np.array_equal(positions[:, j], np.arange(len(F))):
                F[:, cols] = self.matrix[positions[:, j]][:, cols]
                same = (F[:, cols] == self.matrix[:, cols]) | (np.isnan(F[:, cols]) & np.isnan(self.matrix[:, cols]))
                changed |= ~same.all(axis=1)
        return F, changed

    def _answer(self, method: str, positions: np.ndarray) -> np.ndarray:
        """The estimator's `method` on the rows at `positions`: rows equal to the original rows keep the
        original rows' answers (the estimator scores each row on its own), the others are scored."""
        if method not in self._base:
            self._base[method] = getattr(self.estimator, method)(self.matrix)
        F, changed = self.rows(positions)
        out = self._base[method].copy()
        if changed.any():
            out[changed] = getattr(self.estimator, method)(F[changed])
        return out

    def predict_proba(self, positions: np.ndarray) -> np.ndarray:
        return self._answer("predict_proba", positions)

    def predict(self, positions: np.ndarray) -> np.ndarray:
        return self._answer("predict", positions)

    @classmethod
    def proven(cls, model, fast, X: pd.DataFrame, seed: int) -> InputBlocks | None:
        """The blocks of the rows X when the compiled form `fast` makes the features the pipeline
        `model` gives its estimator: equal (NaN for NaN) on X and on a copy of X with every column
        shuffled on its own (so each input column's features come from it alone); else None."""
        if fast is None or not hasattr(model, "steps") or len(model.steps) < 2:
            return None
        try:
            F, made = fast.blocks(X)
        except (ValueError, TypeError, KeyError):  # a value the compiled conversion refuses: the pipeline scores
            return None
        owners = [made.get(c, []) for c in X.columns]
        rng = np.random.default_rng(seed)
        shuffled = np.column_stack([rng.permutation(len(X)) for _ in X.columns]) if len(X.columns) else None
        mixed = X.copy()
        for j, c in enumerate(X.columns):
            mixed[c] = X[c].iloc[shuffled[:, j]].set_axis(X.index)  # its dtype kept, as scikit-learn shuffles
        blocks = cls(model, F, owners)

        def pipeline_features(rows: pd.DataFrame) -> np.ndarray:
            out = np.asarray(model[:-1].transform(rows), dtype=np.float64)
            return out.astype(np.float32).astype(np.float64) if fast.float32 else out

        if F.shape != pipeline_features(X).shape or sorted(sum(owners, [])) != list(range(F.shape[1])):
            return None
        same = np.array_equal(F, pipeline_features(X), equal_nan=True) and \
            np.array_equal(blocks.rows(shuffled)[0], pipeline_features(mixed), equal_nan=True)
        return blocks if same else None


def partial_dependence(model, X: pd.DataFrame, features: list[str], categorical: list[str], task: str,
                       rows: int, seed: int, grid: int = 20) -> dict[str, pd.DataFrame]:
    """feature -> the average prediction over a grid of its values (a column per class for multiclass)."""
    from sklearn.inspection import partial_dependence as pd_

    Xs, _ = sample(X, np.zeros(len(X)), rows, seed)
    # scikit-learn's grid needs floats: integer columns are varied as floats (the model reads both)
    ints = [c for c in features if pd.api.types.is_integer_dtype(Xs[c])]
    Xs = Xs.astype({c: "float64" for c in ints}) if ints else Xs
    out = {}
    for f in features:
        cat = f in categorical
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # categories: the most frequent ones (sklearn cannot sort a column mixing text and NaN)
            custom = {f: np.array(Xs[f].dropna().value_counts().index[:grid].tolist(), dtype=object)} if cat else None
            r = pd_(model, Xs, [f], kind="average", grid_resolution=grid,
                    categorical_features=[f] if cat else None, custom_values=custom,
                    response_method="auto" if task == "regression" else "predict_proba")
        avg = np.atleast_2d(r["average"])
        frame = pd.DataFrame({"value": r["grid_values"][0]})
        if avg.shape[0] == 1:
            frame["prediction"] = avg[0]
        else:
            for k in range(avg.shape[0]):
                frame[f"class_{k}"] = avg[k]
        frame.attrs["categorical"] = cat
        out[f] = frame
    return out


def pdp_candidates(importance: pd.DataFrame, spec) -> list[str]:
    """Input columns in order of importance that a partial-dependence grid can vary (not dates, not text)."""
    return [f for f in importance["feature"] if spec.kinds.get(f) not in ("time", "datetime", "text")]


def _score_1d(model, X: pd.DataFrame, task: str) -> np.ndarray:
    """The model's scores as floats: a value or the positive class's probability a row, or a row of
    class probabilities (multiclass)."""
    return np.asarray(scores(model, X, task), dtype=float)


def word_effects(model, X: pd.DataFrame, spec, column: str, words: list[str], task: str) -> pd.DataFrame:
    """Per word of `words`: the rows of `X` whose text column `column` holds it and the mean change of
    their score when it is deleted (score with the word minus score without: positive, the word pushes
    the score up). Multiclass: the change of the probability of each row's predicted class."""
    step = text.fitted(model)[column]
    tokens = step.words(X[column]).map(set)
    base = _score_1d(model, X, task)
    cls = base.argmax(axis=1) if base.ndim == 2 else None
    batches, owners = [], []
    for w in words:
        has = tokens.map(lambda ws, w=w: w in ws).to_numpy()
        if has.any():
            part = X[has].copy()
            part[column] = text.without_word(part[column], w, step.lowercase).to_numpy()
            batches.append(part)
            owners.append((w, np.flatnonzero(has)))
    if not batches:
        return pd.DataFrame(columns=["column", "word", "rows", "effect"])
    after = _score_1d(model, pd.concat(batches, ignore_index=True), task)
    out, at = [], 0
    for w, idx in owners:
        a = after[at:at + len(idx)]
        at += len(idx)
        if cls is not None:
            before, a = base[idx, cls[idx]], a[np.arange(len(idx)), cls[idx]]
        else:
            before = base[idx]
        out.append({"column": column, "word": w, "rows": len(idx), "effect": float(np.mean(before - a))})
    return pd.DataFrame(out)


def text_words(model, X: pd.DataFrame, spec, rows: int, seed: int, candidates: int = 40,
               top: int = 15) -> pd.DataFrame:
    """The words that weigh most in each text column (see the module docstring): the `candidates`
    terms of the fitted vocabulary found in most of `rows` sampled rows, scored by `word_effects`,
    the `top` of each column by the size of their effect. Empty for a model without text columns.
    Words come from the vocabulary (terms in at least train.text.min_df training rows)."""
    steps = text.fitted(model)
    frames = []
    Xs, _ = sample(X, np.zeros(len(X)), rows, seed)
    for c in spec.text:
        if c not in steps:
            continue
        step = steps[c]
        counts = step.words(Xs[c]).map(set).explode().dropna()
        counts = counts[counts.isin(step.vocabulary)].value_counts()
        effects = word_effects(model, Xs, spec, c, counts.index[:candidates].tolist(), spec.task)
        if len(effects):
            effects = effects.reindex(effects["effect"].abs().sort_values(ascending=False, kind="stable").index)
            frames.append(effects.head(top))
    if not frames:
        return pd.DataFrame(columns=["column", "word", "rows", "effect"])
    return pd.concat(frames, ignore_index=True)


def row_words(model, row: pd.DataFrame, spec, top: int = 10) -> pd.DataFrame:
    """For one row: each word of its text columns and the change of its score when the word is
    deleted (positive: the word pushes the score up), largest first."""
    frames = []
    steps = text.fitted(model)
    for c in spec.text:
        if c in steps and c in row.columns:
            words = sorted(set(steps[c].words(row[c]).iloc[0]))
            frames.append(word_effects(model, row.reset_index(drop=True), spec, c, words, spec.task))
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["column", "word", "rows", "effect"])
    out = pd.concat(frames, ignore_index=True)
    return out.reindex(out["effect"].abs().sort_values(ascending=False, kind="stable").index).head(top)


def plot_words(words: pd.DataFrame, ylabel: str):
    """Bars of the words' effects, one panel per text column."""
    from matplotlib.figure import Figure

    cols = list(dict.fromkeys(words["column"]))
    fig = Figure(figsize=(5 * max(len(cols), 1), 0.3 * max(words["column"].value_counts().max(), 1) + 1.4))
    axes = np.atleast_1d(fig.subplots(1, max(len(cols), 1)))
    for ax, c in zip(axes, cols, strict=False):
        t = words[words["column"] == c].iloc[::-1]
        ax.barh(t["word"].astype(str), t["effect"], color=np.where(t["effect"] >= 0, "#4c72b0", "#c44e52"))
        ax.set(xlabel=f"change of the {ylabel} when the word is deleted", title=f"Words of '{c}'")
    fig.tight_layout()
    return fig


def categorical_inputs(spec) -> list[str]:
    """Input columns whose values are categories (text or true/false) rather than numbers."""
    return [c for c in spec.inputs if spec.kinds.get(c) in ("category", "boolean")]


@literal.figures()
def plot_importance(table: pd.DataFrame, top: int = 15):
    from matplotlib.figure import Figure

    t = table.head(top).iloc[::-1]
    fig = Figure(figsize=(7, 0.3 * len(t) + 1.2))
    ax = fig.subplots()
    ax.barh(literal.labels(t["feature"]), t["importance"], xerr=t["std"], color="#4c72b0")
    ax.set(xlabel=f"drop in {table.attrs.get('scoring', 'score')} when shuffled",
           title=f"Permutation importance ({table.attrs.get('rows', '?'):,} holdout rows)")
    fig.tight_layout()
    return fig


@literal.figures()
def plot_partial_dependence(curves: dict[str, pd.DataFrame], ylabel: str):
    from matplotlib.figure import Figure

    k = max(len(curves), 1)
    fig = Figure(figsize=(4 * k, 3.4))
    axes = np.atleast_1d(fig.subplots(1, k))
    for ax, (f, c) in zip(axes, curves.items(), strict=False):
        ys = [col for col in c.columns if col != "value"]
        if c.attrs.get("categorical"):
            x = np.arange(len(c))
            ax.bar(x, c[ys[0]], color="#4c72b0")
            ax.set_xticks(x, literal.labels(c["value"], 24), rotation=60, ha="right", fontsize=7)
        else:
            for col in ys:
                ax.plot(c["value"], c[col], label=None if col == "prediction" else col)
            if len(ys) > 1:
                ax.legend(fontsize=7)
        ax.set(xlabel=literal.label(f), ylabel=ylabel, title=f"Partial dependence: {literal.label(f, 30)}")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- single rows

def contributions(model, row: pd.DataFrame, background: pd.DataFrame, task: str,
                  n_background: int = 200, seed: int = 0) -> pd.DataFrame:
    """Per feature: the row's value and its contribution (score minus the average score with that
    feature replaced by background values), largest magnitude first. `row`: one row, the model's
    input columns; `background`: rows of the training table."""
    if len(row) != 1:
        raise ValueError(f"contributions explain one row at a time, got {len(row)}")
    features = list(background.columns)
    bg = background.sample(n=min(n_background, len(background)), random_state=seed).reset_index(drop=True)
    def f(X: pd.DataFrame) -> np.ndarray:
        return np.asarray(scores(model, X, task), dtype=float)

    base = f(row)
    cls = None
    if base.ndim == 2:  # multiclass: the predicted class's probability
        cls = int(base[0].argmax())
        base = base[:, cls]
    batch = pd.concat([row] * (len(bg) * len(features)), ignore_index=True)
    for j, c in enumerate(features):
        batch.loc[j * len(bg):(j + 1) * len(bg) - 1, c] = bg[c].to_numpy()
    for c, dtype in background.dtypes.items():
        try:
            batch[c] = batch[c].astype(dtype)
        except (TypeError, ValueError):  # e.g. a missing value in an integer column: keep it as it is
            pass
    perturbed = f(batch)
    if cls is not None:
        perturbed = perturbed[:, cls]
    means = perturbed.reshape(len(features), len(bg)).mean(axis=1)
    out = pd.DataFrame({"feature": features, "value": [row.iloc[0][c] for c in features],
                        "contribution": float(base[0]) - means})
    out = out.reindex(out["contribution"].abs().sort_values(ascending=False, kind="stable").index)
    out.attrs.update(score=float(base[0]), predicted_class=cls)
    return out.reset_index(drop=True)


def score_label(spec, cls: int | None) -> str:
    """What an explained row's score is (`contributions(...).attrs["predicted_class"]` is `cls`): the
    predicted value, or the probability of the positive class or of class `cls`."""
    if spec.task == "regression":
        return "predicted value"
    return f"P({spec.positive_class})" if cls is None else f"P({spec.classes[cls]})"


def rows_from(text: str | None, file: str | None) -> pd.DataFrame:
    """Rows to explain: a JSON object (or list of objects), or a CSV / Parquet file."""
    if text:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"--row is not valid JSON ({exc}); e.g. --row '{{\"carrier\": \"UA\", \"distance\": 1400}}'") from None
        return pd.DataFrame(doc if isinstance(doc, list) else [doc])
    if file:

        return read_table(file)
    raise DataError("give a row with --row '{json}' or a file with --input rows.csv")


def prepare(rows: pd.DataFrame, background: pd.DataFrame) -> pd.DataFrame:
    """Rows in the model's input columns and types; a missing feature is an error naming it."""
    missing = [c for c in background.columns if c not in rows.columns]
    if missing:
        raise DataError(f"the row lacks the model's features {missing}; the model takes: {list(background.columns)}")
    out = rows[list(background.columns)].copy()
    for c, dtype in background.dtypes.items():
        if pd.api.types.is_bool_dtype(dtype):
            out[c] = out[c].map({True: True, False: False, "true": True, "false": False, "True": True, "False": False})
        elif pd.api.types.is_numeric_dtype(dtype):
            num = pd.to_numeric(out[c], errors="coerce")
            out[c] = num.astype(dtype) if pd.api.types.is_float_dtype(dtype) or num.notna().all() else num
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            out[c] = pd.to_datetime(out[c], utc=True, format="ISO8601").dt.tz_localize(None).astype(dtype)
        else:
            out[c] = out[c].astype("str")
    return out.reset_index(drop=True)


def document(importance: pd.DataFrame, curves: dict[str, pd.DataFrame], words: pd.DataFrame | None = None) -> dict:
    """The importance table, the partial-dependence curves and the words of text columns (`text_words`)
    as reports/explanations.json holds them."""
    shown = [] if words is None else [{"column": str(r["column"]), "word": str(r["word"]), "rows": int(r["rows"]),
                                       "effect": round(float(r["effect"]), 6)} for _, r in words.iterrows()]
    return {"text_words": shown, "scoring": importance.attrs.get("scoring"), "rows": importance.attrs.get("rows"),
            "importance": [{"rank": int(r["rank"]), "feature": str(r["feature"]),
                            "importance": round(float(r["importance"]), 6), "std": round(float(r["std"]), 6)}
                           for _, r in importance.iterrows()],
            "pdp_features": list(curves),
            "partial_dependence": {f: json.loads(c.to_json(orient="records", double_precision=6))
                                   for f, c in curves.items()}}


def write(importance: pd.DataFrame, curves: dict[str, pd.DataFrame], path, words: pd.DataFrame | None = None) -> None:
    """reports/explanations.json: the importance table, the partial-dependence curves, the words."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document(importance, curves, words), indent=1) + "\n")
    record.artifacts([path], "evaluation")
