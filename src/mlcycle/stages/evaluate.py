"""What every task's evaluate stage writes the same way: the metrics file (reports/metrics/evaluate.json,
numbers rounded so that reruns give the same bytes) and the plot tables (reports/plots/*.csv) for
`dvc metrics diff` and `dvc plots diff`. The task's own evaluation is in `mlcycle.tasks.<task>`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def write(metrics: dict, plots: dict[str, pd.DataFrame], metrics_path: Path, plots_dir: Path) -> None:
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(_rounded(metrics), indent=2) + "\n")
    plots_dir.mkdir(parents=True, exist_ok=True)
    for old in plots_dir.glob("*.csv"):
        old.unlink()
    for name, df in plots.items():
        df.to_csv(plots_dir / f"{name}.csv", index=False, float_format="%.6g")


def _rounded(d):
    if isinstance(d, dict):
        return {k: _rounded(v) for k, v in d.items()}
    if isinstance(d, float):
        return round(d, 6)
    return d
