"""Task `recommendation`: each stage's steps with their files (the pure work is in
`interactions`, `recommenders`, `ranking` and `recommend_model`).

- validate: the interactions table checked (`interactions.check`);
- features: standardised, split in time, written to data/processed/{train,valid,test}.parquet with the
  item-content table items.parquet;
- train: the components fitted on train, the hybrid weight chosen on valid, everything refitted on
  train + valid and saved as MLflow pyfunc models: models/model (the hybrid) and models/baseline
  (popularity);
- evaluate: every model and component on the test period, intervals, beyond-accuracy figures, slices.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlcycle.core import literal, record, stats, tables
from mlcycle.core.config import Params
from mlcycle.tasks.recommender import interactions as ia
from mlcycle.tasks.recommender import ranking, recommenders
from mlcycle.tasks.recommender import search as recommend_search

PARTS = ("train", "valid", "test")


# ---------------------------------------------------------------- validate

def validate(cfg: Params, root: Path, df: pd.DataFrame | None = None) -> ia.Findings:
    """The interactions table at data.path checked (read here unless given)."""
    df = tables.load(cfg.data, root, window=cfg.retrain.window) if df is None else df
    return ia.check(df, cfg.data, cfg.recommend, cfg.validate_.min_rows)


def write_validate(findings: ia.Findings, metrics_path: Path, findings_path: Path) -> None:
    """Add the task's checks to what the shared checks wrote (`validate.write`, run first)."""
    findings.write(metrics_path, findings_path)


# ---------------------------------------------------------------- features

def features(cfg: Params, root: Path, df: pd.DataFrame | None = None) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """(the train / valid / test interactions, the item-content table)."""
    df = tables.load(cfg.data, root, window=cfg.retrain.window) if df is None else df
    inter = ia.standardise(df, cfg.data, cfg.recommend)
    return ia.split(inter, cfg.recommend), ia.items_table(inter, cfg.recommend)


def write_features(parts: dict[str, pd.DataFrame], items: pd.DataFrame, folder: Path, metrics_path: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        part[[ia.USER, ia.ITEM, ia.RATING, ia.TIME]].to_parquet(folder / f"{name}.parquet", index=False)
    items.reset_index().astype({ia.ITEM: "str"}).to_parquet(folder / "items.parquet", index=False)
    summary = ia.summary(parts)
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps({"task": "recommendation", **{
        f"{r['part']}_{k}": r[k] for r in summary.to_dict("records")
        for k in ("interactions", "users", "items", "new_user_share", "new_item_share")}}, indent=2, default=float) + "\n")


def read_features(folder: Path) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    parts = {name: pd.read_parquet(folder / f"{name}.parquet") for name in PARTS}
    return parts, pd.read_parquet(folder / "items.parquet").set_index(ia.ITEM)


# ---------------------------------------------------------------- train

@dataclass
class Trained:
    models: recommenders.Recommenders  # refitted on train + valid, with the chosen weight
    weight: float
    tried: pd.DataFrame  # one row per weight: its metrics on the validation period
    seconds: dict
    found: recommend_search.Found | None = None  # the ALS search (train.search), when it ran
    penalty: float = 0.0  # the hybrid's popularity penalty (recommend.coverage_tolerance)
    penalties: pd.DataFrame | None = None  # one row per penalty tried on the validation period


def train(parts: dict[str, pd.DataFrame], items: pd.DataFrame, cfg: Params, threads: int = 0) -> Trained:
    """Fit on train, choose the hybrid weight on valid (and, with train.search, ALS's hyperparameters),
    refit on train + valid with them (the holdout is not looked at)."""
    rec = cfg.recommend
    t0 = time.perf_counter()
    both = pd.concat([parts["train"], parts["valid"]], ignore_index=True)
    index = ia.Index.of(both)  # train's users and items first, then those new in valid
    # item content is catalogue data (the items table spans every period): computed once for both fits
    content = ia.content_vectors(items, index.items, rec)
    first = recommenders.fit(parts["train"], rec, items, index=ia.Index.of(parts["train"]), threads=threads,
                             content=content)
    found = None
    if recommend_search.enabled(cfg):
        found = recommend_search.run(first, parts["valid"], cfg, threads)
        rec, weight, tried = found.rec, found.weight, found.tried
    else:
        weight, tried = recommenders.choose_weight(first, parts["valid"], rec)
    penalty, penalties = 0.0, None
    if rec.coverage_tolerance is not None:
        chosen = (found.models if found is not None else first).with_weight(weight)
        penalty, penalties = recommenders.choose_penalty(chosen, parts["valid"], rec)
    t1 = time.perf_counter()
    warm = found.models if found is not None else first  # ALS's factors on train (recommend.refit_iterations)
    final = recommenders.fit(both, rec, items, index=index, threads=threads, warm=warm,
                             content=content).with_weight(weight, penalty)
    t2 = time.perf_counter()
    return Trained(final, weight, tried, {"choose_weight": t1 - t0, "refit": t2 - t1, **final.seconds}, found,
                   penalty, penalties)


