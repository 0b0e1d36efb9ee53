"""Tests of perflink.execution: local processes and a Dask cluster give the same results.

One ``LocalCluster`` (two single-threaded worker processes) serves the whole module.
"""

from __future__ import annotations

import operator
import os
import shutil
import sys
import time

import numpy as np
import pytest
import yaml
from pandas.testing import assert_frame_equal

import perflink
from perflink import execution
from perflink.anomaly import _detect, detect_anomalies
from perflink.errors import ParamsError, RunError
from perflink.execution import LOCAL_MIN_ITEMS, DaskExecutor, LocalExecutor, get_executor
from perflink.forecast import backtest_panel, forecast_panel
from perflink.forecast._fit import forecast_block
from perflink.options import ExecutorOptions, ForecastOptions
from perflink.params import parse_quarter
from perflink.sample import generate

FAST = ForecastOptions(n_paths=200, backtest_origins=1)
# Nothing listens on the discard port: connecting is refused at once, then retried.
UNREACHABLE = "tcp://127.0.0.1:9"


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    lc = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        yield lc
    finally:
        execution.close_clients()
        lc.close()


@pytest.fixture(scope="module")
def dask_ex(cluster) -> DaskExecutor:
    # every map to the cluster, however small: what these tests compare is remote work
    return DaskExecutor(cluster.scheduler_address, timeout=30, min_items=0)


@pytest.fixture(scope="module")
def sample_review(tmp_path_factory):
    params = generate(tmp_path_factory.mktemp("exec") / "sample", entities=30, seed=0)
    return perflink.open_review(params, language="en")


def _blocks(n_blocks: int = 6) -> list[tuple]:
    """Forecast blocks of decreasing size (the first finishes last on two workers)."""
    rng = np.random.default_rng(1)
    t = np.arange(40)
    out = []
    for k in range(n_blocks):
        rows = 2 * (n_blocks - k)
        y = 100 + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 2, (rows, len(t)))
        out.append((y, 3, 1, None))
    return out


# --- the map -----------------------------------------------------------------------------


def test_map_keeps_task_order(dask_ex) -> None:
    tasks = [(i, 3) for i in range(25)]
    expected = [3 * i for i in range(25)]
    for ex in (LocalExecutor(1), LocalExecutor(2), dask_ex):
        assert ex.map(operator.mul, tasks, desc="mul") == expected
        assert ex.map(operator.mul, [], desc="none") == []


def test_map_results_identical_across_executors(dask_ex) -> None:
    tasks = _blocks()
    ref = LocalExecutor(1).map(forecast_block, tasks, desc="blocks")
    assert [len(block) for block in ref] == [len(t[0]) for t in tasks]
    for ex in (LocalExecutor(2), dask_ex):
        # items: enough series that the local map really uses its worker processes
        got = ex.map(forecast_block, tasks, desc="blocks", items=LOCAL_MIN_ITEMS)
        for ref_block, block in zip(ref, got, strict=True):
            for a, b in zip(ref_block, block, strict=True):
                assert a["method"] == b["method"]
                for key in ("mean", "sd", "psi"):
                    np.testing.assert_array_equal(a[key], b[key])  # bitwise


def test_small_local_maps_run_in_this_process() -> None:
    # Starting worker processes costs more than a few hundred series of work.
    tasks = [(i,) for i in range(6)]
    small = LocalExecutor(2).map(_pid, tasks, desc="pids", items=LOCAL_MIN_ITEMS - 1)
    assert set(small) == {os.getpid()}
    big = LocalExecutor(2).map(_pid, tasks, desc="pids", items=LOCAL_MIN_ITEMS)
    assert os.getpid() not in set(big)


def test_maps_run_in_this_process_take_one_block(dask_ex) -> None:
    # In this process every block is one more batched fit; across workers, four per worker
    # keep them busy.
    assert LocalExecutor(2).blocks_for(LOCAL_MIN_ITEMS - 1) == 1
    assert LocalExecutor(2).blocks_for(LOCAL_MIN_ITEMS) == 8
    assert LocalExecutor(3).blocks_for(LOCAL_MIN_ITEMS, per_worker=2) == 6
    assert dask_ex.blocks_for(10) == 4 * dask_ex.workers  # min_items=0: all on the cluster


