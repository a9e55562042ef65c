"""The compiled element-wise loops (numba, the ``fast`` extra) against numpy's passes."""

import importlib

import numpy as np
import pytest

from deconvkit import (
    Convolution,
    metrics,
    psf,
    richardson_lucy,
    richardson_lucy_tv,
    simulate,
    total_variation,
)
from deconvkit.operators.differences import periodic_differences_adjoint
from deconvkit.testing import assert_adjoint

kernels = importlib.import_module("deconvkit._kernels")
rl_module = importlib.import_module("deconvkit.restoration.richardson_lucy")
variational = importlib.import_module("deconvkit.restoration.variational")
needs_numba = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba (the fast extra) absent")

SHAPES = [(300,), (40, 50), (1100, 1000), (70, 30, 40), (2, 3, 20, 30)]
# FFT grids and their observed windows: 2-D, 3-D, a stack of 2-D frames
WINDOWS = [((60, 70), (slice(5, 55), slice(8, 62))),
           ((20, 30, 40), (slice(2, 18), slice(3, 27), slice(4, 36))),
           ((2, 30, 40), (slice(3, 27), slice(0, 40)))]


@pytest.fixture(autouse=True)
def loops_on_where_numba_is(monkeypatch):
    # these tests are about the loops: on even under DECONVKIT_NUMBA=0, which
    # the rest of the suite then runs on numpy's passes
    monkeypatch.setattr(kernels, "ENABLED", kernels.AVAILABLE)


def arrays(shape, dtype, count, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.random(shape) - 0.2).astype(dtype) for _ in range(count)]


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_update_loops_equal_numpy_to_the_last_bit(shape, dtype):
    new, current, previous = arrays(shape, dtype, 3)
    step = np.maximum(new, 0) * current
    alpha = 0.7
    extrapolated = np.maximum(step + dtype(alpha) * (step - previous), 0)
    plain = new.copy()
    kernels.rl_update(plain, current)
    assert np.array_equal(plain, step)
    fused_new, fused_previous = new.copy(), previous.copy()
    kernels.biggs_update(fused_new, current, fused_previous, alpha=alpha)
    assert np.array_equal(fused_new, step) and np.array_equal(fused_previous, extrapolated)
    fused_new, out = new.copy(), np.empty_like(new)  # into a third array
    kernels.biggs_update(fused_new, current, previous, out, alpha=alpha)
    assert np.array_equal(out, extrapolated) and np.array_equal(fused_new, step)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_biggs_change_on_the_lattice(shape, dtype):
    new, current, last = arrays(shape, dtype, 3, seed=1)
    sample = rl_module._alpha_sample(shape)
    last = np.ascontiguousarray(last[sample])
    change = (np.maximum(new, 0) * current)[sample] - current[sample]
    expected = (np.vdot(change.ravel().astype(float), last.ravel()),
                np.vdot(last.ravel().astype(float), last.ravel()))
    kept = last.copy()
    sums = kernels.biggs_change(new, current, kept, sample, False)
    assert np.array_equal(kept, change)
    assert sums == pytest.approx(expected, rel=1e-5 if dtype == np.float32 else 1e-12)
    assert kernels.biggs_change(new, current, kept, sample, True) == (0.0, 0.0)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("count", [1, 2, 6])
def test_anderson_combination_equals_numpy_to_the_last_bit(count, dtype):
    updates = arrays((130, 70), dtype, count, seed=4)
    coefficients = np.random.default_rng(5).normal(size=count)
    expected = updates[-1] * dtype(coefficients[-1])
    for coefficient, update in zip(coefficients[:-1], updates[:-1]):
        expected += dtype(coefficient) * update
    got = np.empty_like(expected)
    kernels.combine(got, updates, coefficients)
    assert np.array_equal(got, np.maximum(expected, 0))


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("grid,window", [
    ((1080, 1060), (slice(28, 1052), slice(20, 1044))),
    ((30, 40, 50), (slice(3, 27), slice(5, 35), slice(0, 50))),
    ((2, 3, 40, 50), (slice(1, 39), slice(2, 48))),  # leading batch axes
    ((500,), (slice(10, 490),)),
    ((64, 64), ()),  # the whole array
])
@pytest.mark.parametrize("background,negatives", [(0.0, False), (0.3, True)])
def test_ratio_loop_equals_numpy(grid, window, dtype, background, negatives):
    rng = np.random.default_rng(2)
    window = (Ellipsis,) + window
    buffer = (rng.random(grid) - 0.1).astype(dtype)
    observed = (rng.random(buffer[window].shape) - 0.05).astype(dtype)
    tiny = 1e-6
    expected = buffer.copy()
    view = expected[window]
    if background:
        view += background
    np.maximum(view, dtype(tiny), out=view)
    squares = float(np.sum((view.astype(float) - observed) ** 2))
    np.divide(observed, view, out=view)
    if negatives:
        np.maximum(view, 0, out=view)
    assert kernels.window_fused(buffer, window, observed)
    got = kernels.ratio(buffer, window, observed, tiny=tiny, background=background,
                        negatives=negatives, track=True)
    assert np.array_equal(buffer, expected)
    assert got == pytest.approx(squares, rel=1e-5 if dtype == np.float32 else 1e-12)


