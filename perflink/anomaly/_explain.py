"""Severity, explanations, known events and source references (not API)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from perflink._report_format import fmt_number, fmt_period
from perflink.anomaly._cube import Cube, Scored
from perflink.anomaly._features import Feature
from perflink.anomaly._rates import tail_rate
from perflink.catalog import Catalog
from perflink.common import SEVERITY_RANK as SEVERITY_ORDER
from perflink.formula import in_words
from perflink.labels import t
from perflink.options import AnomalyOptions
from perflink.units import parse_unit

_SPIKE_Z = 3.2  # a driver more than this many noise sd off its expected value is "unusual"


def unit_of(catalog: Catalog, metric: str) -> str | None:
    """The catalog unit of ``metric`` (for :func:`perflink._report_format.fmt_number`), or
    None for a metric the catalog does not know."""
    return catalog.metrics[metric].unit if metric in catalog.metrics else None


def _rate(unit: str | None) -> bool:
    return unit is not None and parse_unit(unit).is_rate


def severity(score: np.ndarray, stake: np.ndarray, opts: AnomalyOptions) -> np.ndarray:
    """Severity from |score| bands, raised by large and capped by tiny money at stake.

    Large money at stake (``money_high``) raises a finding one band, to ``high`` at most: it
    makes a clear anomaly (``medium`` on its score) high, not a borderline one. On groups
    with no problem at all the flags below ``z_medium`` are the detector's chance findings
    (about one per 100 points), and a large unit's ordinary wobble is a large amount.
    """
    z = np.abs(np.nan_to_num(score))
    level = np.select([z >= opts.z_critical, z >= opts.z_high, z >= opts.z_medium], [0, 1, 2], 3)
    big = np.nan_to_num(stake, nan=-1.0) >= opts.money_high
    small = np.nan_to_num(stake, nan=np.inf) < opts.money_low
    level = np.where(big & (level >= 2), level - 1, level)
    level = np.where(small, 3, level)
    return np.array(list(SEVERITY_ORDER))[level]


_SERIES_KINDS = ("spike", "level_shift", "trend_break")


def check_of(kind: str) -> str:
    """The check a finding's ``kind`` comes from: the unit's own history (``series``: its
    spike, level-shift and trend-break tests are one look at one history), the drivers'
    ``linkage``, the ``peer`` comparison or the ``multivariate`` mix of ratios."""
    return "series" if kind in _SERIES_KINDS else kind


def counted(rows: pd.DataFrame) -> pd.Series:
    """Rows whose flag counts toward :func:`corroborated`: ``medium`` or above."""
    return rows["severity"].map(SEVERITY_ORDER) <= SEVERITY_ORDER["medium"]


def corroborated(rows: pd.DataFrame) -> np.ndarray:
    """Severity raised from ``medium`` to ``high`` where two or more checks flag the same
    entity, metric and month at ``medium`` or above.

    Each check alone flags about one point in 100 of an ordinary series, and the chance
    findings of two checks that look differently at a value (its unit's history, its
    drivers, its peers, its mix of ratios) rarely fall on one point: on 18 groups generated
    with no problem (seeds 11-16 at 42, 120 and 400 units) it raised no finding, while it
    lifts a planted +80% expense spike that three checks saw at medium (seeds 21, 29). A
    move that the multivariate check alone calls very unusual stays medium.
    """
    sev = rows["severity"].to_numpy(dtype=object)
    if rows.empty:
        return sev
    check = rows["kind"].astype(str).map(check_of)
    key = [rows[c].astype(str) for c in ("entity_id", "period", "metric_id")]
    n = check.where(counted(rows)).groupby(key).transform("nunique").to_numpy()
    return np.where((n >= 2) & (sev == "medium"), "high", sev)


_MAX_YEARS = 1000  # beyond this the tables say nothing useful: "less than once in 1,000 years"


def rarity_years(rows: pd.DataFrame, sc: Scored) -> np.ndarray:
    """About how many years pass between moves this large at the row's unit.

    The score is read against the calibrated tails of the series detector
    (:func:`perflink.anomaly._rates.tail_rate`, real business series): level shifts and
    trend breaks against the shift test's, everything else (spikes and the robust z of
    the linkage, peer and multivariate detectors) against the spike test's.  Series
    reported once a quarter count four points a year and use the quarterly tables,
    the others twelve and the monthly ones.
    """
    if rows.empty:
        return np.zeros(0)
    kind = rows["kind"].to_numpy(dtype=object)
    method = np.array(
        [
            sc.method[int(e), m] if m is not None else ""
            for e, m in zip(
                rows["e"], rows["m"] if "m" in rows else [None] * len(rows), strict=True
            )
        ],
        dtype=object,
    )
    quarterly = np.isin(kind, _SERIES_KINDS) & (method == "quarterly_steps")
    per_100 = tail_rate(rows["score"].to_numpy(dtype=float), kind, np.where(quarterly, 4, 12))
    per_year = np.where(quarterly, 4.0, 12.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        years = 100.0 / (per_100 * per_year)
    return np.minimum(np.nan_to_num(years, nan=np.inf), _MAX_YEARS)


def rarity_text(years: float, flag_rate: float, lang: str) -> str:
    """ "Seen about once in N years at this unit", in ``lang``, with the flag rate used."""
    if years >= _MAX_YEARS:
        text = t("anomaly.msg.rarity_max", lang, years=f"{_MAX_YEARS:,}")
    elif years >= 1.5:
        n = f"{years:,.0f}" if years >= 10 else f"{years:.1f}".rstrip("0").rstrip(".")
        text = t("anomaly.msg.rarity", lang, years=n)
    else:
        text = t("anomaly.msg.rarity_often", lang, times=f"{max(1, round(1 / years))}")
    sep = "" if lang == "zh" else " "
    return f"{text}{sep}{t('anomaly.msg.flag_rate', lang, rate=f'{flag_rate:g}')}"


def _spaced(name: str, lang: str) -> str:
    """``name`` with a space on each side that touches Latin text, on zh pages: the zh
    templates glue names to Chinese text (华东工厂2026年8月), which runs English names of a
    company into it (Central Apparel2026年8月Returns为); :func:`message` collapses doubles."""
    if lang != "zh" or not name:
        return name
    left = " " if name[0].isascii() and name[0].isalnum() else ""
    right = " " if name[-1].isascii() and name[-1].isalnum() else ""
    return f"{left}{name}{right}"


def _fmt(x: float, unit: str | None, lang: str) -> str:
    return fmt_number(float(x), unit, lang)


def _change(value: float, expected: float, unit: str | None, lang: str) -> str:
    if _rate(unit):
        return t("anomaly.msg.points", lang, x=f"{(value - expected) * 100:+.1f}")
    if not expected:
        return "—"
    return f"{value / expected - 1:+.1%}"


def _lag_text(lag: int, lang: str) -> str:
    """ "same month", "lag 1 month", "lag 2 months" (one label each: English plurals)."""
    if lag == 0:
        return t("anomaly.msg.lag_same", lang)
    return t("anomaly.msg.lag_one" if lag == 1 else "anomaly.msg.lag_many", lang, lag=lag)


def drivers_text(
    row: pd.Series, cube: Cube, catalog: Catalog, sc: Scored, names: dict, lang: str
) -> str:
    """What the mapped business drivers of the row's metric did in that month."""
    parts = []
    for mp in catalog.mappings_to(row["metric_id"]):
        m = cube.m(mp.driver)
        td = int(row["t"]) - mp.lag
        if m is None or td < 0:
            continue
        v, ex = cube.values[int(row["e"]), m, td], sc.expected[int(row["e"]), m, td]
        if not np.isfinite(v) or not np.isfinite(ex):
            continue
        z = sc.score[int(row["e"]), m, td]
        unusual = bool(sc.flag[int(row["e"]), m, td]) or abs(np.nan_to_num(z)) >= _SPIKE_Z
        unit = unit_of(catalog, mp.driver)
        parts.append(
            t(
                "anomaly.msg.driver",
                lang,
                driver=_spaced(names.get(mp.driver, mp.driver), lang),
                value=_fmt(v, unit, lang),
                change=_change(v, ex, unit, lang),
                lag=_lag_text(mp.lag, lang),
                status=t("anomaly.msg.unusual" if unusual else "anomaly.msg.normal", lang),
            )
        )
    sep = "；" if lang == "zh" else "; "
    return t("anomaly.msg.drivers", lang, drivers=sep.join(parts)) if parts else ""


