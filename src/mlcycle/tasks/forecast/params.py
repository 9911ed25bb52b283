"""The forecast task's params section, `forecasting` (`Task.params_model`), what each key means
(`DOCS`, `Task.params_doc`) and what the task needs of the rest of params.yaml (`check`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from mlcycle.core.section import Section

FAMILIES = ("seasonal_naive", "ets", "global")  # the model families the backtest compares
METRICS = ("mase", "smape", "rmse")  # the forecast metrics (lower is better, each)


class ForecastParams(Section):
    """Task `forecast` (docs/forecast.md): data.path is a long table, one row per series and time;
    data.target is the value forecast and data.time_column its time."""

    id_columns: list[str]  # the columns naming a series (one or more: e.g. [store, item])
    horizon: Annotated[int, Field(ge=1, le=10_000)]  # steps ahead forecast (and held out at the end of each series)
    # the step between times, a pandas frequency (MS: month starts, W-SUN, D, h ...); null: the most
    # common step of the data (validate says which)
    freq: str | None = None
    # steps in a season (12 for monthly data); null: from the frequency (12 monthly, 4 quarterly, 52
    # weekly, 7 daily, 24 hourly, else 1: no season)
    season_length: Annotated[int, Field(ge=1)] | None = None
    static_columns: list[str] = []  # series attributes, constant over time (a store's region): the global model's inputs
    dynamic_columns: list[str] = []  # known in advance for every future step (a price, a holiday flag): the global model's inputs
    lags: list[Annotated[int, Field(ge=1)]] | None = None  # global model: past values as inputs; null: 1, 2, 3 and season_length
    windows: list[Annotated[int, Field(ge=2)]] | None = None  # global model: rolling means of the last value over these windows; null: [season_length]
    difference: bool = True  # global model: learns the change from one step to the next (trending series)
    max_iter: Annotated[int, Field(ge=1, le=5000)] = 200  # global model: boosting iterations (scikit-learn HistGradientBoostingRegressor)
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.05  # global model: shrinkage of each iteration
    families: list[Literal["seasonal_naive", "ets", "global"]] = list(FAMILIES)  # compared on the backtest; seasonal_naive is always the baseline
    backtest_windows: Annotated[int, Field(ge=1, le=100)] = 3  # rolling origins before the held-out horizon
    backtest_step: Annotated[int, Field(ge=1)] | None = None  # steps between two origins; null: horizon
    metric: Literal["mase", "smape", "rmse"] = "mase"  # chooses the family on the backtest (mean over windows)
    max_history: Annotated[int, Field(ge=2)] | None = None  # the latest steps of each series the models learn from; null: all
    coverage: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.9  # conformal intervals from the backtest's errors: nominal coverage
    # monitor: a series drifted in level when its mean seasonal change now, over its historic mean
    # seasonal change (its MASE scale), reaches this in absolute value
    level_drift: Annotated[float, Field(gt=0.0)] = 3.0
    # monitor: a series drifted in seasonality when its latest season's profile correlates below this
    # with its history's last season
    season_drift: Annotated[float, Field(ge=-1.0, le=1.0)] = 0.5
    seed: int = 42

    @model_validator(mode="after")
    def _consistent(self) -> ForecastParams:
        if not self.id_columns:
            raise ValueError("id_columns: name the column(s) of the series id, e.g. [series_id]")
        if not self.families:
            raise ValueError("families: list at least one of " + ", ".join(FAMILIES))
        both = sorted(set(self.static_columns) & set(self.dynamic_columns))
        if both:
            raise ValueError(f"static_columns and dynamic_columns both list {both}; a column is one or the other")
        ids = sorted(set(self.id_columns) & set(self.static_columns + self.dynamic_columns))
        if ids:
            raise ValueError(f"id_columns {ids} are also listed as features; a series id is not a feature")
        if self.freq is not None:
            import pandas as pd

            try:
                pd.tseries.frequencies.to_offset(self.freq)
            except ValueError:
                raise ValueError(f"freq '{self.freq}' is not a pandas frequency such as MS (month starts), "
                                 "W-SUN, D or h; null infers it from the data") from None
        return self

    def step(self) -> int:
        """Steps between two backtest origins."""
        return self.backtest_step or self.horizon


def check(params) -> None:
    """What a forecast needs of the whole params file (core/config.py calls it when the task runs);
    with train.search, the global family to search and only its ranges in train.search.space."""
    fc = params.forecasting
    if fc is None:
        raise ValueError("data.task is forecast: the `forecasting` section must name id_columns and horizon "
                         "(see examples/us-employment/params.yaml)")
    if params.data.time_column is None:
        raise ValueError("data.task is forecast: data.time_column must name the time of each row")
    named = {params.data.target, params.data.time_column}
    for key in ("id_columns", "static_columns", "dynamic_columns"):
        clash = sorted(named & set(getattr(fc, key)))
        if clash:
            raise ValueError(f"forecasting.{key} lists {clash}, which is data.target or data.time_column")
    s = params.train.search
    if s.method == "none":
        return
    if "global" not in fc.families:
        raise ValueError(f"train.search.method {s.method} searches the global model's settings; forecasting.families "
                         "does not list global: add it, or set train.search.method: none")
    from mlcycle.core.config import SEARCHABLE  # here: core/config.py loads this module's section

    other = sorted(set(s.space) - set(SEARCHABLE["global"]))
    if other:
        raise ValueError(f"train.search.space: {other} are not searched for a forecast; it searches "
                         f"{', '.join(SEARCHABLE['global'])} (lags, windows and difference among sets derived from the season)")


DOCS = {
    "section": "Task forecast only (null otherwise): one row per series and time in data.path, the value in data.target,\n"
               "the time in data.time_column. See docs/forecast.md and `mlcycle init --example us-employment`.",
    "keys": {
        "forecasting": "null unless data.task is forecast",
        "forecasting.id_columns": "the columns naming a series (one or more)",
        "forecasting.horizon": "steps ahead forecast; the last horizon of each series is held out for evaluate",
        "forecasting.freq": "the step between times, a pandas frequency (MS, W-SUN, D, h ...); null: the most common step of the data",
        "forecasting.season_length": "steps in a season; null: from the frequency (12 monthly, 4 quarterly, 52 weekly, 7 daily, 24 hourly, else 1)",
        "forecasting.static_columns": "series attributes constant over time: inputs of the global model",
        "forecasting.dynamic_columns": "columns known in advance for every future step: inputs of the global model (a caller sends their future values)",
        "forecasting.lags": "global model: past values as inputs; null: 1, 2, 3 and season_length",
        "forecasting.windows": "global model: rolling means of the last value over these windows; null: [season_length]",
        "forecasting.difference": "global model: learns the change from one step to the next (for trending series)",
        "forecasting.max_iter": "global model: boosting iterations (scikit-learn HistGradientBoostingRegressor)",
        "forecasting.learning_rate": "global model: shrinkage of each boosting iteration",
        "forecasting.families": "model families compared on the backtest: seasonal_naive | ets (statsmodels, per series) | global (mlforecast, one model over every series)",
        "forecasting.backtest_windows": "rolling origins before the held-out horizon, each forecasting horizon steps",
        "forecasting.backtest_step": "steps between two backtest origins; null: horizon",
        "forecasting.metric": "chooses the family on the backtest (its mean over windows): mase | smape | rmse",
        "forecasting.max_history": "the latest steps of each series the models learn from; null: all",
        "forecasting.coverage": "nominal coverage of the conformal intervals built from the backtest's errors",
        "forecasting.level_drift": "monitor: a series drifted in level when |the mean seasonal change y_t - y_{t-season} now| / its historic mean |seasonal change| (its MASE scale) reaches this",
        "forecasting.season_drift": "monitor: a series drifted in seasonality when its latest full season's profile correlates below this with its history's last season",
        "forecasting.seed": "seed of the global model",
    },
}

