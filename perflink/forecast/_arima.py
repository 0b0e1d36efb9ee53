"""ARIMA(p,1,q) for the forecast combination, fitted by conditional sum of squares in numpy.

Not API: used by :func:`perflink.forecast._models.forecast_core`. statsmodels' exact-likelihood
fits took 30–870 ms per order here, so one series would blow the 60 ms budget; this lean
version takes 1–3 ms and is deterministic (a test checks its coefficient against SARIMAX).
:func:`fit_arima_many` fits a block of series of one length in one filter pass (the panel
forecasts thousands of short series, where numpy's per-call overhead dominated); the sums
over time stay one einsum per (series, theta), so each series gets the same figures as alone.
"""

from __future__ import annotations

import numpy as np

#: Orders tried by :func:`fit_arima`: name -> (p, q, drift), all with d = 1.
ARIMA_ORDERS: dict[str, tuple[int, int, bool]] = {
    "011": (0, 1, False),
    "011+drift": (0, 1, True),
    "110": (1, 0, False),
    "111": (1, 1, False),
}
_COEF_BOUND = 0.98  # |phi|, |theta| <= this: stationary and invertible
#: Values per filter pass of :func:`fit_arima_many` (a series takes 3 channels x 64 thetas
#: x its length): about 1.6 MB, so the filter's arrays stay in the CPU cache (at 45 months,
#: 23 series per pass took about 69 us each on the development machine, 34 about 118 us).
_CELLS = 200_000
_COARSE = np.linspace(-_COEF_BOUND, _COEF_BOUND, 50)
_STEP = _COARSE[1] - _COARSE[0]
_FINE = np.linspace(-_STEP, _STEP, 21)


