import json

import numpy as np
import pandas as pd
import pytest

from mlcycle.core import config, schema
from mlcycle.core.errors import DataError
from mlcycle.stages import validate
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


def _checks(r, level="error"):
    return {(f.column, f.check): f for f in r.findings if f.level == level}


def test_every_violation_is_collected_with_counts_and_examples():
    df = mixed_frame(200)
    dp = data_params(required_columns=["x1", "cat"])
    t = schema.infer(df, dp, LIMITS)
    bad = df.copy()
    bad["x1"] = bad["x1"].astype(str)
    bad.loc[3, "x1"] = "12 km"           # numbers stored as text
    bad["extra"] = 1                       # a column not in the schema
    bad = bad.drop(columns=["flag"])       # a column missing
    bad.loc[:50, "x2"] = np.nan            # nulls above the limit
    bad.loc[7, "x2"] = 99.0                # out of range
    bad.loc[5, "cat"] = "zzz"              # a new category: a warning
    bad.loc[0, "y"] = "maybe"              # an unseen target class
    bad = pd.concat([bad, bad.iloc[[10, 11]]], ignore_index=True)  # duplicate rows
    r = validate.check(bad, dp, LIMITS, t, "schemas/x.yaml")
    errs, warns = _checks(r), _checks(r, "warning")
    assert set(errs) == {("extra", "column_in_schema"), ("flag", "column_in_dataframe"), ("x1", "dtype"),
                         ("x2", "max_null_share"), ("x2", "max"), ("y", "values"), (None, "unique_rows")}
    assert "'12 km'" in errs[("x1", "dtype")].message and "holds string values" in errs[("x1", "dtype")].message
    assert errs[(None, "unique_rows")].count == 2
    assert errs[("x2", "max")].examples == [99.0]
    assert errs[("y", "values")].examples == ["maybe"]
    assert ("cat", "new_values") in warns and ("x2", "null_share_rise") in warns
    summary = r.summary()
    assert summary.splitlines()[0].startswith("validate: column 'flag' is missing")
    assert len(summary.splitlines()) == 2 + len(r.findings) + 1


def test_a_new_category_warns_until_it_is_common():
    df = mixed_frame(200)
    dp = data_params()
    t = schema.infer(df, dp, LIMITS)
    few = df.copy()
    few.loc[0, "cat"] = "d"
    r = validate.check(few, dp, LIMITS, t)
    assert r.ok and [f.check for f in r.warnings] == ["new_values"]
    many = df.copy()
    many.loc[:20, "cat"] = "d"
    assert {f.check for f in validate.check(many, dp, LIMITS, t).errors} == {"new_values_share"}


def test_duplicate_ids_from_params():
    df = mixed_frame(50).assign(id=[1, 1] + list(range(2, 50)))
    r = validate.check(df, data_params(id_columns=["id"]), LIMITS)
    f = _checks(r)[("id", "field_uniqueness")]
    assert f.count == 2 and "must be unique" in f.message


def test_findings_file_has_counts_and_examples(tmp_path):
    df = mixed_frame(50).assign(id=[1, 1] + list(range(2, 50)))
    r = validate.check(df, data_params(id_columns=["id"]), LIMITS)
    validate.write(r, tmp_path / "m.json", tmp_path / "f.json")
    body = json.loads((tmp_path / "f.json").read_text())
    assert body["errors"] == 1 and body["findings"][0]["examples"] == [1]
    assert "id: field_uniqueness, 2" in validate.summary_from_file(tmp_path / "f.json")


def test_run_reports_an_unreadable_file_as_a_finding(tmp_path):
    (tmp_path / "d.csv").write_bytes(b"")
    r = validate.run(data_params(path="d.csv"), LIMITS, tmp_path)
    assert not r.ok and r.errors[0].check == "read" and "empty file" in r.errors[0].message


def test_run_without_a_schema_warns_how_to_make_one(tmp_path):
    mixed_frame(50).to_csv(tmp_path / "d.csv", index=False)
    r = validate.run(data_params(path="d.csv"), LIMITS, tmp_path)
    assert r.ok and any(f.check == "schema" and "mlcycle data schema" in f.message for f in r.warnings)


def free_text_frame(n: int = 10_000) -> pd.DataFrame:
    """A free-text column taken as the target: every value distinct, some of them long."""
    rng = np.random.default_rng(0)
    text = [f"comment {i}: " + "the delivery was late and " * int(rng.integers(1, 40)) for i in range(n)]
    return pd.DataFrame({"x1": rng.normal(size=n), "y": text, **{f"c{i:04d}": 0 for i in range(200)}})


