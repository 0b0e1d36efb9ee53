"""The retail example's organisation and its causal monthly simulation.

Cascade Outfitters Group, a fictional US specialty retailer in thousands of US dollars
(kUSD): four regions, each with three category profit centres (apparel, footwear, outdoor
equipment), a fulfilment centre (cost centre) and a regional office (functional centre), plus
three headquarters functions directly under the group. Every array is shaped (units, months).
The causal chain the review tasks must recover:

* marketing spend brings store visits and site sessions the month after;
* traffic × conversion makes orders; orders × average order value make gross sales; returns
  are refunded out of them, the rest is net sales; cost of sales follows net sales at the
  category's margin; inventory covers the next months' cost of sales;
* store headcount drives store operating expense; office headcount drives admin expense;
* the orders of a region's categories are the units its fulfilment centre ships, at a
  standard cost per unit (a little more in peak months).

Planted problems are applied on top by :mod:`perflink._sample_retail_plant`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perflink._sample_common import put
from perflink._sample_model import Simulation

GROUP_ID = "GRP"
#: Entities carry only English names. The loader of today requires ``name_zh``; while it
#: does, the English name is copied into it. Set to False once ``name_zh`` may be empty.
NAME_ZH_FROM_EN = True

REGIONS = [("NE", "Northeast"), ("SE", "Southeast"), ("CT", "Central"), ("WE", "West")]
# category code, display name, business line
CATEGORIES = [
    ("APP", "Apparel", "apparel"),
    ("FTW", "Footwear", "footwear"),
    ("EQP", "Outdoor Equipment", "equipment"),
]
_HQ = [
    ("HQ-MKT", "HQ Brand Marketing", "marketing"),
    ("HQ-TEC", "HQ Technology and E-commerce", "technology"),
    ("HQ-FIN", "HQ Finance and People", "finance"),
]
_FIRST = [
    "James",
    "Mary",
    "Robert",
    "Linda",
    "Michael",
    "Patricia",
    "David",
    "Jennifer",
    "Carlos",
    "Maria",
    "Wei",
    "Aisha",
]
_LAST = [
    "Smith",
    "Johnson",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Lee",
    "Walker",
    "Hall",
    "Nguyen",
    "Patel",
]

_SEASON = {  # monthly demand index, January first (US specialty retail: holiday peak)
    "apparel": [0.80, 0.70, 0.90, 0.95, 1.00, 0.95, 0.90, 1.05, 1.00, 1.00, 1.25, 1.50],
    "footwear": [0.85, 0.75, 0.95, 1.00, 1.00, 0.95, 1.00, 1.15, 1.05, 0.95, 1.10, 1.25],
    "equipment": [0.70, 0.70, 0.90, 1.05, 1.20, 1.30, 1.25, 1.10, 0.95, 0.85, 1.00, 1.20],
}
# per category: visits a month, conversion, average order value (USD), returns rate,
# gross margin rate, units per order
_CATEGORY = {
    "apparel": (300_000, 0.045, 85.0, 0.14, 0.56, 2.2),
    "footwear": (200_000, 0.040, 115.0, 0.10, 0.46, 1.3),
    "equipment": (150_000, 0.030, 190.0, 0.06, 0.40, 1.6),
}
_LEAD = 1  # months simulated before the first reported month (marketing leads traffic)


def build_entities(rng: np.random.Generator) -> pd.DataFrame:
    """The organisation: group, four regions, 20 regional centres and three HQ functions.

    Returns the entities table of the data contract plus a private ``role`` column
    (category / fulfilment / office / hq) that the simulation uses and the writer drops.
    Regions have kind ``subsidiary`` and centres kind ``department`` (the kinds the entities
    table allows); the HQ functions hang directly under the group, one level higher.
    """
    rows = [_row(GROUP_ID, "Cascade Outfitters Group", "", "group", "", "", rng, "group")]
    for code, region in REGIONS:
        rows.append(_row(code, f"{region} Region", GROUP_ID, "subsidiary", "", "", rng, "region"))
        for cat, name, line in CATEGORIES:
            rows.append(
                _row(f"{code}-{cat}", f"{region} {name}", code, "department", "profit", line, rng)
            )
        rows.append(
            _row(
                f"{code}-DC",
                f"{region} Fulfilment Centre",
                code,
                "department",
                "cost",
                "fulfilment",
                rng,
                "fulfilment",
            )
        )
        rows.append(
            _row(
                f"{code}-OFF",
                f"{region} Regional Office",
                code,
                "department",
                "functional",
                "corporate",
                rng,
                "office",
            )
        )
    for eid, name, _ in _HQ:
        rows.append(_row(eid, name, GROUP_ID, "department", "functional", "corporate", rng, "hq"))
    return pd.DataFrame(rows)


def _row(eid, name, parent, kind, center, line, rng, role="category") -> dict:
    manager = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    return dict(
        entity_id=eid,
        name_zh=name if NAME_ZH_FROM_EN else "",
        name_en=name,
        parent_id=parent,
        kind=kind,
        center_type=center,
        business_line=line,
        manager=manager,
        role=role,
    )


def simulate(
    units: pd.DataFrame, periods: pd.PeriodIndex, rng: np.random.Generator, *, anchor: pd.Period
) -> Simulation:
    """Simulate every metric for every centre over ``periods`` (clean: no planted problems).

    Trends are measured from ``anchor``, so a month's values do not depend on how far the
    simulation runs. ``expected`` holds the noise-free values the budgets are made from.
    """
    units = units.reset_index(drop=True)
    n, t_all = len(units), len(periods) + _LEAD
    months = np.array([(periods[0] - _LEAD + i).month for i in range(t_all)])
    years = (np.arange(t_all) - _LEAD - (anchor - periods[0]).n) / 12.0  # 0 at the anchor
    year_idx = np.array([(periods[0] - _LEAD + i).year - anchor.year for i in range(t_all)])
    role, line = units["role"].to_numpy(), units["business_line"].to_numpy()
    region = units["parent_id"].to_numpy()
    noise = lambda sd: np.exp(rng.normal(0.0, sd, (n, t_all)))  # noqa: E731
    cat = role == "category"
    spec = np.array([_CATEGORY.get(b, _CATEGORY["apparel"]) for b in line])
    season = np.stack([np.asarray(_SEASON.get(b, [1.0] * 12))[months - 1] for b in line])
    season = season / season.mean(axis=1, keepdims=True)
    growth = rng.normal(0.05, 0.03, n)[:, None]
    trend = (1.0 + growth) ** years[None, :]
    sim = Simulation(units=units, periods=periods)
    v, e = sim.values, sim.expected

    # --- category profit centres: marketing -> traffic -> orders -> sales ---------------------
    traffic_exp = spec[:, 0:1] * rng.lognormal(0.0, 0.2, (n, 1)) * season * trend
    conv_base = spec[:, 1:2] * rng.uniform(0.9, 1.1, (n, 1))
    aov_base = spec[:, 2:3] * rng.uniform(0.92, 1.08, (n, 1)) * (1 + 0.02 * years[None, :])
    returns_base = spec[:, 3:4] * rng.uniform(0.9, 1.1, (n, 1))
    margin = spec[:, 4:5] + rng.uniform(-0.03, 0.03, (n, 1))
    gross_exp = traffic_exp * conv_base * aov_base / 1000
    net_exp = gross_exp * (1 - returns_base)
    mkt_exp = 0.05 * np.roll(gross_exp, -1, axis=1)  # spend plans next month's demand
    marketing = mkt_exp * noise(0.10)
    lift = np.r_["1", np.ones((n, 1)), (marketing / mkt_exp)[:, :-1]] ** 0.35
    traffic = np.round(traffic_exp * lift * noise(0.04))
    conversion = np.round(conv_base * noise(0.03), 4)
    orders = np.round(traffic * conversion * noise(0.004))
    aov = np.round(aov_base * noise(0.015), 2)
    gross = orders * aov / 1000
    returns_rate = returns_base * noise(0.06)
    returns = gross * returns_rate
    net = (gross - returns) * noise(0.004)
    cost_of_sales = net * (1 - margin) * noise(0.012)
    hc_base = np.round(net_exp.mean(axis=1, keepdims=True) / 28.0)
    store_hc = np.round(hc_base * (1 + 0.3 * (season - 1))) + rng.integers(-1, 2, (n, t_all))
    occupancy = 0.06 * net_exp.mean(axis=1, keepdims=True)
    store_opex = (store_hc * 4.0 + occupancy + 0.025 * net) * noise(0.02)
    cos_exp = net_exp * (1 - margin)
    cover = (np.roll(cos_exp, -1, 1) + np.roll(cos_exp, -2, 1) + np.roll(cos_exp, -3, 1)) / 3
    inventory = 3.0 * cover * rng.uniform(0.9, 1.1, (n, 1)) * noise(0.03)
    for metric, arr in (
        ("marketing_spend", marketing),
        ("store_traffic", traffic),
        ("conversion_rate", conversion),
        ("order_count", orders),
        ("average_order_value", aov),
        ("returns_amount", returns),
        ("net_sales", net),
        ("cost_of_sales", cost_of_sales),
        ("store_opex", store_opex),
        ("inventory_value", inventory),
    ):
        put(v, metric, arr, cat)
    for metric, arr in (
        ("marketing_spend", mkt_exp),
        ("store_traffic", traffic_exp),
        ("order_count", traffic_exp * conv_base),
        ("returns_amount", gross_exp * returns_base),
        ("net_sales", net_exp),
        ("cost_of_sales", cos_exp),
        ("store_opex", hc_base * (1 + 0.3 * (season - 1)) * 4.0 + occupancy + 0.025 * net_exp),
    ):
        put(e, metric, arr, cat)

    # --- fulfilment centres ship their region's orders -----------------------------------------
    dc = role == "fulfilment"
    upo = spec[:, 5:6]
    units_out = np.zeros((n, t_all))
    units_exp = np.zeros((n, t_all))
    peak = np.zeros((n, t_all))
    for i in np.flatnonzero(dc):
        mine = cat & (region == region[i])
        units_out[i] = (orders[mine] * upo[mine]).sum(axis=0)
        units_exp[i] = (traffic_exp[mine] * conv_base[mine] * upo[mine]).sum(axis=0)
        peak[i] = units_exp[i] / units_exp[i].mean()
    units_out = np.round(units_out * noise(0.01))
    std_cost = rng.uniform(3.2, 4.2, (n, 1)) * 1.03 ** (year_idx[None, :] + 3)
    std_cost = np.round(std_cost, 2)
    overtime = 1 + 0.08 * np.clip(peak - 1, 0, None)  # peak weeks need overtime and temps
    fulfilment = (
        units_out
        * std_cost
        / 1000
        * overtime
        * np.exp(np.clip(rng.normal(0, 0.012, (n, t_all)), -0.03, 0.03))
    )
    on_time = np.clip(rng.normal(0.965, 0.008, (n, t_all)) - 0.03 * (peak - 1.2).clip(0), 0.8, 1)
    dc_hc = np.round(units_exp / 650) + rng.integers(-2, 3, (n, t_all))
    put(v, "units_shipped", units_out, dc)
    put(v, "std_fulfilment_cost", std_cost, dc)
    put(v, "fulfilment_cost", fulfilment, dc)
    put(v, "fulfilment_on_time", on_time, dc)
    put(v, "order_accuracy", np.clip(rng.normal(0.992, 0.003, (n, t_all)), 0.95, 1), dc)
    put(e, "units_shipped", units_exp, dc)
    put(e, "fulfilment_cost", units_exp * std_cost / 1000 * overtime, dc)

    # --- regional offices and headquarters ---------------------------------------------------
    office = (role == "office") | (role == "hq")
    office_hc_base = np.where(role == "hq", rng.uniform(10, 16, n), rng.uniform(6, 10, n))
    office_hc = np.round(office_hc_base[:, None] * (1 + 0.03 * years[None, :]))
    office_hc = office_hc + rng.integers(-1, 2, (n, t_all))
    fixed = np.where(role == "hq", 20.0, 10.0)[:, None]
    admin = (office_hc * 6.0 + fixed) * np.where(months == 12, 1.1, 1.0)[None, :]
    admin_exp = office_hc_base[:, None] * (1 + 0.03 * years[None, :]) * 6.0 + fixed
    admin_exp = admin_exp * np.where(months == 12, 1.1, 1.0)[None, :]
    put(v, "admin_expense", admin * noise(0.02), office)
    put(e, "admin_expense", admin_exp, office)
    brand = units["entity_id"].to_numpy() == "HQ-MKT"
    brand_exp = 150.0 * np.roll(season.mean(axis=0, keepdims=True), -1, axis=1) * trend
    put(v, "marketing_spend", brand_exp * noise(0.08), brand)
    put(e, "marketing_spend", brand_exp, brand)
    score = np.repeat(rng.uniform(76, 94, (n, t_all // 3 + 2)), 3, axis=1)[:, :t_all]
    put(v, "service_score", np.round(score, 1), office)

    # --- everyone ---------------------------------------------------------------------------
    headcount = np.where(cat[:, None], store_hc, np.where(dc[:, None], dc_hc, office_hc))
    everyone = np.ones(n, bool)
    put(v, "headcount", np.maximum(headcount, 3), everyone)
    put(v, "project_delivery_rate", np.clip(rng.normal(0.91, 0.04, (n, t_all)), 0.6, 1), everyone)

    sim.drop_lead(_LEAD)
    return sim
