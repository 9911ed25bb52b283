"""The compiled scoring path: a fitted pipeline exported to a form that scores rows without
scikit-learn's per-call overhead, and the proof, made once at registration, that it answers as the
pipeline does.

The trees go to Treelite (its C++ scorer, GTIL, reads them from one file); the preprocessing
becomes arrays: `RowFeatures.column` conversions done with numpy for the values requests carry
(numbers, text, booleans, datetimes; anything else goes through `RowFeatures.column` itself) and the
ordinal codes of the ColumnTransformer as a table per category column, read off the fitted encoder
(infrequent, missing and unseen values get its codes). Why Treelite: skl2onnx (1.20) cannot convert
HistGradientBoosting with categorical splits, which these trees use (its converter fails on them);
TL2cgen (Treelite's C code generator) compiled the trees in about 30 s but its bundled Treelite
answered other probabilities on some rows, which the check below refuses. GTIL walks the trees row
by row, so batches of PIPELINE_FROM rows or more go to the pipeline when the form holds it (as
served): small requests get the fast path, large batches lose nothing.

`build` runs at training time: export, score the given rows both ways, compare, and write the
form and the verdict into the MLflow model folder (`compiled/`), so the registry holds them with
the model. A family it cannot export (a linear model, a dummy), or a model with text columns (their TF-IDF
and SVD steps have no array form here), gets a verdict saying so and no form.
`load` gives the compiled scorer only when the verdict says it agreed; anything else is served by
the pipeline, and the reason travels with the model version.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

from mlcycle.core import scoring
from mlcycle.core.errors import DataError, ExportError
from mlcycle.core.spec import BOOL, DATE_PARTS, RowFeatures
from mlcycle.core.tables import parse_series, time_in_range
from mlcycle.core.text import TextFeatures

FOLDER = "compiled"  # inside the MLflow model folder
TREES, PLAN, VERDICT = "trees.tl", "plan.json", "check.json"
FORMAT = 1
# Both paths add the same float64 leaf values in another order, so they differ by rounding only
# (about 1e-15 per tree); a wrong split or code moves a probability by far more than 1e-6.
TOLERANCE = 1e-6
# Treelite's scorer (GTIL) walks the trees row by row: far ahead of the pipeline on small requests,
# where the pipeline's fixed cost per call (frames, checks, thread start) dominates, behind it on large
# batches, where scikit-learn's compiled tree loops win per row. From this many rows on, a compiled
# form that holds the pipeline (as served) hands the batch to it: same answers, the faster path.
PIPELINE_FROM = 300
# Request rows (the server's JSON records) go straight to the feature matrix (`Compiled.prepare`),
# without a DataFrame; registration proves that path on this many rows in the form a client sends.
REQUEST_ROWS_CHECKED = 2000
# ISO 8601 times the request path reads itself (date, or date and hh:mm[:ss[.ffffff]], an optional
# offset): Python and pandas read these alike; any other text goes to the frame path (pandas).
ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?(?:Z|[+-]\d{2}:\d{2})?")
NAN = float("nan")


@dataclass
class Verdict:
    """What registration found: whether the compiled form answers as the pipeline, and the figures."""

    path: str  # "compiled" (it agreed) or "sklearn" (not exported, or it disagreed)
    reason: str  # one sentence for people
    rows: int = 0  # rows scored both ways
    max_abs_diff: float | None = None  # largest |compiled - pipeline| of any probability (or value)
    decisions_differ: int = 0  # rows whose decision (class at the threshold, top class) differs
    tolerance: float = TOLERANCE
    export_seconds: float = 0.0
    check_seconds: float = 0.0
    engine: str = ""
    request_rows: int = 0  # of those, rows also scored from request records (`Compiled.prepare`)

    @property
    def agrees(self) -> bool:
        return self.path == "compiled"

    def metrics(self) -> dict:
        """Figures for the stage's metrics file (numbers only, the same on every run of the same
        inputs: the timings go to the tags only)."""
        out = {"agrees": int(self.agrees), "rows": self.rows, "request_rows": self.request_rows,
               "decisions_differ": self.decisions_differ}
        if self.max_abs_diff is not None and math.isfinite(self.max_abs_diff):
            out["max_abs_diff"] = self.max_abs_diff
        return out

    def tags(self) -> dict[str, str]:
        """Tags of the model version (and of the stage run)."""
        return {"mlcycle.scoring_path": self.path, "mlcycle.compiled.reason": self.reason[:500],
                "mlcycle.compiled.max_abs_diff": "" if self.max_abs_diff is None else f"{self.max_abs_diff:.3g}",
                "mlcycle.compiled.rows_checked": str(self.rows),
                "mlcycle.compiled.seconds": f"export {self.export_seconds:.3f}, check {self.check_seconds:.3f}"}


class Prepared:
    """Request rows already made the estimator's input by `Compiled.prepare` (what `predict_proba`
    and `predict` take besides a DataFrame)."""

    def __init__(self, matrix: np.ndarray):
        self.matrix = matrix

    def __len__(self) -> int:
        return len(self.matrix)


class Compiled:
    """Scores source rows as the fitted pipeline does: `predict_proba` for classifiers, `predict`
    for regressors, so `core.scoring` takes it as it takes the pipeline. Rows come as a DataFrame,
    or as `Prepared` request records (`prepare`), which skip the frame altogether."""

    nthread = 1  # one worker, one thread, as the server runs (the registration check uses every core)

    def __init__(self, rows: RowFeatures, columns: list[str], codes: dict[str, dict], task: str,
                 classes: list, trees, float32: bool = False, pipeline=None):
        self.rows, self.columns, self.codes, self.task = rows, columns, codes, task
        self.classes_ = np.asarray(classes) if classes else None
        self.trees, self.float32 = trees, float32
        self.pipeline = pipeline  # takes batches of PIPELINE_FROM rows or more (None: every batch here)
        # per category column: value -> code, and the codes of a missing and of an unseen value
        self._lookup = {c: (dict(m["values"]), _num(m["missing"]), _num(m["unknown"])) for c, m in codes.items()}

    def features(self, X: pd.DataFrame) -> np.ndarray:
        """The estimator's input: rows x features, float64 (float32 values for sklearn's decision trees)."""
        return self.blocks(X)[0]

    def blocks(self, X: pd.DataFrame) -> tuple[np.ndarray, dict[str, list[int]]]:
        """`features(X)` and, per input column, the positions of the features made from it (each input
        column is converted on its own, row by row: `explain.permutation_importance` moves its rows)."""
        missing = [c for c in self.rows.inputs if c not in X.columns]
        if missing:
            raise ValueError(f"missing input columns {missing}")
        parts: dict = {}
        made: dict[str, list[str]] = {}
        for c in self.rows.inputs:
            s = X[c]
            got = self._column(c, s)
            got = got if got is not None else self.rows.column(c, s)
            parts.update(got)
            made[c] = list(got)
        at = {name: j for j, name in enumerate(self.columns)}
        return self._matrix(parts, len(X)), {c: [at[k] for k in keys if k in at] for c, keys in made.items()}

    def prepare(self, records: list[dict]) -> Prepared | None:
        """Request rows (dicts of JSON values: numbers, text, booleans, null, ISO times) as the
        estimator's input, without a DataFrame; None when the batch goes to the pipeline (PIPELINE_FROM)
        or a value is not one this path reads (the caller then builds the frame: same answers)."""
        if self.pipeline is not None and len(records) >= PIPELINE_FROM:
            return None
        parts: dict = {}
        for c in self.rows.inputs:
            got = self._values(c, [r.get(c) for r in records])
            if got is None:
                return None
            parts.update(got)
        return Prepared(self._matrix(parts, len(records)))

    def _matrix(self, parts: dict, n: int) -> np.ndarray:
        out = np.empty((n, len(self.columns)), dtype=np.float64)
        for j, c in enumerate(self.columns):
            v = parts[c]
            if c in self._lookup:
                values, missing_code, unknown = self._lookup[c]
                v = v.tolist() if isinstance(v, pd.Series) else v
                out[:, j] = [values.get(x, unknown) if isinstance(x, str) else missing_code for x in v]
            else:
                out[:, j] = v.to_numpy(dtype=np.float64, na_value=np.nan) if isinstance(v, pd.Series) else v
        if self.float32:
            out = out.astype(np.float32).astype(np.float64)
        return out

    def _values(self, c: str, values: list) -> dict | None:
        """Input column `c` of request records as features (lists), for the JSON values the frame
        path reads the same way; None for any other."""
        kind = self.rows.kinds[c]
        if kind == "numeric":
            if all(v is None or type(v) is float or type(v) is int for v in values):
                return {c: [NAN if v is None else float(v) for v in values]}
        elif kind == "category":
            if all(v is None or type(v) is str for v in values):
                return {c: values}
        elif kind == "boolean":
            if all(v is None or type(v) is bool or type(v) is str for v in values):
                return {c: [NAN if v is None else BOOL.get(v, NAN) for v in values]}
        elif kind == "time" and self.rows.time_format in (None, "ISO8601") and not self.rows.time_unit:
            return iso_calendar(values, list(self.rows.calendar))
        return None

    def _column(self, c: str, s: pd.Series) -> dict | None:
        """Input column `c` as features with arrays, for the values this code takes; None for any
        other (then `RowFeatures.column` converts it, as the pipeline does)."""
        kind, dtype = self.rows.kinds[c], s.dtype
        if kind == "numeric":
            return {c: s.to_numpy().astype(np.float64)} if isinstance(dtype, np.dtype) and dtype.kind in "fiub" else None
        if kind == "category":  # text stays text, missing stays missing: what astype("str") leaves
            values = s.tolist()
            return {c: values} if all(isinstance(v, str) or _missing(v) for v in values) else None
        if kind == "boolean":
            if isinstance(dtype, np.dtype) and dtype.kind == "b":
                return {c: s.to_numpy().astype(np.float64)}
            values = s.tolist()
            if not all(type(v) is bool or type(v) is str or _missing(v) for v in values):
                return None
            return {c: np.array([np.nan if _missing(v) else BOOL.get(v, np.nan) for v in values], dtype=np.float64)}
        if kind == "time":
            try:
                t = parse_series(s, c, self.rows.time_format, self.rows.time_unit, key="time column")
            except DataError as exc:  # a request's bad time value: the caller's error (a 4xx)
                raise ValueError(str(exc)) from None
            return calendar_arrays(t, list(self.rows.calendar), "")
        if kind == "datetime" and pd.api.types.is_datetime64_any_dtype(s):
            return calendar_arrays(s, DATE_PARTS, f"{c}_")
        return None

    def _predict(self, X: pd.DataFrame | Prepared) -> np.ndarray:
        # Treelite loads where a compiled form scores, not with every command
        from treelite import gtil

        F = X.matrix if isinstance(X, Prepared) else self.features(X)
        out = gtil.predict(self.trees, F, nthread=self.nthread)
        return np.asarray(out, dtype=np.float64).reshape(len(F), -1)

    def large(self, X) -> bool:
        """Whether this batch goes to the pipeline (see PIPELINE_FROM)."""
        return self.pipeline is not None and not isinstance(X, Prepared) and len(X) >= PIPELINE_FROM

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self.task != "classification":
            raise AttributeError("a regressor has no predict_proba")
        if self.large(X):
            return scoring.class_probabilities(self.pipeline, X)
        out = self._predict(X)
        if out.shape[1] == 1:  # binary: the positive class's probability
            return np.column_stack([1.0 - out[:, 0], out[:, 0]])
        return out

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if self.task == "classification":
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        if self.large(X):
            return scoring.scores(self.pipeline, X, self.task)
        return self._predict(X)[:, 0]

    # ------------------------------------------------------------ files

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.trees.serialize(str(folder / TREES))
        plan = {"format": FORMAT, "task": self.task, "columns": self.columns, "float32": self.float32,
                "classes": None if self.classes_ is None else self.classes_.tolist(),
                "row_features": self.rows.get_params(), "codes": self.codes}
        (folder / PLAN).write_text(json.dumps(plan, default=_plain) + "\n")

    @classmethod
    def load(cls, folder: Path, pipeline=None) -> Compiled:
        import treelite  # as in _predict: only where a compiled form is used

        plan = json.loads((folder / PLAN).read_text())
        if plan.get("format") != FORMAT:
            raise ExportError(f"compiled form of format {plan.get('format')}, this version reads {FORMAT}")
        trees = treelite.Model.deserialize(str(folder / TREES))
        return cls(RowFeatures(**plan["row_features"]), plan["columns"], plan["codes"], plan["task"],
                   plan["classes"] or [], trees, plan["float32"], pipeline)


def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def calendar_arrays(t: pd.Series, parts: list[str], prefix: str) -> dict[str, np.ndarray] | None:
    """`spec.calendar`'s parts of datetimes with numpy (local wall time for zoned values; NaT -> NaN);
    None for values that are not datetimes."""
    if not pd.api.types.is_datetime64_any_dtype(t):
        return None
    if getattr(t.dtype, "tz", None) is not None:
        t = t.dt.tz_localize(None)  # the wall time, which pandas' .dt parts read
    v = t.to_numpy()
    day = v.astype("datetime64[D]")
    get = {
        "year": lambda: day.astype("datetime64[Y]").astype(np.int64) + 1970,
        "month": lambda: day.astype("datetime64[M]").astype(np.int64) % 12 + 1,
        "day_of_week": lambda: (day.astype(np.int64) + 3) % 7,  # 1970-01-01 was a Thursday; Monday is 0
        "day_of_year": lambda: (day - day.astype("datetime64[Y]")).astype(np.int64) + 1,
        "hour": lambda: (v - day).astype("timedelta64[h]").astype(np.int64),
    }
    nat = np.isnat(v)
    out = {}
    for p in parts:
        x = get[p]().astype(np.float64)
        x[nat] = np.nan
        out[f"{prefix}{p}"] = x
    return out


def iso_calendar(values: list, parts: list[str]) -> dict[str, list] | None:
    """`spec.calendar`'s parts of ISO 8601 text times (UTC wall time, as `tables.parse_series` reads
    them; null -> NaN), in Python; None when a value is not of the `ISO` form or not a valid time."""
    out: dict[str, list] = {p: [] for p in parts}
    for v in values:
        if v is None:
            for p in parts:
                out[p].append(NAN)
            continue
        if type(v) is not str or not ISO.fullmatch(v):
            return None
        try:
            t = dt.datetime.fromisoformat(v)
        except ValueError:
            return None
        if not time_in_range(t):  # parse_series refuses it, naming the column
            return None
        if t.tzinfo is not None:
            t = t.astimezone(dt.UTC).replace(tzinfo=None)
        got = {"year": t.year, "month": t.month, "day_of_week": t.weekday(), "hour": t.hour,
               "day_of_year": t.timetuple().tm_yday}
        for p in parts:
            out[p].append(float(got[p]))
    return out


def request_rows(X: pd.DataFrame) -> list[dict]:
    """Rows as a client sends them in JSON: numbers, text, booleans, null, times as ISO 8601 text."""
    def plain(v):
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
            return None
        if isinstance(v, pd.Timestamp):
            return v.isoformat()
        return v.item() if isinstance(v, np.generic) else v

    return [{k: plain(v) for k, v in r.items()} for r in X.astype(object).to_dict(orient="records")]


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(type(v))


# ---------------------------------------------------------------- export

TREE_FAMILIES = ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor",
                 "RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor")


def export(pipe, task: str) -> Compiled:
    """The compiled form of a fitted pipeline `RowFeatures -> ColumnTransformer -> trees`; ExportError
    (naming what it cannot take) for any other shape or family."""
    if not hasattr(pipe, "steps"):
        raise ExportError(f"a {type(pipe).__name__} model (e.g. one model per segment, train.segment_by) "
                          "has no compiled form yet")
    steps = dict(pipe.steps)
    est = steps.get("model")
    family = type(est).__name__
    if family not in TREE_FAMILIES:
        raise ExportError(f"the {family} family has no compiled form (tree ensembles only)")
    rows, pre = steps.get("features"), steps.get("preprocess")
    if not isinstance(rows, RowFeatures) or not isinstance(pre, ColumnTransformer) or len(steps) != 3:
        raise ExportError("the pipeline is not RowFeatures -> ColumnTransformer -> trees")
    codes: dict[str, dict] = {}
    for name, step, cols in pre.transformers_:
        if name == "remainder" and step == "drop":
            continue
        if step == "passthrough" or (isinstance(step, FunctionTransformer) and step.func is None):
            continue  # passed through as they are (a fitted passthrough is an identity FunctionTransformer)
        if isinstance(step, TextFeatures):  # words -> TF-IDF -> SVD: no array form here; the pipeline scores it
            raise ExportError(f"text column '{step.column}' (data.text_columns: TF-IDF of its words) has no "
                              "compiled form; versions with text columns are scored by the pipeline")
        if not isinstance(step, OrdinalEncoder):
            raise ExportError(f"preprocessing step '{name}' ({type(step).__name__}) has no compiled form")
        codes.update(encoder_codes(step, list(cols)))
    columns = [str(c) for c in pre.get_feature_names_out()]
    try:
        import treelite.sklearn  # as in _predict: only where a compiled form is made or used
    except ImportError as exc:
        raise ExportError(f"Treelite is not installed ({exc})") from None
    try:
        with np.errstate(invalid="ignore"):  # it casts the trees' own missing-category slot (NaN) to an integer
            trees = treelite.sklearn.import_model(est)
    except Exception as exc:  # the importer's refusals come as several exception types
        raise ExportError(f"Treelite cannot import {family}: {exc}"[:300]) from None
    classes = list(range(len(est.classes_))) if task == "classification" else []
    return Compiled(rows, columns, codes, task, classes, trees, float32=not family.startswith("Hist"))


def encoder_codes(enc, cols: list[str]) -> dict[str, dict]:
    """Per column of a fitted OrdinalEncoder: {values: {text: code}, missing: code, unknown: code},
    the codes read off the encoder itself (infrequent groups, missing and unknown values included)."""
    cats = [list(c) for c in enc.categories_]
    n = max(len(c) for c in cats) + 2
    frame = {}
    for col, values in zip(cols, cats, strict=True):
        known = [v for v in values if isinstance(v, str)]
        frame[col] = pd.Series(known + [known[0] if known else None] * (n - 2 - len(known)) + [None, "\x00unseen"],
                               dtype="str")
    coded = np.asarray(enc.transform(pd.DataFrame(frame)), dtype=np.float64)
    out = {}
    for j, (col, values) in enumerate(zip(cols, cats, strict=True)):
        known = [v for v in values if isinstance(v, str)]
        vals = {v: _code(coded[i, j]) for i, v in enumerate(known)}
        out[col] = {"values": vals, "missing": _code(coded[n - 2, j]), "unknown": _code(coded[n - 1, j])}
    return out


def _code(v) -> float | None:
    v = float(v)
    return None if math.isnan(v) else v


# ---------------------------------------------------------------- proof

def check(pipe, compiled: Compiled, X: pd.DataFrame, task: str, threshold: float | None,
          tolerance: float = TOLERANCE) -> Verdict:
    """Score X both ways; agree when every probability (value) is within `tolerance` (relative to
    the values' size for a regressor) and every decision is the same. Up to REQUEST_ROWS_CHECKED of
    the rows are also scored as a server gets them (JSON records through `prepare`) and held to the
    same bar against the pipeline's answers on the frame."""
    def answers(model, rows) -> np.ndarray:
        if task == "classification":
            return scoring.class_probabilities(model, rows)
        return scoring.scores(model, rows, task).reshape(len(rows), -1)

    t = time.perf_counter()
    # a large check uses every thread OpenMP allows (the scorer it saves, one); a small one stays on one
    # thread, where starting threads costs more than it saves (and suffers most on a busy machine)
    compiled.nthread = -1 if len(X) >= 20_000 else 1
    try:
        ref, got = answers(pipe, X), answers(compiled, X)
        idx = np.unique(np.linspace(0, len(X) - 1, min(len(X), REQUEST_ROWS_CHECKED)).astype(int)) if len(X) else []
        records = request_rows(X.iloc[idx])
        step = PIPELINE_FROM - 1  # requests of the sizes this path takes
        taken, from_records = [], []
        for i in range(0, len(records), step):
            prepared = compiled.prepare(records[i:i + step])
            if prepared is not None:  # else a value goes to the frame path, checked above
                taken.extend(idx[i:i + step])
                from_records.append(answers(compiled, prepared))
    finally:
        del compiled.nthread
    seconds = time.perf_counter() - t
    if ref.shape != got.shape:
        return Verdict("sklearn", f"the compiled form answers {got.shape[1]} columns, the pipeline {ref.shape[1]}",
                       len(X), None, len(X), tolerance, check_seconds=seconds)
    if from_records:
        ref, got = np.concatenate([ref, ref[taken]]), np.concatenate([got, *from_records])
    both_nan = np.isnan(ref) & np.isnan(got)
    diff = np.where(both_nan, 0.0, np.abs(ref - got))
    max_diff = float(np.nan_to_num(diff, nan=np.inf).max()) if diff.size else 0.0
    scale = 1.0 if task == "classification" else max(1.0, float(np.nanmax(np.abs(ref))) if ref.size else 1.0)
    if task == "classification" and ref.shape[1] == 2:
        cut = 0.5 if threshold is None else threshold
        differ = int(((ref[:, 1] >= cut) != (got[:, 1] >= cut)).sum())
    elif task == "classification":
        differ = int((ref.argmax(axis=1) != got.argmax(axis=1)).sum())
    else:
        differ = 0
    agrees = max_diff <= tolerance * scale and differ == 0
    rows = f"{len(X)} rows ({len(taken)} also as request records)"
    reason = (f"agrees with the pipeline on {rows} (max |diff| {max_diff:.2g} <= {tolerance * scale:.2g}, "
              "same decisions)") if agrees else \
        (f"disagrees with the pipeline on {rows} (max |diff| {max_diff:.3g}, tolerance {tolerance * scale:.2g}, "
         f"{differ} decisions differ): served by the pipeline")
    return Verdict("compiled" if agrees else "sklearn", reason, len(X), max_diff, differ, tolerance * scale,
                   check_seconds=seconds, request_rows=len(taken))


def build(pipe, model_dir: Path, rows: list[pd.DataFrame], task: str, threshold: float | None,
          tolerance: float = TOLERANCE) -> Verdict:
    """Export `pipe`, check it on `rows` (validation, holdout...), and write the form (when it
    agrees) and the verdict into `model_dir/compiled`. Never raises for a model it cannot take."""
    folder = Path(model_dir) / FOLDER
    t = time.perf_counter()
    try:
        compiled = export(pipe, task)
    except ExportError as exc:
        verdict = Verdict("sklearn", f"not compiled: {exc}; served by the pipeline",
                          export_seconds=time.perf_counter() - t)
    else:
        exported = time.perf_counter() - t
        X = pd.concat([r for r in rows if len(r)], ignore_index=True) if any(len(r) for r in rows) else None
        if X is None:
            verdict = Verdict("sklearn", "no rows to check the compiled form on: served by the pipeline")
        else:
            verdict = check(pipe, compiled, X, task, threshold, tolerance)
        verdict.export_seconds = exported
        verdict.engine = _engine()
        if verdict.agrees:
            compiled.save(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # the timings differ run to run: they go to the tags (`Verdict.tags`), not into the model's files,
    # so the same model is the same bytes (docs/reproducibility.md)
    saved = {k: v for k, v in asdict(verdict).items() if k not in TIMINGS}
    (folder / VERDICT).write_text(json.dumps(saved, indent=2, default=_plain) + "\n")
    return verdict


TIMINGS = ("export_seconds", "check_seconds")


def seconds_from_tags(tags: dict[str, str]) -> tuple[float, float] | None:
    """(export, check) seconds from a version's or run's `mlcycle.compiled.seconds` tag, or None."""
    import re

    m = re.fullmatch(r"export ([0-9.]+), check ([0-9.]+)", (tags or {}).get("mlcycle.compiled.seconds", ""))
    return (float(m.group(1)), float(m.group(2))) if m else None


def _engine() -> str:
    from importlib.metadata import version

    return f"treelite {version('treelite')}"


def read_verdict(model_dir: Path) -> Verdict | None:
    """The verdict written at registration, or None for a model trained without one."""
    path = Path(model_dir) / FOLDER / VERDICT
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    known = set(Verdict.__dataclass_fields__)
    return Verdict(**{k: v for k, v in doc.items() if k in known})


def load(model_dir: Path, pipeline=None) -> tuple[Compiled | None, Verdict]:
    """The compiled scorer of an MLflow model folder when registration found it agreeing, else None,
    with the verdict saying which path answers and why (a failure to load is a verdict too). Given
    the folder's `pipeline`, the scorer hands it batches of PIPELINE_FROM rows or more."""
    verdict = read_verdict(model_dir)
    if verdict is None:
        return None, Verdict("sklearn", "the model has no compiled form (trained without one)")
    if not verdict.agrees:
        return None, verdict
    try:
        return Compiled.load(Path(model_dir) / FOLDER, pipeline), verdict
    except Exception as exc:  # a broken or unreadable form: the pipeline answers, the reason says why
        return None, Verdict("sklearn", f"the compiled form cannot be loaded ({type(exc).__name__}: {exc})"[:300]
                             + "; served by the pipeline", verdict.rows, verdict.max_abs_diff)
