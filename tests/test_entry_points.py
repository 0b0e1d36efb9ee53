"""One entry point per task: ``perflink.<task>.run(review, *, options=None)``.

Each ``run`` must give the same tables as the task function wired by hand (what notebooks
and the summary did before), take the review's params block unless an options object is
passed, and the summary must let an error inside a task surface instead of calling the
task missing.
"""

from __future__ import annotations

import copy

import pytest
from pandas.testing import assert_frame_equal

import perflink
import perflink.anomaly as anomaly
import perflink.forecast as forecast
import perflink.kpi as kpi
import perflink.mapping as mapping
import perflink.scoring as scoring
import perflink.summary as summary
from perflink.errors import InputError, ParamsError, PerflinkError
from perflink.options import (
    AnomalyOptions,
    ForecastOptions,
    KpiOptions,
    MappingOptions,
    SummaryOptions,
)
from perflink.sample import generate


@pytest.fixture(scope="module")
def review(tmp_path_factory):
    """The smallest sample the generator makes (28 units, 30 months): each task runs in seconds."""
    params = generate(tmp_path_factory.mktemp("entry") / "s", entities=28, months=30, seed=0)
    return perflink.open_review(params, language="en")


@pytest.fixture(scope="module")
def results(review) -> dict:
    """Every task's ``run`` result on the sample, computed once for the module."""
    dec = kpi.run(review)
    return {
        "mapping": mapping.run(review),
        "kpi": dec,
        "scoring": scoring.run(review, decomposition=dec),
        "forecast": forecast.run(review),
        "anomaly": anomaly.run(review),
    }


def _use_cached_runs(monkeypatch, results: dict, *, except_: str = "") -> None:
    """Let ``perflink.<task>.run`` return the module's results (the summary tests are fast)."""
    for task, module in (("mapping", mapping), ("kpi", kpi), ("forecast", forecast),
                         ("anomaly", anomaly)):  # fmt: skip
        if task != except_:
            monkeypatch.setattr(module, "run", lambda review, *, options=None, _r=results[task]: _r)


# --- same tables as the task functions wired by hand ------------------------------------


def test_mapping_run_is_validate(review, results):
    old = mapping.validate(review)
    new = results["mapping"]
    assert_frame_equal(new.to_frame(), old.to_frame())
    assert_frame_equal(new.drivers.to_frame(), old.drivers.to_frame())
    assert_frame_equal(new.quality.to_frame(), old.quality.to_frame())
    assert new.quarter == str(review.quarter) and not new.to_frame().empty


def test_kpi_run_is_decompose_on_the_review(review, results):
    old = kpi.decompose(
        review.facts, review.targets, review.entities, review.catalog, quarter=review.quarter,
        adjustments=review.adjustments, options=review.params.kpi, lang=review.language,
    )  # fmt: skip
    assert_frame_equal(results["kpi"].to_frame(), old.to_frame())
    assert_frame_equal(kpi.decompose_review(review).to_frame(), old.to_frame())
    assert not old.to_frame().empty


def test_scoring_run_is_scorecard_on_the_review(review, results):
    dec = results["kpi"]
    old = scoring.scorecard(
        dec, review.schemes, review.entities, review.catalog, adjustments=review.adjustments,
        bonus=review.bonus, options=review.params.kpi, lang=review.language,
    )  # fmt: skip
    new = results["scoring"]
    for got, want in ((new.to_frame(), old.to_frame()), (new.bonus, old.bonus),
                      (new.findings, old.findings), (new.audit, old.audit)):  # fmt: skip
        assert_frame_equal(got, want)
    assert_frame_equal(scoring.score_review(review, dec).to_frame(), old.to_frame())


def test_scoring_run_decomposes_when_not_given(review, results):
    alone = scoring.run(review)
    assert_frame_equal(alone.to_frame(), results["scoring"].to_frame())


def test_forecast_run_is_forecast_panel_on_the_review(review, results):
    old = forecast.forecast_panel(
        review.facts, review.targets, review.entities, review.catalog, quarter=review.quarter,
        options=review.params.forecast, executor=1,
    )  # fmt: skip
    new = results["forecast"]
    assert_frame_equal(new.to_frame(), old.to_frame())
    assert_frame_equal(new.deviation.to_frame(), old.deviation.to_frame())
    assert not new.to_frame().empty


def test_forecast_backtest_is_backtest_panel_on_the_review(review):
    old = forecast.backtest_panel(
        review.facts, review.entities, review.catalog, quarter=review.quarter,
        options=review.params.forecast, executor=1,
    )  # fmt: skip
    new = forecast.backtest(review)
    assert isinstance(new, forecast.BacktestResult)
    assert_frame_equal(new.to_frame(), old.to_frame())


def test_anomaly_run_is_detect_anomalies_on_the_review(review, results):
    old = anomaly.detect_anomalies(
        review.facts, review.entities, review.catalog, quarter=review.quarter,
        adjustments=review.adjustments, options=review.params.anomaly,
        language=review.language, executor=1,
    )  # fmt: skip
    new = results["anomaly"]
    assert_frame_equal(new.to_frame(), old.to_frame())
    assert_frame_equal(new.counts.to_frame(), old.counts.to_frame())
    assert not new.to_frame().empty


