"""environment.yml (conda) and pyproject.toml (pip) must list the same packages and bounds."""

import re
import tomllib

import yaml

from tests.conftest import ROOT


def _norm(spec: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", spec)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_environment_matches_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_side = dict(_norm(s) for s in [*py["dependencies"], *py["optional-dependencies"]["dev"]])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_side = {}
    for item in env["dependencies"]:
        if isinstance(item, dict):
            conda_side.update(_norm(s) for s in item["pip"] if not s.startswith("-e"))
        else:
            name, bound = _norm(item)
            if name not in {"python", "pip"}:
                conda_side[name] = bound
    assert conda_side == pip_side


def test_python_versions_agree():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert py == ">=" + conda_python.split("=")[1]


def test_yaml_is_parsed_by_libyaml():
    """DVC reads dvc.yaml, dvc.lock and params.yaml with ruamel.yaml, mlcycle with PyYAML: both
    must find their compiled libyaml parser (pure-Python parsing was most of a no-op `dvc repro`)."""
    from ruamel.yaml import YAML

    from mlcycle.core import config

    assert YAML(typ="safe").Parser.__name__ == "CParser"
    assert config._LOADER is yaml.CSafeLoader
    assert config.read_yaml(ROOT / "params.yaml") == yaml.safe_load((ROOT / "params.yaml").read_text())
