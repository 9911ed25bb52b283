"""Drift statistics: is the current data distributed like the reference data, column by column?

On hundreds of thousands of rows a p-value calls trivial differences significant, so decisions rest
on an **effect size** and the p-value only supports it. A column is *drifted* when both hold:

- its Population Stability Index (PSI) is at least `psi_threshold` (0.1 is a moderate shift, 0.2 a
  large one by the usual rule of thumb); and
- its test's p-value is below `alpha / number of columns` (Bonferroni), so on data of the same
  distribution the chance that any column is flagged is at most `alpha` (the false-alarm rate).

Numeric columns: PSI over `bins` quantile bins of the reference (nulls are a bin of their own), the
two-sample Kolmogorov-Smirnov test, and the Wasserstein distance divided by the reference's standard
deviation (a shift in units of spread). Categorical columns: PSI over the categories (values unseen
in the reference are one bin, and are listed as *new categories*, with values that look like
personal data (`core.personal`: e-mail addresses, phone and card numbers) replaced by a count such
as `<2 e-mail value(s) redacted>`: the list goes to the verdict, the report and MLflow), the
chi-square test of the two-by-K table, and the Jensen-Shannon distance. Everything comes from
numpy and scipy.stats.

Free-text columns (data.text_columns) are never compared value by value (each text is its own
value, and its words may be personal): the table task measures, per row, the characters, the words
and the share of words outside the training vocabulary (`core.text.text_stats`), and these numbers
drift as numeric columns do; `text_summary` adds the column's out-of-vocabulary rate and the share of
the training vocabulary still in use. No text is ever shown.

PSI and null shares use every row. The test and the distance of a numeric column use at most
`test_rows` rows drawn from each side (seeded): on more rows than that the p-value of any shift
large enough to matter is already far below every limit, and the sort they need dominates the time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlcycle.core import personal

EPS = 1e-4  # floor of a bin share, so an empty bin gives a large but finite PSI


@dataclass
class Drift:
    """The outcome of `compare`: one row per column, and the summary the verdict uses."""

    table: pd.DataFrame  # column, kind, psi, distance, p_value, drifted, new_categories, new_share, null_ref, null_cur
    alpha: float
    psi_threshold: float
    reference_rows: int
    current_rows: int
    notes: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> list[str]:
        return self.table.loc[self.table["drifted"], "column"].tolist()

    @property
    def share(self) -> float:
        return float(self.table["drifted"].mean()) if len(self.table) else 0.0

    @property
    def new_categories(self) -> dict[str, list]:
        t = self.table[self.table["new_categories"].map(len) > 0]
        return dict(zip(t["column"], t["new_categories"], strict=True))

    def to_dict(self) -> dict:
        rows = self.table.replace({np.nan: None}).to_dict(orient="records")
        return {"alpha": self.alpha, "psi_threshold": self.psi_threshold, "reference_rows": self.reference_rows,
                "current_rows": self.current_rows, "share_drifted": self.share, "drifted": self.drifted,
                "new_categories": self.new_categories, "columns": rows, "notes": self.notes}


def psi(ref_share: np.ndarray, cur_share: np.ndarray) -> float:
    """Population Stability Index of two distributions over the same bins."""
    r = np.clip(ref_share, EPS, None)
    c = np.clip(cur_share, EPS, None)
    r, c = r / r.sum(), c / c.sum()
    return float(np.sum((c - r) * np.log(c / r)))


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges: the reference's quantiles, duplicates removed (a column with few values gets fewer bins)."""
    if values.size == 0:
        return np.array([])
    qs = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(qs)


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else counts.astype(float)


def _sample(values: np.ndarray, n: int, seed: int) -> np.ndarray:
    if values.size <= n:
        return values
    return values[np.random.default_rng(seed).choice(values.size, n, replace=False)]


