"""Money at stake of a finding: its signed effect in money, and whether it is favourable
(not API).

A finding puts money at stake only when it moves against the flagged metric's catalog
``direction`` (a cost above what was expected, sales or a saving rate below) and its money
effect is adverse too (more cost, less income); a favourable move is reported but puts
nothing at stake. A linkage finding (a finance figure that does not match what its drivers
imply) is a mismatch of records and at stake either way.

The effect is priced in the catalog's money unit:

- a money metric: its deviation ``value - expected``;
- a ratio feature whose numerator is money (a cost ratio, sales per head): the feature's
  change times its denominator, the numerator's change at the usual ratio;
- a non-money driver (a count, a rate, a quantity): its mapped effect on the finance metric
  the catalog maps it to, ``elasticity x (value / expected - 1) x the finance figure``,
  where the elasticity is estimated from the units' own months (:func:`elasticities`) and
  the finance figure is the target's expected value in the month the driver acts on.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from perflink._report_format import fmt_number
from perflink.anomaly._cube import Cube, Scored
from perflink.anomaly._explain import unit_of
from perflink.anomaly._features import Feature
from perflink.catalog import Catalog, MetricMapping
from perflink.labels import t
from perflink.units import unit_label

#: Months of each unit's history the elasticities are estimated over (ending before the
#: review quarter), as many as the mapping task's driver regressions (``mapping.driver_months``).
ELASTICITY_MONTHS = 24
_MIN_OBS = 24  # fewer usable unit-months: no elasticity is made up
_MIN_PER_UNIT = 3  # months a unit needs to contribute within-unit variation
_ALWAYS_AT_STAKE = ("linkage",)


class Elasticity(NamedTuple):
    """A mapping's elasticity and the driver level a deviation is read against: NaN where it
    was fitted in logs (the month's expected value: a relative change is a log change), the
    driver's mean over the fit where it was fitted in levels (a driver that can be zero or
    negative, such as a savings rate: its elasticity holds at that mean, and a deviation
    over a near-zero month's expected value would multiply it many times)."""

    b: float
    level: float = np.nan


_NONE = Elasticity(np.nan)


def _fit(y: np.ndarray, xs: list[np.ndarray], ents: np.ndarray) -> Elasticity:
    """Within-unit OLS slope of ``y`` on ``xs[0]`` (holding any ``xs[1:]`` fixed) as an
    elasticity: logs where a column is all positive, else levels scaled at the means."""
    data = np.column_stack([y, *xs])
    ok = np.isfinite(data).all(axis=1)
    data, ents = data[ok], ents[ok]
    if len(data) == 0:
        return _NONE
    codes, counts = np.unique(ents, return_inverse=True, return_counts=True)[1:]
    keep = counts[codes] >= _MIN_PER_UNIT
    data, codes = data[keep], codes[keep]
    if len(data) < _MIN_OBS or np.unique(codes).size < 2:
        return _NONE
    logged = (data > 0).all(axis=0)
    raw_mean = data.mean(axis=0)
    data = np.where(logged, np.log(np.where(logged, data, 1.0)), data)
    sums = np.zeros((codes.max() + 1, data.shape[1]))
    np.add.at(sums, codes, data)
    with np.errstate(all="ignore"):  # units left out above have no rows to divide
        demeaned = data - (sums / np.bincount(codes)[:, None])[codes]
    if np.abs(demeaned[:, 1]).max() < 1e-12 or np.abs(demeaned[:, 0]).max() < 1e-12:
        return _NONE
    beta = np.linalg.lstsq(demeaned[:, 1:], demeaned[:, 0], rcond=None)[0][0]
    scale = (1.0 if logged[1] else raw_mean[1]) / (1.0 if logged[0] else raw_mean[0])
    if not (np.isfinite(scale) and scale != 0):
        return _NONE
    return Elasticity(float(beta * scale), np.nan if logged[1] else float(raw_mean[1]))


def _lagged(cube: Cube, metric: str, lag: int) -> np.ndarray:
    x = cube.get(metric)
    out = np.full_like(x, np.nan)
    out[:, lag:] = x[:, : x.shape[1] - lag] if lag else x
    return out


def elasticities(
    cube: Cube, catalog: Catalog, *, months: int = ELASTICITY_MONTHS
) -> dict[str, Elasticity]:
    """Elasticity of each mapping's finance target to its driver, by mapping id.

    The within-unit (fixed effects) least-squares slope of ``target_t`` on
    ``driver_{t-lag}`` over the ``months`` months before the review quarter, in logs where
    all values are positive (else levels, scaled to an elasticity at the means): the
    estimator of the mapping task's simple driver regression
    (``perflink.mapping.driver_strength``, model ``simple``), whose window ends with the
    quarter instead. The quarter is left out so that its anomalies do not set their own
    price: one month of doubled staff with unchanged costs would pull the slope of costs
    on staff down by a quarter (measured in ``tests/test_anomaly_panel.py``). The target's other drivers
    are not held fixed: the money at stake is the driver's whole effect, including what
    passes through them (a driver upstream of another moves the target through it; holding
    the other fixed would price the upstream driver's shortfall at nearly nothing). When that slope has the opposite
    sign to the mapping's (a driver whose effect other drivers hide), the partial slope with
    the target's other mapped drivers held fixed (the mapping task's ``partial`` model);
    NaN when neither has the mapping's sign or there are fewer than 24 usable unit-months.
    """
    out: dict[str, Elasticity] = {}
    end = int(cube.quarter[0])  # the quarter's own anomalies must not set their price
    win = slice(max(0, end - months), end)
    ents = np.repeat(np.arange(len(cube.entities)), win.stop - win.start)
    for mp in catalog.mappings:
        out[mp.id] = _NONE
        if cube.m(mp.driver) is None or cube.m(mp.target) is None:
            continue
        y = cube.get(mp.target)[:, win].ravel()
        x = _lagged(cube, mp.driver, mp.lag)[:, win].ravel()
        others = [
            _lagged(cube, c.driver, c.lag)[:, win].ravel()
            for c in catalog.mappings_to(mp.target)
            if c.id != mp.id and cube.m(c.driver) is not None
        ]
        for xs in ([x], [x, *others]) if others else ([x],):
            fit = _fit(y, xs, ents)
            if np.isfinite(fit.b) and np.sign(fit.b) == mp.sign:
                out[mp.id] = fit
                break
    return out


def _driver_effect(
    cube: Cube, sc: Scored, catalog: Catalog, mp: MetricMapping, el: Elasticity, e: int, t: int
) -> tuple[float, float]:
    """(``b x rel x figure``, ``figure``) in money: ``rel`` the driver's deviation over its
    expected value (over its mean where the elasticity was fitted in levels:
    :class:`Elasticity`), ``figure`` the target's expected value at ``t + lag`` (else ``t``;
    its actual where the detector has no expected value)."""
    factor = catalog.in_money_unit(mp.target) if mp.target in catalog.metrics else None
    m, md = cube.m(mp.target), cube.m(mp.driver)
    b = el.b
    if factor is None or m is None or md is None or not np.isfinite(b):
        return np.nan, np.nan
    v, ex = cube.values[e, md, t], sc.expected[e, md, t]
    if not (np.isfinite(v) and np.isfinite(ex)) or ex == 0 or el.level == 0:
        return np.nan, np.nan
    rel = (v - ex) / el.level if np.isfinite(el.level) else v / ex - 1.0
    base = np.nan
    for tt in (t + mp.lag, t):
        if tt < len(cube.periods):
            base = sc.expected[e, m, tt]
            base = base if np.isfinite(base) else cube.values[e, m, tt]
            if np.isfinite(base):
                break
    return float(b * rel * base * factor), float(base * factor)


def money_effect(
    rows: pd.DataFrame,
    cube: Cube,
    sc: Scored,
    catalog: Catalog,
    features: dict[str, Feature],
    elastic: dict[str, Elasticity],
) -> pd.DataFrame:
    """Signed money effect of each candidate row and how it was priced.

    Returns a frame on ``rows.index``: ``effect`` (in the catalog's money unit, NaN when it
    cannot be priced: no money in the catalog, a driver without a mapping to a money metric
    or without an elasticity), ``priced`` (the metric id the money is of, or None); for a
    driver priced through a mapping also ``mapping_id``, ``elasticity`` and ``figure`` (the
    finance figure, in the money unit; NaN otherwise) and ``level`` (the driver level its
    deviation is read over where the elasticity was fitted in levels, :class:`Elasticity`).
    """
    n = len(rows)
    out = pd.DataFrame(
        {
            "effect": np.full(n, np.nan),
            "priced": np.full(n, None, dtype=object),
            "mapping_id": np.full(n, None, dtype=object),
            "elasticity": np.full(n, np.nan),
            "figure": np.full(n, np.nan),
            "level": np.full(n, np.nan),
        },
        index=rows.index,
    )
    if catalog.money_unit is None or n == 0:
        return out
    e, tt = rows["e"].to_numpy(int), rows["t"].to_numpy(int)
    dev = rows["value"].to_numpy(float) - rows["expected"].to_numpy(float)
    feature = rows["feature"] if "feature" in rows else pd.Series([None] * n)
    for i, (metric, feat) in enumerate(zip(rows["metric_id"], feature, strict=True)):
        spec = features.get(feat) if isinstance(feat, str) else None
        num_money = catalog.in_money_unit(spec.numerator) if spec is not None else None
        money = catalog.in_money_unit(metric) if metric in catalog.metrics else None
        if spec is not None and spec.denominator is not None and num_money is not None:
            fdev = rows["feature_value"].iloc[i] - rows["feature_usual"].iloc[i]
            effect = fdev * rows["feature_denominator"].iloc[i] / spec.factor * num_money
            out.iloc[i, :2] = [effect, spec.numerator]
        elif money is not None:
            out.iloc[i, :2] = [dev[i] * money, metric]
        else:
            # a driver mapped to several finance metrics: the largest of its effects
            for mp in catalog.mappings:
                if mp.driver != metric:
                    continue
                el = elastic.get(mp.id, _NONE)
                x, figure = _driver_effect(cube, sc, catalog, mp, el, e[i], tt[i])
                if np.isfinite(x) and not abs(x) <= abs(np.nan_to_num(out.iloc[i, 0])):
                    out.iloc[i] = [x, mp.target, mp.id, el.b, figure, el.level]
    return out


def favourable(rows: pd.DataFrame, catalog: Catalog) -> np.ndarray:
    """True where the row's metric moved to the good side of what was expected (its catalog
    ``direction``); never for a linkage finding (a mismatch of records)."""
    higher = np.array(
        [
            m in catalog.metrics and catalog.metrics[m].direction == "higher"
            for m in rows["metric_id"]
        ]
    )
    known = np.array([m in catalog.metrics for m in rows["metric_id"]], dtype=bool)
    move = rows["value"].to_numpy(float) - rows["expected"].to_numpy(float)
    good = np.where(higher, move > 0, move < 0) & known
    return good & ~rows["kind"].isin(_ALWAYS_AT_STAKE).to_numpy()


def at_stake(rows: pd.DataFrame, priced: pd.DataFrame, good: np.ndarray, catalog: Catalog):
    """Money at risk (>= 0) per row: ``|effect|`` where the row's metric moved to its bad side
    and the money moved to the bad side of the metric it is of (more cost, less income);
    0 where either move is favourable (a production drop lowers its cost: the drop is
    reported, but puts no cost at stake); NaN where the effect could not be priced. A
    linkage finding puts its ``|effect|`` at stake either way (a mismatch of records)."""
    effect = priced["effect"].to_numpy(float)
    higher = np.array(
        [
            m in catalog.metrics and catalog.metrics[m].direction == "higher"
            for m in priced["priced"]
        ]
    )
    adverse = np.where(higher, effect < 0, effect > 0)
    linkage = rows["kind"].isin(_ALWAYS_AT_STAKE).to_numpy()
    risk = linkage | (~good & adverse)
    return np.where(np.isfinite(effect), np.where(risk, np.abs(effect), 0.0), np.nan)


def stake_text(priced: pd.DataFrame, catalog: Catalog, names: dict, lang: str) -> list[str]:
    """For each row priced through a mapping, the sentence that shows the sum: elasticity x
    relative deviation x finance figure = effect (in the money unit); "" for the others."""
    out = []
    unit = catalog.money_unit
    drivers = {mp.id: mp.driver for mp in catalog.mappings}
    for effect, target, b, figure, level, mid in zip(
        priced["effect"], priced["priced"], priced["elasticity"], priced["figure"],
        priced["level"], priced["mapping_id"], strict=True,
    ):  # fmt: skip
        if not (np.isfinite(b) and np.isfinite(effect) and figure):
            out.append("")
            continue
        driver = drivers.get(mid, "")
        text = t(
            "anomaly.msg.stake_driver_level" if np.isfinite(level) else "anomaly.msg.stake_driver",
            lang,
            target=names.get(target, target),
            driver=names.get(driver, driver),
            level=fmt_number(level, unit_of(catalog, driver), lang) if np.isfinite(level) else "",
            b=f"{b:.2f}",
            rel=f"{effect / (b * figure):+.1%}",
            figure=fmt_number(figure, unit, lang),
            effect=("+" if effect > 0 else "") + fmt_number(effect, unit, lang),
        )
        out.append(text if lang == "zh" else f" {text}")
    return out


def elasticity_table(elastic: dict[str, Elasticity], catalog: Catalog) -> pd.DataFrame:
    """``mapping_id, driver, target, lag, elasticity`` of every catalog mapping (NaN: not
    estimated; its driver's findings carry no money at stake)."""
    rows = [
        dict(
            mapping_id=mp.id,
            driver=mp.driver,
            target=mp.target,
            lag=mp.lag,
            elasticity=elastic.get(mp.id, _NONE).b,
        )
        for mp in catalog.mappings
    ]
    cols = ["mapping_id", "driver", "target", "lag", "elasticity"]
    return pd.DataFrame(rows, columns=cols)


def stake_note(elastic: dict[str, Elasticity], catalog: Catalog, names: dict, lang: str) -> str:
    """How money at stake is priced (in which unit, from which elasticities), and which
    mappings could not be priced, in ``lang``; "" for a catalog without money."""
    if catalog.money_unit is None:
        return ""
    sep = "；" if lang == "zh" else "; "
    used = [
        f"{names.get(mp.driver, mp.driver)} → {names.get(mp.target, mp.target)} "
        f"{elastic[mp.id].b:.2f}"
        for mp in catalog.mappings
        if np.isfinite(elastic.get(mp.id, _NONE).b)
    ]
    missing = [
        f"{names.get(mp.driver, mp.driver)} → {names.get(mp.target, mp.target)}"
        for mp in catalog.mappings
        if not np.isfinite(elastic.get(mp.id, _NONE).b)
    ]
    text = t(
        "anomaly.text.stake",
        lang,
        unit=unit_label(catalog.money_unit, lang),
        months=ELASTICITY_MONTHS,
        elasticities=sep.join(used) or "—",
    )
    if missing:
        text += ("" if lang == "zh" else " ") + t(
            "anomaly.text.stake_missing", lang, mappings=sep.join(missing)
        )
    return text
