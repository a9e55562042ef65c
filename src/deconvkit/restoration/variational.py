"""Variational restoration: total variation (ADMM, primal–dual) and wavelet sparsity
(FISTA; primal–dual for Poisson data)."""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections.abc import Callable

import numpy as np

from .. import _kernels
from .._array_api import (
    array_namespace,
    asarray,
    blockwise,
    clamp_min,
    clamp_min_,
    copy,
    full,
    irfftn,
    irfftn_into,
    rfftn,
    rfftn_into,
    to_numpy,
)
from .._validate import check_callback, check_choice, check_weight
from ..operators import BOUNDARIES, Convolution, Gradient
from ..operators.differences import (
    periodic_difference,
    periodic_differences,
    periodic_differences_adjoint,
)
from ._common import (
    TINY,
    blur_operator,
    data_peak,
    data_spread,
    data_term_background,
    empty_spectrum,
    fft_grid,
    frame,
    mean_level,
    observed_mean,
    observed_rms,
    penalty_spectrum,
    prepare,
    resolve_nonnegative,
    saturated_mask,
    split_missing,
)
from ._stopping import (
    Info,
    Stopping,
    noise_level,
    relative_change,
    rms_of_difference,
)

__all__ = ["total_variation", "wavelet"]

DATA_TERMS = ("gaussian", "poisson")
# the automatic weights' constants, calibrated on photos the benchmarks do not use
TV_CONSTANT = 0.24
QUADRATIC_CONSTANT = 0.005
# the solvers' over-relaxation (ADMM: Eckstein & Bertsekas 1992, 1.5-1.8 in
# Boyd et al. 2011, 3.4.3; primal-dual: Condat 2013, in (0, 2)).  On photos
# outside the benchmarks, against none: ADMM 316 iterations against 410 (six
# photos), PSNR within 0.01 dB; primal-dual 291 against 360 (four, padded
# boundaries), which also stopped nearer the minimiser (0.15 against 0.28 dB
# on a brick wall)
RELAXATION = 1.6


