"""Task `forecast`: the chosen family as one MLflow pyfunc model.

Input rows carry the table's own columns: the series id columns (`forecasting.id_columns`) always;
the time column, the target and the dynamic columns when the caller sends them.

- Only ids (optionally a `horizon` column): each series is forecast `horizon` steps (default
  `forecasting.horizon`) from the history the model was trained on; a series it never saw is an error
  naming it.
- Rows with a target value: they are the series' history (the caller's own, replacing the stored
  one for those series); rows of the same series with a time and no target value are the future
  steps to forecast (their dynamic columns are the values known in advance). Without such rows,
  `horizon` steps are forecast.

Output: one row per series and step: `series` (the id columns joined with "/"), `time`, `step`
(1 = the next), `forecast`, and `lower` / `upper`, the conformal interval at `forecasting.coverage`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mlcycle.core import provenance
from mlcycle.core.scoring import quiet_mlflow
from mlcycle.core.workspace import model_metadata
from mlcycle.tasks.forecast import backtest, families
from mlcycle.tasks.forecast.params import ForecastParams
from mlcycle.tasks.forecast.series import ID, TIME, VALUE

with quiet_mlflow():  # mlflow's import-time progress-bar warning stays out of the notebooks' reports
    import mlflow.pyfunc

OUTPUT_COLUMNS = ["series", "time", "step", "forecast", "lower", "upper"]


class ForecastModel(mlflow.pyfunc.PythonModel):
    """A fitted family (`families`) with the history it was trained on (canonical frame), the
    conformal widths per step and the names of the table's columns."""

    def __init__(self, family, history: pd.DataFrame, widths: list[float], fc: ForecastParams, time_column: str,
                 target: str, season: int):
        self.family, self.history, self.widths = family, history, list(widths)
        self.fc, self.time_column, self.target, self.season = fc, time_column, target, int(season)

    @property
    def name(self) -> str:
        return self.family.name

    def forecast(self, history: pd.DataFrame | None = None, h: int | None = None,
                 future: pd.DataFrame | None = None) -> pd.DataFrame:
        """Canonical in, canonical out: h steps (default forecasting.horizon) of every series of
        `history` (default: the stored one), with `lower` and `upper`."""
        history = self.history if history is None else history
        h = int(h or self.fc.horizon)
        if h > len(self.widths):
            raise ValueError(f"horizon {h} is beyond the {len(self.widths)} steps this model was judged on "
                             "(forecasting.horizon); ask for fewer steps")
        f = self.family.forecast(history, h, future)
        return backtest.intervals(f, self.widths, backtest.scales(history, self.season))

    def _ids(self, frame: pd.DataFrame) -> pd.Series:
        missing = [c for c in self.fc.id_columns if c not in frame.columns]
        if missing:
            raise ValueError(f"input needs the series id columns {self.fc.id_columns}; missing {missing}")
        ids = frame[self.fc.id_columns].astype("string")
        if ids.isna().any().any():
            raise ValueError(f"series id columns {self.fc.id_columns} must not be null")
        return (ids.iloc[:, 0] if len(self.fc.id_columns) == 1 else ids.agg("/".join, axis=1)).astype("str")

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = pd.DataFrame(model_input).reset_index(drop=True)
        uid = self._ids(frame)
        h = None
        if "horizon" in frame and frame["horizon"].notna().any():
            h = int(frame["horizon"].dropna().max())
            if h < 1:
                raise ValueError(f"horizon must be at least 1, got {h}")
        has_time = self.time_column in frame and frame[self.time_column].notna().any()
        canon = pd.DataFrame({ID: uid})
        if has_time:
            t = pd.to_datetime(frame[self.time_column])
            canon[TIME] = t.dt.tz_localize(None) if t.dt.tz is not None else t
        canon[VALUE] = pd.to_numeric(frame[self.target], errors="coerce") if self.target in frame else float("nan")
        for c in self.fc.dynamic_columns:
            canon[c] = frame[c] if c in frame else None
        given = canon[canon[VALUE].notna()] if has_time else canon.iloc[0:0]
        stored = self.history[self.history[ID].isin(set(uid) - set(given[ID]))]
        unknown = sorted(set(uid) - set(given[ID]) - set(self.history[ID]))
        if unknown:
            raise ValueError(f"series {unknown[:8]} were not in the training data and no history was sent for "
                             f"them: send rows with '{self.time_column}' and '{self.target}'")
        statics = self.history.drop_duplicates(ID).set_index(ID)[list(self.fc.static_columns)]
        if len(given):
            given = given.sort_values([ID, TIME]).assign(**{c: given[ID].map(statics[c]) for c in statics})
            for c in self.fc.static_columns:
                if c in frame:
                    given[c] = given[c].fillna(frame.loc[given.index, c])
        history = pd.concat([stored, given], ignore_index=True)[self.history.columns.intersection(
            [ID, TIME, VALUE, *self.fc.static_columns, *self.fc.dynamic_columns])]
        future = canon[canon[VALUE].isna()] if has_time else None
        if future is not None and len(future):
            h = int(future.groupby(ID).size().max())
            expected = families.future_times(history, h, self.family.freq)
            sent = future[[ID, TIME]].sort_values([ID, TIME]).reset_index(drop=True)
            wrong = sorted(set(expected[ID]) - set(sent.merge(expected, on=[ID, TIME])[ID])
                           | {u for u, n in sent.groupby(ID).size().items() if n != h})
            if wrong:
                first = expected[expected[ID] == wrong[0]][TIME].iloc[0]
                raise ValueError(f"the future rows of series {wrong[:8]} are not the {h} steps after their history "
                                 f"(for '{wrong[0]}': from {first:%Y-%m-%d %H:%M}, every {self.family.freq}); send "
                                 "those times, or the history up to the first time you send")
        elif self.fc.dynamic_columns:
            raise ValueError(f"this model needs the future values of {list(self.fc.dynamic_columns)}: send a row per "
                             f"series and future step with '{self.time_column}' and those columns (no '{self.target}')")
        out = self.forecast(history, h, future if future is not None and len(future) else None)
        return out.rename(columns={ID: "series", TIME: "time", "yhat": "forecast"})[OUTPUT_COLUMNS]


def requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlforecast", "coreforecast", "utilsforecast", "statsmodels",
                                           "scikit-learn", "scipy", "pandas", "numpy", "cloudpickle")]


def save(model: ForecastModel, folder: Path, meta: dict) -> None:
    """Save as an MLflow pyfunc model with an input example and mlcycle metadata."""
    import shutil

    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    first = model.history.drop_duplicates(ID).iloc[:1]
    example = None
    if not model.fc.dynamic_columns and len(model.fc.id_columns) == 1:
        example = pd.DataFrame({model.fc.id_columns[0]: first[ID].tolist(), "horizon": [model.fc.horizon]})
    mlflow.pyfunc.save_model(
        str(folder), python_model=model, input_example=example, pip_requirements=requirements(),
        metadata={"mlcycle": json.loads(json.dumps({"task": "forecast", "model": model.name,
                                                    "horizon": model.fc.horizon, **meta}, default=str))})
    provenance.stable_model_identity(folder)  # the same model, the same bytes (no save time, uuid from content)


def load(folder: Path) -> tuple[ForecastModel, dict]:
    """The pyfunc's Python model and the mlcycle metadata saved with it."""
    return mlflow.pyfunc.load_model(str(folder)).unwrap_python_model(), model_metadata(Path(folder))


def load_registered(uri: str) -> ForecastModel:
    """The Python model of a registered version (`models:/<name>/<version>`): the task's `load` hook."""
    return mlflow.pyfunc.load_model(uri).unwrap_python_model()