def test_small_maps_stay_in_this_process_on_a_cluster_too(cluster, dask_ex) -> None:
    # A few hundred series cost less to fit than to send (executor.min_items, default
    # LOCAL_MIN_ITEMS); the params can send every map (min_items: 0) or set another bound.
    spec = ExecutorOptions(kind="dask", address=cluster.scheduler_address, timeout=30)
    ex = get_executor(spec)
    assert ex.min_items is None and ex.blocks_for(LOCAL_MIN_ITEMS - 1) == 1
    before = cluster.scheduler.transition_counter
    tasks = [(i,) for i in range(4)]
    assert set(ex.map(_pid, tasks, desc="pids", items=LOCAL_MIN_ITEMS - 1)) == {os.getpid()}
    assert cluster.scheduler.transition_counter == before  # nothing sent
    assert os.getpid() not in set(ex.map(_pid, tasks, desc="pids", items=LOCAL_MIN_ITEMS))
    some = get_executor(spec.model_copy(update={"min_items": 5}))
    assert some.blocks_for(4) == 1 and some.blocks_for(5) == 4 * some.workers
    assert LocalExecutor(2, min_items=0).blocks_for(1) == 8


def _pid(_: int) -> int:
    return os.getpid()


def test_task_error_passes_through(dask_ex) -> None:
    tasks = [("2026Q3",), ("2026-09",)]
    for ex in (LocalExecutor(1), LocalExecutor(2), dask_ex):
        with pytest.raises(ParamsError, match="'2026-09' is not a quarter"):
            ex.map(parse_quarter, tasks, desc="quarters")


def test_default_local_workers_follow_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("PERFLINK_LOCAL_WORKERS", "1")
    assert LocalExecutor().workers == 1
    assert LocalExecutor(3).workers == 3  # n_jobs in the params wins
    monkeypatch.setenv("PERFLINK_LOCAL_WORKERS", "two")
    with pytest.raises(ParamsError, match=r"PERFLINK_LOCAL_WORKERS='two'.*integer >= 1"):
        LocalExecutor()
    monkeypatch.delenv("PERFLINK_LOCAL_WORKERS")
    assert LocalExecutor().workers == max(1, min(os.cpu_count() or 1, 8))


def test_get_executor() -> None:
    assert get_executor(None).workers >= 1
    assert get_executor(3).workers == 3
    assert get_executor(ExecutorOptions(n_jobs=2)).workers == 2
    ex = LocalExecutor(1)
    assert get_executor(ex) is ex
    with pytest.raises(ParamsError, match="n_jobs: got 0"):
        get_executor(0)
    with pytest.raises(ParamsError, match="executor: got str"):
        get_executor("dask")


# --- Dask connection ---------------------------------------------------------------------


def test_one_client_per_address(cluster, dask_ex) -> None:
    again = get_executor(ExecutorOptions(kind="dask", address=cluster.scheduler_address))
    assert again._client is dask_ex._client
    assert again.workers == 2
    assert list(execution._CLIENTS) == [cluster.scheduler_address]


def test_unreachable_scheduler_fails_fast() -> None:
    start = time.monotonic()
    with pytest.raises(
        ParamsError, match=r"executor\.address: cannot reach .* tcp://127\.0\.0\.1:9"
    ):
        DaskExecutor(UNREACHABLE, timeout=1)
    assert UNREACHABLE not in execution._CLIENTS
    assert time.monotonic() - start < 30  # a hang guard only; the timeout is 1 s


def test_unreachable_env_address_never_shows_value(tmp_path, monkeypatch) -> None:
    params = generate(tmp_path / "s", entities=28, months=15, seed=0)
    raw = yaml.safe_load(params.read_text(encoding="utf-8"))
    raw["executor"] = {"kind": "dask", "address": "${PERFLINK_TEST_DASK}", "timeout": 1}
    params.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    secret = "tcp://127.0.0.1:9"
    monkeypatch.setenv("PERFLINK_TEST_DASK", secret)
    review = perflink.open_review(params, language="en")
    assert review.params.executor.address == secret
    with pytest.raises(ParamsError) as err:
        review.executor  # noqa: B018 - connecting is the point
    assert "${PERFLINK_TEST_DASK}" in str(err.value)
    assert secret not in str(err.value)


