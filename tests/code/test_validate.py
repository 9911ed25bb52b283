import numpy as np
import pandas as pd
import pytest

from mlcycle import config, validate
from mlcycle.errors import DataError
from tests.code.frames import data_params, mixed_frame

LIMITS = config.ValidateParams(min_rows=10, max_null_share=0.05, max_target_null_share=0.1)


def test_good_table_passes():
    r = validate.check(mixed_frame(100), data_params(required_columns=["x1", "cat"]), LIMITS)
    assert r.ok and r.rows == 100


def test_missing_target_and_required_columns_are_named_together():
    df = mixed_frame(100).drop(columns=["y", "x1"])
    r = validate.check(df, data_params(required_columns=["x1"]), LIMITS)
    msgs = [f.message for f in r.errors]
    assert any("target column 'y' is missing" in m for m in msgs)
    assert any("required column 'x1' is missing" in m for m in msgs)
    with pytest.raises(DataError, match="2 error"):
        validate.enforce(r)


def test_null_share_row_count_and_constant_target():
    df = mixed_frame(100)
    df.loc[:20, "x1"] = np.nan
    df["y"] = "yes"
    r = validate.check(df, data_params(required_columns=["x1"]), config.ValidateParams(min_rows=500))
    checks = {f.check for f in r.errors}
    assert {"max_null_share", "min_rows", "target_constant"} <= checks
    assert any("column 'x1' has 21 nulls (21.0%)" in f.message for f in r.errors)


def test_threshold_needs_a_numeric_target():
    r = validate.check(mixed_frame(50), data_params(threshold=1.0), LIMITS)
    assert [f.check for f in r.errors] == ["target_numeric"]


def test_few_missing_targets_warn_many_stop():
    df = mixed_frame(100)
    df.loc[:4, "y"] = None
    r = validate.check(df, data_params(), LIMITS)
    assert r.ok and [f.check for f in r.warnings] == ["target_nulls"]
    df.loc[:30, "y"] = None
    assert not validate.check(df, data_params(), LIMITS).ok


def test_time_column_must_be_dates():
    df = mixed_frame(50).assign(when="not a date")
    r = validate.check(df, data_params(time_column="when"), LIMITS)
    assert [f.check for f in r.errors] == ["time_type"]


def test_written_metrics(tmp_path):
    r = validate.check(pd.DataFrame({"y": [1, 0] * 20}), data_params(), LIMITS)
    validate.write(r, tmp_path / "m.json", tmp_path / "f.json")
    assert '"passed": true' in (tmp_path / "m.json").read_text()
