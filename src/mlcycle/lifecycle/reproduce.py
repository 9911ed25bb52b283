"""Rebuild a trained model from its lineage and say whether the result is identical (`mlcycle model reproduce`).

A model version carries its lineage in the tracking store: the git commit it was trained from and
whether that checkout was dirty (`git_commit`, `git_dirty`), the DVC hash of its training data
(`data_md5`), and the train stage run with the DVC hash of every input (`mlcycle.dvc.deps.*`), its
params and metrics; the evaluate run of the same pipeline holds the holdout metrics. `reproduce`:

1. reads that lineage (the workspace's store is only read);
2. checks the commit out in a temporary git worktree whose DVC uses the workspace's own cache and
   remotes, brings each data input of the train stage by its recorded DVC hash (the cache, then the
   remotes, then the stage that writes it, which must give the same hash), and runs `train` and
   `evaluate` again (`dvc repro --force --single-item --no-run-cache --no-commit`: the stages really
   run, and nothing is added to the cache) with a private MLflow store in the temporary folder, so
   nothing is registered or promoted in the workspace's registry and its audit log is untouched;
3. compares the inputs (data hash, every DVC-hashed input, params), the metrics of both runs, and
   the holdout scores of the original and the rebuilt model, bit for bit (table tasks);
4. removes the worktree and the temporary folder, on failure and Ctrl-C too.

The comparisons are plain functions of recorded values (`compare_values`, `compare_hashes`,
`compare_predictions`, `identical`, `summary`), tested without a pipeline.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from mlcycle.core import private, tasks
from mlcycle.core.compute import THREAD_VARIABLES
from mlcycle.core.config import read_yaml
from mlcycle.core.errors import ReproduceError, StageError
from mlcycle.core.provenance import file_md5
from mlcycle.core.scoring import quiet_mlflow
from mlcycle.lifecycle import registry

STAGES = ("train", "evaluate")  # run again (forced); every other stage's outputs come by their hashes
SCRATCH = ".mlcycle-reproduce"  # inputs brought by hash land here in the worktree, then move into place
DEPS, OUTS = "mlcycle.dvc.deps.", "mlcycle.dvc.outs."
PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
# what would tie the rebuild to the workspace it was started from (its store, its runs, its pipeline)
UNSET = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID",
         "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "MLFLOW_ARTIFACT_URI",
         "MLCYCLE_ROOT", "MLCYCLE_DEFAULT_STORE", "MLCYCLE_PIPELINE_KEY", "MLCYCLE_TRIGGER_RUN", "MLCYCLE_RECORD", "MLCYCLE_TRACKING_PROCESS",
         "DVC_EXP_NAME", "DVC_ROOT")


@dataclass
class Lineage:
    """What the tracking store recorded about one trained model."""

    name: str
    version: str | None  # None: a train run that registered no version of `name`
    run_id: str
    experiment_id: str
    commit: str
    dirty: str  # "true" | "false" | "unknown"
    data_md5: str
    deps: dict[str, str]  # input path -> DVC hash (the train run's mlcycle.dvc.deps.* tags)
    outs: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    evaluate_run_id: str | None = None
    evaluate_metrics: dict[str, float] = field(default_factory=dict)
    evaluate_outs: dict[str, str] = field(default_factory=dict)
    lock_digest: str | None = None  # requirements.lock's digest, when the version or run records one
    lock_matched: str | None = None  # whether the packages matched it when it trained: "true" | "false" | "unknown"

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}" if self.version else f"train run {self.run_id}"


# ---------------------------------------------------------------- the comparisons (pure)

def _same(a: float, b: float) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def compare_values(original: dict[str, float], rebuilt: dict[str, float]) -> dict:
    """Metric by metric: identical (NaN equals NaN) or both values and their absolute difference;
    a metric on one side only differs (its missing value is None)."""
    differences = {}
    names = sorted(set(original) | set(rebuilt))
    for k in names:
        a, b = original.get(k), rebuilt.get(k)
        if a is not None and b is not None and _same(float(a), float(b)):
            continue
        diff = abs(float(a) - float(b)) if a is not None and b is not None else None
        differences[k] = {"original": a, "rebuilt": b, "abs_diff": diff}
    return {"compared": len(names), "identical": not differences, "differences": differences}


def compare_hashes(original: dict[str, str], rebuilt: dict[str, str]) -> list[dict]:
    """Each path whose recorded hash (or value) differs, or that one side lacks."""
    return [{"path": p, "original": original.get(p), "rebuilt": rebuilt.get(p)}
            for p in sorted(set(original) | set(rebuilt)) if original.get(p) != rebuilt.get(p)]


def compare_predictions(original: np.ndarray, rebuilt: np.ndarray) -> dict:
    """Scores of the same rows: identical (numpy array_equal, NaN equal to NaN), else the rows whose
    scores differ and the largest absolute difference (a NaN on one side only counts as infinite)."""
    a, b = np.asarray(original, dtype=np.float64), np.asarray(rebuilt, dtype=np.float64)
    out = {"compared": True, "rows": int(a.shape[0]) if a.ndim else 1}
    if a.shape != b.shape:
        return {**out, "identical": False, "rows_differing": None, "max_abs_diff": None,
                "why": f"shapes differ: {a.shape} original, {b.shape} rebuilt"}
    if np.array_equal(a, b, equal_nan=True):
        return {**out, "identical": True, "rows_differing": 0, "max_abs_diff": 0.0}
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    diff = np.where(nan_a & nan_b, 0.0, np.where(nan_a | nan_b, np.inf, np.abs(a - b)))
    per_row = diff.reshape(diff.shape[0], -1) if diff.ndim else diff.reshape(1, 1)
    return {**out, "identical": False, "rows_differing": int((per_row != 0).any(axis=1).sum()),
            "max_abs_diff": float(diff.max())}


def compare(lin: Lineage, rebuilt_train: dict, rebuilt_evaluate: dict | None, predictions: dict) -> dict:
    """The comparison of a lineage with what was rebuilt from it. `rebuilt_*`: {deps, outs, params,
    metrics} of the rebuilt stage runs (None: no rebuilt evaluate run)."""
    deps = compare_hashes(lin.deps, rebuilt_train["deps"])
    data_path = next((p for p, h in lin.deps.items() if h == lin.data_md5), "data/processed")
    data = {"path": data_path, "original": lin.data_md5, "rebuilt": rebuilt_train["deps"].get(data_path)}
    params = compare_hashes(lin.params, rebuilt_train["params"])
    metrics = {"train": compare_values(lin.metrics, rebuilt_train["metrics"])}
    if lin.evaluate_run_id and rebuilt_evaluate is not None:
        metrics["evaluate"] = compare_values(lin.evaluate_metrics, rebuilt_evaluate["metrics"])
    else:
        metrics["evaluate"] = {"compared": 0, "identical": None,
                               "why": "no evaluate run of the original pipeline was found" if not lin.evaluate_run_id
                               else "the rebuild recorded no evaluate run"}
    outs = compare_hashes(lin.outs, rebuilt_train["outs"])
    if rebuilt_evaluate is not None and lin.evaluate_outs:
        outs += compare_hashes(lin.evaluate_outs, rebuilt_evaluate["outs"])
    result = {
        "inputs": {"identical": not deps and data["original"] == data["rebuilt"], "compared": len(lin.deps),
                   "data": data, "differences": deps},
        "params": {"identical": not params, "compared": len(lin.params), "differences": params},
        "metrics": metrics,
        "predictions": predictions,
        "outputs": {"judged": False, "differences": outs},
    }
    result["identical"] = identical(result)
    return result


def identical(result: dict) -> bool:
    """Inputs, params, every compared metric and the compared predictions all identical. Predictions
    a table task could not compare count as a difference; a recommender's are not compared."""
    if not (result["inputs"]["identical"] and result["params"]["identical"]):
        return False
    if any(m["identical"] is False for m in result["metrics"].values()):
        return False
    p = result["predictions"]
    return bool(p["identical"]) if p.get("compared") else not p.get("required", False)


