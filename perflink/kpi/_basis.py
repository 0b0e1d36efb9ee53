"""How an actual compares with its target: completion shown, attainment scored, status.

Not API: import :func:`completion`, :func:`attainment` and :func:`compare` from
:mod:`perflink.kpi`. The rule (issue 15 item 4; the catalog's ``scoring_basis`` decides the
basis, :attr:`perflink.catalog.Metric.in_points`):

Completion (shown on pages)
    Only where a ratio means something: a metric scored by ratio with a target above zero;
    ``actual / target`` (``target / actual`` for lower-is-better, with an actual above zero),
    and only within :data:`COMPLETION_RANGE` (0% to 200%). Everywhere else (a rate or a growth,
    scored in points; a target at or below zero; a target so near zero that the ratio leaves the
    range) no completion is shown: the page states the gap (``actual - target``, in the metric's
    own unit; percentage points for rates) instead.

Attainment (what a scheme rule scores; the score stays within 0 .. 100 x cap)
    * ratio basis, target above zero: the completion ratio (not limited to the shown range;
      the score is capped);
    * ratio basis, target at or below zero (a planned loss): ``1 + (actual - target) /
      |target|`` (the gap in points of the target's size; mirrored for lower-is-better), so
      beating the plan still scores above 100;
    * points basis (rates, growth): ``1 + (actual - target) x (1 - near_miss) /
      near_miss_points``: a gap of ``near_miss_points`` (1 point by default) costs what a
      completion of ``near_miss`` (97%) does, so both bases score a narrow miss alike
      (with the default ``status:`` block, 1 point below target scores 97, 10 points 70).

Status (met / narrowly missed / missed)
    :func:`perflink.common.actual_status` with the review's ``status:`` block: the same
    threshold set the attainment is scaled to, so a status never contradicts the figure beside it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from perflink._report_format import fmt_number
from perflink.common import actual_status
from perflink.errors import ParamsError
from perflink.labels import t
from perflink.options import StatusOptions
from perflink.units import parse_unit

#: Completions shown on pages lie in this range (fractions); outside it the gap is shown.
COMPLETION_RANGE = (0.0, 2.0)
#: Attainment handed to the scheme rules is clipped here so that an extreme ratio (a target
#: near zero) gives the floor or the cap rather than an undefined score.
_ATTAINMENT_CLIP = (-10.0, 10.0)


def _arrays(actual: Any, target: Any, higher: Any, points: Any):
    try:
        a = np.asarray(actual, dtype=float)
        t = np.asarray(target, dtype=float)
        if a.shape != t.shape:
            raise ValueError(f"{a.shape} actual vs {t.shape} target values")
        up = np.broadcast_to(np.asarray(higher, dtype=bool), a.shape)
        pts = np.broadcast_to(np.asarray(points, dtype=bool), a.shape)
    except (TypeError, ValueError) as exc:
        raise ParamsError(
            f"completion/attainment: actual and target must be numbers of the same length, "
            f"higher and points booleans (one, or one per row): {exc}"
        ) from None
    return a, t, up, pts


def _index(like: Any) -> pd.Index | None:
    return like.index if isinstance(like, pd.Series) else None


def completion(
    actual: pd.Series | np.ndarray,
    target: pd.Series | np.ndarray,
    higher: pd.Series | np.ndarray | bool,
    *,
    points: pd.Series | np.ndarray | bool = False,
) -> pd.Series:
    """Completion rate as pages show it (fraction), NaN where a ratio means nothing.

    Parameters
    ----------
    actual, target : figures in the metric's unit (same length).
    higher : more is better (bool or one per row); else the ratio is ``target / actual``.
    points : scored in points (bool or one per row; the catalog's
        :attr:`perflink.catalog.Metric.in_points`): no completion.

    Returns
    -------
    pandas.Series
        ``actual / target`` (``target / actual`` for lower-is-better) for ratio-basis rows with
        a target above zero, within :data:`COMPLETION_RANGE`; NaN elsewhere (see the module
        docstring: the page shows the gap instead). Index of ``actual`` when it is a Series.
    """
    a, t, up, pts = _arrays(actual, target, higher, points)
    with np.errstate(all="ignore"):
        ratio = np.where(up, a / t, t / a)
    ok = ~pts & (t > 0) & (up | (a > 0)) & np.isfinite(ratio)
    lo, hi = COMPLETION_RANGE
    ok &= (ratio >= lo) & (ratio <= hi)
    return pd.Series(np.where(ok, ratio, np.nan), index=_index(actual), dtype=float)


def attainment(
    actual: pd.Series | np.ndarray,
    target: pd.Series | np.ndarray,
    higher: pd.Series | np.ndarray | bool,
    *,
    points: pd.Series | np.ndarray | bool = False,
    status: StatusOptions | None = None,
) -> pd.Series:
    """What a scheme rule scores: the completion ratio, or its equivalent for other bases.

    Parameters
    ----------
    actual, target, higher, points : as :func:`completion`.
    status : the ``status:`` block (its ``near_miss`` and ``near_miss_points`` scale the
        points basis); default :class:`perflink.options.StatusOptions`.

    Returns
    -------
    pandas.Series
        Fractions (1.0 = on target; see the module docstring for each basis), clipped to
        [-10, 10]; NaN where actual or target is missing.
    """
    opts = status or StatusOptions()
    a, t, up, pts = _arrays(actual, target, higher, points)
    sign = np.where(up, 1.0, -1.0)
    with np.errstate(all="ignore"):
        gap = sign * (a - t)
        ratio = np.where(up, a / t, t / a)
        in_points = 1.0 + gap * (1.0 - opts.near_miss) / opts.near_miss_points
        of_target = 1.0 + gap / np.abs(t)
        by_ratio = np.where((t > 0) & (up | (a > 0)), ratio, of_target)
        out = np.where(pts, in_points, by_ratio)
        # a target of exactly zero: on target is 1, any gap the floor or the cap
        edge = np.where(gap > 0, np.inf, np.where(gap < 0, -np.inf, 1.0))
    out = np.where(np.isnan(out) & np.isfinite(a) & np.isfinite(t), edge, out)
    out = np.where(np.isfinite(a) & np.isfinite(t), np.clip(out, *_ATTAINMENT_CLIP), np.nan)
    return pd.Series(out, index=_index(actual), dtype=float)


def compare(
    actual: pd.Series,
    target: pd.Series,
    metric_ids: pd.Series,
    catalog: Any,
    *,
    status: StatusOptions | None = None,
) -> pd.DataFrame:
    """Basis, gap, completion, attainment and status of many rows of catalog metrics.

    Parameters
    ----------
    actual, target : figures (aligned Series).
    metric_ids : the catalog metric of each row (its direction and scoring basis).
    catalog : :class:`perflink.catalog.Catalog`.
    status : the ``status:`` block; default :class:`perflink.options.StatusOptions`.

    Raises
    ------
    ParamsError
        A metric id is not in the catalog.

    Returns
    -------
    DataFrame on ``actual``'s index with ``basis`` (``ratio`` / ``points``), ``gap``
    (``actual - target``, metric unit), ``completion``, ``attainment`` and ``status``
    (``met`` / ``near_miss`` / ``missed``, None where a figure is missing).
    """
    opts = status or StatusOptions()
    unknown = sorted({str(m) for m in pd.unique(metric_ids)} - set(catalog.metrics))
    if unknown:
        raise ParamsError(
            f"compare: metric ids {unknown[:5]} are not in the catalog; name metrics of the "
            "catalog's metrics.yaml"
        )
    info = {m: catalog.metrics[m] for m in pd.unique(metric_ids)}
    # dict lookups, not a Python call per row (the attribution has ~500,000 at 2,000 units)
    higher = metric_ids.map({m: i.direction == "higher" for m, i in info.items()})
    points = metric_ids.map({m: i.in_points for m, i in info.items()})
    higher, points = higher.to_numpy(dtype=bool), points.to_numpy(dtype=bool)
    a = actual.astype(float)
    t = target.astype(float).set_axis(a.index)
    return pd.DataFrame(
        {
            "basis": np.where(points, "points", "ratio"),
            "gap": (a - t).to_numpy(),
            "completion": completion(a, t, higher, points=points).to_numpy(),
            "attainment": attainment(a, t, higher, points=points, status=opts).to_numpy(),
            "status": actual_status(a, t, points=points, higher=higher, options=opts),
        },
        index=a.index,
    )


def format_gap(value: float, unit: str | None, lang: str) -> str:
    """A gap ``actual - target`` as a page states it, signed: percentage points for rates
    (``-21.8 个百分点`` / ``-21.8 pts``), else the metric's own unit (``+473.9 万元``)."""
    if value is None or not np.isfinite(value):
        return fmt_number(value, None, lang)
    if unit is not None and parse_unit(unit).is_rate:
        return t("kpi.gap.points", lang, value=f"{value * 100:+.1f}")
    # the sign leads, before any currency code: +CNY 2.8 m and -CNY 386.8 k, never CNY -386.8 k
    text = fmt_number(abs(value), unit, lang)
    return f"+{text}" if value > 0 else f"-{text}" if value < 0 else text
