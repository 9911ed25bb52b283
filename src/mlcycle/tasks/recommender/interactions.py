"""Task `recommendation`, stages validate and features: the interactions table checked, split in time,
and turned into a user-item matrix and item-content vectors.

The table at `data.path` holds one interaction per row: `recommend.user_column`, `recommend.item_column`,
its rating or implicit signal (`data.target`) and its time (`data.time_column`, parsed by
`mlcycle.core.tables.load`), with optional item content on the same rows (`recommend.content_columns`).
Ids are kept as text everywhere (a served request sends them as JSON strings or numbers alike).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mlcycle.core.config import DataParams
from mlcycle.core.errors import DataError
from mlcycle.stages.validate import TaskFindings
from mlcycle.tasks.recommender.params import RecommendParams

USER, ITEM, RATING, TIME = "user", "item", "rating", "time"  # the standard column names after `standardise`
# a time before this is not a real interaction time (e.g. 0 seconds since 1970 as a missing value)
EARLIEST = pd.Timestamp("1990-01-01")


class Findings(TaskFindings):
    """What validate found: errors stop the pipeline, warnings are shown."""

    key = "interactions"

    def head(self) -> str:
        return (f"interactions: {self.rows:,} rows, {self.stats.get('users', 0):,} users, "
                f"{self.stats.get('items', 0):,} items")


def check(df: pd.DataFrame, data: DataParams, rec: RecommendParams, min_rows: int = 1,
          now: pd.Timestamp | None = None) -> Findings:
    """Check an interactions table: the columns present, ids never missing, ratings numeric and in
    [rating_min, rating_max], times parsed, not missing, not before 1990 and not in the future, and
    duplicate (user, item, time) interactions. Every problem is listed, each naming the column and what
    to do."""
    f = Findings(rows=len(df))
    user, item, rating, time = rec.user_column, rec.item_column, data.target, data.time_column
    missing = [c for c in (user, item, rating, time, *rec.content_columns) if c not in df.columns]
    if missing:
        f.errors.append(f"columns {missing} are named in params (recommend / data) but not in the table; "
                        f"it has {list(df.columns)[:20]}")
        return f
    if len(df) < min_rows:
        f.errors.append(f"{len(df):,} interactions, fewer than validate.min_rows {min_rows:,}")
    for col, key in ((user, "recommend.user_column"), (item, "recommend.item_column")):
        n = int(df[col].isna().sum())
        if n:
            f.errors.append(f"column '{col}' ({key}) has {n:,} missing ids; drop those rows or fill them")
    r = df[rating]
    if not pd.api.types.is_numeric_dtype(r) or pd.api.types.is_bool_dtype(r):
        f.errors.append(f"column '{rating}' (data.target) must hold numbers (ratings or an implicit "
                        f"signal such as 1 per click), got {r.dtype}")
    else:
        n = int(r.isna().sum())
        if n:
            f.errors.append(f"column '{rating}' (data.target) has {n:,} missing ratings; drop those rows or fill them")
        for bound, key, bad in ((rec.rating_min, "recommend.rating_min", r < (rec.rating_min or 0)),
                                (rec.rating_max, "recommend.rating_max", r > (rec.rating_max or 0))):
            if bound is not None and bad.any():
                shown = ", ".join(f"{v:g}" for v in r[bad].drop_duplicates().head(3))
                f.errors.append(f"column '{rating}': {int(bad.sum()):,} ratings outside {key} {bound:g} "
                                f"(e.g. {shown}); fix the data or the bound")
    t = df[time]
    if not pd.api.types.is_datetime64_any_dtype(t):
        f.errors.append(f"column '{time}' (data.time_column) is not a time ({t.dtype}); set data.time_unit "
                        f"(numbers since 1970) or data.time_format (text)")
    else:
        n = int(t.isna().sum())
        if n:
            f.errors.append(f"column '{time}' (data.time_column) has {n:,} missing times; drop those rows")
        naive = t.dt.tz_convert(None) if getattr(t.dt, "tz", None) is not None else t
        now = now if now is not None else pd.Timestamp.now()
        early, late = int((naive < EARLIEST).sum()), int((naive > now).sum())
        if early:
            f.errors.append(f"column '{time}': {early:,} times before {EARLIEST.date()} (e.g. {naive[naive < EARLIEST].iloc[0]}); "
                            "check data.time_unit (s, ms, ...)")
        if late:
            f.errors.append(f"column '{time}': {late:,} times in the future (e.g. {naive[naive > now].iloc[0]}); "
                            "check data.time_unit (s, ms, ...)")
    if not f.errors:
        dup = int(df.duplicated([user, item, time]).sum())
        if dup:
            f.warnings.append(f"{dup:,} duplicate interactions (same {user}, {item} and {time}); features keeps the first")
        again = int(df.duplicated([user, item]).sum()) - dup
        if again > 0:
            f.warnings.append(f"{again:,} repeat interactions of a user with an item at other times; features keeps the latest")
        users, items = df[user].nunique(), df[item].nunique()
        f.stats = {"rows": len(df), "users": int(users), "items": int(items),
                   "density": float(len(df) / max(users * items, 1)),
                   "rating_mean": float(r.mean()) if len(r) else float("nan")}
    return f


def standardise(df: pd.DataFrame, data: DataParams, rec: RecommendParams) -> pd.DataFrame:
    """user, item (text), rating (float), time, then the content columns; duplicates of (user, item)
    reduced to the latest interaction. Sorted by time; the input is not mutated."""
    out = pd.DataFrame({
        USER: df[rec.user_column].astype("str").to_numpy(),
        ITEM: df[rec.item_column].astype("str").to_numpy(),
        RATING: df[data.target].astype("float64").to_numpy(),
        TIME: df[data.time_column].to_numpy(),
    })
    for c in rec.content_columns:
        out[c] = df[c].to_numpy()
    out = out.sort_values([TIME, USER, ITEM], kind="stable")
    return out.drop_duplicates([USER, ITEM], keep="last").reset_index(drop=True)


def split(inter: pd.DataFrame, rec: RecommendParams) -> dict[str, pd.DataFrame]:
    """Time-based split into train, valid and test, never at random.

    `recommend.split: time`: `test` holds the latest `test_share` of interactions, `valid` the latest
    `valid_share` of the rest, `train` the earlier ones, cut at one time for everyone: every interaction
    of a later part is at or after every interaction of an earlier part (ties at a cut all go to the
    later part), so nothing from the future is learned from.
    `user_time`: the same cuts made within each user's own interactions: a user's held-out interactions
    all follow the user's training ones, but other users' later interactions are learned from (for
    data whose users rate in sessions, where one cut leaves mostly users never seen in its test)."""
    if inter.empty:
        raise DataError("features: no interactions to split")
    if rec.split == "user_time":
        return _split_per_user(inter, rec)
    t = inter[TIME]
    test_cut = time_cut(t, rec.test_share)
    rest = inter[t < test_cut]
    if rest.empty:
        raise DataError(f"features: every interaction is at the latest time {test_cut}; nothing is left to train on")
    valid_cut = time_cut(rest[TIME], rec.valid_share)
    parts = {"train": rest[rest[TIME] < valid_cut], "valid": rest[rest[TIME] >= valid_cut], "test": inter[t >= test_cut]}
    for name, part in parts.items():
        if part.empty:
            raise DataError(f"features: the {name} period is empty; raise recommend.test_share / valid_share "
                            "or add interactions spread over time")
    return {k: v.reset_index(drop=True) for k, v in parts.items()}


def time_cut(times: pd.Series, share: float):
    """The time from which the latest `share` of `times` lies (the cut of `split: time`; ties at the
    cut go to the later side)."""
    return times.quantile(1 - share, interpolation="higher")


def _split_per_user(inter: pd.DataFrame, rec: RecommendParams) -> dict[str, pd.DataFrame]:
    """Per user, in time order: the last test_share (rounded down) to test, the last valid_share of
    the rest to valid; ties in time stay together on the later side. A user with fewer than three
    interactions stays in train."""
    df = inter.sort_values([USER, TIME], kind="stable")
    n = df.groupby(USER, sort=False)[TIME].transform("size").to_numpy()
    # rank of each interaction's time within its user: ties share the highest position (so go later together)
    pos = df.groupby(USER, sort=False)[TIME].rank(method="max").to_numpy() - 1
    n_test = np.floor(n * rec.test_share).astype(int)
    n_valid = np.floor((n - n_test) * rec.valid_share).astype(int)
    small = n < 3
    test = (pos >= n - n_test) & ~small & (n_test > 0)
    valid = ~test & (pos >= n - n_test - n_valid) & ~small & (n_valid > 0)
    parts = {"train": df[~test & ~valid], "valid": df[valid], "test": df[test]}
    for name, part in parts.items():
        if part.empty:
            raise DataError(f"features: the {name} part is empty; raise recommend.test_share / valid_share "
                            "or add interactions")
    return {k: v.sort_values([TIME, USER, ITEM], kind="stable").reset_index(drop=True) for k, v in parts.items()}


def relevant(inter: pd.DataFrame, rec: RecommendParams) -> pd.DataFrame:
    """The interactions that count as positives: rating at or above `relevant_rating` (all when null)."""
    return inter if rec.relevant_rating is None else inter[inter[RATING] >= rec.relevant_rating]


@dataclass
class Index:
    """Positions of users and items in the matrices (ids as text)."""

    users: np.ndarray
    items: np.ndarray

    def __post_init__(self):
        self.user_pos = {u: i for i, u in enumerate(self.users)}
        self.item_pos = {t: i for i, t in enumerate(self.items)}

    @property
    def user_index(self) -> pd.Index:
        return pd.Index(self.users, dtype=object)

    @property
    def item_index(self) -> pd.Index:
        return pd.Index(self.items, dtype=object)

    @classmethod
    def of(cls, *frames: pd.DataFrame) -> Index:
        users = pd.unique(pd.concat([f[USER] for f in frames], ignore_index=True))
        items = pd.unique(pd.concat([f[ITEM] for f in frames], ignore_index=True))
        return cls(np.asarray(users, dtype=object), np.asarray(items, dtype=object))


def matrix(inter: pd.DataFrame, index: Index, weights: pd.Series | np.ndarray | None = None) -> sp.csr_matrix:
    """The users x items CSR matrix of `inter` (weights: one per row, default 1). Ids unknown to the
    index are left out."""
    u = index.user_index.get_indexer(inter[USER].to_numpy(dtype=object))
    i = index.item_index.get_indexer(inter[ITEM].to_numpy(dtype=object))
    keep = (u >= 0) & (i >= 0)
    w = np.ones(len(inter)) if weights is None else np.asarray(weights, dtype="float64")
    return sp.csr_matrix((w[keep].astype("float32"), (u[keep], i[keep])), shape=(len(index.users), len(index.items)))


def items_table(inter: pd.DataFrame, rec: RecommendParams) -> pd.DataFrame:
    """One row per item with its content columns (the latest row's values), indexed by item id."""
    return inter.drop_duplicates(ITEM, keep="last").set_index(ITEM)[list(rec.content_columns)]


def content_vectors(items: pd.DataFrame, order: np.ndarray, rec: RecommendParams):
    """Item-content vectors, one L2-normalised row per item of `order`: for each content column, lists
    (values joined by `list_separator`, e.g. genres) as one-hot values, other text as TF-IDF of its
    words (titles), numbers as a one-hot of their decade (years). Returns (CSR matrix, vocabulary)."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.preprocessing import normalize

    table = items.reindex(pd.Index(order, dtype=object))
    blocks, names = [], []
    for c in rec.content_columns:
        col = table[c]
        if pd.api.types.is_numeric_dtype(col):
            decade = (pd.to_numeric(col, errors="coerce") // 10 * 10).astype("Float64")
            text = decade.map(lambda v: "" if pd.isna(v) else f"d{int(v)}").astype("str")
            vec = CountVectorizer(token_pattern=r"\S+", binary=True)
        elif col.astype("str").str.contains(rec.list_separator, regex=False).any():
            sep = rec.list_separator
            text = col.fillna("").astype("str")
            vec = CountVectorizer(tokenizer=lambda s, sep=sep: [v.strip().lower() for v in s.split(sep) if v.strip()],
                                  token_pattern=None, lowercase=False, binary=True)
        else:
            text = col.fillna("").astype("str").str.replace(r"\(\d{4}\)", " ", regex=True)  # years in titles
            vec = TfidfVectorizer(min_df=2, stop_words="english")
        try:
            block = vec.fit_transform(text.tolist())
        except ValueError:  # an empty vocabulary (every value missing or too rare)
            continue
        blocks.append(block)
        names += [f"{c}:{v}" for v in vec.get_feature_names_out()]
    if not blocks:
        return sp.csr_matrix((len(order), 0), dtype="float32"), []
    return normalize(sp.hstack(blocks).tocsr().astype("float32")), names


def summary(parts: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per split part: interactions, users, items, time range, and the shares of its users and items
    never seen in training (cold start)."""
    train = parts["train"]
    seen_u, seen_i = set(train[USER]), set(train[ITEM])
    rows = []
    for name, p in parts.items():
        users, items = p[USER].unique(), p[ITEM].unique()
        rows.append({"part": name, "interactions": len(p), "users": len(users), "items": len(items),
                     "from": p[TIME].min(), "to": p[TIME].max(),
                     "new_user_share": float(np.mean([u not in seen_u for u in users])),
                     "new_item_share": float(np.mean([i not in seen_i for i in items]))})
    return pd.DataFrame(rows)
