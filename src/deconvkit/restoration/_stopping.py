"""Stopping rules and parameter choice shared by every iterative solver.

One place decides when an iteration stops (a fixed count, or ``"auto"``:
the discrepancy principle when the noise level is known, else a relative
change threshold; always a time limit when given) and what every solver
reports back (:class:`Info`).
"""

from __future__ import annotations

import collections
import itertools
import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._array_api import array_namespace, blockwise, by_pieces, to_numpy, vdot

__all__ = ["Info", "NoiseModel", "Stopping", "estimate_noise", "noise_model"]


def noise_level(image, noise_sigma=None) -> float:
    """``noise_sigma`` as given (checked), or estimated from ``image`` when None."""
    if noise_sigma is None:
        return estimate_noise(image)
    if not (isinstance(noise_sigma, (int, float, np.integer, np.floating))
            and not isinstance(noise_sigma, bool) and 0 <= noise_sigma < float("inf")):
        raise ValueError(f"noise_sigma must be a finite number >= 0, or None to estimate it; "
                         f"got {noise_sigma!r}")
    return float(noise_sigma)


def estimate_noise(image, *, compressed: bool = False) -> float:
    """Noise standard deviation (RMS over the image) estimated from the data.

    Uses the Poisson–Gaussian :func:`noise_model`, so photon noise, whose
    level follows the intensity, is measured where a single median-based
    estimate (scikit-image's ``estimate_sigma``, Donoho's MAD) would
    underestimate it; for white Gaussian noise the two agree.  NaN samples
    (missing data) are left out.

    ``compressed=True`` is for images that went through a lossy codec (a
    JPEG): it quantises away the noise's finest part, which this estimate
    measures, and leaves the next octave, which deconvolution amplifies.  The
    larger of the estimate and twice that of the image binned 2 x ... x 2 (the
    same for white noise) is returned.  Measured on four scikit-image crops
    blurred by a Gaussian of 1.5 with noise 0.003 and 0.01, saved at JPEG
    quality 90 and 75: the default TV restoration gained 0.7 to 12.1 dB
    (camera at 0.01, quality 75: 23.85 to 29.32; its PNG 29.90).
    """
    level = noise_model(image).rms(image)
    if not compressed:
        return level
    y = binned_by_two(image)
    try:
        return max(level, 2 ** (y.ndim / 2) * noise_model(y).rms(y))
    except ValueError:  # too few binned blocks: the direct estimate is all there is
        return level


def binned_by_two(image) -> np.ndarray:
    """The means of ``image``'s 2 x ... x 2 blocks (float64, numpy; a last odd
    sample on an axis dropped)."""
    y = np.asarray(to_numpy(image), dtype=np.float64)
    for axis in range(y.ndim):
        n = y.shape[axis] // 2 * 2
        y = (np.take(y, np.arange(0, n, 2), axis=axis)
             + np.take(y, np.arange(1, n, 2), axis=axis)) / 2
    return y


@dataclass(frozen=True)
class NoiseModel:
    """Signal-dependent noise: ``variance = gain * intensity + floor``.

    ``gain`` is the Poisson part (1 / photons per unit of intensity), ``floor``
    the Gaussian read-noise variance; pure Gaussian noise has ``gain == 0``.
    """

    gain: float
    floor: float

    def rms(self, intensity) -> float:
        """Expected noise RMS over an image of mean ``intensity`` (host float)."""
        # over the observed samples: NaN marks missing data
        mean = float(to_numpy(array_namespace(intensity).nanmean(intensity))) \
            if hasattr(intensity, "mean") else intensity
        return float(np.sqrt(max(self.gain * max(mean, 0.0) + self.floor, 0.0)))


MIN_DETAILS = 8  # second differences needed for a noise estimate


