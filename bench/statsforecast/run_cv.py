"""statsforecast's cross-validation, timed inside this process: the child that bench/bench_forecast.py
starts under `.venv-statsforecast`.

Reads the series before the held-out horizon (Parquet: unique_id, ds, y), then `SeasonalNaive` and
`AutoETS` (statsforecast's own model selection over error, trend and season) through
`StatsForecast.cross_validation` with the benchmark's horizon, step, windows and `input_size` (the
latest steps each window learns from), one job. Each phase is timed on its own: the import, the
read, a warm-up on the first two series (numba compiles the models on first use), then the measured
run on every series. Writes the forecasts as Parquet to `--out` and the timings as JSON beside it.

    python bench/statsforecast/run_cv.py --data series.parquet --freq MS --season 12 --h 12 \
        --step 12 --windows 3 --input-size 240 --out cv.parquet
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    for name in ("--data", "--out", "--freq"):
        ap.add_argument(name, required=True)
    for name in ("--season", "--h", "--step", "--windows"):
        ap.add_argument(name, type=int, required=True)
    ap.add_argument("--input-size", type=int, default=None)
    args = ap.parse_args()

    t0 = time.perf_counter()
    import pandas as pd
    import statsforecast
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, SeasonalNaive

    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    df = pd.read_parquet(args.data)
    load_s = time.perf_counter() - t0

    def cv(frame: pd.DataFrame) -> pd.DataFrame:
        sf = StatsForecast(models=[SeasonalNaive(season_length=args.season), AutoETS(season_length=args.season)],
                           freq=args.freq, n_jobs=1)
        return sf.cross_validation(df=frame, h=args.h, step_size=args.step, n_windows=args.windows,
                                   input_size=args.input_size)

    t0 = time.perf_counter()
    cv(df[df["unique_id"].isin(df["unique_id"].drop_duplicates().head(2))])
    warmup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = cv(df)
    seconds = time.perf_counter() - t0
    out.reset_index().drop(columns="index", errors="ignore").to_parquet(args.out)
    Path(args.out).with_suffix(".json").write_text(json.dumps({
        "seconds": seconds, "import_seconds": import_s, "load_seconds": load_s, "warmup_seconds": warmup_s,
        "version": statsforecast.__version__, "pandas": pd.__version__,
        "scipy": __import__("scipy").__version__}))


if __name__ == "__main__":
    main()