def _g(v) -> str:
    return "-" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)


def _metrics_line(m: dict, shown: int = 4) -> str:
    if m["identical"] is None:
        return f"not compared: {m['why']}"
    if m["identical"]:
        return f"identical ({m['compared']} metrics)"
    d = m["differences"]
    top = sorted(d.items(), key=lambda kv: -(kv[1]["abs_diff"] if kv[1]["abs_diff"] is not None else math.inf))
    parts = [f"{k} {_g(v['original'])} -> {_g(v['rebuilt'])}" + (f" (|diff| {v['abs_diff']:.3g})" if v["abs_diff"] is not None else "")
             for k, v in top[:shown]]
    more = f", and {len(d) - shown} more" if len(d) > shown else ""
    return f"DIFFER in {len(d)} of {m['compared']}: " + ", ".join(parts) + more


def summary(result: dict) -> str:
    """The short report `mlcycle model reproduce` prints."""
    lin = result["lineage"]
    which = f"{lin['name']} v{lin['version']}" if lin["version"] else f"train run {lin['run_id']}"
    lines = [f"reproduce {which}: train run {lin['run_id'][:12]}, commit {lin['commit'][:12]}"
             + f", {result['inputs']['data']['path']} {(lin['data_md5'] or '-')[:12]}"
             + "".join(f"; {p} {how}" for p, how in result.get("data_from", {}).items())]
    i = result["inputs"]
    if i["identical"]:
        lines.append(f"  inputs            identical ({i['data']['path']} = data_md5; {i['compared']} DVC-hashed inputs)")
    else:
        named = [f"{d['path']} {(d['original'] or 'none')[:12]} -> {(d['rebuilt'] or 'none')[:12]}" for d in i["differences"]]
        if i["data"]["original"] != i["data"]["rebuilt"] and not any(d["path"] == i["data"]["path"] for d in i["differences"]):
            named.insert(0, f"{i['data']['path']} data_md5 {i['data']['original'][:12]} -> {(i['data']['rebuilt'] or 'none')[:12]}")
        lines.append(f"  inputs            DIFFER: {'; '.join(named)}")
    p = result["params"]
    lines.append(f"  params            identical ({p['compared']})" if p["identical"] else
                 "  params            DIFFER: " + "; ".join(f"{d['path']} {d['original']} -> {d['rebuilt']}" for d in p["differences"]))
    for stage, m in result["metrics"].items():
        lines.append(f"  {stage + ' metrics':<17} {_metrics_line(m)}")
    pr = result["predictions"]
    if not pr.get("compared"):
        lines.append(f"  predictions       not compared: {pr['why']}")
    elif pr["identical"]:
        lines.append(f"  predictions       identical ({pr['rows']} holdout rows, bit for bit)")
    elif pr.get("rows_differing") is None:
        lines.append(f"  predictions       DIFFER: {pr['why']}")
    else:
        lines.append(f"  predictions       DIFFER in {pr['rows_differing']} of {pr['rows']} holdout rows "
                     f"(max |diff| {pr['max_abs_diff']:.3g})")
    outs = result["outputs"]
    if outs["differences"]:
        files = outs.get("model_files", [])
        named = [d["path"] + (f" ({', '.join(files)})" if d["path"].endswith("models/model") and files else "")
                 for d in outs["differences"]]
        lines.append(f"  outputs           not judged; hashes differ: {'; '.join(named)}")
    env = result.get("environment") or {}
    lines.append(f"  environment       {env.get('summary', 'not checked')}")
    for w in result.get("warnings", []):
        lines.append(f"  warning: {w}")
    seconds = f" in {result['seconds']:.0f} s" if result.get("seconds") is not None else ""
    same = "inputs, metrics and predictions" if pr.get("compared") else "inputs and metrics (predictions not compared)"
    lines.append(f"identical: {which} was rebuilt from its lineage with the same {same}{seconds}"
                 if result["identical"] else f"DIFFERENT: {which} rebuilt from its lineage does not match (see above){seconds}")
    return "\n".join(lines)