def total_variation(image, psf, *, weight="auto", quadratic_weight="auto",
                    data: str = "gaussian",
                    noise_sigma: float | None = None, nonnegative="auto",
                    iterations="auto", boundary: str = "valid", background=0.0,
                    saturation: float | None = None, time_limit: float | None = None,
                    callback: Callable | None = None, return_info: bool = False):
    r"""Total-variation regularised deconvolution (ADMM or primal–dual), N-D.

    Parameters
    ----------
    image : (N1, ..., Nd) array
        Observed data (numpy, torch or CuPy).  NaN samples are missing data
        (bad or masked pixels; see ``saturation`` for saturated ones): the
        data term leaves them out and the prior fills them in from their
        neighbours; the noise level and the automatic weights are taken from
        the observed samples.
    psf : (K1, ..., Kd) array or SpaceVariantConvolution
        Point-spread function, normalised to sum 1 here; or PSFs on a grid
        across the field (:class:`~deconvkit.SpaceVariantConvolution`, solved
        by the primal–dual method under every boundary, ``boundary`` applied
        to it).
        Under ``boundary="valid"`` it may be longer than the image on an
        axis (a thin stack under a widefield PSF): the object is estimated
        on the planes beyond the image too, whose light the image receives.
    weight : float or "auto"
        Weight :math:`\lambda` of the (isotropic) TV term.  ``"auto"``:
        :math:`\lambda = 0.24\,\hat\sigma^2 / \rho`, with :math:`\rho` the mean
        gradient magnitude of the data (see Notes).
    quadratic_weight : float or "auto"
        Weight :math:`\mu` of a small quadratic (Tikhonov) term on the
        gradient, which keeps low-contrast texture that TV alone flattens;
        0 gives pure TV.  ``"auto"``: :math:`\mu = 0.005\,\hat\sigma^2 / g^2`,
        with :math:`g^2` the data's mean squared gradient less the noise's
        (see Notes).
    data : {"gaussian", "poisson"}
        Data term: least squares :math:`\tfrac12\|Ax-y\|^2`, or the Poisson
        negative log-likelihood :math:`\sum (Ax+b) - y\log(Ax+b)`.
    noise_sigma : float, optional
        Gaussian noise level; estimated from the data when not given.
    saturation : float, optional
        The detector's saturation level: samples at or above it are lower
        bounds, so the Gaussian data term there is one-sided,
        :math:`\tfrac12\max(s - Ax, 0)^2`: only a prediction below the level
        costs.  Saturated samples are left out of the noise and weight
        estimates.  With ``data="poisson"`` they are left out of the data term
        (as missing samples).  A bright area wider than the PSF keeps its
        edges' information this way, where leaving it out (NaN) does not.
    nonnegative : bool or "auto"
        Constrain :math:`x \ge 0` (always on for ``data="poisson"``).
        ``"auto"``: on, unless the data are a signed signal (more than 1 % of
        the samples below :math:`-3\hat\sigma`), such as a seismic trace.
    iterations : int or "auto"
        ``"auto"`` stops when the relative change of the frame (the estimate
        returned) falls below 1e-4 (at most 400).
    boundary : str
        Boundary model (see :class:`deconvkit.Convolution`); ``"valid"``
        (default) estimates the scene beyond the frame, so the edges do not ring.
    background : float or array
        Known background :math:`b` under the data, :math:`y = Ax + b + n`: a
        level (a camera's offset, a sky level) or an array of the image's
        shape (a sky map), >= 0.  Subtracted from the data for the Gaussian
        term; inside the logarithm for the Poisson term.
    time_limit : float, optional
        Seconds after which to stop.
    callback : callable, optional
        ``callback(iteration, estimate)``; returning ``True`` stops.
    return_info : bool
        Also return an :class:`~deconvkit.restoration.Info`.

    Notes
    -----
    Solves

    .. math:: \min_{x \ge 0}\ f(Ax; y) + \lambda \|\nabla x\|_{2,1}
              + \tfrac{\mu}{2} \|\nabla x\|_2^2

    For ``"valid"`` and ``"periodic"`` by ADMM with every operator diagonal in
    Fourier and the data term masked to the observed samples (Almeida and
    Figueiredo [4]_: the frame, less any NaN samples), over-relaxed by 1.6
    [5]_ (about a quarter fewer iterations); for the padded boundary
    models by the primal–dual algorithm of Chambolle and Pock [1]_ with the
    diagonal step sizes of Pock and Chambolle [2]_, over-relaxed by 1.6 as
    in Condat [6]_ (a fifth fewer iterations).  No step size to tune in
    either; the quadratic term joins ADMM's x-step (still diagonal in
    Fourier) and the primal–dual method's TV dual (its prox is a shrinkage
    instead of a projection).

    With ``"auto"`` weights and the Gaussian term, :math:`\lambda = 0.24
    \sigma^2 / \rho` where :math:`\rho` is the mean gradient magnitude of
    the data (the noise energy per unit of edge strength), and :math:`\mu =
    0.005 \sigma^2 / g^2` where :math:`g^2` is the data's mean squared
    gradient less the noise's :math:`2 d \sigma^2` (at least a tenth of it):
    a Wiener-like ratio of noise to signal power.  Both scale with the
    image units as they must.  The constants come from six scikit-image
    photos that ``benchmarks/quality.py`` does not use, under its four
    kernels and three noise levels (72 cases): pure TV at its best constant
    (0.3 of 0.15-0.4) averaged 32.18 dB, TV with the quadratic term 32.43 dB
    (+0.08 to +0.63 dB per photo, -0.16 to +1.30 dB per case; most on
    texture such as a brick wall).  On other objects, also outside the
    benchmarks, against that pure-TV rule: 1-D spectra of Gaussian and
    Lorentzian lines +1.8 to +3.7 dB (TV alone staircases smooth peaks), but
    1-D trains of box pulses -0.9 to -1.2 dB.  Piecewise-constant objects
    on a flat background are where the rule does worst: on
    :func:`~deconvkit.cell_phantom` (thin shells and spots), 2-D and 3-D,
    under Gaussian, disk, motion and widefield blurs and Gaussian or Poisson
    noise, the best of a grid of weights (0.1-1.4 times the automatic
    ones) beat the automatic weights by 0.2-3.3 dB (median 1.7, 20 cases),
    mostly with ``quadratic_weight=0`` and ``weight`` at 0.1-0.7 of the
    automatic value.  On nine photos (44 cases) the automatic weights came
    within 0.45 dB of the same grid's best but twice (0.6, 0.8 dB), while
    the phantoms' low weights lost up to 7 dB there.  No statistic of the
    data we tried (gradient sparsity, background fraction, held-out
    prediction error) singled out the phantoms without also catching photos
    that need the default (the Moon, the Hubble deep field), so for such
    objects pass ``quadratic_weight=0`` and a lower ``weight``.

    Near its minimum the Poisson term is the Gaussian one divided by the
    mean count :math:`\bar y + b`, so its weights are the Gaussian rule's
    divided by :math:`\bar y + b` (the data must be counts: photons or
    electrons).  ADMM's penalty is set from the data's peak, so scaling the
    data scales the result exactly, with either term.

    References
    ----------
    .. [1] A. Chambolle and T. Pock, "A first-order primal-dual algorithm for
       convex problems with applications to imaging", JMIV 40, 2011.
    .. [2] T. Pock and A. Chambolle, "Diagonal preconditioning for first order
       primal-dual algorithms in convex optimization", ICCV 2011.
    .. [3] L. Rudin, S. Osher and E. Fatemi, "Nonlinear total variation based
       noise removal algorithms", Physica D 60, 1992.
    .. [4] M. S. C. Almeida and M. A. T. Figueiredo, "Deconvolving images with
       unknown boundaries using the alternating direction method of
       multipliers", IEEE TIP 22(8), 2013.
    .. [5] J. Eckstein and D. P. Bertsekas, "On the Douglas–Rachford splitting
       method and the proximal point algorithm for maximal monotone
       operators", Math. Program. 55, 1992; S. Boyd et al., "Distributed
       optimization and statistical learning via the alternating direction
       method of multipliers", Found. Trends Mach. Learn. 3(1), 2011, 3.4.3.
    .. [6] L. Condat, "A primal–dual splitting method for convex optimization
       involving Lipschitzian, proximable and linear composite terms", JOTA
       158, 2013.
    """
    check_choice(data, "data", DATA_TERMS)
    check_callback(callback)
    check_choice(boundary, "boundary", BOUNDARIES)
    weight = check_weight(weight, "weight")
    quadratic_weight = check_weight(quadratic_weight, "quadratic_weight")
    image, psf = prepare(image, psf, in_place="total_variation", missing=True,
                         space_variant=True, larger=boundary == "valid")
    op = blur_operator(psf, image, boundary)
    grad = Gradient(psf.ndim)
    censored, measured = saturated_mask(image, saturation)
    sigma = noise_level(measured, noise_sigma)
    image, background, reported = data_term_background(background, image, data)
    image, mask = split_missing(image)
    if censored is not None and data == "poisson":  # no one-sided Poisson term: left out
        mask, censored = (1.0 - censored) * (1.0 if mask is None else mask), None
    if "auto" in (weight, quadratic_weight):
        statistics = mask if measured is image else split_missing(measured)[1]
        auto_weight, auto_quadratic = _auto_weights(image, statistics, grad, sigma, data,
                                                    background)
        weight = auto_weight if weight == "auto" else weight
        quadratic_weight = auto_quadratic if quadratic_weight == "auto" else quadratic_weight
    stop = Stopping(iterations, max_iterations=400, tol=1e-4, time_limit=time_limit)
    positive = resolve_nonnegative(nonnegative, image, sigma) or data == "poisson"
    # ADMM needs the blur diagonal in Fourier: one PSF, valid or periodic
    fourier = boundary in ("valid", "periodic") and isinstance(op, Convolution)
    solve = _admm if fourier else _pdhg
    x, history = solve(image, mask, op, weight, quadratic_weight, data=data, positive=positive,
                       background=background, censored=censored, stop=stop, callback=callback)
    restored = frame(op, x, image.shape)
    if not return_info:
        return restored
    info = Info("total_variation", dict(weight=weight, quadratic_weight=quadratic_weight,
                                        data=data, noise_sigma=sigma,
                                        boundary=boundary, nonnegative=positive)
                | reported | ({} if saturation is None else dict(saturation=saturation)),
                iterations=len(history), stopped_by=stop.reason, history=history,
                seconds=stop.seconds)
    return restored, info


