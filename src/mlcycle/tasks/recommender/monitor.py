"""Monitoring a recommender (task `recommendation`): are users still interacting as they did when the
champion was trained, and do its lists still get clicked?

The *reference* is the champion's training interactions (`train` and `valid` of the `data/processed`
folder it was trained on, found through lineage, `monitoring/lineage.py`); its holdout (`test`)
gives the quality at training. The *current* data is either

- a file of new interactions with the columns of data.path (`mlcycle monitoring run --input FILE`), or
- a window of the prediction log (`--from-log`): the `/recommend` answers and the feedback on them
  (`serving/feedback.py`): the items clicked or rated are the current interactions.

It reports (functions of `monitoring/drift.py`):

- **item popularity drift**: the reference's items ranked by interactions and cut into `monitor.bins`
  groups of equal interaction mass (the head's few items, ..., the tail's many); PSI, chi-square
  p-value and Jensen-Shannon distance of the current interactions on these items over the groups
  (do interactions move to the tail?); and the same over the reference's TOP_ITEMS most popular items
  (`items`: are the popular items still the same?);
- **user activity drift**: the distribution of interactions per user and `simulate.period` (month by
  default), so that a month of current data compares with months of training data;
- the **share of new users and of new items** (never in the training interactions), of users and
  of interactions; from the log, also the share of requests by users the model never saw. Items
  never seen are data drift when they take `monitor.new_item_share` of the interactions (no
  collaborative filtering reaches them); new users are reported only (users who rate in sessions
  are mostly new every month);
- **quality now against at training** (with a file of interactions): `recommend.metric` of the
  served model's lists for the users of the current data, judged on their relevant interactions
  (as evaluate judges the holdout), against the same on the holdout;
- **live quality** (from the log, per model version and route): the share of served lists with a
  relevant click or rating fed back (hit rate) and the mean share of a list's items that got one
  (precision@k), with 95% bootstrap intervals over lists when there are at least `MIN_LISTS`.
  A list without feedback counts as a miss: send feedback for every list you can.

A drift is a PSI at or above `monitor.psi_threshold` with a p-value below `monitor.alpha` / 2 (two
distributions); decay is the quality worse than at training by more than `monitor.max_metric_drop`
with the 95% interval now (bootstrap over users, `evaluate.bootstrap` resamples) below at training.
`retrain.trigger` turns them into the retrain decision, as for tables.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mlcycle.core import stats, tables
from mlcycle.core.config import Params
from mlcycle.core.errors import MonitorError
from mlcycle.monitoring import drift as drift_mod
from mlcycle.monitoring.lineage import processed_files
from mlcycle.serving import feedback, predlog
from mlcycle.tasks.recommender import interactions as ia
from mlcycle.tasks.recommender import recommenders

MIN_LISTS = 20  # fewer served lists of a version: its live figures have no interval
NEW = "(new item)"
TOP_ITEMS = 20  # the most popular items of training compared one by one
PERIODS = {"day": "D", "week": "W", "month": "M", "quarter": "Q"}


@dataclass
class Interactions:
    """Interactions with the standard columns (interactions.USER, ITEM, RATING, TIME)."""

    source: str
    frame: pd.DataFrame
    period: tuple[str, str] | None = None
    lists: pd.DataFrame | None = None  # from the log: one row per served list, with its feedback
    requests: dict = field(default_factory=dict)  # from the log: figures on the requests
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- reference and current data

def reference(root: Path, served) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(training interactions = train + valid, holdout = test, data_md5) of the served version."""
    data_md5 = (served.info or {}).get("data_md5") or ""
    if not data_md5:
        raise MonitorError(f"model version {served.version} has no data_md5 tag: its training interactions are "
                           "unknown; monitor a version registered by the train stage")
    files = processed_files(root, data_md5)
    missing = [f for f in ("train.parquet", "valid.parquet", "test.parquet") if f not in files]
    if missing:
        raise MonitorError(f"the training data of version {served.version} has no {missing[0]}: "
                           "it was not written by the features stage of a recommender")
    train = pd.concat([pd.read_parquet(files["train.parquet"]), pd.read_parquet(files["valid.parquet"])],
                      ignore_index=True)
    return train, pd.read_parquet(files["test.parquet"]), data_md5


