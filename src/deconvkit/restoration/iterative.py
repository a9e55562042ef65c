"""Classic iterative restoration: projected Landweber, Van Cittert and Gold's ratio method."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from types import SimpleNamespace

from .._array_api import array_namespace, clamp_min, full, is_torch, to_numpy
from .._validate import check_callback, check_choice, check_weight, has_nan
from ..operators import BOUNDARIES, Convolution, Pad, SpaceVariantConvolution
from ._common import (
    blur_operator,
    data_floor,
    frame,
    mean_over,
    non_negative_psf,
    observed_mean,
    observed_rms,
    offset,
    prepare,
    resolve_nonnegative,
    split_missing,
    warn_if_signed,
)
from ._stopping import Info, Stopping, noise_level, relative_change
from .linear import PENALTIES, _symmetric_discrepancy_weight, penalty_normal
from .richardson_lucy import BiggsExtrapolation

__all__ = ["gold", "landweber", "van_cittert"]


def landweber(image, psf, *, iterations="auto", step: float | None = None,
              nonnegative="auto", boundary: str = "valid", weight=0.0,
              penalty: str = "laplacian", upper: float | None = None, start="auto",
              noise_sigma: float | None = None, time_limit: float | None = None,
              callback: Callable | None = None, return_info: bool = False):
    r"""Projected Landweber iteration, and with a ``weight`` the iterative
    constrained Tikhonov–Miller method (ICTM); N-D, any boundary model.

    Parameters
    ----------
    image : (N1, ..., Nd) array
        NaN samples are missing data, left out of the residual (filled in
        through the adjoint of the blur from their neighbours).
    psf : (K1, ..., Kd) array or SpaceVariantConvolution
        Normalised to sum 1 here (each of a SpaceVariantConvolution's PSFs,
        ``boundary`` applied to it).
        Under ``boundary="valid"`` it may be longer than the image on an
        axis (a thin stack under a widefield PSF): the object is estimated
        on the planes beyond the image too, whose light the image receives.
    iterations : int or "auto"
        ``"auto"``: stop by the discrepancy principle (residual RMS at the
        estimated noise level), at most 1000 iterations; with a ``weight``,
        when the estimate changes by less than 1e-4 of itself (the
        regularised problem has a minimiser to converge to).
    step : float, optional
        :math:`\tau`; default :math:`1.9 / \|A\|^2` (convergent for any
        :math:`\tau < 2/\|A\|^2`; :math:`\|A\| \le 1` for a non-negative
        PSF), and with a weight :math:`1 / (\|A\|^2 + \lambda \|D^TD\|)`,
        the largest step that Nesterov's momentum, used then, allows.
    nonnegative : bool or "auto"
        Project onto :math:`x \ge 0` after each step; ``"auto"``: unless the
        data are a signed signal (see :func:`deconvkit.total_variation`).
    boundary : str
        See :class:`deconvkit.Convolution`; ``"valid"`` by default.
    weight : float or "auto"
        :math:`\lambda \ge 0` of a Tikhonov–Miller penalty (0, the
        default: plain Landweber).  ``"auto"``: the discrepancy-principle
        weight of :func:`deconvkit.tikhonov` for ``penalty``.
    penalty : {"laplacian", "gradient", "identity"}
        :math:`D`; the Laplacian is Tikhonov–Miller's (and
        DeconvolutionLab2's ICTM's).
    upper : float, optional
        Also project onto :math:`x \le` ``upper``: bounded-variable least
        squares (Stark & Parker 1995; DeconvolutionLab2's BVLS), for objects
        whose values cannot exceed a known level (a transmittance of 1, a
        detector's full scale).
    start : float or "auto"
        The flat image the iteration starts from.  ``"auto"``: the data's
        floor (1st percentile; 0 at least for a non-negative estimate), or
        their mean for signed data; the classic start, 0, wherever the data
        reach 0.  From 0, a constant under the data (a camera's offset) had
        to be climbed into the unobserved margin of the ``"valid"`` model,
        whose residual then held the discrepancy stop off: 100 added to a
        photo in [0, 1] ran 1000 iterations (the cap) to -11.9 dB, where
        the floor gives the same 47 iterations and 26.8 dB as without it.
    noise_sigma, time_limit, callback, return_info
        As in :func:`deconvkit.richardson_lucy`.

    Notes
    -----
    Gradient descent on :math:`\tfrac12\|Ax-y\|^2 + \tfrac\lambda2\|Dx\|^2` [1]_ [2]_:

    .. math:: x \leftarrow P_+\!\left(x + \tau \left(A^T(y - Ax) - \lambda D^TDx\right)\right).

    Without a weight the iteration count is the regulariser; with one the
    iteration converges to the non-negative Tikhonov–Miller solution, which
    :func:`deconvkit.tikhonov` and :func:`deconvkit.cgls` reach without the
    constraint.

    References
    ----------
    .. [1] L. Landweber, "An iteration formula for Fredholm integral equations
       of the first kind", Amer. J. Math. 73, 1951.
    .. [2] P. J. Verveer and T. M. Jovin, "Acceleration of the ICTM image
       restoration algorithm", J. Microsc. 188(3), 1997; H. van der Voort
       and K. Strasters, "Restoration of confocal images for quantitative
       image analysis", J. Microsc. 178, 1995.
    .. [3] P. B. Stark and R. L. Parker, "Bounded-variable least-squares: an
       algorithm and applications", Computational Statistics 10, 1995.
    """
    check_callback(callback)
    check_choice(boundary, "boundary", BOUNDARIES)
    check_choice(penalty, "penalty", PENALTIES)
    weight = check_weight(weight, "weight")
    if penalty != "laplacian" and weight == 0:
        raise ValueError(f"penalty={penalty!r} is the penalty of weight=, which is 0; pass "
                         "weight='auto' (or a number) with it")
    if upper is not None and (isinstance(upper, bool) or not isinstance(upper, (int, float))
                              or not math.isfinite(upper)):
        raise ValueError(f"upper must be a finite number (the largest value the object "
                         f"takes), got {upper!r}")
    image, psf = prepare(image, psf, missing=True, space_variant=True,
                         larger=boundary == "valid")
    op = blur_operator(psf, image, boundary)
    regularizer, penalty_norm = penalty_normal(penalty, op.ndim, boundary)
    if weight == "auto":
        if isinstance(psf, SpaceVariantConvolution) or has_nan(image):
            raise ValueError("weight='auto' needs one PSF and every sample (it is tikhonov's "
                             "discrepancy weight); give a number")
        weight = _symmetric_discrepancy_weight(image, psf, penalty,
                                               noise_level(image, noise_sigma))
    if step is None:
        # a non-negative unit-sum PSF has ‖A‖ <= 1 (Young's inequality): no power
        # iteration; a space-variant blur may exceed 1 (Schur's bound instead)
        domain = op.input_shape(tuple(image.shape[-psf.ndim:]))
        kernels = op.psfs if isinstance(op, SpaceVariantConvolution) else psf
        if float(to_numpy(kernels.min())) < 0:
            norm = op.norm(domain, like=image)
        elif isinstance(op, SpaceVariantConvolution):
            norm = max(op.norm_bound(domain, like=image), 1.0)
        else:
            norm = 1.0
        # FISTA's momentum (with a weight) needs a step within 1 / L; Landweber's 2 / L
        step = (1.0 if weight else 1.9) / (norm**2 + weight * penalty_norm)
    elif not step > 0:
        raise ValueError(f"step must be > 0, got {step!r}")
    if start != "auto" and (isinstance(start, bool) or not isinstance(start, (int, float))
                            or not math.isfinite(start)):
        raise ValueError(f"start must be a finite number or 'auto', got {start!r}")
    sigma = _noise(image, iterations, noise_sigma)
    image, mask = split_missing(image)
    nonnegative = resolve_nonnegative(nonnegative, image, sigma)
    if upper is not None and nonnegative and upper <= 0:
        raise ValueError(f"upper={upper!r} leaves nothing between 0 and it for a non-negative "
                         "estimate; give an upper bound > 0 (or nonnegative=False)")
    # with a weight: run to the minimiser (the discrepancy would stop it short)
    stop = Stopping(iterations, max_iterations=1000, time_limit=time_limit, tol=1e-4) \
        if weight else Stopping(iterations, max_iterations=1000, target=sigma,
                                time_limit=time_limit)
    # the mean for all data (not only signed) gained on photos but lost up to
    # 1.1 dB on the tests' objects on a dark background
    if start == "auto":
        start = max(data_floor(image, mask), 0.0) if nonnegative else float(
            to_numpy(observed_mean(image, mask, op.ndim).mean()))
        start = start if upper is None else min(start, upper)
    x = full(op.input_shape(tuple(image.shape)), start, like=image)

    def increment(residual, x):
        change = op.adjoint(residual)
        return step * (change - weight * regularizer(x) if weight else change)

    x, history = _iterate(op, image, mask, x, increment, nonnegative, stop, callback,
                          momentum=bool(weight), upper=upper)
    stop.warn_if_short("landweber")
    parameters = dict(step=step, boundary=boundary, nonnegative=nonnegative, noise_sigma=sigma,
                      start=float(start))
    if weight:
        parameters.update(weight=weight, penalty=penalty)
    if upper is not None:
        parameters.update(upper=upper)
    return _finish(op, x, image, "landweber", parameters, stop, history, return_info)


def van_cittert(image, psf, *, iterations="auto", relaxation: float = 1.0,
                nonnegative: bool = False, boundary: str = "edge",
                noise_sigma: float | None = None, time_limit: float | None = None,
                callback: Callable | None = None, return_info: bool = False):
    r"""Van Cittert iteration, N-D.

    Parameters
    ----------
    image, psf, iterations, nonnegative, boundary, noise_sigma, time_limit, callback, return_info
        As in :func:`landweber`, but NaN samples are refused: without an
        adjoint no neighbour ever corrects a missing sample.
    relaxation : float
        :math:`\beta` in (0, 2); converges for symmetric PSFs whose transfer
        function is positive.

    Notes
    -----
    .. math:: x \leftarrow x + \beta\, E(y - Ax)

    with :math:`E` the identity for same-size boundary models (default
    ``"edge"``, the extension that misleads an adjoint-free iteration least)
    and, for ``"valid"``, the embedding of the frame into the extended domain
    (zero outside) [1]_.  Without an adjoint the border beyond
    the frame is never corrected, so ``"valid"`` is weaker here than for the
    other solvers.  Unlike Landweber it
    uses no adjoint, and it diverges for PSFs with negative transfer
    function values (disk, motion): prefer :func:`landweber` there.

    References
    ----------
    .. [1] P. H. van Cittert, "Zum Einfluß der Spaltbreite auf die
       Intensitätsverteilung in Spektrallinien II", Z. Physik 69, 1931.
    """
    check_callback(callback)
    check_choice(boundary, "boundary", BOUNDARIES)
    if not 0 < relaxation < 2:
        raise ValueError(f"relaxation must be in (0, 2), got {relaxation!r}")
    # no NaN: without an adjoint a missing sample's neighbours never correct it
    image, psf = prepare(image, psf)
    op = Convolution(psf, boundary=boundary)
    embed = Pad(op.widths, "zero") if boundary == "valid" else None
    sigma = _noise(image, iterations, noise_sigma)
    stop = Stopping(iterations, max_iterations=1000, target=sigma, time_limit=time_limit)
    x = full(op.input_shape(tuple(image.shape)), 0.0, like=image) + mean_over(image, psf.ndim)
    x, history = _iterate(op, image, None, x,
                          lambda r, _: relaxation * (embed.forward(r) if embed else r),
                          nonnegative, stop, callback)
    stop.warn_if_short("van_cittert")
    return _finish(op, x, image, "van_cittert", dict(relaxation=relaxation, boundary=boundary,
                   nonnegative=nonnegative, noise_sigma=sigma), stop, history, return_info)


def gold(image, psf, *, iterations="auto", boost: float = 1.0, repetitions: int = 1,
         acceleration: str | None = "biggs", boundary: str = "valid", background=0.0,
         noise_sigma: float | None = None, time_limit: float | None = None,
         callback: Callable | None = None, return_info: bool = False):
    r"""Gold's ratio method (ISRA) with Morháč's boosting, N-D, any boundary model.

    The non-negative least-squares counterpart of Richardson–Lucy, and the
    deconvolution that gamma-ray and X-ray spectroscopy use (ROOT's
    ``TSpectrum::Deconvolution``): boosting sharpens peaks towards lines, to
    separate a doublet closer than the response's width.

    Parameters
    ----------
    image : (N1, ..., Nd) array
        Non-negative data (a spectrum, an image, a volume); negative noise
        samples are allowed, but a signed signal gets a warning.  NaN samples
        are missing data, left out of the fit.
    psf : (K1, ..., Kd) array or SpaceVariantConvolution
        The response; normalised to sum 1, negative samples set to 0 (with a
        warning).
    iterations : int or "auto"
        Iterations per repetition; ``"auto"``: each repetition stops by the
        discrepancy principle (residual RMS at the estimated noise level), at
        most 1000 iterations.
    boost : float
        :math:`p`: between repetitions the estimate is raised to this power
        (1, the default, is plain Gold; Morháč uses 1.1-1.5 with tens of
        repetitions to turn peaks into lines).  Scaled so that its maximum
        stays put, so the result does not depend on the data's units.
    repetitions : int
        How many times the iterations run, boosted in between (at least 1).
    acceleration : {"biggs", None}
        Biggs–Andrews vector extrapolation [3]_, as in
        :func:`deconvkit.richardson_lucy`; restarted after each boost.  ``None``
        is the plain iteration of [1]_ and [2]_.
    boundary : str
        See :class:`deconvkit.Convolution`; ``"valid"`` by default.
    background : float or array
        :math:`b \ge 0`, an offset of the data modelled rather than
        subtracted: a constant (a camera's dark level) or an array of the
        image's shape (a spectrum's continuum, e.g. from
        :func:`deconvkit.spectra.snip_background`; a sky map).
    noise_sigma, time_limit, callback, return_info
        As in :func:`deconvkit.richardson_lucy`; ``time_limit`` covers all
        repetitions, and the callback's iteration counts across them.

    Returns
    -------
    restored : array
        Same shape, type and library as ``image``, non-negative.
    info : Info
        With ``return_info=True``; ``parameters["iterations"]`` lists the
        iterations each repetition ran.

    Notes
    -----
    Minimises :math:`\|Ax + b - y\|^2` over :math:`x \ge 0` by the
    multiplicative update [1]_ [2]_

    .. math:: x \leftarrow x \, \frac{A^T y}{A^T (A x + b)},

    which keeps :math:`x \ge 0` without a projection, from a flat start at
    the data's mean.  Where Richardson–Lucy weighs each residual by the
    predicted intensity (Poisson noise), Gold weighs all alike (Gaussian
    noise).  Like RL it sharpens as it iterates, so the iteration count
    regularises; boosting [2]_ replaces :math:`x` by :math:`x^p` (here
    :math:`m (x/m)^p` with :math:`m = \max x`) before each further
    repetition, so that the next fit converges towards fewer, narrower
    peaks.  ``benchmarks/spectroscopy.py`` measures it on doublets.

    Examples
    --------
    Two lines 0.64 FWHM apart, one peak in the data, two after boosting:

    >>> import numpy as np
    >>> import deconvkit as dk
    >>> from scipy.signal import find_peaks
    >>> kernel = dk.psf.gaussian(4.0, ndim=1)            # FWHM 9.4 samples
    >>> truth = np.zeros(200)
    >>> truth[[95, 101]] = 1000.0
    >>> data = dk.blur(truth, kernel, boundary="zero") + 10.0
    >>> len(find_peaks(data, prominence=1)[0])
    1
    >>> lines = dk.gold(data, kernel, background=10.0, iterations=200, repetitions=10,
    ...                 boost=1.2)
    >>> find_peaks(lines, prominence=100)[0].tolist(), round(float(lines.sum()))
    ([95, 101], 2001)

    References
    ----------
    .. [1] R. Gold, "An iterative unfolding method for response matrices",
       Argonne National Laboratory report ANL-6984, 1964; M. E. Daube-
       Witherspoon and G. Muehllehner, "An iterative image space
       reconstruction algorithm suitable for volume ECT", IEEE Trans. Med.
       Imaging 5(2), 1986.
    .. [2] M. Morháč, J. Kliman, V. Matoušek, M. Veselský and I. Turzo,
       "Efficient one- and two-dimensional Gold deconvolution and its
       application to gamma-ray spectra decomposition", Nucl. Instrum.
       Methods A 401, 1997; M. Morháč, "Deconvolution methods and their
       applications in the analysis of gamma-ray spectra", Nucl. Instrum.
       Methods A 559, 2006.
    .. [3] D. S. C. Biggs and M. Andrews, "Acceleration of iterative image
       restoration algorithms", Appl. Opt. 36(8), 1997.
    """
    check_callback(callback)
    check_choice(boundary, "boundary", BOUNDARIES)
    check_choice(acceleration, "acceleration", (None, "biggs"))
    if isinstance(repetitions, bool) or not isinstance(repetitions, int) or repetitions < 1:
        raise ValueError(f"repetitions must be an int >= 1, got {repetitions!r}")
    if not (isinstance(boost, (int, float)) and 0 < boost < float("inf")):
        raise ValueError(f"boost must be a positive number (1: no boosting), got {boost!r}")
    if boost != 1 and repetitions == 1:
        raise ValueError(f"boost={boost!r} acts between repetitions, and repetitions is 1; "
                         "pass repetitions > 1 too (e.g. repetitions=10)")
    image, psf = prepare(image, psf, missing=True, space_variant=True)
    background = offset(background, image)
    psf = non_negative_psf(psf, "gold", stacklevel=2)
    op = blur_operator(psf, image, boundary)
    sigma = _noise(image, iterations, noise_sigma)
    if sigma is not None:
        warn_if_signed(image, sigma, "gold", stacklevel=2)
    image, mask = split_missing(image)
    # A^T y, whose negative noise would turn x negative: x stays 0 there
    numerator = clamp_min(op.adjoint(image if mask is None else image * mask), 0.0)
    tiny = 1e-12 * max(float(to_numpy(numerator.max())), 1e-30)
    start = observed_mean(clamp_min(image - background, 0.0), mask, op.ndim)
    # + tiny: a multiplicative update never leaves an exact 0
    x = full(op.input_shape(tuple(image.shape)), tiny, like=image) + start
    keep = _seen(op, image, mask)
    if keep is not None:
        x = x * keep
    began = time.perf_counter()
    history, counts = [], []
    run = SimpleNamespace(reason="iterations", seconds=0.0)
    for repetition in range(repetitions):
        remaining = None if time_limit is None else time_limit - (time.perf_counter() - began)
        if repetition and remaining is not None and remaining <= 0:
            run.reason = "time limit"
            break
        if repetition:  # boosted only before a fit: the estimate returned is a fitted one
            x = _boosted(x, boost)
        stop = Stopping(iterations, max_iterations=1000, target=sigma,
                        time_limit=None if remaining is None else max(remaining, 1e-9),
                        min_iterations=3)
        x, ran = _gold_fit(op, image, mask, keep, numerator, x, background, tiny,
                           acceleration, stop, history, callback)
        counts.append(ran)
        run.reason = stop.reason
        if stop.reason in ("time limit", "callback"):
            break
    stop.warn_if_short("gold")  # the last fit's: the estimate returned
    run.seconds = time.perf_counter() - began
    return _finish(op, x, image, "gold", dict(
        boundary=boundary, acceleration=acceleration, boost=boost, repetitions=repetitions,
        iterations=counts, noise_sigma=sigma,
        background=background if isinstance(background, float) else "array"), run, history,
        return_info)


def _gold_fit(op, image, mask, keep, numerator, x, background, tiny, acceleration, stop,
              history, callback):
    """One repetition of Gold's iteration from ``x`` until ``stop``; appends the
    residual RMS of each iteration to ``history`` (the callback's count runs on
    over repetitions); returns ``(x, iterations run)``."""
    biggs = BiggsExtrapolation(enabled=bool(acceleration))
    ran = 0
    for iteration in stop:
        ran = iteration
        point = biggs.point(x, tiny)  # kept positive: a multiplicative update
        if point is not x and keep is not None:
            point = point * keep
        predicted = op.forward(point) + background
        if mask is not None:
            predicted = predicted * mask
        history.append(observed_rms(predicted - image, mask))
        x = biggs.advance(point * numerator / clamp_min(op.adjoint(predicted), tiny), point, x)
        if callback is not None and callback(len(history), frame(op, x, image.shape)):
            stop.reason = "callback"
            break
        if stop.done(residual=history[-1]):
            break
    return x, ran


def _seen(op, image, mask):
    """0/1 over the samples that the data see, or None when all are seen.

    Where :math:`A^T 1` is at the FFT's round-off (the corners of the
    ``"valid"`` domain under a Gaussian's tails), :math:`A^T y` and
    :math:`A^T A x` are round-off too and their ratio is noise, which grew
    such samples to 1e11 in float32; they are held at 0 (they send under
    1e-4 of their light, in float32, to any observed sample)."""
    seen = op.adjoint(full(tuple(image.shape), 1.0, like=image) if mask is None else mask)
    xp = array_namespace(image)
    level = 1000 * float(xp.finfo(image.dtype).eps) * float(to_numpy(seen.max()))
    if float(to_numpy(seen.min())) > level:
        return None
    keep = seen > level
    return keep.to(image.dtype) if is_torch(xp) else keep.astype(image.dtype)


def _boosted(x, power: float):
    """Morháč's boosting, :math:`m (x/m)^p` with :math:`m = \\max x`: sharper
    peaks, the highest unchanged (so the units of the data do not matter)."""
    peak = float(to_numpy(x.max()))
    return x if peak <= 0 else peak * (x / peak) ** power


def _iterate(op, image, mask, x, increment, nonnegative, stop, callback, momentum=False,
             upper=None):
    """x += increment(y - Ax, x) until ``stop``; the shared loop of Landweber and
    Van Cittert.  Missing samples (``mask`` 0) leave the residual; ``upper``
    bounds x from above (bounded-variable least squares).  A rule
    without a residual target stops on the relative change of x.  With
    ``momentum`` each step starts from Nesterov's extrapolated point (FISTA
    [Beck & Teboulle 2009]), which converges in far fewer iterations to the
    minimiser of a regularised problem."""
    history = []
    previous = x
    by_change = stop.auto and stop.target is None  # else the residual (or count) stops it
    level = float(to_numpy(observed_mean(image, mask, op.ndim).mean())) if by_change else 0.0
    for iteration in stop:
        point = x + ((iteration - 2) / (iteration + 1)) * (x - previous) \
            if momentum and iteration > 1 else x
        residual = image - op.forward(point)
        if mask is not None:
            residual = residual * mask
        history.append(observed_rms(residual, mask))
        if not by_change and stop.done(residual=history[-1]):
            break
        previous = x
        x = point + increment(residual, point)
        if nonnegative:
            x = clamp_min(x, 0.0)
        if upper is not None:  # min(x, upper), by the one clamp the backends share
            x = -clamp_min(-x, -upper)
        if callback is not None and callback(iteration, frame(op, x, image.shape)):
            stop.reason = "callback"
            break
        if by_change and stop.done(change=relative_change(x, previous, level)):
            break
    return x, history


def _noise(image, iterations, noise_sigma):
    if iterations != "auto":
        return noise_sigma
    return noise_level(image, noise_sigma)


def _finish(op, x, image, name, parameters, stop, history, return_info):
    restored = frame(op, x, image.shape)
    if not return_info:
        return restored
    return restored, Info(name, parameters, iterations=len(history), stopped_by=stop.reason,
                          history=history, seconds=stop.seconds)
