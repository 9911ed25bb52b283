"""Task `recommendation`, stage evaluate: ranking metrics of top-k lists against the items each user
interacted with (relevantly) in the held-out period, with bootstrap intervals over users, catalogue
coverage, novelty, and slices by user activity and item popularity.

Definitions (k the list length, rel the user's relevant held-out items, hits the positions 1..k whose
item is in rel):
- hit rate@k: 1 if any of the k items is relevant, else 0;
- recall@k: |hits| / |rel|;
- NDCG@k: sum over hits of 1/log2(position + 1), divided by the same sum for the ideal list
  (min(|rel|, k) hits at the top);
- MAP@k: the mean over hits of precision at that position (hits so far / position), divided by
  min(|rel|, k) (average precision at k), averaged over users.
Users without a relevant held-out item are not judged. Every metric is a mean over users.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlcycle.core import stats

METRICS = stats.RANKING_METRICS
LABELS = {"ndcg_at_k": "NDCG@{k}", "recall_at_k": "Recall@{k}", "map_at_k": "MAP@{k}", "hit_rate_at_k": "hit rate@{k}"}


def top_k(scores: np.ndarray, k: int, exclude=None) -> np.ndarray:
    """Per row of `scores` (users x items) the positions of the k highest scores, best first, the
    items of `exclude` (a users x items sparse matrix, non-zero: excluded) left out; -1 fills a list
    when fewer than k items are left. Ties are broken by the lower item position (as a stable sort of
    the scores, highest first, would order them), so lists are deterministic."""
    s = np.array(scores, dtype=np.float32 if np.asarray(scores).dtype == np.float32 else np.float64, copy=True)
    if exclude is not None:
        s[exclude.nonzero()] = -np.inf
    n = s.shape[1]
    k = min(k, n)
    if k == 0:
        return np.zeros((len(s), 0), dtype=np.intp)
    part = np.argpartition(s, n - k, axis=1)[:, n - k:] if k < n else np.tile(np.arange(n), (len(s), 1))
    rows = np.arange(len(s))[:, None]
    # where the k-th score is tied with items left out, the partition chose among the tied at random:
    # those rows take the lowest positions among them instead
    kth = s[rows, part].min(axis=1)
    chosen_at_kth = (s[rows, part] == kth[:, None]).sum(axis=1)
    for r in np.flatnonzero((s == kth[:, None]).sum(axis=1) > chosen_at_kth):
        above = np.flatnonzero(s[r] > kth[r])
        tied = np.flatnonzero(s[r] == kth[r])[: k - len(above)]
        part[r] = np.concatenate([above, tied])
    order = np.lexsort((part, -s[rows, part]), axis=1)
    best = part[rows, order]
    # excluded items never fill a list, even when a user has fewer than k others
    return np.where(np.isneginf(s[rows, best]), -1, best)


def top_k_blends(a: np.ndarray, b: np.ndarray, weights, k: int, exclude=None, pool: int = 100) -> list[np.ndarray]:
    """For each w of `weights`, top_k(w x a + (1 - w) x b, k, exclude) with a and b in their common
    float type: the same lists (ties included) without ranking the whole catalogue once per weight.
    Per user only the `pool` best items by `a` and the `pool` best by `b` are blended: an item outside
    both has a <= the pool-th best a and b <= the pool-th best b, so (rounding being monotone) its blend
    is at most the blend of those two bounds. A user whose k-th best blend in the pool is not above that
    bound is ranked over the whole catalogue. a, b: users x items (e.g. scores scaled to [0, 1])."""
    dtype = np.result_type(np.asarray(a).dtype, np.asarray(b).dtype, np.float32)
    a, b = np.asarray(a, dtype=dtype), np.asarray(b, dtype=dtype)
    n = a.shape[1]
    k = min(k, n)
    pool = max(pool, k)

    def blend(x, y, w):
        return x * dtype.type(w) + y * dtype.type(1.0 - w)

    if k == 0 or 2 * pool >= n:
        return [top_k(blend(a, b, w), k, exclude) for w in weights]
    rows = np.arange(len(a))[:, None]
    excluded = np.zeros(a.shape, dtype=bool)
    if exclude is not None:
        excluded[exclude.nonzero()] = True
    pools, cuts = [], []
    for x in (a, b):  # each score's pool best items (excluded ones last) and its pool-th best value
        masked = np.where(excluded, dtype.type(-np.inf), x)
        best = np.argpartition(masked, n - pool, axis=1)[:, n - pool:]
        pools.append(best)
        cuts.append(masked[rows, best].min(axis=1))
    pooled = np.sort(np.concatenate(pools, axis=1), axis=1)  # ascending positions: ties stay by position
    left_out = excluded[rows, pooled]
    left_out[:, 1:] |= pooled[:, 1:] == pooled[:, :-1]  # an item in both pools counts once
    pooled_a, pooled_b = a[rows, pooled], b[rows, pooled]
    # a bound at -inf: every item outside that pool is excluded, so the pools hold every candidate
    closed = np.isneginf(cuts[0]) | np.isneginf(cuts[1])
    cut_a, cut_b = (np.where(closed, dtype.type(0), c) for c in cuts)
    out = []
    for w in weights:
        s = blend(pooled_a, pooled_b, w)
        s[left_out] = -np.inf
        local = top_k(s, k)
        best = np.where(local >= 0, pooled[rows, np.maximum(local, 0)], -1)
        kth = np.where(local[:, -1] >= 0, s[rows[:, 0], np.maximum(local[:, -1], 0)], -np.inf)
        redo = np.flatnonzero(~closed & ~(kth > blend(cut_a, cut_b, w)))
        if len(redo):
            best[redo] = top_k(blend(a[redo], b[redo], w), k, exclude[redo] if exclude is not None else None)
        out.append(best)
    return out


def user_metrics(recommended: list, relevant: set, k: int) -> dict[str, float]:
    """The four metrics of one user's list (positions or ids; -1 marks an empty slot)."""
    recs = [r for r in list(recommended)[:k]]
    hits = [i for i, r in enumerate(recs) if r in relevant]
    n = len(relevant)
    if n == 0:
        raise ValueError("a user without relevant items is not judged")
    dcg = sum(1.0 / np.log2(i + 2) for i in hits)
    idcg = sum(1.0 / np.log2(i + 2) for i in range(min(n, k)))
    ap = sum((j + 1) / (i + 1) for j, i in enumerate(hits)) / min(n, k)
    return {"ndcg_at_k": dcg / idcg, "recall_at_k": len(hits) / n, "map_at_k": ap,
            "hit_rate_at_k": 1.0 if hits else 0.0}


