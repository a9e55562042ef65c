"""Linear restoration: inverse filter, Wiener, Tikhonov (closed form or CGLS), unsupervised Wiener.

The closed forms are exact for the ``"periodic"`` model.  For the other
same-size boundary models the image is first extended with that mode by at
least the PSF size (to a fast FFT length) and cropped back afterwards, so the
FFT's wrap-around does not ring into the frame.  ``"valid"`` has no closed
form: the same minimiser is computed by CGLS on the exact operator.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import scipy.optimize

from .._array_api import (
    array_namespace,
    asarray,
    asarray_complex,
    clamp_min,
    full,
    irfftn,
    next_fast_len,
    rfftn,
    to_numpy,
)
from .._validate import check_callback, check_choice, check_weight
from ..operators import BOUNDARIES, Convolution, Gradient
from ..operators._padding import pad
from ._common import (
    data_floor,
    data_spread,
    filled_for_spectra,
    frame,
    penalty_spectrum,
    prepare,
    split_missing,
)
from ._stopping import Info, Stopping, noise_level, relative_change, rms

__all__ = ["cgls", "inverse_filter", "tikhonov", "unsupervised_wiener", "wiener"]

PENALTIES = ("gradient", "laplacian", "identity")
_SAME_SIZE = ("symmetric", "reflect", "edge", "zero", "periodic")


class _PeriodicProblem:
    """The image (extended by a boundary mode) as a periodic problem diagonal in Fourier."""

    def __init__(self, image, psf, boundary: str):
        d = psf.ndim
        self.d, self.axes = d, tuple(range(-d, 0))
        self.spatial = tuple(image.shape[-d:])
        if boundary == "periodic":
            self.widths = ((0, 0),) * d
            extended = image
        else:
            widths = []
            for n, k in zip(self.spatial, psf.shape):
                extra = next_fast_len(n + k - 1) - n
                widths.append((extra // 2, extra - extra // 2))
            self.widths = tuple(widths)
            extended = pad(image, self.widths, boundary)
        self.image = image
        self.shape = tuple(extended.shape[-d:])
        self.otf = Convolution(psf, boundary="periodic").transfer_function(self.shape,
                                                                           like=extended)
        xp = array_namespace(image)
        self.xp = xp
        self.power = xp.abs(self.otf) ** 2
        self.spectrum = rfftn(extended, self.shape, self.axes)

    def crop(self, x):
        keep = tuple(slice(b, b + n) for (b, _), n in zip(self.widths, self.spatial))
        return x[(Ellipsis,) + keep]

    def filtered(self, gain):
        """Frame of the inverse FFT of ``gain * Y``."""
        return self.crop(irfftn(self.spectrum * gain, self.shape, self.axes))

    def regularized(self, lam: float, penalty):
        return self.filtered(self.xp.conj(self.otf) / (self.power + lam * penalty))

    def residual_rms(self, lam: float, penalty) -> float:
        """RMS of blur(x_λ) − y on the frame."""
        blurred = self.filtered(self.power / (self.power + lam * penalty))
        return rms(blurred - self.image)


def _check_boundary(boundary: str, *, valid: bool = True):
    check_choice(boundary, "boundary", BOUNDARIES if valid else _SAME_SIZE)


def inverse_filter(image, psf, *, floor: float = 1e-2, boundary: str = "symmetric"):
    r"""Naive inverse filter :math:`\hat x = \mathcal F^{-1}[Y / H]`, with a floor on :math:`|H|`.

    Shown for teaching and comparison: it amplifies noise wherever the PSF
    passes little, so it warns.  Use :func:`wiener` or :func:`tikhonov`.

    Parameters
    ----------
    image : (N1, ..., Nd) array
    psf : (K1, ..., Kd) array
    floor : float
        Frequencies with :math:`|H| <` ``floor`` are divided by ``floor``
        instead (a pseudo-inverse with a regularising floor).
    boundary : {"symmetric", "reflect", "edge", "zero", "periodic"}

    Notes
    -----
    Model :math:`y = h * x`; :math:`\hat X = Y \bar H / \max(|H|^2, f^2)`.
    """
    _check_boundary(boundary, valid=False)
    if not floor > 0:
        raise ValueError(f"floor must be > 0, got {floor!r}")
    warnings.warn("the inverse filter amplifies noise without bound where |H| is small; "
                  "use wiener or tikhonov for noisy data", UserWarning, stacklevel=2)
    image, psf = prepare(image, psf)
    problem = _PeriodicProblem(image, psf, boundary)
    xp = problem.xp
    return problem.filtered(xp.conj(problem.otf) / clamp_min(problem.power, floor**2))


def wiener(image, psf, *, balance="auto", noise_sigma: float | None = None,
           penalty: str = "gradient", boundary: str = "symmetric", return_info: bool = False):
    r"""Wiener deconvolution, N-D, with the noise-to-signal ratio estimated from the data.

    Parameters
    ----------
    image : (N1, ..., Nd) array
        Observed data (numpy, torch or CuPy).  With ``boundary="valid"`` NaN
        samples are missing data, left out of the data term (the balance is
        estimated with them filled by a blur-weighted mean of their
        neighbours); the closed forms refuse them.
    psf : (K1, ..., Kd) array
        Point-spread function, normalised to sum 1 here.  Under
        ``boundary="valid"`` it may be longer than the image on an axis (a
        thin stack under a widefield PSF; so for :func:`tikhonov` and
        :func:`cgls`): the object is estimated beyond the image too.
    balance : float or "auto"
        Regularisation weight :math:`\lambda`.  ``"auto"`` (default) is the
        Wiener choice :math:`\lambda = N\sigma^2 / c`: the noise-to-signal
        ratio for an object spectrum :math:`S_x = c / R` whose scale ``c`` is
        fitted to the data (median of :math:`(|Y|^2 - N\sigma^2) R / |H|^2`
        over the frequencies where :math:`|H|^2 > 0.1` and the data stand
        above the noise).
    noise_sigma : float, optional
        Noise standard deviation; estimated from the data when not given
        (:func:`~deconvkit.restoration.estimate_noise`).
    penalty : {"gradient", "laplacian", "identity"}
        :math:`R`: the squared gradient (a :math:`1/f^2` object spectrum, the
        natural-image model), squared Laplacian, or identity.
    boundary : {"symmetric", "reflect", "edge", "zero", "periodic", "valid"}
        Extension before the periodic filter (see the module notes);
        ``"valid"`` solves the same problem on the non-circulant model by
        :func:`cgls`.
    return_info : bool
        Also return an :class:`~deconvkit.restoration.Info` with the balance used.

    Returns
    -------
    (N1, ..., Nd) array
        Same shape and library as ``image``; never clipped.

    Notes
    -----
    Forward model :math:`y = h * x + n`.  With :math:`H` the transfer
    function,

    .. math:: \hat x = \mathcal F^{-1}\left[\frac{\overline{H}\, Y}
              {|H|^2 + \lambda R}\right],

    the minimiser of :math:`\|h*x-y\|^2 + \lambda \|Dx\|^2`; with
    :math:`\lambda R = S_n / S_x` it is Wiener's filter [1]_.

    References
    ----------
    .. [1] N. Wiener, *Extrapolation, Interpolation, and Smoothing of
       Stationary Time Series*, MIT Press, 1949.

    Examples
    --------
    >>> import numpy as np
    >>> from deconvkit import wiener
    >>> y = np.convolve(np.r_[np.zeros(20), 1.0, np.zeros(20)], [0.25, 0.5, 0.25], "same")
    >>> x = wiener(y, np.array([0.25, 0.5, 0.25]), balance=1e-9, boundary="periodic")
    >>> int(np.argmax(x)), bool(abs(x.max() - 1) < 1e-3)
    (20, True)
    """
    check_choice(penalty, "penalty", PENALTIES)
    _check_boundary(boundary)
    balance = check_weight(balance, "balance")
    # missing samples (NaN) only with "valid", which cgls solves with a masked data term
    image, psf = prepare(image, psf, missing=boundary == "valid", larger=boundary == "valid")
    sigma = None
    problem = _PeriodicProblem(filled_for_spectra(image, psf), psf,
                               "symmetric" if boundary == "valid" else boundary)
    spectrum_penalty = penalty_spectrum(penalty, problem.shape, image)
    if balance == "auto":
        sigma = noise_level(image, noise_sigma)
        balance = _spectral_balance(problem, spectrum_penalty, sigma)
    info = Info("wiener", dict(balance=balance, penalty=penalty, boundary=boundary))
    if sigma is not None:
        info.parameters["noise_sigma"] = sigma
    restored = _regularized_solve(problem, image, psf, balance, penalty, spectrum_penalty,
                                  boundary, info)
    return (restored, info) if return_info else restored


def tikhonov(image, psf, *, weight="auto", penalty: str = "gradient",
             noise_sigma: float | None = None, boundary: str = "symmetric",
             return_info: bool = False):
    r"""Tikhonov-regularised least squares, with the weight set by the discrepancy principle.

    Parameters
    ----------
    image, psf, penalty, noise_sigma, boundary, return_info
        As in :func:`wiener`.
    weight : float or "auto"
        :math:`\lambda`.  ``"auto"``: Morozov's discrepancy principle [2]_,
        the :math:`\lambda` whose residual RMS on the frame equals the
        estimated noise level, taken on the symmetric extension of the frame
        whatever ``boundary`` the solve uses (as :func:`cgls` does).  The
        periodic and zero models of a crop of a larger scene cannot fit the
        frame's edges to the noise level at any weight: there the rule
        returned :math:`10^{-11}` and a restoration of -50 dB, where the
        symmetric problem's weight gives 23 dB (a 300x300 photo under a
        Gaussian blur; on periodic data with ``boundary="periodic"``,
        26.39 dB against the periodic problem's 25.86).

    Notes
    -----
    .. math:: \hat x = \arg\min_x \|Ax - y\|^2 + \lambda \|Dx\|^2

    with :math:`D` the identity, gradient or Laplacian [1]_; closed form in
    Fourier, or :func:`cgls` for ``boundary="valid"``.

    References
    ----------
    .. [1] A. N. Tikhonov and V. Y. Arsenin, *Solutions of Ill-Posed
       Problems*, Winston, 1977.
    .. [2] V. A. Morozov, "On the solution of functional equations by the
       method of regularization", Soviet Math. Dokl. 7, 1966.
    """
    check_choice(penalty, "penalty", PENALTIES)
    _check_boundary(boundary)
    weight = check_weight(weight, "weight")
    image, psf = prepare(image, psf, larger=boundary == "valid")
    problem = _PeriodicProblem(image, psf, "symmetric" if boundary == "valid" else boundary)
    spectrum_penalty = penalty_spectrum(penalty, problem.shape, image)
    info = Info("tikhonov", dict(penalty=penalty, boundary=boundary))
    if weight == "auto":
        sigma = noise_level(image, noise_sigma)
        weight = _symmetric_discrepancy_weight(image, psf, penalty, sigma)
        info.parameters["noise_sigma"] = sigma
    info.parameters["weight"] = weight
    restored = _regularized_solve(problem, image, psf, weight, penalty, spectrum_penalty,
                                  boundary, info)
    return (restored, info) if return_info else restored


def _regularized_solve(problem, image, psf, weight, penalty, spectrum_penalty, boundary, info):
    """The Tikhonov minimiser: closed form, or CGLS for ``"valid"`` (recorded in ``info``)."""
    if boundary != "valid":
        return problem.regularized(weight, spectrum_penalty)
    restored, cg_info = cgls(image, psf, weight=weight, penalty=penalty, boundary="valid",
                             return_info=True)
    info.iterations, info.stopped_by, info.history = (cg_info.iterations, cg_info.stopped_by,
                                                      cg_info.history)
    return restored


def cgls(image, psf, *, weight="auto", penalty: str = "gradient", boundary: str = "valid",
         iterations="auto", noise_sigma: float | None = None, time_limit: float | None = None,
         callback: Callable | None = None, return_info: bool = False):
    r"""Tikhonov-regularised least squares by conjugate gradients, any boundary model.

    Parameters
    ----------
    image, psf
        As in :func:`wiener`.
    weight : float or "auto"
        :math:`\lambda`; ``"auto"`` takes the discrepancy-principle weight of
        :func:`tikhonov` on the symmetric-extension problem.  With a given
        weight, NaN samples of the image are missing data, left out of the
        data term (:math:`A^T M A` in the normal equations); the automatic
        weight needs every sample (a crude fill of the gaps broke the
        discrepancy principle: it returned :math:`10^{-15}`).
    penalty : {"gradient", "laplacian", "identity"}
    boundary : str
        Any model of :class:`deconvkit.Convolution`; ``"valid"`` (default)
        estimates the object beyond the frame and returns the frame.
    iterations : int or "auto"
        ``"auto"``: until the normal-equation residual falls by 1e-5
        (relative), at most 500.
    noise_sigma, time_limit, callback, return_info
        As in :func:`deconvkit.richardson_lucy`.

    Notes
    -----
    Solves :math:`(A^TA + \lambda D^TD)\, x = A^T y` by conjugate gradients
    on the normal equations (CGLS, Hestenes & Stiefel [1]_), with the exact
    adjoint of each boundary model.  :math:`D` uses Neumann differences, or
    periodic ones for ``boundary="periodic"``, where CGLS converges to the
    closed form of :func:`tikhonov`.

    References
    ----------
    .. [1] M. R. Hestenes and E. Stiefel, "Methods of conjugate gradients for
       solving linear systems", J. Res. NBS 49, 1952.
    """
    check_callback(callback)
    check_choice(penalty, "penalty", PENALTIES)
    _check_boundary(boundary)
    weight = check_weight(weight, "weight")
    image, psf = prepare(image, psf, missing=weight != "auto", larger=boundary == "valid")
    info = Info("cgls", dict(penalty=penalty, boundary=boundary))
    if weight == "auto":
        sigma = noise_level(image, noise_sigma)
        weight = _symmetric_discrepancy_weight(image, psf, penalty, sigma)
        info.parameters["noise_sigma"] = sigma
    info.parameters["weight"] = weight
    op = Convolution(psf, boundary=boundary)
    regularizer, _ = penalty_normal(penalty, psf.ndim, boundary)
    image, mask = split_missing(image)

    def normal(x):  # a missing sample leaves the data term: A^T M A
        blurred = op.forward(x)
        return op.adjoint(blurred if mask is None else blurred * mask) + weight * regularizer(x)

    stop = Stopping(iterations, max_iterations=500, tol=1e-5, time_limit=time_limit,
                    min_iterations=1)
    # from the data's floor (0 at least), the classic 0 wherever the data reach
    # 0: the relative tolerance then measures what is left of the detail, not
    # of a constant under the data (100 added to a photo in [0, 1] had stopped
    # wiener's solve 1.3 dB short); from the data's mean instead, a dark
    # volume's solve ran to the cap (500 iterations against 395)
    x = full(op.input_shape(tuple(image.shape)), max(data_floor(image, mask), 0.0),
             like=image)
    residual = op.adjoint(image if mask is None else image * mask) - normal(x)
    direction = residual
    gamma = float(to_numpy((residual * residual).sum()))
    initial = gamma
    for iteration in stop:
        if gamma <= 0:
            stop.reason = "converged"
            break
        q = normal(direction)
        step = gamma / float(to_numpy((direction * q).sum()))
        x = x + step * direction
        residual = residual - step * q
        new_gamma = float(to_numpy((residual * residual).sum()))
        direction = residual + (new_gamma / gamma) * direction
        gamma = new_gamma
        info.history.append((gamma / initial) ** 0.5)
        if callback is not None and callback(iteration, frame(op, x, image.shape)):
            stop.reason = "callback"
            break
        if stop.done(change=(gamma / initial) ** 0.5):
            break
    info.iterations, info.stopped_by, info.seconds = len(info.history), stop.reason, stop.seconds
    restored = frame(op, x, image.shape)
    return (restored, info) if return_info else restored


def unsupervised_wiener(image, psf, *, boundary: str = "symmetric", burn_in: int = 15,
                        min_samples: int = 30, max_samples: int = 200, tol: float = 1e-4,
                        seed=0, return_info: bool = False):
    r"""Unsupervised Wiener–Hunt deconvolution (Orieux et al. [1]_), N-D.

    The noise and object precisions are unknown; a Gibbs sampler draws them
    together with the object, and the posterior mean is returned.  No
    parameter to set.

    Parameters
    ----------
    image, psf, boundary
        As in :func:`wiener` (``"valid"`` not supported: the sampler needs a
        Fourier-diagonal model).
    burn_in : int
        Samples discarded before averaging.
    min_samples, max_samples : int
        Bounds on the number of samples.
    tol : float
        Stop when the running mean changes by less than this (relative).
    seed : int, numpy.random.Generator or None
        The Gibbs sampler's draws: 0 by default, so that the same data give
        the same result (two calls differed by 4% of the range at some pixels
        on a 64² photo); None for fresh draws from the operating system.
    return_info : bool
        Also return an :class:`~deconvkit.restoration.Info` with the
        posterior means of the precisions.

    Notes
    -----
    Model :math:`y = h * x + n`, :math:`n \sim N(0, \gamma_n^{-1})`, prior
    :math:`x \sim N(0, (\gamma_x D^TD)^{-1})` with the Laplacian :math:`D`,
    Jeffreys priors on :math:`\gamma_n, \gamma_x`.  Each sweep samples
    :math:`x` in Fourier (where the posterior covariance is diagonal), then
    :math:`\gamma_n \sim \Gamma(N/2, 2/\|y-Hx\|^2)` and
    :math:`\gamma_x \sim \Gamma((N-1)/2, 2/\|Dx\|^2)`.  Unlike scikit-image's
    version this one is N-D and never clips.

    References
    ----------
    .. [1] F. Orieux, J.-F. Giovannelli and T. Rodet, "Bayesian estimation of
       regularization and point spread function parameters for Wiener–Hunt
       deconvolution", JOSA A 27(7), 2010.
    """
    _check_boundary(boundary, valid=False)
    image, psf = prepare(image, psf)
    # sampled in units of the data's range, where the chain's start (both
    # precisions 1) is reasonable whatever the data's units and whatever
    # constant lies under them
    scale = data_spread(image)
    problem = _PeriodicProblem(image / scale, psf, boundary)
    level = float(to_numpy(image.mean())) / scale  # the chain's change: of the variation
    xp = problem.xp
    rng = np.random.default_rng(seed)
    laplacian = penalty_spectrum("laplacian", problem.shape, image)
    count = math.prod(problem.shape)
    weights = _rfft_multiplicity(problem.shape, image)
    y_spectrum = problem.spectrum
    gamma_n, gamma_x = 1.0, 1.0
    mean = None
    total = 0
    history = []
    for sample in range(1, max_samples + 1):
        precision = gamma_n * problem.power + gamma_x * laplacian
        posterior_mean = gamma_n * xp.conj(problem.otf) * y_spectrum / precision
        noise = _complex_normal(rng, y_spectrum.shape, image) * xp.sqrt(count / (2 * precision))
        x_spectrum = posterior_mean + noise
        residual = float(to_numpy((weights * xp.abs(y_spectrum - problem.otf * x_spectrum) ** 2)
                                  .sum())) / count
        roughness = float(to_numpy((weights * laplacian * xp.abs(x_spectrum) ** 2).sum())) / count
        # floored (in units of the peak) so all-zero data cannot drive a
        # precision past the float range
        gamma_n = rng.gamma(count / 2, 2 / max(residual, 1e-20))
        gamma_x = rng.gamma((count - 1) / 2, 2 / max(roughness, 1e-20))
        if sample <= burn_in:
            continue
        estimate = irfftn(x_spectrum, problem.shape, problem.axes)
        total += 1
        previous = mean
        mean = estimate if mean is None else mean + (estimate - mean) / total
        history.append(residual / count * scale**2)
        if previous is not None and total >= min_samples and \
                relative_change(mean, previous, level) < tol:
            break
    restored = problem.crop(mean) * scale
    if not return_info:
        return restored
    return restored, Info("unsupervised_wiener", dict(boundary=boundary,
                                                      noise_precision=gamma_n / scale**2,
                                                      object_precision=gamma_x / scale**2),
                          iterations=burn_in + total, stopped_by="relative change"
                          if total < max_samples - burn_in else "iterations", history=history)


def _complex_normal(rng, shape, like):
    draw = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    return asarray_complex(draw, like)


def _rfft_multiplicity(fft_shape, like):
    """How often each real-FFT bin appears in the full spectrum (1 or 2)."""
    n = fft_shape[-1]
    w = np.full(n // 2 + 1, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return asarray(w, like)


def penalty_normal(penalty: str, ndim: int, boundary: str):
    """``(x -> D^T D x, a bound on ||D^T D||)`` for a Tikhonov penalty ``D``: the
    identity, the gradient or the Laplacian, by differences with Neumann ends (or
    periodic ones for ``boundary="periodic"``, where the closed forms agree)."""
    grad = Gradient(ndim, boundary="periodic" if boundary == "periodic" else "neumann")

    def normal(x):
        if penalty == "identity":
            return x
        g = grad.adjoint(grad.forward(x))
        return grad.adjoint(grad.forward(g)) if penalty == "laplacian" else g

    # ||D^T D|| of the gradient is at most 4 per axis; the Laplacian's is its square
    bound = {"identity": 1.0, "gradient": 4.0 * ndim, "laplacian": (4.0 * ndim) ** 2}
    return normal, bound[penalty]


def _spectral_balance(problem: _PeriodicProblem, penalty, sigma: float) -> float:
    r"""λ = N σ² / c for the object-spectrum model S_x = c / R fitted to the data.

    ``c`` is the median of :math:`(|Y|^2 - N\sigma^2) R / |H|^2` over the
    frequencies the PSF passes well (:math:`|H|^2 > 0.1`) and where the data
    stand above the noise, so noise-only bins do not inflate it.
    """
    d = problem.d
    y2 = to_numpy(abs(problem.spectrum) ** 2).astype(np.float64)
    y2 = y2.reshape((-1,) + y2.shape[-d:]).mean(axis=0)
    h2 = to_numpy(problem.power).astype(np.float64)
    r = to_numpy(penalty).astype(np.float64)
    noise = math.prod(problem.shape) * sigma**2  # expected |N|² per bin (unnormalised FFT)
    passed = (h2 > 0.1) & (r > 0) & (y2 > 4 * noise)
    if passed.sum() < 16:
        passed = (h2 > 0.1) & (r > 0)
    if not passed.any():  # a PSF that passes nothing well: use every bin
        passed = (h2 > 0) & (r > 0)
    c = float(np.median(np.maximum(y2[passed] - noise, 0) * r[passed] / h2[passed]))
    return noise / c if c > 0 else 0.0


def _symmetric_discrepancy_weight(image, psf, penalty: str, sigma: float) -> float:
    """The discrepancy-principle weight on the frame's symmetric extension: the
    boundary model that leaves no artificial edge for the residual to carry."""
    problem = _PeriodicProblem(image, psf, "symmetric")
    return _discrepancy_weight(problem, penalty_spectrum(penalty, problem.shape, image), sigma)


def _discrepancy_weight(problem: _PeriodicProblem, penalty, sigma: float) -> float:
    """λ whose residual RMS on the frame equals ``sigma`` (bisection in log λ)."""
    scale = float(to_numpy(problem.power.mean() / penalty.mean())) or 1.0

    def excess(log_lam: float) -> float:
        return problem.residual_rms(scale * 10.0**log_lam, penalty) - sigma

    low, high = -12.0, 4.0
    at_low = excess(low)
    if at_low >= 0:
        _warn_no_discrepancy_weight(at_low + sigma, sigma, weakest=True)
        return scale * 10.0**low
    at_high = excess(high)
    if at_high <= 0:
        _warn_no_discrepancy_weight(at_high + sigma, sigma, weakest=False)
        return scale * 10.0**high
    return scale * 10.0 ** scipy.optimize.brentq(excess, low, high, xtol=1e-3)


def _warn_no_discrepancy_weight(residual: float, sigma: float, weakest: bool) -> None:
    """The discrepancy principle has no solution in the weights searched: say
    which end was returned and why, instead of a silent extreme weight."""
    if weakest:
        what = (f"even the weakest weight leaves a residual RMS of {residual:.3g}, above the "
                f"noise level {sigma:.3g}: the data do not fit the model (a wrong PSF or "
                "boundary) or the noise is stronger than noise_sigma says, and the "
                "restoration is nearly unregularised")
    else:
        what = (f"even the strongest weight leaves a residual RMS of {residual:.3g}, below the "
                f"noise level {sigma:.3g}: the noise is weaker than noise_sigma says (or its "
                "estimate; filtered or interpolated data), and the restoration is "
                "over-smoothed")
    warnings.warn(f"the discrepancy principle found no weight: {what}. Give weight= (or "
                  "noise_sigma=)", RuntimeWarning, stacklevel=5)
