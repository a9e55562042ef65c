"""Colour from raw frames: each pixel behind one colour filter of a Bayer mosaic."""

from __future__ import annotations

import numpy as np

from .._array_api import array_namespace, asarray, clamp_min, to_numpy

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


#: the guide's floor over its mean level that red and blue are fitted under, each
#: tried on held-out samples; None: the colour restored on its own
GUIDE_FLOORS = (0.25, 1.0, 4.0, None)


def from_mosaics(views, psf, scale, pattern, *, shifts, motion, noise_sigma, return_info,
                 **options):
    """:func:`super_resolve` of raw mosaics: the frames registered on their 2 x 2
    tiles, green restored from its own samples (the others missing), then red
    and blue each as green times a smooth ratio, green's detail carried over
    (:func:`guided_fit`), stacked on a last axis."""
    from .._validate import check_array, check_choice
    from ._stopping import binned_by_two
    from .super_resolution import _fit_frames, _motions

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

    def fit(channel, guide=None, held=None):
        seen = masks[channel] if held is None else masks[channel] & ~held
        frames = [xp.where(asarray(seen, like=v) > 0, v, xp.nan) for v in views]
        given = dict(options, tv_weight=0.0) if guide is not None else options
        return _fit_frames(frames, psf, scale, shifts=shifts, motion=motion,
                           noise_sigma=levels[channel], guide=guide, **given)

    green = fit(1)
    fits = [None, green, None]
    for channel in (0, 2):
        fits[channel] = guided_fit(fit, channel, green.x, views, masks[channel])
    restored = xp.stack([f.restored for f in fits], axis=-1)
    return (restored, [f.info for f in fits]) if return_info else restored


def guided_fit(fit, channel, green, views, mask):
    """Red or blue fitted as ``(green + c * mean(green)) * ratio``: a colour seen
    in one sample of four (of sixteen at x2) takes its detail from green, which
    is seen twice as often, and its hue from its own samples.  ``c`` is chosen
    from :data:`GUIDE_FLOORS` by the error on a fifth of the colour's samples
    (held out, then predicted): a large ``c`` loosens the tie to green, where
    hues change within green's detail; None restores the colour on its own."""
    level, positive = float(to_numpy(green.mean())), clamp_min(green, 0.0)

    def guide(floor):
        return None if floor is None else positive + floor * level

    rows, cols = np.indices(mask.shape) // 2
    held = mask & ((rows + 2 * cols) % 5 == 0)  # one tile in five, evenly spread
    errors = [_held_out_error(fit(channel, guide(floor), held), views, held)
              for floor in GUIDE_FLOORS]
    floor = GUIDE_FLOORS[int(np.argmin(errors))]
    chosen = fit(channel, guide(floor))
    chosen.info.parameters["guide_floor"] = floor
    return chosen


def _held_out_error(fit, views, held) -> float:
    """The mean squared error of ``fit``'s prediction of ``views`` at ``held``."""
    total, count = 0.0, 0
    for op, b, view in zip(fit.ops, fit.backgrounds, views):
        y = np.asarray(to_numpy(view), dtype=np.float64)
        predicted = np.asarray(to_numpy(op.forward(fit.x) + b), dtype=np.float64)
        where = held & ~np.isnan(y)
        total += float(((y - predicted)[where] ** 2).sum())
        count += int(where.sum())
    return total / max(count, 1)
