"""`mlcycle serving score`: a registered model scores files of any size, partition by partition on a Dask
cluster (`core/compute.py`: an embedded local cluster, or `compute.scheduler`).

- **Input**: a Parquet or CSV file, or a folder of them (read recursively, sorted; names starting
  with `.` or `_` are skipped). Before any work, every file is opened and must hold every input
  column the model's signature requires: an unreadable file or a missing column stops the job with
  the file's name, and nothing is written.
- **Model**: `score.model_uri` (default the champion), pinned to its version for the whole job (an
  alias moved meanwhile does not mix versions), loaded once per worker process, through the
  compiled scoring path when registration proved it equal (`score.compiled`), as `mlcycle serving start`.
- **Partitions**: dask.dataframe reads `score.blocksize` of input per partition (CSV as text, so
  one partition's odd value cannot change another's types); each partition is made to the
  signature's types, scored and written by a worker, CHUNK_ROWS rows at a time
  (`part-NNNNN-KKK.parquet`), so memory is bounded by the partition size times the workers, not by
  the input.
- **Bad rows** never fail the whole job: a value of the wrong type, or null where the model refuses
  null, or a row the model cannot score, goes to `rejects/part-NNNNN.parquet` with its values as
  text and the reason. More than `score.max_rejected_share` of the rows rejected fails the job.
- **Output**: the prediction log's columns (inputs, `prediction`, `score`, `proba_<class>` for
  multiclass, `model_version`, `request_id` (the job and partition), `row`, `ts`), so `mlcycle
  monitor` and readers of the log read it alike; `_SUCCESS.json` holds the summary. Everything is
  written under a temporary name beside the output and renamed once every partition succeeded: a
  folder under the output's name is always complete. Files holding rows are 0600 in 0700 folders.
- **Ownership**: the output holds a marker (`.mlcycle-score.json`); `--overwrite` replaces only a
  folder that holds it and nothing but what a score job writes, and never the input, a folder
  holding the input, or the workspace (`check_output`).
- **Leftovers**: every job writes its owner (host, process id and start time, MLflow run) into its
  temporary folder and its run's tags; the next job finds the temporary folders beside its output
  and the RUNNING score runs whose process is gone, removes the folders and ends the runs FAILED
  (`clean_leftovers`). A job that is still running is never touched.
- **Record**: one MLflow run (`score`) with the model version, the input files' MD5s and row
  counts, the cluster (scheduler, workers, dashboard link) and the figures, tagged with the git
  commit and the environment against requirements.lock as stage runs are (`run_tags`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlcycle.core import private
from mlcycle.core.errors import ScoreError
from mlcycle.core.progress import Progress
from mlcycle.serving.model import Column
from mlcycle.serving.outputs import log_outputs, score

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
SUMMARY = "_SUCCESS.json"
REJECTS = "rejects"
MARKER = ".mlcycle-score.json"  # in every output a score job wrote: what --overwrite may replace
OWNER = ".owner.json"  # in a job's temporary folder: the process that writes it
WRITTEN_BY = "mlcycle serving score"
CHUNK_ROWS = 50_000  # rows scored and written at a time inside a partition: bounds a worker's memory
NUMBER = ("double", "float", "long", "integer")
TRUE, FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


@dataclass(frozen=True)
class Job:
    """What every partition's task needs (pickled to the workers)."""

    tracking_uri: str
    model_uri: str  # pinned: models:/<name>/<version> (or any MLflow URI)
    compiled: bool
    not_null: tuple[str, ...]
    columns: tuple[Column, ...]
    folder: str  # the temporary output folder
    job_id: str
    version: str


# ---------------------------------------------------------------- input

def input_files(path: Path) -> list[Path]:
    """The files to score: `path` itself, or the Parquet / CSV files under it (one format)."""
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in FORMATS:
            raise ScoreError(f"--input {path}: not a .parquet or .csv file")
        return [path]
    if not path.is_dir():
        raise ScoreError(f"--input {path}: no such file or folder")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS
                   and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts))
    if not files:
        raise ScoreError(f"--input {path}: no .parquet or .csv files in the folder")
    kinds = {FORMATS[p.suffix.lower()] for p in files}
    if len(kinds) > 1:
        raise ScoreError(f"--input {path} mixes Parquet and CSV files: score each format on its own")
    return files


