"""Result object of :func:`perflink.kpi.decompose` and its charts (not API)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import altair as alt
import numpy as np
import pandas as pd

from perflink import charts, panel
from perflink._report_format import TABLE_MAX_ROWS, fmt_number
from perflink.common import ACTUAL_STATUSES
from perflink.errors import InputError, ParamsError
from perflink.kpi._basis import format_gap
from perflink.kpi._page import TOP_SUBSIDIARIES, PageTable, free_text_header, shown_of
from perflink.labels import column_label, t
from perflink.panel import subsidiary_of
from perflink.results import QuarterResult, note_html
from perflink.units import parse_unit, unit_label

#: Columns of :attr:`DecompositionResult.target_changes` (one row per declared change).
#: ``entity_ids``: the entities of that business line (a tuple), for the page to say where.
CHANGE_COLUMNS = ["business_line", "metric_id", "from_period", "factor", "reason", "entity_ids"]


@dataclass(frozen=True)
class Windowed:
    """What :func:`perflink.kpi.decompose` keeps of a monthly panel that differs from a kept
    one in a few rows (the actuals after adjustments, the targets before environment
    changes): its windows that the result and the scorecard read, computed before the
    monthly copy was let go (190 MB each at 10,000 units, three of them beside the kept
    three). :meth:`KpiPanels.window` reads them; any other window raises.

    Attributes
    ----------
    name : the panel's field, as an error names it (``adjusted``, ``target_original[ytd]``).
    windows : ``(start, end)`` months -> :func:`perflink.panel.window` of the panel.
    """

    name: str
    windows: dict[tuple[pd.Period, pd.Period], pd.DataFrame]

    @classmethod
    def of(cls, frame: pd.DataFrame, name: str, catalog, spans) -> Windowed:
        """The windows ``spans`` (``(start, end)`` month pairs) of the monthly ``frame``."""
        spans = {(pd.Period(s, "M"), pd.Period(e, "M")) for s, e in spans}
        return cls(name, {(s, e): panel.window(frame, catalog, s, e) for s, e in sorted(spans)})


@dataclass(frozen=True)
class KpiPanels:
    """Monthly panels (MultiIndex entity_id x period, one column per metric, all levels).

    Attributes
    ----------
    actual : reported actuals.
    adjusted : actuals plus approved adjustments and the costs they carry (the scorecard's
        "after" view); derived metrics follow through their formulas. ``actual`` itself
        without adjustments; in a :func:`perflink.kpi.decompose` result, a
        :class:`Windowed` (its quarter and year-to-date windows).
    target : per scope (``quarter`` / ``ytd``) the target panel with environment changes.
    target_original : the same without environment changes (``target[scope]`` itself
        without changes; in a :func:`perflink.kpi.decompose` result, a :class:`Windowed`
        of the scope's window). :func:`perflink.kpi.build_panels` gives every panel monthly.
    carried : the costs each adjustment carries along (``entity_id, period, metric_id,
        amount, cost_id, ratio, carried, ratio_from, ratio_to``; empty when none).
    """

    actual: pd.DataFrame
    adjusted: pd.DataFrame | Windowed
    target: dict[str, pd.DataFrame]
    target_original: dict[str, pd.DataFrame | Windowed]
    carried: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False, compare=False)
    _windows: dict = field(default_factory=dict, repr=False, compare=False)

    def window(self, frame: pd.DataFrame | Windowed, catalog, start: pd.Period, end: pd.Period):
        """:func:`perflink.panel.window` of one of these panels, computed once per window.

        The tree (both bases) and the scorecard read the same windows of the same panels;
        panels shared between fields (``adjusted is actual`` without adjustments) share them.

        Raises
        ------
        ParamsError
            ``frame`` is a :class:`Windowed` without this window.
        """
        start, end = pd.Period(start, "M"), pd.Period(end, "M")
        if isinstance(frame, Windowed):
            if (start, end) not in frame.windows:
                kept = ", ".join(f"{s}..{e}" for s, e in frame.windows) or "none"
                raise ParamsError(
                    f"the {frame.name} panel of this decomposition keeps its windows {kept} "
                    f"only, not {start}..{end}; build the monthly panels with "
                    "perflink.kpi.build_panels to read another window."
                )
            return frame.windows[start, end]
        key = (id(frame), start, end)
        if key not in self._windows:
            self._windows[key] = panel.window(frame, catalog, start, end)
        return self._windows[key]


#: Columns whose values are metric ids, shown by the metric's catalog name on a page.
_METRIC_COLUMNS = ("driver_id", "cause_id", "sub_cause_id", "target_id", "moved_id")


def named_view(
    df: pd.DataFrame, *, names: dict[str, str], metric_names: dict[str, str]
) -> pd.DataFrame:
    """A table as a page shows it: names instead of identifiers.

    ``entity_id`` becomes ``entity_name`` (``names``), ``metric_id`` becomes
    ``metric_name`` (``metric_names``, the catalog's names in the report language), in
    place; metric-valued columns (``driver_id``, ``cause_id``, ``sub_cause_id``,
    ``target_id``, ``moved_id``) show the metric's name. Values without a name are kept as they are;
    the saved tables keep the ids.

    Parameters
    ----------
    df : any result table (not modified).
    names : entity id -> display name.
    metric_names : metric id -> display name.

    Returns
    -------
    DataFrame
        A copy with the same rows and column order.

    Raises
    ------
    ParamsError
        If ``df`` is not a DataFrame.
    """
    if not isinstance(df, pd.DataFrame):
        raise ParamsError(f"named_view: expected a pandas DataFrame, got {type(df).__name__}")
    out = df.copy()

    def _name(mapping: dict[str, str]):
        return lambda v: mapping.get(v, v) if isinstance(v, str) else v

    for col, new, mapping in (
        ("entity_id", "entity_name", names),
        ("metric_id", "metric_name", metric_names),
    ):
        if col in out and new not in out:
            out[col] = out[col].map(_name(mapping))
            out = out.rename(columns={col: new})
    for col in _METRIC_COLUMNS:
        if col in out:
            out[col] = out[col].map(_name(metric_names))
    return out


#: What identifies a node of the driver tree (one edge from its parent).
TREE_KEY = ["metric_id", "parent_id", "driver_id", "link", "lag"]


def tree_layout(edges: pd.DataFrame) -> pd.DataFrame:
    """Positions of the driver-tree nodes, drawn as a tree: ``x`` = depth, ``y`` = row.

    Each tier-1 metric's tree is laid out on its own (union of the edges of every entity):
    leaves take consecutive rows in depth-first order (children in ``link`` then driver
    order), a parent sits at the middle of its children's rows, so every node stays in the
    rows of its own parent's branch (a driver of 期间费用 is never drawn in the row of
    营业成本). A node whose parent is not in the tree is placed after the tree as a leaf.

    Parameters
    ----------
    edges : ``metric_id, parent_id, driver_id, link, lag, depth`` (parent_id missing at
        the root, depth 0).

    Returns
    -------
    DataFrame
        ``metric_id, parent_id, driver_id, link, lag, x, y`` (one row per distinct node).
    """
    u = edges.drop_duplicates(TREE_KEY).copy()
    u = u.sort_values(["metric_id", "depth", "parent_id", "link", "driver_id", "lag"])
    u = u.reset_index(drop=True)
    u["x"] = u["depth"].astype(int)
    u["y"] = np.nan
    for _, tree in u.groupby("metric_id", sort=False):
        u.loc[tree.index, "y"] = pd.Series(_tree_rows(tree))
    return u[[*TREE_KEY, "x", "y"]]


def _tree_rows(tree: pd.DataFrame) -> dict[int, float]:
    """Row of each node of one tree (index -> y): leaves in depth-first order, a parent at
    the mean of its children's rows; nodes not reached from the root come after as leaves."""
    kids: dict[tuple[str, int], list[int]] = {}
    for i, parent, depth in zip(tree.index, tree["parent_id"], tree["depth"], strict=True):
        if isinstance(parent, str):
            kids.setdefault((parent, int(depth) - 1), []).append(i)
    ys: dict[int, float] = {}
    leaves = iter(range(len(tree)))

    def place(i: int) -> float:
        ys[i] = np.nan  # seen: a driver reached twice is drawn once
        key = (tree.at[i, "driver_id"], int(tree.at[i, "depth"]))
        mine = [k for k in kids.get(key, []) if k not in ys]
        ys[i] = float(np.mean([place(k) for k in mine])) if mine else float(next(leaves))
        return ys[i]

    for i in [*tree.index[tree["parent_id"].isna()], *tree.index]:
        if i not in ys:
            place(i)
    return ys


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
    tier1 : per entity x scope x base x tier-1 metric: ``actual, target`` (the base value,
        after the declared environment changes), ``target_original`` (the same before them;
        equal to ``target`` when nothing changed it), ``change, completion, status``.
    tree : driver-tree nodes (base target) with completion, status and layout ``x, y``.
    findings : missed tier-1 targets with their traced cause (findings contract).
    elasticities : the mapping elasticities used for statistical links.
    names : entity id -> display name.
    parents : entity id -> parent id (None for the group): the page's short tables show the
        group and its subsidiaries; empty: every entity counts as top level.
    panels : the monthly panels, reused by :func:`perflink.scoring.scorecard`.
    metric_names, metric_units : metric id -> catalog name in the report language / unit
        (every catalog metric: the charts name tier-2 and tier-3 drivers too).
    default_metric : the tier-1 metric the charts show unless told: the catalog's profit
        metric (``role: profit``) when it is tier 1, else None (the first tier-1 metric).
    target_changes : the declared environment changes applied to the targets
        (``business_line, metric_id, from_period, factor, reason``); empty when none.
    summed_metrics, recomputed_metrics : tier-1 derived metrics a parent sums over its units
        (catalog aggregation other than ``formula``) and those it recomputes from its totals
        (``aggregation: formula``: ratios, growth), as :func:`perflink.panel.assemble` rolls
        them up; the page says which is which (:meth:`basis_note`).
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
    default_metric: str | None = field(default=None, compare=False)
    target_changes: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=CHANGE_COLUMNS), repr=False, compare=False
    )
    summed_metrics: tuple[str, ...] = field(default=(), compare=False)
    recomputed_metrics: tuple[str, ...] = field(default=(), compare=False)
    parents: dict[str, str | None] = field(default_factory=dict, repr=False, compare=False)
    #: The entities whose attribution rows are kept after :meth:`release_attribution` (None:
    #: every entity's).
    kept: frozenset[str] | None = field(default=None, repr=False, compare=False)

    _title = "kpi.result.title"
    _table_name = "attribution"
    _findings = "findings"

    def to_frame(self) -> pd.DataFrame:
        """The attribution table (entity_id, period, metric_id, driver_id, tier, contribution,
        unit, method, ...).

        Raises
        ------
        InputError
            After :meth:`release_attribution`: the result keeps part of it.
        """
        self._whole_attribution("to_frame()")
        cols = ["entity_id", "period", "scope", "base", "metric_id", "parent_id", "driver_id"]
        cols += ["lag", "tier", "link", "method", "contribution", "unit"]
        cols += ["driver_actual", "driver_base"]
        return self.attribution[cols]

    def release_panels(self) -> bool:
        """Let go of :attr:`panels` (actual, adjusted and target values per unit-month), which
        only scoring reads (:func:`perflink.scoring.run`); nothing this result shows needs
        them. The KPI notebook calls it once its scores are computed: at 10,000 units the
        panels are 1.0 GB that its kernel kept through the page's charts and saved tables
        while the forecast kernel computed beside it. Scoring this result afterwards raises
        an error that says to run :func:`perflink.kpi.run` again.

        Returns
        -------
        bool
            True when there were panels to let go.
        """
        if self.panels is None:
            return False
        object.__setattr__(self, "panels", None)  # a frozen result: its figures stay as they are
        from perflink.execution import release_memory

        release_memory()
        return True

    def release_attribution(self, keep: Iterable[str]) -> bool:
        """Keep the attribution rows of the entities ``keep`` only: the waterfalls a page
        draws (:meth:`chart`). The KPI notebook calls it in a ``perflink review`` run once it
        has saved the whole table (``tables/attribution.parquet``): at 10,000 units its 2.7
        million rows are 0.5 GB that the kernel kept through the page's charts while the
        forecast kernel drew its paths beside it. Afterwards :meth:`to_frame`, or a
        waterfall of another entity, raises an error that says where the whole table is.

        Returns
        -------
        bool
            True when rows were let go (False when only ``keep``'s were left already).
        """
        keep = frozenset(str(e) for e in keep)
        rows = self.attribution["entity_id"].isin(keep).to_numpy()
        object.__setattr__(self, "kept", keep if self.kept is None else self.kept & keep)
        if rows.all():
            return False
        # a frozen result: the rows kept keep their figures
        object.__setattr__(self, "attribution", self.attribution[rows])
        from perflink.execution import release_memory

        release_memory()
        return True

    def _whole_attribution(self, what: str, entity_id: str | None = None) -> None:
        if self.kept is None or (entity_id is not None and entity_id in self.kept):
            return
        raise InputError(
            f"KPI decomposition: {what} needs attribution rows this result let go "
            f"(release_attribution kept {', '.join(sorted(self.kept)) or 'none'}); the whole "
            "table is in the run's tables/attribution.parquet, or run perflink.kpi.run(review) "
            "again."
        )

    def named(self, table: pd.DataFrame) -> pd.DataFrame:
        """``table`` (e.g. :attr:`findings`, :attr:`elasticities`) with entity and metric
        names instead of ids, for a page (:func:`named_view`)."""
        return named_view(table, names=self.names, metric_names=self.metric_names)

    def lead_metric(self) -> str:
        """What the charts show unless told: the catalog's profit metric when it is tier 1
        (:attr:`default_metric`), else the first tier-1 metric in catalog order."""
        present = self.tier1["metric_id"]
        if self.default_metric is not None and (present == self.default_metric).any():
            return self.default_metric
        return str(present.iloc[0])

    def _tier1_metric(self, metric_id: str | None) -> str:
        """``metric_id`` checked against the tier-1 metrics (default :meth:`lead_metric`)."""
        if metric_id is None:
            return self.lead_metric()
        known = list(dict.fromkeys(self.tier1["metric_id"]))
        if metric_id not in known:
            raise ParamsError(
                f"metric_id {metric_id!r} is not a tier-1 metric of the catalog; the charts "
                f"draw one of {known} (tier: 1 in the catalog's metrics.yaml)"
            )
        return metric_id

    def top_level(self, kinds: list[str] | None = None) -> list[str]:
        """Ids of the group and subsidiaries (entities whose name has no department suffix)."""
        ids = self.tier1["entity_id"].unique().tolist()
        return [e for e in ids if kinds is None or e in kinds]

    def waterfall_frame(
        self, entity_id: str, *, metric_id: str | None = None, scope: str = "quarter"
    ) -> pd.DataFrame:
        """Rows of the target-to-actual waterfall of one entity (formula, then identity /
        mapping links), with their running ``start`` and ``end``.

        ``metric_id`` defaults to the catalog's profit metric, else the first tier-1 metric
        (:meth:`lead_metric`); another id raises :class:`ParamsError`.
        """
        metric_id = self._tier1_metric(metric_id)
        self._whole_attribution(f"the waterfall of {entity_id}", entity_id)
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
        if not lag:
            return name
        key = "kpi.node.lagged_one" if lag == 1 else "kpi.node.lagged"  # "1 month", "2 months"
        return t(key, self.language, name=name, lag=lag)

    def _name(self, metric: str) -> str:
        """The catalog's name of ``metric`` in the report language (its id if unknown)."""
        return self.metric_names.get(metric) or metric

    def _value_axis(self, metric_id: str) -> alt.Axis:
        """Value axis in the metric's own unit: money labelled in its currency (zh titles
        name the currency, the labels say 万/亿 of it; en labels carry it: USD 250k), rates
        as percent, other units named in the title."""
        unit = self.metric_units.get(metric_id)
        name = self._name(metric_id)
        if unit and parse_unit(unit).is_money:
            money = parse_unit(unit)
            title = name
            if self.language == "zh":
                words = unit_label(str(money.currency), self.language)
                title = t("kpi.chart.axis", self.language, metric=name, unit=words)
            return charts.fmt_axis_money(unit, self.language, title=title)
        words = unit_label(unit, self.language) if unit else ""
        title = t("kpi.chart.axis", self.language, metric=name, unit=words) if words else name
        if unit and parse_unit(unit).is_rate:
            return alt.Axis(format="%", title=title)
        # plain digits with separators (12,000; 1,500,000), never the exponent form 1e+6
        return alt.Axis(format=",.4~r", title=title)

    def _fmt(self, value: float, metric_id: str) -> str:
        return fmt_number(value, self.metric_units.get(metric_id), self.language)

    def _adjusted_note(self, entity_id: str, metric_id: str, scope: str) -> str | None:
        """Subtitle of a chart whose target was adjusted: the original target and why."""
        t1 = self.tier1
        row = t1[
            (t1["entity_id"] == entity_id)
            & (t1["scope"] == scope)
            & (t1["base"] == "target")
            & (t1["metric_id"] == metric_id)
        ]
        if row.empty or "target_original" not in row or not _changed(row).any():
            return None
        return t(
            "kpi.chart.adjusted",
            self.language,
            original=self._fmt(float(row["target_original"].iloc[0]), metric_id),
            reason=self._reasons(),
        )

    def _reasons(self) -> str:
        sep = t("kpi.changes.sep", self.language)
        reasons = [str(r) for r in self.target_changes["reason"] if isinstance(r, str) and r]
        return sep.join(dict.fromkeys(reasons)) or t("kpi.changes.no_reason", self.language)

    def changes_note(self) -> str:
        """HTML note naming the declared environment changes behind adjusted targets, or
        ``""`` when none were declared (then nothing is said)."""
        if self.target_changes.empty:
            return ""
        lang = self.language
        items = [
            t(
                "kpi.changes.item",
                lang,
                line=r.business_line,
                where=self._where(r.entity_ids),
                metric=self._name(r.metric_id),
                start=r.from_period,
                factor=f"{r.factor:g}",
                reason=r.reason or t("kpi.changes.no_reason", lang),
            )
            for r in self.target_changes.itertuples()
        ]
        return note_html("kpi.changes.note", lang, changes=t("kpi.changes.sep", lang).join(items))

    def _where(self, entity_ids) -> str:
        """The units of a business line in words: "the 14 units of A and B" (at most three
        subsidiaries named, then how many more), for a reader who does not know the line's
        code."""
        lang = self.language
        sub_of = subsidiary_of(self.parents)
        ids = [e for e in (entity_ids or ()) if e in sub_of]
        units = [e for e in ids if sub_of[e] != e]
        subs = list(dict.fromkeys(sub_of[e] for e in ids))
        if not subs:
            return t("kpi.changes.where_none", lang)
        shown = [self.names.get(s, s) for s in subs[:3]]
        if len(subs) > 3:
            named = t("kpi.changes.comma", lang).join(shown)
            named = t("kpi.changes.more", lang, names=named, total=len(subs), more=len(subs) - 3)
        else:
            head = t("kpi.changes.comma", lang).join(shown[:-1])
            named = t("kpi.changes.and", lang).join([head, shown[-1]] if head else shown)
        return t("kpi.changes.where", lang, subsidiaries=named, n=len(units) or len(ids))

    def chart(
        self,
        entity_id: str | None = None,
        *,
        metric_id: str | None = None,
        scope: str = "quarter",
    ) -> alt.Chart:
        """Waterfall from target to actual through tier-2 and tier-3 contributions.

        ``metric_id`` defaults to the catalog's profit metric, else the first tier-1 metric
        (:meth:`lead_metric`). Amounts are on an axis in the metric's own unit; a target
        adjusted for declared environment changes says so in the subtitle, with the
        original target and the reason.
        """
        entity_id = entity_id or self.tier1["entity_id"].iloc[0]
        metric_id = self._tier1_metric(metric_id)
        frame = self.waterfall_frame(entity_id, metric_id=metric_id, scope=scope)
        # the tooltip says each step in the metric's unit, as the tables do (279.0 万元)
        frame["value_text"] = [self._fmt(v, metric_id) for v in frame["value"]]
        data = charts.for_chart(frame)
        text = t(
            "kpi.chart.waterfall",
            self.language,
            entity=self.names.get(entity_id, entity_id),
            metric=self._name(metric_id),
            scope=t(f"kpi.scope.{scope}", self.language),
        )
        note = self._adjusted_note(entity_id, metric_id, scope)
        title = alt.Title(text, subtitle=note) if note else text
        steps = max(len(frame), 1)
        return (
            alt.Chart(data, title=title)
            .mark_bar()
            .encode(
                # names across, over two lines, never rotated or cut (full name in the tooltip)
                x=alt.X(
                    "label:N",
                    sort=alt.SortField("order"),
                    title=None,
                    axis=charts.wrap_axis(
                        6 if self.language == "zh" else 14, labelAngle=0, labelFontSize=11
                    ),
                ),
                y=alt.Y("start:Q", axis=self._value_axis(metric_id)),
                y2="end:Q",
                color=alt.Color(
                    "kind:N",
                    scale=alt.Scale(
                        domain=["total", "up", "down"], range=["#0b5cad", "#2e7d32", "#c62828"]
                    ),
                    legend=None,
                ),
                tooltip=[
                    alt.Tooltip("label:N", title=t("kpi.chart.step", self.language)),
                    alt.Tooltip("value_text:N", title=t("kpi.chart.amount", self.language)),
                ],
            )
            .properties(width=max(520, (84 if self.language == "zh" else 96) * steps), height=260)
        )

    def tree_chart(
        self, entity_id: str, *, metric_id: str | None = None, scope: str = "quarter"
    ) -> alt.LayerChart:
        """Driver tree of one entity drawn as a tree: the tier-1 metric on the left, each
        driver joined to the metric it drives by an edge, columns headed by tier, nodes
        coloured by completion status (``metric_id``: default the catalog's profit metric,
        else the first tier-1 metric, :meth:`lead_metric`; another id raises
        :class:`ParamsError`). Long names are shortened on the chart; the tooltip has the
        full name, completion and the kind of link."""
        metric_id = self._tier1_metric(metric_id)
        lang = self.language
        tr = self.tree
        part = tr[(tr["entity_id"] == entity_id) & (tr["scope"] == scope)]
        part = part[part["metric_id"] == metric_id].copy()
        lags = part["lag"] if "lag" in part else pd.Series(0, index=part.index)
        part["name"] = [
            self._metric_label(m, "", int(g)) for m, g in zip(part["driver_id"], lags, strict=True)
        ]
        part["label"] = charts.short_label(part["name"], 22)
        part["status_label"] = [
            t(f"report.value.status.{s}", lang) if isinstance(s, str) else "—"
            for s in part["status"]
        ]
        part["link_label"] = [t(f"kpi.link.{k}", lang) for k in part["link"]]
        pos = {
            (d, int(x)): float(y)
            for d, x, y in zip(part["driver_id"], part["x"], part["y"], strict=True)
        }
        # elbow edges (out of the parent sideways, down the middle, into the child sideways):
        # they never cross the names written above the nodes
        segments = []
        for r in part.itertuples():
            key = (r.parent_id, int(r.x) - 1)
            if not isinstance(r.parent_id, str) or key not in pos:
                continue
            mid = int(r.x) - 0.5
            segments += [
                (key[1], pos[key], mid, pos[key]),
                (mid, pos[key], mid, float(r.y)),
                (mid, float(r.y), int(r.x), float(r.y)),
            ]
        edges = pd.DataFrame(segments, columns=["x", "y", "x2", "y2"])
        tier_words = [t(f"kpi.chart.tier{k}", lang) for k in (1, 2, 3)]
        part["tier_label"] = [tier_words[min(max(int(k), 1), 3) - 1] for k in part["tier"]]
        nodes = charts.for_chart(
            part[
                ["x", "y", "name", "label", "status_label", "completion", "link_label"]
                + ["tier_label"]
            ]
        )
        nodes["completion"] = (
            nodes["completion"]
            .astype(float)
            .where(np.isfinite(nodes["completion"].astype(float)), None)
        )
        text = t(
            "kpi.chart.tree",
            lang,
            entity=self.names.get(entity_id, entity_id),
            metric=self._name(metric_id),
        )
        note = self._adjusted_note(entity_id, metric_id, scope)
        title = alt.Title(text, subtitle=note) if note else text
        depth = int(part["x"].max()) if len(part) else 0
        rows = int(np.ceil(part["y"].max())) + 1 if len(part) else 1
        # columns are depths of the tree; a node's tier (a tier-2 driver can sit below another
        # tier-2 driver) is its shape, named in the legend
        x = alt.X(
            "x:Q", scale=alt.Scale(domain=[-0.5, depth + 0.5], nice=False, zero=False), axis=None
        )
        y = alt.Y("y:Q", scale=alt.Scale(domain=[-0.9, rows - 0.4], reverse=True), axis=None)
        lines = (
            alt.Chart(edges)
            .mark_rule(color="#9aa5b1", strokeWidth=1.5)
            .encode(x=x, y=y, x2="x2:Q", y2="y2:Q")
        )
        base = alt.Chart(nodes).encode(x=x, y=y)
        tooltip = [
            alt.Tooltip("name:N", title=t("report.col.metric_name", lang)),
            alt.Tooltip("completion:Q", format=".1%", title=column_label("completion", lang)),
            alt.Tooltip("status_label:N", title=column_label("status", lang)),
            alt.Tooltip("tier_label:N", title=t("kpi.chart.tier", lang)),
            alt.Tooltip("link_label:N", title=t("kpi.chart.link", lang)),
        ]
        points = base.mark_point(filled=True, size=240, opacity=1).encode(
            color=alt.Color(
                "status_label:N",
                scale=status_word_scale(lang),
                title=column_label("status", lang),
            ),
            shape=alt.Shape(
                "tier_label:N",
                scale=alt.Scale(domain=tier_words, range=["circle", "square", "diamond"]),
                title=t("kpi.chart.tier", lang),
            ),
            tooltip=tooltip,
        )
        # names above their node: an edge leaves a node sideways and never crosses a name
        labels = base.mark_text(dy=-15, align="center", baseline="bottom").encode(
            text="label:N", tooltip=tooltip
        )
        return alt.layer(lines, points, labels, title=title).properties(
            width=160 * (depth + 1), height=max(120, 52 * rows)
        )

    def tier1_view(
        self, base: str = "target", *, scope: str | None = None, top_level: bool = False
    ) -> pd.DataFrame:
        """Tier-1 results as people read them: entity and metric names, labelled windows.

        Amounts are formatted in the metric's own catalog unit (its currency and scale,
        percent for rates); ``completion`` only where a ratio means something and ``change``
        (actual - base, signed; percentage points for rates) always (:mod:`perflink.kpi._basis`);
        the saved tables keep the ids (:attr:`tier1`). With declared
        environment changes, ``target_original`` and ``target_reason`` stand beside the
        target (filled on the rows whose target they changed); without, neither is shown.
        ``scope`` keeps one window (``quarter`` / ``ytd``); ``top_level`` keeps the group and
        its subsidiaries (:meth:`level`).
        """
        lang = self.language
        t1 = self.tier1[self.tier1["base"] == base]
        if scope is not None:
            t1 = t1[t1["scope"] == scope]
        if top_level:  # the group first, then its subsidiaries, metric by metric
            t1 = t1[t1["entity_id"].isin(self.headline_entities(scope=scope or "quarter"))]
            level = t1["entity_id"].map(self.level)
            order = {m: i for i, m in enumerate(dict.fromkeys(t1["metric_id"]))}
            t1 = t1.assign(_m=t1["metric_id"].map(order), _g=(level[level != "unit"] != "group"))
            t1 = t1.sort_values(["_m", "_g"], kind="stable").drop(columns=["_m", "_g"])
        metric = t1["metric_id"]

        def fmt(col: str) -> list[str]:
            return [self._fmt(v, m) for v, m in zip(t1[col], metric, strict=True)]

        out = pd.DataFrame(
            {
                "entity_name": t1["entity_id"].map(lambda e: self.names.get(e, e)),
                "metric_name": metric.map(self._name),
                "scope": t1["scope"].map(lambda s: t(f"kpi.scope.{s}", lang)),
                "base": t(f"kpi.base.{base}", lang),
                "actual": fmt("actual"),
                "target": fmt("target"),
                # actual - base, signed: percentage points for rates (never a percent of a rate)
                "change": [
                    format_gap(v, self.metric_units.get(m), lang)
                    for v, m in zip(t1["change"], metric, strict=True)
                ],
                "completion": t1["completion"],
                "status": t1["status"],
            }
        )
        if not self.target_changes.empty and "target_original" in t1:
            changed = _changed(t1).to_numpy()
            original = fmt("target_original")
            out.insert(6, "target_original", np.where(changed, original, ""))
            out.insert(7, "target_reason", np.where(changed, self._reasons(), ""))
        return out

    def view(self) -> pd.DataFrame:
        """The tier-1 results against target as people read them (:meth:`tier1_view`)."""
        return self.tier1_view()

    def basis_note(self) -> str:
        """HTML notes under the tier-1 table: how actual meets target (completion only where
        a ratio means something, rates in points, the status words) and how parents roll up
        (which tier-1 metrics are sums of their units, which are recomputed from totals)."""
        html = self._note("kpi.note.basis")
        sep = t("kpi.changes.sep", self.language)
        names = {
            k: sep.join(self._name(m) for m in v)
            for k, v in (("summed", self.summed_metrics), ("recomputed", self.recomputed_metrics))
        }
        if names["summed"]:
            html += self._note("kpi.note.summed", metrics=names["summed"])
        if names["recomputed"]:
            html += self._note("kpi.note.recomputed", metrics=names["recomputed"])
        return html

    def elasticities_view(self) -> pd.DataFrame:
        """The elasticities table as the page shows it: names instead of ids, the estimate
        under the name the mapping page gives the same figure (``elasticity_quarter``: year
        over year, 3-month totals, pooled over units, slope through the origin)."""
        return self.named(self.elasticities.rename(columns={"elasticity": "elasticity_quarter"}))

    def elasticities_table(self) -> PageTable:
        """The elasticities as the page shows them: driver, explained metric, lag, elasticity,
        fit (R², a glossary term) and the number of observations, headed in words (the
        mapping's id and the estimate's source stay in the saved tables)."""
        lang = self.language
        view = self.elasticities_view().drop(columns=["mapping_id", "source"], errors="ignore")
        headers = {c: t(f"kpi.col.{c}", lang) for c in ("r2", "n_obs") if c in view}
        return PageTable(view, language=lang, headers=headers)

    def level(self, entity_id: str) -> str:
        """``group`` (no parent), ``subsidiary`` (its parent is the group) or ``unit``; every
        entity is ``group`` when :attr:`parents` is empty."""
        if not self.parents:
            return "group"
        parent = self.parents.get(entity_id)
        if parent is None:
            return "group"
        return "subsidiary" if self.parents.get(parent) is None else "unit"

    def headline_entities(self, *, scope: str = "quarter", top: int | None = None) -> list:
        """The entities of the page's short tier-1 table: the group and its subsidiaries, at
        most ``top`` (default :data:`TOP_SUBSIDIARIES`) subsidiaries (those furthest below target on :meth:`lead_metric`,
        relative to the target's size) when there are more, so the page does not grow with
        the group."""
        top = TOP_SUBSIDIARIES if top is None else top
        t1 = self.tier1[(self.tier1["base"] == "target") & (self.tier1["scope"] == scope)]
        ids = list(dict.fromkeys(t1["entity_id"]))
        groups = [e for e in ids if self.level(e) == "group"]
        subs = [e for e in ids if self.level(e) == "subsidiary"]
        if len(subs) > top:
            lead = t1[t1["metric_id"] == self.lead_metric()].set_index("entity_id")
            target = lead["target"].astype(float).abs().replace(0.0, np.nan)
            rel = (lead["change"].astype(float) / target).reindex(subs).fillna(0.0)
            subs = list(rel.sort_values(kind="stable").index[:top])
        return groups + subs

    def _subsidiaries(self) -> int:
        return sum(self.level(e) == "subsidiary" for e in dict.fromkeys(self.tier1["entity_id"]))

    def detail(self) -> PageTable:
        """Every entity's tier-1 rows (quarter and year to date) against target: the page's
        appendix table (:meth:`tier1_view`)."""
        return PageTable(
            self.tier1_view(),
            language=self.language,
            headers=self._reason_header(),
            interactive=True,
        )

    def _reason_header(self) -> dict[str, str]:
        """The reason for a changed target is the params' own text, shown as entered."""
        return {
            "target_reason": free_text_header(
                column_label("target_reason", self.language), self.language
            )
        }

    def findings_view(self, *, top: int | None = None) -> PageTable:
        """Missed tier-1 targets as the page shows them: unit, metric, window, actual, target,
        the gap, the financial driver that pulled most and its business cause.

        With ``top``, the ``top`` most important: the group and subsidiaries first, then the
        largest shortfall relative to the target; a note says how many there are in all.
        """
        lang = self.language
        f = self.findings
        if len(f):
            rel = f["gap"].astype(float) / f["expected"].astype(float).abs().replace(0.0, np.nan)
            rank = {"group": 0, "subsidiary": 1, "unit": 2}
            f = f.assign(
                _level=f["entity_id"].map(self.level).map(rank),
                _scope=(f["scope"] != "quarter").astype(int),
                _rel=rel.fillna(0.0),
            ).sort_values(["_level", "_scope", "_rel"], kind="stable")
        total = len(f)
        if top is not None:
            f = f.head(top)
        metric = f["metric_id"]
        out = pd.DataFrame(
            {
                "entity_name": f["entity_id"].map(lambda e: self.names.get(e, e)),
                "metric_name": metric.map(self._name),
                "scope": f["scope"].map(lambda s: t(f"kpi.scope.{s}", lang)),
                "actual": [self._fmt(v, m) for v, m in zip(f["value"], metric, strict=True)],
                "target": [self._fmt(v, m) for v, m in zip(f["expected"], metric, strict=True)],
                "change": [
                    format_gap(v, self.metric_units.get(m), lang)
                    for v, m in zip(f["gap"], metric, strict=True)
                ],
                "driver_id": f["driver_id"].map(self._maybe_name),
                "cause_id": f["cause_id"].map(self._maybe_name),
            }
        )
        notes = shown_of(len(out), total, lang) if top is not None else ""
        if top is None:
            out["message"] = f["message"].to_numpy()
        return PageTable(
            out.reset_index(drop=True),
            language=lang,
            notes=notes,
            max_rows=top or TABLE_MAX_ROWS,
            interactive=None if top else True,
        )

    def _maybe_name(self, metric: object) -> str:
        return self._name(metric) if isinstance(metric, str) and metric else "—"

    def _repr_html_(self) -> str:
        """Heading, notes and the group's and subsidiaries' quarter (all rows:
        :meth:`detail`)."""
        lang = self.language
        view = self.tier1_view(scope="quarter", top_level=True)
        html = self._heading("kpi.result.headline") + self.changes_note() + self.basis_note()
        subs = self._subsidiaries()
        if subs > TOP_SUBSIDIARIES:
            html += self._note("kpi.page.top_subs", shown=TOP_SUBSIDIARIES, total=f"{subs:,}")
        # the reason for a changed target is in the note above: the table keeps the figures
        table = PageTable(
            view.drop(columns=["scope", "base", "target_reason"], errors="ignore"),
            language=lang,
            headers=self._reason_header(),
        )
        return html + table._repr_html_()


def status_word_scale(lang: str) -> alt.Scale:
    """Colours of met / narrowly missed / missed by their labels in ``lang``
    (:data:`perflink.charts.STATUS_WORD_COLORS`), for charts whose data holds the labels."""
    codes = ACTUAL_STATUSES
    return alt.Scale(
        domain=[t(f"report.value.status.{c}", lang) for c in codes],
        range=[charts.STATUS_WORD_COLORS[c] for c in codes],
    )


def _changed(t1: pd.DataFrame) -> pd.Series:
    """Rows whose target the environment changes moved (beyond float noise)."""
    a, b = t1["target"].astype(float), t1["target_original"].astype(float)
    same = np.isclose(a, b, rtol=1e-9, atol=1e-9, equal_nan=True)
    return pd.Series(~same, index=t1.index)


def _pick_link(links: pd.Series) -> str:
    for kind in ("formula", "identity", "mapping"):
        if (links == kind).any():
            return kind
    return str(links.iloc[0])