def test_compiled_loops_refuse_what_they_cannot_take(monkeypatch):
    a = np.ones((8, 8), np.float32)
    monkeypatch.setattr(kernels, "ENABLED", True)
    assert not kernels.fused(a, a.astype(np.float64))  # mixed dtypes
    assert not kernels.fused(a, np.ones((8, 8), np.int32)[:, :8])
    assert not kernels.fused(np.ones((8, 16), np.float32)[:, ::2])  # not contiguous
    assert not kernels.fused(a, np.ones((4, 8), np.float32))  # shapes differ
    assert not kernels.window_fused(a, (Ellipsis, slice(0, 8, 2)), np.ones((8, 4), np.float32))
    assert not kernels.window_fused(a, (Ellipsis, slice(0, 4)), np.ones((8, 5), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        kernels.rl_update(np.ones((8, 16), np.float32)[:, ::2], a)
    monkeypatch.setattr(kernels, "ENABLED", False)  # numba absent, or DECONVKIT_NUMBA=0
    assert not kernels.fused(a, a)
    assert not kernels.window_fused(a, (Ellipsis,), a)


@needs_numba
@pytest.mark.parametrize("acceleration", [None, "biggs", "anderson"])
@pytest.mark.parametrize("boundary", ["valid", "periodic", "reflect"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_richardson_lucy_same_with_and_without_the_compiled_loops(monkeypatch, acceleration,
                                                                  boundary, dtype):
    rng = np.random.default_rng(3)
    kernel = psf.gaussian(1.5)
    # the FFT path both times (the separable passes exist only compiled)
    monkeypatch.setattr(kernels, "SEPARABLE", False)
    scene = rng.random((72, 80)) ** 4
    observed = simulate(scene, kernel, noise="poisson", photons=300, seed=3).astype(dtype)
    runs, stops = {}, {}
    for enabled in (True, False):
        monkeypatch.setattr(kernels, "ENABLED", enabled)
        runs[enabled] = richardson_lucy(observed, kernel, boundary=boundary, iterations=15,
                                        acceleration=acceleration)
        stops[enabled] = richardson_lucy(observed, kernel, boundary=boundary,
                                         acceleration=acceleration, return_info=True)
    fast, plain = runs[True], runs[False]
    assert fast.dtype == plain.dtype == dtype
    # the automatic stop: at most a step apart (round-off near its threshold)
    assert abs(stops[True][1].iterations - stops[False][1].iterations) <= 1
    assert metrics.psnr(scene, stops[True][0], data_range=1.0) == pytest.approx(
        metrics.psnr(scene, stops[False][0], data_range=1.0), abs=0.05)
    if dtype == np.float64:
        np.testing.assert_allclose(fast, plain, rtol=1e-7, atol=1e-9 * plain.max())
    else:
        spread = np.linalg.norm(fast - plain) / np.linalg.norm(plain)
        # measured: ~1e-6 plain (the loops are exact; the real OTF drops the
        # complex one's round-off), more after Anderson's combinations and
        # Biggs' extrapolation (0.75 % at the "valid" border)
        assert spread < {"biggs": 2e-2, "anderson": 1e-3}.get(acceleration, 1e-5)


def _double(values):
    for i in range(values.size):
        values[i] *= 2


@needs_numba
def test_loops_compile_where_no_cache_can_be_written(monkeypatch):
    import numba

    real = numba.njit

    def njit(*args, cache=False, **options):
        if cache:  # what numba raises when neither cache directory is writable
            raise RuntimeError("cannot cache function: no locator available")
        return real(*args, **options)

    monkeypatch.setattr(numba, "njit", njit)
    loop = kernels._njit(numba, _double, {})
    values = np.array([1.0, 2.5])
    loop(values)
    assert values.tolist() == [2.0, 5.0]


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("acceleration", [None, "biggs", "anderson"])
def test_a_callback_may_keep_the_iterates(monkeypatch, enabled, acceleration):
    # the loop reuses freed arrays; never one a callback was shown
    monkeypatch.setattr(kernels, "ENABLED", enabled and kernels.AVAILABLE)
    kernel = psf.gaussian(1.5)
    observed = simulate(np.random.default_rng(6).random((60, 70)) ** 3, kernel, sigma=0.01,
                        seed=6)
    kept, copies = [], []

    def keep(iteration, estimate):
        kept.append(estimate)
        copies.append(estimate.copy())

    watched = richardson_lucy(observed, kernel, iterations=8, acceleration=acceleration,
                              callback=keep)
    alone = richardson_lucy(observed, kernel, iterations=8, acceleration=acceleration)
    assert len(kept) == 8
    for view, copy in zip(kept, copies):
        np.testing.assert_array_equal(view, copy)
    np.testing.assert_array_equal(watched, alone)


@needs_numba
def test_richardson_lucy_tv_same_with_and_without_the_compiled_loops(monkeypatch):
    # RL-TV makes its own step: the compiled RL step must not apply twice
    monkeypatch.setattr(kernels, "SEPARABLE", False)  # the FFT path both times
    kernel = psf.gaussian(1.5)
    observed = simulate(np.random.default_rng(7).random((64, 72)) ** 3, kernel, sigma=0.01,
                        seed=7)
    runs = []
    for enabled in (True, False):
        monkeypatch.setattr(kernels, "ENABLED", enabled)
        runs.append(richardson_lucy_tv(observed, kernel, iterations=12, acceleration="biggs"))
    # float64: only the real OTF's dropped round-off differs
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-7, atol=1e-10)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,d", [((300,), 1), ((40, 50), 2), ((3, 40, 50), 2),
                                     ((20, 30, 40), 3), ((2, 10, 12, 14), 3)])
@pytest.mark.parametrize("positive", [True, False])
@pytest.mark.parametrize("relaxation", [1.0, 1.6])
def test_tv_split_loops_equal_numpy_to_the_last_bit(shape, d, dtype, positive, relaxation):
    rng = np.random.default_rng(8)
    x = (rng.random(shape) - 0.3).astype(dtype)
    edge_dual = (0.1 * rng.normal(size=(d,) + shape)).astype(dtype)
    edge_sum = rng.normal(size=(d,) + shape).astype(dtype)
    box_dual = (0.1 * rng.random(shape)).astype(dtype)
    box_sum = rng.random(shape).astype(dtype)
    expected = [a.copy() for a in (edge_dual, edge_sum, box_dual, box_sum)]
    variational._gradient_and_box_splits(x, *expected, np.empty_like(x), 0.05, positive,
                                         relaxation)
    got = [a.copy() for a in (edge_dual, edge_sum, box_dual, box_sum)]
    assert kernels.tv_fused(got[0], got[1], x, got[2], got[3])
    kernels.tv_split(x, *got, threshold=0.05, positive=positive, relaxation=relaxation)
    for a, b in zip(got, expected):
        assert np.array_equal(a, b)
    right = np.empty_like(x)
    periodic_differences_adjoint(expected[1], out=right)
    right += expected[3]
    fused_right = np.empty_like(x)
    kernels.tv_right(got[1], got[3], fused_right)
    assert np.array_equal(fused_right, right)


@needs_numba
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_tv_spectra_loop_equals_numpy(dtype):
    rng = np.random.default_rng(9)
    spectrum, right, otf = ((rng.normal(size=(30, 17)) + 1j * rng.normal(size=(30, 17)))
                            .astype(dtype) for _ in range(3))
    inverse = rng.random((30, 17)).astype(np.real(spectrum).dtype)
    expected = (spectrum * np.conj(otf) + right) * inverse
    assert kernels.tv_spectra_fused(spectrum, right, otf, inverse)
    kernels.tv_spectra(spectrum, right, otf, inverse)
    # numpy's SIMD complex products may round through fused multiply-adds
    tolerance = 1e-6 if dtype == np.complex64 else 1e-14
    for got, want in ((spectrum, expected), (right, expected * otf)):
        np.testing.assert_allclose(got, want, rtol=tolerance,
                                   atol=tolerance * np.abs(want).max())
    assert not kernels.tv_spectra_fused(spectrum, right, otf, inverse.astype(np.float16))


@needs_numba
@pytest.mark.parametrize("boundary", ["valid", "periodic", "reflect"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("data", ["gaussian", "poisson"])
def test_total_variation_same_with_and_without_the_compiled_loops(monkeypatch, boundary, dtype,
                                                                  data):
    kernel = psf.gaussian(1.5)
    observed = simulate(np.random.default_rng(10).random((48, 56)) ** 3, kernel,
                        noise="poisson", photons=300, seed=10).astype(dtype)
    runs = []
    for enabled in (True, False):
        monkeypatch.setattr(kernels, "ENABLED", enabled)
        runs.append(total_variation(observed, kernel, boundary=boundary, data=data,
                                    return_info=True))
    (fast, fast_info), (plain, plain_info) = runs
    assert fast_info.iterations == plain_info.iterations
    np.testing.assert_allclose(fast, plain, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6 * plain.max())


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("grid,window", WINDOWS)
@pytest.mark.parametrize("relaxation", [1.0, 1.6])
def test_tv_data_split_loop_equals_numpy(grid, window, dtype, relaxation):
    rng = np.random.default_rng(11)
    window = (Ellipsis,) + window
    blurred = rng.random(grid).astype(dtype)
    dual = (0.1 * rng.normal(size=grid)).astype(dtype)
    total = rng.random(grid).astype(dtype)
    data = rng.random(blurred[window].shape).astype(dtype)
    rho = 0.37
    squares = float(np.sum((blurred[window].astype(float) - data) ** 2))
    # numpy's passes, as in _admm
    v = variational._relaxed_into(total.copy(), dual, blurred.copy(), relaxation)
    expected = np.zeros_like(dual)
    inside, change = v[window], expected[window]
    change[...] = data
    change -= inside
    change /= 1 + rho
    inside += change
    inside += change
    assert kernels.tv_data_fused(blurred, dual, total, window, data)
    got = kernels.tv_data(blurred, dual, total, window, data, rho=rho, relaxation=relaxation)
    assert np.array_equal(total, v) and np.array_equal(dual, expected)
    assert got == pytest.approx(squares, rel=1e-5 if dtype == np.float32 else 1e-12)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_real_otf_for_symmetric_psfs_only(monkeypatch, dtype):
    from deconvkit import Convolution

    monkeypatch.setattr(kernels, "ENABLED", True)
    like = np.ones(1, dtype)
    symmetric = Convolution(psf.gaussian(2.0)).transfer_function((60, 50), like=like)
    real = kernels.real_otf(symmetric)
    assert real.dtype == dtype and np.array_equal(real, symmetric.real)
    one_sided = np.zeros((5, 5))
    one_sided[2, 2:] = 1.0 / 3  # its centre at the first tap: the OTF has a phase
    lopsided = Convolution(one_sided).transfer_function((60, 50), like=like)
    assert kernels.real_otf(lopsided) is lopsided
    spectrum = np.fft.rfft2(np.random.default_rng(12).random((60, 50))).astype(symmetric.dtype)
    expected = spectrum * symmetric.real
    kernels.scale(spectrum, real)
    assert np.array_equal(spectrum, expected)
    monkeypatch.setattr(kernels, "ENABLED", False)
    assert kernels.real_otf(symmetric) is symmetric


@needs_numba
def test_richardson_lucy_on_a_stack_same_with_and_without_the_compiled_loops(monkeypatch):
    # leading axes: the OTF is broadcast over them, so the real OTF's product
    # must not take the same-shape loop
    kernel = psf.gaussian(1.5)
    stack = np.stack([simulate(np.random.default_rng(seed).random((40, 44)) ** 3, kernel,
                               sigma=0.01, seed=seed) for seed in range(2)])
    runs = []
    for enabled in (True, False):
        monkeypatch.setattr(kernels, "ENABLED", enabled)
        runs.append(richardson_lucy(stack, kernel, iterations=10))
    assert np.all(np.isfinite(runs[0]))
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-7, atol=1e-10)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("grid,window", WINDOWS + [((30, 40), ())])
def test_relative_change_loop_equals_numpy(grid, window, dtype):
    from deconvkit.restoration._stopping import relative_change

    rng = np.random.default_rng(13)
    window = (Ellipsis,) + window
    new = rng.random(grid).astype(dtype)
    old = (new + 0.01 * rng.normal(size=grid)).astype(dtype)
    assert kernels.change_fused(new, old, window)
    assert kernels.relative_change(new, old, window) == pytest.approx(
        relative_change(new[window], old[window]), rel=1e-5 if dtype == np.float32 else 1e-12)
    assert kernels.relative_change(new * 0, old * 0, window) == 0.0


SEPARABLE_CASES = [((50,), (7,)), ((40, 46), (9, 4)), ((3, 33, 29), (5, 6)),
             ((18, 21, 16), (5, 4, 7)), ((2, 9, 11, 10), (3, 4, 5))]


def separable_psf(kernel_shape, rng):
    factors = [rng.random(k) + 0.1 for k in kernel_shape]
    kernel = factors[0]
    for f in factors[1:]:
        kernel = np.multiply.outer(kernel, f)
    return kernel / kernel.sum()


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,kernel_shape", SEPARABLE_CASES)
def test_separable_passes_equal_the_valid_operator(shape, kernel_shape, dtype):
    """The separable model's blur and adjoint are the ``"valid"`` operator's
    (odd and even PSF sizes, leading batch axes), and the model tells the
    blur's 1-D factors from the PSF itself."""
    rng = np.random.default_rng(1)
    kernel = separable_psf(kernel_shape, rng).astype(dtype)
    image = rng.random(shape).astype(dtype)
    op = Convolution(kernel, boundary="valid")
    weights = op.separable_weights(image, observed=True)
    assert weights is not None
    model = rl_module._SeparableModel(op, image, weights)
    op = Convolution(kernel, boundary="valid", method="direct")  # the reference
    x = rng.random(model.object_shape).astype(dtype)
    tolerance = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12)
    np.testing.assert_allclose(model.forward(x), op.forward(x), **tolerance)
    ratio = rng.random(shape).astype(dtype)
    model.buffer[...] = ratio
    adjoint = model.adjoint_of_ratio()
    assert adjoint.shape == model.object_shape and adjoint.dtype == dtype
    np.testing.assert_allclose(adjoint, op.adjoint(ratio), **tolerance)
    model.recycle(x)
    np.testing.assert_allclose(model.adjoint_of_ones(), op.adjoint(np.ones(shape, dtype)),
                               **tolerance)
    mask = rng.random(shape) > 0.3
    np.testing.assert_allclose(model.adjoint_of_ones(mask), op.adjoint(mask.astype(dtype)),
                               **tolerance)


@needs_numba
def test_separable_passes_are_taken_only_where_they_apply(monkeypatch):
    rng = np.random.default_rng(0)
    image = rng.random((64, 64)).astype(np.float32)
    gaussian = psf.gaussian(2.0).astype(np.float32)
    weights = Convolution(gaussian, boundary="valid").separable_weights(image, observed=True)
    assert weights is not None and [w.shape for w in weights] == [(17,), (17,)]
    disk = psf.disk(4.0).astype(np.float32)  # not an outer product
    assert Convolution(disk, boundary="valid").separable_weights(image) is None
    derivative = np.outer([1.0, 0.0, -1.0], [1.0, 2.0, 1.0])  # sums to 0
    assert Convolution(derivative, boundary="valid").separable_weights(image) is None
    # a long kernel: the FFTs cost less than its passes
    wide = psf.gaussian(12.0).astype(np.float32)
    assert Convolution(wide, boundary="valid").separable_weights(image) is None
    for method in ("fft", "direct"):  # asked for by name
        op = Convolution(gaussian, boundary="valid", method=method)
        assert op.separable_weights(image) is None
    op = Convolution(gaussian, boundary="valid")
    monkeypatch.setattr(kernels, "SEPARABLE", False)  # DECONVKIT_SEPARABLE=0
    assert op.separable_weights(image) is None
    monkeypatch.setattr(kernels, "SEPARABLE", True)
    for dtype in (np.int64, np.float16, np.longdouble):  # the FFTs or scipy take these
        assert op.separable_weights(image.astype(dtype)) is None
    symmetric = Convolution(gaussian, boundary="symmetric")
    np.testing.assert_allclose(symmetric.forward(image.astype(np.float16)),
                               symmetric.forward(image), rtol=2e-3, atol=2e-3)
    with pytest.raises(ValueError, match="C-contiguous"):
        kernels.correlate_axis(image, weights[0], np.empty((64, 96), np.float32)[:, ::2], 0,
                               full=True)
    torch = pytest.importorskip("torch")
    assert op.separable_weights(torch.from_numpy(image)) is None


@needs_numba
@pytest.mark.parametrize("boundary", ["valid", "symmetric", "reflect", "edge", "zero"])
def test_convolution_on_the_separable_passes_equals_the_fft(boundary):
    """The padded boundary models' blur and exact adjoint go through the
    passes too (they pad, then blur as ``"valid"``; ``"periodic"`` keeps its
    unpadded FFTs for kernels over 27 taps)."""
    rng = np.random.default_rng(4)
    kernel = psf.gaussian((1.5, 2.5))
    op, reference = (Convolution(kernel, boundary=boundary, method=method)
                     for method in ("auto", "fft"))
    x = rng.random(op.input_shape((45, 52)))
    assert op.separable_weights(x, observed=boundary != "valid") is not None
    np.testing.assert_allclose(op.forward(x), reference.forward(x), rtol=1e-10, atol=1e-12)
    y = rng.random(op.output_shape(x.shape))
    np.testing.assert_allclose(op.adjoint(y), reference.adjoint(y), rtol=1e-10, atol=1e-12)
    assert_adjoint(op, x.shape)


@needs_numba
@pytest.mark.parametrize("shape,kernel", [((90, 101), psf.gaussian(1.5)),
                                          ((24, 40, 36), psf.gaussian(1.2, ndim=3)),
                                          ((300,), psf.gaussian(2.0, ndim=1))])
def test_richardson_lucy_same_on_the_separable_passes_as_on_the_fft(monkeypatch, shape,
                                                                    kernel):
    """Plain RL, with missing samples, a background and saturation, and
    RL-TV are the same on both paths to float32 round-off; Biggs' automatic stop reaches
    the same quality (its step size is sampled on a lattice of the object,
    whose shape differs by the FFT grid's slack)."""
    rng = np.random.default_rng(2)
    scene = rng.random(shape) ** 3
    observed = simulate(scene, kernel, noise="poisson", photons=300, seed=2)
    observed = (observed + 0.05).astype(np.float32)
    observed[tuple(n // 3 for n in shape)] = np.nan
    runs = {}
    for separable in (True, False):
        if not separable:
            monkeypatch.setattr(kernels, "SEPARABLE", False)
        plain = richardson_lucy(observed, kernel, iterations=12, acceleration=None,
                                background=0.05, saturation=0.9, return_info=True)
        auto = richardson_lucy(observed, kernel, return_info=True)
        runs[separable] = plain, auto, richardson_lucy_tv(observed, kernel, iterations=30,
                                                          acceleration=None)
    (plain, info), (fft_plain, fft_info) = runs[True][0], runs[False][0]
    np.testing.assert_allclose(plain, fft_plain, rtol=1e-4, atol=1e-5 * float(fft_plain.max()))
    np.testing.assert_allclose(info.history, fft_info.history, rtol=1e-4)
    (auto, _), (fft_auto, _) = runs[True][1], runs[False][1]
    assert metrics.psnr(scene, auto, data_range=1.0) == pytest.approx(
        metrics.psnr(scene, fft_auto, data_range=1.0), abs=0.1)
    # RL-TV is not the same to round-off: on the FFT grid its (Neumann)
    # gradient also sees the jump into the grid's zero slack, and the floor of
    # |grad x| (a fraction of its mean) counts the slack
    tv, fft_tv = runs[True][2], runs[False][2]
    assert np.linalg.norm(tv - fft_tv) / np.linalg.norm(fft_tv) < 5e-3
    assert metrics.psnr(scene, tv, data_range=1.0) == pytest.approx(
        metrics.psnr(scene, fft_tv, data_range=1.0), abs=0.1)
