"""Per-task option blocks of a review params file (``mapping:``, ``kpi:``, ...).

Each block is validated strictly (unknown keys are errors) when the params file is loaded,
before any notebook starts. Every field has a neutral default or one derived from the
company's catalog (:meth:`_Options.for_catalog`: metric roles and formulas), never one naming
a metric or entity of any company, so a params file only lists what it changes. Each task module documents how it uses its block.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from perflink.catalog import Catalog

__all__ = [
    "AnomalyOptions",
    "ExecutorOptions",
    "ForecastOptions",
    "KpiOptions",
    "MappingOptions",
    "SummaryOptions",
]


_ADDRESS = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def for_catalog(self, catalog: Catalog) -> _Options:  # noqa: ARG002 - overridden
        """These options with the defaults that come from the catalog filled in; blocks
        whose defaults are all neutral return themselves."""
        return self


class StatusOptions(_Options):
    """``status:`` block — the one status vocabulary of every page and workbook.

    Used by :func:`perflink.common.actual_status` and :func:`perflink.common.outlook_status`;
    every task shows the status these give, so the same figure has the same word and colour
    everywhere.

    Attributes
    ----------
    near_miss : an actual with completion (actual / target, direction taken into account)
        at or above this but below 100% is *narrowly missed* (amber); below it *missed*
        (red); at or above 100% *met* (green). For metrics scored in points (rates, growth;
        see the catalog's ``scoring_basis``) ``near_miss_points`` applies instead.
    near_miss_points : for metrics scored in points: an actual at most this far below target
        (0.01 = 1 percentage point) is narrowly missed; further below, missed.
    on_track : an outlook whose probability of meeting its budget is at least this is *on
        track* (green).
    off_track : below this probability it is *off track* (red); in between *at risk*
        (amber). Without a probability, the projected deviation decides: at or above budget
        on track, within ``1 - near_miss`` of it at risk, further off track.
    """

    near_miss: float = Field(0.97, gt=0, lt=1)
    near_miss_points: float = Field(0.01, gt=0, lt=1)
    on_track: float = Field(0.7, gt=0, le=1)
    off_track: float = Field(0.3, ge=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> StatusOptions:
        if self.off_track >= self.on_track:
            raise ValueError(
                f"off_track ({self.off_track}) must be below on_track ({self.on_track})"
            )
        return self


class ExecutorOptions(_Options):
    """``executor:`` block — where per-series work runs (forecasts, backtests, anomaly scoring).

    Used by :func:`perflink.execution.get_executor` (``review.executor`` in a notebook); the
    results are the same bitwise whichever executor runs them.

    Attributes
    ----------
    kind : ``local`` (worker processes on this machine, joblib) or ``dask`` (the workers of
        a Dask cluster; every worker needs the same perflink version installed).
    n_jobs : local worker processes (default: the CPU count, at most 8); ``kind: local`` only.
    address : the Dask scheduler (``tcp://10.0.0.5:8786``); required for ``kind: dask``.
        May be written as ``${NAME}`` and exported as that environment variable.
    timeout : seconds to wait for the scheduler to answer and for a first worker.
    min_items : a map over fewer series runs in the calling process (the notebook's kernel),
        whichever the kind: sending it to workers costs more than computing it (default
        ``perflink.execution.LOCAL_MIN_ITEMS``, 1,000); 0 sends every map to the workers.
    """

    kind: Literal["local", "dask"] = "local"
    n_jobs: int | None = Field(None, ge=1)
    address: str | None = None
    timeout: float = Field(10.0, gt=0, le=600)
    min_items: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _address(self) -> ExecutorOptions:
        if self.kind == "dask" and not self.address:
            raise ValueError(
                "executor.address is required with kind: dask; write the scheduler address, "
                "e.g. address: tcp://10.0.0.5:8786 (or '${PERFLINK_DASK_SCHEDULER}'), "
                "or use kind: local"
            )
        if self.address is not None and not _ADDRESS.match(self.address):
            raise ValueError(
                "executor.address must be a Dask scheduler address such as "
                "tcp://10.0.0.5:8786 (protocol://host:port)"
            )
        return self


class MappingOptions(_Options):
    """``mapping:`` block — business–finance mapping validation (notebook 01).

    Used by :func:`perflink.mapping.validate`; every field has a default that suits the
    bundled sample. Months count back from the end of the review quarter.

    Attributes
    ----------
    expected_share : a metric reported in at least this share of an entity's months is
        expected every month (a missing month is a gap).
    completeness_months : months of history checked for gaps before the quarter.
    rule_history_months : months before the quarter on which the reconciliation rules are
        also checked.
    drift_z : robust z of a passing month's rule ratio that counts as drift.
    caliber_months : window (months) of the caliber ratio test.
    caliber_min_shift : a caliber ratio must differ from 1 by more than this fraction.
    factor_tolerance : closeness to a known factor (VAT 1.13, unit 10,000, ...) that names
        the likely cause of a caliber difference.
    timing_months : window (months) of the lead/lag test (compared in two halves).
    timing_min_gain : the best lag's correlation minus the same-month correlation needed
        to report a timing difference.
    driver_months : window (months) of the driver regressions (two years).
    min_obs : fewer usable observations than this: insufficient data.
    min_entities : clustering of entities needs at least this many.
    alpha : significance level of the driver tests.
    stability_z : ``|z|`` of this year's elasticity against last year's beyond which a
        mapping is unstable.
    min_elasticity : the smallest effect that matters (below it a link is weak or
        inconclusive).
    min_r2 : the smallest share of a target's month-to-month variation within units a
        driver must explain to be confirmed (a significant p-value on a driver explaining
        less is too weak to steer by: with ten mappings tested at 5%, one in two companies
        gets a chance "significant" link).
    dq_green : the data-quality index's target: at or above it a source system has met it.
    dq_amber : at or above this (below ``dq_green``) narrowly missed; below it missed.
    """

    expected_share: float = Field(0.5, gt=0, le=1)  # reported in >= this share of months = expected
    completeness_months: int = Field(
        24, ge=0, le=240
    )  # history checked for gaps before the quarter
    rule_history_months: int = Field(9, ge=0, le=120)  # months before the quarter to check rules on
    drift_z: float = Field(4.0, gt=0)  # robust z of a passing month that counts as drift
    caliber_months: int = Field(12, ge=6, le=120)  # window of the caliber ratio test
    caliber_min_shift: float = Field(0.04, gt=0, lt=1)  # ratio must differ from 1 by more than this
    factor_tolerance: float = Field(
        0.02, gt=0, lt=0.5
    )  # closeness to a known factor (1.13, 10000...)
    timing_months: int = Field(24, ge=12, le=120)  # window of the lead/lag test (two halves)
    timing_min_gain: float = Field(0.3, gt=0, le=2)  # best-lag corr minus same-month corr
    driver_months: int = Field(24, ge=12, le=120)  # window of the driver regressions (two years)
    min_obs: int = Field(24, ge=4)  # fewer usable observations -> insufficient data
    min_entities: int = Field(2, ge=2)  # clustering needs at least two entities
    alpha: float = Field(0.05, gt=0, lt=0.5)  # significance level of the driver tests
    stability_z: float = Field(2.58, gt=0)  # |z| of this year vs last year beyond this = unstable
    min_elasticity: float = Field(0.5, gt=0)  # smallest effect that matters (weak/inconclusive)
    min_r2: float = Field(0.05, ge=0, lt=1)  # within R² a confirmed driver explains at least
    dq_green: float = Field(0.98, gt=0, le=1)  # data-quality index at or above: met
    dq_amber: float = Field(0.95, gt=0, le=1)  # at or above: narrowly missed; below: missed


class KpiTenureTarget(_Options):
    """One tenure (任期制契约化) target of one entity's manager, broken into annual targets.

    The first given of: ``annual_targets`` (one per tenure year, in the metric's unit);
    ``total_target`` (summed over the tenure, split evenly); ``annual_change`` (absolute
    change a year from the actual of the year before ``start_year``, e.g. 0.005 = +0.5 point
    of ROE); ``annual_growth`` (relative growth a year from that actual, e.g. EVA or net
    profit; a loss must shrink). See :mod:`perflink.scoring._exec`.

    Attributes
    ----------
    entity_id : the entity whose manager holds the target.
    metric_id : the catalog metric of the target.
    start_year : first year of the tenure.
    end_year : last year of the tenure (at least ``start_year``).
    manager : the manager's name; empty = the entity's ``manager`` in the entities table.
    annual_targets : one target per tenure year, in the metric's unit.
    total_target : the target summed over the tenure (split evenly across its years).
    annual_change : absolute change a year from the actual of the year before the tenure
        (0.005 = +0.5 point of a ratio).
    annual_growth : relative growth a year from that actual (0.06 = +6%); a loss must
        shrink.
    """

    entity_id: str
    metric_id: str
    start_year: int
    end_year: int
    manager: str | None = None  # default: the entity's manager in the entities table
    annual_targets: tuple[float, ...] | None = None
    total_target: float | None = None
    annual_change: float | None = None
    annual_growth: float | None = None

    @model_validator(mode="after")
    def _years(self) -> KpiTenureTarget:
        if self.end_year < self.start_year:
            raise ValueError(f"end_year {self.end_year} is before start_year {self.start_year}")
        n = self.end_year - self.start_year + 1
        if self.annual_targets is not None and len(self.annual_targets) != n:
            raise ValueError(
                f"annual_targets has {len(self.annual_targets)} values for {n} tenure years "
                f"({self.start_year}-{self.end_year}); give one per year"
            )
        return self


class KpiEnvironmentChange(_Options):
    """A declared change of environment (e.g. a market shock for one business line).

    Rule: the monthly budgets of ``metric_id`` for every unit of ``business_line`` from
    ``from_period`` (``YYYY-MM``) on are multiplied by ``factor``; derived targets (net profit,
    ...) are recomputed from the changed inputs. Both target versions are reported.

    Attributes
    ----------
    business_line : the ``business_line`` (entities table) whose units' budgets change.
    metric_id : a reported catalog metric with monthly budgets.
    from_period : the first month (``YYYY-MM``) the change applies to.
    factor : the multiplier of those budgets (0.95 = 5% lower); positive.
    reason : why, in words (shown beside the changed target).
    """

    business_line: str
    metric_id: str
    from_period: str
    factor: float
    reason: str = ""


class KpiOptions(_Options):
    """``kpi:`` block — three-tier decomposition, scorecards and bonus (notebook 02).

    Attributes
    ----------
    elasticities : mapping id -> elasticity used for statistical links instead of the one
        estimated from the data (e.g. from the mapping-validation task).
    tenure : executives' multi-year targets (任期目标), company data: one entry per
        entity and metric (none by default: the tenure table says that none are set).
    environment_changes : declared environment changes and the stated target rule
        (契约化动态调整; none by default). Each changes the budgets of one reported metric
        for one business line from a month on; the KPI page shows the adjusted target with
        the original beside it and the manifest records the change.
    manager_scope : window of the middle-manager assessment: ``ytd`` or ``quarter``.
    manager_fail_score : a manager score below this is a ``medium`` finding.
    manager_warn_score : below this (and at least the fail score) ``low``; policy breaches
        of the scheme weights are ``high`` whatever the score.
    manager_top_n : lowest-scoring managers drawn in the manager chart.
    """

    manager_scope: Literal["ytd", "quarter"] = "ytd"
    manager_fail_score: float = Field(60.0, ge=0, le=200)
    manager_warn_score: float = Field(80.0, ge=0, le=200)
    manager_top_n: int = Field(20, ge=1, le=200)
    elasticities: dict[str, float] = {}
    tenure: tuple[KpiTenureTarget, ...] = ()
    environment_changes: tuple[KpiEnvironmentChange, ...] = ()


class ForecastOptions(_Options):
    """``forecast:`` block — deviation forecasting and early warning (notebook 03).

    Used by :mod:`perflink.forecast` (panel functions); ranges are checked there
    (``ParamsError`` naming ``forecast.<field>``).

    Attributes
    ----------
    metrics : flow metrics forecast per entity (sums over months); empty (the default) =
        the reported flows the catalog's profit metric (``role: profit``) is built from
        through its formula, else the sales metric (``role: sales``).
    profit_metric : derived metric computed per path from the forecast flows by its
        catalog formula (nested formulas are expanded); unset (the default) = the catalog's
        profit metric when it is derived; ``""`` = none.
    next_quarters : 0 = forecast to the fiscal year end; 1-4 = at least that many quarters.
    n_paths : simulated paths per series (full-year intervals and probabilities).
    seed : random seed of the paths (same seed, same figures).
    miss_pct : a projected adverse deviation above this fraction of budget is a miss.
    severe_miss_pct : a miss above this fraction is ``high`` severity (else ``medium``).
    min_probability : flag only when the probability of missing exceeds this.
    leading_months : months of a leading indicator (a business driver the catalog maps to
        a forecast metric with a lag) quoted beside that metric's misses.
    backtest_origins : rolling origins (months) of the panel backtest.
    backtest_horizon : months forecast from each backtest origin.
    backtest_max_units : groups with more units than this backtest a fixed sample of this
        many units, stratified by business line and centre type (0 = all units). The
        backtest table states how many units it used out of how many.
    pool_seasonality : pool seasonal indices per business line and centre type.
    use_drivers : add a leading-driver regression where the catalog maps one with a lag.
    top_n : entities shown in the drill-down charts.
    """

    metrics: tuple[str, ...] = ()
    profit_metric: str | None = None
    next_quarters: int = 0
    n_paths: int = 1000
    seed: int = 0
    miss_pct: float = 0.05
    severe_miss_pct: float = 0.10
    min_probability: float = 0.70
    leading_months: int = 3
    backtest_origins: int = 6
    backtest_horizon: int = 3
    backtest_max_units: int = 400
    pool_seasonality: bool = True
    use_drivers: bool = True
    top_n: int = 5

    def for_catalog(self, catalog: Catalog) -> ForecastOptions:
        """These options with the catalog-derived defaults filled in (idempotent)."""
        profit = catalog.role("profit")
        flows = catalog.flows_of(profit) if profit is not None else None
        metrics, pm = self.metrics, self.profit_metric
        if not metrics:
            if flows:
                metrics = tuple(flows)
            elif profit is not None and not catalog.metrics[profit].derived:
                metrics = (profit,)
            sales = catalog.role("sales")
            if sales is not None and sales not in metrics and not catalog.metrics[sales].derived:
                metrics = (sales, *metrics)
        if pm is None:
            usable = profit is not None and catalog.metrics[profit].derived and flows
            pm = profit if usable and set(flows) <= set(metrics) else ""
        return self.model_copy(update={"metrics": tuple(metrics), "profit_metric": pm})


class AnomalyOptions(_Options):
    """``anomaly:`` block — anomaly detection (notebook 04).

    Used by :func:`perflink.anomaly.detect_anomalies`; defaults suit the bundled sample (set
    with the seeds 0-2 and the clean sample, see ``tests/test_anomaly_panel.py``).

    Attributes
    ----------
    detectors : which detectors run: ``series`` (spikes, level shifts, trend breaks per
        entity x metric), ``multivariate`` (odd mix of ratio features in an entity-month),
        ``peer`` (year-on-year change unlike units of the same centre type and business line,
        beyond its usual gap to them),
        ``linkage`` (a finance metric off what its mapped business drivers imply).
    exclude_metrics : metrics never scored (e.g. standards set once a year).
    min_change : a flag moving the value less than this fraction of the expected value is
        immaterial and dropped (rates: ``min_change_points`` absolute instead).
    min_change_points : the same for metrics in unit ``ratio`` (0.01 = 1 percentage point).
    flag_rate : operating point of the per-series detector: points flagged per 100 of an
        ordinary series with no anomaly (calibrated on real business series,
        ``benchmarks/anomaly_bench.py`` prints recall at each rate); lower flags less and
        finds less. Each finding says how rarely a move like it comes at that rate's scale.
    min_score : linkage flags need at least this |robust z| (per-series flags are set by
        ``flag_rate``).
    features : features of the multivariate detector, by name; empty (the default) = every
        feature the catalog gives (:func:`perflink.anomaly.features_of`: its ratio metrics,
        per-head ratios of money flows, its averaged rates and prices).
    multivariate_alpha : tail probability (chi-square of the robust Mahalanobis distance)
        below which an entity-month is flagged.
    min_history : months of history a series, ratio or feature needs before it is scored.
    min_level : count-like metrics (not money, rates or prices) with a median monthly level
        below this are not compared with peers nor used as a ratio driver (too noisy).
    peer_z : |robust z| of a unit's year-on-year change among its peers, beyond its usual gap
        to them, to be flagged.
    min_peers : smallest peer group (same centre type and business line) that is compared.
    z_medium, z_high, z_critical : |score| bands of severity medium / high / critical.
    money_high : money at stake (in the catalog's money unit, :attr:`Catalog.money_unit`) at or
        above which a flag is at least ``high``.
    money_low : money at stake (the same unit) below which a flag is at most ``low``.
    top_n : flagged series drawn as timelines and peer comparisons.
    """

    detectors: tuple[str, ...] = ("series", "multivariate", "peer", "linkage")
    exclude_metrics: tuple[str, ...] = ()
    min_change: float = Field(0.03, ge=0, lt=1)
    min_change_points: float = Field(0.01, ge=0, lt=1)
    flag_rate: float = Field(1.0, gt=0, le=20)
    min_score: float = Field(4.0, ge=0)
    features: tuple[str, ...] = ()
    multivariate_alpha: float = Field(1e-5, gt=0, lt=0.5)
    min_history: int = Field(12, ge=6, le=120)
    min_level: float = Field(10.0, ge=0)
    peer_z: float = Field(5.0, gt=0)
    min_peers: int = Field(6, ge=3)
    z_medium: float = Field(4.0, gt=0)
    z_high: float = Field(6.0, gt=0)
    z_critical: float = Field(10.0, gt=0)
    money_high: float = Field(200.0, ge=0)
    money_low: float = Field(2.0, ge=0)
    top_n: int = Field(6, ge=1, le=50)


class SummaryOptions(_Options):
    """``summary:`` block — leadership summary, review loop and workbook (notebook 05).

    Used by :func:`perflink.summary.summarize`; defaults suit the bundled sample.

    Attributes
    ----------
    top_n : items shown in the ranked list (all are saved in ``summary_findings``; critical
        items are always shown). The list is ranked by severity, then money at stake, then
        quarters open, then entity and metric order; statuses follow the ``status:`` block.
    previous_report : the previous quarter's report folder (or its ``tables`` folder);
        ``None`` = ``<tables_dir>/../../<previous quarter>/tables``.
    miss_probability : suggest adjusting budget or plan when the probability of missing
        the full-year budget exceeds this.
    sales_completion : suggest tying incentives to collections when the quarter's sales
        completion is at least this ...
    collections_completion : ... while cash-collected completion is below this.
    per_kind : at most this many items of one task and kind in the top list (and one per
        entity of each kind); critical items are not capped.
    min_severity : findings below this severity stay on the task pages only; they are not
        summary findings and do not count as open in the review loop.
    projection_metric : metric whose projected full-year deviation ends the chain; unset
        (the default) = the catalog's profit metric, else its sales metric; ``""`` = none.
    escalate_quarters : suggest escalating findings open for at least this many quarters.
    dq_red : data-quality index below this: suggest fixing the source system first.
    actions : suggested-action rules that run (ids ``collections``, ``budget``,
        ``caliber``, ``weak_driver``, ``scheme``, ``bonus``, ``data_quality``,
        ``escalate``).
    """

    top_n: int = Field(20, ge=1, le=200)
    previous_report: str | None = None
    miss_probability: float = Field(0.70, ge=0, le=1)
    sales_completion: float = Field(1.0, gt=0, le=2)
    collections_completion: float = Field(0.97, gt=0, le=2)
    per_kind: int = Field(3, ge=1, le=100)
    min_severity: str = "medium"
    projection_metric: str | None = None
    escalate_quarters: int = Field(2, ge=2, le=20)
    dq_red: float = Field(0.95, gt=0, le=1)
    actions: tuple[str, ...] = (
        "collections",
        "budget",
        "caliber",
        "weak_driver",
        "scheme",
        "bonus",
        "data_quality",
        "escalate",
    )

    def for_catalog(self, catalog: Catalog) -> SummaryOptions:
        """These options with the catalog-derived defaults filled in (idempotent)."""
        if self.projection_metric is not None:
            return self
        chosen = catalog.role("profit") or catalog.role("sales") or ""
        return self.model_copy(update={"projection_metric": chosen})
