"""Spectroscopy: separating close doublets in a gamma-ray-like spectrum.

A 2048-channel spectrum of 20 doublets (separations 0.5, 0.75, 1, 1.5 and 2
times the response's FWHM of 9.4 channels; area ratios 1:1 and 3:1; 2000 and
10000 counts) with Poisson noise, 4 seeds, on two continua: flat at 20
counts a channel (its level given to every method), and falling from 70 to
12 counts (exponential), either given or estimated by
``deconvkit.spectra.snip_background`` (half-window 2 FWHM, smoothed over
FWHM / 2).  Each method's output goes through the same search,
``deconvkit.spectra.lines_in``: local maxima, each holding the counts of its
basin (down to the lowest channels between it and its neighbours, at most
one FWHM from it), merged into a neighbour smallest first while their basin
holds fewer than 200 counts (about 15 sigma of the flat continuum's noise
over one FWHM).  A line counts as found when a line's centroid lies within a
quarter FWHM of it (each matched once); other lines are false.  Printed per
method: lines found (of 40), doublets with both lines found (of 20), false
lines, the RMS position error, the median error of the found lines' areas,
and the method's seconds per spectrum (the search left out).

Without deconvolution: the data less the continuum, the same correlated with
the response (the matched filter), and scipy's wavelet peak finder
(``find_peaks_cwt`` at its defaults, widths 1-8 channels; positions only).
With: ``richardson_lucy`` and ``gold`` (the ratio method that ROOT's
``TSpectrum::Deconvolution`` implements), with their automatic stop and with
1000 iterations, and Gold boosted as Morháč does (10 repetitions of 200
iterations, boost 1.2).  Last, ``deconvkit.spectra.find_lines`` with only
the response given: SNIP continuum, lines kept at 5 sigma of the noise of the
counts under them (no fixed area).

    python benchmarks/spectroscopy.py      # about 10 s
"""

from __future__ import annotations

import time

import numpy as np
from scipy.signal import find_peaks_cwt

import deconvkit as dk

CHANNELS, SIGMA, FLAT, MIN_AREA = 2048, 4.0, 20.0, 200.0
FWHM = 2 * np.sqrt(2 * np.log(2)) * SIGMA
SLOPE = 58.0 * np.exp(-np.arange(CHANNELS) / 800.0) + 12.0  # 70 down to 12 counts


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


def score(found, lines):
    """(lines found, doublets resolved, false lines, position errors, area errors)
    for a :class:`deconvkit.spectra.Lines` or an array of positions."""
    positions = getattr(found, "positions", found)
    taken, matched = set(), []
    for channel, _ in lines:
        free = [(abs(p - channel), k) for k, p in enumerate(positions) if k not in taken]
        distance, k = min(free, default=(np.inf, None))
        matched.append(k if distance <= FWHM / 4 else None)
        if matched[-1] is not None:
            taken.add(k)
    hits = [(line, k) for line, k in zip(lines, matched) if k is not None]
    offsets = [positions[k] - channel for (channel, _), k in hits]
    areas = getattr(found, "areas", None)
    area_errors = [] if areas is None else [abs(areas[k] - a) / a for (_, a), k in hits]
    resolved = sum(a is not None and b is not None for a, b in zip(matched[::2], matched[1::2]))
    return len(hits), resolved, len(positions) - len(taken), offsets, area_errors


def methods(kernel):
    """name -> (counts, continuum) -> (output, kind): positions (``"peaks"``), or a
    spectrum to search, whose lines' areas count if ``"deconvolved"``."""
    def deconvolved(solver, **options):
        return lambda counts, continuum: (
            solver(counts, kernel, background=continuum, **options), "deconvolved")

    def cwt(counts, continuum):
        return np.asarray(find_peaks_cwt(counts - continuum, np.arange(1, 9)), float), "peaks"

    def matched(counts, continuum):
        return dk.blur(counts - continuum, kernel[::-1], boundary="reflect"), "data"

    return {
        "data less the continuum": lambda counts, continuum: (counts - continuum, "data"),
        "matched filter": matched,
        "scipy find_peaks_cwt": cwt,
        "richardson_lucy (auto)": deconvolved(dk.richardson_lucy),
        "richardson_lucy, 1000": deconvolved(dk.richardson_lucy, iterations=1000),
        "gold (auto)": deconvolved(dk.gold),
        "gold, 1000": deconvolved(dk.gold, iterations=1000),
        "gold boosted 10 x 200, 1.2": deconvolved(dk.gold, iterations=200, repetitions=10,
                                                  boost=1.2),
    }


