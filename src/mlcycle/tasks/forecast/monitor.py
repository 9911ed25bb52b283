"""Task `forecast`: its monitor, not built yet. It is to judge the champion's forecasts against the
actuals fed back to `/forecast` answers (MASE and interval coverage now against the held-out
horizon's: docs/forecast.md); until then every entry point says so."""

from __future__ import annotations

from mlcycle.core.errors import MonitorError

NOT_YET = ("monitor: monitoring forecasts is not built yet (docs/forecast.md): it is to judge the "
           "forecasts against the actuals fed back to /forecast answers")


def check(root, params, served, current=None, days=None, now=None) -> dict:
    raise MonitorError(NOT_YET)


def summary(verdict: dict) -> str:
    raise MonitorError(NOT_YET)


def takeaways(verdict: dict) -> str:
    raise MonitorError(NOT_YET)


def tables_of(verdict: dict) -> dict:
    raise MonitorError(NOT_YET)


def metrics_of(verdict: dict) -> dict:
    raise MonitorError(NOT_YET)
