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

import pandas as pd

from mlcycle.core import tables
from mlcycle.core.config import Params
from mlcycle.stages import interactions as ia
from mlcycle.stages import ranking, recommenders

PARTS = ("train", "valid", "test")


# ---------------------------------------------------------------- validate

def validate(cfg: Params, root: Path, df: pd.DataFrame | None = None) -> ia.Findings:
    """The interactions table at data.path checked (read here unless given)."""
    df = tables.load(cfg.data, root, window=cfg.retrain.window) if df is None else df
    return ia.check(df, cfg.data, cfg.recommend, cfg.validate_.min_rows)


def write_validate(findings: ia.Findings, metrics_path: Path, findings_path: Path) -> None:
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps({"rows": findings.rows, "errors": len(findings.errors),
                                        "warnings": len(findings.warnings), **findings.stats}, indent=2) + "\n")
    findings_path.write_text(json.dumps({"errors": findings.errors, "warnings": findings.warnings}, indent=2) + "\n")


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


def train(parts: dict[str, pd.DataFrame], items: pd.DataFrame, cfg: Params, threads: int = 0) -> Trained:
    """Fit on train, choose the hybrid weight on valid, refit on train + valid (the holdout is not looked at)."""
    rec = cfg.recommend
    t0 = time.perf_counter()
    first = recommenders.fit(parts["train"], rec, items, threads=threads)
    weight, tried = recommenders.choose_weight(first, parts["valid"], rec)
    t1 = time.perf_counter()
    both = pd.concat([parts["train"], parts["valid"]], ignore_index=True)
    final = recommenders.fit(both, rec, items, threads=threads).with_weight(weight)
    t2 = time.perf_counter()
    return Trained(final, weight, tried, {"choose_weight": t1 - t0, "refit": t2 - t1, **final.seconds})


def save(trained: Trained, cfg: Params, model_dir: Path, baseline_dir: Path) -> None:
    """models/model: the hybrid; models/baseline: popularity; both MLflow pyfunc models."""
    from mlcycle.stages import recommend_model

    meta = {"user_column": cfg.recommend.user_column, "item_column": cfg.recommend.item_column,
            "metric": cfg.recommend.metric, "users": len(trained.models.index.users),
            "items": len(trained.models.index.items)}
    recommend_model.save(trained.models, model_dir, "hybrid", cfg.recommend.k, meta)
    recommend_model.save(trained.models, baseline_dir, "popularity", cfg.recommend.k, meta)


def write_train_metrics(trained: Trained, path: Path, metric: str) -> None:
    best = trained.tried.loc[trained.tried["weight"] == trained.weight].iloc[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"task": "recommendation", "weight": trained.weight, f"valid_{metric}": float(best[metric]),
                                **{f"seconds_{k}": round(v, 3) for k, v in trained.seconds.items()}}, indent=2) + "\n")


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
    import numpy as np

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
