"""`mlcycle pipeline check`: every column params.yaml names is looked up in the data file's header."""

import pandas as pd
import pytest

from mlcycle.cli import check
from mlcycle.core import config
from mlcycle.core.errors import ParamsError
from tests.conftest import ROOT, deep_merge, edit_params, make_workspace, run

OWN = {"data": {"path": "data/raw/own.csv", "target": "arrival_delay", "task": "regression", "threshold": None,
                "positive_class": None, "time_column": "departure", "id_columns": [], "drop_columns": [],
                "required_columns": ["carrier"], "aside_columns": []},
       "ingest": {},
       "features": {"calendar": ["month", "day_of_week", "hour"], "enrich": {"hook": None, "tables": {}, "params": {}}},
       "train": {"baseline_columns": []}, "evaluate": {"slices": [], "sensitive": []}}


def params_with(changes: dict) -> config.Params:
    return config.parse(deep_merge(config.read_yaml(ROOT / "params.yaml"), changes))


def own_csv(path, n=20, target="arrival_delay", labels=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame({"departure": pd.date_range("2024-01-01", periods=n, freq="h").astype(str),
                       "carrier": ["AA", "UA"] * (n // 2), "distance": range(n),
                       target: labels if labels is not None else [float(i) for i in range(n)]})
    df.to_csv(path, index=False)
    return path


def test_misspelled_columns_are_all_named_with_a_suggestion(tmp_path):
    p = own_csv(tmp_path / "own.csv")
    params = params_with(deep_merge(OWN, {"data": {"target": "arival_delay", "required_columns": ["carier", "distance"]},
                                          "evaluate": {"slices": ["xyz_unrelated"]}}))
    problems = check.columns(params, p, "csv")
    assert problems == [
        "data.target: 'arival_delay' is not a column of the data (did you mean 'arrival_delay'?)",
        "data.required_columns: 'carier' is not a column of the data (did you mean 'carrier'?)",
        "evaluate.slices: 'xyz_unrelated' is not a column of the data "
        "(columns: departure, carrier, distance, arrival_delay)",
    ]
    with pytest.raises(ParamsError, match="did you mean 'arrival_delay'") as exc:
        check.check_columns(params, p, "csv")
    assert exc.value.exit_code == 2


def test_columns_the_features_step_adds_are_accepted_where_the_holdout_is_meant(tmp_path):
    p = own_csv(tmp_path / "own.csv")
    ok = params_with(deep_merge(OWN, {"evaluate": {"slices": ["carrier", "day_of_week", "hour"]},
                                      "train": {"baseline_columns": ["month"]}}))
    assert check.columns(ok, p, "csv") == []
    # a calendar part features.calendar does not produce is not accepted, nor is one as the target
    no_hour = params_with(deep_merge(OWN, {"features": {"calendar": ["month"]}, "evaluate": {"slices": ["hour"]}}))
    assert check.columns(no_hour, p, "csv")[0].startswith("evaluate.slices: 'hour' is not a column")
    assert check.columns(params_with(deep_merge(OWN, {"data": {"target": "month"}})), p, "csv")[0].startswith(
        "data.target: 'month'")


def test_enrichment_columns_count_when_the_hook_declares_them(tmp_path):
    p = tmp_path / "flights.parquet"
    pd.DataFrame({"time_hour": pd.to_datetime(["2013-01-01 05:00"]), "arr_delay": [1.0], "carrier": ["UA"],
                  "origin": ["EWR"], "tailnum": ["N1"]}).to_parquet(p)
    base = {"data": {"path": str(p), "drop_columns": ["tailnum"], "required_columns": [], "target": "arr_delay",
                     "time_column": "time_hour"},
            "train": {"baseline_columns": ["carrier"]},
            "evaluate": {"slices": ["origin", "temp", "flights_same_hour", "recent_late_share", "plane_type"]}}
    assert check.columns(params_with(base), p, "parquet") == []  # the flights hook declares what it adds
    none = {"features": {"enrich": {"hook": None, "tables": {}, "params": {}}}}
    plain = check.columns(params_with(deep_merge(base, none)), p, "parquet")
    assert len(plain) == 4 and all(m.startswith("evaluate.slices:") for m in plain)
    assert "temp" not in check.features_adds(params_with(deep_merge(base, none)), {})


def test_a_yaml_boolean_positive_class_on_text_labels_gets_the_quoting_hint(tmp_path):
    p = own_csv(tmp_path / "own.csv", target="subscribed", labels=["Yes", "No"] * 10)
    cls = {"data": {"target": "subscribed", "task": "classification", "positive_class": True}}
    problems = check.columns(params_with(deep_merge(OWN, cls)), p, "csv")
    assert len(problems) == 1 and 'quote the label, e.g. positive_class: "Yes"' in problems[0]
    pq = tmp_path / "own.parquet"
    pd.read_csv(p).to_parquet(pq)
    assert check.columns(params_with(deep_merge(OWN, cls)), pq, "parquet") == problems
    # a boolean target, or a quoted label, is fine
    b = own_csv(tmp_path / "b.csv", target="subscribed", labels=[True, False] * 10)
    assert check.columns(params_with(deep_merge(OWN, cls)), b, "csv") == []
    quoted = deep_merge(OWN, {"data": {**cls["data"], "positive_class": "Yes"}})
    assert check.columns(params_with(quoted), p, "csv") == []


def test_wide_header_messages_stay_short(tmp_path):
    p = tmp_path / "wide.csv"
    pd.DataFrame({f"column_with_a_long_name_{i:05d}": [1] for i in range(5000)}).to_csv(p, index=False)
    problems = check.columns(params_with(deep_merge(OWN, {"data": {"required_columns": []}})), p, "csv")
    assert len(problems) == 2 and all(len(m) < 500 for m in problems)
    assert "(4,988 more)" in problems[1]


def test_semicolon_file_gets_a_delimiter_hint(tmp_path):
    p = tmp_path / "own.csv"
    p.write_text("departure;carrier;arrival_delay\n2024-01-01;AA;3\n")
    problems = check.columns(params_with(OWN), p, "csv")
    assert "delimited by something other than commas" in problems[-1]


def test_mlcycle_check_exits_2_naming_the_misspelled_target(tmp_path):
    ws = make_workspace(tmp_path / "ws", git=False)
    own_csv(ws / "data/raw/own.csv")
    edit_params(ws, deep_merge(OWN, {"data": {"target": "arival_delay"}}))
    bad = run(["mlcycle", "pipeline", "check"], ws, check=False)
    assert bad.returncode == 2, bad.stderr
    assert "data.target: 'arival_delay' is not a column of the data (did you mean 'arrival_delay'?)" in bad.stderr
    assert "Traceback" not in bad.stderr
    edit_params(ws, {"data": {"target": "arrival_delay"}})
    good = run(["mlcycle", "pipeline", "check"], ws)
    assert "every column params name is in the header (4 columns)" in good.stdout


def test_the_default_example_params_pass_against_the_flights_header(tmp_path):
    from mlcycle.core import plugins
    from mlcycle.stages import ingest

    tables = plugins.load("examples/flights/flights.py:ingest", ROOT, "test")({"sample_frac": 0.001})
    flights = next(p for p in ingest.write(tables, tmp_path) if p.name == "flights.parquet")
    params = config.load(ROOT / "params.yaml")
    assert params.evaluate.slices and params.train.baseline_columns  # the check has columns to look up
    assert check.columns(params, flights, "parquet") == []
    typo = params_with({"evaluate": {"slices": ["carrer", "origin"]}})
    assert check.columns(typo, flights, "parquet") == [
        "evaluate.slices: 'carrer' is not a column of the data (did you mean 'carrier'?)"]


def test_an_unreadable_or_empty_file_is_left_to_validate(tmp_path):
    params = params_with(OWN)
    empty = tmp_path / "own.csv"
    empty.write_text("")
    assert check.header_checked(params, empty).startswith("columns not checked, the file has no header")
    broken = tmp_path / "own.parquet"
    broken.write_bytes(b"not parquet at all")
    assert check.header_checked(params, broken).startswith("columns not checked, the header cannot be read")
    with pytest.raises(ParamsError, match="1 problem"):
        check.header_checked(params, own_csv(tmp_path / "ok.csv", target="other"))
