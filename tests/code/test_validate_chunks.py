"""`mlcycle data add` validates a batch part by part (`validate.ChunkedCheck`, `batches.check_file`):
the findings (levels, checks, counts, messages, examples) equal those of validating the whole file,
and the memory it holds is bounded by the part size, not by the file."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlcycle.core import config, schema, tables
from mlcycle.monitoring import batches
from mlcycle.stages import validate
from tests.code.frames import data_params

CHUNK = 100
SCHEMA = schema.TableSchema(min_rows=5000, unique_rows=True, strict=True, columns={
    "rownames": schema.ColumnSchema(dtype="integer", nullable=False),
    "id": schema.ColumnSchema(dtype="integer", nullable=False, unique=True),
    "x": schema.ColumnSchema(dtype="integer", nullable=False, min=0, max=100),
    "code": schema.ColumnSchema(dtype="integer", nullable=True),
    "n": schema.ColumnSchema(dtype="number", nullable=True, null_share=0.0, max_null_share=0.05),
    "cat": schema.ColumnSchema(dtype="string", nullable=False, values=["a", "b", "c"]),
    "when": schema.ColumnSchema(dtype="datetime", nullable=False),
    "y": schema.ColumnSchema(nullable=True),
    "contact": schema.ColumnSchema(dtype="string", nullable=True),
})


def planted(n: int = 1000) -> pd.DataFrame:
    """A table of n rows (several parts of CHUNK rows) with problems planted in different parts."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "rownames": np.arange(1, n + 1),
        "id": np.arange(10_000, 10_000 + n),
        "x": rng.integers(0, 100, n),
        "code": rng.integers(0, 9, n).astype(object),
        "n": rng.normal(size=n).round(3),
        "cat": rng.choice(["a", "b", "c"], n),
        "when": (pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10_000, n), unit="min")).astype(str),
        "y": rng.choice(["yes", "no"], n),
    })
    df.loc[[150, 720], "x"] = [-5, 400]  # out of range in parts 2 and 8
    df.loc[430:470, "cat"] = "z"  # a new category in part 5, above max_new_category_share
    df.loc[900:960, "n"] = np.nan  # nulls in part 10 only: above max_null_share
    df.loc[35:110, "y"] = np.nan  # target nulls in parts 1 and 2: above max_target_null_share
    df["contact"] = [None] * 500 + [f"user{i}@example.org" for i in range(500, n)]  # personal data from part 6 on
    df.loc[980, "code"] = "bad"  # text in an integer column, in the last part
    df.loc[880, "id"] = df.loc[20, "id"]  # a unique id repeated across parts
    copy = df.loc[50].copy()  # a row copied far away (other row number and id): a duplicate across parts
    df.loc[650, [c for c in df.columns if c not in ("rownames", "id")]] = copy.drop(["rownames", "id"]).to_numpy()
    return df


def both(path: Path, data, vp, table=SCHEMA):
    whole = validate.check(tables.load(data, path.parent, path=path), data, vp, table, "s.yaml")
    parts = batches.check_file(path, data, vp, table, "s.yaml", path.parent)
    return whole, parts


def same(a: validate.Result, b: validate.Result) -> list[tuple]:
    def key(f):
        return (f.level, f.column or "", f.check, f.count, repr(f.examples), f.message)

    assert (a.rows, a.columns) == (b.rows, b.columns)
    assert a.null_share == b.null_share
    assert a.duplicates == b.duplicates
    assert sorted(map(key, a.findings)) == sorted(map(key, b.findings))
    return sorted(map(key, a.findings))


DATA = data_params(time_column="when", required_columns=["x", "cat"], drop_columns=["rownames"])
VP = config.ValidateParams(min_rows=10, max_new_category_share=0.01, chunk_rows=CHUNK)


