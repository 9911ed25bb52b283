"""Concurrent load on a real server with two uvicorn workers: 20 clients, 3,000 requests, zero
errors, and after a SIGTERM every accepted prediction is in the prediction log (written by both
workers); /metrics adds up both workers."""

import random
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from mlcycle.serving.predlog import read
from tests.serve.conftest import TOKEN, example_rows, serving

pytestmark = pytest.mark.slow
CLIENTS, REQUESTS = 20, 150


def test_concurrent_load_loses_nothing(served_ws, tmp_path):
    rows = example_rows(served_ws)
    cols = list(rows[0])

    def client(seed: int) -> list[tuple[int, str, int]]:
        rnd = random.Random(seed)
        out = []
        # half the clients keep one connection open, half open a new one per request, so the kernel
        # spreads connections over both workers whatever it does with the first twenty
        headers = {"Authorization": f"Bearer {TOKEN}"} | ({"Connection": "close"} if seed % 2 else {})
        with httpx.Client(headers=headers, timeout=60) as c:
            for _ in range(REQUESTS):
                batch = [rows[rnd.randrange(len(rows))] for _ in range(rnd.choice((1, 1, 1, 5, 20)))]
                if rnd.random() < 0.5:
                    body = {"dataframe_records": batch}
                else:
                    body = {"dataframe_split": {"columns": cols, "data": [[r[k] for k in cols] for r in batch]}}
                r = c.post(f"{url}/predict", json=body)
                out.append((r.status_code, r.json().get("request_id"), len(batch)))
        return out

    # parts roll every 2 s here (serve.log_roll_seconds in the test params): rows span many parts
    with serving(served_ws, tmp_path / "predictions", TOKEN, "--workers", "2") as s:
        url = s.url
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = [x for part in pool.map(client, range(CLIENTS)) for x in part]
        metrics = httpx.get(f"{url}/metrics").text
        s.stop()
    assert len(results) == CLIENTS * REQUESTS
    assert {status for status, _, _ in results} == {200}
    expected = {rid: n for _, rid, n in results}
    log = read(tmp_path / "predictions")
    assert log.groupby("request_id").size().to_dict() == expected  # every accepted row, once
    assert len(log) == sum(expected.values())
    parts = list((tmp_path / "predictions").glob("part-*.parquet"))
    assert len({p.name.split("-")[2] for p in parts}) == 2  # part-<start>-<pid>-<seq>: both workers wrote
    assert f'mlcycle_serve_rows_scored_total {float(len(log))}' in metrics
    assert 'status="5' not in metrics
