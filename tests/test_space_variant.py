import numpy as np
import pytest

from conftest import BACKENDS, to_backend
from deconvkit import (
    Convolution,
    SpaceVariantConvolution,
    deconvolve,
    landweber,
    metrics,
    psf,
    richardson_lucy,
    testing,
    total_variation,
    wiener,
)

GRIDS = {1: ((3,), (64,)), 2: ((2, 3), (40, 36)), 3: ((2, 1, 2), (12, 14, 16))}


def gaussian_grid(grid, size=7):
    """A PSF per node, each a Gaussian of its own width."""
    d = len(grid)
    widths = np.linspace(0.6, 1.8, int(np.prod(grid)))
    kernels = [psf.gaussian(w, shape=(size,) * d, ndim=d) for w in widths]
    return np.stack(kernels).reshape(grid + (size,) * d)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_valid_windows_equal_the_sum_over_the_whole_frame(d, backend):
    # "valid" blurs each node over the window where its weight is not 0; the model
    # is the sum of every node's blur of the whole weighted frame
    grid, shape = GRIDS[d]
    grid = tuple(g + 1 for g in grid)  # narrower windows
    op = SpaceVariantConvolution(to_backend(gaussian_grid(grid), backend), boundary="valid")
    rng = np.random.default_rng(d)
    x = to_backend(rng.random((2,) + op.input_shape(shape)), backend)  # a batch axis too
    y = to_backend(rng.random((2,) + shape), backend)
    weights = op.weights(x.shape, like=x)
    whole = sum(t.forward(w * x) for t, w in zip(op.terms, weights))
    back = sum(w * t.adjoint(y) for t, w in zip(op.terms, weights))
    np.testing.assert_allclose(np.asarray(op.forward(x)), np.asarray(whole), atol=1e-12)
    np.testing.assert_allclose(np.asarray(op.adjoint(y)), np.asarray(back), atol=1e-12)
    assert any(b - a < n for spans in op.windows(x.shape)
               for (a, b), n in zip(spans, x.shape[1:]))  # the windows do cut


@pytest.mark.parametrize("boundary", ["valid", "symmetric", "periodic"])
def test_one_psf_everywhere_is_a_convolution(boundary):
    kernel = psf.gaussian(1.3, shape=(9, 9))
    x = np.random.default_rng(0).random((50, 44))
    single = Convolution(kernel, boundary=boundary)
    for grid in [(1, 1), (3, 2)]:
        op = SpaceVariantConvolution(np.broadcast_to(kernel, grid + kernel.shape),
                                     boundary=boundary)
        np.testing.assert_allclose(op.forward(x), single.forward(x), atol=1e-12)
        y = single.forward(x)
        np.testing.assert_allclose(op.adjoint(y), single.adjoint(y), atol=1e-12)


def test_weights_interpolate_between_tile_centres():
    op = SpaceVariantConvolution(gaussian_grid((2, 4)), boundary="valid")
    frame = (40, 80)
    weights = op.weights(op.input_shape(frame))
    total = sum(weights)
    np.testing.assert_allclose(total, 1.0)  # a partition of unity
    assert all(w.min() >= 0 for w in weights)
    # node (0, 1) sits at the centre of tile (0, 1) of the frame: rows 0-19, columns 20-39
    offset = op.widths[0][0], op.widths[1][0]
    centre = (offset[0] + 9.5, offset[1] + 29.5)
    w = weights[1]  # C order: (0, 1)
    assert w[int(centre[0]), int(centre[1])] > 0.9 and w[int(centre[0]), 0] == 0.0
    # constant beyond the outermost centres
    assert weights[0][0, 0] == 1.0 and weights[-1][-1, -1] == 1.0


