"""Catalogue coverage against accuracy of the MovieLens hybrid (docs/recommender.md, "Measured"):
for each setting of ALS's input weighting (`recommend.weighting`), ALS's hyperparameters and the
popularity discount of the CF scores (`recommend.popularity_discount`), on top of the example's
params: the hybrid weight chosen on the validation period, then NDCG@10, Recall@10 (and its lift
over popularity) and coverage of the hybrid on the validation period (the model fitted on train) and
on the test period (refitted on train + valid, as the train stage does), with CF alone's figures.
A setting is chosen on the validation period only; the test columns are read afterwards.

python bench/recommend_coverage.py            # every setting below (about 2 minutes)
python bench/recommend_coverage.py --only 0 7 # some of them, by position
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd
from common import ROOT

sys.path.insert(0, str(ROOT / "examples" / "movielens"))

import movielens  # noqa: E402

from mlcycle.cli import workspace  # noqa: E402
from mlcycle.core import config, tables  # noqa: E402
from mlcycle.tasks.recommender import recommenders  # noqa: E402
from mlcycle.tasks.recommender import stages as recommend  # noqa: E402

SETTINGS = [
    {},  # the example
    {"alpha": 3.0},
    {"weighting": "tfidf", "alpha": 1.0},
    {"weighting": "bm25"},  # implicit's K1 100, B 0.8, with the example's alpha 10
    {"weighting": "bm25", "alpha": 3.0},
    {"weighting": "bm25", "bm25_k1": 10.0, "alpha": 3.0, "regularization": 0.5},
    {"weighting": "bm25", "bm25_b": 1.0, "alpha": 2.0, "regularization": 0.5},
    {"weighting": "rating", "alpha": 2.0},
    {"popularity_discount": 0.1},
    {"weighting": "rating", "alpha": 2.0, "popularity_discount": 0.15},
]


def measure(parts: dict, items: pd.DataFrame, cfg) -> dict:
    rec = cfg.recommend
    first = recommenders.fit(parts["train"], rec, items)
    weight, _ = recommenders.choose_weight(first, parts["valid"], rec)
    valid = recommenders.evaluate(first.with_weight(weight), parts["valid"], rec, ("popularity", "cf", "hybrid"), 0)["results"]
    trained = recommend.train(parts, items, cfg)
    test = recommenders.evaluate(trained.models, parts["test"], rec, resamples=0)["results"]
    row = {"weight": weight}
    for period, res in (("valid", valid), ("test", test)):
        h, p = res["hybrid"], res["popularity"]
        row.update({f"{period}_ndcg": h["ndcg_at_k"], f"{period}_recall": h["recall_at_k"],
                    f"{period}_lift": h["recall_at_k"] / p["recall_at_k"] - 1, f"{period}_coverage": h["coverage"],
                    f"{period}_cf_ndcg": res["cf"]["ndcg_at_k"], f"{period}_cf_recall": res["cf"]["recall_at_k"]})
    row["test_content_ndcg"] = test["content"]["ndcg_at_k"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", type=int, nargs="*", help="positions in SETTINGS")
    args = ap.parse_args()
    raw = workspace.example_params(ROOT, "movielens")
    df = tables.parse_time(movielens.ingest({})["ratings"], "timestamp", None, "s")
    parts, items = recommend.features(config.parse(raw), ROOT, df)
    rows = []
    for i, setting in enumerate(SETTINGS):
        if args.only and i not in args.only:
            continue
        cfg = config.parse({**raw, "recommend": {**raw["recommend"], **setting}})
        rows.append({"#": i, "setting": ", ".join(f"{k}={v}" for k, v in setting.items()) or "the example",
                     **measure(parts, items, cfg)})
        print(pd.DataFrame(rows[-1:]).round(4).to_string(index=False), flush=True)
    print(pd.DataFrame(rows).round(4).to_string(index=False))


if __name__ == "__main__":
    main()
