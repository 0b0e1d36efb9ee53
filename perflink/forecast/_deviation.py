"""Full-year projection against budget and assessment target; early-warning flags (not API).

Projected full year = actual year to date + the simulated rest of the year, per path, so
the interval and the probability of meeting the budget come from the paths (interval
bounds are never added up). Budgets: the year's monthly budgets (12 months), else an
annual budget row, else the months present completed with last year's budgets of the
missing months scaled by this year's / last year's budgets of the months present
(``budget_basis`` = ``monthly`` | ``annual`` | ``extrapolated``). Subsidiaries and the
group use their own target rows when present, else the sum of their units'.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perflink import labels
from perflink._report_format import fmt_figure, fmt_number


def monthly_budgets(targets, ids, members, metrics, year) -> tuple[dict, dict]:
    """Monthly budget arrays per metric (E, 12) for ``year`` and the basis per entity."""
    out, basis = {}, {}
    b = targets[(targets["kind"] == "budget") & targets["metric_id"].isin(metrics)]
    for metric in metrics:
        rows = b[b["metric_id"] == metric]
        arr = np.full((len(ids), 12), np.nan)
        bas = np.full(len(ids), "", dtype=object)
        mon = rows[rows["period"].notna()]
        cur = mon[mon["year"] == year]
        prev = mon[mon["year"] == year - 1]
        cur_w = _pivot(cur, ids)
        prev_w = _pivot(prev, ids)
        annual = rows[rows["period"].isna() & (rows["year"] == year)].groupby("entity_id")["target"]
        annual = annual.sum()
        for e, eid in enumerate(ids):
            c = cur_w[e]
            if np.isfinite(c).all():
                arr[e], bas[e] = c, "monthly"
            elif eid in annual.index:
                arr[e] = np.full(12, annual[eid] / 12.0)
                if np.isfinite(c).any():  # keep the monthly shape, scale to the annual total
                    fill = np.where(np.isfinite(c), c, np.nan)
                    miss = ~np.isfinite(fill)
                    fill[miss] = (annual[eid] - np.nansum(c)) / max(miss.sum(), 1)
                    arr[e] = fill
                bas[e] = "annual"
            elif np.isfinite(c).any() and np.isfinite(prev_w[e]).all():
                have = np.isfinite(c)
                ratio = np.nansum(c) / prev_w[e][have].sum() if prev_w[e][have].sum() else 1.0
                arr[e] = np.where(have, c, prev_w[e] * ratio)
                bas[e] = "extrapolated"
        out[metric], basis[metric] = arr, bas
    _aggregate(out, basis, ids, members)
    return out, basis


def _pivot(rows, ids) -> np.ndarray:
    arr = np.full((len(ids), 12), np.nan)
    if rows.empty:
        return arr
    pos = {e: i for i, e in enumerate(ids)}
    r = rows["entity_id"].map(pos)
    ok = r.notna().to_numpy()
    months = rows["period"].dt.month.to_numpy()[ok] - 1
    arr[r.to_numpy()[ok].astype(int), months] = 0.0
    np.add.at(arr, (r.to_numpy()[ok].astype(int), months), rows["target"].to_numpy()[ok])
    return arr


def _aggregate(out, basis, ids, members) -> None:
    """Parents without their own budget: sum of their units' (when every unit has one)."""
    pos = {e: i for i, e in enumerate(ids)}
    for metric, arr in out.items():
        for parent, idx in members.items():
            p = pos.get(parent)
            if p is None or basis[metric][p]:
                continue
            kids = arr[idx]
            has = np.isfinite(kids).any(axis=1)
            if has.any() and np.isfinite(kids[has]).all():
                arr[p] = kids[has].sum(axis=0)
                kinds = set(basis[metric][idx][has])
                basis[metric][p] = "extrapolated" if "extrapolated" in kinds else "monthly"


def assessment_targets(targets, ids, members, metrics, year) -> dict:
    """Annual assessment target per metric (E,), NaN when not given."""
    a = targets[
        (targets["kind"] == "assessment") & (targets["year"] == year) & targets["period"].isna()
    ]
    pos = {e: i for i, e in enumerate(ids)}
    out = {}
    for metric in metrics:
        arr = np.full(len(ids), np.nan)
        s = a[a["metric_id"] == metric].groupby("entity_id")["target"].sum()
        for eid, v in s.items():
            if eid in pos:
                arr[pos[eid]] = v
        for parent, idx in members.items():
            p = pos.get(parent)
            if p is not None and not np.isfinite(arr[p]) and np.isfinite(arr[idx]).all():
                arr[p] = arr[idx].sum()
        out[metric] = arr
    return out


