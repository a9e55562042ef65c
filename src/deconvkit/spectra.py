"""Line spectra (gamma-ray, X-ray, Raman, mass): continuum, deconvolution, line search.

A spectrometer records lines blurred by its response, on a continuum
(Compton scattering, fluorescence, a dark level).  What a spectroscopist wants
is the lines: their positions and areas, even where two are closer than the
response's width.  ROOT's ``TSpectrum`` (Morháč) does this in C++; here:

- :func:`snip_background`: the continuum under the peaks by SNIP clipping
  (Ryan et al. 1988; Morháč et al. 1997), with :func:`snip_widths` from the
  response;
- :func:`deconvkit.gold` (boosted, as ``TSpectrum::Deconvolution``) or
  :func:`deconvkit.richardson_lucy` on the spectrum, the continuum modelled;
- :func:`lines_in`: the lines of the deconvolved spectrum, each one's
  position (the centroid of its peak, in fractional channels) and area;
- :func:`find_lines`: the three in one call, keeping the lines that stand
  5 sigma above the noise of the counts under them.

``benchmarks/spectroscopy.py`` measures them on doublets.

Examples
--------
>>> import numpy as np
>>> import deconvkit as dk
>>> response = dk.psf.gaussian(4.0, ndim=1)
>>> truth = np.zeros(400)
>>> truth[[150, 156, 300]] = [3000.0, 3000.0, 5000.0]   # a doublet 0.64 FWHM apart
>>> continuum = 50.0 * np.exp(-np.arange(400) / 200.0) + 10.0
>>> expected = dk.blur(truth, response, boundary="zero") + continuum
>>> spectrum = np.random.default_rng(0).poisson(expected).astype(float)
>>> continuum = dk.spectra.snip_background(spectrum, 19, smooth=4)   # 2 FWHM, FWHM / 2
>>> restored = dk.gold(spectrum, response, background=continuum, iterations=200,
...                    repetitions=10, boost=1.2)
>>> lines = dk.spectra.lines_in(restored, min_area=1000, reach=9)
>>> np.round(lines.positions).astype(int).tolist()
[150, 156, 300]
>>> float(round(lines.areas[:2].sum(), -2)), float(round(lines.areas[2], -2))  # true: 6000, 5000
(6000.0, 5200.0)

or in one call, the continuum and the detection threshold found from the data:

>>> found = dk.spectra.find_lines(spectrum, response, iterations=200, repetitions=10,
...                               boost=1.2)
>>> np.round(found.positions).astype(int).tolist()
[150, 156, 300]
"""

from __future__ import annotations

import dataclasses
import heapq

import numpy as np
import scipy.ndimage
import scipy.signal

from ._array_api import to_numpy
from ._validate import check_array, check_choice

__all__ = ["Lines", "find_lines", "lines_in", "snip_background", "snip_widths"]