# ---------------------------------------------------------------- the lineage (read from the store)

def store_client(uri: str):
    """A client on the workspace's store, which reproduce only reads: a local store that does not
    exist is refused rather than created."""
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        if not db.exists():
            raise ReproduceError(f"reproduce: no tracking store at {db}: nothing was recorded in this workspace yet "
                                 "(`make repro`), or the store is elsewhere (tracking.uri, MLFLOW_TRACKING_URI)")
    from mlcycle.core.workspace import open_client

    return open_client(uri, default=False)  # mlflow's own URIs stay as they are


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def _unreadable(exc: Exception) -> ReproduceError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return ReproduceError(f"reproduce: the tracking store cannot be read ({type(exc).__name__}: {first})")


def _tagged(tags: dict[str, str], prefix: str) -> dict[str, str]:
    return {k[len(prefix):]: v for k, v in tags.items() if k.startswith(prefix)}


def lineage(client, name: str, ref: str | None = None) -> Lineage:
    """The lineage of version `ref` of `name` (a number), of the train run `ref` (an MLflow run id),
    or of the champion (None). Refuses (ReproduceError) what the store does not hold."""
    from mlflow.exceptions import MlflowException

    mv = None
    if ref is None:
        mv = registry.champion(client, name)
        if mv is None:
            raise ReproduceError(f"reproduce: model '{name}' has no champion; name a version (`mlcycle model list` "
                                 "lists them) or the MLflow run id of a train stage run")
    elif ref.isdigit():
        try:
            mv = client.get_model_version(name, ref)
        except MlflowException as exc:
            if not _not_found(exc):
                raise _unreadable(exc) from None
            raise ReproduceError(f"reproduce: model '{name}' has no version {ref}; `mlcycle model list` lists "
                                 "the versions") from None
    run_id = (mv.tags.get("stage_run_id") or mv.run_id) if mv is not None else ref
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        if not _not_found(exc):
            raise _unreadable(exc) from None
        which = f" (the train run of {name} v{mv.version})" if mv is not None else ""
        raise ReproduceError(f"reproduce: there is no MLflow run {run_id}{which} in the tracking store; give a "
                             "registered version number (`mlcycle model list`) or the id of a train stage run") from None
    tags = run.data.tags
    if tags.get("mlcycle.stage") != "train":
        raise ReproduceError(f"reproduce: run {run_id} is {'a ' + repr(tags['mlcycle.stage']) + ' stage run' if tags.get('mlcycle.stage') else 'not a stage run'}, "
                             "not a train stage run; give a version number or the run id of a train stage run")
    if mv is None:
        found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
        mv = client.get_model_version(name, found[0].version) if found else None
    vtags = (mv.tags or {}) if mv is not None else {}
    deps = _tagged(tags, DEPS)
    lin = Lineage(
        name=name, version=str(mv.version) if mv is not None else None, run_id=run_id,
        experiment_id=run.info.experiment_id,
        commit=vtags.get("git_commit") or tags.get("mlflow.source.git.commit", ""),
        dirty=(vtags.get("git_dirty") or tags.get("mlcycle.git.dirty") or "unknown").lower(),
        data_md5=vtags.get("data_md5") or deps.get("data/processed", ""),
        deps=deps, outs=_tagged(tags, OUTS), params=dict(run.data.params), metrics=dict(run.data.metrics),
        lock_digest=vtags.get("lock_digest") or tags.get("mlcycle.env.lock_digest"),
        lock_matched=tags.get("mlcycle.env.matches_lock"),
    )
    parent = tags.get("mlflow.parentRunId")
    if parent:  # the evaluate run of the same pipeline execution
        found = client.search_runs([lin.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent}' "
                                   "and tags.`mlcycle.stage` = 'evaluate'", order_by=["attributes.start_time DESC"],
                                   max_results=1)
        if found:
            ev = found[0]
            lin.evaluate_run_id, lin.evaluate_metrics = ev.info.run_id, dict(ev.data.metrics)
            lin.evaluate_outs = _tagged(ev.data.tags, OUTS)
    return lin


