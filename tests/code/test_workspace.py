"""`mlcycle init`: params inferred from a table, and the shipped example's params.yaml."""

import numpy as np
import pandas as pd
import pytest

from mlcycle.cli import workspace
from mlcycle.core import config
from mlcycle.core.errors import DataError, ParamsError
from tests.conftest import ROOT


def table(n=300, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "order_id": [f"O{i:04d}" for i in range(n)],
        "created": (pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")).strftime("%m/%d/%Y"),
        "amount": rng.gamma(2, 30, n),
        "store": rng.choice(["a", "b", "c"], n),
        "returned": rng.choice(["Yes", "No"], n, p=[0.2, 0.8]),
        "epoch": rng.integers(1_600_000_000, 1_700_000_000, n),
    })


def test_infer_task_positive_class_time_rule_and_ids():
    data, notes = workspace.infer(table(), "data/raw/orders.csv", "returned")
    d = data["data"]
    assert d["task"] == "classification" and d["positive_class"] == "Yes"
    assert d["time_column"] == "created" and d["time_format"] == "%m/%d/%Y"  # not ISO: a rule, said in the notes
    assert any("data.time_format: '%m/%d/%Y' (check it)" in n for n in notes)
    assert d["id_columns"] == ["order_id"]
    # the integer epoch is never picked by itself; named, its unit is proposed from the magnitude
    data, _ = workspace.infer(table(), "data/raw/orders.csv", "amount", time_column="epoch")
    assert data["data"]["task"] == "regression" and data["data"]["time_unit"] == "s"


def test_infer_names_a_misspelled_target():
    with pytest.raises(DataError, match="--target 'retruned' is not a column of x.csv \\(did you mean 'returned'\\?\\)"):
        workspace.infer(table(), "x.csv", "retruned")


def test_init_writes_params_a_table_runs_with(tmp_path):
    (tmp_path / "data").mkdir()
    table().to_csv(tmp_path / "data" / "orders.csv", index=False)
    out, schema, notes = workspace.init_from_data(tmp_path, "data/orders.csv", "returned")
    p = config.load(out, root=tmp_path)
    assert p.data.path == "data/orders.csv" and p.ingest == {} and p.features.enrich.hook is None
    assert p.evaluate.slices == [] and p.train.baseline_columns == [] and p.data.drop_columns == []
    assert p.tracking.model_name == "orders-returned" and "orders.csv" in p.report.title
    assert schema == tmp_path / "schemas" / "orders.yaml" and schema.exists()
    text = out.read_text()
    assert "# column to predict" in text  # every key carries its comment
    out.write_text(text + "\n# my edit\n")
    with pytest.raises(ParamsError, match="pass --force"):
        workspace.init_from_data(tmp_path, "data/orders.csv", "returned")


def test_every_key_has_a_comment():
    flat = []

    def walk(d, prefix=""):
        for k, v in d.items():
            flat.append(prefix + k)
            if isinstance(v, dict) and v and not prefix.endswith(("params.", "space.")) and k not in ("params", "space", "minimums", "maximums", "tables"):
                walk(v, f"{prefix}{k}.")

    walk(workspace.defaults())
    from mlcycle.core import paramsdoc

    missing = [k for k in flat if "." in k and k not in paramsdoc.KEYS]
    assert not missing, missing


def test_the_shipped_params_are_the_flights_example():
    raw = workspace.example_params(ROOT, "flights")
    assert workspace.render(raw) == (ROOT / "params.yaml").read_text(), \
        "params.yaml differs from `mlcycle init --example flights`: edit examples/flights/params.yaml and run it"
    assert workspace.is_shipped(ROOT, (ROOT / "params.yaml").read_text())