def leading(actual_drv, budget_drv, cutoff_pos: int, months: int) -> tuple[np.ndarray, ...]:
    """A leading driver over the last ``months`` months: total, ratio to budget, change vs
    last year."""
    t = actual_drv.shape[1]
    lo = cutoff_pos - months + 1
    recent = np.nansum(actual_drv[:, lo : cutoff_pos + 1], axis=1)
    recent[~np.isfinite(actual_drv[:, lo : cutoff_pos + 1]).any(axis=1)] = np.nan
    ly = np.full(len(recent), np.nan)
    if lo - 12 >= 0 and cutoff_pos < t:
        ly = np.nansum(actual_drv[:, lo - 12 : cutoff_pos - 11], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        vs_budget = recent / budget_drv - 1.0
        vs_ly = np.where(ly > 0, recent / ly - 1.0, np.nan)
    return recent, vs_budget, vs_ly


def classify(adverse_pct, p_miss, status, options) -> np.ndarray:
    """Severity per row, never against the outlook ``status`` shown beside it.

    high/medium (a flagged miss): off track, more than ``miss_pct`` adverse and a chance of
    missing above ``min_probability`` (high from ``severe_miss_pct``); low (watch): off
    track or at risk otherwise; info: on track or unknown.
    """
    status = np.asarray(status, dtype=object)
    off = status == "off_track"
    flagged = off & (adverse_pct > options.miss_pct) & (p_miss > options.min_probability)
    watch = (off | (status == "at_risk")) & ~flagged
    sev = np.where(
        flagged,
        np.where(adverse_pct >= options.severe_miss_pct, "high", "medium"),
        np.where(watch, "low", "info"),
    )
    return sev.astype(object)


def lead_lags(lag: int) -> str:
    """Months a metric follows its leading driver, as quoted: ``"1–2"`` for lag 1.

    The driver regression (:mod:`perflink.forecast._fit`) reads the driver ``lag`` and
    ``lag + 1`` months back.
    """
    return f"{lag}–{lag + 1}"


def _spaced(entity: str, metric: str, lang: str) -> str:
    """The entity name to put right before the metric name in a zh template: with a space
    when both are written in Latin letters at the join ("West Footwear Net sales")."""
    if lang == "zh" and entity[-1:].isascii() and entity[-1:].isalnum() and metric[:1].isascii():
        return entity + " "
    return entity


def messages(
    df: pd.DataFrame,
    names: dict,
    metric_names: dict,
    lang: str,
    *,
    units: dict,
    leads: dict,
) -> list[str]:
    """One message per deviation row, from the label templates, with its numbers.

    Amounts are formatted in the row metric's catalog unit (``units``: metric -> unit); a
    flagged or watched row of a metric with a leading indicator (``leads``: metric ->
    (driver, lag)) quotes the driver's recent months, in the driver's unit.
    """
    out = []
    for row in df.itertuples(index=False):
        unit = units.get(row.metric_id)
        entity = names.get(row.entity_id, row.entity_id)
        metric = metric_names.get(row.metric_id, row.metric_id)
        fmt = dict(
            entity=_spaced(entity, metric, lang),
            metric=metric,
            year=row.year,
            projected=fmt_number(row.projected, unit, lang),
            lo=fmt_number(row.lo_80, unit, lang),
            hi=fmt_number(row.hi_80, unit, lang),
        )
        if not np.isfinite(row.budget):
            out.append(labels.t("forecast.msg.no_budget", lang, **fmt))
            continue
        # the template follows the status shown beside the message
        key = {"off_track": "forecast.msg.miss", "at_risk": "forecast.msg.watch"}.get(
            getattr(row, "status", None), "forecast.msg.on_course"
        )
        text = labels.t(
            key,
            lang,
            budget=fmt_number(row.budget, unit, lang),
            # rounded as the table shows them (rates: percent with one decimal)
            pct=fmt_figure(row.deviation_pct, "+.1%"),
            p=fmt_number(row.p_meet_budget, "pct", lang),
            **fmt,
        )
        lead = leads.get(row.metric_id)
        if lead and row.severity in ("high", "medium", "low") and np.isfinite(row.lead_vs_budget):
            driver, lag = lead
            # the gap persists when the driver moved the adverse way (mappings have sign +1)
            adverse = (
                row.lead_vs_budget < 0 if row.direction == "higher" else row.lead_vs_budget > 0
            )
            trend = "forecast.msg.lead_persists" if adverse else "forecast.msg.lead_narrows"
            ly = "—" if not np.isfinite(row.lead_vs_last_year) else f"{row.lead_vs_last_year:+.0%}"
            text += " " + labels.t(
                trend,
                lang,
                months=row.lead_months,
                driver=metric_names.get(driver, driver),
                metric=fmt["metric"],
                lags=lead_lags(lag),
                amount=fmt_number(row.lead_recent, units.get(driver), lang),
                vs_budget=f"{row.lead_vs_budget:+.0%}",
                vs_ly=ly,
            )
        out.append(text)
    return out
