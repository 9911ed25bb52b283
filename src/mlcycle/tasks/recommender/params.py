"""The recommender's params section, `recommend` (`Task.params_model`), and what the task needs of
the rest of params.yaml when it runs (`check`, the task's "check_params" hook)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from mlcycle.core.section import Section


class RecommendParams(Section):
    """Task `recommendation` (src/mlcycle/stages/interactions.py, recommenders.py, ranking.py): the table
    at data.path holds one interaction per row; data.target is its rating (or implicit signal) and
    data.time_column its time."""

    user_column: str  # who interacted
    item_column: str  # with what
    content_columns: list[str] = []  # item content on the same rows: text (title words), "|"-lists (genres) or numbers (year)
    list_separator: str = "|"  # separates the values of a list column such as genres
    rating_min: float | None = None  # ratings below stop validate (null: no bound)
    rating_max: float | None = None  # ratings above stop validate (null: no bound)
    relevant_rating: float | None = None  # an interaction counts as relevant (a positive) at or above this; null: every one
    # time: one cut in time for everyone (nothing after it is learned from); user_time: each user's latest
    # interactions (other users' later interactions are learned from; for data rated in sessions)
    split: Literal["time", "user_time"] = "time"
    test_share: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.1  # the latest share of interactions held out (by time)
    valid_share: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.1  # the latest share of the rest: chooses the hybrid weight
    k: Annotated[int, Field(ge=1, le=1000)] = 10  # length of the ranked lists the metrics judge
    factors: Annotated[int, Field(ge=1, le=1024)] = 64  # collaborative filtering (implicit ALS): latent factors
    regularization: Annotated[float, Field(ge=0.0)] = 0.05  # ALS L2 regularisation
    iterations: Annotated[int, Field(ge=1, le=500)] = 15  # ALS sweeps
    alpha: Annotated[float, Field(gt=0.0)] = 10.0  # ALS confidence: 1 + alpha x the interaction's weight
    # weight of each interaction ALS learns from: none (1 each) | bm25 | tfidf (implicit's bm25_weight /
    # tfidf_weight with items as rows: an item's interactions weigh less the more users it has, a
    # user's the more items the user has) | rating (the rating minus rating_centre: a loved item weighs
    # more than one merely watched; at or below the centre, barely a positive). ALS only
    weighting: Literal["none", "bm25", "tfidf", "rating"] = "none"
    bm25_k1: Annotated[float, Field(gt=0.0)] = 100.0  # weighting bm25: saturation K1 (large: the weight hardly saturates)
    bm25_b: Annotated[float, Field(ge=0.0, le=1.0)] = 0.8  # weighting bm25: how much an item's number of users lowers its weight (0: not at all)
    rating_centre: float | None = None  # weighting rating: subtracted from each rating; null: midway between rating_min and rating_max
    # CF scores (scaled to [0, 1] per user) divided by (the item's training users + 1) ^ this before
    # blending: popular items lose ground, the lists reach further into the catalogue; 0: none
    popularity_discount: Annotated[float, Field(ge=0.0, le=2.0)] = 0.0
    # ALS sweeps of the final fit on train + valid, started from the factors fitted on train (the hybrid
    # weight is chosen with those); null: a fresh fit of `iterations` sweeps
    refit_iterations: Annotated[int, Field(ge=1, le=500)] | None = None
    # the collaborative-filtering component: als (implicit's ALS) or ease (closed-form item-item model,
    # Steck 2019; an items x items matrix: memory grows with the square of the items)
    cf: Literal["als", "ease"] = "als"
    ease_lambda: Annotated[float, Field(gt=0.0)] = 200.0  # EASE's L2 regularisation (added to the Gram matrix's diagonal)
    weights: list[Annotated[float, Field(ge=0.0, le=1.0)]] = [0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]  # hybrid: weights of CF tried (the rest goes to content)
    metric: Literal["ndcg_at_k", "recall_at_k", "map_at_k", "hit_rate_at_k"] = "ndcg_at_k"  # chooses the weight, headlines evaluate
    # catalogue coverage: the hybrid's lists ranked by hybrid - penalty x popularity, the penalty chosen on
    # the validation period: the widest coverage whose `metric` stays within this relative loss of the best
    # penalty's (e.g. 0.1: 10%); null: no penalty
    coverage_tolerance: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None
    seed: int = 42

    def centre(self) -> float:
        """The rating subtracted under `weighting: rating`: rating_centre, else midway between the bounds."""
        if self.rating_centre is not None:
            return float(self.rating_centre)
        return (float(self.rating_min) + float(self.rating_max)) / 2.0

    @model_validator(mode="after")
    def _consistent(self) -> RecommendParams:
        if self.user_column == self.item_column:
            raise ValueError(f"user_column and item_column are both '{self.user_column}'")
        if self.rating_min is not None and self.rating_max is not None and self.rating_min > self.rating_max:
            raise ValueError(f"rating_min {self.rating_min} is above rating_max {self.rating_max}")
        if not self.weights:
            raise ValueError("weights: list at least one weight of CF, e.g. [0.0, 0.5, 1.0]")
        if self.cf == "ease" and self.weighting != "none":
            raise ValueError(f"weighting '{self.weighting}' applies to ALS only; with cf: ease set weighting: none")
        if self.weighting == "rating" and self.rating_centre is None and (self.rating_min is None or self.rating_max is None):
            raise ValueError("weighting: rating needs rating_centre, or rating_min and rating_max (the centre is midway)")
        return self


def check(params) -> None:
    """What the recommender needs of the whole params file (core/config.py calls it when the task runs)."""
    rec = params.recommend
    if rec is None:
        raise ValueError("data.task is recommendation: the `recommend` section must name user_column and "
                         "item_column (see examples/movielens/params.yaml)")
    if params.data.time_column is None:
        raise ValueError("data.task is recommendation: data.time_column must name the interactions' time "
                         "(the holdout is the latest interactions)")
    if rec.cf == "ease" and params.train.search.method != "none":
        raise ValueError("train.search searches ALS's hyperparameters; with recommend.cf: ease set "
                         "train.search.method: none (and choose recommend.ease_lambda)")
    cols = (rec.user_column, rec.item_column, params.data.target)
    if len(set(cols)) < 3:
        raise ValueError(f"recommend.user_column, recommend.item_column and data.target must differ, got {cols}")
