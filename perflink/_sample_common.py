"""What both built-in examples (the sample group and the retail example) build the same way.

The two generators differ in their company (units, metrics, catalog, planted problems) but
turn a simulation into the six input tables and write the folder alike: the facts, the
budget and assessment targets, the scheme table, the approved adjustments, the bonus table,
and the atomic write of the folder. Each generator passes its own metric lists and wording.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml


@dataclass
class Planted:
    """One planted problem as written to ``truth.yaml``."""

    id: str
    kind: str
    task: str
    entity_id: str
    metric_ids: list[str]
    periods: list[str]
    description: str
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = dict(
            id=self.id,
            kind=self.kind,
            task=self.task,
            entity_id=self.entity_id,
            metric_ids=self.metric_ids,
            periods=self.periods,
            description=self.description,
        )
        out.update(self.extra)
        return out


SchemeItem = tuple[str, float, str, str, float, float, dict]
_SCHEME_COLUMNS = [
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
]


def linear(
    metric: str, weight: float, category: str, floor: float = 0.6, cap: float = 1.2
) -> SchemeItem:
    """A scheme item scored linearly on completion, clipped to [``floor``, ``cap``]."""
    return (metric, weight, category, "linear", floor, cap, {})


def step(metric: str, weight: float, category: str, steps: list[list[float]]) -> SchemeItem:
    """A scheme item scored by completion steps ``[[completion, score], ...]`` (cap 1.2)."""
    return (metric, weight, category, "step", 0.0, 1.2, {"steps": steps})


def threshold(
    metric: str, weight: float, category: str, limit: float, passed: int, failed: int
) -> SchemeItem:
    """A scheme item scoring ``passed`` when the value reaches ``limit``, else ``failed``."""
    params = {"threshold": limit, "pass": passed, "fail": failed}
    return (metric, weight, category, "threshold", 0.0, 1.0, params)


def put(store: dict[str, np.ndarray], metric: str, values: np.ndarray, mask: np.ndarray) -> None:
    """Set ``values`` for the units in ``mask`` (others NaN), merging with what is there."""
    values = np.broadcast_to(np.asarray(values, dtype=float), (len(mask), values.shape[-1]))
    current = store.get(metric)
    if current is None:
        current = np.full(values.shape, np.nan)
    store[metric] = np.where(mask[:, None], values, current)


def facts_table(
    sim, source: Mapping[str, str], decimals: Mapping[str, int], *, numbered_refs: bool
) -> pd.DataFrame:
    """One fact row per reported (unit, month, metric) of ``sim``.

    ``source`` maps each metric to its source system; ``numbered_refs`` appends the metric's
    position in ``source`` to each source reference (the sample group's reference format).
    """
    parts = []
    ids = sim.units["entity_id"].to_numpy()
    ym = np.array([p.strftime("%Y%m") for p in sim.periods])
    per = np.array([str(p) for p in sim.periods])
    for number, (metric, system) in enumerate(source.items()):
        arr = sim.values.get(metric)
        if arr is None or np.isnan(arr).all():
            continue
        r, c = np.nonzero(~np.isnan(arr))
        ref = pd.Series(system + "-" + ids[r] + "-" + ym[c])
        parts.append(
            pd.DataFrame(
                {
                    "entity_id": ids[r],
                    "period": per[c],
                    "metric_id": metric,
                    "value": np.round(arr[r, c], decimals.get(metric, 2)),
                    "source_system": system,
                    "source_ref": ref + f"-{number:02d}" if numbered_refs else ref,
                }
            )
        )
    facts = pd.concat(parts, ignore_index=True)
    return facts.sort_values(["entity_id", "period", "metric_id"], kind="stable", ignore_index=True)


def targets_table(
    sim,
    rng: np.random.Generator,
    flows: Iterable[str],
    rates: Mapping[str, float | None],
    decimals: Mapping[str, int],
) -> pd.DataFrame:
    """Monthly budgets and annual assessment targets for ``flows``; annual targets for ``rates``.

    A flow's budget is its expected value with a small bias per unit; its annual target is
    the year's budget stretched by up to 3%. A rate's target is the fixed value in ``rates``
    or, where that is None, the unit's average over its first twelve months.
    """
    ids = sim.units["entity_id"].to_numpy()
    per = np.array([str(p) for p in sim.budget_periods])
    year_of = np.array([p.year for p in sim.budget_periods])
    full_years = [y for y in np.unique(year_of) if (year_of == y).sum() == 12]
    bias = rng.normal(1.0, 0.012, len(ids))[:, None]
    stretch = rng.uniform(1.0, 1.03, len(ids))
    frames = []

    def annual(unit_ids, year, metric, target):
        frames.append(
            pd.DataFrame(
                {
                    "entity_id": unit_ids,
                    "year": year,
                    "period": "",
                    "metric_id": metric,
                    "target": target,
                    "kind": "assessment",
                }
            )
        )

    for metric in flows:
        exp = sim.expected.get(metric)
        if exp is None:
            continue
        has = ~np.isnan(exp[:, 0])
        places = decimals.get(metric, 2)
        budget = (exp * bias)[has]
        r, c = np.nonzero(np.ones_like(budget, dtype=bool))
        frames.append(
            pd.DataFrame(
                {
                    "entity_id": ids[has][r],
                    "year": year_of[c],
                    "period": per[c],
                    "metric_id": metric,
                    "target": np.round(budget[r, c], places),
                    "kind": "budget",
                }
            )
        )
        for y in full_years:
            total = budget[:, year_of == y].sum(axis=1) * stretch[has]
            annual(ids[has], y, metric, np.round(total, places))
    for metric, fixed in rates.items():
        arr = sim.values[metric]
        has = ~np.isnan(arr[:, 0])
        value = np.round(np.nanmean(arr[has, :12], axis=1), 4) if fixed is None else fixed
        for y in np.unique(year_of):
            annual(ids[has], y, metric, value)
    targets = pd.concat(frames, ignore_index=True)
    return targets.sort_values(
        ["entity_id", "year", "kind", "metric_id", "period"], kind="stable", ignore_index=True
    )


def schemes_table(
    schemes: Mapping[str, Sequence[SchemeItem]],
    *,
    override_unit: str | None = None,
    override: Sequence[tuple[str, float]] = (),
) -> pd.DataFrame:
    """The scheme table: one scheme per centre type, plus a profit-centre override.

    ``override`` gives (metric, weight) pairs for a unit-level profit scheme of
    ``override_unit`` that takes everything else from the profit scheme (a planted problem).
    """
    rows = [
        (f"SCH-{center.upper()}", center, "", metric, weight, category, rule, lo, hi, params)
        for center, items in schemes.items()
        for metric, weight, category, rule, lo, hi, params in items
    ]
    if override_unit is not None:
        spec = {m: s for m, *s in schemes["profit"]}
        for metric, weight in override:
            _, category, rule, lo, hi, params = spec[metric]
            unit = override_unit
            rows.append(
                (f"SCH-{unit}", "profit", unit, metric, weight, category, rule, lo, hi, params)
            )
    frame = pd.DataFrame(rows, columns=_SCHEME_COLUMNS)
    frame["rule_params"] = frame["rule_params"].map(json.dumps)
    return frame


def adjustments_table(planted, metric: str, reason: str, approved_by: str) -> pd.DataFrame:
    """One approved adjustment of ``metric`` per planted known event."""
    rows = [
        (p.entity_id, p.periods[0], metric, p.extra["adjustment_amount"], reason, approved_by)
        for p in planted
        if p.kind == "known_event"
    ]
    return pd.DataFrame(
        rows, columns=["entity_id", "period", "metric_id", "amount", "reason", "approved_by"]
    )


def bonus_table(
    sim,
    pools: Iterable[str],
    group_id: str,
    *,
    per_head: float,
    least: float,
    short_pool: str | None,
) -> pd.DataFrame:
    """Base bonus per unit (``per_head`` a head, at least ``least``) and pool budgets.

    Each pool in ``pools`` (a parent of units) gets 115% of its units' base bonus, except
    ``short_pool`` (a planted problem) with 70%; the group gets 112% of all base bonus.
    """
    units = sim.units
    year = sim.periods[-1].year
    hc = np.nanmean(sim.values["headcount"][:, -12:], axis=1)
    base = np.round(np.clip(hc * per_head, least, None), 1)
    rows = [(eid, year, float(b), np.nan) for eid, b in zip(units["entity_id"], base, strict=True)]
    parent = units["parent_id"].to_numpy()
    for pool in pools:
        share = 0.7 if pool == short_pool else 1.15
        rows.append((pool, year, 0.0, round(float(base[parent == pool].sum() * share), 1)))
    rows.append((group_id, year, 0.0, round(float(base.sum() * 1.12), 1)))
    return pd.DataFrame(rows, columns=["entity_id", "year", "base_bonus", "pool_budget"])


def write_folder(
    out: Path,
    tables: Mapping[str, pd.DataFrame],
    catalog: Traversable,
    params_text: str,
    truth: Mapping[str, Any],
    *,
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write the tables, the catalog's YAML files, params and truth into ``out`` atomically.

    Everything goes to a temporary sibling folder first, which then replaces ``out``, so a
    failed run leaves an existing folder untouched. ``extra`` may add files to the folder.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for name, df in tables.items():
            df.to_csv(tmp / f"{name}.csv", index=False, encoding="utf-8", lineterminator="\n")
        (tmp / "catalog").mkdir()
        for item in sorted(catalog.iterdir(), key=lambda p: p.name):
            if item.name.endswith(".yaml"):
                (tmp / "catalog" / item.name).write_bytes(item.read_bytes())
        (tmp / "params.yaml").write_text(params_text, encoding="utf-8")
        (tmp / "truth.yaml").write_text(
            yaml.safe_dump(dict(truth), allow_unicode=True, sort_keys=False), encoding="utf-8"
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


def _cell(sim, unit: str, period: str) -> tuple[int, int]:
    """Row of ``unit`` and column of ``period`` in ``sim``'s value arrays."""
    return list(sim.units["entity_id"]).index(unit), [str(p) for p in sim.periods].index(period)


def plant_spike(
    sim, pid: str, unit: str, metric: str, period: str, size: float, description: str
) -> Planted:
    """Raise ``unit``'s ``metric`` in ``period`` by ``size`` (0.8: +80%): an expense spike."""
    i, j = _cell(sim, unit, period)
    sim.values[metric][i, j] *= 1 + size
    extra = {"size": size}
    return Planted(pid, "expense_spike", "anomaly", unit, [metric], [period], description, extra)


def plant_missing(sim, pid: str, unit: str, metric: str, period: str, description: str) -> Planted:
    """Remove ``unit``'s ``metric`` in ``period``: a monthly value that never arrived."""
    i, j = _cell(sim, unit, period)
    sim.values[metric][i, j] = np.nan
    return Planted(pid, "missing_data", "mapping", unit, [metric], [period], description)


def plant_closure(
    sim,
    pid: str,
    unit: str,
    period: str,
    metric: str,
    share: float,
    scaled: Sequence[str],
    description: str,
    *,
    counted: Sequence[str] = (),
) -> Planted:
    """Close ``unit`` for days in ``period``: a known event with an approved adjustment.

    The ``scaled`` metrics (and the ``counted`` ones, rounded to whole numbers) lose
    ``share``; the adjustment amount is what ``metric`` lost.
    """
    i, j = _cell(sim, unit, period)
    v = sim.values
    lost = v[metric][i, j] * share
    for m in counted:
        v[m][i, j] = np.round(v[m][i, j] * (1 - share))
    for m in scaled:
        v[m][i, j] *= 1 - share
    extra = {"adjustment_amount": round(float(lost), 2)}
    return Planted(pid, "known_event", "anomaly", unit, [metric], [period], description, extra)


def policy_problems(
    scheme: tuple[str, str, str], bonus: tuple[str, str, str], year: int
) -> list[Planted]:
    """The scheme violation and bonus overrun, each as (id, unit, description).

    The writers apply them (:func:`schemes_table`, :func:`bonus_table`); here they are described.
    """
    (sid, sunit, stext), (bid, bunit, btext) = scheme, bonus
    return [
        Planted(
            sid, "scheme_violation", "kpi", sunit, [], [], stext, {"scheme_id": f"SCH-{sunit}"}
        ),
        Planted(bid, "bonus_overrun", "kpi", bunit, [], [], btext, {"year": year}),
    ]


def budget_miss(
    sim,
    pid: str,
    unit: str,
    driver: str,
    metrics: list[str],
    anchor: pd.Period,
    month: int,
    description: str,
) -> tuple[np.ndarray, Planted]:
    """A budget miss of ``unit``: its ``driver`` down 20% from ``month`` of the anchor's year.

    Returns the monthly factor (0.8 from that month on, 1 before; 0.8 throughout when the
    data start later) for the caller to apply to the driver and its consequences, and the
    problem over the months from ``month`` to the anchor.
    """
    start = {str(p): j for j, p in enumerate(sim.periods)}.get(f"{anchor.year}-{month:02d}", 0)
    factor = np.ones(len(sim.periods))
    factor[start:] = 0.8
    periods = [f"{anchor.year}-{mm:02d}" for mm in range(month, anchor.month + 1)]
    extra = {"year": anchor.year, "driver": driver}
    return factor, Planted(
        pid, "budget_miss", "forecast", unit, metrics, periods, description, extra
    )
