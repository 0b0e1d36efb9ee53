"""Definitions every task shares: the severity scale, the findings schema, quarters,
column checks, review windows and the status of a completion ratio.

One place for what would otherwise be defined once per task (issue 13: the severity scale
was defined seven times, quarter parsing five times, "facts lacks column" checks four).
Presentation (number, money and period formatting) lives in ``perflink._report_format``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from typing import Any

import numpy as np
import pandas as pd

from perflink.errors import InputError, ParamsError, PerflinkError, ReportError

__all__ = [
    "ACTUAL_STATUSES",
    "FINDINGS_COLUMNS",
    "MATERIALITY",
    "OUTLOOK_STATUSES",
    "SEVERITIES",
    "SEVERITY_RANK",
    "WINDOW_SCOPES",
    "actual_status",
    "check_findings",
    "outlook_status",
    "parse_quarter",
    "require_columns",
    "review_keywords",
    "severities_from",
    "task_options",
    "window_months",
]

SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")
"""Allowed values of a findings table's ``severity`` column, most severe first."""

SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}
"""Severity -> rank, 0 = most severe (``critical``) to 4 (``info``); sort findings by it."""

FINDINGS_COLUMNS: tuple[str, ...] = ("entity_id", "period", "severity", "message")
"""Columns every findings table has, besides ``metric_id`` or ``rule_id`` (one at least)."""

_QUARTER = re.compile(r"^\d{4}Q[1-4]$")


def severities_from(least: str) -> tuple[str, ...]:
    """The severities at least as severe as ``least``: ``severities_from("high")`` ->
    ``("critical", "high")``.

    Raises
    ------
    ParamsError
        If ``least`` is not one of :data:`SEVERITIES`.
    """
    if least not in SEVERITY_RANK:
        raise ParamsError(f"severity {least!r} is not one of {', '.join(SEVERITIES)}.")
    return SEVERITIES[: SEVERITY_RANK[least] + 1]


def check_findings(
    df: pd.DataFrame,
    name: str,
    *,
    error: type[PerflinkError] = ReportError,
    hint: str = "",
    severities: bool = True,
) -> None:
    """Raise ``error`` unless ``df`` follows the findings contract.

    The contract: columns :data:`FINDINGS_COLUMNS` and ``metric_id`` or ``rule_id``;
    every ``severity`` one of :data:`SEVERITIES`.

    Parameters
    ----------
    df : DataFrame
        The findings table.
    name : str
        Its table name, for the message (``"kpi_findings"``).
    error : type of PerflinkError
        :class:`~perflink.errors.ReportError` when saving a table (default),
        :class:`~perflink.errors.InputError` when reading one another task saved.
    hint : str
        What the user should do, appended to the message about missing columns.
    severities : bool
        Also check every ``severity`` value (default); ``False`` checks the columns only.

    Raises
    ------
    PerflinkError
        ``error``, naming the table, the missing columns or the bad severities and rows.
    """
    cols = set(map(str, df.columns))
    missing = [c for c in FINDINGS_COLUMNS if c not in cols]
    if not cols & {"metric_id", "rule_id"}:
        missing.append("metric_id or rule_id")
    if missing:
        raise error(
            f"findings table {name!r} lacks column(s) {', '.join(missing)} "
            f"(has: {', '.join(map(str, df.columns))}); every findings table needs entity_id, "
            f"period, metric_id or rule_id, severity, message.{' ' + hint if hint else ''}"
        )
    bad = ~df["severity"].isin(SEVERITIES)
    if severities and bad.any():
        rows = [int(i) for i in bad.to_numpy().nonzero()[0][:5]]
        values = sorted({repr(v) for v in df.loc[bad, "severity"]})[:5]
        raise error(
            f"findings table {name!r}: severity {', '.join(values)} at row(s) "
            f"{', '.join(str(r + 1) for r in rows)} (1-based) is not one of "
            f"{', '.join(SEVERITIES)}."
        )


def parse_quarter(quarter: object) -> pd.Period:
    """The review quarter as ``pd.Period(..., "Q")``, from ``"2026Q3"`` or a quarterly Period.

    Raises
    ------
    ParamsError
        If ``quarter`` is neither a string of the form ``YYYYQn`` nor a quarterly Period.
    """
    if isinstance(quarter, pd.Period) and quarter.freqstr.startswith("Q"):
        return quarter
    if isinstance(quarter, str) and _QUARTER.match(quarter.strip()):
        return pd.Period(quarter.strip(), freq="Q")
    raise ParamsError(
        f"quarter: {quarter!r} is not a quarter; write it as a quoted string like '2026Q3'."
    )


def require_columns(df: object, columns: Iterable[str], *, table: str, hint: str = "") -> None:
    """Raise :class:`InputError` unless ``df`` is a DataFrame with every one of ``columns``.

    Parameters
    ----------
    df : DataFrame
        The table to check (not modified).
    columns : iterable of str
        The columns it needs.
    table : str
        Its name for the message (``"facts"``, ``"entities"``).
    hint : str
        What the user should do; default: load the table with ``perflink.load_inputs``.

    Raises
    ------
    InputError
        Naming the table, the missing columns and the columns it has.
    """
    hint = hint or "load it with perflink.load_inputs (see docs/data-contract.md)."
    if not isinstance(df, pd.DataFrame):
        raise InputError(
            f"{table} table must be a pandas DataFrame, got {type(df).__name__}; {hint}"
        )
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(
            f"{table} table lacks column(s) {', '.join(missing)} "
            f"(has: {', '.join(map(str, df.columns))}); {hint}"
        )


#: Review windows: the quarter itself, or the year to date (January .. quarter end).
WINDOW_SCOPES = ("quarter", "ytd")