def _period(frame: pd.DataFrame) -> tuple[str, str] | None:
    t = frame[ia.TIME] if ia.TIME in frame.columns else pd.Series(dtype="object")
    return (str(t.min()), str(t.max())) if t.notna().any() else None


def from_file(root: Path, params: Params, file: str | Path) -> Interactions:
    """A file of interactions with the columns of data.path, standardised as the features stage does."""
    df = tables.load(params.data, root, path=file)
    missing = [c for c in (params.recommend.user_column, params.recommend.item_column, params.data.target,
                           params.data.time_column) if c not in df.columns]
    if missing:
        raise MonitorError(f"--input {Path(file).name}: no column '{missing[0]}'; a file of interactions needs "
                           "recommend.user_column, recommend.item_column, data.target and data.time_column")
    inter = ia.standardise(df, params.data, params.recommend)
    return Interactions(f"file {Path(file).name}", inter, _period(inter))


def served_lists(log: pd.DataFrame) -> pd.DataFrame:
    """The `/recommend` rows of a prediction log (not shadowed): request_id, user, items (list), k,
    source, model_version, route, ts."""
    need = [*feedback.REC_FIELDS, "request_id", "model_version", "ts"]
    if any(c not in log.columns for c in need):
        return pd.DataFrame(columns=["request_id", "user", "items", "source", "model_version", "route", "ts"])
    df = log[log["prediction"].notna() & log["user"].notna()].copy()
    df["route"] = df["route"].fillna("champion") if "route" in df.columns else "champion"
    df = df[df["route"] != "shadow"]
    df["items"] = [json.loads(p) if isinstance(p, str) else [] for p in df["prediction"]]
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return df[["request_id", "user", "items", "source", "model_version", "route", "ts"]].reset_index(drop=True)


def from_log(root: Path, params: Params, days: float | None = None, now: dt.datetime | None = None) -> Interactions:
    """The `/recommend` answers of the last `days` (monitor.log_window_days) and their feedback."""
    days = days or params.monitor.log_window_days
    log_dir, lists = predlog.answers_to_monitor(
        root, params.serve.log_dir, "the recommender (`mlcycle serving start`) and send /recommend requests",
        served_lists, days, now, "/recommend answers")
    cur = with_feedback(lists, feedback.read(log_dir))
    cur.source = f"prediction log, last {days:g} days"
    return cur


def with_feedback(lists: pd.DataFrame, labels: pd.DataFrame) -> Interactions:
    """The current interactions (the items fed back on served lists: user, item, rating, time of the
    answer) and the lists with their feedback (`fed`: item -> rating or None)."""
    fed: dict[str, dict] = {}
    if not labels.empty and "item" in labels.columns:
        for rid, item, label in labels[["request_id", "item", "label"]].itertuples(index=False):
            if isinstance(item, str):
                fed.setdefault(str(rid), {})[item] = None if label is None or pd.isna(label) else float(label)
    lists = lists.assign(fed=[fed.get(str(r), {}) for r in lists["request_id"]])
    rows = [{ia.USER: str(u), ia.ITEM: i, ia.RATING: r, ia.TIME: t}
            for u, f, t in lists[["user", "fed", "ts"]].itertuples(index=False) for i, r in f.items()]
    inter = pd.DataFrame(rows, columns=[ia.USER, ia.ITEM, ia.RATING, ia.TIME])
    inter[ia.RATING] = inter[ia.RATING].astype("float64")
    notes = [f"{len(lists):,} lists served, {int((lists['fed'].map(len) > 0).sum()):,} with feedback "
             f"({len(inter):,} items clicked or rated: the current interactions)"]
    return Interactions("", inter, _period(lists.rename(columns={"ts": ia.TIME})), lists, notes=notes)


