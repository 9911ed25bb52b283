"""MLflow tracking for every stage execution, with lineage.

The store: `MLFLOW_TRACKING_URI` when set (a tracking server, for parallel runs), else
`tracking.uri` from params, else an SQLite store and artifact folder under the *main* workspace's
`mlruns/`, by absolute path. DVC experiments run in temporary copies under `.dvc/tmp/exps/`; those
copies resolve to the same main workspace, so every run lands in one store.

One MLflow run per stage execution, nested under one parent run per `dvc repro` (the parent is
keyed by the DVC process that runs the stages), tagged with the git commit, a dirty flag, the
requirements.lock digest and whether the installed packages match it (`env_tags`), the stage and
the DVC hash of every input and output. Tracking knows no stage by name: what only some
stages produce (trials, a model to register, evaluation files, a verdict) they hand over through
`core/record.py`, and `TrackingHook.apply` records each item once the stage has finished.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import re
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from mlcycle.core import environment, private, provenance, record, tasks, workspace
from mlcycle.core.config import Params
from mlcycle.core.errors import RecordingError, TrackingError
from mlcycle.core.paths import NOTEBOOKS, PARAMS_SECTIONS, Paths, store_dir
from mlcycle.lifecycle import registry

KEY_PACKAGES = ("mlcycle", "pandas", "scikit-learn", "numpy", "mlflow", "dvc", "papermill")
PIPELINE_TAG = "mlcycle.pipeline_key"
TRIGGER_ENV = "MLCYCLE_TRIGGER_RUN"  # set by `mlcycle monitoring retrain` for the pipeline it runs
TRIGGER_TAG = "mlcycle.trigger.monitor_run"


def stage_sections(stage: str, params) -> tuple[str, ...]:
    """The params sections a stage's run logs: the generic ones (paths.PARAMS_SECTIONS), then those
    of the active task (its `stage_params`, e.g. a recommender's `recommend`)."""
    own = tasks.active(params).stage_params.get(stage, ())
    return (*PARAMS_SECTIONS.get(stage, ()), *(s for s in own if s not in PARAMS_SECTIONS.get(stage, ())))


def tracking_uri(root: Path, params: Params) -> str:
    """The tracking store's URI (`core.workspace.tracking_uri`: MLFLOW_TRACKING_URI, tracking.uri or
    the local store)."""
    return workspace.tracking_uri(root, params)


def masked(uri: str) -> str:
    """`uri` with its password (if any) replaced by ***, for messages and logs."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparsable URI>"
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def unreachable(uri: str, exc: BaseException) -> TrackingError:
    """One line naming the store (password masked), what went wrong and what to check."""
    text = str(exc)
    low = text.lower()
    if "password authentication failed" in low or "authentication failed" in low:
        why, check = "the database refused the user name or password", \
            "the password (PGPASSWORD, or the URI in MLFLOW_TRACKING_URI; never in params.yaml)"
    elif "401" in text or "403" in text or "unauthorized" in low or "forbidden" in low:
        why, check = "the server refused the credentials", "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD"
    elif "does not exist" in low and "database" in low:
        why, check = "the database does not exist", "the database name in the URI"
    else:
        why, check = "it cannot be reached", ("that the server runs (`mlcycle team status` for the local stack), "
                                              "the host and port, and the network")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    first = first.replace(uri, masked(uri))
    return TrackingError(f"tracking store {masked(uri)}: {why} ({type(exc).__name__}: {first[:160]}); check {check} "
                         "(tracking.uri in params.yaml or MLFLOW_TRACKING_URI)")


def check_store(uri: str, timeout: float = 10.0) -> None:
    """Fail fast with one clear line when a tracking server does not answer or refuses the
    credentials (MLflow's own client retries for minutes). Local stores need no check."""
    if uri.startswith(("postgresql", "mysql", "mssql")):
        import sqlalchemy

        args = {"connect_timeout": int(timeout)} if uri.startswith(("postgresql", "mysql")) else {}
        engine = sqlalchemy.create_engine(uri, connect_args=args)
        try:
            engine.connect().close()
        except Exception as exc:
            raise unreachable(uri, exc) from None
        finally:
            engine.dispose()
        return
    if not uri.startswith(("http://", "https://")):
        return
    import base64
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search?max_results=1")
    user, pw = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and pw:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode())
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        req.add_header("Authorization", f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}")
    try:
        urllib.request.urlopen(req, timeout=timeout).close()
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403) or exc.code >= 500:
            raise unreachable(uri, exc) from None
    except OSError as exc:
        raise unreachable(uri, exc) from None