def field_of_view_blur():
    """Gaussians that widen and stretch from the centre to the corners of a 3 x 3 grid."""
    psfs = np.zeros((3, 3, 17, 17))
    y, x = np.mgrid[:17, :17] - 8
    for i in range(3):
        for j in range(3):
            r = np.hypot(i - 1, j - 1) / np.sqrt(2)
            angle = np.arctan2(i - 1, j - 1)
            u = x * np.cos(angle) + y * np.sin(angle)
            v = -x * np.sin(angle) + y * np.cos(angle)
            g = np.exp(-0.5 * ((u / (0.8 + 2.2 * r)) ** 2 + (v / (0.8 + 0.6 * r)) ** 2))
            psfs[i, j] = g / g.sum()
    return psfs


@pytest.fixture(scope="module")
def varying_blur():
    from skimage import data

    psfs = field_of_view_blur()
    op = SpaceVariantConvolution(psfs, boundary="valid")
    scene = data.camera()[100:372, 120:392] / 255.0
    observed = op.forward(scene)
    observed = observed + 0.01 * np.random.default_rng(0).standard_normal(observed.shape)
    return op, psfs, observed, scene[8:-8, 8:-8]


@pytest.mark.parametrize("method", ["total_variation", "richardson_lucy", "landweber", "gold"])
def test_space_variant_model_beats_any_single_psf(varying_blur, method):
    op, psfs, observed, truth = varying_blur
    scores = {}
    for label, kernel in (("field", op), ("mean", psfs.mean(axis=(0, 1))),
                          ("centre", psfs[1, 1])):
        restored = deconvolve(observed, kernel, method=method)
        assert restored.shape == observed.shape
        scores[label] = metrics.psnr(truth, restored, data_range=1.0)
    # measured: TV 29.5 against 26.8 (mean PSF), RL 27.9 / 26.1, Landweber 26.6 / 24.7
    assert scores["field"] > max(scores["mean"], scores["centre"]) + 1.0


def test_solvers_take_their_boundary_and_normalise_the_psfs(varying_blur):
    op, psfs, observed, _ = varying_blur
    scaled = SpaceVariantConvolution(3.0 * psfs, boundary="periodic")
    x, info = total_variation(observed, scaled, boundary="valid", iterations=20,
                              return_info=True)
    reference = total_variation(observed, op, iterations=20)
    np.testing.assert_allclose(x, reference, rtol=1e-10, atol=1e-12)
    assert info.parameters["boundary"] == "valid"
    torch = pytest.importorskip("torch")
    on_torch = richardson_lucy(torch.from_numpy(observed), op, iterations=5)
    np.testing.assert_allclose(on_torch.numpy(), richardson_lucy(observed, op, iterations=5),
                               rtol=1e-8, atol=1e-10)


def test_errors():
    with pytest.raises(ValueError, match="a grid of d-D PSFs"):
        SpaceVariantConvolution(np.ones((3, 5, 5)))
    op = SpaceVariantConvolution(gaussian_grid((2, 2)))
    image = np.random.default_rng(0).random((32, 32))
    with pytest.raises(TypeError, match="a SpaceVariantConvolution is a psf for total_variation"):
        wiener(image, op)
    with pytest.raises(TypeError, match="wiener does not take|a SpaceVariantConvolution"):
        deconvolve(image, op, method="wiener")
    negative = SpaceVariantConvolution(gaussian_grid((2, 2)) - 0.01)
    with pytest.raises(ValueError, match="needs non-negative PSFs"):
        richardson_lucy(image, negative)
    zero_sum = np.zeros((2, 2, 3, 3))
    zero_sum[..., 1, 1] = [[1, 1], [1, 0]]
    with pytest.raises(ValueError, match="positive sum"):
        landweber(image, SpaceVariantConvolution(zero_sum), iterations=2)
    # a dask image is tiled now (tests/test_tiling.py), with a method that takes the field
    dask = pytest.importorskip("dask.array")
    with pytest.raises(TypeError, match="a SpaceVariantConvolution is a psf for"):
        deconvolve(dask.from_array(image, chunks=16), op, method="wiener")


