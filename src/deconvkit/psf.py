"""Point-spread functions: generators for optics, motion and microscopy, and utilities.

Every generator returns a non-negative numpy float64 array that sums to 1,
with its centre on sample ``K // 2`` of each axis (the convention of
:class:`deconvkit.Convolution`).  Sizes default to odd numbers so the centre
is the middle sample.  Lengths are in pixels unless a parameter says
otherwise (the widefield model takes micrometres).
"""

from __future__ import annotations

import inspect
import math
import operator

import numpy as np
import scipy.ndimage as ndi
import scipy.signal
import scipy.special

from ._validate import check_array

__all__ = [
    "airy",
    "camera_shake",
    "center",
    "confocal",
    "crop_or_pad",
    "disk",
    "from_measurement",
    "from_spec",
    "grid_from_sources",
    "isolated_sources",
    "gaussian",
    "light_sheet",
    "moffat",
    "motion",
    "normalize",
    "radial_average",
    "resample",
    "spec_spacing",
    "two_photon",
    "widefield",
]


# ---------------------------------------------------------------- utilities
def normalize(psf) -> np.ndarray:
    """Return ``psf / psf.sum()``; the sum must be positive.

    >>> normalize(np.array([1.0, 3.0])).tolist()
    [0.25, 0.75]
    """
    psf = np.asarray(check_array(psf, "psf"), dtype=np.float64)
    total = psf.sum()
    if not total > 0:
        raise ValueError(f"psf sums to {total:g}; a PSF must have a positive sum")
    return psf / total


def crop_or_pad(psf, shape) -> np.ndarray:
    """Crop or zero-pad ``psf`` to ``shape`` about its centre sample, then renormalise.

    The centre sample ``K // 2`` of the input lands on ``shape // 2``.

    >>> crop_or_pad(gaussian(2.0), (5, 5)).shape
    (5, 5)
    """
    psf = np.asarray(check_array(psf, "psf"), dtype=np.float64)
    shape = tuple(int(n) for n in shape)
    if len(shape) != psf.ndim or any(n < 1 for n in shape):
        raise ValueError(f"shape must be {psf.ndim} positive ints, got {shape}")
    out = np.zeros(shape)
    src, dst = [], []
    for k, n in zip(psf.shape, shape):
        offset = n // 2 - k // 2  # where source sample 0 lands
        lo, hi = max(0, offset), min(n, offset + k)
        dst.append(slice(lo, hi))
        src.append(slice(lo - offset, hi - offset))
    out[tuple(dst)] = psf[tuple(src)]
    return normalize(out)


