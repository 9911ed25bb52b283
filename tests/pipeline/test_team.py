"""Team mode against the real services: `mlcycle team up` starts PostgreSQL, moto's S3 server and
`mlflow server` once for this module (stopped in `finally`); the pipeline, the gate, promote and
rollback, hot reload, the audit history in the server, a DVC push/pull round trip, the migration of
a local store and the one-line failures all run against them. Nothing of MLflow or DVC is mocked."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlcycle.core.errors import TeamError
from mlcycle.runtime import team
from tests.conftest import SAMPLE, env, make_workspace, mlflow_client, run, up_to_date

pytestmark = pytest.mark.slow

MODEL = "nycflights13-late-arrival"


def have_postgres() -> bool:
    try:
        team.pg_bin("initdb")
        return True
    except TeamError:
        return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A sampled workspace with the team stack up; yields (workspace, state, env for commands)."""
    if not have_postgres():
        pytest.fail("PostgreSQL is not installed (Debian: apt-get install postgresql; .ci/run does it)")
    ws = make_workspace(tmp_path_factory.mktemp("team") / "ws", params=SAMPLE)
    run(["dvc", "init", "--quiet"], ws, check=False)
    state = None
    try:
        state = team.up(ws)
        e = {**env(), **team.exports(state)}
        yield ws, state, e
    finally:
        team.down(ws)
        if state and "pg" in state:
            shutil.rmtree(state["pg"]["data"], ignore_errors=True)
    assert team.status(ws)["state"] is None


def cmd(args: list[str], ws: Path, e: dict, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=ws, env=e, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def client(state):
    import mlflow

    url = state["mlflow"]["url"]
    return mlflow.MlflowClient(url, url)


def test_stack_is_up_on_localhost(stack):
    ws, state, _ = stack
    st = team.status(ws)
    assert st["running"], st
    assert state["mlflow"]["url"].startswith("http://127.0.0.1:") and state["s3"]["endpoint"].startswith("http://127.0.0.1:")
    assert len({state["pg"]["port"], state["s3"]["port"], state["mlflow"]["port"]}) == 3 and 5000 not in (
        state["s3"]["port"], state["mlflow"]["port"])
    env_text = team.env_file(ws).read_text()
    assert "MLFLOW_TRACKING_URI=http://127.0.0.1:" in env_text and team.password(ws) not in env_text
    assert team.password(ws) not in (team.team_dir(ws) / "mlflow.log").read_text()


def test_pipeline_gate_and_audit_in_the_server(stack):
    ws, state, e = stack
    cmd(["dvc", "repro"], ws, e, timeout=1200)
    c = client(state)
    runs = c.search_runs([c.get_experiment_by_name("mlcycle").experiment_id], max_results=200)
    stages = {r.data.tags.get("mlcycle.stage") for r in runs} - {None}
    assert {"ingest", "validate", "eda", "features", "train", "evaluate"} <= stages
    assert all(r.info.status == "FINISHED" for r in runs)
    mv = c.get_model_version(MODEL, "1")
    assert mv.tags["gate.decision"] and mv.source.startswith("mlflow-artifacts:")
    assert c.get_model_version_by_alias(MODEL, "champion").version == "1"  # the first model passed the gate
    # the artifacts are objects in the S3 bucket, not files in the workspace
    keys = [o["Key"] for o in team.s3_client(state["s3"]["endpoint"]).list_objects_v2(Bucket=team.BUCKET, Prefix="mlflow/")
            .get("Contents", [])]
    assert any(k.endswith("/model/MLmodel") for k in keys)
    assert not (ws / "mlruns" / "mlflow.db").exists() and not (ws / "mlruns" / "audit.jsonl").exists()
    from mlcycle.lifecycle import audit

    entries = audit.read(Path("unused"), MODEL, c)
    assert [x["action"] for x in entries] == ["gate-promote"]


def register_again(ws: Path, c) -> str:
    from mlcycle.lifecycle import registry

    exp = c.get_experiment_by_name("mlcycle")
    run_id = c.create_run(exp.experiment_id, tags={"mlflow.runName": "team test"}).info.run_id
    version = registry.register(c, MODEL, run_id, ws / "models" / "model", {"git_commit": "test", "data_md5": "test"})
    c.set_terminated(run_id)
    return version


def start_serving(ws: Path, e: dict, tmp_path: Path) -> tuple[subprocess.Popen, str, Path]:
    """`mlcycle serving start` on the workspace's champion, reloading every second; (process, URL, its output file)."""
    from mlcycle.lifecycle.experiments import free_port

    port = free_port()
    out = tmp_path / "serve.out"
    with out.open("wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "mlcycle", "serving", "start", "--port", str(port), "--reload-seconds", "1",
                                 "--log-dir", str(tmp_path / "predictions")], cwd=ws, env=e, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}", out


