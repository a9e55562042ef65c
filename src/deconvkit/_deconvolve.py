"""``deconvolve``: one entry point over every restoration method."""

from __future__ import annotations

from ._array_api import array_namespace, is_torch
from ._validate import check_array, check_channel_axis, check_choice, check_psf
from .restoration import richardson_lucy, wiener

__all__ = ["METHODS", "deconvolve"]

#: method name -> (function, boundary used by boundary="auto")
METHODS = {
    "richardson_lucy": (richardson_lucy, "valid"),
    "wiener": (wiener, "symmetric"),
}


def deconvolve(image, psf, *, method: str = "richardson_lucy", boundary: str = "auto",
               channel_axis: int | None = None, **options):
    """Restore ``image`` blurred by ``psf``: the library's front door.

    Parameters
    ----------
    image : (N1, ..., Nd) array, or with one extra channel axis
        numpy, torch (CPU or CUDA) or CuPy array; the result has the same
        library, device and shape, in the working float dtype
        (see :mod:`deconvkit._array_api`).  Integer images are promoted.
    psf : (K1, ..., Kd) array
        Point-spread function (normalised to sum 1 by the solvers).
    method : {"richardson_lucy", "wiener"}
        The algorithm; its keyword options pass through ``**options``
        (e.g. ``iterations=``, ``balance=``, ``callback=``).
    boundary : str
        ``"auto"`` picks the model that avoids edge ringing for the method:
        ``"valid"`` (non-circulant) for Richardson–Lucy, ``"symmetric"``
        extension for Wiener.  Any name of :class:`deconvkit.Convolution`.
    channel_axis : int, optional
        Axis of colour channels; each channel is restored with the same PSF.

    Examples
    --------
    >>> import numpy as np
    >>> from deconvkit import deconvolve, psf, simulate
    >>> truth = np.zeros((48, 48, 3)); truth[16:32, 16:32] = [1.0, 0.5, 0.2]
    >>> blurred = simulate(truth, psf.gaussian(1.5)[..., None], noise="none")
    >>> restored = deconvolve(blurred, psf.gaussian(1.5), channel_axis=-1)
    >>> restored.shape
    (48, 48, 3)
    """
    check_choice(method, "method", tuple(METHODS))
    solver, auto_boundary = METHODS[method]
    if boundary == "auto":
        boundary = auto_boundary
    image = check_array(image, "image")
    channel_axis = check_channel_axis(channel_axis, image.ndim, _ndim(psf))
    if channel_axis is None:
        check_psf(psf, tuple(image.shape))
        return solver(image, psf, boundary=boundary, **options)
    xp = array_namespace(image)
    channels = xp.moveaxis(image, channel_axis, 0)
    check_psf(psf, tuple(channels.shape[1:]))
    restored = [solver(c, psf, boundary=boundary, **options) for c in channels]
    stacked = xp.stack(restored, 0) if is_torch(xp) else xp.stack(restored, axis=0)
    return xp.moveaxis(stacked, 0, channel_axis)


def _ndim(psf) -> int:
    ndim = getattr(psf, "ndim", None)
    if ndim is None:
        return check_array(psf, "psf").ndim
    return ndim
