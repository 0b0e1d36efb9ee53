"""One ranked findings list from the task tables, with stable ids (not API; see perflink.summary).

Every task writes its own findings table; here each row becomes a row of one common frame
(:data:`FINDING_COLUMNS`). Rows of one problem -- one entity and one metric (else the rule,
scheme or mapping the finding is about) in the review quarter -- become one item under one
``finding_id``, carrying the evidence of every task that reported it. Items are ranked by one
rule (:func:`rank`): severity, then money at stake, then how long they have stayed open, then
the entity's place in the entities table and the metric's place in the catalog.
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
    "evidence",
    "tasks",
    "other_messages",
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


def problem_id(entity_id: object, subject: object) -> str:
    """Stable id of a summary item: one problem of one entity, whatever task reported it.

    ``subject`` is the metric the problem is about (else the rule, scheme or mapping). The
    same problem in consecutive quarters keeps its id, so the review loop can tell new from
    persisting items; a problem reported by two tasks (a recognition gap found by the mapping
    rules and by the anomaly detector) is one item.
    """
    return finding_id("summary", "problem", entity_id, subject)


def _text(x: object) -> str:
    if x is None or x is pd.NA or (isinstance(x, float) and np.isnan(x)):
        return ""
    return str(x)


def _blank(s: pd.Series) -> pd.Series:
    return s.astype(object).where(s.notna(), None).map(lambda v: None if v in ("", None) else v)


def _rows(
    df: pd.DataFrame, task: str, kind: pd.Series | str, key: pd.Series, at_stake: pd.Series
) -> pd.DataFrame:
    """The common frame; ``at_stake`` is money at risk (>= 0) or NaN where not priced."""
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


def _higher(df: pd.DataFrame, higher: Mapping[str, bool] | None) -> pd.Series:
    """Per row: more of its metric is better (metrics the catalog lacks: True)."""
    return _col(df, "metric_id").map(lambda m: bool((higher or {}).get(m, True)))


def from_validation(
    df: pd.DataFrame, factors: Mapping[str, float], rule_factors: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """``validation_findings`` (mapping): one key per check, rule (else metric), entity.

    A rule breach puts ``|value - expected|`` at stake when the rule's sides are money
    (``rule_factors``: rule id -> factor to the catalog's money unit), else when the metric
    it checks is (``factors``: metric id -> factor, money metrics only,
    :meth:`perflink.catalog.Catalog.in_money_unit`). A breach is a mismatch of two records
    of the same figure, so either direction is at risk.
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
    unit). A missed target puts its year-to-date gap at stake (converted by ``factors``,
    money metrics only); the quarter's gap is part of it and is not added, so where a
    target is missed both in the quarter and year to date only the year-to-date row is
    priced (a quarter-only miss, the year to date being met, is priced by its quarter gap).
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
    scope = _col(df, "scope").astype(object)
    ytd = missed & (scope == "ytd")
    pairs = set(zip(df.loc[ytd, "entity_id"], metric[ytd], strict=True)) if ytd.any() else set()
    shadowed = pd.Series(
        [(e, m) in pairs for e, m in zip(_col(df, "entity_id"), metric, strict=True)],
        index=df.index,
    )
    priced = missed & (ytd | ~shadowed)
    money[priced] = _in_money(df, _num(df, "gap"), factors)[priced]
    return _rows(df, "kpi", kind, key, money)


def from_forecast(
    df: pd.DataFrame, factors: Mapping[str, float], higher: Mapping[str, bool] | None = None
) -> pd.DataFrame:
    """``forecast_deviation``: flagged projected misses (severity other than info); the
    expected shortfall (in the metric's unit) is at stake for money metrics. A projection on
    the favourable side of budget (``higher``: metric id -> more is better) puts nothing at
    stake: it is no risk, whatever its severity."""
    df = df[df["severity"].isin([s for s in SEVERITIES if s != "info"])]
    sign = np.where(_higher(df, higher), 1.0, -1.0)
    favourable = (sign * _num(df, "deviation_pct")) >= 0
    at_stake = _in_money(df, _num(df, "at_stake"), factors).where(~favourable)
    return _rows(df, "forecast", "projected_miss", _col(df, "metric_id"), at_stake)


