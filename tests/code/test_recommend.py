"""Task recommendation: params, interaction checks, the time split, ranking metrics against values
computed by hand, the recommenders and the hybrid weight choice, on tiny interaction tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlcycle.core import config
from mlcycle.core.errors import DataError, ParamsError
from mlcycle.tasks.recommender import interactions as ia
from mlcycle.tasks.recommender import ranking, recommenders

RAW = {
    "data": {"path": "r.csv", "target": "rating", "task": "recommendation", "time_column": "ts", "time_unit": "s"},
    "recommend": {"user_column": "u", "item_column": "i", "content_columns": ["genres", "title"],
                  "rating_min": 1.0, "rating_max": 5.0, "relevant_rating": 4.0, "factors": 4, "iterations": 3,
                  "test_share": 0.2, "valid_share": 0.2, "k": 3},
}


def params(**rec):
    raw = {**RAW, "recommend": {**RAW["recommend"], **rec}}
    return config.parse(raw)


def table(n_users=30, n_items=24, per_user=12, seed=0) -> pd.DataFrame:
    """Users in two taste groups (even items liked by even users), ratings over 100 days."""
    rng = np.random.default_rng(seed)
    genres = ["Action|Thriller", "Comedy|Romance"]
    rows = []
    for u in range(n_users):
        for i in rng.choice(n_items, per_user, replace=False):
            liked = (i % 2) == (u % 2)
            rows.append({"u": u, "i": int(i), "rating": float(rng.choice([4.0, 5.0]) if liked else rng.choice([1.0, 2.0])),
                         "ts": pd.Timestamp("2015-01-01") + pd.Timedelta(hours=int(rng.integers(0, 2400))),
                         "genres": genres[i % 2], "title": f"Movie {'blast' if i % 2 == 0 else 'love'} {i} (2001)"})
    return pd.DataFrame(rows)


def test_params_need_the_recommend_section_and_a_time_column():
    p = params()
    assert p.recommend.user_column == "u" and p.data.task == "recommendation"
    with pytest.raises(ParamsError, match="recommend"):
        config.parse({"data": RAW["data"]})
    with pytest.raises(ParamsError, match="time_column"):
        config.parse({**RAW, "data": {**RAW["data"], "time_column": None, "time_unit": None}})
    with pytest.raises(ParamsError, match=r"the `recommend` section is for task recommender \(data.task recommendation\), not tabular: set it to null"):
        config.parse({"data": {"path": "x.csv", "target": "y", "task": "regression"}, "recommend": RAW["recommend"]})
    with pytest.raises(ParamsError, match="rating_min"):
        params(rating_min=5.0, rating_max=1.0)


def test_check_names_each_problem():
    p = params()
    df = table()
    assert ia.check(df, p.data, p.recommend).errors == []
    bad = df.copy()
    bad.loc[0, "u"] = None
    bad.loc[1, "rating"] = 9.0
    bad.loc[2, "ts"] = pd.Timestamp("1970-01-01")
    f = ia.check(bad, p.data, p.recommend)
    text = "\n".join(f.errors)
    assert "'u' (recommend.user_column) has 1 missing" in text
    assert "outside recommend.rating_max 5" in text and "e.g. 9" in text
    assert "before 1990" in text and "data.time_unit" in text
    with pytest.raises(DataError, match="fails its checks"):
        f.enforce()
    dup = pd.concat([df, df.head(2)], ignore_index=True)
    assert any("2 duplicate interactions" in w for w in ia.check(dup, p.data, p.recommend).warnings)
    assert "not in the table" in ia.check(df.drop(columns="genres"), p.data, p.recommend).errors[0]


def test_split_never_leaks_the_future():
    p = params()
    inter = ia.standardise(table(), p.data, p.recommend)
    parts = ia.split(inter, p.recommend)
    assert parts["train"][ia.TIME].max() < parts["valid"][ia.TIME].min()
    assert parts["valid"][ia.TIME].max() < parts["test"][ia.TIME].min()
    assert sum(len(v) for v in parts.values()) == len(inter)
    assert abs(len(parts["test"]) / len(inter) - 0.2) < 0.02
    # ties at the cut all go to the later part
    t1, t2, t3 = pd.Timestamp("2015-01-01"), pd.Timestamp("2015-06-01"), pd.Timestamp("2016-01-01")
    n = len(inter)
    tied = inter.assign(time=[t1 if j < n * 0.5 else t2 if j < n * 0.75 else t3 for j in range(n)])
    cut = ia.split(tied, p.recommend)
    assert [set(cut[k][ia.TIME]) for k in ("train", "valid", "test")] == [{t1}, {t2}, {t3}]
    with pytest.raises(DataError, match="nothing is left to train on"):
        ia.split(inter.assign(time=pd.Timestamp("2016-01-01")), p.recommend)


def test_per_user_split_keeps_each_users_order():
    p = params(split="user_time")
    inter = ia.standardise(table(), p.data, p.recommend)
    parts = ia.split(inter, p.recommend)
    assert sum(len(v) for v in parts.values()) == len(inter)
    last = {k: v.groupby(ia.USER)[ia.TIME] for k, v in parts.items()}
    train_max, valid_min, valid_max, test_min = (last["train"].max(), last["valid"].min(), last["valid"].max(),
                                                 last["test"].min())
    assert (train_max.reindex(valid_min.index) < valid_min).all()
    assert (valid_max.reindex(test_min.index).dropna() < test_min.reindex(valid_max.index).dropna()).all()
    assert (train_max.reindex(test_min.index) < test_min).all()
    # every user keeps a history: the held-out users are all known to the model
    assert set(parts["test"][ia.USER]) <= set(parts["train"][ia.USER])


def test_ranking_metrics_by_hand():
    # relevant {a, b, c}; the list hits a at position 1 and c at position 3
    m = ranking.user_metrics(["a", "x", "c", "y"], {"a", "b", "c"}, 4)
    assert m["hit_rate_at_k"] == 1.0
    assert m["recall_at_k"] == pytest.approx(2 / 3)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg_at_k"] == pytest.approx((1 + 1 / math.log2(4)) / idcg)
    assert m["map_at_k"] == pytest.approx((1 / 1 + 2 / 3) / 3)
    miss = ranking.user_metrics(["x", "y"], {"a"}, 2)
    assert miss == {"ndcg_at_k": 0.0, "recall_at_k": 0.0, "map_at_k": 0.0, "hit_rate_at_k": 0.0}
    # k cuts the list: the hit at position 3 does not count at k=2
    assert ranking.user_metrics(["x", "y", "a"], {"a"}, 2)["recall_at_k"] == 0.0


def test_top_k_excludes_and_orders():
    import scipy.sparse as sp

    s = np.array([[0.1, 0.9, 0.5, 0.9], [1.0, 0.0, 0.0, 0.0]])
    assert ranking.top_k(s, 3).tolist() == [[1, 3, 2], [0, 1, 2]]
    ex = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 1, 1, 0]]))
    assert ranking.top_k(s, 3, ex).tolist() == [[3, 2, 0], [3, -1, -1]]


def test_top_k_breaks_ties_at_the_cut_by_position_as_a_stable_sort_does():
    """Scores with many ties at the k-th place (content similarity has them): the items kept are the
    lowest positions among the tied, whatever the partition picked."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    for trial in range(200):
        n, m, k = int(rng.integers(1, 60)), int(rng.integers(1, 6)), int(rng.integers(1, 15))
        s = rng.integers(0, 4, size=(m, n)).astype(np.float32 if trial % 2 else np.float64)
        ex = sp.random(m, n, density=0.3, random_state=trial, format="csr")
        masked = s.astype(np.float64)
        masked[ex.nonzero()] = -np.inf
        want = np.argsort(-masked, kind="stable", axis=1)[:, :min(k, n)]
        want = np.where(np.isneginf(np.take_along_axis(masked, want, axis=1)), -1, want)
        assert ranking.top_k(s, k, ex).tolist() == want.tolist(), trial