def _ma_filter(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """``e_t = x_t - theta e_{t-1}`` (e_0 = x_0) for every theta; x shape (k, n) -> (k, g, n).

    ``theta`` has shape (g,) (one grid for every row) or (k, g) (a grid per row).
    """
    k, n = x.shape
    g = theta.shape[-1]
    # time-major while filtering (each step reads and writes one contiguous slab), then
    # time last, as the einsums of _css read it: their sums must see the same layout
    out = np.empty((n, k, g))
    e = np.zeros((k, g))
    prod = np.empty((k, g))
    xt = np.ascontiguousarray(x.T)
    for t in range(n):
        e = np.subtract(xt[t, :, None], np.multiply(theta, e, out=prod), out=out[t])
    return np.ascontiguousarray(out.transpose(1, 2, 0))


def _css(
    chans: np.ndarray, p: int, drift: bool, s00: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Conditional SSE per theta of ARIMA(p,1,1), with phi or the drift c in closed form.

    ``chans`` (shape (..., 3, g, t)) holds the MA-filtered ``w_t``, ``w_{t-1}`` and 1: the
    residuals ``e = F(w_t) - phi F(w_{t-1}) - c F(1)`` are linear in phi and c for a fixed
    theta, so they come from least squares; phi is then clipped to the bound and the SSE
    recomputed exactly. Returns (sse, coef), each of shape (..., g). ``s00`` (the sums
    of ``F(w_t)^2``, shared by the orders on one grid) is computed when not given.
    """
    e0, e1, e2 = chans[..., 0, :, :], chans[..., 1, :, :], chans[..., 2, :, :]
    if s00 is None:
        s00 = np.einsum("...gt,...gt->...g", e0, e0)
    coef = np.zeros(s00.shape)
    if p or drift:
        other = e1 if p else e2
        s01 = np.einsum("...gt,...gt->...g", e0, other)
        s11 = np.einsum("...gt,...gt->...g", other, other)
        coef = np.divide(s01, s11, out=np.zeros_like(s01), where=s11 > 0)
        if p:
            coef = np.clip(coef, -_COEF_BOUND, _COEF_BOUND)
        s00 = s00 - 2 * coef * s01 + coef * coef * s11
    return np.maximum(s00, 0.0), coef


def fit_arima(y: np.ndarray) -> dict:
    """ARIMA(p,1,q) chosen by AICc among :data:`ARIMA_ORDERS`, fitted by conditional SS.

    A lean version of the ``auto.arima`` step for a non-seasonal (adjusted) series.
    statsmodels' exact-likelihood fits took 30-900 ms per order on the development
    machine, over the 60 ms budget for a whole series, so the coefficients minimise the
    conditional sum of squares instead: theta on a grid (-0.98..0.98, step 0.04) then
    a finer one around the best (step 0.004), phi and the drift in closed form for
    each theta. Deterministic. Fewer than 6 differences give a random walk (``"010"``).
    The one-row case of :func:`fit_arima_many`.
    """
    fits = fit_arima_many(np.asarray(y, dtype=float)[None, :])
    return {key: (str(v[0]) if key == "order" else float(v[0])) for key, v in fits.items()}


def fit_arima_many(values: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`fit_arima` of every row of ``values`` at once.

    Parameters
    ----------
    values : ndarray, shape (k, n)
        ``k`` series of the same length ``n`` (no NaN), any unit.

    Returns
    -------
    dict of ndarray, each of shape (k,)
        ``order`` (str, a key of :data:`ARIMA_ORDERS` or ``"010"``), ``phi``, ``theta``,
        ``c`` (drift per step), ``last`` (last value), ``w`` (last difference) and ``e``
        (last residual), the same values :func:`fit_arima` gives each row alone.
    """
    y = np.asarray(values, dtype=float)
    rows = max(4, _CELLS // (3 * 64 * max(y.shape[1], 1)))
    parts = [_fit_rows(y[i : i + rows]) for i in range(0, y.shape[0], rows)]
    if not parts:
        parts = [_fit_rows(y)]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _fit_rows(y: np.ndarray) -> dict[str, np.ndarray]:
    k, n = y.shape
    w = np.diff(y, axis=1)
    zero = np.zeros(k)
    fit = {
        "order": np.full(k, "010", dtype=object),
        "phi": zero.copy(),
        "theta": zero.copy(),
        "c": zero.copy(),
        "last": y[:, -1].copy(),
    }
    if n - 1 < 6:
        return fit | {"w": zero.copy(), "e": zero.copy()}
    ne = n - 2
    x = np.stack([w[:, 1:], w[:, :-1], np.ones((k, ne))], axis=1).reshape(3 * k, ne)
    chans = _ma_filter(x, _COARSE).reshape(k, 3, _COARSE.shape[0], ne)
    s00 = np.einsum("...gt,...gt->...g", chans[:, 0], chans[:, 0])
    fine: dict[str, np.ndarray] = {}
    for name, (p, q, drift) in ARIMA_ORDERS.items():
        if q:
            centre = _COARSE[np.argmin(_css(chans, p, drift, s00)[0], axis=1)]
            fine[name] = np.clip(centre[:, None] + _FINE, -_COEF_BOUND, _COEF_BOUND)
    grid = np.concatenate([np.zeros((k, 1)), *fine.values()], axis=1)
    chans = _ma_filter(x, np.repeat(grid, 3, axis=0)).reshape(k, 3, grid.shape[1], ne)
    best_aicc = np.full(k, np.inf)
    start = 1
    for name, (p, q, drift) in ARIMA_ORDERS.items():
        sl = slice(start, start + 21) if q else slice(0, 1)
        start += 21 if q else 0
        sse, coef = _css(chans[:, :, sl], p, drift)
        rows = np.arange(k)
        i = np.argmin(sse, axis=1)
        sse_i, coef_i, theta_i = sse[rows, i], coef[rows, i], grid[:, sl][rows, i]
        npar = p + q + drift + 1  # + the innovation variance
        tail = 2 * npar * (npar + 1) / max(ne - npar - 1, 1)
        for r in range(k):
            # one scalar log per row as before: a vectorised log may take another SIMD
            # path and move the last bit, and a tie would then pick another order
            aicc = ne * np.log(max(sse_i[r], 1e-300) / ne) + 2 * npar + tail
            if aicc < best_aicc[r]:
                best_aicc[r] = aicc
                fit["order"][r] = name
                fit["phi"][r] = coef_i[r] if p else 0.0
                fit["theta"][r] = theta_i[r]
                fit["c"][r] = coef_i[r] if drift else 0.0
    x0 = w[:, 1:] - fit["c"][:, None] - fit["phi"][:, None] * w[:, :-1]
    resid = _ma_filter(x0, fit["theta"][:, None])[:, 0]
    return fit | {"w": w[:, -1].copy(), "e": resid[:, -1].copy()}


def arima_forecast(fit: dict, h: int) -> np.ndarray:
    """Point forecast of a :func:`fit_arima` result for steps 1..h (levels, not differences)."""
    one = {key: np.array([v]) for key, v in fit.items() if key != "order"}
    return arima_forecast_many(one, h)[0]


def arima_forecast_many(fits: dict[str, np.ndarray], h: int) -> np.ndarray:
    """Point forecasts, shape (k, h), of a :func:`fit_arima_many` result (levels)."""
    diffs = np.empty((fits["last"].shape[0], h))
    prev = fits["w"]
    for k in range(h):
        prev = fits["c"] + fits["phi"] * prev + (fits["theta"] * fits["e"] if k == 0 else 0.0)
        diffs[:, k] = prev
    return fits["last"][:, None] + np.cumsum(diffs, axis=1)