def message(row: pd.Series, cube: Cube, catalog: Catalog, sc: Scored, ctx: dict, lang: str) -> str:
    """The explanation of one candidate row in ``lang``, with its numbers and how rare it is.

    ``ctx`` holds the names (``entities``, ``metrics``, ``groups``), ``flag_rate`` and the
    ``features`` (name -> :class:`~perflink.anomaly._features.Feature`).
    """
    metric, kind = row["metric_id"], row["kind"]
    feat = row.get("feature")
    feat = feat if isinstance(feat, str) else None
    unit = unit_of(catalog, metric)
    fmt = dict(
        entity=_spaced(ctx["entities"].get(row["entity_id"], row["entity_id"]), lang),
        metric=_spaced(ctx["metrics"].get(metric, metric), lang),
        period=fmt_period(row["period"], lang),
        value=_fmt(row["value"], unit, lang),
        expected=_fmt(row["expected"], unit, lang),
        lower=_fmt(row["lower"], unit, lang),
        upper=_fmt(row["upper"], unit, lang),
        change=_change(row["value"], row["expected"], unit, lang),
        z=f"{row['score']:+.1f}",
        kind=t(f"report.value.kind.{kind}", lang),
    )
    if kind == "multivariate":
        spec = ctx["features"][feat]
        funit = spec.unit
        fmt.update(
            feature=_spaced(spec.label(catalog, lang), lang),
            fvalue=_fmt(row["feature_value"], funit, lang),
            fusual=_fmt(row["feature_usual"], funit, lang),
            fz=f"{row['feature_z']:+.1f}",
            n=int(row["n_features"]),
            d=f"{row['distance']:.1f}",
        )
    elif kind == "peer":
        fmt.update(
            growth=_change(row["value"], row["value"] / (1 + row["change"]), unit, lang)
            if not _rate(unit)
            else t("anomaly.msg.points", lang, x=f"{row['change'] * 100:+.1f}"),
            peer=(
                f"{row['peer_median']:+.1%}"
                if not _rate(unit)
                else t("anomaly.msg.points", lang, x=f"{row['peer_median'] * 100:+.1f}")
            ),
            n=int(row["peer_n"]),
            gap=t("anomaly.msg.points", lang, x=f"{row['peer_gap'] * 100:+.1f}"),
            group=ctx["groups"].get(int(row["group"]), ""),
        )
    elif kind == "linkage":
        fmt.update(
            implied=_fmt(row["implied"], row["implied_unit"], lang),
            formula=in_words(row["drivers"], ctx["metrics"], lang=lang),
            ratio=f"{row['ratio']:.3f}",
            usual=f"{row['ratio_usual']:.3f}",
        )
    text = t(f"anomaly.msg.{kind}", lang, **fmt)
    rare = rarity_text(float(row["rarity_years"]), ctx["flag_rate"], lang)
    drivers = drivers_text(row, cube, catalog, sc, ctx["metrics"], lang)
    return _sentences((text, rare, drivers), lang)


