"""Runner internals: find task notebooks, run one with papermill, explain failures."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat

from perflink.errors import ParamsError, PerflinkError, RunError
from perflink.execution import PROGRESS_ENV, WORKERS_ENV

logger = logging.getLogger("perflink")

#: Task name -> notebook stem, for the bundled notebooks.
TASK_NOTEBOOKS: dict[str, str] = {
    "mapping": "01_mapping_validation",
    "kpi": "02_kpi_decomposition",
    "forecast": "03_deviation_forecast",
    "anomaly": "04_anomaly_detection",
    "summary": "05_leadership_summary",
}
LAST_TASK = "summary"
_NB_NAME = re.compile(r"^(\d{2})_(.+)\.ipynb$")
_ENGINE = "perflink"


def user_error_names() -> frozenset[str]:
    """Names of the exceptions that mean "fix your inputs": :class:`PerflinkError` and
    every subclass (recursively) except :class:`RunError` and its own.

    A kernel reports only the exception's name, so the set is built from the classes
    themselves rather than kept by hand: a new error class in :mod:`perflink.errors`
    exits 2 without touching the runner.
    """
    names: set[str] = set()
    stack: list[type] = [PerflinkError]
    while stack:
        cls = stack.pop()
        if issubclass(cls, RunError):
            continue  # a failed run (exit 1), not something in the user's inputs
        names.add(cls.__name__)
        stack.extend(cls.__subclasses__())
    return frozenset(names)


# Clients of the notebooks running now, so an interrupted run can stop their kernels.
_running: set[Any] = set()
_running_lock = threading.Lock()
_stopping = threading.Event()


@dataclass(frozen=True)
class TaskOutcome:
    """What happened to one notebook.

    Attributes
    ----------
    task : str
        Task name (``mapping``, ``kpi``, ...).
    notebook : str
        Notebook file name (``01_mapping_validation.ipynb``).
    status : str
        ``ok``, ``failed`` or ``skipped``.
    started_at, finished_at : datetime or None
        Local wall-clock times with UTC offset.
    duration_s : float
        Seconds from kernel start to notebook end.
    error : str or None
        One-line explanation: notebook, cell, exception type and message.
    user_error : bool
        True if the notebook raised a perflink input/params/catalog error.
    """

    task: str
    notebook: str
    status: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float = 0.0
    error: str | None = None
    user_error: bool = False


def find_notebooks(notebooks_dir: Path) -> dict[str, Path]:
    """Map task names to notebook paths in *notebooks_dir* (``NN_<name>.ipynb``)."""
    if not notebooks_dir.is_dir():
        raise RunError(f"notebooks folder {notebooks_dir} does not exist; pass notebooks_dir=.")
    found: dict[str, Path] = {}
    by_stem = {stem: task for task, stem in TASK_NOTEBOOKS.items()}
    for path in sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb")):
        match = _NB_NAME.match(path.name)
        if match is None:
            continue
        task = by_stem.get(path.stem, match.group(2))
        found.setdefault(task, path)
    return found


def select_tasks(
    requested: list[str], available: dict[str, Path], notebooks_dir: Path
) -> list[str]:
    """Check the requested task names and order them: summary last, others as given."""
    unknown = [t for t in requested if t not in available]
    if unknown:
        raise ParamsError(
            f"tasks: {', '.join(map(repr, unknown))} has no notebook in {notebooks_dir}; "
            f"available tasks: {', '.join(sorted(available)) or '(none)'}."
        )
    return [t for t in requested if t != LAST_TASK] + [t for t in requested if t == LAST_TASK]


def check_parameters_cell(path: Path) -> None:
    """Raise RunError unless the notebook has a code cell tagged ``parameters``."""
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for bad files
        raise RunError(f"notebook {path} cannot be read ({type(exc).__name__}: {exc}).") from None
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return
    raise RunError(
        f"notebook {path} has no cell tagged 'parameters'; add the tag to the cell that "
        "defines params_path, language, tables_dir and quarter (View > Cell Toolbar > Tags)."
    )


def notebook_title(path: Path, default: str) -> str:
    """First markdown heading of a notebook, else *default*."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return default


