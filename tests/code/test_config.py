import subprocess
import sys

import pytest
import yaml

from mlcycle.core import config
from mlcycle.core.errors import ParamsError
from tests.conftest import ROOT, deep_merge, env


def default_raw() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_shipped_params_parse():
    p = config.load(ROOT / "params.yaml")
    assert p.data.target == "arr_delay"
    assert p.section("validate").min_rows >= 1


def test_off_unquoted_is_off():
    """`dvc exp run -S` rewrites params.yaml as YAML 1.2 and drops the quotes of 'off', which
    PyYAML then reads as false."""
    text = yaml.safe_dump(default_raw()).replace("mode: 'off'", "mode: off")
    raw = yaml.safe_load(text)
    assert raw["serve"]["release"]["mode"] is False
    raw = deep_merge(raw, {"validate": {"pii_scan": False}, "serve": {"ranges": False}})
    p = config.parse(raw)
    assert (p.serve.release.mode, p.section("validate").pii_scan, p.serve.ranges) == ("off", "off", "off")
    with pytest.raises(ParamsError, match=r"serve\.release\.mode"):
        config.parse(deep_merge(raw, {"serve": {"release": {"mode": True}}}))


def test_unknown_key_names_key_and_suggests():
    raw = deep_merge(default_raw(), {"train": {"learnig_rate": 0.1}})
    with pytest.raises(ParamsError, match=r"train\.learnig_rate: unknown key \(did you mean 'learning_rate'\?\)"):
        config.parse(raw)


def test_unknown_section():
    raw = {**default_raw(), "trian": {}}
    with pytest.raises(ParamsError, match=r"trian: unknown key"):
        config.parse(raw)


def test_wrong_type_names_key_and_value():
    raw = deep_merge(default_raw(), {"train": {"max_iter": "many"}})
    with pytest.raises(ParamsError, match=r"train\.max_iter: .*'many'"):
        config.parse(raw)


def test_missing_required_value():
    raw = default_raw()
    del raw["data"]["target"]
    with pytest.raises(ParamsError, match=r"data\.target: required value is missing"):
        config.parse(raw)


def test_every_problem_reported_at_once():
    raw = deep_merge(default_raw(), {"eda": {"seed": "x"}, "split": {"test_size": 2.0}})
    with pytest.raises(ParamsError) as exc:
        config.parse(raw)
    assert "eda.seed" in str(exc.value) and "split.test_size" in str(exc.value)


def test_bad_date_and_inconsistent_sections():
    with pytest.raises(ParamsError, match="test_start 'soon'"):
        config.parse(deep_merge(default_raw(), {"split": {"test_start": "soon"}}))
    with pytest.raises(ParamsError, match="threshold turns a number into two classes; data.task regression predicts no classes: set it to null"):
        config.parse(deep_merge(default_raw(), {"data": {"task": "regression"}}))


def test_bool_is_not_a_number():
    with pytest.raises(ParamsError, match=r"train\.learning_rate"):
        config.parse(deep_merge(default_raw(), {"train": {"learning_rate": True}}))


def test_cli_fails_before_any_kernel(workspace):
    (workspace / "params.yaml").write_text(
        (workspace / "params.yaml").read_text().replace("max_iter: 400", "max_iterations: 400")
    )
    proc = subprocess.run([sys.executable, "-m", "mlcycle", "run", "train"], cwd=workspace, env=env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "train.max_iterations: unknown key (did you mean 'max_iter'?)" in proc.stderr
    assert not (workspace / "reports" / "executed").exists()


def test_task_names_the_package_that_serves_data_task():
    raw = default_raw()
    assert config.parse(raw).task == "tabular"  # the shipped params name it
    raw.pop("task")
    assert config.parse(raw).task == "tabular"  # left out: the task serving data.task
    with pytest.raises(ParamsError, match=r"task recommender serves data.task recommendation, not classification: "
                                          r"set task: tabular"):
        config.parse({**raw, "task": "recommender"})
    with pytest.raises(ParamsError, match=r"no task named 'forecasting'; registered tasks: forecast, recommender, tabular"):
        config.parse({**raw, "task": "forecasting"})
