"""Image-quality metrics with an explicit data range (scikit-image's, not rewritten)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import skimage.metrics

from ._array_api import to_numpy

__all__ = ["BorderPSNR", "border_psnr", "psnr", "ssim"]


def _pair(reference, image):
    ref = to_numpy(reference).astype(np.float64)
    img = to_numpy(image).astype(np.float64)
    if ref.shape != img.shape:
        raise ValueError(f"reference shape {ref.shape} differs from image shape {img.shape}")
    return ref, img


def _range(reference, data_range):
    if data_range is None:
        data_range = float(reference.max() - reference.min())
    if not data_range > 0:
        raise ValueError(f"data_range must be > 0, got {data_range!r}; pass it explicitly "
                         "for a constant reference")
    return float(data_range)


def psnr(reference, image, *, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB.

    ``data_range`` defaults to the reference's ``max - min`` (never guessed
    from the dtype); pass it explicitly to compare across images.

    >>> import numpy as np
    >>> round(psnr(np.zeros(4), np.full(4, 0.1), data_range=1.0), 6)
    20.0
    """
    ref, img = _pair(reference, image)
    drange = _range(ref, data_range)
    if np.array_equal(ref, img):  # scikit-image divides by the zero error, with a warning
        return float("inf")
    return float(skimage.metrics.peak_signal_noise_ratio(ref, img, data_range=drange))


def ssim(reference, image, *, data_range: float | None = None, channel_axis=None) -> float:
    """Structural similarity (scikit-image's, Gaussian-weighted as in Wang et al. 2004)."""
    ref, img = _pair(reference, image)
    small = min(s for i, s in enumerate(ref.shape)
                if channel_axis is None or i != channel_axis % ref.ndim)
    win = min(7, small if small % 2 else small - 1)
    if win < 3:
        raise ValueError(f"ssim needs at least 3 samples per axis, got shape {ref.shape}")
    return float(skimage.metrics.structural_similarity(
        ref, img, data_range=_range(ref, data_range), channel_axis=channel_axis,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False, win_size=win))


class BorderPSNR(NamedTuple):
    border: float
    interior: float


def border_psnr(reference, image, *, width: int = 16, data_range: float | None = None,
                axes=None) -> BorderPSNR:
    """PSNR in a band of ``width`` samples along the frame edges, and inside it.

    Edge ringing shows as a border PSNR well below the interior PSNR.

    Parameters
    ----------
    axes : tuple of int, optional
        Spatial axes that have borders (default: all), e.g. ``(0, 1)`` for a
        colour image with channels last.
    """
    ref, img = _pair(reference, image)
    drange = _range(ref, data_range)
    axes = tuple(range(ref.ndim)) if axes is None else tuple(a % ref.ndim for a in axes)
    if not (isinstance(width, (int, np.integer)) and width >= 1):
        raise ValueError(f"width must be an int >= 1, got {width!r}")
    if any(2 * width >= ref.shape[a] for a in axes):
        raise ValueError(f"width={width} leaves no interior in shape {ref.shape}")
    inner = tuple(slice(width, n - width) if i in axes else slice(None)
                  for i, n in enumerate(ref.shape))
    mask = np.ones(ref.shape, bool)
    mask[inner] = False
    err = (ref - img) ** 2

    def db(mse):
        return float("inf") if mse == 0 else float(10 * np.log10(drange**2 / mse))

    return BorderPSNR(border=db(err[mask].mean()), interior=db(err[~mask].mean()))