def _auto_weights(image, mask, grad, sigma: float, data: str, background):
    """The TV weight and the quadratic weight, from the noise level and the data's
    gradients (those between observed samples where ``mask`` marks missing ones)."""
    xp = array_namespace(image)
    g = grad.forward(image)
    squares = (g * g).sum(0)
    if mask is None:
        edge = max(float(to_numpy(xp.sqrt(squares).mean())), TINY)
        energy = float(to_numpy(squares.mean()))
    else:
        # a difference is known where its sample is observed and its neighbours
        # are too: there the mask's own differences vanish
        known = mask * ((grad.forward(mask) ** 2).sum(0) == 0)
        count = max(float(to_numpy(known.sum())), 1.0)
        edge = max(float(to_numpy((xp.sqrt(squares) * known).sum())) / count, TINY)
        energy = float(to_numpy((squares * known).sum())) / count
    # white noise adds 2 sigma^2 per axis to the squared forward differences;
    # the floor caps mu where the data's gradients are nearly all noise
    signal = max(energy - 2 * g.shape[0] * sigma**2, 0.1 * energy, TINY)
    weight = TV_CONSTANT * sigma**2 / edge
    quadratic = QUADRATIC_CONSTANT * sigma**2 / signal
    if data == "poisson":
        # near its minimum the Poisson term is the Gaussian one divided by the
        # mean count: the same regularisation needs the weights divided by it
        level = observed_mean(clamp_min(image, 0.0), mask, image.ndim)
        count = max(float(to_numpy(level).mean()) + mean_level(background), TINY)
        weight, quadratic = weight / count, quadratic / count
    return weight, quadratic


