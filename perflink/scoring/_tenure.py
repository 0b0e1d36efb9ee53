"""Bonus linkage and the kpi_findings table (not API; see perflink.scoring).

Tenure targets are in :mod:`perflink.scoring._exec`, the manager assessment in
:mod:`perflink.scoring._manager`.
"""

from __future__ import annotations

import pandas as pd

from perflink import panel
from perflink._report_format import fmt_number
from perflink.labels import t, value_label
from perflink.scoring._rules import coefficient

FINDING_COLUMNS = ["entity_id", "period", "metric_id", "rule_id", "severity", "message"]


def bonus_table(totals, bonus, entities, catalog, year: int) -> pd.DataFrame:
    """Unit bonuses (base x coefficient of the YTD score) and pool payouts vs budgets."""
    cols = ["entity_id", "year", "kind", "base_bonus", "score", "coefficient", "bonus"]
    cols += ["pool_budget", "payout", "overrun", "overrun_pct"]
    if bonus is None or bonus.empty:
        return pd.DataFrame(columns=cols)
    b = bonus[bonus["year"] == year]
    ytd = totals[totals["scope"] == "ytd"].set_index("entity_id")["score"]
    units = b[b["base_bonus"] > 0].copy()
    units["kind"] = "unit"
    units["score"] = units["entity_id"].map(ytd)
    units["coefficient"] = coefficient(units["score"], catalog.policy.bonus_coefficient)
    units["bonus"] = units["base_bonus"] * units["coefficient"]
    chains = panel.ancestors(entities)
    pools = b[b["pool_budget"].notna()].copy()
    pools["kind"] = "pool"
    # each unit's bonus counts for itself and every ancestor: one grouped sum, not pools x units
    pairs = [
        (anc, bonus_)
        for u, bonus_ in zip(units["entity_id"], units["bonus"], strict=True)
        for anc in (u, *chains.get(u, []))
    ]
    member = pd.DataFrame(pairs, columns=["pool", "bonus"])
    payout = member.groupby("pool")["bonus"].sum()
    # float even when no row has a pool budget (mapping an empty text column keeps text)
    pools["payout"] = pools["entity_id"].map(payout).astype("float64").fillna(0.0)
    pools["overrun"] = pools["payout"] - pools["pool_budget"]
    pools["overrun_pct"] = pools["overrun"] / pools["pool_budget"]
    return pd.concat([units, pools], ignore_index=True).reindex(columns=cols)


def _scheme_message(check, schemes: dict[str, str], lang: str) -> str:
    """A scheme's policy breach in words: the scheme by its name (never its code), the
    centre type and category in the page language."""
    rule = str(check.rule_id)
    fields = dict(
        scheme=schemes.get(check.scheme_id, t("scoring.scheme.unnamed", lang)),
        centre=value_label("center_type", check.center_type, lang),
        value=f"{check.value:.0%}",
        limit=f"{check.expected:.0%}",
    )
    if rule == "weights_sum":
        return t("scoring.msg.scheme_sum", lang, **fields)
    category, _, side = rule.rpartition("_")
    if side not in ("min", "max"):
        return str(check.message)
    word = value_label("category", category, lang)
    word = word if lang == "zh" else word.lower()
    return t(f"scoring.msg.scheme_{side}", lang, category=word, **fields)


def findings_table(
    checks,
    bonus_df,
    decomposition,
    entities,
    q,
    lang,
    money_unit: str | None,
    schemes: dict[str, str] | None = None,
) -> pd.DataFrame:
    """kpi_findings: scheme violations, bonus overruns and missed tier-1 targets.

    Bonus amounts are in the catalog's money unit (``money_unit``; plain numbers if the
    catalog has no money metric).
    """
    root = entities.loc[entities["parent_id"].isna(), "entity_id"]
    root_id = str(root.iloc[0]) if len(root) else ""
    rows = []
    for c in checks.itertuples():
        rows.append(
            dict(
                entity_id=c.entity_id if isinstance(c.entity_id, str) else root_id,
                period=str(q),
                metric_id=None,
                rule_id=f"scheme_{c.rule_id}",
                severity=c.severity,
                message=_scheme_message(c, schemes or {}, lang),
                scheme_id=c.scheme_id,
                value=c.value,
                expected=c.expected,
            )
        )
    over = bonus_df[(bonus_df["kind"] == "pool") & (bonus_df["overrun"] > 0)]
    for r in over.itertuples():
        msg = t(
            "scoring.msg.bonus_overrun",
            lang,
            name=decomposition.names.get(r.entity_id, r.entity_id),
            payout=fmt_number(r.payout, money_unit, lang),
            budget=fmt_number(r.pool_budget, money_unit, lang),
            overrun=fmt_number(r.overrun, money_unit, lang),
            pct=f"{r.overrun_pct:.0%}",
        )
        rows.append(
            dict(
                entity_id=r.entity_id,
                period=str(q),
                metric_id=None,
                rule_id="bonus_overrun",
                severity="critical" if r.overrun_pct > 0.2 else "high",
                message=msg,
                value=r.payout,
                expected=r.pool_budget,
            )
        )
    own = pd.DataFrame(rows, columns=[*FINDING_COLUMNS, "scheme_id", "value", "expected"])
    missed = decomposition.findings  # value / expected: actual and target, the metric's unit
    out = pd.concat([own, missed], ignore_index=True)
    return out.reindex(columns=[*FINDING_COLUMNS, *[c for c in out if c not in FINDING_COLUMNS]])
