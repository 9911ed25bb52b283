"""Personal-data patterns, the scan of text columns, and what findings and manifests may show."""

import json

import pandas as pd
import pytest

from mlcycle.core import config, personal
from mlcycle.stages import validate
from tests.code.frames import data_params, mixed_frame


@pytest.mark.parametrize("value, kind", [
    ("jane.doe0001@example-pii.org", "e-mail"), ("a@b.co", "e-mail"),
    ("+1 212 555 0142", "phone number"), ("(212) 555-0142", "phone number"), ("020 7946 0958", "phone number"),
    ("4111 1111 1111 1111", "card number"), ("4111-1111-1111-1111", "card number"), ("4111111111111111", "card number"),
    ("4111 1111 1111 1112", None),  # fails the Luhn check
    ("N14228", None), ("C00042", None), ("2125550142", None), ("UA", None), ("PII-000001-ZX", None),
    ("not an @address", None), (12, None), (None, None),
])
def test_kind(value, kind):
    assert personal.kind(value) == kind


def test_scan_finds_undeclared_personal_columns():
    df = mixed_frame(100).assign(contact=[f"user{i}@mail.example" for i in range(100)],
                                 phone=["+44 20 7946 0958"] * 100, note=["fine"] * 100)
    found = {c: k for c, k, n, m in personal.scan(df)}
    assert found == {"contact": "e-mail", "phone": "phone number"}
    assert {c for c, *_ in personal.scan(df, exclude={"contact"})} == {"phone"}


def test_validate_warns_or_refuses_and_shows_no_value():
    df = mixed_frame(100).assign(contact=[f"user{i}@mail.example" for i in range(100)])
    data = data_params()
    warn = validate.check(df, data, config.ValidateParams(min_rows=10))
    f = next(f for f in warn.findings if f.check == "personal_data")
    assert (f.level, f.column, f.count) == ("warning", "contact", 100) and "data.pii_columns" in f.message
    refuse = validate.check(df, data, config.ValidateParams(min_rows=10, pii_scan="refuse"))
    assert refuse.errors[0].check == "personal_data"
    assert not [f for f in validate.check(df, data, config.ValidateParams(min_rows=10, pii_scan="off")).findings
                if f.check == "personal_data"]
    assert not [f for f in validate.check(df, data_params(pii_columns=["contact"]), config.ValidateParams(min_rows=10)).findings
                if f.check == "personal_data"]
    assert "@mail.example" not in json.dumps([x.__dict__ for x in warn.findings + refuse.findings], default=str)


def test_new_category_examples_that_are_personal_are_redacted():
    """The probe: e-mails in a category column, under the new-category limit, quoted by the warning."""
    from mlcycle.core import schema

    good = mixed_frame(200)
    data = data_params()
    limits = config.ValidateParams(min_rows=10, max_new_category_share=0.05)
    table = schema.infer(good, data, limits)
    bad = good.astype({"cat": object})
    bad.loc[:2, "cat"] = ["ann@corp.example", "bob@corp.example", "cy@corp.example"]
    r = validate.check(bad, data, limits, table, "schemas/t.yaml")
    new = next(f for f in r.findings if f.check == "new_values")
    assert new.count == 3 and "corp.example" not in new.message + json.dumps(new.examples)
    assert "<e-mail, 16 chars>" in new.message


def test_pii_columns_are_not_features_unless_asked():
    from mlcycle.tasks.tabular import features

    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0] * 5, "email": ["h1", "h2", "h3", "h4"] * 5, "y": ["a", "b"] * 10})
    params = config.FeaturesParams(calendar=[])
    _, spec, _ = features.build(df, data_params(pii_columns=["email"], pii_mode="hash"), params)
    assert "email" not in spec.numeric + spec.categorical
    _, spec, _ = features.build(df, data_params(pii_columns=["email"], pii_mode="hash", pii_features=True), params)
    assert "email" in spec.categorical
