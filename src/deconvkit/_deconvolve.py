"""``deconvolve``: one entry point over every restoration method."""

from __future__ import annotations

import inspect
import time

import numpy as np

from . import restoration as _r
from ._array_api import array_namespace
from ._validate import (
    LARGER_PSF_METHODS,
    MISSING_METHODS,
    MISSING_VALID_ONLY,
    check_array,
    check_channel_axis,
    check_choice,
    check_psf,
    has_nan,
)
from .operators import SpaceVariantConvolution

__all__ = ["METHODS", "deconvolve", "choose_method"]

#: method name -> (function, boundary used by boundary="auto")
METHODS = {
    "total_variation": (_r.total_variation, "valid"),
    "richardson_lucy": (_r.richardson_lucy, "valid"),
    "richardson_lucy_tv": (_r.richardson_lucy_tv, "valid"),
    "wavelet": (_r.wavelet, "valid"),
    "wiener": (_r.wiener, "valid"),
    "tikhonov": (_r.tikhonov, "valid"),
    "cgls": (_r.cgls, "valid"),
    "unsupervised_wiener": (_r.unsupervised_wiener, "symmetric"),
    "landweber": (_r.landweber, "valid"),
    "van_cittert": (_r.van_cittert, "edge"),
    "gold": (_r.gold, "valid"),
    "inverse_filter": (_r.inverse_filter, "symmetric"),
}


def choose_method(image, psf) -> str:
    """The method ``method="auto"`` uses for this data.

    Total variation (with its small quadratic gradient term) and the
    non-circulant boundary is the most accurate default on natural and
    microscopy images in ``benchmarks/quality.py``, for Gaussian and Poisson
    noise alike, with the Gaussian data term: the estimated noise level sets
    its weights, in any units.  On raw counts the
    Poisson term (``data="poisson"``) gained 0.2-0.4 dB on photos at 10
    photons at the peak and about 0 at 100-1000, but lost 0.7-1.1 dB on a
    sparse object at 100-300, so it is not switched on from the data.

    On 3-D cell phantoms (widefield and Gaussian PSFs, 30-3000 photons)
    Richardson-Lucy with its automatic stop beat this default in 10 of 12
    cases (by up to 1.5 dB) and ran 4-60x faster, because the automatic TV
    weights over-regularise such sparse objects (TV with weights suited to
    them beats RL again; see :func:`total_variation`'s Notes).  For large
    fluorescence volumes, ``method="richardson_lucy"`` is the quick choice.
    Re-measured later on other phantoms (40 x 100 x 100, Gaussian and
    widefield PSFs, 30 and 300 photons, 2 seeds), RL won 5 of 8 cases by
    0.02-1.35 dB and lost 3 by 0.14-0.60; on 2-D phantoms under an Airy PSF
    with Gaussian noise TV led by 5-7 dB.  No rule on the data (the fraction
    of dark samples among them) separated the two over 84 such cases, so
    the default stays TV.
    """
    del image, psf  # one rule today; the signature leaves room for data-driven choices
    return "total_variation"


