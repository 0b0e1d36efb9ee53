"""Known problems planted in the retail example, recorded in its ``truth.yaml``.

Problems a US specialty retailer has, not the sample group's (no contracts, no VAT): a region
whose order system reports basket values with sales tax, a returns spike from a faulty batch,
a store-traffic drop that makes a category miss its budget, a carrier surcharge that overruns
fulfilment cost, a hurricane closure recorded as an approved adjustment, a missing warehouse
feed, a one-off at a headquarters function outside every region, a scheme that breaks the
policy and a bonus pool too small for its centres.
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
from perflink._sample_model import Simulation

SALES_TAX = 1.07  # basket values reported with state sales tax in one region
_HURRICANE_REGION = "SE"
HQ_SPIKE_UNIT = "HQ-TEC"  # a function under the group itself, outside every region


@dataclass
class Choices:
    """Which entities carry which planted problem (drawn once per seed)."""

    tax_region: str
    returns_unit: str
    traffic_unit: str
    overrun_dc: str
    event_unit: str
    missing_dc: str
    scheme_unit: str
    bonus_region: str


def choose(entities: pd.DataFrame, rng: np.random.Generator) -> Choices:
    """Draw distinct entities for each planted problem."""
    regions = entities.loc[entities["kind"] == "subsidiary", "entity_id"].to_numpy()
    # hurricanes hit the Southeast: its sales tax caliber stays clean so the event is clear
    tax_region = rng.choice(regions[regions != _HURRICANE_REGION])
    bonus_region = rng.choice(regions)
    profit = entities[entities["center_type"] == "profit"]
    others = profit[profit["parent_id"] != tax_region]
    apparel = others.loc[others["business_line"] == "apparel", "entity_id"].to_numpy()
    returns_unit = rng.choice(apparel)
    rest = others.loc[others["entity_id"] != returns_unit, "entity_id"].to_numpy()
    hurricane = rest[np.char.startswith(rest.astype(str), _HURRICANE_REGION + "-")]
    event_unit = rng.choice(hurricane)
    rest = rest[rest != event_unit]
    traffic_unit, scheme_unit = rng.choice(rest, size=2, replace=False)
    dcs = entities.loc[entities["center_type"] == "cost", "entity_id"].to_numpy()
    overrun_dc, missing_dc = rng.choice(dcs, size=2, replace=False)
    return Choices(
        str(tax_region),
        str(returns_unit),
        str(traffic_unit),
        str(overrun_dc),
        str(event_unit),
        str(missing_dc),
        str(scheme_unit),
        str(bonus_region),
    )


def plant(sim: Simulation, c: Choices, *, anchor: pd.Period) -> list[Planted]:
    """Apply the data-level problems to ``sim`` in place and describe every problem."""
    v, units, periods = sim.values, sim.units, sim.periods
    row = {eid: i for i, eid in enumerate(units["entity_id"])}
    col = {str(p): j for j, p in enumerate(periods)}
    q_months = [str(anchor - 2), str(anchor - 1), str(anchor)]
    out: list[Planted] = []

    # 1. one region's order system reports basket values including sales tax (caliber)
    mask = (units["parent_id"] == c.tax_region).to_numpy() & ~np.isnan(
        v["average_order_value"][:, 0]
    )
    v["average_order_value"][mask] = np.round(v["average_order_value"][mask] * SALES_TAX, 2)
    out.append(
        Planted(
            "P01",
            "caliber_sales_tax",
            "mapping",
            c.tax_region,
            ["average_order_value", "net_sales"],
            [],
            "average order value reported including sales tax (x1.07) in one region, while "
            "net sales exclude it",
            {"ratio": SALES_TAX, "rule_id": "R01", "mapping_id": "M03"},
        )
    )

    # 2. a faulty batch of jackets: returns jump to 32% of gross sales in one month
    i, p = row[c.returns_unit], q_months[1]
    j = col[p]
    gross = v["net_sales"][i, j] + v["returns_amount"][i, j]
    old_net = v["net_sales"][i, j]
    v["returns_amount"][i, j] = gross * 0.32
    v["net_sales"][i, j] = gross - v["returns_amount"][i, j]
    v["cost_of_sales"][i, j] *= v["net_sales"][i, j] / old_net
    out.append(
        Planted(
            "P02",
            "returns_spike",
            "anomaly",
            c.returns_unit,
            ["returns_amount", "returns_rate", "net_sales"],
            [p],
            "returns jump to 32% of gross sales (a faulty batch), net sales fall",
            {"rule_id": "R04", "returns_rate": 0.32},
        )
    )

    # 3. a mall anchor store closes: traffic down 20% from March, sales follow, budget missed
    i, driver = row[c.traffic_unit], "store_traffic"
    metrics = ["net_sales", driver, "order_count"]
    text = (
        "store traffic down 20% since March (a mall anchor closed); full-year net sales "
        "on course to miss budget by more than 10%"
    )
    factor, miss = budget_miss(sim, "P03", c.traffic_unit, driver, metrics, anchor, 3, text)
    v["store_traffic"][i] = np.round(v["store_traffic"][i] * factor)
    orders = np.round(v["store_traffic"][i] * v["conversion_rate"][i])
    scale = orders / v["order_count"][i]
    v["order_count"][i] = orders
    for m in ("returns_amount", "net_sales", "cost_of_sales"):
        v[m][i] *= scale
    out.append(miss)

    # 4. a carrier surcharge: fulfilment cost 22% above standard for the quarter
    i = row[c.overrun_dc]
    for p in q_months:
        v["fulfilment_cost"][i, col[p]] *= 1.22
    out.append(
        Planted(
            "P04",
            "cost_overrun",
            "mapping",
            c.overrun_dc,
            ["fulfilment_cost", "units_shipped"],
            q_months,
            "fulfilment cost 22% above units shipped x standard cost (carrier surcharge)",
            {"rule_id": "R03", "size": 0.22},
        )
    )

    # 5. a hurricane closes stores for days: a known, approved event
    text = "hurricane closure cut net sales by 30%; recorded as an approved adjustment"
    scaled, counted = (
        ("returns_amount", "net_sales", "cost_of_sales"),
        ("store_traffic", "order_count"),
    )
    out.append(
        plant_closure(
            sim, "P05", c.event_unit, q_months[2], "net_sales", 0.30, scaled, text, counted=counted
        )
    )

    # 6. the warehouse feed of on-time fulfilment never arrived for the last month
    text = "on-time fulfilment missing from the warehouse system"
    out.append(plant_missing(sim, "P06", c.missing_dc, "fulfilment_on_time", str(anchor), text))

    # 7. a one-off at a headquarters function (directly under the group, in no region):
    # e-commerce re-platforming consultants booked as admin expense in one month
    text = (
        "admin expense of a headquarters function up about 70% in one month "
        "(re-platforming consultants)"
    )
    out.append(plant_spike(sim, "P07", HQ_SPIKE_UNIT, "admin_expense", q_months[1], 0.7, text))

    # 8/9. scheme and bonus problems are applied by the writers; described here
    scheme = "profit-centre scheme with 45% financial weight (policy requires at least 55%)"
    bonus = "bonus pool is 70% of its centres' base bonuses, so payouts by score exceed it"
    out += policy_problems(
        ("P08", c.scheme_unit, scheme), ("P09", c.bonus_region, bonus), anchor.year
    )
    return out