def _sources(op, n, positions, rng, flux=1000.0, background=5.0, noise=0.2):
    scene = np.zeros(op.input_shape((n, n)))
    for p in positions:
        scene[p[0] + 8, p[1] + 8] = flux  # frame coordinates; the valid margin is 8
    observed = op.forward(scene) + background
    return observed + rng.normal(0, noise, observed.shape)


def test_grid_from_sources_recovers_each_tiles_psf():
    psfs = field_of_view_blur()
    op = SpaceVariantConvolution(psfs)
    n = 240
    centres = [(round((i + 0.5) * n / 3 - 0.5), round((j + 0.5) * n / 3 - 0.5))
               for i in range(3) for j in range(3)]
    observed = _sources(op, n, centres, np.random.default_rng(0))
    found = psf.grid_from_sources(observed, 3, 17)
    assert found.shape == psfs.shape
    np.testing.assert_allclose(found.sum(axis=(2, 3)), 1.0)
    # measured: 1.3-2.8 % of each PSF's peak (noise 0.2 on a peak of about 20-200)
    error = np.abs(found - psfs).max(axis=(2, 3)) / psfs.max(axis=(2, 3))
    assert error.max() < 0.06


def _jittered_lattice(rng, n, step=28, jitter=4):
    """Sources on a lattice, each moved at random: at least ``step - 2 jitter`` apart."""
    ticks = np.arange(step // 2, n - step // 2, step)
    return [(int(a + rng.integers(-jitter, jitter + 1)), int(b + rng.integers(-jitter, jitter + 1)))
            for a in ticks for b in ticks]


def test_a_grid_from_a_star_field_restores_as_well_as_the_true_one(varying_blur):
    op, psfs, observed, truth = varying_blur
    stars = _jittered_lattice(np.random.default_rng(0), 256)
    stars += [(a + 2, b + 1) for a, b in stars[::20]]  # blends: they pass as single sources
    field = _sources(op, 256, stars, np.random.default_rng(100))
    found = psf.grid_from_sources(field, 3, 17)
    # measured: 1.4 % of the peaks; 16 % when the blends are fitted too
    assert (np.abs(found - psfs).max(axis=(2, 3)) / psfs.max(axis=(2, 3))).max() < 0.05
    scores = {label: metrics.psnr(truth, richardson_lucy(observed, kernel, iterations=15),
                                  data_range=1.0)
              for label, kernel in (("true", op), ("found", SpaceVariantConvolution(found)),
                                    ("mean", psfs.mean(axis=(0, 1))))}
    assert scores["found"] > scores["true"] - 0.2  # measured 0.01 dB apart
    assert scores["found"] > scores["mean"] + 1.0


def test_grid_from_sources_names_the_empty_tiles():
    op = SpaceVariantConvolution(field_of_view_blur())
    observed = _sources(op, 120, [(20, 20), (20, 100), (100, 20)], np.random.default_rng(2))
    with pytest.raises(ValueError, match=r"tiles \[\(1, 1\)\] of the \(2, 2\) grid hold no"):
        psf.grid_from_sources(observed, 2, 17)
    # pairs closer than the size: none isolated (numpy's reshape error before)
    pairs = _sources(op, 120, [(30, 30), (30, 38), (90, 90), (90, 98)],
                     np.random.default_rng(2))
    with pytest.raises(ValueError, match="holds no isolated point source"):
        psf.grid_from_sources(pairs, 2, 17)


def test_blur_and_simulate_take_a_grid_of_psfs(tmp_path):
    from deconvkit import blur, io, simulate
    from deconvkit.cli import main

    grid = gaussian_grid((2, 2))
    image = np.random.default_rng(0).random((40, 40))
    for boundary in ("valid", "symmetric"):
        expected = SpaceVariantConvolution(grid, boundary=boundary).forward(image)
        np.testing.assert_array_equal(blur(image, SpaceVariantConvolution(grid), boundary=boundary),
                                      expected)
    noisy = simulate(image, SpaceVariantConvolution(grid), sigma=0.01, seed=0)
    assert noisy.shape == image.shape and 0.005 < np.std(noisy - expected) < 0.02
    io.write(tmp_path / "in.tif", image.astype(np.float32))
    np.save(tmp_path / "grid.npy", grid)
    assert main(["simulate", str(tmp_path / "in.tif"), "--psf", str(tmp_path / "grid.npy"),
                 "--psf-grid", "--noise", "none", "--boundary", "valid",
                 "-o", str(tmp_path / "out.tif")]) == 0
    np.testing.assert_allclose(io.read(tmp_path / "out.tif"),
                               SpaceVariantConvolution(grid).forward(image.astype(np.float32)),
                               rtol=1e-5, atol=1e-6)


def test_steps_follow_the_norm_of_a_field_whose_rows_sum_above_one():
    # points shifted differently on tiles smaller than the PSF: A 1 reaches 3.2 and
    # the norm 1.63, so a step of 1.9 (right for one unit-sum PSF) diverged (1e121)
    psfs = np.zeros((4, 4, 9, 9))
    for i in range(4):
        for j in range(4):
            psfs[i, j, (3 * i) % 9, (5 * j) % 9] = 1.0
    op = SpaceVariantConvolution(psfs)
    shape = op.input_shape((24, 24))
    assert op.norm_bound(shape) >= op.norm(shape) > 1.5
    x = np.random.default_rng(0).random(shape)
    observed = op.forward(x)
    for method in ("landweber", "total_variation"):
        restored = deconvolve(observed, op, method=method, iterations=200, nonnegative=False)
        assert np.abs(restored).max() < 2 * x.max()


def test_grid_from_sources_in_a_bead_stack():
    kernels = [psf.gaussian((1.5 * s, s, s), shape=(9, 11, 11)) for s in (0.8, 1.1, 1.4, 1.7)]
    grid = np.stack(kernels).reshape(1, 2, 2, 9, 11, 11)
    op = SpaceVariantConvolution(grid)
    rng = np.random.default_rng(0)
    scene = np.zeros(op.input_shape((20, 80, 80)))
    for a in range(8, 80, 16):
        for b in range(8, 80, 16):  # one plane of beads, 16 samples apart, jittered
            scene[14, a + 5 + rng.integers(-2, 3), b + 5 + rng.integers(-2, 3)] = 1000.0
    beads = op.forward(scene) + 3.0 + rng.normal(0, 0.1, (20, 80, 80))
    found = psf.grid_from_sources(beads, (1, 2, 2), (9, 11, 11))
    # measured: 1.3-7.2 % of each node's peak
    assert (np.abs(found - grid).max(axis=(3, 4, 5)) / grid.max(axis=(3, 4, 5))).max() < 0.12


def test_cut_is_the_field_seen_through_a_window():
    psfs = np.stack([psf.gaussian(s, shape=(7, 7)) for s in np.linspace(0.6, 2.0, 6)])
    field = SpaceVariantConvolution(psfs.reshape(2, 3, 7, 7))
    frame = (60, 75)
    x = np.random.default_rng(0).random(field.input_shape(frame))
    whole = field.forward(x)
    for offset, shape in (((0, 0), (30, 40)), ((17, 23), (25, 30)), ((35, 50), (25, 25))):
        window = field.cut(offset, frame)
        inside = x[offset[0]:offset[0] + shape[0] + 6, offset[1]:offset[1] + shape[1] + 6]
        np.testing.assert_array_equal(  # exact: the same nodes, weights and windows
            window.forward(inside),
            whole[offset[0]:offset[0] + shape[0], offset[1]:offset[1] + shape[1]])
        assert testing.assert_adjoint(window, window.input_shape(shape)) < 1e-12
    assert "region=((17, 23), (60, 75))" in repr(field.cut((17, 23), frame))
    with pytest.raises(ValueError, match="region must be"):
        field.cut((1,), frame)