def deconvolve(image, psf, *, method: str = "auto", boundary: str = "auto",
               channel_axis: int | None = None, return_info: bool = False, **options):
    """Restore ``image`` blurred by ``psf``: the library's front door.

    Parameters
    ----------
    image : (N1, ..., Nd) array, or with one extra channel axis
        numpy, torch (CPU or CUDA) or CuPy array; the result has the same
        library, device and shape, in the working float dtype (float32 stays
        float32; integers and float16 are promoted).  Never clipped.  NaN
        samples, and the masked samples of a ``numpy.ma.MaskedArray`` (the
        result is a plain array), are missing data (bad pixels, detector gaps),
        left out of the data term by ``"total_variation"`` (the default),
        ``"richardson_lucy"``, ``"richardson_lucy_tv"``, ``"wavelet"``,
        ``"landweber"``, ``"gold"`` and ``"wiener"`` with ``boundary="valid"``, and
        filled in from their neighbours; the other methods refuse them.  A dask
        array is restored chunk by chunk (:func:`deconvkit.tiling.deconvolve_dask`)
        and a lazy dask array is returned.
    psf : (K1, ..., Kd) array, a list of them, or a SpaceVariantConvolution
        Point-spread function (normalised to sum 1 by the solvers); with
        ``channel_axis``, a list gives each channel its own (fluorescence
        channels at different wavelengths blur differently).  A
        :class:`~deconvkit.SpaceVariantConvolution` (PSFs on a grid across
        the field) for ``total_variation``, ``richardson_lucy(_tv)``,
        ``landweber`` and ``gold``; a dask image is tiled with each chunk
        seeing the field through its window.
    method : str
        ``"auto"`` (default, see :func:`choose_method`) or one of
        :data:`METHODS`: ``"total_variation"``, ``"richardson_lucy"``,
        ``"richardson_lucy_tv"``, ``"wavelet"``, ``"wiener"``, ``"tikhonov"``,
        ``"cgls"``, ``"unsupervised_wiener"``, ``"landweber"``,
        ``"van_cittert"``, ``"gold"``, ``"inverse_filter"`` (the function names in
        :mod:`deconvkit.restoration`).  Their keyword options pass through
        ``**options`` (``iterations=``, ``weight=``, ``callback=``, ...).
    boundary : str
        ``"auto"`` picks the model that avoids edge ringing for the method
        (``"valid"``, solved by CGLS for Wiener and Tikhonov; ``"symmetric"``
        extension where only a closed form exists); or any name of
        :class:`deconvkit.Convolution`.
    channel_axis : int, optional
        Axis of colour channels; each channel is restored with the same PSF.
        The image's axes before the PSF's, other than the channel axis (time
        points of a TZYX stack, a batch of traces under a 1-D response), are
        restored one by one: each item chooses its own parameters and stops
        on its own, as a separate call would.
    return_info : bool
        Also return what was chosen: an :class:`~deconvkit.restoration.Info`
        (method, parameters, iterations, stopping reason, history); with
        ``channel_axis`` a list of them, one per channel; with axes before the
        PSF's a list per item of those axes in C order (per channel, a list of
        such lists).

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
    check_choice(method, "method", ("auto", *METHODS))
    psfs = _per_channel(psf, channel_axis)
    if psfs is not None:
        channels = image.shape[channel_axis] if -image.ndim <= channel_axis < image.ndim else 0
        if len(psfs) != channels:
            raise ValueError(f"psf is a list of {len(psfs)} PSFs but the image has {channels} "
                             f"channels on axis {channel_axis}; give one PSF per channel")
        psf = psfs[0]  # checks below; each channel takes its own
    if hasattr(image, "shape"):  # dask's too, before it is tiled
        _check_channels_last(image.shape, _ndim(psf), channel_axis)
    space_variant = isinstance(psf, SpaceVariantConvolution)
    if type(image).__module__.split(".")[0] == "dask":  # out of core: tile it
        maps = [name for name, value in options.items()
                if getattr(value, "ndim", 0) and name != "background"]
        if maps:
            raise TypeError(f"{', '.join(maps)} is an array, which is not tiled with a dask "
                            "image: pass a number, or a numpy or torch image")
        from .tiling import deconvolve_dask

        def tiled(item, psf, options):
            return deconvolve_dask(item, psf, method=method, boundary=boundary,
                                   return_info=True, **options)

        if channel_axis is None:
            restored, info = _one_by_one(tiled, image, psf, options, _ndim(psf))
            return (restored, info) if return_info else restored
        import dask.array as da

        channel_axis = check_channel_axis(channel_axis, image.ndim, _ndim(psf))
        # each channel (and time point) tiled on its own, its parameters chosen on
        # its own data
        results = [_one_by_one(tiled, image[(slice(None),) * channel_axis + (c,)],
                               psf if psfs is None else psfs[c],
                               _part_of(options, image.ndim, (slice(None),) * channel_axis + (c,)),
                               _ndim(psf))
                   for c in range(image.shape[channel_axis])]
        restored = da.stack([r for r, _ in results], axis=channel_axis)
        return (restored, [info for _, info in results]) if return_info else restored
    image = check_array(image, "image", missing=True)
    _check_channels_last(image.shape, _ndim(psf), channel_axis)  # a list, now an array
    channel_axis = check_channel_axis(channel_axis, image.ndim, _ndim(psf))
    spatial = image.shape if channel_axis is None else tuple(
        n for i, n in enumerate(image.shape) if i != channel_axis)
    if method == "auto":
        method = choose_method(image, psf)
    solver, auto_boundary = METHODS[method]
    if boundary == "auto":
        boundary = auto_boundary
    for each in [] if space_variant else psfs or [psf]:
        check_psf(each, tuple(spatial),
                  larger=boundary == "valid" and method in LARGER_PSF_METHODS)
    # cgls leaves them out of a data term with a given weight (its automatic one
    # needs every sample)
    leaves_out = method in MISSING_METHODS or (method in MISSING_VALID_ONLY
                                               and boundary == "valid") or (
        method == "cgls" and options.get("weight", "auto") != "auto")
    if not leaves_out and has_nan(image):
        condition = (" with this boundary" if method in MISSING_VALID_ONLY else
                     " with its automatic weight" if method == "cgls" else "")
        raise ValueError(f"image has NaN or masked samples (missing data), which {method} "
                         f"cannot leave out{condition}; "
                         f"use method={' or '.join(map(repr, MISSING_METHODS))} (or wiener "
                         "with boundary='valid', or cgls with a weight), or replace them first")
    accepted = inspect.signature(solver).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"{method} does not take {', '.join(unknown)}; it takes "
                        f"{', '.join(p for p in accepted if p not in ('image', 'psf'))}")
    if "return_info" in accepted:
        options["return_info"] = True

    def run(channel, psf=psf, options=options):
        start = time.perf_counter()
        result = solver(channel, psf, boundary=boundary, **options)
        if isinstance(result, tuple):
            return result
        return result, _r.Info(method, dict(boundary=boundary), seconds=time.perf_counter()
                               - start)

    spatial_ndim = _ndim(psf)
    if channel_axis is None:
        restored, info = _one_by_one(run, image, psf, options, spatial_ndim)
        return (restored, info) if return_info else restored
    xp = array_namespace(image)
    channels = xp.moveaxis(image, channel_axis, 0)
    results = [_one_by_one(run, c, psf if psfs is None else p,
                           _part_of(options, image.ndim, (slice(None),) * channel_axis + (index,)),
                           spatial_ndim)
               for index, (c, p) in enumerate(zip(channels, psfs or [psf] * len(channels)))]
    stacked = xp.stack([r for r, _ in results], axis=0)
    restored = xp.moveaxis(stacked, 0, channel_axis)
    return (restored, [i for _, i in results]) if return_info else restored


def _one_by_one(run, image, psf, options, spatial_ndim: int):
    """``run`` on each item of the axes before the last ``spatial_ndim`` (time
    points, a batch of traces) on its own, so that none sets another's
    parameters or stopping: ``(restored, info)``, ``info`` a list for items."""
    lead = image.ndim - spatial_ndim
    if lead <= 0:
        return run(image, psf, options)
    indices = list(np.ndindex(*image.shape[:lead]))
    results = [run(image[index], psf, _part_of(options, image.ndim, tuple(map(int, index))))
               for index in indices]
    from .tiling import is_dask

    if is_dask(image):
        import dask.array as da

        stacked = da.stack([r for r, _ in results], axis=0)
    else:
        stacked = array_namespace(image).stack([r for r, _ in results], axis=0)
    return stacked.reshape(image.shape), [info for _, info in results]


def _part_of(options, ndim: int, key: tuple) -> dict:
    """``options`` for the part ``image[key]`` of an ``ndim``-D image (a time
    point, a channel): a background map of the image's shape gives that part;
    a smaller one serves every part."""
    background = options.get("background")
    if getattr(background, "ndim", 0) == ndim:
        options = options | {"background": background[key]}
    return options


def _per_channel(psf, channel_axis):
    """``psf`` as a list of per-channel PSFs, or None for one PSF."""
    # arrays in a list, one per channel; a nested list of numbers is one PSF
    if not (isinstance(psf, (list, tuple)) and psf
            and all(hasattr(p, "ndim") and p.ndim > 0 for p in psf)):
        return None
    if channel_axis is None:
        raise ValueError(f"psf is a list of {len(psf)} PSFs; pass channel_axis to say which "
                         "axis of the image they belong to")
    return list(psf)


def _check_channels_last(shape, psf_ndim: int, channel_axis) -> None:
    """Refuse an image whose last axis looks like colour channels when none is named:
    the psf would blur across them (a stack of planes puts its plane axis first)."""
    if (channel_axis is None and len(shape) == psf_ndim + 1 and shape[-1] <= 4
            and min(shape[:-1]) > 4 * shape[-1]):
        raise ValueError(f"image of shape {tuple(shape)} has {shape[-1]} samples on its last "
                         f"axis, like colour channels; pass channel_axis=-1 to restore each "
                         f"channel with the {psf_ndim}-D psf (a stack of {psf_ndim}-D planes "
                         f"takes its plane axis first)")


def _ndim(psf) -> int:
    ndim = getattr(psf, "ndim", None)
    if ndim is None:
        return check_array(psf, "psf").ndim
    return ndim