#: What reads the facts of some entity ids with every input column, ``source_ref`` included
#: (:meth:`perflink.review.Review.fact_lineage`): a run's kernels read the facts without it.
Lineage = Callable[[Collection[str]], pd.DataFrame]


def facts_with_refs(
    facts: pd.DataFrame, entity_ids: Collection[str], lineage: Lineage | None
) -> pd.DataFrame:
    """``facts`` when they carry ``source_ref`` (or nothing can read it), else the facts of
    ``entity_ids`` with it, read by ``lineage``: where a finding names its source records."""
    if "source_ref" in facts or lineage is None:
        return facts
    return lineage(entity_ids)


def window_months(quarter: pd.Period, scope: str) -> tuple[pd.Period, pd.Period]:
    """First and last month (``Period[M]``) of the review window ``scope`` of ``quarter``.

    Parameters
    ----------
    quarter : pandas.Period
        The review quarter (frequency ``Q``).
    scope : {"quarter", "ytd"}
        ``quarter``: its three months; ``ytd``: January of its year to its last month.
    """
    end = quarter.asfreq("M", "end")
    if scope == "quarter":
        return quarter.asfreq("M", "start"), end
    if scope == "ytd":
        return pd.Period(f"{quarter.year}-01", "M"), end
    raise ParamsError(f"scope {scope!r} is unknown; use one of {', '.join(WINDOW_SCOPES)}")


#: Share of the group's profit target (or budget) a money shortfall must reach to be a
#: ``high`` finding of the KPI decomposition or the forecast: 5% of profit, the usual overall
#: materiality of an audit. A unit's noise around its budget is not a group-level problem.
MATERIALITY = 0.05

#: Status codes of actuals (against a target) and of outlooks (against a budget), in order
#: from good to bad; labels ``report.value.status.<code>``, colours in ``perflink.charts``.
ACTUAL_STATUSES = ("met", "near_miss", "missed")
OUTLOOK_STATUSES = ("on_track", "at_risk", "off_track")


def actual_status(
    actual: Any, target: Any, *, points: Any, higher: Any, options: Any
) -> np.ndarray:
    """Status of actuals against targets: ``met``, ``near_miss`` or ``missed`` (None unknown).

    Parameters
    ----------
    actual, target : array-likes of the figures.
    points : bool or array of bool: scored in points (rates, growth: ``actual - target``
        against ``options.near_miss_points``) rather than by ratio (``actual / target``
        against ``options.near_miss``; a target at or below zero is compared in points of
        the target's size: ``(actual - target) / |target|``).
    higher : bool or array of bool: more is better (else less is, and the gap is mirrored).
    options : :class:`perflink.options.StatusOptions`.
    """
    a = np.asarray(actual, dtype=float)
    t = np.asarray(target, dtype=float)
    sign = np.where(np.asarray(higher, dtype=bool), 1.0, -1.0)
    with np.errstate(all="ignore"):
        gap = sign * (a - t)  # >= 0: met
        rel = np.where(np.abs(t) > 0, gap / np.abs(t), np.where(gap >= 0, 0.0, -np.inf))
    near = np.where(
        np.asarray(points, dtype=bool),
        gap >= -options.near_miss_points,
        rel >= options.near_miss - 1,
    )
    out = np.where(gap >= 0, "met", np.where(near, "near_miss", "missed")).astype(object)
    out[~(np.isfinite(a) & np.isfinite(t))] = None
    return out


def outlook_status(p_meet: Any, deviation_pct: Any, *, options: Any) -> np.ndarray:
    """Status of full-year outlooks: ``on_track``, ``at_risk`` or ``off_track`` (None unknown).

    The probability of meeting budget decides where there is one (at least
    ``options.on_track``: on track; below ``options.off_track``: off track); otherwise the
    projected deviation from budget, as a signed fraction where positive is favourable
    (at or above 0: on track; within ``1 - options.near_miss``: at risk). A status therefore
    never contradicts the probability shown beside it.
    """
    p = np.asarray(p_meet, dtype=float)
    d = np.asarray(deviation_pct, dtype=float)
    by_p = np.where(
        p >= options.on_track, "on_track", np.where(p < options.off_track, "off_track", "at_risk")
    )
    by_d = np.where(
        d >= 0, "on_track", np.where(d >= options.near_miss - 1, "at_risk", "off_track")
    )
    out = np.where(np.isfinite(p), by_p, by_d).astype(object)
    out[~(np.isfinite(p) | np.isfinite(d))] = None
    return out


def task_options(review: Any, block: str, options: Any = None) -> Any:
    """The options a task's entry point runs with: ``options`` when given (not None), else
    the review's ``block:`` params block (``review.params.<block>``).

    Raises
    ------
    ParamsError
        If ``options`` is None and ``review`` is not an open review with that block.
    """
    if options is not None:
        return options
    params = getattr(review, "params", None)
    if not hasattr(params, block):
        raise ParamsError(
            f"{block}: expected a review from perflink.open_review(...) whose params have a "
            f"'{block}:' block, got {type(review).__name__}; open the review first"
        )
    return getattr(params, block)


def review_keywords(
    review: Any, block: str, options: Any = None, *, executor: bool = True
) -> dict[str, Any]:
    """The keywords a task's entry point passes from an open review to its panel function.

    ``quarter``, ``options`` (:func:`task_options`), ``language`` and, when ``executor``,
    ``executor``; the task passes its input tables itself, since each reads different ones.
    """
    chosen = task_options(review, block, options)  # first: it says what a non-review lacks
    keywords = {"quarter": review.quarter, "options": chosen, "language": review.language}
    if executor:
        keywords["executor"] = review.executor
    return keywords