def _sentences(parts, lang: str) -> str:
    """The non-empty ``parts`` as one text: spaced in English; run on in Chinese, with the
    spaces :func:`_spaced` put around Latin names one at most and none at full-width
    punctuation."""
    parts = [p for p in parts if p]
    if lang != "zh":
        return " ".join(parts)
    out = re.sub(r" {2,}", " ", "".join(parts))
    return re.sub(r" ?([，。；：、（）“”]) ?", r"\1", out).strip()


def explained_by(
    rows: pd.DataFrame, adjustments: pd.DataFrame | None, catalog: Catalog, lang: str
) -> pd.Series:
    """Approved adjustment (known event) recorded for the row's entity and month, as text."""
    out = pd.Series([""] * len(rows), index=rows.index, dtype=object)
    if adjustments is None or len(adjustments) == 0 or rows.empty:
        return out
    adj = adjustments.assign(_p=adjustments["period"].astype(str))
    by_key = {k: g for k, g in adj.groupby(["entity_id", "_p"], sort=False)}
    for i, (eid, per) in enumerate(zip(rows["entity_id"], rows["period"].astype(str), strict=True)):
        g = by_key.get((eid, per))
        if g is None:
            continue
        texts = []
        for a in g.itertuples(index=False):
            unit = unit_of(catalog, a.metric_id)
            texts.append(
                t(
                    "anomaly.msg.adjustment",
                    lang,
                    reason=a.reason,
                    metric=catalog.metric(a.metric_id).name(lang)
                    if a.metric_id in catalog.metrics
                    else a.metric_id,
                    amount=fmt_number(float(a.amount), unit, lang),
                    approved_by=a.approved_by if isinstance(a.approved_by, str) else "—",
                )
            )
        out.iloc[i] = "; ".join(texts)
    return out