def test_messages_stay_bounded_on_a_free_text_target(tmp_path):
    r = validate.check(free_text_frame(), data_params(required_columns=["missing_a", "missing_b"]), LIMITS)
    checks = {f.check for f in r.findings}
    assert {"target_classes", "rare_class"} <= checks
    assert all(len(f.message) < 500 for f in r.findings), max(len(f.message) for f in r.findings)
    assert all(len(f.examples) <= 3 and all(len(str(e)) <= 80 for e in f.examples) for f in r.findings)
    rare = next(f for f in r.findings if f.check == "rare_class")
    assert rare.message.startswith("10,000 class(es) of target 'y' have fewer than 2 rows (e.g. 'comment 0:")
    summary = r.summary()
    assert max(len(line) for line in summary.splitlines()) < 600
    validate.write(r, tmp_path / "validate.json", tmp_path / "findings.json")
    assert (tmp_path / "findings.json").stat().st_size < 10_000


def test_finding_bounds_any_message_and_example():
    f = validate.Finding("error", "c", "x", "m" * 300_000, 1, ["e" * 1000, 2, 3, 4, 5])
    assert len(f.message) <= validate.MAX_MESSAGE and f.message.endswith("chars)")
    assert len(f.examples) == 3 and len(f.examples[0]) <= validate.MAX_EXAMPLE and f.examples[1:] == [2, 3]


def test_boolean_positive_class_on_text_labels_gets_the_quoting_hint():
    df = pd.DataFrame({"x1": range(40), "y": ["Yes", "No"] * 20})
    r = validate.check(df, data_params(positive_class=True), LIMITS)
    f = next(f for f in r.errors if f.check == "positive_class")
    assert "data.positive_class True is not a value of target 'y'" in f.message
    assert 'quote the label, e.g. positive_class: "Yes"' in f.message
    quoted = validate.check(df, data_params(positive_class="Yes"), LIMITS)
    assert "positive_class" not in {f.check for f in quoted.errors}
    booleans = validate.check(df.assign(y=[True, False] * 20), data_params(positive_class=True), LIMITS)
    assert "positive_class" not in {f.check for f in booleans.errors}


def test_misspelled_target_gets_did_you_mean_else_a_few_columns():
    df = mixed_frame(50).rename(columns={"y": "arrival_delay"})
    r = validate.check(df, data_params(target="arival_delay"), LIMITS)
    assert "target column 'arival_delay' is missing; did you mean 'arrival_delay'?" in r.errors[0].message
    far = validate.check(df, data_params(target="zzz"), LIMITS)
    assert "set data.target to one of: x1, x2, cat, flag, when, arrival_delay" in far.errors[0].message


def _with_schema(df, data):
    """The check as the pipeline runs it: against a schema inferred from a good table."""
    table = schema.infer(mixed_frame(100), data, LIMITS)
    return validate.check(df, data, LIMITS, table, "schemas/t.yaml")


@pytest.mark.parametrize("use_schema", [False, True])
@pytest.mark.parametrize("name, make, check, words", [
    ("zero rows", lambda df: df.iloc[:0], "empty", "no rows (0 rows)"),
    ("all-null target", lambda df: df.assign(y=None), "target_all_null", "target 'y' has no values"),
    ("list column", lambda df: df.assign(cat=[[i, i] for i in range(len(df))]), "nested_values", "column 'cat' holds list"),
    ("dict column", lambda df: df.assign(cat=[{"k": i} for i in range(len(df))]), "nested_values", "holds dict"),
    ("bytes column", lambda df: df.assign(cat=[b"x"] * len(df)), "nested_values", "holds bytes"),
    ("array column", lambda df: df.assign(x1=[np.arange(2)] * len(df)), "nested_values", "column 'x1' holds list"),
])
def test_bad_shapes_lead_with_a_named_finding_and_never_crash(name, make, check, words, use_schema):
    data = data_params(required_columns=["x1", "cat"])
    df = make(mixed_frame(100))
    r = _with_schema(df, data) if use_schema else validate.check(df, data, LIMITS)
    assert not r.ok, name
    assert r.errors[0].check == check and words in r.errors[0].message, (name, r.errors[0])
    assert r.summary().splitlines()[0] == f"validate: {r.errors[0].message}"
    json.dumps([f.__dict__ for f in r.findings], default=str)  # findings stay writable


