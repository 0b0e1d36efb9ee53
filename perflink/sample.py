"""The sample group: a fictional manufacturing-and-retail group with planted problems.

``perflink sample-data DIR`` (or :func:`generate`) writes a complete input set in the data
contract (CSV, UTF-8), the catalog it uses, a params file for the review, and ``truth.yaml``
listing the planted problems (``clean=True`` leaves them out). The simulation is causal (see
:mod:`perflink._sample_model`), deterministic for a seed, and scales to thousands of units.
"""

from __future__ import annotations

import re
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
from perflink._sample_entities import GROUP_ID, build_entities
from perflink._sample_model import simulate
from perflink._sample_plant import Choices, choose, plant
from perflink._sample_raw import RAW_METRICS, write_raw
from perflink.errors import PerflinkError

__all__ = ["generate", "REVIEW_QUARTER"]

REVIEW_QUARTER = "2026Q3"
_ANCHOR = pd.Period("2026-09", "M")  # the bundled review's last month; problems sit around it
_SIM_END = pd.Period("2027-12", "M")
_SOURCE = {  # metric -> source system code used in source_ref
    "new_contract_amount": "CRM",
    "new_customers": "CRM",
    "avg_unit_price": "CRM",
    "shipped_qty": "WMS",
    "on_time_delivery_rate": "WMS",
    "recognised_qty": "ERP-FI",
    "revenue": "ERP-FI",
    "cogs": "ERP-FI",
    "opex": "ERP-FI",
    "receivables": "ERP-FI",
    "total_assets": "ERP-FI",
    "equity": "ERP-FI",
    "invested_capital": "ERP-FI",
    "rd_capitalised": "ERP-FI",
    "cash_collected": "TMS",
    "production_cost": "ERP-CO",
    "std_unit_cost": "ERP-CO",
    "production_plan_qty": "MES",
    "production_qty": "MES",
    "yield_rate": "MES",
    "procurement_savings_rate": "SRM",
    "headcount": "HR",
    "rd_milestones": "PLM",
    "mgmt_task_completion": "OA",
    "internal_satisfaction": "OA",
}
_DECIMALS = {
    "yield_rate": 4,
    "procurement_savings_rate": 4,
    "on_time_delivery_rate": 4,
    "mgmt_task_completion": 4,
    "internal_satisfaction": 1,
}
_BUDGET_FLOWS = [
    "revenue",
    "cogs",
    "opex",
    "new_contract_amount",
    "shipped_qty",
    "cash_collected",
    "production_cost",
    "production_qty",
    "rd_capitalised",
    "new_customers",
]
_RATE_TARGETS = {  # metric -> fixed annual target (None: the unit's first-year average)
    "yield_rate": None,
    "on_time_delivery_rate": 0.95,
    "mgmt_task_completion": 0.92,
    "internal_satisfaction": 85.0,
    "procurement_savings_rate": 0.02,
}


# Assessment schemes per centre type (see perflink._sample_common.linear, step, threshold).
_SCHEMES = {
    "profit": [
        linear("net_profit", 0.25, "financial"),
        linear("revenue", 0.20, "financial"),
        linear("cash_collected", 0.10, "financial"),
        linear("new_contract_amount", 0.15, "business"),
        step("new_customers", 0.10, "business", [[0.8, 60], [0.9, 80], [1.0, 100], [1.1, 110]]),
        threshold("on_time_delivery_rate", 0.10, "business", 0.98, 100, 60),
        linear("mgmt_task_completion", 0.10, "management", cap=1.1),
    ],
    "cost": [
        linear("production_cost", 0.35, "financial"),
        linear("yield_rate", 0.20, "business", 0.9, 1.05),
        threshold("on_time_delivery_rate", 0.15, "business", 0.98, 100, 60),
        linear("procurement_savings_rate", 0.15, "business", 0.0, 1.5),
        linear("mgmt_task_completion", 0.15, "management", cap=1.1),
    ],
    "functional": [
        linear("opex", 0.30, "financial"),
        linear("mgmt_task_completion", 0.40, "management", cap=1.1),
        linear("internal_satisfaction", 0.30, "management", cap=1.1),
    ],
}
# P10: a profit-centre override that breaks the profit-centre constraints
_BAD_SCHEME = [
    ("net_profit", 0.25),
    ("revenue", 0.15),
    ("new_contract_amount", 0.25),
    ("new_customers", 0.10),
    ("on_time_delivery_rate", 0.10),
    ("mgmt_task_completion", 0.15),
]


