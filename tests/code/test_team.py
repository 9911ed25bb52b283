"""Team mode's small parts: masking a URI, refusing a password in params, the audit log as tags."""

import datetime as dt
import json

import pytest

from mlcycle.core import config
from mlcycle.core.errors import ParamsError, TrackingError
from mlcycle.lifecycle import audit
from mlcycle.runtime import tracking


@pytest.mark.parametrize("uri, shown", [
    ("postgresql+psycopg://ml:s3cret@db.example.org:5432/mlflow", "postgresql+psycopg://ml:***@db.example.org:5432/mlflow"),
    ("https://user:pa%40ss@mlflow.example.org/", "https://user:***@mlflow.example.org/"),
    ("http://127.0.0.1:5001", "http://127.0.0.1:5001"),
    ("sqlite:////tmp/x/mlflow.db", "sqlite:////tmp/x/mlflow.db"),
])
def test_masked_hides_only_the_password(uri, shown):
    assert tracking.masked(uri) == shown


def test_unreachable_names_the_uri_without_the_password():
    uri = "postgresql+psycopg://ml:s3cret@127.0.0.1:1/mlflow"
    err = tracking.unreachable(uri, RuntimeError(f'connection to {uri} failed: FATAL: password authentication failed for user "ml"'))
    text = str(err)
    assert isinstance(err, TrackingError) and "s3cret" not in text and "\n" not in text
    assert "ml:***@127.0.0.1:1/mlflow" in text and "refused the user name or password" in text


def test_a_password_in_tracking_uri_is_refused(tmp_path):
    from tests.conftest import ROOT

    raw = config.read_yaml(ROOT / "params.yaml")
    raw["tracking"]["uri"] = "postgresql+psycopg://ml:s3cret@db/mlflow"
    p = tmp_path / "params.yaml"
    import yaml

    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match="tracking.uri holds a password"):
        config.load(p, root=ROOT)
    raw["tracking"]["uri"] = "postgresql+psycopg://ml@db/mlflow"  # the password from PGPASSWORD: fine
    p.write_text(yaml.safe_dump(raw))
    assert config.load(p, root=ROOT).tracking.uri == "postgresql+psycopg://ml@db/mlflow"


@pytest.mark.parametrize("uri, shared", [("sqlite:////w/mlruns/mlflow.db", False), ("file:///w/mlruns", False),
                                         ("http://127.0.0.1:5001", True), ("postgresql+psycopg://u@h/db", True)])
def test_shared_registry_is_every_uri_but_a_local_store(uri, shared):
    assert audit.shared_uri(uri) is shared


def test_tag_keys_sort_by_time_and_never_collide():
    t = dt.datetime(2026, 1, 2, 3, 4, 5, 6)
    keys = {audit.tag_key(t) for _ in range(200)}
    assert len(keys) == 200 and all(k.startswith("audit.20260102T030405000006.") for k in keys)
    assert audit.tag_key(t) < audit.tag_key(t + dt.timedelta(microseconds=1))


def test_long_details_are_dropped_not_cut_mid_json():
    entry = {"when": "2026-01-01T00:00:00+00:00", "model": "m", "action": "gate-reject", "from_version": "1",
             "to_version": "1", "reason": "r", "who": "u", "details": {"criteria": ["x" * 100] * 100}}
    value = audit.tag_value(entry)
    assert len(value) <= 5000
    back = json.loads(value)
    assert back["details_truncated"] is True and back["action"] == "gate-reject" and "details" not in back
    tags = {"audit.20260101T000001000000.aa": json.dumps({**entry, "action": "b"}), "other": "x",
            "audit.20260101T000000000000.bb": value, "audit.20250101T000000000000": "{cut"}
    assert [e["action"] for e in audit.from_tags(tags)] == ["gate-reject", "b"]


def test_the_saved_s3_objects_are_the_owners_only(tmp_path):
    """A real moto S3 endpoint, as `team up` starts it: `save_bucket` (what `team down` runs) copies
    the objects (artifacts, DVC's data) into 0600 files in 0700 folders, whatever the umask."""
    import os
    import stat

    from mlcycle.runtime import team

    root = tmp_path / "ws"
    team.team_dir(root).mkdir(parents=True)
    state: dict = {}
    old_umask = os.umask(0o022)
    try:
        team.start_s3(root, state)
        c = team.s3_client(state["s3"]["endpoint"])
        c.put_object(Bucket=team.BUCKET, Key="dvc/files/md5/ab/cdef", Body=b"email\na@example.com\n")
        c.put_object(Bucket=team.BUCKET, Key="mlflow/1/run/artifacts/predictions.parquet", Body=b"rows")
        assert team.save_bucket(root, state) == 2
    finally:
        os.umask(old_umask)
        team.stop_pid(state.get("s3", {}).get("pid"))
    saved = team.saved_bucket(root)
    modes = {p.relative_to(saved).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in [saved, *saved.rglob("*")]}
    assert modes["objects/dvc/files/md5/ab/cdef"] == 0o600 and (saved / "objects/dvc/files/md5/ab/cdef").read_bytes()
    assert {m for p, m in modes.items() if (saved / p).is_file()} == {0o600}
    assert {m for p, m in modes.items() if (saved / p).is_dir()} == {0o700}
