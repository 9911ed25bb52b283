"""Task `recommendation`, stage train: four recommenders on the training interactions, and the weight
of the hybrid chosen on the validation period.

- popularity: the items with the most relevant training interactions (the baseline);
- cf: collaborative filtering, the `implicit` package's alternating least squares on the user-item
  matrix (confidence 1 + alpha x weight, each interaction weighing 1, or, with `recommend.weighting`,
  its BM25 or TF-IDF weight or its rating less a centre: see `weighted`), or with `recommend.cf: ease`
  EASE, a closed-form item-item model (Steck 2019: B = I - P / diag(P), P = (X^T X + lambda I)^-1;
  a user's scores are the user's row of X times B);
- content: cosine similarity between a user's profile (the sum of the content vectors of the items the
  user found relevant, else of every item the user interacted with) and each item's content vector
  (genres, title words, year; `mlcycle.tasks.recommender.interactions.content_vectors`);
- hybrid: w x cf + (1 - w) x content, each scaled to [0, 1] per user, w chosen among
  `recommend.weights` on the validation period by `recommend.metric`; with
  `recommend.popularity_discount` (beta), the cf scores, scaled to [0, 1], are first divided by
  (the item's training users + 1) ^ beta.

A user unknown to the model gets content-based recommendations from the items a request names as
already seen, else the popular items; every list says which model made it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mlcycle.tasks.recommender import interactions as ia
from mlcycle.tasks.recommender import ranking
from mlcycle.tasks.recommender.params import RecommendParams

MODELS = ("popularity", "cf", "content", "hybrid")


@dataclass
class Recommenders:
    """The fitted components, on one index of users and items (ids as text)."""

    index: ia.Index
    seen: sp.csr_matrix  # users x items: the training interactions (excluded from a user's lists)
    popularity: np.ndarray  # items: relevant training interactions
    user_factors: np.ndarray  # users x factors (ALS)
    item_factors: np.ndarray  # items x factors (ALS)
    content: sp.csr_matrix  # items x vocabulary, rows L2-normalised
    profiles: sp.csr_matrix  # users x vocabulary, rows L2-normalised
    vocabulary: list[str]
    weight: float = 0.5  # of cf in the hybrid
    seconds: dict = field(default_factory=dict)
    ease_weights: np.ndarray | None = None  # items x items (recommend.cf: ease): cf scores are seen @ ease_weights
    penalty: float = 0.0  # the hybrid's popularity penalty (recommend.coverage_tolerance)
    discount: float = 0.0  # cf scores / (item's training users + 1) ^ discount (recommend.popularity_discount)
    cf_input: sp.csr_matrix | None = None  # the weighted interactions ALS learned from (recommend.weighting; None: seen)

    def scores(self, model: str, rows: np.ndarray) -> np.ndarray:
        """Scores (len(rows) x items) of `model` for the users at positions `rows`."""
        rows = np.asarray(rows, dtype=int)
        if model == "popularity":
            return np.tile(self.popularity.astype("float64"), (len(rows), 1))
        if model == "cf":
            if self.ease_weights is not None:
                cf = np.asarray(self.seen[rows] @ self.ease_weights, dtype="float64")
            else:
                cf = self.user_factors[rows] @ self.item_factors.T
            if self.discount:
                users = self.item_users.astype(cf.dtype)
                cf = scale(cf) / ((users + 1) ** cf.dtype.type(self.discount))[None, :]
            return cf
        if model == "content":  # items x vocabulary (sparse) times the users' profiles (dense): one pass
            if self.content.shape[1] == 0:
                return np.zeros((len(rows), self.content.shape[0]), dtype="float32")
            return np.ascontiguousarray((self.content @ self.profiles[rows].T.toarray()).T)
        if model == "hybrid":
            hybrid = blend(self.scores("cf", rows), self.scores("content", rows), self.weight)
            if self.penalty:
                hybrid -= self.penalty * self.popularity_scaled()[None, :]
            return hybrid
        raise ValueError(f"unknown model '{model}'; known: {', '.join(MODELS)}")

    def with_weight(self, weight: float, penalty: float | None = None) -> Recommenders:
        from dataclasses import replace

        return replace(self, weight=float(weight), penalty=self.penalty if penalty is None else float(penalty))

    @cached_property
    def item_users(self) -> np.ndarray:
        """Per item, its training users (the popularity discount's count): counted once, not on every
        scoring call."""
        return np.bincount(self.seen.indices, minlength=self.seen.shape[1])

    def popularity_scaled(self) -> np.ndarray:
        """Each item's popularity on a log scale, from 0 (never relevant) to 1 (the most popular)."""
        logs = np.log1p(np.maximum(self.popularity, 0.0)).astype("float32")
        top = logs.max() if len(logs) else 0.0
        return logs / top if top > 0 else np.zeros_like(logs)

    def recommend(self, model: str, users, k: int, exclude_seen: bool = True, batch: int = 512) -> dict:
        """user -> its top-k item ids under `model` (known users only; seen items excluded)."""
        pos = [self.index.user_pos[u] for u in users if u in self.index.user_pos]
        out = {}
        for start in range(0, len(pos), batch):
            rows = np.asarray(pos[start:start + batch])
            best = ranking.top_k(self.scores(model, rows), k, self.seen[rows] if exclude_seen else None)
            out.update(zip(self.index.users[rows], item_lists(self.index, best), strict=True))
        return out

    def profile_of(self, items) -> sp.csr_matrix:
        """A content profile (1 x vocabulary) from item ids (unknown ids ignored)."""
        pos = [self.index.item_pos[i] for i in items if i in self.index.item_pos]
        if not pos or self.content.shape[1] == 0:
            return sp.csr_matrix((1, self.content.shape[1]), dtype="float32")
        return _normalise(sp.csr_matrix(self.content[pos].sum(axis=0)))


def item_lists(index: ia.Index, best: np.ndarray) -> list[list]:
    """Rows of item positions (top_k's, -1 for an empty slot) as lists of item ids."""
    ids = index.items[np.maximum(best, 0)].tolist()
    if (best >= 0).all():
        return ids
    return [[i for i, b in zip(row, pos, strict=True) if b >= 0] for row, pos in zip(ids, best.tolist(), strict=True)]


def scale(s: np.ndarray) -> np.ndarray:
    """Each row scaled to [0, 1] (a constant row to 0), in float32 for float32 scores, else float64."""
    s = np.asarray(s)
    if s.dtype not in (np.float32, np.float64):
        s = s.astype(np.float64)
    lo = s.min(axis=1, keepdims=True)
    span = s.max(axis=1, keepdims=True) - lo
    span[~(span > 0)] = np.inf  # a constant row: (s - lo) / inf is 0
    out = s - lo  # one new array, divided in place
    out /= span
    return out


def blend(cf: np.ndarray, content: np.ndarray, weight: float) -> np.ndarray:
    """The weighted hybrid: weight x cf + (1 - weight) x content, each scaled to [0, 1] per user."""
    out = scale(cf)
    out *= weight
    other = scale(content)
    other *= 1.0 - weight
    out += other
    return out


def _normalise(m: sp.csr_matrix) -> sp.csr_matrix:
    from sklearn.preprocessing import normalize

    return normalize(m.astype("float32")).tocsr()


def weighted(matrix: sp.csr_matrix, rec: RecommendParams, ratings: sp.csr_matrix | None = None) -> sp.csr_matrix:
    """The users x items matrix ALS learns from under `recommend.weighting`: as is (`none`); weighted
    by implicit's `bm25_weight` (K1 `bm25_k1`, B `bm25_b`) or `tfidf_weight` applied with items as
    rows, as implicit's own examples do: an item's interactions weigh less the more users it has
    (BM25's length norm), a user's the more items the user has (the inverse document frequency); or
    (`rating`) each interaction's rating (`ratings`, the same users x items) less `rec.centre()`.
    Weights are kept above 0 so that every interaction stays a positive."""
    if rec.weighting == "none":
        return matrix
    if rec.weighting == "rating":
        if ratings is None:
            raise ValueError("recommend.weighting: rating needs the interactions' ratings (data.target)")
        out = sp.csr_matrix(ratings, dtype="float32", copy=True)
        out.data = np.maximum(out.data - np.float32(rec.centre()), np.float32(1e-3))
        return out
    from implicit.nearest_neighbours import bm25_weight, tfidf_weight

    items_users = sp.csr_matrix(matrix, dtype="float64").T.tocsr()
    w = bm25_weight(items_users, K1=rec.bm25_k1, B=rec.bm25_b) if rec.weighting == "bm25" else tfidf_weight(items_users)
    out = sp.csr_matrix(w.T, dtype="float32")
    out.data = np.maximum(out.data, np.float32(1e-3))
    return out


def als(matrix: sp.csr_matrix, rec: RecommendParams, threads: int = 0, start: tuple | None = None):
    """(user factors, item factors) of implicit's ALS on a users x items matrix of interaction
    weights (`weighted`).

    start: (user factors, item factors) of a fit on the first users and items of this matrix (a
    warm start: those rows start from them, the others as a fresh fit starts, and
    `recommend.refit_iterations` sweeps are run instead of `recommend.iterations`)."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    iterations = rec.iterations if start is None else (rec.refit_iterations or rec.iterations)
    with threadpool_limits(1, "blas"):  # implicit runs its own threads; BLAS threads inside them oversubscribe
        model = AlternatingLeastSquares(factors=rec.factors, regularization=rec.regularization,
                                        iterations=iterations, alpha=rec.alpha, random_state=rec.seed,
                                        num_threads=threads, calculate_training_loss=False)
        if start is not None:
            rng = np.random.default_rng(rec.seed)
            model.user_factors, model.item_factors = (
                np.vstack([f, rng.random((n - len(f), f.shape[1]), dtype="float32") * 0.01]).astype("float32")
                for f, n in zip(start, matrix.shape, strict=True))
        model.fit(matrix.astype("float32"), show_progress=False)
    return np.asarray(model.user_factors), np.asarray(model.item_factors)


def ease(matrix: sp.csr_matrix, lam: float) -> np.ndarray:
    """EASE (Steck 2019), the closed-form item-item model: with P = (X^T X + lam I)^-1,
    B = I - P / diag(P) (each column j divided by P_jj), so B's diagonal is 0. X: users x items."""
    x = matrix.astype("float64")
    gram = np.asarray((x.T @ x).todense())
    gram[np.diag_indices_from(gram)] += lam
    p = np.linalg.inv(gram)
    b = p / (-np.diag(p))[None, :]
    np.fill_diagonal(b, 0.0)
    return b.astype("float32")


def fit(train: pd.DataFrame, rec: RecommendParams, items: pd.DataFrame | None = None,
        index: ia.Index | None = None, threads: int = 0, warm: Recommenders | None = None,
        content: tuple | None = None) -> Recommenders:
    """Fit every component on the interactions `train` (standardised; see interactions.standardise).
    items: the item-content table (interactions.items_table) covering at least train's items; index:
    the users and items the matrices span (default: those of train). warm: components fitted on
    earlier interactions whose users and items come first in this index (train before train + valid):
    with `recommend.refit_iterations`, ALS starts from their factors (see `als`). content: (item-content
    vectors, vocabulary) already computed (interactions.content_vectors) for a list of items that starts
    with this index's items (the first rows are used)."""
    index = index or ia.Index.of(train)
    t0 = time.perf_counter()
    seen = ia.matrix(train, index)
    pos = ia.relevant(train, rec)
    positives = ia.matrix(pos, index)
    popularity = np.asarray(positives.sum(axis=0)).ravel() + 1e-6 * np.asarray(seen.sum(axis=0)).ravel()
    t1 = time.perf_counter()
    ease_weights, cf_input = None, None
    if rec.cf == "ease":
        ease_weights = ease(seen, rec.ease_lambda)
        uf, itf = np.zeros((len(index.users), 0), "float32"), np.zeros((len(index.items), 0), "float32")
    else:
        start = None
        if warm is not None and rec.refit_iterations and warm.user_factors.shape[1] == rec.factors and \
                _prefix(warm.index, index):
            start = (warm.user_factors, warm.item_factors)
        cf_input = weighted(seen, rec, ia.matrix(train, index, train[ia.RATING]) if rec.weighting == "rating" else None)
        uf, itf = als(cf_input, rec, threads, start)
    t2 = time.perf_counter()
    if content is not None:
        content, vocab = content[0][: len(index.items)], content[1]
    else:
        items = items if items is not None else ia.items_table(train, rec)
        content, vocab = ia.content_vectors(items, index.items, rec)
    liked = positives.copy()
    nothing = np.asarray(liked.sum(axis=1)).ravel() == 0
    if nothing.any():  # users with no relevant interaction: their profile is every item they interacted with
        liked = (liked + sp.diags(nothing.astype("float32")) @ seen).tocsr()
    profiles = _normalise(liked @ content) if content.shape[1] else sp.csr_matrix((len(index.users), 0))
    t3 = time.perf_counter()
    return Recommenders(index, seen, popularity, uf, itf, content, profiles, vocab,
                        seconds={"popularity": t1 - t0, "cf": t2 - t1, "content": t3 - t2}, ease_weights=ease_weights,
                        discount=rec.popularity_discount, cf_input=None if cf_input is seen else cf_input)


def with_cf(models: Recommenders, rec: RecommendParams, threads: int = 0) -> Recommenders:
    """The same fitted components with ALS refitted on the same interactions under `rec`'s
    factors, regularization, iterations and alpha (a hyperparameter search's candidate), from the
    same weighted interactions as the fit (`recommend.weighting`)."""
    from dataclasses import replace

    t0 = time.perf_counter()
    uf, itf = als(models.seen if models.cf_input is None else models.cf_input, rec, threads)
    return replace(models, user_factors=uf, item_factors=itf, seconds={**models.seconds, "cf": time.perf_counter() - t0})


def _prefix(first: ia.Index, then: ia.Index) -> bool:
    """Whether `then` lists `first`'s users and items first, in the same order."""
    return (len(first.users) <= len(then.users) and len(first.items) <= len(then.items)
            and (then.users[:len(first.users)] == first.users).all() and (then.items[:len(first.items)] == first.items).all())


def held_out(part: pd.DataFrame, rec: RecommendParams, seen: Recommenders | None = None) -> dict:
    """user -> the set of items the user found relevant in `part` (a later period), less the items the
    user had already interacted with in the fitted model's training data."""
    out: dict = {}
    for u, i in ia.relevant(part, rec)[[ia.USER, ia.ITEM]].itertuples(index=False):
        out.setdefault(u, set()).add(i)
    if seen is not None:
        for u, rel in out.items():
            r = seen.index.user_pos.get(u)
            if r is not None:
                row = seen.seen[r]
                rel -= {seen.index.items[j] for j in row.indices}
    return {u: rel for u, rel in out.items() if rel}


def recommend_all(models: Recommenders, name: str, users, k: int) -> dict:
    """Top-k lists for `users`: known users by `name`; users the model never saw by popularity (what a
    new user gets), so that every judged user has a list."""
    lists = models.recommend(name, users, k)
    cold = [u for u in users if u not in lists]
    if cold:
        popular = [models.index.items[i] for i in np.argsort(-models.popularity, kind="stable")[:k]]
        lists.update({u: popular for u in cold})
    return lists


def choose_weight(models: Recommenders, valid: pd.DataFrame, rec: RecommendParams,
                  batch: int = 512) -> tuple[float, pd.DataFrame]:
    """The hybrid weight of cf among `recommend.weights` with the best `recommend.metric` on `valid`
    (ties: the first listed). Returns (weight, one row per weight tried)."""
    relevant = held_out(valid, rec, models)
    users = [u for u in relevant if u in models.index.user_pos]
    lists: dict[float, dict] = {w: {} for w in rec.weights}
    for start in range(0, len(users), batch):  # each component scored and scaled once per batch of users
        chunk = users[start:start + batch]
        rows = np.array([models.index.user_pos[u] for u in chunk], dtype=int)
        cf, content = scale(models.scores("cf", rows)), scale(models.scores("content", rows))
        for w, best in zip(rec.weights, ranking.top_k_blends(cf, content, rec.weights, rec.k, models.seen[rows]), strict=True):
            lists[w].update(zip(chunk, item_lists(models.index, best), strict=True))
    judged = {u: relevant[u] for u in users}
    tried = pd.DataFrame([{"weight": w, **ranking.means(ranking.per_user(lists[w], judged, rec.k))} for w in rec.weights])
    best = int(np.nanargmax(tried[rec.metric].to_numpy())) if len(tried) else 0
    return float(tried["weight"].iloc[best]) if len(tried) else 0.5, tried


PENALTIES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4)  # popularity penalties tried (recommend.coverage_tolerance)