def numeric(ref: pd.Series, cur: pd.Series, bins: int = 10, test_rows: int = 200_000, seed: int = 0) -> dict:
    """PSI over the reference's quantile bins (nulls a bin of their own), null shares, means, the KS
    test and the normalised Wasserstein distance (on at most `test_rows` values from each side)."""
    r = pd.to_numeric(ref, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    c = pd.to_numeric(cur, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    edges = quantile_edges(r[~np.isnan(r)], bins)
    return numeric_from_summary(ref, edges, summary_of(c, edges, 1.0, None), c.size, test_rows, seed)


def summary_of(values: np.ndarray, edges: np.ndarray, fraction: float, rng) -> dict:
    """A numeric column's summary (see `summarise`): bin counts with nulls last, sum, count and a
    Bernoulli sample of `fraction` of its values (all of them at 1)."""
    nulls = np.isnan(values)
    vv = values[~nulls]
    # np.searchsorted on the edges bins every value; the last slot counts nulls
    counts = np.append(np.bincount(np.searchsorted(edges, vv, side="right"), minlength=len(edges) + 1), nulls.sum())
    take = vv if fraction >= 1 else vv[rng.random(vv.size) < fraction]
    return {"counts": counts, "sum": float(vv.sum()), "n": int(vv.size), "sample": take}


def ks_pvalue(rs: np.ndarray, cs: np.ndarray) -> float:
    """Two-sided two-sample Kolmogorov-Smirnov test of two sorted samples (asymptotic p-value)."""
    from scipy import stats

    x = np.concatenate([rs, cs])
    d = float(np.abs(np.searchsorted(rs, x, side="right") / rs.size
                     - np.searchsorted(cs, x, side="right") / cs.size).max())
    en = rs.size * cs.size / (rs.size + cs.size)
    return float(stats.kstwobign.sf(np.sqrt(en) * d))


def _two_by_k(rc: np.ndarray, cc: np.ndarray) -> float:
    from scipy import stats

    keep = (rc + cc) > 0
    table = np.vstack([rc[keep], cc[keep]])
    if table.shape[1] < 2:
        return 1.0
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def categorical(ref: pd.Series, cur: pd.Series, max_categories: int = 50) -> dict:
    c = cur.astype("object").where(cur.notna(), "(null)")
    return categorical_counts(ref, c.value_counts(), len(cur), int(cur.isna().sum()), max_categories)


def categorical_counts(ref: pd.Series, ccounts: pd.Series, n_cur: int, null_cur: int,
                       max_categories: int = 50) -> dict:
    """`categorical` with the current side given by its value counts (nulls counted as "(null)")."""
    from scipy.spatial.distance import jensenshannon

    r = ref.astype("object").where(ref.notna(), "(null)")
    rcounts = r.value_counts()
    new = [v for v in ccounts.index if v not in rcounts.index]
    new_share = float(ccounts[new].sum() / n_cur) if n_cur and new else 0.0
    # the reference's most frequent categories are bins; the rest of the reference and values new in
    # the current data share an "other" bin each
    kept = list(rcounts.index[:max_categories])
    rk = rcounts.reindex(kept).to_numpy(dtype=float)
    ck = ccounts.reindex(kept, fill_value=0).to_numpy(dtype=float)
    r_other = float(rcounts.iloc[max_categories:].sum())
    c_other = float(ccounts.drop(index=[*kept, *new], errors="ignore").sum())
    c_new = float(ccounts[new].sum()) if new else 0.0
    rc = np.concatenate([rk, [r_other, 0.0]])
    cc = np.concatenate([ck, [c_other, c_new]])
    out = {"kind": "categorical", "psi": psi(_shares(rc), _shares(cc)),
           "distance": float(jensenshannon(_shares(rc), _shares(cc), base=2)) if rc.sum() and cc.sum() else np.nan,
           "p_value": _two_by_k(rc, cc), "new_categories": shown_values(new), "new_share": new_share,
           "null_ref": float(ref.isna().mean()) if len(ref) else 0.0,
           "null_cur": null_cur / n_cur if n_cur else 0.0, "mean_ref": np.nan, "mean_cur": np.nan}
    return out


def personal_kind(value: str) -> str | None:
    """The kind of personal data `value` is or holds (an e-mail address inside longer text too)."""
    return personal.kind(value) or ("e-mail" if personal.EMAIL.search(value) else None)


def shown_values(values, most: int = 20) -> list[str]:
    """Values fit to show in a report: those that look personal replaced by one marker per kind
    with their count (first, by kind), then up to `most` of the others, sorted."""
    texts = sorted(map(str, values))
    kinds = [personal_kind(v) for v in texts]
    markers = [f"<{kinds.count(k)} {k} value(s) redacted>" for k in sorted({k for k in kinds if k})]
    return markers + [v for v, k in zip(texts, kinds, strict=True) if not k][:most]


def is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def compare(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str] | None = None, *,
            psi_threshold: float = 0.2, alpha: float = 0.01, bins: int = 10,
            max_categories: int = 50, test_rows: int = 200_000, seed: int = 0) -> Drift:
    """Column-by-column drift of `current` against `reference` (see the module docstring)."""
    cols = list(columns) if columns is not None else [c for c in reference.columns if c in current.columns]
    missing = [c for c in cols if c not in current.columns or c not in reference.columns]
    if missing:
        raise KeyError(f"columns {missing} are not in both tables; current has {sorted(map(str, current.columns))}")
    rows = []
    for i, col in enumerate(cols):
        if is_numeric(reference[col]) and (is_numeric(current[col]) or current[col].isna().all()):
            stats_ = numeric(reference[col], current[col], bins, test_rows, seed + 2 * i)
        else:
            stats_ = categorical(reference[col], current[col], max_categories)
        rows.append({"column": col, **stats_})
    table = pd.DataFrame(rows, columns=["column", "kind", "psi", "distance", "p_value", "new_categories",
                                        "new_share", "null_ref", "null_cur", "mean_ref", "mean_cur"])
    limit = alpha / max(len(cols), 1)
    table["drifted"] = (table["psi"] >= psi_threshold) & (table["p_value"].fillna(1.0) < limit)
    table = table.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)
    return Drift(table, alpha, psi_threshold, len(reference), len(current))


