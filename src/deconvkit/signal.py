"""Instrument-response removal for 1-D signals (seismology, spectroscopy, audio).

A recorded trace is the input signal convolved with the instrument's impulse
response, plus noise.  Dividing by the response's spectrum blows up wherever
the response passes little, and ``scipy.signal.deconvolve`` (polynomial long
division) diverges as soon as the response is not minimum-phase or the data
are noisy.  Two stable inverses:

- :func:`water_level`: the seismologists' method (Clayton & Wiggins 1976):
  the response's power is floored at a fraction of its peak, optionally
  followed by a Gaussian low-pass;
- :func:`regularized`: Tikhonov with the weight set by the discrepancy
  principle from the noise level estimated in the trace (no knob).

Unlike the image solvers, the response keeps its gain (it is not
normalised), and by default it starts at sample 0 (a causal response), as
instrument responses do.

Examples
--------
A response that is not minimum-phase makes ``scipy.signal.deconvolve``
explode, even on noise-free data; deconvkit recovers the input:

>>> import numpy as np, scipy.signal
>>> from deconvkit import signal
>>> rng = np.random.default_rng(0)
>>> x = np.zeros(200); x[[20, 60, 61, 120]] = [1.0, -0.5, 0.8, 0.6]
>>> h = np.array([0.3, 1.0, 0.5])
>>> y = np.convolve(x, h) + 1e-3 * rng.standard_normal(202)
>>> q, _ = scipy.signal.deconvolve(y, h)
>>> bool(np.abs(q).max() > 1e10)
True
>>> r = signal.regularized(y, h)
>>> bool(np.abs(r[:200] - x).max() < 0.1)
True
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft
import scipy.optimize

from ._array_api import to_numpy
from ._validate import check_array, check_choice, check_weight
from .restoration._stopping import noise_level

__all__ = ["deconvolve", "regularized", "water_level"]


def _each_trace(solver):
    """Let ``solver`` take traces ``(..., N)``: leading axes (channels, stations)
    are separate traces, each solved on its own (its own noise level and weight)."""

    @functools.wraps(solver)
    def solve(trace, response, **options):
        trace = np.asarray(to_numpy(check_array(trace, "trace")), dtype=np.float64)
        if trace.ndim <= 1:
            return solver(trace, response, **options)
        rows = trace.reshape(-1, trace.shape[-1])
        return np.stack([solver(row, response, **options) for row in rows]).reshape(trace.shape)

    return solve


def _spectra(trace, response, origin: str):
    trace = np.asarray(to_numpy(check_array(trace, "trace")), dtype=np.float64)
    response = np.asarray(to_numpy(check_array(response, "response")), dtype=np.float64)
    if trace.ndim != 1 or response.ndim != 1:
        raise ValueError(f"trace must be (..., N) samples and response 1-D, got a "
                         f"{trace.ndim}-D trace and a {response.ndim}-D response; use "
                         "deconvkit.deconvolve for images")
    if response.size > trace.size:
        raise ValueError(f"response ({response.size} samples) is longer than the trace "
                         f"({trace.size}); crop the response")
    if not np.any(response):
        raise ValueError("response is all zeros")
    check_choice(origin, "origin", ("start", "center"))
    n, k = trace.size, response.size
    length = scipy.fft.next_fast_len(n + k - 1, real=True)
    aligned = np.zeros(length)
    aligned[:k] = response
    if origin == "center":
        aligned = np.roll(aligned, -(k // 2))
    # zero padding past the end keeps the response's tail from wrapping onto the start
    return trace, np.fft.rfft(aligned), np.fft.rfft(trace, length), length


@_each_trace
def water_level(trace, response, *, level: float = 0.01, lowpass: float | None = None,
                sample_rate: float = 1.0, origin: str = "start") -> np.ndarray:
    r"""Water-level deconvolution of a 1-D trace.

    Parameters
    ----------
    trace : (..., N) array
        Recorded samples; leading axes (channels, components, stations) are
        separate traces, each deconvolved on its own.
    response : (K,) array
        Instrument impulse response, ``K <= N``, with its gain.
    level : float
        Water level as a fraction of the peak :math:`|H|`; typical 0.001–0.1.
    lowpass : float, optional
        Width ``a`` (rad/s) of the Gaussian low-pass
        :math:`G(\omega) = e^{-\omega^2 / 4a^2}` applied after the division,
        as in receiver-function analysis.
    sample_rate : float
        Samples per second (for ``lowpass``).
    origin : {"start", "center"}
        Sample of ``response`` that is time zero: the first (causal) or the
        middle one.

    Returns
    -------
    (..., N) ndarray
        The estimated input.

    Notes
    -----
    .. math:: \hat X = \frac{Y \bar H}{\max(|H|^2,\ (\ell \max|H|)^2)}\, G

    References
    ----------
    .. [1] R. W. Clayton and R. A. Wiggins, "Source shape estimation and
       deconvolution of teleseismic bodywaves", Geophys. J. R. Astr. Soc. 47, 1976.
    """
    if not level > 0:
        raise ValueError(f"level must be > 0, got {level!r}")
    trace, h, y, length = _spectra(trace, response, origin)
    power = np.abs(h) ** 2
    floor = (level * np.abs(h).max()) ** 2
    spectrum = y * np.conj(h) / np.maximum(power, floor)
    if lowpass is not None:
        if not lowpass > 0:
            raise ValueError(f"lowpass must be > 0, got {lowpass!r}")
        omega = 2 * np.pi * np.fft.rfftfreq(length, d=1.0 / sample_rate)
        spectrum = spectrum * np.exp(-(omega**2) / (4 * lowpass**2))
    return np.fft.irfft(spectrum, length)[: trace.size]


@_each_trace
def regularized(trace, response, *, weight="auto", penalty: str = "gradient",
                noise_sigma: float | None = None, origin: str = "start") -> np.ndarray:
    r"""Tikhonov deconvolution of a 1-D trace, the weight set by the discrepancy principle.

    Parameters
    ----------
    trace, response, origin
        As in :func:`water_level`.
    weight : float or "auto"
        :math:`\lambda`; ``"auto"``: the weight whose residual RMS equals the
        noise level (estimated from the trace unless ``noise_sigma`` is given),
        chosen per trace.
    penalty : {"gradient", "identity"}
        Penalise the derivative (smooth inputs) or the amplitude (spiky inputs).

    Notes
    -----
    .. math:: \hat X = \frac{Y \bar H}{|H|^2 + \lambda R}

    with :math:`R = 2 - 2\cos\omega` (gradient) or 1 (identity), on the
    zero-padded trace.
    """
    check_choice(penalty, "penalty", ("gradient", "identity"))
    weight = check_weight(weight, "weight")
    trace, h, y, length = _spectra(trace, response, origin)
    power = np.abs(h) ** 2
    omega = 2 * np.pi * np.arange(power.size) / length
    r = 2 - 2 * np.cos(omega) if penalty == "gradient" else np.ones_like(power)
    r = np.maximum(r, 1e-12 * r.max())  # keep the DC of a zero-mean response determined

    def solve(lam):
        return y * np.conj(h) / (power + lam * r)

    if weight == "auto":
        sigma = noise_level(trace, noise_sigma)
        scale = power.mean() / r.mean()

        def excess(log_lam):
            fitted = np.fft.irfft(solve(scale * 10.0**log_lam) * h, length)[: trace.size]
            return np.sqrt(np.mean((fitted - trace) ** 2)) - sigma

        if excess(-14) >= 0:
            weight = scale * 1e-14
        elif excess(4) <= 0:
            weight = scale * 1e4
        else:
            weight = scale * 10.0 ** scipy.optimize.brentq(excess, -14, 4, xtol=1e-3)
    return np.fft.irfft(solve(weight), length)[: trace.size]


def deconvolve(trace, response, *, method: str = "regularized", **options) -> np.ndarray:
    """Remove an instrument response: ``method`` is ``"regularized"`` or ``"water_level"``."""
    check_choice(method, "method", ("regularized", "water_level"))
    return (regularized if method == "regularized" else water_level)(trace, response, **options)
