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
