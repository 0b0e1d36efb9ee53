"""The three-tier driver tree and its attribution (not API; see :func:`perflink.kpi.decompose`).

Links, from the catalog:

``formula``  a derived metric's formula (profit <- sales, cost, expenses): exact Shapley
             attribution; sum-aggregated metrics are attributed month by month and summed,
             and at a parent (subsidiary, group) as the sum of its units' attributions: the
             parent's figure is the sum of its units' (the catalog's roll-up,
             :func:`perflink.panel.assemble`), not its formula on consolidated inputs.
``identity`` a metric's ``decomposition`` (sales ~ quantity * unit price / scale):
             the identity's change is attributed exactly, the gap between identity and reported
             value is the explicit ``remainder`` row.
``mapping``  statistical links (orders -> sales, lag 1): elasticity x the
             driver's relative deviation x the parent's base value; what is left is the explicit
             ``unexplained`` row.

Each link's rows sum to the parent's contribution. Contributions are carried down in the
tier-1 metric's own unit: a child gets the parent's contribution times its share of the
parent's own change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from perflink.catalog import Catalog
from perflink.formula import parse
from perflink.kpi._attribute import attribute_frame
from perflink.panel import yoy_window_change

_LAG = re.compile(r"lag\(\s*([a-z_][a-z0-9_]*)\s*,\s*(\d+)\s*\)")
_EPS = 1e-9
REMAINDER, UNEXPLAINED = "_remainder", "_unexplained"


@dataclass(frozen=True)
class Link:
    """One parent -> children decomposition."""

    parent: str
    kind: str  # formula | identity | mapping
    children: tuple[tuple[str, int], ...]  # (metric id, lag months)
    text: str = ""  # flattened formula / identity
    elasticity: tuple[float, ...] = ()


def flat_formula(text: str) -> str:
    """``lag(x, 12)`` -> ``x__lag12`` so a time formula becomes a same-period one."""
    return _LAG.sub(lambda m: f"{m.group(1)}__lag{m.group(2)}", text)


def build_links(catalog: Catalog, elasticities: dict[str, float]) -> dict[str, list[Link]]:
    """Every link of the catalog, by parent metric id."""
    links: dict[str, list[Link]] = {}
    for mid, m in catalog.metrics.items():
        out: list[Link] = []
        if m.formula and "sum(" not in m.formula:
            flat = flat_formula(m.formula)
            f = parse(flat)
            kids = []
            for name in f.inputs:
                base, _, lag = name.partition("__lag")
                kids.append((base, int(lag) if lag else 0))
            out.append(Link(mid, "formula", tuple(kids), flat))
        identity: set[str] = set()
        if m.decomposition:
            f = parse(m.decomposition)
            identity = set(f.inputs)
            out.append(Link(mid, "identity", tuple((n, 0) for n in f.inputs), m.decomposition))
        maps = [
            mp
            for mp in catalog.mappings_to(mid)
            if mp.driver not in identity and mp.id in elasticities
        ]
        if maps:
            out.append(
                Link(
                    mid,
                    "mapping",
                    tuple((mp.driver, mp.lag) for mp in maps),
                    ",".join(mp.id for mp in maps),
                    tuple(elasticities[mp.id] for mp in maps),
                )
            )
        if out:
            links[mid] = out
    return links


class Windows:
    """Window aggregates of the actual and base panels, cached by (side, shift)."""

    def __init__(
        self, actual, target, catalog, start, end, base: str, window_fn, units_of=None
    ) -> None:
        self.actual, self.target, self.catalog = actual, target, catalog
        self.start, self.end, self.base, self._fn = start, end, base, window_fn
        #: parent id -> its units (the leaves whose figures roll up into it)
        self.units_of: dict[str, list[str]] = dict(units_of or {})
        self._cache: dict = {}

    def get(self, side: str, shift: int = 0) -> pd.DataFrame:
        """``side`` actual / base / history (actual values before the base window)."""
        key = (side, shift)
        if key not in self._cache:
            if side == "actual":
                panel, s = self.actual, shift
            elif side == "history":  # lagged inputs of the base side
                panel, s = self.actual, shift + (12 if self.base == "prior_year" else 0)
            elif self.base == "target":
                panel, s = self.target, shift
            else:
                panel, s = self.actual, shift + 12
            self._cache[key] = self._fn(panel, self.catalog, self.start - s, self.end - s)
        return self._cache[key]

    def monthly(self, side: str) -> pd.DataFrame:
        """Monthly rows of the window (base side re-labelled to the actual months)."""
        key = ("m", side)
        if key not in self._cache:
            panel, shift = self.actual, 0
            if side == "base":
                panel, shift = (self.target, 0) if self.base == "target" else (self.actual, 12)
            per = panel.index.get_level_values("period")
            part = panel[(per >= self.start - shift) & (per <= self.end - shift)]
            if shift:
                ents = part.index.get_level_values("entity_id")
                part = part.set_axis(
                    pd.MultiIndex.from_arrays(
                        [ents, part.index.get_level_values("period") + shift],
                        names=["entity_id", "period"],
                    )
                )
            self._cache[key] = part
        return self._cache[key]


def own_split(link: Link, w: Windows, catalog: Catalog) -> tuple[pd.DataFrame, pd.Series]:
    """The parent's own change split over the link's children (parent units) and that change.

    Returns (entity x child-position frame of contributions, parent change per entity).
    """
    parent = link.parent
    a0, b0 = w.get("actual"), w.get("base")
    delta = a0[parent] - b0.reindex(a0.index)[parent]
    cols = [f"{c}__lag{k}" if k else c for c, k in link.children]
    if link.kind == "formula" and catalog.metrics[parent].aggregation == "sum":
        am = _zero_missing(w.monthly("actual"), link, catalog)
        bm = _zero_missing(w.monthly("base").reindex(am.index), link, catalog)
        phi = attribute_frame(link.text, bm, am)
        phi = _sum_over_units(phi.groupby(level="entity_id").sum(min_count=1), w.units_of)
        phi = phi.reindex(a0.index)
    elif link.kind in ("formula", "identity"):
        A = pd.DataFrame(index=a0.index)
        B = pd.DataFrame(index=a0.index)
        for (c, k), col in zip(link.children, cols, strict=True):
            A[col] = w.get("actual", k)[c].reindex(a0.index)
            side = "history" if k else "base"
            B[col] = w.get(side, k)[c].reindex(a0.index)
        phi = attribute_frame(link.text, B, A)
        if link.kind == "identity":
            phi[REMAINDER] = delta - phi.sum(axis=1, min_count=1)
    else:
        phi = pd.DataFrame(index=a0.index)
        base_parent = b0.reindex(a0.index)[parent]
        for (c, k), col, e in zip(link.children, cols, link.elasticity, strict=True):
            da = w.get("actual", k)[c].reindex(a0.index)
            db = w.get("base", k)[c].reindex(a0.index)
            rel = (da / db.where(db.abs() > _EPS)) - 1.0
            phi[col] = e * rel * base_parent
        phi[UNEXPLAINED] = delta - phi.sum(axis=1, min_count=1)
    phi.columns = [*cols, *phi.columns[len(cols) :]]
    return phi, delta


def _zero_missing(monthly: pd.DataFrame, link: Link, catalog: Catalog) -> pd.DataFrame:
    """A unit-month's missing additive inputs as zero where the metric itself has a value:
    the panel computes an additive derived metric that way (a cost centre's profit is minus
    its costs, :func:`perflink.panel.assemble`), so its attribution must read them so too."""
    cols = [
        c
        for c, _ in link.children
        if c in monthly and catalog.metrics[c].aggregation in ("sum", "last")
    ]
    if not cols or link.parent not in monthly:
        return monthly
    has = monthly[link.parent].notna()
    out = monthly.copy()
    for c in cols:
        out[c] = out[c].where(out[c].notna() | ~has, 0.0)
    return out


def _sum_over_units(phi: pd.DataFrame, units_of: dict[str, list[str]]) -> pd.DataFrame:
    """Per-entity contributions with every parent's row replaced by the sum of its units'.

    A sum-aggregated derived metric rolls up as the sum of its units' values, so its change
    at a parent is the sum of their changes and so are its contributions (exact: each unit's
    Shapley values sum to its own change). Its formula on the parent's consolidated inputs
    would attribute a different change (a tax on positive profit only, netted across units).
    """
    parents = [p for p in units_of if p in phi.index]
    if not parents:
        return phi
    pairs = [(u, p) for p in parents for u in units_of[p] if u in phi.index]
    if not pairs:
        return phi
    units, owners = zip(*pairs, strict=True)
    summed = phi.loc[list(units)].set_axis(pd.Index(owners, name=phi.index.name))
    summed = summed.groupby(level=0).sum(min_count=1)
    out = phi.copy()
    out.loc[summed.index] = summed
    return out


def attribute_tree(
    root: str, links: dict[str, list[Link]], w: Windows, catalog: Catalog, cache: dict
) -> list[pd.DataFrame]:
    """Long rows (entity x edge) of one tier-1 metric's tree for one window and base."""
    a0, b0 = w.get("actual"), w.get("base").reindex(w.get("actual").index)
    root_delta = a0[root] - b0[root]
    rows = [_part(root_delta, root, None, root, 0, "total", "total", a0[root], b0[root], 0)]
    stack = [(root, root_delta, 0, (root,))]
    while stack:
        node, contrib, depth, path = stack.pop()
        for link in links.get(node, []):
            if link.kind == "mapping" and depth == 0:
                continue
            key = (node, link.kind)
            if key not in cache:
                cache[key] = own_split(link, w, catalog)
            phi, delta = cache[key]
            share = phi.div(delta.where(delta.abs() > _EPS), axis=0)
            scaled = share.mul(contrib, axis=0)
            # where the parent did not move, keep its (tiny) contribution in one remainder
            leftover = contrib - scaled.sum(axis=1, min_count=1).fillna(0.0)
            for col in phi.columns:
                child, _, lag = col.partition("__lag")
                lag = int(lag) if lag else 0
                method = {REMAINDER: "remainder", UNEXPLAINED: "unexplained"}.get(child)
                value = scaled[col]
                if method is not None:
                    value = value.fillna(0.0) + leftover
                tier = catalog.metrics[child].tier if child in catalog.metrics else 3
                ca = w.get("actual", lag).get(child) if child in catalog.metrics else None
                side = "history" if lag and link.kind == "formula" else "base"
                cb = w.get(side, lag).get(child) if child in catalog.metrics else None
                rows.append(
                    _part(
                        value,
                        root,
                        node,
                        child,
                        lag,
                        link.kind,
                        method or ("elasticity" if link.kind == "mapping" else "shapley"),
                        None if ca is None else ca.reindex(a0.index),
                        None if cb is None else cb.reindex(a0.index),
                        tier,
                        depth + 1,
                    )
                )
                if (
                    method is None
                    and (lag == 0 or link.kind == "mapping")
                    and child not in path
                    and child in links
                ):
                    stack.append((child, value, depth + 1, (*path, child)))
            if not any(c in (REMAINDER, UNEXPLAINED) for c in phi.columns):
                tol = 1e-9 * (1.0 + contrib.abs())
                gap = leftover.where(leftover.abs() > tol)
                if gap.notna().any():  # the parent did not move or a child is missing
                    rows.append(
                        _part(
                            gap.fillna(0.0),
                            root,
                            node,
                            REMAINDER,
                            0,
                            link.kind,
                            "remainder",
                            None,
                            None,
                            catalog.metrics[node].tier,
                            depth + 1,
                        )
                    )
    return [_frame(rows, a0.index)]


