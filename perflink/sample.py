"""The sample group: a fictional manufacturing-and-retail group with planted problems.

``perflink sample-data DIR`` (or :func:`generate`) writes a complete input set in the data
contract (CSV, UTF-8), the catalog it uses, a params file for the review, and ``truth.yaml``
listing the planted problems (``clean=True`` leaves them out). The simulation is causal (see
:mod:`perflink._sample_model`), deterministic for a seed, and scales to thousands of units.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from perflink._sample_entities import GROUP_ID, build_entities
from perflink._sample_model import simulate
from perflink._sample_plant import Choices, Planted, choose, plant
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
# Assessment schemes per centre type: metric, weight, category, rule, floor, cap, rule params.
_SCHEMES = {
    "profit": [
        ("net_profit", 0.25, "financial", "linear", 0.6, 1.2, {}),
        ("revenue", 0.20, "financial", "linear", 0.6, 1.2, {}),
        ("cash_collected", 0.10, "financial", "linear", 0.6, 1.2, {}),
        ("new_contract_amount", 0.15, "business", "linear", 0.6, 1.2, {}),
        (
            "new_customers",
            0.10,
            "business",
            "step",
            0.0,
            1.2,
            {"steps": [[0.8, 60], [0.9, 80], [1.0, 100], [1.1, 110]]},
        ),
        (
            "on_time_delivery_rate",
            0.10,
            "business",
            "threshold",
            0.0,
            1.0,
            {"threshold": 0.98, "pass": 100, "fail": 60},
        ),
        ("mgmt_task_completion", 0.10, "management", "linear", 0.6, 1.1, {}),
    ],
    "cost": [
        ("production_cost", 0.35, "financial", "linear", 0.6, 1.2, {}),
        ("yield_rate", 0.20, "business", "linear", 0.9, 1.05, {}),
        (
            "on_time_delivery_rate",
            0.15,
            "business",
            "threshold",
            0.0,
            1.0,
            {"threshold": 0.98, "pass": 100, "fail": 60},
        ),
        ("procurement_savings_rate", 0.15, "business", "linear", 0.0, 1.5, {}),
        ("mgmt_task_completion", 0.15, "management", "linear", 0.6, 1.1, {}),
    ],
    "functional": [
        ("opex", 0.30, "financial", "linear", 0.6, 1.2, {}),
        ("mgmt_task_completion", 0.40, "management", "linear", 0.6, 1.1, {}),
        ("internal_satisfaction", 0.30, "management", "linear", 0.6, 1.1, {}),
    ],
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
    if example == "retail":
        if entities != 42 or raw:
            raise PerflinkError(
                "sample-data --example retail: the retail example has a fixed shape (4 regions, "
                "23 centres) and no raw extracts; leave out --entities and --raw"
            )
        from perflink._sample_retail import generate as generate_retail

        return generate_retail(out_dir, months=months, seed=seed, clean=clean, end=end)
    if example != "sample":
        raise PerflinkError(f"sample-data: --example {example!r} is not one of sample, retail")
    if entities < 28:
        raise PerflinkError(
            f"sample-data: --entities {entities} is too small; use at least 28 (four "
            "subsidiaries of seven units) so every kind of unit and planted problem has a place"
        )
    if not 15 <= months <= 240:
        raise PerflinkError(f"sample-data: --months {months} must be between 15 and 240")
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    org = build_entities(entities, rng)
    end_p = pd.Period(end, "M")
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
        "facts": _facts(sim),
        "targets": _targets(sim, org, np.random.default_rng([seed, 3])),
        "schemes": _schemes(org, None if clean else choices),
        "adjustments": _adjustments(planted, org),
        "bonus": _bonus(sim, org, None if clean else choices),
    }
    quarter = str(end_p.asfreq("Q"))
    extra = None
    if raw:
        vat = (sim.units["parent_id"] == choices.vat_sub).to_numpy() & (not clean)
        values = {m: np.round(sim.values[m], _DECIMALS.get(m, 2)) for m in RAW_METRICS}
        ids = sim.units["entity_id"].to_numpy()

        def extra(folder: Path) -> None:
            write_raw(folder, values, ids, sim.periods, vat_units=vat, seed=seed)

    return _write(out, tables, planted, seed=seed, clean=clean, quarter=quarter, extra=extra)


def _facts(sim) -> pd.DataFrame:
    parts = []
    ids = sim.units["entity_id"].to_numpy()
    ym = np.array([p.strftime("%Y%m") for p in sim.periods])
    per = np.array([str(p) for p in sim.periods])
    for metric, arr in sim.values.items():
        ok = ~np.isnan(arr)
        if not ok.any():
            continue
        r, c = np.nonzero(ok)
        system = _SOURCE[metric]
        vals = np.round(arr[r, c], _DECIMALS.get(metric, 2))
        parts.append(
            pd.DataFrame(
                {
                    "entity_id": ids[r],
                    "period": per[c],
                    "metric_id": metric,
                    "value": vals,
                    "source_system": system,
                    "source_ref": pd.Series(system + "-" + ids[r] + "-" + ym[c] + "-")
                    + f"{list(_SOURCE).index(metric):02d}",
                }
            )
        )
    facts = pd.concat(parts, ignore_index=True)
    return facts.sort_values(["entity_id", "period", "metric_id"], kind="stable", ignore_index=True)


def _targets(sim, org: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Monthly budgets for flows, annual assessment targets for scheme metrics."""
    ids = sim.units["entity_id"].to_numpy()
    per = np.array([str(p) for p in sim.budget_periods])
    year_of = np.array([p.year for p in sim.budget_periods])
    full_years = [y for y in np.unique(year_of) if (year_of == y).sum() == 12]
    bias = rng.normal(1.0, 0.012, len(ids))[:, None]
    stretch = rng.uniform(1.0, 1.03, len(ids))
    frames = []
    for metric in _BUDGET_FLOWS:
        exp = sim.expected.get(metric)
        if exp is None:
            continue
        has = ~np.isnan(exp[:, 0])
        budget = (exp * bias)[has]
        r, c = np.nonzero(np.ones_like(budget, dtype=bool))
        frames.append(
            pd.DataFrame(
                {
                    "entity_id": ids[has][r],
                    "year": year_of[c],
                    "period": per[c],
                    "metric_id": metric,
                    "target": np.round(budget[r, c], 2),
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
                        "target": np.round(annual, 2),
                        "kind": "assessment",
                    }
                )
            )
    rates = {
        "yield_rate": None,
        "on_time_delivery_rate": 0.95,
        "mgmt_task_completion": 0.92,
        "internal_satisfaction": 85.0,
        "procurement_savings_rate": 0.02,
    }
    for metric, fixed in rates.items():
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


