"""The schema file: inference from data, the YAML round trip, and what its checks catch."""

import numpy as np
import pandas as pd
import pytest

from mlcycle.core import config, schema
from mlcycle.core.errors import DataError
from mlcycle.stages import validate
from tests.code.frames import data_params, mixed_frame

LIMITS = config.ValidateParams(min_rows=10, max_null_share=0.05, max_target_null_share=0.1)


def inferred(n=200, **kw):
    df = mixed_frame(n)
    dp = data_params(**kw)
    return df, dp, schema.infer(df, dp, LIMITS)


def test_infer_proposes_kinds_nulls_ranges_values_and_ids():
    df, dp, t = inferred(id_columns=["when"])
    c = t.columns
    assert list(c) == list(df.columns)
    assert (c["x1"].dtype, c["cat"].dtype, c["flag"].dtype, c["when"].dtype) == ("number", "string", "boolean", "datetime")
    assert not c["x1"].nullable and c["x2"].nullable and 0 < c["x2"].null_share <= c["x2"].max_null_share
    assert c["x1"].min <= df["x1"].min() and c["x1"].max >= df["x1"].max()
    assert c["cat"].values == ["a", "b", "c"] and c["cat"].new_values == "warn"
    assert c["y"].values == ["no", "yes"] and c["y"].new_values == "error"  # the target's classes are strict
    assert c["when"].unique and t.unique_rows and t.strict and t.min_rows == 10


def test_integer_kind_accepts_whole_floats_from_csv_nulls():
    s = pd.Series([1.0, 2.0, np.nan])
    assert schema.kind_of(s) == "integer" and schema.is_kind(s, "number")
    assert schema.kind_of(pd.Series(["1", "2"])) == "string"


def test_yaml_round_trip(tmp_path):
    df, dp, t = inferred()
    p = schema.write(t, tmp_path / "schemas" / "x.yaml", len(df))
    text = p.read_text()
    assert text.startswith("# Schema of x.csv") and "mlcycle data schema" in text
    assert schema.load(p) == t


def test_a_typo_in_the_schema_names_the_key(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("columns:\n  a: {dtype: number, nulable: true}\n")
    with pytest.raises(DataError, match="columns.a.nulable"):
        schema.load(p)
    p.write_text("columns:\n  a: {dtype: numeric}\n")
    with pytest.raises(DataError, match="columns.a.dtype"):
        schema.load(p)


def test_schema_path_defaults_to_the_data_file_stem(tmp_path):
    assert schema.schema_path(data_params(path="data/raw/churn.csv"), LIMITS, tmp_path) == tmp_path / "schemas/churn.yaml"
    own = config.ValidateParams(schema="contracts/c.yaml")
    assert schema.schema_path(data_params(), own, tmp_path) == tmp_path / "contracts/c.yaml"


def test_the_inferred_schema_accepts_its_own_data():
    df, dp, t = inferred()
    r = validate.check(df, dp, LIMITS, t, "s.yaml")
    assert r.ok and not r.warnings, r.summary()


def test_too_few_rows_names_the_schema_limit():
    df, dp, t = inferred()
    r = validate.check(df.head(5), dp, LIMITS, t, "s.yaml")
    assert [(f.column, f.check) for f in r.errors] == [(None, "min_rows")]
    assert r.errors[0].message == "only 5 rows, fewer than min_rows 10 in s.yaml"
