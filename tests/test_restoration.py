"""Restoration: properties first (flux, non-negativity, shapes), then quality on known truth."""

import numpy as np
import pytest

from conftest import BACKENDS, to_backend
from deconvkit import (
    BOUNDARIES,
    Convolution,
    blur,
    cell_phantom,
    deconvolve,
    metrics,
    psf,
    richardson_lucy,
    simulate,
    wiener,
)


def blobs(shape, seed=0, count=None):
    """Random non-negative boxes on a dim background (a test object with edges)."""
    rng = np.random.default_rng(seed)
    x = np.full(shape, 0.1)
    for _ in range(count or 4 * len(shape)):
        lo = [rng.integers(0, n - n // 4) for n in shape]
        hi = [a + rng.integers(2, max(3, n // 4)) for a, n in zip(lo, shape)]
        x[tuple(slice(a, b) for a, b in zip(lo, hi))] += rng.uniform(0.3, 1.0)
    return x


CASES = {
    1: (blobs((256,)), psf.gaussian(3.0, ndim=1)),
    2: (blobs((96, 96)), psf.gaussian(2.0)),
    3: (cell_phantom((32, 64, 64), seed=1), psf.gaussian((1.0, 1.5, 1.5))),
}
# gain over the blurred input that each method must reach on every case (dB)
MARGINS = {"richardson_lucy": 1.5, "wiener": 0.5}


def _valid_crop(scene, kernel):
    return scene[tuple(slice(k - 1 - k // 2, n - k // 2) for n, k in zip(scene.shape,
                                                                         kernel.shape))]


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("method", ["richardson_lucy", "wiener"])
def test_recovers_known_object(ndim, method):
    scene, kernel = CASES[ndim]
    observed = simulate(scene, kernel, noise="gaussian", sigma=0.005, boundary="valid", seed=1)
    truth = _valid_crop(scene, kernel)
    restored = deconvolve(observed, kernel, method=method)
    assert restored.shape == observed.shape
    drange = float(truth.max() - truth.min())
    before = metrics.psnr(truth, observed, data_range=drange)
    after = metrics.psnr(truth, restored, data_range=drange)
    assert after > before + MARGINS[method], (before, after)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_rl_non_negative_and_shape(boundary):
    scene, kernel = CASES[2]
    observed = simulate(scene, kernel, noise="poisson", photons=100, seed=2)
    restored = richardson_lucy(observed, kernel, iterations=10, boundary=boundary)
    assert restored.shape == observed.shape
    assert restored.min() >= 0


def test_rl_conserves_flux_periodic():
    scene, kernel = CASES[2]
    observed = blur(scene, kernel, boundary="periodic")
    restored = richardson_lucy(observed, kernel, iterations=25, boundary="periodic")
    assert restored.sum() == pytest.approx(observed.sum(), rel=1e-10)


def test_rl_valid_conserves_flux_of_the_model():
    # non-circulant RL: the predicted data A x keep the data's flux
    scene, kernel = CASES[2]
    observed = blur(scene, kernel, boundary="valid")
    op = Convolution(kernel, boundary="valid")
    seen = []
    richardson_lucy(observed, kernel, iterations=5, boundary="valid",
                    callback=lambda i, x: seen.append(i))
    assert seen == [1, 2, 3, 4, 5]
    assert op.input_shape(observed.shape) == scene.shape


def test_rl_valid_removes_edge_ringing():
    from skimage import data

    scene, kernel = data.camera()[100:260, 100:260] / 255.0, psf.gaussian(2.0)
    observed = simulate(scene, kernel, sigma=0.003, boundary="valid", seed=3)
    truth = _valid_crop(scene, kernel)
    valid = metrics.border_psnr(truth, richardson_lucy(observed, kernel, boundary="valid"),
                                width=8, data_range=1)
    periodic = metrics.border_psnr(truth, richardson_lucy(observed, kernel, boundary="periodic"),
                                   width=8, data_range=1)
    assert valid.border > periodic.border + 3
    assert valid.border > valid.interior - 2


def test_rl_background_and_callback_stop():
    scene, kernel = CASES[1]
    observed = blur(scene, kernel, boundary="periodic") + 0.5
    aware = richardson_lucy(observed, kernel, background=0.5, iterations=50,
                            boundary="periodic")
    # the background is modelled, not restored: the estimate's flux is the object's
    assert aware.sum() == pytest.approx(observed.sum() - 0.5 * observed.size, rel=1e-3)
    calls = []
    richardson_lucy(observed, kernel, iterations=50,
                    callback=lambda i, x: calls.append(i) or i == 3)
    assert calls == [1, 2, 3]


def test_wiener_without_noise_is_the_inverse():
    rng = np.random.default_rng(0)
    x = rng.random(64)
    kernel = np.array([0.2, 0.6, 0.2])  # OTF >= 0.2: invertible
    y = blur(x, kernel, boundary="periodic")
    np.testing.assert_allclose(wiener(y, kernel, balance=0, boundary="periodic"), x, atol=1e-10)


def test_wiener_auto_balance_tracks_noise():
    scene, kernel = CASES[2]
    low = simulate(scene, kernel, sigma=0.003, seed=1)
    high = simulate(scene, kernel, sigma=0.05, seed=1)
    _, lam_low = wiener(low, kernel, return_balance=True)
    _, lam_high = wiener(high, kernel, return_balance=True)
    assert lam_high > 20 * lam_low


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", ["richardson_lucy", "wiener"])
def test_backends_agree_and_keep_type(backend, method):
    scene, kernel = CASES[2]
    observed = simulate(scene, kernel, sigma=0.01, seed=4).astype(np.float32)
    reference = deconvolve(observed, kernel, method=method)
    result = deconvolve(to_backend(observed, backend), kernel, method=method)
    assert type(result) is type(to_backend(observed, backend))
    assert str(result.dtype).endswith("float32")
    np.testing.assert_allclose(np.asarray(result), reference, atol=2e-4 * reference.max())


def test_channel_axis_restores_each_channel():
    scene, kernel = CASES[2]
    colour = np.stack([scene, 0.5 * scene, scene[::-1]], axis=-1)
    observed = simulate(colour, kernel[..., None], noise="none")
    restored = deconvolve(observed, kernel, channel_axis=-1, iterations=10)
    assert restored.shape == colour.shape
    single = deconvolve(observed[..., 2], kernel, iterations=10)
    np.testing.assert_allclose(restored[..., 2], single)
    first = deconvolve(np.moveaxis(observed, -1, 0), kernel, channel_axis=0, iterations=10)
    np.testing.assert_allclose(np.moveaxis(first, 0, -1), restored)


@pytest.mark.parametrize("dtype,expected", [(np.uint8, np.float32), (np.uint16, np.float32),
                                            (np.int32, np.float64), (np.float16, np.float32),
                                            (np.float64, np.float64)])
def test_integer_and_half_inputs_are_promoted(dtype, expected):
    image = (blobs((32, 32)) * 100).astype(dtype)
    assert deconvolve(image, psf.gaussian(1.0), iterations=3).dtype == expected


@pytest.mark.parametrize("method", ["richardson_lucy", "wiener"])
def test_inputs_are_never_modified(method):
    scene, kernel = CASES[2]
    observed = simulate(scene, kernel, seed=0)
    kept_image, kept_psf = observed.copy(), kernel.copy()
    deconvolve(observed, kernel, method=method)
    np.testing.assert_array_equal(observed, kept_image)
    np.testing.assert_array_equal(kernel, kept_psf)


def test_output_is_not_clipped():
    kernel = np.array([0.2, 0.6, 0.2])
    y = blur(np.r_[np.zeros(10), 5.0, np.zeros(10)], kernel, boundary="periodic")
    assert wiener(y, kernel, balance=0, boundary="periodic").max() == pytest.approx(5.0)
