"""Richardson–Lucy deconvolution on the convolution operator, every boundary model."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

from .. import _kernels
from .._array_api import (
    array_namespace,
    blockwise,
    by_pieces,
    clamp_min,
    clamp_min_,
    copy,
    full,
    irfftn_into,
    is_numpy,
    rfftn_into,
    to_numpy,
    vdot,
)
from .._validate import check_callback, check_choice, check_weight
from ..operators import BOUNDARIES, Gradient, SpaceVariantConvolution
from ..operators.convolution import separable_passes
from ._common import (
    TINY,
    blur_operator,
    empty_spectrum,
    fft_grid,
    frame,
    multiply_,
    non_negative_psf,
    observed_mean,
    offset,
    prepare,
    read_noise_shift,
    saturated_mask,
    split_missing,
    warn_if_signed,
)
from ._stopping import Info, Stopping, noise_level

__all__ = ["richardson_lucy", "richardson_lucy_tv"]


def richardson_lucy(image, psf, *, iterations="auto", boundary: str = "valid",
                    background=0.0, acceleration: str | None = "biggs",
                    noise_sigma: float | None = None, saturation: float | None = None,
                    read_noise: float = 0.0, time_limit: float | None = None,
                    callback: Callable | None = None, return_info: bool = False):
    r"""Richardson–Lucy (maximum-likelihood Poisson) deconvolution, N-D.

    Parameters
    ----------
    image : (N1, ..., Nd) array
        Observed data, non-negative counts or intensities (numpy, torch, CuPy).
        Negative samples, which the Poisson model cannot produce, are treated
        as 0 in the data term.  NaN samples are missing data (bad or masked
        pixels, gaps between detector tiles; saturated ones are better told
        by ``saturation``): they leave the likelihood, and the object there
        is estimated from the samples around them through the blur (a hole
        narrower than the PSF is filled with real data; a wider one stays
        near 0 in its middle).
    psf : (K1, ..., Kd) array or SpaceVariantConvolution
        Point-spread function; normalised to sum 1 here.  A PSF with fewer
        dims than the image is applied to each trailing block (leading axes
        are a batch).  Negative samples (background subtraction leaves them
        in measured PSFs) are set to 0, with a warning: the Poisson model
        needs a non-negative blur.  PSFs on a grid across the field
        (:class:`~deconvkit.SpaceVariantConvolution`, ``boundary`` applied
        to it) must be non-negative already.
        Under ``boundary="valid"`` it may be longer than the image on an
        axis (a thin stack under a widefield PSF): the object is estimated
        on the planes beyond the image too, whose light the image receives.
    iterations : int or "auto"
        Number of multiplicative updates, or ``"auto"`` (default): stop by the
        discrepancy principle, when the residual RMS reaches the noise level
        estimated from the data, or when it grows again (at most 500
        iterations; :func:`richardson_lucy_tv` stops otherwise).
    boundary : {"valid", "symmetric", "reflect", "edge", "zero", "periodic"}
        Boundary model of the blur (see :class:`deconvkit.Convolution`).
        ``"valid"`` (default) is the non-circulant model of Bertero and
        Boccacci [2]_: the object is estimated on a domain extended by the PSF
        support and only observed samples enter the likelihood, which removes
        edge ringing; the frame is returned.
    background : float or array
        Known background ``b`` in the model ``y ~ Poisson(Ax + b)``: a
        constant, or an array of the image's shape (a sky map, a spectrum's
        continuum from :func:`deconvkit.spectra.snip_background`); not for
        dask input.
    acceleration : {"biggs", "anderson", None}
        ``"biggs"`` (default): Biggs–Andrews vector extrapolation [3]_, as in
        MATLAB's ``deconvlucy``: each update starts from the estimate pushed
        along its last change, by a step computed from the last two updates.
        On arrays of 2**20 samples or more the step's two inner products
        are taken over every 4th slice of the first long axis (the older
        update is kept there only: a quarter of an array, and no full pass
        for them).  The step then differs by ~1 % of itself.  Measured with
        the lattice on 16 cases of ``benchmarks/quality.py``: the automatic
        stop's PSNR moved by at most 0.02 dB (its iteration by at most
        one); past it, Biggs' iterates drift apart from small differences,
        as float32 ones do from float64.
        ``"anderson"``: Anderson acceleration [4]_ with a memory of 5: each
        point is the combination of the last 6 RL updates whose changes
        (weighted by ``A^T 1``) combine to the least norm, a 5-unknown
        least-squares problem taken on Biggs' lattice and restarted when a
        change grows 4-fold.  Fewer iterations than Biggs: in
        ``benchmarks/quality.py`` scikit-image's 50-iteration PSNR within
        12 iterations in 14 of 16 cases (Biggs 6; the other two in 13;
        four are motion blurs, where scikit-image's RL has passed its
        peak by then: its best within 50 in a quarter of the iterations
        scikit-image took to it in 9 of 16, Biggs in none),
        186 against Biggs' 235
        iterations over 18 cases on other photos, +0.14 dB on average at
        the automatic stop over 24 noisy cases.  It keeps the 6 updates:
        measured on a 1024x1024 float32 image at the automatic stop, 11.2
        padded volumes of peak memory against Biggs' 5.5, and an iteration
        costs 1.39x the FFT floor with the ``fast`` extra's compiled
        combination (2.0x with numpy's passes), so it pays off where
        iterations converge slowly: scikit-image's interior quality in
        1.51 s against Biggs' 2.79 s on a 64x256x256 volume, 0.17 s against
        0.27 s at 1024x1024 (``benchmarks/speed.py``, one run, on the FFTs;
        on the separable passes below, 0.49 s against 0.55 s and 0.12 s
        against 0.08 s).
        ``None``: plain RL.
    noise_sigma : float, optional
        Noise level for ``iterations="auto"``; estimated when not given.
    saturation : float, optional
        The detector's saturation level: samples at or above it record a
        lower bound on the light, not a measurement.  There the ratio is kept
        at 1 or more, so they pull :math:`Ax` up to the level and never down
        (a one-sided data term).  Better than taking the clipped values as
        data (+2 to +8 dB on 2-D and 3-D test objects with a tenth of the
        samples clipped) and than leaving them out (NaN), which leaves the
        middle of a saturated area wider than the PSF at 0.
    read_noise : float
        The camera's read-noise standard deviation :math:`\sigma_r`, for data
        in photo-electrons (counts): the Gaussian read noise is folded into
        the Poisson model by the shifted-Poisson approximation of Snyder et
        al. [5]_ (:math:`y + \sigma_r^2 \sim \mathrm{Poisson}(Ax + b +
        \sigma_r^2)`), which keeps dark samples, often negative, in the
        likelihood.  Measured on a cell phantom under an Airy PSF (3 seeds):
        +0.9 to +1.6 dB at 20 photons at the peak with read noise 3, +0.5 to
        +1.2 at 50 with 5, -0.4 to +0.1 at 100 with 3.
    time_limit : float, optional
        Seconds after which to stop.
    callback : callable, optional
        ``callback(iteration, estimate)`` after each update (``estimate`` is the
        frame, ``iteration`` counts from 1); returning ``True`` stops early.
    return_info : bool
        Also return an :class:`~deconvkit.restoration.Info` (iterations,
        stopping reason, residual history).

    Returns
    -------
    (N1, ..., Nd) array
        The estimate, same shape and library as ``image``, working float dtype.
        Non-negative; for ``"periodic"`` its sum equals the data's (flux
        conservation; with ``acceleration="anderson"`` to about 1e-4, since
        its combinations are clipped at 0: at most 1.5e-4 measured on the
        test objects).

    Notes
    -----
    Forward model :math:`y \sim \mathrm{Poisson}(Ax + b)`.  The update [1]_

    .. math:: x \leftarrow \frac{x}{A^T 1}\, A^T\!\left(\frac{y}{Ax + b}\right)

    uses the exact adjoint of each boundary model, including the
    normalisation :math:`A^T 1` that is not constant near the edges.  With
    missing samples (a 0/1 mask :math:`m` of the observed ones) the ratio is
    :math:`m\,y / (Ax + b)` and the normalisation :math:`A^T m`, the
    likelihood of the observed samples only: the ``"valid"`` model is the
    case of a mask that is 0 beyond the frame [2]_, so a frame of NaN around
    an image gives exactly the smaller image's restoration.

    A separable PSF (an outer product of 1-D profiles to round-off: a
    Gaussian, a box) on numpy data with the ``"valid"`` boundary and the
    ``fast`` extra is applied as compiled 1-D passes, one per axis, instead
    of FFTs, where its summed side lengths are at most 3 log2 of the FFT
    grid's size (a 17x17 Gaussian on 1024x1024, 13x13x13 on 64x256x256;
    not 33x33x33 on 256**3).  The iterates are the FFT path's to float32
    round-off, each iteration 2-3x faster (two runs of ``benchmarks/speed.py``:
    0.40-0.54 of the FFT floor at 1024x1024, 0.33-0.35 at 64x256x256,
    against 0.88-1.20 on the FFTs).
    ``DECONVKIT_SEPARABLE=0`` keeps the FFTs.

    References
    ----------
    .. [1] W. H. Richardson, "Bayesian-based iterative method of image
       restoration", JOSA 62(1), 1972; L. B. Lucy, AJ 79, 1974.
    .. [2] M. Bertero and P. Boccacci, "A simple method for the reduction of
       boundary effects in the Richardson-Lucy approach to image
       deconvolution", A&A 437, 2005.
    .. [3] D. S. C. Biggs and M. Andrews, "Acceleration of iterative image
       restoration algorithms", Applied Optics 36(8), 1997.
    .. [4] H. F. Walker and P. Ni, "Anderson acceleration for fixed-point
       iterations", SIAM J. Numer. Anal. 49(4), 2011; N. C. Henderson and
       R. Varadhan, "Damped Anderson acceleration with restarts and
       monotonicity control for accelerating EM and EM-like algorithms",
       J. Comput. Graph. Stat. 28(4), 2019.
    .. [5] D. L. Snyder, A. M. Hammoud and R. L. White, "Image recovery from
       data acquired with a charge-coupled-device camera", J. Opt. Soc. Am. A
       10(5), 1993.

    Examples
    --------
    >>> import numpy as np
    >>> from deconvkit import blur, psf, richardson_lucy
    >>> truth = np.zeros((32, 32)); truth[10:20, 12:18] = 1.0
    >>> restored = richardson_lucy(blur(truth, psf.gaussian(1.5), boundary="periodic"),
    ...                            psf.gaussian(1.5), boundary="periodic", iterations=30)
    >>> bool(restored.min() >= 0), bool(np.isclose(restored.sum(), truth.sum()))
    (True, True)
    """
    return _richardson_lucy(image, psf, "richardson_lucy", iterations=iterations,
                            boundary=boundary, background=background,
                            acceleration=acceleration, noise_sigma=noise_sigma,
                            saturation=saturation, read_noise=read_noise, time_limit=time_limit,
                            callback=callback, return_info=return_info)


def richardson_lucy_tv(image, psf, *, weight="auto", iterations="auto", boundary: str = "valid",
                       background=0.0, acceleration: str | None = None,
                       noise_sigma: float | None = None, saturation: float | None = None,
                       read_noise: float = 0.0, time_limit: float | None = None,
                       callback: Callable | None = None, return_info: bool = False):
    r"""Richardson–Lucy with total-variation regularisation (Dey et al. [1]_), N-D.

    Parameters
    ----------
    image, psf, boundary, background, acceleration, noise_sigma, saturation, read_noise, \
