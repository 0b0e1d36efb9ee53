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

Progress: a long task step (a forecast, a backtest) opens one bar for the whole step with
:func:`progress`; every ``Executor.map`` inside it advances that bar instead of drawing its
own, so a backtest of dozens of maps shows one bar, not dozens flashing by. A bar is drawn
only when the step is still running after :data:`PROGRESS_DELAY` seconds, on a terminal or
in a Jupyter kernel; the environment variable ``PERFLINK_PROGRESS`` (:data:`PROGRESS_ENV`)
turns bars off (``0``) or on without a terminal (``1``). ``perflink review`` sets it to ``0``
for its kernels, so executed notebooks hold no bar frames.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import ctypes
import functools
import logging
import numbers
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from perflink.errors import ParamsError, RunError
from perflink.options import ExecutorOptions

__all__ = [
    "PROGRESS_DELAY",
    "PROGRESS_ENV",
    "WORKERS_ENV",
    "DaskExecutor",
    "Executor",
    "LocalExecutor",
    "Progress",
    "close_clients",
    "current_progress",
    "get_executor",
    "progress",
    "release_memory",
    "releases_memory",
]

log = logging.getLogger("perflink.execution")

#: Seconds a progress bar waits before it is first drawn (tqdm's ``delay``): a step that ends
#: sooner draws nothing, so quick calls leave no trace under a notebook cell.
PROGRESS_DELAY = 2.0
#: The environment variable that switches progress bars: ``0`` (also ``false``, ``no``,
#: ``off``) draws none, ``1`` (``true``, ``yes``, ``on``) draws them even where stderr is no
#: terminal; unset or empty: bars on a terminal and in a Jupyter kernel only, so cron logs
#: stay plain lines. Read here only, by :func:`progress`.
PROGRESS_ENV = "PERFLINK_PROGRESS"
_OFF = frozenset({"0", "false", "no", "off"})
_ON = frozenset({"1", "true", "yes", "on"})
#: Default local worker processes: the CPU count, at most this.
MAX_LOCAL_JOBS = 8
#: The environment variable that sets the default number of local worker processes (an
#: integer >= 1); ``n_jobs`` in the params wins over it. ``perflink review`` sets it in its
#: kernels to the cores each of the notebooks it runs at once has: two kernels of a 2-core
#: machine each starting a pool of 2 workers put 4 processes on 2 cores, and the pools held
#: 1.3 of the 3.1 GiB at 2,000 units.
WORKERS_ENV = "PERFLINK_LOCAL_WORKERS"
#: Maps covering fewer items (series) run in this process, local or Dask (the default of
#: ``executor.min_items``): starting local worker processes (each imports numpy, pandas and
#: the task's models) costs seconds of CPU per worker, more than a thousand series of
#: forecasting (about 1-2 ms each), and on the sample the pool made the forecast notebook
#: 15 s instead of 1.5 s; sending a few hundred series to a Dask cluster costs more than
#: fitting them (a 2,000-unit review's 400-unit backtests as 264 small tasks made it 1.30 x
#: local, 1.16 x in the kernel). Same results either way.
LOCAL_MIN_ITEMS = 1000
_PACKAGE = "perflink"  # what every Dask worker must have installed

