"""Classical super-resolution: one object on a finer grid from one or more frames."""

from __future__ import annotations

import dataclasses
import itertools
import numbers
import warnings
from collections.abc import Callable

import numpy as np
import scipy.ndimage as ndi
import scipy.signal

from .._array_api import array_namespace, as_float, asarray, to_numpy
from .._validate import check_callback, check_choice
from ..operators import Convolution, Diagonal, Warp
from ._common import TINY, offset, prepare, split_missing
from ._stopping import Info, noise_level
from .multiview import joint_richardson_lucy

__all__ = ["register_rigid", "register_shifts", "super_resolve"]


def super_resolve(frames, psf, scale, *, shifts="auto", motion: str = "translation",
                  iterations="auto", background=0.0,
                  tv_weight="auto", acceleration: str | None = "biggs",
                  noise_sigma: float | None = None, reject: float | None = None,
                  saturation: float | None = None,
                  time_limit: float | None = None, callback: Callable | None = None,
                  channel_axis: int | None = None, bayer: str | None = None,
                  return_info: bool = False):
    r"""Richardson–Lucy (with TV) onto a grid ``scale`` times finer than the frames, N-D.

    A camera integrates the light over pixels larger than the detail the
    optics pass (undersampled stars, a microscope's large camera pixels).
    Several frames shifted by fractions of a pixel (dithered exposures, a
    burst from a moving hand) sample the scene at different phases, and
    together determine it on a finer grid; one frame alone is restored onto
    the finer grid as far as its samples allow.  This is the model-based
    alternative to shift-and-add and drizzle: each frame's blur, pixel
    integration and shift form one strided :class:`~deconvkit.Convolution`,
    and the frames are fitted jointly.

    Parameters
    ----------
    frames : (N1, ..., Nd) array or sequence of them
        One frame, or several of one shape (numpy or torch; NaN samples are
        missing data: cosmic-ray hits, bad pixels).
    psf : (K1, ..., Kd) array, or sequence of them
        The optical PSF sampled on the fine grid (a pitch ``scale`` times finer
        than the frames' pixels), without the pixel: each frame pixel's
        integration over ``scale**d`` fine samples is added here.  One PSF per
        frame where the blur changes between frames (the seeing of each
        exposure, each frame's focus); zero-padded about their centres to the
        largest.
    scale : int or sequence of int
        The fine grid's pitch, per axis or one for all (>= 1; 1 deconvolves
        registered frames on their own grid).
    shifts : "auto", (F, d) array or (F, d, d + 1) array
        Each frame's offset from the first, in frame pixels: frame ``k``'s
        pixel ``i`` sees what the first frame's pixel ``i + shifts[k]`` sees;
        or each frame's affine map (a turn, a shear): frame ``k``'s pixel
        ``i`` sees the first frame's point ``shifts[k][:, :d] @ i +
        shifts[k][:, d]``.  ``"auto"``: registered as ``motion`` says.
    motion : {"translation", "rigid"}
        What ``shifts="auto"`` registers: shifts (:func:`register_shifts`,
        cross-correlation to a hundredth of a pixel; dithered exposures), or
        turns and shifts of 2-D or 3-D frames (:func:`register_rigid`; a
        hand-held burst, a field that turns between exposures, a drifting
        volume).
    iterations, background, acceleration, noise_sigma, time_limit, callback
        As in :func:`deconvkit.richardson_lucy_multiview` (the discrepancy
        stop on every frame's residual together; ``background`` of every
        frame, or one per frame).
    tv_weight : float, "auto" or None
        Dey et al.'s total-variation factor, as in
        :func:`deconvkit.richardson_lucy_tv` (``"auto"``, the default: its
        rule from the noise level; run until the residual settles, without
        acceleration); None: plain Richardson–Lucy, stopped by the
        discrepancy principle (``benchmarks/super_resolution.py``: TV gained
        1.4-5.5 dB over it on every scene at x2 and x3).
    reject : float, optional
        Leave out the samples that a cosmic ray, a hot or dead pixel or a
        satellite trail brightened (or darkened) in one frame: those more than
        ``reject`` local noise levels off the fit (5 is a usual choice), where
        the fit is not steep itself; the frames are then restored again without them, up to three
        rounds until no new one is found.  See Notes.  None (the default):
        every sample is fitted.
    saturation : float, optional
        Samples at or above this level are clipped (a photo's 255, a raw
        file's white level, a camera's full well): they only bound the light
        from below, and are left out as missing data, so that no ringing
        grows around a blown highlight.
    channel_axis : int, optional
        The frames' colour axis: each channel restored on its own, with one
        set of shifts (registered on the channels' mean).
    bayer : {"RGGB", "BGGR", "GRBG", "GBRG"}, optional
        The frames are a colour camera's raw mosaics (one sample a pixel,
        behind the red, green or blue filter of a Bayer pattern, its 2 x 2
        tile given row by row; black level as ``background``): they are
        registered on their 2 x 2 tiles, and green is restored from its own
        samples with the others missing, so that the frames' motion fills in
        the colours one frame lacks (demosaicking and super-resolution in one
        fit); red and blue, seen half as often, as ``(green + c *
        mean(green))`` times a ratio that RL fits, ``c`` chosen by the error
        on held-out samples of that colour (``Info.parameters["guide_floor"]``;
        None: the colour restored on its own).  Returns ``(..., 3)`` linear camera
        RGB (no white balance or colour matrix); each channel's noise level
        is estimated from its sub-lattices.
    return_info : bool
        Also return an :class:`Info` with the shifts used, or the affine maps,
        and with ``reject`` the samples left out of each frame (a list of
        them, one per channel, with ``channel_axis`` or ``bayer``).

    Returns
    -------
    restored : (N1 * scale1, ..., Nd * scaled) array
        Non-negative; fine sample ``f`` lies in the first frame's pixel
        ``f // scale``.

    Notes
    -----
    Frame :math:`k` is :math:`y_k \sim \mathrm{Poisson}(S\, (h_k * x) + b_k)`
    with :math:`h_k` the PSF convolved with the pixel's box and shifted by
    :math:`\mathrm{scale} \cdot \delta_k` fine samples (the fractional part
    by linear interpolation, which keeps it non-negative) and :math:`S` the
    stride; with affine maps, :math:`h_k * x` is :math:`h * (W_k x)` instead,
    :math:`W_k` the map on the fine grid as a :class:`~deconvkit.operators.Warp`.
    The object lives on the extended ("valid") domain, enlarged to hold what
    every frame sees, so no boundary is assumed, and the EM update of
    :func:`deconvkit.richardson_lucy_multiview` fits all frames [1]_ [2]_.

    Outliers (``reject``): sample :math:`i` of frame :math:`k` is left out when
    :math:`|e_k| > \mathrm{reject} \cdot \sigma_{\mathrm{local}} + s D`, with
    :math:`e_k` its residual :math:`y_k - \hat y_k` (:math:`\hat y_k` the
    fitted frame), :math:`\sigma_{\mathrm{local}}` 1.4826 times the median
    :math:`|e_k|` over 7 samples an axis (at least the frame's noise level)
    and :math:`D` the fit's largest step to a neighbour: a star or an edge
    the fit makes steep leaves residuals that are no ray (the derivative
    tolerance of STScI's AstroDrizzle [3]_).  Where three frames or more see
    the point, :math:`e_k` is the residual less the median of every frame's
    residual there, :math:`\sigma_{\mathrm{local}}` the median of every
    frame's level there (the frames' maps resampled by their motions) and
    :math:`s = 1/4`: a fit that partly holds a trail leaves residuals along
    it in every frame, and a trail, or a dark object, wider than half the
    window would raise its own frame's level; elsewhere (one or two frames,
    a raw mosaic's sparser colours) :math:`s = 1/2` and each frame's own, so
    that only the rim of a wide one is found.  Deficits count as excesses
    do (a dead pixel, a passing object that darkens a frame), in a round
    that finds no excess (a fit that holds a ray dips the other frames'
    samples beside it below it).

    References
    ----------
    .. [1] M. Elad and A. Feuer, "Restoration of a single superresolution
       image from several blurred, noisy, and undersampled measured images",
       IEEE Trans. Image Process. 6(12), 1997.
    .. [2] S. Farsiu, M. D. Robinson, M. Elad and P. Milanfar, "Fast and
       robust multiframe super resolution", IEEE Trans. Image Process.
       13(10), 2004.
    .. [3] A. S. Fruchter et al., "DrizzlePac handbook" (the ``driz_cr`` step),
       STScI, 2012.

    Examples
    --------
    Four frames of a scene, each a 2 x 2 binning at another half-pixel phase:

    >>> import numpy as np
    >>> import deconvkit as dk
    >>> scene = dk.cell_phantom((96, 96), seed=0)
    >>> blur = dk.psf.gaussian(1.0)
    >>> sharp = dk.blur(scene, blur)
    >>> frames = [sharp[i:i + 94, j:j + 94].reshape(47, 2, 47, 2).mean(axis=(1, 3))
    ...           for i, j in [(0, 0), (1, 0), (0, 1), (1, 1)]]
    >>> fine = dk.super_resolve(frames, blur, 2, shifts=[(0, 0), (0.5, 0), (0, 0.5), (0.5, 0.5)])
    >>> fine.shape
    (94, 94)
    """
    check_callback(callback)
    views = [frames] if hasattr(frames, "shape") else list(frames)
    if not views:
        raise ValueError("frames is empty; give one frame or several")
    if len({tuple(v.shape) for v in views}) > 1:
        raise ValueError(f"the frames must have one shape, got "
                         f"{sorted({tuple(v.shape) for v in views})}")
    check_choice(motion, "motion", ("translation", "rigid"))
    if reject is not None and not (isinstance(reject, (int, float)) and reject > 0):
        raise ValueError(f"reject must be a number > 0 (noise levels; 5 is usual) or None, "
                         f"got {reject!r}")
    if saturation is not None:
        if not (isinstance(saturation, (int, float, np.integer, np.floating))
                and np.isfinite(saturation)):
            raise ValueError(f"saturation must be a finite level, or None; got {saturation!r}")
        views = [_clipped_left_out(v, saturation) for v in views]
    if bayer is not None:
        if channel_axis is not None:
            raise ValueError("bayer frames are raw mosaics, one sample a pixel: give "
                             "channel_axis for colour frames, or bayer for raw ones")
        from ._mosaic import from_mosaics

        return from_mosaics(views, psf, scale, bayer, shifts=shifts, motion=motion,
                            noise_sigma=noise_sigma, return_info=return_info, reject=reject,
                            iterations=iterations, background=background, tv_weight=tv_weight,
                            acceleration=acceleration, time_limit=time_limit,
                            callback=callback)
    if channel_axis is not None:
        return _per_channel(views, psf, scale, channel_axis, shifts=shifts, motion=motion,
                            reject=reject,
                            iterations=iterations, background=background, tv_weight=tv_weight,
                            acceleration=acceleration, noise_sigma=noise_sigma,
                            time_limit=time_limit, callback=callback, return_info=return_info)
    fit = _fit_frames(views, psf, scale, shifts=shifts, motion=motion, reject=reject,
                      iterations=iterations, background=background, tv_weight=tv_weight,
                      acceleration=acceleration, noise_sigma=noise_sigma,
                      time_limit=time_limit, callback=callback)
    return (fit.restored, fit.info) if return_info else fit.restored


