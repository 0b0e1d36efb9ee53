"""Panel anomaly detection over the facts table: :func:`detect_anomalies` (re-exported by
:mod:`perflink.anomaly`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from perflink import labels
from perflink._report_format import fmt_number
from perflink.anomaly._cube import build_cube
from perflink.anomaly._detect import (
    linkage_flags,
    linkage_models,
    multivariate_flags,
    peer_flags,
    series_flags,
)
from perflink.anomaly._explain import (
    _SERIES_KINDS,
    SEVERITY_ORDER,
    adjustment_message,
    check_of,
    corroborated,
    counted,
    explained_by,
    message,
    rarity_years,
    severity,
    source_refs,
)
from perflink.anomaly._features import Feature, features_of
from perflink.anomaly._results import (
    TABLE_COLUMNS,
    AnomalyCounts,
    AnomalyResult,
    PeerComparison,
    counts_table,
)
from perflink.anomaly._stake import (
    at_stake,
    elasticities,
    elasticity_table,
    favourable,
    money_effect,
    stake_note,
    stake_text,
)
from perflink.anomaly._views import (
    features_note,
    formatted,
    linkage_note,
    peer_data,
    peer_note,
    timelines,
    top_series,
)
from perflink.catalog import Catalog
from perflink.common import (
    Lineage,
    facts_with_refs,
    parse_quarter,
    require_columns,
    severities_from,
)
from perflink.errors import ParamsError
from perflink.execution import Executor, get_executor
from perflink.options import AnomalyOptions, ExecutorOptions

__all__ = ["DETECTORS", "detect_anomalies"]

#: Detector names accepted in ``AnomalyOptions.detectors``.
DETECTORS = ("series", "multivariate", "peer", "linkage")


def detect_anomalies(
    facts: pd.DataFrame,
    entities: pd.DataFrame,
    catalog: Catalog,
    *,
    quarter: pd.Period | str,
    adjustments: pd.DataFrame | None = None,
    options: AnomalyOptions | None = None,
    language: str | None = None,
    executor: Executor | ExecutorOptions | int | None = None,
    lineage: Lineage | None = None,
) -> AnomalyResult:
    """Find the numbers of the review quarter that deserve a look, and say why.

    Four detectors run on the units' monthly facts (entity x metric x month):

    - ``series``: spikes, level shifts and trend breaks of each series
      (:func:`perflink.anomaly.detect_frame`, seasonal, robust);
    - ``linkage``: a finance metric off the value its mapped business drivers imply
      (its catalog ``decomposition``, such as quantity x price / scale, or the mapped driver
      times the usual ratio), scored on the log ratio's own history;
    - ``multivariate``: an entity-month whose mix of features is unusual for the entity, by
      robust Mahalanobis distance, filed under the top feature's input that moved most; the
      features come from the catalog (:func:`perflink.anomaly.features_of`: its ratio
      metrics, per-head ratios of money flows, its reported rates, prices and scores);
    - ``peer``: a year-on-year change unlike the units of the same centre type and
      business line in that month, beyond the unit's usual gap to them.

    Flags that move a value by less than ``options.min_change`` are dropped. One row is kept
    per entity, metric and month (the most severe; the others are listed in ``also``).
    Rows of an entity-month with an approved adjustment are kept and marked in
    ``explained_by``.

    Parameters
    ----------
    facts : pandas.DataFrame
        The facts table (reads ``entity_id, period`` (Period[M]), ``metric_id, value``,
        ``source_ref`` unless ``lineage`` is given); units' monthly values in each metric's
        unit.
    entities : pandas.DataFrame
        The entities table (reads ``entity_id, name_zh, name_en, parent_id, center_type,
        business_line``).
    catalog : perflink.catalog.Catalog
        Metric units and names, formulas (ratio features), roles (sales, headcount), mappings
        (drivers) and decompositions.
    quarter : pandas.Period or str
        Review quarter (``"2026Q3"``); only its months are flagged, earlier months are history.
    adjustments : pandas.DataFrame, optional
        Approved adjustments (reads ``entity_id, period, metric_id, amount, reason,
        approved_by``): known events that explain an anomaly.
    options : AnomalyOptions, optional
        Thresholds and features (default: ``AnomalyOptions()``: every feature the catalog
        gives; money thresholds in the catalog's money unit).
    language : {"zh", "en"}, optional
        Language of messages and charts (default: the current report language).
    executor : Executor, ExecutorOptions or int, optional
        Where the per-series scoring runs on big panels: ``review.executor`` (the params'
        ``executor:`` block), an int = local worker processes; default: local processes
        (cores, at most 8).
        The findings do not depend on it (see :mod:`perflink.execution`).
    lineage : callable, optional
        The facts of some entity ids with their ``source_ref``
        (:meth:`perflink.review.Review.fact_lineage`), for facts read without it; default:
        ``facts``' own.

    Returns
    -------
    AnomalyResult
        Ranked findings of the quarter (severity, then money at stake in the catalog's money
        unit, then |score|), timelines of the top series, peer comparisons and counts; its
        ``notes`` say what the multivariate detector compared, ``peers.note`` why some or
        all top series have no peer comparison.

    Raises
    ------
    InputError
        Facts or entities lack columns, have the wrong dtypes, or miss the quarter.
    ParamsError
        Bad ``quarter``, ``language`` or an unknown detector / feature name in ``options``
        (the message lists the catalog's features); a bad executor (unreachable Dask
        scheduler).
    RunError
        The Dask cluster has no workers, lacks perflink, or lost a worker.
    """
    opts = _check_options(options).for_catalog(catalog)
    features = _chosen_features(catalog, opts)
    lang = labels._check_lang(language)
    q = parse_quarter(quarter)
    ents = _check_entities(entities)
    cube = build_cube(facts, q, exclude=opts.exclude_metrics)
    info = ents.set_index("entity_id").reindex(cube.entities)
    groups, group_names = _peer_groups(info, lang)

    series, sc = series_flags(cube, catalog, opts, get_executor(executor))
    parts = [series] if "series" in opts.detectors else []
    bands: dict = {}
    if "linkage" in opts.detectors:
        link, bands = linkage_flags(cube, catalog, opts)
        parts.append(link)
    used, n_units = None, 0
    if "multivariate" in opts.detectors:
        multi, used, n_units = multivariate_flags(cube, catalog, sc, opts, features)
        parts.append(multi)
    changes = None
    if "peer" in opts.detectors:
        peer, changes = peer_flags(cube, catalog, groups, opts)
        parts.append(peer)
    cand = (
        pd.concat([p for p in parts if len(p)], ignore_index=True) if any(map(len, parts)) else None
    )

    metric_names = {m: catalog.metrics[m].name(lang) for m in catalog.metrics}
    ent_names = dict(zip(ents["entity_id"], ents[f"name_{lang}"], strict=True))
    names = {
        "entities": ent_names,
        "metrics": metric_names,
        "groups": group_names,
        "features": features,
    }
    elastic = elasticities(cube, catalog)
    table = _findings(
        cand, cube, catalog, sc, facts, lineage, adjustments, opts, lang, info,
        {**names, "elastic": elastic},
    )  # fmt: skip
    n_points = int(np.isfinite(cube.values[:, :, cube.quarter]).sum())
    flagged = table
    table = _with_adjustments(table, cube, catalog, sc, facts, lineage, adjustments, info, names,
                              lang)  # fmt: skip
    n_adjusted = len(table) - len(flagged)
    stats = {
        "quarter": str(q),
        "points": n_points,
        "flags": len(flagged),
        "per_100": round(100.0 * len(flagged) / n_points, 2) if n_points else 0.0,
        "high": int(flagged["severity"].isin(severities_from("high")).sum()),
        "explained": int((flagged["explained_by"] != "").sum()),
        "adjusted": n_adjusted,  # approved adjustments listed though no check flagged them
        "flag_rate": opts.flag_rate,
        "money_high": fmt_number(opts.money_high, catalog.money_unit, lang),
        "money_low": fmt_number(opts.money_low, catalog.money_unit, lang),
    }
    top = top_series(table, opts.top_n)
    peer_table, n_small = peer_data(
        top, cube, changes, groups, opts.min_peers, ent_names, metric_names
    )
    note = peer_note(groups, opts, n_small, lang)
    return AnomalyResult(
        table=table,
        timelines=timelines(top, cube, sc, bands, ent_names, metric_names),
        peers=PeerComparison(peer_table, lang, note),
        counts=AnomalyCounts(counts_table(table, ents, lang), lang),
        formatted=formatted(table, catalog, lang),
        stats=stats,
        language=lang,
        notes=tuple(
            n
            for n in (
                features_note(used, n_units, catalog, table, opts, lang),
                linkage_note(bands, opts, lang),
                stake_note(elastic, catalog, metric_names, lang),
            )
            if n
        ),
        money_unit=catalog.money_unit,
        elasticities=elasticity_table(elastic, catalog),
        units={
            m: catalog.metrics[m].unit for m in table["metric_id"].unique() if m in catalog.metrics
        },
    )


def _check_options(options: AnomalyOptions | None) -> AnomalyOptions:
    if options is None:
        return AnomalyOptions()
    if not isinstance(options, AnomalyOptions):
        raise ParamsError(
            f"options must be an AnomalyOptions (review.params.anomaly), got {type(options).__name__}."
        )
    bad = [d for d in options.detectors if d not in DETECTORS]
    if bad:
        raise ParamsError(f"anomaly.detectors: unknown {bad}; use some of {list(DETECTORS)}.")
    if not options.z_medium <= options.z_high <= options.z_critical:
        raise ParamsError(
            f"anomaly: severity bands must rise, got z_medium={options.z_medium}, "
            f"z_high={options.z_high}, z_critical={options.z_critical}."
        )
    return options


def _chosen_features(catalog: Catalog, opts: AnomalyOptions) -> dict[str, Feature]:
    """The features of ``opts.features`` (empty: every feature the catalog gives)."""
    available = features_of(catalog)
    if not opts.features:
        return available
    bad = [f for f in opts.features if f not in available]
    if bad:
        known = ", ".join(available) or "none: the catalog has no ratio metrics, rates or prices"
        raise ParamsError(
            f"anomaly.features: {bad} are not features of this catalog; the catalog gives "
            f"{known}. Name some of them, or leave anomaly.features empty for all."
        )
    return {f: available[f] for f in dict.fromkeys(opts.features)}


def _check_entities(entities: pd.DataFrame) -> pd.DataFrame:
    need = ["entity_id", "name_zh", "name_en", "parent_id", "center_type", "business_line"]
    require_columns(entities, need, table="entities")
    return entities


def _peer_groups(info: pd.DataFrame, lang: str) -> tuple[np.ndarray, dict[int, str]]:
    key = (
        info["center_type"].astype(object).where(info["center_type"].notna())
        + "|"
        + info["business_line"].astype(object).where(info["business_line"].notna())
    )
    codes, uniq = pd.factorize(key)
    names = {}
    for i, k in enumerate(uniq):
        ct, bl = str(k).split("|", 1)
        names[i] = f"{labels.value_label('center_type', ct, lang)} · {bl}"
    return codes.astype(int), names


def _findings(
    cand, cube, catalog, sc, facts, lineage, adjustments, opts, lang, info, names
) -> pd.DataFrame:
    """The findings table; ``names`` maps entity, metric and peer-group ids to display names;
    ``lineage`` reads the flagged entities' ``source_ref`` when ``facts`` lack it."""
    if cand is None or cand.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in TABLE_COLUMNS})
    for col in ("feature", "drivers"):
        if col not in cand:
            cand[col] = None
    cand["entity_id"] = cube.entities[cand["e"].to_numpy(int)]
    cand["period"] = pd.PeriodIndex(cube.periods[cand["t"].to_numpy(int)])
    for c in ("value", "expected", "lower", "upper", "score"):
        cand[c] = cand[c].astype(float)
    priced = money_effect(cand, cube, sc, catalog, names["features"], names["elastic"])
    good = favourable(cand, catalog)
    cand["effect"], cand["favourable"] = priced["effect"].to_numpy(float), good
    cand["at_stake"] = at_stake(cand, priced, good, catalog)
    # the multivariate distance's tail probability assumes normal features, which business
    # ratios are not (on groups with no problem it reaches z 6-8): on its own it makes a
    # finding at most medium, high only with large money at stake
    score = cand["score"].abs().to_numpy(float)
    multi = (cand["kind"] == "multivariate").to_numpy()
    evidence = np.where(multi, np.minimum(score, opts.z_medium), score)
    cand["severity"] = severity(evidence, cand["at_stake"].to_numpy(), opts)
    # a move to the good side of the metric's direction is reported, never ranked as a risk
    cand.loc[
        good & (cand["severity"].map(SEVERITY_ORDER) < SEVERITY_ORDER["low"]).to_numpy(), "severity"
    ] = "low"
    cand["m"] = [cube.m(m) for m in cand["metric_id"]]
    # a small count's relative change, priced at the money metric it drives, overstates
    # what is at stake (3 new customers where 1 is usual is +200%): never critical
    method = np.array([str(sc.method[e, m]) for e, m in zip(cand["e"], cand["m"], strict=True)])
    count = np.char.startswith(method, "count_") & cand["kind"].isin(_SERIES_KINDS).to_numpy()
    cand.loc[count & (cand["severity"] == "critical").to_numpy(), "severity"] = "high"
    raised = corroborated(cand)
    cand["raised"] = raised != cand["severity"].to_numpy(dtype=object)
    cand["severity"] = raised
    # the multivariate distance's tails are not the spike test's: its rarity is read from
    # the same capped evidence as its severity, so a medium never says "once in 1,000 years"
    cand["rarity_years"] = rarity_years(cand.assign(score=evidence), sc)
    ctx = {**names, "flag_rate": opts.flag_rate}
    cand["explanation"] = [message(r, cube, catalog, sc, ctx, lang) for _, r in cand.iterrows()]
    cand["explanation"] = cand["explanation"] + stake_text(priced, catalog, names["metrics"], lang)
    cand = _rank(cand)
    key = ["entity_id", "period", "metric_id"]
    first = cand.drop_duplicates(key).copy()
    others = cand[cand.duplicated(key)]
    also = others.groupby(key, sort=False)["kind"].agg(lambda s: ",".join(dict.fromkeys(s)))
    first["also"] = [also.get(k, "") for k in zip(*(first[c] for c in key), strict=True)]
    first["explained_by"] = explained_by(first, adjustments, catalog, lang).to_numpy()
    sep = "" if lang == "zh" else " "  # zh sentences end in 。 and run on without a space
    note = [
        f"{sep}{labels.t('anomaly.msg.explained', lang, by=b)}" if b else ""
        for b in first["explained_by"]
    ]
    first["explanation"] = first["explanation"] + note
    # the checks the rule counted (medium or above), as the sentence names them
    checks = (
        cand[counted(cand)]
        .groupby(key, sort=False)["kind"]
        .agg(lambda s: sorted({check_of(k) for k in s}))
    )
    first["explanation"] = first["explanation"] + [
        f"{sep}{_corroboration(checks[k], lang)}" if r else ""
        for r, k in zip(first["raised"], zip(*(first[c] for c in key), strict=True), strict=True)
    ]
    inputs = {
        target: [m for m in re.findall(r"[A-Za-z_]\w*", drivers) if m in catalog.metrics]
        for target, (_, drivers, _) in linkage_models(cube, catalog, opts.min_level).items()
    }
    refs = facts_with_refs(facts, first["entity_id"].unique(), lineage)
    first["source_refs"] = source_refs(first, refs, inputs, names["features"]).to_numpy()
    del refs
    first["message"] = first["explanation"]
    first["entity"] = first["entity_id"].map(names["entities"])
    first["metric"] = first["metric_id"].map(names["metrics"])
    first["parent_id"] = info["parent_id"].to_numpy()[first["e"].to_numpy(int)]
    first["source_system"] = first["metric_id"].map(
        lambda m: catalog.metrics[m].source_system if m in catalog.metrics else ""
    )
    first = _rank(first)
    first["rank"] = np.arange(1, len(first) + 1)
    return first[TABLE_COLUMNS].reset_index(drop=True)