def per_user(lists: dict, relevant: dict, k: int) -> pd.DataFrame:
    """One row per user with relevant items: the four metrics and the number of relevant items.
    lists: user -> recommended items best first; relevant: user -> set of relevant items."""
    rows = []
    for u, rel in relevant.items():
        if not rel:
            continue
        m = user_metrics(lists.get(u, []), rel, k)
        rows.append({"user": u, **m, "relevant": len(rel)})
    return pd.DataFrame(rows, columns=["user", *METRICS, "relevant"])


def means(table: pd.DataFrame) -> dict[str, float]:
    return {m: float(table[m].mean()) if len(table) else float("nan") for m in METRICS}


def intervals(table: pd.DataFrame, resamples: int, seed: int, level: float = 0.95) -> dict[str, list[float]]:
    """Percentile bootstrap intervals of each metric's mean, resampling users with replacement."""
    if resamples <= 0 or len(table) < 2:
        return {}
    values = table[list(METRICS)].to_numpy(dtype="float64")
    lo, hi = stats.bootstrap_mean_intervals(values, resamples, np.random.default_rng(seed), level)
    return {m: [float(lo[j]), float(hi[j])] for j, m in enumerate(METRICS)}


def coverage(lists: dict, catalogue: int) -> float:
    """Share of the catalogue's items that appear in at least one list."""
    shown = {i for items in lists.values() for i in items if i != -1}
    return len(shown) / catalogue if catalogue else float("nan")


def novelty(lists: dict, popularity: dict, users: int) -> dict[str, float]:
    """Mean self-information -log2(share of users who interacted with the item) of the recommended
    items (higher: less obvious), and their mean popularity rank (1: the most popular item)."""
    counts = pd.Series(popularity, dtype="float64")
    rank = counts.rank(ascending=False, method="min")
    items = [i for lst in lists.values() for i in lst if i != -1]
    if not items:
        return {"novelty": float("nan"), "mean_popularity_rank": float("nan")}
    c = counts.reindex(items).fillna(0.0).to_numpy()
    info = -np.log2(np.maximum(c, 1.0) / max(users, 1))
    return {"novelty": float(info.mean()),
            "mean_popularity_rank": float(rank.reindex(items).fillna(len(counts) + 1).mean())}


def activity_groups(users, train_counts: dict, heavy_share: float = 0.2) -> dict:
    """user -> new (no training interaction), light or heavy (the top `heavy_share` of training users
    by number of interactions)."""
    counts = pd.Series(train_counts, dtype="float64")
    cut = counts.quantile(1 - heavy_share) if len(counts) else 0.0
    out = {}
    for u in users:
        n = train_counts.get(u, 0)
        out[u] = "new" if n == 0 else ("heavy" if n >= cut else "light")
    return out


def popularity_groups(popularity: dict, head_share: float = 0.2) -> dict:
    """item -> head (the top `head_share` of items by training interactions) or tail (the rest; items
    never seen in training count as tail)."""
    counts = pd.Series(popularity, dtype="float64").sort_values(ascending=False, kind="stable")
    n_head = int(np.ceil(len(counts) * head_share))
    return {i: ("head" if j < n_head else "tail") for j, i in enumerate(counts.index)}


def slices(table: pd.DataFrame, lists: dict, relevant: dict, user_group: dict, item_group: dict, k: int) -> pd.DataFrame:
    """The fairness view: the metrics per user activity group (new, light, heavy), and recall@k per item
    popularity group (head, tail): of the relevant held-out items in the group, the share in the lists."""
    rows = []
    g = table.assign(group=table["user"].map(user_group))
    for name, part in g.groupby("group", sort=True):
        rows.append({"slice": "user activity", "group": name, "users": len(part), **means(part)})
    for name in ("head", "tail"):
        hit = total = 0
        for u, rel in relevant.items():
            mine = {i for i in rel if item_group.get(i, "tail") == name}
            if mine:
                total += len(mine)
                hit += len(mine & set(list(lists.get(u, []))[:k]))
        rows.append({"slice": "item popularity", "group": name, "relevant_items": total,
                     "recall_at_k": hit / total if total else float("nan")})
    return pd.DataFrame(rows)


def comparison(results: dict[str, dict], cis: dict[str, dict], k: int) -> pd.DataFrame:
    """Models as rows, metrics as columns, each with its 95% interval as text."""
    rows = []
    for name, m in results.items():
        row = {"model": name}
        for key in METRICS:
            ci = cis.get(name, {}).get(key)
            label = LABELS[key].format(k=k)
            row[label] = f"{m[key]:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")
        for key in ("coverage", "novelty", "mean_popularity_rank"):
            if key in m:
                row[key] = round(m[key], 4)
        rows.append(row)
    return pd.DataFrame(rows)
