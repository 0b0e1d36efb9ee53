"""KPI analysis: the three-tier driver tree, variance attribution and exact formula attribution.

:func:`run` decomposes an open review (notebook 02).

:func:`decompose` explains why each entity hit or missed its tier-1 targets (quarter and
year-to-date, against target and against the same period last year): the variance of every
tier-1 metric is attributed through tier-2 financial drivers down to tier-3 business drivers,
in the tier-1 metric's own unit (see :mod:`perflink.kpi._tree` for the three kinds of link and
:mod:`perflink.kpi._panels` for how targets are resolved). Missed tier-1 targets become findings
traced to their business cause.

Scoring basis and status
------------------------

Each tier-1 row (and each scorecard row of :mod:`perflink.scoring`) compares actual with
target on the metric's catalog basis (``scoring_basis``; :attr:`perflink.catalog.Metric.in_points`):
:func:`completion` is shown only where a ratio means something (ratio basis, a target above
zero, within :data:`COMPLETION_RANGE`); :func:`attainment` is what the scheme rules score
(ratio, points scaled to the ``status:`` block, or points of ``|target|`` for a target at or
below zero); the status (met / narrowly missed / missed) is
:func:`perflink.common.actual_status` with the review's ``status:`` block, and a tier-1 row
whose status is ``missed`` is a finding. See :mod:`perflink.kpi._basis` for the exact rule.

Formula attribution
-------------------

:func:`attribute` splits ``f(actual) - f(base)`` into one contribution per input of a catalog
formula; :func:`attribute_frame` does the same for many rows at once (entities x periods).

Method
------
``"shapley"`` (default) gives input *i* the Shapley value of the game
``v(S) = f(inputs in S at actual, the rest at base) - f(base)``::

    phi_i = sum over S not containing i of |S|! (n-|S|-1)! / n! * (v(S + i) - v(S))

It is the average of the step-by-step substitution over all n! orders, so no input is favoured
by its position; contributions sum to the total change, unchanged inputs get exactly 0, and
symmetric inputs get equal shares (for ``price * qty`` it gives each factor half of the joint
``dprice * dqty`` term). The formula is first split at top-level ``+``/``-`` (Shapley values add
up over a sum of games), and each term is enumerated exactly over its 2^m corners.

A term with more than :data:`MAX_EXACT` changing inputs (2^12 = 4,096 corners) is estimated by
permutation sampling with antithetic pairs (each order and its reverse) and a fixed seed; each
sampled order's steps telescope to the total change, so the estimates still sum to it exactly.
A :class:`AttributionWarning` reports the largest standard error.

``"sequential"`` is the textbook chain substitution (连环替代法): inputs move from base to actual
one at a time in ``order`` and each takes the change of its step. The result depends on the order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from perflink.common import task_options
from perflink.execution import releases_memory
from perflink.kpi._attribute import (
    MAX_EXACT,
    METHODS,
    AttributionWarning,
    attribute,
    attribute_frame,
)
from perflink.kpi._basis import COMPLETION_RANGE, attainment, compare, completion, format_gap
from perflink.kpi._decompose import (
    build_panels,
    decompose,
    estimate_elasticities,
)
from perflink.kpi._page import TOP_SUBSIDIARIES, PageTable, free_text_header
from perflink.kpi._result import DecompositionResult, KpiPanels, Windowed, named_view
from perflink.options import KpiOptions

if TYPE_CHECKING:
    from perflink.review import Review

__all__ = [
    "COMPLETION_RANGE",
    "MAX_EXACT",
    "TOP_SUBSIDIARIES",
    "METHODS",
    "AttributionWarning",
    "DecompositionResult",
    "KpiPanels",
    "PageTable",
    "attainment",
    "attribute",
    "attribute_frame",
    "build_panels",
    "compare",
    "completion",
    "decompose",
    "decompose_review",
    "estimate_elasticities",
    "format_gap",
    "free_text_header",
    "named_view",
    "run",
    "Windowed",
]


@releases_memory
def run(review: Review, *, options: KpiOptions | None = None) -> DecompositionResult:
    """Decompose the review's tier-1 results down the three-tier tree (notebook 02's entry point).

    :func:`decompose` on the review's facts, targets, entities, adjustments and catalog.

    Parameters
    ----------
    review, options : perflink.review.Review, KpiOptions or None
        The open review (:func:`perflink.open_review`) and what overrides its ``kpi:``
        params block (:func:`perflink.common.task_options`); quarter and language come
        from the review.

    Returns
    -------
    DecompositionResult
        ``.to_frame()`` is the ``attribution`` table; ``.findings`` the missed tier-1
        targets traced to their cause (see :func:`decompose`).

    Raises
    ------
    InputError, ParamsError
        As :func:`decompose`.
    """
    return decompose(
        review.facts,
        review.targets,
        review.entities,
        review.catalog,
        quarter=review.quarter,
        adjustments=review.adjustments,
        options=task_options(review, "kpi", options),
        lang=review.language,
        status=review.params.status,
    )


def decompose_review(review: Review) -> DecompositionResult:
    """The name of :func:`run` before every task had one entry point; kept for callers."""
    return run(review)
