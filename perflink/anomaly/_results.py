"""Result objects of the panel anomaly detection: tables and charts (not API).

Charts only present what the result holds; labels come from ``perflink/data/labels/anomaly.yaml``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import altair as alt
import pandas as pd

from perflink import charts, labels
from perflink._report_format import TABLE_MAX_ROWS, fmt_number
from perflink.common import severities_from
from perflink.errors import ParamsError
from perflink.results import TableResult, TaskResult
from perflink.units import parse_unit, unit_label

#: Columns of the ``anomalies`` findings table, in order.
TABLE_COLUMNS = [
    "rank",
    "entity_id",
    "entity",
    "period",
    "metric_id",
    "metric",
    "kind",
    "severity",
    "value",
    "expected",
    "lower",
    "upper",
    "score",
    "at_stake",
    "effect",
    "favourable",
    "feature",
    "also",
    "explanation",
    "explained_by",
    "source_refs",
    "source_system",
    "parent_id",
    "message",
]
_SHOW = ["rank", "entity", "period", "metric", "kind", "severity", "value", "expected"]
# Large groups: the counts chart shows the subsidiaries with the most findings (the counts
# table lists them all).
_TOP_SUBSIDIARIES = 20
# Peer comparison: above this many peers per series, peers are drawn as a box, not ticks.
_PEER_TICKS = 40
# Widest series name on the peer chart's axis (Latin-letter widths; a Chinese character is 2).
_PEER_LABEL_WIDTH = 58


def counts_table(table: pd.DataFrame, entities: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Findings per subsidiary and source system: ``n``, ``n_high`` (high + critical), ``n_explained``."""
    cols = ["parent_id", "subsidiary", "source_system", "n", "n_high", "n_explained"]
    if table.empty:
        return pd.DataFrame(columns=cols)
    df = table.assign(
        high=table["severity"].isin(severities_from("high")), expl=table["explained_by"] != ""
    )
    out = (
        df.groupby(["parent_id", "source_system"], sort=True)
        .agg(n=("rank", "size"), n_high=("high", "sum"), n_explained=("expl", "sum"))
        .reset_index()
    )
    names = dict(zip(entities["entity_id"], entities[f"name_{lang}"], strict=True))
    out["subsidiary"] = out["parent_id"].map(lambda p: names.get(p, p))
    return out[cols]


@dataclass(frozen=True)
class AnomalyCounts(TableResult):
    """Counts of the quarter's findings by subsidiary and source system.

    Attributes
    ----------
    table : pandas.DataFrame
        ``parent_id`` (subsidiary id), ``subsidiary`` (name), ``source_system``, ``n``
        (findings), ``n_high`` (high or critical), ``n_explained`` (marked explained).
    language : str
        ``"zh"`` or ``"en"``.
    """

    _empty = "anomaly.text.none"
    _table_name = "anomaly_counts"

    def view(self) -> pd.DataFrame:
        """Counts per subsidiary name (without its id)."""
        return self.table.drop(columns="parent_id")

    def chart(self) -> alt.Chart:
        """Stacked bars: findings per subsidiary, coloured by source system.

        In a group with more than ``_TOP_SUBSIDIARIES`` subsidiaries with findings, those
        with the most findings; the subtitle says so.
        """
        lang = self.language
        if self.table.empty:
            return self._empty_chart()
        data, title = self.table, labels.t("anomaly.chart.counts", lang)
        per_sub = data.groupby("parent_id", sort=False)["n"].sum()
        if len(per_sub) > _TOP_SUBSIDIARIES:  # a large group: the subsidiaries with most
            keep = per_sub.sort_values(ascending=False, kind="stable").head(_TOP_SUBSIDIARIES)
            data = data[data["parent_id"].isin(keep.index)]
            title = charts.ranked_title(
                title,
                shown=len(keep),
                total=len(per_sub),
                by=labels.t("anomaly.chart.count", lang),
                lang=lang,
            )
        return (
            alt.Chart(charts.for_chart(data))
            .mark_bar()
            .encode(
                x=alt.X(
                    "n:Q",
                    title=labels.t("anomaly.chart.count", lang),
                    axis=alt.Axis(format="d", tickMinStep=1),  # counts: no 0.5 ticks
                ),
                y=alt.Y("subsidiary:N", sort="-x", title=None),
                color=alt.Color(
                    "source_system:N", title=labels.column_label("source_system", lang)
                ),
                tooltip=["subsidiary:N", "source_system:N", "n:Q", "n_high:Q"],
            )
            .properties(title=title, height=alt.Step(22))
        )


