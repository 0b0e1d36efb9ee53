"""KPI panels: the adjusted unit panel from the actual one equals pivoting facts plus moves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import perflink
from perflink.catalog import load_catalog
from perflink.kpi import _panels as pn

CATALOG = load_catalog(Path(perflink.__file__).parent / "data" / "catalog")
MONTHS = pd.period_range("2026-01", "2026-09", freq="M")


def _facts() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = [
        (e, p, m, float(rng.normal(100, 30)))
        for e in ("U1", "U2", "U3")
        for p in MONTHS
        for m in ("revenue", "cogs", "opex")
    ]
    df = pd.DataFrame(rows, columns=["entity_id", "period", "metric_id", "value"])
    df.loc[5, "value"] = np.nan  # a reported key without a value
    df.loc[7, "value"] = -0.0  # summed from zero, a negative zero becomes 0.0
    return df.iloc[:-1]  # U3 lacks opex in its last month: a cell only a move fills


def _moves(rows: list[tuple]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=["entity_id", "period", "metric_id", "amount"])
    out["period"] = pd.PeriodIndex(out["period"], freq="M")
    return out


def _same(facts: pd.DataFrame, moves: pd.DataFrame, monkeypatch=None) -> pd.DataFrame:
    unit = pn.unit_wide(facts, CATALOG)
    want = pn.unit_wide(facts, CATALOG, moves)
    if monkeypatch is not None:  # the shortcut must be taken: pivoting again fails the test
        monkeypatch.setattr(pn, "unit_wide", lambda *a, **k: pytest.fail("pivoted again"))
    got = pn.moved_wide(unit, facts, moves, CATALOG)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    # bit for bit, signs of zero included (assert_frame_equal takes -0.0 for 0.0)
    assert np.array_equal(np.signbit(got.to_numpy()), np.signbit(want.to_numpy()))
    return got


def test_moved_wide_is_the_pivot_of_facts_and_moves(monkeypatch):
    facts = _facts()
    moves = _moves(
        [
            ("U1", "2026-08", "revenue", 12.5),
            ("U2", "2026-03", "cogs", -4.0),
            ("U1", "2026-02", "revenue", 3.0),  # the key whose value is missing
            ("U3", "2026-09", "opex", 7.0),  # a cell the facts do not have
            ("U2", "2026-04", "opex", np.nan),  # a move without an amount adds nothing
            ("U2", "2026-05", "not_a_metric", 1.0),  # not in the panel
        ]
    )
    got = _same(facts, moves, monkeypatch)
    assert got.loc[("U1", pd.Period("2026-08", "M")), "revenue"] == pytest.approx(
        facts.set_index(["entity_id", "period", "metric_id"]).loc[
            ("U1", pd.Period("2026-08", "M"), "revenue"), "value"
        ]
        + 12.5
    )
    assert got.loc[("U3", pd.Period("2026-09", "M")), "opex"] == 7.0


@pytest.mark.parametrize(
    "moves",
    [
        [("U1", "2026-10", "revenue", 1.0)],  # a month after the facts: the grid grows
        [("U9", "2026-08", "revenue", 1.0)],  # a unit without facts
        [("U1", "2026-08", "revenue", 0.1), ("U1", "2026-08", "revenue", 0.2)],  # one key twice
    ],
)
def test_moved_wide_falls_back_where_the_grid_or_the_sums_would_differ(moves):
    _same(_facts(), _moves(moves))


def test_moved_wide_sums_a_key_the_facts_repeat():
    facts = _facts()
    facts = pd.concat([facts, facts.iloc[[0]].assign(value=1.0)], ignore_index=True)
    _same(facts, _moves([("U2", "2026-08", "revenue", 1.0)]))


def _targets() -> pd.DataFrame:
    rows = [
        (e, 2026, p, "revenue", 90.0 + i, "budget")
        for e in ("U1", "U2", "U3")
        for i, p in enumerate(MONTHS)
    ]
    rows += [(e, 2026, pd.NaT, "revenue", 1200.0, "assessment") for e in ("U1", "U2")]
    rows += [(e, 2026, pd.NaT, "yield_rate", 0.95, "assessment") for e in ("U1", "U3")]
    out = pd.DataFrame(rows, columns=["entity_id", "year", "period", "metric_id", "target", "kind"])
    out["period"] = pd.PeriodIndex(out["period"], freq="M")
    return out


def test_target_grids_sharing_their_pivots_are_the_grids_of_separate_calls():
    from perflink.options import KpiEnvironmentChange

    facts, targets = _facts(), _targets()
    ents = pd.DataFrame(
        {"entity_id": ["U1", "U2", "U3"], "business_line": ["retail", "retail", "services"]}
    )
    unit = pn.unit_wide(facts, CATALOG)
    change = (
        KpiEnvironmentChange(
            business_line="retail", metric_id="revenue", from_period="2026-07", factor=0.9
        ),
    )
    cache: dict = {}
    # the order _build_panels calls them in: a change scales a shared pivot only in a copy
    for stretch in (False, True):
        for changes in (change, ()):
            got = pn.target_unit_wide(
                unit, targets, ents, CATALOG, changes=changes, stretch=stretch, cache=cache
            )
            want = pn.target_unit_wide(
                unit, targets, ents, CATALOG, changes=changes, stretch=stretch
            )
            pd.testing.assert_frame_equal(got, want, check_exact=True)
    scaled = pn.target_unit_wide(unit, targets, ents, CATALOG, changes=change, cache=cache)
    plain = pn.target_unit_wide(unit, targets, ents, CATALOG, cache=cache)
    at = ("U1", pd.Period("2026-08", "M"))
    assert scaled.loc[at, "revenue"] == pytest.approx(0.9 * plain.loc[at, "revenue"])
    assert plain.loc[at, "yield_rate"] == 0.95
    # another table: the cache starts again rather than answer with the first one's pivots
    other = pn.target_unit_wide(unit, targets.assign(target=1.0), ents, CATALOG, cache=cache)
    assert other.loc[at, "revenue"] == 1.0