# ---------------------------------------------------------------- the figures

def popularity_groups(reference_items: pd.Series, bins: int) -> dict[str, str]:
    """item -> its popularity group in the reference: `p1` (the most popular items, together about
    1/bins of the interactions) ... `p<bins>` (the tail)."""
    counts = reference_items.astype("str").value_counts()
    before = (counts.cumsum() - counts) / max(int(counts.sum()), 1)  # share of interactions with more popular items
    group = np.minimum((before.to_numpy() * bins).astype(int), bins - 1) + 1
    return dict(zip(counts.index, [f"p{g}" for g in group], strict=True))


def _judged(stats: dict, psi_threshold: float, limit: float) -> dict:
    keep = ("psi", "p_value", "distance", "new_share", "mean_ref", "mean_cur")
    out = {k: (None if stats.get(k) is None or (isinstance(stats[k], float) and np.isnan(stats[k])) else float(stats[k]))
           for k in keep if k in stats}
    out["drifted"] = bool(stats["psi"] >= psi_threshold and (stats.get("p_value") or 1.0) < limit)
    return out


def popularity_drift(ref: pd.DataFrame, cur: pd.DataFrame, bins: int = 10, psi_threshold: float = 0.2,
                     alpha: float = 0.01, tests: int = 2) -> dict:
    """Drift of the interactions on items of the training catalogue over the reference's popularity
    groups, and over its TOP_ITEMS most popular items (the rest one bin); the shares of all current
    interactions per group (items never seen: NEW). Items never seen are left out of both PSIs (on a
    sample of a long tail, many items are missing from any reference) and judged by their share."""
    groups = popularity_groups(ref[ia.ITEM], bins)
    ref_g = ref[ia.ITEM].astype("str").map(groups)
    cur_g = cur[ia.ITEM].astype("str").map(groups).fillna(NEW)
    known = cur_g != NEW  # PSI within the training catalogue: new items are judged by their share (newness)
    if not known.any():  # every current interaction is on a new item: nothing to compare within the catalogue
        none = {"psi": 0.0, "p_value": 1.0, "distance": None, "new_share": 1.0 if len(cur_g) else 0.0}
        return {"groups": {**_judged(none, psi_threshold, alpha / tests), "shares": []},
                "items": _judged(none, psi_threshold, alpha / tests)}
    by_group = drift_mod.categorical(ref_g, cur_g[known], max_categories=bins)
    by_group["new_share"] = float((~known).mean())
    order = [f"p{g}" for g in range(1, bins + 1)] + [NEW]
    shares = pd.DataFrame({"reference": ref_g.value_counts(normalize=True), "current": cur_g.value_counts(normalize=True)}
                          ).reindex(order).fillna(0.0)
    shares = shares[(shares > 0).any(axis=1)]
    cur_items = cur[ia.ITEM].astype("str")
    items = drift_mod.categorical(ref[ia.ITEM].astype("str"), cur_items[known.to_numpy()], max_categories=TOP_ITEMS)
    limit = alpha / tests
    return {"groups": {**_judged(by_group, psi_threshold, limit),
                       "shares": [{"group": g, "reference": float(r), "current": float(c)}
                                  for g, (r, c) in shares.iterrows()]},
            "items": _judged(items, psi_threshold, limit)}


def per_user_and_period(inter: pd.DataFrame, period: str) -> pd.Series:
    """Interactions of each user in each period (month ...) the user was active in."""
    t = pd.to_datetime(inter[ia.TIME], utc=True)
    p = t.dt.tz_localize(None).dt.to_period(PERIODS[period])
    return inter.groupby([inter[ia.USER].astype("str"), p]).size().astype("float64").reset_index(drop=True)


