"""Forecast one series: point forecast, calibrated intervals, sample paths, backtests.

The method (chosen on holdouts of the last h points of the M3 development training
parts, confirmed on the test points; see ``benchmarks/forecast_bench.py`` and
:mod:`perflink.forecast._models`): classical seasonal adjustment when the seasonality
test on the ACF at lag ``m`` passes (90% test for monthly; quarterly series with two
full years are always adjusted), then the median of Theta, damped-trend Holt and an
ARIMA(p,1,q) chosen by AICc, on the adjusted series, re-seasonalised. On the M3 dev
test points: monthly sMAPE 13.43 / MASE 0.839, quarterly 9.11 / 1.099 (M3 THETA:
13.60 / 0.842 and 9.03 / 1.104).
Intervals are Student t (5 df) with the damped model's h-step sd as scale, times a
factor calibrated on holdouts inside the M3 training parts (monthly 0.98, quarterly
and other 1.23); on the M3 dev test points 80%/95% intervals cover 81.9%/96.2%
(monthly) and 80.8%/94.0% (quarterly).

Degenerate input never raises (``result.attrs["method"]`` says what was done):

- no observations (all NaN): NaN forecast, method ``no_data``;
- one observation: naive forecast; the one-step scale is 10% of ``|y|`` (1.0 when
  ``y == 0``) and grows like a random walk, ``scale_h = scale_1 * sqrt(h)``;
- constant series: flat forecast with zero-width intervals, method ``constant``;
- 2-3 observations: naive with random-walk scale from the first differences;
- NaN inside the series: linear interpolation; leading NaN dropped; trailing NaN:
  the model forecasts from the last observed value over the extra steps;
- every observed value >= 0 (sales, staff numbers...): forecasts, bounds and paths are
  clipped at 0.

Per-series functions are pure, so panel code can run them under joblib.

Review entry points (notebook 03): :func:`run` gives a review's :class:`ForecastResult`
(the ``forecast`` and ``forecast_deviation`` tables), :func:`backtest` its
:class:`BacktestResult` (``forecast_backtest``); the backtest is kept apart because it costs
more than the forecast and only the forecast page shows it.

Panel layer (every unit, subsidiary and the group; see :mod:`perflink.forecast._panel`):
:func:`forecast_panel` projects the fiscal year against budget and assessment target
with early-warning flags and outlook statuses (:func:`perflink.common.outlook_status`),
:func:`backtest_panel` measures the panel method by rolling-origin backtests and by the
full year at every level, the profit metric included. Panel paths are joint
(:mod:`perflink.forecast._joint`): each future month draws one historical month's
innovations for every unit and metric together, profit is the unit's formula per path,
parents are the sums of their units' paths, and the level and the spread are calibrated
per metric and level on forecasts of the same length made from recent months (windows
ending at the cutoff: out of sample). On the panel, seasonal indices are pooled per business line
and centre type (:mod:`perflink.forecast._season`), because the per-series ACF test
misses a clear yearly pattern in three years of monthly data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from perflink.common import review_keywords
from perflink.execution import releases_memory
from perflink.forecast import _panel as _fp
from perflink.forecast._backtest import accuracy, backtest_series
from perflink.forecast._backtest_panel import backtest_panel
from perflink.forecast._results import (
    BacktestResult,
    DeviationResult,
    ForecastResult,
    ForecastTextResult,
)
from perflink.forecast._run import forecast_panel
from perflink.forecast._series import forecast_paths, forecast_series
from perflink.options import ForecastOptions

if TYPE_CHECKING:
    from perflink.review import Review

__all__ = [
    "BacktestResult",
    "DeviationResult",
    "ForecastResult",
    "ForecastTextResult",
    "accuracy",
    "backtest",
    "backtest_panel",
    "backtest_series",
    "forecast_panel",
    "forecast_paths",
    "forecast_series",
    "run",
]


@releases_memory
def run(review: Review, *, options: ForecastOptions | None = None) -> ForecastResult:
    """Forecast the rest of the fiscal year for a review and project it against budget.

    Notebook 03's entry point: :func:`forecast_panel` on the review's facts, targets,
    entities and catalog. The backtest of the method is a separate entry point,
    :func:`backtest`: it costs more than the forecast and the summary does not need it.

    Parameters
    ----------
    review, options : perflink.review.Review, ForecastOptions or None
        The open review (:func:`perflink.open_review`) and what overrides its ``forecast:``
        params block, passed on as given (:func:`forecast_panel` fills unset metrics and
        profit metric from the catalog's roles, so the notebook and a direct call agree);
        quarter, language and executor come from the review, as for every task
        (:func:`perflink.common.review_keywords`).

    Returns
    -------
    ForecastResult
        What :func:`forecast_panel` returns (the ``forecast`` table and its deviations).

    Raises
    ------
    InputError, ParamsError, RunError
        As :func:`forecast_panel`.
    """
    keywords = review_keywords(review, "forecast", options)
    inputs = _inputs(review, keywords["options"])
    tables = (inputs.facts, inputs.targets, inputs.entities, review.catalog)
    return forecast_panel(*tables, status=review.params.status, **keywords)


@releases_memory
def backtest(review: Review, *, options: ForecastOptions | None = None) -> BacktestResult:
    """Rolling-origin backtest of the forecast method on a review's units.

    :func:`backtest_panel` on the review's facts, entities, catalog and targets.

    Parameters
    ----------
    review, options : perflink.review.Review, ForecastOptions or None
        As for :func:`run`; the backtest reads the ``forecast:`` block's
        ``backtest_origins``, ``backtest_horizon`` and ``backtest_max_units``, and the
        review's targets for the calibration of the probability of meeting budget.

    Returns
    -------
    BacktestResult
        What :func:`backtest_panel` returns (the ``forecast_backtest`` table).

    Raises
    ------
    InputError, ParamsError, RunError
        As :func:`backtest_panel`.
    """
    keywords = review_keywords(review, "forecast", options)
    inputs = _inputs(review, keywords["options"])
    tables = (inputs.facts, inputs.entities, review.catalog)
    return backtest_panel(*tables, targets=inputs.targets, **keywords)


def _inputs(review: Review, options: ForecastOptions | None):
    """The review's inputs with the facts and targets of the metrics a forecast with
    ``options`` reads only (:func:`perflink.forecast._panel.metrics_read`)."""
    resolved = (options or ForecastOptions()).for_catalog(review.catalog)
    return review.inputs_of(_fp.metrics_read(review.catalog, resolved))
