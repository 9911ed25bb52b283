"""The feature spec: what a model takes and how a row becomes its features.

`FeatureSpec` is written by the `features` stage (data/processed/features.json) and read by every
later layer: training, evaluation, serving, monitoring. `RowFeatures` is the first step of every
trained model: it turns the rows callers send (the inputs as the source has them) into features
(numbers as floats, booleans as 0/1, categories as text, calendar parts of dates), so the served
model takes the rows users have. Models pickle it by this module's path.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from mlcycle.core.errors import DataError
from mlcycle.core.tables import client_type, parse_series
from mlcycle.core.text import as_text

LABEL = "__label__"  # never a user's column name; renamed back to data.target on write
DATE_PARTS = ["year", "month", "day_of_week"]  # of date columns other than the time column


@dataclass
class FeatureSpec:
    """What the train stage needs to know about the feature tables (written as features.json)."""

    target: str
    task: str
    label: str = ""  # the label column's name in the processed tables
    numeric: list[str] = field(default_factory=list)  # derived features the estimator sees
    categorical: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)  # free-text inputs (data.text_columns): words, not categories
    time_column: str | None = None
    id_columns: list[str] = field(default_factory=list)
    classes: list = field(default_factory=list)
    positive_class: object = None
    label_rule: str = ""
    inputs: list[str] = field(default_factory=list)  # source columns the model takes (requests send these)
    kinds: dict[str, str] = field(default_factory=dict)  # input -> numeric | boolean | datetime | category | text | time
    input_types: dict[str, str] = field(default_factory=dict)  # MLflow type of each input and passthrough column
    passthrough: list[str] = field(default_factory=list)  # accepted in requests and logged, not used (ids, aside, ...)
    calendar: list[str] = field(default_factory=list)  # parts of the time column the model uses
    time_format: str | None = None
    time_unit: str | None = None
    provided_at_prediction: list[str] = field(default_factory=list)  # inputs an enrichment hook adds
    enrichment: str = ""  # what the hook does (its docstring's first paragraph)

    def __post_init__(self) -> None:
        if not self.inputs:  # a spec from before the model derived its own features: inputs were the features
            self.inputs = self.features
            self.kinds = {**{c: "numeric" for c in self.numeric}, **{c: "category" for c in self.categorical}}
        if not self.input_types:
            types = {"numeric": "double", "category": "string", "text": "string", "boolean": "boolean",
                     "datetime": "datetime"}
            self.input_types = {c: types.get(self.kinds.get(c), "string") for c in self.inputs}

    @property
    def features(self) -> list[str]:
        """The columns `RowFeatures` hands the preprocessing: numbers, categories, then text."""
        return [*self.numeric, *self.categorical, *self.text]

    def to_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2, default=_plain) + "\n")

    @classmethod
    def from_json(cls, path: Path) -> FeatureSpec:
        doc = json.loads(path.read_text())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in doc.items() if k in known})


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(type(v))


# ---------------------------------------------------------------- label

def classes_of(label: pd.Series, positive_class=None) -> tuple[list, object]:
    """Sorted class values and the positive class (binary only: given, or the last sorted). A given
    positive class is returned as the class value it equals (`true` given, classes 0 and 1: 1), so
    predictions carry the classes' own type."""
    classes = sorted(pd.unique(label).tolist(), key=lambda v: (str(type(v)), v))
    if len(classes) != 2:
        return classes, None
    if positive_class is not None:
        return classes, next((c for c in classes if c == positive_class), positive_class)
    return classes, classes[-1]


# ---------------------------------------------------------------- enrichment (a hook)

def calendar(df: pd.DataFrame, column: str, parts: list[str], prefix: str = "") -> pd.DataFrame:
    """Numeric calendar parts of a datetime column, as new columns named `<prefix><part>`."""
    t = df[column]
    get = {
        "year": lambda: t.dt.year,
        "month": lambda: t.dt.month,
        "day_of_week": lambda: t.dt.day_of_week,
        "day_of_year": lambda: t.dt.day_of_year,
        "hour": lambda: t.dt.hour,
    }
    return pd.DataFrame({f"{prefix}{p}": get[p]().astype("float64") for p in parts}, index=df.index)