def test_mixed_types_warn_and_all_null_columns_are_named():
    df = mixed_frame(100).astype({"cat": object})
    df.loc[:4, "cat"] = 7
    df["empty"] = None
    r = validate.check(df, data_params(), LIMITS)
    found = {(f.check, f.column) for f in r.warnings}
    assert ("mixed_types", "cat") in found and ("all_null", "empty") in found


def test_nested_examples_are_not_shown_raw():
    df = mixed_frame(100).assign(cat=[["alice@example.com"]] * 100)
    r = validate.check(df, data_params(), LIMITS)
    assert "alice@example.com" not in json.dumps([f.__dict__ for f in r.findings], default=str)
    assert "<list of 1>" in r.errors[0].message


@pytest.mark.parametrize("text, first", [
    ("x1,cat,y\n", "no rows (0 rows)"),
    ("x1;cat;y\n1;a;yes\n2;b;no\n", "looks like a ';'-delimited file"),
    ("x1,cat,y\n1,a,\n2,b,\n", "target 'y' has no values"),
])
def test_first_message_of_a_run_names_the_real_problem(tmp_path, text, first):
    (tmp_path / "d.csv").write_text(text)
    r = validate.run(data_params(path="d.csv"), LIMITS, tmp_path)
    assert first in r.summary().splitlines()[0], r.summary()


def test_takeaways_count_findings_and_missing_values():
    df = mixed_frame(100)
    r = validate.check(df, data_params(), LIMITS)
    r.source = "x.csv"
    text = validate.takeaways(r)
    assert "`x.csv`: 100 rows and 6 columns" in text and f"{len(r.errors)} error(s)" in text
    assert "schema none" in text
    worst = max(r.null_share, key=r.null_share.get)
    assert f"`{worst}` ({r.null_share[worst]:.1%})" in text
    r.findings = [validate.Finding("warning", "x2", "max_null_share", "too many nulls", count=7)]
    assert "- warning on `x2` (max_null_share): 7 row(s)." in validate.takeaways(r)


