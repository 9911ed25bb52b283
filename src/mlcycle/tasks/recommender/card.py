"""The recommender's parts of its model card (`Task.card_sections`): `lifecycle/card.py` builds the
card of every task from its generic parts (the version, intended use, source data and DVC hashes,
parameters, gate decision, audit history) and these.

- data: the interactions per period, the users judged, the split, the columns;
- sections: every model and component on the test period with 95% intervals and the
  beyond-accuracy figures (catalogue coverage, novelty, mean popularity rank), the slices by user
  activity and item popularity, cold start (users and items never seen, and how they are served),
  and why a user gets the items of a list;
- limitations: what those figures say a user of the recommender should know.

Read from the evaluate stage's documents (`documents`: what it would write to reports/, given when
it did not write them) or its files, with the features and train stages' metrics and the served
model's metadata (models/model/MLmodel).
"""

from __future__ import annotations

from pathlib import Path

from mlcycle.core.workspace import model_metadata
from mlcycle.lifecycle.card import document, image, read_json
from mlcycle.tasks.recommender import ranking

# models/metrics/evaluate.json names the hybrid `model` and popularity `baseline` (stages.metrics_document)
NAMES = {"baseline": "popularity", "model": "hybrid"}
ORDER = ("popularity", "cf", "content", "hybrid")
SLICE_COLUMNS = ("slice", "group", "users", "relevant_items", *ranking.METRICS)
COUNTS = ("users", "relevant_items")  # whole numbers (floats in a slices table with gaps)


def served_meta(model_dir: Path) -> dict:
    """The mlcycle metadata saved with the model (models/model/MLmodel): the model a known user is
    served by (`model`), the CF weight, the popularity penalty, the CF method."""
    if not (Path(model_dir) / "MLmodel").exists():
        return {}
    return model_metadata(Path(model_dir))


def results_of(evaluated: dict) -> tuple[dict[str, dict], dict[str, dict]]:
    """(metrics by model name, intervals by model name) from reports/metrics/evaluate.json."""
    results = {}
    for key, value in evaluated.items():
        name = NAMES.get(key, key)
        if isinstance(value, dict) and "ndcg_at_k" in value:
            results[name] = value
    ordered = {n: results[n] for n in ORDER if n in results}
    ordered.update({n: m for n, m in results.items() if n not in ordered})
    cis = {NAMES.get(k, k): v for k, v in (evaluated.get("intervals") or {}).items() if k != "model"}
    cis.setdefault("hybrid", (evaluated.get("intervals") or {}).get("model", {}))
    return ordered, cis


def family(served: dict, cf: str) -> str:
    model = served.get("model")
    if not model:
        return "recommender"
    method = str(served.get("cf") or cf).upper()
    if model == "hybrid":
        penalty = served.get("popularity_penalty") or 0
        return (f"hybrid of {method} and content (CF weight {float(served.get('weight', 0.5)):g}"
                + (f", popularity penalty {float(penalty):g}" if penalty else "") + ")")
    return {"cf": f"collaborative filtering ({method})", "content": "content-based",
            "popularity": "popularity"}.get(model, str(model))


def limitations(results: dict[str, dict], slices: list[dict], cfg) -> list[str]:
    """What the evaluation says a user of the recommender should know, from its own figures."""
    k, metric = cfg.recommend.k, cfg.recommend.metric
    h, pop = results["hybrid"], results["popularity"]
    out = []
    if h.get("coverage", 1.0) < 0.2:
        out.append(f"the lists reach {h['coverage']:.1%} of the catalogue: they stay near the popular items "
                   "(recommend.coverage_tolerance, weighting: bm25 and popularity_discount trade accuracy for reach)")
    if h[metric] <= pop[metric]:
        out.append(f"{metric} is not above popularity's on the test period ({h[metric]:.4f} against {pop[metric]:.4f})")
    for part in ("cf", "content"):
        if part in results and results[part][metric] >= h[metric]:
            out.append(f"{part} alone scores {results[part][metric]:.4f} on {metric}, at least the hybrid's {h[metric]:.4f}")
    new = [s for s in slices if s.get("group") == "new" and s.get("users")]
    if new:
        out.append(f"{int(new[0]['users'])} judged users were new to training: they get content or popularity lists")
    out.append(f"judged on each user's latest {cfg.recommend.test_share:.0%} of interactions (split `{cfg.recommend.split}`), "
               f"top {k}; offline figures, not clicks: live quality comes from `mlcycle monitoring run --from-log` with feedback")
    return out


def _table(rows: list[dict], columns: list[str] | None = None) -> dict:
    """{columns, rows} of records: the given columns, else every key in first-seen order."""
    if columns is None:
        columns = []
        for r in rows:
            columns += [c for c in r if c not in columns]
    else:
        columns = [c for c in columns if any(c in r for r in rows)]

    def value(c, v):
        return int(v) if c in COUNTS and isinstance(v, float) and v == v else v

    return {"columns": columns, "rows": [[value(c, r.get(c)) for c in columns] for r in rows]}


