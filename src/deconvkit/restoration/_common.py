"""Pieces every solver shares: PSF preparation, the frame of an extended estimate."""

from __future__ import annotations

import warnings

import numpy as np

from .._array_api import (
    array_namespace,
    asarray,
    clamp_min,
    is_torch,
    next_fast_len,
    to_numpy,
)
from .._validate import central_window, check_array, check_psf, has_nan
from ..operators import Convolution, SpaceVariantConvolution
from ..operators.space_variant import bind as bind_space_variant
from ._stopping import estimate_noise, rms

# the solvers that take a SpaceVariantConvolution as their psf
#: the floor of a data-scaled quantity that is divided by: no scale of its own, so
#: that data in any units (fluxes of 1e-17 erg/s/cm^2/A) restore as in others
TINY = float(np.finfo(np.float64).tiny)
SPACE_VARIANT = ("total_variation", "richardson_lucy", "richardson_lucy_tv", "landweber", "gold")


def prepare(image, psf, *, in_place: str | None = None, missing: bool = False,
            space_variant: bool = False, larger: bool = False):
    """Validated working-float image and a unit-sum PSF in the image's library.

    ``in_place``: the name of a solver that updates arrays in place, so it
    cannot be differentiated: a torch tensor that requires grad is detached,
    with a warning (autograd refuses in-place ``out=`` operations on it).
    ``missing``: NaN samples are let through (see :func:`split_missing`).
    ``space_variant``: the solver takes a :class:`SpaceVariantConvolution` as
    ``psf`` (returned as it is; :func:`blur_operator` binds it).
    ``larger``: the PSF may be longer than the image (see
    :func:`~deconvkit._validate.check_psf`).
    """
    if in_place and getattr(image, "requires_grad", False):
        warnings.warn(f"{in_place} updates arrays in place and is not differentiable: the image "
                      "was detached, so no gradient flows through the result (wiener, "
                      "tikhonov and cgls are differentiable)", UserWarning, stacklevel=3)
        image = image.detach()
    image = check_array(image, "image", missing=missing, missing_hint=True)
    if isinstance(psf, SpaceVariantConvolution):
        if not space_variant:
            raise TypeError(f"a SpaceVariantConvolution is a psf for {', '.join(SPACE_VARIANT)}; "
                            "this method takes one PSF")
        if psf.ndim > image.ndim:
            raise ValueError(f"the space-variant PSFs are {psf.ndim}-D but the image has "
                             f"{image.ndim} dims")
        return image, psf
    psf = check_psf(psf, tuple(image.shape), larger=larger)
    if all(n == 1 for n in image.shape[-psf.ndim:]):
        raise ValueError(f"image of shape {tuple(image.shape)} has one sample per {psf.ndim}-D "
                         "item: there is nothing to deconvolve")
    psf = asarray(psf, image)
    return image, psf / psf.sum()


def blur_operator(psf, image, boundary: str, **options):
    """The blur of a solver: a :class:`Convolution` of ``psf``, or a
    :class:`SpaceVariantConvolution` under the solver's ``boundary`` with unit-sum
    PSFs in ``image``'s library."""
    if isinstance(psf, SpaceVariantConvolution):
        return bind_space_variant(psf, image, boundary)
    return Convolution(psf, boundary=boundary, **options)


def split_missing(image):
    """``(filled, mask)``: the image with its NaN samples (missing data: bad or
    masked pixels, detector gaps) set to 0, and a 0/1 mask of the observed ones
    in the working dtype, or ``(image, None)`` when nothing is missing.

    A solver multiplies its data term's residual (or dual) by the mask, so a
    missing sample constrains nothing and the object there is estimated from
    its neighbours through the blur and the prior, as the unobserved border
    of the ``"valid"`` model is.
    """
    xp = array_namespace(image)
    if not has_nan(image):  # checked by blocks: the usual case makes no mask
        return image, None
    absent = xp.isnan(image)
    if bool(to_numpy(absent.all())):
        raise ValueError("image is all NaN: no sample was observed")
    mask = (~absent).to(image.dtype) if is_torch(xp) else (~absent).astype(image.dtype)
    filled = xp.where(absent, xp.zeros_like(image), image)
    return filled, mask


