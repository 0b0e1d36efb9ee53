"""Driver strength: within-entity panel regressions of each mapping. Not API.

See :func:`perflink.mapping.driver_strength`. Two elasticities per mapping, named apart:

``elasticity`` (monthly)
    What this task tests the mapping with: month by month, within each unit (unit fixed
    effects), over the last ``driver_months`` months, at the catalog's lag, controlling for
    the target's other drivers where the partial model is chosen.
``elasticity_quarter`` (year over year, 3-month windows)
    What the KPI decomposition prices a driver's deviation with
    (:func:`perflink.kpi.estimate_elasticities`): the change of a 3-month total on the same
    window a year earlier, pooled over units and all history up to the quarter, slope through
    the origin, no controls. :func:`quarter_elasticities` computes it by the same definition
    (tests/test_mapping.py checks the two agree), so the mapping page can show the figure
    the KPI page uses beside its own and say why they differ: a driver whose effect is spread
    over several months (orders booked over the following one to two months) has a monthly
    elasticity at one lag below its quarterly one; a driver that barely moves year over year
    while the target's other drivers do (a rate beside a volume) gets a quarterly
    slope without controls that can be far off.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from perflink import panel
from perflink.catalog import Catalog, MetricMapping
from perflink.labels import t
from perflink.mapping._common import fmt_num, lag_text, p_text, quarter_months, upto

_MIN_PER_ENTITY = 3  # months an entity needs to contribute within-entity variation

COLUMNS = [
    "mapping_id",
    "mapping",
    "driver",
    "target",
    "sign",
    "lag",
    "model",
    "transform",
    "elasticity",
    "ci_low",
    "ci_high",
    "p_value",
    "within_r2",
    "n_obs",
    "n_entities",
    "elasticity_prev",
    "elasticity_last",
    "elasticity_quarter",
    "stability_z",
    "strength",
    "severity",
    "message",
]


def _fit(y: pd.Series, X: pd.DataFrame, min_obs: int, min_entities: int) -> dict | None:
    """Fixed-effects (within) OLS of ``y`` on ``X`` with entity-clustered SEs; first column."""
    data = pd.concat([y.rename("_y"), X], axis=1).dropna()
    logs = {}
    for col in data.columns:
        positive = bool((data[col] > 0).all())
        logs[col] = positive
        if positive:
            data[col] = np.log(data[col])
    # the index's integer entity codes, not its ids: grouping by text factorizes them anew
    # (same groups, same row order within each, so the same figures)
    level = data.index.names.index("entity_id")
    ents = np.asarray(data.index.codes[level])
    size = data.groupby(ents)["_y"].transform("size")
    data = data[size.to_numpy() >= _MIN_PER_ENTITY]
    ents = np.asarray(data.index.codes[level])
    n_obs, n_ent = len(data), len(np.unique(ents))
    if n_obs < min_obs or n_ent < min_entities:
        return None
    demeaned = data - data.groupby(ents).transform("mean")
    xcol = X.columns[0]
    if demeaned[xcol].abs().max() < 1e-12 or demeaned["_y"].abs().max() < 1e-12:
        return None
    # imported here: statsmodels takes about a second to import, which every kernel that
    # reads perflink.mapping (the summary's rule units) would pay without fitting anything
    from statsmodels.regression.linear_model import OLS

    codes = pd.factorize(ents)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = OLS(demeaned["_y"].to_numpy(), demeaned[list(X.columns)].to_numpy()).fit(
            cov_type="cluster", cov_kwds={"groups": codes}, use_t=True
        )
    b, se, p = float(res.params[0]), float(res.bse[0]), float(res.pvalues[0])
    lo, hi = (float(v) for v in res.conf_int()[0])
    # scale a level coefficient to an elasticity at the means of the raw data
    scale = 1.0
    if not logs[xcol]:
        scale *= float(X.loc[data.index, xcol].mean())
    if not logs["_y"]:
        scale /= float(y.loc[data.index].mean())
    if not np.isfinite(scale) or scale == 0:
        return None
    lo, hi = sorted((lo * scale, hi * scale))
    transform = ("log" if logs["_y"] else "level") + "-" + ("log" if logs[xcol] else "level")
    return dict(
        elasticity=b * scale,
        se=abs(se * scale),
        ci_low=lo,
        ci_high=hi,
        p_value=p,
        within_r2=float(res.rsquared),
        n_obs=n_obs,
        n_entities=n_ent,
        transform=transform,
    )


def _design(wide: pd.DataFrame, mp: MetricMapping, controls: list[MetricMapping]) -> pd.DataFrame:
    by_ent = wide.groupby(level="entity_id")
    cols = {f"x_{mp.driver}": by_ent[mp.driver].shift(mp.lag)}
    for c in controls:
        cols[f"c_{c.driver}_{c.lag}"] = by_ent[c.driver].shift(c.lag)
    return pd.DataFrame(cols)


def _unit_panel(facts: pd.DataFrame, catalog: Catalog, needed: list[str]) -> pd.DataFrame:
    """Units' monthly values of the ``needed`` metrics; a derived one (a mapping to gross
    margin, or from a conversion rate) computed per unit-month from its formula over the
    reported metrics it is built from, as the facts never hold it."""
    closure, todo = set(), [m for m in needed if catalog.metrics[m].derived]
    while todo:
        mid = todo.pop()
        if mid in closure:
            continue
        closure.add(mid)
        if catalog.metrics[mid].derived:
            todo.extend(n for n in catalog.formulas[mid].inputs if n in catalog.metrics)
    reported = sorted((set(needed) | closure) - set(catalog.formulas))
    wide = panel.to_wide(facts, metrics=reported)
    for mid in catalog.derived_order:
        if mid in closure:
            wide[mid] = catalog.formulas[mid].evaluate_frame(wide)
    return wide


def quarter_elasticities(
    facts: pd.DataFrame, catalog: Catalog, quarter: pd.Period
) -> dict[str, float]:
    """Mapping id -> its year-over-year 3-month-window elasticity (NaN: too few data).

    The KPI decomposition's definition (:func:`perflink.kpi.estimate_elasticities`): for
    every unit-month, ``x`` = log of the driver's total over months t-L-2..t-L minus the
    same a year earlier (L the mapping's lag), ``y`` the same for the target over t-2..t
    (non-positive totals left out); the elasticity is the least-squares slope through the
    origin over at least 12 unit-months. Reported metrics only, facts up to the quarter's
    last month.
    """
    q1 = quarter_months(quarter)[-1]
    wide = panel.to_wide(upto(facts, q1), metrics=catalog.reported)
    n_ent = wide.index.get_level_values("entity_id").nunique()
    n_t = len(wide) // max(n_ent, 1)
    out: dict[str, float] = {}
    for mp in catalog.mappings:
        if mp.driver not in wide or mp.target not in wide or n_ent * n_t != len(wide):
            out[mp.id] = np.nan
            continue
        x = panel.yoy_window_change(wide[mp.driver].to_numpy(float).reshape(n_ent, n_t), mp.lag)
        y = panel.yoy_window_change(wide[mp.target].to_numpy(float).reshape(n_ent, n_t), 0)
        ok = np.isfinite(x) & np.isfinite(y)
        sxx = float((x[ok] ** 2).sum())
        out[mp.id] = float((x[ok] * y[ok]).sum() / sxx) if ok.sum() >= 12 and sxx > 0 else np.nan
    return out


def run(
    facts: pd.DataFrame,
    entities: pd.DataFrame | None,
    catalog: Catalog,
    quarter: pd.Period,
    *,
    months: int,
    min_obs: int,
    min_entities: int,
    alpha: float,
    stability_z: float,
    min_elasticity: float,
    min_r2: float,
    lang: str,
) -> pd.DataFrame:
    q1 = quarter_months(quarter)[-1]
    mappings = [mp for mp in catalog.mappings if {mp.driver, mp.target} <= set(catalog.metrics)]
    needed = sorted({m for mp in mappings for m in (mp.driver, mp.target)})
    wide = _unit_panel(upto(facts, q1), catalog, needed)
    periods = wide.index.get_level_values("period")
    last = np.asarray(periods > q1 - months // 2) & np.asarray(periods <= q1)
    prev = np.asarray(periods > q1 - months) & ~last & np.asarray(periods <= q1)
    window = last | prev
    quarterly = quarter_elasticities(facts, catalog, quarter)
    rows = []
    for mp in mappings:
        others = [c for c in mappings if c.target == mp.target and c.id != mp.id]
        y = wide[mp.target]
        specs = {"simple": _design(wide, mp, [])}
        if others:
            specs["partial"] = _design(wide, mp, others)
        fits = {
            name: _fit(y[window], X[window], min_obs, min_entities) for name, X in specs.items()
        }
        fits = {k: v for k, v in fits.items() if v is not None}
        nm = _names(catalog, mp, lang)
        row = dict(
            mapping_id=mp.id,
            mapping=f"{nm['driver']} → {nm['target']}",
            driver=mp.driver,
            target=mp.target,
            sign=mp.sign,
            lag=mp.lag,
            elasticity_quarter=quarterly.get(mp.id, np.nan),
        )
        if not fits:
            n = int((y[window].notna() & specs["simple"].iloc[:, 0][window].notna()).sum())
            rows.append(
                dict(
                    row,
                    n_obs=n,
                    strength="insufficient_data",
                    severity="info",
                    message=t(
                        "mapping.msg.driver_insufficient",
                        lang,
                        **_names(catalog, mp, lang),
                        n=n,
                        min_obs=min_obs,
                    ),
                )
            )
            continue

        confirmed = sorted(
            (f["p_value"], k)
            for k, f in fits.items()
            if np.sign(f["elasticity"]) == mp.sign and f["p_value"] < alpha
        )
        # A sign against the catalog's must hold with the target's other drivers held
        # fixed: without them a driver that barely moves (a yield rate) takes on whatever
        # the volume beside it did, and clean groups showed "wrong sign" where the model
        # with the volume had the catalog's sign. A mapping not confirmed is judged on that
        # fuller model.
        full = "partial" if "partial" in fits else next(iter(fits))
        wrong = np.sign(fits[full]["elasticity"]) == -mp.sign and fits[full]["p_value"] < alpha
        model = confirmed[0][1] if confirmed else full
        fit = fits[model]
        status = "confirmed" if confirmed else "wrong_sign" if wrong else "weak"
        # significant yet explaining almost none of the target's moves: a chance link (one
        # in twenty at 5%) or one too small to steer by
        slight = status == "confirmed" and fit["within_r2"] < min_r2
        reach = fit["ci_high"] if mp.sign > 0 else -fit["ci_low"]
        if status == "weak" and reach >= min_elasticity:
            status = "inconclusive"  # not significant, but the interval still allows an effect
        first = _fit(y[prev], specs[model][prev], min_obs // 2, min_entities)
        second = _fit(y[last], specs[model][last], min_obs // 2, min_entities)
        z = np.nan
        if first and second:
            z = (second["elasticity"] - first["elasticity"]) / np.hypot(first["se"], second["se"])
            b0, b1 = first["elasticity"], second["elasticity"]
            moved = np.sign(b0) != np.sign(b1) or not 0.5 <= b1 / b0 <= 2.0
            if status == "confirmed" and abs(z) > stability_z and moved:
                status = "unstable"
        if slight:
            status = "weak"
        severity = {
            "confirmed": "",
            "wrong_sign": "high",
            "weak": "medium",
            "inconclusive": "low",
            "unstable": "low",
        }[status]
        fmt = dict(
            **_names(catalog, mp, lang),
            e=f"{fit['elasticity']:+.2f}",
            lo=f"{fit['ci_low']:+.2f}",
            hi=f"{fit['ci_high']:+.2f}",
            p=p_text(fit["p_value"], lang),
            r2=f"{fit['within_r2']:.2f}",
            n=fit["n_obs"],
            g=fit["n_entities"],
            sign="+" if mp.sign > 0 else "−",
            me=f"{min_elasticity:g}",
            e0=fmt_num(first["elasticity"]) if first else "—",
            e1=fmt_num(second["elasticity"]) if second else "—",
            z=f"{z:.1f}" if np.isfinite(z) else "—",
            model=t(f"mapping.value.model.{model}", lang),
            min_r2=f"{min_r2:.0%}",
            share=f"{fit['within_r2']:.0%}",
        )
        rows.append(
            dict(
                row,
                model=model,
                transform=fit["transform"],
                elasticity=fit["elasticity"],
                ci_low=fit["ci_low"],
                ci_high=fit["ci_high"],
                p_value=fit["p_value"],
                within_r2=fit["within_r2"],
                n_obs=fit["n_obs"],
                n_entities=fit["n_entities"],
                elasticity_prev=first["elasticity"] if first else np.nan,
                elasticity_last=second["elasticity"] if second else np.nan,
                stability_z=z,
                strength=status,
                severity=severity,
                message=t(f"mapping.msg.driver_{'slight' if slight else status}", lang, **fmt),
            )
        )
    out = pd.DataFrame(rows).reindex(columns=COLUMNS)
    for col in ("n_obs", "n_entities", "sign", "lag"):
        out[col] = out[col].astype("Int64")
    return out


def _names(catalog: Catalog, mp: MetricMapping, lang: str) -> dict:
    return dict(
        mid=mp.id,
        driver=catalog.metrics[mp.driver].name(lang),
        target=catalog.metrics[mp.target].name(lang),
        lag=mp.lag,
        lag_text=lag_text(mp.lag, lang),
    )