def center(psf, *, subpixel: bool = False) -> np.ndarray:
    """Shift ``psf`` so its centroid lies on the centre sample ``K // 2``.

    Integer shifts by default (exact, no interpolation); ``subpixel=True``
    also removes the fractional offset by linear interpolation.
    """
    psf = normalize(psf)
    grids = np.indices(psf.shape, dtype=np.float64)
    centroid = np.array([(g * psf).sum() for g in grids])
    shift = np.array([k // 2 for k in psf.shape]) - centroid
    if not subpixel:
        shift = np.round(shift)
    shifted = ndi.shift(psf, shift, order=1 if subpixel else 0, mode="grid-constant")
    return normalize(np.clip(shifted, 0, None))


def radial_average(psf) -> np.ndarray:
    """Average ``psf`` over rotations about its centre sample ``K // 2``.

    2-D: about the centre; 3-D: each plane of axis 0 about the optical axis
    through the centre of the last two (a microscope's PSF, z first); 1-D:
    the mean with its mirror image.  A measured PSF's noise falls by about the
    square root of the samples on each ring; what is not symmetric (coma,
    astigmatism, a star's spikes) is averaged away too.  Returns a unit-sum
    array (negative rings, e.g. of noise, are kept: clip before normalising
    if need be).

    >>> g = gaussian(2.0)
    >>> bool(np.abs(radial_average(g) - g).max() < 0.02 * g.max())
    True
    """
    psf = np.asarray(check_array(psf, "psf"), dtype=np.float64)
    if psf.ndim == 1:
        centre = psf.shape[0] // 2
        mirrored = np.zeros_like(psf)
        index = 2 * centre - np.arange(psf.shape[0])  # the mirror of each sample
        inside = (index >= 0) & (index < psf.shape[0])
        mirrored[inside] = psf[index[inside]]
        return _unit_sum((psf + mirrored) / 2)
    rows, cols = (np.arange(n, dtype=np.float64) - n // 2 for n in psf.shape[-2:])
    squared = (rows[:, None] ** 2 + cols[None, :] ** 2).ravel()  # whole numbers
    distances, group = np.unique(squared, return_inverse=True)
    distances = np.sqrt(distances)
    # each distance from the axis averages the samples within half a sample of
    # it (a ring centred on it: no first-order bias), or, near the axis where a
    # PSF curves most, only those at exactly that distance
    half = np.where(distances <= _EXACT_RADIUS, 0.0, 0.5)
    order = np.argsort(squared, kind="stable")
    radius = np.sqrt(squared[order])
    first = np.searchsorted(radius, distances - half - 1e-9, side="left")
    last = np.searchsorted(radius, distances + half + 1e-9, side="right")
    planes = psf.reshape(-1, squared.size)
    totals = np.concatenate([np.zeros((planes.shape[0], 1)),
                             np.cumsum(planes[:, order], axis=1)], axis=1)
    means = (totals[:, last] - totals[:, first]) / (last - first)
    averaged = means[:, group]
    return _unit_sum(averaged.reshape(psf.shape))


_EXACT_RADIUS = 8  # samples from the axis within which the rings are exact


def _unit_sum(psf):
    total = psf.sum()
    if not total > 0:
        raise ValueError(f"psf sums to {total:g}; a PSF must have a positive sum")
    return psf / total


def from_measurement(measured, *, background="auto", radial: bool = True) -> np.ndarray:
    """A PSF from the image of a point source: a bead's stack, a star's cutout.

    The measured background is subtracted (``"auto"``: the median of the
    slabs 2 samples thick along the array's faces, leaving out those above
    the lowest by more than their noise), the brightest point
    (located to a fraction of a sample) is shifted onto the centre sample
    ``K // 2`` (cubic spline), ``radial=True`` averages over rotations about it
    (:func:`radial_average`: 2-D, or about the optical axis of a z-first 3-D
    stack; leave it off for an asymmetric PSF), and what is left below 0 is
    clipped before normalising.  Taken as it is, a measured PSF's background
    adds a flat pedestal to the model's blur, and an off-centre bead shifts
    the restoration.

    Parameters
    ----------
    measured : array, 1-D to 3-D
        The point source's image, larger than its PSF's extent.
    background : "auto" or float
        The level to subtract.
    radial : bool

    Returns
    -------
    numpy float64 array, same shape, non-negative, unit sum.
    """
    measured = np.asarray(check_array(measured, "measured"), dtype=np.float64)
    level, noise = _background(measured)
    if background == "auto":
        background = level
    elif not (isinstance(background, (int, float, np.integer, np.floating))
              and np.isfinite(background)):
        raise ValueError(f"background must be 'auto' or a finite number, got {background!r}")
    signal = measured - background
    if not (signal.sum() > 0 and signal.max() > 5 * noise):
        raise ValueError(f"measured holds no point source above its background ({background:g}) "
                         f"and noise ({noise:.3g}): its peak stands {signal.max():.3g} above it")
    shift = np.array([n // 2 for n in signal.shape]) - _peak(signal)
    signal = ndi.shift(signal, shift, order=3, mode="grid-constant")
    if radial:
        signal = radial_average(signal) * signal.sum()
    return normalize(np.clip(signal, 0, None))


def grid_from_sources(image, grid, size, *, radial: bool = False, threshold: float = 10.0):
    """A grid of PSFs from an image of point sources: beads on a slide, stars in a field.

    The input of :class:`deconvkit.SpaceVariantConvolution`: the frame is cut
    into ``grid`` equal tiles, and the PSF of each tile's centre is found from
    the isolated point sources around it.  Sources are the local maxima (of
    the image smoothed over a sample) that stand ``threshold`` times the
    noise above the background (both from the image's median and MAD) and
    have no other within ``size`` on every axis, nor the frame's edge; each
    cutout of ``size`` around one goes through :func:`from_measurement` (its
    own background, its peak centred to a fraction of a sample).  A source
    between the centres sees the operator's interpolation of their PSFs, so
    the nodes' PSFs are the least-squares fit of every cutout by that
    interpolation (clipped at 0): the same model the restoration uses.  The
    fit leaves out, one at a time, the source the others predict worst while
    it is over 3 times the median misfit (leave-one-out) and every node keeps
    its sources: blends closer than a maximum's reach (5 samples) and hits
    that pass as single sources.  On fields of 50 stars at random places at
    least 20 samples apart plus 3 blends 2 samples apart, under a 3 × 3 grid
    of PSFs (three seeds), the fitted grids came within 2 % of the true PSFs'
    peaks (without the rejection 10-27 %) and restored a photo within 0.04
    dB of the true grid (Richardson–Lucy and the default), where each
    tile's median cutout lost 0.42-0.61 dB: a tile's sources average its
    PSFs, not its centre's.  Crowded fields leave too few isolated sources,
    and blends among them that no node's other sources outvote.

    Parameters
    ----------
    image : (N1, ..., Nd) array
        1-D to 3-D.
    grid : int or sequence of int
        Tiles per axis.
    size : int or sequence of int
        The PSFs' shape (odd sizes put the peak on the middle sample).
    radial : bool
        Average each cutout over rotations (:func:`radial_average`): off-axis
        aberrations (coma, astigmatism) are what varies across a field, so
        it is off by default.
    threshold : float
        Detection level, in units of the noise.

    Returns
    -------
    (G1, ..., Gd, K1, ..., Kd) ndarray
        Unit-sum PSFs; node ``j`` holds tile ``j``'s.

    Raises
    ------
    ValueError
        Naming the tiles that hold no isolated source: a coarser grid, or more
        sources, is needed there.
    """
    image = np.asarray(check_array(image, "image"), dtype=np.float64)
    d = image.ndim
    grid = tuple(int(g) for g in np.broadcast_to(grid, (d,)))
    size = tuple(int(k) for k in np.broadcast_to(size, (d,)))
    if any(g < 1 for g in grid) or any(k < 3 for k in size):
        raise ValueError(f"grid must be >= 1 and size >= 3 per axis, got {grid} and {size}")
    found = isolated_sources(image, size, threshold=threshold)
    if len(found) == 0:
        raise ValueError(f"image holds no isolated point source: none stands {threshold:g} "
                         f"times the noise above its background with no other within the "
                         f"size {size} nor the frame's edge; lower threshold, or a smaller "
                         "size if the sources are crowded")
    half = np.array(size) // 2
    from .operators.space_variant import SpaceVariantConvolution

    # each source's weights on the nodes: the operator's own interpolation
    nodes = SpaceVariantConvolution(np.ones(grid + (1,) * d), boundary="periodic")
    profiles = nodes.profiles(image.shape)
    weights = np.array([[math.prod(profiles[a][j, c] for a, (j, c) in enumerate(zip(index, p)))
                         for index in np.ndindex(*grid)] for p in found]).reshape(len(found), -1)
    near = _seen(weights, math.prod(grid))
    if not near.all():
        empty = [t for t, ok in zip(np.ndindex(*grid), near) if not ok]
        raise ValueError(f"tiles {empty} of the {grid} grid hold no isolated point source "
                         f"near their centre (found {len(found)} in all); use a coarser grid "
                         "or more sources, or a lower threshold")
    cutouts = np.stack([from_measurement(image[tuple(slice(c - h, c - h + k) for c, h, k
                                                     in zip(p, half, size))], radial=radial)
                        for p in found]).reshape(len(found), -1)
    fitted = _robust_fit(weights, cutouts)
    fitted = np.clip(fitted, 0, None).reshape(grid + size)
    return np.stack([normalize(f) for f in fitted.reshape((-1,) + size)]).reshape(grid + size)


def isolated_sources(image, size, *, threshold: float = 10.0) -> np.ndarray:
    """Positions ``(S, d)`` of the point sources whose cutouts of ``size`` fit in
    ``image`` and hold no other source: the local maxima (of the image smoothed
    over a sample) ``threshold`` times the noise above the background (both
    from the image's median and MAD); see :func:`grid_from_sources`."""
    image = np.asarray(image, dtype=np.float64)
    size = np.broadcast_to(np.asarray(size, dtype=int), (image.ndim,))
    level = np.median(image)
    noise = 1.4826 * np.median(np.abs(image - level))
    smooth = ndi.gaussian_filter(image - level, 1.0)
    # maxima within 5 samples: two sources closer than a PSF's size are both found,
    # and both dropped as not isolated below
    peaks = (smooth == ndi.maximum_filter(smooth, size=5, mode="constant")) & (
        smooth > threshold * max(noise, 1e-30))
    found = np.argwhere(peaks)
    half = size // 2
    found = found[np.all((found >= half) & (found < np.array(image.shape) - (size - half)),
                         axis=1)]
    if len(found) > 1:
        import scipy.spatial

        # isolated: no other source whose cutout would overlap this one's, i.e.
        # closer than the size on every axis (a Chebyshev distance below 1 in
        # units of the size)
        pairs = scipy.spatial.cKDTree(found / size).query_pairs(
            1 - 1e-9, p=np.inf, output_type="ndarray")
        crowded = np.zeros(len(found), bool)
        crowded[pairs.ravel()] = True
        found = found[~crowded]
    return found


def _robust_fit(weights, cutouts):
    """Least squares of the cutouts by the nodes' interpolation, leaving out one by
    one the source that the others predict worst, while it is over 3 times the
    median (a blend of sources closer than a maximum's reach, a cosmic-ray hit)
    and every node stays pinned down.  Leave-one-out misfits, r / (1 - leverage):
    a node's few sources cannot hide a bad one by fitting it."""
    keep = np.ones(len(weights), bool)
    while True:
        fitted, *_ = np.linalg.lstsq(weights[keep], cutouts[keep], rcond=None)
        kept = weights[keep]
        leverage = np.einsum("si,ij,sj->s", kept, np.linalg.pinv(kept.T @ kept), kept)
        misfit = np.sqrt(((kept @ fitted - cutouts[keep]) ** 2).mean(axis=1))
        misfit /= np.clip(1 - leverage, 1e-3, None)
        worst = int(np.argmax(misfit))
        if misfit[worst] <= 3 * np.median(misfit):
            return fitted
        trial = keep.copy()
        trial[np.flatnonzero(keep)[worst]] = False
        if not _seen(weights[trial], weights.shape[1]).all():
            return fitted  # the worst source is what a node needs: keep it
        keep = trial


def _seen(weights, count: int) -> np.ndarray:
    """Which nodes the sources' weights pin down: half a source's weight at least,
    in a design of full rank (no node's sources a mix of the others'); all False
    but for the first condition otherwise."""
    seen = weights.sum(axis=0) >= 0.5 if len(weights) else np.zeros(count, bool)
    if not seen.all() or len(weights) < count:
        return seen
    singular = np.linalg.svd(weights, compute_uv=False)
    return seen if singular[-1] > 1e-3 * singular[0] else np.zeros(count, bool)


def _background(measured) -> tuple[float, float]:
    """The level and noise (MAD) of the slabs 2 samples thick along the array's
    faces, leaving out those whose median stands above the lowest by more than
    their noise: a widefield PSF's out-of-focus light reaches some faces, and
    the lowest face's median alone would be biased low by its noise."""
    faces = []
    for axis, n in enumerate(measured.shape):
        for part in (slice(0, 2), slice(max(n - 2, 0), n)):
            face = measured[(slice(None),) * axis + (part,)].ravel()
            level = np.median(face)
            # the standard error of a median, from the face's MAD
            error = 1.2533 * 1.4826 * np.median(np.abs(face - level)) / np.sqrt(face.size)
            faces.append((level, error, face))
    lowest, lowest_error, _ = min(faces, key=lambda f: f[0])
    kept = np.concatenate([face for level, error, face in faces
                           if level <= lowest + 3 * max(error, lowest_error)])
    level = np.median(kept)
    return float(level), float(1.4826 * np.median(np.abs(kept - level)))


def _peak(signal) -> np.ndarray:
    """The brightest point, to a fraction of a sample: the maximum of the signal
    smoothed over a sample (noise has no say), refined on each axis by the
    parabola through the logarithms of it and its neighbours (exact for a
    Gaussian peak).  The focus, not the centroid, which an axially asymmetric
    PSF pulls away from it."""
    smooth = ndi.gaussian_filter(signal, 1.0, mode="constant")
    index = np.unravel_index(np.argmax(smooth), smooth.shape)
    position = np.array(index, dtype=np.float64)
    for axis, i in enumerate(index):
        if 0 < i < smooth.shape[axis] - 1:
            around = [smooth[index[:axis] + (j,) + index[axis + 1:]] for j in (i - 1, i, i + 1)]
            if min(around) > 0:
                low, mid, high = np.log(around)
                curvature = low - 2 * mid + high
                if curvature < 0:
                    position[axis] += 0.5 * (low - high) / curvature
    return position


def _per_axis(value, d: int, name: str) -> np.ndarray:
    """One positive finite float, or ``d`` of them, as an array of ``d``."""
    try:
        values = np.atleast_1d(np.asarray(value, dtype=float))
    except (TypeError, ValueError):
        values = np.array([np.nan])  # reported below
    if values.ndim != 1 or values.size not in (1, d) or not np.all(np.isfinite(values)) \
            or np.any(values <= 0):
        raise ValueError(f"{name} must be a positive number or {d} of them (one per axis), "
                         f"got {value!r}")
    return np.broadcast_to(values, (d,))


def resample(psf, spacing, new_spacing, *, shape=None) -> np.ndarray:
    """Resample a PSF sampled at ``spacing`` onto a grid of ``new_spacing``.

    The centre sample maps onto the centre sample.  When the new grid is
    coarser, the PSF is first smoothed over the new pixel size so that
    narrow PSFs are integrated, not point-sampled.

    Parameters
    ----------
    psf : (K1, ..., Kd) array
    spacing, new_spacing : float or sequence of d floats
        Sample spacing per axis before and after (any unit, the same for both).
    shape : tuple of int, optional
        Output shape; default covers the same physical extent, rounded to odd.
    """
    psf = normalize(psf)
    d = psf.ndim
    old, new = (_per_axis(value, d, name) for value, name in ((spacing, "spacing"),
                                                            (new_spacing, "new_spacing")))
    ratio = new / old  # > 1: coarser
    if shape is None:
        shape = tuple(int(2 * math.ceil((k // 2) / r) + 1) for k, r in zip(psf.shape, ratio))
    sigma = np.sqrt(np.maximum(ratio**2 - 1, 0)) / 2.355
    smooth = ndi.gaussian_filter(psf, sigma, mode="constant") if np.any(sigma > 0) else psf
    axes = [(np.arange(n) - n // 2) * r + k // 2 for n, r, k in zip(shape, ratio, psf.shape)]
    coords = np.meshgrid(*axes, indexing="ij")
    out = ndi.map_coordinates(smooth, coords, order=1, mode="constant")
    return normalize(np.clip(out, 0, None))


def _default_shape(radius: float, ndim: int) -> tuple[int, ...]:
    half = max(1, math.ceil(radius))
    return (2 * half + 1,) * ndim


def _grid(shape, oversample: int = 1):
    """Sample coordinates (pixel units, centre at 0) with ``oversample`` sub-samples per pixel."""
    axes = []
    for n in shape:
        sub = (np.arange(oversample) + 0.5) / oversample - 0.5
        axes.append(((np.arange(n) - n // 2)[:, None] + sub[None, :]).ravel())
    return np.meshgrid(*axes, indexing="ij")


def _bin(values, shape, oversample: int):
    """Average an oversampled grid back onto ``shape``."""
    blocks = []
    for n in shape:
        blocks += [n, oversample]
    return values.reshape(blocks).mean(axis=tuple(range(1, 2 * len(shape), 2)))


_MAX_SAMPLES = 2**27  # a billion bytes of float64: a larger PSF grid is a mistake


def _psf_shape(shape, ndim: int, oversample: int = 1) -> tuple[int, ...]:
    """``shape`` checked: ``ndim`` positive ints, and a grid (oversampled) of at
    most ``_MAX_SAMPLES`` samples, rather than a MemoryError deep in numpy."""
    try:
        shape = tuple(operator.index(n) for n in shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of {ndim} ints, got {shape!r}") from None
    if len(shape) != ndim or any(n < 1 for n in shape):
        raise ValueError(f"shape must be {ndim} positive ints, got {shape}")
    if math.prod(shape) * oversample**ndim > _MAX_SAMPLES:
        finer = f" sampled {oversample}x finer" if oversample > 1 else ""
        raise ValueError(f"a PSF of shape {shape}{finer} is too large; check the size "
                         "parameter's units (pixels), or pass a smaller shape="
                         f"{'' if oversample == 1 else ' or oversample='}")
    return shape


def _check_positive(value, name):
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or a sequence of numbers, "
                        f"got {value!r}") from None
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be finite and non-negative, got {value!r}")
    return arr


# --------------------------------------------------------------- generators
def gaussian(sigma, *, shape=None, ndim: int | None = None) -> np.ndarray:
    """Gaussian PSF, N-D and anisotropic, integrated over each pixel.

    Parameters
    ----------
    sigma : float or sequence of float
        Standard deviation in pixels, one per axis or one for all.
    shape : tuple of int, optional
        Default ``2 * ceil(4 sigma) + 1`` per axis.
    ndim : int, optional
        Number of axes when ``sigma`` is a scalar (default 2).

    Examples
    --------
    >>> g = gaussian((1.0, 2.0, 2.0))
    >>> g.shape, round(float(g.sum()), 12)
    ((9, 17, 17), 1.0)
    """
    sigma = _check_positive(sigma, "sigma")
    if sigma.ndim == 0:
        sigma = np.full(ndim or 2, float(sigma))
    elif ndim is not None and ndim != sigma.size:
        raise ValueError(f"sigma has {sigma.size} values but ndim={ndim}")
    if shape is None:
        shape = tuple(2 * max(1, math.ceil(4 * s)) + 1 for s in sigma)
    if len(shape) != sigma.size:
        raise ValueError(f"shape {shape} has {len(shape)} dims but sigma has {sigma.size}")
    shape = _psf_shape(shape, sigma.size)
    profiles = []
    for s, n in zip(sigma, shape):
        t = np.arange(n) - n // 2
        if s == 0:
            profiles.append((t == 0).astype(float))
        else:
            cdf = scipy.special.ndtr((t[:, None] + np.array([-0.5, 0.5])) / s)
            profiles.append(cdf[:, 1] - cdf[:, 0])
    out = profiles[0]
    for p in profiles[1:]:
        out = np.multiply.outer(out, p)
    return normalize(out)


def disk(radius: float, *, ndim: int = 2, shape=None, oversample: int = 8) -> np.ndarray:
    """Uniform disk (ball in N-D): the geometric defocus PSF, anti-aliased.

    Parameters
    ----------
    radius : float
        Radius in pixels.
    ndim : int
        2 for a disk, 3 for a ball, 1 for a box.
    shape : tuple of int, optional
        Default ``2 * ceil(radius) + 1`` per axis.
    oversample : int
        Sub-samples per pixel and axis for the pixel coverage.
    """
    radius = float(_check_positive(radius, "radius"))
    shape = _psf_shape(shape if shape is not None else _default_shape(radius + 0.5, ndim), ndim,
                       oversample)
    if radius < 0.5 / oversample:
        out = np.zeros(shape)
        out[tuple(n // 2 for n in shape)] = 1.0
        return out
    coords = _grid(shape, oversample)
    inside = sum(c**2 for c in coords) <= radius**2
    return normalize(_bin(inside.astype(float), shape, oversample))


def motion(length: float, angle: float = 0.0, *, shape=None, oversample: int = 16) -> np.ndarray:
    """Linear motion blur: a line segment through the centre, anti-aliased (2-D).

    Parameters
    ----------
    length : float
        Length of the path in pixels (0 gives a delta).
    angle : float
        Direction in degrees, counter-clockwise from the +x (column) axis,
        with rows pointing down as in image display.
    shape : tuple of int, optional
        Default: the smallest odd square that holds the segment.
    oversample : int
        Points per pixel along the path.
    """
    length = float(_check_positive(length, "length"))
    theta = math.radians(float(angle))
    shape = _psf_shape(shape if shape is not None else _default_shape(length / 2 + 1, 2), 2)
    count = max(2, int(math.ceil(length * oversample)) + 1)
    t = np.linspace(-length / 2, length / 2, count)
    rows, cols = -t * math.sin(theta), t * math.cos(theta)
    return normalize(_splat(rows, cols, shape))


def _splat(rows, cols, shape) -> np.ndarray:
    """Bilinearly deposit equal-weight points (offsets from the centre) on a grid."""
    out = np.zeros(shape)
    r = rows + shape[0] // 2
    c = cols + shape[1] // 2
    r0, c0 = np.floor(r).astype(int), np.floor(c).astype(int)
    fr, fc = r - r0, c - c0
    for dr, wr in ((0, 1 - fr), (1, fr)):
        for dc, wc in ((0, 1 - fc), (1, fc)):
            rr, cc = r0 + dr, c0 + dc
            ok = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
            np.add.at(out, (rr[ok], cc[ok]), (wr * wc)[ok])
    return out


def camera_shake(size: int = 21, *, seed=None, exposure: float = 1.0, anxiety: float = 0.3,
                 steps: int = 2000) -> np.ndarray:
    """Random camera-shake kernel from a simulated hand trajectory (seeded).

    The trajectory is a random walk with inertia: the velocity keeps its
    magnitude, receives Gaussian jitter and a pull back towards the start,
    and occasionally an abrupt turn ("anxiety"), after Boracchi & Foi [1]_.
    The first ``exposure`` fraction of the path is integrated, scaled to fill
    the kernel box and centred on its centroid.

    Parameters
    ----------
    size : int
        Side of the square kernel (an odd size is recommended).
    seed : int or numpy.random.Generator, optional
    exposure : float in (0, 1]
        Fraction of the trajectory the shutter is open for.
    anxiety : float in [0, 1]
        Amount of jitter and abrupt direction changes.
    steps : int
        Samples along the trajectory.

    References
    ----------
    .. [1] G. Boracchi and A. Foi, "Modeling the performance of image
       restoration from motion blur", IEEE TIP 21(8), 2012.
    """
    if int(size) != size or size < 3:
        raise ValueError(f"size must be an int >= 3, got {size!r}")
    if not 0 < exposure <= 1:
        raise ValueError(f"exposure must be in (0, 1], got {exposure!r}")
    if not 0 <= anxiety <= 1:
        raise ValueError(f"anxiety must be in [0, 1], got {anxiety!r}")
    rng = np.random.default_rng(seed)
    step = 1.0 / (steps - 1)
    pull = 0.7 * rng.random()
    turn_probability = 0.2 * rng.random()
    jitter = 10 * rng.random()
    velocity = np.exp(1j * 2 * np.pi * rng.random()) * step
    path = np.zeros(steps, dtype=complex)
    for t in range(steps - 1):
        turn = 0.0
        if rng.random() < turn_probability * anxiety:
            turn = 2 * velocity * np.exp(1j * np.pi * (1 + rng.random() - 0.5))
        kick = anxiety * (jitter * complex(rng.standard_normal(), rng.standard_normal())
                          - pull * path[t]) * step
        velocity = velocity + turn + kick
        velocity = velocity / abs(velocity) * step
        path[t + 1] = path[t] + velocity
    path = path[: max(2, int(round(exposure * steps)))]
    path = path - path.mean()
    extent = max(np.ptp(path.real), np.ptp(path.imag), 1e-12)
    path = path * ((size - 3) / extent)
    path = path - (path.real.max() + path.real.min()) / 2 - 1j * (
        (path.imag.max() + path.imag.min()) / 2)
    # densify so consecutive points are < 1/4 pixel apart
    gaps = np.abs(np.diff(path))
    per = np.maximum(1, np.ceil(gaps * 4)).astype(int)
    dense = np.concatenate([np.linspace(a, b, n, endpoint=False)
                            for a, b, n in zip(path[:-1], path[1:], per)] + [path[-1:]])
    return normalize(_splat(dense.imag, dense.real, (int(size), int(size))))


def airy(radius: float, *, shape=None, oversample: int = 5) -> np.ndarray:
    r"""Airy pattern of a circular aperture (2-D), integrated over each pixel.

    :math:`I(r) \propto (2 J_1(v) / v)^2` with :math:`v = 3.8317\, r / \text{radius}`.

    Parameters
    ----------
    radius : float
        Radius of the first dark ring in pixels (:math:`0.61 \lambda / NA` in a
        microscope, :math:`1.22 \lambda / D` radians on the sky, over the pixel size).
    shape : tuple of int, optional
        Default covers four dark rings, ``2 * ceil(4 radius) + 1`` per axis.  The
        pattern is normalised to sum 1 inside this box.
    oversample : int
        Sub-samples per pixel and axis.
    """
    radius = float(_check_positive(radius, "radius"))
    if radius == 0:
        raise ValueError("radius must be positive")
    shape = _psf_shape(shape if shape is not None else _default_shape(4 * radius, 2), 2,
                       oversample)
    y, x = _grid(shape, oversample)
    v = 3.8317059702075125 * np.hypot(y, x) / radius
    with np.errstate(invalid="ignore", divide="ignore"):
        pattern = np.where(v > 1e-8, (2 * scipy.special.j1(v) / v) ** 2, 1.0)
    return normalize(_bin(pattern, shape, oversample))


def moffat(fwhm, beta: float = 4.765, *, ndim: int | None = None, shape=None,
           oversample: int = 5) -> np.ndarray:
    r"""Moffat profile: a star seen through the atmosphere, integrated over each pixel.

    :math:`I(r) \propto (1 + r^2 / \alpha^2)^{-\beta}` with
    :math:`\alpha = \mathrm{FWHM} / (2 \sqrt{2^{1/\beta} - 1})` (Moffat 1969):
    a seeing-limited core with power-law wings, which a Gaussian of the same
    FWHM lacks.  The default :math:`\beta = 4.765` is Kolmogorov turbulence's
    (Trujillo et al. 2001); stars in real images often fit 2.5-3.5.

    Parameters
    ----------
    fwhm : float or sequence of float
        Full width at half maximum in pixels, one per axis (an ellipse along
        the axes) or one for all.
    beta : float
        Power of the wings; > 1 so that the light is finite.  Large values
        tend to a Gaussian.
    ndim : int, optional
        Number of axes when ``fwhm`` is a scalar (default 2).
    shape : tuple of int, optional
        Default reaches where the profile falls to 1e-4 of its peak (the
        wings hold a few per cent of the light beyond 2 FWHM at small beta).
    oversample : int
        Sub-samples per pixel and axis.

    References
    ----------
    .. [1] A. F. J. Moffat, "A theoretical investigation of focal stellar
       images in the photographic emulsion and application to photographic
       photometry", Astron. Astrophys. 3, 1969.
    .. [2] I. Trujillo, J. A. L. Aguerri, J. Cepa and C. M. Gutiérrez, "The
       effects of seeing on Sérsic profiles - II. The Moffat PSF", MNRAS 328, 2001.

    Examples
    --------
    >>> star = moffat(3.0, beta=2.5)
    >>> star.shape, round(float(star.sum()), 12)
    ((35, 35), 1.0)
    """
    fwhm = _check_positive(fwhm, "fwhm")
    if fwhm.ndim == 0:
        fwhm = np.full(ndim or 2, float(fwhm))
    elif ndim is not None and ndim != fwhm.size:
        raise ValueError(f"fwhm has {fwhm.size} values but ndim={ndim}")
    if not np.all(fwhm > 0):
        raise ValueError(f"fwhm must be positive, got {fwhm.tolist()}")
    if not (isinstance(beta, (int, float)) and beta > 1):
        raise ValueError(f"beta must be a number > 1 (the light of wings with beta <= 1 "
                         f"is infinite), got {beta!r}")
    alpha = fwhm / (2 * math.sqrt(2 ** (1 / beta) - 1))
    if shape is None:
        reach = alpha * math.sqrt(1e4 ** (1 / beta) - 1)
        shape = tuple(2 * max(1, math.ceil(r)) + 1 for r in reach)
    if len(shape) != fwhm.size:
        raise ValueError(f"shape {shape} has {len(shape)} dims but fwhm has {fwhm.size}")
    shape = _psf_shape(shape, fwhm.size, oversample)
    coords = _grid(shape, oversample)
    squared = sum((c / a) ** 2 for c, a in zip(coords, alpha))
    return normalize(_bin((1 + squared) ** -beta, shape, oversample))


def widefield(shape=(33, 65, 65), *, wavelength: float = 0.52, na: float = 1.4,
              n_immersion: float = 1.518, pixel_size: float = 0.1, z_step: float = 0.2,
              oversample: int = 3, model: str = "born_wolf", n_sample: float = 1.33,
              depth: float = 0.0, n_coverslip: float = 1.522, coverslip: float = 170.0,
              n_immersion_design: float | None = None, n_coverslip_design: float | None = None,
              coverslip_design: float | None = None,
              working_distance: float = 150.0) -> np.ndarray:
    r"""3-D widefield fluorescence PSF from physical parameters (scalar Born–Wolf
    or Gibson–Lanni model).

    Parameters
    ----------
    shape : (nz, ny, nx) tuple of int
        Output shape; odd sizes put the focus on the middle sample.
    wavelength : float
        Emission wavelength in micrometres (in vacuum).
    na : float
        Numerical aperture of the objective (must be below ``n_immersion``).
    n_immersion : float
        Refractive index of the immersion medium (1.518 oil, 1.33 water, 1.0 air).
    pixel_size : float
        Lateral sample spacing in micrometres (in the object plane).
    z_step : float
        Axial sample spacing in micrometres.
    oversample : int
        Lateral sub-samples per pixel and axis (pixel integration).
    model : {"born_wolf", "gibson_lanni"}
        ``"born_wolf"``: a sample matched to the immersion medium, paraxial
        (the parameters below are then unused).  ``"gibson_lanni"``: a point
        source ``depth`` µm into a sample of index ``n_sample`` under a
        coverslip, imaged by an objective designed for other conditions:
        the aberrations that blur and shift the PSF with depth, non-paraxial.
    n_sample, depth : float
        Gibson–Lanni: the sample's refractive index (1.33 water, 1.45-1.52
        mounting media) and the source's depth below the coverslip (µm).
    n_coverslip, coverslip : float
        Gibson–Lanni: the coverslip's index and thickness (µm), as used.
    n_immersion_design, n_coverslip_design, coverslip_design : float, optional
        Gibson–Lanni: the values the objective is designed for (default: the
        ones used, i.e. no mismatch there).
    working_distance : float
        Gibson–Lanni: the design thickness of the immersion layer (µm).

    Notes
    -----
    The scalar paraxial diffraction integral of Born & Wolf [1]_ (§8.8):

    .. math::

        h(r, z) = \left| \int_0^1 J_0(k\,\mathrm{NA}\,r\rho)\,
        e^{-\tfrac{i}{2} k \mathrm{NA}^2 z \rho^2 / n}\, \rho\, d\rho \right|^2,
        \qquad k = 2\pi/\lambda,

    evaluated by Gauss–Legendre quadrature on a fine radial table, then
    interpolated onto the oversampled grid and binned to pixels.  The result
    sums to 1 inside ``shape``.

    Gibson and Lanni's model [2]_ replaces the defocus phase by the optical
    path difference between the conditions of use and of design, with
    :math:`s_n = \sqrt{n^2 - \mathrm{NA}^2\rho^2}` (imaginary past the
    critical angle: evanescent, it decays with depth):

    .. math::

        h(r, z) = \left| \int_0^1 J_0(k\,\mathrm{NA}\,r\rho)\,
        e^{i k\,\mathrm{OPD}(\rho, z)}\, \rho\, d\rho \right|^2,

        \mathrm{OPD} = z_p s_{n_s} + (t_i^* + z - z_p) s_{n_i}
        - t_i^* s_{n_i^*} + t_g s_{n_g} - t_g^* s_{n_g^*},

    as in Li, Xue and Blu's formulation [3]_ (their stage position is
    :math:`z - z_p` here), with :math:`z_p` = ``depth``, :math:`t_i^*` =
    ``working_distance``, :math:`t_g, t_g^*` the coverslip's thickness in
    use and by design.  ``z`` runs from the nominal focus on the source,
    where a matched sample would put the peak: with a mismatch the peak
    moves (the focal shift: 10 µm into water under an NA 1.4 oil objective,
    2.2 µm towards the coverslip, where the paraxial estimate
    :math:`z_p (1 - n_s / n_i)` says 1.2) and the axial profile loses its
    symmetry.  With
    every index matched and ``depth`` 0 it is the non-paraxial form of the
    Born–Wolf integral.  The paraxial model widens the PSF along Z at high
    NA: at NA 1.4 (oil, 520 nm) its axial FWHM is 0.71 µm against 0.52 for
    the non-paraxial form (``model="gibson_lanni"``, nothing mismatched) and
    0.49 by the usual estimate :math:`0.88\lambda / (n - \sqrt{n^2 -
    \mathrm{NA}^2})`; laterally both give 0.19 µm.  Prefer the non-paraxial
    form above NA 1 when the axial width matters.

    References
    ----------
    .. [1] M. Born and E. Wolf, *Principles of Optics*, 7th ed., Cambridge
       University Press, 1999.
    .. [2] S. F. Gibson and F. Lanni, "Experimental test of an analytical
       model of aberration in an oil-immersion objective lens used in
       three-dimensional light microscopy", JOSA A 8(10), 1991.
    .. [3] J. Li, F. Xue and T. Blu, "Fast and accurate three-dimensional
       point spread function computation for fluorescence microscopy",
       JOSA A 34(6), 2017.
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or any(n < 1 for n in shape):
        raise ValueError(f"shape must be (nz, ny, nx) positive ints, got {shape}")
    for name, value in (("wavelength", wavelength), ("na", na), ("n_immersion", n_immersion),
                        ("pixel_size", pixel_size), ("z_step", z_step)):
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")
    if na >= n_immersion:
        raise ValueError(f"na={na} must be smaller than n_immersion={n_immersion}")
    if model not in ("born_wolf", "gibson_lanni"):
        raise ValueError(f"model must be 'born_wolf' or 'gibson_lanni', got {model!r}")
    k = 2 * np.pi / wavelength
    z = (np.arange(shape[0]) - shape[0] // 2) * z_step
    sub_y, sub_x = _grid(shape[1:], oversample)
    r = np.hypot(sub_y, sub_x) * pixel_size
    r_table = np.linspace(0, r.max() + pixel_size, max(256, int(8 * r.max() / pixel_size) + 2))
    lateral = k * na * r_table.max()
    if model == "born_wolf":
        def path(rho):  # (nodes, z): the paraxial defocus, as an optical path
            return -0.5 * na**2 / n_immersion * np.outer(rho**2, z)
    else:
        path = _gibson_lanni_path(z, na, n_immersion, n_sample, depth, n_coverslip, coverslip,
                                  n_immersion_design, n_coverslip_design, coverslip_design,
                                  working_distance)
    # enough nodes for the Bessel's and the phase's oscillations over the pupil
    fine = np.linspace(0, 1, 2049)
    axial = k * np.abs(np.diff(path(fine).real, axis=0)).sum(axis=0).max()
    nodes, weights = np.polynomial.legendre.leggauss(int(64 + 2 * (lateral + axial)))
    rho, weights = (nodes + 1) / 2, weights / 2
    bessel = scipy.special.j0(k * na * np.outer(r_table, rho)) * (rho * weights)
    phase = np.exp(1j * k * path(rho))
    amplitude = bessel @ phase  # (radii, z)
    intensity = np.abs(amplitude) ** 2
    out = np.empty(shape)
    for iz in range(shape[0]):
        plane = np.interp(r, r_table, intensity[:, iz])
        out[iz] = _bin(plane, shape[1:], oversample)
    return normalize(out)


def confocal(shape=(33, 65, 65), *, wavelength: float = 0.52, excitation: float = 0.488,
             pinhole: float = 1.0, na: float = 1.4, n_immersion: float = 1.518,
             pixel_size: float = 0.1, z_step: float = 0.2, **optics) -> np.ndarray:
    r"""3-D confocal (point-scanning) PSF: excitation times pinhole-filtered emission.

    Parameters
    ----------
    shape : (nz, ny, nx) tuple of int
    wavelength, excitation : float
        Emission and excitation wavelengths in µm (in vacuum).
    pinhole : float
        The pinhole's diameter in Airy units (back-projected into the sample:
        one unit is :math:`1.22\,\lambda_{em} / \mathrm{NA}`); 1 is the usual
        setting, 0 an ideal point.
    na, n_immersion, pixel_size, z_step, **optics
        As in :func:`widefield` (``model="gibson_lanni"`` and its parameters
        for a source deep in a mismatched sample).

    Notes
    -----
    .. math:: h = h_{ex} \cdot (h_{em} \ast_{xy} p)

    with :math:`h_{ex}, h_{em}` the widefield PSFs at the two wavelengths
    and :math:`p` the pinhole's disk, convolved plane by plane [1]_.  A
    small pinhole narrows the lateral width by up to :math:`\sqrt 2`; any
    pinhole takes light from out-of-focus planes away (optical sectioning),
    which a widefield PSF, each plane carrying the same total, cannot.

    References
    ----------
    .. [1] T. Wilson, "Resolution and optical sectioning in the confocal
       microscope", J. Microsc. 244(2), 2011.
    """
    if not (isinstance(pinhole, (int, float)) and np.isfinite(pinhole) and pinhole >= 0):
        raise ValueError(f"pinhole must be a diameter >= 0 in Airy units, got {pinhole!r}")
    _check_wavelength(excitation, "excitation")
    common = dict(na=na, n_immersion=n_immersion, pixel_size=pixel_size, z_step=z_step,
                  **optics)
    shape = _volume_shape(shape)
    radius = pinhole * 1.22 * wavelength / na / 2 / pixel_size  # in pixels
    margin = int(math.ceil(radius))
    wide = (shape[0], shape[1] + 2 * margin, shape[2] + 2 * margin)
    emission = widefield(wide, wavelength=wavelength, **common)
    if radius >= 0.5 / 8:  # the pinhole's disk, pixel-integrated; a point below that
        hole = disk(radius, shape=(2 * margin + 1,) * 2)
        emission = np.stack([scipy.signal.fftconvolve(plane, hole, mode="same")
                             for plane in emission])
    emission = emission[:, margin:margin + shape[1], margin:margin + shape[2]]
    excited = widefield(shape, wavelength=excitation, **common)
    return normalize(np.clip(excited * emission, 0, None))


def two_photon(shape=(33, 65, 65), *, excitation: float = 0.9, na: float = 1.0,
               n_immersion: float = 1.33, pixel_size: float = 0.1, z_step: float = 0.2,
               **optics) -> np.ndarray:
    """3-D two-photon PSF: the excitation PSF squared (non-descanned detection
    collects all the emission, so the emission PSF does not enter).

    ``excitation`` in µm (near infrared: 0.7-1.1); the other parameters as in
    :func:`widefield` (a water-dipping objective by default).
    """
    _check_wavelength(excitation, "excitation")
    excited = widefield(shape, wavelength=excitation, na=na, n_immersion=n_immersion,
                        pixel_size=pixel_size, z_step=z_step, **optics)
    return normalize(excited**2)


def _check_wavelength(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
            or not np.isfinite(value):
        raise ValueError(f"{name} must be a wavelength > 0 in µm, got {value!r}")


def _volume_shape(shape) -> tuple[int, int, int]:
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    if len(shape) != 3 or not all(isinstance(n, (int, np.integer)) and n >= 1 for n in shape):
        raise ValueError(f"shape must be (nz, ny, nx) positive ints, got {shape}")
    return tuple(int(n) for n in shape)


def light_sheet(shape=(33, 65, 65), *, wavelength: float = 0.52, sheet: float = 1.0,
                na: float = 1.1, n_immersion: float = 1.33, pixel_size: float = 0.1,
                z_step: float = 0.2, **optics) -> np.ndarray:
    """3-D light-sheet PSF: the detection objective's widefield PSF times the
    sheet's Gaussian profile along the detection axis (Z).

    ``sheet`` is the sheet's FWHM thickness in µm (lattice light sheets:
    about 1; Gaussian sheets 1-5); the other parameters as in
    :func:`widefield` (a water-dipping detection objective by default).  In
    a stage-scanning microscope this is the PSF of the deskewed frame
    (:func:`deconvkit.lightsheet.skew_psf` takes it to the raw one).
    """
    if not (isinstance(sheet, (int, float)) and np.isfinite(sheet) and sheet > 0):
        raise ValueError(f"sheet must be positive (its FWHM in µm), got {sheet!r}")
    detection = widefield(shape, wavelength=wavelength, na=na, n_immersion=n_immersion,
                          pixel_size=pixel_size, z_step=z_step, **optics)
    z = (np.arange(detection.shape[0]) - detection.shape[0] // 2) * z_step
    profile = np.exp(-4 * math.log(2) * (z / sheet) ** 2)
    return normalize(detection * profile[:, None, None])


def _gibson_lanni_path(z, na, n_immersion, n_sample, depth, n_coverslip, coverslip,
                       n_immersion_design, n_coverslip_design, coverslip_design,
                       working_distance):
    """The Gibson–Lanni optical path difference as a function of the pupil radius."""
    n_immersion_design = n_immersion if n_immersion_design is None else n_immersion_design
    n_coverslip_design = n_coverslip if n_coverslip_design is None else n_coverslip_design
    coverslip_design = coverslip if coverslip_design is None else coverslip_design
    for name, value in (("n_sample", n_sample), ("n_coverslip", n_coverslip),
                        ("working_distance", working_distance),
                        ("n_immersion_design", n_immersion_design),
                        ("n_coverslip_design", n_coverslip_design)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be positive, got {value!r}")
    for name, value in (("depth", depth), ("coverslip", coverslip),
                        ("coverslip_design", coverslip_design)):
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be >= 0 (µm), got {value!r}")
    if na >= n_immersion_design:
        raise ValueError(f"na={na} must be smaller than n_immersion_design="
                         f"{n_immersion_design}")

    def cosine(n, rho):  # n cos(theta) in a layer of index n; imaginary past its critical angle
        return np.sqrt((n**2 - (na * rho) ** 2).astype(complex))

    def path(rho):
        rho = rho[:, None]
        stage = z[None, :] - depth  # the nominal focus on the source at z = 0
        return (depth * cosine(n_sample, rho)
                + (working_distance + stage) * cosine(n_immersion, rho)
                - working_distance * cosine(n_immersion_design, rho)
                + coverslip * cosine(n_coverslip, rho)
                - coverslip_design * cosine(n_coverslip_design, rho))

    return path


# ------------------------------------------------------------ text specs
_GENERATORS = {
    "gaussian": gaussian, "disk": disk, "motion": motion, "shake": camera_shake,
    "camera_shake": camera_shake, "airy": airy, "moffat": moffat, "widefield": widefield,
    "confocal": confocal, "two_photon": two_photon, "light_sheet": light_sheet,
}
#: the generators whose sizes are in micrometres (pixel_size, z_step)
_MICROSCOPES = ("widefield", "confocal", "two_photon", "light_sheet")


def from_spec(spec: str) -> np.ndarray:
    """Build a PSF from a text spec such as ``"gaussian:sigma=2"``.

    The form is ``NAME:key=value,key=value``; a tuple value is written with
    ``x`` (``sigma=1x2x2``, ``shape=33x65x65``).  Names: ``gaussian``,
    ``disk``, ``motion``, ``shake`` (camera shake), ``airy``, ``moffat``, ``widefield``,
    ``confocal``, ``two_photon``, ``light_sheet``; keys are the generator's
    parameters.  Values before the first ``key=``
    fill the generator's leading parameters in order (``gaussian:2`` is
    ``gaussian:sigma=2``, ``motion:9,30`` is ``motion:length=9,angle=30``).

    >>> from_spec("motion:length=9,angle=0").shape
    (13, 13)
    >>> from_spec("gaussian:2").shape == from_spec("gaussian:sigma=2").shape
    True
    """
    name, kwargs = _parse_spec(spec)
    try:
        return _GENERATORS[name](**kwargs)
    except TypeError as exc:
        raise ValueError(f"psf spec {spec!r}: {exc}") from None


def spec_spacing(spec: str) -> tuple[float, ...] | None:
    """The sample spacing (micrometres) that a spec of a physical PSF implies.

    The microscope models' ``(z_step, pixel_size, pixel_size)``, their
    defaults where the spec leaves them out; None for the other generators,
    whose sizes are in samples.

    >>> spec_spacing("widefield:na=1.2,pixel_size=0.065")
    (0.2, 0.065, 0.065)
    """
    name, kwargs = _parse_spec(spec)
    if name not in _MICROSCOPES:
        return None
    defaults = {k: p.default for k, p in
                inspect.signature(_GENERATORS[name]).parameters.items()}
    z, xy = (float(kwargs.get(k, defaults[k])) for k in ("z_step", "pixel_size"))
    return (z, xy, xy)


def _parse_spec(spec: str):
    name, _, args = spec.partition(":")
    name = name.strip().lower()
    if name not in _GENERATORS:
        raise ValueError(f"unknown psf {name!r} in {spec!r}; use one of "
                         f"{', '.join(sorted(_GENERATORS))} or a file")
    # the parameters a value may fill by position: those before the generator's `*`
    leading = [p.name for p in inspect.signature(_GENERATORS[name]).parameters.values()
               if p.kind is p.POSITIONAL_OR_KEYWORD]
    kwargs, keyed, filled = {}, False, 0
    for item in filter(None, (a.strip() for a in args.split(","))):
        key, eq, value = item.partition("=")
        if eq:
            key, keyed = key.strip(), True
        elif keyed:
            raise ValueError(f"psf spec {spec!r}: {item!r} follows a key=value item; "
                             f"write it as key=value too")
        elif filled == len(leading):
            raise ValueError(f"psf spec {spec!r}: {name} takes {len(leading)} value(s) by "
                             f"position ({', '.join(leading)}); write {item!r} as key=value")
        else:
            key, value, filled = leading[filled], item, filled + 1
        if key in kwargs:
            raise ValueError(f"psf spec {spec!r}: {key} is given twice")
        kwargs[key] = value.strip() if key == "model" else _parse_value(value.strip(), spec)
    return name, kwargs


def _parse_value(text: str, spec: str):
    parts = text.split("x")
    try:
        values = [int(p) if p.lstrip("-").isdigit() else float(p) for p in parts]
    except ValueError:
        raise ValueError(f"psf spec {spec!r}: {text!r} is not a number") from None
    return values[0] if len(values) == 1 else tuple(values)
