"""Review loop (结果复盘): compare with last quarter's report (not API; see perflink.summary).

Last quarter's ``summary_findings`` table gives the findings that were open then (with their
``first_seen`` quarter and ``quarters_open``); last quarter's ``forecast`` table gives what
was forecast for the months of this quarter.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from perflink.errors import InputError

LOOP_STATUSES: tuple[str, ...] = ("new", "persisting", "resolved")
"""Values of ``loop_status``: first seen this quarter, also open last quarter, gone now."""


def previous_tables(
    tables_dir: Path | None,
    quarter: pd.Period,
    explicit: str | Path | None,
    scope: str | None = None,
) -> Path | None:
    """The previous quarter's ``tables`` folder, or None if there is none.

    ``explicit`` (``summary.previous_report``) may name a report folder or its ``tables``
    folder and must exist; otherwise the folder is ``<tables_dir>/../../<quarter - 1>/tables``
    (the run builds in ``reports/.tmp-.../tables``; the last quarter is ``reports/2026Q2/``,
    or ``reports/2026Q2-<scope>/`` for a review scoped to one entity). Only like is compared
    with like: a previous report whose ``manifest.json`` names another scope (no manifest
    counts as the whole group) is an error when explicit and ignored otherwise, so a scoped
    report never shows the group's findings.
    """
    if explicit is not None:
        path = Path(explicit)
        if (path / "tables").is_dir():
            path = path / "tables"
        if not path.is_dir():
            raise InputError(
                f"summary.previous_report: folder {path} does not exist; give the previous "
                "quarter's report folder (reports/<quarter>) or its tables folder, or remove it."
            )
        found = _report_scope(path)
        if found != scope:
            raise InputError(
                f"summary.previous_report: {path} is the report of scope "
                f"{found or '(whole group)'!r}, this review's scope is {scope or '(whole group)'!r}; "
                "give a previous report of the same scope, or remove summary.previous_report."
            )
        return path
    if tables_dir is None:
        return None
    name = f"{quarter - 1}-{scope}" if scope else str(quarter - 1)
    path = Path(tables_dir).resolve().parent.parent / name / "tables"
    return path if path.is_dir() and _report_scope(path) == scope else None


def _report_scope(tables: Path) -> str | None:
    """``scope`` recorded in the report's ``manifest.json`` (None: whole group or no manifest)."""
    manifest = tables.parent / "manifest.json"
    try:
        scope = json.loads(manifest.read_text(encoding="utf-8")).get("scope")
    except (OSError, ValueError, AttributeError):
        return None
    return scope if isinstance(scope, str) and scope else None


def compare(
    current: pd.DataFrame, previous: pd.DataFrame | None, quarter: pd.Period
) -> pd.DataFrame:
    """Mark each current finding new or persisting and add last quarter's resolved ones.

    Parameters
    ----------
    current : findings with ``finding_id`` (this quarter's, merged).
    previous : last quarter's ``summary_findings`` (``finding_id, first_seen,
        quarters_open, loop_status`` and the finding columns) or None.
    quarter : the review quarter.

    Returns
    -------
    DataFrame: ``current`` plus ``loop_status``, ``first_seen`` (``YYYYQn``), ``quarters_open``
    (quarters in a row the finding has been open, this one included), then one row per
    finding open last quarter and absent now (``loop_status = resolved``, its last-quarter
    columns, ``quarters_open`` = how long it had been open).
    """
    q = str(quarter)
    cur = current.copy()
    cur["loop_status"] = "new"
    cur["first_seen"] = q
    cur["quarters_open"] = 1
    if previous is None or previous.empty:
        return cur
    need = {"finding_id", "first_seen", "quarters_open"}
    missing = need - set(previous.columns)
    if missing:
        raise InputError(
            f"previous summary_findings lacks column(s) {', '.join(sorted(missing))}; it must "
            "come from a perflink summary (delete or replace the previous report's table)."
        )
    prev = previous
    if "loop_status" in prev:
        prev = prev[prev["loop_status"].astype(str) != "resolved"]
    prev = prev.drop_duplicates("finding_id").set_index("finding_id")
    seen = cur["finding_id"].isin(prev.index)
    ids = cur.loc[seen, "finding_id"]
    cur.loc[seen, "loop_status"] = "persisting"
    cur.loc[seen, "first_seen"] = prev.loc[ids, "first_seen"].astype(str).to_numpy()
    cur.loc[seen, "quarters_open"] = prev.loc[ids, "quarters_open"].astype(int).to_numpy() + 1
    gone = prev.loc[~prev.index.isin(cur["finding_id"])].reset_index()
    if gone.empty:
        return cur
    gone = gone.reindex(columns=cur.columns)
    gone["loop_status"] = "resolved"
    out = pd.concat([cur, gone], ignore_index=True)
    out["quarters_open"] = out["quarters_open"].astype(int)
    return out


