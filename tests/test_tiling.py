"""Tiled (dask) restoration equals the untiled one in the interior."""

import numpy as np
import pytest

from deconvkit import deconvolve, psf, simulate

da = pytest.importorskip("dask.array")


def _data(shape=(96, 112), seed=0):
    from skimage import data

    scene = data.camera()[100:100 + shape[0] + 16, 100:100 + shape[1] + 16] / 255.0
    kernel = psf.gaussian(1.5, shape=(9, 9))
    return simulate(scene, kernel, sigma=0.01, boundary="valid", seed=seed), kernel


def _relative_interior_error(tiled, untiled, margin):
    inner = tuple(slice(margin, n - margin) for n in untiled.shape)
    diff = np.linalg.norm(tiled[inner] - untiled[inner])
    return diff / np.linalg.norm(untiled[inner])


@pytest.mark.parametrize("method,options", [
    ("richardson_lucy", dict(iterations=20)),
    ("wiener", {}),
    ("landweber", dict(iterations=20)),
    ("gold", dict(iterations=20)),
    ("landweber", dict(iterations=60, weight="auto")),  # ICTM
    # options given as "auto" are chosen once too (each chunk had chosen its own)
    ("total_variation", dict(iterations=60, weight="auto", quadratic_weight="auto")),
    ("richardson_lucy", dict(iterations="auto")),
    ("total_variation", dict(iterations=60)),
])
def test_tiled_equals_untiled(method, options):
    observed, kernel = _data()
    # chunks of 32 < 4 PSF widths (36)
    lazy, info = deconvolve(da.from_array(observed, chunks=32), kernel, method=method,
                            return_info=True, **options)
    assert isinstance(lazy, da.Array) and lazy.shape == observed.shape
    tiled = lazy.compute()
    fixed = {k: v for k, v in info.parameters.items() if k in ("noise_sigma", "weight",
                                                                 "balance")}
    untiled = deconvolve(observed, kernel, method=method, **{**options, **fixed})
    assert tiled.dtype == untiled.dtype
    assert _relative_interior_error(tiled, untiled, margin=8) <= 1e-3


def test_auto_parameters_are_chosen_once():
    observed, kernel = _data()
    lazy, info = deconvolve(da.from_array(observed, chunks=48), kernel, return_info=True)
    assert info.method == "total_variation" and info.parameters["weight"] > 0
    assert lazy.compute().shape == observed.shape


def test_runs_on_a_distributed_cluster():
    distributed = pytest.importorskip("distributed")
    observed, kernel = _data(shape=(64, 64))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        lazy = deconvolve(da.from_array(observed, chunks=32), kernel,
                          method="richardson_lucy", iterations=10, noise_sigma=0.01)
        tiled = client.compute(lazy).result()
    untiled = deconvolve(observed, kernel, method="richardson_lucy", iterations=10)
    assert _relative_interior_error(tiled, untiled, margin=8) <= 1e-3


@pytest.mark.parametrize("channel_axis", [0, -1])
def test_dask_channels_are_tiled_one_by_one(channel_axis):
    # refused before: each channel is now tiled like a grey image (plain RL: Biggs'
    # per-tile step would blur what this checks)
    channels = [_data(seed=s)[0] for s in range(2)]
    kernel = _data()[1]
    kernels = [kernel, psf.gaussian(1.0, shape=(7, 7))]  # and each its own PSF
    stack = np.stack(channels, axis=channel_axis)
    lazy, infos = deconvolve(da.from_array(stack, chunks=32), kernels,
                             method="richardson_lucy", iterations=15, acceleration=None,
                             channel_axis=channel_axis, return_info=True)
    assert isinstance(lazy, da.Array) and lazy.shape == stack.shape and len(infos) == 2
    tiled = np.moveaxis(lazy.compute(), channel_axis, 0)
    for c in range(2):
        untiled = deconvolve(channels[c], kernels[c], method="richardson_lucy", iterations=15,
                             acceleration=None)
        assert _relative_interior_error(tiled[c], untiled, margin=8) <= 1e-3
    with pytest.raises(ValueError, match="channel_axis=3 is out of range"):
        deconvolve(da.from_array(stack, chunks=32), kernel, channel_axis=3)


def test_dask_time_points_choose_their_own_parameters():
    """A fading (T, Y, X) series tiled: each time point's parameters chosen on its
    own central block (the first time point's had served them all), as in memory."""
    frames = [_data(seed=s)[0] * fade for s, fade in enumerate((1.0, 0.2))]
    kernel = _data()[1]
    lazy, infos = deconvolve(da.from_array(np.stack(frames), chunks=(1, 32, 32)), kernel,
                             return_info=True)
    assert len(infos) == 2
    for t in range(2):
        alone, info = deconvolve(da.from_array(frames[t], chunks=32), kernel, return_info=True)
        assert infos[t].parameters["weight"] == pytest.approx(info.parameters["weight"])
        np.testing.assert_allclose(lazy[t].compute(), alone.compute(), rtol=1e-6, atol=1e-9)
    assert infos[1].parameters["weight"] != pytest.approx(infos[0].parameters["weight"])