def activity_drift(ref: pd.DataFrame, cur: pd.DataFrame, period: str = "month", bins: int = 10,
                   psi_threshold: float = 0.2, alpha: float = 0.01, tests: int = 2, seed: int = 0) -> dict:
    """Drift of user activity: interactions per user and period, current against reference."""
    r, c = per_user_and_period(ref, period), per_user_and_period(cur, period)
    out = _judged(drift_mod.numeric(r, c, bins, seed=seed), psi_threshold, alpha / tests)
    out.update(period=period, median_ref=float(r.median()) if len(r) else None,
               median_cur=float(c.median()) if len(c) else None)
    return out


def newness(ref: pd.DataFrame, cur: pd.DataFrame) -> dict:
    """Shares of the current users and items never in the reference, and of their interactions."""
    users, items = set(ref[ia.USER].astype("str")), set(ref[ia.ITEM].astype("str"))
    cu, ci = cur[ia.USER].astype("str"), cur[ia.ITEM].astype("str")
    new_u, new_i = ~cu.isin(users), ~ci.isin(items)
    n = max(len(cur), 1)
    return {"users": int(cu.nunique()), "items": int(ci.nunique()),
            "new_user_share": float(cu[new_u].nunique() / max(cu.nunique(), 1)),
            "new_user_interaction_share": float(new_u.sum() / n),
            "new_item_share": float(ci[new_i].nunique() / max(ci.nunique(), 1)),
            "new_item_interaction_share": float(new_i.sum() / n)}


def relevant_items(fed: dict, relevant_rating: float | None) -> int:
    """Items of a list's feedback that count as relevant: a click, or a rating at or above relevant_rating."""
    return sum(1 for r in fed.values() if r is None or relevant_rating is None or r >= relevant_rating)


