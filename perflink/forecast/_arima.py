"""ARIMA(p,1,q) for the forecast combination, fitted by conditional sum of squares in numpy.

Not API: used by :func:`perflink.forecast._models.forecast_core`. statsmodels' exact-likelihood
fits took 30–870 ms per order here, so one series would blow the 60 ms budget; this lean
version takes 1–3 ms and is deterministic (a test checks its coefficient against SARIMAX).
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


def _ma_filter(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """``e_t = x_t - theta e_{t-1}`` (e_0 = x_0) for every theta; x shape (k, n) -> (k, g, n)."""
    out = np.empty((x.shape[0], theta.shape[0], x.shape[1]))
    e = np.zeros((x.shape[0], theta.shape[0]))
    for t in range(x.shape[1]):
        e = x[:, t, None] - theta * e
        out[:, :, t] = e
    return out


def _css(chans: np.ndarray, p: int, drift: bool) -> tuple[np.ndarray, np.ndarray]:
    """Conditional SSE per theta of ARIMA(p,1,1), with phi or the drift c in closed form.

    ``chans`` holds the MA-filtered ``w_t``, ``w_{t-1}`` and 1: the residuals
    ``e = F(w_t) - phi F(w_{t-1}) - c F(1)`` are linear in phi and c for a fixed theta,
    so they come from least squares; phi is then clipped to the bound and the SSE
    recomputed exactly.
    """
    e0, e1, e2 = chans
    s00 = np.einsum("gt,gt->g", e0, e0)
    coef = np.zeros(s00.shape)
    if p or drift:
        other = e1 if p else e2
        s01 = np.einsum("gt,gt->g", e0, other)
        s11 = np.einsum("gt,gt->g", other, other)
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
    """
    y = np.asarray(y, dtype=float)
    w = np.diff(y)
    fit = {"order": "010", "phi": 0.0, "theta": 0.0, "c": 0.0, "last": float(y[-1])}
    if len(w) < 6:
        return fit | {"w": 0.0, "e": 0.0}
    x = np.vstack([w[1:], w[:-1], np.ones(len(w) - 1)])
    coarse = np.linspace(-_COEF_BOUND, _COEF_BOUND, 50)
    chans = _ma_filter(x, coarse)
    step = coarse[1] - coarse[0]
    fine: dict[str, np.ndarray] = {}
    for name, (p, q, drift) in ARIMA_ORDERS.items():
        if q:
            centre = coarse[int(np.argmin(_css(chans, p, drift)[0]))]
            fine[name] = np.clip(centre + np.linspace(-step, step, 21), -_COEF_BOUND, _COEF_BOUND)
    grid = np.concatenate([np.zeros(1), *fine.values()])
    chans = _ma_filter(x, grid)
    ne = len(w) - 1
    best_aicc = np.inf
    start = 1
    for name, (p, q, drift) in ARIMA_ORDERS.items():
        sl = slice(start, start + 21) if q else slice(0, 1)
        start += 21 if q else 0
        sse, coef = _css(chans[:, sl], p, drift)
        i = int(np.argmin(sse))
        k = p + q + drift + 1  # + the innovation variance
        aicc = ne * np.log(max(sse[i], 1e-300) / ne) + 2 * k + 2 * k * (k + 1) / max(ne - k - 1, 1)
        if aicc < best_aicc:
            best_aicc = aicc
            fit |= {
                "order": name,
                "phi": float(coef[i]) if p else 0.0,
                "theta": float(grid[sl][i]),
                "c": float(coef[i]) if drift else 0.0,
            }
    x0 = w[1:] - fit["c"] - fit["phi"] * w[:-1]
    resid = _ma_filter(x0[None, :], np.array([fit["theta"]]))[0, 0]
    return fit | {"w": float(w[-1]), "e": float(resid[-1])}


def arima_forecast(fit: dict, h: int) -> np.ndarray:
    """Point forecast of a :func:`fit_arima` result for steps 1..h (levels, not differences)."""
    diffs = np.empty(h)
    prev = fit["w"]
    for k in range(h):
        prev = fit["c"] + fit["phi"] * prev + (fit["theta"] * fit["e"] if k == 0 else 0.0)
        diffs[k] = prev
    return fit["last"] + np.cumsum(diffs)
