"""Pieces every solver shares: PSF preparation, the frame of an extended estimate."""

from __future__ import annotations

import numpy as np

from .._array_api import asarray, asarray_complex
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


def difference_spectra(fft_shape, like) -> list:
    """Transfer functions of periodic forward differences, in ``like``'s library."""
    full_shape = tuple(fft_shape[:-1]) + (fft_shape[-1] // 2 + 1,)
    return [asarray_complex(np.broadcast_to(np.exp(1j * w) - 1, full_shape), like)
            for w in frequencies(fft_shape)]


def penalty_spectrum(kind: str, fft_shape, like):
    """|D|² of the penalty (identity, gradient or Laplacian) on a real-FFT grid."""
    full_shape = tuple(fft_shape[:-1]) + (fft_shape[-1] // 2 + 1,)
    if kind == "identity":
        values = np.ones(full_shape)
    else:
        values = sum(2 - 2 * np.cos(w) for w in frequencies(fft_shape))
        values = np.broadcast_to(values**2 if kind == "laplacian" else values, full_shape)
    return asarray(np.ascontiguousarray(values), like)
