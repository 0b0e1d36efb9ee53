"""Result object of :func:`perflink.kpi.decompose` and its charts (not API)."""

from __future__ import annotations

from dataclasses import dataclass, field

import altair as alt
import numpy as np
import pandas as pd

from perflink import charts, panel
from perflink._report_format import fmt_number
from perflink.labels import t
from perflink.results import QuarterResult


@dataclass(frozen=True)
class KpiPanels:
    """Monthly panels (MultiIndex entity_id x period, one column per metric, all levels).

    Attributes
    ----------
    actual : reported actuals.
    adjusted : actuals plus approved adjustments (the scorecard's "after" view).
    target : per scope (``quarter`` / ``ytd``) the target panel with environment changes.
    target_original : the same without environment changes.
    """

    actual: pd.DataFrame
    adjusted: pd.DataFrame
    target: dict[str, pd.DataFrame]
    target_original: dict[str, pd.DataFrame]
    _windows: dict = field(default_factory=dict, repr=False, compare=False)

    def window(self, frame: pd.DataFrame, catalog, start: pd.Period, end: pd.Period):
        """:func:`perflink.panel.window` of one of these panels, computed once per window.

        The tree (both bases) and the scorecard read the same windows of the same panels;
        panels shared between fields (``adjusted is actual`` without adjustments) share them.
        """
        key = (id(frame), pd.Period(start, "M"), pd.Period(end, "M"))
        if key not in self._windows:
            self._windows[key] = panel.window(frame, catalog, start, end)
        return self._windows[key]


def tree_layout(edges: pd.DataFrame) -> pd.DataFrame:
    """Static positions of the tree nodes: x = depth, y = order within a depth of one tree."""
    u = edges.drop_duplicates(["metric_id", "parent_id", "driver_id", "link"]).copy()
    u = u.sort_values(["metric_id", "depth", "parent_id", "link", "driver_id"], na_position="first")
    u["x"] = u["depth"]
    u["y"] = u.groupby(["metric_id", "depth"]).cumcount()
    return u[["metric_id", "parent_id", "driver_id", "link", "x", "y"]]


