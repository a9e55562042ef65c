"""Blind deconvolution: kernels recovered on synthetic data, contracts, errors."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.signal import correlate

from deconvkit import blind_deconvolve, dead_leaves, psf, simulate
from deconvkit.blind import clean_kernel, periodic_extension
from deconvkit.operators import Convolution


def aligned_ncc(a, b):
    """Normalised cross-correlation of two kernels, maximised over shifts."""
    c = correlate(a, b, mode="full")
    return c.max() / (np.linalg.norm(a) * np.linalg.norm(b))


def crop_of_scene(scene, kernel, size):
    """Blur a crop of a larger scene: the observed borders see outside content."""
    return Convolution(kernel, boundary="valid")(scene[: size + kernel.shape[0] - 1,
                                                       : size + kernel.shape[1] - 1])


@pytest.fixture(scope="module")
def scene():
    return dead_leaves((220, 220), seed=11)


@pytest.mark.parametrize("kernel", [psf.motion(11, 30, shape=(13, 13)), psf.disk(3.0)],
                         ids=["motion", "defocus"])
def test_map_recovers_kernel(scene, kernel):
    rng = np.random.default_rng(0)
    blurred = crop_of_scene(scene, kernel, 192) + 0.005 * rng.standard_normal((192, 192))
    restored, estimate = blind_deconvolve(blurred, 17)
    assert estimate.shape == (17, 17)
    assert estimate.min() >= 0 and np.isclose(estimate.sum(), 1.0)
    assert aligned_ncc(estimate, kernel) >= 0.9
    assert restored.shape == blurred.shape


def test_tv_prior_also_recovers_motion(scene):
    kernel = psf.motion(9, 0, shape=(11, 11))
    blurred = crop_of_scene(scene, kernel, 160)
    _, estimate = blind_deconvolve(blurred, 15, prior="tv")
    assert aligned_ncc(estimate, kernel) >= 0.9


def piecewise_constant_1d(rng, n):
    return np.repeat(rng.random(n // 5), rng.integers(5, 30, n // 5))[:n]


@pytest.mark.parametrize("sigma", [1.5, 3.0])
def test_parametric_gaussian_width_1d(sigma):
    rng = np.random.default_rng(1)
    signal = piecewise_constant_1d(rng, 840)
    kernel = psf.gaussian([sigma], shape=(41,))
    blurred = Convolution(kernel, boundary="valid")(signal) + 0.01 * rng.standard_normal(800)
    _, estimate, info = blind_deconvolve(blurred, 41, method="parametric", return_info=True)
    assert info.parameters["sigma"][0] == pytest.approx(sigma, rel=0.1)
    assert estimate.shape == (41,)


def balls_3d(shape, rng, count=40):
    grid = np.indices(shape)
    volume = np.zeros(shape)
    for _ in range(count):
        centre, radius = rng.uniform(0, 1, 3) * shape, rng.uniform(3, 8)
        volume[sum((g - c) ** 2 for g, c in zip(grid, centre)) < radius**2] = rng.random()
    return volume


def test_parametric_gaussian_width_3d():
    rng = np.random.default_rng(0)
    truth_sigma = (2.5, 1.5, 1.5)
    volume = balls_3d((28, 48, 48), rng)
    blurred = simulate(volume, psf.gaussian(truth_sigma), noise="gaussian", sigma=0.01, seed=0)
    _, estimate, info = blind_deconvolve(blurred, (13, 9, 9), method="parametric",
                                         psf_options={"lateral_isotropic": True},
                                         iterations=20, return_info=True)
    np.testing.assert_allclose(info.parameters["sigma"], truth_sigma, rtol=0.1)
    assert estimate.shape == (13, 9, 9)


def test_blind_richardson_lucy_poisson_2d():
    kernel = psf.gaussian(2.0, shape=(15, 15))
    truth = 50 * dead_leaves((128, 128), seed=3) + 5
    counts = simulate(truth, kernel, noise="poisson", photons=200, seed=0)
    _, free = blind_deconvolve(counts, 15, method="richardson_lucy", iterations=15)
    _, symmetric = blind_deconvolve(counts, 15, method="richardson_lucy",
                                    psf_model="symmetric", iterations=15)
    assert aligned_ncc(free, kernel) >= 0.9
    np.testing.assert_allclose(symmetric, symmetric[::-1, ::-1], atol=1e-12)
    for estimate in (free, symmetric):
        assert estimate.min() >= 0 and np.isclose(estimate.sum(), 1.0)


@pytest.mark.parametrize("method", ["richardson_lucy", "map", "parametric"])
def test_blind_estimates_do_not_depend_on_units(method):
    """Intensities in units of 1e-17: blind RL's absolute floors (1e-12) had
    flattened the estimate to 0 (an error: "psf sums to 0")."""
    kernel = psf.gaussian(1.5, shape=(9, 9))
    observed = simulate(dead_leaves((64, 64), seed=1) + 0.1, kernel, sigma=0.01, seed=0)
    restored, estimate = blind_deconvolve(observed, 9, method=method, iterations=5)
    tiny, estimate_tiny = blind_deconvolve(observed * 1e-17, 9, method=method, iterations=5)
    np.testing.assert_allclose(estimate_tiny, estimate, atol=1e-6 * estimate.max())
    np.testing.assert_allclose(tiny / 1e-17, restored, atol=1e-6 * np.ptp(restored))


def test_blind_rl_gaussian_model_returns_a_gaussian():
    kernel = psf.gaussian(1.5, shape=(11, 11))
    counts = simulate(40 * dead_leaves((96, 96), seed=5) + 2, kernel, noise="poisson", seed=1)
    _, estimate = blind_deconvolve(counts, 11, method="richardson_lucy", psf_model="gaussian",
                                   iterations=8)
    misfit = minimize(lambda s: np.abs(psf.gaussian(s, shape=(11, 11)) - estimate).sum(),
                      [1.0, 1.0], method="Nelder-Mead", options=dict(xatol=1e-8, fatol=1e-12))
    assert misfit.fun < 1e-5  # a member of the family, not a free-form kernel


def test_colour_torch_and_input_untouched(scene):
    torch = pytest.importorskip("torch")
    kernel = psf.motion(7, 45, shape=(9, 9))
    gray = crop_of_scene(scene, kernel, 96)
    colour = np.stack([gray, 0.5 * gray, 0.25 + 0.5 * gray], axis=-1)
    original = colour.copy()
    restored, estimate = blind_deconvolve(torch.from_numpy(colour), 11, channel_axis=-1)
    assert isinstance(restored, torch.Tensor) and isinstance(estimate, torch.Tensor)
    assert restored.shape == colour.shape
    np.testing.assert_array_equal(colour, original)


def test_callback_sees_every_scale(scene):
    seen = []
    blurred = crop_of_scene(scene, psf.disk(2.0), 96)
    _, _, info = blind_deconvolve(blurred, 13, callback=lambda i, n, k: seen.append((i, n)),
                                  return_info=True)
    assert [i for i, _ in seen] == list(range(1, info.scales + 1))
    assert all(n == info.scales for _, n in seen) and info.scales >= 3


def test_periodic_extension_wraps_smoothly():
    y = np.arange(12.0).reshape(3, 4)
    out = periodic_extension(y, (2, 3))
    assert out.shape == (5, 7)
    np.testing.assert_array_equal(out[:3, :4], y)
    # across the wrap every step is at most the largest step inside
    for axis in (0, 1):
        jumps = np.abs(np.diff(np.concatenate([out, np.take(out, [0], axis)], axis), axis=axis))
        assert jumps.max() <= np.abs(np.diff(y, axis=axis)).max() + 1e-12


def test_clean_kernel_drops_specks_and_centres():
    k = np.zeros((9, 9))
    k[2, 2:6] = 1.0  # the kernel, off centre
    k[8, 0] = 0.2  # an isolated speck: 5 % of the mass
    k[0, 8] = 0.01  # under the threshold
    out = clean_kernel(k)
    assert out[8, 0] == 0 and out[0, 8] == 0
    assert np.isclose(out.sum(), 1.0)
    rows, cols = np.nonzero(out)
    assert rows.tolist() == [4] * 4 and cols.mean() == pytest.approx(4, abs=0.5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(psf_shape=2), "psf_shape must be an int >= 3"),
    (dict(psf_shape=(9, 9, 9)), "psf_shape must be"),
    (dict(psf_shape=99), "larger than the image"),
    (dict(psf_shape=9, method="magic"), "method"),
    (dict(psf_shape=9, method="map", psf_model="gaussian"), "psf_model='gaussian'"),
    (dict(psf_shape=9, prior="l2"), "prior"),
    (dict(psf_shape=9, iterations=0), "iterations must be a positive int"),
    (dict(psf_shape=9, method="parametric", psf_model="widefield"), "3-D"),
    # options of another method, once silently unused
    (dict(psf_shape=9, method="parametric", prior="tv"), "applies to method='map' only"),
    (dict(psf_shape=9, method="richardson_lucy", prior="tv"), "applies to method='map'"),
    (dict(psf_shape=9, method="richardson_lucy", weight=0.01), "leave weight out"),
])
def test_errors_name_the_argument(kwargs, message):
    image = np.random.default_rng(0).random((64, 64))
    with pytest.raises(ValueError, match=message):
        blind_deconvolve(image, **kwargs)


@pytest.mark.parametrize("method", ["map", "richardson_lucy", "parametric"])
@pytest.mark.parametrize("value", [0.0, 0.3])
def test_constant_image_is_refused_clearly(method, value):
    # a numpy warning from deep inside the MAP solver's denoiser before
    with pytest.raises(ValueError, match="image is constant"):
        blind_deconvolve(np.full((48, 48), value), 7, method=method)


def test_richardson_lucy_refuses_negative_data():
    image = np.random.default_rng(0).standard_normal((32, 32))
    with pytest.raises(ValueError, match="non-negative"):
        blind_deconvolve(image, 5, method="richardson_lucy")


def test_parametric_widefield_numerical_aperture():
    rng = np.random.default_rng(0)
    optics = dict(wavelength=0.52, n_immersion=1.33, pixel_size=0.1, z_step=0.2)
    kernel = psf.widefield((11, 15, 15), na=1.0, **optics)
    blurred = simulate(balls_3d((24, 48, 48), rng), kernel, noise="gaussian", sigma=0.005,
                       seed=0)
    _, estimate, info = blind_deconvolve(blurred, (11, 15, 15), method="parametric",
                                         psf_model="widefield", psf_options=optics,
                                         iterations=10, return_info=True)
    assert info.parameters["na"] == pytest.approx(1.0, rel=0.1)
    np.testing.assert_allclose(estimate, psf.widefield((11, 15, 15), na=info.parameters["na"],
                                                       **optics), atol=1e-12)