def live_quality(lists: pd.DataFrame, relevant_rating: float | None, n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """Per model version and route: lists served, lists with feedback, hit rate and precision@k with
    95% bootstrap intervals over lists (at least MIN_LISTS lists)."""
    out = []
    if lists is None or lists.empty:
        return out
    for (version, route), g in lists.groupby(["model_version", "route"], sort=True):
        rel = np.array([relevant_items(f, relevant_rating) for f in g["fed"]], dtype="float64")
        size = np.array([max(len(i), 1) for i in g["items"]], dtype="float64")
        hit, prec = (rel > 0).astype("float64"), rel / size
        row = {"version": str(version), "route": str(route), "lists": int(len(g)),
               "with_feedback": int((g["fed"].map(len) > 0).sum()),
               "hit_rate": float(hit.mean()), "precision_at_k": float(prec.mean())}
        if len(g) >= MIN_LISTS:
            for name, v in (("hit_rate", hit), ("precision_at_k", prec)):
                # a generator of the same seed for each: both resample the same lists
                lo, hi = stats.bootstrap_mean_intervals(v, n_boot, np.random.default_rng(seed), stats.CI95)
                row[f"{name}_interval"] = [float(lo), float(hi)]
        out.append(row)
    return out


def quality(models, name: str, ref_test: pd.DataFrame, cur: pd.DataFrame, params: Params) -> dict | None:
    """`recommend.metric` of the model's lists (component `name`) on the holdout and on the current
    interactions, each over the users with a relevant interaction there (evaluate's judging)."""

    rec = params.recommend
    metric = rec.metric
    names = (name,)
    then = recommenders.evaluate(models, ref_test, rec, names=names, resamples=params.evaluate.bootstrap)
    now = recommenders.evaluate(models, cur, rec, names=names, resamples=params.evaluate.bootstrap)
    users_now = len(now["relevant"])
    if users_now < 2 or not len(then["relevant"]):
        return None
    at, cur_v = then["results"][name][metric], now["results"][name][metric]
    change = cur_v - at
    interval = now["intervals"][name].get(metric)
    # decay: worse by more than the allowed drop, and the interval now (over users) below at training
    decayed = -change > params.monitor.max_metric_drop and (interval is None or interval[1] < at)
    return {"metric": metric, "at_training": float(at), "now": float(cur_v), "change": float(change),
            "interval_now": interval, "users_now": users_now, "users_at_training": len(then["relevant"]),
            "decayed": bool(decayed), "slices": []}


def models_of(served):
    """The served version's fitted recommenders and the component a known user is served by."""
    python_model = served.model.unwrap_python_model() if hasattr(served.model, "unwrap_python_model") else served.model
    return python_model.models, getattr(python_model, "model", (served.meta or {}).get("model", "hybrid"))


# ---------------------------------------------------------------- the verdict

def assess(params: Params, served, ref: pd.DataFrame, ref_test: pd.DataFrame, data_md5: str,
           cur: Interactions, models=None) -> dict:
    """The verdict of a recommender (a JSON-ready dict, the keys of the table verdict where they mean
    the same): drift of item popularity and user activity, new users and items, quality, retrain."""
    mp = params.monitor
    verdict: dict = {
        "task": "recommendation",
        "model": {"name": served.info.get("name"), "version": served.version, "uri": served.info.get("uri"),
                  "data_md5": data_md5, "run_id": served.info.get("run_id"),
                  "serves": (served.meta or {}).get("model")},
        "current": {"source": cur.source, "rows": len(cur.frame), "labelled": cur.lists is None,
                    "period": list(cur.period) if cur.period else None, "notes": cur.notes},
        "reference": {"rows": len(ref), "holdout_rows": len(ref_test), "data_md5": data_md5,
                      "users": int(ref[ia.USER].nunique()), "items": int(ref[ia.ITEM].nunique())},
        "policy": {**mp.model_dump(), "trigger": params.retrain.trigger},
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if cur.lists is not None:
        lists = cur.lists
        known = set(ref[ia.USER].astype("str"))
        verdict["requests"] = {"lists": len(lists), "users": int(lists["user"].nunique()),
                               "new_user_request_share": float((~lists["user"].astype("str").isin(known)).mean()),
                               "sources": {str(k): int(v) for k, v in lists["source"].value_counts().items()}}
        verdict["live"] = live_quality(lists, (served.meta or {}).get("relevant_rating", params.recommend.relevant_rating),
                                       seed=mp.seed)
    if len(cur.frame) < mp.min_rows:
        verdict.update(status="insufficient", retrain=False, performance=None, reasons=[
            f"{len(cur.frame)} current interactions, fewer than monitor.min_rows {mp.min_rows}: no verdict"])
        return verdict
    pop = popularity_drift(ref, cur.frame, mp.bins, mp.psi_threshold, mp.alpha)
    act = activity_drift(ref, cur.frame, params.simulate.period, mp.bins, mp.psi_threshold, mp.alpha, seed=mp.seed)
    verdict.update(popularity_drift=pop, activity_drift=act, newness=newness(ref, cur.frame))
    perf = None
    if cur.lists is None:  # a file of interactions: the served lists judged on them
        models, name = models if models is not None else models_of(served)
        perf = quality(models, name, ref_test, cur.frame, params)
    verdict["performance"] = perf
    return conclude(verdict, params)


def conclude(verdict: dict, params: Params) -> dict:
    """Status, reasons and the retrain decision (retrain.trigger) from the drifts and the quality."""
    mp = params.monitor
    pop, act, perf = verdict["popularity_drift"], verdict["activity_drift"], verdict.get("performance")
    reasons = []
    if pop["groups"]["drifted"]:
        reasons.append(f"item popularity drift: PSI {pop['groups']['psi']:.3f} >= {mp.psi_threshold} over the "
                       f"popularity groups ({pop['groups']['new_share']:.0%} of interactions on new items)")
    if pop["items"]["drifted"]:
        reasons.append(f"popular items drift: PSI {pop['items']['psi']:.3f} >= {mp.psi_threshold} over the {TOP_ITEMS} "
                       "most popular items of training")
    if act["drifted"]:
        reasons.append(f"user activity drift: PSI {act['psi']:.3f} >= {mp.psi_threshold} (interactions per user and "
                       f"{act['period']}: median {act['median_cur']:g} now, {act['median_ref']:g} in training)")
    new_items = verdict["newness"]["new_item_interaction_share"] >= mp.new_item_share
    if new_items:
        reasons.append(f"new items: {verdict['newness']['new_item_interaction_share']:.0%} of interactions on items never "
                       f"seen in training (>= monitor.new_item_share {mp.new_item_share:.0%}): only content and "
                       "popularity can reach them")
    decayed = bool(perf and perf["decayed"])
    if decayed:
        reasons.append(f"decay: {perf['metric']} {perf['now']:.4f} now against {perf['at_training']:.4f} at training "
                       f"(worse by more than {mp.max_metric_drop})")
    drifted = bool(pop["groups"]["drifted"] or pop["items"]["drifted"] or act["drifted"] or new_items)
    retrain = {"drift_or_decay": drifted or decayed, "drift": drifted, "decay": decayed,
               "never": False}[params.retrain.trigger]
    if not reasons:
        reasons.append("no drift or decay beyond the policy")
    verdict.update(status="drift" if drifted or decayed else "ok", data_drift=drifted, score_drifted=False,
                   decayed=decayed, retrain=bool(retrain), reasons=reasons)
    return verdict


def check(root: Path, params: Params, served, current: str | None = None, days: float | None = None,
          now: dt.datetime | None = None) -> dict:
    """The served recommender's reference and the current data (a file, else the log), assessed."""
    ref, ref_test, data_md5 = reference(root, served)
    if current and Path(current).is_dir():
        raise MonitorError(f"--input {Path(current).name} is a folder: for a recommender give a file of "
                           "interactions (the columns of data.path), or --from-log")
    cur = from_file(root, params, current) if current else from_log(root, params, days, now)
    return assess(params, served, ref, ref_test, data_md5, cur)


# ---------------------------------------------------------------- what the commands and notebook show

def summary(verdict: dict) -> str:
    m, c = verdict["model"], verdict["current"]
    lines = [f"monitor: {m['name']} v{m['version']} ({m.get('serves')}) on {c['source']} ({c['rows']} interactions): "
             f"{verdict['status'].upper()}, retrain: {'yes' if verdict['retrain'] else 'no'}"]
    if "popularity_drift" in verdict:
        p, a, n = verdict["popularity_drift"], verdict["activity_drift"], verdict["newness"]
        lines.append(f"  item popularity PSI {p['groups']['psi']:.3f}, top items PSI {p['items']['psi']:.3f}, "
                     f"user activity PSI {a['psi']:.3f}")
        lines.append(f"  new users {n['new_user_share']:.1%} ({n['new_user_interaction_share']:.1%} of interactions), "
                     f"new items {n['new_item_share']:.1%} ({n['new_item_interaction_share']:.1%} of interactions)")
    perf = verdict.get("performance")
    if perf:
        lines.append(f"  {perf['metric']}: {perf['now']:.4f} now ({perf['users_now']} users), "
                     f"{perf['at_training']:.4f} at training")
    for v in verdict.get("live") or []:
        ci = v.get("hit_rate_interval")
        lines.append(f"  live v{v['version']} ({v['route']}): {v['lists']} lists, {v['with_feedback']} with feedback; "
                     f"hit rate {v['hit_rate']:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")
                     + f", precision@k {v['precision_at_k']:.4f}")
    lines += [f"  - {r}" for r in verdict["reasons"]]
    return "\n".join(lines)


def takeaways(verdict: dict) -> str:
    m, c = verdict["model"], verdict["current"]
    lines = [f"- {c['rows']:,} current interactions ({c['source']}) against {m['name']} v{m['version']}: "
             f"{verdict['status']}, retrain {'yes' if verdict['retrain'] else 'no'}."]
    if "popularity_drift" in verdict:
        p, n = verdict["popularity_drift"], verdict["newness"]
        lines.append(f"- Item popularity: PSI {p['groups']['psi']:.3f} over the popularity groups of training; "
                     f"{n['new_item_interaction_share']:.1%} of interactions on items never seen, "
                     f"{n['new_user_interaction_share']:.1%} by users never seen.")
    perf = verdict.get("performance")
    if perf:
        lines.append(f"- {perf['metric']}: {perf['now']:.4f} now against {perf['at_training']:.4f} at training "
                     f"({'decayed' if perf['decayed'] else 'within the allowed drop'}).")
    for v in verdict.get("live") or []:
        lines.append(f"- Live v{v['version']} ({v['route']}): hit rate {v['hit_rate']:.4f} over {v['lists']} lists.")
    return "\n".join(lines)


def tables_of(verdict: dict) -> dict[str, pd.DataFrame]:
    """The verdict's figures as tables (for the notebook)."""
    out = {}
    if "popularity_drift" in verdict:
        p, a = verdict["popularity_drift"], verdict["activity_drift"]
        out["drift"] = pd.DataFrame([{"what": "item popularity groups", **{k: v for k, v in p["groups"].items() if k != "shares"}},
                                     {"what": f"top-{TOP_ITEMS} items", **p["items"]},
                                     {"what": f"interactions per user and {a['period']}",
                                      **{k: v for k, v in a.items() if k != "period"}}])
        out["shares"] = pd.DataFrame(p["groups"]["shares"])
        out["newness"] = pd.DataFrame([verdict["newness"]])
    if verdict.get("live"):
        out["live"] = pd.DataFrame(verdict["live"])
    return out


def score(root: Path, params: Params, served, cur: Interactions) -> tuple[float | None, str]:
    """`recommend.metric` of `served`'s lists (its component for known users, popularity for the others)
    for the users of a period it has not seen (`cur`: `from_file`), judged on their relevant interactions
    in it (the replay, monitoring/simulate.py)."""
    interactions = cur.frame
    models, name = models_of(served)
    metric = params.recommend.metric
    ev = recommenders.evaluate(models, interactions, params.recommend, names=(name,), resamples=0)
    return (float(ev["results"][name][metric]) if ev["relevant"] else None), metric


# the replay's table (monitoring/simulate.py): the columns `figures` gives, and the one drawn per
# period (column, what it is, the monitor key of its threshold)
REPLAY = {"columns": ("item_popularity_psi", "user_activity_psi", "new_item_share", "new_user_share"),
          "bar": ("item_popularity_psi", "item popularity PSI", "psi_threshold")}


def figures(verdict: dict) -> dict:
    """A recommender's verdict in a period's row: item popularity and user activity PSI, new items."""
    if "popularity_drift" not in verdict:
        return {}
    return {"item_popularity_psi": verdict["popularity_drift"]["groups"]["psi"],
            "user_activity_psi": verdict["activity_drift"]["psi"],
            "new_item_share": verdict["newness"]["new_item_interaction_share"],
            "new_user_share": verdict["newness"]["new_user_interaction_share"]}


def metrics_of(verdict: dict) -> dict:
    """A verdict's figures for reports/metrics/monitor.json (none when there were too few interactions)."""
    if "popularity_drift" not in verdict:
        return {}
    return {"item_popularity_psi": verdict["popularity_drift"]["groups"]["psi"],
            "top_items_psi": verdict["popularity_drift"]["items"]["psi"],
            "user_activity_psi": verdict["activity_drift"]["psi"],
            "new_user_share": verdict["newness"]["new_user_share"],
            "new_item_share": verdict["newness"]["new_item_share"]}
