"""One execution layer for per-series work: local processes, or a Dask cluster.

Forecasts, backtests and anomaly scoring split their series into blocks and hand them to an
:class:`Executor`, which maps a pure function over argument tuples and returns the results
in the order of the tasks. The ``executor:`` block of the params chooses where that runs::

    executor: {kind: local, n_jobs: 4}                          # joblib worker processes
    executor: {kind: dask, address: "${PERFLINK_DASK_SCHEDULER}"}  # a Dask cluster

In a notebook, ``review.executor`` is the ready executor; pass it on
(``forecast_panel(..., executor=review.executor)``), so the same notebook runs 40 units on
a laptop or 5,000 on a cluster. Results are identical bitwise whichever executor runs them:
blocks hold whole series and the per-series code is deterministic.

A Dask client is opened once per scheduler address and process and reused by every call;
on connecting, every worker must have the same perflink version installed (a worker that
cannot import perflink would otherwise hang the run).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from perflink.errors import ParamsError, RunError
from perflink.options import ExecutorOptions

__all__ = [
    "PROGRESS_MIN_ITEMS",
    "DaskExecutor",
    "Executor",
    "LocalExecutor",
    "close_clients",
    "get_executor",
]

log = logging.getLogger("perflink.execution")

#: Maps covering at least this many items (series) show a progress bar (tqdm.auto: a widget
#: in JupyterLab, text on stderr elsewhere); log lines are written always.
PROGRESS_MIN_ITEMS = 500
#: Default local worker processes: the CPU count, at most this.
MAX_LOCAL_JOBS = 8
#: Local maps covering fewer items (series) run in this process: starting the worker
#: processes (each imports numpy, pandas and the task's models) costs seconds of CPU per
#: worker, more than a thousand series of forecasting (about 1-2 ms each); on the 42-unit
#: sample the pool made the forecast notebook 15 s instead of 1.5 s. Same results either way.
LOCAL_MIN_ITEMS = 1000
_PACKAGE = "perflink"  # what every Dask worker must have installed

_CLIENTS: dict[str, Any] = {}
_LOCK = threading.Lock()


class Executor:
    """Runs a pure function over many argument tuples; results come back in task order.

    Subclasses: :class:`LocalExecutor` (this machine) and :class:`DaskExecutor` (a cluster).

    Attributes
    ----------
    kind : str
        ``"local"`` or ``"dask"``.
    workers : int
        Tasks that can run at the same time (callers size their blocks by it).
    """

    kind = ""

    @property
    def workers(self) -> int:
        raise NotImplementedError

    def map(
        self,
        fn: Callable[..., Any],
        tasks: Sequence[tuple],
        *,
        desc: str = "tasks",
        items: int | None = None,
    ) -> list:
        """Call ``fn(*task)`` for every task; return the results in the order of ``tasks``.

        Parameters
        ----------
        fn : callable
            A pure, module-level function (workers import it by name).
        tasks : sequence of tuple
            Positional arguments of each call.
        desc : str, optional
            What runs, for the progress bar and log lines (``"forecast sales"``).
        items : int, optional
            Series (or other units of work) the tasks cover, default ``len(tasks)``; a
            progress bar is shown from :data:`PROGRESS_MIN_ITEMS` on.

        Returns
        -------
        list
            ``[fn(*tasks[0]), fn(*tasks[1]), ...]``.

        Raises
        ------
        RunError
            The cluster lost a worker or its scheduler while running.
        """
        tqdm = _progress_bar()
        tasks = list(tasks)
        n = len(tasks)
        log.info("%s: %d block(s) on %d %s worker(s)", desc, n, self.workers, self.kind)
        big = (items if items is not None else n) >= PROGRESS_MIN_ITEMS
        out: list = [None] * n
        every = max(1, n // 4)
        if self._in_process(items if items is not None else n):
            results = ((i, fn(*task)) for i, task in enumerate(tasks))
        else:
            results = self._run(fn, tasks)
        with tqdm(total=n, desc=desc, disable=not big, leave=False) as bar:
            for done, (i, result) in enumerate(results, 1):
                out[i] = result
                bar.update()
                if done % every == 0 and done < n:
                    log.info("%s: %d/%d blocks done", desc, done, n)
        log.info("%s: %d/%d blocks done", desc, n, n)
        return out

    def _run(self, fn: Callable[..., Any], tasks: list[tuple]) -> Iterator[tuple[int, Any]]:
        """Yield ``(task index, result)`` as tasks finish (any order)."""
        raise NotImplementedError

    def _in_process(self, items: int) -> bool:
        """True when a map over ``items`` series is cheaper here than on the workers."""
        return False


class LocalExecutor(Executor):
    """Worker processes on this machine (joblib); in-process for one worker or one task.

    Parameters
    ----------
    n_jobs : int, optional
        Worker processes (default: the CPU count, at most :data:`MAX_LOCAL_JOBS`).

    Raises
    ------
    ParamsError
        ``n_jobs`` is not an integer >= 1.
    """

    kind = "local"

    def __init__(self, n_jobs: int | None = None) -> None:
        self._n = _jobs(n_jobs)

    @property
    def workers(self) -> int:
        return self._n

    def _in_process(self, items: int) -> bool:
        return items < LOCAL_MIN_ITEMS

    def _run(self, fn, tasks):
        if self._n == 1 or len(tasks) <= 1:
            for i, task in enumerate(tasks):
                yield i, fn(*task)
            return
        from joblib import Parallel, delayed

        gen = Parallel(n_jobs=min(self._n, len(tasks)), return_as="generator")(
            delayed(fn)(*task) for task in tasks
        )
        yield from enumerate(gen)

    def __repr__(self) -> str:
        return f"LocalExecutor(n_jobs={self._n})"


class DaskExecutor(Executor):
    """The workers of a Dask cluster, through one client per scheduler address and process.

    Parameters
    ----------
    address : str
        The scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
    timeout : float, optional
        Seconds to wait for the scheduler to answer and for a first worker.
    shown : str, optional
        The address as messages and ``repr`` show it (default ``address``); the params'
        written form (``${PERFLINK_DASK_SCHEDULER}``) when it came from the environment.

    Raises
    ------
    ParamsError
        The scheduler does not answer within ``timeout`` (wrong address, or not running).
    RunError
        No worker joins within ``timeout``, or a worker lacks this perflink version.
    """

    kind = "dask"

    def __init__(self, address: str, *, timeout: float = 10.0, shown: str | None = None) -> None:
        self.address = address
        self.shown = shown or address
        self.timeout = float(timeout)
        _ = self._client  # connect now: a wrong address fails here, not in the first map

    @property
    def _client(self):
        # the process's client of the address (reconnected if it was closed meanwhile)
        return _client(self.address, self.timeout, self.shown)

    @property
    def workers(self) -> int:
        return max(1, sum(self._client.nthreads().values()))

    def _run(self, fn, tasks):
        from distributed import as_completed

        client = self._client
        futures = [client.submit(fn, *task, pure=False) for task in tasks]
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for fut, result in as_completed(futures, loop=client.loop, with_results=True):
                yield index[fut.key], result
        except Exception as exc:
            with contextlib.suppress(Exception):  # the scheduler may be gone
                client.cancel(futures)
            err = _run_error(exc, self.shown)
            if err is exc:
                raise  # the task's own error (e.g. an InputError), as in a local run
            raise err from None  # dask's message may hold the resolved address

    def __repr__(self) -> str:
        return f"DaskExecutor(address={self.shown!r})"


def get_executor(
    spec: Executor | ExecutorOptions | int | None = None, *, shown: str | None = None
) -> Executor:
    """The executor a ``executor=`` argument names.

    Parameters
    ----------
    spec : Executor, ExecutorOptions, int or None
        An executor (returned as is); the ``executor:`` params block; an int = local worker
        processes; None = local with the default number of processes.
    shown : str, optional
        How a Dask address is shown in messages (the params' written form, see
        :class:`DaskExecutor`).

    Returns
    -------
    Executor

    Raises
    ------
    ParamsError
        A spec of another type, a bad ``n_jobs``, or an unreachable Dask scheduler.
    RunError
        A Dask cluster without workers, or whose workers lack perflink.
    """
    if isinstance(spec, Executor):
        return spec
    if spec is None or isinstance(spec, int):
        return LocalExecutor(spec)
    if isinstance(spec, ExecutorOptions):
        if spec.kind == "dask":
            return DaskExecutor(spec.address, timeout=spec.timeout, shown=shown)
        return LocalExecutor(spec.n_jobs)
    raise ParamsError(
        f"executor: got {type(spec).__name__}; pass review.executor, an ExecutorOptions, "
        "an int (local worker processes) or None."
    )


def close_clients() -> None:
    """Close the Dask clients this process opened (also done when Python exits)."""
    with _LOCK:
        clients = list(_CLIENTS.values())
        _CLIENTS.clear()
    for client in clients:
        try:
            client.close()
        except Exception:  # noqa: BLE001 - closing a client of a dead cluster may fail
            log.debug("closing a Dask client failed", exc_info=True)


atexit.register(close_clients)


# --- helpers ---------------------------------------------------------------------------


def _jobs(n_jobs: int | None) -> int:
    if n_jobs is None:
        return max(1, min(os.cpu_count() or 1, MAX_LOCAL_JOBS))
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ParamsError(
            f"n_jobs: got {n_jobs!r}; use an integer >= 1 (worker processes), or leave it "
            "out for the CPU count."
        )
    return n_jobs


def _client(address: str, timeout: float, shown: str):
    """The process's client of ``address``, connected and checked on first use."""
    with _LOCK:
        client = _CLIENTS.get(address)
        if client is not None and client.status == "running":
            return client
        client = _connect(address, timeout, shown)
        _CLIENTS[address] = client
        return client