def adjustment_message(
    row: pd.Series, cube: Cube, catalog: Catalog, sc: Scored, names: dict, lang: str
) -> str:
    """The explanation of an ``adjustment`` row (:func:`perflink.anomaly._panel._with_adjustments`):
    the month's value against the series check's expected value and normal range, that no
    check flagged it, and what its mapped drivers did; or that its history is too short."""
    metric = row["metric_id"]
    unit = unit_of(catalog, metric)
    fmt = dict(
        entity=_spaced(names["entities"].get(row["entity_id"], row["entity_id"]), lang),
        metric=_spaced(names["metrics"].get(metric, metric), lang),
        period=fmt_period(row["period"], lang),
    )
    checked = all(np.isfinite(float(row[c])) for c in ("value", "expected", "lower", "upper"))
    if not checked:
        return _sentences((t("anomaly.msg.adjustment_unchecked", lang, **fmt),), lang)
    fmt.update(
        value=_fmt(row["value"], unit, lang),
        expected=_fmt(row["expected"], unit, lang),
        lower=_fmt(row["lower"], unit, lang),
        upper=_fmt(row["upper"], unit, lang),
        change=_change(row["value"], row["expected"], unit, lang),
    )
    text = t("anomaly.msg.adjustment_check", lang, **fmt)
    drivers = drivers_text(row, cube, catalog, sc, names["metrics"], lang)
    return _sentences((text, drivers), lang)


def source_refs(
    rows: pd.DataFrame, facts: pd.DataFrame, linkage_inputs: dict, features: dict[str, Feature]
) -> pd.Series:
    """``source_ref`` of the facts behind each row, joined with ``;``: the row's metric, the
    drivers of a linkage finding, the reported inputs of a multivariate finding's feature."""
    if rows.empty or "source_ref" not in facts.columns:
        return pd.Series([""] * len(rows), index=rows.index, dtype=object)
    need = []
    for metric, kind, feat in zip(rows["metric_id"], rows["kind"], rows["feature"], strict=True):
        ms = [metric]
        if kind == "linkage":
            ms += list(linkage_inputs.get(metric, ()))
        if isinstance(feat, str) and feat in features:
            ms += [m for m in features[feat].inputs if m not in ms]
        need.append(ms)
    keys = set(zip(rows["entity_id"], rows["period"], strict=True))
    f = facts[pd.MultiIndex.from_frame(facts[["entity_id", "period"]]).isin(keys)]
    ref = {
        (e, p, m): r
        for e, p, m, r in zip(
            f["entity_id"], f["period"], f["metric_id"], f["source_ref"], strict=True
        )
        if isinstance(r, str) and r
    }
    vals = [
        ";".join(ref[(e, p, m)] for m in ms if (e, p, m) in ref)
        for e, p, ms in zip(rows["entity_id"], rows["period"], need, strict=True)
    ]
    return pd.Series(vals, index=rows.index, dtype=object)
