"""One ranked findings list from the task tables, with stable ids (not API; see perflink.summary).

Every task writes its own findings table; here each row becomes a row of one common frame
(:data:`FINDING_COLUMNS`), rows of the same problem are merged under one ``finding_id`` and the
merged findings are ranked by severity, money at stake and how long they have stayed open.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from urllib.parse import quote

import numpy as np
import pandas as pd

from perflink import labels
from perflink.common import SEVERITIES, SEVERITY_RANK
from perflink.errors import InputError

FINDING_COLUMNS: tuple[str, ...] = (
    "finding_id",
    "source_task",
    "finding_kind",
    "entity_id",
    "entity",
    "period",
    "metric_id",
    "rule_id",
    "subject",
    "severity",
    "at_stake",
    "n_periods",
    "periods",
    "message",
    "evidence_link",
)
"""Columns of the merged findings (before the review-loop columns are added)."""

# Page section (label key of the heading) holding the evidence of each kind of finding.
_SECTIONS: dict[tuple[str, str], str] = {
    ("mapping", "rule"): "mapping.h.rules",
    ("mapping", "timing"): "mapping.h.rules",
    ("mapping", "caliber"): "mapping.h.caliber",
    ("mapping", "driver"): "mapping.h.drivers",
    ("mapping", "missing"): "mapping.h.completeness",
    ("mapping", "catalog_coverage"): "mapping.h.catalog",
    ("kpi", "scheme"): "scoring.heading.findings",
    ("kpi", "bonus_overrun"): "scoring.heading.bonus",
    ("kpi", "tier1_missed"): "kpi.heading.findings",
    ("forecast", "projected_miss"): "forecast.heading.warning",
    ("anomaly", "anomaly"): "anomaly.heading.ranked",
}


def finding_id(task: str, kind: str, entity_id: object, key: object) -> str:
    """Stable id of a finding: a hash of task, kind, entity and metric / rule (no period).

    The same problem found in consecutive quarters gets the same id, so the review loop can
    tell new from persisting findings. Missing parts count as empty strings.
    """
    if not (isinstance(task, str) and task and isinstance(kind, str) and kind):
        raise InputError(
            f"finding_id: task and kind must be non-empty strings, got {task!r}, {kind!r}."
        )
    parts = [task, kind, _text(entity_id), _text(key)]
    digest = hashlib.sha1("|".join(parts).encode("utf-8")).hexdigest()[:10]
    return f"F-{digest}"


def _text(x: object) -> str:
    if x is None or x is pd.NA or (isinstance(x, float) and np.isnan(x)):
        return ""
    return str(x)


def _blank(s: pd.Series) -> pd.Series:
    return s.astype(object).where(s.notna(), None).map(lambda v: None if v in ("", None) else v)


def _rows(
    df: pd.DataFrame, task: str, kind: pd.Series | str, key: pd.Series, at_stake: pd.Series
) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "source_task": task,
            "finding_kind": kind,
            "entity_id": _blank(df["entity_id"]) if "entity_id" in df else None,
            "period": df["period"].astype(object) if "period" in df else None,
            "metric_id": _blank(df["metric_id"]) if "metric_id" in df else None,
            "rule_id": _blank(df["rule_id"]) if "rule_id" in df else None,
            "severity": df["severity"].astype(object),
            "at_stake": pd.to_numeric(at_stake, errors="coerce").abs(),
            "message": df["message"].astype(object),
            "key": key.astype(object),
        },
        index=df.index,
    )
    return out.reset_index(drop=True)


def _col(df: pd.DataFrame, col: str) -> pd.Series:
    """Text column, None where absent (findings have metric_id or rule_id, not always both)."""
    if col not in df:
        return pd.Series(None, index=df.index, dtype=object)
    return df[col]


def _num(df: pd.DataFrame, col: str) -> pd.Series:
    """Numeric column, NaN where absent (optional columns of the task tables)."""
    if col not in df:
        return pd.Series(np.nan, index=df.index)
    return pd.to_numeric(df[col], errors="coerce")


def _in_money(df: pd.DataFrame, amount: pd.Series, factors: Mapping[str, float]) -> pd.Series:
    """``amount`` (in each row's metric unit) in the catalog's money unit; NaN for rows whose
    metric is not money (a gap in a rate or a headcount is no money at stake)."""
    factor = pd.to_numeric(_col(df, "metric_id").map(factors), errors="coerce")
    return amount * factor


def from_validation(
    df: pd.DataFrame, factors: Mapping[str, float], rule_factors: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """``validation_findings`` (mapping): one key per check, rule (else metric), entity.

    A rule breach puts ``|value - expected|`` at stake when the rule's sides are money
    (``rule_factors``: rule id -> factor to the catalog's money unit), else when the metric
    it checks is (``factors``: metric id -> factor, money metrics only,
    :meth:`perflink.catalog.Catalog.in_money_unit`).
    """
    check = df["check"] if "check" in df else pd.Series("rule", index=df.index)
    rule = _col(df, "rule_id")
    key = rule.where(rule.notna() & (rule != ""), _col(df, "metric_id"))
    gap = (_num(df, "value") - _num(df, "expected")).abs()
    by_rule = gap * pd.to_numeric(rule.map(rule_factors or {}), errors="coerce")
    at_stake = by_rule.fillna(_in_money(df, gap, factors)).where(check == "rule")
    return _rows(df, "mapping", check.astype(object), key, at_stake)


def from_kpi(df: pd.DataFrame, factors: Mapping[str, float]) -> pd.DataFrame:
    """``kpi_findings``: scheme violations (per scheme), bonus overruns, missed tier-1 targets.

    A bonus overrun puts the overrun at stake (bonus amounts are in the catalog's money
    unit); a missed target its gap, converted by ``factors`` (money metrics only).
    """
    rule = _col(df, "rule_id").fillna("").astype(str)
    scheme = rule.str.startswith("scheme_")
    kind = rule.where(~scheme, "scheme")
    metric = _col(df, "metric_id")
    key = metric.where(metric.notna(), rule).astype(object)
    if "scheme_id" in df:
        key = key.where(~scheme, df["scheme_id"])
    money = pd.Series(np.nan, index=df.index)
    over = kind == "bonus_overrun"
    money[over] = (_num(df, "value") - _num(df, "expected"))[over]
    missed = kind == "tier1_missed"
    money[missed] = _in_money(df, _num(df, "gap"), factors)[missed]
    return _rows(df, "kpi", kind, key, money)


def from_forecast(df: pd.DataFrame, factors: Mapping[str, float]) -> pd.DataFrame:
    """``forecast_deviation``: flagged projected misses (severity other than info); the
    expected shortfall (in the metric's unit) is at stake for money metrics."""
    df = df[df["severity"].isin([s for s in SEVERITIES if s != "info"])]
    at_stake = _in_money(df, _num(df, "at_stake"), factors)
    return _rows(df, "forecast", "projected_miss", _col(df, "metric_id"), at_stake)


def from_anomalies(df: pd.DataFrame) -> pd.DataFrame:
    """``anomalies``: one finding per entity and metric, whichever detector flagged it.

    Anomalies explained by an approved adjustment are kept at ``info`` severity.
    """
    df = df.copy()
    if "explained_by" in df:
        explained = df["explained_by"].fillna("").astype(str) != ""
        df["severity"] = df["severity"].astype(object).where(~explained, "info")
    return _rows(df, "anomaly", "anomaly", _col(df, "metric_id"), _num(df, "at_stake"))


def fold_calibers(rows: pd.DataFrame, ancestors: Mapping[str, list[str]]) -> pd.DataFrame:
    """Drop rule breaches that a caliber finding on the same rule already explains.

    A caliber problem at a subsidiary (e.g. one side reported with tax) breaks the rule at
    each of its units; leadership needs the cause once, not every symptom.
    """
    cal = rows[(rows["source_task"] == "mapping") & (rows["finding_kind"] == "caliber")]
    if cal.empty:
        return rows
    pairs = set(zip(cal["entity_id"], cal["rule_id"], strict=True))
    is_rule = (rows["source_task"] == "mapping") & (rows["finding_kind"] == "rule")
    covered = [
        bool(r) and any((e2, rid) in pairs for e2 in [e, *ancestors.get(str(e), [])])
        for r, e, rid in zip(is_rule, rows["entity_id"], rows["rule_id"], strict=True)
    ]
    return rows[~np.asarray(covered, dtype=bool)].reset_index(drop=True)


def in_quarter(period: pd.Series, quarter: pd.Period) -> pd.Series:
    """True where ``period`` (``YYYY-MM`` / ``YYYYQn`` / empty) ends in or after ``quarter``.

    Findings dated before the quarter are history (still shown on the task pages) and do not
    count as open in this quarter; findings without a period are structural and do.
    """
    start = quarter.asfreq("M", "start")

    def ok(p: object) -> bool:
        if p is None or p is pd.NA or (isinstance(p, float) and np.isnan(p)) or p == "":
            return True
        try:
            per = p if isinstance(p, pd.Period) else pd.Period(str(p))
        except (ValueError, TypeError):
            return True
        return per.asfreq("M", "end") >= start

    return period.map(ok).astype(bool)


def merge(rows: pd.DataFrame, names: Mapping[str, str], lang: str) -> pd.DataFrame:
    """One row per ``finding_id``: worst severity, summed money, the leading row's message."""
    if rows.empty:
        return pd.DataFrame(columns=list(FINDING_COLUMNS))
    rows = rows.copy()
    rows["finding_id"] = [
        finding_id(t, k, e, key)
        for t, k, e, key in zip(
            rows["source_task"], rows["finding_kind"], rows["entity_id"], rows["key"], strict=True
        )
    ]
    rows["_sev"] = rows["severity"].map(SEVERITY_RANK).fillna(len(SEVERITIES))
    rows["_money"] = rows["at_stake"].fillna(-1.0)
    rows["_per"] = rows["period"].map(_text)
    rows = rows.sort_values(["finding_id", "_sev", "_money", "_per"], ascending=[1, 1, 0, 0])
    g = rows.groupby("finding_id", sort=False)
    lead = g.head(1).set_index("finding_id")
    out = lead[["source_task", "finding_kind", "entity_id", "metric_id", "rule_id"]].copy()
    out["subject"] = lead["key"].map(_text)
    out["severity"] = lead["severity"]
    out["at_stake"] = g["at_stake"].sum(min_count=1)
    periods = g["_per"].agg(lambda s: sorted({p for p in s if p}))
    out["n_periods"] = periods.map(len).astype(int)
    out["periods"] = periods.map(", ".join)
    out["period"] = lead["_per"].where(lead["_per"] != "", None)
    out["entity"] = [names.get(str(e), _text(e)) for e in out["entity_id"]]
    others = [
        [x for x in p if x != lead_p]
        for p, lead_p in zip(periods.reindex(out.index), lead["_per"], strict=True)
    ]
    more = [
        labels.t("summary.msg.more", lang, n=len(o), periods=", ".join(o[-4:])) if o else ""
        for o in others
    ]
    out["message"] = [f"{m}{x}" for m, x in zip(lead["message"].map(_text), more, strict=True)]
    out["evidence_link"] = [
        link(t, k, lang) for t, k in zip(out["source_task"], out["finding_kind"], strict=True)
    ]
    return out.reset_index()[list(FINDING_COLUMNS)]


def link(task: str, kind: str, lang: str) -> str:
    """Relative link to the task page section with the evidence (``kpi.html#...``).

    The anchor follows nbconvert's heading ids (spaces -> ``-``, URL-quoted); the page itself
    is always right even where a heading carries no id.
    """
    page = f"{task}.html"
    key = _SECTIONS.get((task, kind))
    if key is None:
        return page
    try:
        text = labels.t(key, lang)
    except labels.LabelError:
        return page
    if "{" in text:
        return page
    return page + "#" + quote(text.strip().replace(" ", "-"), safe="?/:@!$&'()*+,;=")


def rank(
    findings: pd.DataFrame,
    *,
    severity_points: Mapping[str, float],
    money_points: float,
    persist_points: float,
) -> pd.DataFrame:
    """Sort by ``priority`` = severity points + money points x log10(1 + at_stake) +
    persist points x (quarters_open - 1); ties by money then id. Adds ``priority``, ``rank``.
    """
    f = findings.copy()
    sev = f["severity"].map(lambda s: float(severity_points.get(s, 0.0)))
    money = np.log10(1.0 + f["at_stake"].astype(float).fillna(0.0).clip(lower=0))
    open_q = f["quarters_open"] if "quarters_open" in f else pd.Series(1, index=f.index)
    f["priority"] = sev + money_points * money + persist_points * (open_q.astype(float) - 1)
    f = f.sort_values(
        ["priority", "at_stake", "finding_id"], ascending=[False, False, True], na_position="last"
    )
    f["rank"] = np.arange(1, len(f) + 1)
    return f.reset_index(drop=True)


def top(findings: pd.DataFrame, n: int, *, per_kind: int) -> pd.DataFrame:
    """The first ``n`` ranked findings: per task and kind at most ``per_kind``, and only the
    first of each entity; info left out.

    The caps keep one kind (e.g. dozens of missed unit targets, or one plant's several
    anomalies) from crowding out the others.
    """
    f = findings[findings["severity"] != "info"]
    f = f[f.groupby(["source_task", "finding_kind", "entity_id"], dropna=False).cumcount() == 0]
    kept = f[f.groupby(["source_task", "finding_kind"]).cumcount() < per_kind]
    return kept.head(n).reset_index(drop=True)
