"""Spectroscopy: separating close doublets in a gamma-ray-like spectrum.

A 2048-channel spectrum of 20 doublets (separations 0.5, 0.75, 1, 1.5 and 2
times the response's FWHM of 9.4 channels; area ratios 1:1 and 3:1; 2000 and
10000 counts) on a flat background of 20 counts a channel, with Poisson
noise, 4 seeds.  Each method's output goes through the same peak search:
local maxima, each holding the counts of its basin (down to the lowest
channels between it and its neighbours), merged into a neighbour smallest
first while their basin holds fewer than 200 counts (about 15 sigma of the
background's noise over one FWHM).  A line counts as found
when a peak lies within a quarter FWHM of it (each peak matched once); other
peaks are false.  Printed per method: lines found (of 40), doublets with both
lines found (of 20), false peaks, the RMS position error, the median error
of the found lines' areas (their peaks' basins), and the method's seconds per
spectrum (the peak search left out).

Without deconvolution: the background-subtracted data, the data correlated
with the response (the matched filter), and scipy's wavelet peak finder
(``find_peaks_cwt`` at its defaults, widths 1-8 channels; positions only).
With: ``richardson_lucy`` and ``gold`` (the ratio method that ROOT's
``TSpectrum::Deconvolution`` implements), with their automatic stop and with
1000 iterations, and Gold boosted as Morháč does (10 repetitions of 200
iterations, boost 1.2).  The background level is given to every method.

    python benchmarks/spectroscopy.py      # about 20 s
"""

from __future__ import annotations

import time

import numpy as np
from scipy.signal import find_peaks, find_peaks_cwt

import deconvkit as dk

CHANNELS, SIGMA, BACKGROUND, MIN_AREA = 2048, 4.0, 20.0, 200.0
FWHM = 2 * np.sqrt(2 * np.log(2)) * SIGMA


def doublets():
    """``[(first line, second line), ...]`` with lines as ``(channel, counts)``."""
    pairs, position = [], 100.0
    for separation in (0.5, 0.75, 1.0, 1.5, 2.0):
        for ratio in (1.0, 3.0):
            for area in (2000.0, 10000.0):
                pairs.append(((position, area), (position + separation * FWHM, area / ratio)))
                position += 90.0
    return pairs


def spectrum(lines):
    """Lines split linearly between the two channels around their position."""
    x = np.zeros(CHANNELS)
    for channel, area in lines:
        i = int(channel)
        x[i] += area * (1 - (channel - i))
        x[i + 1] += area * (channel - i)
    return x


def basin_areas(estimate, found):
    """Each peak's counts: the estimate summed between the lowest channels that
    separate it from its neighbours (at most one FWHM beyond the outer ones)."""
    reach = int(round(FWHM))
    valleys = [p + int(np.argmin(estimate[p:q + 1])) for p, q in zip(found[:-1], found[1:])]
    edges = [max(found[0] - reach, 0), *valleys, min(found[-1] + reach, CHANNELS - 1)]
    return np.array([estimate[a + (k > 0):b + 1].sum()
                     for k, (a, b) in enumerate(zip(edges[:-1], edges[1:]))])


def peaks(estimate):
    """Local maxima, merged into their neighbours smallest first while their basin
    holds fewer than MIN_AREA counts (noise wiggles, round-off in flat zeros)."""
    found = list(find_peaks(estimate)[0])
    while found:
        area = basin_areas(estimate, found)
        smallest = int(np.argmin(area))
        if area[smallest] >= MIN_AREA:
            break
        del found[smallest]
    return np.asarray(found, int)


def score(found, lines, estimate=None):
    """(lines found, doublets resolved, false peaks, position errors, area errors)."""
    taken, matched = set(), []
    for channel, _ in lines:
        free = [(abs(p - channel), k) for k, p in enumerate(found) if k not in taken]
        distance, k = min(free, default=(np.inf, None))
        matched.append(k if distance <= FWHM / 4 else None)
        if matched[-1] is not None:
            taken.add(k)
    hits = [(line, k) for line, k in zip(lines, matched) if k is not None]
    positions = [found[k] - channel for (channel, _), k in hits]
    area_errors = []
    if estimate is not None and len(found):
        measured = basin_areas(estimate, list(found))
        area_errors = [abs(measured[k] - area) / area for (_, area), k in hits]
    resolved = sum(a is not None and b is not None for a, b in zip(matched[::2], matched[1::2]))
    return len(hits), resolved, len(found) - len(taken), positions, area_errors


def methods(kernel):
    """name -> counts -> (output, kind): the peaks found (``"peaks"``), or a
    spectrum to search, whose peaks' areas count if ``"deconvolved"``."""
    def deconvolved(solver, **options):
        return lambda counts: (solver(counts, kernel, background=BACKGROUND, **options),
                               "deconvolved")

    def cwt(counts):
        return np.asarray(find_peaks_cwt(counts - BACKGROUND, np.arange(1, 9)), int), "peaks"

    return {
        "data (background subtracted)": lambda c: (c - BACKGROUND, "data"),
        "matched filter": lambda c: (dk.blur(c - BACKGROUND, kernel[::-1], boundary="reflect"),
                                     "data"),
        "scipy find_peaks_cwt": cwt,
        "richardson_lucy (auto)": deconvolved(dk.richardson_lucy),
        "richardson_lucy, 1000": deconvolved(dk.richardson_lucy, iterations=1000),
        "gold (auto)": deconvolved(dk.gold),
        "gold, 1000": deconvolved(dk.gold, iterations=1000),
        "gold boosted 10 x 200, 1.2": deconvolved(dk.gold, iterations=200, repetitions=10,
                                                  boost=1.2),
    }


def main():
    kernel = dk.psf.gaussian(SIGMA, ndim=1)
    pairs = doublets()
    lines = [line for pair in pairs for line in pair]
    expected = dk.blur(spectrum(lines), kernel, boundary="zero") + BACKGROUND
    seeds = range(4)
    print(f"{len(lines)} lines in {len(pairs)} doublets, response FWHM {FWHM:.1f} channels, "
          f"background {BACKGROUND:g} counts/channel, {len(seeds)} seeds")
    print(f"{'method':30s} {'lines':>6s} {'doublets':>9s} {'false':>6s} {'pos rms':>8s} "
          f"{'area err':>9s} {'s/spec':>7s}")
    spectra = [np.random.default_rng(seed).poisson(expected).astype(float) for seed in seeds]
    for name, method in methods(kernel).items():
        totals, positions, area_errors, seconds = np.zeros(3), [], [], 0.0
        for counts in spectra:
            start = time.perf_counter()
            output, kind = method(counts)
            seconds += time.perf_counter() - start
            found = output if kind == "peaks" else peaks(output)
            hits, resolved, false, offsets, errors = score(
                found, lines, output if kind == "deconvolved" else None)
            totals += (hits, resolved, false)
            positions += offsets
            area_errors += errors
        hits, resolved, false = totals / len(spectra)
        area = f"{100 * np.median(area_errors):8.1f}%" if area_errors else f"{'-':>9s}"
        print(f"{name:30s} {hits:6.1f} {resolved:9.1f} {false:6.1f} "
              f"{np.sqrt(np.mean(np.square(positions))):8.2f} {area} "
              f"{seconds / len(spectra):7.2f}")


if __name__ == "__main__":
    main()