def test_top_k_blends_equals_ranking_each_blend_over_the_whole_catalogue():
    """The pooled ranking of several blends gives exactly top_k of each blend: with ties in either
    score, mixed float types, users with most items excluded, and pools too small to decide (then the
    whole catalogue is ranked)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(1)
    weights = [0.0, 0.3, 0.5, 0.7, 1.0]
    for trial in range(120):
        n, m, k, pool = int(rng.integers(1, 300)), int(rng.integers(1, 6)), int(rng.integers(1, 12)), int(rng.integers(1, 25))
        kind = trial % 4
        if kind == 0:  # integer-valued scores: many ties
            a, b = rng.integers(0, 5, (m, n)).astype(np.float32), rng.integers(0, 3, (m, n)).astype(np.float32)
        elif kind == 1:
            a, b = rng.random((m, n)).astype(np.float32), np.round(rng.random((m, n)), 1).astype(np.float32)
        elif kind == 2:  # float64 and float32
            a, b = rng.random((m, n)), rng.random((m, n)).astype(np.float32)
        else:
            a = rng.random((m, n)).astype(np.float32)
            b = a.copy()
        ex = sp.random(m, n, density=[0.0, 0.3, 0.95][trial % 3], random_state=trial, format="csr")
        dtype = np.result_type(a.dtype, b.dtype)
        want = [ranking.top_k(a.astype(dtype) * dtype.type(w) + b.astype(dtype) * dtype.type(1 - w), k, ex) for w in weights]
        got = ranking.top_k_blends(a, b, weights, k, ex, pool=pool)
        assert [g.tolist() for g in got] == [w.tolist() for w in want], trial


def test_coverage_novelty_intervals_and_slices():
    lists = {"u1": ["a", "b"], "u2": ["a", "c"]}
    assert ranking.coverage(lists, 10) == pytest.approx(0.3)
    nov = ranking.novelty(lists, {"a": 4, "b": 1, "c": 2}, 4)
    assert nov["novelty"] == pytest.approx(np.mean([0, 2, 0, 1]))
    assert nov["mean_popularity_rank"] == pytest.approx(np.mean([1, 3, 1, 2]))
    t = ranking.per_user(lists, {"u1": {"a"}, "u2": {"d"}}, 2)
    ci = ranking.intervals(t, 200, 0)
    assert 0.0 <= ci["hit_rate_at_k"][0] <= 0.5 <= ci["hit_rate_at_k"][1] <= 1.0
    groups = ranking.activity_groups(["u1", "u2", "u3"], {"u1": 50, "u2": 2, "x": 1, "y": 3, "z": 4}, 0.2)
    assert groups == {"u1": "heavy", "u2": "light", "u3": "new"}
    heads = ranking.popularity_groups({"a": 10, "b": 5, "c": 1, "d": 0, "e": 0}, 0.2)
    assert heads["a"] == "head" and heads["b"] == "tail"
    sl = ranking.slices(t, lists, {"u1": {"a"}, "u2": {"d"}}, {"u1": "heavy", "u2": "light"}, heads, 2)
    item = sl[sl["slice"] == "item popularity"].set_index("group")
    assert item.loc["head", "recall_at_k"] == 1.0 and item.loc["tail", "recall_at_k"] == 0.0


def test_hybrid_weight_is_chosen_on_validation_and_beats_popularity():
    p = params(weights=[0.0, 0.5, 1.0], k=5)
    inter = ia.standardise(table(n_users=60, per_user=14), p.data, p.recommend)
    parts = ia.split(inter, p.recommend)
    models = recommenders.fit(parts["train"], p.recommend, ia.items_table(inter, p.recommend),
                              ia.Index.of(parts["train"]), threads=1)
    weight, tried = recommenders.choose_weight(models, parts["valid"], p.recommend)
    assert list(tried["weight"]) == [0.0, 0.5, 1.0]
    assert weight == tried.loc[tried["ndcg_at_k"].idxmax(), "weight"]
    ev = recommenders.evaluate(models.with_weight(weight), parts["test"], p.recommend, resamples=50)
    res = ev["results"]
    # the tastes are all in the genres: content must beat popularity, which ignores them
    assert res["content"]["ndcg_at_k"] > res["popularity"]["ndcg_at_k"]
    assert 0 < res["hybrid"]["coverage"] <= 1
    # scaled blending: weight 1 ranks as cf, weight 0 as content
    rows = np.arange(3)
    assert (np.argsort(-models.with_weight(1.0).scores("hybrid", rows))[:, :3]
            == np.argsort(-models.scores("cf", rows))[:, :3]).all()
    assert (np.argsort(-models.with_weight(0.0).scores("hybrid", rows), kind="stable")[:, :3]
            == np.argsort(-recommenders.scale(models.scores("content", rows)), kind="stable")[:, :3]).all()


def test_blend_scales_each_user():
    cf = np.array([[0.0, 10.0, 5.0]])
    content = np.array([[1.0, 0.0, 0.5]])
    assert recommenders.blend(cf, content, 0.5).tolist() == [[0.5, 0.5, 0.5]]
    assert recommenders.blend(cf, content, 0.8)[0].argmax() == 1
    # a constant row scales to 0, integers to float64, float32 stays float32 and the input is untouched
    ints = np.array([[3, 3, 3], [0, 2, 4]])
    assert recommenders.scale(ints).tolist() == [[0.0, 0.0, 0.0], [0.0, 0.5, 1.0]]
    assert recommenders.scale(ints).dtype == np.float64 and ints.tolist() == [[3, 3, 3], [0, 2, 4]]
    f32 = np.array([[1.0, 3.0]], dtype=np.float32)
    assert recommenders.scale(f32).dtype == np.float32 and f32.tolist() == [[1.0, 3.0]]


def test_pyfunc_model_recommends_known_and_unknown_users(tmp_path):
    import mlflow.pyfunc

    from mlcycle.tasks.recommender import model as recommend_model
    from mlcycle.tasks.recommender import stages as recommend

    p = params(k=4, weights=[0.5])
    inter = ia.standardise(table(n_users=20), p.data, p.recommend)
    parts = ia.split(inter, p.recommend)
    trained = recommend.train(parts, ia.items_table(inter, p.recommend), p, threads=1)
    recommend.save(trained, p, tmp_path / "model", tmp_path / "baseline")
    model = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    assert [c.name for c in model.metadata.get_input_schema().inputs] == ["user", "k", "exclude"]
    known = trained.models.index.users[0]
    seen = {trained.models.index.items[j] for j in trained.models.seen[0].indices}
    out = model.predict(pd.DataFrame({"user": [known, "nobody", "nobody"], "k": [4, 3, 2],
                                      "exclude": ["", "", "0,2"]}))
    mine = out[out["user"] == known]
    assert list(mine["rank"]) == [1, 2, 3, 4] and set(mine["source"]) == {"hybrid"}
    assert not set(mine["item"]) & seen  # seen items are never recommended again
    assert mine["score"].is_monotonic_decreasing
    new = out[out["user"] == "nobody"]
    assert list(new["source"]) == ["popularity"] * 3 + ["content"] * 2
    assert not {"0", "2"} & set(new["item"].iloc[3:])
    # a content-based list for a user who saw even (Action) items: more even items than odd ones
    assert sum(int(i) % 2 == 0 for i in new["item"].iloc[3:]) == 2
    base, meta = recommend_model.load(tmp_path / "baseline")
    assert meta["model"] == "popularity" and base.model == "popularity"
    with pytest.raises(Exception, match="k must be at least 1"):
        model.predict(pd.DataFrame({"user": [known], "k": [0], "exclude": [""]}))


def test_weighting_is_implicits_bm25_and_tfidf_with_items_as_rows():
    from implicit.nearest_neighbours import bm25_weight, tfidf_weight

    p = params()
    inter = ia.standardise(table(n_users=20), p.data, p.recommend)
    seen = ia.matrix(inter, ia.Index.of(inter))
    assert recommenders.weighted(seen, p.recommend) is seen  # none: as is
    bm25 = params(weighting="bm25", bm25_k1=1.2, bm25_b=0.75).recommend
    got = recommenders.weighted(seen, bm25)
    want = bm25_weight(seen.T.tocsr().astype("float64"), K1=1.2, B=0.75).T.toarray()
    assert got.shape == seen.shape and (got.toarray() > 0).sum() == seen.nnz  # every interaction stays a positive
    assert np.allclose(got.toarray()[seen.toarray() > 0], np.maximum(want[seen.toarray() > 0], 1e-3), rtol=1e-5)
    # an item with more users weighs less for the same user (BM25's length norm over items)
    counts = np.asarray(seen.sum(axis=0)).ravel()
    row = seen[0].indices
    lo, hi = row[np.argmin(counts[row])], row[np.argmax(counts[row])]
    assert counts[hi] > counts[lo] and got[0, hi] < got[0, lo]
    tfidf = recommenders.weighted(seen, params(weighting="tfidf").recommend)
    assert np.allclose(tfidf.toarray(), tfidf_weight(seen.T.tocsr().astype("float64")).T.toarray(), rtol=1e-5)
    # rating: the rating less the centre (midway between rating_min 1 and rating_max 5), kept above 0
    ratings = ia.matrix(inter, ia.Index.of(inter), inter[ia.RATING])
    by_rating = recommenders.weighted(seen, params(weighting="rating").recommend, ratings)
    assert np.allclose(by_rating.toarray()[seen.toarray() > 0], np.maximum(ratings.toarray()[seen.toarray() > 0] - 3.0, 1e-3))
    assert np.allclose(recommenders.weighted(seen, params(weighting="rating", rating_centre=0.5).recommend, ratings).data,
                       ratings.data - 0.5)
    with pytest.raises(ValueError, match="ratings"):
        recommenders.weighted(seen, params(weighting="rating").recommend)
    with pytest.raises(ParamsError, match="weighting"):
        params(cf="ease", weighting="bm25")
    with pytest.raises(ParamsError, match="rating_centre"):
        params(weighting="rating", rating_min=None)


def test_weighting_reaches_the_refits_and_the_saved_model(tmp_path):
    from mlcycle.tasks.recommender import model as recommend_model
    from mlcycle.tasks.recommender import stages as recommend

    p = params(k=4, weights=[0.5], weighting="bm25", bm25_k1=10.0, bm25_b=0.9, refit_iterations=2)
    inter = ia.standardise(table(n_users=20), p.data, p.recommend)
    parts = ia.split(inter, p.recommend)
    items = ia.items_table(inter, p.recommend)
    trained = recommend.train(parts, items, p, threads=1)
    plain = recommend.train(parts, items, params(k=4, weights=[0.5], refit_iterations=2), threads=1)
    assert not np.allclose(trained.models.item_factors, plain.models.item_factors)
    assert plain.models.cf_input is None
    m = trained.models
    both = pd.concat([parts["train"], parts["valid"]], ignore_index=True)
    assert np.allclose(m.cf_input.toarray(), recommenders.weighted(ia.matrix(both, m.index), p.recommend).toarray())
    # the search's refit of ALS learns from the same weighted interactions as the fit
    again = recommenders.with_cf(m, p.recommend, threads=1)
    assert np.allclose(again.item_factors, recommenders.als(m.cf_input, p.recommend, threads=1)[1])
    assert not np.allclose(again.item_factors, recommenders.als(m.seen, p.recommend, threads=1)[1])
    # rating: the ratings reach ALS (a 5 weighs more than a 4)
    r = params(k=4, weights=[0.5], weighting="rating", refit_iterations=2).recommend
    rated = recommenders.fit(both, r, items, threads=1)
    assert np.allclose(rated.cf_input.toarray(),
                       recommenders.weighted(rated.seen, r, ia.matrix(both, rated.index, both[ia.RATING])).toarray())
    assert set(np.round(rated.cf_input.data.astype(float), 3)) == {0.001, 1.0, 2.0}  # ratings 1-2 (barely), 4, 5 less the centre 3
    recommend.save(trained, p, tmp_path / "model", tmp_path / "baseline")
    model, meta = recommend_model.load(tmp_path / "model")
    assert (meta["weighting"], meta["bm25_k1"], meta["bm25_b"]) == ("bm25", 10.0, 0.9)
    assert np.allclose(model.models.item_factors, m.item_factors)
    assert config.parse({**RAW, "recommend": {**RAW["recommend"], "weighting": meta["weighting"]}}).recommend.weighting == "bm25"


def test_popularity_discount_lowers_popular_items_and_is_served(tmp_path):
    from mlcycle.tasks.recommender import model as recommend_model
    from mlcycle.tasks.recommender import stages as recommend

    p = params(k=4, weights=[0.5])
    inter = ia.standardise(table(n_users=20), p.data, p.recommend)
    parts = ia.split(inter, p.recommend)
    items = ia.items_table(inter, p.recommend)
    plain = recommenders.fit(parts["train"], p.recommend, items, threads=1)
    beta = 0.5
    disc = recommenders.fit(parts["train"], params(popularity_discount=beta).recommend, items, threads=1)
    assert disc.discount == beta and plain.discount == 0.0
    rows = np.arange(5)
    users = np.asarray(plain.seen.getnnz(axis=0))
    want = recommenders.scale(plain.scores("cf", rows)) / (users + 1.0)[None, :] ** beta
    assert np.allclose(disc.scores("cf", rows), want, rtol=1e-5)
    # the hybrid blends the discounted cf scores
    assert np.allclose(disc.with_weight(0.5).scores("hybrid", rows),
                       recommenders.blend(want, plain.scores("content", rows), 0.5), rtol=1e-5, atol=1e-6)
    # the served model scores as the fitted one
    q = params(k=4, weights=[0.5], popularity_discount=beta)
    trained = recommend.train(parts, items, q, threads=1)
    recommend.save(trained, q, tmp_path / "model", tmp_path / "baseline")
    model, meta = recommend_model.load(tmp_path / "model")
    assert meta["popularity_discount"] == beta and model.models.discount == beta
    user = trained.models.index.users[0]
    out = model.predict(None, pd.DataFrame({"user": [user], "k": [4]}))
    expected = trained.models.recommend("hybrid", [user], 4)[user]
    assert list(out["item"]) == expected


def test_a_recommender_saved_before_the_task_package_still_loads(tmp_path):
    """Versions registered before the recommender became `mlcycle.tasks.recommender` pickled its
    classes under `mlcycle.stages.*` (mlcycle.MOVED maps them): such a model loads and recommends."""
    import pickle

    import mlflow.pyfunc

    from mlcycle.tasks.recommender import stages as recommend

    p = params(k=3, weights=[0.5])
    inter = ia.standardise(table(n_users=12), p.data, p.recommend)
    trained = recommend.train(ia.split(inter, p.recommend), ia.items_table(inter, p.recommend), p, threads=1)
    recommend.save(trained, p, tmp_path / "model", tmp_path / "baseline")
    pkl = next((tmp_path / "model").rglob("python_model.pkl"))
    with pkl.open("rb") as f:
        obj = pickle.load(f)
    text = pickle.dumps(obj, protocol=0)
    new_names = {b"mlcycle.tasks.recommender.model\n": b"mlcycle.stages.recommend_model\n",
                 b"mlcycle.tasks.recommender.recommenders\n": b"mlcycle.stages.recommenders\n",
                 b"mlcycle.tasks.recommender.interactions\n": b"mlcycle.stages.interactions\n",
                 b"mlcycle.tasks.recommender.ranking\n": b"mlcycle.stages.ranking\n"}
    for new, old in new_names.items():
        text = text.replace(new, old)
    assert b"mlcycle.stages.recommend_model\n" in text and b"mlcycle.tasks." not in text
    pkl.write_bytes(text)
    model = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    out = model.predict(pd.DataFrame({"user": [trained.models.index.users[0]], "k": [3], "exclude": [""]}))
    assert list(out["rank"]) == [1, 2, 3]