def from_anomalies(df: pd.DataFrame, higher: Mapping[str, bool] | None = None) -> pd.DataFrame:
    """``anomalies``: one finding per entity and metric, whichever detector flagged it.

    Anomalies explained by an approved adjustment are kept at ``info`` severity. A move on
    the favourable side of what was expected (a cost below, a saving above; ``higher``:
    metric id -> more is better), or one the table marks ``favourable``, puts nothing at
    stake; a ``linkage`` anomaly (a figure that does not match its drivers) is a mismatch of
    records and is at risk either way.
    """
    df = df.copy()
    if "explained_by" in df:
        explained = df["explained_by"].fillna("").astype(str) != ""
        df["severity"] = df["severity"].astype(object).where(~explained, "info")
    if "favourable" in df:
        favourable = df["favourable"].fillna(False).astype(bool)
    else:
        sign = np.where(_higher(df, higher), 1.0, -1.0)
        move = sign * (_num(df, "value") - _num(df, "expected"))
        kind = _col(df, "kind").astype(object)
        favourable = (move > 0) & (kind != "linkage")
    at_stake = _num(df, "at_stake").where(~favourable)
    out = _rows(df, "anomaly", "anomaly", _col(df, "metric_id"), at_stake)
    out["explained"] = explained.to_numpy() if "explained_by" in df else False
    return out