def wait_for_version(proc: subprocess.Popen, url: str, out: Path, version: str, timeout: float = 60) -> None:
    """Until the server's /metrics says it serves `version`."""
    import httpx

    def served() -> str | None:
        try:
            text = httpx.get(f"{url}/metrics", timeout=5).text
        except httpx.TransportError:
            return None
        line = next((x for x in text.splitlines() if x.startswith("mlcycle_serve_model_version ")), None)
        return None if line is None else str(int(float(line.split()[1])))

    deadline = time.monotonic() + timeout
    while served() != version:
        assert proc.poll() is None, out.read_text()[-3000:]
        assert time.monotonic() < deadline, f"serving v{served()}, expected v{version}\n{out.read_text()[-2000:]}"
        time.sleep(0.3)


def test_promote_rollback_hot_reload_and_card(stack, tmp_path):
    ws, state, e = stack
    c = client(state)
    v2 = register_again(ws, c)
    proc, url, out = start_serving(ws, e, tmp_path)

    def wait_for(version: str, timeout: float = 60) -> None:
        wait_for_version(proc, url, out, version, timeout)

    try:
        wait_for("1", timeout=120)
        cmd([sys.executable, "-m", "mlcycle", "model", "promote", "--model", v2, "--reason", "team test"], ws, e)
        wait_for(v2)
        cmd([sys.executable, "-m", "mlcycle", "model", "rollback", "--reason", "team test"], ws, e)
        wait_for("1")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert c.get_model_version_by_alias(MODEL, "champion").version == "1"
    verified = cmd([sys.executable, "-m", "mlcycle", "model", "audit", "--verify"], ws, e)
    assert "3 moves, champion v1" in verified.stdout, verified.stdout
    log = cmd([sys.executable, "-m", "mlcycle", "model", "audit"], ws, e).stdout
    assert [line.split()[1] for line in log.splitlines()] == ["gate-promote", "promote", "rollback"]
    card = cmd([sys.executable, "-m", "mlcycle", "model", "card", "--model", "1"], ws, e)
    assert "model card of" in card.stdout and "mlflow-artifacts:" in card.stdout
    assert not (ws / "mlruns" / "audit.jsonl").exists() and not (ws / "mlruns" / "mlflow.db").exists()


def test_monitor_records_its_run_in_the_server(stack):
    ws, state, e = stack
    cmd([sys.executable, "-m", "mlcycle", "monitoring", "run", "--input", "data/raw/nycflights13/flights.parquet"], ws, e)
    c = client(state)
    found = c.search_runs([c.get_experiment_by_name("mlcycle").experiment_id], "tags.`mlcycle.stage` = 'monitor'")
    assert len(found) == 1 and found[0].info.status == "FINISHED"
    assert found[0].data.tags["mlcycle.monitor.model_version"] == "1"
    assert "monitor/verdict.json" in [a.path for a in c.list_artifacts(found[0].info.run_id, "monitor")]


