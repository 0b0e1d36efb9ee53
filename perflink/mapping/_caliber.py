"""Caliber (口径) consistency: systematic ratios and timing shifts between related metrics.

Not API: see :func:`perflink.mapping.check_calibers`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from perflink import formula as _formula
from perflink import panel
from perflink.catalog import Catalog, Rule
from perflink.labels import t
from perflink.mapping._common import (
    checked_metric,
    count_text,
    entity_names,
    formula_words,
    parents,
    quarter_months,
    upto,
)
from perflink.units import VAT_RATES, Unit, parse_unit, unit_label

#: Taxes a caliber or definition can name: code -> how it is written. A tax factor is a
#: known cause of a rule only when a metric of the rule names the tax (sample: 不含增值税).
_TAXES: dict[str, re.Pattern[str]] = {
    "vat": re.compile(r"增值税|含税|\bVAT\b|value[- ]added tax", re.I),
    "gst": re.compile(r"\bGST\b|goods and services tax|商品及服务税", re.I),
    "sales_tax": re.compile(r"sales tax|销售税", re.I),
}
_RATE = re.compile(r"(\d{1,2}(?:\.\d+)?)\s*%")
#: Powers of ten a unit slip multiplies a side by (元 for 万元 is ×10,000).
_SLIPS = (10.0, 100.0, 1000.0, 10000.0)


@dataclass(frozen=True)
class Factor:
    """A ratio between a rule's two sides with a known cause.

    ``code`` is kept in the ratios table (``vat13``, ``vat13_rhs``, ``scale10000``, ...);
    ``key`` and ``fmt`` give its sentence (``mapping.value.cause.*``) in either language.
    """

    code: str
    value: float
    key: str
    fmt: tuple[tuple[str, str], ...] = ()
    units: tuple[tuple[str, Unit], ...] = ()
    sides: tuple[str, str] = ("", "")  # the rule's two sides as formulas
    catalog: Catalog | None = None  # for the sides' metric names

    def text(self, lang: str) -> str:
        """The likely cause in ``lang`` (units in the registry's words of ``lang``; the side
        named by what it is, e.g. "the sum of X over 12 months", never "left side")."""
        fmt = {k: (t(v, lang) if k == "tax" else v) for k, v in self.fmt}
        fmt |= {k: unit_label(u, lang) for k, u in self.units}
        for key, side in zip(("lhs", "rhs"), self.sides, strict=True):
            words = formula_words(side, self.catalog, lang) if self.catalog and side else ""
            fmt[key] = words or t(f"mapping.value.side.{key}", lang)
        return t(self.key, lang, **fmt)


def _texts(catalog: Catalog, metric_ids: set[str]) -> list[str]:
    return [
        f"{m.caliber} {m.definition}" for mid, m in catalog.metrics.items() if mid in metric_ids
    ]


def tax_rates(catalog: Catalog, metric_ids: set[str]) -> dict[str, tuple[float, ...]]:
    """Tax code -> rates a systematic ratio of a rule over these metrics may come from.

    A tax counts only when the caliber or definition of one of the metrics names it; its
    rates are the percentages those texts state, else (VAT only) the standard rates of the
    catalog's currency (:data:`perflink.units.VAT_RATES`). A company whose metrics name no
    tax gets no tax cause.
    """
    texts = _texts(catalog, metric_ids)
    money = catalog.money_unit
    currency = parse_unit(money).currency if money else None
    out: dict[str, tuple[float, ...]] = {}
    for code, pattern in _TAXES.items():
        named = [x for x in texts if pattern.search(x)]
        if not named:
            continue
        stated = {float(r) / 100 for x in named for r in _RATE.findall(x) if 0 < float(r) <= 30}
        rates = tuple(sorted(stated, reverse=True)) or (
            VAT_RATES.get(currency or "", ()) if code == "vat" else ()
        )
        if rates:
            out[code] = rates
    return out


def _rule_unit(catalog: Catalog, names: list[str]) -> Unit | None:
    """The money unit both sides of an approx rule are stated in (its first money metric)."""
    for mid in names:
        m = catalog.metrics.get(mid)
        if m is not None and m.unit_info.is_money:
            return m.unit_info
    return None


def _named_scale(unit: Unit, scale: float) -> Unit | None:
    """The unit of ``unit``'s currency at ``scale`` when both languages have a word for it."""
    if scale < 1:
        return None
    other = Unit("", "money", unit.currency, scale)
    names = [unit_label(other, lang) for lang in ("zh", "en")]
    return None if any("×" in n for n in names) else other


