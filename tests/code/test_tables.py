import pandas as pd
import pytest

from mlcycle.core import tables
from mlcycle.core.errors import DataError


def test_reads_csv_and_parquet(tmp_path):
    df = pd.DataFrame({"a": [1, 2], "t": ["2013-01-01T10:00:00Z", "2013-01-02T11:00:00Z"]})
    df.to_csv(tmp_path / "d.csv", index=False)
    df.to_parquet(tmp_path / "d.parquet")
    for name in ("d.csv", "d.parquet"):
        out = tables.parse_time(tables.read_table(tmp_path / name), "t")
        assert out["t"].dt.hour.tolist() == [10, 11] and out["t"].dt.tz is None


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        (b"", "is an empty file"),
        (b"a,b\n\xff\xfe,1\n", "is not UTF-8 text \\(byte 0xff on line 2"),
        (b'a,b\n"1,2\n', "cannot be read as csv"),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path, content, message):
    p = tmp_path / "d.csv"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(DataError, match=message):
        tables.read_table(p)


def test_corrupt_parquet_and_unknown_suffix(tmp_path):
    (tmp_path / "d.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="cannot be read as parquet"):
        tables.read_table(tmp_path / "d.parquet")
    (tmp_path / "d.xlsx").write_bytes(b"x")
    with pytest.raises(DataError, match="set data.format"):
        tables.read_table(tmp_path / "d.xlsx")


def test_unparseable_time_column():
    with pytest.raises(DataError, match="data.time_column 't'"):
        tables.parse_time(pd.DataFrame({"t": ["yesterday", "2013-01-01"]}), "t")


def test_personal_columns_are_dropped_or_hashed():
    df = pd.DataFrame({"email": ["a@x.org", None, "a@x.org"], "nid": ["123-45", "678-90", "111"], "v": [1, 2, 3]})
    dropped = tables.mask_personal(df, ["email", "nid", "absent"], "drop")
    assert list(dropped.columns) == ["v"] and "email" in df.columns  # input not mutated
    hashed = tables.mask_personal(df, ["email"], "hash", salt="s")
    h = hashed["email"]
    assert h[0] == h[2] and len(h[0]) == 16 and pd.isna(h[1]) and "a@x.org" not in h.tolist()
    assert tables.mask_personal(df, ["email"], "hash", salt="t")["email"][0] != h[0]  # the salt matters


def test_load_masks_personal_columns(tmp_path, monkeypatch):
    pd.DataFrame({"email": ["a@x.org"], "y": [1]}).to_csv(tmp_path / "d.csv", index=False)
    from tests.code.frames import data_params

    data = data_params(path="d.csv", pii_columns=["email"], pii_mode="hash")
    monkeypatch.delenv(tables.SALT_ENV, raising=False)
    with pytest.raises(DataError, match=r"pii_mode is hash but \$MLCYCLE_PII_SALT is not set"):
        tables.load(data, tmp_path)  # no silent empty salt
    monkeypatch.setenv(tables.SALT_ENV, "secret")
    out = tables.load(data, tmp_path)
    assert out["email"][0] != "a@x.org" and len(out["email"][0]) == 16


def test_a_csv_cut_off_mid_row_is_refused(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,c\n1,2,3\n4,5")
    with pytest.raises(DataError, match="looks truncated: its last line ends without a newline after 2 of 3"):
        tables.read_table(p)
    p.write_text("a,b,c\n1,2,3\n4,5,6")  # no final newline but complete: fine
    assert len(tables.read_table(p)) == 2


def test_a_truncated_parquet_file_says_so(tmp_path):
    p = tmp_path / "d.parquet"
    pd.DataFrame({"a": range(100)}).to_parquet(p)
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(DataError, match="cannot be read as parquet: .*export it again"):
        tables.read_table(p)


def _batches(tmp_path, frames: list[pd.DataFrame]) -> None:
    import json

    (tmp_path / "data").mkdir(exist_ok=True)
    frames[0].to_csv(tmp_path / "d.csv", index=False)
    with open(tmp_path / "data" / "batches.jsonl", "w") as f:
        for i, fr in enumerate(frames[1:], start=1):
            fr.to_parquet(tmp_path / f"b{i}.parquet")
            f.write(json.dumps({"file": f"b{i}.parquet"}) + "\n")


def test_load_appends_recorded_batches_and_cuts_the_window_by_months(tmp_path):
    from tests.code.frames import data_params

    month = [pd.DataFrame({"t": pd.date_range(f"2013-{m:02d}-01", periods=3, freq="D"), "y": [m] * 3}) for m in (1, 2, 3, 4)]
    _batches(tmp_path, [pd.concat(month[:2]), month[2], month[3]])
    p = data_params(path="d.csv", time_column="t")
    assert tables.load(p, tmp_path)["y"].tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert tables.load(p, tmp_path, window=2)["y"].tolist() == [3, 3, 3, 4, 4, 4]
    assert tables.load(p, tmp_path, path="b1.parquet")["y"].tolist() == [3, 3, 3]  # a batch alone


def test_load_without_time_column_windows_by_batch_and_names_a_column_mismatch(tmp_path):
    from tests.code.frames import data_params

    _batches(tmp_path, [pd.DataFrame({"y": [0, 0]}), pd.DataFrame({"y": [1]}), pd.DataFrame({"y": [2]})])
    p = data_params(path="d.csv")
    assert tables.load(p, tmp_path, window=2)["y"].tolist() == [1, 2]
    pd.DataFrame({"y": [3], "extra": [1]}).to_parquet(tmp_path / "b2.parquet")
    with pytest.raises(DataError, match=r"batch 2 has different columns from d.csv: extra \['extra'\]"):
        tables.load(p, tmp_path)


# ---------------------------------------------------------------- time columns: read by an explicit rule only

def test_numbers_are_never_read_as_times_without_a_rule():
    df = pd.DataFrame({"ts": [1678838400, 1678924800], "y": [1, 0]})
    with pytest.raises(DataError, match=r"data.time_column 'ts' holds numbers \(e.g. 1678838400.*data.time_unit: s"):
        tables.parse_time(df, "ts")
    out = tables.parse_time(df, "ts", unit="s")
    assert out["ts"].tolist() == [pd.Timestamp("2023-03-15"), pd.Timestamp("2023-03-16")]
    assert out.attrs["time_raw_type"] == "long"
    assert tables.parse_time(pd.DataFrame({"d": [20230315]}), "d", fmt="%Y%m%d")["d"][0] == pd.Timestamp("2023-03-15")


def test_text_times_need_iso_8601_or_a_format_and_every_value_must_read():
    df = pd.DataFrame({"d": ["15/03/2023", "16/03/2023"]})
    with pytest.raises(DataError, match="not ISO 8601 dates.*data.time_format: '%d/%m/%Y'"):
        tables.parse_time(df, "d")
    assert tables.parse_time(df, "d", fmt="%d/%m/%Y")["d"][1] == pd.Timestamp("2023-03-16")
    with pytest.raises(DataError, match=r"1 value\(s\) cannot be read by data.time_format '%d/%m/%Y' \(e.g. '2023-03-17'\)"):
        tables.parse_time(pd.DataFrame({"d": ["15/03/2023", "2023-03-17"]}), "d", fmt="%d/%m/%Y")
    iso = tables.parse_time(pd.DataFrame({"d": ["2013-01-01T10:00:00Z", "2013-01-01T11:30:00+01:00"]}), "d")
    assert iso["d"].tolist() == [pd.Timestamp("2013-01-01 10:00"), pd.Timestamp("2013-01-01 10:30")]  # UTC
    assert iso.attrs["time_raw_type"] == "string"
    with pytest.raises(DataError, match="true/false"):
        tables.parse_time(pd.DataFrame({"d": [True, False]}), "d")


def test_unparse_gives_back_what_a_client_sends():
    t = pd.Series([pd.Timestamp("2023-03-15 10:00"), pd.Timestamp("2023-03-16")])
    assert tables.unparse(t, "string", "%d/%m/%Y").tolist() == ["15/03/2023", "16/03/2023"]
    assert tables.unparse(t, "long", unit="s").tolist() == [1678874400, 1678924800]
    assert tables.unparse(t, "string").tolist() == ["2023-03-15T10:00:00", "2023-03-16T00:00:00"]
    for raw, kw in ((tables.unparse(t, "string", "%d/%m/%Y %H:%M"), {"fmt": "%d/%m/%Y %H:%M"}),
                    (tables.unparse(t, "long", unit="s"), {"unit": "s"}), (tables.unparse(t, "string"), {})):
        assert tables.parse_series(raw, "t", **kw).tolist() == t.tolist()


@pytest.mark.parametrize("sep, words", [(";", "';'-delimited"), ("\t", "tab-delimited"), ("|", "'|'-delimited")])
def test_a_csv_with_another_delimiter_names_it(tmp_path, sep, words):
    p = tmp_path / "d.csv"
    p.write_text(sep.join(["a", "b", "c"]) + "\n" + sep.join(["1", "2", "x"]) + "\n")
    with pytest.raises(DataError, match=f"looks like a {words} file .*3 columns"):
        tables.read_table(p)


def test_a_header_only_csv_reads_as_zero_rows(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("a,b,c\n")
    assert tables.read_table(p).shape == (0, 3)
    q = tmp_path / "one.csv"
    q.write_text("only\n1\n2\n")  # a genuine single-column file is fine
    assert tables.read_table(q).shape == (2, 1)