def check_commit(root: Path, lin: Lineage) -> None:
    """Refuse a lineage without a commit, or with one this repository does not hold."""
    if not lin.commit or lin.commit == "none":
        raise ReproduceError(f"reproduce: {lin.label} records no git commit (trained outside a git checkout); "
                             "it cannot be rebuilt from its lineage")
    if _git(root, "rev-parse", "--git-dir").returncode != 0:
        raise ReproduceError(f"reproduce: the workspace {root} is not a git repository, so commit {lin.commit[:12]} "
                             f"of {lin.label} cannot be checked out")
    if _git(root, "cat-file", "-e", f"{lin.commit}^{{commit}}").returncode == 0:
        return
    shallow = _git(root, "rev-parse", "--is-shallow-repository").stdout.strip() == "true"
    hint = ("this clone is shallow: run `git fetch --unshallow` and try again" if shallow else
            "fetch it (`git fetch --all`), or run this in the clone it was trained in")
    raise ReproduceError(f"reproduce: commit {lin.commit[:12]} of {lin.label} is not in this repository; {hint}")


def check_dirty(lin: Lineage, allow_dirty: bool) -> str | None:
    """Refuse a version trained from a dirty (or unrecorded) checkout unless allowed; the warning then."""
    if lin.dirty == "false":
        return None
    state = "a checkout with uncommitted changes" if lin.dirty == "true" else "a checkout whose state was not recorded"
    if not allow_dirty:
        raise ReproduceError(
            f"reproduce: {lin.label} was trained from {state} (git_dirty {lin.dirty}): commit {lin.commit[:12]} alone "
            "cannot rebuild it exactly. `--allow-dirty` rebuilds it from the commit anyway and names every input "
            "whose DVC hash differs (the flag is also set when only files the pipeline itself writes, such as "
            "dvc.lock or metrics kept in git, were modified when it trained)")
    return f"trained from {state}: rebuilt from commit {lin.commit[:12]} as --allow-dirty asks"


