"""Multiview Richardson–Lucy: one object from several registered views, each with its PSF."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._array_api import array_namespace, clamp_min, full, to_numpy
from .._validate import check_callback, check_choice
from ..operators import BOUNDARIES, Gradient
from ..tiling import is_dask
from ._common import (
    TINY,
    blur_operator,
    frame,
    non_negative_psf,
    observed_mean,
    observed_rms,
    offset,
    prepare,
    read_noise_shift,
    split_missing,
)
from ._stopping import Info, noise_level, rms_of_difference
from .richardson_lucy import (
    BiggsExtrapolation,
    _tv_curvature,
    automatic_tv_weight,
    rl_stopping,
)

__all__ = ["richardson_lucy_multiview"]


def richardson_lucy_multiview(images, psfs, *, iterations="auto", boundary: str = "valid",
                              background=0.0, acceleration: str | None = "biggs",
                              read_noise: float = 0.0, noise_sigma: float | None = None,
                              time_limit: float | None = None, callback: Callable | None = None,
                              return_info: bool = False):
    r"""Richardson–Lucy for several views of one object, N-D.

    Light-sheet and other multiview microscopes image a sample from several
    directions: each view is sharp across its light sheet and blurred along
    its detection axis, and no single view resolves the object in every
    direction.  Deconvolving the views jointly recovers what each resolves.

    Parameters
    ----------
    images : sequence of (N1, ..., Nd) arrays
        The views, registered to one frame (same shape, numpy or torch), or
        dask arrays: then restored tile by tile into a lazy dask array
        (:func:`deconvkit.tiling.multiview_dask`; ``callback`` is not used).
        NaN samples are missing data in their view (the wedges a deskew
        leaves with ``fill=np.nan``, the part of the frame a view does not
        cover): left out of its data term, as :func:`deconvkit.richardson_lucy`
        does.
    psfs : sequence of (K1, ..., Kd) arrays
        One PSF per view, in the common frame (each normalised to sum 1;
        negative samples set to 0 with a warning).  Under ``"valid"`` they
        are zero-padded about their centres to the largest extent on each
        axis, so that the object is estimated on one extended domain.
    iterations : int or "auto"
        ``"auto"``: stop by the discrepancy principle on all views' residuals
        together (at most 500).
    boundary : str
        As in :func:`deconvkit.richardson_lucy`; ``"valid"`` by default.
    background : float or sequence
        The background of every view, or one (a number or an array) per view.
    acceleration : {"biggs", None}
        Biggs–Andrews extrapolation as in :func:`deconvkit.richardson_lucy`.
    read_noise : float
        The cameras' read noise, for views in counts (the shifted-Poisson
        model, as in :func:`deconvkit.richardson_lucy`).
    noise_sigma, time_limit, callback, return_info
        As in :func:`deconvkit.richardson_lucy` (``noise_sigma``: of every view).

    Returns
    -------
    restored : array
        The object on the views' frame, non-negative.

    Notes
    -----
    Maximum likelihood for independent Poisson views
    :math:`y_v \sim \mathrm{Poisson}(A_v x + b_v)` by the EM update of Shepp
    and Vardi [1]_, as in multiview fusion [2]_:

    .. math:: x \leftarrow \frac{x}{\sum_v A_v^T 1}
              \sum_v A_v^T \frac{y_v}{A_v x + b_v}.

    References
    ----------
    .. [1] L. A. Shepp and Y. Vardi, "Maximum likelihood reconstruction for
       emission tomography", IEEE Trans. Med. Imaging 1(2), 1982.
    .. [2] S. Preibisch et al., "Efficient Bayesian-based multiview
       deconvolution", Nature Methods 11, 2014.

    Examples
    --------
    Two views, each blurred along one axis, restored better together:

    >>> import numpy as np
    >>> import deconvkit as dk
    >>> scene = dk.cell_phantom((64, 64), seed=0)
    >>> along = [dk.psf.gaussian((4.0, 0.7), shape=(21, 21)),
    ...          dk.psf.gaussian((0.7, 4.0), shape=(21, 21))]
    >>> views = [dk.simulate(scene, k, noise="poisson", photons=200, seed=i)
    ...          for i, k in enumerate(along)]
    >>> joint = dk.richardson_lucy_multiview(views, along, boundary="symmetric")
    >>> single = dk.richardson_lucy(views[0], along[0], boundary="symmetric")
    >>> bool(dk.metrics.psnr(scene, joint, data_range=1) >
    ...      dk.metrics.psnr(scene, single, data_range=1) + 2)
    True
    """
    check_callback(callback)
    check_choice(boundary, "boundary", BOUNDARIES)
    check_choice(acceleration, "acceleration", (None, "biggs"))
    views, kernels = _views(images, psfs)
    if boundary == "valid":  # one object domain: each PSF zero-padded to the largest
        kernels = _one_shape(kernels)
    if any(is_dask(v) for v in views):
        from ..tiling import multiview_dask

        if boundary != "valid":
            raise ValueError("tiled views are restored with boundary='valid' (the cuts "
                             "between tiles are unknown borders)")
        return multiview_dask(views, kernels, iterations=iterations, background=background,
                              acceleration=acceleration, read_noise=read_noise,
                              noise_sigma=noise_sigma, time_limit=time_limit,
                              return_info=return_info)
    backgrounds = list(background) if isinstance(background, (list, tuple)) else \
        [background] * len(views)
    if len(backgrounds) != len(views):
        raise ValueError(f"background gives {len(backgrounds)} values for {len(views)} views; "
                         "give one, or one per view")
    prepared = [prepare(y, k, missing=True) for y, k in zip(views, kernels)]
    noisy = [y for y, _ in prepared]  # NaN where missing, for the noise estimate
    views, masks = zip(*(split_missing(y) for y, _ in prepared))
    kernels = [non_negative_psf(k, "richardson_lucy_multiview", stacklevel=2)
               for _, k in prepared]
    backgrounds = [offset(b, y) for b, y in zip(backgrounds, views)]
    shift = read_noise_shift(read_noise)
    if shift:
        views = [y + shift for y in views]
        backgrounds = [b + shift for b in backgrounds]
    ops = [blur_operator(k, y, boundary) for k, y in zip(kernels, views)]
    shape = tuple(views[0].shape)
    x, history, stop, sigma, _ = joint_richardson_lucy(
        ops, views, masks, backgrounds, noisy, iterations=iterations,
        acceleration=acceleration, noise_sigma=noise_sigma, time_limit=time_limit,
        callback=callback, crop=lambda x: frame(ops[0], x, shape))
    stop.warn_if_short("richardson_lucy_multiview")
    restored = frame(ops[0], x, shape)
    if not return_info:
        return restored
    return restored, Info("richardson_lucy_multiview",
                          dict(boundary=boundary, acceleration=acceleration, views=len(views),
                               noise_sigma=sigma),
                          iterations=len(history), stopped_by=stop.reason, history=history,
                          seconds=stop.seconds)


def joint_richardson_lucy(ops, views, masks, backgrounds, noisy, *, iterations, acceleration,
                          noise_sigma, time_limit, callback, crop, tv_weight=None):
    """The EM iteration of several views' operators on one object: ``(x, history,
    stop, sigma, tv_weight)``, ``x`` on the operators' common input domain.  ``noisy``: the
    views with NaN where missing (for the noise level); ``crop`` maps ``x`` to
    what the callback sees; ``tv_weight`` (a number or ``"auto"``) adds Dey et
    al.'s TV factor as :func:`deconvkit.richardson_lucy_tv` does, and its stop."""
    shape = tuple(views[0].shape)
    domain = ops[0].input_shape(shape)
    sigma = None
    if iterations == "auto" or tv_weight == "auto":
        sigma = noise_sigma if noise_sigma is not None else float(
            sum(noise_level(y, None) ** 2 for y in noisy) / len(views)) ** 0.5
    # the views' mean level above their backgrounds: the start, and the TV weight
    level = sum(float(to_numpy(observed_mean(clamp_min(y - b, 0.0), m, len(domain))).mean())
                for y, b, m in zip(views, backgrounds, masks)) / len(views)
    automatic = tv_weight == "auto"
    if automatic:
        tv_weight = automatic_tv_weight(sigma, level)
    stop = rl_stopping(iterations, tv=bool(tv_weight), target=sigma, time_limit=time_limit)
    grad = Gradient(len(domain))
    ones = full(shape, 1.0, like=views[0])
    # a missing sample (NaN) of a view leaves that view's data term: A_v^T M_v
    weights = sum(op.adjoint(ones if m is None else m) for op, m in zip(ops, masks))
    floor = 1e-6 * float(to_numpy(weights.max()))
    seen = weights > floor
    weights = clamp_min(weights, floor)
    if automatic and tv_weight:
        # the rule is for weights A^T 1 of 1 (deconvolution); with c data a
        # sample (one frame at x2: 1/4, four views: 4) the fine grid's noise is
        # sigma / sqrt(c), and the prior against weights of c is the rule's
        # times sqrt(c): one frame at x2/x3 +0.22 dB on the benchmark's scenes
        # and +0.17 on six others (with c, not sqrt(c): -0.18 and -0.92)
        tv_weight *= float(to_numpy(weights[seen].mean())) ** 0.5
    tiny = 1e-12 * max(max(float(to_numpy(y.max())) for y in views), TINY)
    x = full(domain, max(level, tiny), like=views[0]) * seen
    history, biggs = [], BiggsExtrapolation(enabled=bool(acceleration))
    previous = None
    for iteration in stop:
        point = biggs.point(x)
        total, squares = 0.0, 0.0
        for op, y, b, m in zip(ops, views, backgrounds, masks):
            predicted = clamp_min(op.forward(point) + b, tiny)
            ratio = clamp_min(y, 0.0) / predicted
            if m is None:
                squares += rms_of_difference(predicted, y) ** 2
            else:
                squares += observed_rms(predicted - y, m) ** 2
                ratio = ratio * m
            total = total + op.adjoint(ratio)
        history.append((squares / len(views)) ** 0.5)
        if tv_weight:  # the prior must not swamp A^T 1 (as in richardson_lucy_tv)
            damped = weights - tv_weight * _tv_curvature(grad, point)
            previous, x = x, point * total / array_namespace(point).maximum(damped, 0.5 * weights)
        else:
            x = biggs.advance(point * total / weights, point, x)
        if callback is not None and callback(iteration, crop(x)):
            stop.reason = "callback"
            break
        if stop.done(residual=history[-1]):
            break
    if previous is not None and len(history) > 1:  # two iterates, not the start's
        # the TV factor leaves samples that flip between two values each
        # iteration (most where one frame sees the fine grid); their mean is
        # the fixed point's estimate (super_resolve, one frame: +0.02-0.03 dB,
        # never lower; +0.22 before the automatic weight followed sqrt(c))
        x = 0.5 * (x + previous)
    return x, history, stop, sigma, tv_weight


