"""Task `forecast`: the long table of series read, checked and made regular.

The table at data.path holds one row per series and time: the series' id columns
(`forecasting.id_columns`), the time (data.time_column), the value (data.target) and optional
static and dynamic columns. Everything downstream works on the canonical frame: `unique_id` (the id
columns joined with "/"), `ds` (the time, naive), `y` (the value), then the feature columns, sorted by
series and time (the names mlforecast and utilsforecast take).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlcycle.core.config import DataParams
from mlcycle.core.errors import DataError
from mlcycle.stages.validate import TaskFindings
from mlcycle.tasks.forecast.params import ForecastParams

ID, TIME, VALUE = "unique_id", "ds", "y"
FILLED = "filled"  # features: True on a row added to fill a gap (its value interpolated)
# steps per season by the frequency's base (pandas offset names)
SEASONS = {"MS": 12, "ME": 12, "M": 12, "SMS": 24, "QS": 4, "QE": 4, "Q": 4, "W": 52, "D": 7, "B": 5, "h": 24,
           "H": 24, "YS": 1, "YE": 1, "Y": 1, "A": 1, "AS": 1}
MOST_NAMED = 8  # series named in one finding at most


def named(ids, most: int = MOST_NAMED) -> str:
    """A few series ids for a message, with how many more."""
    ids = [str(i) for i in ids]
    more = f" and {len(ids) - most:,} more" if len(ids) > most else ""
    return ", ".join(f"'{i}'" for i in ids[:most]) + more


def standardise(df: pd.DataFrame, data: DataParams, fc: ForecastParams) -> pd.DataFrame:
    """The canonical frame (unique_id, ds, y, static and dynamic columns), sorted; the input is not
    mutated. Times lose their time zone (as local times), ids become text."""
    ids = df[fc.id_columns].astype("string").fillna("<missing>")
    uid = ids.iloc[:, 0] if len(fc.id_columns) == 1 else ids.agg("/".join, axis=1)
    t = df[data.time_column]
    if getattr(t.dt, "tz", None) is not None:
        t = t.dt.tz_localize(None)
    out = pd.DataFrame({ID: uid.astype("str").to_numpy(), TIME: pd.to_datetime(t).to_numpy(),
                        VALUE: pd.to_numeric(df[data.target], errors="coerce").astype("float64").to_numpy()})
    for c in fc.static_columns + fc.dynamic_columns:
        out[c] = df[c].to_numpy()
    return out.sort_values([ID, TIME], kind="stable").reset_index(drop=True)


def infer_freq(frame: pd.DataFrame) -> str | None:
    """The step between times: the frequency pandas infers for most series (each on its own, so a gap
    or a stray time in one series does not hide it), else for the times all series share, else the
    most common step as a fixed offset; None when no series has two times."""
    found = []
    for _, times in frame.groupby(ID, sort=True)[TIME]:
        f = _inferred(pd.DatetimeIndex(times.dropna().drop_duplicates().sort_values()))
        if f:
            found.append(f)
    if found:
        return str(pd.Series(found).mode().iloc[0])
    union = _inferred(pd.DatetimeIndex(np.sort(frame[TIME].dropna().unique())))
    if union:
        return union
    steps = frame.groupby(ID)[TIME].diff().dropna()
    if steps.empty:
        return None
    return pd.tseries.frequencies.to_offset(steps.mode().iloc[0]).freqstr


def _inferred(times: pd.DatetimeIndex) -> str | None:
    if len(times) < 3:
        return None
    with pd.option_context("future.infer_freq_returns_offset", True):
        f = pd.infer_freq(times)
    return pd.tseries.frequencies.to_offset(f).freqstr if f is not None else None


def season_length(freq: str | None, given: int | None = None) -> int:
    """Steps in a season: `given` (forecasting.season_length), else by the frequency (1: no season)."""
    if given:
        return int(given)
    if not freq:
        return 1
    base = pd.tseries.frequencies.to_offset(freq)
    name = base.rule_code.split("-")[0]
    n = max(int(getattr(base, "n", 1)), 1)
    season = SEASONS.get(name, 1)
    return max(season // n, 1) if season % n == 0 else 1


def lags_of(fc: ForecastParams, season: int) -> list[int]:
    return sorted(set(fc.lags if fc.lags is not None else [1, 2, 3, *([season] if season > 3 else [])]))


def windows_of(fc: ForecastParams, season: int) -> list[int]:
    return sorted(set(fc.windows if fc.windows is not None else ([season] if season >= 2 else [])))


def min_length(fc: ForecastParams, season: int) -> int:
    """Rows a series needs to be modelled: its longest lag or window before the first value the
    global model learns from, one more, and the held-out horizon."""
    longest = max([*lags_of(fc, season), *windows_of(fc, season), season, 1])
    return longest + 1 + fc.horizon


class Findings(TaskFindings):
    """What validate found: errors stop the pipeline, warnings are shown; each names its series."""

    key = "series"

    def head(self) -> str:
        s = self.stats
        return (f"series: {s.get('series', 0):,} in {self.rows:,} rows; step {s.get('freq')}, "
                f"season {s.get('season_length')} steps")


def check(df: pd.DataFrame, data: DataParams, fc: ForecastParams, min_rows: int = 1,
          now: pd.Timestamp | None = None) -> Findings:
    """Check a long table of series: the columns present, ids and times never missing, the target
    numeric, no duplicate (series, time) pair, the step (forecasting.freq or inferred), gaps and
    irregular steps, series too short for the lags and the horizon, times in the future, static
    columns constant within a series. Every problem is listed, naming its series and what to do."""
    f = Findings(rows=len(df))
    wanted = [*fc.id_columns, data.time_column, data.target, *fc.static_columns, *fc.dynamic_columns]
    missing = [c for c in dict.fromkeys(wanted) if c not in df.columns]
    if missing:
        f.errors.append(f"columns {missing} are named in params (data / forecasting) but not in the table; "
                        f"it has {list(df.columns)[:20]}")
        return f
    if len(df) < min_rows:
        f.errors.append(f"{len(df):,} rows, fewer than validate.min_rows {min_rows:,}")
    for col in fc.id_columns:
        n = int(df[col].isna().sum())
        if n:
            f.errors.append(f"column '{col}' (forecasting.id_columns) has {n:,} missing ids; drop those rows or fill them")
    y = df[data.target]
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        f.errors.append(f"column '{data.target}' (data.target) must hold numbers, got {y.dtype}")
        return f
    if not pd.api.types.is_datetime64_any_dtype(df[data.time_column]):
        f.errors.append(f"column '{data.time_column}' (data.time_column) is not read as times; set "
                        "data.time_format or data.time_unit")
        return f
    frame = standardise(df, data, fc)
    no_time = frame[frame[TIME].isna()]
    if len(no_time):
        f.errors.append(f"{len(no_time):,} rows have no time ('{data.time_column}'), in series "
                        f"{named(no_time[ID].unique())}; drop or fill them")
        frame = frame[frame[TIME].notna()]
    no_value = frame[frame[VALUE].isna()]
    if len(no_value):
        f.warnings.append(f"{len(no_value):,} rows have no value ('{data.target}'), in series "
                          f"{named(no_value[ID].unique())}; features interpolates them within their series")
    dup = frame[frame.duplicated([ID, TIME], keep=False)]
    if len(dup):
        first = dup.iloc[0]
        f.errors.append(f"{dup.duplicated([ID, TIME]).sum():,} duplicate (series, time) pairs in series "
                        f"{named(dup[ID].unique())} (e.g. '{first[ID]}' at {first[TIME]}); keep one row per "
                        "series and time (sum or average the duplicates)")
    now = pd.Timestamp.now() if now is None else now
    future = frame[frame[TIME] > now]
    if len(future):
        f.errors.append(f"{len(future):,} rows are dated after now ({now:%Y-%m-%d}), in series "
                        f"{named(future[ID].unique())}; a value not yet observed cannot be learned from "
                        "(drop those rows)")
        frame = frame[frame[TIME] <= now]  # the steps and lengths below are those of the observed rows
    freq = fc.freq or infer_freq(frame)
    season = season_length(freq, fc.season_length)
    if freq is None:
        f.errors.append("no series has two times: the step cannot be inferred; set forecasting.freq")
    else:
        gaps, irregular = regularity(frame.drop_duplicates([ID, TIME]), freq)
        if irregular:
            f.errors.append(f"times off the step {freq} (forecasting.freq{'' if fc.freq else ', inferred'}) in "
                            f"{len(irregular):,} series: {named(irregular)}; set forecasting.freq or align the times")
        if gaps:
            total = sum(gaps.values())
            f.warnings.append(f"{total:,} missing steps in {len(gaps):,} series: {named(gaps)}; features fills "
                              "them by interpolation within each series")
        f.stats["missing_steps"] = int(sum(gaps.values()))
        f.stats["series_with_gaps"] = len(gaps)
    sizes = frame.groupby(ID)[TIME].nunique()
    need = min_length(fc, season)
    short = sizes[sizes < need]
    if len(short):
        f.warnings.append(f"{len(short):,} series have fewer than {need} times (the longest lag or window + 1 + "
                          f"forecasting.horizon {fc.horizon}): {named(short.index)}; they are left out of training "
                          "and evaluation")
    if len(short) == len(sizes) and len(sizes):
        f.errors.append(f"every series is shorter than {need} times; lower forecasting.horizon or the lags")
    for col in fc.static_columns:
        varying = frame.groupby(ID)[col].nunique(dropna=False)
        varying = varying[varying > 1]
        if len(varying):
            f.errors.append(f"static column '{col}' (forecasting.static_columns) changes over time in series "
                            f"{named(varying.index)}; list it in dynamic_columns or fix its values")
    for col in fc.dynamic_columns:
        n = int(frame[col].isna().sum())
        if n:
            f.warnings.append(f"dynamic column '{col}' has {n:,} missing values; features carries the last one forward")
    f.stats.update({"series": int(len(sizes)), "rows": int(len(frame)), "freq": freq, "season_length": season,
                    "min_length": need, "short_series": int(len(short)),
                    "shortest": int(sizes.min()) if len(sizes) else 0, "longest": int(sizes.max()) if len(sizes) else 0,
                    "first_time": str(frame[TIME].min()), "last_time": str(frame[TIME].max()),
                    "duplicate_pairs": int(dup.duplicated([ID, TIME]).sum()), "future_rows": int(len(future))})
    return f


def regularity(frame: pd.DataFrame, freq: str) -> tuple[dict[str, int], list[str]]:
    """({series: missing steps}, [series with a time off the step]): each series' times against the
    regular grid from its first time."""
    gaps: dict[str, int] = {}
    irregular: list[str] = []
    for uid, times in frame.groupby(ID, sort=True)[TIME]:
        t = pd.DatetimeIndex(times.sort_values())
        if len(t) < 2:
            continue
        grid = pd.date_range(t[0], t[-1], freq=freq)
        if not t.isin(grid).all():
            irregular.append(str(uid))
        elif len(grid) > len(t):
            gaps[str(uid)] = int(len(grid) - len(t))
    return gaps, irregular


def regular(frame: pd.DataFrame, freq: str, fc: ForecastParams) -> pd.DataFrame:
    """Every series on its regular grid: one row per series and time (the last of duplicates), the
    missing steps added with their value interpolated linearly (`filled` True), dynamic columns
    carried forward then back, static columns constant. Series shorter than `min_length` are kept
    (the caller leaves them out)."""
    parts = []
    frame = frame.drop_duplicates([ID, TIME], keep="last")
    for uid, part in frame.groupby(ID, sort=True):
        part = part.set_index(TIME).sort_index()
        grid = pd.date_range(part.index[0], part.index[-1], freq=freq) if len(part) > 1 else part.index
        full = part.reindex(grid)
        full.index.name = TIME
        full[FILLED] = ~full.index.isin(part.index) | full[VALUE].isna()
        full[VALUE] = full[VALUE].interpolate(method="linear", limit_direction="both")
        full[ID] = uid
        for c in fc.static_columns:
            full[c] = part[c].iloc[0]
        for c in fc.dynamic_columns:
            full[c] = full[c].ffill().bfill()
        parts.append(full.reset_index())
    cols = [ID, TIME, VALUE, *fc.static_columns, *fc.dynamic_columns, FILLED]
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True)[cols]


def infer_section(df, data: dict) -> tuple[dict, list[str]]:
    """The `forecasting` section `mlcycle init --task forecast` writes for a table (the task's
    "infer_params" hook), with notes to print: the series id columns (the fewest text columns that
    make (series, time) unique), the step inferred from the times, the season from it and a horizon
    of one season; and validate.min_rows and monitor.min_rows at most the series observed at the last
    time. Raises DataError naming what to set when it cannot tell."""
    from itertools import combinations

    import pandas as pd

    from mlcycle.core.tables import parse_series

    time = data.get("time_column")
    if not time:
        raise DataError("a forecast needs the time of each row: name it with --time-column")
    t = parse_series(df[time], time, data.get("time_format"), data.get("time_unit"))
    target = data["target"]
    texts = [c for c in df.columns if c not in (time, target) and not pd.api.types.is_float_dtype(df[c])
             and 1 < df[c].nunique(dropna=False) < len(df) / 2]
    ids = next((list(combo) for n in (1, 2, 3) for combo in combinations(texts, n)
                if not pd.concat([df[list(combo)], t.rename("__t__")], axis=1).duplicated().any()), None)
    if ids is None:
        raise DataError(f"no column (or pair of columns) among {texts[:10]} names a series with one row per time "
                        f"in '{time}'; write forecasting.id_columns yourself (see docs/forecast.md)")
    frame = pd.DataFrame({ID: df[ids].astype("str").agg("/".join, axis=1), TIME: t.to_numpy(),
                          VALUE: 0.0})
    freq = infer_freq(frame)
    season = season_length(freq)
    notes = [f"series: {ids} ({frame[ID].nunique():,} series; forecasting.id_columns)",
             f"step: {freq} (forecasting.freq), a season of {season} steps; horizon {max(season, 1)} steps "
             "(forecasting.horizon: change it to what you need)"]
    section = {"id_columns": ids, "horizon": max(season, 1), "freq": freq}
    # a batch of new observations (`mlcycle monitoring retrain`, the replay) is a step of the series
    # still observed at the end: the row floors of a table (validate 100, monitor 500) would refuse it
    # or never judge it
    live = int(frame.loc[frame[TIME] == frame[TIME].max(), ID].nunique())
    floors = {"validate": min(100, live), "monitor": min(500, live)}
    notes.append(f"validate.min_rows {floors['validate']}, monitor.min_rows {floors['monitor']}: a step of the "
                 f"{live:,} series observed at the last time (a batch of new observations)")
    return {"forecasting": section, **{k: {"min_rows": v} for k, v in floors.items()}}, notes


def sample(df: pd.DataFrame, params, frac: float) -> pd.DataFrame:
    """A share `frac` of the series, each whole (the replay's `--sample-frac`: rows drawn at random would
    leave every series full of gaps); drawn with forecasting.seed, at least one."""
    cols = list(params.forecasting.id_columns)
    ids = df[cols].astype("string").drop_duplicates().sort_values(cols).reset_index(drop=True)
    rng = np.random.default_rng(params.forecasting.seed)
    keep = ids.iloc[np.sort(rng.choice(len(ids), max(1, round(len(ids) * frac)), replace=False))]
    return df[pd.MultiIndex.from_frame(df[cols].astype("string")).isin(pd.MultiIndex.from_frame(keep))]