# ---------------------------------------------------------------- the temporary worktree

def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=300)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def worktree(root: Path, commit: str, keep: bool = False, say: Callable[[str], None] = print) -> Iterator[Path]:
    """A temporary folder holding a detached git worktree of `commit` at `<folder>/workspace`;
    both are removed at the end, also on an error, Ctrl-C or SIGTERM (unless `keep`)."""
    tmp = Path(tempfile.mkdtemp(prefix="mlcycle-reproduce-"))
    tree = tmp / "workspace"
    added = False
    previous = signal.signal(signal.SIGTERM, _interrupt) if threading.current_thread() is threading.main_thread() else None
    try:
        proc = _git(root, "-c", "core.hooksPath=/dev/null", "worktree", "add", "--detach", str(tree), commit)  # no hooks
        if proc.returncode != 0:
            raise ReproduceError(f"reproduce: `git worktree add` of commit {commit[:12]} failed: {proc.stderr.strip()[:300]}")
        added = True
        yield tree
    finally:
        try:
            if keep and added:
                say(f"kept {tmp} (the worktree, the private MLflow store and the log); remove it with "
                    f"`git worktree remove --force {tree}` and `rm -r {tmp}`")
            else:
                if added:
                    _git(root, "worktree", "remove", "--force", str(tree))
                shutil.rmtree(tmp, ignore_errors=True)
                _git(root, "worktree", "prune")
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def private_env(tmp: Path, tree: Path) -> tuple[dict[str, str], str]:
    """The rebuild's environment and its MLflow store URI: the commit's own code first on the path,
    a private MLflow store and tracking-daemon folder in `tmp`, one thread per OpenMP / BLAS pool
    (unless already bounded), and nothing that ties it to the workspace it was started from."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    store = tmp / "mlflow"
    private.mkdir(store, parents=False)
    daemons = tmp / "trackd"
    private.mkdir(daemons, parents=False)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    env.update({
        "MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join(p for p in [str(tree / "src"), env.get("PYTHONPATH", "")] if p),
        "MLCYCLE_TRACKD_DIR": str(daemons), "MLCYCLE_PIPELINE_KEY": f"reproduce-{uuid.uuid4().hex}",
        "DVC_NO_ANALYTICS": "1", "MPLBACKEND": "Agg",
    })
    for v in THREAD_VARIABLES:
        env.setdefault(v, "1")
    return env, uri


def private_store(uri: str, tmp: Path, tree: Path):
    """A client on the private store, with the commit's experiment created there and its artifacts
    in `tmp` (not in the worktree)."""
    import mlflow

    experiment = ((read_yaml(tree / "params.yaml") or {}).get("tracking") or {}).get("experiment") or "mlcycle"
    with quiet_mlflow():  # no notice of the new database's tables
        client = mlflow.MlflowClient(uri, registry_uri=uri)
        client.create_experiment(experiment, artifact_location=(tmp / "mlflow" / "artifacts").as_uri())
    return client


def _run(cmd: list[str], cwd: Path, env: dict[str, str], log: Path, say: Callable[[str], None] | None = None) -> int:
    """Run `cmd` in its own process group, its output appended to `log` (stage starts and ends shown
    through `say`); on an interruption the group is stopped before the exception goes on."""
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            for line in proc.stdout:
                out.write(line)
                if say and (line.startswith("Running stage") or ": FINISHED in" in line or ": FAILED" in line):
                    say("  " + line.rstrip())
            return proc.wait()
        except BaseException:
            _stop(proc)
            raise


def _stop(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(log: Path, lines: int = 25) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop_daemons(tree: Path, env: dict[str, str]) -> None:
    """Stop the warm tracking daemon the rebuild's stages started in their private folder."""
    if not any(Path(env["MLCYCLE_TRACKD_DIR"]).glob("*.sock")):
        return
    for module in ("mlcycle.runtime.trackd", "mlcycle.trackd"):  # its place at the commit
        proc = subprocess.run([sys.executable, "-m", module, "stop", "--all"], cwd=tree, env=env,
                              capture_output=True, text=True, timeout=60)
        if proc.returncode == 0:
            return


# ---------------------------------------------------------------- DVC in the worktree