def test_a_file_full_of_bad_rows_is_counted_whole_but_reported_from_a_bounded_number_of_cases():
    """10x more failing rows per check than the bound: every finding counts them all, while pandera's
    lazy report (one record per failing row it is given, gigabytes for a large file) holds at most the
    bound per check, so `mlcycle data add` on a large bad file finishes in bounded memory."""
    import pandera.pandas as pa

    bound = 10
    df = mixed_frame(400)
    dp = data_params(id_columns=["id"])
    t = schema.infer(df.assign(id=range(400)), dp, LIMITS)
    t = t.model_copy(update={"columns": {**t.columns, "x1": t.columns["x1"].model_copy(update={"min": -0.5}),
                                         "flag": t.columns["flag"].model_copy(update={"nullable": False})}})
    bad = df.assign(id=[i // 2 for i in range(400)])  # 400 rows with duplicate ids
    bad["flag"] = bad["flag"].astype(object)
    bad.loc[:10 * bound - 1, "flag"] = None  # 200 nulls in a column that refuses them
    failing_x1 = int((bad["x1"] < -0.5).sum())
    assert failing_x1 > 10 * bound
    r = validate.check(bad, dp, LIMITS, t, "schemas/x.yaml", max_cases=bound)
    errs = _checks(r)
    assert errs[("flag", "not_nullable")].count == 10 * bound
    assert errs[("x1", "min")].count == failing_x1 and f"{failing_x1:,} value(s) below min" in errs[("x1", "min")].message
    assert errs[("id", "field_uniqueness")].count == 400
    assert all(len(f.examples) <= 3 for f in r.findings)
    rules = validate.build_rules(bad, dp, LIMITS, t, "schemas/x.yaml", max_cases=bound)
    with pytest.raises(pa.errors.SchemaErrors) as exc:
        rules.schemas()["error"].validate(bad, lazy=True)
    per_check = exc.value.failure_cases.groupby(["column", "check"]).size()
    assert per_check.max() <= bound and per_check[("x1", "min")] == bound


def with_copies(n: int = 60, copies=(3, 17, 17, 40)) -> pd.DataFrame:
    """mixed_frame with a row number (1..n, as an export adds) and exact copies of some rows appended,
    numbered on: the row numbers differ while every other value repeats."""
    df = mixed_frame(n).assign(rownames=np.arange(1, n + 1))
    out = pd.concat([df, df.iloc[list(copies)]], ignore_index=True)
    out["rownames"] = np.arange(1, len(out) + 1)
    return out


def test_duplicates_are_judged_without_a_row_number_and_shown_with_their_ids(tmp_path):
    dp = data_params()
    t = schema.infer(with_copies(copies=()), dp, LIMITS)
    assert t.unique_rows and t.columns["rownames"].unique
    bad = with_copies()
    assert not bad.duplicated().any()  # compared with the row number, no row repeats
    r = validate.check(bad, dp, LIMITS, t, "schemas/x.yaml")
    f = _checks(r)[(None, "unique_rows")]
    assert f.count == 4 and r.duplicates["rows"] == 4 and r.duplicates["keys"] == ["rownames"]
    assert f.message.startswith("4 duplicate row(s): identical to an earlier row in every column but the row keys "
                                "rownames (not compared) (e.g. rownames 4 = 61; rownames 18 = 62 = 63; rownames 41 = 64)")
    assert "set unique_rows: false in schemas/x.yaml" in f.message
    assert f.examples == ["rownames 4 = 61", "rownames 18 = 62 = 63", "rownames 41 = 64"]
    shown = validate.duplicate_table(r)
    assert shown["duplicate_group"].tolist() == [1, 1, 2, 2, 2, 3, 3] and shown["rownames"].tolist() == [4, 61, 18, 62, 63, 41, 64]
    assert shown[shown["duplicate_group"] == 2]["x1"].nunique() == 1 and shown["row_in_table"].tolist() == shown["rownames"].tolist()
    assert "- 4 duplicate row(s), judged without the row ids `rownames`." in validate.takeaways(r)
    validate.write(r, tmp_path / "m.json", tmp_path / "f.json")
    body = json.loads((tmp_path / "f.json").read_text())
    assert body["duplicates"]["rows"] == 4 and len(body["duplicates"]["examples"]) == 7


def test_duplicates_leave_out_ids_and_unique_columns_but_not_time_target_or_dropped_columns():
    df = with_copies(copies=(5,)).rename(columns={"rownames": "n"}).assign(key=[f"k{i}" for i in range(61)])
    dp = data_params(id_columns=["key"], drop_columns=["x2"], time_column="when")
    assert schema.row_keys(df, dp) == ["n", "key"]
    assert schema.is_row_number(pd.Series([7, 8, 9])) and not schema.is_row_number(pd.Series([2, 1, 3]))
    assert not schema.is_row_number(pd.Series([1.0, 2.0, 3.0])) and not schema.is_row_number(pd.Series([1, 2, 4]))
    assert schema.duplicated_rows(df, dp)[0].tolist() == [False] * 60 + [True]
    for column, value in (("when", pd.Timestamp("2030-01-01")), ("y", "no" if df["y"].iloc[5] == "yes" else "yes"),
                          ("x2", 123.0)):
        changed = df.copy()
        changed.loc[60, column] = value  # the copy differs in one column: no longer a duplicate
        assert not schema.duplicated_rows(changed, dp)[0].any(), column
    declared = schema.TableSchema(columns={"x1": schema.ColumnSchema(unique=True)})
    assert schema.row_keys(df, dp, declared) == ["x1", "n", "key"]


def test_duplicates_warn_without_a_schema_and_are_counted_when_the_schema_allows_them():
    bad = with_copies(copies=(2, 9))
    r = validate.check(bad, data_params(), LIMITS)
    f = _checks(r, "warning")[(None, "unique_rows")]
    assert r.ok and f.count == 2 and f.examples == ["rownames 3 = 61", "rownames 10 = 62"]
    allowed = schema.infer(bad, data_params(), LIMITS)
    assert not allowed.unique_rows  # inference judges duplicates by the same rule
    r = validate.check(bad, data_params(), LIMITS, allowed)
    assert r.ok and not [x for x in r.findings if x.check == "unique_rows"] and r.duplicates["rows"] == 2
    plain = mixed_frame(30)
    plain = pd.concat([plain, plain.iloc[[4]]], ignore_index=True)
    f = _checks(validate.check(plain, data_params(), LIMITS), "warning")[(None, "unique_rows")]
    assert f.examples == ["rows 5 = 31"] and "identical to an earlier row in every column (e.g. rows 5 = 31)" in f.message