def setup(root: Path, params: Params):
    """Point mlflow at the workspace's store; return (client, experiment_id). No work at import.
    A store that cannot be reached raises TrackingError (one line: the URI without its password)."""
    import logging

    import mlflow  # noqa: F401 (first: its import sets the level of its loggers, which is set below)

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    ws = workspace.Workspace(Paths(root), params)
    uri = ws.tracking_uri
    db = Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None
    if db is not None:
        private.mkdir(db.parent)  # database, artifacts, audit log: the owner's only
    check_store(uri)
    try:
        client = ws.client()  # mlflow's own tracking and registry URIs point at the store too
        exp = client.get_experiment_by_name(params.tracking.experiment)
    except Exception as exc:
        if db is not None:
            raise
        raise unreachable(uri, exc) from None
    if exp is None:
        artifacts = None
        if uri.startswith("sqlite:"):
            artifacts = (store_dir(root) / "artifacts").as_uri()
        try:
            exp_id = client.create_experiment(params.tracking.experiment, artifact_location=artifacts)
        except Exception:  # created meanwhile by a parallel stage
            exp_id = client.get_experiment_by_name(params.tracking.experiment).experiment_id
    else:
        exp_id = exp.experiment_id
    if db is not None and db.exists():
        db.chmod(0o600)  # it holds every run's params, inputs' hashes and the registry
    return client, exp_id


def git_tags(root: Path) -> dict[str, str]:
    """The workspace's git state (`provenance.git_state`) as run tags: dirty when a file git tracks
    differs from the commit, not counting what the pipeline itself writes (`dvc.lock`, the metrics
    and other outputs git keeps), which DVC removes and rewrites while the stages run."""
    g = provenance.git_state(root, provenance.pipeline_results(root))
    if g["commit"] is None:
        return {"mlflow.source.git.commit": "none", "mlcycle.git.dirty": "unknown", "mlcycle.git.changed": "unknown"}
    # which files made it dirty ("none": clean), so that a reader can tell whether they were inputs
    changed = " ".join(g["changed"])[:1000] or "none"
    return {"mlflow.source.git.commit": g["commit"], "mlcycle.git.dirty": str(g["dirty"]).lower(),
            "mlcycle.git.changed": changed}


def env_tags(root: Path) -> dict[str, str]:
    """The installed packages against the workspace's requirements.lock (`environment.status`) as
    run tags: the lock's sha256 ("none" without a lock), whether every pin is installed as locked
    ("true", "false", "unknown" without a readable lock) and, when not, what differs."""
    s = environment.status(root)
    tags = {"mlcycle.env.lock_digest": s.digest,
            "mlcycle.env.matches_lock": "unknown" if s.matches is None else str(s.matches).lower()}
    if s.matches is False:
        tags["mlcycle.env.differs"] = s.summary()
    return tags


def versions() -> dict[str, str]:
    out = {"mlcycle.python": platform.python_version()}
    for p in KEY_PACKAGES:
        try:
            out[f"mlcycle.version.{p}"] = version(p)
        except PackageNotFoundError:
            pass
    return out


def dvc_process() -> tuple[int, str] | None:
    """The nearest ancestor process running DVC, as (pid, start time), or None (Linux /proc)."""
    pid = os.getppid()
    for _ in range(12):
        if pid <= 1:
            return None
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        names = [Path(c.decode(errors="replace")).name for c in cmd[:3]]
        if any(n in ("dvc", "dvc.exe") for n in names[:2]) or names[1:3] == ["-m", "dvc"]:  # dvc, python dvc, python -m dvc
            return pid, fields[19]
        pid = int(fields[1])
    return None


