"""A user's own data set with personal columns, run once through the whole pipeline and shared by
the bad-input catalogue (tests/pipeline/test_bad_inputs.py) and the personal-data scan (test_pii.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SAMPLE, deep_merge, init_data, make_workspace, run

# planted personal data: none of these may appear in any output
EMAILS = [f"jane.doe{i:04d}@example-pii.org" for i in range(1500)]
NATIONAL_IDS = [f"PII-{i:06d}-ZX" for i in range(1500)]

# on top of what `mlcycle init --data data/raw/churn.csv --target churn` writes
USER = {
    "data": {"id_columns": ["customer_id"], "pii_columns": ["email", "national_id"], "pii_mode": "hash"},
    "validate": {"min_rows": 100, "schema": "schemas/churn.yaml"},
    "eda": SAMPLE["eda"],
    "split": {"test_size": 0.25},
    "train": {"max_iter": 30},
}


def churn_frame(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """Classification data with an id, categories, numbers with nulls and two personal columns."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n)
    plan = rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2])
    charges = rng.normal(60, 20, n).round(2)
    charges[rng.random(n) < 0.05] = np.nan
    logit = -0.05 * tenure + 0.03 * np.nan_to_num(charges, nan=60) + np.where(plan == "basic", 0.8, 0)
    churn = np.where(rng.random(n) < 1 / (1 + np.exp(-(logit - 1.5))), "yes", "no")
    return pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)],
        "email": EMAILS[:n], "national_id": NATIONAL_IDS[:n],
        "tenure": tenure, "plan": plan, "monthly_charges": charges, "churn": churn,
    })


def digest(root: Path, rels: list[str]) -> dict[str, str]:
    """md5 of every file under the given paths (relative to root)."""
    out = {}
    for rel in rels:
        p = root / rel
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p] if p.exists() else []
        for f in files:
            out[str(f.relative_to(root))] = hashlib.md5(f.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="session")
def user_ws(tmp_path_factory) -> Path:
    """A workspace copy: churn.csv with personal columns (hashed), a schema proposed by
    `mlcycle data schema` and committed, and one full `dvc repro` (so a champion exists)."""
    ws = make_workspace(tmp_path_factory.mktemp("user") / "ws")
    churn_frame().to_csv(ws / "data/raw/churn.csv", index=False)
    said = init_data(ws, "data/raw/churn.csv", "churn", params=deep_merge({}, USER))
    # init finds the e-mails itself (never an id, never a feature); the national ids match no pattern
    assert "personal data: 'email' (e-mail in 1,500 of 1,500 values checked) -> data.pii_columns" in said
    assert "id columns (kept out of the features): 'customer_id' (named like an id, unique in 1,500 rows)" in said
    # the national ids are declared after init (and hashed): the schema is proposed again from the masked table
    out = run(["mlcycle", "data", "schema", "--force"], ws)
    assert "wrote schemas/churn.yaml" in out.stdout
    run("git add -A && git commit -q -m 'user data and its schema'", ws)
    run(["dvc", "repro"], ws, timeout=900)
    return ws
