"""Task `recommendation`, stage train: four recommenders on the training interactions, and the weight
of the hybrid chosen on the validation period.

- popularity: the items with the most relevant training interactions (the baseline);
- cf: collaborative filtering, the `implicit` package's alternating least squares on the user-item
  matrix (confidence 1 + alpha x weight, each interaction weighing 1), or with `recommend.cf: ease`
  EASE, a closed-form item-item model (Steck 2019: B = I - P / diag(P), P = (X^T X + lambda I)^-1;
  a user's scores are the user's row of X times B);
- content: cosine similarity between a user's profile (the sum of the content vectors of the items the
  user found relevant, else of every item the user interacted with) and each item's content vector
  (genres, title words, year; `mlcycle.stages.interactions.content_vectors`);
- hybrid: w x cf + (1 - w) x content, each scaled to [0, 1] per user, w chosen among
  `recommend.weights` on the validation period by `recommend.metric`.

A user unknown to the model gets content-based recommendations from the items a request names as
already seen, else the popular items; every list says which model made it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mlcycle.core.config import RecommendParams
from mlcycle.stages import interactions as ia
from mlcycle.stages import ranking

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

    def scores(self, model: str, rows: np.ndarray) -> np.ndarray:
        """Scores (len(rows) x items) of `model` for the users at positions `rows`."""
        rows = np.asarray(rows, dtype=int)
        if model == "popularity":
            return np.tile(self.popularity.astype("float64"), (len(rows), 1))
        if model == "cf":
            if self.ease_weights is not None:
                return np.asarray(self.seen[rows] @ self.ease_weights, dtype="float64")
            return self.user_factors[rows] @ self.item_factors.T
        if model == "content":
            return np.asarray((self.profiles[rows] @ self.content.T).todense())
        if model == "hybrid":
            return blend(self.scores("cf", rows), self.scores("content", rows), self.weight)
        raise ValueError(f"unknown model '{model}'; known: {', '.join(MODELS)}")

    def with_weight(self, weight: float) -> Recommenders:
        from dataclasses import replace

        return replace(self, weight=float(weight))

    def recommend(self, model: str, users, k: int, exclude_seen: bool = True, batch: int = 512) -> dict:
        """user -> its top-k item ids under `model` (known users only; seen items excluded)."""
        pos = [self.index.user_pos[u] for u in users if u in self.index.user_pos]
        out = {}
        for start in range(0, len(pos), batch):
            rows = np.asarray(pos[start:start + batch])
            best = ranking.top_k(self.scores(model, rows), k, self.seen[rows] if exclude_seen else None)
            for r, items in zip(rows, best, strict=True):
                out[self.index.users[r]] = [self.index.items[i] for i in items if i >= 0]
        return out

    def profile_of(self, items) -> sp.csr_matrix:
        """A content profile (1 x vocabulary) from item ids (unknown ids ignored)."""
        pos = [self.index.item_pos[i] for i in items if i in self.index.item_pos]
        if not pos or self.content.shape[1] == 0:
            return sp.csr_matrix((1, self.content.shape[1]), dtype="float32")
        return _normalise(sp.csr_matrix(self.content[pos].sum(axis=0)))


def scale(s: np.ndarray) -> np.ndarray:
    """Each row scaled to [0, 1] (a constant row to 0)."""
    lo = s.min(axis=1, keepdims=True)
    span = s.max(axis=1, keepdims=True) - lo
    return np.divide(s - lo, span, out=np.zeros_like(s, dtype="float64"), where=span > 0)


def blend(cf: np.ndarray, content: np.ndarray, weight: float) -> np.ndarray:
    """The weighted hybrid: weight x cf + (1 - weight) x content, each scaled to [0, 1] per user."""
    return weight * scale(cf) + (1.0 - weight) * scale(content)


def _normalise(m: sp.csr_matrix) -> sp.csr_matrix:
    from sklearn.preprocessing import normalize

    return normalize(m.astype("float32")).tocsr()


def als(matrix: sp.csr_matrix, rec: RecommendParams, threads: int = 0):
    """(user factors, item factors) of implicit's ALS on a users x items matrix of weights."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):  # implicit runs its own threads; BLAS threads inside them oversubscribe
        model = AlternatingLeastSquares(factors=rec.factors, regularization=rec.regularization,
                                        iterations=rec.iterations, alpha=rec.alpha, random_state=rec.seed,
                                        num_threads=threads, calculate_training_loss=False)
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
        index: ia.Index | None = None, threads: int = 0) -> Recommenders:
    """Fit every component on the interactions `train` (standardised; see interactions.standardise).
    items: the item-content table (interactions.items_table) covering at least train's items; index:
    the users and items the matrices span (default: those of train)."""
    index = index or ia.Index.of(train)
    t0 = time.perf_counter()
    seen = ia.matrix(train, index)
    pos = ia.relevant(train, rec)
    positives = ia.matrix(pos, index)
    popularity = np.asarray(positives.sum(axis=0)).ravel() + 1e-6 * np.asarray(seen.sum(axis=0)).ravel()
    t1 = time.perf_counter()
    ease_weights = None
    if rec.cf == "ease":
        ease_weights = ease(seen, rec.ease_lambda)
        uf, itf = np.zeros((len(index.users), 0), "float32"), np.zeros((len(index.items), 0), "float32")
    else:
        uf, itf = als(seen, rec, threads)
    t2 = time.perf_counter()
    items = items if items is not None else ia.items_table(train, rec)
    content, vocab = ia.content_vectors(items, index.items, rec)
    liked = positives.copy()
    nothing = np.asarray(liked.sum(axis=1)).ravel() == 0
    if nothing.any():  # users with no relevant interaction: their profile is every item they interacted with
        liked = (liked + sp.diags(nothing.astype("float32")) @ seen).tocsr()
    profiles = _normalise(liked @ content) if content.shape[1] else sp.csr_matrix((len(index.users), 0))
    t3 = time.perf_counter()
    return Recommenders(index, seen, popularity, uf, itf, content, profiles, vocab,
                        seconds={"popularity": t1 - t0, "cf": t2 - t1, "content": t3 - t2}, ease_weights=ease_weights)


def with_cf(models: Recommenders, rec: RecommendParams, threads: int = 0) -> Recommenders:
    """The same fitted components with ALS refitted on the same interactions under `rec`'s
    factors, regularization, iterations and alpha (a hyperparameter search's candidate)."""
    from dataclasses import replace

    t0 = time.perf_counter()
    uf, itf = als(models.seen, rec, threads)
    return replace(models, user_factors=uf, item_factors=itf, seconds={**models.seconds, "cf": time.perf_counter() - t0})


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
        cf, content, seen = scale(models.scores("cf", rows)), scale(models.scores("content", rows)), models.seen[rows]
        for w in rec.weights:
            best = ranking.top_k(w * cf + (1.0 - w) * content, rec.k, seen)
            lists[w].update({u: [models.index.items[i] for i in b if i >= 0] for u, b in zip(chunk, best, strict=True)})
    judged = {u: relevant[u] for u in users}
    tried = pd.DataFrame([{"weight": w, **ranking.means(ranking.per_user(lists[w], judged, rec.k))} for w in rec.weights])
    best = int(np.nanargmax(tried[rec.metric].to_numpy())) if len(tried) else 0
    return float(tried["weight"].iloc[best]) if len(tried) else 0.5, tried


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
