"""Panel anomaly detection over the facts table: :func:`detect_anomalies` (re-exported by
:mod:`perflink.anomaly`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from perflink import labels
from perflink._report_format import fmt_number
from perflink.anomaly._cube import Cube, build_cube
from perflink.anomaly._detect import (
    linkage_flags,
    linkage_models,
    multivariate_flags,
    peer_flags,
    series_flags,
)
from perflink.anomaly._explain import (
    SEVERITY_ORDER,
    at_stake,
    explained_by,
    message,
    rarity_years,
    severity,
    source_refs,
    unit_of,
)
from perflink.anomaly._features import Feature, features_of
from perflink.anomaly._results import (
    TABLE_COLUMNS,
    AnomalyCounts,
    AnomalyResult,
    PeerComparison,
    counts_table,
)
from perflink.catalog import Catalog
from perflink.common import parse_quarter, require_columns, severities_from
from perflink.errors import ParamsError
from perflink.execution import Executor, get_executor
from perflink.options import AnomalyOptions, ExecutorOptions

__all__ = ["DETECTORS", "detect_anomalies"]

#: Detector names accepted in ``AnomalyOptions.detectors``.
DETECTORS = ("series", "multivariate", "peer", "linkage")
_HISTORY_MONTHS = 24  # months shown in a timeline
_SERIES_KINDS = ("spike", "level_shift", "trend_break")


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
      business line in that month.

    Flags that move a value by less than ``options.min_change`` are dropped. One row is kept
    per entity, metric and month (the most severe; the others are listed in ``also``).
    Rows of an entity-month with an approved adjustment are kept and marked in
    ``explained_by``.

    Parameters
    ----------
    facts : pandas.DataFrame
        The facts table (reads ``entity_id, period`` (Period[M]), ``metric_id, value``,
        ``source_ref``); units' monthly values in each metric's unit.
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

    Returns
    -------
    AnomalyResult
        Ranked findings of the quarter (severity, then money at stake in the catalog's money
        unit, then |score|), timelines of the top series, peer comparisons and counts; its
        ``notes`` say what the multivariate and peer detectors could compare.

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
    table = _findings(cand, cube, catalog, sc, facts, adjustments, opts, lang, info, names)
    n_points = int(np.isfinite(cube.values[:, :, cube.quarter]).sum())
    stats = {
        "quarter": str(q),
        "points": n_points,
        "flags": len(table),
        "per_100": round(100.0 * len(table) / n_points, 2) if n_points else 0.0,
        "high": int(table["severity"].isin(severities_from("high")).sum()),
        "explained": int((table["explained_by"] != "").sum()),
        "flag_rate": opts.flag_rate,
        "money_high": fmt_number(opts.money_high, catalog.money_unit, lang),
        "money_low": fmt_number(opts.money_low, catalog.money_unit, lang),
    }
    top = _top_series(table, opts.top_n)
    peer_table, n_small = _peer_data(
        top, cube, changes, groups, opts.min_peers, ent_names, metric_names
    )
    peer_note = _peer_note(groups, opts, lang) or (
        labels.t("anomaly.text.peers_partial", lang, n=n_small, min_peers=opts.min_peers)
        if n_small
        else ""
    )
    return AnomalyResult(
        table=table,
        timelines=_timelines(top, cube, sc, bands, ent_names, metric_names),
        peers=PeerComparison(peer_table, lang, peer_note),
        counts=AnomalyCounts(counts_table(table, ents, lang), lang),
        formatted=_formatted(table, catalog, lang),
        stats=stats,
        language=lang,
        notes=(_features_note(used, n_units, catalog, table, opts, lang),),
        money_unit=catalog.money_unit,
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


def _peer_note(groups: np.ndarray, opts: AnomalyOptions, lang: str) -> str:
    """Why the peer detector compared nothing, or "" when it could compare."""
    if "peer" not in opts.detectors:
        return labels.t("anomaly.text.peers_off", lang)
    sizes = np.bincount(groups[groups >= 0]) if (groups >= 0).any() else np.zeros(1, int)
    if sizes.max() >= opts.min_peers:
        return ""
    return labels.t(
        "anomaly.text.peers_silent", lang, largest=int(sizes.max()), min_peers=opts.min_peers
    )


def _features_note(
    used: list[Feature] | None,
    n_units: int,
    catalog: Catalog,
    table: pd.DataFrame,
    opts: AnomalyOptions,
    lang: str,
) -> str:
    """What the multivariate detector compared (by the catalog's names), or why it could not.

    ``used`` = the features the facts could fill (None: the detector is off), ``n_units`` =
    entities with two of them scored; ``table`` = the findings (those it flagged, first or
    among ``also``, are counted).
    """
    kinds = table["kind"].astype(str) + "," + table["also"].fillna("").astype(str)
    n_found = int(kinds.str.split(",").map(lambda k: "multivariate" in k).sum())
    if used is None:
        return labels.t("anomaly.text.multivariate_off", lang)
    if not used:
        return labels.t("anomaly.text.no_features", lang)
    sep = "、" if lang == "zh" else ", "
    return labels.t(
        "anomaly.text.features" if n_units else "anomaly.text.few_features",
        lang,
        k=len(used),
        features=sep.join(f.label(catalog, lang) for f in used),
        units=n_units,
        min_history=opts.min_history,
        n=n_found,
    )


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


def _findings(cand, cube, catalog, sc, facts, adjustments, opts, lang, info, names) -> pd.DataFrame:
    """The findings table; ``names`` maps entity, metric and peer-group ids to display names."""
    if cand is None or cand.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in TABLE_COLUMNS})
    for col in ("feature", "drivers"):
        if col not in cand:
            cand[col] = None
    cand["entity_id"] = cube.entities[cand["e"].to_numpy(int)]
    cand["period"] = pd.PeriodIndex(cube.periods[cand["t"].to_numpy(int)])
    for c in ("value", "expected", "lower", "upper", "score"):
        cand[c] = cand[c].astype(float)
    cand["at_stake"] = at_stake(cand, cube, catalog, names["features"])
    cand["severity"] = severity(cand["score"].to_numpy(), cand["at_stake"].to_numpy(), opts)
    cand["m"] = [cube.m(m) for m in cand["metric_id"]]
    # a small count's relative change, priced at the money metric it drives, overstates
    # what is at stake (3 new customers where 1 is usual is +200%): never critical
    method = np.array([str(sc.method[e, m]) for e, m in zip(cand["e"], cand["m"], strict=True)])
    count = np.char.startswith(method, "count_") & cand["kind"].isin(_SERIES_KINDS).to_numpy()
    cand.loc[count & (cand["severity"] == "critical").to_numpy(), "severity"] = "high"
    cand["rarity_years"] = rarity_years(cand, sc)
    ctx = {**names, "flag_rate": opts.flag_rate}
    cand["explanation"] = [message(r, cube, catalog, sc, ctx, lang) for _, r in cand.iterrows()]
    cand = _rank(cand)
    key = ["entity_id", "period", "metric_id"]
    first = cand.drop_duplicates(key).copy()
    others = cand[cand.duplicated(key)]
    also = others.groupby(key, sort=False)["kind"].agg(lambda s: ",".join(dict.fromkeys(s)))
    first["also"] = [also.get(k, "") for k in zip(*(first[c] for c in key), strict=True)]
    first["explained_by"] = explained_by(first, adjustments, catalog, lang).to_numpy()
    note = [
        f" {labels.t('anomaly.msg.explained', lang, by=b)}" if b else ""
        for b in first["explained_by"]
    ]
    first["explanation"] = first["explanation"] + note
    inputs = {
        target: [m for m in re.findall(r"[A-Za-z_]\w*", drivers) if m in catalog.metrics]
        for target, (_, drivers, _) in linkage_models(cube, catalog, opts.min_level).items()
    }
    first["source_refs"] = source_refs(first, facts, inputs, names["features"]).to_numpy()
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


def _top_series(table: pd.DataFrame, n: int) -> pd.DataFrame:
    return table.drop_duplicates(["entity_id", "metric_id"]).head(n)


def _timelines(top, cube: Cube, sc, bands, ent_names, metric_names) -> pd.DataFrame:
    frames = []
    e_index = {e: i for i, e in enumerate(cube.entities)}
    end = int(cube.quarter[-1]) + 1
    sl = slice(max(0, end - _HISTORY_MONTHS), end)
    for r in top.itertuples(index=False):
        e, m = e_index[r.entity_id], cube.m(r.metric_id)
        if m is None:
            continue
        if r.kind == "linkage" and r.metric_id in bands:
            ex, lo, hi = (a[e, sl] for a in bands[r.metric_id])
        else:
            ex, lo, hi = sc.expected[e, m, sl], sc.lower[e, m, sl], sc.upper[e, m, sl]
        frames.append(
            pd.DataFrame(
                {
                    "entity_id": r.entity_id,
                    "metric_id": r.metric_id,
                    "label": f"{ent_names.get(r.entity_id, r.entity_id)} · {metric_names.get(r.metric_id, r.metric_id)}",
                    "period": cube.periods[sl],
                    "value": cube.values[e, m, sl],
                    "expected": ex,
                    "lower": lo,
                    "upper": hi,
                }
            )
        )
    cols = ["entity_id", "metric_id", "label", "period", "value", "expected", "lower", "upper"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def _peer_data(
    top, cube: Cube, changes, groups, min_peers, ent_names, metric_names
) -> tuple[pd.DataFrame, int]:
    """Year-on-year changes of the top series' peers, for series whose peer group has at
    least ``min_peers`` units (the groups the peer detector compares), and how many top
    series were left out for a smaller group."""
    cols = ["label", "entity_id", "peer_id", "change", "is_self"]
    if changes is None or top.empty:
        return pd.DataFrame(columns=cols), 0
    frames, small = [], 0
    e_index = {e: i for i, e in enumerate(cube.entities)}
    q_pos = {int(t): k for k, t in enumerate(cube.quarter)}
    for r in top.itertuples(index=False):
        e, m = e_index[r.entity_id], cube.m(r.metric_id)
        k = q_pos.get(cube.periods.get_loc(r.period))
        if m is None or k is None or groups[e] < 0:
            continue
        peers = np.flatnonzero(groups == groups[e])
        if peers.size < min_peers:
            small += 1
            continue
        g = changes[peers, m, k]
        ok = np.isfinite(g)
        if ok.sum() < 3 or not np.isfinite(changes[e, m, k]):
            continue
        frames.append(
            pd.DataFrame(
                {
                    "label": f"{ent_names.get(r.entity_id, r.entity_id)} · {metric_names.get(r.metric_id, r.metric_id)} · {r.period}",
                    "entity_id": r.entity_id,
                    "peer_id": cube.entities[peers[ok]],
                    "change": g[ok],
                    "is_self": peers[ok] == e,
                }
            )
        )
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)
    return data, small


def _formatted(table: pd.DataFrame, catalog: Catalog, lang: str) -> pd.DataFrame:
    rows = []
    for r in table.itertuples(index=False):
        unit = unit_of(catalog, r.metric_id)
        f = [
            fmt_number(float(getattr(r, c)), unit, lang)
            for c in ("value", "expected", "lower", "upper")
        ]
        rows.append((f[0], f[1], f"{f[2]} – {f[3]}"))
    return pd.DataFrame(rows, columns=["value", "expected", "range"], index=table.index)
