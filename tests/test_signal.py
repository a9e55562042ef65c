import numpy as np
import pytest
import scipy.signal

from deconvkit import signal


def spikes(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    x[rng.choice(n - 20, 12, replace=False)] = rng.uniform(-1, 1, 12)
    return x


SEISMOMETER = np.exp(-np.arange(40) / 6.0) * np.sin(np.arange(40) / 3.0)  # a ringing response


@pytest.mark.parametrize("method", ["regularized", "water_level"])
def test_removes_a_causal_response(method):
    rng = np.random.default_rng(1)
    x = spikes()
    y = np.convolve(x, SEISMOMETER)[: x.size] + 0.002 * rng.standard_normal(x.size)
    restored = signal.deconvolve(y, SEISMOMETER, method=method)
    assert restored.shape == y.shape
    # the recorded trace vs the restored one, both against the true input
    assert np.corrcoef(restored, x)[0, 1] > 0.8
    assert np.corrcoef(y, x)[0, 1] < 0.5


def test_scipy_long_division_diverges_where_deconvkit_does_not():
    rng = np.random.default_rng(2)
    x = spikes()
    h = np.array([0.3, 1.0, 0.5])  # not minimum-phase: the recursion has a root at -2.7
    y = np.convolve(x, h) + 1e-3 * rng.standard_normal(x.size + 2)
    quotient, _ = scipy.signal.deconvolve(y, h)
    assert not np.all(np.isfinite(quotient)) or np.abs(quotient).max() > 1e10
    restored = signal.regularized(y, h)[: x.size]
    assert np.abs(restored - x).max() < 0.1


def test_centred_origin_and_gain_are_kept():
    x = spikes()
    h = np.array([0.5, 2.0, 0.5])  # gain 3, centred
    y = np.convolve(x, h, mode="same")
    restored = signal.regularized(y, h, origin="center", weight=1e-9)
    np.testing.assert_allclose(restored, x, atol=1e-5)


def test_water_level_floor_and_lowpass():
    x = spikes()
    y = np.convolve(x, SEISMOMETER)[: x.size]
    sharp = signal.water_level(y, SEISMOMETER, level=1e-6)
    # noise-free: the floor barely acts (the end lacks the response's truncated tail)
    np.testing.assert_allclose(sharp[:-40], x[:-40], atol=1e-4)
    smooth = signal.water_level(y, SEISMOMETER, level=1e-6, lowpass=0.5, sample_rate=1.0)
    assert np.abs(np.diff(smooth)).max() < np.abs(np.diff(sharp)).max()


@pytest.mark.parametrize("method", ["regularized", "water_level"])
def test_traces_along_leading_axes_each_on_their_own(method):
    # three components of one recording, each with its own noise: the batch call
    # equals one call per trace, so each trace's automatic weight is its own
    rng = np.random.default_rng(3)
    inputs = np.stack([spikes(seed=s) for s in range(3)])
    recorded = np.stack([np.convolve(x, SEISMOMETER)[: x.size] for x in inputs])
    recorded += np.array([[0.001], [0.01], [0.03]]) * rng.standard_normal(recorded.shape)
    batch = signal.deconvolve(recorded[:, None], SEISMOMETER, method=method)
    assert batch.shape == (3, 1, 400)
    for k in range(3):
        np.testing.assert_array_equal(batch[k, 0], signal.deconvolve(recorded[k], SEISMOMETER,
                                                                     method=method))
    if method == "regularized":  # the noisier trace is smoothed more than a shared weight would
        shared = signal.regularized(recorded, SEISMOMETER, noise_sigma=0.001)
        assert np.abs(np.diff(batch[2, 0])).mean() < np.abs(np.diff(shared[2])).mean()


def test_errors():
    with pytest.raises(ValueError, match="response 1-D, got a 1-D trace and a 2-D response"):
        signal.regularized(np.ones(10), np.ones((3, 1)))
    with pytest.raises(ValueError, match="longer than the trace"):
        signal.water_level(np.ones(4), np.ones(9))
    with pytest.raises(ValueError, match="all zeros"):
        signal.water_level(np.ones(10), np.zeros(3))
    with pytest.raises(ValueError, match="method='fourier'"):
        signal.deconvolve(np.ones(10), np.ones(3), method="fourier")
    with pytest.raises(ValueError, match="level must be > 0"):
        signal.water_level(np.ones(10), np.ones(3), level=0)


# A 1 Hz geophone (damping 0.707) recording ground velocity: SEED-style poles and zeros in rad/s
GEOPHONE = signal.PolesZeros(zeros=[0, 0], poles=[-4.443 + 4.443j, -4.443 - 4.443j], gain=2.0)


def test_poles_zeros_response_is_the_analog_transfer_function():
    f = np.array([0.05, 0.5, 1.0, 5.0, 50.0])
    s = 2j * np.pi * f
    expected = 2.0 * s**2 / ((s - GEOPHONE.poles[0]) * (s - GEOPHONE.poles[1]))
    np.testing.assert_allclose(GEOPHONE.frequency_response(f), expected, rtol=1e-12)
    # its sampled impulse response has that spectrum, to 1 % of the gain below 0.6 Nyquist
    h = GEOPHONE.impulse_response(100.0, 512)
    grid = np.fft.rfftfreq(1024, 1 / 100.0)
    band = grid < 30
    np.testing.assert_allclose(np.fft.rfft(h, 1024)[band], GEOPHONE.frequency_response(grid)[band],
                               atol=0.02)


def _ground_motion(n, rate, seed):
    """Two wave trains of 2-8 Hz, inside the geophone's flat band."""
    t = np.arange(n) / rate
    rng = np.random.default_rng(seed)
    motion = np.zeros(n)
    for centre in rng.uniform(0.25, 0.75, 2) * t[-1]:
        motion += np.exp(-((t - centre) / 0.3) ** 2) * np.sin(2 * np.pi * rng.uniform(2, 8) * t)
    return motion


def _geophone_recording(rate=100.0, n=2000):
    """Ground motion and its recording through GEOPHONE (1 % noise): through the
    analog response on a long grid, then cut, so nothing wraps around."""
    motion = _ground_motion(n, rate, seed=4)
    grid = 4 * n
    response = GEOPHONE.frequency_response(np.fft.rfftfreq(grid, 1 / rate))
    recorded = np.fft.irfft(np.fft.rfft(motion, grid) * response, grid)[:n]
    return motion, recorded + 0.01 * np.random.default_rng(5).standard_normal(n)


@pytest.mark.parametrize("method", ["regularized", "water_level"])
def test_poles_zeros_response_removed_at_the_traces_sample_rate(method):
    rate, n = 100.0, 2000
    motion, recorded = _geophone_recording(rate, n)
    restored = signal.deconvolve(recorded, GEOPHONE, method=method, sample_rate=rate)
    assert restored.shape == (n,)
    error = np.sqrt(np.mean((restored - motion) ** 2)) / np.sqrt(np.mean(motion**2))
    raw = np.sqrt(np.mean((recorded - motion) ** 2)) / np.sqrt(np.mean(motion**2))
    assert error < 0.15 < 0.5 < raw  # the gain of 2 is divided out, the phase undone


def test_poles_zeros_errors():
    with pytest.raises(ValueError, match="needs the trace's sample_rate"):
        signal.water_level(np.ones(64), GEOPHONE)
    with pytest.raises(ValueError, match="sample_rate must be a positive number"):
        signal.regularized(np.ones(64), GEOPHONE, sample_rate=-5)
    with pytest.raises(ValueError, match="right half-plane"):
        signal.PolesZeros(zeros=[0], poles=[4.0])
    with pytest.raises(ValueError, match="conjugate pairs"):
        signal.PolesZeros(zeros=[], poles=[-1 + 1j])
    with pytest.raises(ValueError, match="infinite at a frequency of the trace"):
        signal.water_level(np.ones(64), signal.PolesZeros(poles=[0.0]), sample_rate=10.0)
    with pytest.raises(ValueError, match="gain must be a finite non-zero"):
        signal.PolesZeros(poles=[-1.0], gain=0)


@pytest.mark.parametrize("method", ["regularized", "water_level"])
def test_an_offset_and_drift_through_a_dc_blocking_response_are_removed_first(method):
    rate, n = 100.0, 2000
    motion, recorded = _geophone_recording(rate, n)
    recorded += 0.5 + np.linspace(0, 1, n)  # a digitiser's offset and a drift

    def error(restored):
        return np.sqrt(np.mean((restored - motion) ** 2) / np.mean(motion**2))

    raw = signal.deconvolve(recorded, GEOPHONE, method=method, sample_rate=rate,
                            detrend=None, taper=0)
    assert error(raw) > 10  # measured 48 (water level) and 2800 (regularized)
    assert error(signal.deconvolve(recorded, GEOPHONE, method=method, sample_rate=rate)) < 0.15
    # a response that passes DC keeps the trace as it is by default
    h = np.array([0.5, 1.0, 0.5])
    np.testing.assert_array_equal(
        signal.deconvolve(recorded, h, method=method),
        signal.deconvolve(recorded, h, method=method, detrend=None, taper=0))
    with pytest.raises(ValueError, match="taper must be a fraction from 0 to 0.5"):
        signal.deconvolve(recorded, h, method=method, taper=0.7)
    with pytest.raises(ValueError, match="detrend"):
        signal.deconvolve(recorded, h, method=method, detrend="quadratic")
