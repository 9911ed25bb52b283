"""The whole default pipeline from a clean state against the bare script (bench/bare_pipeline.py).

Both start from a fresh workspace copy (no outputs, no DVC cache, no tracking store) and run the
same stages on the same data: `dvc repro` (kernels, HTML reports, DVC, MLflow tracking and the
registry; no warm tracking daemon at the start, and its memory counts) against the notebooks' code
run in one process. At the default size and at ten times the
rows (the flights ingest step's `replicate`). Targets at ten times: at most 1.3 x the bare time, 1.5 x its peak memory.

    python bench/bench_pipeline.py          # BENCH_SCALES=1,10  BENCH_REPEATS=2 by default
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measure, save, stop_tracking_daemons, summarise, workspace  # noqa: E402

HERE = Path(__file__).resolve().parent


def run_scale(tmp: Path, scale: int, n: int) -> dict:
    params = {"ingest": {"nycflights13": {"params": {"replicate": scale}}}}
    ours, bare = [], []
    for i in range(n):
        ws = workspace(tmp / f"bare-{scale}-{i}", params)
        bare.append(measure([sys.executable, str(HERE / "bare_pipeline.py"), str(ws)], ws))
        ws = workspace(tmp / f"ours-{scale}-{i}", params)
        stop_tracking_daemons()  # clean state: the first stage starts the warm tracking process
        ours.append(measure(["dvc", "repro"], ws, tracked=True))
    split = json.loads((ws / "reports/metrics/features.json").read_text())
    rows = sum(split[f"{p}_rows"] for p in ("train", "valid", "test"))
    o, b = summarise(ours), summarise(bare)
    return {
        "scale": scale, "rows": rows, "ours": o, "bare": b,
        "time_ratio": round(o["median_seconds"] / b["median_seconds"], 3),
        "memory_ratio": round(o["median_peak_mb"] / b["median_peak_mb"], 3),
    }


def main() -> None:
    scales = [int(s) for s in os.environ.get("BENCH_SCALES", "1,10").split(",")]
    out = []
    with tempfile.TemporaryDirectory(prefix="mlcycle-bench-") as d:
        for scale in scales:
            n = int(os.environ.get("BENCH_REPEATS", 2))  # at 10x, a pair takes about 16 minutes on 2 cores
            r = run_scale(Path(d), scale, n)
            print(json.dumps(r, indent=2))
            out.append(r)
    big = [r for r in out if r["scale"] >= 10]
    met = bool(big) and all(r["time_ratio"] <= 1.3 and r["memory_ratio"] <= 1.5 for r in big)
    print(save("pipeline", {"scales": out, "target": "at 10x rows: time <= 1.3 x bare, peak memory <= 1.5 x bare",
                            "met": met}))


if __name__ == "__main__":
    main()
