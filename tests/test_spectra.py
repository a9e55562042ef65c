"""Line spectra: SNIP continuum, line search, Gold with a continuum."""

import numpy as np
import pytest

import deconvkit as dk
from deconvkit.spectra import Lines, lines_in, snip_background


def _lines(n=600, positions=(100.0, 250.5, 400.25), areas=(3000.0, 1000.0, 5000.0)):
    x = np.zeros(n)
    for channel, area in zip(positions, areas):
        i = int(channel)
        x[i] += area * (1 - (channel - i))
        x[i + 1] += area * (channel - i)
    return x


def test_snip_keeps_a_straight_continuum_and_clips_peaks():
    channels = np.arange(600.0)
    continuum = 80.0 - 0.1 * channels
    np.testing.assert_allclose(snip_background(continuum, 20, transform=None), continuum)
    peaks = dk.blur(_lines(), dk.psf.gaussian(3.0, ndim=1), boundary="zero")
    spectrum = continuum + peaks
    for transform in (None, "lls"):
        background = snip_background(spectrum, 15, transform=transform)
        assert np.all(background <= spectrum + 1e-9)
        # under the peaks (up to 665 counts high) within 2 counts of the continuum
        assert np.abs(background - continuum).max() < 2.0, transform
    assert spectrum.max() > 600


def test_snip_smoothing_lifts_the_noise_bias():
    channels = np.arange(2000.0)
    continuum = 50.0 * np.exp(-channels / 800.0) + 10.0
    counts = np.random.default_rng(0).poisson(continuum).astype(float)
    inner = slice(100, -100)
    plain = (snip_background(counts, 20) - continuum)[inner].mean()
    smooth = (snip_background(counts, 20, smooth=4) - continuum)[inner].mean()
    # the clipping follows the noise's lower envelope (about 1 sigma, 4-8 counts here)
    assert plain < -3.0 and abs(smooth) < 0.5 * abs(plain)


def test_snip_runs_along_an_axis_and_checks_its_arguments():
    rng = np.random.default_rng(1)
    spectra = rng.poisson(30.0, size=(300, 3)).astype(float)
    original = spectra.copy()
    together = snip_background(spectra, 10, axis=0)
    for k in range(3):
        np.testing.assert_allclose(together[:, k], snip_background(spectra[:, k], 10))
    np.testing.assert_array_equal(spectra, original)  # the input is left alone
    with pytest.raises(ValueError, match="needs axes longer than 300 samples"):
        snip_background(spectra[:, 0], 150)
    with pytest.raises(ValueError, match="width must be"):
        snip_background(spectra[:, 0], 0)
    with pytest.raises(ValueError, match="smooth must be"):
        snip_background(spectra[:, 0], 5, smooth=-1)
    with pytest.raises(ValueError, match="non-negative spectrum"):
        snip_background(spectra[:, 0] - 100.0, 5, transform="lls")
    # signed data: "auto" clips them as they are
    signed = snip_background(spectra[:, 0] - 100.0, 5)
    np.testing.assert_allclose(signed, snip_background(spectra[:, 0] - 100.0, 5, transform=None))


def test_lines_in_gives_centroids_and_areas_and_merges_small_peaks():
    truth = _lines()
    noisy = truth + np.random.default_rng(2).uniform(0.0, 3.0, truth.size)  # wiggles
    found = lines_in(noisy, min_area=500.0, reach=3)
    assert isinstance(found, Lines)
    np.testing.assert_allclose(found.positions, [100.0, 250.5, 400.25], atol=0.05)
    np.testing.assert_allclose(found.areas, [3000.0, 1000.0, 5000.0], rtol=0.01)
    assert np.all(lines_in(noisy, min_area=50.0).areas >= 50.0)
    assert lines_in(np.zeros(50), min_area=1.0).positions.size == 0
    with pytest.raises(ValueError, match="1-D spectrum"):
        lines_in(np.zeros((4, 4)), min_area=1.0)
    with pytest.raises(ValueError, match="min_area"):
        lines_in(noisy, min_area=np.nan)
    with pytest.raises(ValueError, match="significance must be a number >= 0"):
        lines_in(noisy, significance=-1.0)  # taken as given before: no line was weak