def with_explanations(kept: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """``kept`` and the explained anomalies of ``rows`` about the same entity and metric as
    one of its rows: an approved adjustment is no problem of its own (it stays below the
    list), but an item it bears on (the unit's projected miss of the metric the event cut)
    carries it as evidence, so the list says the miss includes an approved event."""
    if "explained" not in rows or kept.empty:
        return kept
    # (with min_severity info the explained rows are kept already: not twice)
    expl = rows[rows["explained"].fillna(False).astype(bool) & ~rows.index.isin(kept.index)]
    pairs = set(zip(kept["entity_id"], kept["metric_id"], strict=True))
    on = [(e, m) in pairs for e, m in zip(expl["entity_id"], expl["metric_id"], strict=True)]
    return pd.concat([kept, expl[np.asarray(on, dtype=bool)]], ignore_index=True)


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

    # tens of thousands of findings share a few dozen periods: parse each text once
    seen: dict[str, bool] = {}

    def once(p: object) -> bool:
        if not isinstance(p, str):
            return ok(p)
        if p not in seen:
            seen[p] = ok(p)
        return seen[p]

    return period.map(once).astype(bool)


#: Order of the tasks when two report one problem with equal severity and money.
TASK_ORDER: tuple[str, ...] = ("kpi", "forecast", "mapping", "anomaly")


def merge(rows: pd.DataFrame, names: Mapping[str, str], lang: str) -> pd.DataFrame:
    """One item per problem (entity and metric, else rule / scheme / mapping; a weak mapping
    is about its mapping), with the evidence of every task that reported it.

    Evidence is first merged per task, kind and key (a rule breach in two months is one
    piece of evidence; its money is the months' sum). The item then takes the worst
    severity of its evidence, the largest money at stake of any one piece (the tasks price
    the same problem; their amounts are not added), the leading piece's message (worst
    severity, then most money, then :data:`TASK_ORDER`) and the other pieces' messages in
    ``other_messages``; ``evidence`` lists ``task:kind`` of every piece, ``tasks`` the tasks.
    """
    if rows.empty:
        return pd.DataFrame(columns=list(FINDING_COLUMNS))
    rows = rows.copy()
    # an info row (an anomaly an approved adjustment explains) is evidence, not money at risk
    rows["at_stake"] = rows["at_stake"].where(rows["severity"] != "info")
    rows["evidence_id"] = [
        finding_id(t, k, e, key)
        for t, k, e, key in zip(
            rows["source_task"], rows["finding_kind"], rows["entity_id"], rows["key"], strict=True
        )
    ]
    # the problem is about the metric; a weak mapping is about the mapping, not its target
    by_metric = rows["metric_id"].notna() & ~(
        (rows["source_task"] == "mapping") & (rows["finding_kind"] == "driver")
    )
    rows["subject"] = rows["metric_id"].where(by_metric, rows["key"]).map(_text)
    rows["finding_id"] = [
        problem_id(e, s) for e, s in zip(rows["entity_id"], rows["subject"], strict=True)
    ]
    rows["_sev"] = rows["severity"].map(SEVERITY_RANK).fillna(len(SEVERITIES))
    rows["_money"] = rows["at_stake"].fillna(-1.0)
    rows["_per"] = rows["period"].map(_text)
    rows["_task"] = rows["source_task"].map({t: i for i, t in enumerate(TASK_ORDER)}).fillna(9)
    rows = rows.sort_values(
        ["evidence_id", "_sev", "_money", "_per"], ascending=[1, 1, 0, 0], kind="stable"
    )
    g = rows.groupby("evidence_id", sort=False)
    ev = g.head(1).set_index("evidence_id").copy()
    ev["at_stake"] = g["at_stake"].sum(min_count=1)
    ev["_money"] = ev["at_stake"].fillna(-1.0)
    ev["_pers"] = g["_per"].agg(lambda s: sorted({p for p in s if p}))
    # several priced months: the money shown beside the message is their sum, say so
    key = np.where(g["at_stake"].count() > 1, "summary.msg.more_money", "summary.msg.more")
    others = ([x for x in ps if x != p] for ps, p in zip(ev["_pers"], ev["_per"], strict=True))
    # "1 more period", "2 more periods": one key per number in English
    more = [
        labels.t(k + ("_one" if len(o) == 1 else ""), lang, n=len(o), periods=", ".join(o[-4:]))
        if o
        else ""
        for k, o in zip(key, others, strict=True)
    ]
    ev["message"] = [f"{m}{x}" for m, x in zip(ev["message"].map(_text), more, strict=True)]
    ev = ev.reset_index().sort_values(
        ["finding_id", "_sev", "_money", "_task"], ascending=[1, 1, 0, 1], kind="stable"
    )
    ev["_ev"] = ev["source_task"].astype(str) + ":" + ev["finding_kind"].astype(str)
    gi = ev.groupby("finding_id", sort=False)
    lead = gi.head(1).set_index("finding_id")
    out = lead[["source_task", "finding_kind", "entity_id", "metric_id", "rule_id"]].copy()
    out["subject"] = lead["subject"]
    out["severity"] = lead["severity"]
    out["at_stake"] = gi["at_stake"].max()
    periods = gi["_pers"].agg(lambda s: sorted({p for ps in s for p in ps}))
    out["n_periods"] = periods.map(len).astype(int)
    out["periods"] = periods.map(", ".join)
    out["period"] = lead["_per"].where(lead["_per"] != "", None)
    out["entity"] = [names.get(str(e), _text(e)) for e in out["entity_id"]]
    out["message"] = lead["message"]
    out["evidence_link"] = [
        link(t, k, lang) for t, k in zip(out["source_task"], out["finding_kind"], strict=True)
    ]
    out["evidence"] = gi["_ev"].agg(", ".join)
    out["tasks"] = gi["source_task"].agg(lambda s: ", ".join(dict.fromkeys(s)))
    out["other_messages"] = gi["message"].agg(lambda s: " | ".join(list(s)[1:]))
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
    entity_order: Mapping[str, int] | None = None,
    subject_order: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Rank items by one rule and add ``rank`` (1 = first).

    Severity first (critical before high ...); within a severity, more money at stake first
    (unpriced items after priced ones); then items open for more quarters; then the entity's
    place in the entities table (``entity_order``: entity id -> position; items without an
    entity last) and the subject's place in the catalog (``subject_order``: metric, then
    rule / mapping id -> position); then task, kind and subject text. Nothing depends on a
    hash of ids, so renaming every id ranks the same problems the same way.
    """
    f = findings.copy()
    big = 10**9  # after every real position
    keys = pd.DataFrame(
        {
            "sev": f["severity"].map(SEVERITY_RANK).fillna(len(SEVERITIES)).astype(float),
            "money": -f["at_stake"].astype(float).fillna(-np.inf).clip(lower=-1e300),
            "open": -pd.to_numeric(f.get("quarters_open", 1), errors="coerce"),
            "entity": f["entity_id"].map(lambda e: (entity_order or {}).get(e, big)),
            "subject": f["subject"].map(lambda s: (subject_order or {}).get(s, big)),
            "task": f["source_task"].map({t: i for i, t in enumerate(TASK_ORDER)}).fillna(9),
            "kind": f["finding_kind"].map(_text),
            "text": f["subject"].map(_text),
        },
        index=f.index,
    )
    order = keys.sort_values(list(keys.columns), kind="stable").index
    f = f.loc[order]
    f["rank"] = np.arange(1, len(f) + 1)
    return f.reset_index(drop=True)


def top(findings: pd.DataFrame, n: int, *, per_kind: int) -> pd.DataFrame:
    """The first ``n`` ranked items: per task and kind at most ``per_kind``, and only the
    first of each entity (of each mapping, for weak-mapping findings); info left out. Critical items are never dropped by these caps
    (nor by ``n``): the caps only keep one kind of lesser problem (dozens of missed unit
    targets) from crowding out the others.
    """
    f = findings[findings["severity"] != "info"]
    critical = f["severity"] == "critical"
    # one per entity and kind; a weak mapping sits at the group but is about its mapping, so
    # two weak mappings are two problems of their own, not one entity's second finding
    driver = (f["source_task"] == "mapping") & (f["finding_kind"] == "driver")
    who = f["entity_id"].astype(object).where(~driver, f["subject"])
    first = (
        f.assign(_who=who).groupby(["source_task", "finding_kind", "_who"], dropna=False).cumcount()
        == 0
    )
    capped = f[~critical & first]
    kept_idx = capped[capped.groupby(["source_task", "finding_kind"]).cumcount() < per_kind].index
    crit = f.index[critical]
    rest = [i for i in kept_idx if i not in set(crit)][: max(n - len(crit), 0)]
    return f.loc[sorted(set(crit) | set(rest), key=f.index.get_loc)].reset_index(drop=True)
