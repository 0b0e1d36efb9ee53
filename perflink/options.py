"""Per-task option blocks of a review params file (``mapping:``, ``kpi:``, ...).

Each block is validated strictly (unknown keys are errors) when the params file is loaded,
before any notebook starts. Every field has a default that suits the bundled sample, so a
params file only lists what it changes. Each task module documents how it uses its block.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AnomalyOptions", "ForecastOptions", "KpiOptions", "MappingOptions", "SummaryOptions"]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MappingOptions(_Options):
    """``mapping:`` block — business–finance mapping validation (notebook 01).

    Used by :func:`perflink.mapping.validate`; every field has a default that suits the
    bundled sample. Months count back from the end of the review quarter.
    """

    expected_share: float = Field(0.5, gt=0, le=1)  # reported in >= this share of months = expected
    completeness_months: int = Field(
        24, ge=0, le=240
    )  # history checked for gaps before the quarter
    rule_history_months: int = Field(9, ge=0, le=120)  # months before the quarter to check rules on
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
    min_elasticity: float = Field(0.5, gt=0)  # smallest elasticity that matters (weak vs inconclusive)
    dq_green: float = Field(0.98, gt=0, le=1)  # data-quality index at or above: green
    dq_amber: float = Field(0.95, gt=0, le=1)  # at or above: amber; below: red


class KpiTenureTarget(_Options):
    """One tenure (任期制契约化) target: a multi-year total for one entity's manager.

    ``total_target`` (in the metric's unit, summed over the tenure) is split into annual
    targets in proportion to the years' budgets; without it, the annual targets grow by
    ``annual_growth`` a year from the actual of the year before ``start_year``.
    """

    entity_id: str
    metric_id: str
    start_year: int
    end_year: int
    manager: str | None = None  # default: the entity's manager in the entities table
    total_target: float | None = None
    annual_growth: float | None = None


class KpiEnvironmentChange(_Options):
    """A declared change of environment (e.g. a market shock for one business line).

    Rule: the monthly budgets of ``metric_id`` for every unit of ``business_line`` from
    ``from_period`` (``YYYY-MM``) on are multiplied by ``factor``; derived targets (net profit,
    ...) are recomputed from the changed inputs. Both target versions are reported.
    """

    business_line: str
    metric_id: str
    from_period: str
    factor: float
    reason: str = ""


def _default_tenure() -> tuple[KpiTenureTarget, ...]:
    return tuple(
        KpiTenureTarget(
            entity_id=f"S0{i}",
            metric_id="net_profit",
            start_year=2024,
            end_year=2026,
            annual_growth=0.06,
        )
        for i in range(1, 7)
    )


class KpiOptions(_Options):
    """``kpi:`` block — three-tier decomposition, scorecards and bonus (notebook 02).

    Attributes
    ----------
    miss_threshold : a tier-1 completion below this (0.97 = 97%) is a missed target finding
        and is coloured red; between it and 100% amber.
    elasticities : mapping id -> elasticity used for statistical links instead of the one
        estimated from the data (e.g. from the mapping-validation task).
    tenure : executives' multi-year targets (default: subsidiary managers, net profit
        2024-2026 growing 6% a year).
    environment_changes : declared environment changes and the stated target rule.
    """

    miss_threshold: float = 0.97
    elasticities: dict[str, float] = {}
    tenure: tuple[KpiTenureTarget, ...] = _default_tenure()
    environment_changes: tuple[KpiEnvironmentChange, ...] = (
        KpiEnvironmentChange(
            business_line="retail",
            metric_id="revenue",
            from_period="2026-07",
            factor=0.95,
            reason="零售市场需求下滑（消费疲软） / retail demand shock",
        ),
    )


class ForecastOptions(_Options):
    """``forecast:`` block — deviation forecasting and early warning (notebook 03).

    Used by :mod:`perflink.forecast` (panel functions); ranges are checked there
    (``ParamsError`` naming ``forecast.<field>``).

    Attributes
    ----------
    metrics : flow metrics forecast per entity (sums over months); profit is derived.
    profit_metric : derived metric computed per path from the forecast flows by its
        catalog formula ("" = none).
    next_quarters : 0 = forecast to the fiscal year end; 1-4 = at least that many quarters.
    n_paths : simulated paths per series (full-year intervals and probabilities).
    seed : random seed of the paths (same seed, same figures).
    miss_pct : a projected adverse deviation above this fraction of budget is a miss.
    severe_miss_pct : a miss above this fraction is ``high`` severity (else ``medium``).
    min_probability : flag only when the probability of missing exceeds this.
    leading_months : months of leading indicators (contracts) quoted for revenue misses.
    backtest_origins : rolling origins (months) of the panel backtest.
    backtest_horizon : months forecast from each backtest origin.
    pool_seasonality : pool seasonal indices per business line and centre type.
    use_drivers : add a leading-driver regression where the catalog maps one with a lag.
    top_n : entities shown in the drill-down charts.
    """

    metrics: tuple[str, ...] = ("revenue", "cogs", "opex")
    profit_metric: str = "net_profit"
    next_quarters: int = 0
    n_paths: int = 1000
    seed: int = 0
    miss_pct: float = 0.05
    severe_miss_pct: float = 0.10
    min_probability: float = 0.70
    leading_months: int = 3
    backtest_origins: int = 6
    backtest_horizon: int = 3
    pool_seasonality: bool = True
    use_drivers: bool = True
    top_n: int = 5


class AnomalyOptions(_Options):
    """``anomaly:`` block — anomaly detection (notebook 04)."""


class SummaryOptions(_Options):
    """``summary:`` block — leadership summary (notebook 05)."""
