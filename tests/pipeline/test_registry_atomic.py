"""Registry moves are atomic: 20 `mlcycle model promote` processes started at once against one real
MLflow SQLite store leave an audit chain that verifies and ends at the champion alias."""

import json
import subprocess
import sys

import pytest

from mlcycle.core import config
from mlcycle.core.paths import Paths
from mlcycle.lifecycle import audit as auditlog
from mlcycle.lifecycle import registry
from mlcycle.runtime import tracking
from tests.conftest import env, make_workspace

pytestmark = pytest.mark.slow


def test_twenty_simultaneous_promotions_keep_the_chain(tmp_path):
    ws = make_workspace(tmp_path / "ws", git=False)
    params = config.load(ws / "params.yaml")
    name = params.tracking.model_name
    client, exp = tracking.setup(ws, params)
    model_dir = ws / "fake-model"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    versions = [registry.register(client, name, client.create_run(exp).info.run_id, model_dir, {}) for _ in range(3)]
    audit = Paths(ws).audit_log
    registry.promote(client, audit, name, versions[0], "start")

    procs = [subprocess.Popen([sys.executable, "-m", "mlcycle", "model", "promote", "--model", versions[i % 3], "--reason", f"p{i}"],
                              cwd=ws, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(20)]
    results = [(p.wait(300), *p.communicate()) for p in procs]

    ok = [r for r in results if r[0] == 0]
    refused = [r for r in results if r[0] != 0]
    for _code, _out, err in refused:  # the only acceptable refusal: the version already was the champion
        assert "already is the champion" in err, err[-2000:]
    entries = auditlog.read(audit, name)
    assert len(entries) == 1 + len(ok)  # one entry per successful promotion, none for refusals
    assert len(ok) >= 2
    assert auditlog.verify_chain(entries) == []
    assert str(registry.champion(client, name).version) == entries[-1]["to_version"]
    assert all(e["from_version"] != e["to_version"] for e in entries)
    check = subprocess.run([sys.executable, "-m", "mlcycle", "model", "audit", "--verify"], cwd=ws, env=env(),
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0 and "audit chain verified" in check.stdout, check.stderr

    # a forged break: `audit --verify` exits non-zero and names it
    forged = {**entries[-1], "from_version": "99", "to_version": entries[-1]["to_version"]}
    with audit.open("a") as f:
        f.write(json.dumps(forged) + "\n")
    check = subprocess.run([sys.executable, "-m", "mlcycle", "model", "audit", "--verify"], cwd=ws, env=env(),
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 1 and "broken" in check.stderr
