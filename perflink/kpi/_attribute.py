"""Formula attribution: split ``f(actual) - f(base)`` into one contribution per input.

The single-series engine below the tree code (see :mod:`perflink.kpi` for the method).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from perflink.errors import FormulaError, InputError, ParamsError
from perflink.formula import Formula, parse

MAX_EXACT = 12
"""Most changing inputs per additive term enumerated exactly (2^12 corners)."""

METHODS = ("shapley", "sequential")
_CELL_BUDGET = 1 << 18  # corner-by-row cells per array evaluated at once (2 MiB): bounds memory


class AttributionWarning(UserWarning):
    """A Shapley attribution was estimated by sampling (a term had > MAX_EXACT changing inputs)."""


def attribute(
    formula: str | Formula,
    base: Mapping[str, float],
    actual: Mapping[str, float],
    *,
    method: str = "shapley",
    order: Sequence[str] | None = None,
    n_permutations: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """Attribute the change of a formula between base and actual to its inputs.

    Parameters
    ----------
    formula : str or Formula
        A catalog formula without ``lag``/``sum`` and not a comparison, e.g.
        ``"profit / sales"``.
    base, actual : Mapping[str, float]
        Value of every formula input (metric id -> value, in the metric's unit) for the
        reference (budget, prior period) and the actual state. Extra keys are ignored.
    method : {"shapley", "sequential"}
        See the module docstring.
    order : sequence of str, optional
        For ``"sequential"``: every input once, in substitution order. Default: order of first
        appearance in the formula (e.g. ``qty * price`` substitutes qty first).
    n_permutations : int
        Sampled orders (rounded up to even) for terms beyond :data:`MAX_EXACT` changing inputs.
    seed : int
        Random seed of that sampling, so reruns give the same numbers.

    Returns
    -------
    dict[str, float]
        Input -> contribution, in the unit of the formula, in order of :attr:`Formula.inputs`.
        The values sum to ``f(actual) - f(base)`` up to floating-point rounding.

    Raises
    ------
    FormulaError
        The formula is invalid, uses ``lag``/``sum`` or is a comparison.
    InputError
        An input is missing or not a finite number, or the formula is undefined (division by
        zero) at base, actual or a mix of the two that the method needs.
    ParamsError
        Unknown ``method``, bad ``order`` or ``n_permutations``.

    Notes
    -----
    Exact for any additive term with up to :data:`MAX_EXACT` changing inputs (a sum such as
    ``qty_a * p_a + qty_b * p_b + ...`` is split into terms first, so it stays exact however
    many products it has). A single term with more changing inputs is estimated from
    ``n_permutations`` sampled orders (half of them the reverses of the other half) with a
    fixed ``seed``: the estimate is unbiased, its standard error shrinks as
    ``1 / sqrt(n_permutations)`` and is reported in an :class:`AttributionWarning`; the
    contributions still sum exactly to the total change, because every sampled order's steps
    telescope to it (no rescaling is needed).
    """
    f = _prepare(formula, method, order, n_permutations)
    b = np.array([[_scalar(base, name, "base", f)] for name in f.inputs])
    a = np.array([[_scalar(actual, name, "actual", f)] for name in f.inputs])
    phi = _contributions(
        f, b, a, method=method, order=order, n_permutations=n_permutations, seed=seed
    )
    if not np.all(np.isfinite(phi)):
        raise InputError(
            f"attribution of {f.text!r}: the formula is undefined (division by zero or overflow) at "
            f"the base values, the actual values or a mix of them that the {method!r} method needs; "
            "check the inputs, or use method='sequential' with an order that avoids the mix"
        )
    return {name: float(phi[i, 0]) for i, name in enumerate(f.inputs)}


def attribute_frame(
    formula: str | Formula,
    base: pd.DataFrame,
    actual: pd.DataFrame,
    *,
    method: str = "shapley",
    order: Sequence[str] | None = None,
    n_permutations: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Row-wise :func:`attribute` over whole tables, vectorised over rows.

    Parameters
    ----------
    formula : str or Formula
        As for :func:`attribute`.
    base, actual : pandas.DataFrame
        Same index (e.g. ``entity_id``, ``period``), one numeric column per formula input;
        other columns are ignored.
    method, order, n_permutations, seed
        As for :func:`attribute`.

    Returns
    -------
    pandas.DataFrame
        Index of ``base``; one float64 column per formula input (order of
        :attr:`Formula.inputs`) holding its contribution. Each row sums to
        ``f(actual) - f(base)``. A row where an input is NaN/inf or the formula is undefined
        at a needed mix of base and actual is NaN in every column (no exception).

    Raises
    ------
    FormulaError, ParamsError
        As for :func:`attribute`.
    InputError
        The indexes differ, or an input column is missing or not numeric.
    """
    f = _prepare(formula, method, order, n_permutations)
    if not base.index.equals(actual.index):
        raise InputError(
            f"attribution of {f.text!r}: base and actual must have the same index "
            f"(got {len(base)} and {len(actual)} rows that do not line up); align them first"
        )
    b = np.array([_column(base, name, "base", f) for name in f.inputs]).reshape(
        len(f.inputs), len(base)
    )
    a = np.array([_column(actual, name, "actual", f) for name in f.inputs]).reshape(b.shape)
    phi = _contributions(
        f, b, a, method=method, order=order, n_permutations=n_permutations, seed=seed
    )
    bad = ~np.all(np.isfinite(phi), axis=0) | ~np.all(np.isfinite(b) & np.isfinite(a), axis=0)
    phi[:, bad] = np.nan
    return pd.DataFrame(phi.T, index=base.index, columns=list(f.inputs))


# --- checks -------------------------------------------------------------------------------


def _prepare(
    formula: str | Formula, method: str, order: Sequence[str] | None, n_permutations: int
) -> Formula:
    f = formula if isinstance(formula, Formula) else parse(formula, context="attribution")
    if f.uses_time or f.is_boolean:
        what = "uses lag()/sum()" if f.uses_time else "is a comparison, not a number"
        raise FormulaError(
            f"attribution of {f.text!r}: the formula {what}; attribute a formula of same-period "
            "metrics (put lagged values in as their own inputs)"
        )
    if method not in METHODS:
        raise ParamsError(f"attribution method {method!r} is unknown; use one of {list(METHODS)}")
    if order is not None:
        if method != "sequential":
            raise ParamsError("attribution 'order' applies only to method='sequential'")
        if isinstance(order, str) or sorted(order) != sorted(f.inputs):
            raise ParamsError(
                f"attribution order {order!r} must list each input of {f.text!r} exactly once: "
                f"{list(f.inputs)}"
            )
    if (
        isinstance(n_permutations, bool)
        or not isinstance(n_permutations, int)
        or n_permutations < 2
    ):
        raise ParamsError(f"n_permutations must be an integer >= 2, got {n_permutations!r}")
    return f


def _scalar(values: Mapping[str, Any], name: str, side: str, f: Formula) -> float:
    if name not in values:
        raise InputError(f"attribution of {f.text!r}: {side} has no value for metric {name!r}")
    try:
        value = float(values[name])
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise InputError(
            f"attribution of {f.text!r}: {side} value of metric {name!r} is {values[name]!r}; "
            "it must be a finite number"
        )
    return value


def _column(frame: pd.DataFrame, name: str, side: str, f: Formula) -> np.ndarray:
    if name not in frame.columns:
        raise InputError(
            f"attribution of {f.text!r}: {side} table has no column {name!r} "
            f"(columns: {list(frame.columns)})"
        )
    try:
        return frame[name].to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        raise InputError(
            f"attribution of {f.text!r}: {side} column {name!r} is not numeric"
        ) from None


# --- computation --------------------------------------------------------------------------


def _contributions(
    f: Formula,
    b: np.ndarray,
    a: np.ndarray,
    *,
    method: str,
    order: Sequence[str] | None,
    n_permutations: int,
    seed: int,
) -> np.ndarray:
    """Contributions, shape (n_inputs, n_rows), from base/actual arrays of that shape."""
    phi = np.zeros(b.shape)
    if method == "sequential":
        idx = [f.inputs.index(name) for name in (order or f.inputs)]
        steps = np.tril(np.ones((len(idx) + 1, len(idx)), dtype=bool), k=-1)
        v = _corner_values(f, idx, steps, b, a)
        phi[idx] = np.diff(v, axis=0)
        return phi
    rows = b.shape[1]
    for coef, term in f.additive_terms():
        pos = [f.inputs.index(name) for name in term.inputs]
        players = pos
        if rows == 1:  # scalar call: unchanged inputs are null players; leave them out
            players = [i for i in pos if b[i, 0] != a[i, 0]]
        if not players:
            continue
        local = [pos.index(i) for i in players]
        exact = len(players) <= MAX_EXACT
        n_corners = 2 ** len(players) if exact else n_permutations * (len(players) + 1)
        step = max(1, _CELL_BUDGET // n_corners)  # bound memory: corners x rows per chunk
        stderr, total = 0.0, 0.0
        for lo in range(0, rows, step):
            sl = slice(lo, lo + step)
            bb, aa = b[pos, sl], a[pos, sl]
            if exact:
                phi[players, sl] += coef * _shapley_exact(term, local, bb, aa)
                continue
            part, err, tot = _shapley_sampled(term, local, bb, aa, n_permutations, seed)
            phi[players, sl] += coef * part
            stderr, total = (
                np.nanmax([stderr, abs(coef) * err]),
                np.nanmax([total, abs(coef) * tot]),
            )
        if not exact:
            warnings.warn(
                f"attribution of {f.text!r}: term {term.text!r} has {len(players)} changing "
                f"inputs, more than the exact limit of {MAX_EXACT}; its Shapley values are "
                f"estimated from {n_permutations + n_permutations % 2} antithetic permutations "
                f"(seed {seed}): largest standard error {stderr:.3g} against a largest term "
                f"change of {total:.6g}. The contributions still sum exactly to the total change.",
                AttributionWarning,
                stacklevel=3,
            )
    return phi


def _corner_values(
    f: Formula, players: Sequence[int], masks: np.ndarray, b: np.ndarray, a: np.ndarray
) -> np.ndarray:
    """f at every corner: masks (K, m) bool says which players are at actual; returns (K, rows)."""
    env = {name: b[i, None, :] for i, name in enumerate(f.inputs)}
    for j, i in enumerate(players):
        env[f.inputs[i]] = np.where(masks[:, j, None], a[i, None, :], b[i, None, :])
    return np.broadcast_to(f.evaluate(env), (masks.shape[0], b.shape[1]))


def _shapley_exact(term: Formula, players: list[int], b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Exact Shapley values over the 2^m corners, shape (m, rows).

    Player j's value array gets its own axis of length 2 (0 = base, 1 = actual), so one
    broadcast evaluation of the term fills the (2,) * m + (rows,) cube of corner values, and
    sub-expressions over few players stay small.
    """
    m, rows = len(players), b.shape[1]
    env = {name: b[i] for i, name in enumerate(term.inputs)}
    for j, i in enumerate(players):
        shape = [1] * m + [rows]
        shape[j] = 2
        env[term.inputs[i]] = np.stack([b[i], a[i]]).reshape(shape)
    cube = np.broadcast_to(term.evaluate(env), (2,) * m + (rows,))
    fact = [math.factorial(s) for s in range(m + 1)]
    weight = np.array([fact[s] * fact[m - s - 1] / fact[m] for s in range(m)])
    # weight of each coalition S of the other m-1 players, indexed by their 0/1 axes
    w = weight[np.indices((2,) * (m - 1)).sum(axis=0)] if m > 1 else weight
    phi = np.empty((m, rows))
    for j in range(m):
        # differences, not a signed sum of corners: an unchanged input gets exactly 0
        at = (slice(None),) * j
        diff = cube[(*at, 1)] - cube[(*at, 0)]
        phi[j] = np.tensordot(w, diff, axes=m - 1)
    return phi


def _shapley_sampled(
    term: Formula, players: list[int], b: np.ndarray, a: np.ndarray, n_permutations: int, seed: int
) -> tuple[np.ndarray, float, float]:
    """Permutation-sampling estimate, its largest standard error and the largest term change."""
    m, half = len(players), (n_permutations + 1) // 2
    rng = np.random.default_rng(seed)
    perms = np.array([rng.permutation(m) for _ in range(half)])
    perms = np.concatenate([perms, perms[:, ::-1]])  # antithetic: each order and its reverse
    n_perm = len(perms)
    rank = np.argsort(perms, axis=1)  # rank[p, j] = step at which player j moves
    masks = (rank[:, None, :] < np.arange(m + 1)[None, :, None]).reshape(-1, m)
    v = _corner_values(term, players, masks, b, a).reshape(n_perm, m + 1, -1)
    steps = np.diff(v, axis=1)  # (perm, step, rows); each perm telescopes to the total
    marginal = np.take_along_axis(steps, rank[:, :, None], axis=1)  # (perm, player, rows)
    phi = marginal.mean(axis=0)
    pairs = (marginal[:half] + marginal[half:]) / 2
    stderr = float(np.nanmax(pairs.std(axis=0, ddof=1))) / math.sqrt(half) if half > 1 else math.nan
    return phi, stderr, float(np.nanmax(np.abs(v[0, -1] - v[0, 0])))