def test_worker_without_perflink_is_refused(cluster, dask_ex, monkeypatch) -> None:
    execution.close_clients()  # the check runs when a client connects
    monkeypatch.setattr(execution, "_PACKAGE", "perflink-not-installed")
    with pytest.raises(RunError, match=r"2 of 2 worker\(s\) of the Dask scheduler at tcp://"):
        DaskExecutor(cluster.scheduler_address, timeout=30)
    monkeypatch.undo()
    assert dask_ex.map(operator.mul, [(2, 3)]) == [6]  # reconnects, checked again


# --- the per-series work -------------------------------------------------------------------


def test_forecast_panel_identical_local_and_dask(sample_review, dask_ex) -> None:
    r = sample_review
    args = (r.facts, r.targets, r.entities, r.catalog)
    local = forecast_panel(*args, quarter=r.quarter, options=FAST, n_jobs=1)
    remote = forecast_panel(*args, quarter=r.quarter, options=FAST, executor=dask_ex)
    assert_frame_equal(local.to_frame(), remote.to_frame(), check_exact=True)
    assert_frame_equal(local.deviation.to_frame(), remote.deviation.to_frame(), check_exact=True)
    assert_frame_equal(local.history, remote.history, check_exact=True)
    bt_args = (r.facts, r.entities, r.catalog)
    bt_local = backtest_panel(*bt_args, quarter=r.quarter, options=FAST, executor=1)
    bt_remote = backtest_panel(*bt_args, quarter=r.quarter, options=FAST, executor=dask_ex)
    assert_frame_equal(bt_local.to_frame(), bt_remote.to_frame(), check_exact=True)


def test_forecast_panel_executor_or_n_jobs(sample_review) -> None:
    r = sample_review
    with pytest.raises(ParamsError, match="executor= or n_jobs=, not both"):
        forecast_panel(
            r.facts, r.targets, r.entities, r.catalog, quarter=r.quarter, executor=1, n_jobs=1
        )


def test_detect_anomalies_identical_local_and_dask(sample_review, dask_ex, monkeypatch) -> None:
    r = sample_review
    # 30 units x 25 metrics: small blocks, so the Dask run really splits the series
    monkeypatch.setattr(_detect, "SERIES_PER_BLOCK", 50)
    kw = dict(quarter=r.quarter, adjustments=r.adjustments, options=r.params.anomaly)
    local = detect_anomalies(r.facts, r.entities, r.catalog, executor=1, **kw)
    remote = detect_anomalies(r.facts, r.entities, r.catalog, executor=dask_ex, **kw)
    assert len(local.to_frame()) > 0
    assert_frame_equal(local.to_frame(), remote.to_frame(), check_exact=True)
    assert_frame_equal(local.timelines, remote.timelines, check_exact=True)


def test_detect_anomalies_in_blocks_in_this_process(sample_review, monkeypatch) -> None:
    # One worker scores the series a block of entities at a time (memory): same findings.
    r = sample_review
    kw = dict(quarter=r.quarter, adjustments=r.adjustments, options=r.params.anomaly)
    whole = detect_anomalies(r.facts, r.entities, r.catalog, executor=1, **kw)
    monkeypatch.setattr(_detect, "LOCAL_BLOCK_SERIES", 60)  # two or three entities a block
    blocks = detect_anomalies(r.facts, r.entities, r.catalog, executor=1, **kw)
    assert len(whole.to_frame()) > 0
    assert_frame_equal(whole.to_frame(), blocks.to_frame(), check_exact=True)
    assert_frame_equal(whole.timelines, blocks.timelines, check_exact=True)


def test_review_forecast_same_bytes_on_dask(cluster, sample_review, tmp_path) -> None:
    """A review run whose params name the cluster writes the bytes a local run writes."""
    import perflink.report
    from perflink.runner import run_review

    src = sample_review.params.source
    folder = tmp_path / "review"
    shutil.copytree(src.parent, folder)
    params = folder / src.name
    raw = yaml.safe_load(params.read_text(encoding="utf-8"))
    raw["forecast"] = {"n_paths": 200, "backtest_origins": 1}
    raw["executor"] = {"kind": "dask", "address": cluster.scheduler_address, "min_items": 0}
    params.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    before = cluster.scheduler.transition_counter
    res = run_review(params, out_dir=tmp_path / "out", tasks=["forecast"])
    remote = (res.report_dir / "tables" / "forecast.csv").read_bytes()
    assert cluster.scheduler.transition_counter > before  # the blocks ran on the cluster

    # the local run: notebook 03's calls in this process, on one local worker
    review = perflink.open_review(params, tables_dir=tmp_path / "local")
    try:
        result = forecast_panel(
            review.facts,
            review.targets,
            review.entities,
            review.catalog,
            quarter=review.quarter,
            options=review.params.forecast,
            executor=1,
        )
        perflink.report.save_table(result.to_frame(), "forecast")
    finally:
        perflink.report.configure(language=review.language, tables_dir=None)
    assert remote == (tmp_path / "local" / "forecast.csv").read_bytes()