def sections(paths, cfg, documents: dict | None = None) -> dict:
    """The recommender's card parts (see `mlcycle.lifecycle.card.task_record`). documents: the evaluate
    stage's `evaluate`, `explanations` and (optionally) `figures` (true: the stage saved its figures),
    given when it did not write its files; None: read reports/."""

    def doc(key: str, path: Path):
        return document(documents, key, path)

    rec = cfg.recommend
    k, metric = rec.k, rec.metric
    evaluated = doc("evaluate", paths.metrics("evaluate")) or {}
    results, cis = results_of(evaluated)
    slices = evaluated.get("slices") or (doc("fairness", paths.fairness) or {}).get("slices") or []
    examples = (doc("explanations", paths.explanations) or {}).get("examples") or []
    feats = read_json(paths.metrics("features")) or {}
    served = served_meta(paths.model)
    model = served.get("model", "hybrid")
    users = evaluated.get("users")

    out_sections = []
    if results:
        table = ranking.comparison(results, cis, k)
        table["model"] = [f"{n} (served)" if n == model else n for n in table["model"]]
        out_sections.append({
            "title": "Metrics on the test period (95% intervals over users)",
            "text": (f"Every model on the held-out interactions of {users:,} users" if users else "Every model on the test period")
                    + f", lists of {k}: `{model}` is what this version serves a known user, `cf` and `content` are the "
                    "hybrid's components, `popularity` the baseline. Intervals: bootstrap over users. coverage: the share of "
                    "the catalogue the lists reach; novelty: mean self-information of the recommended items; "
                    "mean_popularity_rank: 1 is the most popular item.",
            "table": {"columns": list(table.columns), "rows": table.astype(object).values.tolist()},
            "figure": (image(paths.figures("evaluate") / "models.png")
                       if documents is None or documents.get("figures") else None),
            "figure_file": "reports/figures/evaluate/models.png",
        })
    if slices:
        out_sections.append({
            "title": "Slices: user activity and item popularity",
            "text": ("The hybrid by user activity (new: no training interaction; heavy: the top fifth of training "
                     f"users by interactions; light: the rest) and item popularity (head: the top fifth of items; "
                     f"tail: the rest, items never seen included): recall@{k} of an item group is the share of its "
                     "relevant held-out items that the lists hold."),
            "table": _table(slices, list(SLICE_COLUMNS)),
        })
    cold = []
    if "test_new_user_share" in feats:
        cold.append(f"Of the test period's users, {feats['test_new_user_share']:.1%} have no interaction in the train "
                    f"period, and of its items {feats['test_new_item_share']:.1%} (the model is refitted on train + "
                    "validation, which covers some of them).")
    cold += [s for s in (f"{int(r['users'])} judged users were new to the model: {metric} "
                         f"{float(r.get(metric, float('nan'))):.4f} on their content or popularity lists."
                         for r in slices if r.get("group") == "new" and r.get("users"))]
    cold.append("Served: a user the model never saw gets a content list when the request's `exclude` names items it "
                "knows (they stand for the user's history), else the popularity list (source `content` / "
                "`popularity` in the answer); an item it never saw is in no list until a retrain adds it.")
    out_sections.append({"title": "Cold start", "bullets": cold})
    if examples:
        out_sections.append({
            "title": "Why these items",
            "text": "For one judged user, each recommended item with the user's training items most alike in content "
                    "and the content terms it shares with the user's profile.",
            "table": _table(examples),
        })

    data = {
        "interactions": (f"train {feats.get('train_interactions', 0):,}, validation {feats.get('valid_interactions', 0):,}, "
                         f"test {feats.get('test_interactions', 0):,}") if feats else "-",
        "in training": (f"{feats.get('train_users', 0):,} users, {feats.get('train_items', 0):,} items") if feats else "-",
        "split": f"`{rec.split}`: test share {rec.test_share:g}, validation share {rec.valid_share:g}",
        "users judged": (f"{users:,} with a held-out item rated {rec.relevant_rating:g} or more"
                         if rec.relevant_rating is not None else f"{users:,} with a held-out item") if users else "-",
        "columns": (f"user `{rec.user_column}`, item `{rec.item_column}`, rating `{cfg.data.target}`, "
                    f"time `{cfg.data.time_column}`; content {', '.join(f'`{c}`' for c in rec.content_columns) or 'none'}"),
        "served to a known user": model,
    }
    return {
        "family": family(served, rec.cf),
        "purpose": (f"Ranks {k} items for a user from the interactions of `{cfg.data.path}` (`POST /recommend`): "
                    "the user's past interactions and the items' content; a user never seen gets a content or "
                    "popularity list."),
        "data": data,
        "sections": out_sections,
        "limitations": limitations(results, slices, cfg) if {"hybrid", "popularity"} <= set(results) else [],
    }