@dataclass(frozen=True)
class PeerComparison(TableResult):
    """Year-on-year change of the top flagged series next to their peers' (same month).

    Attributes
    ----------
    table : pandas.DataFrame
        ``label`` (entity · metric · month), ``entity_id`` (the flagged unit), ``peer_id``,
        ``change`` (year-on-year change: fraction, or points for rates), ``is_self``.
    language : str
        ``"zh"`` or ``"en"``.
    note : str
        Why the peer detector compared nothing (no peer group of ``min_peers`` units, or the
        detector is off) or why some top series are not drawn (their group is smaller), in
        ``language``; shown above the table, and instead of an empty chart. "" when every
        top series could be compared.
    """

    note: str = ""

    _empty = "anomaly.text.no_peers"
    _units = {"self_change": "pct", "peer_median": "pct"}

    def _empty_chart(self) -> alt.Chart:
        return charts.message(self.note) if self.note else super()._empty_chart()

    def _repr_html_(self) -> str:
        note = f'<p class="pl-note">{html.escape(self.note)}</p>' if self.note else ""
        if self.table.empty and self.note:
            return note
        return note + super()._repr_html_()

    def chart(self) -> alt.Chart:
        """One row per flagged series: peers as grey ticks, the flagged unit in red.

        When a series has more than ``_PEER_TICKS`` peers (a large group), its peers are
        drawn as a box (quartiles, whiskers to min and max) instead of one tick each.
        """
        lang = self.language
        if self.table.empty:
            return self._empty_chart()
        df = charts.for_chart(self.table)
        self_label, peers_label = (
            labels.t("anomaly.chart.self", lang),
            labels.t("anomaly.chart.peers", lang),
        )
        df["who"] = df["is_self"].map({True: self_label, False: peers_label})
        # long "unit · metric · month" names shortened on the axis, in full in the tooltip
        df["short"] = charts.short_label(df["label"], _PEER_LABEL_WIDTH)
        axis, x_title = alt.Axis(format="+.0%"), labels.t("anomaly.chart.yoy", lang)
        x = alt.X("change:Q", axis=axis, title=x_title)
        y = alt.Y("short:N", title=None, sort=None, axis=alt.Axis(labelLimit=0))
        color = alt.Color(
            "who:N",
            scale=alt.Scale(domain=[peers_label, self_label], range=["#9aa5b1", "#c62828"]),
            title=None,
        )
        tooltip = [
            alt.Tooltip("label:N", title=labels.t("anomaly.chart.series", lang)),
            alt.Tooltip("who:N", title=None),
            alt.Tooltip("change:Q", title=labels.t("anomaly.chart.yoy", lang), format="+.1%"),
        ]
        props = {"title": labels.t("anomaly.chart.peer", lang), "height": alt.Step(28)}
        peers = df[~df["is_self"]]
        if peers.empty or peers.groupby("label").size().max() <= _PEER_TICKS:
            ticks = alt.Chart(df).mark_tick(thickness=3, size=18)
            return ticks.encode(x=x, y=y, color=color, tooltip=tooltip).properties(**props)
        # the box's five figures per series, computed here: one row per series reaches the
        # page, however many peers a series has (a raw boxplot sends every peer's row, and a
        # group of thousands of units passes altair's 5,000-row limit)
        stats = (
            peers.groupby("short", sort=False)["change"]
            .quantile([0.0, 0.25, 0.5, 0.75, 1.0])
            .unstack()
            .set_axis(["lo", "q1", "mid", "q3", "hi"], axis=1)
            .reset_index()
            .assign(who=peers_label)
        )
        box_tip = [
            alt.Tooltip("short:N", title=labels.t("anomaly.chart.series", lang)),
            alt.Tooltip("who:N", title=None),
            *(
                alt.Tooltip(f"{col}:Q", title=labels.t(f"anomaly.chart.{col}", lang), format="+.1%")
                for col in ("lo", "q1", "mid", "q3", "hi")
            ),
        ]
        base = alt.Chart(stats).encode(y=y, color=color, tooltip=box_tip)

        def at(field: str) -> alt.X:  # one shared axis: same title and format in every layer
            return alt.X(f"{field}:Q", axis=axis, title=x_title)

        whisker = base.mark_rule().encode(x=at("lo"), x2="hi:Q")
        box = base.mark_bar(size=14, opacity=0.7).encode(x=at("q1"), x2="q3:Q")
        median = base.mark_tick(size=14, color="white").encode(x=at("mid"))
        mark = alt.Chart(df[df["is_self"]]).mark_tick(thickness=3, size=18)
        return alt.layer(
            whisker, box, median, mark.encode(x=x, y=y, color=color, tooltip=tooltip)
        ).properties(**props)

    def view(self) -> pd.DataFrame:
        """Per flagged series: its change, the peers' median change and the number of peers."""
        if self.table.empty:
            return self.table
        df = self.table[self.table["is_self"]].rename(columns={"change": "self_change"})
        med = self.table[~self.table["is_self"]].groupby("label", sort=False)["change"]
        df = df.assign(
            peer_median=df["label"].map(med.median()), n_peers=df["label"].map(med.size())
        )
        return df[["label", "self_change", "peer_median", "n_peers"]]