def pipeline_key() -> str | None:
    """What groups the stage runs of one pipeline execution: $MLCYCLE_PIPELINE_KEY or the DVC process."""
    if os.environ.get("MLCYCLE_PIPELINE_KEY"):
        return os.environ["MLCYCLE_PIPELINE_KEY"]
    proc = dvc_process()
    return f"{platform.node()}:{proc[0]}:{proc[1]}" if proc else None


def parent_run(client, exp_id: str, key: str, tags: dict[str, str]) -> str:
    """The parent run of this pipeline execution, created by its first stage."""
    found = client.search_runs([exp_id], filter_string=f"tags.`{PIPELINE_TAG}` = '{key}'", max_results=1)
    if found:
        return found[0].info.run_id
    run = client.create_run(exp_id, tags={PIPELINE_TAG: key, "mlflow.runName": "pipeline", **tags})
    return run.info.run_id


def latest_runs(client, exp_id: str) -> dict:
    """The newest pipeline execution's runs, for the report index: {"experiment_id", "pipeline": the
    parent run's id or None, "stages": {stage: run id}}. A stage the newest execution did not run
    (DVC found it up to date) links its newest run of any execution."""
    found = client.search_runs([exp_id], filter_string="tags.`mlflow.runName` = 'pipeline'",
                               order_by=["attributes.start_time DESC"], max_results=1)
    parent = found[0].info.run_id if found else None
    stages: dict[str, str] = {}
    if parent:
        for r in client.search_runs([exp_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent}'",
                                    order_by=["attributes.start_time DESC"], max_results=200):
            stages.setdefault(r.data.tags.get("mlcycle.stage", ""), r.info.run_id)
    for stage in NOTEBOOKS:
        if stage not in stages:
            newest = client.search_runs([exp_id], filter_string=f"tags.`mlcycle.stage` = '{stage}'",
                                        order_by=["attributes.start_time DESC"], max_results=1)
            if newest:
                stages[stage] = newest[0].info.run_id
    stages.pop("", None)
    return {"experiment_id": exp_id, "pipeline": parent, "stages": stages}


def dvc_hashes(root: Path, stage: str, kinds: tuple[str, ...] = ("deps", "outs")) -> dict[str, dict[str, str]]:
    """DVC's own hash (md5, `.dir` for folders) of each file input and/or output of `stage`."""
    out: dict[str, dict[str, str]] = {k: {} for k in kinds}
    try:
        from dvc.repo import Repo

        with Repo(str(root)) as repo:
            st = repo.stage.collect(stage)[0]
            for kind, items in (("deps", st.deps), ("outs", st.outs)):
                if kind not in kinds:
                    continue
                for o in items:
                    if getattr(o, "hash_name", "") == "params" or not o.exists:
                        continue
                    out[kind][str(o.def_path)] = o.get_hash().value
    except Exception as exc:  # lineage must never fail a stage; say why it is missing
        out["error"] = {"dvc": f"{type(exc).__name__}: {exc}"[:200]}
    return out


def is_code(dep: str) -> bool:
    """A stage dependency that is code (the package, a notebook, a template), not data."""
    return dep.endswith((".py", ".ipynb", ".j2")) or dep.startswith(("src/", "notebooks/"))


_NOT_IN_A_NAME = re.compile(r"[^\w\-. :/]")


def mlflow_name(name: str) -> str:
    """`name` as MLflow accepts it for a metric, param or tag key: characters it refuses (such as the
    parentheses of the `(all rows)` segment) become `_`."""
    return _NOT_IN_A_NAME.sub("_", name)


def flatten(d: dict, prefix: str = "") -> dict[str, object]:
    """Nested dicts as `a.b.c` keys that MLflow accepts (see `mlflow_name`)."""
    flat = {}
    for k, v in d.items():
        key = mlflow_name(f"{prefix}{k}")
        if isinstance(v, dict):
            flat.update(flatten(v, f"{key}."))
        else:
            flat[key] = v
    return flat