def configure_dvc(root: Path, tree: Path) -> dict[str, str]:
    """The worktree's DVC on the workspace's cache and remotes (its `.dvc/config.local` copied, then
    `cache.dir` and each local remote's folder by absolute path). Returns {remote: url}."""
    from dvc.config import Config
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            cache = repo.cache.local_cache_dir
            remotes = {n: str(c.get("url", "")) for n, c in repo.config["remote"].items()}
    except Exception as exc:
        raise ReproduceError(f"reproduce: the workspace's DVC configuration cannot be read ({type(exc).__name__}: "
                             f"{str(exc)[:200]})") from None
    local = root / ".dvc" / "config.local"
    if local.exists():
        shutil.copy2(local, tree / ".dvc" / "config.local")
    with Config(dvc_dir=str(tree / ".dvc")).edit("local") as conf:
        conf["cache"]["dir"] = str(cache)
        for name, url in remotes.items():
            if url and "://" not in url:  # a folder, named relative to the workspace's .dvc
                conf["remote"].setdefault(name, {})["url"] = url
    return remotes


def git_tracked(tree: Path) -> set[PurePosixPath]:
    proc = _git(tree, "ls-files", "-z")
    return {PurePosixPath(p) for p in proc.stdout.split("\0") if p}


def data_inputs(lin: Lineage, tracked: set[PurePosixPath]) -> dict[str, str]:
    """The train stage's inputs that git does not hold (data: DVC-tracked files, other stages'
    outputs), with their recorded DVC hashes."""
    folders = {parent for p in tracked for parent in p.parents}
    wanted = {p: h for p, h in lin.deps.items() if PurePosixPath(p) not in tracked and PurePosixPath(p) not in folders}
    if not wanted and lin.data_md5:
        wanted = {"data/processed": lin.data_md5}
    return wanted


def _dvc(args: list[str], tree: Path, env: dict[str, str], log: Path, say=None) -> int:
    return _run([sys.executable, "-m", "dvc", *args], tree, env, log, say)


def _replace(src: Path, dest: Path) -> None:
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    elif dest.exists() or dest.is_symlink():
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(src), str(dest))


def bring_data(tree: Path, wanted: dict[str, str], remotes: dict[str, str], env: dict[str, str], log: Path,
               commit: str, say: Callable[[str], None]) -> dict[str, str]:
    """Each data input at its recorded DVC hash: from the cache, else a remote, else by running the
    stage that writes it, which must give the same hash. Returns {input: where it came from}."""
    scratch = tree / SCRATCH
    scratch.mkdir()
    came, missing = {}, {}
    for i, (path, md5) in enumerate(sorted(wanted.items())):
        name = f"input{i}"
        target = f"{SCRATCH}/{name}.dvc"
        (scratch / f"{name}.dvc").write_text(f"outs:\n- md5: '{md5}'\n  path: {name}\n  hash: md5\n")
        source = "from the DVC cache" if _dvc(["checkout", target], tree, env, log) == 0 else None
        for remote in remotes if source is None else ():
            if _dvc(["pull", "-r", remote, target], tree, env, log) == 0:
                source = f"from the DVC remote '{remote}'"
                break
        if source is not None and (scratch / name).exists():
            _replace(scratch / name, tree / path)
            came[path] = source
        else:
            missing[path] = md5
    shutil.rmtree(scratch)
    for path, md5 in missing.items():
        came[path] = rebuild_input(tree, path, md5, remotes, env, log, commit, say)
    return came


def producer(tree: Path, path: str) -> str | None:
    """The stage of the worktree's pipeline that writes `path`."""
    from dvc.repo import Repo

    with Repo(str(tree)) as repo:
        for st in repo.index.stages:
            if any(str(o.def_path) == path for o in st.outs):
                return getattr(st, "name", None) or st.addressing  # `features`, `ingest@flights`
    return None


def locked_hash(tree: Path, path: str) -> str | None:
    """The hash the worktree's dvc.lock records for output `path`."""
    lock = tree / "dvc.lock"
    stages = ((read_yaml(lock) or {}).get("stages") or {}) if lock.exists() else {}
    return next((o.get("md5") for st in stages.values() for o in st.get("outs", []) if o.get("path") == path), None)


