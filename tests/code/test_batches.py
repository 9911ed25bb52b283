"""`mlcycle data add` writes only inside data/raw/batches: --name is a plain file name (no folder,
no `..`, not absolute), and a file already added (same MD5 in data/batches.jsonl) is refused naming
the earlier batch, before anything is validated, copied or recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mlcycle.core import config, provenance
from mlcycle.core.errors import DataError
from mlcycle.monitoring import batches
from tests.conftest import ROOT


@pytest.fixture
def place(tmp_path) -> tuple[Path, Path, config.Params]:
    root = tmp_path / "ws"
    (root / "data").mkdir(parents=True)
    (root / "data" / "batches.jsonl").write_text("")
    src = tmp_path / "in" / "2024-05.csv"
    src.parent.mkdir()
    pd.DataFrame({"x": [1, 2]}).to_csv(src, index=False)
    return root, src, config.load(ROOT / "params.yaml", root=ROOT)


def written(tmp_path: Path) -> set[str]:
    return {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")}


@pytest.mark.parametrize("name", ["../../x.parquet", "../x.csv", "sub/x.csv", "..", ".", "/tmp/x.csv",
                                  "ABSOLUTE", "~/x.csv", "", "a\\b.csv", ".hidden.csv"])
def test_a_name_that_would_leave_the_batches_folder_is_refused_naming_it(place, tmp_path, name):
    root, src, params = place
    if name == "ABSOLUTE":
        name = str(tmp_path / "outside.csv")
    before = written(tmp_path)
    with pytest.raises(DataError, match=r"--name .*(absolute|separator|not a file name|empty|starts with)"):
        batches.add(src, params, root, name=name)
    assert written(tmp_path) == before


def test_the_same_file_under_another_name_is_refused_naming_the_earlier_batch(place, tmp_path):
    root, src, params = place
    earlier = {"name": "2024-04.csv", "file": "data/raw/batches/2024-04.csv", "md5": provenance.file_md5(src),
               "added": "2024-05-01T00:00:00+00:00", "rows": 2}
    (root / "data" / "batches.jsonl").write_text(json.dumps(earlier) + "\n")
    before = written(tmp_path)
    with pytest.raises(DataError, match=r"already added as batch '2024-04.csv' .*count its rows twice"):
        batches.add(src, params, root, name="2024-05-again.csv")
    assert written(tmp_path) == before


def test_a_plain_name_is_kept():
    assert batches.batch_name("2024-05.parquet") == "2024-05.parquet"
    assert batches.batch_name("flights 2024..05.csv") == "flights 2024..05.csv"
