"""Bad input gets a clear error that names the argument."""

import numpy as np
import pytest

from deconvkit import blur, cell_phantom, deconvolve, psf, simulate

IMAGE = np.ones((32, 32))
KERNEL = psf.gaussian(1.0)


@pytest.mark.parametrize("image,kernel,error,match", [
    (np.full((8, 8), np.nan), KERNEL[:3, :3], ValueError, "image (contains|is all) NaN"),
    (IMAGE, np.array([[np.inf, 1.0]]), ValueError, "psf contains Inf"),
    (IMAGE, np.zeros((3, 3)), ValueError, "psf sums to 0"),
    (IMAGE, -np.ones((3, 3)), ValueError, "psf sums to -9"),
    # entries that cancel: normalising to sum 1 would divide by round-off
    (IMAGE, KERNEL - KERNEL.mean(), ValueError, "must have a positive sum"),
    (IMAGE, np.ones((3, 3, 3)), ValueError, "psf has 3 dims but image has 2"),
    (np.ones((0, 5)), KERNEL, ValueError, "image is empty"),
    (IMAGE.astype(complex), KERNEL, TypeError, "image: complex"),
    (IMAGE, KERNEL.astype(complex), TypeError, "psf: complex"),
    (np.array(["a", "b"]), KERNEL, TypeError, "numeric"),
])
@pytest.mark.parametrize("method", ["richardson_lucy", "wiener"])
def test_bad_arrays(image, kernel, error, match, method):
    with pytest.raises(error, match=match):
        deconvolve(image, kernel, method=method)


@pytest.mark.parametrize("method,boundary", [("unsupervised_wiener", "auto"),
                                             ("gold", "valid"), ("wiener", "symmetric"),
                                             ("richardson_lucy", "symmetric"),
                                             ("total_variation", "periodic")])
def test_a_psf_larger_than_the_image_is_refused_where_it_cannot_be_modelled(method, boundary):
    """Only the "valid" boundary's solvers that estimate the object beyond the
    image take it; the others say which do."""
    with pytest.raises(ValueError, match="larger than the image .* or restore with "
                                         "boundary='valid' and one of richardson_lucy"):
        deconvolve(IMAGE, np.ones((40, 3)), method=method, boundary=boundary)


def test_bad_options():
    with pytest.raises(ValueError, match="method='magic'"):
        deconvolve(IMAGE, KERNEL, method="magic")
    with pytest.raises(ValueError, match="boundary='mirror'"):
        deconvolve(IMAGE, KERNEL, boundary="mirror")
    with pytest.raises(ValueError, match="iterations must be"):
        deconvolve(IMAGE, KERNEL, iterations=-1)
    with pytest.raises(ValueError, match="balance must be"):
        deconvolve(IMAGE, KERNEL, method="wiener", balance=-1.0)
    with pytest.raises(TypeError, match="does not take num_iter"):
        deconvolve(IMAGE, KERNEL, num_iter=3)
    with pytest.raises(ValueError, match="boundary='valid' is not one of"):
        deconvolve(IMAGE, KERNEL, method="unsupervised_wiener", boundary="valid")


@pytest.mark.parametrize("method,option", [
    ("total_variation", "weight"), ("total_variation", "quadratic_weight"),
    ("wavelet", "weight"), ("richardson_lucy_tv", "weight"), ("tikhonov", "weight"),
    ("wiener", "balance")])
@pytest.mark.parametrize("value", [-1.0, "big", True, None])
def test_bad_weights_name_the_option(method, option, value):
    with pytest.raises(ValueError, match=f"{option} must be a non-negative number or 'auto'"):
        deconvolve(IMAGE, KERNEL, method=method, **{option: value})


@pytest.mark.parametrize("method", ["total_variation", "richardson_lucy", "wiener", "landweber",
                                    "wavelet", "tikhonov"])
@pytest.mark.parametrize("value", [-0.1, float("nan"), "low"])
def test_bad_noise_sigma_is_refused(method, value):
    # a negative level was taken as given (and the discrepancy stop never met)
    with pytest.raises(ValueError, match="noise_sigma must be a finite number >= 0"):
        deconvolve(IMAGE, KERNEL, method=method, noise_sigma=value)


def test_signal_weight_is_checked_too():
    from deconvkit import signal
    with pytest.raises(ValueError, match="weight must be a non-negative number"):
        signal.regularized(np.ones(64), np.ones(5) / 5, weight=-2)


def test_channel_axis_errors():
    colour = np.ones((16, 16, 3))
    with pytest.raises(ValueError, match="channel_axis=3 is out of range"):
        deconvolve(colour, KERNEL[:5, :5], channel_axis=3)
    with pytest.raises(ValueError, match="image has 2 other dims but psf has 3"):
        deconvolve(colour, np.ones((3, 3, 3)), channel_axis=-1)
    with pytest.raises(TypeError, match="channel_axis must be an int"):
        deconvolve(colour, KERNEL[:5, :5], channel_axis="last")
    # colour last and no channel_axis: a 3x3 psf would fit (W, 3) and blur across the
    # channels without a word
    with pytest.raises(ValueError, match="like colour channels; pass channel_axis=-1"):
        deconvolve(colour, KERNEL[:3, :3])
    assert deconvolve(colour, KERNEL[:3, :3], channel_axis=-1).shape == colour.shape
    assert deconvolve(np.ones((3, 16, 16)), KERNEL[:3, :3]).shape == (3, 16, 16)  # a stack


