"""The prediction log writer alone: rows per second for single-row requests.

Submits `--requests` batches of `--rows` rows each (6 input columns shaped like the flights
model's, plus prediction and score) to `mlcycle.predlog.PredictionLog` from one thread, as the
request handlers do, then closes the log (which writes everything still held). Reports, as the
median over `--repeats` runs in a fresh temporary folder each:

- submit µs per request: the cost a request pays on its own thread;
- rows/s end to end: rows / (first submit -> close() returned, every row on disk);
- close s: close() with every row still queued or held (what a server's SIGTERM shutdown waits for:
  `--requests 100000` gives the time from SIGTERM to exit with a backlog of 100k rows);
- the rows read back (must equal the rows submitted).

`--inputs columns` (default) submits the inputs as lists per column, as `mlcycle serving start` does;
`--inputs frame` as one DataFrame per request (what the server submitted before issue 15; the
only form the writer took then, so measure the old writer with `--inputs frame`).

    python bench/bench_predlog.py --requests 20000 --rows 1 --repeats 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def request_frame(n: int, i: int) -> pd.DataFrame:
    return pd.DataFrame({
        "sched_dep_time": np.full(n, 500.0 + i % 1800),
        "distance": np.full(n, 100.0 + i % 2400),
        "temp": np.full(n, np.nan if i % 20 == 0 else 55.0),
        "carrier": pd.array(["UA"] * n, dtype="str"),
        "origin": pd.array(["EWR"] * n, dtype="str"),
        "plane_type": pd.array([None if i % 10 == 0 else "Rotorcraft"] * n, dtype="str"),
    })


def once(requests: int, rows: int, inputs: str) -> dict:
    from mlcycle.serving.predlog import Batch, PredictionLog, read

    frames = [request_frame(rows, i) for i in range(min(requests, 500))]  # built outside the timing
    if inputs == "columns":  # what `mlcycle serving start` hands over: the validated values as lists
        frames = [{c: f[c].astype(object).where(f[c].notna(), None).tolist() for c in f.columns} for f in frames]
    with tempfile.TemporaryDirectory(prefix="bench-predlog-") as tmp:
        log = PredictionLog(Path(tmp) / "log", max_rows=100_000, roll_seconds=3600,
                            max_queue_rows=max(200_000, requests * rows + 1)).start()
        start = time.perf_counter()
        for i in range(requests):
            log.submit(Batch(frames[i % len(frames)], {"prediction": [1] * rows, "score": [0.25] * rows},
                             "1", f"r{i}", dt.datetime.now(dt.UTC)))
        submitted = time.perf_counter()
        log.close(timeout=3600)
        done = time.perf_counter()
        back = len(read(Path(tmp) / "log"))
    return {"submit_us": (submitted - start) / requests * 1e6, "rows_per_s": requests * rows / (done - start),
            "seconds": done - start, "close_s": done - submitted, "rows_read": back, "rows_sent": requests * rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--rows", type=int, default=1, help="rows per request")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--inputs", choices=("columns", "frame"), default="columns",
                    help="inputs as lists per column (what the server submits) or as a DataFrame per request")
    a = ap.parse_args()
    runs = [once(a.requests, a.rows, a.inputs) for _ in range(a.repeats)]
    med = {k: statistics.median(r[k] for r in runs) for k in ("submit_us", "rows_per_s", "seconds", "close_s")}
    lost = sum(r["rows_sent"] - r["rows_read"] for r in runs)
    print(f"inputs: {a.inputs}\n| requests x rows | submit µs/request | rows/s end to end | seconds | close s | rows lost |\n"
          f"|---|---|---|---|---|---|\n| {a.requests} x {a.rows} | {med['submit_us']:.1f} | {med['rows_per_s']:,.0f} | "
          f"{med['seconds']:.2f} | {med['close_s']:.2f} | {lost} |")


if __name__ == "__main__":
    main()