_CLIENTS: dict[str, Any] = {}
_LOCK = threading.Lock()
# the bar of the task step now running (progress()); maps advance it instead of their own
_CURRENT: contextvars.ContextVar[Progress | None] = contextvars.ContextVar(
    "perflink_progress", default=None
)


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
    #: ``executor.min_items`` (None: :data:`LOCAL_MIN_ITEMS`).
    min_items: int | None = None

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
            What runs, for log lines and the map's own progress bar (``"forecast sales"``).
        items : int, optional
            Series (or other units of work) the tasks cover, default ``len(tasks)``. Inside
            a task step's bar (:func:`progress`) the map advances that bar by ``items`` as
            its blocks complete; outside one it draws its own bar (after
            :data:`PROGRESS_DELAY` seconds).

        Returns
        -------
        list
            ``[fn(*tasks[0]), fn(*tasks[1]), ...]``.

        Raises
        ------
        RunError
            The cluster lost a worker or its scheduler while running.
        """
        tasks = list(tasks)
        n = len(tasks)
        log.info("%s: %d block(s) on %d %s worker(s)", desc, n, self.workers, self.kind)
        work = items if items is not None else n
        out: list = [None] * n
        every = max(1, n // 4)
        if self._in_process(work):
            results = ((i, fn(*task)) for i, task in enumerate(tasks))
        else:
            results = self._run(fn, tasks)
        task_bar = _CURRENT.get()
        own = (
            progress(desc, work, unit="series" if items is not None else "block")
            if task_bar is None
            else contextlib.nullcontext(task_bar)
        )
        with own as bar:
            for done, (i, result) in enumerate(results, 1):
                out[i] = result
                # blocks are about equal in series: advance by this block's share of
                # ``work``, so the bar has moved by exactly ``work`` when the map ends
                bar.update(work * done // n - work * (done - 1) // n)
                if done % every == 0 and done < n:
                    log.info("%s: %d/%d blocks done", desc, done, n)
        log.info("%s: %d/%d blocks done", desc, n, n)
        return out

    def blocks_for(self, items: int, per_worker: int = 4) -> int:
        """How many blocks to split a map over ``items`` series into: ``per_worker`` per
        worker, so a slow block does not leave the others idle; one when the map runs in
        this process, where more blocks only add fits (a batched fit of 42 series costs
        about what one of 8 does: on the sample, 6 blocks per metric made the forecast and
        its backtest 2.6 s slower)."""
        return 1 if self._in_process(items) else max(1, self.workers * per_worker)

    def _run(self, fn: Callable[..., Any], tasks: list[tuple]) -> Iterator[tuple[int, Any]]:
        """Yield ``(task index, result)`` as tasks finish (any order)."""
        raise NotImplementedError

    def _in_process(self, items: int) -> bool:
        """True when a map over ``items`` series is cheaper here than on the workers
        (fewer than :attr:`min_items`)."""
        return items < (LOCAL_MIN_ITEMS if self.min_items is None else self.min_items)


class LocalExecutor(Executor):
    """Worker processes on this machine (joblib); in-process for one worker, one task or a
    map over fewer than ``min_items`` series.

    Parameters
    ----------
    n_jobs : int, optional
        Worker processes (default: :data:`WORKERS_ENV` when set, else the CPU count, at
        most :data:`MAX_LOCAL_JOBS`).
    min_items : int, optional
        Maps over fewer series run in this process (default :data:`LOCAL_MIN_ITEMS`).

    Raises
    ------
    ParamsError
        ``n_jobs`` (or :data:`WORKERS_ENV`) is not an integer >= 1.
    """

    kind = "local"

    def __init__(self, n_jobs: int | None = None, *, min_items: int | None = None) -> None:
        self._n = _jobs(n_jobs)
        self.min_items = min_items

    @property
    def workers(self) -> int:
        return self._n

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
    min_items : int, optional
        Maps over fewer series run in this process, not on the cluster (default
        :data:`LOCAL_MIN_ITEMS`; 0 sends every map).

    Raises
    ------
    ParamsError
        The scheduler does not answer within ``timeout`` (wrong address, or not running).
    RunError
        No worker joins within ``timeout``, or a worker lacks this perflink version.
    """

    kind = "dask"

    def __init__(
        self,
        address: str,
        *,
        timeout: float = 10.0,
        shown: str | None = None,
        min_items: int | None = None,
    ) -> None:
        self.address = address
        self.min_items = min_items
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
            return DaskExecutor(
                spec.address, timeout=spec.timeout, shown=shown, min_items=spec.min_items
            )
        return LocalExecutor(spec.n_jobs, min_items=spec.min_items)
    raise ParamsError(
        f"executor: got {type(spec).__name__}; pass review.executor, an ExecutorOptions, "
        "an int (local worker processes) or None."
    )


