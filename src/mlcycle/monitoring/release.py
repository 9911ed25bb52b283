"""Promotion or rollback of a candidate from live evidence (`mlcycle release status | promote | abort | watch`).

While `mlcycle serving start` runs a release (params `serve.release`: canary or shadow, see
`serving/release.py`), the candidate and the champion answer (or shadow) live traffic; their rows
are in the prediction log with the version and route, and the labels fed back (`POST /feedback`,
`mlcycle monitoring feedback`) sit beside it. `status` compares the two on:

- **errors**: the candidate's share of 5xx answers on /predict (the server's /metrics), at most
  `release.max_error_ratio`, once it answered `release.min_requests` requests;
- **latency**: its p99 (from the latency histogram) at most `release.max_latency_ratio` times the
  champion's, or at most `release.latency_slack_seconds` above it (at millisecond latencies the
  histogram's buckets and a busy machine move p99 by more than any ratio means);
- **score drift**: PSI of its live scores against the champion's at most `release.max_score_psi`;
- **the gate metric** on labelled rows, once each version has `release.min_labelled_rows`: the
  difference candidate - champion (oriented so that > 0 is better) with a bootstrap interval;
  paired on the same rows in shadow mode (the candidate scored the rows the champion answered),
  unpaired in canary mode (each version on its own rows).

**False promotion is controlled under repeated looks.** The metric is judged only at milestones of
evidence, n_j = min_labelled_rows x 2^j labelled rows per version (j = 0, 1, 2, ...), each on the
first n_j labelled rows in time order, so a milestone gives the same answer however often it is
looked at; milestone j spends alpha_j = alpha / 2^(j+1) of the error budget. A candidate no
better than the champion is promoted (its one-sided lower bound above `min_improvement`) with
probability at most sum_j alpha_j <= alpha, and a candidate no worse is rolled back for the
metric with probability at most alpha too.

The decision: **promote** when the metric is better at a milestone and no check fails;
**rollback** when a check fails (`watch` waits for `release.failed_checks` failed checks in a row);
**wait** otherwise. `promote` gives the candidate the champion alias (`registry.promote`, audited
with the evidence); `abort` (or a rollback) removes the candidate's alias so the server stops
routing to it, and audits `release-rollback` (the champion never moved). Both tag the version with
`release.decision`, record the evidence in an MLflow run, and a running server hot-reloads them.

Decisions are linearisable (`act`): under the registry lock each re-reads the candidate, the
champion and the audit log, and a decision another came before raises ReleaseConflict (exit 4),
changing nothing. Only a version the gate passed is released (`releasable`), and only for a task
whose serving routes a candidate (`Task.releases`). Labels that cannot give the metric (one class,
not the model's classes) make the metric check "cannot be judged" with the reason (`unjudged`);
`watch` stops with it after `release.failed_checks` such checks in a row.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlcycle.core import tasks
from mlcycle.core.config import Params
from mlcycle.core.errors import ReleaseConflict, ReleaseError
from mlcycle.core.paths import Paths
from mlcycle.core.stats import (
    LOWER_IS_BETTER,
    WEIGHTED_METRICS,
    percentile_interval,
    resample_counts,
    weighted_metric,
)
from mlcycle.lifecycle import audit, registry
from mlcycle.monitoring import drift as drift_mod
from mlcycle.serving import feedback, predlog
from mlcycle.serving import release as serving_release

SUPPORTED = WEIGHTED_METRICS  # the metrics with a live form (core/stats.py)
MAX_MILESTONES = 8


# ---------------------------------------------------------------- metrics with bootstrap (core/stats.py)

def metric(name: str, y, s) -> float:
    """The metric of the rows, each weighing one (`stats.weighted_metric`'s definitions)."""
    y = np.asarray(y, dtype=float)
    return float(weighted_metric(name, y, s, np.ones((1, len(y))))[0])


def interval(name: str, y, s, level: float = 0.95, n_boot: int = 1000, seed: int = 0) -> dict:
    """The metric and its percentile bootstrap interval (resamples where it is undefined left out)."""
    y, s = np.asarray(y, dtype=float), np.asarray(s, dtype=float)
    values = weighted_metric(name, y, s, resample_counts(np.random.default_rng(seed), len(y), n_boot))
    lo, hi = percentile_interval(values, level, nan=True)
    return {"value": metric(name, y, s), "low": float(lo), "high": float(hi), "rows": int(len(y))}


def milestone(n: int, min_rows: int) -> int | None:
    """The last milestone j with min_rows x 2^j <= n (None before the first)."""
    if n < min_rows:
        return None
    return min(int(math.floor(math.log2(n / min_rows))), MAX_MILESTONES - 1)


def compare(name: str, champ: tuple, cand: tuple, paired: bool, min_rows: int, alpha: float,
            min_improvement: float = 0.0, n_boot: int = 1000, seed: int = 0) -> dict:
    """The metric difference candidate - champion (> 0: better) at the last milestone reached.

    `champ` and `cand` are (y, s) in time order; paired: the same rows, position by position.
    Returns `outcome` better | worse | same | pending with the milestone, rows, difference and the
    one-sided bounds at alpha_j = alpha / 2^(j+1)."""
    n = min(len(champ[0]), len(cand[0]))
    j = milestone(n, min_rows)
    sign = -1.0 if name in LOWER_IS_BETTER else 1.0
    if j is None:
        return {"metric": name, "outcome": "pending", "rows": int(n), "needed": int(min_rows),
                "detail": f"{n} labelled rows per version, fewer than release.min_labelled_rows {min_rows}"}
    m = min_rows * 2 ** j
    a = alpha / 2 ** (j + 1)
    y0, s0 = (np.asarray(v[:m], dtype=float) for v in champ)
    y1, s1 = (np.asarray(v[:m], dtype=float) for v in cand)
    rng = np.random.default_rng(seed + j)
    w0 = resample_counts(rng, m, n_boot)
    w1 = w0 if paired else resample_counts(rng, m, n_boot)
    diffs = sign * (weighted_metric(name, y1, s1, w1) - weighted_metric(name, y0, s0, w0))
    diff = sign * (metric(name, y1, s1) - metric(name, y0, s0))
    lower, upper = (float(v) for v in percentile_interval(diffs, (a, 1 - a), nan=True))  # one-sided at alpha_j each
    outcome = "better" if lower > min_improvement else "worse" if upper < 0 else "same"
    return {"metric": name, "outcome": outcome, "milestone": j, "rows": int(m), "alpha": a, "difference": float(diff),
            "lower": lower, "upper": upper, "champion": metric(name, y0, s0), "candidate": metric(name, y1, s1),
            "paired": paired, "next_rows": int(min_rows * 2 ** (j + 1))}


# ---------------------------------------------------------------- live rows and server figures

def live_rows(log_dir: Path, since: pd.Timestamp | None = None) -> pd.DataFrame:
    """The prediction log's rows (version, route, request id, row, score, prediction, ts) with their
    labels (`label`, missing where none was fed back)."""
    files = predlog.parts(log_dir)
    cols = ["request_id", "row", "model_version", "route", "score", "prediction", "ts"]
    if not files:
        return pd.DataFrame(columns=[*cols, "label"])
    import pyarrow.parquet as pq

    frames = []
    for f in files:
        names = pq.ParquetFile(f).schema_arrow.names
        frames.append(pd.read_parquet(f, columns=[c for c in cols if c in names]))
    df = pd.concat(frames, ignore_index=True)
    if "route" not in df.columns:
        df["route"] = "champion"
    df["route"] = df["route"].fillna("champion").astype(str)
    df["model_version"] = df["model_version"].astype(str)
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    if since is not None:
        df = df[df["ts"] >= since]
    labels = feedback.read(log_dir)[["request_id", "row", "label"]]
    df = df.merge(labels, on=["request_id", "row"], how="left")
    return df.sort_values(["ts", "request_id", "row"], kind="stable").reset_index(drop=True)


def encode(frame: pd.DataFrame, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """(y, s) for the live metric from labelled log rows, by the model's task (its `live_scores`
    hook; the tabular task's: a binary classifier's 0/1 label and positive-class score, a multiclass
    one's 0/1 correctness twice (accuracy), a regressor's value and prediction)."""
    task = tasks.for_objective(meta.get("task"))
    scores_of = task.hook("live_scores")
    if scores_of is None:
        raise ReleaseError(f"release: task {task.name} has no live metric: its labelled rows are not compared")
    return scores_of(frame, meta)


def metric_name(meta: dict, gate_metric: str) -> str | None:
    """The metric (one of SUPPORTED) the release compares the versions on, by the model's task (its
    `live_metric` hook, given params gate.metric); None when its task has none (no live rows judged)."""
    name_of = tasks.for_objective(meta.get("task")).hook("live_metric")
    return name_of(meta, gate_metric) if name_of is not None else None


def per_version(frame: pd.DataFrame, meta: dict, name: str, n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """Rows, labelled rows and the live metric with a 95% bootstrap interval per version and route."""
    out = []
    for (version, route), g in frame.groupby(["model_version", "route"], sort=True):
        lab = g[g["label"].notna()]
        row = {"version": str(version), "route": route, "rows": int(len(g)), "labelled": int(len(lab)),
               "metric": name}
        if len(lab) >= 20:
            try:
                y, s = encode(lab, meta)
            except ValueError as exc:  # labels the metric cannot take: said, not scored
                row["cannot_be_judged"] = str(exc)
            else:
                if name != "roc_auc" or 0 < y.sum() < len(y):
                    row.update(interval(name, y, s, n_boot=n_boot, seed=seed))
        out.append(row)
    return out


def scrape(url: str, timeout: float = 5.0) -> dict[tuple[str, str], dict]:
    """(version, route) -> {requests, errors, p99} for /predict from a server's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{url.rstrip('/')}/metrics", timeout=timeout) as resp:
        text = resp.read().decode()
    out: dict[tuple[str, str], dict] = {}
    buckets: dict[tuple[str, str], dict[float, float]] = {}
    for fam in text_string_to_metric_families(text):
        for smp in fam.samples:
            lab = smp.labels
            if lab.get("endpoint") != "/predict" or not lab.get("version"):
                continue
            key = (lab["version"], lab.get("route", ""))
            rec = out.setdefault(key, {"requests": 0.0, "errors": 0.0, "p99": None})
            if smp.name == "mlcycle_serve_requests_total":
                rec["requests"] += smp.value
                if str(lab.get("status", "")).startswith("5"):
                    rec["errors"] += smp.value
            elif smp.name == "mlcycle_serve_request_seconds_bucket":
                le = float(lab["le"])
                b = buckets.setdefault(key, {})
                b[le] = b.get(le, 0.0) + smp.value
    for key, b in buckets.items():
        out[key]["p99"] = quantile(0.99, b)
    return out


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' histogram_quantile: linear within the bucket holding the q-th observation."""
    edges = sorted(buckets)
    total = buckets[edges[-1]] if edges else 0.0
    if not total:
        return None
    rank, prev_le, prev_count = q * total, 0.0, 0.0
    for le in edges:
        count = buckets[le]
        if count >= rank:
            if math.isinf(le):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_count) / (count - prev_count) if count > prev_count else 1.0)
        prev_le, prev_count = le, count
    return prev_le


# ---------------------------------------------------------------- the decision

UNJUDGED = "cannot be judged"  # the metric check's status when the labels cannot give the metric


def unjudged(name: str, cmp: dict, champ: tuple, cand: tuple) -> str | None:
    """Why the compared milestone's metric is undefined (the labels cannot judge the candidate), or
    None when it is a number: e.g. every labelled row of one version is one class (ROC AUC, log loss
    and Brier need both)."""
    if cmp["outcome"] == "pending":
        return None
    values = (cmp.get("difference"), cmp.get("lower"), cmp.get("upper"))
    if all(isinstance(v, float) and math.isfinite(v) for v in values):
        return None
    m = cmp.get("rows", 0)
    for who, (y, _) in (("champion", champ), ("candidate", cand)):
        y = np.asarray(y[:m], dtype=float)
        if len(y) and name in ("roc_auc", "log_loss", "brier") and len(np.unique(y)) < 2:
            return (f"the {who}'s first {len(y)} labelled rows are all one class ({y[0]:g}); {name} needs both "
                    "classes: feed back labels of both outcomes")
    return f"{name} is undefined on the first {m} labelled rows per version (difference {cmp.get('difference')})"


@dataclass(frozen=True)
class Evidence:
    """What the decision reads: live rows (with labels) and the server's figures, per version."""

    rows: pd.DataFrame
    server: dict | None  # scrape(); None when the server could not be read
    champion: str
    candidate: str
    meta: dict


def decide(ev: Evidence, policy, gate_metric: str = "auto") -> dict:
    """The checks and the decision (promote | rollback | wait) from the evidence; pure."""
    checks = []
    champ_rows = ev.rows[(ev.rows["model_version"] == ev.champion) & (ev.rows["route"] == "champion")]
    cand_rows = ev.rows[(ev.rows["model_version"] == ev.candidate) & (ev.rows["route"].isin(["canary", "shadow"]))]
    mode = "shadow" if (cand_rows["route"] == "shadow").any() else "canary"
    # errors and latency, from the server
    if ev.server is None:
        checks.append({"check": "errors", "status": "not checked", "detail": "the server's /metrics could not be read"})
        checks.append({"check": "latency", "status": "not checked", "detail": "the server's /metrics could not be read"})
    else:
        route = "shadow" if mode == "shadow" else "canary"
        c = ev.server.get((ev.candidate, route), {"requests": 0.0, "errors": 0.0, "p99": None})
        h = ev.server.get((ev.champion, "champion"), {"requests": 0.0, "errors": 0.0, "p99": None})
        if c["requests"] < policy.min_requests:
            checks.append({"check": "errors", "status": "pending", "detail": f"{c['requests']:.0f} candidate requests, "
                           f"fewer than release.min_requests {policy.min_requests}"})
        else:
            ratio = c["errors"] / c["requests"]
            checks.append({"check": "errors", "status": "failed" if ratio > policy.max_error_ratio else "passed",
                           "candidate": ratio, "champion": h["errors"] / h["requests"] if h["requests"] else None,
                           "bound": policy.max_error_ratio, "requests": c["requests"]})
        if c["requests"] < policy.min_requests or h["requests"] < policy.min_requests or not h["p99"]:
            checks.append({"check": "latency", "status": "pending", "detail": "too few requests per version"})
        else:
            bound = max(h["p99"] * policy.max_latency_ratio, h["p99"] + policy.latency_slack_seconds)
            checks.append({"check": "latency", "status": "failed" if (c["p99"] or 0) > bound else "passed",
                           "candidate": c["p99"], "champion": h["p99"], "bound": bound})
    # the gate metric on labelled rows
    name = metric_name(ev.meta, gate_metric)
    lab1 = cand_rows[cand_rows["label"].notna()]
    if name is None:  # a task without a live metric (its `live_metric` hook): the labels judge nothing
        cmp = {"metric": None, "outcome": "pending", "rows": 0,
               "detail": f"task {tasks.for_objective(ev.meta.get('task')).name} has no live metric: "
                         "labelled rows cannot judge the candidate; promote or abort it by hand"}
    else:
        try:
            if mode == "shadow":
                pairs = lab1.merge(champ_rows[["request_id", "row", "score", "prediction"]],
                                   on=["request_id", "row"], suffixes=("", "_champion"))
                cand_xy = encode(pairs, ev.meta)
                champ_xy = encode(pairs.assign(score=pairs["score_champion"],
                                               prediction=pairs["prediction_champion"]), ev.meta)
            else:
                cand_xy = encode(lab1, ev.meta)
                champ_xy = encode(champ_rows[champ_rows["label"].notna()], ev.meta)
        except ValueError as exc:  # the task's `live_scores` cannot take these labels (text for numbers...)
            cmp = {"metric": name, "outcome": UNJUDGED, "rows": int(len(lab1)),
                   "detail": f"the labels fed back cannot give {name}: {exc}"}
        else:
            cmp = compare(name, champ_xy, cand_xy, mode == "shadow", policy.min_labelled_rows, policy.alpha,
                          policy.min_improvement, policy.bootstrap, policy.seed)
            why_not = unjudged(name, cmp, champ_xy, cand_xy)
            if why_not:
                cmp = {**cmp, "outcome": UNJUDGED, "detail": why_not}
    # score drift of the candidate against the champion on live rows: it stops a candidate before
    # labels can judge it; once a milestone says it is at least as good, the labels decide
    s0 = pd.to_numeric(champ_rows["score"], errors="coerce").dropna().to_numpy()
    s1 = pd.to_numeric(cand_rows["score"], errors="coerce").dropna().to_numpy()
    if min(len(s0), len(s1)) < policy.min_requests:
        checks.append({"check": "score_drift", "status": "pending", "detail": f"{len(s1)} candidate rows scored"})
    else:
        sd = drift_mod.score_drift(s0, s1, 10, test_rows=20_000, seed=policy.seed)
        drifted = sd["psi"] > policy.max_score_psi
        judged = cmp["outcome"] in ("better", "same")
        checks.append({"check": "score_drift", "status": "failed" if drifted and not judged else "passed",
                       "psi": sd["psi"], "bound": policy.max_score_psi,
                       **({"detail": "scores differ, but the labels judged the candidate at least as good"}
                          if drifted and judged else {})})
    checks.append({"check": "metric", "status": {"better": "passed", "same": "passed", "worse": "failed",
                                                 UNJUDGED: UNJUDGED}.get(cmp["outcome"], "pending"), **cmp})
    failed = [c["check"] for c in checks if c["status"] == "failed"]
    if failed:
        decision = "rollback"
        why = f"failed: {', '.join(failed)}"
    elif cmp["outcome"] == "better":
        decision = "promote"
        why = (f"{name} better by {cmp['difference']:+.4f} (one-sided bound {cmp['lower']:+.4f} > "
               f"{policy.min_improvement:g}) on {cmp['rows']} labelled rows per version; no check failed")
    elif cmp["outcome"] == UNJUDGED:
        decision = "wait"
        why = f"{name} {UNJUDGED}: {cmp['detail']}"
    else:
        decision = "wait"
        why = cmp.get("detail") or (f"{name} difference {cmp['difference']:+.4f}, bounds [{cmp['lower']:+.4f}, "
                                    f"{cmp['upper']:+.4f}]: not better yet; next look at {cmp['next_rows']} rows")
    return {"decision": decision, "why": why, "mode": mode, "champion": ev.champion, "candidate": ev.candidate,
            "checks": checks, "rows": {"champion": int(len(champ_rows)), "candidate": int(len(cand_rows)),
                                       "champion_labelled": int(champ_rows["label"].notna().sum()),
                                       "candidate_labelled": int(lab1.shape[0])},
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


# ---------------------------------------------------------------- the commands

def context(root: Path, params: Params):
    """(client, model name, champion version, candidate version or None, log dir)."""
    from mlcycle.runtime import tracking

    client, _ = tracking.setup(root, params)
    name = params.tracking.model_name
    champ, cand = current(client, name, params.serve.release.candidate)
    if champ is None:
        raise ReleaseError(f"release: model '{name}' has no champion; nothing to compare a candidate with")
    log_dir = Path(params.serve.log_dir)
    return client, name, champ, cand, log_dir if log_dir.is_absolute() else root / log_dir


def current(client, name: str, alias: str) -> tuple[str | None, str | None]:
    """(champion version, candidate version) as the registry has them now; the candidate is None when
    its alias names no version or the champion's."""
    champ = registry.champion(client, name)
    try:
        cand = str(client.get_model_version_by_alias(name, alias).version)
    except Exception:
        cand = None
    champ = str(champ.version) if champ is not None else None
    return champ, (None if cand == champ else cand)


def releasable(client, name: str, cand: str, meta: dict | None = None) -> None:
    """A ReleaseError unless version `cand` can be released: the gate passed it
    (`registry.candidate_refusal`) and its task's serving routes a candidate (`Task.releases`)."""
    refused = registry.candidate_refusal(client, name, cand)
    if refused:
        raise ReleaseError(f"release: {refused}")
    task = tasks.for_objective((meta or {}).get("task"))
    if not task.releases:
        raise ReleaseError(f"release: v{cand} is a {task.name} model: {serving_release.refusal('canary', task)}")


DECISIONS = (*audit.MOVES, "release-rollback")  # audit actions a release decision must not have missed


def told(entry: dict) -> str:
    """One audit entry as a loser's message tells it: what happened, when, by whom."""
    cmd = (entry.get("details") or {}).get("command")
    frm, to = entry.get("from_version"), entry.get("to_version")
    what = {"release-rollback": f"{cmd or 'a release abort'} rolled v{frm} back (v{to} stays the champion)",
            "promote": f"{cmd or 'mlcycle model promote'} made v{to} the champion (was v{frm})",
            "gate-promote": f"the gate made v{to} the champion (was v{frm})",
            "rollback": f"mlcycle model rollback moved the champion v{frm} -> v{to}"}.get(
        entry.get("action"), f"{entry.get('action')} v{frm} -> v{to}")
    return f"{what} at {entry.get('when')} ({entry.get('who')}: {str(entry.get('reason', ''))[:120]})"


def model_meta(name: str, version: str) -> dict:
    """The `mlcycle` metadata of version `version` of `name`."""
    from mlcycle.core.scoring import quiet_mlflow
    from mlcycle.core.workspace import model_metadata, model_uri

    with quiet_mlflow():
        return model_metadata(model_uri(name, version=version))


def server_url(params: Params) -> str:
    return params.release.url or f"http://{params.serve.host}:{params.serve.port}"


def status(root: Path, params: Params, url: str | None = None) -> dict:
    """The live comparison of the candidate with the champion (no change anywhere)."""
    client, name, champ, cand, log_dir = context(root, params)
    if cand is None:
        raise ReleaseError(f"release: no candidate: the alias '{params.serve.release.candidate}' of '{name}' names no "
                           "version other than the champion; set it (e.g. the gate's challenger) and serve with "
                           "serve.release.mode canary or shadow")
    try:
        server = scrape(url or server_url(params))
    except OSError:
        server = None
    meta = model_meta(name, cand)
    releasable(client, name, cand, meta)
    ev = Evidence(live_rows(log_dir), server, champ, cand, meta)
    out = decide(ev, params.release, params.gate.metric)
    out["model"] = name
    out["url"] = url or server_url(params)
    return out


def record(client, exp_id: str, name: str, st: dict, decision: str, reason: str, root: Path | None = None) -> str:
    """An MLflow run holding the decision and its evidence (with the workspace's git commit and
    environment, as every run, when `root` is given); its id."""
    from mlcycle.runtime import tracking

    where = {**tracking.git_tags(root), **tracking.env_tags(root)} if root is not None else {}
    run = client.create_run(exp_id, tags={**where, "mlflow.runName": f"release {decision} v{st['candidate']}",
                                          "mlcycle.release.decision": decision, "mlcycle.release.model": name,
                                          "mlcycle.release.candidate": st["candidate"],
                                          "mlcycle.release.champion": st["champion"]})
    rid = run.info.run_id
    client.log_param(rid, "reason", reason[:500])
    for c in st["checks"]:
        for k in ("candidate", "champion", "difference", "lower", "upper", "psi"):
            v = c.get(k)
            if isinstance(v, int | float) and v is not None and math.isfinite(v):
                client.log_metric(rid, f"{c['check']}.{k}", float(v))
    client.log_dict(rid, st, "release/evidence.json")
    client.set_terminated(rid)
    return rid


def act(root: Path, params: Params, decision: str, reason: str, st: dict | None = None, url: str | None = None,
        command: str | None = None) -> dict:
    """Apply `promote` or `rollback` for the current candidate, with the evidence (`status`) in the
    audit log, the version's tags and an MLflow run.

    Linearisable: the evidence is read first, then under the registry lock (`audit.locked`) the
    decision reads its preconditions again (the candidate alias still names the candidate, the
    champion has not moved, no decision or champion move was audited since the evidence was read)
    and writes everything (run, tags, alias, audit entry) before it releases the lock. A decision
    that finds another came first raises ReleaseConflict (exit 4) saying what happened, and changes
    nothing. `command` names the decision in messages and the audit entry ("release promote")."""
    from mlcycle.runtime import tracking

    command = command or f"release {decision}"
    client, name, champ, cand, _ = context(root, params)
    audit_file = Paths(root).audit_log
    alias = params.serve.release.candidate
    seen = audit.read(audit_file, name, client)
    if cand is None:
        last = next((e for e in reversed(seen) if e.get("action") in DECISIONS), None)
        raise (ReleaseConflict if last else ReleaseError)(
            f"{command}: no candidate in release (the alias '{alias}' names no version other than the champion "
            f"v{champ})" + (f"; the last decision: {told(last)}" if last else "") + "; nothing changed")
    if decision == "promote":
        releasable(client, name, cand)  # only a version the gate passed becomes champion by a release
    if st is None:
        try:
            st = status(root, params, url)
        except ReleaseError:
            # another decision may have ended the release meanwhile: then the check under the lock
            # below says which one (exit 4), rather than this read's "no candidate"
            if decision == "promote" and current(client, name, alias) == (champ, cand):
                raise
            st = {"candidate": cand, "champion": champ, "checks": [], "error": "no evidence (see release status)"}
        except Exception as exc:  # abort works without evidence
            st = {"candidate": cand, "champion": champ, "checks": [], "error": f"{type(exc).__name__}: {exc}"[:300]}
    _, exp_id = tracking.setup(root, params)
    with audit.locked(audit_file, client):
        champ_now, cand_now = current(client, name, alias)
        now = audit.read(audit_file, name, client)
        since = [e for e in now[len(seen):] if e.get("action") in DECISIONS]
        # a move audited between the champion's read and the audit's read above is in `seen`: the
        # latest decision of the whole log then tells what moved the champion
        told_last = [e for e in now if e.get("action") in DECISIONS][-1:] if champ_now != champ else []
        if cand_now != cand or champ_now != champ or since:
            happened = told((since or told_last)[0]) if since or told_last else (
                f"the alias '{alias}' now names {'v' + cand_now if cand_now else 'no candidate'}, the champion is "
                f"v{champ_now}")
            lost = f"v{cand} is no longer the candidate" if cand_now != cand else (
                f"the champion moved from v{champ} to v{champ_now}" if champ_now != champ else
                f"the release of v{cand} changed")
            raise ReleaseConflict(f"{command}: {lost}: {happened}; nothing changed")
        run_id = record(client, exp_id, name, st, decision, reason, root)
        evidence = {"command": command, "decision": st.get("decision"), "why": st.get("why"),
                    "checks": st.get("checks"), "rows": st.get("rows"), "mlflow_run_id": run_id}
        client.set_model_version_tag(name, cand, "release.decision", decision)
        client.set_model_version_tag(name, cand, "release.run_id", run_id)
        if decision == "promote":
            entry = registry.promote_locked(client, audit_file, name, cand, reason, evidence=evidence)
        else:
            entry = audit.append(audit_file, client, name, "release-rollback", cand, champ, reason, evidence)
        try:  # the release is over: the server stops routing to the candidate
            client.delete_registered_model_alias(name, alias)
        except Exception:
            pass
    return {"decision": decision, "candidate": cand, "champion_before": champ, "audit": entry, "mlflow_run_id": run_id}


def watch(root: Path, params: Params, url: str | None = None, max_checks: int | None = None,
          interval: float | None = None, log=print) -> dict:
    """Check every `release.interval_seconds`; promote when the evidence says so, roll back after
    `release.failed_checks` failed checks in a row. Returns the last status (and the action taken)."""
    pol = params.release
    failed_in_row, unjudged_in_row, n = 0, 0, 0
    while True:
        n += 1
        st = status(root, params, url)
        log(summary(st))
        if st["decision"] == "rollback":
            failed_in_row += 1
            if failed_in_row >= pol.failed_checks:
                st["action"] = act(root, params, "rollback", f"release watch: {st['why']} in {failed_in_row} "
                                   "checks in a row", st, url, command="release watch")
                log(f"release: v{st['candidate']} rolled back; v{st['champion']} stays the champion")
                return st
        else:
            failed_in_row = 0
        metric_check = next((c for c in st["checks"] if c["check"] == "metric"), {})
        unjudged_in_row = unjudged_in_row + 1 if metric_check.get("status") == UNJUDGED else 0
        if unjudged_in_row >= pol.failed_checks:  # as a failed check: the labels will not judge it by waiting
            raise ReleaseError(f"release watch: the metric {UNJUDGED} in {unjudged_in_row} checks in a row: "
                               f"{metric_check.get('detail')}; nothing changed (v{st['champion']} stays the "
                               f"champion, v{st['candidate']} the candidate): fix the labels fed back, or decide "
                               "by hand with `mlcycle release promote|abort --reason ...`")
        if st["decision"] == "promote":
            st["action"] = act(root, params, "promote", f"release watch: {st['why']}", st, url,
                               command="release watch")
            log(f"release: v{st['candidate']} promoted to champion")
            return st
        if max_checks is not None and n >= max_checks:
            return st
        time.sleep(interval if interval is not None else pol.interval_seconds)


def summary(st: dict) -> str:
    lines = [f"release {st.get('model', '')}: candidate v{st['candidate']} ({st['mode']}) against champion "
             f"v{st['champion']}: {st['decision'].upper()} ({st['why']})",
             f"  rows: champion {st['rows']['champion']} ({st['rows']['champion_labelled']} labelled), "
             f"candidate {st['rows']['candidate']} ({st['rows']['candidate_labelled']} labelled)"]
    for c in st["checks"]:
        figures = ", ".join(f"{k} {v:.4g}" for k, v in c.items()
                            if k in ("candidate", "champion", "bound", "psi", "difference", "lower", "upper")
                            and isinstance(v, int | float))
        if c["status"] == UNJUDGED:
            lines.append(f"  {c['check']}: {UNJUDGED}: {c.get('detail')}")
            continue
        lines.append(f"  {c['check']}: {c['status']}" + (f" ({figures})" if figures else "")
                     + (f"; {c['detail']}" if c.get("detail") else ""))
    return "\n".join(lines)


def to_json(st: dict) -> str:
    return json.dumps(st, indent=2, default=str)