def _pdhg(image, mask, op, weight, quadratic, *, data, positive, background, censored, stop,
          callback):
    """Primal–dual (Chambolle–Pock) on the exact operator: any boundary model.

    In Condat's form (2013, Algorithm 3.2, duals first): the duals' step from
    ``x``, the primal's from the duals' extrapolation ``2 p_new - p``, then
    every variable over-relaxed by ``RELAXATION``.

    Missing samples (``mask`` 0) leave the data term: its dual is 0 there.
    Saturated ones (``censored`` 1) have the one-sided term
    ``max(y - Ax, 0)^2 / 2``, whose conjugate's prox keeps the dual <= 0.
    """
    xp = array_namespace(image)
    d = op.ndim
    grad = Gradient(d)
    # diagonal preconditioning: column sums of |K| for x, row sums for the duals
    observed = full(image.shape, 1.0, like=image) if mask is None else mask
    tau = 1.0 / (clamp_min(op.adjoint(observed), 1e-6) + 2 * d)
    sigma_data, sigma_tv = 1.0, 0.5
    if not isinstance(op, Convolution):  # a space-variant blur's rows may sum above 1
        rows = float(to_numpy(op.forward(full(op.input_shape(tuple(image.shape)), 1.0,
                                              like=image)).max()))
        sigma_data = 1.0 / max(rows, 1.0)
    if data == "gaussian":
        # primal and dual steps balanced like ADMM's penalty (the TV dual's step
        # is rho, see _admm_rho); with rho ~ 1 instead the primal crawled: 10x
        # more iterations, 0.3-0.8 dB short at the relative-change stop
        balance = 0.5 / _admm_rho(weight, quadratic, image, mask)
        tau, sigma_data, sigma_tv = tau * balance, sigma_data / balance, sigma_tv / balance
    if data == "poisson":
        # the Poisson duals are unit-free and x is in data units: steps in the
        # data's units keep the iterations independent of them
        scale = data_peak(image)
        tau, sigma_data, sigma_tv = tau * scale, sigma_data / scale, sigma_tv / scale
    shape = op.input_shape(tuple(image.shape))
    level = float(to_numpy(observed_mean(image, mask, d).mean()))
    x = full(shape, level, like=image)
    p = full(image.shape, 0.0, like=image)
    q = full(grad.output_shape(shape), 0.0, like=image)
    estimate = x
    history = []
    for iteration in stop:
        predicted = op.forward(x)
        if data == "gaussian":
            p_new = (p + sigma_data * (predicted - image)) / (1 + sigma_data)
        else:
            p_new = _poisson_dual_step(p, predicted, clamp_min(image, 0.0), sigma_data,
                                       background)
        if mask is not None:
            p_new = p_new * mask
        if censored is not None:  # p <= 0 there: only Ax below the level costs
            p_new = p_new - censored * clamp_min(p_new, 0.0)
        q_new = q + sigma_tv * grad.forward(x)
        # prox of the conjugate of w|g| + mu/2 |g|^2: |q| beyond w is pulled
        # back to (mu |q| + s w) / (mu + s) (to w, a projection, for mu = 0)
        magnitude = clamp_min(xp.sqrt((q_new * q_new).sum(0)), 1e-30)
        shrink = (quadratic * magnitude + sigma_tv * weight) / ((quadratic + sigma_tv) * magnitude)
        q_new = q_new * (1.0 - clamp_min(1.0 - shrink, 0.0))  # min(shrink, 1)
        # the primal's proximal step: the estimate (x >= 0 when positive)
        estimate = x - tau * (op.adjoint(2 * p_new - p) + grad.adjoint(2 * q_new - q))
        if positive:
            estimate = clamp_min(estimate, 0.0)
        x_new, p, q = _over_relaxed((x, estimate), (p, p_new), (q, q_new))
        change = relative_change(x_new, x, level)
        x = x_new
        history.append(observed_rms(predicted - image, mask))
        if callback is not None and callback(iteration, frame(op, estimate, image.shape)):
            stop.reason = "callback"
            break
        if stop.done(change=change):
            break
    return estimate, history


def _poisson_dual_step(p, predicted, counts, sigma: float, background):
    """The dual step of the Poisson term ``sum(Ax + b - y log(Ax + b))``: the prox
    of its conjugate at ``p + sigma (Ax + b)``, in closed form."""
    xp = array_namespace(p)
    v = p + sigma * (predicted + background)
    return 0.5 * (1 + v - xp.sqrt((v - 1) ** 2 + 4 * sigma * counts))


def _over_relaxed(*steps):
    """Each variable moved RELAXATION times its primal-dual step ``(old, new)``."""
    return [old + RELAXATION * (new - old) for old, new in steps]