@dataclasses.dataclass
class _Fit:
    """A fit of frames: the object on the operators' domain (``x``), the
    restored grid and its :class:`Info`, and what predicts the frames from an
    object (``ops``, ``backgrounds``)."""

    x: object
    restored: object
    info: Info
    ops: list
    backgrounds: list


def _fit_frames(views, psf, scale, *, shifts, motion, reject, iterations, background,
                tv_weight, acceleration, noise_sigma, time_limit, callback, guide=None):
    """:func:`super_resolve`'s fit of grey frames.  ``guide`` (an array on the
    operators' domain): the object is ``guide`` times a ratio, which RL fits
    (the ratio as its unknown: a smooth ratio carries the guide's detail)."""

    check_choice(acceleration, "acceleration", (None, "biggs"))
    psfs = _frame_psfs(psf, len(views))
    prepared = [prepare(v, k, missing=True) for v, k in zip(views, psfs)]
    dtype = prepared[0][0].dtype
    # in float64: the TV factor's steps at the sparsely covered corners of the
    # fine domain compound float32's round-off (a float32 burst diverged there)
    noisy = [as_float(y, _float64_of(y)) for y, _ in prepared]
    psfs = [np.asarray(to_numpy(k), dtype=np.float64) for _, k in prepared]
    d = psfs[0].ndim
    if noisy[0].ndim != d:
        raise ValueError(f"the frames have {noisy[0].ndim} dims but psf has {d}; give a "
                         f"{noisy[0].ndim}-D PSF on the fine grid")
    steps = _scale(scale, d)
    offsets = _motions(shifts, motion, noisy)
    backgrounds = list(background) if isinstance(background, (list, tuple)) else \
        [background] * len(views)
    if len(backgrounds) != len(views):
        raise ValueError(f"background gives {len(backgrounds)} values for {len(views)} "
                         "frames; give one, or one per frame")
    backgrounds = [offset(b, y) for b, y in zip(backgrounds, noisy)]
    shape = tuple(noisy[0].shape)
    fine = tuple(n * s for n, s in zip(shape, steps))
    ops, start = _frame_operators(psfs, steps, offsets, shape, like=noisy[0])
    fitted_ops = ops if guide is None else [op @ Diagonal(guide) for op in ops]

    # fine sample f of the output lies in the first frame's pixel f // s
    def crop(x):
        return x[tuple(slice(a, a + n) for a, n in zip(start, fine))]

    def solve(noisy, noise_sigma, tv_weight):
        views, masks = zip(*(split_missing(y) for y in noisy))
        x, *rest = joint_richardson_lucy(
            fitted_ops, views, masks, backgrounds, noisy, iterations=iterations,
            acceleration=acceleration, noise_sigma=noise_sigma, time_limit=time_limit,
            callback=callback, crop=crop if guide is None else lambda r: crop(r * guide),
            tv_weight=tv_weight)
        return (x if guide is None else x * guide), *rest

    x, history, stop, sigma, tv_weight = solve(noisy, noise_sigma, tv_weight)
    seconds, rejected = stop.seconds, [0] * len(noisy)
    for _ in range(3 if reject is not None else 0):
        level = sigma if sigma is not None else noise_sigma  # None: each frame's, estimated
        fits = [op.forward(x) + b for op, b in zip(ops, backgrounds)]
        excesses = _excesses(noisy, fits, level, offsets, reject)
        # excesses first: a fit that holds a ray dips the other frames' samples
        # beside it below it, deficits that are no outliers
        for sign in (1, -1):
            found = [sign * excess > threshold for excess, threshold in excesses]
            if any(f.any() for f in found):
                break
        else:
            break
        rejected = [n + int(f.sum()) for n, f in zip(rejected, found)]
        xp = array_namespace(noisy[0])
        noisy = [xp.where(asarray(f, like=y) > 0, xp.nan, y) for f, y in zip(found, noisy)]
        # the same noise level and TV weight as the first round's
        x, history, stop, sigma, tv_weight = solve(noisy, sigma, tv_weight)
        seconds += stop.seconds
    stop.warn_if_short("super_resolve")
    moves = dict(shifts=offsets.tolist()) if offsets.ndim == 2 else dict(maps=offsets.tolist())
    outliers = {} if reject is None else dict(rejected=rejected)
    info = Info("super_resolve", dict(scale=steps, frames=len(noisy), **moves, **outliers,
                                      tv_weight=tv_weight, acceleration=acceleration,
                                      noise_sigma=sigma),
                iterations=len(history), stopped_by=stop.reason, history=history,
                seconds=seconds)
    return _Fit(x, as_float(crop(x), dtype), info, ops, backgrounds)