def _with_adjustments(
    table, cube, catalog, sc, facts, lineage, adjustments, info, names, lang
) -> pd.DataFrame:
    """``table`` with a row per approved adjustment of the quarter that no finding is about
    (its unit, month and metric), ranked again.

    Bonuses are paid on the adjusted figures, so the page accounts for every adjustment the
    checks score: a flagged month says it is explained (:func:`explained_by`); an adjustment
    whose month no check flagged gets a row of kind ``adjustment``, severity ``info``,
    explained by it, with the month's value against the series check's expected value and
    normal range, so a reader sees whether the data bears the event out (a hurricane that
    cut a volatile unit's sales by 30% can stay inside its normal range), and an item of the
    summary about that unit and metric carries it as evidence. Adjustments of entities the
    checks do not score (a subsidiary, the group) or of months before the quarter are the
    KPI page's adjustment audit only.
    """
    if adjustments is None or len(adjustments) == 0:
        return table
    months = {str(p) for p in cube.periods[cube.quarter]}
    index = {e: i for i, e in enumerate(cube.entities)}
    adj = adjustments.assign(_p=adjustments["period"].astype(str))
    adj = adj[adj["_p"].isin(months) & adj["entity_id"].isin(index)]
    seen = set(
        zip(table["entity_id"], table["period"].astype(str), table["metric_id"], strict=True)
    )
    keys = [
        k
        for k in dict.fromkeys(zip(adj["entity_id"], adj["_p"], adj["metric_id"], strict=True))
        if k not in seen
    ]
    if not keys:
        return table
    rows = []
    for eid, month, metric in keys:
        e, m, period = index[eid], cube.m(metric), pd.Period(month, "M")
        t = int(cube.periods.get_loc(period))
        cell = {
            c: float(a[e, m, t]) if m is not None else np.nan
            for c, a in (("value", cube.values), ("expected", sc.expected),
                         ("lower", sc.lower), ("upper", sc.upper), ("score", sc.score))
        }  # fmt: skip
        rows.append(
            dict(e=e, t=t, entity_id=eid, period=period, metric_id=metric,
                 kind="adjustment", severity="info", at_stake=np.nan, effect=np.nan,
                 favourable=False, feature=None, also="", **cell)
        )  # fmt: skip
    new = pd.DataFrame(rows)
    new["explained_by"] = explained_by(new, adjustments, catalog, lang).to_numpy()
    sep = "" if lang == "zh" else " "
    new["explanation"] = [
        adjustment_message(r, cube, catalog, sc, names, lang)
        + f"{sep}{labels.t('anomaly.msg.explained', lang, by=r['explained_by'])}"
        for _, r in new.iterrows()
    ]
    refs = facts_with_refs(facts, new["entity_id"].unique(), lineage)
    new["source_refs"] = source_refs(new, refs, {}, names["features"]).to_numpy()
    new["message"] = new["explanation"]
    new["entity"] = new["entity_id"].map(names["entities"])
    new["metric"] = new["metric_id"].map(lambda x: names["metrics"].get(x, x))
    new["parent_id"] = info["parent_id"].to_numpy()[new["e"].to_numpy(int)]
    new["source_system"] = new["metric_id"].map(
        lambda x: catalog.metrics[x].source_system if x in catalog.metrics else ""
    )
    new["rank"] = 0
    both = pd.concat([table, new[TABLE_COLUMNS]], ignore_index=True) if len(table) else new
    both = _rank(both[TABLE_COLUMNS])
    both["rank"] = np.arange(1, len(both) + 1)
    return both.reset_index(drop=True)


def _corroboration(checks: list[str], lang: str) -> str:
    """ "Flagged by 3 checks at this point (…): raised to high", in ``lang``."""
    names = [labels.t(f"anomaly.check.{c}", lang) for c in checks]
    return labels.t(
        "anomaly.msg.corroborated",
        lang,
        n=len(names),
        checks=labels.t("workbook.value.list_sep", lang).join(names),
    )


def _rank(df: pd.DataFrame) -> pd.DataFrame:
    order = pd.DataFrame(
        {
            "sev": df["severity"].map(SEVERITY_ORDER).to_numpy(),
            "explained": (df["explained_by"] != "").to_numpy() if "explained_by" in df else 0,
            "stake": -df["at_stake"].fillna(-1.0).to_numpy(),
            "z": -df["score"].abs().fillna(0).to_numpy(),
        },
        index=df.index,
    )
    return df.loc[order.sort_values(["sev", "explained", "stake", "z"], kind="stable").index]