def _admm(image, mask, op, weight, quadratic, *, data, positive, background, censored, stop,
          callback):
    """ADMM with every operator diagonal in Fourier (Almeida & Figueiredo 2013).

    The object lives on a periodic grid larger than the extended domain; the
    data term sees only the observed samples (a mask), so the unobserved
    border is free and the result has no edge ringing.  The differences are
    taken in real space (periodic), so each iteration costs two forward and
    two inverse real FFTs of the grid, as many as one Richardson–Lucy step.

    Splitting ``u1 = Ax``, ``u2 = ∇x``, ``u3 = x`` with scaled duals ``d``,
    only ``u + d`` enters the next x-step, so each split keeps its dual and
    that sum (``2u - v`` with ``v`` the point its proximal step started
    from), updated in place.
    """
    xp = array_namespace(image)
    d = op.ndim
    spatial = tuple(image.shape[-d:])
    grid, observed = fft_grid(op, spatial)
    axes = tuple(range(-d, 0))
    otf = Convolution(op.psf, boundary="periodic").transfer_function(grid, like=image)
    rho = _admm_rho(weight, quadratic, image, mask)
    otf_conj = None  # numpy's passes' conjugate OTF, made when they first run
    # 1 / (|H|^2 + (1 + mu / rho) |D|^2 + 1), real: the x-step's normal equations
    # (with the quadratic term mu/2 |Dx|^2), diagonal in Fourier
    inverse = 1.0 / (xp.abs(otf) ** 2 + (1.0 + quadratic / rho)
                     * penalty_spectrum("gradient", grid, image) + 1.0)
    lead = tuple(image.shape[:-d])
    level = float(to_numpy(observed_mean(image, mask, d).mean()))
    x = full(lead + grid, level, like=image)
    # the starting splits: u1 = Ax, u2 = ∇x, u3 = x with zero duals, so each
    # sum u + d is the split itself
    data_sum = irfftn(rfftn(x, grid, axes) * otf, grid, axes)  # u1 + d1
    data_dual = full(lead + grid, 0.0, like=image)
    edge_sum = periodic_differences(x, full((d,) + tuple(x.shape), 0.0, like=x))
    edge_dual = xp.zeros_like(edge_sum)
    box_sum, box_dual = copy(x), full(lead + grid, 0.0, like=image)
    # kept across iterations, so the loop allocates no grid-sized array: the
    # x-step's right-hand side, two spectra, the next x and the next Ax
    right, x_new, blurred = xp.empty_like(x), xp.empty_like(x), xp.empty_like(x)
    spectrum, blurred_spectrum = empty_spectrum(x, axes), empty_spectrum(x, axes)
    keep = None  # numpy's passes' scratch array, made when they first run
    threshold = weight / rho
    y = image
    history = []
    periodic_differences_adjoint(edge_sum, out=right)
    right += box_sum
    for iteration in stop:
        # each split's sum was made last thing in the previous iteration: still in cache
        rfftn_into(right, axes, blurred_spectrum)
        rfftn_into(data_sum, axes, spectrum)
        if _kernels.tv_spectra_fused(spectrum, blurred_spectrum, otf, inverse):
            blockwise(_kernels.tv_spectra, spectrum, blurred_spectrum, otf, inverse)
        else:
            if otf_conj is None:
                otf_conj = xp.conj(otf)  # a copy, but a third of the passes of conj-mul-conj
            spectrum *= otf_conj
            spectrum += blurred_spectrum
            spectrum *= inverse
            xp.multiply(spectrum, otf, out=blurred_spectrum)
        irfftn_into(blurred_spectrum, axes, blurred)
        irfftn_into(spectrum, axes, x_new)
        # on the frame returned: the unobserved rest of the grid, which only
        # the prior constrains, creeps on long after the frame has settled
        change = (_kernels.relative_change(x_new, x, observed, level)
                  if _kernels.change_fused(x_new, x, observed)
                  else relative_change(x_new[observed], x[observed], level))
        if _kernels.tv_fused(edge_dual, edge_sum, x_new, box_dual, box_sum, right):
            # the gradient and box splits below, compiled: two passes
            _kernels.tv_split(x_new, edge_dual, edge_sum, box_dual, box_sum,
                              threshold=threshold, positive=positive,
                              relaxation=RELAXATION)
            _kernels.tv_right(edge_sum, box_sum, right)
        else:
            if keep is None:
                keep = xp.empty_like(x)
            _gradient_and_box_splits(x_new, edge_dual, edge_sum, box_dual, box_sum, keep,
                                     threshold, positive, RELAXATION)
            periodic_differences_adjoint(edge_sum, out=right)  # the next x-step's right side
            right += box_sum
        if (data == "gaussian" and mask is None and censored is None
                and _kernels.tv_data_fused(blurred, data_dual, data_sum, observed, y)):
            # the residual and the data split below, compiled: one pass
            squares = _kernels.tv_data(blurred, data_dual, data_sum, observed, y, rho=rho,
                                       relaxation=RELAXATION)
            history.append((squares / max(math.prod(y.shape), 1)) ** 0.5)
        else:
            history.append(rms_of_difference(blurred[observed], y) if mask is None
                           else observed_rms(blurred[observed] - y, mask))
            # data split: v = a Ax + (1 - a) u1 - d1 (u1 the last split); u1 =
            # prox(v) on the observed samples, v elsewhere
            v = _relaxed_into(data_sum, data_dual, blurred, RELAXATION)
            inside = v[observed]
            data_dual[...] = 0.0  # d1 = u1 - v: 0 outside the window
            dual = data_dual[observed]
            if data == "gaussian":  # u1 = (rho v + y) / (1 + rho), so d1 = (y - v) / (1 + rho)
                dual[...] = y
                dual -= inside
                dual /= 1 + rho
            else:
                w = inside + background - 1.0 / rho
                dual[...] = 0.5 * (w + xp.sqrt(w * w + 4 * y / rho)) - background - inside
            if mask is not None:  # a missing sample is like one outside the window
                dual *= mask
            if censored is not None:  # saturated: u1 = v where v is above the level, so d1 >= 0
                dual += censored * clamp_min(-dual, 0.0)
            inside += dual  # u1 + d1 = v + 2 d1 (= v outside the window)
            inside += dual
        x, x_new = x_new, (x if callback is None else xp.empty_like(x))  # a callback may keep x
        if callback is not None and callback(iteration, x[observed]):
            stop.reason = "callback"
            break
        if stop.done(change=change):
            break
    estimate = box_sum - box_dual if positive else x  # u3
    if op.boundary == "valid":  # back to the operator's extended domain
        extended = op.input_shape(spatial)
        estimate = estimate[(Ellipsis,) + tuple(slice(0, n) for n in extended)]
    return estimate, history


def _gradient_and_box_splits(x, edge_dual, edge_sum, box_dual, box_sum, keep, threshold,
                             positive, relaxation=1.0):
    """ADMM's gradient split (isotropic shrinkage of v into the dual d2 and
    the sum u2 + d2) and box split (u3 = max(v, 0)), in place, each from the
    over-relaxed point ``v = a Kx + (1 - a) u - d`` (``K`` = ∇ or 1, ``u`` the
    last split); numpy's passes, which ``_kernels.tv_split`` does in one."""
    xp = array_namespace(x)
    d = edge_sum.shape[0]
    for i in range(d):
        _relaxed_into(edge_sum[i], edge_dual[i], periodic_difference(x, i - d, keep),
                      relaxation)
    v = edge_sum
    blockwise(_magnitude_into, keep, *v)  # then the share of v kept: (1 - t / |v|)+
    clamp_min_(keep, 1e-30)
    xp.reciprocal(keep, out=keep)
    keep *= -threshold
    keep += 1.0
    clamp_min_(keep, 0.0)
    xp.multiply(v, keep, out=edge_dual)  # d2 = u2 - v = keep v - v
    edge_dual -= v
    v += edge_dual  # u2 + d2 = v + 2 d2
    v += edge_dual
    keep[...] = x
    v = _relaxed_into(box_sum, box_dual, keep, relaxation)
    if positive:  # d3 = u3 - v = max(-v, 0); u3 + d3 = v + 2 d3
        xp.negative(v, out=box_dual)
        clamp_min_(box_dual, 0.0)
        v += box_dual
        v += box_dual
    else:
        box_dual[...] = 0.0