def _schemes(org: pd.DataFrame, choices: Choices | None) -> pd.DataFrame:
    rows = []
    for center, items in _SCHEMES.items():
        for metric, weight, category, rule, floor, cap, params in items:
            rows.append(
                (
                    f"SCH-{center.upper()}",
                    center,
                    "",
                    metric,
                    weight,
                    category,
                    rule,
                    floor,
                    cap,
                    json.dumps(params),
                )
            )
    if choices is not None:  # P10: an override that breaks the profit-centre constraints
        bad = [
            ("net_profit", 0.25),
            ("revenue", 0.15),
            ("new_contract_amount", 0.25),
            ("new_customers", 0.10),
            ("on_time_delivery_rate", 0.10),
            ("mgmt_task_completion", 0.15),
        ]
        spec = {m: s for m, *s in _SCHEMES["profit"]}
        for metric, weight in bad:
            _, category, rule, floor, cap, params = spec[metric]
            rows.append(
                (
                    f"SCH-{choices.scheme_unit}",
                    "profit",
                    choices.scheme_unit,
                    metric,
                    weight,
                    category,
                    rule,
                    floor,
                    cap,
                    json.dumps(params),
                )
            )
    return pd.DataFrame(
        rows,
        columns=[
            "scheme_id",
            "center_type",
            "entity_id",
            "metric_id",
            "weight",
            "category",
            "rule",
            "floor",
            "cap",
            "rule_params",
        ],
    )


def _adjustments(planted: list[Planted], org: pd.DataFrame) -> pd.DataFrame:
    rows = [
        (
            p.entity_id,
            p.periods[0],
            "revenue",
            p.extra["adjustment_amount"],
            "台风红色预警停业三天（不可抗力） / typhoon red alert: closed for three days",
            "集团总经理办公会 / Group executive meeting",
        )
        for p in planted
        if p.kind == "known_event"
    ]
    return pd.DataFrame(
        rows, columns=["entity_id", "period", "metric_id", "amount", "reason", "approved_by"]
    )


def _bonus(sim, org: pd.DataFrame, choices: Choices | None) -> pd.DataFrame:
    units = sim.units
    year = sim.periods[-1].year
    hc = np.nanmean(sim.values["headcount"][:, -12:], axis=1)
    base = np.round(np.clip(hc * 0.9, 10, None), 1)
    rows = [(eid, year, float(b), np.nan) for eid, b in zip(units["entity_id"], base, strict=True)]
    by_sub = pd.Series(base).groupby(units["parent_id"].to_numpy()).sum()
    for sub, total in by_sub.items():
        share = 0.7 if choices is not None and sub == choices.bonus_sub else 1.15
        rows.append((sub, year, 0.0, round(float(total * share), 1)))
    rows.append((GROUP_ID, year, 0.0, round(float(base.sum() * 1.12), 1)))
    return pd.DataFrame(rows, columns=["entity_id", "year", "base_bonus", "pool_budget"])


def _write(
    out: Path,
    tables: dict[str, pd.DataFrame],
    planted: list[Planted],
    *,
    seed: int,
    clean: bool,
    quarter: str,
    extra: Callable[[Path], None] | None = None,
) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for name, df in tables.items():
            df.to_csv(tmp / f"{name}.csv", index=False, encoding="utf-8", lineterminator="\n")
        catalog_src = resources.files("perflink") / "data" / "catalog"
        (tmp / "catalog").mkdir()
        for item in sorted(catalog_src.iterdir(), key=lambda p: p.name):
            if item.name.endswith(".yaml"):
                (tmp / "catalog" / item.name).write_bytes(item.read_bytes())
        params = {
            "quarter": quarter,
            "language": "zh",
            "inputs": {name: f"{name}.csv" for name in tables},
            "catalog": "catalog",
        }
        (tmp / "params.yaml").write_text(
            "# Review parameters for the generated sample group (perflink sample-data).\n"
            + yaml.safe_dump(params, allow_unicode=True, sort_keys=False),
            encoding="utf-8",
        )
        truth = {
            "seed": seed,
            "clean": clean,
            "quarter": quarter,
            "problems": [p.to_dict() for p in planted],
        }
        (tmp / "truth.yaml").write_text(
            yaml.safe_dump(truth, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
        if extra is not None:
            extra(tmp)
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
