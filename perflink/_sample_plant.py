"""Known problems planted in the sample group, recorded in ``truth.yaml``.

Each planted problem changes the simulated values (or the schemes, bonus pools, adjustments)
the way the real-world problem would, and is described by a :class:`Planted` record that later
tasks test their recall against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from perflink._sample_common import (
    Planted,
    budget_miss,
    plant_closure,
    plant_missing,
    plant_spike,
    policy_problems,
)
from perflink._sample_entities import GROUP_ID
from perflink._sample_model import Simulation


@dataclass
class Choices:
    """Which entities carry which planted problem (drawn once per seed)."""

    vat_sub: str
    gap_unit: str
    early_unit: str
    spike_unit: str
    yield_plant: str
    miss_unit: str
    scheme_unit: str
    bonus_sub: str
    event_unit: str
    missing_unit: str
    late_spike_unit: str


def choose(entities: pd.DataFrame, rng: np.random.Generator) -> Choices:
    """Draw distinct entities for each planted problem."""
    units = entities[entities["kind"] == "department"]
    subs = list(entities.loc[entities["kind"] == "subsidiary", "entity_id"])
    vat_sub, bonus_sub = rng.choice(subs, size=2, replace=False)
    sales = units[(units["role"] == "sales") & (units["parent_id"] != vat_sub)]
    gap, early, miss, scheme, event = rng.choice(sales["entity_id"].to_numpy(), 5, replace=False)
    plants = units.loc[units["role"] == "plant", "entity_id"].to_numpy()
    func = units.loc[units["center_type"] == "functional", "entity_id"].to_numpy()
    spike, missing = rng.choice(func, size=2, replace=False)
    plant_unit = rng.choice(plants)
    others = [f for f in func if f not in (spike, missing)]
    late_spike = rng.choice(others) if others else spike  # small groups: reuse a unit
    return Choices(
        str(vat_sub),
        str(gap),
        str(early),
        str(spike),
        str(plant_unit),
        str(miss),
        str(scheme),
        str(bonus_sub),
        str(event),
        str(missing),
        str(late_spike),
    )


def plant(
    sim: Simulation, c: Choices, rng: np.random.Generator, *, anchor: pd.Period, end: pd.Period
) -> list[Planted]:
    """Apply the data-level problems to ``sim`` in place and describe every problem.

    Problems are placed around the ``anchor`` quarter (2026Q3 for the bundled sample), so a
    sample extended past it keeps the same history; one more problem (an expense spike in
    the following quarter) is planted when the sample reaches the end of that quarter.
    """
    v, units, periods = sim.values, sim.units, sim.periods
    row = {eid: i for i, eid in enumerate(units["entity_id"])}
    col = {str(p): j for j, p in enumerate(periods)}
    last = anchor
    q_months = [str(last - 2), str(last - 1), str(last)]
    out: list[Planted] = []

    # 1. a subsidiary reports contract amounts VAT-inclusive (口径: ×1.13)
    mask = (units["parent_id"] == c.vat_sub).to_numpy()
    v["new_contract_amount"][mask] *= 1.13
    out.append(
        Planted(
            "P01",
            "caliber_vat",
            "mapping",
            c.vat_sub,
            ["new_contract_amount", "revenue"],
            [],
            "新签合同额按含税口径（×1.13）填报，与不含税收入口径不一致 / contract amounts "
            "reported VAT-inclusive (×1.13) while revenue is VAT-exclusive",
            {"ratio": 1.13, "rule_id": "R03", "mapping_id": "M01"},
        )
    )

    # 2. revenue recognised 8% above shipments × price in two months of the quarter
    i, gap_months = row[c.gap_unit], q_months[:2]
    for p in gap_months:
        v["revenue"][i, col[p]] *= 1.08
    out.append(
        Planted(
            "P02",
            "recognition_gap",
            "mapping",
            c.gap_unit,
            ["revenue", "shipped_qty", "avg_unit_price"],
            gap_months,
            "确认收入比发货数量×单价高约 8% / revenue 8% above shipments × price",
            {"rule_id": "R01", "size": 0.08},
        )
    )

    # 3. one unit recognises revenue a month before delivery
    i = row[c.early_unit]
    rev = v["revenue"][i].copy()
    v["revenue"][i, :-1] = rev[1:]
    v["revenue"][i, -1] = rev[-1] * rev[-1] / rev[-2]
    out.append(
        Planted(
            "P03",
            "early_recognition",
            "mapping",
            c.early_unit,
            ["revenue", "shipped_qty"],
            [],
            "收入比发货提前一个月确认 / revenue recognised one month before delivery",
            {"lead_months": 1, "rule_id": "R01"},
        )
    )

    # 4. capitalised R&D no longer follows milestones (weak driver)
    rd = ~np.isnan(v["rd_capitalised"][:, 0])
    v["rd_capitalised"][rd] = np.clip(rng.normal(90.0, 30.0, (rd.sum(), len(periods))), 5, None)
    out.append(
        Planted(
            "P04",
            "weak_driver",
            "mapping",
            GROUP_ID,
            ["rd_milestones", "rd_capitalised"],
            [],
            "研发资本化金额与里程碑完成数无关，映射关系失效 / capitalised R&D does not "
            "follow R&D milestones",
            {"mapping_id": "M09"},
        )
    )

    # 5. expense spike
    text = "期间费用异常激增约 80% / operating expenses spike by about 80%"
    out.append(plant_spike(sim, "P05", c.spike_unit, "opex", q_months[1], 0.8, text))

    # 6. yield drop in a plant for the last two months, with its cost consequence
    i = row[c.yield_plant]
    for p in q_months[1:]:
        old = v["yield_rate"][i, col[p]]
        new = old - 0.08
        v["yield_rate"][i, col[p]] = new
        v["production_cost"][i, col[p]] *= old / new
    out.append(
        Planted(
            "P06",
            "yield_drop",
            "anomaly",
            c.yield_plant,
            ["yield_rate", "production_cost"],
            q_months[1:],
            "良品率下降约 8 个百分点，生产成本相应上升 / yield drops by 8 points, "
            "production cost rises",
            {"size": -0.08},
        )
    )

    # 7. a unit loses 20% of new contracts from February: revenue follows a month or two later
    i, driver = row[c.miss_unit], "new_contract_amount"
    metrics = ["revenue", driver, "new_customers"]
    text = (
        "新签合同额自 2 月起下降 20%，全年收入预计低于预算 10% 以上 / new contracts "
        "down 20% since February; full-year revenue on course to miss budget by >10%"
    )
    factor, miss = budget_miss(sim, "P07", c.miss_unit, driver, metrics, last, 2, text)
    rev_factor = 0.55 * np.r_[1.0, factor[:-1]] + 0.45 * np.r_[1.0, 1.0, factor[:-2]]
    v["new_contract_amount"][i] *= factor
    v["new_customers"][i] = np.round(v["new_customers"][i] * np.where(factor < 1, 0.6, 1.0))
    for m in ("shipped_qty", "recognised_qty"):
        v[m][i] = np.round(v[m][i] * rev_factor)
    for m in ("revenue", "cogs"):
        v[m][i] *= rev_factor
    out.append(miss)

    # 8. a typhoon closes a unit for days: a known, approved event (explained, not an anomaly)
    text = (
        "台风停业导致收入下降 35%，已列入不可抗力调整项 / typhoon closure cut revenue "
        "by 35%; recorded as an approved adjustment"
    )
    scaled = ("revenue", "cogs", "shipped_qty", "recognised_qty")
    out.append(plant_closure(sim, "P08", c.event_unit, q_months[0], "revenue", 0.35, scaled, text))

    # 9. a monthly HR value never arrived
    text = "人力资源系统本月在岗人数缺失 / headcount missing from HR"
    out.append(plant_missing(sim, "P09", c.missing_unit, "headcount", str(last), text))

    # 10/11. scheme and bonus problems are applied by the writers; described here
    scheme = (
        "利润中心考核方案财务类权重仅 40%（要求 ≥ 50%） / profit-centre scheme with "
        "40% financial weight (policy requires at least 50%)"
    )
    bonus = (
        "奖金池预算仅为基本奖金合计的 70%，按考核结果发放将超支 / bonus pool is 70% "
        "of base bonuses, so payouts by score exceed it"
    )
    out += policy_problems(("P10", c.scheme_unit, scheme), ("P11", c.bonus_sub, bonus), last.year)
    if end >= last + 3:  # the quarter after the anchor, if the sample has it
        text = "期间费用异常激增约 90% / operating expenses spike by about 90%"
        out.append(plant_spike(sim, "P12", c.late_spike_unit, "opex", str(last + 2), 0.9, text))
    return out