def score_drift(reference: np.ndarray, current: np.ndarray, bins: int = 10, test_rows: int = 200_000,
                seed: int = 0) -> dict:
    """PSI, KS p-value and normalised Wasserstein distance of predicted scores (or values)."""
    out = numeric(pd.Series(reference, dtype="float64"), pd.Series(current, dtype="float64"), bins, test_rows, seed)
    return {"psi": out["psi"], "p_value": out["p_value"], "distance": out["distance"],
            "mean_ref": out["mean_ref"], "mean_cur": out["mean_cur"]}


def text_summary(column: str, ref_words: pd.Series, cur_words: pd.Series, vocabulary: set[str]) -> dict:
    """A text column's words in reference and current rows (Series of word lists) against the
    training `vocabulary`: mean words a row, the out-of-vocabulary rate (share of all words not in the
    vocabulary) and the share of the vocabulary used by the rows. Counts only, never a word."""
    def side(words: pd.Series) -> dict:
        flat = [w for ws in words for w in ws]
        seen = {w for w in flat if w in vocabulary}
        return {"mean_words": float(np.mean([len(ws) for ws in words])) if len(words) else None,
                "oov_rate": (sum(w not in vocabulary for w in flat) / len(flat)) if flat else None,
                "vocabulary_share": len(seen) / len(vocabulary) if vocabulary else None}
    ref, cur = side(ref_words), side(cur_words)
    return {"column": column, "vocabulary_size": len(vocabulary), **{f"{k}_ref": v for k, v in ref.items()},
            **{f"{k}_cur": v for k, v in cur.items()}}


# ---------------------------------------------------------------- current data larger than memory

