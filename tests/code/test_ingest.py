import pandas as pd

from mlcycle import config, ingest


def tables():
    return {"main": pd.DataFrame({"a": range(100), "s": pd.Series(["x", None] * 50, dtype=object)}),
            "side": pd.DataFrame({"b": [1, 2]})}


def test_prepare_samples_main_table_only_and_keeps_order():
    src = tables()
    out = ingest.prepare(src, config.IngestParams(sample_frac=0.3, seed=1))
    assert len(out["main"]) == 30 and len(out["side"]) == 2
    assert out["main"]["a"].is_monotonic_increasing
    assert len(src["main"]) == 100  # input untouched
    assert out["main"]["s"].dtype == "str"


def test_write_and_summary(tmp_path):
    out = ingest.prepare(tables(), config.IngestParams())
    written = ingest.write(out, tmp_path / "raw")
    assert [p.name for p in written] == ["main.parquet", "side.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(written[0]), out["main"])
    assert ingest.summary(out)["rows"].tolist() == [100, 2]


def test_replicate_copies_rows_with_small_jitter():
    import numpy as np
    import pandas as pd

    from mlcycle import ingest

    df = pd.DataFrame({"delay": [1.0, np.nan, 30.0], "carrier": ["AA", "UA", "DL"], "n": [1, 2, 3]})
    out = ingest.replicate(df, 3, seed=0)
    assert len(out) == 9 and list(out.dtypes) == list(df.dtypes)
    assert out["carrier"].tolist() == df["carrier"].tolist() * 3
    assert out["n"].tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9]  # a unique integer id stays unique
    pd.testing.assert_frame_equal(out.iloc[:3], df)
    diff = (out["delay"].to_numpy().reshape(3, 3) - df["delay"].to_numpy())[1:]
    assert np.nanmax(np.abs(diff)) <= 2 and np.isnan(diff[:, 1]).all()
    assert out["delay"].min() >= 1.0 and out["delay"].max() <= 30.0  # within the original range: the schema still holds
