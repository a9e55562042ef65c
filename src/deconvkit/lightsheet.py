"""Stage-scanning light-sheet geometry: deskewing, and the PSF in the raw frame.

A light-sheet microscope that scans the stage (lattice light sheet, oblique
plane, open-top) records planes tilted by ``angle`` to the scan direction:
between planes the sample moves ``z_step`` along the scan, so a point moves
``z_step * cos(angle) / pixel_size`` pixels along the camera's X axis from one
plane to the next.  :func:`deskew` shifts each plane back (linear
interpolation), which puts the stack in the detection objective's frame,
planes ``z_step * sin(angle)`` apart: the frame of a PSF measured by scanning
a bead through the focus.

Deconvolution can run on either side of it: deskew first (with
``fill=np.nan``, so that the wedges no plane covered are missing data that
the solvers leave out, rather than a pad value they must explain), or
deconvolve the raw stack with the PSF skewed into its frame
(:func:`skew_psf`), then deskew: :func:`deconvolve_stage_scan` in one call.
``benchmarks/lightsheet.py`` compares them.  Dask stacks are deskewed
lazily, block by block.
"""

from __future__ import annotations

import math

import numpy as np

from ._validate import check_array

__all__ = ["deconvolve_stage_scan", "deskew", "deskewed_spacing", "raw_frame_psf",
           "skew_psf", "shift_per_plane"]