def noise_model(image, *, bins: int = 16) -> NoiseModel:
    """Fit ``variance = gain * intensity + floor`` to the data (Poisson–Gaussian noise).

    A second difference ``(1, -2, 1) / √6`` along every axis over disjoint
    3×…×3 blocks has the noise's variance and none of a locally linear
    signal's.  Details are binned by the block mean; each bin's
    variance is estimated robustly (MAD) and a non-negative straight line is
    fitted, after Foi et al. [1]_.

    References
    ----------
    .. [1] A. Foi, M. Trimeche, V. Katkovnik and K. Egiazarian, "Practical
       Poissonian-Gaussian noise modeling and fitting for single-image raw
       data", IEEE TIP 17(10), 2008.
    """
    y = to_numpy(image).astype(np.float64, copy=False)
    if all(n < 3 for n in y.shape):
        raise ValueError(f"data of shape {y.shape} are too small to estimate their noise level "
                         "(no axis has 3 samples); pass noise_sigma (CLI: --noise-sigma)")
    detail, mean = y, y
    for axis in range(y.ndim):
        n = y.shape[axis] // 3 * 3
        if n < 3:
            continue
        a, b, c = (np.take(detail, np.arange(i, n, 3), axis=axis) for i in range(3))
        detail = (a - 2 * b + c) / np.sqrt(6)  # blind to constant and linear trends
        mean = sum(np.take(mean, np.arange(i, n, 3), axis=axis) for i in range(3)) / 3
    if _interpolated(detail, y):
        warnings.warn("most of the image's second differences are exactly 0 on a lattice, "
                      "as in a linearly interpolated (upsampled, bilinearly demosaicked) "
                      "image: the noise level is estimated from the others, which "
                      "underestimates it; pass noise_sigma, or restore raw mosaics with "
                      "super_resolve(..., bayer=...)", UserWarning, stacklevel=4)
        detail = np.where(_exact_zeros(detail, y), np.nan, detail)
    detail, mean = detail.ravel(), mean.ravel()
    observed = ~np.isnan(detail)  # blocks that hold a missing (NaN) sample say nothing
    detail, mean = detail[observed], mean[observed]
    if detail.size == 0:
        raise ValueError("too few observed samples to estimate the noise (every 3x3 block "
                         "holds a NaN); pass noise_sigma (CLI: --noise-sigma)")
    if detail.size < MIN_DETAILS:  # a median of fewer says little (one of them: 0)
        raise ValueError(f"data of shape {y.shape} are too small to estimate their noise level "
                         f"({detail.size} disjoint blocks of 3 samples a side, at least "
                         f"{MIN_DETAILS} needed); pass noise_sigma (CLI: --noise-sigma)")
    bins = max(1, min(bins, detail.size // 64))  # at least 64 details per bin
    edges = np.unique(np.quantile(mean, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, mean, side="right") - 1, 0, len(edges) - 2)
    centres, variances, counts = [], [], []
    for b in range(len(edges) - 1):
        d = detail[which == b]
        if d.size < 16:
            continue
        centres.append(mean[which == b].mean())
        variances.append((1.4826 * np.median(np.abs(d - np.median(d)))) ** 2)
        counts.append(d.size)
    centres, variances, counts = map(np.asarray, (centres, variances, counts))
    if centres.size < 2 or np.ptp(centres) <= 0:
        overall = (1.4826 * np.median(np.abs(detail - np.median(detail)))) ** 2
        return NoiseModel(0.0, float(overall))
    design = np.stack([centres, np.ones_like(centres)], axis=1) * np.sqrt(counts)[:, None]
    import scipy.optimize

    fit, _ = scipy.optimize.nnls(design, variances * np.sqrt(counts))
    return NoiseModel(float(fit[0]), float(fit[1]))


def _exact_zeros(detail, y):
    """The details that are 0 to round-off of the image's largest value."""
    return np.abs(detail) <= 1e-9 * np.nanmax(np.abs(y))


def _interpolated(detail, y) -> bool:
    """Whether many details (over 30 %) vanish on a lattice, as a linear
    interpolation between every other sample makes them: their share of zeros
    then differs between the blocks at even and odd places (a bilinear
    demosaic's channels: by 1.0), where flat regions (a noise-free phantom)
    or quantised noise (an 8-bit photo, a JPEG) leave zeros anywhere (by
    0.17 at most)."""
    zero = _exact_zeros(detail, y)
    if zero.mean() <= 0.3:
        return False
    shares = [zero[tuple(slice(p, None, 2) for p in phase)].mean()
              for phase in itertools.product((0, 1), repeat=zero.ndim)]
    return max(shares) - min(shares) > 0.5


@dataclass
class Info:
    """What a solver chose and did, returned with ``return_info=True``.

    Attributes
    ----------
    method : str
        Function name of the solver.
    parameters : dict
        The parameters used, including those chosen automatically
        (``noise_sigma``, ``weight``, ``boundary``, ...).
    iterations : int
        Iterations run (0 for closed-form solvers).
    stopped_by : str
        ``"iterations"``, ``"discrepancy"``, ``"relative change"``,
        ``"time limit"``, ``"callback"`` or ``"closed form"``.
    history : list of float
        Per iteration, the residual norm ``‖Ax − y‖ / √N`` (or the solver's
        objective, as its docstring says).
    seconds : float
        Wall-clock time of the solve.
    """

    method: str
    parameters: dict = field(default_factory=dict)
    iterations: int = 0
    stopped_by: str = "closed form"
    history: list = field(default_factory=list)
    seconds: float = 0.0


class Stopping:
    """Decides, after each iteration, whether to stop.

    Parameters
    ----------
    iterations : int or "auto"
        A fixed count, or ``"auto"``: stop by the discrepancy principle when
        ``target`` is given (residual RMS ≤ ``target``; also when the residual
        grows 5% above its best, a sign of divergence), else when the
        relative change of the estimate falls below ``tol``; never more than
        ``max_iterations``.
    max_iterations : int
        Cap for ``"auto"``.
    tol : float
        Relative-change threshold for ``"auto"``.
    target : float, optional
        Residual RMS at which to stop (``τ σ`` for the discrepancy principle;
        with ``settle_tol`` also when the residual settles above it: a target
        the data cannot reach).
    time_limit : float, optional
        Seconds after which to stop whatever the rule.
    min_iterations : int
        ``"auto"`` never stops before this many iterations (a solver started
        from a flat estimate barely moves at first).
    settle_tol : float, optional
        Without ``target``: also stop when the residual RMS has settled, its
        change over the last ``settle_window`` iterations below
        ``settle_tol`` of it per iteration.
    settle_window : int
        Iterations over which the residual's change is measured.
    """

    def __init__(self, iterations, *, max_iterations: int = 500, tol: float = 1e-3,
                 target: float | None = None, time_limit: float | None = None,
                 min_iterations: int = 10, settle_tol: float | None = None,
                 settle_window: int = 10):
        if iterations == "auto":
            self.count, self.auto = int(max_iterations), True
        elif isinstance(iterations, (int, np.integer)) and not isinstance(iterations, bool) \
                and iterations >= 0:
            self.count, self.auto = int(iterations), False
        else:
            raise ValueError(f"iterations must be a non-negative int or 'auto', got {iterations!r}")
        if time_limit is not None and not time_limit > 0:
            raise ValueError(f"time_limit must be > 0 seconds, got {time_limit!r}")
        self.tol, self.target, self.time_limit = tol, target, time_limit
        self.min_iterations = min_iterations
        self.settle_tol, self.settle_window = settle_tol, settle_window
        self.residuals = collections.deque(maxlen=settle_window + 1)
        self.iteration = 0
        self.best = float("inf")  # lowest residual so far, to see divergence
        self.start = time.perf_counter()
        self.reason = "iterations"

    def __iter__(self):
        return iter(range(1, self.count + 1))

    def warn_if_short(self, name: str, stacklevel: int = 3) -> None:
        """Warn when the discrepancy rule ran to its cap without meeting its
        target: unnoticed otherwise, and the last iterations may fit noise."""
        if self.auto and self.target is not None and self.reason == "iterations":
            warnings.warn(
                f"{name}: the residual stayed above the noise level for all {self.count} "
                "iterations, so the discrepancy stop never fired and the last iterations may "
                "have fitted noise. Either the data do not fit the model (a wrong PSF, "
                "background or boundary; values the constraint cannot reach) or the noise is "
                "weaker than its estimate (interpolated, filtered or averaged data): give "
                "iterations= or noise_sigma=, or use method='total_variation'",
                RuntimeWarning, stacklevel=stacklevel)

    def done(self, *, change: float | None = None, residual: float | None = None) -> bool:
        """True when the solver should stop after this iteration (sets ``reason``)."""
        self.iteration += 1
        if residual is not None:
            self.residuals.append(residual)
        if self.time_limit is not None and time.perf_counter() - self.start > self.time_limit:
            self.reason = "time limit"
            return True
        if not self.auto or self.iteration < self.min_iterations:
            return False
        if self.target is not None and residual is not None:
            if residual <= max(self.target, 1e-30):  # all-zero data fit to round-off
                self.reason = "discrepancy"
                return True
            # a residual that grows again means the iteration diverges
            self.best = min(self.best, residual)
            if residual > 1.05 * self.best:
                self.reason = "divergence"
                return True
            # one that settles above the target will never reach it
            if self._settled(self.settle_tol):
                self.reason = "residual settled"
                return True
            return False
        if change is not None and change < self.tol:
            self.reason = "relative change"
            return True
        if self._settled(self.settle_tol):
            self.reason = "residual settled"
            return True
        return False

    def _settled(self, tol) -> bool:
        """The residual changed by less than ``tol`` of itself per iteration over
        the last ``settle_window`` iterations."""
        if tol is None or len(self.residuals) <= self.settle_window:
            return False
        oldest, latest = self.residuals[0], self.residuals[-1]
        return abs(latest - oldest) <= tol * self.settle_window * latest

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start


def relative_change(new, old, center: float = 0.0) -> float:
    """‖new − old‖ / ‖new − center‖ as a float (0 when both vanish); by
    blocks, so the difference never exists as a whole array.

    Solvers pass the data's mean as ``center``: the change is then relative to
    the estimate's variation, not to its level, so that a constant added to
    the data (a camera's offset, a sky) does not stop them early (total
    variation stopped after 16 iterations instead of 103, 4.8 dB lower, on a
    photo in [0, 1] with 100 added).
    """
    def piece(a, b):
        difference = a - b
        centred = a - center if center else a
        return vdot(difference, difference), vdot(centred, centred)

    def block(a, b):
        return tuple(map(sum, zip(*by_pieces(piece, a, b))))

    sums = blockwise(block, new, old)
    diff, norm = (sum(column) ** 0.5 for column in zip(*sums))
    return diff / norm if norm > 0 else 0.0


def rms(x) -> float:
    """Root mean square of an array, as a float."""
    return (sum(blockwise(lambda a: vdot(a, a), x)) / max(math.prod(x.shape), 1)) ** 0.5


def rms_of_difference(a, b) -> float:
    """``rms(a - b)`` by blocks: the difference never exists as a whole array."""
    def piece(x, y):
        difference = x - y
        return vdot(difference, difference)

    def block(x, y):
        return sum(by_pieces(piece, x, y))

    return (sum(blockwise(block, a, b)) / max(math.prod(a.shape), 1)) ** 0.5