def _excesses(frames, fits, level, motions, reject) -> list:
    """Each frame's residual beyond the frames' consensus and the threshold that
    makes a sample an outlier (an excess above it, or a deficit below minus
    it; infinite where the sample is missing): ``reject`` local noise levels
    plus a share of the fit's largest step to a neighbour.

    The local level is 1.4826 times the median absolute excess over 7 samples
    an axis (at least the noise ``level``, each frame's estimated when None),
    which grows where the fit is poor (a PSF that does not quite match a
    star).  Where three frames or more see the point, the excess is the
    residual less the median of all frames' residuals, and the level the
    median of all frames' levels (each taken onto the first frame's pixels by
    its motion, and back): a fit that partly holds a satellite trail leaves
    residuals along it in every frame, and a trail wider than half the window
    raised its own frame's level (5-pixel trails across one of four frames:
    5 of 690 samples left out).  The consensus takes out what the fit misses
    in every frame, so a quarter of the fit's steps is tolerated there
    instead of half (trails 4 pixels wide across one of four frames at x2,
    ten scenes: 96-100 % left out against 81-100 %; with a tenth, a star
    field lost 10 samples)."""
    residuals, floors, observed, steps = [], [], [], []
    for frame, fitted in zip(frames, fits):
        y, fit = (np.asarray(to_numpy(a), dtype=np.float64) for a in (frame, fitted))
        observed.append(~np.isnan(y))
        residuals.append(np.where(observed[-1], y - fit, 0.0))
        floor = level if level is not None else \
            noise_level(np.where(observed[-1], y, np.nanmean(y)))
        floors.append(max(floor, TINY))
        steps.append(np.maximum(ndi.maximum_filter(fit, size=3) - fit,
                                fit - ndi.minimum_filter(fit, size=3)))

    def local(excess):
        return 1.4826 * ndi.median_filter(np.abs(excess), size=7)

    excesses = residuals
    levels = [np.maximum(local(r), f) for r, f in zip(residuals, floors)]
    shares = [0.5] * len(frames)
    if len(frames) >= 3:
        maps = _as_maps(motions)
        consensus = _onto_frames(maps, np.median(_onto_first(maps, residuals), axis=0))
        agreed_excesses = [r - c for r, c in zip(residuals, consensus)]
        agreed_levels = _onto_frames(
            maps, np.median(_onto_first(maps, map(local, agreed_excesses)), axis=0))
        # a consensus needs three frames that see the point: a raw mosaic's red
        # or blue is seen by one frame in four there (its residual stands
        # alone); beyond a frame's edge it sees nothing (0, not extended)
        seen = _onto_frames(maps, sum(_onto_first(maps, [o.astype(np.float64) for o in observed],
                                                  mode="constant")), mode="constant")
        agreed = [count >= 2.5 for count in seen]
        excesses = [np.where(a, e, r) for a, e, r in zip(agreed, agreed_excesses, residuals)]
        levels = [np.where(a, np.maximum(v, f), own)
                  for a, v, f, own in zip(agreed, agreed_levels, floors, levels)]
        shares = [np.where(a, 0.25, 0.5) for a in agreed]
    return [(excess, np.where(seen_here, reject * level + share * step, np.inf))
            for excess, level, share, step, seen_here
            in zip(excesses, levels, shares, steps, observed)]