# --- progress bars -----------------------------------------------------------------------


@pytest.fixture
def bars_on(monkeypatch):
    """Bars drawn at once on any stream (the captured stderr is no terminal)."""
    monkeypatch.setenv(execution.PROGRESS_ENV, "1")
    monkeypatch.setattr(execution, "PROGRESS_DELAY", 0.0)


def _squares(n: int) -> list[tuple]:
    return [(i, i) for i in range(n)]


def test_task_bar_counts_its_maps_and_reaches_its_total(bars_on, stderr_bars) -> None:
    with execution.progress("forecast backtest", 27) as bar:
        assert execution.current_progress() is bar
        # 7 series in 3 blocks, then 20 in 6: each map moves the bar by exactly its items
        LocalExecutor(1).map(operator.mul, _squares(3), desc="inner map one", items=7)
        assert bar.n == 7
        LocalExecutor(1).map(operator.mul, _squares(6), desc="inner map two", items=20)
    assert execution.current_progress() is None
    assert (bar.n, bar.total) == (27, 27)
    err = stderr_bars()
    assert "forecast backtest:   0%" in err and "0/27" in err and "series" in err
    assert "\r" in err  # a bar redrawn in place
    assert "inner map" not in err  # the maps drew no bar of their own


def test_map_outside_a_task_draws_its_own_bar(bars_on, stderr_bars) -> None:
    assert LocalExecutor(1).map(operator.mul, _squares(4), desc="lone map", items=40) == [
        0,
        1,
        4,
        9,
    ]
    err = stderr_bars()
    assert "lone map" in err and "/40" in err


def test_progress_off_draws_nothing(bars_on, stderr_bars, monkeypatch) -> None:
    for off in ("0", "off", " False "):
        monkeypatch.setenv(execution.PROGRESS_ENV, off)
        with execution.progress("forecast", 5) as bar:
            assert not bar.shown
            LocalExecutor(1).map(operator.mul, _squares(5), desc="forecast map", items=5)
        LocalExecutor(1).map(operator.mul, _squares(5), desc="lone map", items=5)
    assert stderr_bars() == ""


def test_short_task_draws_nothing(bars_on, stderr_bars, monkeypatch) -> None:
    monkeypatch.setattr(execution, "PROGRESS_DELAY", 3600.0)  # tqdm's delay is never reached
    with execution.progress("forecast", 5) as bar:
        LocalExecutor(1).map(operator.mul, _squares(5), desc="forecast map", items=5)
        assert bar.n == 5 and bar.shown  # counted, only not drawn yet
    LocalExecutor(1).map(operator.mul, _squares(5), desc="lone map", items=5)
    assert stderr_bars() == ""


def test_a_step_inside_a_step_draws_no_second_bar(bars_on, stderr_bars) -> None:
    with execution.progress("all quarters", 2) as outer:
        for _ in range(2):
            with execution.progress("forecast") as inner:
                assert execution.current_progress() is inner and not inner.shown
                LocalExecutor(1).map(operator.mul, _squares(3), desc="inner map", items=9)
            assert execution.current_progress() is outer
            outer.update()
    assert outer.n == 2  # the inner maps did not count on the outer bar
    err = stderr_bars()
    assert "all quarters" in err and "forecast" not in err and "inner map" not in err


def test_progress_as_a_decorator_opens_one_bar_per_call(bars_on, stderr_bars) -> None:
    @execution.progress("forecast", 4)
    def step() -> int:
        return sum(LocalExecutor(1).map(operator.mul, _squares(2), desc="m", items=4))

    assert step() == 1 and step() == 1
    assert stderr_bars().count("forecast:   0%") == 2  # each call's first frame


