"""Closed-form (Fourier) restoration: Wiener / Tikhonov with an automatic weight."""

from __future__ import annotations

import math

import numpy as np
import skimage.restoration

from .._array_api import array_namespace, asarray, irfftn, next_fast_len, rfftn, to_numpy
from .._validate import check_choice
from ..operators import Convolution
from ..operators._padding import pad
from ._common import prepare

__all__ = ["wiener"]

_PENALTIES = ("gradient", "laplacian", "identity")


def wiener(image, psf, *, balance="auto", noise_sigma: float | None = None,
           reg: str = "gradient", boundary: str = "symmetric", return_balance: bool = False):
    r"""Wiener–Tikhonov deconvolution, N-D, with the weight estimated from the data.

    Parameters
    ----------
    image : (N1, ..., Nd) array
        Observed data (numpy, torch or CuPy).
    psf : (K1, ..., Kd) array
        Point-spread function, normalised to sum 1 here.
    balance : float or "auto"
        Regularisation weight :math:`\lambda`.  ``"auto"`` (default) is the
        Wiener choice :math:`\lambda = N\sigma^2 / c`: the noise-to-signal
        ratio for an object spectrum :math:`S_x = c / R` whose scale ``c`` is
        fitted to the data (median of :math:`(|Y|^2 - N\sigma^2) R / |H|^2` over
        the frequencies where :math:`|H|^2 > 0.1` and the data stand above the
        noise).
    noise_sigma : float, optional
        Standard deviation of the noise; estimated from the finest wavelet
        coefficients [2]_ when not given.
    reg : {"gradient", "laplacian", "identity"}
        Penalty :math:`R`: squared gradient (a :math:`1/f^2` image spectrum,
        the natural-image prior), squared Laplacian, or identity (plain
        Tikhonov).
    boundary : {"symmetric", "reflect", "edge", "zero", "periodic"}
        The image is extended with this mode by at least the PSF size (to a
        fast FFT length) before the periodic filter, then cropped back, so
        the wrap-around of the FFT does not ring into the frame.  ``"valid"``
        has no closed form; use :func:`deconvkit.richardson_lucy`.
    return_balance : bool
        Also return the weight used.

    Returns
    -------
    (N1, ..., Nd) array
        Same shape and library as ``image``; never clipped.  With
        ``return_balance``, a tuple ``(restored, balance)``.

    Notes
    -----
    Forward model :math:`y = h * x + n`.  With :math:`H` the transfer
    function and :math:`R` the penalty's spectrum,

    .. math:: \hat x = \mathcal F^{-1}\left[\frac{\overline{H}\, Y}
              {|H|^2 + \lambda R}\right],

    the minimiser of :math:`\|h*x-y\|^2 + \lambda \|Dx\|^2` on the periodic
    extension; with :math:`\lambda = \sigma^2 / S_x` it is the Wiener
    filter [1]_.

    References
    ----------
    .. [1] N. Wiener, *Extrapolation, Interpolation, and Smoothing of
       Stationary Time Series*, MIT Press, 1949.
    .. [2] D. L. Donoho and I. M. Johnstone, "Ideal spatial adaptation by
       wavelet shrinkage", Biometrika 81(3), 1994.

    Examples
    --------
    >>> import numpy as np
    >>> from deconvkit import wiener
    >>> y = np.convolve(np.r_[np.zeros(20), 1.0, np.zeros(20)], [0.25, 0.5, 0.25], "same")
    >>> x = wiener(y, np.array([0.25, 0.5, 0.25]), balance=1e-9, boundary="periodic")
    >>> int(np.argmax(x)), bool(abs(x.max() - 1) < 1e-3)
    (20, True)
    """
    check_choice(reg, "reg", _PENALTIES)
    if boundary == "valid":
        raise ValueError("boundary='valid' has no closed-form Wiener solution; use "
                         "method='richardson_lucy', or boundary='symmetric' for Wiener")
    check_choice(boundary, "boundary", ("symmetric", "reflect", "edge", "zero", "periodic"))
    if not (balance == "auto" or (isinstance(balance, (int, float)) and balance >= 0)):
        raise ValueError(f"balance must be a non-negative number or 'auto', got {balance!r}")
    image, psf = prepare(image, psf)
    xp = array_namespace(image)
    d = psf.ndim
    axes = tuple(range(-d, 0))
    spatial = tuple(image.shape[-d:])

    if boundary == "periodic":
        widths = ((0, 0),) * d
    else:
        widths = []
        for n, k in zip(spatial, psf.shape):
            extra = next_fast_len(n + k - 1) - n
            widths.append((extra // 2, extra - extra // 2))
        widths = tuple(widths)
    extended = pad(image, widths, boundary) if boundary != "periodic" else image
    fft_shape = tuple(extended.shape[-d:])

    otf = Convolution(psf, boundary="periodic").transfer_function(fft_shape, like=extended)
    power = xp.abs(otf) ** 2
    penalty = _penalty_spectrum(reg, fft_shape, otf)
    spectrum = rfftn(extended, fft_shape, axes)
    if balance == "auto":
        sigma = estimate_noise(image) if noise_sigma is None else float(noise_sigma)
        lam = _spectral_balance(spectrum, power, penalty, sigma)
    else:
        lam = balance
    restored = irfftn(spectrum * xp.conj(otf) / (power + lam * penalty), fft_shape, axes)
    keep = tuple(slice(b, b + n) for (b, _), n in zip(widths, spatial))
    restored = restored[(Ellipsis,) + keep]
    return (restored, float(lam)) if return_balance else restored


def _penalty_spectrum(reg: str, fft_shape, like):
    """Spectrum of the penalty on the real-FFT grid, in ``like``'s library."""
    xp = array_namespace(like)
    if reg == "identity":
        return xp.ones_like(like.real)
    total = 0
    d = len(fft_shape)
    for i, n in enumerate(fft_shape):
        count = n // 2 + 1 if i == d - 1 else n
        omega = 2 * np.pi * np.arange(count) / n
        shape = [1] * d
        shape[i] = count
        total = total + (2 - 2 * np.cos(omega)).reshape(shape)
    penalty = total**2 if reg == "laplacian" else total
    return asarray(np.ascontiguousarray(np.broadcast_to(penalty, like.shape[-d:])), like.real)


def estimate_noise(image) -> float:
    """Gaussian noise standard deviation from the finest wavelet details (Donoho's MAD)."""
    host = to_numpy(image).astype(np.float64, copy=False)
    return float(skimage.restoration.estimate_sigma(host))


def _spectral_balance(spectrum, power, penalty, sigma: float) -> float:
    r"""λ = N σ² / c for the image-spectrum model S_x = c / R fitted to the data.

    ``c`` is the median of :math:`(|Y|^2 - N\sigma^2) R / |H|^2` over the
    frequencies the PSF passes well (:math:`|H|^2 > 0.1`) and where the data
    stand above the noise, so noise-only bins do not inflate it.
    """
    d = penalty.ndim
    y2 = to_numpy(abs(spectrum) ** 2).astype(np.float64)
    y2 = y2.reshape((-1,) + y2.shape[-d:]).mean(axis=0)
    h2 = to_numpy(power).astype(np.float64)
    r = to_numpy(penalty).astype(np.float64)
    count = math.prod(spectrum.shape[-d:-1]) * 2 * (spectrum.shape[-1] - 1)
    noise = count * sigma**2  # expected |N|^2 per bin (unnormalised FFT)
    # bins the PSF passes well and where the object stands above the noise
    passed = (h2 > 0.1) & (r > 0) & (y2 > 4 * noise)
    if passed.sum() < 16:
        passed = (h2 > 0.1) & (r > 0)
    if not passed.any():  # a PSF that passes nothing well: use every bin
        passed = (h2 > 0) & (r > 0)
    c = float(np.median(np.maximum(y2[passed] - noise, 0) * r[passed] / h2[passed]))
    return noise / c if c > 0 else 0.0