def choose_penalty(models: Recommenders, valid: pd.DataFrame, rec: RecommendParams, penalties=PENALTIES,
                   batch: int = 512) -> tuple[float, pd.DataFrame]:
    """The hybrid's popularity penalty, for catalogue coverage, chosen on `valid`: lists are ranked by
    hybrid - penalty x popularity (log scale, 0 to 1; `Recommenders.popularity_scaled`). Among the
    penalties whose `recommend.metric` stays within `recommend.coverage_tolerance` (a relative loss) of
    the best one's, the one whose lists cover most of the catalogue (ties: the smaller penalty).
    Returns (penalty, one row per penalty tried: its metrics and coverage on the validation period)."""
    relevant = held_out(valid, rec, models)
    users = [u for u in relevant if u in models.index.user_pos]
    plain = models.with_weight(models.weight, 0.0)
    pop = models.popularity_scaled()[None, :]
    lists: dict[float, dict] = {p: {} for p in penalties}
    for start in range(0, len(users), batch):
        chunk = users[start:start + batch]
        rows = np.array([models.index.user_pos[u] for u in chunk], dtype=int)
        hybrid, seen = plain.scores("hybrid", rows), models.seen[rows]
        for p in penalties:
            best = ranking.top_k(hybrid - p * pop, rec.k, seen)
            lists[p].update(zip(chunk, item_lists(models.index, best), strict=True))
    judged = {u: relevant[u] for u in users}
    tried = pd.DataFrame([{"penalty": p, **ranking.means(ranking.per_user(lists[p], judged, rec.k)),
                           "coverage": ranking.coverage(lists[p], len(models.index.items))} for p in penalties])
    if tried.empty or tried[rec.metric].isna().all():
        return 0.0, tried
    floor = tried[rec.metric].max() * (1.0 - (rec.coverage_tolerance or 0.0))
    ok = tried[tried[rec.metric] >= floor - 1e-12]
    best = ok.sort_values(["coverage", "penalty"], ascending=[False, True], kind="stable").iloc[0]
    return float(best["penalty"]), tried


def evaluate(models: Recommenders, part: pd.DataFrame, rec: RecommendParams, names=MODELS,
             resamples: int = 200) -> dict:
    """Every model's metrics on the later period `part`: {name: {metrics, coverage, novelty ...}},
    with per-user tables and bootstrap intervals (under "_tables" and "_intervals")."""
    relevant = held_out(part, rec, models)
    users = list(relevant)
    pop = dict(zip(models.index.items, np.asarray(models.seen.sum(axis=0)).ravel(), strict=True))
    results, tables, cis, lists_of = {}, {}, {}, {}
    for name in names:
        lists = recommend_all(models, name, users, rec.k)
        table = ranking.per_user(lists, relevant, rec.k)
        results[name] = {**ranking.means(table), "coverage": ranking.coverage(lists, len(models.index.items)),
                         **ranking.novelty(lists, pop, len(models.index.users))}
        tables[name], lists_of[name] = table, lists
        cis[name] = ranking.intervals(table, resamples, rec.seed)
    return {"results": results, "tables": tables, "intervals": cis, "lists": lists_of, "relevant": relevant,
            "popularity": pop}