def check_files(files: list[Path], columns: tuple[Column, ...]) -> dict[str, dict]:
    """Open every file before any work: its MD5 and row count (Parquet) for the record; ScoreError
    naming the file when it cannot be read or lacks a column the model requires."""
    import pyarrow.parquet as pq

    from mlcycle.core.provenance import file_md5

    needed = [c.name for c in columns if c.required]
    out = {}
    for f in files:
        try:
            if FORMATS[f.suffix.lower()] == "parquet":
                meta = pq.read_metadata(f)
                names, rows = meta.schema.to_arrow_schema().names, meta.num_rows
            else:
                names, rows = [str(c) for c in pd.read_csv(f, nrows=0).columns], None
        except Exception as exc:  # any reader's refusal: the file's name and the reader's words
            raise ScoreError(f"input file {f} cannot be read ({type(exc).__name__}: {str(exc)[:200]}); fix or "
                             "remove it and run again; nothing was scored") from None
        missing = [c for c in needed if c not in names]
        if missing:
            raise ScoreError(f"input file {f} lacks the model's input column(s) {missing}; the model needs "
                             f"{needed}; nothing was scored")
        out[str(f)] = {"md5": file_md5(f), "rows": rows, "bytes": f.stat().st_size}
    return out


# ---------------------------------------------------------------- one partition (on a worker)

def conform(df: pd.DataFrame, columns: tuple[Column, ...], not_null: tuple[str, ...]) -> tuple[pd.DataFrame, pd.Series]:
    """The partition in the signature's types, and per row the reason it cannot be scored ("" when
    it can): a value that is not of its column's type, or null in a column refusing null."""
    reasons = pd.Series("", index=df.index, dtype=object)

    def reject(mask: pd.Series, why) -> None:
        fresh = mask & (reasons == "")
        if fresh.any():
            reasons[fresh] = [why(i) for i in fresh[fresh].index]

    data = {}
    for c in columns:
        if c.name not in df.columns:  # an optional column the file does not have
            data[c.name] = pd.Series(np.nan if c.type in NUMBER else None, index=df.index)
            continue
        s = df[c.name]
        if c.type in NUMBER:
            v = s if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) else pd.to_numeric(
                s.where(s.notna(), None), errors="coerce")
            reject(v.isna() & s.notna(), lambda i, s=s, c=c: f"column '{c.name}': {s[i]!r} is not a number")
            v = v.astype("float64")
            if c.type in ("long", "integer") and not v.isna().any() and (v % 1 == 0).all():
                v = v.astype("int64")
        elif c.type == "boolean":
            if pd.api.types.is_bool_dtype(s):
                v = s.astype(object)
            else:
                text = s.astype("str").str.strip().str.lower()
                v = pd.Series([True if t in TRUE else False if t in FALSE else None for t in text.where(s.notna(), None)],
                              index=s.index, dtype=object)
                reject(v.isna() & s.notna(), lambda i, s=s, c=c: f"column '{c.name}': {s[i]!r} is not true or false")
        elif c.type == "datetime":
            v = s if pd.api.types.is_datetime64_any_dtype(s) else pd.to_datetime(s, errors="coerce")
            reject(v.isna() & s.notna(), lambda i, s=s, c=c: f"column '{c.name}': {s[i]!r} is not a date or time")
        elif c.type == "string":
            v = s if pd.api.types.is_datetime64_any_dtype(s) else s.astype("str")
        else:
            v = s
        if c.name in not_null:
            reject(v.isna(), lambda i, c=c: f"column '{c.name}': null, which the model refuses")
        data[c.name] = v
    return pd.DataFrame(data, index=df.index), reasons


