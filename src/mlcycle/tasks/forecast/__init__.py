"""The forecast task (data.task `forecast`, docs/forecast.md): a long table of series in (series
id columns, a time, the value, optional static and dynamic columns), forecasts of the next
`forecasting.horizon` steps of each series out, with conformal intervals.

- `params`: its params section `forecasting`, what each key means, what it needs of params.yaml
- `series`: reading and checking the series (findings naming them), the step and season, gap filling
- `families`: seasonal naive, exponential smoothing (statsmodels), a global gradient-boosted model (mlforecast)
- `backtest`: the held-out horizon, the rolling-origin backtest, MASE / sMAPE / RMSE, conformal intervals
- `stages`: what the stage notebooks under notebooks/forecast/ call
- `model`: the saved model (an MLflow pyfunc forecasting known series or a caller's history)
- `card`: its parts of the model card (the backtest, the held-out horizon, the worst series, the intervals)
- `serve`: what the server adds: `POST /forecast`, `GET /forecast/series`, feedback of actuals
- `monitor`: the forecasts against the actuals fed back (or a file): MASE and coverage now against the
  backtest's promise, level and seasonality drift per series
"""

from mlcycle.core.tasks import GateKind, Task

TASK = Task(
    name="forecast",
    objectives=("forecast",),
    summary="forecasts of many time series (seasonal naive, exponential smoothing, a global gradient-boosted model)",
    targets={"forecast": "numbers"},
    feedback_noun="actuals",
    params_section="forecasting",
    params_model="mlcycle.tasks.forecast.params:ForecastParams",
    params_doc="mlcycle.tasks.forecast.params:DOCS",
    stage_params={"validate": ("forecasting",), "eda": ("forecasting",), "features": ("forecasting",),
                  "train": ("forecasting",), "evaluate": ("forecasting",)},
    monitor_module="mlcycle.tasks.forecast.monitor",
    card_sections="mlcycle.tasks.forecast.card:sections",
    serving_module="mlcycle.tasks.forecast.serve",
    keeps_batches=True,  # new observations are the history: `monitoring retrain` adds every batch
    releases=(),  # /forecast answers from the champion only: no canary or shadow routing (serving/release.py)
    # MASE: below 1 beats the seasonal naive on the series' own history; the floor only stops a model
    # far worse than repeating the last season
    gate_kinds=(GateKind("forecast", tells=("mase",), primary="mase", minimums={},
                         metrics=("mase", "smape", "coverage"), lower_is_better=("mase", "smape")),),
    hooks={"index": "mlcycle.tasks.forecast.stages:index_section",
           "load": "mlcycle.tasks.forecast.model:load_registered",
           "check_params": "mlcycle.tasks.forecast.params:check",
           "infer_params": "mlcycle.tasks.forecast.series:infer_section",
           "sample": "mlcycle.tasks.forecast.series:sample"},
)