#: The built-in example companies of ``perflink sample-data --example``: name -> description.
EXAMPLES: dict[str, str] = {
    "sample": "the bundled group (default)",
    "retail": "a US specialty retailer in kUSD with its own catalog; fixed shape, no "
    "--entities or --raw",
}


def generate(
    out_dir: str | Path,
    *,
    entities: int = 42,
    months: int = 45,
    seed: int = 0,
    clean: bool = False,
    end: str = "2026-09",
    raw: bool = False,
    example: str = "sample",
) -> Path:
    """Write the sample group's inputs, catalog, params and truth into ``out_dir``.

    Parameters
    ----------
    out_dir : folder to create or refresh. Files are written to a temporary folder first
        and moved into place, so a failed run leaves an existing sample untouched.
    entities : number of departments (units), at least 28; subsidiaries are added at about
        one per seven (at least four).
    months : months of history ending at ``end``; at least 15.
    seed : random seed; the same seed gives byte-identical files.
    clean : leave out the planted problems (``truth.yaml`` then lists none).
    end : last month of data (``YYYY-MM``, default 2026-09: the 2026Q3 review). A later end
        with ``months`` grown to match extends the same history (same seed, same values),
        for reviewing the next quarter against this one.
    raw : also write line-level source-system extracts under ``raw/<source>/*.parquet``
        that aggregate, through ``catalog/raw.yaml``, to the facts of the raw-defined
        metrics (see :mod:`perflink._sample_raw` and :func:`perflink.raw.aggregate_raw`).
    example : ``sample`` (this group) or ``retail``: a second, different company (a US
        specialty retailer in kUSD, its own catalog; see :mod:`perflink._sample_retail`),
        which has a fixed shape (``entities`` stays at its default, no ``raw``).

    Returns
    -------
    Path of the written ``params.yaml``.
    """
    if example not in EXAMPLES:
        raise PerflinkError(
            f"sample-data: --example {example!r} is not one of {', '.join(EXAMPLES)}"
        )
    if not 15 <= months <= 240:
        raise PerflinkError(f"sample-data: --months {months} must be between 15 and 240")
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", str(end)):
        raise PerflinkError(f"sample-data: --end {end!r} is not a month written YYYY-MM")
    end_p = pd.Period(end, "M")
    if example == "retail":
        if entities != 42 or raw:
            raise PerflinkError(
                "sample-data --example retail: the retail example has a fixed shape (4 regions, "
                "23 centres) and no raw extracts; leave out --entities and --raw"
            )
        from perflink._sample_retail import generate as generate_retail

        return generate_retail(Path(out_dir), months=months, seed=seed, clean=clean, end=end_p)
    if entities < 28:
        raise PerflinkError(
            f"sample-data: --entities {entities} is too small; use at least 28 (four "
            "subsidiaries of seven units) so every kind of unit and planted problem has a place"
        )
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    org = build_entities(entities, rng)
    start = end_p - months + 1
    # Simulate to a fixed horizon so that a sample extended by a few months has the same history.
    periods = pd.period_range(start, max(end_p, _SIM_END), freq="M")
    units = org[org["kind"] == "department"].reset_index(drop=True)
    sim = simulate(units, periods, rng, anchor=_ANCHOR)
    choices = choose(org, np.random.default_rng([seed, 1]))
    anchor = min(_ANCHOR, end_p)
    planted = (
        []
        if clean
        else plant(sim, choices, np.random.default_rng([seed, 2]), anchor=anchor, end=end_p)
    )
    sim.truncate(end_p)

    tables = {
        "entities": org.drop(columns="role"),
        "facts": facts_table(sim, _SOURCE, _DECIMALS, numbered_refs=True),
        "targets": targets_table(
            sim, np.random.default_rng([seed, 3]), _BUDGET_FLOWS, _RATE_TARGETS, _DECIMALS
        ),
        "schemes": _schemes(None if clean else choices),
        "adjustments": adjustments_table(
            planted,
            "revenue",
            "台风红色预警停业三天（不可抗力） / typhoon red alert: closed for three days",
            "集团总经理办公会 / Group executive meeting",
        ),
        "bonus": bonus_table(
            sim,
            sorted(set(sim.units["parent_id"])),
            GROUP_ID,
            per_head=0.9,
            least=10,
            short_pool=None if clean else choices.bonus_sub,
        ),
    }
    quarter = str(end_p.asfreq("Q"))
    extra = None
    if raw:
        vat = (sim.units["parent_id"] == choices.vat_sub).to_numpy() & (not clean)
        values = {m: np.round(sim.values[m], _DECIMALS.get(m, 2)) for m in RAW_METRICS}
        ids = sim.units["entity_id"].to_numpy()

        def extra(folder: Path) -> None:
            write_raw(folder, values, ids, sim.periods, vat_units=vat, seed=seed)

    problems = [p.to_dict() for p in planted]
    truth = {"seed": seed, "clean": clean, "quarter": quarter, "problems": problems}
    catalog = resources.files("perflink") / "data" / "catalog"
    return write_folder(out, tables, catalog, _params_text(quarter, tables), truth, extra=extra)


