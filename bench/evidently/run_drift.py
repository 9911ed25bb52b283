"""One drift computation, timed inside this process: the child that bench/bench_drift.py starts.

Runs in either environment: `--lib ours` under the project's .venv (`mlcycle.drift.compare`),
`--lib evidently` under Evidently's own virtualenv (`Report([DataDriftPreset()])`). Each phase is
timed on its own: importing the library, reading the Parquet files, a warm-up on the first
`--warmup-rows` rows (first-call imports and caches), then the measured computation on all rows.
The measured part's peak RSS (sampled every 10 ms) is reported too, with its increase over the RSS
just before it. Writes JSON to `--out`: timings, memory, versions, the flagged columns and each
column's score.

    python bench/evidently/run_drift.py --lib ours --reference ref.parquet --current cur.parquet \
        --columns columns.json --out result.json
"""

from __future__ import annotations

import argparse
import gc
import json
import threading
import time
from pathlib import Path

# Evidently's default methods on more than 1000 rows are distances (drift when score >= threshold);
# on fewer rows, these p-value tests (drift when p < threshold).
P_VALUE_METHODS = {"K-S p_value", "chi-square p_value", "Z-test p_value"}


def _ours():
    from mlcycle.monitoring import drift

    def run(ref, cur, spec):
        return drift.compare(ref, cur)

    def extract(d) -> dict:
        cols = {}
        for r in d.table.to_dict(orient="records"):
            cols[r["column"]] = {"kind": r["kind"], "psi": r["psi"], "p_value": r["p_value"],
                                 "distance": r["distance"], "drifted": bool(r["drifted"])}
        return {"flagged": sorted(d.drifted), "columns": cols, "share": d.share}

    return run, extract, "mlcycle"


def _evidently():
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    def run(ref, cur, spec):
        definition = DataDefinition(numerical_columns=spec["numeric"], categorical_columns=spec["categorical"])
        reference = Dataset.from_pandas(ref, data_definition=definition)
        current = Dataset.from_pandas(cur, data_definition=definition)
        return Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)

    def extract(snapshot) -> dict:
        cols, count = {}, None
        for m in snapshot.dict()["metrics"]:
            cfg = m["config"]
            kind = cfg["type"].rsplit(":", 1)[-1]
            if kind == "ValueDrift":
                method, threshold, value = cfg["method"], cfg["threshold"], m["value"]
                drifted = value < threshold if method in P_VALUE_METHODS else value >= threshold
                cols[cfg["column"]] = {"method": method, "threshold": threshold, "score": value,
                                       "drifted": bool(drifted)}
            elif kind == "DriftedColumnsCount":
                count = m["value"]
        flagged = sorted(c for c, v in cols.items() if v["drifted"])
        # Evidently's own count of drifted columns must agree with the per-column decisions read here
        return {"flagged": flagged, "columns": cols, "share": count["share"] if count else None,
                "count_reported": count["count"] if count else None,
                "count_consistent": count is not None and int(count["count"]) == len(flagged)}

    return run, extract, "evidently"


class PeakRSS:
    """Peak RSS of this process while the block runs, sampled every 10 ms."""

    def __init__(self, proc):
        self.proc, self.peak, self._done = proc, 0, threading.Event()

    def _sample(self):
        while not self._done.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._done.wait(0.01)

    def __enter__(self):
        self.before = self.proc.memory_info().rss
        self.peak = self.before
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", choices=["ours", "evidently"], required=True)
    ap.add_argument("--reference", type=Path, required=True)
    ap.add_argument("--current", type=Path, required=True)
    ap.add_argument("--columns", type=Path, required=True, help="JSON: {'numeric': [...], 'categorical': [...]}")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--warmup-rows", type=int, default=5000)
    args = ap.parse_args()

    t = time.perf_counter()
    import numpy as np
    import pandas as pd
    import psutil
    import scipy

    run, extract, lib = _ours() if args.lib == "ours" else _evidently()
    import_seconds = time.perf_counter() - t
    spec = json.loads(args.columns.read_text())

    t = time.perf_counter()
    ref, cur = pd.read_parquet(args.reference), pd.read_parquet(args.current)
    load_seconds = time.perf_counter() - t

    t = time.perf_counter()
    extract(run(ref.head(args.warmup_rows), cur.head(args.warmup_rows), spec))
    warmup_seconds = time.perf_counter() - t

    gc.collect()
    with PeakRSS(psutil.Process()) as mem:
        t = time.perf_counter()
        result = run(ref, cur, spec)
        seconds = time.perf_counter() - t
    out = extract(result)

    from importlib.metadata import version

    args.out.write_text(json.dumps({
        "lib": args.lib, "version": version(lib), "pandas": pd.__version__, "numpy": np.__version__,
        "scipy": scipy.__version__, "rows_reference": len(ref), "rows_current": len(cur),
        "import_seconds": import_seconds, "load_seconds": load_seconds, "warmup_seconds": warmup_seconds,
        "seconds": seconds, "rss_before_mb": mem.before / 2**20, "peak_rss_mb": mem.peak / 2**20,
        "peak_increase_mb": (mem.peak - mem.before) / 2**20, **out,
    }, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