def plan(reference: pd.DataFrame, current_dtypes: pd.Series, columns: list[str], bins: int) -> dict:
    """How each column is summarised partition by partition: numeric ones by the reference's bin
    edges, the others by their value counts (the same choice `compare` makes)."""
    out = {}
    for col in columns:
        cur_numeric = pd.api.types.is_numeric_dtype(current_dtypes[col]) and not pd.api.types.is_bool_dtype(
            current_dtypes[col])
        if is_numeric(reference[col]) and cur_numeric:
            rv = pd.to_numeric(reference[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            out[col] = ("numeric", quantile_edges(rv[~np.isnan(rv)], bins))
        else:
            out[col] = ("categorical", None)
    return out


def summarise(part: pd.DataFrame, how: dict, fraction: float, seed: int) -> dict:
    """One partition's summary: per numeric column the bin counts (nulls last), sum, count and a
    Bernoulli sample of `fraction` of its values (seeded); per other column its value counts."""
    rng = np.random.default_rng(seed)
    out = {"rows": len(part)}
    for col, (kind, edges) in how.items():
        if kind == "numeric":
            v = pd.to_numeric(part[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            out[col] = summary_of(v, edges, fraction, rng)
        else:
            s = part[col].astype("object").where(part[col].notna(), "(null)")
            out[col] = {"counts": s.value_counts(), "nulls": int(part[col].isna().sum())}
    return out


def merge(a: dict, b: dict) -> dict:
    """Two partition summaries as one."""
    out = {"rows": a["rows"] + b["rows"]}
    for col, x in a.items():
        if col == "rows":
            continue
        y = b[col]
        if "sample" in x:
            out[col] = {"counts": x["counts"] + y["counts"], "sum": x["sum"] + y["sum"], "n": x["n"] + y["n"],
                        "sample": np.concatenate([x["sample"], y["sample"]])}
        else:
            out[col] = {"counts": x["counts"].add(y["counts"], fill_value=0), "nulls": x["nulls"] + y["nulls"]}
    return out


def numeric_from_summary(ref: pd.Series, edges: np.ndarray, s: dict, rows: int, test_rows: int, seed: int) -> dict:
    """`numeric`'s statistics with the current side given by its summary (`summary_of`): the counts,
    nulls and mean of every row; the test and the distance on at most `test_rows` sampled values."""
    r = pd.to_numeric(ref, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    rn = np.isnan(r)
    rv = r[~rn]
    rc = summary_of(r, edges, 1.0, None)["counts"]
    cc = s["counts"]
    c_null = int(cc[-1])
    out = {"kind": "numeric", "psi": psi(_shares(rc), _shares(cc)), "distance": np.nan, "p_value": np.nan,
           "new_categories": [], "new_share": 0.0, "null_ref": float(rn.mean()) if r.size else 0.0,
           "null_cur": c_null / rows if rows else 0.0, "mean_ref": float(rv.mean()) if rv.size else np.nan,
           "mean_cur": s["sum"] / s["n"] if s["n"] else np.nan}
    cv = s["sample"]
    if rv.size and cv.size:
        sd = rv.std()
        # equal-sized sorted samples: the Wasserstein distance is then the mean gap between them
        m = min(test_rows, rv.size, cv.size)
        rs, cs = np.sort(_sample(rv, m, seed)), np.sort(_sample(cv, m, seed + 1))
        w = float(np.abs(rs - cs).mean())
        out["distance"] = w / sd if sd > 0 else float(w > 0)
        out["p_value"] = ks_pvalue(rs, cs)
        if rn.any() or c_null:  # nulls matter too: combine with a test of the null shares
            out["p_value"] = min(out["p_value"], _two_by_k(np.array([rn.sum(), (~rn).sum()]),
                                                           np.array([c_null, rows - c_null])))
    return out


def compare_partitions(reference: pd.DataFrame, current, columns: list[str], *, psi_threshold: float = 0.2,
                       alpha: float = 0.01, bins: int = 10, max_categories: int = 50, test_rows: int = 200_000,
                       seed: int = 0, score_column: str | None = None,
                       rows: int | None = None) -> tuple[Drift, dict | None]:
    """`compare` for a current table larger than memory: `current` is a dask DataFrame, summarised
    partition by partition (memory holds one partition and the summaries: bin counts, value counts
    and a sample of at most about `test_rows` values per numeric column). PSI, null shares, means
    and new categories use every row, as in memory; the test and the distance of a numeric column
    use the sample, as `compare` does past `test_rows`. With `score_column`, also `score_drift` of
    that column against `reference[score_column]`. Runs on dask's current scheduler (a cluster's
    client when one is active). `rows`: the current row count when known (else counted first)."""
    import dask

    missing = [c for c in [*columns, *([score_column] if score_column else [])]
               if c not in current.columns or c not in reference.columns]
    if missing:
        raise KeyError(f"columns {missing} are not in both tables; current has {sorted(map(str, current.columns))}")
    wanted = [*columns, *([score_column] if score_column else [])]
    how = plan(reference, current.dtypes, wanted, bins)
    if score_column:
        how[score_column] = ("numeric", quantile_edges(
            reference[score_column].dropna().to_numpy(dtype=np.float64), bins))
    n_rows = int(current.map_partitions(len).sum().compute()) if rows is None else rows
    fraction = min(1.0, 1.5 * test_rows / n_rows) if n_rows else 1.0  # a margin: each sample is cut to test_rows
    parts = current[wanted].to_delayed()
    summaries = [dask.delayed(summarise)(p, how, fraction, seed + 7919 * (i + 1)) for i, p in enumerate(parts)]
    while len(summaries) > 1:  # a tree of merges: the driver never holds every partition's summary at once
        summaries = [dask.delayed(merge)(*summaries[i:i + 2]) if i + 1 < len(summaries) else summaries[i]
                     for i in range(0, len(summaries), 2)]
    total = summaries[0].compute() if summaries else {"rows": 0}
    rows = []
    for i, col in enumerate(columns):
        kind, edges = how[col]
        stats_ = (numeric_from_summary(reference[col], edges, total[col], n_rows, test_rows, seed + 2 * i)
                  if kind == "numeric" else categorical_counts(reference[col], total[col]["counts"], n_rows,
                                                               total[col]["nulls"], max_categories))
        rows.append({"column": col, **stats_})
    table = pd.DataFrame(rows, columns=["column", "kind", "psi", "distance", "p_value", "new_categories",
                                        "new_share", "null_ref", "null_cur", "mean_ref", "mean_cur"])
    limit = alpha / max(len(columns), 1)
    table["drifted"] = (table["psi"] >= psi_threshold) & (table["p_value"].fillna(1.0) < limit)
    table = table.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)
    drift = Drift(table, alpha, psi_threshold, len(reference), n_rows,
                  notes=[f"current data read partition by partition ({current.npartitions} partitions, {n_rows:,} rows)"])
    scored = None
    if score_column:
        out = numeric_from_summary(reference[score_column], how[score_column][1], total[score_column], n_rows,
                                   test_rows, seed)
        scored = {k: out[k] for k in ("psi", "p_value", "distance", "mean_ref", "mean_cur")}
    return drift, scored
