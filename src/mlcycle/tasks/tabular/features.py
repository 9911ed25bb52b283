"""Stage `features`: from the validated input table to the train/valid/test tables.

Order of work: label -> enrichment (an optional hook, `features.enrich`: columns from other tables or
rows, e.g. the flights example's weather and recent departures) -> leakage and id columns set aside ->
split. The tables keep the model's inputs as the source has them; what is derived from a row (numbers
as floats, booleans as 0/1, categories as text, calendar parts of the time column and of other dates)
is computed by `RowFeatures`, the first step of the model itself, so the served model takes the rows
users have. Every function takes frames and params and returns new frames; inputs are never mutated.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mlcycle.core import plugins
from mlcycle.core.config import DataParams, FeaturesParams, SplitParams
from mlcycle.core.errors import DataError
from mlcycle.core.spec import (  # noqa: F401 (FeatureSpec, LABEL, with_derived: notebooks read them through this stage)
    DATE_PARTS,
    LABEL,
    FeatureSpec,
    RowFeatures,
    calendar,
    classes_of,
    derived,
    kind_of,
    with_derived,
)
from mlcycle.core.tables import client_type, read_table
from mlcycle.stages.eda import label_name, make_label  # noqa: F401 (the label, shared with the profile every task's EDA shows)


def infer_objective(y: pd.Series) -> str:
    """The data.task of target column `y` (`mlcycle init`, the task's "infer_objective" hook): many
    distinct numbers are a regression, anything else classification."""
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    return "regression" if numeric and y.dropna().nunique() > 20 else "classification"


def enrichment(params: FeaturesParams, root: Path):
    """(hook, {name: table}) of `features.enrich`, or (None, {}) when there is none."""

    e = params.enrich
    if not e.hook:
        return None, {}
    hook = plugins.load(e.hook, root, "features.enrich.hook")
    tables = {}
    for name, rel in e.tables.items():
        path = Path(rel) if Path(rel).is_absolute() else Path(root) / rel
        tables[name] = read_table(path, what=f"features.enrich.tables.{name}", shown=rel)
    return hook, tables


def enrich(table: pd.DataFrame, hook, tables: dict[str, pd.DataFrame], params: FeaturesParams) -> tuple[pd.DataFrame, list[str]]:
    """The hook's table and the columns it added; DataError when it broke the contract."""
    out = hook(table, tables, dict(params.enrich.params))
    where = f"features.enrich.hook {params.enrich.hook}"
    if not isinstance(out, pd.DataFrame):
        raise DataError(f"{where} must return a DataFrame, got {type(out).__name__}")
    if len(out) != len(table) or not out.index.equals(table.index):
        raise DataError(f"{where} changed the rows ({len(table):,} in, {len(out):,} out); it must keep every row, "
                        "in order, with its index")
    lost = [c for c in table.columns if c not in out.columns]
    if lost:
        raise DataError(f"{where} removed the columns {lost}; list columns to leave out in data.drop_columns instead")
    return out, [c for c in out.columns if c not in table.columns]


# ---------------------------------------------------------------- row-level features (inside the model)

def build(df: pd.DataFrame, data: DataParams, params: FeaturesParams, hook=None,
          tables: dict[str, pd.DataFrame] | None = None) -> tuple[pd.DataFrame, FeatureSpec, dict]:
    """The feature table (model inputs as the source has them, label under LABEL, time, id and aside
    columns kept) and its spec. `hook`/`tables`: the enrichment (see `enrichment`)."""
    raw_time_type = df.attrs.get("time_raw_type", "datetime")
    labelled, info = make_label(df, data)
    added: list[str] = []
    if hook is not None:
        body, added = enrich(labelled.drop(columns=[LABEL]), hook, tables or {}, params)
        labelled = body.assign(**{LABEL: labelled[LABEL]})
    missing = [c for c in data.aside_columns if c not in labelled.columns]
    if missing:
        raise DataError(f"data.aside_columns names {missing}, not in the table; available: {sorted(map(str, labelled.columns))}")
    tc = data.time_column
    aside = {LABEL, data.target, *data.id_columns, *data.aside_columns, *([tc] if tc else [])}
    pii = [] if data.pii_features else data.pii_columns  # personal columns are never features unless asked
    dropped = [c for c in dict.fromkeys([*data.drop_columns, *pii]) if c in labelled.columns]
    inputs = [c for c in labelled.columns if c not in aside and c not in dropped]
    absent = [c for c in data.text_columns if c not in labelled.columns]
    if absent:
        raise DataError(f"data.text_columns names {absent}, not in the table; available: {sorted(map(str, labelled.columns))}")
    unused = [c for c in data.text_columns if c not in inputs]
    if unused:
        raise DataError(f"data.text_columns {unused} are not model inputs (the target, the time column or set aside); "
                        "remove them from data.text_columns")
    text = [c for c in inputs if c in data.text_columns]
    kinds = {c: "text" if c in text else kind_of(labelled[c]) for c in inputs}
    parts = []
    if tc and params.calendar:
        cal = calendar(labelled, tc, params.calendar)
        parts = [p for p in params.calendar if cal[p].nunique(dropna=True) > 1]
        info["constant_calendar_parts"] = [p for p in params.calendar if p not in parts]
    rf = RowFeatures(inputs, kinds)
    numeric, categorical = [], []
    for c in rf.transform_columns():
        if kinds.get(c) != "text":  # text columns are inputs and features, neither numbers nor categories
            (categorical if kinds.get(c) == "category" else numeric).append(c)
    if parts:
        inputs, kinds = [*inputs, tc], {**kinds, tc: "time"}
        numeric += parts
    # accepted in requests and logged, not used; personal columns never (a client would send raw values)
    passthrough = [c for c in dict.fromkeys([*data.id_columns, *data.aside_columns, *dropped, *([tc] if tc else [])])
                   if c in labelled.columns and c not in inputs and c not in data.pii_columns]
    types = {c: client_type(labelled[c]) for c in [*inputs, *passthrough]}
    if tc and tc in types:
        types[tc] = raw_time_type
    keep = list(dict.fromkeys([*inputs, *([tc] if tc else []), *data.id_columns, *data.aside_columns]))
    table = labelled[[*keep, LABEL]]
    classes, positive = ([], None)
    if data.task == "classification":
        classes, positive = classes_of(table[LABEL], data.positive_class)
    spec = FeatureSpec(
        target=data.target, task=data.task, numeric=numeric, categorical=categorical, text=text,
        time_column=tc, id_columns=list(data.id_columns), classes=classes,
        positive_class=positive, label_rule=info["rule"], label=label_name(data),
        inputs=inputs, kinds=kinds, input_types=types, passthrough=passthrough, calendar=parts,
        time_format=data.time_format, time_unit=data.time_unit, provided_at_prediction=added,
        enrichment=plugins.describe(hook) if hook is not None else "",
    )
    info["dropped_columns"] = dropped
    info["enriched_columns"] = added
    return table, spec, info


# ---------------------------------------------------------------- split

def split(table: pd.DataFrame, spec: FeatureSpec, params: SplitParams,
          timezone: str | None = None) -> dict[str, pd.DataFrame]:
    """train / valid / test. Time-based (the latest rows held out) with a time column, else random,
    stratified by class for classification. valid is carved from the training rows the same way.

    A time split cuts between two distinct times only: every row of one time is on one side, the
    cut nearest the requested share (`time_cut`). `split.test_start` is a date at midnight in
    `timezone` (data.timezone; null: the times as read), see `test_start_time`."""
    if spec.time_column:
        tc = spec.time_column
        ordered = table.sort_values(tc, kind="stable")
        t = ordered[tc]
        if t.isna().any():
            raise DataError(f"split: data.time_column '{tc}' has {int(t.isna().sum()):,} missing time(s); a time "
                            "split needs every row's time: fill or drop them (validate stops on them too)")
        if params.test_start is not None:
            start = test_start_time(params.test_start, timezone)
            is_test = (t >= start).to_numpy()
            if is_test.all() or not is_test.any():
                zone = f" in {timezone}" if timezone else ""
                raise DataError(
                    f"split.test_start {params.test_start}{zone} leaves an empty "
                    f"{'training' if is_test.all() else 'test'} set: data.time_column '{tc}' runs from "
                    f"{shown_time(t.iloc[0], timezone)} to {shown_time(t.iloc[-1], timezone)}; choose a date inside "
                    "that range or set it to null"
                )
            at = int(np.argmax(is_test))
        else:
            at = time_cut(t, params.test_size, "the test set (split.test_size)", "the rows", timezone,
                          "use a table whose rows span at least two times, or set data.time_column: null for a "
                          "random split")
        rest, test = ordered.iloc[:at], ordered.iloc[at:]
        at = time_cut(rest[tc], params.valid_size, "the validation set (split.valid_size)",
                      "the training rows (before the test set)", timezone,
                      "hold out fewer times (a later split.test_start or a smaller split.test_size), or set "
                      "data.time_column: null for a random split")
        train, valid = rest.iloc[:at], rest.iloc[at:]
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


def time_cut(t: pd.Series, share: float, part: str, rows: str = "the rows", timezone: str | None = None,
             hint: str = "set data.time_column: null for a random split") -> int:
    """Where in sorted times `t` the latest `share` of rows begins, moved to the nearest place where
    the time changes (every row of one time on one side; the earlier place on a tie). DataError
    naming the time column when there is no such place (one distinct time): `part` would be empty
    or share that time with the rows before it. `rows`, `hint`: the message's words."""
    values = t.to_numpy()
    changes = np.flatnonzero(values[1:] != values[:-1]) + 1  # positions whose time differs from the one before
    if not len(changes):
        when = f" ({shown_time(t.iloc[0], timezone)})" if len(t) else ""
        raise DataError(
            f"split: {rows} ({len(t):,}) have a single distinct time{when} in data.time_column '{t.name}', so "
            f"{part} would be empty or share that time with the rows before it: a time split cuts between two "
            f"distinct times; {hint}")
    want = len(values) * (1 - share)
    return int(changes[np.argmin(np.abs(changes - want))])


def test_start_time(test_start: str, timezone: str | None = None) -> pd.Timestamp:
    """split.test_start as the pipeline's times hold it (naive, UTC when the source had an offset):
    a date is its midnight in `timezone` (data.timezone, the zone the model card shows periods in)
    converted to UTC; without a timezone it is compared with the times as read. A value with its
    own offset is that instant."""
    ts = pd.Timestamp(test_start)
    if ts.tzinfo is None:
        if not timezone:
            return ts
        # a midnight that a clock change skips starts at the first time after it; one it repeats, at the first
        ts = ts.tz_localize(timezone, ambiguous=True, nonexistent="shift_forward")
    return ts.tz_convert("UTC").tz_localize(None)


def local_time(t, timezone: str | None):
    """Pipeline times (naive, read as UTC; a Series or one Timestamp) in `timezone`; as they are without one."""
    if not timezone:
        return t
    if isinstance(t, pd.Series):
        return t.dt.tz_localize("UTC").dt.tz_convert(timezone)
    return pd.Timestamp(t).tz_localize("UTC").tz_convert(timezone)


def shown_time(t, timezone: str | None = None) -> str:
    """One time as text (to the second when it has seconds), with its zone's abbreviation when given."""
    t = local_time(pd.Timestamp(t), timezone)
    fmt = "%Y-%m-%d %H:%M:%S" if t.second or t.microsecond else "%Y-%m-%d %H:%M"
    return t.strftime(fmt + (" %Z" if timezone else ""))


def write(parts: dict[str, pd.DataFrame], spec: FeatureSpec, paths) -> None:
    """Parquet files with the label under the target's name, and features.json."""
    paths.processed.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        part.rename(columns={LABEL: spec.label}).to_parquet(paths.split_file(name), index=False)
    spec.to_json(paths.feature_spec)


def read(paths, part: str, spec: FeatureSpec) -> tuple[pd.DataFrame, pd.Series]:
    """(X, y) of one split part as written by `write`: X holds the model's input columns."""
    df = pd.read_parquet(paths.split_file(part))
    return df[spec.inputs], df[spec.label]


def split_summary(parts: dict[str, pd.DataFrame], spec: FeatureSpec, timezone: str | None = None) -> pd.DataFrame:
    """One row per part: rows, first and last time (in `timezone`, data.timezone, when given) and the
    label's rate. The cuts between the parts: `split_cuts`."""
    rows = []
    for name, part in parts.items():
        row = {"part": name, "rows": len(part)}
        if spec.time_column:
            t = local_time(part[spec.time_column], timezone)
            row["from"], row["to"] = t.min(), t.max()
        if spec.task == "classification" and spec.positive_class is not None:
            row["positive_share"] = round(float((part[LABEL] == spec.positive_class).mean()), 4)
        else:
            row["label_mean"] = round(float(pd.to_numeric(part[LABEL], errors="coerce").mean()), 4)
        rows.append(row)
    return pd.DataFrame(rows)


def split_cuts(parts: dict[str, pd.DataFrame], spec: FeatureSpec, params: SplitParams | None = None,
               timezone: str | None = None) -> pd.DataFrame:
    """The cuts of a time split (empty without a time column): one row per cut with the rule that
    placed it, the last time before it and the first at or after it (in `timezone` when given; the
    two always differ: no time is on both sides) and the rows on each side."""
    cols = ["cut", "rule", "last_before", "first_after", "rows_before", "rows_after"]
    if not spec.time_column:
        return pd.DataFrame(columns=cols)
    tc = spec.time_column
    train, valid, test = (parts[p] for p in ("train", "valid", "test"))
    if params is None:
        valid_rule = test_rule = ""
    else:
        valid_rule = (f"about the latest {params.valid_size:.0%} of the training rows (split.valid_size "
                      f"{params.valid_size:g}), at the nearest change of time")
        test_rule = (f"rows at or after split.test_start {params.test_start}" + (f" (in {timezone})" if timezone else "")
                     if params.test_start is not None else
                     f"about the latest {params.test_size:.0%} of the rows (split.test_size {params.test_size:g}), "
                     "at the nearest change of time")
    rows = []
    for cut, rule, before, after in (("train | valid", valid_rule, [train], valid),
                                     ("train + valid | test", test_rule, [train, valid], test)):
        last = max(p[tc].max() for p in before)
        rows.append({"cut": cut, "rule": rule, "last_before": local_time(last, timezone),
                     "first_after": local_time(after[tc].min(), timezone),
                     "rows_before": sum(len(p) for p in before), "rows_after": len(after)})
    return pd.DataFrame(rows, columns=cols)


def write_metrics(parts: dict[str, pd.DataFrame], spec: FeatureSpec, info: dict, path: Path) -> None:
    """Row counts per split and feature counts (DVC metrics)."""
    out = {f"{name}_rows": len(part) for name, part in parts.items()}
    out.update({"rows_without_target": info["rows_without_target"], "numeric_features": len(spec.numeric),
                "categorical_features": len(spec.categorical), "text_features": len(spec.text)})
    if spec.task == "classification" and spec.positive_class is not None:
        for name, part in parts.items():
            out[f"{name}_positive_share"] = round(float((part[LABEL] == spec.positive_class).mean()), 6)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")


def describe(df: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """One row per feature the estimator sees (derived from `df`'s inputs): kind, nulls, distinct
    values and range or top category."""
    df = derived(spec, df[spec.inputs])
    rows = []
    for c in spec.features:
        s = df[c]
        kind = "numeric" if c in spec.numeric else "text" if c in spec.text else "categorical"
        if kind == "text":  # never a raw value (free text may hold anything): its size only
            words = s.str.split().str.len()
            rows.append({"feature": c, "kind": kind, "null_share": round(float((s == "").mean()), 4),
                         "distinct": int(s.nunique()), "median": f"{words.median():.0f} words, "
                         f"{s.str.len().median():.0f} characters"})
            continue
        row = {"feature": c, "kind": kind, "null_share": round(float(s.isna().mean()), 4), "distinct": int(s.nunique())}
        if c in spec.numeric:
            row["min"], row["median"], row["max"] = s.min(), s.median(), s.max()
        else:
            top = s.value_counts()
            row["top"] = f"{top.index[0]} ({top.iloc[0] / len(s):.0%})" if len(top) else ""
        rows.append(row)
    return pd.DataFrame(rows)



def takeaways(parts: dict[str, pd.DataFrame], spec: FeatureSpec, params: SplitParams | None = None,
              timezone: str | None = None) -> str:
    """What the split gave this run, as Markdown bullets: rows and the label's rate per part, and for
    a time split each part's period and the cuts (times in `timezone`, data.timezone, when given)."""
    rows = split_summary(parts, spec).to_dict("records")
    rate = "positive_share" if spec.task == "classification" and spec.positive_class is not None else "label_mean"
    what = f"share of {spec.positive_class!r}" if rate == "positive_share" else "label mean"
    total = sum(r["rows"] for r in rows) or 1
    lines = [f"- {total:,} labelled rows: " + ", ".join(f"{r['part']} {r['rows']:,} ({r['rows'] / total:.0%})" for r in rows) + ".",
             f"- {what} per part: " + ", ".join(f"{r['part']} {r[rate]:.4g}" for r in rows) + "."]
    if spec.time_column:
        lines.append("- periods: " + ", ".join(f"{r['part']} {shown_time(r['from'], timezone)} to "
                                               f"{shown_time(r['to'], timezone)}" for r in rows) + ".")
        cuts = split_cuts(parts, spec, params).to_dict("records")
        lines.append("- cuts, each between two distinct times (no time on both sides): " + "; ".join(
            f"{c['cut']} between {shown_time(c['last_before'], timezone)} and {shown_time(c['first_after'], timezone)} "
            f"({c['rows_before']:,} rows before, {c['rows_after']:,} at or after)" for c in cuts) + ".")
    text = f" and {len(spec.text)} text column(s) ({', '.join(spec.text)})" if spec.text else ""
    lines.append(f"- the model takes {len(spec.inputs)} input columns: {len(spec.numeric)} numeric and "
                 f"{len(spec.categorical)} categorical features{text}.")
    return "\n".join(lines)