class _Stream:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_bars_by_default_on_a_terminal_or_in_a_kernel_only(monkeypatch) -> None:
    monkeypatch.delenv(execution.PROGRESS_ENV, raising=False)
    assert execution._shows_bars(_Stream(True))
    assert not execution._shows_bars(_Stream(False))  # a cron log, a pipe
    assert not execution._shows_bars(object())  # a stream without isatty

    class OutStream(_Stream):  # what a Jupyter kernel's stderr is (not a tty)
        pass

    fake = type(sys)("ipykernel.iostream")
    fake.OutStream = OutStream
    monkeypatch.setitem(sys.modules, "ipykernel.iostream", fake)
    assert execution._shows_bars(OutStream(False))
    monkeypatch.setenv(execution.PROGRESS_ENV, "0")
    assert not execution._shows_bars(OutStream(False)) and not execution._shows_bars(_Stream(True))
    monkeypatch.setenv(execution.PROGRESS_ENV, "1")
    assert execution._shows_bars(_Stream(False))


def test_total_known_once_the_step_started(bars_on, stderr_bars) -> None:
    with execution.progress("forecast") as bar:
        bar.set_total(9)  # e.g. once the panel of series is built
        LocalExecutor(1).map(operator.mul, _squares(3), desc="inner map", items=9)
    assert (bar.n, bar.total) == (9, 9)
    assert "0/9" in stderr_bars()  # the bar drawn knows its total


def test_progress_bad_input(bars_on, monkeypatch) -> None:
    for total in (-1, 2.5, True, "10"):
        with pytest.raises(ParamsError, match="total is"), execution.progress("forecast", total):
            pass
    with execution.progress("forecast") as bar:
        with pytest.raises(ParamsError, match="total is -3"):
            bar.set_total(-3)
        bar.update(2)
        with pytest.raises(ParamsError, match="after 2 series of work were counted"):
            bar.set_total(5)
    monkeypatch.setenv(execution.PROGRESS_ENV, "maybe")
    with pytest.raises(ParamsError, match="PERFLINK_PROGRESS: got 'maybe'; set it to 0"):
        LocalExecutor(1).map(operator.mul, _squares(2), desc="m")
    assert execution.current_progress() is None  # nothing left open


def test_task_steps_give_freed_memory_back(monkeypatch) -> None:
    # Every task entry point a notebook calls releases pyarrow's pool and trims malloc's
    # heap when it returns or raises, so a kernel running its page cells holds what it uses.
    import pyarrow

    import perflink.anomaly
    import perflink.forecast
    import perflink.kpi
    import perflink.mapping
    import perflink.scoring
    import perflink.summary
    from perflink import execution

    calls: list[str] = []
    pool = pyarrow.default_memory_pool()
    monkeypatch.setattr(
        pyarrow,
        "default_memory_pool",
        lambda: type("P", (), {"release_unused": lambda s: calls.append("arrow")})(),
    )
    monkeypatch.setattr(execution, "_malloc_trim", lambda: lambda pad: calls.append(f"trim {pad}"))
    execution.release_memory()
    assert calls == ["arrow", "trim 0"]

    @execution.releases_memory
    def step():
        raise ValueError("bad input")

    calls.clear()
    with pytest.raises(ValueError, match="bad input"):
        step()
    assert calls == ["arrow", "trim 0"]
    monkeypatch.setattr(pyarrow, "default_memory_pool", lambda: pool)
    for entry in (
        perflink.mapping.run, perflink.kpi.run, perflink.scoring.run, perflink.forecast.run,
        perflink.forecast.backtest, perflink.anomaly.run, perflink.summary.run,
    ):  # fmt: skip
        chain = [entry]
        while hasattr(chain[-1], "__wrapped__"):
            chain.append(chain[-1].__wrapped__)
        assert step.__code__ in [f.__code__ for f in chain], entry.__module__


def test_release_memory_without_malloc_trim(monkeypatch) -> None:
    from perflink import execution

    execution._malloc_trim.cache_clear()
    monkeypatch.setattr(execution.sys, "platform", "darwin")
    assert execution._malloc_trim() is None
    execution.release_memory()  # nothing to trim: no error
    execution._malloc_trim.cache_clear()