def snip_background(spectrum, width: int, *, smooth: int = 0, axis: int = -1,
                    transform: str | None = "auto", window: str = "decreasing") -> np.ndarray:
    r"""The continuum under a spectrum's peaks, by SNIP clipping.

    Parameters
    ----------
    spectrum : array
        One spectrum, several along the other axes, or an image or volume
        (``axis=None``: a background under spots and blobs).
    width : int
        The widest clipping half-window, in channels: about the width of the
        widest peak at its base (1-2 FWHM).  Narrower follows the continuum
        closer but eats into wide peaks.
    smooth : int
        Half-width of a moving average that each sample is compared through
        instead of itself (Morháč's smoothing, ROOT's ``smoothWindow`` of
        ``2 smooth + 1``): without it the clipping follows the noise's lower
        envelope, about 1 sigma below the continuum (measured: -6 to -12
        counts a channel on a 10-60 count continuum; with ``smooth`` 4 and
        ``width`` 19, -2 to -3).
    axis : int, tuple of int or None
        The spectral axis; several (or None: all), clipped in turn at each
        half-window (successive filtering, Morháč et al. [2]_).
    transform : {"auto", "lls", None}
        ``"lls"``: clip ``log(log(sqrt(y + 1) + 1) + 1)`` (Morháč et al.),
        which compresses strong peaks so that small ones next to them are
        clipped alike, and suits counts; ``"auto"``: for counts (non-negative
        whole numbers), the data as they are otherwise (the transform has a
        scale, a count's: a spectrum in physical units of 1e-17 came out as a
        continuum of 0); ``None``: the data as they are.
    window : {"decreasing", "increasing"}
        The order of the half-windows: from ``width`` down to 1 (Ryan et
        al.'s, and ROOT's tutorials'; a smoother continuum) or up.

    Returns
    -------
    background : ndarray
        Same shape as ``spectrum``, float64; never above it without
        ``smooth`` (with it, never above its moving average).

    Notes
    -----
    For each half-window :math:`p`, every sample at least :math:`p` from the
    ends is replaced by :math:`\min(\bar v_i, (v_{i-p} + v_{i+p})/2)` [1]_ [2]_,
    :math:`\bar v` the moving average (or :math:`v` itself): peaks narrower
    than :math:`2p` are clipped away, the continuum stays.

    References
    ----------
    .. [1] C. G. Ryan, E. Clayton, W. L. Griffin, S. H. Sie and D. R. Cousens,
       "SNIP, a statistics-sensitive background treatment for the
       quantitative analysis of PIXE spectra in geoscience applications",
       Nucl. Instrum. Methods B 34, 1988.
    .. [2] M. Morháč, J. Kliman, V. Matoušek, M. Veselský and I. Turzo,
       "Background elimination methods for multidimensional coincidence
       gamma-ray spectra", Nucl. Instrum. Methods A 401, 1997.
    """
    values = np.array(to_numpy(check_array(spectrum, "spectrum")), np.float64)
    axes = _axes(axis, values.ndim)
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"width must be an int >= 1 (channels), got {width!r}")
    shortest = min(values.shape[a] for a in axes)
    if 2 * width >= shortest:
        raise ValueError(f"width={width} needs axes longer than {2 * width} samples; the "
                         f"shortest clipped here has {shortest} (give a smaller width)")
    if isinstance(smooth, bool) or not isinstance(smooth, (int, np.integer)) or smooth < 0:
        raise ValueError(f"smooth must be an int >= 0 (channels), got {smooth!r}")
    check_choice(transform, "transform", ("auto", "lls", None))
    check_choice(window, "window", ("decreasing", "increasing"))
    if transform == "auto":
        transform = "lls" if _counts(values) else None
    if transform == "lls":
        if values.min() < 0:
            raise ValueError("transform='lls' needs a non-negative spectrum (counts); pass "
                             "transform=None")
        values = np.log(np.log(np.sqrt(values + 1.0) + 1.0) + 1.0)
    widths = range(width, 0, -1) if window == "decreasing" else range(1, width + 1)
    for p in widths:
        for a in axes:  # N-D: each axis in turn (successive clipping)
            lead = (slice(None),) * a
            middle = 0.5 * (values[lead + (slice(None, -2 * p),)]
                            + values[lead + (slice(2 * p, None),)])
            local = values if not smooth else scipy.ndimage.uniform_filter1d(
                values, 2 * smooth + 1, axis=a, mode="nearest")
            inner = lead + (slice(p, -p),)
            np.minimum(local[inner], middle, out=values[inner])
    if transform == "lls":
        values = (np.exp(np.exp(values) - 1.0) - 1.0) ** 2 - 1.0
    return values


def _axes(axis, ndim: int) -> list[int]:
    """``axis`` (an int, a tuple, or None for all) as a list of non-negative axes."""
    axes = range(ndim) if axis is None else (axis,) if isinstance(axis, (int, np.integer)) \
        else axis
    try:
        out = sorted({int(a) % ndim for a in axes if -ndim <= int(a) < ndim})
        valid = len(out) == len(tuple(axes))
    except TypeError:
        valid = False
    if not valid:
        raise ValueError(f"axis={axis!r} must be an axis of the {ndim}-D spectrum, a tuple "
                         "of them, or None (all)")
    return out


@dataclasses.dataclass(frozen=True)
class Lines:
    """Lines found in a spectrum by :func:`lines_in` or :func:`find_lines`.

    Attributes
    ----------
    positions : ndarray
        Each line's centroid over its peak, in channels (fractional), in
        increasing order.
    areas : ndarray
        The counts of each line: the deconvolved spectrum summed over its
        peak (down to the lowest channels between it and its neighbours).
    restored : ndarray
        The spectrum searched (float64).
    background : ndarray, float or None
        The continuum :func:`find_lines` modelled (None from :func:`lines_in`).
    """

    positions: np.ndarray
    areas: np.ndarray
    restored: np.ndarray
    background: np.ndarray | float | None = None


