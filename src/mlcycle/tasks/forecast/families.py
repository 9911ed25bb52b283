"""Task `forecast`: the model families, each forecasting h steps of every series from a history.

- `seasonal_naive`: each step repeats the value one season before (the baseline: MASE's own scale);
- `ets`: exponential smoothing per series (statsmodels' Holt-Winters: additive damped trend, additive
  season when the series holds two seasons), fitted on the series' own history;
- `global`: one gradient-boosted model over every series (mlforecast with scikit-learn's
  HistGradientBoostingRegressor): lags, rolling means, the calendar part of the season, the static
  and dynamic columns; the series differenced and scaled one by one, so series of any level share it.

Each is a `Fitted` with `forecast(history, h, future)`: the canonical frame (series.ID, TIME, VALUE,
features) in, one row per series and future step out (ID, TIME, "step", "yhat"). A statistical family
fits at forecast time on the history it is given; the global family's regressor is fitted once
(`fit`) and forecasts any history (a caller's own too) with it.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlcycle.tasks.forecast.params import ForecastParams
from mlcycle.tasks.forecast.series import ID, TIME, VALUE, lags_of, windows_of

# the calendar part the global model learns a season from, by steps per season (mlforecast date_features)
CALENDAR = {12: ["month"], 4: ["quarter"], 7: ["dayofweek"], 5: ["dayofweek"], 24: ["hour"]}
# mlforecast's predict(new_df=...) refits the fitted model's target transforms (differences, scaler)
# in place on the history it is given and inverts the forecasts with them: two forecasts at once
# (the server's threads) would invert one series with the other's scale, so they take turns
PREDICTING = threading.Lock()


def future_times(history: pd.DataFrame, h: int, freq: str) -> pd.DataFrame:
    """The h times after each series' last one: (ID, TIME, "step" 1..h)."""
    last = history.groupby(ID, sort=True)[TIME].max()
    offset = pd.tseries.frequencies.to_offset(freq)
    rows = [(uid, t + k * offset, k) for uid, t in last.items() for k in range(1, h + 1)]
    return pd.DataFrame(rows, columns=[ID, TIME, "step"])


@dataclass
class SeasonalNaive:
    """Each future step repeats the value one season (`season` steps) earlier; a series shorter than a
    season repeats its last value."""

    freq: str
    season: int
    name: str = "seasonal_naive"

    def forecast(self, history: pd.DataFrame, h: int, future: pd.DataFrame | None = None) -> pd.DataFrame:
        out = future_times(history, h, self.freq)
        values = {uid: part[VALUE].to_numpy() for uid, part in history.groupby(ID, sort=True)}
        yhat = []
        for uid, k in zip(out[ID], out["step"], strict=True):
            y = values[uid]
            m = self.season if len(y) >= self.season else 1
            yhat.append(y[len(y) - m + (k - 1) % m])
        return out.assign(yhat=np.asarray(yhat, dtype="float64"))


@dataclass
class ETS:
    """Holt-Winters exponential smoothing per series (statsmodels): additive damped trend, additive
    season when the series holds two full seasons; a series it cannot fit gets the seasonal naive."""

    freq: str
    season: int
    name: str = "ets"
    fallbacks: list[str] = field(default_factory=list)  # series the last forecast fell back on

    def forecast(self, history: pd.DataFrame, h: int, future: pd.DataFrame | None = None) -> pd.DataFrame:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        out = future_times(history, h, self.freq)
        naive = SeasonalNaive(self.freq, self.season).forecast(history, h).set_index([ID, "step"])["yhat"]
        self.fallbacks = []
        yhat = {}
        for uid, part in history.groupby(ID, sort=True):
            y = part[VALUE].to_numpy(dtype="float64")
            seasonal = self.season > 1 and len(y) >= 2 * self.season
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fit = ExponentialSmoothing(y, trend="add", damped_trend=True,
                                               seasonal="add" if seasonal else None,
                                               seasonal_periods=self.season if seasonal else None,
                                               initialization_method="estimated").fit()
                    values = np.asarray(fit.forecast(h), dtype="float64")
                if not np.isfinite(values).all():
                    raise ValueError("non-finite forecast")
            except (ValueError, np.linalg.LinAlgError):
                self.fallbacks.append(str(uid))
                values = naive.loc[uid].to_numpy()
            for k, v in enumerate(values, start=1):
                yhat[(uid, k)] = v
        return out.assign(yhat=[yhat[(u, k)] for u, k in zip(out[ID], out["step"], strict=True)])