def test_parallel_promotions_lose_no_audit_entry(stack):
    """Two processes promote alternately against the server; every move is recorded and chained."""
    ws, state, e = stack
    c = client(state)
    before = len(json.loads(json.dumps([t for t in c.get_registered_model(MODEL).tags if t.startswith("audit.")])))
    script = ("import sys\nfrom pathlib import Path\nimport mlflow\nfrom mlcycle.lifecycle import registry\n"
              f"c = mlflow.MlflowClient('{state['mlflow']['url']}', '{state['mlflow']['url']}')\n"
              "done = 0\n"
              "while done < 4:\n"
              f"    cur = registry.champion(c, '{MODEL}').version\n"
              "    try:\n"
              f"        registry.promote(c, Path(sys.argv[1]), '{MODEL}', '2' if cur == '1' else '1', 'parallel')\n"
              "        done += 1\n"
              "    except Exception as exc:\n"
              "        if 'already is the champion' not in str(exc):\n            raise\n")
    # each process has its own lock file: as on two machines, only the server's lock serialises them
    procs = [subprocess.Popen([sys.executable, "-c", script, str(ws / f"host{i}" / "audit.jsonl")], cwd=ws, env=e,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    tags = c.get_registered_model(MODEL).tags
    assert len([t for t in tags if t.startswith("audit.")]) == before + 8
    assert "mlcycle.audit-lock" not in {m.name for m in c.search_registered_models()}
    verified = cmd([sys.executable, "-m", "mlcycle", "model", "audit", "--verify"], ws, e)
    assert "audit chain verified (11 moves" in verified.stdout, verified.stdout


def test_dvc_push_pull_round_trip(stack):
    ws, state, e = stack
    out = ws / "data" / "processed" / "train.parquet"
    digest = out.read_bytes()
    pushed = cmd(["dvc", "push"], ws, e)
    assert "pushed" in pushed.stdout, pushed.stdout
    keys = team.s3_client(state["s3"]["endpoint"]).list_objects_v2(Bucket=team.BUCKET, Prefix="dvc/").get("KeyCount", 0)
    assert keys > 0
    shutil.rmtree(ws / ".dvc" / "cache")
    shutil.rmtree(ws / "data" / "processed")
    cmd(["dvc", "pull"], ws, e)
    assert out.read_bytes() == digest
    assert up_to_date(cmd(["dvc", "status"], ws, e).stdout)


def test_migrate_local_workspace(stack, tmp_path):
    """A local store with versions 1 and 3 (2 deleted), champion moves and audit history is carried
    to the server with the same numbers, aliases, tags and history; the DVC cache is pushed."""
    from mlcycle.lifecycle import audit, registry

    ws, state, e = stack
    name = "migrated-model"
    local = make_workspace(tmp_path / "local", params={**SAMPLE, "tracking": {"model_name": name}})
    run(["dvc", "init", "--quiet"], local, check=False)
    lc = mlflow_client(local)
    (local / "mlruns" / "artifacts").mkdir(parents=True, exist_ok=True)
    exp = lc.create_experiment("mlcycle", artifact_location=(local / "mlruns" / "artifacts").as_uri())
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    model_dir = tmp_path / "model"
    mlflow.sklearn.save_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), str(model_dir))
    versions = []
    for i in range(3):
        rid = lc.create_run(exp, tags={"mlflow.runName": f"train {i}"}).info.run_id
        lc.log_param(rid, "max_iter", str(40 + i))
        versions.append(registry.register(lc, name, rid, model_dir, {"data_md5": f"md5-{i}"}))
        lc.set_terminated(rid)
    lc.delete_model_version(name, "2")
    audit_file = local / "mlruns" / "audit.jsonl"
    registry.promote(lc, audit_file, name, "1", "first")
    registry.promote(lc, audit_file, name, "3", "better")
    audit.append(audit_file, lc, name, "note-only-in-file", None, None, "kept in the file only")
    lc.delete_registered_model_tag(name, max(t for t in lc.get_registered_model(name).tags if t.startswith("audit.")))
    lc.set_registered_model_alias(name, "challenger", "1")
    (local / "extra.csv").write_text("a,b\n1,2\n")
    run(["dvc", "add", "extra.csv"], local)
    run(["dvc", "remote", "add", "-d", "team", f"s3://{team.BUCKET}/dvc"], local)
    run(["dvc", "remote", "modify", "team", "endpointurl", state["s3"]["endpoint"]], local)
    le = {**env(), **{k: v for k, v in team.exports(state).items() if k != "MLFLOW_TRACKING_URI"}}
    out = cmd([sys.executable, "-m", "mlcycle", "team", "migrate", "--to", state["mlflow"]["url"]], local, le)
    assert "migrated-model: 2 version(s)" in out.stdout, out.stdout
    c = client(state)
    assert sorted(m.version for m in c.search_model_versions(f"name = '{name}'")) == ["1", "3"]
    assert c.get_model_version_by_alias(name, "champion").version == "3"
    assert c.get_model_version_by_alias(name, "challenger").version == "1"
    assert c.get_model_version(name, "3").tags["data_md5"] == "md5-2"
    run3 = c.get_run(c.get_model_version(name, "3").run_id)
    assert run3.data.params["max_iter"] == "42" and run3.data.tags["mlcycle.migrated.from_run"]
    history = audit.read(Path("unused"), name, c)
    assert [h["action"] for h in history] == ["promote", "promote", "note-only-in-file"]
    assert audit.verify_chain(history) == []
    mlflow.set_tracking_uri(state["mlflow"]["url"])
    mlflow.set_registry_uri(state["mlflow"]["url"])
    assert mlflow.sklearn.load_model(f"models:/{name}@champion").predict([[1.0]]).tolist() == [1]
    md5 = (local / "extra.csv.dvc").read_text().split("md5: ")[1].split()[0]
    found = team.s3_client(state["s3"]["endpoint"]).list_objects_v2(Bucket=team.BUCKET, Prefix="dvc/").get("Contents", [])
    assert any(o["Key"].endswith(md5[2:]) for o in found)
    again = cmd([sys.executable, "-m", "mlcycle", "team", "migrate", "--to", state["mlflow"]["url"], "--no-push"], local, le,
                check=False)
    assert again.returncode == 1 and "already has 2 version(s)" in again.stderr