def saturated_mask(image, saturation):
    """``(censored, for_statistics)``: a 0/1 mask of the samples at or above
    ``saturation`` (None when none is given or reached), and the image with
    them set to NaN, for the noise and weight estimates (a saturated flat has
    no noise and no edges to measure).

    A saturated sample records a lower bound: the light there is at least the
    level, so the data term asks only ``Ax >= saturation`` of it.
    """
    if saturation is None:
        return None, image
    if isinstance(saturation, bool) or not isinstance(
            saturation, (int, float, np.integer, np.floating)) or not np.isfinite(saturation):
        raise ValueError(f"saturation must be a finite level (the detector's maximum), or None; "
                         f"got {saturation!r}")
    xp = array_namespace(image)
    high = image >= saturation  # NaN (missing) compares False
    if not bool(to_numpy(high.any())):
        return None, image
    censored = high.to(image.dtype) if is_torch(xp) else high.astype(image.dtype)
    return censored, xp.where(high, xp.full_like(image, float("nan")), image)


def filled_for_spectra(image, psf):
    """``image`` with its NaN samples filled by normalised convolution with
    ``psf`` (the blur-weighted mean of the observed samples around them; the
    observed mean where none is in reach): a stand-in for the spectral
    estimates behind the automatic weights, smooth like blurred data, so the
    discrepancy principle still finds a residual at the noise level (the solve
    itself leaves the samples out)."""
    filled, mask = split_missing(image)
    if mask is None:
        return image
    # a PSF longer than the image (a thin stack) is cut to it about its centre:
    # normalised convolution needs no unit sum
    smooth = Convolution(psf[central_window(psf.shape, image.shape)], boundary="symmetric")
    weight = smooth.forward(mask)
    local = smooth.forward(filled) / clamp_min(weight, 1e-12)
    xp = array_namespace(image)
    local = xp.where(weight > 1e-3, local, observed_mean(filled, mask, image.ndim))
    return filled + (1.0 - mask) * local


def observed_mean(image, mask, ndim: int):
    """Mean of ``image`` over its observed samples (all when ``mask`` is None),
    over the trailing ``ndim`` axes, kept as broadcastable axes."""
    if mask is None:
        return mean_over(image, ndim)
    return mean_over(image * mask, ndim) / clamp_min(mean_over(mask, ndim), 1e-12)


def observed_rms(difference, mask) -> float:
    """Root mean square of ``difference`` over the observed samples (all when
    ``mask`` is None), as a float."""
    if mask is None:
        return rms(difference)
    masked = difference * mask
    return (float(to_numpy((masked * masked).sum())) / max(float(to_numpy(mask.sum())), 1.0)) ** 0.5


def _samples(image, mask=None) -> np.ndarray:
    """At most 2**16 evenly spaced samples of ``image``, as float64 numpy;
    missing ones (NaN, or 0 in ``mask``) left out."""
    flat = image.reshape(-1)
    stride = max(1, flat.shape[0] >> 16)
    samples = to_numpy(flat[::stride]).astype(np.float64)
    keep = ~np.isnan(samples)  # missing samples (NaN) say nothing
    if mask is not None:
        keep &= to_numpy(mask.reshape(-1)[::stride]) > 0
    return samples[keep]


def data_peak(image) -> float:
    """The data's peak, robust to a few hot pixels: the 99.9th percentile of
    ``|image|`` over at most 2**16 evenly spaced samples."""
    return max(float(np.quantile(np.abs(_samples(image)), 0.999)), 1e-30)


def data_floor(image, mask=None) -> float:
    """The data's floor, robust to a few dead pixels and the noise's dips: the
    1st percentile over at most 2**16 evenly spaced samples (the observed
    ones: NaN, or 0 in ``mask``, left out)."""
    return float(np.quantile(_samples(image, mask), 0.01))


def data_spread(image, mask=None) -> float:
    """The data's range, robust to a few hot or dead pixels: the 99.9th less
    the 0.1th percentile over at most 2**16 evenly spaced samples (the
    observed ones: ``mask`` 1, once NaN were filled).  The scale of a
    Gaussian-noise solver's steps: unlike the peak it ignores a constant
    under the data (a camera's offset, a sky), which does not change the
    problem."""
    low, high = np.quantile(_samples(image, mask), [0.001, 0.999])
    return max(float(high - low), 1e-30)