def _schemes(choices: Choices | None) -> pd.DataFrame:
    return schemes_table(
        _SCHEMES,
        override_unit=None if choices is None else choices.scheme_unit,
        override=_BAD_SCHEME,
    )


def _params_text(quarter: str, tables: dict[str, pd.DataFrame]) -> str:
    params = {
        "quarter": quarter,
        "language": "zh",
        "inputs": {name: f"{name}.csv" for name in tables},
        "catalog": "catalog",
    }
    entities = tables["entities"]
    subsidiaries = entities.loc[entities["kind"] == "subsidiary", "entity_id"].tolist()
    return (
        "# Review parameters for the generated sample group (perflink sample-data).\n"
        + yaml.safe_dump(params, allow_unicode=True, sort_keys=False)
        + scenario(subsidiaries)
    )


def scenario(subsidiaries: list[str]) -> str:
    """The sample group's own scenario as a ``kpi:`` params block (company data, not defaults).

    The managers of ``subsidiaries`` have tenure targets for 2024-2026 (任期目标), and the
    retail demand shock of 2026-07 re-estimates the retail revenue budgets by -5%
    (契约化动态调整). ``perflink sample-data`` writes it into the sample's params;
    ``params/2026Q3.yaml`` carries the same block for the default sample.
    """
    goals = (
        ("net_profit", "annual_growth: 0.06"),
        ("eva", "annual_growth: 0.05"),
        ("roe", "annual_change: 0.005"),
    )
    tenure = "".join(
        f"    - {{entity_id: {sub}, metric_id: {metric}, start_year: 2024, end_year: 2026, {rule}}}\n"
        for sub in subsidiaries
        for metric, rule in goals
    )
    return (
        "kpi:\n"
        "  # 任期目标: subsidiary managers, tenure 2024-2026\n"
        "  tenure:\n" + tenure + "  # 契约化动态调整: retail demand fell from 2026-07; retail "
        "revenue budgets re-estimated -5%\n"
        "  environment_changes:\n"
        "    - business_line: retail\n"
        "      metric_id: revenue\n"
        '      from_period: "2026-07"\n'
        "      factor: 0.95\n"
        '      reason: "零售市场需求下滑（消费疲软） / retail demand shock"\n'
    )