def rebuild_input(tree: Path, path: str, md5: str, remotes: dict[str, str], env: dict[str, str], log: Path,
                  commit: str, say: Callable[[str], None]) -> str:
    """Run the stages that write `path` (what the cache holds checked out first); refuse unless
    they give hash `md5` again."""
    where = (f"on the DVC remote{'s' if len(remotes) > 1 else ''} {', '.join(repr(r) for r in remotes)}"
             if remotes else "on a DVC remote (none is configured)")
    refusal = (f"reproduce: {path} with DVC hash {md5} is neither in the DVC cache nor {where}")
    advice = ("; restore it with `dvc pull` from the remote it was pushed to (or `dvc push` it from the machine "
              "that trained the version), then try again")
    stage = producer(tree, path)
    if stage is None:
        raise ReproduceError(refusal + f", and no stage at commit {commit[:12]} writes it" + advice)
    say(f"{path} ({md5[:12]}) is neither in the DVC cache nor on a remote: running stage '{stage}' and what it needs")
    _dvc(["checkout"], tree, env, log)  # what the cache holds of the commit's dvc.lock (gaps expected)
    rc = _dvc(["repro", "--no-run-cache", "--no-commit", stage], tree, env, log, say)
    got = locked_hash(tree, path) if rc == 0 else None
    if got != md5:
        ran = f"`dvc repro {stage}` failed (exit {rc}; its output ends:\n{_tail(log, 12)}\n)" if rc != 0 else \
            f"running stage '{stage}' gave hash {got}"
        raise ReproduceError(f"{refusal}, and {ran}" + advice)
    return f"rebuilt by stage '{stage}' (the same hash)"


def rebuild(tree: Path, env: dict[str, str], log: Path, commit: str, say: Callable[[str], None]) -> list[str]:
    """`dvc repro` of train and evaluate in the worktree, forced, one stage each, nothing restored
    from DVC's run cache nor added to the cache. Returns the stages run."""
    declared = set((read_yaml(tree / "dvc.yaml") or {}).get("stages") or {})
    stages = [s for s in STAGES if s in declared]
    rc = _dvc(["repro", "--force", "--single-item", "--no-run-cache", "--no-commit", *stages], tree, env, log, say)
    if rc != 0:
        raise StageError(f"reproduce: `dvc repro {' '.join(stages)}` at commit {commit[:12]} failed (exit {rc}); "
                         f"the rebuild could not finish. Its output ends:\n{_tail(log)}")
    return stages


# ---------------------------------------------------------------- what was rebuilt

def stage_record(client, stage: str) -> dict | None:
    """{run_id, deps, outs, params, metrics} of the newest `stage` run in the private store."""
    exps = [e.experiment_id for e in client.search_experiments()]
    found = client.search_runs(exps, filter_string=f"tags.`mlcycle.stage` = '{stage}'",
                               order_by=["attributes.start_time DESC"], max_results=1) if exps else []
    if not found:
        return None
    r = found[0]
    return {"run_id": r.info.run_id, "deps": _tagged(r.data.tags, DEPS), "outs": _tagged(r.data.tags, OUTS),
            "params": dict(r.data.params), "metrics": dict(r.data.metrics)}


def original_model(client, lin: Lineage, dest: Path) -> Path | None:
    """The original model's MLflow folder, downloaded from the workspace's store (None: none logged)."""
    import mlflow.artifacts

    dest.mkdir(parents=True, exist_ok=True)
    bar = os.environ.get(PROGRESS_BAR)
    os.environ[PROGRESS_BAR] = "false"  # a download bar in the middle of the report
    try:
        if lin.version:
            uri = client.get_model_version_download_uri(lin.name, lin.version)
            return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest),
                                                            tracking_uri=client.tracking_uri))
        return Path(client.download_artifacts(lin.run_id, "model", str(dest)))
    except Exception:
        return None
    finally:
        if bar is None:
            os.environ.pop(PROGRESS_BAR, None)
        else:
            os.environ[PROGRESS_BAR] = bar


def task_of(tree: Path) -> str | None:
    """The commit's data.task (None: not said; the registry then gives the tabular task)."""
    return ((read_yaml(tree / "params.yaml") or {}).get("data") or {}).get("task")


def predictions(tree: Path, original_dir: Path | None, task: str | None) -> dict:
    """Holdout predictions of the original and the rebuilt model compared bit for bit, by the task's
    `reproduce` hook (a table model: its scores on the rebuilt data's holdout split); a task without
    one is judged by its metrics alone."""
    compare_holdout = tasks.for_objective(task).hook("reproduce")
    if compare_holdout is None:
        return {"compared": False, "required": False,
                "why": f"task '{task}': judged by its metrics above; its task compares no holdout predictions"}
    if original_dir is None:
        return {"compared": False, "required": True, "why": "the original model could not be downloaded from the store"}
    return compare_holdout(tree, original_dir)


def differing_files(a: Path, b: Path) -> list[str]:
    """Files of two folders whose contents differ, or that one lacks (relative paths)."""
    def listing(d: Path) -> dict[str, str]:
        return {str(f.relative_to(d)): file_md5(f) for f in sorted(d.rglob("*")) if f.is_file()} if d.is_dir() else {}

    la, lb = listing(a), listing(b)
    return [p for p in sorted(set(la) | set(lb)) if la.get(p) != lb.get(p)]