class Progress:
    """The progress bar of one task step (opened by :func:`progress`).

    Attributes
    ----------
    desc, unit : str
        What runs and what one unit of work is, as the bar shows them.
    total : int or None
        Units of work of the whole step (None: not known).
    n : int
        Units of work done so far (counted even when no bar is drawn).
    shown : bool
        Whether this step draws a bar at all (see :data:`PROGRESS_ENV`; a step inside
        another step draws none).
    """

    def __init__(self, desc: str, total: int | None, *, unit: str, shown: bool) -> None:
        self.desc, self.unit, self.shown = desc, unit, shown
        self.total = _check_total(desc, total)
        self.n = 0
        self._bar = self._open()

    def _open(self) -> Any:
        return _progress_bar()(
            total=self.total,
            desc=self.desc,
            unit=self.unit,
            delay=PROGRESS_DELAY,
            # under a notebook cell a drawn bar stays as its last line (100%, the time it
            # took): cleared, it would leave an empty stderr box; a terminal clears it
            leave=_in_kernel(sys.stderr),
            disable=not self.shown,
            file=sys.stderr,
        )

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units of work done (the bar redraws after the delay only)."""
        self.n += n
        self._bar.update(n)

    def set_total(self, total: int) -> None:
        """Set the total of a step opened before it was known, before any work is counted.

        Raises
        ------
        ParamsError
            ``total`` is not an integer >= 0, or work was counted already (the bar would show a wrong rate and time left).
        """
        total = _check_total(self.desc, total)
        if self.n:
            raise ParamsError(
                f"progress {self.desc!r}: the total came after {self.n} {self.unit} of work "
                "were counted; set it before counting any."
            )
        # a new bar: tqdm's reset() would draw at once, before the delay; the old bar was
        # never drawn (bars draw on updates only), so closing it leaves no trace
        self._bar.close()
        self.total = total
        self._bar = self._open()

    def set_note(self, text: str) -> None:
        """Words shown after the counts from the next redraw on (e.g. the table being read)."""
        # refresh=False: tqdm's refresh would draw at once, before the delay
        self._bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        """End the bar: cleared from a terminal; under a notebook cell its last line stays."""
        self._bar.close()

    def __repr__(self) -> str:
        return f"Progress({self.desc!r}, {self.n}/{self.total} {self.unit})"


@contextlib.contextmanager
def progress(desc: str, total: int | None = None, *, unit: str = "series") -> Iterator[Progress]:
    """One progress bar for a whole task step; maps inside it advance it.

    Usable as ``with progress("forecast", 126) as bar:`` or as a decorator
    (``@progress("forecast")``, one bar per call). The bar (tqdm's text bar on stderr, or
    its notebook widget where ipywidgets is installed) is drawn only when the step is still
    running after :data:`PROGRESS_DELAY` seconds; when the step ends it is cleared from a
    terminal, and under a notebook cell its last line (100%, the time taken) stays. Every
    :meth:`Executor.map` inside the step advances this bar by its ``items`` instead of
    drawing a bar of its own; other work calls :func:`advance`. A step opened inside another step draws
    nothing: its work counts on a bar nobody sees, so the outer step's own count stays
    right. ``PERFLINK_PROGRESS`` (:data:`PROGRESS_ENV`) decides whether bars are drawn.

    Parameters
    ----------
    desc : str
        What runs, in plain words for the analyst (``"forecast backtest"``); no ids.
    total : int, optional
        Units of work of the whole step; when it is known only once the step has started,
        give it with :meth:`Progress.set_total` before counting any work.
    unit : str, optional
        What one unit of work is (``"series"``, ``"table"``).

    Yields
    ------
    Progress
        The step's bar: ``update(n)`` counts work done; ``n`` and ``total``.

    Raises
    ------
    ParamsError
        ``total`` is not an integer >= 0, or ``PERFLINK_PROGRESS`` holds a value other than
        0/1, true/false, yes/no, on/off.
    """
    shown = _CURRENT.get() is None and _shows_bars(sys.stderr)
    bar = Progress(desc, total, unit=unit, shown=shown)
    token = _CURRENT.set(bar)
    try:
        yield bar
    finally:
        _CURRENT.reset(token)
        bar.close()


def advance(n: int = 1) -> None:
    """Count ``n`` units of work done on the running task step's bar (nothing outside one).

    For work inside a step that is not an :meth:`Executor.map` (maps count themselves).
    """
    bar = _CURRENT.get()
    if bar is not None:
        bar.update(n)


def expect(total: int) -> None:
    """Give the running task step's bar its total, known only once the step has started
    (nothing outside a step; see :meth:`Progress.set_total`)."""
    bar = _CURRENT.get()
    if bar is not None:
        bar.set_total(total)


def current_progress() -> Progress | None:
    """The bar of the task step now running (:func:`progress`), or None outside any step.

    Returns
    -------
    Progress or None
        Code inside a step that is not an :meth:`Executor.map` counts its work with
        ``current_progress().update(n)``.
    """
    return _CURRENT.get()


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
        given = os.environ.get(WORKERS_ENV, "").strip()
        if given:
            if not given.isdigit() or int(given) < 1:
                raise ParamsError(
                    f"{WORKERS_ENV}={given!r}: use an integer >= 1 (local worker processes), "
                    "or unset it for the CPU count."
                )
            return int(given)
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


def _check_total(desc: str, total: Any) -> int | None:
    if total is None:
        return None
    if isinstance(total, bool) or not isinstance(total, numbers.Integral) or total < 0:
        raise ParamsError(
            f"progress {desc!r}: total is {total!r}; give the units of work as an integer "
            ">= 0, or None while it is not known."
        )
    return int(total)


def _shows_bars(stream: Any) -> bool:
    """Whether bars are drawn on ``stream``: the one reading of :data:`PROGRESS_ENV`."""
    setting = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if setting in _OFF:
        return False
    if setting in _ON:
        return True
    if setting:
        raise ParamsError(
            f"{PROGRESS_ENV}: got {os.environ[PROGRESS_ENV]!r}; set it to 0 to turn progress "
            "bars off, 1 to draw them even without a terminal, or unset it."
        )
    # a cron log or a pipe gets no bar frames; a kernel's stderr is no tty but is shown
    # under the cell, where a bar is wanted
    with contextlib.suppress(AttributeError, OSError, ValueError):
        if stream.isatty():
            return True
    return _in_kernel(stream)


def _in_kernel(stream: Any) -> bool:
    """Whether ``stream`` is a Jupyter kernel's output, shown under the running cell."""
    iostream = sys.modules.get("ipykernel.iostream")
    return iostream is not None and isinstance(stream, iostream.OutStream)


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


# --- memory: freed pages back to the system after a task step ---------------------------


def release_memory() -> None:
    """Give the memory a finished step freed back to the operating system.

    Freed memory stays in the process for reuse: pyarrow's pool keeps its pages, and glibc's
    malloc keeps freed heap pages below the top of the heap. In a review's kernel, which
    keeps running its page cells after the task's figures are made, both count in its
    resident size: 0.2 GB of the KPI kernel's 1.0 GB at 2,000 units. pyarrow's
    ``release_unused`` and glibc's ``malloc_trim`` return them (a few ms); elsewhere
    (another libc, pyarrow not loaded) the part that does not apply is skipped.
    """
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # musl and other libcs have no malloc_trim
        return None


def releases_memory(func: Callable) -> Callable:
    """Decorate a task's entry point: :func:`release_memory` when it returns or raises."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        finally:
            release_memory()

    return wrapper