def score_rows(served, X: pd.DataFrame) -> tuple[dict[str, list], dict[int, str]]:
    """Outputs for the rows of X the model can score, and per other row (position) the reason: the
    whole frame at once, halves of it when that fails, down to the rows that fail alone."""
    try:
        return score(served, X), {}
    except (ValueError, TypeError, KeyError) as exc:
        if len(X) == 1:
            return {}, {0: f"the model cannot score this row: {str(exc)[:300]}"}
    half = len(X) // 2
    outs, failed = [], {}
    for start, part in ((0, X.iloc[:half]), (half, X.iloc[half:])):
        out, bad = score_rows(served, part)
        outs.append(out)
        failed.update({start + i: why for i, why in bad.items()})
    merged = {k: [v for o in outs for v in o.get(k, [])] for k in {k for o in outs for k in o}}
    return merged, failed


_models: dict = {}
_models_lock = threading.Lock()


def served_model(job: Job):
    """The job's model, loaded once per worker process (and dropped when another job's comes)."""
    key = (job.tracking_uri, job.model_uri, job.compiled, job.not_null)
    with _models_lock:
        if key not in _models:
            from mlcycle.core.workspace import open_client
            from mlcycle.serving import model

            client = open_client(job.tracking_uri)
            _models.clear()
            _models[key] = model.load(client, job.model_uri, job.not_null, job.compiled)
        return _models[key]


def score_partition(df: pd.DataFrame, part: int, job: Job) -> dict:
    """Score one partition, CHUNK_ROWS rows at a time (a Parquet row group can hold millions), and
    write its parts (and rejects); the counts for the summary."""
    served = served_model(job)
    counts = {"part": part, "rows": len(df), "scored": 0, "rejected": 0}
    for k, start in enumerate(range(0, max(len(df), 1), CHUNK_ROWS)):
        chunk = df.iloc[start:start + CHUNK_ROWS]
        if len(chunk):
            scored, rejected = score_chunk(served, chunk, f"{job.job_id}-{part:05d}-{k:03d}", job)
            counts["scored"] += scored
            counts["rejected"] += rejected
    return counts


def score_chunk(served, df: pd.DataFrame, name: str, job: Job) -> tuple[int, int]:
    X, reasons = conform(df, job.columns, job.not_null)
    X = X[(reasons == "").to_numpy()]
    out, failed = score_rows(served, X) if len(X) else ({}, {})
    if failed:
        keep = np.ones(len(X), dtype=bool)
        keep[list(failed)] = False
        for i, why in failed.items():
            reasons.loc[X.index[i]] = why
        X = X[keep]
    folder = Path(job.folder)
    if len(X):
        write_parquet(output_frame(X, out, job.version, name), folder / f"part-{name.split('-', 1)[1]}.parquet")
    bad = reasons != ""
    if bad.any():
        rejected = df[bad].astype("str").where(df[bad].notna(), None).reset_index(drop=True)
        rejected["reason"] = reasons[bad].to_list()
        rejected["request_id"] = name
        write_parquet(rejected, folder / REJECTS / f"part-{name.split('-', 1)[1]}.parquet")
    return int(len(X)), int(bad.sum())


def output_frame(X: pd.DataFrame, out: dict[str, list], version: str, request_id: str) -> pd.DataFrame:
    """The prediction log's columns (as `predlog.Batch.frame` orders them), built from arrays."""
    frame = X.reset_index(drop=True).copy()
    for k, v in log_outputs(out).items():
        frame[k] = v
    frame["model_version"] = version
    frame["request_id"] = request_id
    frame["row"] = np.arange(len(frame), dtype=np.int64)
    frame["ts"] = pd.Timestamp(dt.datetime.now(dt.UTC))
    return frame


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Rows go to a 0600 file in a 0700 folder (they may hold personal data)."""
    # the parent must exist: a worker still busy with a job that has ended (and whose folder was
    # removed) fails instead of making it again
    private.mkdir(path.parent, parents=False)
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_parquet(tmp, index=False)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


# ---------------------------------------------------------------- what a job owns

def check_output(output: Path, input_path: Path, root: Path, overwrite: bool) -> None:
    """Refuse an output this job must not write or replace (ScoreError naming --output): the input
    itself, a folder holding the input or the workspace, or, without the marker of an earlier
    score job, any folder that exists."""
    src, ws = Path(input_path).resolve(), Path(root).resolve()
    if src == output or src.is_relative_to(output):
        raise ScoreError(f"--output {output} is the input or holds it (--input {src}); choose a new folder for "
                         "the scores")
    if ws == output or ws.is_relative_to(output):
        raise ScoreError(f"--output {output} is the workspace or holds it; choose a new folder for the scores")
    if not output.exists():
        return
    if not overwrite:
        raise ScoreError(f"--output {output} exists; choose another folder, or pass --overwrite to replace it")
    if not output.is_dir() or not is_score_output(output):
        raise ScoreError(f"--output {output} was not written by `{WRITTEN_BY}` (no {MARKER} in it): --overwrite "
                         "replaces only an earlier score output; choose another folder, or remove it yourself")
    foreign = sorted(p.name for p in output.iterdir() if not owned_entry(p))
    if foreign:
        raise ScoreError(f"--output {output} holds files a score job does not write ({', '.join(foreign[:5])}); "
                         "--overwrite would delete them: move them away or choose another folder")


def is_score_output(folder: Path) -> bool:
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("written_by") == WRITTEN_BY and bool(marker.get("job_id"))


def owned_entry(p: Path) -> bool:
    """What a score job writes into its output: parts, the rejects folder of parts, the summary, the marker."""
    if p.is_symlink():
        return False
    if p.name in (SUMMARY, MARKER, OWNER):
        return p.is_file()
    if p.name == REJECTS and p.is_dir():
        return all(q.is_file() and not q.is_symlink() and q.name.startswith("part-") for q in p.iterdir())
    return p.is_file() and p.name.startswith("part-") and p.suffix == ".parquet"


def owner() -> dict:
    """This process, as a job's owner: host, process id and the process's start time."""
    import socket

    import psutil

    return {"host": socket.gethostname(), "pid": os.getpid(), "started": psutil.Process().create_time()}


def alive(who: dict) -> bool:
    """Whether the process `who` names may still run: on another host it is assumed to."""
    import socket

    import psutil

    if who.get("host") != socket.gethostname():
        return True
    try:
        proc = psutil.Process(int(who["pid"]))
        return abs(proc.create_time() - float(who["started"])) < 1.0
    except (psutil.NoSuchProcess, KeyError, ValueError, TypeError):
        return False
    except psutil.Error:  # exists but cannot be inspected: leave it alone
        return True


def clean_leftovers(parent: Path, client, exp_id: str) -> list[str]:
    """Temporary folders of dead score jobs in `parent` removed, and the RUNNING score runs of dead
    jobs ended FAILED; what was cleaned, for the terminal."""
    done = []
    for folder in sorted(parent.glob(".*.tmp-*")) if parent.is_dir() else []:
        try:
            who = json.loads((folder / OWNER).read_text())
        except (OSError, ValueError):
            continue  # not a score job's folder, or one still being created: not ours to judge
        if not isinstance(who, dict) or who.get("written_by") != WRITTEN_BY or alive(who):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        done.append(f"removed {folder.name} of an interrupted job")
    try:
        runs = client.search_runs([exp_id], "tags.`mlcycle.operation` = 'score' and attributes.status = 'RUNNING'",
                                  max_results=200)
    except Exception:
        return done
    for r in runs:
        t = r.data.tags
        who = {"host": t.get("mlcycle.job.host"), "pid": t.get("mlcycle.job.pid"), "started": t.get("mlcycle.job.started")}
        if who["pid"] is None or alive(who):
            continue
        try:
            client.set_tag(r.info.run_id, "mlcycle.error", "interrupted: its process ended before the job finished")
            client.set_terminated(r.info.run_id, "FAILED")
            done.append(f"ended run {r.info.run_id} of an interrupted job as FAILED")
        except Exception:
            pass
    return done


# ---------------------------------------------------------------- the job

def run(root: Path, params, input_path: Path, output: Path, model_uri: str | None = None,
        compiled: bool | None = None, overwrite: bool = False, progress: bool = True) -> dict:
    """Score `input_path` into `output` on the cluster of `params.compute`; the summary."""
    from dask.utils import parse_bytes

    from mlcycle.core import workspace
    from mlcycle.core.paths import Paths
    from mlcycle.runtime import tracking
    from mlcycle.serving import model, settings

    started = time.perf_counter()
    try:
        parse_bytes(params.score.blocksize)
    except (ValueError, TypeError):
        raise ScoreError(f"score.blocksize {params.score.blocksize!r} is not a size; write it like 32MiB or 200MB") from None
    files = input_files(input_path)
    output = Path(output).resolve()
    check_output(output, input_path, root, overwrite)
    ws = workspace.Workspace(Paths(root), params)
    client, exp_id = tracking.setup(root, params)
    for line in clean_leftovers(output.parent, client, exp_id):
        print(f"score: {line}", flush=True)
    uri = model_uri or params.score.model_uri or ws.champion_uri()
    use_compiled = params.score.compiled if compiled is None else compiled
    not_null = settings.not_null_columns(params)
    served = model.load(client, uri, not_null, use_compiled)  # fails here, before any cluster, if it cannot load
    if served.info.get("name") and served.version:  # an alias pinned to the version loaded, for every worker
        uri = workspace.model_uri(served.info["name"], version=served.version)
    if not served.columns:
        raise ScoreError(f"{uri} has no input signature: batch scoring needs the model's input columns")
    inputs = check_files(files, served.columns)
    job_id = uuid.uuid4().hex[:12]
    folder = output.parent / f".{output.name}.tmp-{job_id}"
    job = Job(ws.tracking_uri, uri, use_compiled, not_null, served.columns, str(folder), job_id,
              served.version)
    me = owner()
    tags = {**run_tags(root, uri, job.version, served.path), "mlcycle.job.host": me["host"],
            "mlcycle.job.pid": str(me["pid"]), "mlcycle.job.started": repr(me["started"])}
    run_id = client.create_run(exp_id, tags=tags).info.run_id
    summary = {"job_id": job_id, "model_uri": uri, "model_version": job.version, "scoring_path": served.path,
               "input": str(Path(input_path).resolve()), "output": str(output), "files": inputs,
               "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "mlflow_run_id": run_id}
    try:
        private.mkdir(folder, exist_ok=False)
        (folder / OWNER).write_text(json.dumps({"written_by": WRITTEN_BY, **me, "mlflow_run_id": run_id}) + "\n")
        parts = _compute(params, files, job, progress, client, run_id, summary)
        rows, scored, rejected = (sum(p[k] for p in parts) for k in ("rows", "scored", "rejected"))
        seconds = time.perf_counter() - started
        summary.update(partitions=len(parts), rows=rows, scored=scored, rejected=rejected, seconds=round(seconds, 2),
                       finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        if rows and rejected / rows > params.score.max_rejected_share:
            raise ScoreError(f"{rejected:,} of {rows:,} rows ({rejected / rows:.1%}) cannot be scored, more than "
                             f"score.max_rejected_share ({params.score.max_rejected_share:.0%}); the reasons are in the "
                             f"run's rejects.json (MLflow run {run_id}); nothing was written to {output}")
        (folder / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
        (folder / MARKER).write_text(json.dumps({"written_by": WRITTEN_BY, "job_id": job_id,
                                                 "mlflow_run_id": run_id}) + "\n")
        if output.exists():  # --overwrite: the old output goes only once the new one is complete
            check_output(output, input_path, root, overwrite)  # again: it may have changed meanwhile
            old = output.parent / f".{output.name}.old-{job_id}"
            os.replace(output, old)
            os.replace(folder, output)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(folder, output)
        (output / OWNER).unlink(missing_ok=True)
    except BaseException as exc:
        _finish(client, run_id, summary, "FAILED", folder_rejects=folder / REJECTS, error=exc)
        shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, ScoreError | KeyboardInterrupt):
            raise
        raise ScoreError(f"scoring failed ({type(exc).__name__}: {str(exc)[:300]}); nothing was written to "
                         f"{output}") from exc
    _finish(client, run_id, summary, "FINISHED", folder_rejects=output / REJECTS)
    return summary


def run_tags(root: Path, model_uri: str, version: str, scoring_path: str) -> dict[str, str]:
    """The score run's tags: the pinned model, and the workspace's git state, its environment against
    requirements.lock and the key packages' versions, recorded as every stage run records them."""
    from mlcycle.runtime import tracking

    return {"mlflow.runName": "score", "mlcycle.operation": "score", "mlcycle.model_uri": model_uri,
            "mlcycle.model_version": version, "mlcycle.scoring_path": scoring_path,
            **tracking.git_tags(root), **tracking.env_tags(root), **tracking.versions()}