def pick_kernel(path: Path) -> str:
    """``perflink`` kernel if installed, else the notebook's own, else ``python3``."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    if "perflink" in specs:
        return "perflink"
    own = nbformat.read(path, as_version=4).metadata.get("kernelspec", {}).get("name")
    return own if own in specs else "python3"


#: Thread counts of the BLAS libraries numpy may use. Left unset, OpenBLAS starts a thread
#: per core in every kernel: two kernels on two cores then fight over them, and a small
#: matrix product (a parent's sum of its units' paths) took 8 ms instead of 0.25.
_BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def kernel_env(*, at_once: int = 1) -> dict[str, str]:
    """Environment for kernels: ours, plus the folder this perflink is imported from,
    progress bars off, and each kernel's share of the cores when ``at_once`` kernels run
    together.

    A development checkout is not installed in the kernel's site-packages, so the
    kernel would import nothing (or another perflink) without it. A kernel's bars would
    be kept as frames in the executed notebook's stderr outputs; the runner draws its own
    bar, per notebook, on the terminal. The share (:data:`perflink.execution.WORKERS_ENV`
    and the BLAS thread counts, each unless set already) keeps the kernels' worker pools
    and numpy's threads within the machine's cores.
    """
    env = dict(os.environ)
    env[PROGRESS_ENV] = "0"
    share = str(max(1, (os.cpu_count() or 1) // max(1, at_once)))
    for name in (WORKERS_ENV, *_BLAS_THREADS):
        if not env.get(name, "").strip():
            env[name] = share
    root = str(Path(__file__).resolve().parents[1])
    if "site-packages" not in root:
        parts = [root, *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != root)]
        env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def execute(
    task: str,
    source: Path,
    output: Path,
    *,
    parameters: dict[str, Any],
    kernel: str,
    env: dict[str, str],
) -> TaskOutcome:
    """Run one notebook with papermill; never raises for notebook failures."""
    import papermill as pm

    _register_engine()
    start = datetime.now().astimezone()
    error: str | None = None
    user_error = False
    try:
        pm.execute_notebook(
            str(source),
            str(output),
            parameters=parameters,
            engine_name=_ENGINE,
            kernel_name=kernel,
            progress_bar=False,
            log_output=False,
            kernel_env=env,
            kernel_cwd=str(source.parent),
        )
    except pm.PapermillExecutionError as exc:
        error = _cell_error(source, exc.source, exc.cell_index, exc.ename, exc.evalue)
        user_error = exc.ename in user_error_names()
    except Exception as exc:  # kernel death, timeouts, zmq trouble: report, do not crash the run
        cell_source, index = _last_started_cell(output)
        name = type(exc).__name__
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        error = _cell_error(source, cell_source, index, name, detail or "the kernel stopped")
    end = datetime.now().astimezone()
    return TaskOutcome(
        task=task,
        notebook=source.name,
        status="failed" if error else "ok",
        started_at=start,
        finished_at=end,
        duration_s=round((end - start).total_seconds(), 3),
        error=error,
        user_error=user_error,
    )


def _cell_error(
    source: Path, cell_source: str | None, index: int | None, ename: str, evalue: str
) -> str:
    if cell_source is None and index is None:
        where = "before any cell ran (kernel start-up)"
    else:
        index = _source_index(source, cell_source, index)
        lines = [ln.strip() for ln in (cell_source or "").splitlines() if ln.strip()]
        where = f"cell {index}" + (f" ({lines[0][:80]!r})" if lines else "")
    return f"notebook {source.name} failed in {where}: {ename}: {evalue}"


def _source_index(source: Path, cell_source: str | None, index: int | None) -> int | None:
    """Index of the failing cell in the source notebook (papermill inserts cells)."""
    try:
        cells = nbformat.read(source, as_version=4).cells
    except Exception:
        return index
    for i, cell in enumerate(cells):
        if cell.cell_type == "code" and cell.source == cell_source:
            return i
    return index


def _last_started_cell(output: Path) -> tuple[str | None, int | None]:
    """Source and index of the last cell the kernel started, from the executed notebook."""
    try:
        cells = nbformat.read(output, as_version=4).cells
    except Exception:  # missing or half-written
        return None, None
    found: tuple[str | None, int | None] = (None, None)
    for i, cell in enumerate(cells):
        if cell.get("metadata", {}).get("papermill", {}).get("start_time"):
            found = (cell.source, i)
    return found


_registered = False


def _register_engine() -> None:
    """Register a papermill engine that sets the kernel's cwd and env per call.

    papermill's own ``cwd=`` does ``os.chdir`` in the whole process, which is not
    safe when notebooks run in parallel threads.
    """
    global _registered
    if _registered:
        return
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.utils import merge_kwargs, remove_args

    class _PerflinkEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man,
            kernel_name,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
            start_timeout=60,
            execution_timeout=None,
            kernel_env=None,
            kernel_cwd=None,
            **kwargs,
        ):
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            final = merge_kwargs(
                kwargs,
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logging.getLogger("papermill"),
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            client = PapermillNotebookClient(nb_man, **final)
            with _running_lock:
                if _stopping.is_set():  # the run was interrupted: start no new kernel
                    raise RuntimeError("the run was interrupted before this notebook started")
                _running.add(client)
            try:
                # Kernel start-up chatter (ipykernel warnings) is not for the analyst.
                return client.execute(env=kernel_env, cwd=kernel_cwd, stderr=subprocess.DEVNULL)
            except BaseException as exc:
                if not isinstance(exc, Exception):  # Ctrl-C in this thread: no kernel outlives it
                    _kill(client)
                raise
            finally:
                with _running_lock:
                    _running.discard(client)

    papermill_engines.register(_ENGINE, _PerflinkEngine)
    _registered = True


def stop_kernels() -> int:
    """Kill the kernels of the notebooks running now, with their process groups.

    Called when a run is interrupted or fails before its notebooks end: a kernel (and the
    worker processes it started) must not outlive the run. Kernels started later are
    refused until :func:`allow_kernels`. Returns the number of kernels signalled.
    """
    _stopping.set()
    with _running_lock:
        clients = list(_running)
    return sum(_kill(client) for client in clients)


def _kill(client: Any) -> bool:
    provisioner = getattr(getattr(client, "km", None), "provisioner", None)
    pgid = getattr(provisioner, "pgid", None)
    process = getattr(provisioner, "process", None)
    try:
        if pgid and pgid != os.getpgrp():
            os.killpg(pgid, signal.SIGKILL)  # the kernel runs in its own session
        elif process is not None:
            process.kill()
        else:
            return False
    except OSError:  # already gone
        return False
    return True


def allow_kernels() -> None:
    """Let new kernels start again (a new run after an interrupted one)."""
    _stopping.clear()


def is_tty() -> bool:
    """True if progress can be drawn in place on stderr (a terminal with a width)."""
    try:
        return sys.stderr.isatty() and os.get_terminal_size(sys.stderr.fileno()).columns > 0
    except (OSError, ValueError):  # no real terminal (pipes, captured streams)
        return False