class TrackingHook:
    """Runner hook: one MLflow run per stage execution (see module docstring)."""

    def __init__(self, sections: tuple[str, ...] | None = None):
        self.sections = sections
        self.run_id: str | None = None
        self.env: dict[str, str] | None = None  # env_tags, read in prepare
        self.prepared = False

    def prepare(self, run) -> None:
        """What records nothing: open the store, read git and the inputs' DVC hashes. Runs while
        the runner checks the stage and the kernel executes the notebook: inputs do not change."""
        self.client, self.exp_id = setup(run.root, run.params)
        self.git = git_tags(run.root)
        self.env = env_tags(run.root)
        self.deps = dvc_hashes(run.root, run.stage, ("deps",)) if run.stage in NOTEBOOKS else {}
        self.prepared = True

    def start(self, run) -> None:
        """Create this stage's run (and the pipeline's parent run, for the first stage)."""
        if not self.prepared:
            self.prepare(run)
        base = {**self.git, **self.env, **versions(), "mlcycle.stage": run.stage,
                "mlflow.user": getpass.getuser(), "mlcycle.task": str(run.params.task),
                "mlflow.source.name": run.notebook.relative_to(run.root).as_posix(),
                "mlflow.source.type": "NOTEBOOK",
                "mlcycle.tracking.process": os.environ.get("MLCYCLE_TRACKING_PROCESS", "forked")}
        exp_name = os.environ.get("DVC_EXP_NAME")
        if exp_name:
            base["mlcycle.dvc_experiment"] = exp_name
        trigger = os.environ.get(TRIGGER_ENV)
        if trigger:  # a retraining started by `mlcycle monitoring retrain`: the monitor run that called for it
            base[TRIGGER_TAG] = trigger
        tags = {**base, "mlflow.runName": run.stage}
        key = pipeline_key()
        self.parent_id = None
        if key:
            shared = {k: v for k, v in base.items() if k not in ("mlcycle.stage", "mlflow.source.name", "mlcycle.tracking.process")}
            self.parent_id = parent_run(self.client, self.exp_id, key, shared)
            tags["mlflow.parentRunId"] = self.parent_id
        self.run_id = self.client.create_run(self.exp_id, tags=tags).info.run_id
        run.tracking_run_id = self.run_id

    def end(self, run) -> None:
        """Record the stage and end its run; the run is FINISHED only once everything is recorded.
        When the store fails meanwhile (MLflow's client has retried for minutes by then), the run
        is marked FAILED if the store answers again at once, else left RUNNING, and the stage fails."""
        try:
            self.record(run)
        except Exception as exc:
            uri = getattr(self.client, "tracking_uri", "") or ""
            marked = "left RUNNING"
            try:
                check_store(uri, timeout=5.0)
                self.client.set_terminated(self.run_id, "FAILED")
                marked = "marked FAILED"
            except Exception:
                pass
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            first = first.replace(uri, masked(uri)) if uri else first
            raise RecordingError(
                f"recording it in the tracking store {masked(uri)} failed ({type(exc).__name__}: {first[:200]}); "
                f"its MLflow run {self.run_id} is {marked}, not FINISHED. Check that the store runs "
                "(`mlcycle team status` for the local stack) and run the stage again (`dvc repro`)") from None

    def record(self, run) -> None:
        from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag

        c, rid = self.client, self.run_id
        paths = Paths(run.root)
        sections = self.sections or stage_sections(run.stage, run.params)
        dump = run.params.dump()
        params = flatten({s: dump[s] for s in sections if s in dump})
        c.log_batch(rid, params=[Param(k, json.dumps(v) if isinstance(v, list | dict) else str(v)[:6000])
                                 for k, v in params.items()])
        metrics_file = paths.metrics(run.stage)
        if metrics_file.exists():
            flat = flatten(json.loads(metrics_file.read_text()))
            now = int(time.time() * 1000)
            nums = [Metric(k, float(v), now, 0) for k, v in flat.items()
                    if isinstance(v, int | float) and not isinstance(v, bool)]
            if nums:
                c.log_batch(rid, metrics=nums)
        outs = dvc_hashes(run.root, run.stage, ("outs",)) if run.stage in NOTEBOOKS else {}
        hashes = {**self.deps, **outs}
        if "error" in self.deps:
            hashes["error"] = {**self.deps["error"], **hashes.get("error", {})}
        tags = [RunTag(mlflow_name(f"mlcycle.dvc.{kind}.{path}")[:250], h) for kind, items in hashes.items() for path, h in items.items()]
        tags += [RunTag("mlcycle.seconds", json.dumps({k: round(v, 2) for k, v in run.seconds.items()}))]
        c.log_batch(rid, tags=tags)
        inputs = [DatasetInput(Dataset(name=path, digest=h[:36], source_type="local",
                                       source=json.dumps({"uri": path, "dvc_md5": h})),
                               tags=[InputTag("mlflow.data.context", "stage input")])
                  for path, h in hashes.get("deps", {}).items() if not is_code(path)]
        if inputs:
            c.log_inputs(rid, datasets=inputs)
        for f in (run.executed, run.html):
            if f.exists():
                c.log_artifact(rid, str(f), "report")
        figs = paths.figures(run.stage)
        if figs.exists():
            c.log_artifacts(rid, str(figs), "figures")
        if run.error:
            c.set_tag(rid, "mlcycle.error", run.error[:5000])
        if run.status == "FINISHED":  # what the stage handed over (core/record.py), in its order
            for item in record.read(run.record):
                self.apply(item, run, hashes)
        status = "FAILED" if run.status == "FAILED" else "FINISHED"
        c.set_terminated(rid, status)
        if self.parent_id:  # the pipeline run ends with its latest stage, FAILED if that one failed
            c.set_terminated(self.parent_id, status)

    def apply(self, item: dict, run, hashes: dict) -> None:
        """Record one item a stage handed over (kinds: see core/record.py)."""
        from mlflow.entities import Metric, Param, RunTag

        c, rid, kind = self.client, self.run_id, item["kind"]
        fill = {"run_id": rid}
        if kind == "artifacts":
            for f in item["files"]:
                if Path(f).exists():
                    c.log_artifact(rid, f, item["folder"])
        elif kind == "tags":
            c.log_batch(rid, tags=[RunTag(k, v[:5000]) for k, v in item["tags"].items()])
        elif kind == "params":
            c.log_batch(rid, params=[Param(k, v[:6000]) for k, v in item["params"].items()])
        elif kind == "version_tags":
            fill["artifact_uri"] = c.get_run(rid).info.artifact_uri
            for k, v in item["tags"].items():
                c.set_model_version_tag(item["name"], item["version"], k, v.format(**fill))
        elif kind == "child_runs":
            status = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
            for r in item["runs"]:
                tags = {**r["tags"], "mlflow.parentRunId": rid, "mlflow.runName": r["name"]}
                child = c.create_run(self.exp_id, start_time=r["start_ms"], tags=tags).info.run_id
                c.log_batch(child, metrics=[Metric(k, float(v), r["end_ms"], int(step)) for k, v, step in r["metrics"]],
                            params=[Param(k, str(v)) for k, v in r["params"].items()])
                c.set_terminated(child, status.get(r["status"], r["status"]), end_time=r["end_ms"])
        elif kind == "register":
            self.register(run, item, hashes)
        elif kind == "run_id_into":
            path = Path(item["file"])
            if path.exists():
                doc = json.loads(path.read_text())
                doc[item["key"]] = rid
                path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        else:
            raise ValueError(f"unknown record kind '{kind}' (see mlcycle/core/record.py)")

    def register(self, run, item: dict, hashes: dict) -> None:
        """Register the model the stage saved, with its lineage; write the registration file the gate reads."""

        git = self.git
        tags = {"git_commit": git["mlflow.source.git.commit"], "git_dirty": git["mlcycle.git.dirty"],
                "data_md5": hashes.get("deps", {}).get(item.get("data") or "", ""), "stage_run_id": self.run_id,
                "lock_digest": (self.env or env_tags(run.root))["mlcycle.env.lock_digest"]}
        if os.environ.get(TRIGGER_ENV):
            tags["trigger_monitor_run"] = os.environ[TRIGGER_ENV]
        tags.update({k: v.replace("{run_id}", self.run_id) for k, v in (item.get("tags") or {}).items()})
        version = registry.register(self.client, item["name"], self.run_id, Path(item["model_dir"]), tags)
        reg = Path(item["registration"])
        doc = json.loads(reg.read_text()) if reg.exists() else {}
        reg.write_text(json.dumps({**doc, "name": item["name"], "version": version, "run_id": self.run_id},
                                  indent=2) + "\n")
