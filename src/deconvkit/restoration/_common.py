"""Pieces every solver shares: PSF preparation, the frame of an extended estimate."""

from __future__ import annotations

from .._array_api import asarray
from .._validate import check_array, check_psf
from ..operators import Convolution


def prepare(image, psf):
    """Validated working-float image and a unit-sum PSF in the image's library."""
    image = check_array(image, "image")
    psf = check_psf(psf, tuple(image.shape))
    psf = asarray(psf, image)
    return image, psf / psf.sum()


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