def shift_per_plane(angle: float, z_step: float, pixel_size: float) -> float:
    """Pixels a point moves along X from one raw plane to the next:
    ``z_step * cos(angle) / pixel_size``, signed like ``angle`` (degrees)."""
    for name, value in (("angle", angle), ("z_step", z_step), ("pixel_size", pixel_size)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not 0 < abs(angle) < 90:
        raise ValueError(f"angle must be between 0 and 90 degrees in size (the sheet's tilt "
                         f"to the scan; lattice light sheets: 31.5), got {angle!r}")
    for name, value in (("z_step", z_step), ("pixel_size", pixel_size)):
        if value <= 0:
            raise ValueError(f"{name} must be > 0 (micrometres), got {value!r}")
    return math.copysign(z_step * math.cos(math.radians(abs(angle))) / pixel_size, angle)


def deskewed_spacing(angle: float, z_step: float, pixel_size: float) -> float:
    """Distance between the planes of a deskewed stack: ``z_step * sin(angle)``
    (along the detection axis; Y and X keep ``pixel_size``)."""
    shift_per_plane(angle, z_step, pixel_size)  # validates
    return z_step * math.sin(math.radians(abs(angle)))


def deskew(volume, angle: float = 31.5, *, z_step: float, pixel_size: float,
           fill: float = 0.0, order: int = 1) -> np.ndarray:
    """Shear a stage-scanned stack into the detection objective's frame.

    Plane ``k`` is moved ``k * shift_per_plane(angle, z_step, pixel_size)``
    pixels along X (the last axis) by linear interpolation, and X is widened
    to hold every plane whole.

    Parameters
    ----------
    volume : (..., Z, Y, X) array
        The raw stack (more leading axes: channels or time points, each
        deskewed alike).  Not modified.  A dask array gives a lazy dask
        array, deskewed block by block (X taken whole): stacks larger than
        memory, straight into zarr.
    angle : float
        The sheet's tilt to the scan direction in degrees (31.5 on a lattice
        light sheet).  Negative when the stage scans the other way (the
        output's structures lean the other way if the sign is wrong).
    z_step : float
        The stage's step between planes (µm), not the deskewed planes'
        distance, which is ``z_step * sin(angle)`` (:func:`deskewed_spacing`).
    pixel_size : float
        The camera pixel in the sample (µm).
    fill : float
        Value where no plane reaches.  ``np.nan`` marks it missing, so that
        :func:`deconvkit.deconvolve`'s iterative methods leave it out;
        ``0`` (default) is what cudaDecon pads with.
    order : {1, 0}
        1 (default): linear interpolation.  0: the nearest sample, which
        keeps counts Poisson-distributed (a fraction of a pixel a plane
        mixes neighbours, which lowers the noise's variance below the
        Poisson model's, so Richardson–Lucy's discrepancy stop is never
        met: ``benchmarks/lightsheet.py``), at up to half a pixel's
        displacement.

    Returns
    -------
    (..., Z, Y, X + ceil(|shift| * (Z - 1))) float array (float64 for a
    float64 input, else float32).

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.zeros((5, 2, 8)); stack[:, :, 3] = 1   # a line along Z
    >>> out = deskew(stack, 30, z_step=2 / np.cos(np.radians(30)), pixel_size=1)
    >>> out.shape, [int(np.argmax(plane[0])) for plane in out]
    ((5, 2, 16), [3, 5, 7, 9, 11])
    """
    from .tiling import is_dask

    if is_dask(volume):  # checked for its shape and type only: its values, read once,
        _check_stack(volume, "volume")  # when the blocks are computed
    else:
        volume = check_array(volume, "volume", min_ndim=3, missing=True)
    if isinstance(order, bool) or order not in (0, 1):
        raise ValueError(f"order must be 1 (linear) or 0 (nearest sample), got {order!r}")
    if isinstance(fill, bool) or not isinstance(fill, (int, float, np.number)):
        raise ValueError(f"fill must be a number (or np.nan for missing data), got {fill!r}")
    shift = shift_per_plane(angle, z_step, pixel_size)
    planes = volume.shape[-3]
    offsets = shift * np.arange(planes)
    offsets -= offsets.min()  # a negative angle leans the other way, from the right
    width = volume.shape[-1] + math.ceil(offsets.max() - 1e-9)
    if is_dask(volume):
        return _deskew_lazily(volume, offsets, width, fill, order == 0)
    return _shift_planes(np.asarray(volume), offsets, width, fill, nearest=order == 0)


def _deskew_lazily(volume, offsets, width, fill, nearest):
    """A dask stack deskewed block by block: each output plane needs its own
    input plane only, so blocks keep their Z (and leading, and Y) chunks and
    take X whole."""
    whole_x = volume.rechunk({volume.ndim - 1: -1})
    dtype = np.float64 if volume.dtype == np.float64 else np.float32

    def block(values, block_info=None):
        # each block read is checked as the eager path checks the whole (Inf refused);
        # a block wholly missing (NaN) is allowed, and dask's tiny probes are skipped
        if values.size > 1 and not np.isnan(values).all():
            check_array(values, "volume", missing=True)
        start, stop = block_info[0]["array-location"][-3]
        return _shift_planes(values, offsets[start:stop], width, fill, nearest)

    chunks = whole_x.chunks[:-1] + ((width,),)
    return whole_x.map_blocks(block, chunks=chunks, dtype=dtype)


def skew_psf(psf, angle: float = 31.5, *, z_step: float, pixel_size: float) -> np.ndarray:
    """A PSF in the objective's frame, sheared into the raw stage-scan frame.

    The inverse of :func:`deskew` about the PSF's middle plane: plane ``k``
    moves ``-(k - K // 2) * shift`` pixels along X, so the centre stays on
    the middle sample.  X is widened on both sides to hold the lean (crop
    it with :func:`deconvkit.psf.crop_or_pad` where the outer planes are
    faint); the sum is kept.  ``psf``'s planes must be
    ``deskewed_spacing(angle, z_step, pixel_size)`` apart (resample it with
    :func:`deconvkit.psf.resample` first if not).

    >>> import numpy as np
    >>> psf = np.zeros((3, 1, 3)); psf[:, 0, 1] = 1 / 3
    >>> skewed = skew_psf(psf, 45, z_step=np.sqrt(2), pixel_size=1)
    >>> skewed.shape, [int(np.argmax(plane[0])) for plane in skewed]
    ((3, 1, 5), [3, 2, 1])
    """
    psf = np.asarray(check_array(psf, "psf", min_ndim=3))
    if psf.ndim != 3:
        raise ValueError(f"psf must be a (Z, Y, X) volume, got shape {psf.shape}")
    if not psf.sum() > 0:
        raise ValueError("psf sums to 0 or less; pass a PSF (non-negative, some light in it)")
    shift = shift_per_plane(angle, z_step, pixel_size)
    margin = math.ceil(abs(shift) * (psf.shape[0] // 2) - 1e-9)
    offsets = margin - shift * (np.arange(psf.shape[0]) - psf.shape[0] // 2)
    return _shift_planes(psf, offsets, psf.shape[-1] + 2 * margin, 0.0).astype(np.float64)


def raw_frame_psf(psf, angle: float, *, z_step: float, pixel_size: float,
                  width: int | None = None) -> np.ndarray:
    """:func:`skew_psf`, cropped about its centre to at most ``width`` X
    samples (the raw stack's, which a PSF may not exceed), renormalised; a
    warning says when the crop took more than 1 % of the PSF's light."""
    skewed = skew_psf(psf, angle, z_step=z_step, pixel_size=pixel_size)
    if width is None or skewed.shape[-1] <= width:
        return skewed
    from .psf import crop_or_pad

    side = width if width % 2 else width - 1
    start = (skewed.shape[-1] - side) // 2
    kept = float(skewed[..., start:start + side].sum()) / float(skewed.sum())
    if kept < 0.99:
        import warnings

        warnings.warn(f"the skewed PSF is {skewed.shape[-1]} samples wide in X, the stack "
                      f"{width}: cropping it lost {100 * (1 - kept):.1f} % of its light "
                      "(its outer planes); a thinner PSF stack in Z keeps more", stacklevel=2)
    return crop_or_pad(skewed, skewed.shape[:-1] + (side,))


def deconvolve_stage_scan(raw, psf, angle: float = 31.5, *, z_step: float,
                          pixel_size: float, method: str = "auto", fill: float = 0.0,
                          return_info: bool = False, **options):
    """Restore a stage-scanned light-sheet stack and deskew it, in one call.

    The raw stack is deconvolved in its own frame with ``psf`` skewed into
    it (:func:`raw_frame_psf`): no interpolation comes before the
    deconvolution, so counts stay Poisson, and the raw stack is the smaller
    volume.  The result is then deskewed (:func:`deskew`, ``fill`` where no
    plane reaches).  ``benchmarks/lightsheet.py`` compares this with
    deconvolving after deskewing.

    Parameters
    ----------
    raw : (..., Z, Y, X) array
        The stack as acquired.
    psf : (Z, Y, X) array
        The PSF in the objective's frame (a bead scanned through the focus,
        or :func:`deconvkit.psf.light_sheet`), its planes
        ``deskewed_spacing(angle, z_step, pixel_size)`` apart.
    angle, z_step, pixel_size
        As in :func:`deskew`.
    method, return_info, **options
        As in :func:`deconvkit.deconvolve`.

    Returns
    -------
    The deskewed restoration (and the Info with ``return_info``).
    """
    from ._deconvolve import deconvolve

    raw = raw if hasattr(raw, "shape") else np.asarray(raw)
    _check_stack(raw, "raw")  # its values are deconvolve's to check (dask: lazily)
    kernel = raw_frame_psf(psf, angle, z_step=z_step, pixel_size=pixel_size,
                           width=raw.shape[-1])
    restored, info = deconvolve(raw, kernel, method=method, return_info=True, **options)
    out = deskew(restored, angle, z_step=z_step, pixel_size=pixel_size, fill=fill)
    return (out, info) if return_info else out


def _check_stack(stack, name: str) -> None:
    """A (..., Z, Y, X) array of real numbers, without reading its values."""
    if stack.ndim < 3:
        raise ValueError(f"{name} has {stack.ndim} dims; it needs at least 3 (Z, Y, X)")
    if np.dtype(stack.dtype).kind not in "biuf":
        raise TypeError(f"{name}: {stack.dtype} input is not supported; pass real numbers")


def _shift_planes(volume: np.ndarray, offsets: np.ndarray, width: int, fill,
                  nearest: bool = False) -> np.ndarray:
    """``out[..., k, :, x] = volume[..., k, :, x - offsets[k]]`` by linear
    interpolation along X (or the nearest sample), ``fill`` where that falls
    outside the plane."""
    dtype = np.float64 if volume.dtype == np.float64 else np.float32
    out = np.empty(volume.shape[:-1] + (width,), dtype=dtype)
    columns = volume.shape[-1]
    x = np.arange(width)
    for k, offset in enumerate(offsets):
        source = x - offset
        inside = (source > -1e-9) & (source < columns - 1 + 1e-9)
        left = np.clip(np.floor(source + 1e-9).astype(int), 0, max(columns - 2, 0))
        right = np.minimum(left + 1, columns - 1)
        weight = np.clip(source - left, 0, 1)
        if nearest:
            weight = (weight >= 0.5).astype(float)
        plane = volume[..., k, :, :]
        values = plane[..., left] * (1 - weight) + plane[..., right] * weight
        # whole-pixel positions copy the sample: a missing (NaN) neighbour stays out
        values = np.where(weight == 0, plane[..., left],
                          np.where(weight == 1, plane[..., right], values))
        out[..., k, :, :] = np.where(inside, values, fill)
    return out