def _relaxed_into(total, dual, applied, relaxation: float):
    """Over-relaxed ADMM's proximal point, ``a Kx + (1 - a) u - d`` = ``a (Kx
    - d) + (1 - a) (u - d)``, into ``total`` (``u + d``, so ``u - d`` is
    ``(total - d) - d``), from ``applied`` = Kx (overwritten), in
    ``_kernels``' rounding order."""
    applied -= dual
    applied *= relaxation
    total -= dual
    total -= dual
    total *= 1.0 - relaxation
    total += applied
    return total


def _magnitude_into(out, *components):
    """The Euclidean norm over ``components`` into ``out`` (a block function)."""
    xp = array_namespace(out)
    xp.multiply(components[0], components[0], out=out)
    for component in components[1:]:
        out += component * component
    xp.sqrt(out, out=out)


def _admm_rho(weight: float, quadratic: float, image, mask=None) -> float:
    """ADMM's penalty: the shrinkage threshold ``weight / rho`` is 5 % of the
    data's range, so the iterations depend neither on the data's units nor on
    a constant under them (with the peak instead, 100 added to a photo in
    [0, 1] took 400 iterations, the cap, instead of 109).  Without TV the
    quadratic term's unit-free weight sets it (a tiny rho barely couples the
    data split and crawls)."""
    return max(20.0 * weight / data_spread(image, mask) if weight > 0 else quadratic, 1e-4)


