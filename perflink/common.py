"""Definitions every task shares: review windows and the status of a completion ratio.

One place for what would otherwise be defined once per task (the house issue: quarter
windows were parsed five times, statuses derived in two places).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perflink.errors import ParamsError

__all__ = ["WINDOW_SCOPES", "status_of", "window_months"]

#: Review windows: the quarter itself, or the year to date (January .. quarter end).
WINDOW_SCOPES = ("quarter", "ytd")


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


def status_of(completion: pd.Series, miss: float) -> pd.Series:
    """Status of completion ratios: green (>= 100%), amber (>= ``miss``), red (below), NA if unknown."""
    c = completion.to_numpy(dtype=float)
    out = np.where(c >= 1.0, "green", np.where(c >= miss, "amber", "red"))
    return pd.Series(np.where(np.isnan(c), None, out), index=completion.index, dtype="str")