def _is_boolish(s: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
        return False
    vals = set(s.dropna().unique().tolist())
    return bool(vals) and vals <= {True, False, "True", "False", "true", "false"}


def kind_of(s: pd.Series) -> str:
    """How a source column becomes features: boolean (0/1), datetime (calendar parts), numeric, category."""
    if _is_boolish(s):
        return "boolean"
    sent = client_type(s)  # boolean | datetime | long | double | string
    return {"long": "numeric", "double": "numeric", "string": "category"}.get(sent, sent)


BOOL = {True: 1.0, False: 0.0, "True": 1.0, "False": 0.0, "true": 1.0, "false": 0.0}  # boolean inputs -> 0/1


class RowFeatures(BaseEstimator, TransformerMixin):
    """The model's first step: source columns in, the features the estimator sees out.

    Numbers as floats, booleans as 0/1, short text as categories, free text (kind `text`) as strings
    with null as "" (the vectorizer after this step splits it into words), other date columns as year, month and day
    of week, and the time column (read by the data's time rule when it arrives as text or numbers) as
    the `calendar` parts. Stateless: the same for training, evaluation, serving and monitoring."""

    def __init__(self, inputs=(), kinds=None, time_column=None, calendar=(), time_format=None, time_unit=None):
        self.inputs = inputs
        self.kinds = kinds
        self.time_column = time_column
        self.calendar = calendar
        self.time_format = time_format
        self.time_unit = time_unit

    @classmethod
    def from_spec(cls, spec: FeatureSpec) -> RowFeatures:
        return cls(list(spec.inputs), dict(spec.kinds), spec.time_column, list(spec.calendar), spec.time_format,
                   spec.time_unit)

    def fit(self, X, y=None):
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        frame = pd.DataFrame(self.parts(X), index=X.index)
        # calendar parts of the time column come last, as the spec lists them
        return frame[[c for c in frame.columns if c not in self.calendar] + [c for c in self.calendar if c in frame]]

    def parts(self, X: pd.DataFrame) -> dict[str, pd.Series]:
        """Each feature as a Series, by name (what `transform` puts in one frame)."""
        missing = [c for c in self.inputs if c not in X.columns]
        if missing:
            raise ValueError(f"missing input columns {missing}")
        out = {}
        for c in self.inputs:
            out.update(self.column(c, X[c]))
        return out

    def column(self, c: str, s: pd.Series) -> dict[str, pd.Series]:
        """The features input column `c` (values `s`) becomes. The compiled scoring path
        (`core.compiled`) falls back to this for values its array code does not take."""
        kind = self.kinds[c]
        if kind == "time":
            try:
                t = parse_series(s, c, self.time_format, self.time_unit, key="time column")
            except DataError as exc:  # a request's bad time value: the caller's error (a 4xx), not ours
                raise ValueError(str(exc)) from None
            return dict(calendar(pd.DataFrame({c: t}, index=s.index), c, list(self.calendar)).items())
        if kind == "boolean":
            return {c: s.map(BOOL).astype("float64")}
        if kind == "datetime":
            t = s if pd.api.types.is_datetime64_any_dtype(s) else pd.to_datetime(s, errors="coerce")
            return dict(calendar(pd.DataFrame({c: t}, index=s.index), c, DATE_PARTS, prefix=f"{c}_").items())
        if kind == "text":
            return {c: as_text(s)}
        if kind == "numeric":
            return {c: pd.to_numeric(s, errors="coerce").astype("float64") if s.dtype == object else s.astype("float64")}
        return {c: s.astype("str")}

    def get_feature_names_out(self, input_features=None):
        return np.asarray(list(self.transform_columns()), dtype=object)

    def transform_columns(self) -> list[str]:
        cols = []
        for c in self.inputs:
            kind = self.kinds[c]
            if kind == "datetime":
                cols += [f"{c}_{p}" for p in DATE_PARTS]
            elif kind != "time":
                cols.append(c)
        return cols + list(self.calendar)


def derived(spec: FeatureSpec, X: pd.DataFrame) -> pd.DataFrame:
    """The features the estimator sees, computed from source rows (for drift, slices and reports)."""
    return RowFeatures.from_spec(spec).transform(X)


# ---------------------------------------------------------------- the table

def with_derived(table: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """A processed table with the derived features beside its columns (slices may name either)."""
    extra = derived(spec, table[spec.inputs])
    return pd.concat([table, extra[[c for c in extra.columns if c not in table.columns]]], axis=1)
