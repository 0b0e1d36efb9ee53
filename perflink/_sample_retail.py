"""The retail example: a second built-in company, unlike the sample group.

``perflink sample-data DIR --example retail`` (or ``perflink.sample.generate(DIR,
example="retail")``) writes Cascade Outfitters Group, a fictional US specialty retailer
(apparel, footwear, outdoor equipment; stores and web shop) in thousands of US dollars:
the six input tables, its own catalog (``perflink/data/examples/retail/catalog``), a params
file reviewing 2026Q3 in English and ``truth.yaml`` listing the planted problems. Its metric
ids, formula tree (operating income from contribution, fulfilment and admin costs), mappings,
rules, schemes and hierarchy (group, four regions, twelve category profit centres, fulfilment
centres and offices, HQ functions directly under the group) share nothing with the sample,
so a review that runs on both is not tied to the sample's names.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from perflink._sample_common import (
    adjustments_table,
    bonus_table,
    facts_table,
    linear,
    schemes_table,
    step,
    targets_table,
    threshold,
    write_folder,
)
from perflink._sample_retail_model import GROUP_ID, REGIONS, build_entities, simulate
from perflink._sample_retail_plant import choose, plant

__all__ = ["generate"]

_ANCHOR = pd.Period("2026-09", "M")  # the review's last month; problems sit around it
_SIM_END = pd.Period("2027-12", "M")
_SOURCE = {  # reported metric -> source system (as in the catalog)
    "store_traffic": "ANALYTICS",
    "conversion_rate": "ANALYTICS",
    "order_count": "OMS",
    "average_order_value": "OMS",
    "returns_amount": "OMS",
    "net_sales": "ERP",
    "cost_of_sales": "ERP",
    "store_opex": "ERP",
    "marketing_spend": "ERP",
    "fulfilment_cost": "ERP",
    "admin_expense": "ERP",
    "inventory_value": "ERP",
    "std_fulfilment_cost": "ERP",
    "units_shipped": "WMS",
    "fulfilment_on_time": "WMS",
    "order_accuracy": "WMS",
    "headcount": "HRIS",
    "project_delivery_rate": "PMO",
    "service_score": "SURVEY",
}
_DECIMALS = {
    "store_traffic": 0,
    "order_count": 0,
    "units_shipped": 0,
    "headcount": 0,
    "conversion_rate": 4,
    "fulfilment_on_time": 4,
    "order_accuracy": 4,
    "project_delivery_rate": 4,
    "service_score": 1,
}
_BUDGET_FLOWS = [
    "net_sales",
    "cost_of_sales",
    "returns_amount",
    "store_opex",
    "marketing_spend",
    "fulfilment_cost",
    "admin_expense",
    "store_traffic",
    "order_count",
    "units_shipped",
]
_RATE_TARGETS = {  # metric -> fixed annual target (None: the centre's first-year average)
    "conversion_rate": None,
    "fulfilment_on_time": 0.95,
    "order_accuracy": 0.99,
    "project_delivery_rate": 0.90,
    "service_score": 85.0,
}
# Assessment schemes per centre type (see perflink._sample_common.linear, step, threshold).
_SCHEMES = {
    "profit": [
        linear("contribution", 0.30, "financial", 0.5, 1.3),
        linear("net_sales", 0.25, "financial"),
        linear("conversion_rate", 0.15, "business", 0.8),
        linear("order_count", 0.10, "business"),
        step("store_traffic", 0.10, "business", [[0.85, 60], [0.95, 80], [1.0, 100], [1.05, 110]]),
        linear("project_delivery_rate", 0.10, "management", cap=1.1),
    ],
    "cost": [
        linear("fulfilment_cost", 0.35, "financial"),
        threshold("fulfilment_on_time", 0.30, "business", 0.95, 100, 50),
        linear("order_accuracy", 0.25, "business", 0.9, 1.05),
        linear("project_delivery_rate", 0.10, "management", cap=1.1),
    ],
    "functional": [
        linear("admin_expense", 0.30, "financial"),
        linear("project_delivery_rate", 0.40, "management", cap=1.1),
        linear("service_score", 0.30, "management", cap=1.1),
    ],
}
# P07: a profit-centre override with 45% financial weight (policy: at least 55%)
_BAD_SCHEME = [
    ("contribution", 0.25),
    ("net_sales", 0.20),
    ("conversion_rate", 0.20),
    ("order_count", 0.10),
    ("store_traffic", 0.10),
    ("project_delivery_rate", 0.15),
]


def generate(out: Path, *, months: int, seed: int, clean: bool, end: pd.Period) -> Path:
    """Write the retail example's inputs, catalog, params and truth into ``out``.

    :func:`perflink.sample.generate` (``example="retail"``) checks the arguments and
    documents them; returns the path of the written ``params.yaml``.
    """
    rng = np.random.default_rng([seed, 100])
    org = build_entities(rng)
    start = end - months + 1
    periods = pd.period_range(start, max(end, _SIM_END), freq="M")
    units = org[org["kind"] == "department"].reset_index(drop=True)
    sim = simulate(units, periods, rng, anchor=_ANCHOR)
    choices = choose(org, np.random.default_rng([seed, 101]))
    anchor = min(_ANCHOR, end)
    planted = [] if clean else plant(sim, choices, anchor=anchor)
    sim.truncate(end)
    tables = {
        "entities": org.drop(columns="role"),
        "facts": facts_table(sim, _SOURCE, _DECIMALS, numbered_refs=False),
        "targets": targets_table(
            sim, np.random.default_rng([seed, 103]), _BUDGET_FLOWS, _RATE_TARGETS, _DECIMALS
        ),
        "schemes": schemes_table(
            _SCHEMES,
            override_unit=None if clean else choices.scheme_unit,
            override=_BAD_SCHEME,
        ),
        "adjustments": adjustments_table(
            planted,
            "net_sales",
            "Hurricane warning: stores closed for three days (force majeure)",
            "Executive committee",
        ),
        # Base bonus per centre in kUSD, about 1.5 per head; pool budgets per region.
        "bonus": bonus_table(
            sim,
            org.loc[org["kind"] == "subsidiary", "entity_id"],
            GROUP_ID,
            per_head=1.5,
            least=5,
            short_pool=None if clean else choices.bonus_region,
        ),
    }
    quarter = str(end.asfreq("Q"))
    problems = [p.to_dict() for p in planted]
    truth = {"example": "retail", "seed": seed, "clean": clean, "quarter": quarter}
    catalog = resources.files("perflink") / "data" / "examples" / "retail" / "catalog"
    params = _params_text(quarter, tables)
    return write_folder(out, tables, catalog, params, {**truth, "problems": problems})


def _params_text(quarter: str, tables: dict[str, pd.DataFrame]) -> str:
    inputs = {"inputs": {name: f"{name}.csv" for name in tables}}
    tenure = "".join(
        f"    - {{entity_id: {code}, metric_id: {metric}, start_year: 2025, end_year: 2027, "
        f"annual_growth: {growth}}}\n"
        for code, _ in REGIONS
        for metric, growth in (("operating_income", 0.08), ("net_sales", 0.05))
    )
    return (
        "# Review parameters of the retail example (perflink sample-data --example retail).\n"
        f'quarter: "{quarter}"\n'
        "language: en\n" + yaml.safe_dump(inputs, sort_keys=False) + "catalog: catalog\n"
        "# Company data: the region managers' tenure targets (2025-2027).\n"
        "kpi:\n"
        "  tenure:\n" + tenure
    )
