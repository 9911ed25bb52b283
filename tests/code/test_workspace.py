"""`mlcycle init`: params inferred from a table, and the shipped example's params.yaml."""

import numpy as np
import pandas as pd
import pytest
import yaml

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


def people(n: int = 400, seed: int = 1) -> pd.DataFrame:
    """A customer table with personal columns (e-mail, phone, a name) and a free-text note beside an
    id, a category and a number: what a CRM export looks like."""
    rng = np.random.default_rng(seed)
    first = ["Ana", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jon"]
    last = ["Smith", "Garcia", "Okafor", "Nguyen", "Muller", "Rossi", "Kowalski", "Silva"]
    words = "the delivery was late again and support never answered my many calls about it".split()
    return pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)],
        "contact": [f"user{i:05d}@mail-example.com" for i in range(n)],
        "phone": [f"+44 20 {rng.integers(1000, 9999)} {rng.integers(1000, 9999)}" for _ in range(n)],
        "customer_name": [f"{rng.choice(first)} {rng.choice(last)}" for _ in range(n)],
        "note": [" ".join(rng.choice(words, rng.integers(6, 14))) + f" (ticket {i})" for i in range(n)],
        "plan": rng.choice(["basic", "plus"], n),
        "spend": rng.normal(50, 10, n).round(2),
        "churn": rng.choice(["yes", "no"], n),
    })


def test_init_proposes_personal_columns_before_ids_and_features():
    data, notes = workspace.infer(people(), "data/raw/people.csv", "churn")
    d = data["data"]
    assert d["pii_columns"] == ["contact", "phone", "customer_name"]
    assert d["id_columns"] == ["customer_id"]  # the unique e-mail and the free text are not ids
    assert d["text_columns"] == ["note"] and "drop_columns" not in d  # free text: words, not one category per row
    said = "\n".join(notes)
    assert "personal data: 'contact' (e-mail in 400 of 400 values checked) -> data.pii_columns" in said
    assert "personal data: 'phone' (phone number in 400 of 400" in said
    assert "personal data: 'customer_name' (named like a person's name; 100% of 400 values" in said
    assert "free text: 'note' (" in said and "-> data.text_columns" in said
    assert "not free text: 'plan' (1.0 words" in said and "not free text: 'customer_id' (1.0 words" in said
    assert "'customer_id' (named like an id, unique in 400 rows)" in said
    # a column named like a name whose values are no names (a product name) stays a feature
    other = people().assign(product_name=lambda d: np.where(d["plan"] == "basic", "router x200", "mesh kit 3"))
    assert "product_name" not in workspace.infer(other, "x.csv", "churn")[0]["data"]["pii_columns"]


def test_init_writes_a_schema_validation_agrees_with(tmp_path):
    (tmp_path / "data").mkdir()
    people().to_csv(tmp_path / "data" / "people.csv", index=False)
    out, schema_file, _ = workspace.init_from_data(tmp_path, "data/people.csv", "churn")
    p = config.load(out, root=tmp_path)
    assert p.data.pii_columns == ["contact", "phone", "customer_name"] and p.data.pii_mode == "drop"
    written = yaml.safe_load(schema_file.read_text())
    columns = set(written["columns"])
    assert not {"contact", "phone", "customer_name"} & columns and {"customer_id", "plan", "spend"} <= columns
    assert "@mail-example.com" not in schema_file.read_text()
    # validation reads the table as init did: its checks pass on the file init saw, with no warning of
    # personal data left in a column
    from mlcycle.stages import validate

    result = validate.run(p.data, p.validate_, tmp_path)
    assert result.errors == [] and result.schema == "schemas/people.yaml"
    assert not [f for f in result.findings if f.check.startswith("pii")], result.findings


def test_a_zero_one_target_gets_the_class_1_not_true():
    """0 and 1 equal False and True in Python: init must still write the class the data holds."""
    df = table().assign(churned=lambda d: (d["amount"] > 60).astype(int))
    positive = workspace.infer(df, "data/raw/orders.csv", "churned")[0]["data"]["positive_class"]
    assert positive == 1 and type(positive) is int
    flags = df.assign(churned=lambda d: d["churned"].astype(bool))
    assert workspace.infer(flags, "data/raw/orders.csv", "churned")[0]["data"]["positive_class"] is True


def test_the_model_name_comment_says_what_the_code_derives(tmp_path):
    """`tracking.model_name: null` names the registered model after the data file and the target; the
    comment `mlcycle init` writes beside it (paramsdoc) gives examples, and each is what config derives."""
    import re

    from mlcycle.core import paramsdoc

    comment = paramsdoc.KEYS["tracking.model_name"]
    examples = re.findall(r"([\w.]+), (\w+) -> ([a-z0-9-]+)", comment)
    assert len(examples) == 2, comment
    for file, target, name in examples:
        p = config.parse({"data": {"path": f"data/raw/{file}", "target": target, "task": "classification"}})
        assert p.tracking.model_name == name, (file, target)
    (tmp_path / "data").mkdir()
    table().to_csv(tmp_path / "data" / "Orders_2024.v2.csv", index=False)
    out, _, _ = workspace.init_from_data(tmp_path, "data/Orders_2024.v2.csv", "returned")
    [line] = [ln for ln in out.read_text().splitlines() if ln.strip().startswith("model_name:")]
    assert line.split(":", 1)[1].split("#", 1)[0].strip() == "null" and line.split("# ", 1)[1] == comment
    assert config.load(out, root=tmp_path).tracking.model_name == "orders-2024-returned"