def test_wrong_password_and_unreachable_server_say_one_line(stack):
    ws, state, e = stack
    secret = "not-the-password"
    bad = {**e, "MLFLOW_TRACKING_URI": f"postgresql+psycopg://{team.PG_USER}:{secret}@127.0.0.1:{state['pg']['port']}/{team.PG_DB}"}
    proc = cmd([sys.executable, "-m", "mlcycle", "model", "list"], ws, bad, check=False, timeout=60)
    lines = [x for x in proc.stderr.splitlines() if x.startswith("mlcycle:")]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert secret not in proc.stderr and f"{team.PG_USER}:***@127.0.0.1:{state['pg']['port']}" in lines[0]
    assert "refused the user name or password" in lines[0]
    from mlcycle.lifecycle.experiments import free_port

    gone = {**e, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}
    t0 = time.monotonic()
    proc = cmd([sys.executable, "-m", "mlcycle", "model", "promote", "--model", "1", "--reason", "x"], ws, gone, check=False, timeout=60)
    assert proc.returncode == 1 and "cannot be reached" in proc.stderr and "mlcycle team status" in proc.stderr
    assert time.monotonic() - t0 < 30


def test_password_in_params_is_refused(stack):
    ws, _, e = stack
    from tests.conftest import edit_params

    edit_params(ws, {"tracking": {"uri": "postgresql+psycopg://u:hunter2@127.0.0.1:1/db"}})
    try:
        proc = cmd([sys.executable, "-m", "mlcycle", "pipeline", "check"], ws, e, check=False)
        assert proc.returncode == 2 and "tracking.uri holds a password" in proc.stderr and "hunter2" not in proc.stderr
    finally:
        edit_params(ws, {"tracking": {"uri": None}})




