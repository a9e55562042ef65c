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

The response is either sampled (an impulse response) or analog: a
:class:`PolesZeros`, as seismometers' datasheets, SEED/StationXML
responses and ObsPy's ``paz`` dicts give it; that one is evaluated at the
trace's own frequencies, so it needs the trace's ``sample_rate``.  Unlike the
image solvers, the response keeps its gain (it is not normalised), and by
default a sampled one starts at sample 0 (a causal response), as instrument
responses do.

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

import dataclasses
import functools

import numpy as np
import scipy.fft
import scipy.optimize
import scipy.signal

from ._array_api import to_numpy
from ._validate import check_array, check_choice, check_weight
from .restoration._stopping import noise_level

__all__ = ["PolesZeros", "deconvolve", "regularized", "water_level"]


@dataclasses.dataclass(frozen=True)
class PolesZeros:
    r"""An analog instrument response from its zeros, poles and gain.

    .. math:: H(s) = k\,\frac{\prod_i (s - z_i)}{\prod_j (s - p_j)},
              \qquad s = 2\pi i f

    in the Laplace variable in rad/s (SEED's transfer function type A, and
    ObsPy's ``paz`` dicts, whose ``gain`` times ``sensitivity`` is ``k``
    here).  Pass it as the ``response`` of :func:`water_level` or
    :func:`regularized` with the trace's ``sample_rate``: it is evaluated
    (by :func:`scipy.signal.freqs_zpk`) at the frequencies of the padded
    trace, so no impulse response is truncated.

    Parameters
    ----------
    zeros, poles : sequences of complex
        In rad/s; complex ones in conjugate pairs (a real response).  Poles
        in the right half-plane (an unstable instrument) are refused.
    gain : float
        :math:`k`: recorded units (counts) per unit of the input, times the
        normalisation of the pole–zero ratio.

    Examples
    --------
    A 1 Hz geophone (damping 0.707) recording ground velocity:

    >>> import numpy as np
    >>> geophone = PolesZeros(zeros=[0, 0], poles=[-4.443 + 4.443j, -4.443 - 4.443j], gain=1.0)
    >>> abs(geophone.frequency_response([10.0])[0]).round(3)   # flat above 1 Hz
    np.float64(1.0)
    """

    zeros: tuple = ()
    poles: tuple = ()
    gain: float = 1.0

    def __post_init__(self):
        for name in ("zeros", "poles"):
            try:
                values = np.atleast_1d(np.asarray(getattr(self, name), dtype=complex))
            except (TypeError, ValueError):
                raise TypeError(f"{name} must be complex numbers (rad/s), got "
                                f"{getattr(self, name)!r}") from None
            if values.ndim != 1 or not np.all(np.isfinite(values)):
                raise ValueError(f"{name} must be a flat list of finite complex numbers")
            if not np.allclose(np.sort_complex(values), np.sort_complex(values.conj())):
                raise ValueError(f"{name} must come in complex-conjugate pairs (a real "
                                 f"instrument), got {values.tolist()}")
            object.__setattr__(self, name, tuple(complex(v) for v in values))
        unstable = [p for p in self.poles if p.real > 0]
        if unstable:
            raise ValueError(f"poles {unstable} lie in the right half-plane (an unstable "
                             "response); check their signs (SEED poles have negative real parts)")
        if not (np.isfinite(self.gain) and self.gain != 0):
            raise ValueError(f"gain must be a finite non-zero number, got {self.gain!r}")

    def frequency_response(self, frequencies) -> np.ndarray:
        r""":math:`H(2\pi i f)` at ``frequencies`` (Hz)."""
        omega = 2 * np.pi * np.asarray(frequencies, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):  # a pole on the axis: inf, checked
            _, h = scipy.signal.freqs_zpk(self.zeros, self.poles, self.gain, worN=omega)
        return h

    def impulse_response(self, sample_rate: float, length: int) -> np.ndarray:
        """The first ``length`` samples of the response sampled at ``sample_rate``:
        the inverse FFT of :math:`H` on a grid of twice that length, cut to
        ``length``.  Its spectrum is :math:`H` to within 1 % of the gain up to
        about 0.6 of the Nyquist frequency for a response that decays within
        ``length`` samples; where :math:`H` has not fallen off by Nyquist, the
        cut leaves more error there (prefer passing the :class:`PolesZeros`
        itself to the solvers, which evaluate it on the trace's grid)."""
        sample_rate = _positive(sample_rate, "sample_rate")
        grid = 2 * int(length)
        h = self.frequency_response(np.fft.rfftfreq(grid, 1.0 / sample_rate))
        return np.fft.irfft(_finite_response(h), grid)[:length]