def _as_maps(motions) -> np.ndarray:
    """(F, d) shifts or (F, d, d + 1) affine maps as affine maps."""
    if motions.ndim == 3:
        return motions
    frames, d = motions.shape
    return np.concatenate([np.broadcast_to(np.eye(d), (frames, d, d)), motions[:, :, None]],
                          axis=2)


def _onto_first(maps, arrays, mode: str = "nearest") -> list:
    """Each frame's array on the first frame's pixels (linear interpolation;
    frame ``k``'s pixel ``p`` sees the first frame's point ``A_k p + b_k``;
    beyond its edges as scipy's ``mode`` says)."""
    d = maps.shape[1]
    return [ndi.affine_transform(a, np.linalg.inv(m[:, :d]), -np.linalg.solve(m[:, :d], m[:, d]),
                                 order=1, mode=mode) for a, m in zip(arrays, maps)]


def _onto_frames(maps, array, mode: str = "nearest") -> list:
    """An array on the first frame's pixels as each frame's pixels see it."""
    d = maps.shape[1]
    return [ndi.affine_transform(array, m[:, :d], m[:, d], order=1, mode=mode) for m in maps]


def _clipped_left_out(frame, saturation):
    """``frame`` in a float type with NaN (missing) where it reaches ``saturation``."""
    from .._validate import check_array

    frame = check_array(frame, "frames", missing=True)
    xp = array_namespace(frame)
    return xp.where(frame >= saturation, xp.nan, frame)


def _float64_of(x):
    """float64 in ``x``'s library."""
    return array_namespace(x).float64


def _per_channel(views, psf, scale, channel_axis, *, shifts, motion, return_info, **options):
    """:func:`super_resolve` channel by channel, with one set of shifts or maps."""
    from .._validate import check_channel_axis

    axis = check_channel_axis(channel_axis, views[0].ndim, np.ndim(_frame_psfs(psf, len(views))[0]))
    xp = array_namespace(views[0])
    channels = [xp.moveaxis(v, axis, 0) for v in views]  # (C, ...) each
    if isinstance(shifts, str) and shifts == "auto" and len(views) > 1:
        shifts = _motions(shifts, motion, [c.mean(0) for c in channels])
    results = [super_resolve([c[k] for c in channels], psf, scale, shifts=shifts,
                             return_info=True, **options)
               for k in range(channels[0].shape[0])]
    restored = xp.moveaxis(xp.stack([r for r, _ in results]), 0, axis)
    return (restored, [info for _, info in results]) if return_info else restored


def register_shifts(frames, *, precision: float = 0.01) -> np.ndarray:
    """Each frame's offset from the first, in pixels, by phase correlation.

    Returns an ``(F, d)`` array: frame ``k``'s pixel ``i`` sees what the first
    frame's pixel ``i + shifts[k]`` sees (``shifts[0]`` is 0), to
    ``precision`` pixels (:func:`skimage.registration.phase_cross_correlation`
    with its upsampled refinement) of the frames less their means under a
    Hann window; NaN samples count as the mean.  Measured on
    ``benchmarks/super_resolution.py``'s frames (2x2 and 3x3 binning at
    every phase): errors of 0.01-0.03 pixel.
    """
    from skimage.filters import window
    from skimage.registration import phase_cross_correlation

    views = [np.asarray(to_numpy(v), dtype=np.float64) for v in frames]
    if not 0 < precision <= 1:
        raise ValueError(f"precision must be in (0, 1] pixels, got {precision!r}")
    for k, v in enumerate(views):
        if not np.nanmax(v) > np.nanmin(v):  # all NaN, or constant
            raise ValueError(f"frame {k} is constant (or missing): it holds nothing to "
                             "register; leave it out, or give shifts")
    # the correlation is circular: without a window the jump between opposite
    # sides pulls the peak to 0 (camera, x2 phases: 0.26 pixel off, 0.01 with it)
    taper = window("hann", views[0].shape)
    views = [(v - np.nanmean(v)) * taper for v in views]
    views = [np.where(np.isnan(v), 0.0, v) for v in views]
    reference = views[0]
    found = [np.zeros(reference.ndim)]
    for view in views[1:]:
        # the shift that registers view onto the reference: view[i] = ref[i + shift];
        # plain cross-correlation, as the whitened (phase) one weighs the aliased
        # high frequencies of undersampled frames as much as the rest (errors of
        # 0.02-0.06 pixel against 0.01-0.03)
        shift, _, _ = phase_cross_correlation(reference, view, normalization=None,
                                              upsample_factor=int(round(1 / precision)))
        found.append(np.asarray(shift, dtype=np.float64))
    return np.stack(found)