def lines_in(restored, *, min_area: float = 0.0, reach: float | None = None, variance=None,
             significance: float = 5.0) -> Lines:
    """The lines of a deconvolved (or any non-negative) spectrum: its peaks,
    each holding the counts of its basin.

    Parameters
    ----------
    restored : (N,) array
        A 1-D spectrum, e.g. the output of :func:`deconvkit.gold`.
    min_area : float
        Peaks whose basin holds fewer counts are merged into a neighbour,
        smallest shortfall first (noise wiggles, round-off in flat zeros), so
        that the lines left hold at least this much each.
    reach : float, optional
        A basin extends at most this far from its peak, in channels (about
        the response's FWHM; default: to the lowest channels between the
        peak and its neighbours, or the spectrum's ends).
    variance : (N,) array, optional
        The noise variance of the measured spectrum per channel: a line must
        then also hold ``significance`` times the noise of the counts within
        ``reach`` of its peak (its footprint), ``sqrt(sum(variance))``.
    significance : float
        In units of that noise (5 by default, as for a detection limit).

    Returns
    -------
    Lines
    """
    values = np.asarray(to_numpy(check_array(restored, "restored")), np.float64)
    if values.ndim != 1:
        raise ValueError(f"restored must be a 1-D spectrum, got shape {values.shape}")
    if not np.isfinite(min_area) or min_area < 0:
        raise ValueError(f"min_area must be a finite number >= 0, got {min_area!r}")
    if reach is not None and not reach >= 0:
        raise ValueError(f"reach must be >= 0 channels or None, got {reach!r}")
    if not (isinstance(significance, (int, float, np.integer, np.floating)) and significance >= 0):
        raise ValueError(f"significance must be a number >= 0 (noise levels; 5 is usual), "
                         f"got {significance!r}")
    if variance is not None:
        variance = np.asarray(to_numpy(check_array(variance, "variance")), np.float64)
        if variance.shape != values.shape or variance.min() < 0:
            raise ValueError(f"variance must be non-negative and shaped like restored "
                             f"{values.shape}, got shape {variance.shape}")
    found = _merge_weak(values, list(scipy.signal.find_peaks(values)[0]), reach,
                        float(min_area), variance, significance)
    basins = _basins(values, found, reach)
    channels = np.arange(values.size, dtype=np.float64)
    areas = np.array([values[a:b].sum() for a, b in basins])
    positions = np.array([np.dot(channels[a:b], values[a:b]) / max(values[a:b].sum(), 1e-300)
                          for a, b in basins])
    return Lines(positions, areas, values)


def _merge_weak(values, found, reach, min_area, variance, significance) -> list:
    """The peaks left after merging, weakest first, every one whose basin holds
    less than it needs into its neighbours.

    Merging a peak changes only its two neighbours' basins (the valley between
    them is the lower of the two it had), so each merge updates two entries of
    a heap: O(P log P) for P peaks (a noisy 16384-channel spectrum has ~5000).
    """
    n = values.size
    if not found:
        return []
    total = np.concatenate([[0.0], np.cumsum(values)])
    noise_total = None if variance is None else np.concatenate([[0.0], np.cumsum(variance)])
    r = None if reach is None else int(np.ceil(reach))
    peaks = list(found)
    starts = [0, *_valleys(values, peaks)]
    stops = starts[1:] + [n]
    before = list(range(-1, len(peaks) - 1))
    after = list(range(1, len(peaks) + 1))
    after[-1] = -1
    alive = [True] * len(peaks)

    def shortfall(k):
        p, a, b = peaks[k], starts[k], stops[k]
        if r is not None:
            a, b = max(a, p - r), min(b, p + r + 1)
        needed = min_area
        if noise_total is not None:  # over the line's footprint in the data
            fa, fb = (p, p + 1) if r is None else (max(p - r, 0), min(p + r + 1, n))
            needed = max(needed, significance * float(np.sqrt(noise_total[fb] - noise_total[fa])))
        return (total[b] - total[a]) - needed

    scores = [shortfall(k) for k in range(len(peaks))]
    heap = [(score, k) for k, score in enumerate(scores)]
    heapq.heapify(heap)
    while heap:
        score, k = heapq.heappop(heap)
        if not alive[k] or score != scores[k]:
            continue  # merged, or scored again since
        if score >= 0:
            break
        alive[k] = False
        left, right = before[k], after[k]
        if left >= 0 and right >= 0:
            # the lowest channel between the two neighbours: one of k's two valleys
            # (its right one only if it lies before the right neighbour)
            low, high = starts[k], stops[k]
            valley = low if high == peaks[right] or values[low] <= values[high] else high
            stops[left] = starts[right] = valley
        elif left >= 0:
            stops[left] = stops[k]
        elif right >= 0:
            starts[right] = starts[k]
        for j in (left, right):
            if j >= 0:
                scores[j] = shortfall(j)
                heapq.heappush(heap, (scores[j], j))
        if left >= 0:
            after[left] = right
        if right >= 0:
            before[right] = left
    return [p for p, keep in zip(peaks, alive) if keep]


def _valleys(values, found):
    """The lowest channel between each two neighbouring peaks (the first if tied;
    the right peak itself when they are adjacent)."""
    return [p + 1 + int(np.argmin(values[p + 1:q])) if q > p + 1 else q
            for p, q in zip(found[:-1], found[1:])]


