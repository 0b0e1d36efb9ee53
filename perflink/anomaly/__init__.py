"""Anomaly detection on single time series (spikes, level shifts, trend breaks).

:func:`detect_series` scores one series; :func:`detect_frame` scores many
equal-length series (one per column) in one vectorised pass and is what panel
detection over the facts table builds on.  Both are pure functions of their
input: same input, same output.

:func:`run` detects the anomalies of an open review (notebook 04) with
:func:`detect_anomalies`, the panel detection over the facts table; :func:`features_of`
says which features of a catalog its multivariate detector compares.

Methods (``attrs["method"]`` of the result):

``robust_seasonal``
    at least two full seasons plus three points: robust seasonal index
    (median per position in the cycle), short slope-corrected running-median
    trend, residuals scored against a robust noise sd (MAD based, widened
    locally in volatile stretches), plus a two-window median test for level
    shifts and trend breaks (flagged at the first point of the new level).
    Details in ``perflink/anomaly/_core.py``.
``short_series_mad``
    at least 6 observed points but too few for the seasonal method: the same
    without a seasonal component.
``count_robust_seasonal``, ``count_short_series_mad``
    small counts (non-negative whole numbers, median at most 20): the same on
    the Anscombe scale 2 sqrt(y + 3/8), with at least Poisson noise; counts
    need four full seasons for the seasonal method.
``quarterly_steps``
    a monthly series holding one value per quarter (calendar quarters first, else
    quarters starting a month or two later, as a fiscal year from February): scored
    per quarter (season 4), flagged at the first month of the quarter that moved.
``insufficient_history``
    fewer than 6 observed points: nothing is flagged.

The flag rate is the parameter (``flag_rate``, ``anomaly.flag_rate`` in the
params): the thresholds are read off how often each test fires on real series
with no anomaly (tail tables from the M3 monthly and quarterly development
series, ``perflink/anomaly/_rates.py``).  At the default 1 flag per 100 points
an anomaly of 4 noise sd is found about 2 times in 3, one of 6 noise sd about
9 times in 10 (monthly); ``benchmarks/anomaly_bench.py`` prints the whole
recall-versus-flag-rate curve.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from perflink.anomaly._features import Feature, features_of
from perflink.anomaly._panel import DETECTORS, detect_anomalies
from perflink.anomaly._results import (
    TABLE_COLUMNS,
    AnomalyCounts,
    AnomalyResult,
    PeerComparison,
)
from perflink.anomaly._series import COLUMNS, detect_frame, detect_series
from perflink.common import review_keywords
from perflink.execution import releases_memory
from perflink.options import AnomalyOptions

if TYPE_CHECKING:
    from perflink.review import Review

__all__ = [
    "COLUMNS",
    "DETECTORS",
    "TABLE_COLUMNS",
    "AnomalyCounts",
    "AnomalyResult",
    "Feature",
    "PeerComparison",
    "detect_anomalies",
    "detect_frame",
    "detect_series",
    "features_of",
    "run",
]


@releases_memory
def run(review: Review, *, options: AnomalyOptions | None = None) -> AnomalyResult:
    """Find the review quarter's anomalies and say why (notebook 04's entry point).

    :func:`detect_anomalies` on the review's facts, entities, adjustments and catalog,
    with the keywords every task takes from it (:func:`perflink.common.review_keywords`).

    Parameters
    ----------
    review, options : perflink.review.Review, AnomalyOptions or None
        The open review; ``options`` overrides its ``anomaly:`` block.

    Returns
    -------
    AnomalyResult
        ``.to_frame()`` is the ``anomalies`` findings table; ``.counts`` gives
        ``anomaly_counts``.

    Raises
    ------
    InputError, ParamsError, RunError
        As :func:`detect_anomalies`.
    """
    tables = (review.facts, review.entities, review.catalog)
    keywords = review_keywords(review, "anomaly", options)
    return detect_anomalies(
        *tables, adjustments=review.adjustments, lineage=review.fact_lineage, **keywords
    )