def table(title, spectra, continuum_of, lines, kernel, names=None):
    print(f"\n{title}\n")
    print(f"{'method':30s} {'lines':>6s} {'doublets':>9s} {'false':>6s} {'pos rms':>8s} "
          f"{'area err':>9s} {'s/spec':>7s}")
    for name, method in methods(kernel).items():
        if names is not None and name not in names:
            continue
        totals, positions, area_errors, seconds = np.zeros(3), [], [], 0.0
        for counts in spectra:
            continuum = continuum_of(counts)
            start = time.perf_counter()
            output, kind = method(counts, continuum)
            seconds += time.perf_counter() - start
            found = output if kind == "peaks" else dk.spectra.lines_in(
                output, min_area=MIN_AREA, reach=FWHM)
            hits, resolved, false, offsets, errors = score(found, lines)
            totals += (hits, resolved, false)
            positions += offsets
            area_errors += errors if kind == "deconvolved" else []
        hits, resolved, false = totals / len(spectra)
        area = f"{100 * np.median(area_errors):8.1f}%" if area_errors else f"{'-':>9s}"
        print(f"{name:30s} {hits:6.1f} {resolved:9.1f} {false:6.1f} "
              f"{np.sqrt(np.mean(np.square(positions))):8.2f} {area} "
              f"{seconds / len(spectra):7.2f}")


def main():
    kernel = dk.psf.gaussian(SIGMA, ndim=1)
    pairs = doublets()
    lines = [line for pair in pairs for line in pair]
    blurred = dk.blur(spectrum(lines), kernel, boundary="zero")
    seeds = range(4)
    print(f"{len(lines)} lines in {len(pairs)} doublets, response FWHM {FWHM:.1f} channels, "
          f"{len(seeds)} seeds")
    flat = [np.random.default_rng(s).poisson(blurred + FLAT).astype(float) for s in seeds]
    table(f"Flat continuum, {FLAT:g} counts a channel (given)", flat, lambda c: FLAT, lines,
          kernel)
    sloped = [np.random.default_rng(s).poisson(blurred + SLOPE).astype(float) for s in seeds]
    width, smooth = int(round(2 * FWHM)), int(round(FWHM / 2))

    def snip(counts):
        return dk.spectra.snip_background(counts, width, smooth=smooth)

    errors = [snip(c) - SLOPE for c in sloped]
    print(f"\nSNIP continuum (half-window {width}, smooth {smooth}) less the true one: "
          f"mean {np.mean(errors):+.2f}, RMS {np.sqrt(np.mean(np.square(errors))):.2f} counts "
          f"a channel")
    deconvolutions = [n for n in methods(kernel) if n.startswith(("gold", "richardson"))]
    table("Falling continuum (70 to 12 counts), given", sloped, lambda c: SLOPE, lines, kernel,
          deconvolutions)
    table("Falling continuum, estimated by SNIP", sloped, snip, lines, kernel, deconvolutions)
    print("\ndeconvkit.spectra.find_lines, nothing given but the response (SNIP continuum, "
          "lines kept at 5 sigma of the counts under them):\n")
    print(f"{'spectra / method':44s} {'lines':>6s} {'doublets':>9s} {'false':>6s} "
          f"{'pos rms':>8s} {'area err':>9s}")
    for label, spectra in (("flat", flat), ("falling", sloped)):
        for name, options in (("gold boosted 10 x 200, 1.2",
                               dict(iterations=200, repetitions=10, boost=1.2)),
                              ("richardson_lucy, 1000",
                               dict(method="richardson_lucy", iterations=1000))):
            scores = [score(dk.spectra.find_lines(counts, kernel, **options), lines)
                      for counts in spectra]
            hits, resolved, false = np.mean([row[:3] for row in scores], axis=0)
            offsets = [o for row in scores for o in row[3]]
            errors = [e for row in scores for e in row[4]]
            print(f"{label + ', ' + name:44s} {hits:6.1f} {resolved:9.1f} {false:6.1f} "
                  f"{np.sqrt(np.mean(np.square(offsets))):8.2f} "
                  f"{100 * np.median(errors):8.1f}%")


if __name__ == "__main__":
    main()