def rule_factors(rule: Rule, catalog: Catalog, names: list[str]) -> dict[str, Factor]:
    """Known causes of a systematic ratio between the sides of ``rule``, by code.

    Taxes named by the rule's metrics (:func:`tax_rates`), either side including them; unit
    slips ×10 to ×10000 either way, worded with the rule's money unit where the slipped
    unit has a name (元 instead of 万元, USD instead of kUSD).
    """
    out: dict[str, Factor] = {}
    on = {"sides": (rule.lhs, rule.rhs), "catalog": catalog}
    for tax, rates in tax_rates(catalog, set(names)).items():
        for rate in rates:
            f = 1 + rate
            fmt = (
                ("tax", f"mapping.value.tax.{tax}"),
                ("rate", f"{rate * 100:g}%"),
                ("factor", f"{f:g}"),
            )
            code = f"{tax}{rate * 100:g}"
            out[code] = Factor(code, f, "mapping.value.cause.tax", fmt, **on)
            out[code + "_rhs"] = Factor(
                code + "_rhs", 1 / f, "mapping.value.cause.tax_rhs", fmt, **on
            )
    unit = _rule_unit(catalog, names)
    for f in _SLIPS:
        small = _named_scale(unit, unit.scale / f) if unit is not None else None
        code = f"scale{f:g}"
        for side, value in (("", f), ("_rhs", 1 / f)):
            fmt = (("factor", f"{f:g}"),)
            if small is not None:
                named = (("unit", unit), ("small", small))
                key = f"mapping.value.cause.slip{side}"
                out[code + side] = Factor(code + side, value, key, fmt, named, **on)
            else:
                key = f"mapping.value.cause.scale{side}"
                out[code + side] = Factor(code + side, value, key, fmt, **on)
    return out


def factors_text(catalog: Catalog, lang: str) -> str:
    """The known factors the caliber test compares with, for the page text (catalog-wide)."""
    taxes: dict[str, set[float]] = {}
    for rule in catalog.rules:
        if rule.check != "approx":
            continue
        names = sorted(_monthly(rule.lhs).names | _monthly(rule.rhs).names)
        for tax, rates in tax_rates(catalog, set(names)).items():
            taxes.setdefault(tax, set()).update(rates)
    parts = [
        t(
            "mapping.text.factor_tax", lang,
            tax=t(f"mapping.value.tax.{tax}", lang),
            rates="/".join(f"{1 + r:g}" for r in sorted(rates, reverse=True)),
        )
        for tax, rates in taxes.items()
    ]  # fmt: skip
    money = parse_unit(catalog.money_unit) if catalog.money_unit else None
    example = next(
        (s for f in sorted(_SLIPS, reverse=True)
         if money is not None and (s := _named_scale(money, money.scale / f)) is not None),
        None,
    )  # fmt: skip
    if example is not None:
        parts.append(
            t(
                "mapping.text.factor_slip_example", lang,
                small=unit_label(example, lang), unit=unit_label(money, lang),
            )
        )  # fmt: skip
    else:
        parts.append(t("mapping.text.factor_slip", lang))
    return ("；" if lang == "zh" else "; ").join(parts)


_SUM = re.compile(r"\bsum\(\s*([a-z_][a-z0-9_]*)\s*,\s*\d+\s*\)")
_MIN_MONTHS = 6
_LAGS = (-2, -1, 0, 1, 2)


def _monthly(text: str) -> _formula.Formula:
    """The rule side as a monthly flow: ``sum(x, 12)`` read as ``x``."""
    return _formula.parse(_SUM.sub(r"\1", text))