def test_gold_takes_a_continuum_array():
    kernel = dk.psf.gaussian(4.0, ndim=1)
    channels = np.arange(600.0)
    continuum = 40.0 * np.exp(-channels / 300.0) + 5.0
    counts = np.random.default_rng(3).poisson(
        dk.blur(_lines(), kernel, boundary="zero") + continuum).astype(float)
    flat = dk.gold(counts, kernel, background=20.0, iterations=30)
    same = dk.gold(counts, kernel, background=np.full(600, 20.0), iterations=30)
    np.testing.assert_allclose(same, flat, rtol=1e-10)
    modelled = dk.gold(counts, kernel, background=continuum, iterations=300)
    found = lines_in(modelled, min_area=500.0, reach=9)
    np.testing.assert_allclose(found.positions, [100.0, 250.5, 400.25], atol=0.5)
    np.testing.assert_allclose(found.areas, [3000.0, 1000.0, 5000.0], rtol=0.1)
    with pytest.raises(ValueError, match="background has shape"):
        dk.gold(counts, kernel, background=np.ones(599))
    with pytest.raises(ValueError, match="negative samples"):
        dk.gold(counts, kernel, background=continuum - 30.0)


def test_find_lines_needs_only_the_response():
    """SNIP continuum, boosted Gold, lines kept at 5 sigma of the counts under them."""
    kernel = dk.psf.gaussian(4.0, ndim=1)  # FWHM 9.4 channels
    positions = [100.0, 120.0, 250.0, 259.4, 400.0, 700.0, 900.0]  # one doublet at 1 FWHM
    areas = [3000.0, 1500.0, 4000.0, 2000.0, 800.0, 10000.0, 2500.0]
    truth = _lines(1000, positions, areas)
    continuum = 60.0 * np.exp(-np.arange(1000) / 400.0) + 10.0
    hits, extra = 0, 0
    for seed in range(3):
        counts = np.random.default_rng(seed).poisson(
            dk.blur(truth, kernel, boundary="zero") + continuum).astype(float)
        found = dk.spectra.find_lines(counts, kernel, iterations=200, repetitions=10, boost=1.2)
        assert isinstance(found.background, np.ndarray) and found.restored.shape == (1000,)
        near = np.abs(found.positions[:, None] - np.array(positions)[None, :]) <= 2.5
        hits += int(near.any(axis=0).sum())
        extra += len(found.positions) - len(positions)
    # measured: every line found in all three spectra; 2 extra lines in all (one
    # spectrum split the doublet's second line and the 800-count line in two)
    assert hits == 3 * len(positions) and extra <= 3
    # intensities (not counts): the noise is fitted instead, and a stated level is modelled
    scaled = dk.spectra.find_lines(counts / 7.0, kernel, background=continuum / 7.0,
                                   iterations=200)
    assert np.abs(scaled.positions[:, None] - np.array(positions)[None, :]).min(axis=0).max() \
        <= 2.5
    with pytest.raises(ValueError, match="spectrum must be 1-D"):
        dk.spectra.find_lines(np.ones((4, 50)), kernel)
    with pytest.raises(ValueError, match="method"):
        dk.spectra.find_lines(counts, kernel, method="wiener")


def _lines_by_brute_force(values, min_area, reach, variance, significance):
    """lines_in's rule the slow way: recompute every basin after each merge."""
    import scipy.signal

    found = list(scipy.signal.find_peaks(values)[0])
    r = None if reach is None else int(np.ceil(reach))
    while found:
        valleys = [p + 1 + int(np.argmin(values[p + 1:q])) if q > p + 1 else q
                   for p, q in zip(found[:-1], found[1:])]
        edges = [0, *valleys, values.size]
        basins = [(a, b) if r is None else (max(a, p - r), min(b, p + r + 1))
                  for a, b, p in zip(edges[:-1], edges[1:], found)]
        areas = np.array([values[a:b].sum() for a, b in basins])
        needed = np.full(len(found), min_area)
        if variance is not None:
            feet = [(p, p + 1) if r is None else (max(p - r, 0), min(p + r + 1, values.size))
                    for p in found]
            needed = np.maximum(needed, significance * np.sqrt([variance[a:b].sum()
                                                                for a, b in feet]))
        weakest = int(np.argmin(areas - needed))
        if areas[weakest] >= needed[weakest]:
            break
        del found[weakest]
    if not found:
        return np.zeros(0)
    valleys = [p + 1 + int(np.argmin(values[p + 1:q])) if q > p + 1 else q
               for p, q in zip(found[:-1], found[1:])]
    edges = [0, *valleys, values.size]
    basins = [(a, b) if r is None else (max(a, p - r), min(b, p + r + 1))
              for a, b, p in zip(edges[:-1], edges[1:], found)]
    channels = np.arange(values.size)
    return np.array([np.dot(channels[a:b], values[a:b]) / values[a:b].sum() for a, b in basins])