@dataclass(frozen=True)
class DecompositionResult(QuarterResult):
    """Three-tier attribution of every entity's tier-1 variance.

    Attributes
    ----------
    quarter : review quarter (``"2026Q3"``); ``period`` in the tables.
    language : language of messages and chart labels.
    attribution : one row per entity x ``scope`` (quarter/ytd) x ``base`` (target/prior_year)
        x tier-1 ``metric_id`` x tree edge: ``parent_id, driver_id, lag, tier, depth, link``
        (total/formula/identity/mapping), ``method`` (total/shapley/remainder/elasticity/
        unexplained), ``contribution`` (tier-1 unit, column ``unit``), ``driver_actual``,
        ``driver_base`` (the driver's own unit, window values).
    tier1 : per entity x scope x base x tier-1 metric: ``actual, target`` (the base value),
        ``change, completion, status``.
    tree : driver-tree nodes (base target) with completion, status and layout ``x, y``.
    findings : missed tier-1 targets with their traced cause (findings contract).
    elasticities : the mapping elasticities used for statistical links.
    names : entity id -> display name.
    panels : the monthly panels, reused by :func:`perflink.scoring.scorecard`.
    metric_names, metric_units : metric id -> catalog name in the report language / unit.
    """

    attribution: pd.DataFrame = field(repr=False)
    tier1: pd.DataFrame = field(repr=False)
    tree: pd.DataFrame = field(repr=False)
    findings: pd.DataFrame = field(repr=False)
    elasticities: pd.DataFrame = field(repr=False)
    names: dict[str, str] = field(repr=False, compare=False)
    panels: KpiPanels | None = field(default=None, repr=False, compare=False)
    metric_names: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    metric_units: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    _title = "kpi.result.title"
    _table_name = "attribution"
    _findings = "findings"

    def to_frame(self) -> pd.DataFrame:
        """The attribution table (entity_id, period, metric_id, driver_id, tier, contribution,
        unit, method, ...)."""
        cols = ["entity_id", "period", "scope", "base", "metric_id", "parent_id", "driver_id"]
        cols += ["lag", "tier", "link", "method", "contribution", "unit"]
        cols += ["driver_actual", "driver_base"]
        return self.attribution[cols]

    def lead_metric(self) -> str:
        """The first tier-1 metric (catalog order): what the charts show unless told."""
        return str(self.tier1["metric_id"].iloc[0])

    def top_level(self, kinds: list[str] | None = None) -> list[str]:
        """Ids of the group and subsidiaries (entities whose name has no department suffix)."""
        ids = self.tier1["entity_id"].unique().tolist()
        return [e for e in ids if kinds is None or e in kinds]

    def waterfall_frame(
        self, entity_id: str, *, metric_id: str | None = None, scope: str = "quarter"
    ) -> pd.DataFrame:
        """Rows of the target-to-actual waterfall of one entity (formula, then identity /
        mapping links), with their running ``start`` and ``end``.

        ``metric_id`` defaults to the first tier-1 metric of the catalog (:meth:`lead_metric`).
        """
        metric_id = metric_id or self.lead_metric()
        a = self.attribution
        part = a[
            (a["entity_id"] == entity_id)
            & (a["scope"] == scope)
            & (a["base"] == "target")
            & (a["metric_id"] == metric_id)
        ]
        total = part[part["method"] == "total"]
        if total.empty:
            return pd.DataFrame(columns=["label", "kind", "start", "end", "value"])
        preferred = part[part["link"] != "total"].groupby("parent_id")["link"].agg(_pick_link)
        chosen = part[
            (part["link"] != "total") & (part["link"] == part["parent_id"].map(preferred))
        ]
        reach = {metric_id}
        keep = []
        for row in chosen.sort_values("depth", kind="stable").itertuples():
            if row.parent_id in reach:
                keep.append(row.Index)
                if row.lag == 0 or row.link == "mapping":
                    reach.add(row.driver_id)
        chosen = chosen.loc[keep]
        expanded = set(chosen["parent_id"])
        leaves = chosen[~((chosen["lag"] == 0) & chosen["driver_id"].isin(expanded))]
        base = float(total["driver_base"].iloc[0])
        lab = [t("kpi.chart.target", self.language)]
        val = [base]
        for row in leaves.itertuples():
            name = self._metric_label(row.driver_id, row.parent_id, row.lag)
            lab.append(name)
            val.append(row.contribution)
        steps = np.array(val[1:])
        ends = base + np.cumsum(steps)
        # each step starts where the one before ended (no step: the chart is target -> actual)
        starts = np.r_[base, ends[:-1]] if len(steps) else np.empty(0)
        actual = float(total["driver_actual"].iloc[0])
        return pd.DataFrame(
            {
                "order": range(len(lab) + 1),
                "label": [*lab, t("kpi.chart.actual", self.language)],
                "kind": ["total", *np.where(steps >= 0, "up", "down"), "total"],
                "start": [0.0, *starts, 0.0],
                "end": [base, *ends, actual],
                "value": [base, *steps, actual],
            }
        )

    def _metric_label(self, driver: str, parent: str, lag: int) -> str:
        if driver.startswith("_"):
            key = "kpi.node.remainder" if driver == "_remainder" else "kpi.node.unexplained"
            return t(key, self.language, parent=self._name(parent))
        name = self._name(driver)
        return t("kpi.node.lagged", self.language, name=name, lag=lag) if lag else name

    def _name(self, metric: str) -> str:
        key = f"kpi.metric.{metric}"
        try:
            return t(key, self.language)
        except Exception:  # noqa: BLE001 - a metric without a label shows its id
            return metric

    def chart(
        self,
        entity_id: str | None = None,
        *,
        metric_id: str | None = None,
        scope: str = "quarter",
    ) -> alt.Chart:
        """Waterfall from target to actual through tier-2 and tier-3 contributions.

        ``metric_id`` defaults to the first tier-1 metric of the catalog (:meth:`lead_metric`).
        """
        entity_id = entity_id or self.tier1["entity_id"].iloc[0]
        metric_id = metric_id or self.lead_metric()
        data = charts.for_chart(self.waterfall_frame(entity_id, metric_id=metric_id, scope=scope))
        title = t(
            "kpi.chart.waterfall",
            self.language,
            entity=self.names.get(entity_id, entity_id),
            metric=self._name(metric_id),
            scope=t(f"kpi.scope.{scope}", self.language),
        )
        return (
            alt.Chart(data, title=title)
            .mark_bar()
            .encode(
                x=alt.X("label:N", sort=alt.SortField("order"), title=None),
                y=alt.Y("start:Q", title=t("kpi.chart.amount", self.language)),
                y2="end:Q",
                color=alt.Color(
                    "kind:N",
                    scale=alt.Scale(
                        domain=["total", "up", "down"], range=["#0b5cad", "#2e7d32", "#c62828"]
                    ),
                    legend=None,
                ),
                tooltip=["label:N", alt.Tooltip("value:Q", format=",.1f")],
            )
            .properties(width=520, height=260)
        )

    def tree_chart(
        self, entity_id: str, *, metric_id: str | None = None, scope: str = "quarter"
    ) -> alt.LayerChart:
        """Driver tree of one entity, nodes coloured by completion status (``metric_id``:
        default the first tier-1 metric, :meth:`lead_metric`)."""
        metric_id = metric_id or self.lead_metric()
        tr = self.tree
        part = tr[(tr["entity_id"] == entity_id) & (tr["scope"] == scope)]
        part = part[part["metric_id"] == metric_id].copy()
        part["name"] = [self._name(m) for m in part["driver_id"]]
        part["status_label"] = [
            t(f"report.value.status.{s}", self.language) if isinstance(s, str) else "—"
            for s in part["status"]
        ]
        data = charts.for_chart(part)
        title = t(
            "kpi.chart.tree",
            self.language,
            entity=self.names.get(entity_id, entity_id),
            metric=self._name(metric_id),
        )
        base = alt.Chart(data, title=title).encode(
            x=alt.X("x:O", title=t("kpi.chart.depth", self.language)),
            y=alt.Y("y:O", axis=None),
        )
        points = base.mark_circle(size=320).encode(
            color=alt.Color(
                "status_label:N",
                scale=charts.status_scale(labelled=True, lang=self.language),
                title=t("report.col.status", self.language),
            ),
            tooltip=["name:N", alt.Tooltip("completion:Q", format=".1%"), "link:N"],
        )
        text = base.mark_text(dx=14, align="left").encode(text="name:N")
        return (points + text).properties(width=560, height=320)

    def tier1_view(self, base: str = "target") -> pd.DataFrame:
        """Tier-1 results as people read them: entity and metric names, labelled windows.

        Amounts are formatted in the metric's unit (万元, percent for ratios); the saved
        tables keep the ids (:attr:`tier1`).
        """
        lang = self.language
        t1 = self.tier1[self.tier1["base"] == base]
        metric = t1["metric_id"]
        unit = metric.map(lambda m: "pct" if self.metric_units.get(m) == "ratio" else "money")

        def fmt(col: str) -> list[str]:
            return [fmt_number(v, u, lang) for v, u in zip(t1[col], unit, strict=True)]

        return pd.DataFrame(
            {
                "entity_name": t1["entity_id"].map(lambda e: self.names.get(e, e)),
                "metric_name": metric.map(lambda m: self.metric_names.get(m) or self._name(m)),
                "scope": t1["scope"].map(lambda s: t(f"kpi.scope.{s}", lang)),
                "base": t(f"kpi.base.{base}", lang),
                "actual": fmt("actual"),
                "target": fmt("target"),
                "change": fmt("change"),
                "completion": t1["completion"],
                "status": t1["status"],
            }
        )

    def view(self) -> pd.DataFrame:
        """The tier-1 results against target as people read them (:meth:`tier1_view`)."""
        return self.tier1_view()

    def _repr_html_(self) -> str:
        t1 = self.tier1[self.tier1["base"] == "target"]
        order = {c: t1[c].to_numpy() for c in ("actual", "target", "change")}  # not the text
        return self._heading() + self._table(self.view(), order=order)


def _pick_link(links: pd.Series) -> str:
    for kind in ("formula", "identity", "mapping"):
        if (links == kind).any():
            return kind
    return str(links.iloc[0])