def environment(tree: Path, lin: Lineage, strict: bool) -> dict:
    """The installed packages (this interpreter's, which the rebuild runs with) against the
    requirements.lock of the commit (`core.environment.status`). A difference is reported and the
    rebuild goes on; with `strict` it is refused, as is an environment that cannot be checked."""
    from mlcycle.core import environment as packages

    s = packages.status(tree)
    at = f"commit {lin.commit[:12]}"
    out = {"checked": s.matches is not None, "matches": s.matches, "differs": list(s.differs),
           "lock_digest": s.digest, "recorded_lock_digest": lin.lock_digest, "matched_at_training": lin.lock_matched}
    if s.digest == "none":
        out["summary"] = f"not checked: {at} has no {packages.LOCK_FILE}"
    elif s.matches is None:
        out["summary"] = f"not checked: the {packages.LOCK_FILE} of {at} cannot be read"
    elif s.matches:
        out["summary"] = f"the installed packages match the {packages.LOCK_FILE} of {at}"
    else:
        out["summary"] = f"DIFFERS from the {packages.LOCK_FILE} of {at}: {s.summary()}"
    if lin.lock_matched == "false":
        out["summary"] += "; when it trained, the packages did not match the lock either"
    if lin.lock_digest and lin.lock_digest not in ("none", s.digest):
        out["summary"] += (f"; the version records lock digest {lin.lock_digest[:12]}, the commit's lock is "
                           f"{s.digest[:12]} (the lock it trained with was not the committed one)")
    if strict and s.matches is not True:
        raise ReproduceError(f"reproduce: --strict-env: {out['summary']}; install the lock (`make setup`) or leave "
                             "out --strict-env to rebuild and compare anyway")
    return out


# ---------------------------------------------------------------- the command

def reproduce(root: Path, client, name: str, ref: str | None = None, *, allow_dirty: bool = False,
              strict_env: bool = False, keep: bool = False, say: Callable[[str], None] = print) -> dict:
    """Rebuild version `ref` of `name` (or the train run `ref`, or the champion) from its lineage in a
    temporary worktree and compare (see the module docstring). Refusals raise ReproduceError (exit
    2), a rebuild that fails StageError; else the comparison, with `identical`."""
    started = time.monotonic()
    lin = lineage(client, name, ref)
    check_commit(root, lin)
    warnings = [w for w in [check_dirty(lin, allow_dirty)] if w]
    say(f"reproduce: {lin.label} from commit {lin.commit[:12]} in a temporary worktree")
    with worktree(root, lin.commit, keep, say) as tree:
        tmp = tree.parent
        log = tmp / "reproduce.log"
        env, uri = private_env(tmp, tree)
        try:
            env_check = environment(tree, lin, strict_env)
            rebuilt = private_store(uri, tmp, tree)  # before any stage runs, so that it records there
            remotes = configure_dvc(root, tree)
            came = bring_data(tree, data_inputs(lin, git_tracked(tree)), remotes, env, log, lin.commit, say)
            for path, how in came.items():
                say(f"  {path}: {how}")
            stages = rebuild(tree, env, log, lin.commit, say)
        finally:
            stop_daemons(tree, env)
        train_run = stage_record(rebuilt, "train")
        if train_run is None:
            raise StageError(f"reproduce: the rebuilt train stage recorded no MLflow run; its output ends:\n{_tail(log)}")
        eval_run = stage_record(rebuilt, "evaluate") if "evaluate" in stages else None
        original_dir = original_model(client, lin, tmp / "original-model")
        result = compare(lin, train_run, eval_run, predictions(tree, original_dir, task_of(tree)))
        if original_dir is not None and any(d["path"] == "models/model" for d in result["outputs"]["differences"]):
            result["outputs"]["model_files"] = differing_files(original_dir, tree / "models" / "model")
    result.update({"lineage": {k: v for k, v in asdict(lin).items() if k in ("name", "version", "run_id", "commit", "dirty",
                                                                           "data_md5", "evaluate_run_id", "lock_digest")},
                   "data_from": came, "environment": env_check, "warnings": warnings,
                   "rebuilt_runs": {"train": train_run["run_id"], "evaluate": eval_run["run_id"] if eval_run else None},
                   "seconds": round(time.monotonic() - started, 1)})
    if env_check["matches"] is False:
        result["warnings"].append("the installed packages differ from the commit's requirements.lock: "
                                  "a difference above may come from them")
    return result


def write_json(result: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