def is_signed(image, sigma: float | None = None) -> bool:
    """Whether the data are a signed signal (a seismic trace, audio, a
    background-subtracted difference): more than 1 % of the samples below
    ``-3 sigma``, where noise around a non-negative scene puts 0.13 %.
    ``sigma`` is estimated when not given."""
    sigma = estimate_noise(image) if sigma is None else sigma
    samples = _samples(image)
    floor = -3.0 * sigma - 1e-6 * max(float(np.abs(samples).max()), 1e-30)
    return float(np.quantile(samples, 0.01)) < floor


def offset(background, image):
    """A solver's ``background``: a float, or an array of ``image``'s shape in its
    library (a continuum, a sky map); non-negative either way."""
    if isinstance(background, (int, float, np.integer, np.floating)) \
            and not isinstance(background, bool):
        if not background >= 0:
            raise ValueError(f"background must be >= 0, got {background!r}")
        return float(background)
    background = check_array(background, "background")
    if tuple(background.shape) != tuple(image.shape):
        raise ValueError(f"background has shape {tuple(background.shape)}; it must be a "
                         f"number or an array of the image's shape {tuple(image.shape)}")
    if float(to_numpy(background.min())) < 0:
        raise ValueError("background has negative samples; it must be >= 0")
    return asarray(background, image)


def data_term_background(background, image, data: str):
    """``(image, background, report)`` for a solver whose data term is ``data``:
    the known background ``b`` of ``y = Ax + b`` (a level or an array, checked
    by :func:`offset`) is subtracted from the data for the Gaussian term, where
    ``y - b = Ax + n`` is the same model (the background returned is then 0),
    and kept for the Poisson term, whose counts it shifts.  ``report`` is the
    entry for the solver's ``Info``: empty for none, the level, or "array"."""
    background = offset(background, image)
    level = isinstance(background, float)
    report = {} if level and background == 0.0 else {
        "background": background if level else "array"}
    if data != "gaussian" or not report:
        return image, background, report
    return image - background, 0.0, report


def mean_level(background) -> float:
    """A background's mean (a level is its own)."""
    return background if isinstance(background, float) else float(to_numpy(background.mean()))


def read_noise_shift(read_noise) -> float:
    """The shifted-Poisson offset :math:`\\sigma_r^2` for a camera's read noise
    :math:`\\sigma_r` (Snyder et al. 1993: ``y + s^2 ~ Poisson(Ax + b + s^2)``),
    0 for none; the data must be in counts."""
    if not (isinstance(read_noise, (int, float)) and not isinstance(read_noise, bool)
            and 0 <= read_noise < float("inf")):
        raise ValueError(f"read_noise must be a number >= 0 (its standard deviation in the "
                         f"data's counts), got {read_noise!r}")
    return float(read_noise) ** 2


def warn_if_signed(image, sigma: float, name: str, *, stacklevel: int):
    """Warn when a solver of non-negative intensities gets a signed signal
    (:func:`is_signed`): its negative samples count as 0 there."""
    if is_signed(image, sigma):
        warnings.warn(f"{name} models non-negative intensities, but over 1 % of the data "
                      "lie below -3 sigma (a signed signal?); their negative samples count "
                      "as 0. total_variation, wiener or deconvkit.signal keep the sign",
                      UserWarning, stacklevel=stacklevel + 1)