def register_rigid(frames, *, iterations: int = 100, smoothing: float = 0.5) -> np.ndarray:
    """Each 2-D or 3-D frame's rotation and shift from the first, to a fraction
    of a pixel.

    Returns an ``(F, d, d + 1)`` array of affine maps in pixel indices: frame
    ``k``'s pixel ``i`` sees what the first frame's point
    ``maps[k][:, :d] @ i + maps[k][:, d]`` sees (a rotation about any point
    plus a shift; ``maps[0]`` is the identity).  Frames of a hand-held burst,
    or exposures between which the field turned, are not translations of
    each other: 0.3 degree turns the corners of a 1000-pixel frame by 2.6
    pixels.

    Gauss–Newton (Lucas–Kanade) fits the turn (an angle; in 3-D a rotation
    vector, the turn updated by the exponential of its step) and the shift
    that bring each frame onto the first, both smoothed by a Gaussian of ``smoothing`` pixels
    (which damps the aliasing of undersampled frames), the reference
    interpolated by cubic splines, the residual weighted by a Hann window.
    It starts from no turn and :func:`register_shifts`'s shift, and where the
    frames' spectra say they turned by more than 2 degrees (Fourier–Mellin:
    the magnitudes' correlation in polar coordinates, which ignores shifts)
    also from that turn and its 180-degree twin, each with the shift that
    cross-correlation then finds; the fit that matches best wins.  Each fit
    runs coarse to fine, first on the frames smoothed by
    :data:`COARSE_SMOOTHING` pixels (every other pixel), whose wider basin
    brings it near a large turn.  Volumes start from no turn, and where that
    fit leaves more than :data:`CUBE_SEARCH_SHARE` of the frame's variation
    beyond what both frames' noise would (scikit-image's wavelet estimate,
    smoothed as the fit sees it), the coarsest fits from each of the cube's
    23 other turns (one is within 63 degrees of any turn) are tried, and the
    best carried on: right fits leave the noise, wrong ones had left 0.49 to
    1.5 of the variation.  Cell phantoms turned about random axes came
    within 0.001 voxel in 32 of 32 tries up to 45 degrees and 14 of 16 at
    60-75 with the coarse passes (29 of 32 and 5 of 16 without), and with the
    cube's turns in 39 of 40 from 60 to 180 degrees (3-20 s a pair where
    they were needed) while the bar was half the variation.  The miss there
    was a wrong fit that left under half; so was one of 60 turns drawn
    uniformly (0.488), which the present bar sends to the cube's turns and
    then finds, and with it 60 of 60 in another draw (two wrong fits from no
    turn, at 0.49 and 0.47, sent on).  A 2-D frame whose fit explains under half
    its variation is warned of, a volume whose fit leaves more than that bar
    beyond the noise too (a volume that changed, or another scene).  Frames
    of over 2**18 pixels are fitted on every k-th pixel of each axis (a pair
    of 2000-pixel frames turned by 1 degree: 2.4 s instead of 6.5, the corners
    within 0.001 pixel).  NaN samples count as the frame's mean.

    Examples
    --------
    A frame turned by 3 degrees (scipy turns it the other way round from the
    map's angle, which says where each pixel looks in the first frame):

    >>> import numpy as np
    >>> import scipy.ndimage as ndi
    >>> import deconvkit as dk
    >>> from deconvkit.restoration import register_rigid
    >>> scene = dk.blur(dk.cell_phantom((96, 96), seed=0), dk.psf.gaussian(1.5))
    >>> maps = register_rigid([scene, ndi.rotate(scene, 3.0, reshape=False)])
    >>> round(float(np.degrees(np.arctan2(maps[1][1, 0], maps[1][0, 0]))), 1)
    -3.0
    """
    views = [np.asarray(to_numpy(v), dtype=np.float64) for v in frames]
    d = views[0].ndim
    if d not in (2, 3):
        raise ValueError(f"register_rigid takes 2-D or 3-D frames, got {d}-D; use "
                         "register_shifts for translations in any dimension")
    if not smoothing >= 0:
        raise ValueError(f"smoothing must be >= 0 pixels, got {smoothing!r}")
    shifts = register_shifts(views)
    filled = [np.where(np.isnan(v), np.nanmean(v), v) for v in views]
    views = [ndi.gaussian_filter(v, smoothing) for v in filled]
    # the fit's points: every pixel, or every k-th on each axis of a large frame
    # (at most about 2**18 of them: they are plenty, and each iteration resamples them)
    k = max(1, int(np.ceil((views[0].size / 2 ** 18) ** (1 / d))))
    # coarse to fine: smoother frames have a wider basin, and the coarse
    # passes' points are fewer (volumes registered in 0.4-1.3 s, up to 5.9 before)
    levels = [_RigidLevel(filled[0], s, 2 * k) for s in COARSE_SMOOTHING if s > smoothing]
    levels.append(_RigidLevel(views[0], 0.0, k))
    hann = levels[-1].hann
    # the reference's spectrum in polar coordinates, once for every frame (2-D)
    spectrum = _polar_spectrum(views[0], hann) if d == 2 else None
    # what noise alone leaves of a right fit's misfit: both frames' noise, smoothed
    noise = [_smoothed_noise_variance(v, smoothing) for v in filled] if d == 3 else None
    maps = [np.hstack([np.eye(d), np.zeros((d, 1))])]
    for index, (view, unsmoothed, shift) in enumerate(zip(views[1:], filled[1:], shifts[1:]), 1):
        starts = [(np.eye(d), shift)]
        if d == 2:
            starts += _turned_starts(views[0], spectrum, view, hann, levels[-1].centre[:, 0])
        seen = [ndi.gaussian_filter(unsmoothed, level.smoothing) for level in levels[:-1]]
        seen.append(view)
        fits = [_coarse_to_fine(levels, seen, start, iterations) for start in starts]
        turn, move, misfit = min(fits, key=lambda fit: fit[2])
        spread = levels[-1].spread(view)
        noise_floor = noise[0] + noise[index] if d == 3 else 0.0
        if d == 3 and len(levels) > 1 and not misfit - noise_floor <= CUBE_SEARCH_SHARE * spread:
            # a volume turned beyond the basin (about 60 degrees): wrong fits there
            # left 0.49-1.5 of the frame's variation, right ones only the noise's
            start = _cube_start(levels[0], seen[0], iterations)
            if start is not None:
                fits.append(_coarse_to_fine(levels[1:], seen[1:], start, iterations))
                turn, move, misfit = min(fits, key=lambda fit: fit[2])
        if not np.isfinite(misfit):
            raise ValueError(f"frame {len(maps)} could not be registered to the first: "
                             "every fit moved it off the first frame (do they show the same "
                             "scene? a stack whose PSF has one axis fewer is a series of "
                             "frames); give shifts or maps")
        if d == 2 and misfit > 0.5 * spread:  # the registered frames explain under half
            warnings.warn(f"frame {len(maps)} matches the first poorly once registered (the "
                          f"fit explains {max(0.0, 1 - misfit / spread):.0%} of its "
                          "variation): do the frames show the same scene?", UserWarning,
                          stacklevel=2)
        unexplained = misfit - noise_floor
        if d == 3 and unexplained > CUBE_SEARCH_SHARE * spread:  # the cube's bar, after it
            warnings.warn(f"frame {len(maps)} matches the first poorly once registered (the "
                          f"fit leaves {unexplained / spread:.0%} of its variation beyond the "
                          "frames' noise): do the frames show the same scene, turned "
                          "rigidly?", UserWarning, stacklevel=2)
        # point = turn (i - centre) + centre + move
        centre = levels[-1].centre[:, 0]
        maps.append(np.hstack([turn, (centre + move - turn @ centre)[:, None]]))
    return np.stack(maps)