def _compute(params, files: list[Path], job: Job, progress: bool, client, run_id: str, summary: dict) -> list[dict]:
    import dask
    import dask.dataframe as dd

    from mlcycle.core import compute

    paths = [str(f) for f in files]
    with compute.cluster(params.compute) as dc:
        cluster = compute.describe(dc)
        summary["cluster"] = cluster
        for k, v in cluster.items():
            client.set_tag(run_id, k, v)
        if cluster["mlcycle.compute.dashboard"]:
            print(f"score: Dask dashboard {cluster['mlcycle.compute.dashboard']}", flush=True)
        if FORMATS[files[0].suffix.lower()] == "parquet":
            ddf = dd.read_parquet(paths, blocksize=params.score.blocksize)
        else:  # as text: each partition is made to the signature's types by `conform`
            ddf = dd.read_csv(paths, dtype=str, blocksize=params.score.blocksize, keep_default_na=True)
        tasks = [dask.delayed(score_partition)(d, i, job) for i, d in enumerate(ddf.to_delayed())]
        print(f"score: {len(files)} file(s), {len(tasks)} partition(s), model {job.model_uri}, "
              f"{cluster['mlcycle.compute.workers']} worker(s)", flush=True)
        futures = dc.compute(tasks)
        with Progress(len(futures), "score", "partitions", how=None if progress else "off") as bar:
            for f in futures:
                f.add_done_callback(lambda done: bar.update() if done.status == "finished" else None)
            return dc.gather(futures)