def find_lines(spectrum, response, *, background="snip", method: str = "gold",
               significance: float = 5.0, min_area: float = 0.0, **options) -> Lines:
    """Lines in a spectrum in one call: continuum, deconvolution, line search.

    Parameters
    ----------
    spectrum : (N,) array
        Counts (or intensities) per channel.
    response : (K,) array
        The spectrometer's response to one line, centred; normalised to sum 1
        (areas stay in the spectrum's units).
    background : "snip", float, array or None
        The continuum: :func:`snip_background` over twice the response's
        FWHM, smoothed over half of it (default), a level, an array of the
        spectrum's shape, or None.
    method : {"gold", "richardson_lucy"}
        Gold's ratio method (least squares, ROOT's ``TSpectrum``), or
        Richardson–Lucy (the Poisson likelihood, for counts); the continuum
        is modelled (``background=``) by both.
    significance : float
        A line must hold this many times the noise of the spectrum's counts
        within one FWHM of its peak: Poisson (the counts themselves) when the
        spectrum holds non-negative integers, else the variance fitted to the
        data by :func:`deconvkit.restoration.noise_model`.
    min_area : float
        And at least this many counts.
    **options
        Passed to the method: ``iterations``, ``repetitions`` and ``boost``
        (Gold's boosting), ``acceleration``, ...

    Returns
    -------
    Lines
        With ``background`` the continuum used.
    """
    from .restoration import gold, noise_model, richardson_lucy

    values = np.asarray(to_numpy(check_array(spectrum, "spectrum")), np.float64)
    if values.ndim != 1:
        raise ValueError(f"spectrum must be 1-D, got shape {values.shape}; pass one spectrum "
                         "at a time")
    kernel = np.asarray(to_numpy(check_array(response, "response")), np.float64)
    if kernel.ndim != 1 or kernel.sum() <= 0:
        raise ValueError(f"response must be 1-D with a positive sum, got shape {kernel.shape}")
    check_choice(method, "method", ("gold", "richardson_lucy"))
    kernel = kernel / kernel.sum()
    fwhm = _fwhm(kernel)
    if isinstance(background, str):
        check_choice(background, "background", ("snip",))
        background, _ = continuum_under(values, kernel)
    elif background is None:
        background = 0.0
    solver = gold if method == "gold" else richardson_lucy
    restored = solver(values, kernel, background=background, **options)
    if _counts(values):
        variance = np.maximum(values, 1.0)  # Poisson
    else:
        fit = noise_model(values)
        variance = np.maximum(fit.gain * np.clip(values, 0.0, None) + fit.floor, 0.0)
    found = lines_in(restored, min_area=min_area, reach=fwhm, variance=variance,
                     significance=significance)
    return dataclasses.replace(found, background=background)


def _counts(values) -> bool:
    """Whether ``values`` look like counts: non-negative whole numbers."""
    return bool(values.min() >= 0 and np.array_equal(values, np.round(values)))


def continuum_under(spectrum, response) -> tuple[np.ndarray, int]:
    """The SNIP continuum under lines of ``response``'s width (:func:`snip_widths`),
    floored at 0 (a background of counts is never negative, where SNIP follows
    a baseline-subtracted spectrum's noise below 0), and the half-window used."""
    width, smooth = snip_widths(response, spectrum.shape[-1])
    return np.clip(snip_background(spectrum, width, smooth=smooth), 0.0, None), width


def _fwhm(response) -> int:
    """The response's full width at half maximum, in samples (those above half the peak)."""
    return int(np.count_nonzero(response >= 0.5 * response.max()))


def snip_widths(response, length: int) -> tuple[int, int]:
    """``(width, smooth)`` for :func:`snip_background` under lines of this
    ``response`` in a spectrum of ``length`` channels: a half-window of twice
    the response's FWHM (at most half the spectrum), smoothed over half of it
    (what :func:`find_lines` and ``deconvkit deconvolve --background snip``
    use)."""
    fwhm = _fwhm(np.asarray(to_numpy(response), np.float64).ravel())
    return min(2 * fwhm, (length - 1) // 2), max(fwhm // 2, 1)


def _basins(values, found, reach):
    """``[(start, stop), ...]`` of each peak's basin: from the lowest channel
    between it and its left neighbour up to the one before its right
    neighbour's, within ``reach`` of the peak."""
    if not found:
        return []
    edges = [0, *_valleys(values, found), values.size]
    if reach is None:
        return list(zip(edges[:-1], edges[1:]))
    r = int(np.ceil(reach))
    return [(max(a, p - r), min(b, p + r + 1)) for a, b, p in zip(edges[:-1], edges[1:], found)]
