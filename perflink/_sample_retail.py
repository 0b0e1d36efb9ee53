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

import json
import os
import re
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from perflink._sample_plant import Planted
from perflink._sample_retail_model import GROUP_ID, REGIONS, build_entities, simulate
from perflink._sample_retail_plant import Choices, choose, plant
from perflink.errors import PerflinkError

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
# Assessment schemes per centre type: metric, weight, category, rule, floor, cap, rule params.
_SCHEMES = {
    "profit": [
        ("contribution", 0.30, "financial", "linear", 0.5, 1.3, {}),
        ("net_sales", 0.25, "financial", "linear", 0.6, 1.2, {}),
        ("conversion_rate", 0.15, "business", "linear", 0.8, 1.2, {}),
        ("order_count", 0.10, "business", "linear", 0.6, 1.2, {}),
        (
            "store_traffic",
            0.10,
            "business",
            "step",
            0.0,
            1.2,
            {"steps": [[0.85, 60], [0.95, 80], [1.0, 100], [1.05, 110]]},
        ),
        ("project_delivery_rate", 0.10, "management", "linear", 0.6, 1.1, {}),
    ],
    "cost": [
        ("fulfilment_cost", 0.35, "financial", "linear", 0.6, 1.2, {}),
        (
            "fulfilment_on_time",
            0.30,
            "business",
            "threshold",
            0.0,
            1.0,
            {"threshold": 0.95, "pass": 100, "fail": 50},
        ),
        ("order_accuracy", 0.25, "business", "linear", 0.9, 1.05, {}),
        ("project_delivery_rate", 0.10, "management", "linear", 0.6, 1.1, {}),
    ],
    "functional": [
        ("admin_expense", 0.30, "financial", "linear", 0.6, 1.2, {}),
        ("project_delivery_rate", 0.40, "management", "linear", 0.6, 1.1, {}),
        ("service_score", 0.30, "management", "linear", 0.6, 1.1, {}),
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


def generate(
    out_dir: str | Path,
    *,
    months: int = 45,
    seed: int = 0,
    clean: bool = False,
    end: str = "2026-09",
) -> Path:
    """Write the retail example's inputs, catalog, params and truth into ``out_dir``.

    Parameters
    ----------
    out_dir : folder to create or refresh; written to a temporary folder first and moved
        into place, so a failed run leaves an existing example untouched.
    months : months of history ending at ``end``; between 15 and 240.
    seed : random seed; the same seed gives byte-identical files.
    clean : leave out the planted problems (``truth.yaml`` then lists none).
    end : last month of data (``YYYY-MM``, default 2026-09: the 2026Q3 review); a later end
        with ``months`` grown to match extends the same history.

    Returns
    -------
    Path of the written ``params.yaml``.
    """
    if not 15 <= months <= 240:
        raise PerflinkError(f"sample-data: --months {months} must be between 15 and 240")
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", str(end)):
        raise PerflinkError(f"sample-data: --end {end!r} is not a month written YYYY-MM")
    end_p = pd.Period(end, "M")
    rng = np.random.default_rng([seed, 100])
    org = build_entities(rng)
    start = end_p - months + 1
    periods = pd.period_range(start, max(end_p, _SIM_END), freq="M")
    units = org[org["kind"] == "department"].reset_index(drop=True)
    sim = simulate(units, periods, rng, anchor=_ANCHOR)
    choices = choose(org, np.random.default_rng([seed, 101]))
    anchor = min(_ANCHOR, end_p)
    planted = [] if clean else plant(sim, choices, anchor=anchor)
    sim.truncate(end_p)
    tables = {
        "entities": org.drop(columns="role"),
        "facts": _facts(sim),
        "targets": _targets(sim, np.random.default_rng([seed, 103])),
        "schemes": _schemes(None if clean else choices),
        "adjustments": _adjustments(planted),
        "bonus": _bonus(sim, org, None if clean else choices),
    }
    quarter = str(end_p.asfreq("Q"))
    return _write(Path(out_dir), tables, planted, seed=seed, clean=clean, quarter=quarter)


def _facts(sim) -> pd.DataFrame:
    parts = []
    ids = sim.units["entity_id"].to_numpy()
    ym = np.array([p.strftime("%Y%m") for p in sim.periods])
    per = np.array([str(p) for p in sim.periods])
    for metric in _SOURCE:
        arr = sim.values[metric]
        r, c = np.nonzero(~np.isnan(arr))
        system = _SOURCE[metric]
        parts.append(
            pd.DataFrame(
                {
                    "entity_id": ids[r],
                    "period": per[c],
                    "metric_id": metric,
                    "value": np.round(arr[r, c], _DECIMALS.get(metric, 2)),
                    "source_system": system,
                    "source_ref": pd.Series(system + "-" + ids[r] + "-" + ym[c]),
                }
            )
        )
    facts = pd.concat(parts, ignore_index=True)
    return facts.sort_values(["entity_id", "period", "metric_id"], kind="stable", ignore_index=True)


def _targets(sim, rng: np.random.Generator) -> pd.DataFrame:
    """Monthly budgets for flows, annual assessment targets for flows and scheme rates."""
    ids = sim.units["entity_id"].to_numpy()
    per = np.array([str(p) for p in sim.budget_periods])
    year_of = np.array([p.year for p in sim.budget_periods])
    full_years = [y for y in np.unique(year_of) if (year_of == y).sum() == 12]
    bias = rng.normal(1.0, 0.012, len(ids))[:, None]
    stretch = rng.uniform(1.0, 1.03, len(ids))
    frames = []
    for metric in _BUDGET_FLOWS:
        exp = sim.expected[metric]
        has = ~np.isnan(exp[:, 0])
        decimals = _DECIMALS.get(metric, 2)
        budget = (exp * bias)[has]
        r, c = np.nonzero(np.ones_like(budget, dtype=bool))
        frames.append(
            pd.DataFrame(
                {
                    "entity_id": ids[has][r],
                    "year": year_of[c],
                    "period": per[c],
                    "metric_id": metric,
                    "target": np.round(budget[r, c], decimals),
                    "kind": "budget",
                }
            )
        )
        for y in full_years:
            annual = budget[:, year_of == y].sum(axis=1) * stretch[has]
            frames.append(
                pd.DataFrame(
                    {
                        "entity_id": ids[has],
                        "year": y,
                        "period": "",
                        "metric_id": metric,
                        "target": np.round(annual, decimals),
                        "kind": "assessment",
                    }
                )
            )
    for metric, fixed in _RATE_TARGETS.items():
        arr = sim.values[metric]
        has = ~np.isnan(arr[:, 0])
        value = np.round(np.nanmean(arr[has, :12], axis=1), 4) if fixed is None else fixed
        for y in np.unique(year_of):
            frames.append(
                pd.DataFrame(
                    {
                        "entity_id": ids[has],
                        "year": y,
                        "period": "",
                        "metric_id": metric,
                        "target": value,
                        "kind": "assessment",
                    }
                )
            )
    targets = pd.concat(frames, ignore_index=True)
    return targets.sort_values(
        ["entity_id", "year", "kind", "metric_id", "period"], kind="stable", ignore_index=True
    )


def _schemes(choices: Choices | None) -> pd.DataFrame:
    rows = [
        (f"SCH-{center.upper()}", center, "", metric, weight, category, rule, lo, hi, params)
        for center, items in _SCHEMES.items()
        for metric, weight, category, rule, lo, hi, params in items
    ]
    if choices is not None:
        spec = {m: s for m, *s in _SCHEMES["profit"]}
        for metric, weight in _BAD_SCHEME:
            _, category, rule, lo, hi, params = spec[metric]
            unit = choices.scheme_unit
            rows.append(
                (f"SCH-{unit}", "profit", unit, metric, weight, category, rule, lo, hi, params)
            )
    cols = ["scheme_id", "center_type", "entity_id", "metric_id", "weight", "category", "rule"]
    frame = pd.DataFrame(rows, columns=[*cols, "floor", "cap", "rule_params"])
    frame["rule_params"] = frame["rule_params"].map(json.dumps)
    return frame


def _adjustments(planted: list[Planted]) -> pd.DataFrame:
    rows = [
        (
            p.entity_id,
            p.periods[0],
            "net_sales",
            p.extra["adjustment_amount"],
            "Hurricane warning: stores closed for three days (force majeure)",
            "Executive committee",
        )
        for p in planted
        if p.kind == "known_event"
    ]
    return pd.DataFrame(
        rows, columns=["entity_id", "period", "metric_id", "amount", "reason", "approved_by"]
    )


def _bonus(sim, org: pd.DataFrame, choices: Choices | None) -> pd.DataFrame:
    """Base bonus per centre (kUSD, about 1.5 per head) and pool budgets per region and group."""
    units = sim.units
    year = sim.periods[-1].year
    hc = np.nanmean(sim.values["headcount"][:, -12:], axis=1)
    base = np.round(np.clip(hc * 1.5, 5, None), 1)
    rows = [(eid, year, float(b), np.nan) for eid, b in zip(units["entity_id"], base, strict=True)]
    parent = units["parent_id"].to_numpy()
    for region in org.loc[org["kind"] == "subsidiary", "entity_id"]:
        share = 0.7 if choices is not None and region == choices.bonus_region else 1.15
        rows.append((region, year, 0.0, round(float(base[parent == region].sum() * share), 1)))
    rows.append((GROUP_ID, year, 0.0, round(float(base.sum() * 1.12), 1)))
    return pd.DataFrame(rows, columns=["entity_id", "year", "base_bonus", "pool_budget"])


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
        "  tenure:\n" + tenure + _WORKAROUNDS
    )


# Option blocks that only replace package defaults naming the bundled sample's metrics
# (issue 14 item 4); drop each line once its default is derived from the catalog.
_WORKAROUNDS = """\
  environment_changes: []   # default: the sample's demand shock on 'revenue'
forecast:
  # defaults: revenue, cogs, opex and net_profit
  metrics: [net_sales, cost_of_sales, store_opex, marketing_spend, fulfilment_cost, admin_expense]
  # operating_income = contribution - ...: a nested formula the forecast cannot expand yet
  profit_metric: gross_margin
summary:
  projection_metric: gross_margin   # default: net_profit; must be one the forecast projects
"""


def _write(
    out: Path, tables: dict[str, pd.DataFrame], planted: list[Planted], *, seed, clean, quarter
) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for name, df in tables.items():
            df.to_csv(tmp / f"{name}.csv", index=False, encoding="utf-8", lineterminator="\n")
        src = resources.files("perflink") / "data" / "examples" / "retail" / "catalog"
        (tmp / "catalog").mkdir()
        for item in sorted(src.iterdir(), key=lambda p: p.name):
            if item.name.endswith(".yaml"):
                (tmp / "catalog" / item.name).write_bytes(item.read_bytes())
        (tmp / "params.yaml").write_text(_params_text(quarter, tables), encoding="utf-8")
        truth = {
            "example": "retail",
            "seed": seed,
            "clean": clean,
            "quarter": quarter,
            "problems": [p.to_dict() for p in planted],
        }
        (tmp / "truth.yaml").write_text(
            yaml.safe_dump(truth, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
        if out.exists():
            old = out.with_name(f".{out.name}-old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "params.yaml"