@dataclass
class Global:
    """One HistGradientBoostingRegressor over every series through mlforecast; `fit` learns it,
    `forecast` applies it to any history (recursively, step by step)."""

    freq: str
    season: int
    fc: ForecastParams
    name: str = "global"
    mlf: object = None

    def _make(self):
        from mlforecast import MLForecast
        from mlforecast.lag_transforms import RollingMean
        from mlforecast.target_transforms import Differences, LocalStandardScaler
        from sklearn.ensemble import HistGradientBoostingRegressor

        fc = self.fc
        model = HistGradientBoostingRegressor(max_iter=fc.max_iter, learning_rate=fc.learning_rate,
                                              categorical_features="from_dtype", random_state=fc.seed)
        windows = windows_of(fc, self.season)
        return MLForecast(
            models={"global": model}, freq=self.freq, lags=lags_of(fc, self.season),
            lag_transforms={1: [RollingMean(window_size=w) for w in windows]} if windows else None,
            date_features=CALENDAR.get(self.season, []),
            target_transforms=[*([Differences([1])] if fc.difference else []), LocalStandardScaler()],
            num_threads=1)

    def columns(self) -> list[str]:
        return [ID, TIME, VALUE, *self.fc.static_columns, *self.fc.dynamic_columns]

    def fit(self, history: pd.DataFrame) -> Global:
        self.mlf = self._make()
        self.mlf.fit(categorical(history[self.columns()], self.fc), static_features=list(self.fc.static_columns))
        return self

    def forecast(self, history: pd.DataFrame, h: int, future: pd.DataFrame | None = None) -> pd.DataFrame:
        out = future_times(history, h, self.freq)
        x = None
        if self.fc.dynamic_columns:
            if future is None:
                raise ValueError(f"the global model needs the future values of {self.fc.dynamic_columns} "
                                 "(forecasting.dynamic_columns) for every step forecast")
            x = categorical(future[[ID, TIME, *self.fc.dynamic_columns]], self.fc)
        with PREDICTING:
            pred = self.mlf.predict(h, new_df=categorical(history[self.columns()], self.fc), X_df=x)
        pred = pred.rename(columns={"global": "yhat"})[[ID, TIME, "yhat"]]
        return out.merge(pred, on=[ID, TIME], how="left")


def categorical(frame: pd.DataFrame, fc: ForecastParams) -> pd.DataFrame:
    """Text feature columns as pandas categories (the regressor's categorical_features="from_dtype")."""
    out = frame.copy()
    for c in [*fc.static_columns, *fc.dynamic_columns]:
        if c in out and not pd.api.types.is_numeric_dtype(out[c]):
            out[c] = out[c].astype("str").astype("category")
    return out


def make(name: str, freq: str, season: int, fc: ForecastParams):
    """The family `name` (forecasting.families), not yet fitted."""
    if name == "seasonal_naive":
        return SeasonalNaive(freq, season)
    if name == "ets":
        return ETS(freq, season)
    if name == "global":
        return Global(freq, season, fc)
    raise ValueError(f"forecasting.families: unknown family '{name}'")


def fitted(name: str, history: pd.DataFrame, freq: str, season: int, fc: ForecastParams):
    """The family `name` fitted on `history` (only the global family learns anything beforehand)."""
    model = make(name, freq, season, fc)
    return model.fit(history) if isinstance(model, Global) else model