#: smoothing (pixels) of register_rigid's coarse passes, on every other fit point
COARSE_SMOOTHING = (4.0, 2.0)
#: the share of a volume's variation, beyond the frames' noise, that a fit from no
#: turn may leave before register_rigid tries the cube's other turns
CUBE_SEARCH_SHARE = 0.1


def _smoothed_noise_variance(frame, smoothing: float) -> float:
    """The variance of ``frame``'s noise (scikit-image's wavelet estimate) once
    smoothed by a Gaussian of ``smoothing`` pixels, as register_rigid's fits see it."""
    from skimage.restoration import estimate_sigma

    taps = np.zeros(2 * int(4 * smoothing + 0.5) + 1)
    taps[taps.size // 2] = 1.0
    gain = float(np.sum(ndi.gaussian_filter1d(taps, smoothing) ** 2)) if smoothing else 1.0
    return float(estimate_sigma(frame)) ** 2 * gain ** frame.ndim


class _RigidLevel:
    """The reference frame as one pass of :func:`register_rigid` fits it: smoothed
    by ``smoothing`` pixels, spline coefficients of it and its slopes, and the
    fit's points (every ``k``-th pixel of each axis) about the frame's centre
    with their Hann weights."""

    def __init__(self, reference, smoothing: float, k: int):
        from skimage.filters import window

        self.smoothing = smoothing
        if smoothing:
            reference = ndi.gaussian_filter(reference, smoothing)
        d = reference.ndim
        self.reference = ndi.spline_filter(reference, order=3)
        self.slopes = [ndi.spline_filter(g, order=3) for g in np.gradient(reference)]
        self.every = (slice(None, None, k),) * d
        grid = np.indices(reference.shape, dtype=np.float64)[(slice(None),) + self.every]
        self.centre = (np.asarray(reference.shape, dtype=np.float64)[:, None] - 1) / 2
        self.arm = grid.reshape(d, -1) - self.centre
        self.hann = window("hann", reference.shape)
        self.taper = self.hann[self.every].reshape(-1)

    def points(self, view):
        return view[self.every].reshape(-1)

    def spread(self, view) -> float:
        """The variance of ``view`` at the fit's points, under their weights."""
        return _weighted_variance(self.points(view), self.taper)

    def fit(self, view, start, iterations):
        return _rigid_fit(self.reference, self.slopes, self.points(view), self.arm,
                          self.centre, self.taper, start, iterations)


def _cube_start(level, view, iterations):
    """The best of the coarsest ``level``'s fits from the cube's 23 turns other
    than none, one of which is within 63 degrees of any turn (the fit's basin
    is about 60): ``(turn, move)``, or None if every one diverged."""
    # 20 iterations each: those that start within the basin have converged
    tries = [level.fit(view, (cube, np.zeros(3)), min(iterations, 20))
             for cube in _cube_turns()[1:]]
    best = min(tries, key=lambda fit: fit[2])
    return best[:2] if np.isfinite(best[2]) else None


def _coarse_to_fine(levels, views, start, iterations):
    """:func:`_rigid_fit` from ``start`` through ``levels``, each from the last
    one's result (a coarse fit that diverged is passed over); ``views``: the
    frame as each level sees it."""
    for level, view in zip(levels[:-1], views):
        turn, move, misfit = level.fit(view, start, iterations)
        if np.isfinite(misfit):
            start = (turn, move)
    return levels[-1].fit(views[-1], start, iterations)


def _cube_turns() -> list:
    """The 24 turns that map a cube onto itself (signed permutation matrices of
    determinant 1), the identity first."""
    turns = []
    for order in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            turn = np.zeros((3, 3))
            turn[range(3), order] = signs
            if np.linalg.det(turn) > 0:
                turns.append(turn)
    return turns


def _weighted_variance(values, weights) -> float:
    mean = (weights * values).sum() / weights.sum()
    return float((weights * (values - mean) ** 2).sum() / weights.sum())


def _rotation(angle):
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def _generators(d: int) -> np.ndarray:
    """The infinitesimal rotations of ``d`` dimensions: ``(1, 2, 2)`` in 2-D, in
    3-D the cross products with each axis, ``(3, 3, 3)``."""
    if d == 2:
        return np.array([[[0.0, -1.0], [1.0, 0.0]]])
    out = np.zeros((3, 3, 3))
    for axis in range(3):
        a, b = (axis + 1) % 3, (axis + 2) % 3
        out[axis, b, a], out[axis, a, b] = 1.0, -1.0
    return out


def _polar_spectrum(frame, taper):
    """The log magnitude of ``frame``'s spectrum (less its mean, under ``taper``)
    in polar coordinates, 720 angles by radius, over the band Fourier–Mellin
    compares: past the mean's peak, short of aliasing."""
    from skimage.transform import warp_polar

    radius = min(frame.shape) // 2
    magnitude = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2((frame - frame.mean()) * taper))))
    polar = warp_polar(magnitude, radius=radius, output_shape=(720, radius))
    return polar[:, radius // 10:3 * radius // 4]


def _turned_starts(reference, spectrum, view, taper, centre) -> list:
    """``(angle, move)`` starts for frames turned by more than 2 degrees: the turn
    that the spectra's magnitudes give (Fourier–Mellin, ``spectrum`` the
    reference's :func:`_polar_spectrum`; known up to 180 degrees), both ways,
    each with the shift cross-correlation then finds."""
    from skimage.registration import phase_cross_correlation

    rows, _, _ = phase_cross_correlation(spectrum, _polar_spectrum(view, taper),
                                         upsample_factor=10, normalization=None)
    turn = -np.radians(rows[0] / 2)  # 720 rows: half a degree each
    if abs(np.degrees(turn)) <= 2:
        return []
    starts = []
    grid = np.indices(reference.shape, dtype=np.float64).reshape(2, -1) - centre[:, None]
    for angle in (turn, turn + np.pi):
        rotation = _rotation(angle)
        turned = ndi.map_coordinates(reference, rotation @ grid + centre[:, None], order=1,
                                     mode="nearest").reshape(reference.shape)
        # view[i] = turned(i + shift) = reference(rotation (i + shift - centre) + centre)
        shift = register_shifts([turned, view])[1]
        starts.append((rotation, rotation @ shift))
    return starts


def _rigid_fit(reference, slopes, view, arm, centre, taper, start, iterations):
    """Gauss–Newton on sum taper (reference(turn arm + centre + move) - view)**2 from
    ``start`` = (turn, move), the turn updated as ``turn @ expm(step . generators)``:
    ``(turn, move, mean squared residual)``."""
    import scipy.linalg

    turn, move = np.asarray(start[0], dtype=np.float64), np.asarray(start[1], dtype=np.float64)
    generators = _generators(len(move))
    turns = len(generators)
    shape = np.asarray(reference.shape)[:, None]
    reach = np.abs(arm).max()
    for _ in range(iterations):
        points = turn @ arm + centre + move[:, None]
        inside = np.all((points >= 0) & (points <= shape - 1), axis=0)
        weights = taper * inside
        if not weights.sum() > 0.25 * taper.sum():  # diverged: the frames barely overlap
            return turn, move, np.inf

        def sample(a, points=points):
            return ndi.map_coordinates(a, points, order=3, prefilter=False)

        residual = sample(reference) - view
        gradient = np.stack([sample(s) for s in slopes])
        # d(turn expm(t G) arm)/dt at 0 = turn G arm, for each generator G
        bent = [turn @ g @ arm for g in generators]
        jacobian = np.concatenate([np.stack([(gradient * b).sum(axis=0) for b in bent]),
                                   gradient])
        normal = (jacobian * weights) @ jacobian.T
        step = np.linalg.lstsq(normal, -(jacobian * weights) @ residual, rcond=None)[0]
        turn = turn @ scipy.linalg.expm(np.tensordot(step[:turns], generators, axes=1))
        move = move + step[turns:]
        # a hundredth of a pixel at the frame's corner, and of a pixel
        if np.abs(step[:turns]).max() * reach < 1e-4 and np.abs(step[turns:]).max() < 1e-4:
            break
    return turn, move, float((weights * residual ** 2).sum() / max(weights.sum(), TINY))


def _scale(scale, d: int) -> tuple[int, ...]:
    values = (scale,) * d if np.ndim(scale) == 0 else tuple(scale)
    if len(values) != d or any(isinstance(v, bool) or not isinstance(v, numbers.Real)
                                or not float(v).is_integer() or v < 1 for v in values):
        raise ValueError(f"scale must be an int >= 1 or {d} of them, got {scale!r}")
    return tuple(int(v) for v in values)


def _motions(shifts, motion, views) -> np.ndarray:
    """Each frame's motion: (F, d) shifts, or (F, d, d + 1) affine maps where
    some are not translations."""
    d, frames = views[0].ndim, len(views)
    if isinstance(shifts, str):
        check_choice(shifts, "shifts", ("auto",))
        if frames == 1:
            return np.zeros((1, d))
        if motion == "rigid":
            if d not in (2, 3):
                raise ValueError(f"motion='rigid' registers 2-D and 3-D frames, got {d}-D; "
                                 "give shifts, or affine maps as shifts")
            return _translations_or(register_rigid(views))
        return register_shifts(views)
    found = np.asarray(shifts, dtype=np.float64)
    if found.size == frames * d and np.isfinite(found).all():
        return found.reshape(frames, d)
    if found.size == frames * d * (d + 1) and np.isfinite(found).all():  # rows of d x (d + 1)
        return _translations_or(found.reshape(frames, d, d + 1))
    raise ValueError(f"shifts must be 'auto', {frames} x {d} finite offsets (one per frame "
                     f"and axis, in frame pixels) or {frames} affine maps of {d} x {d + 1}, "
                     f"got {shifts!r}")


def _translations_or(maps):
    """Affine maps as shifts where all are translations (the kernels carry them)."""
    d = maps.shape[1]
    if np.allclose(maps[:, :, :d], np.eye(d), rtol=0, atol=1e-9):
        return maps[:, :, d].copy()
    return maps


def _fine_start(steps, kernel_shape):
    """Where the first frame's fine grid starts in the extended domain of a
    strided "valid" convolution."""
    return tuple(s // 2 - s + 1 + k - 1 - k // 2 for s, k in zip(steps, kernel_shape))


def _frame_operators(psfs, steps, motions, shape, like):
    """Each frame's operator on a common object domain, and where the first
    frame's fine grid starts in it: shifts move each frame's kernel, affine
    maps warp the object under it."""
    if motions.ndim == 2:
        kernels = _frame_kernels(psfs, steps, motions)
        ops = [Convolution(asarray(k, like=like), boundary="valid", stride=steps)
               for k in kernels]
        return ops, _fine_start(steps, kernels[0].shape)
    return _warped_operators(psfs, steps, motions, shape, like)


def _warped_operators(psfs, steps, maps, shape, like):
    """Each frame's operator, its pixel's kernel after the frame's map on the fine
    grid, and where the first frame's fine grid starts in their common domain,
    which is enlarged to hold every frame's view."""
    kernels = _frame_kernels(psfs, steps, np.zeros((len(psfs), len(steps))))
    convolutions = [Convolution(asarray(k, like=like), boundary="valid", stride=steps)
                    for k in kernels]
    kernel = kernels[0]
    domain = convolutions[0].input_shape(shape)
    start = np.asarray(_fine_start(steps, kernel.shape), dtype=np.float64)
    s = np.asarray(steps, dtype=np.float64)
    centre = 0.5 * s - 0.5  # the first frame pixel's centre on the fine grid
    # domain index q sees the first frame's domain point A q + b (fine samples)
    matrices = [s[:, None] * m[:, :-1] / s[None, :] for m in maps]
    offsets = [s * m[:, -1] + centre + start - a @ (start + centre)
               for a, m in zip(matrices, maps)]
    corners = np.array(list(np.ndindex(*(2,) * len(shape)))).T * (np.asarray(domain)[:, None] - 1)
    reach = np.stack([a @ corners + b[:, None] for a, b in zip(matrices, offsets)], axis=-1)
    low = np.maximum(0, np.ceil(-reach.min(axis=(1, 2)))).astype(int)
    high = np.maximum(0, np.ceil(reach.max(axis=(1, 2)) - (np.asarray(domain) - 1))).astype(int)
    extended = tuple(np.asarray(domain) + low + high)
    ops = [convolution @ Warp(a, b + low, extended, domain)
           for convolution, a, b in zip(convolutions, matrices, offsets)]
    return ops, tuple(int(v) for v in start + low)


def _frame_psfs(psf, frames: int) -> list:
    """One PSF per frame: the one given for all, or one each (a sequence of
    arrays), zero-padded about their centres to one shape."""
    from .multiview import _one_shape

    if not (isinstance(psf, (list, tuple)) and psf and all(hasattr(k, "shape") for k in psf)):
        return [psf] * frames
    if len(psf) != frames:
        raise ValueError(f"psf gives {len(psf)} PSFs for {frames} frames; give one PSF, or "
                         "one per frame")
    return _one_shape(psf)


def _frame_kernels(psfs, steps, offsets) -> list:
    """Each frame's kernel on the fine grid: its PSF, the pixel's box, and the
    frame's shift (``steps * offset`` fine samples), all of one shape."""
    box = np.ones(steps) / np.prod(steps)
    moves = offsets * np.asarray(steps)  # in fine samples
    reach = np.ceil(np.abs(moves).max(axis=0)).astype(int) + 1
    kernels = []
    for psf, move in zip(psfs, moves):
        if any(k % 2 == 0 for k in psf.shape):  # odd, so that the centres compose
            psf = np.pad(psf, [(0, 1 - k % 2) for k in psf.shape])
        pixel = np.clip(scipy.signal.fftconvolve(psf, box), 0.0, None)
        padded = np.pad(pixel, [(r, r) for r in reach])
        # frame pixel i sees the first frame's i + offset: h(j + move), i.e. h moved back
        moved = ndi.shift(padded, -move, order=1, mode="constant", cval=0.0)
        kernels.append(np.clip(moved, 0.0, None) / moved.sum())
    return kernels
