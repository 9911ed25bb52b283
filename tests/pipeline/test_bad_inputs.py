"""The catalogue of bad inputs: each fails validate with a message a user can act on, a non-zero
exit, and nothing downstream changed (feature tables, models, later reports and metrics, the
champion). Most run `mlcycle run validate` in a workspace whose pipeline already ran once; one goes
through `dvc repro` to show that nothing after validate runs.

`python -m pytest tests/pipeline/test_bad_inputs.py -s` prints the catalogue: case, exit status and
the first line of the message.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import run
from tests.pipeline.conftest import churn_frame, digest

pytestmark = pytest.mark.slow

DOWNSTREAM = ["data/processed", "models", "reports/eda.html", "reports/features.html", "reports/train.html",
              "reports/evaluate.html", "reports/index.html", "reports/metrics/features.json",
              "reports/metrics/train.json", "reports/metrics/evaluate.json", "reports/metrics/gate.json",
              "reports/gate_decision.json", "reports/figures", "reports/plots", "dvc.lock"]
CATALOGUE: list[tuple[str, int, str]] = []


def good() -> pd.DataFrame:
    return churn_frame()


def as_csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def as_parquet(df: pd.DataFrame, tmp) -> bytes:
    p = tmp / "x.parquet"
    df.to_parquet(p, index=False)
    return p.read_bytes()


def _extra(df):
    return df.assign(coupon="none")


def _as_text(df):
    df = df.copy()
    df["tenure"] = df["tenure"].astype(str) + " months"
    return df


def _nulls(df):
    df = df.copy()
    df.loc[: int(len(df) * 0.4), "monthly_charges"] = np.nan
    return df


def _range(df):
    df = df.copy()
    df.loc[[3, 9], "tenure"] = 500
    return df


def _dupe_rows(df):
    return pd.concat([df, df.iloc[:5]], ignore_index=True)


def _dupe_ids(df):
    df = df.copy()
    df.loc[1, "customer_id"] = df.loc[0, "customer_id"]
    return df


def _unseen(df):
    df = df.copy()
    df.loc[:2, "churn"] = "maybe"
    return df


# case -> (file content as bytes from (good frame, tmp dir), data.path, expected text in the message)
CASES = {
    "missing column": (lambda d, t: as_csv(d.drop(columns=["plan"])), None, "column 'plan' is missing"),
    "unexpected extra column": (lambda d, t: as_csv(_extra(d)), None, "unexpected column 'coupon' is not in schemas/churn.yaml"),
    "numbers stored as text": (lambda d, t: as_csv(_as_text(d)), None,
                               "column 'tenure' holds string values where schemas/churn.yaml says integer (e.g. '"),
    "nulls above the limit": (lambda d, t: as_csv(_nulls(d)), None, "column 'monthly_charges' has 643 nulls (42.9%), above max_null_share 0.1 in schemas/churn.yaml"),
    "values out of range": (lambda d, t: as_csv(_range(d)), None, "column 'tenure' has 2 value(s) above max 71"),
    "duplicate rows": (lambda d, t: as_csv(_dupe_rows(d)), None, "5 duplicate row(s)"),
    "duplicate ids": (lambda d, t: as_csv(_dupe_ids(d)), None, "column 'customer_id' has 2 rows with duplicate values"),
    "empty file": (lambda d, t: b"", None, "is an empty file (0 bytes)"),
    "truncated CSV": (lambda d, t: as_csv(d)[: len(as_csv(d)) // 2 + 7], None, "looks truncated"),
    "corrupt CSV": (lambda d, t: as_csv(d).replace(b"C00010,", b'"C00010,', 1), None, "cannot be read as csv"),
    "truncated Parquet": (lambda d, t: as_parquet(d, t)[:3000], "data/raw/churn.parquet", "cannot be read as parquet"),
    "corrupt Parquet": (lambda d, t: b"PAR1" + bytes(range(256)) * 20 + b"PAR1", "data/raw/churn.parquet",
                        "cannot be read as parquet"),
    "not UTF-8": (lambda d, t: as_csv(d.assign(plan=d["plan"].replace("pro", "pró"))).decode().encode("latin-1"), None,
                  "is not UTF-8 text (byte 0xf3 on line "),
    "missing target": (lambda d, t: as_csv(d.drop(columns=["churn"])), None, "target column 'churn' is missing"),
    "constant target": (lambda d, t: as_csv(d.assign(churn="no")), None, "target 'churn' has 1 distinct value(s)"),
    "unseen target class": (lambda d, t: as_csv(_unseen(d)), None, "column 'churn' has 3 value(s) not allowed"),
    "too few rows": (lambda d, t: as_csv(d.head(50)), None, "only 50 rows, fewer than min_rows 100 in schemas/churn.yaml"),
    "data path does not exist": (None, "data/raw/no_such_file.csv", "data.path 'data/raw/no_such_file.csv' does not exist"),
    # the probe of issue 15: each used to lead with a dtype or missing-column error, or crash
    "header only": (lambda d, t: as_csv(d.head(0)), None, "but no rows (0 rows)"),
    "zero-row Parquet": (lambda d, t: as_parquet(d.head(0), t), "data/raw/churn.parquet", "but no rows (0 rows)"),
    "all-null target": (lambda d, t: as_csv(d.assign(churn=None)), None, "target 'churn' has no values"),
    "';'-delimited CSV": (lambda d, t: d.to_csv(index=False, sep=";").encode(), None, "looks like a ';'-delimited file"),
    "list column": (lambda d, t: as_parquet(d.assign(plan=[[p] for p in d["plan"]]), t), "data/raw/churn.parquet",
                    "column 'plan' holds list values"),
}
FIRST_MESSAGE = {"header only", "zero-row Parquet", "all-null target", "';'-delimited CSV", "list column"}


def champion(ws) -> str | None:
    from mlflow import MlflowClient

    from mlcycle.core import config

    name = config.load(ws / "params.yaml").tracking.model_name  # derived from the data when params say null
    uri = f"sqlite:///{ws / 'mlruns' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # not the registry another test set globally
    return client.get_model_version_by_alias(name, "champion").version


@pytest.fixture(scope="module")
def baseline(user_ws):
    before = digest(user_ws, DOWNSTREAM)
    assert before and any(k.startswith("data/processed/") for k in before)
    return user_ws, before, champion(user_ws)


def _set_data_path(ws, path):
    p = ws / "params.yaml"
    params = yaml.safe_load(p.read_text())
    params["data"]["path"] = path
    p.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_stops_validate_and_changes_nothing_downstream(baseline, case, tmp_path, monkeypatch, capsys):
    """`mlcycle run validate`, called in this process (the CLI's own main: exit status and message
    as a user sees them) to save a Python start per case."""
    from mlcycle.cli import main as cli

    ws, before, champ = baseline
    make, path, expected = CASES[case]
    original_params = (ws / "params.yaml").read_text()
    csv = ws / "data/raw/churn.csv"
    saved = csv.read_bytes()
    monkeypatch.chdir(ws)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    try:
        if path:
            _set_data_path(ws, path)
        if make is not None:
            (ws / (path or "data/raw/churn.csv")).write_bytes(make(good(), tmp_path))
        code = cli.main(["run", "validate"])
    finally:
        csv.write_bytes(saved)
        (ws / "params.yaml").write_text(original_params)
        (ws / "data/raw/churn.parquet").unlink(missing_ok=True)
    err = capsys.readouterr().err
    first = next((line for line in err.splitlines() if line.startswith("mlcycle:")), "")
    CATALOGUE.append((case, code, first))
    assert code == 1
    assert expected in err, err
    assert first.startswith("mlcycle: stage 'validate' failed: DataError: validate: ")
    if case in FIRST_MESSAGE:  # the first line a user reads names the real problem
        assert expected in first, first
    assert "Traceback" not in err and "see reports/validate.html" in err
    findings = json.loads((ws / "reports/validate_findings.json").read_text())
    assert findings["passed"] is False and findings["errors"] >= 1
    assert digest(ws, DOWNSTREAM) == before
    assert champion(ws) == champ


def test_missing_data_path_is_caught_by_check_before_dvc(baseline):
    ws, _, _ = baseline
    original = (ws / "params.yaml").read_text()
    try:
        _set_data_path(ws, "data/raw/no_such_file.csv")
        proc = run(["mlcycle", "pipeline", "check"], ws, check=False)
    finally:
        (ws / "params.yaml").write_text(original)
    assert proc.returncode == 1
    assert "data.path 'data/raw/no_such_file.csv' does not exist; put the file there" in proc.stderr


def test_dvc_repro_stops_at_validate(baseline):
    """Through dvc repro: validate fails and no later stage runs."""
    ws, before, champ = baseline
    csv = ws / "data/raw/churn.csv"
    saved = csv.read_bytes()
    try:
        csv.write_bytes(as_csv(_nulls(good())))
        proc = run(["dvc", "repro"], ws, check=False)
    finally:
        csv.write_bytes(saved)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "column 'monthly_charges' has 643 nulls (42.9%), above max_null_share 0.1 in schemas/churn.yaml" in out
    assert "Running stage 'validate'" in out
    assert not any(f"Running stage '{s}'" in out for s in ("eda", "features", "train", "evaluate", "report"))
    assert digest(ws, DOWNSTREAM) == before
    assert champion(ws) == champ


def test_a_good_batch_with_a_new_category_passes_with_a_warning(baseline):
    ws, before, champ = baseline
    csv = ws / "data/raw/churn.csv"
    saved = csv.read_bytes()
    try:
        df = good()
        df.loc[:4, "plan"] = "family"  # a new category value, 0.3% of rows: a warning, not an error
        csv.write_bytes(as_csv(df))
        proc = run(["mlcycle", "run", "validate"], ws)
    finally:
        csv.write_bytes(saved)
    assert "validate: FINISHED" in proc.stdout
    assert "warning plan: new_values, 5: column 'plan' has 5 row(s) with values not in schemas/churn.yaml (e.g. 'family')" in proc.stdout
    html = (ws / "reports/validate.html").read_text()
    assert "new_values" in html and "family" in html  # the findings table is in the report


def test_print_catalogue():
    """Not a check: prints the catalogue collected above (run with -s)."""
    if CATALOGUE:
        width = max(len(c) for c, _, _ in CATALOGUE)
        print("\n" + "\n".join(f"{c:<{width}}  exit {code}  {first}" for c, code, first in CATALOGUE))