@dataclass(frozen=True)
class AnomalyResult(TaskResult):
    """Anomalies of the review quarter, ranked, with explanations and context.

    Attributes
    ----------
    table : pandas.DataFrame
        The ``anomalies`` findings table, one row per entity, metric and month of the
        quarter (columns :data:`TABLE_COLUMNS`): ``rank``; ``entity_id``, ``entity`` (name),
        ``period`` (Period[M]), ``metric_id``, ``metric`` (name); ``kind`` (spike,
        level_shift, trend_break, multivariate, peer, linkage); ``severity``; ``value``,
        ``expected``, ``lower``, ``upper`` (the metric's unit; a multivariate finding is filed
        under the input of its top ``feature`` that moved most, see
        :func:`perflink.anomaly.features_of`); ``score`` (robust z, normal-equivalent for
        multivariate); ``effect`` (the move's signed effect in money, in ``money_unit``: a money
        metric's deviation, a ratio feature's change times its denominator, a non-money
        driver's mapped effect on its finance metric = elasticity x relative deviation x the
        finance figure; NaN when it cannot be priced); ``favourable`` (the metric moved to the
        good side of its catalog direction; never for linkage); ``at_stake`` (money at risk,
        ``|effect|`` where both the metric and the money moved to their bad side, 0 where
        either is favourable, NaN unpriced; a linkage mismatch either way); ``also`` (other
        detectors that flagged the same number); ``explanation`` = ``message``;
        ``explained_by`` (approved adjustment, "" if none); ``source_refs`` (``;``-joined);
        ``source_system``; ``parent_id`` (subsidiary).
    timelines : pandas.DataFrame
        For the top flagged series: ``entity_id, metric_id, label, period, value, expected,
        lower, upper`` over the last 24 months.
    peers : PeerComparison
        The top flagged series against their peers.
    counts : AnomalyCounts
        Findings by subsidiary and source system.
    formatted : pandas.DataFrame
        ``value``, ``expected`` and ``range`` of each ``table`` row as text with units, in
        the report language (for display).
    stats : dict
        ``quarter``, ``points`` (entity-metric-months scored in the quarter), ``flags``,
        ``per_100`` (flags per 100 points), ``high`` (high + critical), ``explained``,
        ``flag_rate``; ``money_high`` and ``money_low``: the severity's money thresholds as
        text in ``money_unit`` (for the page's summary sentence).
    language : str
        ``"zh"`` or ``"en"``.
    notes : tuple of str
        Sentences in ``language`` shown above the ranked list: what the multivariate detector
        compared (the catalog's features by name) or why it could not run.
    money_unit : str or None
        The catalog unit of ``at_stake`` (:attr:`perflink.catalog.Catalog.money_unit`).
    elasticities : pandas.DataFrame or None
        ``mapping_id, driver, target, lag, elasticity`` of every catalog mapping: the
        elasticities a non-money driver's money at stake is priced with (NaN: not estimated,
        the driver's findings are not priced); see the notes for how they are estimated.
    units : Mapping[str, str]
        metric_id -> catalog unit of the metrics in ``timelines`` (each timeline's axis is
        in its metric's unit, as the table).
    limit : int or None
        None: the page shows the ranked list with explanations and notes. A number: the
        reading layer (:meth:`highlights`), the first ``limit`` rows without them.
    """

    table: pd.DataFrame
    timelines: pd.DataFrame
    peers: PeerComparison
    counts: AnomalyCounts
    formatted: pd.DataFrame
    stats: dict
    language: str
    notes: tuple[str, ...] = ()
    money_unit: str | None = None
    elasticities: pd.DataFrame | None = None
    units: Mapping[str, str] = field(default_factory=dict)
    limit: int | None = None

    _empty = "anomaly.text.none"
    _table_name = "anomalies"
    _findings = "table"

    def tables(self) -> dict[str, pd.DataFrame]:
        """``anomalies`` and ``anomaly_counts``."""
        return {"anomalies": self.to_frame(), **self.counts.tables()}

    def top(self, n: int = 10) -> pd.DataFrame:
        """The first ``n`` rows of the ranked list."""
        return self.table.head(n).copy()

    def highlights(self, n: int = 10) -> AnomalyResult:
        """What a leader reads: the first ``n`` rows of the ranked list, without the long
        explanations and method notes (those are the page's appendix, :meth:`view`).

        Raises
        ------
        ParamsError
            If ``n`` is not a whole number of at least 1.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ParamsError(f"anomaly highlights: n must be a whole number >= 1, got {n!r}.")
        return replace(self, limit=n)

    def _axis(self, metric: str) -> alt.Axis:
        """The y axis of one timeline in its metric's unit: rates in %, money in the
        currency's words (as the table), other units named in the title."""
        unit = self.units.get(metric)
        if not unit:
            return alt.Axis(format=",.4~r", title=None)
        u = parse_unit(unit)
        if u.is_rate:
            return alt.Axis(format=".1~%", title=None)
        if u.is_money:
            title = unit_label(str(u.currency), self.language) if self.language == "zh" else None
            return charts.fmt_axis_money(unit, self.language, title=title or "")
        return alt.Axis(format=",.4~r", title=unit_label(u, self.language) or None)

    def chart(self) -> alt.TopLevelMixin:
        """Timelines of the top flagged series: actual, expected band, flagged months.

        One panel per series, three a row, each with its own axes in its metric's unit (a
        yield in %, money in the catalog currency): a grid of separate panels rather than a
        facet, so the axes differ and no empty cell gets an axis.
        """
        lang = self.language
        if self.timelines.empty:
            return self._empty_chart()
        df = self.timelines.copy()
        df["month"] = df["period"].dt.to_timestamp()
        flagged = self.table[["entity_id", "metric_id", "period"]].assign(flag=True)
        df = df.merge(flagged, on=["entity_id", "metric_id", "period"], how="left")
        df["flag"] = df["flag"].fillna(False).astype(bool)
        data = charts.for_chart(df.drop(columns="period"))
        x = alt.X("month:T", title=None)
        panels = []
        for label, part in data.groupby("label", sort=False):
            axis = self._axis(str(part["metric_id"].iloc[0]))
            fmt = axis.format if isinstance(axis.format, str) else ",.4~r"
            tooltip = [
                alt.Tooltip("month:T", title=labels.column_label("period", lang)),
                alt.Tooltip("value:Q", title=labels.column_label("value", lang), format=fmt),
                alt.Tooltip("expected:Q", title=labels.column_label("expected", lang), format=fmt),
            ]
            y = alt.Y("lower:Q", title=None, scale=alt.Scale(zero=False), axis=axis)
            band = (
                alt.Chart().mark_area(opacity=0.22, color="#0b5cad").encode(x=x, y=y, y2="upper:Q")
            )
            expected = (
                alt.Chart()
                .mark_line(strokeDash=[4, 2], color="#0b5cad")
                .encode(x=x, y=alt.Y("expected:Q", axis=axis))
            )
            actual = (
                alt.Chart()
                .mark_line(color="#222", point=alt.OverlayMarkDef(size=14, opacity=0))
                .encode(x=x, y=alt.Y("value:Q", axis=axis), tooltip=tooltip)
            )
            points = (
                alt.Chart()
                .mark_point(color="#c62828", size=70, filled=True)
                .encode(x=x, y=alt.Y("value:Q", axis=axis), tooltip=tooltip)
                .transform_filter(alt.datum.flag)
            )
            panels.append(
                alt.layer(band, expected, actual, points, data=part).properties(
                    width=240,
                    height=140,
                    # unit and metric on two lines: a long pair never runs into the
                    # next panel's title
                    title=alt.TitleParams(
                        str(label).split(" · "), fontSize=12, fontWeight="normal"
                    ),
                )
            )
        return alt.concat(*panels, columns=3).properties(
            title=labels.t("anomaly.chart.timeline", lang)
        )

    def _display(self, n: int = 30) -> pd.DataFrame:
        lang = self.language
        df = self.table.head(n).copy()
        df["at_stake"] = [fmt_number(v, self.money_unit, lang) for v in df["at_stake"]]
        for col in ("value", "expected", "range"):
            df[col] = self.formatted[col].head(n).to_numpy()
        df["explained_by"] = df["explained_by"].replace("", None)
        # unit and metric in one "series" column, as the charts name them: the reading
        # layer then fits a 1024 px screen and A4
        df["label"] = df["entity"] + " · " + df["metric"]
        if self.limit is not None:
            return df[["rank", "label", "period", *_SHOW[4:], "at_stake"]]
        # the appendix: the explanation beside the series, so a 1024 px screen shows it
        # without scrolling past the figures, and a row is no taller than its text (the
        # adjustment explaining a finding, rare, last)
        return df[["rank", "label", "period", "explanation", *_SHOW[4:], "range", "at_stake",
                   "explained_by"]]  # fmt: skip

    def view(self) -> pd.DataFrame:
        """The ranked list as people read it: names, values with units, explanation (in
        :meth:`highlights`, the first rows without the explanation)."""
        return self._display(TABLE_MAX_ROWS if self.limit is None else self.limit)

    def _labelled(self, df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
        """The money column's header says that it counts adverse moves only."""
        if "at_stake" not in df or self.money_unit is None:
            return df, {}
        # each value carries its currency in the page's words, so the header names none; the
        # reading layer's header is short (its glossary says only adverse moves count)
        key = "anomaly.col.at_stake" if self.limit is None else "anomaly.col.at_stake_short"
        return df, {"at_stake": labels.t(key, self.language)}

    def _repr_html_(self) -> str:
        notes = "".join(f'<p class="pl-note">{html.escape(n)}</p>' for n in self.notes if n)
        if self.limit is not None:
            notes = ""  # the method notes belong to the appendix
        if self.table.empty:
            return notes + self._note(self._empty)
        top = self.table.head(TABLE_MAX_ROWS if self.limit is None else self.limit)
        order = {c: top[c].to_numpy() for c in ("value", "expected", "at_stake")}  # not the text
        out = notes + self._table(self.view(), order=order)
        if self.limit is not None and len(self.table) > len(top):
            out += self._note("anomaly.text.top_rows", n=len(top), total=len(self.table))
        return out