def test_summary_run_computes_every_task_through_its_entry_point(review, results, monkeypatch):
    _use_cached_runs(monkeypatch, results)
    new = summary.run(review)
    old = summary.summarize(review, summary.collect(review))
    assert_frame_equal(new.to_frame(), old.to_frame())
    assert set(new.inputs.origin.values()) == {"computed"} and new.missing == ()
    assert_frame_equal(new.inputs.get("anomalies"), results["anomaly"].to_frame())
    assert_frame_equal(new.inputs.get("scorecard"), results["scoring"].to_frame())
    assert_frame_equal(new.inputs.get("forecast"), results["forecast"].to_frame())


def test_summary_run_reads_the_run_tables_when_there_is_a_folder(review, results, tmp_path):
    tables = tmp_path / "tables"
    tables.mkdir()
    results["anomaly"].to_frame().to_parquet(tables / "anomalies.parquet")
    in_a_run = copy.copy(review)  # the fixture's review stays without a tables folder
    in_a_run.tables_dir = tables
    res = summary.run(in_a_run)
    assert res.inputs.origin["anomalies"] == "table"
    assert res.missing == ("mapping", "kpi", "forecast")
    assert_frame_equal(res.inputs.get("anomalies"), results["anomaly"].to_frame())


# --- an options object overrides the params block ------------------------------------------

SPIES = {
    # task: (module, function run calls, options class, one changed field)
    "kpi": (kpi, "decompose", KpiOptions, {"manager_top_n": 5}),
    "forecast": (forecast, "forecast_panel", ForecastOptions, {"top_n": 2}),
    "anomaly": (anomaly, "detect_anomalies", AnomalyOptions, {"top_n": 2}),
}


@pytest.mark.parametrize("task", sorted(SPIES))
def test_run_passes_the_params_block_or_the_given_options(review, monkeypatch, task):
    module, name, cls, change = SPIES[task]
    seen = []
    monkeypatch.setattr(module, name, lambda *a, **kw: seen.append(kw["options"]))
    module.run(review)
    given = cls(**change)
    module.run(review, options=given)
    assert seen[0] is getattr(review.params, task)
    assert seen[1] is given


def test_scoring_run_uses_the_given_options_for_decomposition_and_scores(review, monkeypatch):
    seen = {}
    monkeypatch.setattr(kpi, "run", lambda review, *, options=None: seen.setdefault("kpi", options))
    monkeypatch.setattr(
        scoring, "scorecard", lambda *a, **kw: seen.setdefault("card", kw["options"])
    )
    given = KpiOptions(manager_top_n=5)
    scoring.run(review, options=given)
    assert seen == {"kpi": given, "card": given}


def test_mapping_options_override_the_params_block(review, results):
    lenient = mapping.run(review, options=MappingOptions(dq_green=0.5, dq_amber=0.4))
    assert "met" in set(results["mapping"].quality.to_frame()["status"])
    assert set(results["mapping"].quality.to_frame()["status"]) != {"met"}
    assert set(lenient.quality.to_frame()["status"]) == {"met"}


def test_anomaly_options_override_the_params_block(review, results):
    only_series = anomaly.run(review, options=AnomalyOptions(detectors=("series",)))
    assert "multivariate" in set(results["anomaly"].to_frame()["kind"])
    assert "multivariate" not in set(only_series.to_frame()["kind"])


def test_summary_options_override_the_params_block(review, results, monkeypatch):
    _use_cached_runs(monkeypatch, results)
    usual = summary.run(review)
    assert len(usual.findings.top) > 1
    one = summary.run(review, options=SummaryOptions(top_n=1))
    critical = int((usual.findings.top["severity"] == "critical").sum())  # never cut
    assert len(one.findings.top) == max(1, critical) < len(usual.findings.top)


# --- bad input ----------------------------------------------------------------------------


def test_mapping_run_rejects_what_is_not_a_review():
    with pytest.raises(PerflinkError, match="open_review"):
        mapping.run(object())


def test_bad_options_given_to_run_are_reported(review, results, monkeypatch):
    with pytest.raises(ParamsError, match="forecast.top_n"):
        forecast.run(review, options=ForecastOptions(top_n=0))
    with pytest.raises(ParamsError, match="forecast.backtest_origins"):
        forecast.backtest(review, options=ForecastOptions(backtest_origins=0))
    with pytest.raises(ParamsError, match="nope"):
        anomaly.run(review, options=AnomalyOptions(detectors=("nope",)))
    with pytest.raises(ParamsError, match="summary.actions"):
        summary.run(review, options=SummaryOptions(actions=("nope",)))


def test_scoring_run_rejects_a_decomposition_without_panels(review, results):
    from dataclasses import replace

    bare = replace(results["kpi"], panels=None)
    with pytest.raises(InputError, match="no panels"):
        scoring.run(review, decomposition=bare)


# --- a bug inside a task surfaces through the summary --------------------------------------

INSIDE = {
    # task: (module, a function its run calls)
    "mapping": (mapping, "check_rules"),
    "kpi": (kpi, "decompose"),
    "scoring": (scoring, "scorecard"),
    "forecast": (forecast, "forecast_panel"),
    "anomaly": (anomaly, "detect_anomalies"),
}


@pytest.mark.parametrize("error", [AttributeError, ImportError])
@pytest.mark.parametrize("task", sorted(INSIDE))
def test_a_bug_inside_a_task_propagates_out_of_the_summary(
    review, results, monkeypatch, task, error
):
    _use_cached_runs(monkeypatch, results, except_=task)
    module, name = INSIDE[task]

    def broken(*args, **kwargs):
        raise error(f"bug inside {task}")

    monkeypatch.setattr(module, name, broken)
    with pytest.raises(error, match=f"bug inside {task}"):
        summary.run(review)
