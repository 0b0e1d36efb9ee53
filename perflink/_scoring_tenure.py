"""Bonus linkage, tenure targets and the kpi_findings table (not API; see perflink.scoring).

Tenure rule (任期制契约化): annual targets either grow by ``annual_growth`` a year from the
actual of the year before the tenure, or split ``total_target`` evenly over the tenure years.
The current year's plan share is the elapsed months / 12 (flows); tenure progress is the
cumulative actual over the cumulative target to date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perflink import panel
from perflink._scoring_rules import coefficient

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
    payout = {}
    for pid in pools["entity_id"]:
        members = [u for u in units["entity_id"] if pid in chains.get(u, []) or u == pid]
        payout[pid] = float(units.loc[units["entity_id"].isin(members), "bonus"].sum())
    pools["payout"] = pools["entity_id"].map(payout)
    pools["overrun"] = pools["payout"] - pools["pool_budget"]
    pools["overrun_pct"] = pools["overrun"] / pools["pool_budget"]
    return pd.concat([units, pools], ignore_index=True).reindex(columns=cols)


def findings_table(checks, bonus_df, decomposition, entities, q, lang) -> pd.DataFrame:
    """kpi_findings: scheme violations, bonus overruns and missed tier-1 targets."""
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
                message=c.message,
                scheme_id=c.scheme_id,
                value=c.value,
                expected=c.expected,
            )
        )
    over = bonus_df[(bonus_df["kind"] == "pool") & (bonus_df["overrun"] > 0)]
    for r in over.itertuples():
        msg = (
            f"{decomposition.names.get(r.entity_id, r.entity_id)} 按考核结果应发奖金 "
            f"{r.payout:,.1f} 万元，超出奖金池预算 {r.pool_budget:,.1f} 万元 "
            f"{r.overrun:,.1f} 万元（{r.overrun_pct:.0%}），发放前需调整"
            if lang == "zh"
            else f"{decomposition.names.get(r.entity_id, r.entity_id)}: bonuses by score "
            f"come to {r.payout:,.1f} (CNY 10k), {r.overrun:,.1f} ({r.overrun_pct:.0%}) over the "
            f"pool budget of {r.pool_budget:,.1f}; resolve before paying"
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
    missed = decomposition.findings.assign(value=decomposition.findings["completion"])
    out = pd.concat([own, missed], ignore_index=True)
    return out.reindex(columns=[*FINDING_COLUMNS, *[c for c in out if c not in FINDING_COLUMNS]])


def tenure_table(options, decomposition, entities, catalog, q, lang) -> pd.DataFrame:
    """Executives' tenure targets: annual targets, actuals and progress to date."""
    cols = ["entity_id", "manager", "metric_id", "start_year", "end_year", "year"]
    cols += ["annual_target", "actual", "completion", "cumulative_target", "cumulative_actual"]
    cols += ["tenure_progress"]
    panels = decomposition.panels
    ents = set(panels.actual.index.get_level_values("entity_id"))
    managers = dict(zip(entities["entity_id"], entities["manager"], strict=True))
    last = q.asfreq("M", "end")
    rows = []
    annual_windows: dict[int, pd.DataFrame] = {}  # one window per year, shared by all entries

    def year_window(y: int) -> pd.DataFrame:
        if y not in annual_windows:
            end = min(pd.Period(f"{y}-12", "M"), last)
            annual_windows[y] = panel.window(panels.actual, catalog, pd.Period(f"{y}-01", "M"), end)
        return annual_windows[y]

    for item in options.tenure:
        if item.entity_id not in ents or item.metric_id not in catalog.metrics:
            continue
        years = list(range(item.start_year, item.end_year + 1))

        def actual(y, item=item):
            if pd.Period(f"{y}-01", "M") > last:
                return np.nan
            return float(year_window(y).loc[item.entity_id, item.metric_id])

        if item.total_target is not None:
            annual = [item.total_target / len(years)] * len(years)
        else:
            base = actual(item.start_year - 1)
            g = item.annual_growth or 0.0
            annual = [base * (1 + g) ** (k + 1) for k in range(len(years))]
        cum_t = cum_a = 0.0
        for y, target in zip(years, annual, strict=True):
            if y > q.year:
                break
            share = last.month / 12 if y == q.year else 1.0
            value = actual(y)
            cum_t += target * share
            cum_a += value
            rows.append(
                dict(
                    entity_id=item.entity_id,
                    manager=item.manager or managers.get(item.entity_id),
                    metric_id=item.metric_id,
                    start_year=item.start_year,
                    end_year=item.end_year,
                    year=y,
                    annual_target=target * share,
                    actual=value,
                    completion=value / (target * share) if target else np.nan,
                    cumulative_target=cum_t,
                    cumulative_actual=cum_a,
                    tenure_progress=cum_a / sum(annual) if sum(annual) else np.nan,
                )
            )
    return pd.DataFrame(rows, columns=cols)