def _positive(value, name: str) -> float:
    if value is None or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of samples per second, got "
                         f"{value!r}")
    return float(value)


def _finite_response(h):
    if not np.all(np.isfinite(h)):
        raise ValueError("the poles-zeros response is infinite at a frequency of the trace "
                         "(a pole at 0 Hz); an integrating instrument needs that pole moved "
                         "off the axis")
    return h


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


def _spectra(trace, response, origin: str, sample_rate, detrend, taper):
    """The trace (checked, then detrended and tapered as asked), the response's
    spectrum, the trace's on the same zero-padded grid, and the grid's length."""
    trace = np.asarray(to_numpy(check_array(trace, "trace")), dtype=np.float64)
    if isinstance(response, PolesZeros):
        h, length = _analog_response(response, trace, sample_rate)
    else:
        h, length = _sampled_response(response, trace, origin)
    trace = _conditioned(trace, h, detrend, taper)
    return trace, h, np.fft.rfft(trace, length), length


def _sampled_response(response, trace, origin: str):
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
    return np.fft.rfft(aligned), length


def _analog_response(response: PolesZeros, trace, sample_rate):
    if sample_rate is None:
        raise ValueError("a PolesZeros response needs the trace's sample_rate (samples per "
                         "second) to be evaluated at its frequencies")
    sample_rate = _positive(sample_rate, "sample_rate")
    if trace.ndim != 1:
        raise ValueError(f"trace must be (..., N) samples, got a {trace.ndim}-D trace")
    # twice the trace: the response's tail (it never ends) falls on the padding
    length = scipy.fft.next_fast_len(2 * trace.size, real=True)
    h = _finite_response(response.frequency_response(np.fft.rfftfreq(length, 1.0 / sample_rate)))
    if not np.any(h):
        raise ValueError("response is zero at every frequency of the trace")
    return h, length


def _blocks_dc(h) -> bool:
    """A response whose gain at 0 Hz is below 1e-3 of its peak."""
    return bool(np.abs(h[0]) < 1e-3 * np.abs(h).max())


def _conditioned(trace, h, detrend, taper):
    """The trace detrended and tapered as asked (``"auto"``: where ``h`` blocks DC)."""
    check_choice(detrend, "detrend", ("auto", "linear", "constant", None))
    blocked = _blocks_dc(h)
    if detrend == "auto":
        detrend = "linear" if blocked else None
    if taper == "auto":
        taper = 0.05 if blocked else 0.0
    if not (isinstance(taper, (int, float)) and 0 <= taper <= 0.5):
        raise ValueError(f"taper must be a fraction from 0 to 0.5 (of the trace, at each end) "
                         f"or 'auto', got {taper!r}")
    if detrend is not None:
        trace = scipy.signal.detrend(trace, type=detrend)
    if taper > 0:
        trace = trace * scipy.signal.windows.tukey(trace.size, 2 * taper)
    return trace