def component(weight: float) -> str:
    """The model a known user is served by: `cf` at a CF weight of 1 (e.g. `recommend.weights: [1.0]`),
    `content` at 0, else `hybrid`: a single-component version to roll back to (docs/recommender.md)."""
    return "cf" if weight == 1.0 else "content" if weight == 0.0 else "hybrid"


def save(trained: Trained, cfg: Params, model_dir: Path, baseline_dir: Path) -> None:
    """models/model: the hybrid (or the single component its weight leaves); models/baseline:
    popularity; both MLflow pyfunc models."""
    from mlcycle.tasks.recommender import model as recommend_model

    meta = {"user_column": cfg.recommend.user_column, "item_column": cfg.recommend.item_column,
            "metric": cfg.recommend.metric, "users": len(trained.models.index.users),
            "relevant_rating": cfg.recommend.relevant_rating, "rating_min": cfg.recommend.rating_min,
            "rating_max": cfg.recommend.rating_max,
            "items": len(trained.models.index.items),
            "cf": cfg.recommend.cf, **({"ease_lambda": cfg.recommend.ease_lambda} if cfg.recommend.cf == "ease" else {
                "als": {n: getattr(trained.found.rec if trained.found else cfg.recommend, n) for n in recommend_search.NAMES},
                "weighting": cfg.recommend.weighting,
                **({"bm25_k1": cfg.recommend.bm25_k1, "bm25_b": cfg.recommend.bm25_b} if cfg.recommend.weighting == "bm25" else {}),
                **({"rating_centre": cfg.recommend.centre()} if cfg.recommend.weighting == "rating" else {})}),
            "popularity_discount": cfg.recommend.popularity_discount}
    # a popularity penalty acts on the hybrid's scores: a penalised version is served as the hybrid
    served = component(trained.weight) if not trained.penalty else "hybrid"
    recommend_model.save(trained.models, model_dir, served, cfg.recommend.k, meta)
    recommend_model.save(trained.models, baseline_dir, "popularity", cfg.recommend.k, meta)