@pytest.mark.parametrize("method", ["richardson_lucy", "total_variation"])
def test_tiled_missing_samples(method):
    """NaN samples are missing data in every chunk, as in memory (the same restoration in
    the interior); a chunk with no observed sample within reach stays NaN."""
    observed, kernel = _data()
    observed[np.random.default_rng(0).random(observed.shape) < 0.05] = np.nan
    options = dict(iterations=20, noise_sigma=0.01)
    tiled = deconvolve(da.from_array(observed, chunks=32), kernel, method=method,
                       **options).compute()
    untiled = deconvolve(observed, kernel, method=method, **options)
    assert np.isfinite(tiled).all()
    # measured 1.0e-3 (RL: Biggs' step is computed per chunk; 9e-4 without NaN) and 2e-4 (TV)
    assert _relative_interior_error(tiled, untiled, margin=16) < 2e-3
    # the first chunk column and its overlap (45 samples) without data at all
    observed, _ = _data((96, 240))
    observed[:, :100] = np.nan
    tiled = deconvolve(da.from_array(observed, chunks=(96, 48)), kernel, method=method,
                       **options).compute()
    assert np.isnan(tiled[:, :48]).all() and np.isfinite(tiled[:, 100:]).all()


@pytest.mark.parametrize("method,options", [
    ("richardson_lucy", dict(iterations=20, acceleration=None)),
    ("total_variation", dict(iterations=60)),
])
def test_background_map_is_tiled_with_the_image(method, options):
    """A background map (numpy or dask, any chunks) is cut like the image: each
    chunk is restored over its own part of the sky; other array options are
    refused with a dask image."""
    observed, kernel = _data()
    sky = np.linspace(0.1, 0.4, observed.shape[0])[:, None] * np.ones(observed.shape)
    data = da.from_array(observed + sky, chunks=32)
    untiled = deconvolve(observed + sky, kernel, method=method, noise_sigma=0.01,
                         background=sky, **options)
    for background in (sky, da.from_array(sky, chunks=(48, 56))):
        tiled = deconvolve(data, kernel, method=method, noise_sigma=0.01,
                           background=background, **options).compute()
        assert _relative_interior_error(tiled, untiled, margin=8) <= 1e-3
    channels = np.stack([observed + sky] * 2, axis=-1)  # a map per channel
    both = deconvolve(da.from_array(channels, chunks=32), kernel, method=method,
                      noise_sigma=0.01, background=np.stack([sky] * 2, axis=-1),
                      channel_axis=-1, **options).compute()
    assert _relative_interior_error(both[..., 1], untiled, margin=8) <= 1e-3
    with pytest.raises(ValueError, match="background has shape"):
        deconvolve(data, kernel, method=method, background=sky[1:])
    with pytest.raises(TypeError, match="weight is an array, which is not tiled"):
        deconvolve(data, kernel, method="total_variation", weight=np.zeros(2))


@pytest.mark.parametrize("method,options", [
    ("richardson_lucy", dict(iterations=20, acceleration=None)),
    ("total_variation", dict(iterations=60)),
    ("landweber", dict(iterations=20)),
])
def test_space_variant_field_is_tiled(method, options):
    """Each chunk sees the field through its window (SpaceVariantConvolution.cut):
    tiled == untiled (RL without Biggs, whose step is taken per tile: 1e-9 measured)."""
    from deconvkit import SpaceVariantConvolution

    psfs = np.stack([psf.gaussian(s, shape=(9, 9)) for s in np.linspace(0.6, 2.2, 9)])
    field = SpaceVariantConvolution(psfs.reshape(3, 3, 9, 9))
    from skimage import data

    scene = data.camera()[100:268, 100:284] / 255.0
    observed = field.forward(scene) + 0.01 * np.random.default_rng(0).standard_normal(
        (160, 176))
    lazy, info = deconvolve(da.from_array(observed, chunks=48), field, method=method,
                            return_info=True, **options)
    fixed = {k: v for k, v in info.parameters.items()
             if k in ("noise_sigma", "weight", "quadratic_weight")}
    untiled = deconvolve(observed, field, method=method, **options, **fixed)
    assert _relative_interior_error(lazy.compute(), untiled, margin=8) <= 1e-3
    # the whole grid squeezed into every chunk instead: the field is wrong there
    squeezed = da.from_array(observed, chunks=48).map_overlap(
        lambda block: deconvolve(block, field, method=method, **options, **fixed),
        depth=45, boundary="none", dtype=observed.dtype).compute()
    assert _relative_interior_error(squeezed, untiled, margin=8) > 1e-2


def test_multiview_is_tiled():
    from deconvkit import cell_phantom, richardson_lucy_multiview

    scene = cell_phantom((24, 136, 136), seed=1)
    along = [psf.gaussian((3.0, 0.8, 0.8), shape=(9, 9, 9), ndim=3),
             psf.gaussian((0.8, 0.8, 3.0), shape=(9, 9, 9), ndim=3)]
    views = [simulate(scene / scene.max(), k, noise="poisson", photons=300, boundary="valid",
                      seed=i) for i, k in enumerate(along)]
    lazy, info = richardson_lucy_multiview([da.from_array(v, chunks=(16, 48, 48))
                                            for v in views], along, acceleration=None,
                                           return_info=True)
    assert isinstance(lazy, da.Array) and np.prod(lazy.numblocks) > 1  # tiles, not one
    untiled = richardson_lucy_multiview(views, along, acceleration=None,
                                        iterations=info.iterations,
                                        noise_sigma=info.parameters["noise_sigma"])
    # measured 1e-10 (2e-3 with Biggs, whose step each tile takes for itself)
    assert _relative_interior_error(lazy.compute(), untiled, margin=4) <= 1e-6
    with pytest.raises(ValueError, match="boundary='valid'"):
        richardson_lucy_multiview([da.from_array(v) for v in views], along,
                                  boundary="periodic")