def test_concurrent_writers_lose_nothing(stack, tmp_path):
    """At once against the server: two queued DVC experiments (train, evaluate with its gate), a
    serving process hot-reloading, a monitor run and promotions every few seconds. Every run, version and audit
    entry expected is found, the chain verifies, and the server ends on the last champion."""
    ws, state, e = stack
    c = client(state)
    exp_id = c.get_experiment_by_name("mlcycle").experiment_id
    versions = {m.version for m in c.search_model_versions(f"name = '{MODEL}'")}
    from collections import Counter

    from mlcycle.lifecycle import audit

    actions = Counter(x["action"] for x in audit.read(Path("unused"), MODEL, c))
    monitors = len(c.search_runs([exp_id], "tags.`mlcycle.stage` = 'monitor'"))
    run("git add -A && git commit -qm 'before the queue'", ws)
    names = {"q21": 21, "q22": 22}
    for n, it in names.items():
        cmd(["dvc", "exp", "run", "--queue", "-n", n, "-S", f"train.max_iter={it}"], ws, e)
    server, url, out = start_serving(ws, e, tmp_path)
    queue = subprocess.Popen([sys.executable, "-m", "mlcycle", "pipeline", "queue", "--jobs", "2"], cwd=ws, env=e,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    promoted = 0
    try:
        cmd([sys.executable, "-m", "mlcycle", "monitoring", "run", "--input", "data/raw/nycflights13/flights.parquet"], ws, e)
        while promoted < 4 or queue.poll() is None:  # promotions go on while the experiments' gates run
            cur = c.get_model_version_by_alias(MODEL, "champion").version
            target = sorted(versions - {cur}, key=int)[-1]
            p = cmd([sys.executable, "-m", "mlcycle", "model", "promote", "--model", target, "--reason", "while the queue runs"], ws, e,
                    check=False)
            if p.returncode == 0:
                promoted += 1
            else:  # a gate of the queue moved the champion meanwhile: promote again from there
                assert "already is the champion" in p.stderr, p.stderr
            time.sleep(2)
        queued = queue.communicate(timeout=1500)[0]
        assert queue.returncode == 0 and queued.count("Success") == 2, queued
        runs = c.search_runs([exp_id], "tags.`mlcycle.dvc_experiment` LIKE 'q2%'", max_results=100)
        done = {(r.data.tags["mlcycle.dvc_experiment"], r.data.tags.get("mlcycle.stage")): r for r in runs}
        for n, it in names.items():
            assert done[(n, "train")].info.status == "FINISHED" and done[(n, "evaluate")].info.status == "FINISHED"
            assert done[(n, "train")].data.params["train.max_iter"] == str(it)
        new = [c.get_model_version(MODEL, v) for v in {m.version for m in c.search_model_versions(f"name = '{MODEL}'")} - versions]
        assert sorted(v.run_id for v in new) == sorted(done[(n, "train")].info.run_id for n in names)
        added = Counter(x["action"] for x in audit.read(Path("unused"), MODEL, c)) - actions
        gates = Counter("gate-promote" if v.tags["gate.decision"] == "promoted" else "gate-reject" for v in new)
        assert added == Counter({"promote": promoted}) + gates, (added, promoted, gates)  # each gate decides once
        print(f"concurrent writers: {len(runs)} experiment runs, {len(new)} new versions, audit entries "
              f"expected {promoted + sum(gates.values())} found {sum(added.values())} ({dict(added)})")
        assert "audit chain verified" in cmd([sys.executable, "-m", "mlcycle", "model", "audit", "--verify"], ws, e).stdout
        assert len(c.search_runs([exp_id], "tags.`mlcycle.stage` = 'monitor'")) == monitors + 1
        # the serving process follows the last move
        wait_for_version(server, url, out, c.get_model_version_by_alias(MODEL, "champion").version)
    finally:
        for proc in (queue, server):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)


def train_runs(c) -> dict[str, object]:
    exp = c.get_experiment_by_name("mlcycle").experiment_id
    return {r.info.run_id: r for r in c.search_runs([exp], "tags.`mlcycle.stage` = 'train'", max_results=100)}