def _finish(client, run_id: str, summary: dict, status: str, folder_rejects: Path | None, error=None) -> None:
    """The MLflow run's figures and status (never raises: the job's own outcome is what counts)."""
    from mlflow.entities import Metric, Param

    try:
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(summary[k]), now, 0) for k in ("rows", "scored", "rejected", "seconds", "partitions")
                   if isinstance(summary.get(k), int | float)]
        if summary.get("seconds") and summary.get("rows"):
            metrics.append(Metric("rows_per_second", summary["rows"] / summary["seconds"], now, 0))
        params = [Param("input", summary["input"][:6000]), Param("output", summary["output"][:6000]),
                  Param("files", str(len(summary["files"])))]
        client.log_batch(run_id, metrics=metrics, params=params)
        client.log_dict(run_id, summary, "score_summary.json")
        if folder_rejects is not None and folder_rejects.exists():
            counts = pd.read_parquet(folder_rejects)["reason"].value_counts().head(50)
            client.log_dict(run_id, {str(k): int(v) for k, v in counts.items()}, "rejects.json")
        if error is not None:
            client.set_tag(run_id, "mlcycle.error", f"{type(error).__name__}: {error}"[:500])
        client.set_terminated(run_id, status)
    except Exception:
        pass


def describe(summary: dict) -> str:
    """One paragraph for the terminal."""
    rows, rejected = summary.get("rows", 0), summary.get("rejected", 0)
    rate = rows / summary["seconds"] if summary.get("seconds") else math.nan
    text = (f"score: {summary['scored']:,} of {rows:,} rows scored by {summary['model_uri']} "
            f"({summary['scoring_path']} path) in {summary['partitions']} partition(s), {summary['seconds']:.1f} s "
            f"({rate:,.0f} rows/s) -> {summary['output']}")
    if rejected:
        text += f"; {rejected:,} rejected with the reason in {Path(summary['output']) / REJECTS}"
    return text + f"; MLflow run {summary['mlflow_run_id']}"

