import pandas as pd
import pytest

from mlcycle import tables
from mlcycle.errors import DataError


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


def test_load_masks_personal_columns(tmp_path):
    pd.DataFrame({"email": ["a@x.org"], "y": [1]}).to_csv(tmp_path / "d.csv", index=False)
    from tests.code.frames import data_params

    out = tables.load(data_params(path="d.csv", pii_columns=["email"], pii_mode="hash"), tmp_path)
    assert out["email"][0] != "a@x.org"


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