def _jackknife(L: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, ...]:
    """Ratio of sums per row with a jackknife (over columns) 95% interval.

    Rows are entities, columns months; NaN marks months to leave out.
    """
    from scipy import stats  # here: importing scipy.stats costs every kernel that reads
    # perflink.mapping (the summary's rule units) most of a second

    ok = np.isfinite(L) & np.isfinite(R) & (L > 0) & (R > 0)
    n = ok.sum(axis=1)
    Lz, Rz = np.where(ok, L, 0.0), np.where(ok, R, 0.0)
    SL, SR = Lz.sum(axis=1), Rz.sum(axis=1)
    with np.errstate(all="ignore"):
        ratio = SL / SR
        loo = np.log((SL[:, None] - Lz) / (SR[:, None] - Rz))
        loo = np.where(ok, loo, np.nan)
        mean = np.nanmean(loo, axis=1, keepdims=True)
        se = np.sqrt((n - 1) / n * np.nansum((loo - mean) ** 2, axis=1))
        tq = stats.t.ppf(0.975, np.maximum(n - 1, 1))
        lo, hi = ratio * np.exp(-tq * se), ratio * np.exp(tq * se)
    bad = n < _MIN_MONTHS
    return (
        np.where(bad, np.nan, ratio),
        np.where(bad, np.nan, lo),
        np.where(bad, np.nan, hi),
        n,
    )


def _cause(ratio: float, lo: float, hi: float, tol: float, factors: dict[str, Factor]) -> str:
    best, dist = "", np.inf
    for code, factor in factors.items():
        f = factor.value
        d = abs(np.log(ratio / f))
        # the interval may name a factor only when it is narrow enough to tell them apart
        if (d <= np.log1p(tol) or (lo <= f <= hi and hi / lo <= 1.1)) and d < dist:
            best, dist = code, d
    return best


def _shared_practice(
    rows, ratio_rows, rule, par, flagged, factors, names, catalog, *, months, period, lang
) -> None:
    """One finding for a parent most of whose units show the same known cause of ``rule``
    (at least two, more than half of its units checked) where its pooled ratio did not: the
    pooled sums weigh units by size, so a large unit's noisy year hides a reporting
    practice at the others (a subsidiary whose three units all reported contracts with VAT
    pooled to 1.126, 95% interval 0.996-1.273). The units' own caliber findings give way to
    it, as they do to a parent flagged on its pooled figures. Changes ``rows`` in place."""
    units = [r for r in ratio_rows if r["rule_id"] == rule.id and r["level"] == "entity"]
    parents = sorted({par.get(r["entity_id"], "") for r in units} - {""} - flagged)
    for pid in parents:
        members = [r for r in units if par.get(r["entity_id"], "") == pid]
        hits: dict[str, list[dict]] = {}
        for r in members:
            if r["systematic"] and r["cause"]:
                hits.setdefault(r["cause"], []).append(r)
        if not hits:
            continue
        cause, shared = max(hits.items(), key=lambda kv: len(kv[1]))
        if len(shared) < 2 or 2 * len(shared) <= len(members):
            continue
        ids = {r["entity_id"] for r in shared}
        rows[:] = [
            r
            for r in rows
            if not (r["rule_id"] == rule.id and r["check"] == "caliber" and r["entity_id"] in ids)
        ]
        ratios = np.array([r["ratio"] for r in shared])
        sep = t("workbook.value.list_sep", lang)
        rows.append(
            dict(
                entity_id=pid,
                period=period,
                metric_id=shared[0]["metric_id"],
                rule_id=rule.id,
                check="caliber",
                severity="high",
                value=float(np.median(ratios)),
                expected=1.0,
                deviation=float(np.median(ratios)) - 1.0,
                message=t(
                    "mapping.msg.caliber_units",
                    lang,
                    entity=names.get(pid, pid),
                    rule=rule.name(lang),
                    k=len(shared),
                    n=len(members),
                    units=sep.join(names.get(e, e) for e in sorted(ids)),
                    lhs=formula_words(rule.lhs, catalog, lang),
                    rhs=formula_words(rule.rhs, catalog, lang),
                    lo=f"{ratios.min():.3f}",
                    hi=f"{ratios.max():.3f}",
                    months=months,
                    cause=factors[cause].text(lang),
                ),
            )
        )


def _corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ok = np.isfinite(a) & np.isfinite(b)
    n = ok.sum(axis=1)
    a, b = np.where(ok, a, np.nan), np.where(ok, b, np.nan)
    with np.errstate(all="ignore"):
        a = a - np.nanmean(a, axis=1, keepdims=True)
        b = b - np.nanmean(b, axis=1, keepdims=True)
        r = np.nansum(a * b, axis=1) / np.sqrt(np.nansum(a * a, axis=1) * np.nansum(b * b, axis=1))
    return np.where(n >= 5, r, np.nan)