def forecast_error(
    forecast: pd.DataFrame, actual: pd.DataFrame, quarter: pd.Period
) -> pd.DataFrame:
    """Last quarter's forecast of this quarter against what happened, per entity and metric.

    Parameters
    ----------
    forecast : last quarter's ``forecast`` table (``entity_id, metric_id, period, mean,
        lo_80, hi_80``; periods as ``YYYY-MM`` strings or Periods).
    actual : ``entity_id, metric_id, period (Period[M]), actual`` for this quarter.
    quarter : the review quarter.

    Returns
    -------
    DataFrame, one row per entity and metric forecast for every month of the quarter:
    ``entity_id, metric_id, period`` (the quarter), ``forecast`` and ``actual`` (quarter
    totals, metric unit), ``fc_error = actual - forecast``, ``fc_error_pct = fc_error /
    |forecast|``, ``fc_months`` and ``fc_months_in_80`` (months whose actual fell inside
    the monthly 80% interval).
    Entities without actuals in all months are left out.
    """
    cols = ["entity_id", "metric_id", "period", "forecast", "actual", "fc_error", "fc_error_pct"]
    cols += ["fc_months", "fc_months_in_80"]
    if forecast is None or forecast.empty or actual.empty:
        return pd.DataFrame(columns=cols)
    months = pd.period_range(quarter.asfreq("M", "start"), quarter.asfreq("M", "end"), freq="M")
    f = forecast[["entity_id", "metric_id", "period", "mean", "lo_80", "hi_80"]].copy()
    f["period"] = f["period"].map(lambda p: pd.Period(str(p), "M"))
    f = f[f["period"].isin(months)]
    a = actual[actual["period"].isin(months)]
    m = f.merge(a, on=["entity_id", "metric_id", "period"], how="inner")
    m = m[m["actual"].notna()]
    if m.empty:
        return pd.DataFrame(columns=cols)
    m["in80"] = (m["actual"] >= m["lo_80"]) & (m["actual"] <= m["hi_80"])
    g = m.groupby(["entity_id", "metric_id"], sort=True)
    out = g.agg(
        forecast=("mean", "sum"), actual=("actual", "sum"), fc_months=("period", "nunique"),
        fc_months_in_80=("in80", "sum"),
    ).reset_index()  # fmt: skip
    out = out[out["fc_months"] == len(months)]
    out["period"] = str(quarter)
    out["fc_error"] = out["actual"] - out["forecast"]
    denom = out["forecast"].abs().replace(0.0, np.nan)
    out["fc_error_pct"] = out["fc_error"] / denom
    out["fc_months_in_80"] = out["fc_months_in_80"].astype(int)
    return out[cols].reset_index(drop=True)


def forecast_accuracy(errors: pd.DataFrame, kinds: pd.Series) -> pd.DataFrame:
    """Per metric and entity kind: ``n``, ``fc_mape`` (mean |fc_error_pct|), ``fc_bias`` (mean
    fc_error_pct), ``coverage_80`` (share of months inside the 80% interval)."""
    cols = ["metric_id", "kind", "n", "fc_mape", "fc_bias", "coverage_80"]
    if errors.empty:
        return pd.DataFrame(columns=cols)
    e = errors.assign(kind=errors["entity_id"].map(kinds).fillna("department"))
    e = e.assign(abs_pct=e["fc_error_pct"].abs())
    g = e.groupby(["metric_id", "kind"], sort=True)
    out = g.agg(
        n=("entity_id", "size"), fc_mape=("abs_pct", "mean"), fc_bias=("fc_error_pct", "mean"),
        in80=("fc_months_in_80", "sum"), fc_months=("fc_months", "sum"),
    ).reset_index()  # fmt: skip
    out["coverage_80"] = out["in80"] / out["fc_months"]
    return out[cols]
