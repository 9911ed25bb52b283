"""Personal data never leaves ingestion: planted e-mails and national ids (data.pii_columns, hashed)
run through the whole pipeline, then every report, executed notebook, MLflow record (SQLite
store and artifacts), feature table, model and DVC cache file is scanned for the raw values."""

import hashlib
import json
import os
import re

import pandas as pd
import pytest

from mlcycle.core import tables
from tests.pipeline.conftest import EMAILS, NATIONAL_IDS

pytestmark = pytest.mark.slow

RAW = re.compile(rb"example-pii\.org|PII-\d{6}-ZX|jane\.doe\d{4}")
SCANNED = ["reports", "mlruns", "data/processed", "data/interim", "models", ".dvc/cache", "dvc.lock", "schemas"]


def test_no_raw_personal_value_in_any_output(user_ws):
    scanned, hits = 0, []
    for rel in SCANNED:
        p = user_ws / rel
        files = [f for f in p.rglob("*") if f.is_file()] if p.is_dir() else [p] if p.exists() else []
        for f in files:
            scanned += 1
            if RAW.search(f.read_bytes()):
                hits.append(str(f.relative_to(user_ws)))
    assert scanned > 50 and (user_ws / "mlruns" / "mlflow.db").exists()
    assert not hits, f"raw personal values found in {hits}"


def test_feature_tables_hold_neither_values_nor_digests(user_ws):
    """Parquet is compressed, so read the tables: neither the raw value nor its digest is there
    (data.pii_features is false by default: personal columns are never features)."""
    salt = os.environ[tables.SALT_ENV]  # set for every test by tests/conftest.py
    digest = hashlib.sha256(f"{salt}{EMAILS[0]}".encode()).hexdigest()[:16]
    assert tables.mask_personal(pd.DataFrame({"e": [EMAILS[0]]}), ["e"], "hash")["e"][0] == digest
    seen = set()
    for part in ("train", "valid", "test"):
        df = pd.read_parquet(user_ws / "data/processed" / f"{part}.parquet")
        text = df.astype(str)
        for raw in (EMAILS[0], NATIONAL_IDS[0], "example-pii.org"):
            assert not text.apply(lambda s, raw=raw: s.str.contains(raw, regex=False)).any().any()
        if "email" in df:
            seen |= set(df["email"].astype(str))
    assert digest not in seen and not seen  # no personal column in the feature tables
    spec = json.loads((user_ws / "data/processed/features.json").read_text())
    assert not {"email", "national_id"} & set(spec["numeric"] + spec["categorical"])