@_each_trace
def water_level(trace, response, *, level: float = 0.01, lowpass: float | None = None,
                sample_rate: float | None = None, origin: str = "start",
                detrend="auto", taper="auto") -> np.ndarray:
    r"""Water-level deconvolution of a 1-D trace.

    Parameters
    ----------
    trace : (..., N) array
        Recorded samples; leading axes (channels, components, stations) are
        separate traces, each deconvolved on its own.
    response : (K,) array or PolesZeros
        Instrument impulse response, ``K <= N``, with its gain; or the
        analog response as a :class:`PolesZeros` (then ``sample_rate`` is
        needed).
    level : float
        Water level as a fraction of the peak :math:`|H|`; typical 0.001–0.1.
    lowpass : float, optional
        Width ``a`` (rad/s) of the Gaussian low-pass
        :math:`G(\omega) = e^{-\omega^2 / 4a^2}` applied after the division,
        as in receiver-function analysis.
    sample_rate : float, optional
        Samples per second of the trace: for ``lowpass`` (1 if not given)
        and for a :class:`PolesZeros` response (required).
    origin : {"start", "center"}
        Sample of a sampled ``response`` that is time zero: the first
        (causal) or the middle one.
    detrend : {"auto", "linear", "constant", None}
        Remove the trace's least-squares line or mean first.  ``"auto"``:
        ``"linear"`` when the response blocks DC (its gain at 0 Hz below 1e-3
        of its peak: a velocity or displacement sensor), None otherwise.
        Through such a response an offset or drift of the recording (a
        digitiser's, a temperature's) is divided by almost nothing: on a 1 Hz
        geophone's trace an offset of half the signal's peak left 20 times
        the input's RMS in error (water level; 1300 times regularised),
        removed 0.08 (0.05).  The input's own mean and trend do not pass
        such a response, so nothing recoverable is lost.
    taper : float or "auto"
        Fraction of the trace at each end brought smoothly to 0 (a cosine, a
        Tukey window), so the zero padding adds no step.  ``"auto"``: 0.05
        (ObsPy's ``remove_response`` default) when the response blocks DC,
        else 0.

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
    trace, h, y, length = _spectra(trace, response, origin, sample_rate, detrend, taper)
    power = np.abs(h) ** 2
    floor = (level * np.abs(h).max()) ** 2
    spectrum = y * np.conj(h) / np.maximum(power, floor)
    if lowpass is not None:
        if not lowpass > 0:
            raise ValueError(f"lowpass must be > 0, got {lowpass!r}")
        omega = 2 * np.pi * np.fft.rfftfreq(length, d=1.0 / (sample_rate or 1.0))
        spectrum = spectrum * np.exp(-(omega**2) / (4 * lowpass**2))
    return np.fft.irfft(spectrum, length)[: trace.size]


@_each_trace
def regularized(trace, response, *, weight="auto", penalty: str = "auto",
                noise_sigma: float | None = None, origin: str = "start",
                sample_rate: float | None = None, detrend="auto",
                taper="auto") -> np.ndarray:
    r"""Tikhonov deconvolution of a 1-D trace, the weight set by the discrepancy principle.

    Parameters
    ----------
    trace, response, origin, detrend, taper
        As in :func:`water_level`.
    sample_rate : float, optional
        Samples per second of the trace, for a :class:`PolesZeros` response.
    weight : float or "auto"
        :math:`\lambda`; ``"auto"``: the weight whose residual RMS equals the
        noise level (estimated from the trace unless ``noise_sigma`` is given),
        chosen per trace.
    penalty : {"auto", "gradient", "identity"}
        Penalise the derivative (smooth inputs) or the amplitude (spiky
        inputs).  ``"auto"``: the gradient, unless the response blocks DC
        (its gain at 0 Hz below 1e-3 of its peak, as a velocity or
        displacement sensor's zeros at the origin make it): the gradient
        penalty vanishes at 0 Hz too, so nothing would then hold the
        input's lowest frequencies, where dividing by the response
        amplifies the noise (measured on a 1 Hz geophone's trace: 0.61 of
        the input's RMS in error with the gradient, 0.05 with the identity).

    Notes
    -----
    .. math:: \hat X = \frac{Y \bar H}{|H|^2 + \lambda R}

    with :math:`R = 2 - 2\cos\omega` (gradient) or 1 (identity), on the
    zero-padded trace.
    """
    check_choice(penalty, "penalty", ("auto", "gradient", "identity"))
    weight = check_weight(weight, "weight")
    trace, h, y, length = _spectra(trace, response, origin, sample_rate, detrend, taper)
    power = np.abs(h) ** 2
    if penalty == "auto":
        penalty = "identity" if _blocks_dc(h) else "gradient"
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
