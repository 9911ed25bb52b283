"""The whole pipeline against the team stack (PostgreSQL, S3 endpoint, `mlflow server`) against the
local SQLite store, in one invocation, alternating.

Each run starts from a fresh workspace copy (no outputs, no DVC cache, no store). The team stack is
started once (`mlcycle team up` in its own folder) and stopped at the end; its start is not timed.
Target: at most 1.3 x the local store's time.

    python bench/bench_team.py          # BENCH_REPEATS=1 by default; BENCH_SCALE=1 (rows: the ingest's replicate)
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measure, repeats, save, stop_tracking_daemons, summarise, workspace  # noqa: E402


def main() -> None:
    from mlcycle.runtime import team

    n = repeats(1)
    scale = int(os.environ.get("BENCH_SCALE", 1))
    params = {"ingest": {"nycflights13": {"params": {"replicate": scale}}}}
    local, remote = [], []
    with tempfile.TemporaryDirectory(prefix="mlcycle-bench-team-") as d:
        tmp = Path(d)
        stack_ws = workspace(tmp / "stack", params)
        state = None
        try:
            state = team.up(stack_ws)
            extra = team.exports(state)
            for i in range(n):
                ws = workspace(tmp / f"local-{i}", params)
                stop_tracking_daemons()
                local.append(measure(["dvc", "repro"], ws, tracked=True))
                ws = workspace(tmp / f"team-{i}", params)
                stop_tracking_daemons()  # the daemon's key covers MLFLOW_* settings: a fresh one either way
                remote.append(measure(["dvc", "repro"], ws, extra_env=extra, tracked=True))
        finally:
            team.down(stack_ws)
            if state and "pg" in state:
                shutil.rmtree(state["pg"]["data"], ignore_errors=True)
    lo, te = summarise(local), summarise(remote)
    result = {"scale": scale, "local_sqlite": lo, "team_stack": te,
              "time_ratio": round(te["median_seconds"] / lo["median_seconds"], 3),
              "target": "dvc repro against the team stack: at most 1.3 x the local SQLite store's time"}
    result["met"] = result["time_ratio"] <= 1.3
    print(json.dumps(result, indent=2))
    print(save("team", result))


if __name__ == "__main__":
    main()
