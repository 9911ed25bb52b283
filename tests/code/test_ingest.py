"""The generic ingest stage: a hook's tables written once, as Parquet; a broken hook is named."""

import pandas as pd
import pytest

from mlcycle.core import config
from mlcycle.core.errors import DataError, ParamsError
from mlcycle.stages import ingest

HOOK = '''
import pandas as pd

def tables(params):
    """Two tables."""
    n = params["rows"]
    return {"main": pd.DataFrame({"a": range(n)}), "side": pd.DataFrame({"b": [1, 2]})}

def broken(params):
    return [1, 2]
'''


def step(tmp_path, fn="tables", **params):
    (tmp_path / "hooks").mkdir(exist_ok=True)
    (tmp_path / "hooks" / "mine.py").write_text(HOOK)
    return config.IngestStep(hook=f"hooks/mine.py:{fn}", outputs="data/raw/mine", params=params)


def test_run_write_and_summary(tmp_path):
    out = ingest.run("mine", step(tmp_path, rows=10), tmp_path)
    written = ingest.write(out, tmp_path / "data/raw/mine")
    assert [p.name for p in written] == ["main.parquet", "side.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(written[0]), out["main"])
    assert ingest.summary(out)["rows"].tolist() == [10, 2]


def test_a_hook_that_breaks_the_contract_is_named(tmp_path):
    with pytest.raises(DataError, match="must return a dict of table name -> DataFrame"):
        ingest.run("mine", step(tmp_path, fn="broken"), tmp_path)
    with pytest.raises(ParamsError, match="has no function 'nothere'; it defines: broken, tables"):
        ingest.run("mine", step(tmp_path, fn="nothere"), tmp_path)
    with pytest.raises(ParamsError, match="ingest.x.hook: hook file 'hooks/none.py' does not exist"):
        ingest.run("x", config.IngestStep(hook="hooks/none.py:f", outputs="d"), tmp_path)


def test_params_name_one_step_at_most():
    from tests.conftest import ROOT

    raw = config.read_yaml(ROOT / "params.yaml")
    raw["ingest"]["second"] = dict(raw["ingest"]["nycflights13"])
    with pytest.raises(config.ParamsError, match="one step at most"):
        config.parse(raw)
    raw["ingest"] = {"x": {"hook": "no-colon", "outputs": "d"}}
    with pytest.raises(config.ParamsError, match="ingest.x.hook"):
        config.parse(raw)


def test_takeaways_give_sizes_and_missing_values():
    tables = {"flights": pd.DataFrame({"a": [1, None, 3, 4], "b": ["x", "y", None, None]}),
              "planes": pd.DataFrame({"id": [1, 2]})}
    text = ingest.takeaways(tables)
    assert "2 table(s), 6 rows in all" in text and "`flights`, has 4 rows and 2 columns" in text
    assert "`b` (50.0%), `a` (25.0%)" in text
    assert "no missing values" in ingest.takeaways({"t": pd.DataFrame({"a": [1]})})
    assert "no ingest step" in ingest.takeaways({})