def test_simulation_errors():
    with pytest.raises(ValueError, match="noise='speckle'"):
        simulate(IMAGE, KERNEL, noise="speckle")
    with pytest.raises(ValueError, match="photons must be > 0"):
        simulate(IMAGE, KERNEL, noise="poisson", photons=0)
    with pytest.raises(ValueError, match="psf has 3 dims"):
        blur(IMAGE, np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="shape must be a tuple of positive ints"):
        cell_phantom((32, -4))


def test_cell_phantom_is_n_d():
    # 2-D gives rings and spots on the dim background (it broke inside numpy before)
    image = cell_phantom((64, 64), seed=0)
    assert image.shape == (64, 64) and image.min() == pytest.approx(0.05)
    assert image.max() > 0.6 and (image > 0.5).mean() > 0.02
    assert cell_phantom(50, seed=0).shape == (50,)


@pytest.mark.parametrize("method", ["total_variation", "richardson_lucy", "wiener",
                                    "unsupervised_wiener", "wavelet", "landweber"])
def test_all_zero_data_gives_zero(method):
    # a degenerate but valid input: no method may overflow or divide by zero
    restored = deconvolve(np.zeros((24, 24)), KERNEL, method=method)
    assert np.all(np.isfinite(restored)) and np.abs(restored).max() < 1e-12


@pytest.mark.parametrize("method", sorted({"auto", "wiener", "tikhonov", "cgls", "wavelet",
                                           "richardson_lucy", "total_variation"}))
@pytest.mark.parametrize("shape", [(2, 2), (4, 4), (8, 8), (5,), (3, 3, 3)])
def test_too_small_for_a_noise_estimate(shape, method):
    # a handful of second differences once gave a noise level of 0 (one of them)
    # or the signal itself (none): name the cause and the way out instead
    image = np.random.default_rng(0).random(shape)
    with pytest.raises(ValueError, match="too small to estimate their noise level.*noise_sigma"):
        deconvolve(image, np.ones((1,) * len(shape)), method=method)


@pytest.mark.parametrize("method", ["auto", "wiener", "tikhonov", "cgls", "unsupervised_wiener"])
def test_one_sample_has_nothing_to_deconvolve(method):
    # tikhonov's weight search failed inside scipy's root finder on it
    with pytest.raises(ValueError, match="one sample per 2-D item: there is nothing"):
        deconvolve(np.ones((1, 1)), np.ones((1, 1)), method=method)


def test_masked_samples_are_missing_data():
    truth = cell_phantom((48, 48), seed=1)
    kernel = psf.gaussian(1.5)
    data = simulate(truth, kernel, noise="gaussian", sigma=0.01, seed=2)
    hidden = np.zeros(data.shape, bool)
    hidden[10:14, 20:30] = True
    corrupt = np.where(hidden, 50.0, data)  # what the mask hides is never used
    masked = np.ma.masked_array(corrupt, hidden)
    before = masked.copy()
    restored = deconvolve(masked, kernel)
    expected = deconvolve(np.where(hidden, np.nan, data), kernel)
    assert type(restored) is np.ndarray
    np.testing.assert_allclose(restored, expected, atol=1e-6)
    assert np.array_equal(masked.mask, before.mask) and np.array_equal(masked.data, before.data)
    with pytest.raises(ValueError, match="NaN or masked samples .* which tikhonov"):
        deconvolve(masked, kernel, method="tikhonov")
    # a mask with nothing masked is the plain data
    np.testing.assert_allclose(deconvolve(np.ma.masked_array(data, False), kernel),
                               deconvolve(data, kernel), atol=1e-6)


@pytest.mark.parametrize("shape,kernel", [((1, 40), (1, 5)), ((6, 6), (3, 3))])
def test_wavelet_on_short_axes_is_quiet(shape, kernel, recwarn):
    # pywt warned that a level exceeds a short axis: periodised, it is still orthonormal
    image = np.random.default_rng(0).random(shape)
    restored = deconvolve(image, np.ones(kernel) / np.prod(kernel), method="wavelet",
                          noise_sigma=0.05)
    assert restored.shape == shape and np.all(np.isfinite(restored))
    assert not [w for w in recwarn if "Level value" in str(w.message)]


@pytest.mark.parametrize("method", ["total_variation", "richardson_lucy", "richardson_lucy_tv",
                                    "wavelet", "cgls", "landweber", "van_cittert", "gold"])
def test_callback_that_is_not_callable_is_refused_before_solving(method):
    with pytest.raises(TypeError, match="callback must be callable.*got int 5"):
        deconvolve(IMAGE, KERNEL, method=method, callback=5)


def test_callback_checked_by_super_resolve_multiview_and_blind():
    from deconvkit import blind_deconvolve, super_resolve
    from deconvkit.restoration import richardson_lucy_multiview
    with pytest.raises(TypeError, match="callback must be callable"):
        super_resolve([IMAGE], KERNEL, 2, callback="print")
    with pytest.raises(TypeError, match="callback must be callable"):
        richardson_lucy_multiview([IMAGE, IMAGE], [KERNEL, KERNEL], callback=1)
    with pytest.raises(TypeError, match="callback must be callable"):
        blind_deconvolve(IMAGE, (5, 5), callback=[])


def test_a_psf_larger_than_a_dask_image_is_refused_with_what_to_do():
    """Tiles must hold the PSF: the message names the in-memory alternative
    instead of the boundary the call already used."""
    da = pytest.importorskip("dask.array")
    image = da.from_array(np.ones((10, 40, 40)), chunks=(10, 20, 20))
    with pytest.raises(ValueError, match="a dask image is restored in tiles within it"):
        deconvolve(image, np.ones((21, 5, 5)), method="richardson_lucy")
