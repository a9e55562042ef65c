"""Classic iterative restoration: projected Landweber and Van Cittert."""

from __future__ import annotations

from collections.abc import Callable

from .._array_api import clamp_min, full, to_numpy
from .._validate import check_choice
from ..operators import BOUNDARIES, Convolution, Pad, SpaceVariantConvolution
from ._common import (
    blur_operator,
    frame,
    mean_over,
    observed_rms,
    prepare,
    resolve_nonnegative,
    split_missing,
)
from ._stopping import Info, Stopping, noise_level

__all__ = ["landweber", "van_cittert"]


def landweber(image, psf, *, iterations="auto", step: float | None = None,
              nonnegative="auto", boundary: str = "valid",
              noise_sigma: float | None = None, time_limit: float | None = None,
              callback: Callable | None = None, return_info: bool = False):
    r"""Projected Landweber iteration, N-D, any boundary model.

    Parameters
    ----------
    image : (N1, ..., Nd) array
        NaN samples are missing data, left out of the residual (filled in
        through the adjoint of the blur from their neighbours).
    psf : (K1, ..., Kd) array or SpaceVariantConvolution
        Normalised to sum 1 here (each of a SpaceVariantConvolution's PSFs,
        ``boundary`` applied to it).
    iterations : int or "auto"
        ``"auto"``: stop by the discrepancy principle (residual RMS at the
        estimated noise level), at most 1000 iterations.
    step : float, optional
        :math:`\tau`; default :math:`1.9 / \|A\|^2` (convergent for any
        :math:`\tau < 2/\|A\|^2`; :math:`\|A\| \le 1` for a non-negative PSF).
    nonnegative : bool or "auto"
        Project onto :math:`x \ge 0` after each step; ``"auto"``: unless the
        data are a signed signal (see :func:`deconvkit.total_variation`).
    boundary : str
        See :class:`deconvkit.Convolution`; ``"valid"`` by default.
    noise_sigma, time_limit, callback, return_info
        As in :func:`deconvkit.richardson_lucy`.

    Notes
    -----
    Gradient descent on :math:`\tfrac12\|Ax-y\|^2` [1]_:

    .. math:: x \leftarrow P_+\!\left(x + \tau A^T(y - Ax)\right).

    The iteration count is the regulariser.

    References
    ----------
    .. [1] L. Landweber, "An iteration formula for Fredholm integral equations
       of the first kind", Amer. J. Math. 73, 1951.
    """
    check_choice(boundary, "boundary", BOUNDARIES)
    image, psf = prepare(image, psf, missing=True, space_variant=True)
    op = blur_operator(psf, image, boundary)
    if step is None:
        # a non-negative unit-sum PSF has ‖A‖ <= 1 (Young's inequality): no power
        # iteration; a space-variant blur may exceed 1 (Schur's bound instead)
        domain = op.input_shape(tuple(image.shape[-psf.ndim:]))
        kernels = op.psfs if isinstance(op, SpaceVariantConvolution) else psf
        if float(to_numpy(kernels.min())) < 0:
            norm = op.norm(domain, like=image)
        elif isinstance(op, SpaceVariantConvolution):
            norm = max(op.norm_bound(domain, like=image), 1.0)
        else:
            norm = 1.0
        step = 1.9 / norm**2
    elif not step > 0:
        raise ValueError(f"step must be > 0, got {step!r}")
    sigma = _noise(image, iterations, noise_sigma)
    image, mask = split_missing(image)
    nonnegative = resolve_nonnegative(nonnegative, image, sigma)
    stop = Stopping(iterations, max_iterations=1000, target=sigma, time_limit=time_limit)
    x = full(op.input_shape(tuple(image.shape)), 0.0, like=image)  # the classic start
    x, history = _iterate(op, image, mask, x, lambda r: step * op.adjoint(r), nonnegative,
                          stop, callback)
    return _finish(op, x, image, "landweber", dict(step=step, boundary=boundary,
                   nonnegative=nonnegative, noise_sigma=sigma), stop, history, return_info)


def van_cittert(image, psf, *, iterations="auto", relaxation: float = 1.0,
                nonnegative: bool = False, boundary: str = "edge",
                noise_sigma: float | None = None, time_limit: float | None = None,
                callback: Callable | None = None, return_info: bool = False):
    r"""Van Cittert iteration, N-D.

    Parameters
    ----------
    image, psf, iterations, nonnegative, boundary, noise_sigma, time_limit, callback, return_info
        As in :func:`landweber`, but NaN samples are refused: without an
        adjoint no neighbour ever corrects a missing sample.
    relaxation : float
        :math:`\beta` in (0, 2); converges for symmetric PSFs whose transfer
        function is positive.

    Notes
    -----
    .. math:: x \leftarrow x + \beta\, E(y - Ax)

    with :math:`E` the identity for same-size boundary models (default
    ``"edge"``, the extension that misleads an adjoint-free iteration least)
    and, for ``"valid"``, the embedding of the frame into the extended domain
    (zero outside) [1]_.  Without an adjoint the border beyond
    the frame is never corrected, so ``"valid"`` is weaker here than for the
    other solvers.  Unlike Landweber it
    uses no adjoint, and it diverges for PSFs with negative transfer
    function values (disk, motion): prefer :func:`landweber` there.

    References
    ----------
    .. [1] P. H. van Cittert, "Zum Einfluß der Spaltbreite auf die
       Intensitätsverteilung in Spektrallinien II", Z. Physik 69, 1931.
    """
    check_choice(boundary, "boundary", BOUNDARIES)
    if not 0 < relaxation < 2:
        raise ValueError(f"relaxation must be in (0, 2), got {relaxation!r}")
    # no NaN: without an adjoint a missing sample's neighbours never correct it
    image, psf = prepare(image, psf)
    op = Convolution(psf, boundary=boundary)
    embed = Pad(op.widths, "zero") if boundary == "valid" else None
    sigma = _noise(image, iterations, noise_sigma)
    stop = Stopping(iterations, max_iterations=1000, target=sigma, time_limit=time_limit)
    x = full(op.input_shape(tuple(image.shape)), 0.0, like=image) + mean_over(image, psf.ndim)
    x, history = _iterate(op, image, None, x,
                          lambda r: relaxation * (embed.forward(r) if embed else r),
                          nonnegative, stop, callback)
    return _finish(op, x, image, "van_cittert", dict(relaxation=relaxation, boundary=boundary,
                   nonnegative=nonnegative, noise_sigma=sigma), stop, history, return_info)


def _iterate(op, image, mask, x, increment, nonnegative, stop, callback):
    """x += increment(y - Ax) until ``stop``; the shared loop of Landweber and Van
    Cittert.  Missing samples (``mask`` 0) leave the residual."""
    history = []
    for iteration in stop:
        residual = image - op.forward(x)
        if mask is not None:
            residual = residual * mask
        history.append(observed_rms(residual, mask))
        if stop.done(residual=history[-1]):
            break
        x = x + increment(residual)
        if nonnegative:
            x = clamp_min(x, 0.0)
        if callback is not None and callback(iteration, frame(op, x, image.shape)):
            stop.reason = "callback"
            break
    return x, history


def _noise(image, iterations, noise_sigma):
    if iterations != "auto":
        return noise_sigma
    return noise_level(image, noise_sigma)


def _finish(op, x, image, name, parameters, stop, history, return_info):
    restored = frame(op, x, image.shape)
    if not return_info:
        return restored
    return restored, Info(name, parameters, iterations=len(history), stopped_by=stop.reason,
                          history=history, seconds=stop.seconds)