def _connect(address: str, timeout: float, shown: str):
    from distributed import Client

    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError (bad address)
        reason = str(exc).replace(address, shown) or type(exc).__name__
        raise ParamsError(
            f"executor.address: cannot reach the Dask scheduler at {shown} within "
            f"{timeout:g} s ({reason}). Start the scheduler and its workers, correct "
            "executor.address in the params file, or set executor: {kind: local}."
        ) from None
    try:
        _check_workers(client, timeout, shown)
    except BaseException:
        client.close()
        raise
    return client


def _check_workers(client, timeout: float, shown: str) -> None:
    """RunError unless a worker is connected and every worker has this perflink version."""
    import importlib.metadata as md

    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise RunError(
            f"the Dask scheduler at {shown} has no worker (waited {timeout:g} s); start "
            f"workers with `dask worker <scheduler address>` or set executor: {{kind: local}}."
        ) from None
    try:
        expected = md.version(_PACKAGE)
    except md.PackageNotFoundError:
        expected = None
    found = client.run(md.version, _PACKAGE, on_error="return")
    bad = {
        w: v
        for w, v in found.items()
        if not isinstance(v, str) or (expected is not None and v != expected)
    }
    if bad:
        seen = sorted({v if isinstance(v, str) else "not installed" for v in bad.values()})
        raise RunError(
            f"{len(bad)} of {len(found)} worker(s) of the Dask scheduler at {shown} lack "
            f"{_PACKAGE} {expected or ''} (found: {', '.join(seen)}). Install the same "
            f"{_PACKAGE} version and its dependencies in the workers' environment and restart "
            "them, or set executor: {kind: local}."
        )


def _run_error(exc: Exception, shown: str) -> Exception:
    """A task's own error passes through; a lost worker or scheduler becomes a RunError."""
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        return RunError(
            f"a worker of the Dask scheduler at {shown} died while running a block "
            f"({exc}); check the workers' memory limit and logs, then run the review again."
        )
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | PermissionError):
        return RunError(
            f"lost the connection to the Dask scheduler at {shown} ({type(exc).__name__}); "
            "check that the cluster is running, then run the review again."
        )
    return exc


def _progress_bar() -> Any:
    """tqdm's notebook widget bar when ipywidgets is installed, else its text bar.

    ``tqdm.auto`` without ipywidgets warns ("IProgress not found") into every executed
    notebook; the text bar writes to stderr, which a kernel shows under the cell in
    JupyterLab and the report pages leave out.
    """
    try:
        import ipywidgets  # noqa: F401 - only whether it is there
    except ImportError:
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm
