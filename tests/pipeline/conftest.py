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


# values a user's table may hold that markup languages read as their own: mathtext (`$...$`), HTML,
# format braces, LaTeX, control characters, a 10,000-character review (tests/pipeline/test_literal_values.py,
# tests/browser/test_literal_values.py)
LONG_REVIEW = "long review " * 834
HOSTILE = ["$5 and $10", "cost $5_$", "<script>alert(1)</script>", "{}", "{x}", r"a|b \alpha^2_x", LONG_REVIEW,
           "nul\x00 esc\x1b[31m red\nnew line"]
HOSTILE_CLASSES = ("left $5_$ <b>", "stayed {x}")  # the target's classes: the rarer is the positive one


def hostile_values_workspace(dest: Path, n: int = 1200) -> Path:
    """A workspace whose table (Parquet: every value kept exactly) holds `HOSTILE` in two category
    columns, one a slice and one a sensitive column, and `HOSTILE_CLASSES` as its target's classes;
    `mlcycle init` and one `dvc repro` ran on it (tracking on: a champion exists)."""
    rng = np.random.default_rng(0)
    tenure = rng.integers(1, 72, n).astype(float)
    plan = rng.choice(HOSTILE, n)
    logit = -0.05 * tenure + np.where(plan == "$5 and $10", 1.0, 0)
    ws = make_workspace(dest)
    pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)], "tenure": tenure, "plan": plan,
        "note": rng.choice(HOSTILE[::-1], n),
        "churn": np.where(rng.random(n) < 1 / (1 + np.exp(-(logit + 0.5))), *HOSTILE_CLASSES),
    }).to_parquet(ws / "data/raw/reviews.parquet")
    init_data(ws, "data/raw/reviews.parquet", "churn", params={
        "eda": SAMPLE["eda"], "validate": {"min_rows": 100}, "train": {"max_iter": 30},
        "evaluate": {"bootstrap": 20, "explain_rows": 300, "slices": ["plan"], "sensitive": ["note"]}})
    run("git add -A && git commit -q -m 'a table of hostile values'", ws)
    run(["dvc", "repro"], ws, timeout=900)
    return ws
