"""Operator conformance: every operator x boundary x ndim x dtype x backend x stride."""

import numpy as np
import pytest
import scipy.ndimage as ndi

from conftest import BACKENDS, to_backend
from deconvkit import BOUNDARIES, Convolution, Gradient, Pad, SpaceVariantConvolution, Warp
from deconvkit.operators import PAD_MODES, Diagonal
from deconvkit.testing import adjoint_error, assert_adjoint

SHAPES = {1: (23,), 2: (17, 20), 3: (9, 10, 11)}
KERNELS = {1: (4,), 2: (5, 4), 3: (3, 4, 3)}  # odd and even sizes
DTYPES = {"f32": np.float32, "f64": np.float64}


def _like(backend):
    if backend == "torch":
        import torch

        return torch.zeros(1)
    return None


def _conv_cases():
    for boundary in BOUNDARIES:
        for ndim in (1, 2, 3):
            for stride in (1, 2):
                for method in ("fft", "direct"):
                    for dname in DTYPES:
                        for backend in BACKENDS:
                            yield pytest.param(
                                boundary, ndim, stride, method, dname, backend,
                                id=f"conv-{boundary}-{ndim}d-s{stride}-{method}-{dname}-{backend}")


@pytest.mark.parametrize("boundary,ndim,stride,method,dname,backend", list(_conv_cases()))
def test_convolution_adjoint(boundary, ndim, stride, method, dname, backend):
    kernel = np.random.default_rng(ndim).random(KERNELS[ndim])
    op = Convolution(kernel, boundary=boundary, stride=stride, method=method)
    shape = SHAPES[ndim]
    if boundary == "valid":
        shape = tuple(n + k - 1 for n, k in zip(shape, KERNELS[ndim]))
    # a batch axis in front, and sizes that are not multiples of the stride
    err = assert_adjoint(op, (2,) + shape, like=_like(backend), dtype=DTYPES[dname])
    assert err <= (1e-12 if dname == "f64" else 1e-5)


@pytest.mark.parametrize("dname", sorted(DTYPES))
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_space_variant_convolution_adjoint(ndim, boundary, backend, dname):
    grid = (3, 2, 2)[:ndim]
    kernels = np.random.default_rng(ndim).random(grid + KERNELS[ndim])
    op = SpaceVariantConvolution(kernels, boundary=boundary)
    shape = op.input_shape(SHAPES[ndim])  # a batch axis in front too
    err = assert_adjoint(op, (2,) + shape, like=_like(backend), dtype=DTYPES[dname])
    assert err <= (1e-12 if dname == "f64" else 1e-5)


@pytest.mark.parametrize("dname", sorted(DTYPES))
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_warp_adjoint(ndim, backend, dname):
    rng = np.random.default_rng(ndim)
    matrix = np.eye(ndim) + 0.1 * rng.standard_normal((ndim, ndim))  # rotation, shear, zoom
    shape = SHAPES[ndim]
    out = tuple(n + 2 - i for i, n in enumerate(shape))  # another grid, smaller and larger
    op = Warp(matrix, rng.uniform(-2, 2, ndim), shape, out)
    assert op.output_shape((2,) + shape) == (2,) + out
    err = assert_adjoint(op, (2,) + shape, like=_like(backend), dtype=DTYPES[dname])
    assert err <= (1e-12 if dname == "f64" else 1e-5)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_warp_loop_keeps_no_matrix_and_matches_it(ndim):
    """With numba the points are computed as the loop reaches them (the matrix
    took 52 bytes a sample in 2-D, and 3.3 s to build for 2048 x 2048); the
    same interpolation as the sparse matrix, which numpy's fallback uses."""
    from deconvkit import _kernels

    if not _kernels.ENABLED:
        pytest.skip("the compiled loops need numba (the fast extra)")
    rng = np.random.default_rng(ndim)
    shape = SHAPES[ndim]
    out = tuple(n + 2 - i for i, n in enumerate(shape))
    op = Warp(np.eye(ndim) + 0.1 * rng.standard_normal((ndim, ndim)),
              rng.uniform(-2, 2, ndim), shape, out)
    x, y = rng.standard_normal((3,) + shape), rng.standard_normal((3,) + out)
    forward, adjoint = op.forward(x), op.adjoint(y)
    assert op._sparse is None  # nothing stored
    np.testing.assert_allclose(forward, (op.sparse @ x.reshape(3, -1).T).T.reshape(forward.shape),
                               atol=1e-12)
    np.testing.assert_allclose(adjoint, (op.sparse.T @ y.reshape(3, -1).T).T.reshape(
        adjoint.shape), atol=1e-12)
    single = op.forward(x.astype(np.float32))
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, forward, atol=1e-5)