def test_find_lines_on_a_baseline_subtracted_spectrum():
    """Noise around 0: SNIP follows it below 0, and that continuum was refused as a
    background with negative samples; it is floored at 0 now."""
    kernel = dk.psf.gaussian(3.0, ndim=1)
    truth = np.zeros(400)
    truth[[100, 250]] = [500.0, 300.0]
    spectrum = dk.blur(truth, kernel, boundary="zero") + \
        np.random.default_rng(0).normal(0, 2, 400)
    found = dk.spectra.find_lines(spectrum, kernel)
    np.testing.assert_allclose(found.positions, [100, 250], atol=0.5)
    np.testing.assert_allclose(found.areas, [500, 300], rtol=0.1)
    assert found.background.min() >= 0


def test_lines_in_merges_as_the_brute_force_rule_does():
    rng = np.random.default_rng(0)
    for _ in range(60):
        n = int(rng.integers(5, 300))
        values = rng.random(n) ** rng.uniform(1, 6) * rng.uniform(1, 100)
        values[rng.integers(0, n, 3)] = 0.0
        variance = rng.random(n) * 5 if rng.random() < 0.5 else None
        reach = None if rng.random() < 0.3 else float(rng.integers(0, 10))
        min_area = float(rng.uniform(0, 30))
        found = lines_in(values, min_area=min_area, reach=reach, variance=variance,
                         significance=2.0)
        expected = _lines_by_brute_force(values, min_area, reach, variance, 2.0)
        np.testing.assert_allclose(found.positions, expected, rtol=1e-12)


def test_snip_in_2d_gives_richardson_lucy_a_background_map():
    """An uneven background (illumination, haze) under blurred cells: SNIP over both
    axes estimates it, and RL models it (measured at 256²: 29.0-30.6 dB against
    16.4-16.8 with a level at the data's 1st percentile, 29.5-31.3 with the truth)."""
    obj = dk.cell_phantom((128, 128), seed=0)
    obj = obj / obj.max()
    yy, xx = np.mgrid[:128, :128] / 128
    background = 0.15 + 0.25 * np.exp(-((yy - 0.3) ** 2 + (xx - 0.7) ** 2) / 0.1) + 0.1 * xx
    kernel = dk.psf.airy(2.0)
    h = kernel.shape[0] // 2
    inner = (slice(h, -h), slice(h, -h))
    observed = np.random.default_rng(0).poisson(
        (dk.blur(obj, kernel, boundary="valid") + background[inner]) * 300) / 300
    estimate = snip_background(observed, 15, smooth=3, axis=None)
    # measured here: 0.041 RMS on a 0.15-0.45 background; RL 24.2 dB against 15.9
    assert np.sqrt(np.mean((estimate - background[inner]) ** 2)) < 0.06
    truth = obj[inner]
    mapped = dk.richardson_lucy(observed, kernel, background=estimate)
    level = dk.richardson_lucy(observed, kernel, background=float(np.percentile(observed, 1)))
    assert dk.metrics.psnr(truth, mapped, data_range=1.0) > \
        dk.metrics.psnr(truth, level, data_range=1.0) + 5.0
    with pytest.raises(ValueError, match="axis="):
        snip_background(observed, 5, axis=(0, 2))


def test_spectra_in_physical_units():
    """A flux of 1e-17 erg/s/cm^2/A: SNIP's log-log-sqrt transform, which has a
    count's scale, had made the continuum 0 and find_lines report 55 lines
    instead of 3; it is kept for counts (whole numbers) only."""
    kernel = dk.psf.gaussian(4.0, ndim=1)
    truth = _lines(1024, [200.0, 500.0, 800.0], [800.0, 800.0, 300.0])
    continuum = 50.0 + 20.0 * np.exp(-np.arange(1024) / 400.0)
    counts = np.random.default_rng(0).poisson(dk.blur(truth, kernel, boundary="zero")
                                              + continuum).astype(float)
    intensity = counts + 0.25  # not whole numbers: the same lines, at any scale
    reference = dk.spectra.find_lines(intensity, kernel)
    assert len(reference.positions) == 3
    for scale in (1e-17, 1e6 / 3):
        found = dk.spectra.find_lines(intensity * scale, kernel)
        np.testing.assert_allclose(found.positions, reference.positions, atol=1e-6)
        np.testing.assert_allclose(found.background / scale, reference.background, rtol=1e-6)
    assert snip_background(counts, 10).mean() > 40  # counts: the transform, as before