time_limit, callback, return_info
        As in :func:`richardson_lucy` (acceleration is off by default here:
        the TV term damps the extrapolation's benefit), except that
        ``acceleration="anderson"`` is refused: its combinations fight the
        TV term (measured on the test objects: 1.5-2x the iterations to the
        settled residual, 0.1-0.8 dB lower).
    iterations : int or "auto"
        ``"auto"`` (default): run to the regularised (MAP) estimate, stopping
        when the residual RMS has settled, changing by less than 5e-5 of
        itself per iteration over 10 iterations (20 to 300 iterations).
    weight : float or "auto"
        TV weight :math:`\lambda` (dimensionless).  ``"auto"``:
        :math:`\lambda = 0.1\,\hat\sigma / \bar y`, a tenth of the data's
        noise-to-signal ratio, clipped to [1e-4, 0.01] (Dey et al. use 0.002).

    Notes
    -----
    Forward model :math:`y \sim \mathrm{Poisson}(Ax + b)`; the update is the
    one-step-late MAP iteration

    .. math:: x \leftarrow \frac{x}{A^T 1 - \lambda\,
              \mathrm{div}(\nabla x / |\nabla x|)}\, A^T\!\left(\frac{y}{Ax+b}\right)

    with the denominator kept above :math:`\tfrac12 A^T 1` (the one-step-late
    update is unstable where the prior outweighs the data).

    Stopping: the discrepancy principle, which regularises plain RL by
    stopping it early, halted RL-TV after 4-41 iterations, 0.1-2.0 dB below
    the PSNR it reaches later (8 cases of ``benchmarks/quality.py``'s photos
    and kernels, Gaussian and Poisson noise, and cell phantoms in 2-D and
    3-D).  Stopping when the residual settles gained 0.5-2.0 dB in 7 of those
    10 cases and moved the other 3 by -0.02 to +0.14 dB; SSIM rose in 7 of
    the 8 photo cases (-0.02 in the other; ``deconvkit demo``'s camera: +0.26
    dB but SSIM 0.787 -> 0.731, the later iterations sharpen grain).  Piecewise-constant
    objects keep improving slowly after it (a test object of boxes: +2.3 dB
    over the discrepancy stop at 97 iterations, +1.1 dB more by 600): pass a
    larger ``iterations`` for them.

    References
    ----------
    .. [1] N. Dey et al., "Richardson–Lucy algorithm with total variation
       regularization for 3D confocal microscope deconvolution", Microscopy
       Research and Technique 69, 2006.
    """
    return _richardson_lucy(image, psf, "richardson_lucy_tv", iterations=iterations,
                            boundary=boundary, background=background, tv_weight=weight,
                            acceleration=acceleration, noise_sigma=noise_sigma,
                            saturation=saturation, read_noise=read_noise,
                            time_limit=time_limit, callback=callback, return_info=return_info)


def _richardson_lucy(image, psf, name, *, iterations, boundary, background, acceleration,
                     noise_sigma, saturation, time_limit, callback, return_info,
                     tv_weight=0.0, read_noise=0.0):
    check_callback(callback)
    check_choice(boundary, "boundary", BOUNDARIES)
    check_choice(acceleration, "acceleration",
                 (None, "biggs") if name == "richardson_lucy_tv" else (None, "biggs", "anderson"))
    tv_weight = check_weight(tv_weight, "weight")
    image, psf = prepare(image, psf, in_place=name, missing=True, space_variant=True,
                         larger=boundary == "valid")
    background = offset(background, image)
    shift = read_noise_shift(read_noise)
    if shift:
        image, background = image + shift, background + shift
        saturation = None if saturation is None else saturation + shift
    # a background map rides along with the data through the element-wise passes
    background_map = None if isinstance(background, float) else background
    level_of_background = background if background_map is None else float(
        to_numpy(background_map.mean()))
    space_variant = isinstance(psf, SpaceVariantConvolution)
    psf = non_negative_psf(psf, name, stacklevel=4)
    xp = array_namespace(image)
    op = blur_operator(psf, image, boundary, method="auto")
    sigma = None
    censored, measured = saturated_mask(image, saturation)
    if iterations == "auto" or tv_weight == "auto":
        sigma = noise_level(measured, noise_sigma)
        warn_if_signed(image, sigma, name, stacklevel=4)
    image, mask = split_missing(image)
    if tv_weight == "auto":
        observed = observed_mean(clamp_min(image, 0.0), mask, image.ndim)
        tv_weight = automatic_tv_weight(sigma, float(to_numpy(observed).mean())
                                        - level_of_background)
    stop = rl_stopping(iterations, tv=bool(tv_weight), target=sigma, time_limit=time_limit)
    grad = Gradient(op.ndim)
    # floor of the predicted data, relative to the data so y / Ax cannot overflow
    peak_of_background = background if background_map is None else float(
        to_numpy(background_map.max()))
    tiny = float(xp.finfo(image.dtype).eps) * max(float(image.max()), peak_of_background, 1e-30)
    weights = (op.separable_weights(image, observed=True)
               if boundary == "valid" and not space_variant else None)
    if weights is not None:
        model = _SeparableModel(op, image, weights)
    elif boundary in ("valid", "periodic") and not space_variant:
        # plain RL has memory to spare (Biggs, which also keeps its last step,
        # would reach 6.0-6.1 padded volumes this way): it keeps the data on the
        # grid, so numpy's ratio pass runs over whole contiguous rows, 1.7x
        # faster than over the strided window (the compiled one takes both)
        on_grid = (boundary == "valid" and is_numpy(xp) and acceleration is None
                   and not tv_weight and not peak_of_background and mask is None
                   and censored is None)
        model = _GridModel(op, image, data_on_grid=on_grid)
    else:
        model = _Model(op, image)
    observed = model.data
    # A^T 1, floored: samples no observation reaches (none for a unit-sum PSF) stay put
    weights = model.adjoint_of_ones(mask)
    floor = 1e-6 * float(weights.max())
    # the flat start, zero where no observation reaches (the grid's slack):
    # such samples would otherwise feed fake changes into Biggs' weight
    start = clamp_min(observed_mean(clamp_min(image, 0.0), mask, op.ndim) - level_of_background,
                      tiny)
    estimate = xp.empty_like(weights)
    estimate[...] = start

    def unseen_to_zero(x, w):  # by blocks: no mask-sized temporary
        x *= w > floor

    blockwise(unseen_to_zero, estimate, weights)
    clamp_min_(weights, floor)
    # Anderson weighs its changes by A^T 1 on its lattice: taken while A^T 1 is whole
    anderson = _Anderson(weights) if acceleration == "anderson" else None
    if not tv_weight:  # RL-TV needs A^T 1 everywhere; RL only where it is not 1
        whole, weights = weights, _Normaliser(weights)
        if not weights.whole:
            model.recycle(whole)
        del whole
    # the Poisson model has no negative counts: a ratio y / (Ax + b) below 0 is set to 0
    negatives = float(to_numpy(image.min())) < 0
    track = stop.auto or return_info  # the residual costs a pass: only when used
    count = math.prod(image.shape) if mask is None else float(to_numpy(mask.sum()))
    # Biggs-Andrews state, updated in place [3]: the estimate x_k and h = x_k -
    # x_(k-1) (overwritten by the extrapolated point y_k); the last RL change
    # g_(k-1) only enters alpha's two inner products, which large arrays take
    # over a lattice of slices (a quarter of an array kept, no full pass)
    h = last_change = sample = ahead = None
    first_change, extrapolated = True, False
    alpha = 0.0
    history = []
    ran = 0

    def squared_residual(predicted, observed, *masks):
        observed_only = masks[0] if mask is not None else None
        high = masks[-1] if censored is not None else None
        residual = predicted - observed
        if observed_only is not None:
            residual *= observed_only
        if high is not None:
            residual -= high * clamp_min(residual, 0.0)
        return vdot(residual, residual)

    def ratio(predicted, observed, *extras):
        """y / (Ax + b) in place (0 where y is missing: y was set to 0 there; at
        least 1 where y is saturated); returns |Ax + b - y|^2 over the observed
        samples, a saturated one counting only while Ax + b is below it.
        ``extras``: the masks, then the background map if there is one."""
        masks = extras[:-1] if background_map is not None else extras
        high = masks[-1] if censored is not None else None
        if background_map is not None:
            predicted += extras[-1]
        elif background:
            predicted += background
        clamp_min_(predicted, tiny)
        squares = sum(by_pieces(squared_residual, predicted, observed, *masks)) if track else 0.0
        xp.divide(observed, predicted, out=predicted)
        if negatives:
            clamp_min_(predicted, 0.0)
        if high is not None:  # a saturated sample only pulls Ax up to its level
            xp.maximum(predicted, high, out=predicted)
        return squares

    def update(new, current, estimate=None, h=None):
        """x_(k+1) = y_k A^T(ratio) / A^T 1 (the division already done); given
        Biggs' buffer, also h = x_(k+1) - x_k into ``h``."""
        # FFT round-off can make the correlation of a non-negative ratio dip
        # below zero by ~1e-17; clamping keeps the estimate non-negative
        if not tv_weight:
            clamp_min_(new, 0.0)
            new *= current
        if h is not None:
            xp.subtract(new, estimate, out=h)

    def rl_step(new, current):
        if _kernels.fused(new, current):
            _kernels.rl_update(new, current)
        else:
            update(new, current)

    def change_into(last, new, old=None):
        """g_k = x_(k+1) - y_k over ``last`` (g_(k-1)); returns <g_k, g_(k-1)>
        and <g_(k-1), g_(k-1)>."""
        change = new if old is None else new - old
        sums = (0.0, 0.0) if first_change else (vdot(change, last), vdot(last, last))
        last[...] = change
        return sums

    def extrapolate(h, estimate):  # y_k = max(x_k + alpha h, 0)
        clamp_min_(xp.add(xp.multiply(h, alpha, out=h), estimate, out=h), 0.0)

    for iteration in stop:
        ran = iteration
        current = estimate
        if ahead is not None:  # y_k, made by the fused update
            current, ahead = ahead, None
        elif alpha > 0:  # over h: h is not needed again
            blockwise(extrapolate, h, estimate)
            current = h
        predicted = model.forward(current)  # the model's buffer: overwritten by the ratio
        grid, window = model.forward_view()
        if mask is None and censored is None and background_map is None \
                and _kernels.window_fused(grid, window, observed):
            squares = _kernels.ratio(grid, window, observed, tiny=tiny, background=background,
                                     negatives=negatives, track=track)
        else:
            squares = sum(blockwise(ratio, predicted, observed, *(
                m for m in (mask, censored, background_map) if m is not None)))
        if track:
            history.append((squares / count) ** 0.5)
        del predicted
        updated = model.adjoint_of_ratio()
        if tv_weight:
            # one-step-late MAP; where few data see a sample (the border of
            # the "valid" domain) the prior must not swamp A^T 1
            clamp_min_(updated, 0.0)
            updated *= current
            updated /= xp.maximum(weights - tv_weight * _tv_curvature(grad, current),
                                  0.5 * weights)
        else:
            weights.divide(updated)  # on the shell only, before the fused pass
        if acceleration == "anderson":
            blockwise(rl_step, updated, current)
            # x_(k+1) goes over x_k, unless a callback may have kept a view of it
            following = xp.empty_like(updated) if callback is not None else current
            for spare in anderson.step(current, updated, following):
                model.recycle(spare)
            updated = following
        elif acceleration and not tv_weight and _kernels.fused(updated, current, estimate):
            # compiled (not for RL-TV, which made its own step above): alpha
            # from the lattice first, then one pass writes x_(k+1) over the
            # update and y_(k+1) over x_k (unless a callback may have kept a
            # view of x_k)
            if last_change is None:
                sample = _alpha_sample(updated.shape)
                last_change = xp.empty_like(updated[sample])
            alpha = _biggs_alpha(*_kernels.biggs_change(updated, current, last_change, sample,
                                                        first_change))
            first_change = False
            if alpha > 0:
                ahead = estimate if callback is None else xp.empty_like(estimate)
                blockwise(functools.partial(_kernels.biggs_update, alpha=alpha), updated,
                          current, estimate, ahead)
            else:
                blockwise(_kernels.rl_update, updated, current)
                if callback is None:
                    model.recycle(estimate)
            if current is not estimate:  # y_k: no callback saw it
                model.recycle(current)
        elif acceleration:
            # h_(k+1) goes over x_k, unless a callback may have kept a view of
            # x_k; the old h's buffer (y_k, if extrapolated) is then free for
            # the next FFT
            spare, h = h, xp.empty_like(updated) if callback is not None else estimate
            extrapolated = current is not estimate
            blockwise(update, updated, current, estimate, h)
            if last_change is None:
                sample = _alpha_sample(updated.shape)
                last_change = xp.empty_like(updated[sample])
            # g_k: h itself without extrapolation (y_k = x_k), else over y_k
            changes = (updated[sample], current[sample]) if extrapolated else (h[sample],)
            sums = by_pieces(change_into, last_change, *changes)
            alpha = _biggs_alpha(*map(sum, zip(*sums)))
            first_change = False
            if spare is not None:
                model.recycle(spare)
        else:
            if not tv_weight:
                blockwise(rl_step, updated, current)
            if callback is None:  # else the callback may keep a view of x_k
                model.recycle(current)
        estimate = updated
        del current, updated
        if callback is not None and callback(iteration, model.frame(estimate)):
            stop.reason = "callback"
            break
        if stop.done(residual=history[-1] if track else None):
            break
    stop.warn_if_short(name, stacklevel=4)
    restored = model.frame(estimate)
    if not return_info:
        return restored
    parameters = dict(boundary=boundary, acceleration=acceleration,
                      background=background if background_map is None else "array")
    if saturation is not None:
        parameters["saturation"] = saturation
    if sigma is not None:
        parameters["noise_sigma"] = sigma
    if name == "richardson_lucy_tv":
        parameters["weight"] = tv_weight
    return restored, Info(name, parameters, iterations=ran, stopped_by=stop.reason,
                          history=history, seconds=stop.seconds)


class _Model:
    """The blur as RL sees it; :meth:`forward` returns a buffer that the caller
    overwrites with the ratio ``y / (Ax + b)`` and :meth:`adjoint_of_ratio` then
    transforms, so the loop holds no scratch array of its own."""

    def __init__(self, op, image):
        self.op, self.shape, self.like = op, tuple(image.shape), image
        self.data = image  # what the ratio divides: the data, in forward()'s layout
        self.buffer = None

    def forward(self, x):
        self.buffer = self.op.forward(x)
        return self.buffer

    def adjoint_of_ratio(self):
        buffer, self.buffer = self.buffer, None
        return self.op.adjoint(buffer)

    def forward_view(self):
        """The array :meth:`forward` returned a view of, and the view's index."""
        return self.buffer, (Ellipsis,)

    def adjoint_of_ones(self, mask=None):
        """``A^T 1``, or ``A^T m`` for a 0/1 mask ``m`` of the observed samples."""
        return self.op.adjoint(full(self.shape, 1.0, like=self.like) if mask is None else mask)

    def recycle(self, array):
        """Take an object-sized array the loop no longer needs (unused here)."""

    def frame(self, x):
        return frame(self.op, x, self.shape)


class _GridModel(_Model):
    """``"valid"`` and ``"periodic"`` on the FFT grid itself: no padding copy per FFT.

    The object fills the whole fast-length grid; for ``"valid"`` the grid is
    at least ``n + K - 1`` long, so the circular blur of the samples beyond
    the extended domain never reaches an observed sample (they get weight 0
    and stay 0).  The FFTs write into arrays kept across iterations: one
    spectrum, and a grid-sized buffer that holds ``Ax``, then the ratio in
    its observed window (the rest zeroed), then ``A^T`` of it, which the loop
    takes as its next estimate and pays back with an array it freed
    (:meth:`recycle`).  So the loop allocates nothing.

    ``data_on_grid``: :attr:`data` is a grid-sized copy of the data, zero
    outside the window, and :meth:`forward` returns the whole buffer with
    the outside zeroed: the ratio there is 0 / max(0, tiny) = 0, as the
    window's adjoint needs, and its residual is tiny (the floor; no
    background).  numpy then runs each element-wise pass over contiguous
    memory instead of a strided window.
    """

    def __init__(self, op, image, *, data_on_grid=False):
        d = op.ndim
        grid, self.window = fft_grid(op, tuple(image.shape[-d:]))
        super().__init__(op, image)
        self.grid, self.axes = tuple(image.shape[:-d]) + grid, tuple(range(-d, 0))
        otf = op.transfer_function(grid, like=image)
        self.otf = _kernels.real_otf(otf)  # real for a symmetric PSF: half the memory
        if self.otf is not otf:
            op.clear_cache()  # the operator's complex copy
        self.spectrum = None
        # the grid outside the observed window, as slabs zeroed before each
        # adjoint (with the data on the grid: before each ratio)
        self.outside = _slabs_around([(part.start, part.stop) for part in self.window[1:]],
                                     grid)
        self.data_on_grid = data_on_grid
        if data_on_grid:
            self.data = full(self.grid, 0.0, like=image)
            self.data[self.window] = image

    def forward(self, x):
        if self.spectrum is None:
            self.spectrum = empty_spectrum(x, self.axes)
        if self.buffer is None:
            self.buffer = array_namespace(x).empty_like(x)
        rfftn_into(x, self.axes, self.spectrum)
        blockwise(self._multiply, self.spectrum, self.otf)
        irfftn_into(self.spectrum, self.axes, self.buffer)
        if not self.data_on_grid:
            return self.buffer[self.window]
        self._zero_outside(self.buffer)
        return self.buffer

    def adjoint_of_ratio(self):
        buffer, self.buffer = self.buffer, None
        if not self.data_on_grid:
            self._zero_outside(buffer)
        return self._correlate(buffer)

    def forward_view(self):
        return self.buffer, (Ellipsis,) if self.data_on_grid else self.window

    def adjoint_of_ones(self, mask=None):
        # on the loop's own arrays: setting up allocates nothing the loop does not keep
        ones = full(self.grid, 0.0, like=self.like)
        ones[self.window] = 1.0 if mask is None else mask
        self.spectrum = empty_spectrum(ones, self.axes)
        return self._correlate(ones)

    def _correlate(self, x):
        """``A^T x`` in place, as ``irfftn(conj(H conj(X)))``: with the
        conjugate transforms' free sign flips, the spectral product needs no
        conjugating passes (0.45 against 0.8 ms per 1080x1080 on 2 cores)."""
        rfftn_into(x, self.axes, self.spectrum, conjugate=True)
        blockwise(self._multiply, self.spectrum, self.otf)
        return irfftn_into(self.spectrum, self.axes, x, conjugate=True)

    def _multiply(self, spectrum, otf):  # a block function
        if (isinstance(otf, np.ndarray) and otf.dtype.kind == "f"  # real_otf's
                and otf.shape == spectrum.shape):  # (not broadcast over leading axes)
            _kernels.scale(spectrum, otf)
        else:
            multiply_(spectrum, otf)

    def _zero_outside(self, array):
        for slab in self.outside:
            array[slab] = 0.0

    def recycle(self, array):
        if self.buffer is None:
            self.buffer = array

    def frame(self, x):
        return x[self.window]


class _SeparableModel(_Model):
    """``"valid"`` blur by a separable PSF as compiled 1-D passes, one per axis
    (:func:`deconvkit._kernels.correlate_axis`), where they cost less than
    the FFTs (:meth:`deconvkit.Convolution.separable_weights`).

    The object is the extended domain itself, ``n + K - 1``, with no
    fast-length slack.  Two object-sized arrays take the passes in turn: one
    kept, and a spare that the adjoint's last pass fills and hands to the
    loop as its next estimate, paid back by :meth:`recycle` as on the grid.
    The forward's first pass goes into the kept one, so that with ``d``
    passes each way the ratio and then ``A^T`` of it land where they must.
    """

    def __init__(self, op, image, weights):
        super().__init__(op, image)
        self.weights = weights
        self.object_shape = op.input_shape(tuple(image.shape))  # leading batch axes kept
        self.kept = np.empty(math.prod(self.object_shape), image.dtype)
        self.spare = None

    def _take_spare(self):
        spare, self.spare = self.spare, None
        return spare if spare is not None else np.empty(math.prod(self.object_shape),
                                                        self.kept.dtype)

    def forward(self, x):
        self.spare = self._take_spare()
        self.buffer = separable_passes(x, self.weights, full=False,
                                       buffers=(self.kept, self.spare))
        return self.buffer

    def adjoint_of_ratio(self):
        buffer, self.buffer = self.buffer, None
        spare = self._take_spare()
        # the ratio is in the kept array for an odd number of passes
        buffers = (spare, self.kept) if self.op.ndim % 2 else (self.kept, spare)
        return separable_passes(buffer, self.weights, full=True, buffers=buffers)

    def adjoint_of_ones(self, mask=None):
        spare = self._take_spare()
        ones = (self.kept if self.op.ndim % 2 else spare)[:math.prod(self.shape)]
        ones = ones.reshape(self.shape)
        ones[...] = 1.0 if mask is None else mask
        self.buffer, self.spare = ones, spare
        return self.adjoint_of_ratio()

    def recycle(self, array):
        if self.spare is None and array.shape == self.object_shape:
            self.spare = array.reshape(-1)


class _Normaliser:
    """Division by ``A^T 1``, stored only where it differs from 1.

    For a unit-sum PSF ``A^T 1`` is 1 (to round-off) wherever the whole PSF
    sees observed samples: everywhere for ``"periodic"``, all but a shell of
    PSF width for ``"valid"``.  Only the slabs around that interior box are
    kept, which saves most of an object-sized array and a pass per iteration.
    """

    def __init__(self, weights):
        # far above FFT round-off, far below any real deficit of coverage
        tolerance = 1e3 * float(array_namespace(weights).finfo(weights.dtype).eps)
        box = _unit_box(weights, tolerance)
        self.whole = box is None  # then ``weights`` itself is kept
        if self.whole:
            self.slabs = [((Ellipsis,), weights)]
            return
        self.slabs = [(index, copy(weights[index]))
                      for index in _slabs_around(box, weights.shape)]

    def divide(self, x):
        for index, slab in self.slabs:
            x[index] /= slab


def _slabs_around(box, shape):
    """Indices of non-overlapping slabs that cover ``shape`` outside ``box``.

    ``box`` is ``(low, high)`` for each of the trailing ``len(box)`` axes of
    ``shape``; leading axes are taken whole.  Empty slabs are left out.
    """
    axes = len(box)
    slabs = []
    for axis, (low, high) in enumerate(box):
        inner = tuple(slice(a, b) for a, b in box[:axis])  # earlier axes: inside only
        size = shape[len(shape) - axes + axis]
        for part in (slice(0, low), slice(high, size)):
            if part.stop > part.start:
                slabs.append((Ellipsis,) + inner + (part,) + (slice(None),) * (axes - axis - 1))
    return slabs


def _unit_box(weights, tolerance):
    """Per axis ``(low, high)`` of a box where ``|weights - 1| <= tolerance``, or None.

    Each axis' range is the run of ones through the centre of the line along
    that axis through the centre of the array; the box is then checked whole.
    (A batch axis, along which the weights do not change, is kept whole.)
    """
    centre = tuple(n // 2 for n in weights.shape)
    box = []
    for axis in range(weights.ndim):
        line = to_numpy(weights[centre[:axis] + (slice(None),) + centre[axis + 1:]])
        # deficits of coverage add up over axes at the box's corners
        ones = np.abs(line.astype(np.float64) - 1.0) <= tolerance / weights.ndim
        middle = centre[axis]
        if not ones[middle]:
            return None
        gaps = np.flatnonzero(~ones)  # the run of ones through the centre
        before, after = gaps[gaps < middle], gaps[gaps > middle]
        box.append((int(before.max()) + 1 if before.size else 0,
                    int(after.min()) if after.size else len(ones)))
    inside = weights[tuple(slice(a, b) for a, b in box)]
    rows = max(1, (1 << 16) // max(math.prod(inside.shape[1:]), 1))
    for start in range(0, len(inside), rows):  # in slices: no interior-sized temporary
        if not float(abs(inside[start:start + rows] - 1.0).max()) <= tolerance:
            return None
    return box


def automatic_tv_weight(sigma: float, level: float) -> float:
    """RL-TV's weight from the noise level over the object's mean level (above
    its background), within [1e-4, 0.01] (Dey et al. use 0.002)."""
    return min(max(0.1 * sigma / max(level, TINY), 1e-4), 0.01)


def rl_stopping(iterations, *, tv: bool, target, time_limit) -> Stopping:
    """Richardson-Lucy's stop: the discrepancy principle (``target``, the noise
    level) and a settling residual; with the TV factor, which regularises, the
    run goes on to the MAP estimate, stopping when the residual settles (the
    discrepancy stop halted it 0.1-2 dB short; see richardson_lucy_tv's Notes)."""
    if tv:
        return Stopping(iterations, max_iterations=300, time_limit=time_limit,
                        min_iterations=20, settle_tol=5e-5)
    return Stopping(iterations, max_iterations=500, target=target, time_limit=time_limit,
                    min_iterations=3, settle_tol=1e-3)


def _tv_curvature(grad, x):
    """div(∇x / |∇x|): the gradient of TV, with a small floor on |∇x|."""
    xp = array_namespace(x)
    g = grad.forward(x)
    magnitude = xp.sqrt((g * g).sum(0))
    floor = max(1e-3 * float(to_numpy(magnitude.mean())), float(xp.finfo(x.dtype).tiny))
    return -grad.adjoint(g / clamp_min(magnitude, floor))


def _alpha_sample(shape, stride=4, least=64, large=1 << 20):
    """Where Biggs' weight alpha takes its inner products: in arrays of
    ``large`` samples or more, every ``stride``-th slice along the first axis
    of ``least`` samples or more; elsewhere everything.  alpha is a ratio of
    two sums over the array, which a lattice of slices of a large array
    estimates to ~1 % of itself (measured: 0.05 % on a photograph, 0.8 % on
    a scene of 16-row blocks); in small arrays the lattice holds too few
    samples, and the whole array costs little."""
    if math.prod(shape) >= large:
        for axis, n in enumerate(shape):
            if n >= least:
                return (slice(None),) * axis + (slice(None, None, stride),)
    return (...,)


class _Anderson:
    """Anderson acceleration (type II, Walker & Ni 2011) of the RL map T.

    The next point is the combination of the last ``memory + 1`` RL updates
    ``T(x_j)`` whose residuals ``f_j = T(x_j) - x_j`` combine to the least
    norm (a small least-squares problem in the residuals' differences),
    clipped at 0.  The updates are kept whole (``memory + 1`` arrays); the
    residuals only on the lattice of :func:`_alpha_sample` (all of a small
    array, every 4th slice of a large one), weighted by ``A^T 1``: where few
    observations see a sample, RL's division by ``A^T 1`` magnifies float32
    round-off, which unweighted swamped the least squares (on a 1024x1024
    photo it stalled 2 dB short).  A step whose residual grows more than
    4-fold restarts the history.
    """

    def __init__(self, weights, memory: int = 5):
        """``weights``: ``A^T 1`` on the grid of the updates."""
        self.xp, self.memory = array_namespace(weights), memory
        self.sample = _alpha_sample(weights.shape)
        self.weight = copy(weights[self.sample])
        self.updates, self.differences = [], []  # T(x_j); f_(j+1) - f_j on the sample
        self.gram = np.zeros((0, 0))  # their inner products
        self.residual, self.norm = None, None
        self.compiled = False  # the compiled combination, for every count of updates

    def step(self, current, updated, out) -> list:
        """Writes x_(k+1) into ``out`` from x_k = ``current`` and T(x_k) =
        ``updated`` (which the history then holds); returns the updates it
        dropped, for reuse."""
        # weighted by A^T 1: the plain change is divided by it
        residual = updated[self.sample] - current[self.sample]
        residual *= self.weight
        norm = vdot(residual, residual)
        dropped = []
        if self.residual is not None and not norm > 16 * self.norm:
            difference = residual - self.residual
            row = [vdot(difference, d) for d in self.differences]
            size = len(row) + 1
            gram = np.zeros((size, size))
            gram[:-1, :-1] = self.gram
            gram[-1, :-1] = gram[:-1, -1] = row
            gram[-1, -1] = vdot(difference, difference)
            self.gram = gram
            self.differences.append(difference)
        else:  # the first step, or a restart
            dropped, self.updates = self.updates, []
            self.differences, self.gram = [], np.zeros((0, 0))
        self.updates.append(updated)
        if len(self.updates) > self.memory + 1:
            dropped.append(self.updates.pop(0))
            self.differences.pop(0)
            self.gram = self.gram[1:, 1:]
        self.residual, self.norm = residual, norm
        coefficients = self._coefficients(residual)

        if _kernels.fused(out, *self.updates):
            if not self.compiled:
                _kernels.compile_combine(out.dtype, self.memory + 1)
                self.compiled = True
            blockwise(lambda out, *updates: _kernels.combine(out, updates, coefficients),
                      out, *self.updates)
            return dropped

        def combine(out, *updates):
            self.xp.multiply(updates[-1], float(coefficients[-1]), out=out)
            for coefficient, update in zip(coefficients[:-1], updates[:-1]):
                out += float(coefficient) * update
            clamp_min_(out, 0.0)

        blockwise(combine, out, *self.updates)
        return dropped

    def _coefficients(self, residual):
        """Of the kept updates, oldest first: 1 on the last one without history."""
        count = len(self.differences)
        coefficients = np.zeros(count + 1)
        coefficients[-1] = 1.0
        if count:
            rhs = np.array([vdot(d, residual) for d in self.differences])
            # a relative ridge keeps the solve defined when differences align
            gram = self.gram + 1e-10 * np.trace(self.gram) * np.eye(count)
            try:
                gamma = np.linalg.solve(gram, rhs)
            except np.linalg.LinAlgError:
                return coefficients
            if np.all(np.isfinite(gamma)):  # T_k - sum gamma_j (T_(j+1) - T_j)
                coefficients[1:] -= gamma
                coefficients[:-1] += gamma
        return coefficients


class BiggsExtrapolation:
    """Biggs–Andrews vector extrapolation of a multiplicative fixed-point iteration
    over whole arrays (Gold's and multiview RL's; RL's own runs by blocks):
    each step starts from the estimate pushed along its last change."""

    def __init__(self, enabled: bool = True):
        self.enabled, self.alpha = enabled, 0.0
        self.previous = self.last_change = None

    def point(self, x, floor: float = 0.0):
        """Where the next step starts: ``max(x + alpha (x - x_prev), floor)``."""
        if self.alpha <= 0:
            return x
        return clamp_min(x + self.alpha * (x - self.previous), floor)

    def advance(self, new, point, x):
        """Record the step from ``point`` to ``new`` (taken at estimate ``x``); ``new``."""
        if self.enabled:
            change = new - point
            if self.last_change is not None:
                self.alpha = _biggs_alpha(vdot(change, self.last_change),
                                          vdot(self.last_change, self.last_change))
            self.last_change = change
        self.previous = x
        return new


def _biggs_alpha(numerator: float, denominator: float) -> float:
    """Extrapolation weight ``<g_k, g_(k-1)> / <g_(k-1), g_(k-1)>`` from the last two RL
    changes (Biggs & Andrews 1997, eq. 19), kept in [0, 0.95]."""
    if not denominator > 0:
        return 0.0
    return min(max(numerator / denominator, 0.0), 0.95)
