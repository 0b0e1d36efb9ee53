"""What the anomaly page shows besides the findings table (not API): the top series'
timelines and peer comparisons, the formatted values, and the sentences that say what the
multivariate and peer detectors could compare.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perflink import labels
from perflink._report_format import fmt_number
from perflink.anomaly._cube import Cube
from perflink.anomaly._explain import unit_of
from perflink.anomaly._features import Feature
from perflink.catalog import Catalog
from perflink.options import AnomalyOptions

_HISTORY_MONTHS = 24  # months shown in a timeline


def peer_note(groups: np.ndarray, opts: AnomalyOptions, n_small: int, lang: str) -> str:
    """Why the peer detector compared nothing (off, or no group of ``min_peers`` units), or
    why ``n_small`` top series have no peer chart; "" when every one could be compared."""
    if "peer" not in opts.detectors:
        return labels.t("anomaly.text.peers_off", lang)
    sizes = np.bincount(groups[groups >= 0]) if (groups >= 0).any() else np.zeros(1, int)
    if sizes.max() < opts.min_peers:
        return labels.t(
            "anomaly.text.peers_silent", lang, largest=int(sizes.max()), min_peers=opts.min_peers
        )
    if n_small:
        return labels.t("anomaly.text.peers_partial", lang, n=n_small, min_peers=opts.min_peers)
    return ""


def linkage_note(bands: dict, opts: AnomalyOptions, lang: str) -> str:
    """Why the linkage detector compared nothing ("" when it had a driver relation to test):
    ``bands`` holds one entry per finance metric with a usable decomposition or driver."""
    if "linkage" not in opts.detectors or bands:
        return ""
    return labels.t("anomaly.text.no_linkage", lang)


def features_note(
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


def top_series(table: pd.DataFrame, n: int) -> pd.DataFrame:
    return table.drop_duplicates(["entity_id", "metric_id"]).head(n)


def timelines(top, cube: Cube, sc, bands, ent_names, metric_names) -> pd.DataFrame:
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


def peer_data(
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


def formatted(table: pd.DataFrame, catalog: Catalog, lang: str) -> pd.DataFrame:
    rows = []
    for r in table.itertuples(index=False):
        unit = unit_of(catalog, r.metric_id)
        f = [
            fmt_number(float(getattr(r, c)), unit, lang)
            for c in ("value", "expected", "lower", "upper")
        ]
        rows.append((f[0], f[1], f"{f[2]} – {f[3]}"))
    return pd.DataFrame(rows, columns=["value", "expected", "range"], index=table.index)
