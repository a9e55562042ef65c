"""Colour from raw frames: each pixel behind one colour filter of a Bayer mosaic."""

from __future__ import annotations

import numpy as np

from .._array_api import array_namespace, asarray, to_numpy

#: a 2 x 2 tile's colours, row by row: which channel (R 0, G 1, B 2) each site sees
BAYER_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")


def channel_masks(pattern: str, shape) -> np.ndarray:
    """``(3, *shape)`` booleans: the samples of a ``pattern`` mosaic that see R, G, B."""
    masks = np.zeros((3,) + tuple(shape), dtype=bool)
    for site, colour in enumerate(pattern):
        masks["RGB".index(colour), site // 2::2, site % 2::2] = True
    return masks


def lifted(motions: np.ndarray) -> np.ndarray:
    """Shifts or affine maps registered on the binned frames, in the mosaic's
    pixels: tile ``u`` is centred on pixel ``2 u + 0.5``."""
    if motions.ndim == 2:
        return 2 * motions
    out = motions.copy()
    for k, m in enumerate(motions):
        out[k, :, 2] = 2 * m[:, 2] + 0.5 - m[:, :2] @ np.full(2, 0.5)
    return out


def channel_noise(frames, masks) -> list[float]:
    """Each channel's noise level, from the frames' sub-lattices of that colour
    (complete images, which the noise estimator needs)."""
    from ._stopping import estimate_noise

    levels = []
    for mask in masks:
        sites = [(i, j) for i in (0, 1) for j in (0, 1) if mask[i, j]]
        squares = [estimate_noise(np.asarray(to_numpy(f), dtype=np.float64)[i::2, j::2]) ** 2
                   for f in frames for i, j in sites]
        levels.append(float(np.mean(squares)) ** 0.5)
    return levels


def from_mosaics(views, psf, scale, pattern, *, shifts, motion, noise_sigma, return_info,
                 **options):
    """:func:`super_resolve` of raw mosaics: the frames registered on their 2 x 2
    tiles, then each colour restored from its own samples (the others missing),
    stacked on a last axis."""
    from .._validate import check_array, check_choice
    from ._stopping import binned_by_two
    from .super_resolution import _motions, super_resolve

    check_choice(pattern, "bayer", BAYER_PATTERNS)
    views = [check_array(v, "frames", missing=True) for v in views]
    if views[0].ndim != 2:
        raise ValueError(f"bayer takes 2-D raw frames (one sample a pixel), got "
                         f"{views[0].ndim}-D; demosaic colour frames first, or give "
                         "channel_axis")
    if isinstance(shifts, str):  # registered on the 2 x 2 tiles, which hold every colour
        shifts = lifted(_motions(shifts, motion, [binned_by_two(v) for v in views]))
    masks = channel_masks(pattern, views[0].shape)
    levels = channel_noise(views, masks) if noise_sigma is None else [noise_sigma] * 3
    xp = array_namespace(views[0])
    results = []
    for mask, level in zip(masks, levels):
        seen = asarray(mask, like=views[0]) > 0
        frames = [xp.where(seen, v, xp.nan) for v in views]
        results.append(super_resolve(frames, psf, scale, shifts=shifts, noise_sigma=level,
                                     return_info=True, **options))
    restored = xp.stack([r for r, _ in results], axis=-1)
    return (restored, [info for _, info in results]) if return_info else restored