def non_negative_psf(psf, name: str, *, stacklevel: int):
    """The PSF with its negative samples set to 0, renormalised (a
    :class:`SpaceVariantConvolution`'s must have none).

    A multiplicative update (RL, Gold) needs ``Ax + b > 0`` for every
    ``x >= 0``, which negative PSF samples break: with the small negatives
    that background subtraction leaves in a measured PSF, RL diverged (-500 dB
    on a test phantom).
    """
    if isinstance(psf, SpaceVariantConvolution):
        if float(to_numpy(psf.psfs.min())) < 0:
            raise ValueError(f"{name} needs non-negative PSFs; clip the "
                             "SpaceVariantConvolution's psfs at 0")
        return psf
    low = float(to_numpy(psf.min()))
    if low >= 0:
        return psf
    count = int(to_numpy((psf < 0).sum()))
    warnings.warn(f"psf has {count} negative samples (min {low:.3g} of a unit-sum PSF); "
                  f"{name} needs a non-negative PSF, so they were set to 0 (clip the PSF "
                  "yourself to silence this)", UserWarning, stacklevel=stacklevel + 1)
    psf = clamp_min(psf, 0.0)
    return psf / psf.sum()


def resolve_nonnegative(value, image, sigma: float | None = None) -> bool:
    """``nonnegative="auto"``: constrain ``x >= 0`` unless the data are signed
    (:func:`is_signed`)."""
    if isinstance(value, str) and value == "auto":
        return not is_signed(image, sigma)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"nonnegative must be True, False or 'auto', got {value!r}")


def fft_grid(op: Convolution, spatial):
    """The FFT grid on which a ``"valid"`` or ``"periodic"`` model is diagonal, and the
    index of the observed window in it.

    For ``"valid"`` the grid is the extended domain ``n + K - 1`` rounded up to
    fast lengths (the circular blur of the extra samples never reaches an
    observed one) and the window sits after the left extension; for
    ``"periodic"`` the grid is the frame itself.
    """
    d = op.ndim
    if op.boundary == "valid":
        grid = tuple(next_fast_len(n) for n in op.input_shape(spatial))
        offset = tuple(b for b, _ in op.widths)
    else:
        grid, offset = tuple(spatial), (0,) * d
    return grid, (Ellipsis,) + tuple(slice(o, o + n) for o, n in zip(offset, spatial))


def frame(op: Convolution, x, image_shape):
    """The part of an estimate ``x`` (on the operator's input domain) that the image shows.

    Same-size boundary models return ``x`` itself; ``"valid"`` crops the
    extended object to the observed frame.
    """
    if op.boundary != "valid":
        return x
    d = op.ndim
    keep = tuple(slice(b, b + n) for (b, _), n in zip(op.widths, image_shape[-d:]))
    return x[(Ellipsis,) + keep]


def mean_over(x, ndim: int):
    """Mean over the trailing ``ndim`` axes, kept as broadcastable axes."""
    axes = tuple(range(x.ndim - ndim, x.ndim))
    return x.mean(axis=axes, keepdims=True)  # numpy and torch both take these names


def frequencies(fft_shape) -> list:
    """Angular frequencies of a real-FFT grid, one broadcastable numpy array per axis."""
    d = len(fft_shape)
    out = []
    for i, n in enumerate(fft_shape):
        count = n // 2 + 1 if i == d - 1 else n
        shape = [1] * d
        shape[i] = count
        out.append((2 * np.pi * np.arange(count) / n).reshape(shape))
    return out


def penalty_spectrum(kind: str, fft_shape, like):
    """|D|² of the penalty (identity, gradient or Laplacian) on a real-FFT grid."""
    full_shape = tuple(fft_shape[:-1]) + (fft_shape[-1] // 2 + 1,)
    if kind == "identity":
        values = np.ones(full_shape)
    else:
        values = sum(2 - 2 * np.cos(w) for w in frequencies(fft_shape))
        values = np.broadcast_to(values**2 if kind == "laplacian" else values, full_shape)
    return asarray(np.ascontiguousarray(values), like)


def multiply_(spectrum, otf):
    """In place: ``spectrum * otf`` (a block function for ``blockwise``)."""
    spectrum *= otf


def empty_spectrum(x, axes):
    """An uninitialised array for the real FFT of ``x`` over ``axes``."""
    shape = list(x.shape)
    shape[axes[-1]] = shape[axes[-1]] // 2 + 1
    xp = array_namespace(x)
    dtype = xp.complex64 if x.dtype == xp.float32 else xp.complex128
    if is_torch(xp):
        return xp.empty(tuple(shape), dtype=dtype, device=x.device)
    return xp.empty(tuple(shape), dtype=dtype)