def _part(value, root, parent, driver, lag, link, method, actual, base, tier, depth=0):
    """One tree edge: its labels and its per-entity arrays (all aligned with the actual window)."""
    return (
        (root, parent, driver, lag, tier, depth, link, method),
        value.to_numpy(dtype=float),
        None if actual is None else actual.to_numpy(dtype=float),
        None if base is None else base.to_numpy(dtype=float),
    )


_LABELS = ("metric_id", "parent_id", "driver_id", "lag", "tier", "depth", "link", "method")


def _frame(parts: list, index: pd.Index) -> pd.DataFrame:
    """Long rows (edge x entity) of one tree, built once.

    One frame per tree rather than one per edge: with thousands of entities, converting each
    edge's id and label columns to strings cost more than the attribution itself. Columns,
    order and dtypes are those the per-edge frames had once concatenated.
    """
    n = len(index)
    labels = list(zip(*(p[0] for p in parts), strict=True))
    out = {"entity_id": np.tile(index.to_numpy(), len(parts))}
    for name, values in zip(_LABELS, labels, strict=True):
        kind = np.int64 if name in ("lag", "tier", "depth") else object
        out[name] = np.repeat(np.array(values, dtype=kind), n)
    nan = np.full(n, np.nan)
    out["contribution"] = np.concatenate([p[1] for p in parts])
    out["driver_actual"] = np.concatenate([nan if p[2] is None else p[2] for p in parts])
    out["driver_base"] = np.concatenate([nan if p[3] is None else p[3] for p in parts])
    frame = pd.DataFrame(out)
    # the root edge has no parent: the per-edge frames kept that column as objects (None)
    frame["parent_id"] = pd.Series(out["parent_id"], dtype=object)
    return frame