def write_train_metrics(trained: Trained, path: Path, metric: str) -> None:
    """reports/metrics/train.json: what follows from the data and params alone (the same on every run);
    the fit's timings, which do not, are tags of the stage's MLflow run (`train_seconds_<part>`)."""
    best = trained.tried.loc[trained.tried["weight"] == trained.weight].iloc[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    searched = {}
    if trained.found is not None:
        searched = {"search_trials": len(trained.found.trials),
                    **{f"als_{n}": getattr(trained.found.rec, n) for n in recommend_search.NAMES}}
    path.write_text(json.dumps({"task": "recommendation", "weight": trained.weight, f"valid_{metric}": float(best[metric]),
                                "popularity_penalty": trained.penalty,
                                **searched}, indent=2) + "\n")
    record.tags({f"train_seconds_{k}": f"{v:.3f}" for k, v in trained.seconds.items()})


# ---------------------------------------------------------------- evaluate

def evaluate(models: recommenders.Recommenders, test: pd.DataFrame, cfg: Params) -> dict:
    """Every model on the test period (recommenders.evaluate) plus the slices of the hybrid."""
    ev = recommenders.evaluate(models, test, cfg.recommend, resamples=cfg.evaluate.bootstrap)
    train_counts = dict(zip(models.index.users, models.seen.getnnz(axis=1), strict=True))
    groups = ranking.activity_groups(list(ev["relevant"]), train_counts)
    heads = ranking.popularity_groups(ev["popularity"])
    ev["slices"] = ranking.slices(ev["tables"]["hybrid"], ev["lists"]["hybrid"], ev["relevant"], groups, heads,
                                  cfg.recommend.k)
    return ev


def metrics_document(ev: dict) -> dict:
    """reports/metrics/evaluate.json: the model (the hybrid) and every other model by name."""
    res = ev["results"]
    return {"model": res["hybrid"], "baseline": res["popularity"],
            **{name: m for name, m in res.items() if name not in ("hybrid", "popularity")},
            "intervals": {"model": ev["intervals"]["hybrid"], **{n: c for n, c in ev["intervals"].items()}},
            "users": len(ev["relevant"])}


def explain(models: recommenders.Recommenders, user: str, items: list[str], top: int = 3) -> pd.DataFrame:
    """Why each recommended item: the user's training items most similar to it in content (the items
    that drove it) and the genres / words it shares with the user's profile."""
    m = models
    r = m.index.user_pos[user]
    history = m.seen[r].indices
    rows = []
    for item in items:
        j = m.index.item_pos[item]
        sims = np.asarray((m.content[history] @ m.content[j].T).todense()).ravel() if len(history) else np.array([])
        near = [str(m.index.items[history[i]]) for i in np.argsort(-sims)[:top] if sims[i] > 0]
        shared = m.content[j].multiply(m.profiles[r]).tocoo()
        words = [m.vocabulary[c] for c in shared.col[np.argsort(-shared.data)][:top]]
        rows.append({"item": item, "because_of_items": near, "shared_content": words})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- what the notebooks show

def features_line(parts: dict[str, pd.DataFrame], items: pd.DataFrame, cfg: Params) -> str:
    n = {k: len(v) for k, v in parts.items()}
    return (f"interactions split by time ({cfg.recommend.split}): train {n['train']:,}, valid {n['valid']:,}, "
            f"test {n['test']:,}; {len(items):,} items with content {list(items.columns)}")


def content_table(items: pd.DataFrame, cfg: Params, top: int = 15) -> pd.DataFrame:
    """The item-content vocabulary: the terms carried by most items, per content column."""
    matrix, names = ia.content_vectors(items, items.index.to_numpy(), cfg.recommend)
    counts = pd.Series((matrix > 0).sum(axis=0).A1 if matrix.shape[1] else [], index=names, dtype="float64")
    out = counts.sort_values(ascending=False).head(top).rename("items").reset_index().rename(columns={"index": "term"})
    out["share"] = (out["items"] / max(len(items), 1)).round(4)
    return out


def features_takeaways(parts: dict[str, pd.DataFrame]) -> str:
    s = ia.summary(parts).set_index("part")
    return "\n".join([
        f"- The test period runs from {s.loc['test', 'from']} to {s.loc['test', 'to']}; its users never seen in "
        f"training: {s.loc['test', 'new_user_share']:.1%}, its items never seen: {s.loc['test', 'new_item_share']:.1%} "
        "(they can only be reached by content or popularity).",
        f"- Training covers {s.loc['train', 'users']:,} users and {s.loc['train', 'items']:,} items.",
    ])


def write_search(trained: Trained, path: Path, metric: str) -> None:
    """models/search.json: the hybrid weights tried on the validation period (a grid search), or, when
    train.search searched ALS's hyperparameters, every trial (each a nested run of the train run)."""
    if trained.found is not None:
        recommend_search.write(trained.found, path, metric)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"method": "grid", "score": metric, "scored_by": "valid",
                                "chosen": {"model": "hybrid", "weight": trained.weight},
                                "trials": trained.tried.to_dict("records")}, indent=2, default=float) + "\n")


def _at(table: pd.DataFrame, key: str, value: float, column: str) -> float:
    row = table.loc[table[key] == value, column]
    return float(row.iloc[0]) if len(row) else float("nan")


def train_takeaways(trained: Trained, metric: str) -> str:
    t = trained.tried.set_index("weight")[metric]
    return "\n".join([
        f"- The hybrid's weight of collaborative filtering, chosen on the validation period: {trained.weight:g} "
        f"({metric} {t.loc[trained.weight]:.4f}; CF alone {t.get(1.0, float('nan')):.4f}, content alone "
        f"{t.get(0.0, float('nan')):.4f}).",
        *([f"- Popularity penalty for catalogue coverage, chosen on the validation period: {trained.penalty:g} "
           f"(coverage there {_at(trained.penalties, 'penalty', trained.penalty, 'coverage'):.3f} against "
           f"{_at(trained.penalties, 'penalty', 0.0, 'coverage'):.3f} without)."] if trained.penalties is not None else []),
        f"- Fitting took {trained.seconds.get('cf', 0):.1f} s for ALS and {trained.seconds.get('content', 0):.1f} s "
        "for content vectors (the final refit on train + valid).",
    ])