def _best_lag(dL: np.ndarray, dR: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: lag k maximising corr(dR_t, dL_{t+k}), that correlation, and corr at k=0."""
    T = dL.shape[1]
    cors = []
    for k in _LAGS:
        a = np.full_like(dR, np.nan)
        if k >= 0:
            a[:, : T - k] = dL[:, k:]
        else:
            a[:, -k:] = dL[:, : T + k]
        cors.append(_corr(dR, a))
    c = np.stack(cors, axis=1)
    filled = np.where(np.isnan(c), -np.inf, c)
    idx = filled.argmax(axis=1)
    best = np.array(_LAGS)[idx]
    return best, c[np.arange(len(c)), idx], c[:, _LAGS.index(0)]


def run(
    facts: pd.DataFrame,
    entities: pd.DataFrame | None,
    catalog: Catalog,
    quarter: pd.Period,
    expected: pd.DataFrame,
    *,
    months: int,
    timing_months: int,
    min_shift: float,
    factor_tolerance: float,
    timing_min_gain: float,
    lang: str,
) -> tuple[list[dict], pd.DataFrame, pd.DataFrame]:
    q1 = quarter_months(quarter)[-1]
    approx = [r for r in catalog.rules if r.check == "approx"]
    if not approx:
        return [], pd.DataFrame(), pd.DataFrame()
    sides = {r.id: (_monthly(r.lhs), _monthly(r.rhs)) for r in approx}
    needed = sorted({n for lf, rf in sides.values() for n in lf.names | rf.names})
    span = max(months, timing_months)
    wide = panel.to_wide(upto(facts, q1), metrics=needed)
    all_periods = wide.index.get_level_values("period").unique().sort_values()
    keep = all_periods[all_periods > q1 - span - 3]
    ents = wide.index.get_level_values("entity_id").unique()
    exp_pairs = set(zip(expected["entity_id"], expected["metric_id"], strict=True))
    par = parents(entities)
    names = entity_names(entities, lang)
    ratio_rows, timing_rows, rows = [], [], []
    qlabel = str(quarter)

    for rule in approx:
        lf, rf = sides[rule.id]
        used = sorted(lf.names | rf.names)
        L = lf.evaluate_frame(wide).unstack("period").reindex(columns=keep)
        R = rf.evaluate_frame(wide).unstack("period").reindex(columns=keep)
        ok_ent = [e for e in ents if all((e, m) in exp_pairs for m in used)]
        L, R = L.loc[ok_ent], R.loc[ok_ent]
        if L.empty:
            continue
        metric = checked_metric(rule, catalog)
        factors = rule_factors(rule, catalog, [metric, *used])
        last = L.columns > q1 - months
        Lm, Rm = L.loc[:, last].to_numpy(), R.loc[:, last].to_numpy()
        # unit level, then each parent pooled over its units (months where both sides exist)
        levels = [("entity", np.array(ok_ent, dtype=object), Lm, Rm)]
        groups = pd.Series([par.get(e, "") for e in ok_ent])
        both = np.isfinite(Lm) & np.isfinite(Rm) & (Lm > 0) & (Rm > 0)
        if (groups != "").any():
            gL = pd.DataFrame(np.where(both, Lm, 0.0)).groupby(groups.to_numpy()).sum()
            gR = pd.DataFrame(np.where(both, Rm, 0.0)).groupby(groups.to_numpy()).sum()
            gL, gR = gL.drop(index="", errors="ignore"), gR.drop(index="", errors="ignore")
            levels.insert(
                0, ("parent", gL.index.to_numpy(dtype=object), gL.to_numpy(), gR.to_numpy())
            )
        flagged: dict[str, str] = {}
        for level, ids, A, B in levels:
            ratio, lo, hi, n = _jackknife(A, B)
            for i, eid in enumerate(ids):
                if not np.isfinite(ratio[i]):
                    continue
                shifted = abs(np.log(ratio[i])) > np.log1p(max(min_shift, rule.tolerance)) and not (
                    lo[i] <= 1 <= hi[i]
                )
                cause = _cause(ratio[i], lo[i], hi[i], factor_tolerance, factors) if shifted else ""
                inherited = flagged.get(par.get(eid, ""), "") if level == "entity" else ""
                known = factors[inherited].value if inherited in factors else np.nan
                if shifted and inherited and lo[i] <= known <= hi[i]:
                    cause = inherited  # consistent with its parent's known cause
                covered = bool(inherited) and inherited == (cause or "?")
                ratio_rows.append(
                    dict(
                        level=level,
                        entity_id=eid,
                        entity=names.get(eid, eid),
                        rule_id=rule.id,
                        rule=rule.name(lang),
                        metric_id=metric,
                        ratio=ratio[i],
                        ci_low=lo[i],
                        ci_high=hi[i],
                        n_months=int(n[i]),
                        systematic=bool(shifted),
                        cause=cause,
                        cause_text=factors[cause].text(lang) if cause else "",
                    )
                )
                if not shifted or covered:
                    continue
                if level == "parent":
                    flagged[eid] = cause or "?"
                n_units = int((groups == eid).sum()) if level == "parent" else 1
                key = "mapping.msg.caliber_known" if cause else "mapping.msg.caliber_unknown"
                rows.append(
                    dict(
                        entity_id=eid,
                        period=qlabel,
                        metric_id=metric,
                        rule_id=rule.id,
                        check="caliber",
                        severity="high" if cause else "medium",
                        value=ratio[i],
                        expected=1.0,
                        deviation=ratio[i] - 1.0,
                        message=t(
                            key,
                            lang,
                            entity=names.get(eid, eid),
                            eid=eid,
                            rule=rule.name(lang),
                            rid=rule.id,
                            lhs=formula_words(rule.lhs, catalog, lang),
                            rhs=formula_words(rule.rhs, catalog, lang),
                            ratio=f"{ratio[i]:.3f}",
                            lo=f"{lo[i]:.3f}",
                            hi=f"{hi[i]:.3f}",
                            months=int(n[i]),
                            units=count_text(n_units, "units", lang),
                            cause=factors[cause].text(lang) if cause else "",
                        ),
                    )
                )
        _shared_practice(
            rows, ratio_rows, rule, par, set(flagged), factors, names, catalog,
            months=months, period=qlabel, lang=lang,
        )  # fmt: skip
        if rule.scope != "month":
            continue
        # timing: does the finance side line up with the business side k months later?
        tw = L.columns > q1 - timing_months
        with np.errstate(all="ignore"):
            dL = np.diff(np.log(L.loc[:, tw].to_numpy()), axis=1)
            dR = np.diff(np.log(R.loc[:, tw].to_numpy()), axis=1)
        half = dL.shape[1] // 2
        res = [_best_lag(dL[:, s], dR[:, s]) for s in (slice(0, half), slice(half, None))]
        (k1, c1, z1), (k2, c2, z2) = res
        for i, eid in enumerate(L.index):
            consistent = (
                k1[i] == k2[i]
                and k1[i] != 0
                and min(c1[i], c2[i]) >= 0.6
                and min(c1[i] - z1[i], c2[i] - z2[i]) >= timing_min_gain
            )
            timing_rows.append(
                dict(
                    entity_id=eid,
                    rule_id=rule.id,
                    metric_id=metric,
                    best_lag_first=int(k1[i]),
                    best_lag_second=int(k2[i]),
                    corr_best=float(np.nanmin([c1[i], c2[i]])),
                    corr_same_month=float(np.nanmax([z1[i], z2[i]])),
                    timing_shift=bool(consistent),
                )
            )
            if not consistent:
                continue
            on_lhs = metric in lf.names
            k = -int(k1[i]) if on_lhs else int(k1[i])  # > 0: the checked metric runs early
            rows.append(
                dict(
                    entity_id=eid,
                    period=qlabel,
                    metric_id=metric,
                    rule_id=rule.id,
                    check="timing",
                    severity="high",
                    value=float(k),
                    expected=0.0,
                    deviation=np.nan,
                    message=t(
                        "mapping.msg.timing_lead" if k > 0 else "mapping.msg.timing_lag",
                        lang,
                        entity=names.get(eid, eid),
                        eid=eid,
                        metric=catalog.metrics[metric].name(lang)
                        if metric in catalog.metrics
                        else metric,
                        other=formula_words(rule.rhs if on_lhs else rule.lhs, catalog, lang),
                        rid=rule.id,
                        rule=rule.name(lang),
                        k=abs(k),
                        k_months=count_text(abs(k), "months", lang),
                        cb=f"{min(c1[i], c2[i]):.2f}",
                        c0=f"{max(z1[i], z2[i]):.2f}",
                        months=timing_months,
                    ),
                )
            )
    return rows, pd.DataFrame(ratio_rows), pd.DataFrame(timing_rows)