def stop_server_while_training(ws: Path, e: dict, state: dict, down_seconds: float | None):
    """Run the train stage; once its MLflow run exists, stop the tracking server, and start it again
    on the same port (`team up` after only the server died) after `down_seconds` (None: only after
    the stage ended). Returns (the finished `dvc repro` process, the run's id, the restarted state)."""
    c = client(state)
    before = set(train_runs(c))
    proc = subprocess.Popen(["dvc", "repro", "-s", "train"], cwd=ws, env=e, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        started = set()
        while not started:
            assert proc.poll() is None and time.monotonic() < deadline, "the train stage's run never appeared"
            started = {rid for rid, r in train_runs(c).items() if rid not in before and r.info.status == "RUNNING"}
            time.sleep(0.2)
        team.stop_pid(state["mlflow"]["pid"])
        if down_seconds is not None:
            time.sleep(down_seconds)
            restarted = team.up(ws)
        out = proc.communicate(timeout=900)[0]
        if down_seconds is None:
            restarted = team.up(ws)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert restarted["mlflow"]["url"] == state["mlflow"]["url"] and team.status(ws)["running"]
    return proc.returncode, out, started.pop(), restarted


def test_server_restart_mid_stage(stack):
    """The tracking server stops while the train stage runs. Gone for good (as far as the client's
    retries go): the stage fails naming the store and the run, the run is not FINISHED, nothing is
    registered, DVC keeps the stage out of date. Back within seconds: the client's retries ride it out
    and the stage is recorded in full. `team up` starts only the dead server, on the same port."""
    ws, state, e = stack
    from tests.conftest import edit_params

    c = client(state)
    versions = {m.version for m in c.search_model_versions(f"name = '{MODEL}'")}
    champion = c.get_model_version_by_alias(MODEL, "champion").version
    edit_params(ws, {"train": {"max_iter": 33}})
    quick = {**e, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
    code, out, lost, state = stop_server_while_training(ws, quick, state, down_seconds=None)
    assert code != 0, out
    assert f"stage 'train' ran, but recording it in the tracking store {state['mlflow']['url']} failed" in out, out
    assert f"its MLflow run {lost} is left RUNNING, not FINISHED" in out, out
    c = client(state)
    assert c.get_run(lost).info.status == "RUNNING"
    assert {m.version for m in c.search_model_versions(f"name = '{MODEL}'")} == versions
    assert c.get_model_version_by_alias(MODEL, "champion").version == champion
    assert "train" in cmd(["dvc", "status", "train"], ws, e).stdout  # not recorded as done: runs again

    code, out, kept, state = stop_server_while_training(ws, e, state, down_seconds=3)
    assert code == 0, out
    c = client(state)
    finished = c.get_run(kept)
    assert finished.info.status == "FINISHED" and finished.data.params["train.max_iter"] == "33"
    assert {a.path for a in c.list_artifacts(kept, "report")} == {"report/train.html", "report/train.ipynb"}
    new = {m.version for m in c.search_model_versions(f"name = '{MODEL}'")} - versions
    assert len(new) == 1 and c.get_model_version(MODEL, new.pop()).run_id == kept
    assert c.get_run(lost).info.status == "RUNNING"
    for rid, r in train_runs(c).items():  # whatever is FINISHED was recorded in full
        assert r.info.status != "FINISHED" or c.list_artifacts(rid, "report"), rid
    assert "up to date" in cmd(["dvc", "status", "train"], ws, e).stdout.lower()


def test_objects_outlive_team_down_and_up(stack):
    """moto keeps objects in memory: `team down` copies the bucket to .team/s3 and `team up` loads it
    back, so the champion's artifacts and the DVC remote survive a restart of the whole stack
    (new ports). Runs last in this module."""
    ws, state, _ = stack
    s3 = team.s3_client(state["s3"]["endpoint"])
    before = sorted(o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=team.BUCKET)
                    for o in page.get("Contents", []))
    assert any(k.startswith("mlflow/") for k in before) and any(k.startswith("dvc/") for k in before)
    load = ("import mlflow; m = mlflow.pyfunc.load_model('models:/" + MODEL + "@champion'); "
            "print(m.metadata.model_uuid)")
    champion = cmd([sys.executable, "-c", load], ws, {**env(), **team.exports(state)}).stdout.split()[-1]
    assert len(champion) == 32
    assert team.down(ws)
    assert json.loads((team.saved_bucket(ws) / "keys.json").read_text()) == before
    state = team.up(ws)
    assert state["s3"]["loaded"] == len(before)
    s3 = team.s3_client(state["s3"]["endpoint"])
    after = sorted(o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=team.BUCKET)
                   for o in page.get("Contents", []))
    assert after == before
    e = {**env(), **team.exports(state)}
    assert cmd([sys.executable, "-c", load], ws, e).stdout.split()[-1] == champion  # the same model, read back
    shutil.rmtree(ws / ".dvc" / "cache")
    shutil.rmtree(ws / "data" / "processed")
    cmd(["dvc", "pull", "data/processed"], ws, e)
    assert (ws / "data" / "processed" / "train.parquet").exists()