def evaluate_takeaways(ev: dict, k: int, metric: str) -> str:
    res, ci = ev["results"], ev["intervals"]
    h, p = res["hybrid"], res["popularity"]
    lift = (h["recall_at_k"] / p["recall_at_k"] - 1) if p["recall_at_k"] else float("nan")
    best_single = max(("cf", "content"), key=lambda n: res[n][metric])
    lines = [f"- Judged on {len(ev['relevant']):,} users with a relevant held-out item.",
             f"- Recall@{k}: hybrid {h['recall_at_k']:.4f} against popularity {p['recall_at_k']:.4f} ({lift:+.0%}).",
             f"- {metric}: hybrid {h[metric]:.4f} {ci['hybrid'].get(metric, '')}, the best single component "
             f"({best_single}) {res[best_single][metric]:.4f}.",
             f"- Catalogue coverage of the hybrid's lists: {h['coverage']:.3f}; mean popularity rank "
             f"{h['mean_popularity_rank']:.0f} (popularity: {p['mean_popularity_rank']:.0f})."]
    if h[metric] <= res[best_single][metric]:
        lines.append(f"- The hybrid does not beat {best_single} alone on {metric} here.")
    return "\n".join(lines)


@literal.figures()
def plot_models(ev: dict, k: int):
    """NDCG@k and Recall@k of every model with their 95% intervals over users."""
    import matplotlib.pyplot as plt

    names = list(ev["results"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, metric in zip(axes, ("ndcg_at_k", "recall_at_k"), strict=True):
        values = [ev["results"][n][metric] for n in names]
        ci = [ev["intervals"].get(n, {}).get(metric, [v, v]) for n, v in zip(names, values, strict=True)]
        err = np.array([[v - c[0] for v, c in zip(values, ci, strict=True)], [c[1] - v for v, c in zip(values, ci, strict=True)]])
        ax.bar(literal.labels(names, 20), values, yerr=err, capsize=4, color=["#999999", "#4c72b0", "#55a868", "#c44e52"][: len(names)])
        ax.set_title(ranking.LABELS[metric].format(k=k))
    fig.tight_layout()
    return fig


def card_documents(ev: dict, explanation: pd.DataFrame, decision: dict, figures: bool = False) -> dict:
    """What the model card reads of this evaluation (`card.collect(..., documents=...)`): the evaluate
    stage's documents by name, as it writes them to reports/. figures: its figures are saved (under
    reports/figures/evaluate), so the HTML card embeds them."""
    slices = ev["slices"].to_dict("records")
    return {"evaluate": {**metrics_document(ev), "slices": slices}, "fairness": {"slices": slices},
            "explanations": {"examples": explanation.to_dict("records")}, "gate": decision, "figures": figures}


def write_reports(paths, cfg: Params, ev: dict, explanation: pd.DataFrame, decision: dict, registered: dict,
                  history: list[dict], client=None) -> dict[str, Path]:
    """reports/fairness.json (the slices), reports/explanations.json and the model card
    (reports/model_card.{json,md,html}) of a recommender version, built as every task's is
    (`mlcycle.lifecycle.card`: the generic parts and this task's, `card.sections`); under the runner
    logged with the evaluate run and tagged on the version (`model_card`, `model_card.run_id` ...), so
    `mlcycle model card --model VERSION` renders it again. decision: the gate's document
    (`mlcycle.lifecycle.gate.document`); history: the model's audit entries (`audit.read`); client:
    the MLflow client, for the version's aliases, tags and train run (None: what `registered` knows)."""
    from mlcycle.lifecycle import card

    paths.fairness.write_text(json.dumps({"slices": ev["slices"].to_dict("records")}, indent=1, default=str) + "\n")
    paths.explanations.write_text(json.dumps({"examples": explanation.to_dict("records")}, indent=1, default=str) + "\n")
    name, version = registered.get("name"), registered.get("version")
    record = card.collect(paths, cfg, client, name, version, history,
                          documents=card_documents(ev, explanation, decision, figures=True))
    if client is None:  # what models/registered.json knows of the version
        record["model"]["train_run_id"] = registered.get("run_id")
        record["model"]["git_commit"] = registered.get("git_commit")
        record["data"]["processed_md5"] = registered.get("data_md5") or record["data"]["processed_md5"]
    return card.write(record, paths.reports)


def split_table(parts: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per part: interactions, users, items, time range, shares of users and items new to training."""
    return ia.summary(parts)


def index_section(paths, cfg: Params, read) -> dict:
    """The index page's headline for a recommender (the task's "index" hook): the ranking metrics at
    k, the popularity baseline, the interactions behind the holdout and the hybrid's parts."""
    f = read(paths.metrics("features")) or {}
    k = cfg.recommend.k
    return {
        "headline": list(stats.RANKING_METRICS),
        "baseline": f"popularity (each user's {k} most interacted items not yet seen)",
        "rows": (f"Holdout: the latest {f.get('test_interactions', '-')} interactions of {f.get('test_users', '-')} "
                 f"users; training {f.get('train_interactions', '-')} + validation {f.get('valid_interactions', '-')}. "
                 f"Metrics at k = {k}."),
        "model": f"hybrid of {cfg.recommend.cf} and content",
    }
