"""Drift statistics on seeded synthetic data: same-distribution batches stay under the configured
false-alarm rate over many draws, and a planted shift is detected and named."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlcycle.monitoring import drift

CATS = ["a", "b", "c", "d", "e"]
P = [0.4, 0.25, 0.15, 0.12, 0.08]


def frame(n: int, rng: np.random.Generator, shift: dict | None = None) -> pd.DataFrame:
    shift = shift or {}
    x = rng.normal(10 + shift.get("x0", 0.0), 2, n)
    x[rng.random(n) < 0.03] = np.nan
    return pd.DataFrame({
        "x0": x,
        "x1": rng.exponential(3, n),
        "x2": rng.integers(0, 24, n).astype("int64"),
        "x3": rng.uniform(-1, 1, n),
        "c0": pd.array(rng.choice(CATS, n, p=shift.get("c0", P)), dtype="str"),
        "c1": pd.array(rng.choice(["x", "y"], n), dtype="str"),
    })


def test_identical_data_has_no_drift():
    df = frame(3000, np.random.default_rng(0))
    res = drift.compare(df, df.copy())
    assert res.drifted == []
    assert res.table["psi"].max() < 1e-9


@pytest.mark.parametrize("psi_threshold", [0.2, 1e-9])
def test_same_distribution_false_alarms_within_alpha(psi_threshold):
    """300 independent same-distribution batches. With the default effect size the verdict never
    alarms; with the effect size switched off (p-values alone decide) the Bonferroni limit still
    keeps the share of batches with any drifted column at most alpha (plus two binomial standard
    errors for the finite number of draws)."""
    alpha, draws = 0.05, 300
    rng = np.random.default_rng(12345)
    ref = frame(5000, rng)
    alarms = sum(bool(drift.compare(ref, frame(1500, rng), psi_threshold=psi_threshold, alpha=alpha).drifted)
                 for _ in range(draws))
    rate = alarms / draws
    assert rate <= alpha + 2 * math.sqrt(alpha * (1 - alpha) / draws), f"{alarms} false alarms in {draws} draws"
    if psi_threshold >= 0.1:
        assert alarms == 0


def test_p_values_alone_do_alarm_on_trivial_differences_of_large_samples():
    """Why the effect size decides: a 0.03 sd shift on 400,000 rows is 'significant' but tiny."""
    rng = np.random.default_rng(7)
    ref, cur = frame(400_000, rng), frame(400_000, rng, {"x0": 0.06})
    tiny = drift.compare(ref, cur, psi_threshold=1e-9)
    assert "x0" in tiny.drifted  # the test alone flags it
    assert drift.compare(ref, cur).drifted == []  # the PSI says the change is trivial


def test_planted_numeric_shift_is_detected_and_named():
    rng = np.random.default_rng(1)
    res = drift.compare(frame(5000, rng), frame(2000, rng, {"x0": 1.5}))  # 0.75 sd
    assert res.drifted == ["x0"]
    row = res.table.set_index("column").loc["x0"]
    assert row["psi"] >= 0.2 and row["p_value"] < 1e-6
    assert 0.6 < row["distance"] < 0.9  # Wasserstein distance in reference standard deviations


def test_planted_categorical_shift_and_new_category():
    rng = np.random.default_rng(2)
    cur = frame(2000, rng, {"c0": [0.1, 0.1, 0.1, 0.2, 0.5]})
    cur["c1"] = pd.array(np.where(rng.random(2000) < 0.3, "z", cur["c1"].astype(object)), dtype="str")
    res = drift.compare(frame(5000, rng), cur)
    assert sorted(res.drifted) == ["c0", "c1"]
    assert res.new_categories == {"c1": ["z"]}
    assert res.table.set_index("column").loc["c1", "new_share"] == pytest.approx(0.3, abs=0.04)


def test_null_share_change_counts_as_drift():
    rng = np.random.default_rng(3)
    cur = frame(2000, rng)
    cur.loc[cur.sample(frac=0.4, random_state=0).index, "x1"] = np.nan
    res = drift.compare(frame(5000, rng), cur)
    assert res.drifted == ["x1"]


def test_score_drift():
    rng = np.random.default_rng(4)
    a = rng.beta(2, 5, 5000)
    assert drift.score_drift(a, rng.beta(2, 5, 3000))["psi"] < 0.05
    assert drift.score_drift(a, rng.beta(4, 3, 3000))["psi"] > 0.5


def test_missing_column_is_named():
    df = frame(100, np.random.default_rng(0))
    with pytest.raises(KeyError, match="x3"):
        drift.compare(df, df.drop(columns=["x3"]), ["x0", "x3"])


def test_partition_by_partition_counts_every_row_as_in_memory():
    """`compare_partitions` on a dask DataFrame: PSI, null shares, means and new categories equal the
    in-memory `compare` (every row counted); the tests use a bounded sample and agree on the verdict."""
    import dask
    import dask.dataframe as dd

    rng = np.random.default_rng(0)
    n = 40_000
    ref = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(["a", "b", "c"], n), "s": rng.random(n)})
    cur = pd.DataFrame({"x": np.where(rng.random(n) < 0.05, np.nan, rng.normal(0.5, 1, n)),
                        "c": rng.choice(["a", "b", "d"], n, p=[0.5, 0.3, 0.2]), "s": rng.random(n) ** 2})
    whole = drift.compare(ref, cur, ["x", "c"], test_rows=5_000)
    with dask.config.set(scheduler="synchronous"):
        parted, scored = drift.compare_partitions(ref, dd.from_pandas(cur, npartitions=7), ["x", "c"],
                                                  test_rows=5_000, score_column="s")
    a, b = whole.table.set_index("column"), parted.table.set_index("column")
    for k in ("psi", "null_cur", "mean_cur", "new_share"):
        assert np.allclose(a[k].astype(float), b.loc[a.index, k].astype(float), equal_nan=True), k
    assert a.loc["c", "p_value"] == b.loc["c", "p_value"]  # categorical: counts only, exact
    assert b.loc["c", "new_categories"] == ["d"] and parted.current_rows == n
    assert list(a["drifted"]) == list(b.loc[a.index, "drifted"]) == [True, True]
    expected = drift.score_drift(ref["s"].to_numpy(), cur["s"].to_numpy(), test_rows=5_000)
    assert scored["psi"] == pytest.approx(expected["psi"]) and scored["mean_cur"] == pytest.approx(expected["mean_cur"])
    assert scored["p_value"] < 1e-6 and expected["p_value"] < 1e-6


def test_personal_values_among_new_categories_are_counted_not_listed_in_memory_and_by_partition():
    import dask
    import dask.dataframe as dd

    ref = pd.DataFrame({"c": ["a", "b"] * 500})
    cur = pd.DataFrame({"c": ["a", "ann@example.com", "bo@example.org", "4111 1111 1111 1111", "new"] * 200})
    want = ["<1 card number value(s) redacted>", "<2 e-mail value(s) redacted>", "new"]
    assert drift.compare(ref, cur).new_categories == {"c": want}
    with dask.config.set(scheduler="synchronous"):
        parted, _ = drift.compare_partitions(ref, dd.from_pandas(cur, npartitions=3), ["c"])
    assert parted.new_categories == {"c": want}
    assert drift.shown_values([f"v{i:02d}" for i in range(30)], most=20)[-1] == "v19"
