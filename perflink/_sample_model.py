"""Causal simulation of the sample group's monthly business and finance data.

Every array is shaped (units, months). The causal chain, which the review tasks must recover:

* contracts (CRM) lead shipments by one to two months; shipments × price = recognised revenue;
* new customers bring new contracts; revenue builds receivables, receivables are collected;
* the production plan leads production by a month; production × standard cost, corrected for
  yield and procurement savings, makes production cost;
* R&D milestones drive capitalised R&D; headcount drives operating expenses.

Planted problems (see :mod:`perflink.sample`) are applied by :func:`plant` on top of the
clean simulation, so ``clean=True`` gives the same group without them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from perflink._sample_common import put

_SEASON = {
    "manufacturing": [0.85, 0.70, 1.00, 1.00, 1.02, 1.05, 0.98, 0.97, 1.03, 1.05, 1.10, 1.25],
    "retail": [1.25, 1.15, 0.90, 0.90, 0.95, 1.10, 0.92, 0.92, 0.95, 1.00, 1.20, 1.26],
    "services": [0.90, 0.80, 1.00, 1.00, 1.00, 1.05, 1.00, 1.00, 1.05, 1.05, 1.05, 1.10],
}
_PRICE = {"manufacturing": 2000.0, "retail": 150.0, "services": 800.0}
_LEAD = 3  # months simulated before the first reported month (contract lead, lagged AR)


@dataclass
class Simulation:
    """Simulated values: ``values[metric]`` is a (units, months) float array (NaN = not reported)."""

    units: pd.DataFrame
    periods: pd.PeriodIndex
    values: dict[str, np.ndarray] = field(default_factory=dict)
    expected: dict[str, np.ndarray] = field(default_factory=dict)  # noise-free, for budgets
    budget_periods: pd.PeriodIndex | None = None  # months ``expected`` covers

    def drop_lead(self, lead: int) -> None:
        """Drop the first ``lead`` simulated months, which only warm up lagged quantities."""
        self.values = {k: a[:, lead:] for k, a in self.values.items()}
        self.expected = {k: a[:, lead:] for k, a in self.expected.items()}

    def truncate(self, end: pd.Period) -> None:
        """Keep reported values up to ``end`` and expected values to the end of its year."""
        keep = int((self.periods <= end).sum())
        keep_budget = int((self.periods <= pd.Period(f"{end.year}-12", "M")).sum())
        self.budget_periods = self.periods[:keep_budget]
        self.periods = self.periods[:keep]
        self.values = {k: a[:, :keep] for k, a in self.values.items()}
        self.expected = {k: a[:, :keep_budget] for k, a in self.expected.items()}


def simulate(
    units: pd.DataFrame, periods: pd.PeriodIndex, rng: np.random.Generator, *, anchor: pd.Period
) -> Simulation:
    """Simulate every metric for every unit over ``periods`` (clean: no planted problems).

    Trends are measured from ``anchor``, so the values of a month do not depend on how far
    the simulation runs: a longer sample extends a shorter one with the same history.
    """
    n, t_rep = len(units), len(periods)
    t_all = t_rep + _LEAD
    months = np.array([(periods[0] - _LEAD + i).month for i in range(t_all)])
    line = units["business_line"].to_numpy()
    role = units["role"].to_numpy()
    season = np.stack([np.asarray(_SEASON[b])[months - 1] for b in line])
    season = season / season.mean(axis=1, keepdims=True)
    years = (np.arange(t_all) - _LEAD - (anchor - periods[0]).n) / 12.0  # 0 at the anchor
    growth = rng.normal(0.06, 0.04, n)[:, None]
    trend = (1.0 + growth) ** years[None, :]
    noise = lambda sd: np.exp(rng.normal(0.0, sd, (n, t_all)))  # noqa: E731

    sim = Simulation(units=units.reset_index(drop=True), periods=periods)
    v, e = sim.values, sim.expected
    is_sales, is_plant, is_rd = role == "sales", role == "plant", role == "rd"

    # --- sales (profit centres) ------------------------------------------------------------
    scale = rng.lognormal(np.log(600.0), 0.5, n)[:, None]  # 万元 per month
    demand = scale * season * trend
    lead_season = (np.roll(season, -1, axis=1) + np.roll(season, -2, axis=1)) / 2
    contract_exp = scale * lead_season * trend
    contracts = contract_exp * noise(0.07)
    shipped_value = 0.55 * np.roll(contracts, 1, axis=1) + 0.45 * np.roll(contracts, 2, axis=1)
    shipped_value *= noise(0.02)
    price = np.array([_PRICE[b] for b in line])[:, None] * rng.uniform(0.8, 1.25, (n, 1))
    price = price * (1 + 0.02 * years[None, :]) * noise(0.01)
    shipped = np.round(shipped_value * 10_000 / price)
    revenue = shipped * price / 10_000 * noise(0.01)
    margin_base = rng.uniform(0.25, 0.38, (n, 1))
    margin = margin_base * noise(0.02)
    headcount = np.round(rng.uniform(15, 60, (n, 1)) * (1 + 0.5 * growth * years[None, :]))
    headcount = np.maximum(headcount + rng.integers(-1, 2, (n, t_all)), 3)
    customers_base = rng.uniform(3, 15, (n, 1))
    collect = rng.uniform(0.55, 0.70, (n, 1))
    receivables = np.empty((n, t_all))
    cash = np.empty((n, t_all))
    ar = 1.13 * revenue[:, 0] * 1.4
    for t in range(t_all):  # receivables roll forward month by month
        cash[:, t] = collect[:, 0] * ar + 0.113 * revenue[:, t]
        ar = ar + 1.13 * revenue[:, t] - cash[:, t]
        receivables[:, t] = ar
    assets = 14.0 * scale * trend * noise(0.005)

    put(v, "new_contract_amount", contracts, is_sales)
    put(
        v,
        "new_customers",
        rng.poisson(customers_base * contracts / contract_exp.mean(1, keepdims=True)),
        is_sales,
    )
    put(v, "shipped_qty", shipped, is_sales)
    put(v, "avg_unit_price", price, is_sales)
    put(v, "recognised_qty", np.floor(shipped * rng.uniform(0.985, 1.0, (n, t_all))), is_sales)
    put(v, "revenue", revenue, is_sales)
    put(v, "cogs", revenue * (1 - margin), is_sales)
    put(v, "cash_collected", cash, is_sales)
    put(v, "receivables", receivables, is_sales)
    put(v, "total_assets", assets, is_sales)
    put(v, "equity", 0.45 * assets, is_sales)
    put(v, "invested_capital", 0.70 * assets, is_sales)
    put(e, "revenue", demand, is_sales)
    put(e, "new_contract_amount", contract_exp, is_sales)
    put(e, "cogs", demand * (1 - margin_base), is_sales)
    put(e, "shipped_qty", demand * 10_000 / price, is_sales)
    put(e, "cash_collected", demand * 1.13, is_sales)
    put(e, "new_customers", customers_base * np.ones((1, t_all)), is_sales)

    # --- plants (cost centres): plan -> production -> cost ------------------------------------
    plan_exp = rng.lognormal(np.log(40_000), 0.4, (n, 1)) * np.roll(season, -1, axis=1) * trend
    plan = plan_exp * noise(0.05)
    production = np.round((0.4 * plan + 0.6 * np.roll(plan, 1, axis=1)) * noise(0.02))
    yield_ref = rng.uniform(0.93, 0.975, (n, 1))
    yield_rate = np.clip(yield_ref + rng.normal(0, 0.004, (n, t_all)), 0.5, 0.999)
    year_idx = np.array([(periods[0] - _LEAD + i).year - anchor.year for i in range(t_all)])
    std_cost = np.array([_PRICE[b] for b in line])[:, None] * rng.uniform(0.45, 0.6, (n, 1))
    std_cost = std_cost * (1 + rng.uniform(-0.01, 0.04, (n, 1))) ** (year_idx[None, :] + 3)
    savings = np.clip(rng.normal(0.02, 0.008, (n, t_all)), -0.01, 0.06)
    prod_cost = (
        production * std_cost / 10_000 * (yield_ref / yield_rate) * (1 - 0.5 * (savings - 0.02))
    )
    prod_cost *= noise(0.015)
    put(v, "production_plan_qty", np.round(plan), is_plant)
    put(v, "production_qty", production, is_plant)
    put(v, "yield_rate", yield_rate, is_plant)
    put(v, "std_unit_cost", std_cost, is_plant)
    put(v, "procurement_savings_rate", savings, is_plant)
    put(v, "production_cost", prod_cost, is_plant)
    put(e, "production_cost", (0.4 + 0.6) * plan_exp * std_cost / 10_000, is_plant)
    put(e, "production_qty", plan_exp, is_plant)
    plant_hc = np.round(rng.uniform(60, 250, (n, 1)) + rng.integers(-2, 3, (n, t_all)))
    headcount = np.where(is_plant[:, None], plant_hc, headcount)

    # --- functional units --------------------------------------------------------------------
    func = units["center_type"].to_numpy() == "functional"
    func_hc = np.round(rng.uniform(8, 40, (n, 1)) + rng.integers(-1, 2, (n, t_all)))
    headcount = np.where(func[:, None], func_hc, headcount)
    milestones = rng.poisson(2.5, (n, t_all)).astype(float)
    rd_cap = 35.0 * milestones * noise(0.08) + rng.normal(0, 5, (n, t_all)).clip(-4, None) + 5
    put(v, "rd_milestones", milestones, is_rd)
    put(v, "rd_capitalised", rd_cap, is_rd)
    put(e, "rd_capitalised", 35.0 * 2.5 + 5 + 0 * milestones, is_rd)
    satisfaction = np.repeat(rng.uniform(78, 95, (n, t_all // 3 + 2)), 3, axis=1)[:, :t_all]
    put(v, "internal_satisfaction", np.round(satisfaction, 1), func)

    # --- everyone: headcount, opex, task completion; delivery for sales and plants ------------
    pay = np.where(is_plant, 0.25, np.where(func, 1.0, 1.2))[
        :, None
    ]  # 万元 per head per month (plant wages sit in production cost)
    dec_bump = np.where(months == 12, 1.15, 1.0)[None, :]
    opex = headcount * pay * dec_bump * noise(0.03)
    opex += np.where(is_sales[:, None], 0.06 * revenue, 0.0)
    put(v, "headcount", headcount, np.ones(n, bool))
    put(v, "opex", opex, np.ones(n, bool))
    put(
        e,
        "opex",
        headcount.mean(1, keepdims=True) * pay * dec_bump
        + np.where(is_sales[:, None], 0.06 * demand, 0.0),
        np.ones(n, bool),
    )
    put(
        v,
        "mgmt_task_completion",
        np.clip(rng.normal(0.93, 0.04, (n, t_all)), 0.6, 1.0),
        np.ones(n, bool),
    )
    put(
        v,
        "on_time_delivery_rate",
        np.clip(rng.normal(0.95, 0.015, (n, t_all)), 0.8, 1.0),
        is_sales | is_plant,
    )

    sim.drop_lead(_LEAD)  # the simulated lead-in months
    return sim