def test_planted_problems_in_different_parts_give_the_whole_file_findings(tmp_path):
    f = tmp_path / "batch.csv"
    planted().to_csv(f, index=False)
    whole, parts = both(f, DATA, VP)
    found = {(lv, c, chk) for lv, c, chk, *_ in same(whole, parts)}
    # every planted problem is found (so the equality above compares real findings)
    assert {("error", "x", "min"), ("error", "x", "max"), ("error", "cat", "new_values_share"),
            ("warning", "cat", "new_values"), ("error", "n", "max_null_share"), ("warning", "n", "null_share_rise"),
            ("error", "y", "target_nulls"), ("error", "code", "dtype"), ("error", "id", "field_uniqueness"),
            ("error", "", "unique_rows"), ("error", "", "min_rows"), ("warning", "contact", "personal_data")} <= found
    dup = next(f for f in parts.findings if f.check == "unique_rows")
    assert dup.count == 1 and "rownames" in dup.message and "id" in dup.message  # row numbers and ids not compared
    assert [r["row_in_table"] for r in parts.duplicates["examples"]] == [51, 651]
    code = next(f for f in parts.findings if f.check == "dtype")
    assert "'bad'" in code.message  # the whole file's type (text), found in the last part


def test_a_clean_file_and_a_one_part_file_agree_too(tmp_path):
    df = planted().iloc[:250]
    f = tmp_path / "small.csv"
    df.to_csv(f, index=False)
    for rows in (CHUNK, 10_000):  # several parts; one part
        same(*both(f, DATA, VP.model_copy(update={"chunk_rows": rows})))


def test_parquet_read_by_batches_agrees_with_the_whole_file(tmp_path):
    df = planted()
    df["code"] = pd.array(np.where(np.arange(len(df)) == 980, None, 1), dtype="Int64")  # nulls in one batch only
    f = tmp_path / "batch.parquet"
    df.to_parquet(f, row_group_size=CHUNK)
    whole, parts = both(f, DATA, VP)
    same(whole, parts)
    assert whole.null_share["code"] == pytest.approx(0.001)


def test_row_numbers_that_stop_counting_in_a_later_part_are_compared(tmp_path):
    df = planted()
    df.loc[700, "rownames"] = 1  # no longer row numbers: rows 51 and 651 now differ in them
    f = tmp_path / "batch.csv"
    df.to_csv(f, index=False)
    whole, parts = both(f, DATA, VP)
    same(whole, parts)
    assert not any(f.check == "unique_rows" for f in parts.findings)


def test_memory_is_bounded_by_the_part_not_the_file(tmp_path):
    """A file of 10 parts: while each part is checked, the live tables (every DataFrame and Series the
    check can reach) hold at most the rows of a part or two, never the file's; the whole-file check
    holds them all (the only state that grows with the file is 8 bytes of hash per row and column checked)."""
    big = pd.concat([planted()] * 20, ignore_index=True)
    big["rownames"] = np.arange(1, len(big) + 1)
    big["id"] = np.arange(len(big))
    f = tmp_path / "ten.csv"
    big.to_csv(f, index=False)
    vp = VP.model_copy(update={"chunk_rows": len(big) // 10})
    mine = {id(big), id(big["rownames"]), id(big["id"])}
    held, live = [], []
    orig = validate.ChunkedCheck.add

    def largest() -> int:
        gc.collect()
        return max((len(o) for o in gc.get_objects()
                    if isinstance(o, pd.DataFrame | pd.Series) and id(o) not in mine), default=0)

    def add(self, df):
        held.append(len(df))
        out = orig(self, df)
        live.append(largest())
        return out

    validate.ChunkedCheck.add = add
    try:
        res = batches.check_file(f, DATA, vp, SCHEMA, "s.yaml", tmp_path)
    finally:
        validate.ChunkedCheck.add = orig
    del big
    assert max(held) <= vp.chunk_rows and sum(held) >= res.rows == 10 * vp.chunk_rows
    assert max(live) <= vp.chunk_rows, live
    whole = tables.load(DATA, tmp_path, path=f)  # what the whole-file check holds at once
    assert len(whole) == 10 * vp.chunk_rows


def test_a_target_with_too_many_values_to_count_says_its_class_checks_did_not_run(tmp_path, monkeypatch):
    df = planted()
    df["y"] = [f"class {i % 60}" for i in range(len(df))]  # 60 classes: target_classes fails on the whole file
    f = tmp_path / "batch.csv"
    df.to_csv(f, index=False)
    whole, parts = both(f, DATA, VP)
    same(whole, parts)
    assert any(x.check == "target_classes" for x in parts.findings)
    monkeypatch.setattr(validate, "MAX_TARGET_VALUES", 50)
    parts = batches.check_file(f, DATA, VP, SCHEMA, "s.yaml", tmp_path)
    checks = {(x.level, x.check) for x in parts.findings if x.column == "y"}
    assert ("warning", "target_values_not_merged") in checks and ("error", "target_classes") not in checks