def test_warp_adjoint_scattered_in_parts_matches_the_matrix(monkeypatch):
    """One volume on several threads: each scatters a run of rows into its own
    copy of the image, summed in order (the adjoint ran on one thread; 44 ms
    against 29 for a 64 x 256 x 256 volume on 2 cores)."""
    from deconvkit import _kernels

    if not _kernels.ENABLED:
        pytest.skip("the compiled loops need numba (the fast extra)")
    monkeypatch.setattr(_kernels, "_THREADS", 3)
    calls = []
    monkeypatch.setattr(_kernels, "_scatter_in_parts",
                        lambda *a, f=_kernels._scatter_in_parts: calls.append(a[-1]) or f(*a))
    shape, d = (40, 60, 60), 3
    rng = np.random.default_rng(d)
    op = Warp(np.eye(d) + 0.05 * rng.standard_normal((d, d)), rng.uniform(-2, 2, d), shape, shape)
    y = rng.standard_normal((1,) + shape)
    adjoint = op.adjoint(y)
    assert calls == [3]
    np.testing.assert_allclose(adjoint, (op.sparse.T @ y.reshape(1, -1).T).T.reshape(
        adjoint.shape), atol=1e-12)


def test_warp_on_a_gpu_uses_torch_sparse_product():
    """The product a GPU tensor takes (torch's sparse matrix on its device),
    run here on the CPU: the same as scipy's."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    op = Warp(np.eye(2) + 0.05 * rng.standard_normal((2, 2)), [0.4, -0.7], (9, 11), (8, 12))
    x, y = torch.tensor(rng.random((3, 99))).T, torch.tensor(rng.random((3, 96))).T
    np.testing.assert_allclose((op._torch_matrix(x, False) @ x).numpy(),
                               op.sparse @ x.numpy(), rtol=1e-12)
    np.testing.assert_allclose((op._torch_matrix(y, True) @ y).numpy(),
                               op.sparse.T @ y.numpy(), rtol=1e-12)


def test_warp_interpolates_linearly_and_keeps_dtype():
    x = np.random.default_rng(0).random((12, 13)).astype(np.float32)
    angle = np.deg2rad(3.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array([5.5, 6.0])
    op = Warp(rotation, centre - rotation @ centre + [0.3, -0.2], x.shape)
    out = op.forward(x)
    coords = np.tensordot(rotation, np.indices(x.shape), axes=1) + (
        centre - rotation @ centre + [0.3, -0.2])[:, None, None]
    expected = ndi.map_coordinates(x.astype(np.float64), coords, order=1, mode="constant",
                                   cval=0.0)
    inside = np.all((coords >= 0) & (coords <= np.array(x.shape)[:, None, None] - 1), axis=0)
    assert out.dtype == np.float32 and inside.sum() > 100
    np.testing.assert_allclose(out[inside], expected[inside], atol=1e-6)
    assert out.min() >= 0  # non-negative weights
    with pytest.raises(ValueError, match="2 x 2 matrix"):
        Warp(np.eye(3), [0, 0], (4, 4))
    with pytest.raises(ValueError, match="last 2 axes are"):
        op.forward(np.zeros((4, 4)))


@pytest.mark.parametrize("boundary", ["neumann", "periodic"])
@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_adjoint(ndim, backend, boundary):
    assert_adjoint(Gradient(ndim, spacing=0.5, boundary=boundary), SHAPES[ndim],
                   like=_like(backend))


def test_diagonal_composed_with_a_blur_is_the_blur_of_the_product():
    rng = np.random.default_rng(3)
    weights, x = rng.uniform(0.5, 2.0, (12, 10)), rng.standard_normal((12, 10))
    blur = Convolution(np.ones((3, 3)) / 9, boundary="valid")
    guided = blur @ Diagonal(weights)
    np.testing.assert_allclose(guided.forward(x), blur.forward(weights * x))
    assert guided.input_shape((10, 8)) == (12, 10)
    assert assert_adjoint(guided, (12, 10)) <= 1e-12


@pytest.mark.parametrize("mode", sorted(PAD_MODES))
def test_pad_adjoint_and_numpy_semantics(mode):
    x = np.arange(5.0)
    widths = ((7, 3),)  # wider than the axis: repeated reflections
    expected = np.pad(x, widths, mode="constant" if mode == "zero" else PAD_MODES[mode])
    np.testing.assert_array_equal(Pad(widths, mode).forward(x), expected)
    assert_adjoint(Pad(((3, 2), (1, 4)), mode), (6, 7))


def test_adjoint_test_detects_a_wrong_adjoint():
    class Wrong(Convolution):
        def _adjoint(self, y, shape=None):
            return super()._adjoint(y, shape) * 1.001

    assert adjoint_error(Wrong(np.ones(3) / 3, boundary="zero"), (16,)) > 1e-5
    with pytest.raises(AssertionError, match="dot test failed"):
        assert_adjoint(Wrong(np.ones(3) / 3, boundary="zero"), (16,))


SCIPY_MODES = {"symmetric": "reflect", "reflect": "mirror", "edge": "nearest",
               "periodic": "wrap", "zero": "constant"}


@pytest.mark.parametrize("boundary", sorted(SCIPY_MODES))
@pytest.mark.parametrize("kshape", [(5, 5), (4, 6), (1, 3)])
@pytest.mark.parametrize("method", ["fft", "direct"])
def test_forward_matches_scipy_ndimage(boundary, kshape, method, rng):
    x, kernel = rng.random((19, 16)), rng.random(kshape)
    expected = ndi.convolve(x, kernel, mode=SCIPY_MODES[boundary])
    result = Convolution(kernel, boundary=boundary, method=method).forward(x)
    np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-12)


def test_valid_is_the_interior_of_every_same_size_mode(rng):
    x, kernel = rng.random((20, 18)), rng.random((5, 4))
    valid = Convolution(kernel, boundary="valid").forward(x)
    assert valid.shape == (16, 15)
    same = Convolution(kernel, boundary="zero").forward(x)
    # valid sample i sees x[i : i + K]; in "same" output it is sample i + K - 1 - c
    np.testing.assert_allclose(valid, same[2:18, 1:16], rtol=1e-12)


def test_shapes_and_stride():
    op = Convolution(np.ones((3, 4)) / 12, boundary="valid", stride=2)
    assert op.output_shape((5, 21, 23)) == (5, 10, 10)
    assert op.input_shape((10, 10)) == (22, 23)
    assert Convolution(np.ones(3), stride=3).output_shape((10,)) == (4,)
    x = np.random.default_rng(0).random(12)
    full = Convolution(np.ones(3) / 3).forward(x)
    np.testing.assert_allclose(Convolution(np.ones(3) / 3, stride=3).forward(x), full[::3])


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_fft_equals_direct(boundary, rng):
    x, kernel = rng.random((3, 14, 13, 12)), rng.random((3, 4, 5))
    a = Convolution(kernel, boundary=boundary, method="fft")
    b = Convolution(kernel, boundary=boundary, method="direct")
    np.testing.assert_allclose(a.forward(x), b.forward(x), atol=1e-12)
    y = a.forward(x)
    np.testing.assert_allclose(a.adjoint(y), b.adjoint(y), atol=1e-12)


@pytest.mark.skipif("torch" not in BACKENDS, reason="torch not installed")
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_torch_matches_numpy(boundary, rng):
    import torch

    x, kernel = rng.random((2, 16, 15)), rng.random((5, 5))
    op = Convolution(kernel, boundary=boundary, stride=2)
    y = op.forward(torch.from_numpy(x))
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float64
    np.testing.assert_allclose(y.numpy(), op.forward(x), atol=1e-12)
    z = op.adjoint(torch.from_numpy(op.forward(x)), shape=x.shape)
    np.testing.assert_allclose(z.numpy(), op.adjoint(op.forward(x), shape=x.shape), atol=1e-12)


def test_norm_composition_and_transpose():
    kernel = np.array([0.25, 0.5, 0.25])
    op = Convolution(kernel, boundary="periodic")
    # the periodic norm is the largest |OTF| = 1 (at DC)
    assert op.norm((64,), iterations=2000, rtol=1e-12) == pytest.approx(1.0, rel=1e-3)
    composed = op @ Gradient(1).T @ Gradient(1)
    assert_adjoint(composed, (32,))
    x = np.random.default_rng(0).random(32)
    np.testing.assert_allclose(op.T.T.forward(x), op.forward(x))
    np.testing.assert_allclose(op.T.forward(x), op.adjoint(x))
    # ‖∇‖ in 1-D tends to 2 (Neumann boundary)
    assert Gradient(1).norm((64,), iterations=2000, rtol=1e-12) == pytest.approx(2.0, rel=2e-3)


def test_gradient_values():
    x = np.arange(12.0).reshape(3, 4)
    g = Gradient(2).forward(x)
    np.testing.assert_array_equal(g[0], [[4] * 4, [4] * 4, [0] * 4])
    np.testing.assert_array_equal(g[1], [[1, 1, 1, 0]] * 3)
    wrapped = Gradient(2, boundary="periodic").forward(x)
    np.testing.assert_array_equal(wrapped[0], [[4] * 4, [4] * 4, [-8] * 4])
    np.testing.assert_array_equal(wrapped[1], [[1, 1, 1, -3]] * 3)
    with pytest.raises(ValueError, match="boundary='mirror'"):
        Gradient(2, boundary="mirror")


def test_operator_input_is_not_modified(rng):
    x = rng.random((12, 12))
    kept = x.copy()
    for boundary in BOUNDARIES:
        op = Convolution(rng.random((3, 3)), boundary=boundary)
        op.adjoint(op.forward(x))
    np.testing.assert_array_equal(x, kept)


def test_operator_errors():
    with pytest.raises(ValueError, match="boundary='wrap'"):
        Convolution(np.ones(3), boundary="wrap")
    with pytest.raises(ValueError, match="stride"):
        Convolution(np.ones(3), stride=0)
    with pytest.raises(ValueError, match="smaller than the psf"):
        Convolution(np.ones(9)).forward(np.ones(5))
    with pytest.raises(ValueError, match="x has 1 dims but the psf has 2"):
        Convolution(np.ones((3, 3))).forward(np.ones(5))
    with pytest.raises(ValueError, match="psf contains NaN"):
        Convolution(np.array([1.0, np.nan]))
    with pytest.raises(TypeError, match="complex"):
        Convolution(np.ones(3, complex))


@pytest.mark.parametrize("backend", BACKENDS)
def test_dtype_policy(backend):
    op = Convolution(np.ones(3) / 3)
    for dtype, expected in [("float32", "float32"), ("float64", "float64")]:
        y = op.forward(to_backend(np.ones(8), backend, dtype))
        assert str(y.dtype).endswith(expected)


def test_blockwise_equals_whole_array_ops(monkeypatch):
    from deconvkit import _array_api

    monkeypatch.setattr(_array_api, "BLOCK_BYTES", 1 << 16)
    rng = np.random.default_rng(0)
    a = rng.random((300, 517)).astype(np.float32)  # ~600 KB: several blocks
    b = rng.random((300, 517)).astype(np.float32) + 0.5
    expected = np.maximum(a - 0.3, 0.0) / b

    def chain(x, y):
        x -= 0.3
        _array_api.clamp_min_(x, 0.0)
        x /= y
        return float(np.vdot(x.ravel(), y.ravel()))

    result = a.copy()
    sums = _array_api.blockwise(chain, result, b)
    assert len(sums) > 1
    np.testing.assert_allclose(result, expected, rtol=1e-6)
    assert np.isclose(sum(sums), np.vdot(expected.ravel(), b.ravel()), rtol=1e-5)
    # views of a larger grid (the observed window) work too; mismatched shapes get one call
    window = np.zeros((320, 540), np.float32)
    window[10:310, 11:528] = a
    _array_api.blockwise(chain, window[10:310, 11:528], b)
    np.testing.assert_allclose(window[10:310, 11:528], expected, rtol=1e-6)
    assert window[:10].sum() == 0 and window[:, :11].sum() == 0
    row = a.copy()
    assert len(_array_api.blockwise(lambda x, y: x.__imul__(y), row, b[:1])) == 1
    np.testing.assert_allclose(row, a * b[:1])


def test_blockwise_from_many_threads_at_once(monkeypatch):
    """Concurrent callers (dask's threaded scheduler runs chunks so) share the
    helper threads: each gets every block of its own arrays once, results in
    block order, and an error in a block reaches its caller."""
    from concurrent.futures import ThreadPoolExecutor

    from deconvkit import _array_api

    monkeypatch.setattr(_array_api, "BLOCK_BYTES", 1 << 12)
    ramp = np.repeat(np.arange(64, dtype=np.float32)[:, None], 100, axis=1)
    arrays = [ramp + 1000 * i for i in range(12)]

    def call(a):
        return _array_api.blockwise(lambda block: (float(block[0, 0]), len(block)), a)

    with ThreadPoolExecutor(6) as callers:
        results = list(callers.map(call, arrays))
    for i, blocks in enumerate(results):
        firsts = [value - 1000 * i for value, _ in blocks]
        assert len(blocks) > 2 and firsts[0] == 0 and firsts == sorted(firsts)
        assert sum(rows for _, rows in blocks) == 64 and firsts[-1] < 64

    def fail(block):
        if block[0, 0] > 0:
            raise ValueError("a block failed")

    with pytest.raises(ValueError, match="a block failed"):
        _array_api.blockwise(fail, ramp)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("binding", [True, False])
def test_fft_into_buffers_equals_rfftn(dtype, binding, monkeypatch):
    from deconvkit import _array_api

    if not binding:  # the copying fallback, as with a scipy that moved its binding
        monkeypatch.setattr(_array_api, "_pocketfft", None)
    rng = np.random.default_rng(0)
    x = rng.random((2, 12, 18)).astype(dtype)  # a batch axis, then a 2-D grid
    spectrum = np.empty((2, 12, 10), np.result_type(dtype, np.complex64))
    out = np.empty_like(x)
    assert _array_api.rfftn_into(x, (1, 2), spectrum) is spectrum
    np.testing.assert_allclose(spectrum, np.fft.rfftn(x, axes=(1, 2)), rtol=1e-5, atol=1e-5)
    assert _array_api.irfftn_into(spectrum, (1, 2), out) is out
    np.testing.assert_allclose(out, x, rtol=1e-5, atol=1e-6)
    # the conjugate pair: conj(rfftn(x)), and irfftn(conj(Z)) = a correlation
    assert _array_api.rfftn_into(x, (1, 2), spectrum, conjugate=True) is spectrum
    np.testing.assert_allclose(spectrum, np.conj(np.fft.rfftn(x, axes=(1, 2))), rtol=1e-5,
                               atol=1e-5)
    kernel = rng.random((12, 18))
    product = np.fft.rfftn(kernel) * np.conj(np.fft.rfftn(x, axes=(1, 2)))
    correlation = np.fft.irfftn(np.conj(product), s=(12, 18), axes=(1, 2))
    _array_api.irfftn_into(product.astype(spectrum.dtype), (1, 2), out, conjugate=True)
    np.testing.assert_allclose(out, correlation, rtol=1e-4, atol=1e-4)


def test_by_pieces_covers_every_row_once(monkeypatch):
    from deconvkit import _array_api

    monkeypatch.setattr(_array_api, "PIECE_BYTES", 1 << 12)  # many pieces, one ragged
    x = np.random.default_rng(1).standard_normal((5, 37, 41)).astype(np.float32)
    g = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    sums = _array_api.by_pieces(lambda a, b: (len(a), _array_api.vdot(a, b)), x, g)
    assert len(sums) > 2 and sum(n for n, _ in sums) == len(x)
    exact = np.vdot(x.astype(np.float64).ravel(), g.astype(np.float64).ravel())
    assert sum(v for _, v in sums) == pytest.approx(exact, rel=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_periodic_differences_are_the_rolled_differences(ndim, backend):
    from deconvkit.operators.differences import (
        periodic_differences,
        periodic_differences_adjoint,
    )

    rng = np.random.default_rng(ndim)
    shape = (2,) + (7, 6, 5)[:ndim]  # with a batch axis
    x, p = rng.random(shape), rng.random((ndim,) + shape)
    axes = range(-ndim, 0)
    rolled = np.stack([np.roll(x, -1, axis) - x for axis in axes])
    rolled_adjoint = sum(np.roll(p[i], 1, axis) - p[i] for i, axis in enumerate(axes))
    forward = periodic_differences(to_backend(x, backend), to_backend(np.zeros_like(p), backend))
    adjoint = periodic_differences_adjoint(to_backend(p, backend),
                                           to_backend(np.zeros_like(x), backend))
    np.testing.assert_allclose(np.asarray(forward), rolled, atol=1e-12)
    np.testing.assert_allclose(np.asarray(adjoint), rolled_adjoint, atol=1e-12)
    spacing = (0.5, 2.0, 3.0)[:ndim]  # and Gradient(periodic), which uses them, with spacing
    grad = Gradient(ndim, boundary="periodic", spacing=spacing)
    np.testing.assert_allclose(grad.forward(x), rolled / np.reshape(spacing, (-1,) + (1,) * x.ndim),
                               atol=1e-12)
    np.testing.assert_allclose(
        grad.adjoint(p), sum((np.roll(p[i], 1, axis) - p[i]) / h
                             for i, (axis, h) in enumerate(zip(axes, spacing))), atol=1e-12)