def estimate_elasticities(unit_panel: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Pooled elasticity of every mapping from year-over-year changes of 3-month windows.

    For each mapping (driver -> target, lag L) and every unit-month with both values:
    ``x = log(driver over months t-L-2..t-L) - log(same a year earlier)``, ``y`` the same for
    the target over t-2..t; the elasticity is the least-squares slope through the origin
    (windows summed for flows, averaged for rates; non-positive values are left out).
    """
    ents = unit_panel.index.get_level_values("entity_id").unique()
    n_ent = len(ents)
    n_t = len(unit_panel) // max(n_ent, 1)
    rows = []
    for mp in catalog.mappings:
        if mp.driver not in unit_panel or mp.target not in unit_panel:
            continue
        x = yoy_window_change(unit_panel[mp.driver].to_numpy().reshape(n_ent, n_t), mp.lag)
        y = yoy_window_change(unit_panel[mp.target].to_numpy().reshape(n_ent, n_t), 0)
        ok = np.isfinite(x) & np.isfinite(y)
        n = int(ok.sum())
        sxx = float((x[ok] ** 2).sum())
        e = float((x[ok] * y[ok]).sum() / sxx) if n >= 12 and sxx > 0 else np.nan
        r2 = np.nan
        if np.isfinite(e):
            resid = y[ok] - e * x[ok]
            tot = float((y[ok] ** 2).sum())
            r2 = 1 - float((resid**2).sum()) / tot if tot > 0 else np.nan
        rows.append(
            dict(
                mapping_id=mp.id,
                driver_id=mp.driver,
                target_id=mp.target,
                lag=mp.lag,
                elasticity=e,
                r2=r2,
                n_obs=n,
                source="estimated",
            )
        )
    return pd.DataFrame(
        rows,
        columns=[
            "mapping_id",
            "driver_id",
            "target_id",
            "lag",
            "elasticity",
            "r2",
            "n_obs",
            "source",
        ],
    )