def _views(images, psfs):
    """The views and PSFs as lists, checked to pair up and share a frame."""
    if hasattr(images, "shape") or hasattr(psfs, "shape"):
        raise TypeError("images and psfs are sequences (one array per view); for one view "
                        "use richardson_lucy")
    views, kernels = list(images), list(psfs)
    if len(views) < 1 or len(views) != len(kernels):
        raise ValueError(f"give one PSF per view: {len(views)} images, {len(kernels)} psfs")
    shapes = {tuple(v.shape) for v in views}
    if len(shapes) > 1:
        raise ValueError(f"the views must be registered to one frame (one shape), got "
                         f"{sorted(shapes)}")
    return views, kernels


def _one_shape(kernels) -> list:
    """The views' PSFs zero-padded about their centres to the largest extent on
    each axis (a side view's PSF is long where the front view's is short)."""
    from ..psf import crop_or_pad

    shapes = [tuple(np.shape(k)) for k in kernels]
    if len(set(shapes)) == 1:
        return list(kernels)
    if len({len(shape) for shape in shapes}) > 1:
        raise ValueError(f"the views' PSFs have {sorted({len(s) for s in shapes})} dims; "
                         "give PSFs of one dimensionality")
    largest = tuple(max(sizes) for sizes in zip(*shapes))
    return [crop_or_pad(to_numpy(k), largest) for k in kernels]