def wavelet(image, psf, *, weight="auto", wavelet_name: str = "sym4", levels: int = 3,
            shifts: int = 1, data: str = "gaussian", background=0.0,
            nonnegative="auto", iterations="auto", boundary: str = "valid",
            noise_sigma: float | None = None, time_limit: float | None = None,
            callback: Callable | None = None, return_info: bool = False):
    r"""Wavelet-sparsity (ℓ1) regularised deconvolution by FISTA, N-D.

    Parameters
    ----------
    image : (N1, ..., Nd) array
        numpy, torch or CuPy; the wavelet transform runs on the host
        (PyWavelets), the blur on the array's device.  NaN samples are
        missing data, left out of the data term.
    psf : (K1, ..., Kd) array
        Normalised to sum 1 here.
        Under ``boundary="valid"`` it may be longer than the image on an
        axis (a thin stack under a widefield PSF): the object is estimated
        on the planes beyond the image too, whose light the image receives.
    weight : float or "auto"
        :math:`\lambda`; ``"auto"``: :math:`0.5\,\hat\sigma` with
        :math:`\hat\sigma` the estimated noise level (the soft threshold
        per FISTA step is :math:`\lambda` for a unit step); for the
        Poisson term divided by the mean count :math:`\bar y + b`, as in
        :func:`total_variation`.
    wavelet_name : str
        Any orthogonal PyWavelets wavelet ("haar", "db2", "sym4", ...).
    levels : int
        Decomposition levels (fewer if the shortest axis is too short); the
        coarsest approximation is not penalised.
    shifts : int
        Cycle spinning (Coifman and Donoho): the shrinkage is averaged over
        ``shifts`` shifts of the grid per axis (by multiples of
        :math:`2^\text{levels} /` ``shifts``; ``shifts**d`` transforms per
        step), which removes the decimated transform's blocking.  It is the
        average of the shifted proxes, not the prox of their sum: the usual
        translation-invariant variant (with ``2**levels`` shifts the
        restoration commutes with circular shifts).  With 2, on the 16 photo
        cases of ``benchmarks/quality.py`` at noise 0.01: +0.19 dB on average
        (-0.01 to +0.56) for 2-6 times the time.  Gaussian data term only.
    data : {"gaussian", "poisson"}
        Data term: least squares (solved by FISTA), or the Poisson negative
        log-likelihood :math:`\sum (Ax+b) - y\log(Ax+b)` of counts (photons,
        electrons), whose gradient is not Lipschitz, so FISTA does not apply:
        solved by the primal–dual algorithm of Chambolle and Pock [3]_ in
        Condat's over-relaxed form [4]_ (``nonnegative`` is then always on).
    background : float or array
        Known background :math:`b` under the data, as in :func:`total_variation`.
    nonnegative : bool or "auto"
        Add the constraint :math:`x \ge 0` (the proximal step then runs
        three Dykstra-like iterations: an approximation of the exact prox,
        which they converge to as their number grows);
        ``"auto"`` as in :func:`total_variation`.
    iterations : int or "auto"
        ``"auto"``: relative change below 1e-3, at most 300.
    boundary, noise_sigma, time_limit, callback, return_info
        As in :func:`total_variation`.

    Notes
    -----
    .. math:: \min_x \tfrac12 \|Ax - y\|^2 + \lambda \|W x\|_1 \;(+\ \iota_{x\ge0})

    with :math:`W` an orthonormal periodised wavelet transform of the
    (extended) object, zero-padded to a multiple of :math:`2^\text{levels}`;
    FISTA of Beck and Teboulle [1]_, after Daubechies et al. [2]_.  With
    ``data="poisson"`` the least squares become the Poisson term and the
    primal–dual method takes :math:`A` and :math:`W` as one operator of
    norm at most :math:`\sqrt2`; every step is then exact (the constraint
    is a projection, the ℓ1 term's dual a clipping), and it converges to
    the minimiser (its optimality conditions met to 1e-12 in the tests).
    Measured against the Gaussian term, each with its automatic weight: on
    four photos (brick, moon, clock, grass) under Gaussian and disk blurs at
    30 and 300 photons, -0.06 to +0.16 dB; on a cell phantom and a star
    field at 20-1000 photons, -1.44 to -0.11 dB (on the phantom at 100,
    even at the best of 0.25-2 times its weight: 27.71 against the Gaussian
    term's 27.90).  :func:`total_variation` with ``data="poisson"`` beat
    both in most of these cases, so for counts prefer it or
    :func:`~deconvkit.richardson_lucy`.

    References
    ----------
    .. [1] A. Beck and M. Teboulle, "A fast iterative shrinkage-thresholding
       algorithm for linear inverse problems", SIAM J. Imaging Sci. 2, 2009.
    .. [2] I. Daubechies, M. Defrise and C. De Mol, "An iterative thresholding
       algorithm for linear inverse problems with a sparsity constraint",
       Comm. Pure Appl. Math. 57, 2004.
    .. [3] A. Chambolle and T. Pock, "A first-order primal-dual algorithm for
       convex problems with applications to imaging", JMIV 40, 2011.
    .. [4] L. Condat, "A primal–dual splitting method for convex optimization
       involving Lipschitzian, proximable and linear composite terms", JOTA
       158, 2013.
    """
    import pywt

    check_choice(data, "data", DATA_TERMS)
    check_callback(callback)
    check_choice(boundary, "boundary", BOUNDARIES)
    if not (isinstance(shifts, int) and shifts >= 1 and (shifts & (shifts - 1)) == 0):
        raise ValueError(f"shifts must be a power of two (1, 2, 4, ...), got {shifts!r}")
    if shifts > 1 and data != "gaussian":
        raise ValueError("shifts > 1 (cycle spinning) works with data='gaussian' only")
    if pywt.Wavelet(wavelet_name).orthogonal is False:
        raise ValueError(f"wavelet_name={wavelet_name!r} is not orthogonal; use e.g. 'sym4'")
    weight = check_weight(weight, "weight")
    image, psf = prepare(image, psf, in_place="wavelet", missing=True, larger=boundary == "valid")
    op = Convolution(psf, boundary=boundary)
    d = psf.ndim
    sigma = noise_level(image, noise_sigma)
    image, background, reported = data_term_background(background, image, data)
    image, mask = split_missing(image)
    if weight == "auto":
        weight = 0.5 * sigma
        if data == "poisson":  # near its minimum the Poisson term is the Gaussian / count
            level = observed_mean(clamp_min(image, 0.0), mask, image.ndim)
            weight /= max(float(to_numpy(level).mean()) + mean_level(background), TINY)
    nonnegative = resolve_nonnegative(nonnegative, image, sigma) or data == "poisson"
    domain = op.input_shape(tuple(image.shape))
    # axes of one sample (a row given as 1 x N) have no details to shrink
    axes = tuple(a for a in range(-d, 0) if domain[a] > 1)
    shortest = min(domain[a] for a in axes)
    levels = max(1, min(levels, pywt.dwt_max_level(shortest, wavelet_name)))
    block = 2**levels
    padded = tuple(-(-n // block) * block if a - len(domain) in axes else n
                   for a, n in enumerate(domain))
    crop = (Ellipsis,) + tuple(slice(0, n) for n in domain[-d:])
    norm = 1.0 if float(to_numpy(psf.min())) >= 0 else op.norm(domain[-d:], like=image)
    step = 1.0 / norm**2

    # shifts beyond 2**levels would repeat the same grids
    offsets = list(itertools.product(range(0, block, block // min(shifts, block)),
                                     repeat=len(axes)))

    transform = functools.partial(_wavelet_analysis, wavelet_name=wavelet_name, levels=levels,
                                  axes=axes)
    inverse = functools.partial(_wavelet_synthesis, wavelet_name=wavelet_name, axes=axes)

    def shrink(v):
        """prox of step·λ‖W·‖₁ at v (averaged over the shifted grids)."""
        host, out, t = to_numpy(v), 0.0, step * weight
        for offset in offsets:
            moved = np.roll(host, offset, axis=axes) if any(offset) else host
            coefficients, slices = transform(moved)
            shrunk = np.sign(coefficients) * np.maximum(np.abs(coefficients) - t, 0)
            shrunk[slices[0]] = coefficients[slices[0]]  # the approximation is not penalised
            back = inverse(shrunk, slices)
            out = out + (np.roll(back, tuple(-o for o in offset), axis=axes) if any(offset)
                         else back)
        return asarray(out / len(offsets), v)

    def prox(v):
        if not nonnegative:
            return shrink(v)
        x, p, q = v, 0.0, 0.0  # Dykstra-like splitting for the sum of two proxes
        for _ in range(3):
            y = shrink(x + p)
            p = x + p - y
            x = clamp_min(y + q, 0.0)
            q = y + q - x
        return x

    level = float(to_numpy(observed_mean(image, mask, d).mean()))
    x = full(padded, level, like=image)
    if data == "poisson":
        stop = Stopping(iterations, max_iterations=400, tol=1e-4, time_limit=time_limit)
        x, history = _wavelet_primal_dual(image, mask, op, x, crop, weight, background, stop,
                                          callback, transform=transform, inverse=inverse,
                                          level=level)
        return _wavelet_result(op, x[crop], image, weight, wavelet_name, levels, data,
                               nonnegative, sigma, boundary, reported, stop, history,
                               return_info)
    stop = Stopping(iterations, max_iterations=300, tol=1e-3, time_limit=time_limit)
    z, t_k = x, 1.0
    history = []
    for iteration in stop:
        residual = op.forward(z[crop]) - image
        if mask is not None:  # missing samples leave the data term
            residual = residual * mask
        gradient = full(padded, 0.0, like=image)
        gradient[crop] = op.adjoint(residual)
        x_new = prox(z - step * gradient)
        t_next = (1 + (1 + 4 * t_k * t_k) ** 0.5) / 2
        z = x_new + ((t_k - 1) / t_next) * (x_new - x)
        change = relative_change(x_new, x, level)
        x, t_k = x_new, t_next
        history.append(observed_rms(residual, mask))
        if callback is not None and callback(iteration, frame(op, x[crop], image.shape)):
            stop.reason = "callback"
            break
        if stop.done(change=change):
            break
    return _wavelet_result(op, x[crop], image, weight, wavelet_name, levels, data,
                           nonnegative, sigma, boundary, reported, stop, history, return_info)


def _wavelet_result(op, x, image, weight, wavelet_name, levels, data, nonnegative, sigma,
                    boundary, reported, stop, history, return_info):
    restored = frame(op, x, image.shape)
    if not return_info:
        return restored
    return restored, Info("wavelet", dict(weight=weight, wavelet=wavelet_name, levels=levels,
                                          data=data, nonnegative=nonnegative, noise_sigma=sigma,
                                          boundary=boundary) | reported,
                          iterations=len(history), stopped_by=stop.reason, history=history,
                          seconds=stop.seconds)


def _wavelet_analysis(host, *, wavelet_name, levels, axes):
    """Orthonormal periodised wavelet coefficients as one array of ``host``'s
    shape, with the slices that locate each band (the first: the approximation)."""
    import pywt

    with warnings.catch_warnings():
        # an axis shorter than the filter: its periodised level is still orthonormal
        warnings.filterwarnings("ignore", "Level value of", UserWarning)
        coeffs = pywt.wavedecn(host, wavelet_name, mode="periodization", level=levels, axes=axes)
    return pywt.coeffs_to_array(coeffs, axes=axes)


def _wavelet_synthesis(array, slices, *, wavelet_name, axes):
    import pywt

    coeffs = pywt.array_to_coeffs(array, slices, output_format="wavedecn")
    return pywt.waverecn(coeffs, wavelet_name, mode="periodization", axes=axes)


def _wavelet_primal_dual(image, mask, op, x, crop, weight, background, stop, callback, *,
                         transform, inverse, level: float):
    """Poisson data term + weight·‖W x‖₁ + (x ≥ 0) by Chambolle–Pock in Condat's
    over-relaxed form, the duals' steps first (as :func:`_pdhg`).

    The wavelet transform runs on the host; the blur on the array's device.
    """
    coefficients, slices = transform(to_numpy(x))
    detail = np.ones_like(coefficients)
    detail[slices[0]] = 0.0  # the coarsest approximation is not penalised: its dual stays 0
    # |K|^2 <= |A|^2 + |W|^2 = 2: tau sigma 2 < 1; steps in the data's units (as _pdhg)
    scale = data_peak(image)
    tau, sigma = 0.7 * scale, 0.7 / scale
    counts = clamp_min(image, 0.0)
    p = full(image.shape, 0.0, like=image)
    q = np.zeros_like(coefficients)
    estimate, history = x, []
    for iteration in stop:
        predicted = op.forward(x[crop])
        p_new = _poisson_dual_step(p, predicted, counts, sigma, background)
        if mask is not None:
            p_new = p_new * mask
        coefficients, _ = transform(to_numpy(x))
        q_new = np.clip(q + sigma * coefficients, -weight, weight) * detail
        back = asarray(inverse(2 * q_new - q, slices), x)
        back[crop] = back[crop] + op.adjoint(2 * p_new - p)
        estimate = clamp_min(x - tau * back, 0.0)
        x_new, p, q = _over_relaxed((x, estimate), (p, p_new), (q, q_new))
        change = relative_change(x_new, x, level)
        x = x_new
        history.append(observed_rms(predicted - image, mask))
        if callback is not None and callback(iteration, frame(op, estimate[crop], image.shape)):
            stop.reason = "callback"
            break
        if stop.done(change=change):
            break
    return estimate, history
