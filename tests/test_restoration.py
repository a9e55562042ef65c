"""Restoration: properties first (flux, non-negativity, shapes, equivalences), then quality."""

import importlib
import warnings

import numpy as np
import pytest
import scipy.ndimage as ndi

from conftest import BACKENDS, to_backend
from deconvkit import (
    BOUNDARIES,
    METHODS,
    Convolution,
    blur,
    cell_phantom,
    cgls,
    deconvolve,
    gold,
    inverse_filter,
    landweber,
    metrics,
    psf,
    richardson_lucy,
    richardson_lucy_multiview,
    richardson_lucy_tv,
    simulate,
    tikhonov,
    total_variation,
    unsupervised_wiener,
    wavelet,
    wiener,
)
from deconvkit.restoration import Info, estimate_noise, noise_model


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
    3: (cell_phantom((24, 48, 48), seed=1), psf.gaussian((1.0, 1.5, 1.5))),
}
# gain over the blurred input that each method must reach on every case (dB)
MARGINS = {m: 1.0 for m in METHODS} | {"wiener": 0.5, "unsupervised_wiener": 0.3,
                                       "van_cittert": 0.5, "tikhonov": 0.5, "cgls": 0.5}
# a fixed amount of work, for comparisons across backends
FIXED = {"richardson_lucy": dict(iterations=15, acceleration=None),
         "richardson_lucy_tv": dict(iterations=15),
         "total_variation": dict(iterations=40), "wavelet": dict(iterations=20),
         "cgls": dict(iterations=30), "landweber": dict(iterations=20),
         "gold": dict(iterations=20),
         "van_cittert": dict(iterations=10), "wiener": dict(boundary="symmetric"),
         "tikhonov": dict(boundary="symmetric"), "unsupervised_wiener": dict(seed=0)}


def _valid_crop(scene, kernel):
    return scene[tuple(slice(k - 1 - k // 2, n - k // 2) for n, k in zip(scene.shape,
                                                                         kernel.shape))]


def _observe(ndim, noise=0.005, seed=1):
    scene, kernel = CASES[ndim]
    observed = simulate(scene, kernel, noise="gaussian", sigma=noise, boundary="valid",
                        seed=seed)
    return observed, kernel, _valid_crop(scene, kernel)


RECOVERY = [pytest.param(m, nd, id=f"{m}-{nd}d") for m in METHODS
            if m not in ("inverse_filter", "unsupervised_wiener") for nd in (1, 2, 3)]


@pytest.mark.parametrize("method,ndim", RECOVERY)
def test_recovers_known_object(method, ndim):
    observed, kernel, truth = _observe(ndim)
    restored = deconvolve(observed, kernel, method=method)
    assert restored.shape == observed.shape
    drange = float(truth.max() - truth.min())
    before = metrics.psnr(truth, observed, data_range=drange)
    after = metrics.psnr(truth, restored, data_range=drange)
    assert after > before + MARGINS[method], (before, after)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_unsupervised_wiener_recovers_periodic_data(ndim):
    # the sampler needs a Fourier-diagonal model; on a periodic scene it is exact
    scene, kernel = CASES[ndim]
    observed = simulate(scene, kernel, sigma=0.01, boundary="periodic", seed=0)
    restored, info = unsupervised_wiener(observed, kernel, boundary="periodic", seed=0,
                                         return_info=True)
    drange = float(np.ptp(scene))
    gain = metrics.psnr(scene, restored, data_range=drange) - metrics.psnr(scene, observed,
                                                                           data_range=drange)
    assert gain > 1.0
    # the sampled noise precision is the simulated one (sigma = 0.01)
    assert info.parameters["noise_precision"] == pytest.approx(1e4, rel=0.3)


def test_default_is_automatic_and_reports_choices():
    observed, kernel, truth = _observe(2)
    restored, info = deconvolve(observed, kernel, return_info=True)
    assert isinstance(info, Info) and info.method == "total_variation"
    assert info.parameters["boundary"] == "valid"
    assert info.parameters["weight"] > 0 and info.parameters["noise_sigma"] > 0
    assert info.iterations == len(info.history) > 0
    assert info.stopped_by in ("relative change", "iterations")
    border = metrics.border_psnr(truth, restored, width=8, data_range=1.0)
    assert border.border > border.interior - 1.0  # no edge ringing


SCALING = [(m, {"iterations": 30} if m == "van_cittert" else {}) for m in METHODS
           if m != "unsupervised_wiener"] + [
    # the Poisson likelihood of s*y is s times that of y: equivariant too
    ("total_variation", dict(data="poisson")),
    ("total_variation", dict(data="poisson", boundary="symmetric")),
    ("wavelet", dict(data="poisson")),
    ("total_variation", dict(boundary="symmetric")),
    ("gold", dict(iterations=30, repetitions=3, boost=1.3))]


@pytest.mark.parametrize("method,options", SCALING)
@pytest.mark.filterwarnings("ignore:the inverse filter amplifies noise")
def test_scaling_the_data_scales_the_result(method, options):
    # the units of the data (0-1, counts, ADU) must not change the restoration
    observed, kernel, _ = _observe(2, noise=0.02, seed=3)
    reference = deconvolve(observed, kernel, method=method, **options)
    # powers of two scale without rounding: any difference is a unit-dependent rule
    for scale in (2.0**-10, 2.0**10):
        scaled = deconvolve(observed * scale, kernel, method=method, **options) / scale
        np.testing.assert_allclose(scaled, reference, rtol=1e-6,
                                   atol=1e-6 * np.abs(reference).max())


def test_unsupervised_wiener_quality_does_not_depend_on_units():
    observed, kernel, truth = _observe(2, noise=0.02, seed=3)
    reference = metrics.psnr(truth, unsupervised_wiener(observed, kernel, seed=0),
                             data_range=1.0)
    for scale in (1e-3, 1e3):
        restored = unsupervised_wiener(observed * scale, kernel, seed=0) / scale
        assert metrics.psnr(truth, restored, data_range=1.0) == pytest.approx(reference, abs=0.2)


def test_poisson_wavelet_meets_the_optimality_conditions_of_its_objective():
    # periodic, on a side that is a multiple of 2**levels: the estimate is the
    # whole domain.  Where x > 0 everywhere, x minimises
    # sum(Ax - y log Ax) + w |detail(W x)|_1 iff, with g = W A^T (1 - y / Ax):
    # g = 0 on the approximation, g = -w sign(c) where a detail c is not 0,
    # |g| <= w where it is
    import pywt

    scene = blobs((64, 64)) + 0.3  # a background that keeps x > 0
    kernel = psf.gaussian(1.5)
    counts = np.round(simulate(scene, kernel, noise="poisson", photons=50, seed=4,
                               boundary="periodic") * 50)
    x, info = wavelet(counts, kernel, data="poisson", boundary="periodic", iterations=1000,
                      return_info=True)
    weight, op = info.parameters["weight"], Convolution(kernel, boundary="periodic")
    assert info.parameters["data"] == "poisson" and x.min() > 0  # no active constraint

    def coefficients(v):
        return pywt.coeffs_to_array(pywt.wavedecn(v, "sym4", mode="periodization", level=3))

    c, slices = coefficients(x)
    g, _ = coefficients(op.adjoint(1 - counts / op.forward(x)))
    detail = np.ones(c.shape, bool)
    detail[slices[0]] = False
    assert np.abs(g[~detail]).max() < 1e-6 * weight  # measured: 1e-12 after 500 iterations
    active = detail & (np.abs(c) > 1e-3 * np.abs(c).max())
    assert active.sum() > 50
    np.testing.assert_allclose(g[active], -weight * np.sign(c[active]), atol=1e-6 * weight)
    assert np.abs(g[detail & ~active]).max() < (1 + 1e-6) * weight
    # and it restores (measured +0.9 dB over the counts; wavelets suit these blobs poorly)
    assert (metrics.psnr(scene, x / 50, data_range=1.0)
            > metrics.psnr(scene, counts / 50, data_range=1.0) + 0.5)


@pytest.mark.parametrize("photons", [10, 100])
def test_poisson_term_on_counts_has_its_weight_in_count_units(photons):
    scene, kernel = CASES[2]
    truth = _valid_crop(scene, kernel)
    counts = np.round(simulate(scene, kernel, noise="poisson", photons=photons,
                               boundary="valid", seed=2) * photons).astype(np.uint16)
    restored = deconvolve(counts, kernel, data="poisson")
    # a weight too strong by the mean count (or a penalty in the wrong units)
    # left the flat start: far below even the blurred data
    psnr = metrics.psnr(truth, restored / photons, data_range=1.0)
    assert psnr > metrics.psnr(truth, counts / photons, data_range=1.0) + 3.0


@pytest.mark.parametrize("method", [m for m in METHODS
                                    if m not in ("inverse_filter", "richardson_lucy_tv")])
@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_agree_and_keep_type(method, backend):
    observed, kernel, _ = _observe(2, noise=0.01, seed=4)
    observed = observed.astype(np.float32)
    options = FIXED.get(method, {})
    reference = deconvolve(observed, kernel, method=method, **options)
    result = deconvolve(to_backend(observed, backend), kernel, method=method, **options)
    assert type(result) is type(to_backend(observed, backend))
    assert str(result.dtype).endswith("float32")
    np.testing.assert_allclose(np.asarray(result), reference, atol=2e-3 * reference.max())


@pytest.mark.parametrize("backend", BACKENDS)
def test_anderson_backends_agree_and_keep_type(backend):
    observed, kernel, _ = _observe(2, noise=0.01, seed=4)
    observed = observed.astype(np.float32)
    reference = richardson_lucy(observed, kernel, iterations=15, acceleration="anderson")
    result = richardson_lucy(to_backend(observed, backend), kernel, iterations=15,
                             acceleration="anderson")
    assert type(result) is type(to_backend(observed, backend))
    assert str(result.dtype).endswith("float32")
    np.testing.assert_allclose(np.asarray(result), reference, atol=2e-3 * reference.max())


@pytest.mark.parametrize("method", ["richardson_lucy", "richardson_lucy_tv"])
def test_sensitive_iterations_reach_the_same_quality_on_every_backend(method):
    # Biggs' extrapolation and the TV curvature amplify float32 round-off: the
    # iterates differ by a few percent between libraries, and one image's PSNR
    # by up to ~0.25 dB either way (measured); over several images the quality
    # does not differ
    scores = []
    for seed in range(3, 9):
        observed, kernel, truth = _observe(2, noise=0.01, seed=seed)
        observed = observed.astype(np.float32)
        scores.append([metrics.psnr(truth, np.asarray(deconvolve(to_backend(observed, b), kernel,
                                                                 method=method, iterations=15)),
                                    data_range=1.0) for b in BACKENDS])
    means = np.mean(scores, axis=0)
    assert max(means) - min(means) < 0.05


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("method", ["richardson_lucy", "richardson_lucy_tv", "total_variation",
                                    "landweber", "cgls", "wavelet"])
def test_every_boundary_keeps_shape_and_sign(boundary, method):
    scene, kernel = CASES[2]
    observed = simulate(scene, kernel, noise="poisson", photons=100, seed=2)
    restored = deconvolve(observed, kernel, method=method, boundary=boundary,
                          **FIXED.get(method, {}))
    assert restored.shape == observed.shape
    if method != "cgls":  # the others are non-negative by construction
        assert restored.min() >= -1e-6


def test_biggs_weight_from_a_lattice_of_rows_matches_the_whole_array(monkeypatch):
    # alpha's inner products over every 4th row of a large array: the default
    # (automatic) stop comes at the same iteration with the same quality as
    # with products over all rows (past it, Biggs' iterates drift apart as
    # float32's do from float64's)
    module = importlib.import_module("deconvkit.restoration.richardson_lucy")
    scene = np.kron(CASES[2][0], np.ones((16, 16)))[:1100, :1000]  # >= 2**20 samples
    kernel = psf.gaussian(2.0)
    observed = simulate(scene, kernel, sigma=0.01, seed=0).astype(np.float32)
    assert module._alpha_sample(observed.shape) != (...,)
    runs = [richardson_lucy(observed, kernel, return_info=True)]
    monkeypatch.setattr(module, "_alpha_sample", lambda shape: (...,))
    runs.append(richardson_lucy(observed, kernel, return_info=True))
    (sampled, info), (whole, whole_info) = runs
    assert info.iterations == whole_info.iterations
    assert metrics.psnr(scene, sampled, data_range=1.0) == pytest.approx(
        metrics.psnr(scene, whole, data_range=1.0), abs=0.02)


def test_gold_reaches_the_non_negative_least_squares_solution():
    from scipy.optimize import nnls

    kernel = psf.gaussian(1.5, ndim=1)
    truth = np.zeros(40)
    truth[[8, 20, 21, 30]] = [1.0, 2.0, 1.0, 0.5]
    matrix = np.stack([blur(row, kernel, boundary="periodic") for row in np.eye(40)], axis=1)
    observed = matrix @ truth + 0.01 * np.random.default_rng(0).standard_normal(40) + 0.02
    expected, _ = nnls(matrix, observed)
    # with Biggs' extrapolation 7e-10 off after 20000 iterations (0.05 after 6000, while
    # the samples that NNLS sets to 0 decay); plain ISRA is still 0.04 off after 20000
    restored = gold(observed, kernel, boundary="periodic", iterations=20000)
    np.testing.assert_allclose(restored, expected, atol=1e-6 * expected.max())
    assert restored.min() >= 0


def test_gold_boosting_concentrates_lines():
    # noise-free lines: boosting between repetitions puts more of each line's counts
    # on its own channel than the same number of plain iterations
    kernel = psf.gaussian(4.0, ndim=1)
    truth = np.zeros(200)
    truth[[60, 100, 105, 150]] = [500.0, 1000.0, 1000.0, 300.0]
    observed = blur(truth, kernel, boundary="zero") + 5.0
    plain = gold(observed, kernel, background=5.0, iterations=1000)
    boosted, info = gold(observed, kernel, background=5.0, iterations=100, repetitions=10,
                         boost=1.2, return_info=True)
    assert info.parameters["iterations"] == [100] * 10 and info.iterations == 1000
    assert np.abs(boosted - truth).sum() < 0.8 * np.abs(plain - truth).sum()
    assert boosted[truth > 0].sum() > plain[truth > 0].sum()


def test_gold_stopping_acceleration_and_callback():
    observed, kernel, _ = _observe(2)
    _, plain = gold(observed, kernel, acceleration=None, return_info=True)
    _, biggs = gold(observed, kernel, return_info=True)
    assert plain.stopped_by == biggs.stopped_by == "discrepancy"
    assert biggs.iterations < plain.iterations / 2  # measured 21 against 64
    seen = []
    _, info = gold(observed, kernel, iterations=4, repetitions=3, boost=1.1,
                   callback=lambda i, x: seen.append(i) or i == 6, return_info=True)
    assert seen == [1, 2, 3, 4, 5, 6] and info.stopped_by == "callback"
    assert info.parameters["iterations"] == [4, 2]
    # a time limit ends the repetitions after a fitted one (never after a boost)
    _, info = gold(observed, kernel, iterations=50, repetitions=100, boost=1.1,
                   time_limit=1e-6, return_info=True)
    assert info.stopped_by == "time limit" and len(info.parameters["iterations"]) == 1
    for bad, match in ((dict(repetitions=0), "repetitions must be"),
                       (dict(boost=0.0), "boost must be"), (dict(boost="x"), "boost must be"),
                       (dict(background=-1.0), "background must be"),
                       (dict(acceleration="anderson"), "acceleration"),
                       (dict(boost=1.2), "pass repetitions > 1 too")):
        with pytest.raises(ValueError, match=match):
            gold(observed, kernel, **bad)


def test_rl_conserves_flux_and_stays_non_negative():
    scene, kernel = CASES[2]
    observed = blur(scene, kernel, boundary="periodic")
    for acceleration in (None, "biggs"):
        restored = richardson_lucy(observed, kernel, iterations=25, boundary="periodic",
                                   acceleration=acceleration)
        assert restored.min() >= 0
        if acceleration is None:  # the extrapolation is clipped at 0, plain RL is exact
            assert restored.sum() == pytest.approx(observed.sum(), rel=1e-10)


@pytest.mark.parametrize("method", ["richardson_lucy", "richardson_lucy_tv"])
def test_rl_with_negative_psf_samples_warns_and_does_not_diverge(method):
    # a measured PSF after background subtraction: small negatives around the peak
    truth = cell_phantom((96, 96), seed=0)
    truth = truth / truth.max()
    kernel = psf.gaussian(2.0)
    measured = kernel + np.random.default_rng(0).normal(0.0, 0.002, kernel.shape)
    assert measured.min() < 0
    observed = simulate(truth, kernel, sigma=0.01, seed=0)
    clean = metrics.psnr(truth, deconvolve(observed, kernel, method=method), data_range=1)
    with pytest.warns(UserWarning, match="negative samples"):
        restored = deconvolve(observed, measured, method=method)
    assert metrics.psnr(truth, restored, data_range=1) > clean - 1  # it diverged before
    assert measured.min() < 0  # the caller's PSF is not modified


@pytest.mark.parametrize("method", ["total_variation", "wavelet", "landweber"])
def test_signed_signals_keep_their_sign(method):
    # a seismic-like zero-mean trace: x >= 0 clipped its negative half before
    t = np.linspace(0.0, 1.0, 1500)
    trace = np.sin(2 * np.pi * 11 * t) * np.exp(-2 * t)
    kernel = psf.gaussian(3.0, ndim=1)
    observed = simulate(trace, kernel, sigma=0.01, seed=0)
    restored, info = deconvolve(observed, kernel, method=method, return_info=True)
    assert info.parameters["nonnegative"] is False and restored.min() < -0.5
    # non-negative data with noise around a dark background keep the constraint
    dark = np.zeros(1500)
    dark[600:700] = 1.0
    with warnings.catch_warnings():  # x >= 0 cannot fit the dark background's negative noise
        warnings.filterwarnings("ignore", "landweber: the residual stayed above")
        _, info = deconvolve(simulate(dark, kernel, sigma=0.01, seed=1), kernel,
                             method=method, return_info=True)
    assert info.parameters["nonnegative"] is True


def test_tensors_that_require_grad():
    # autograd refused the in-place solvers' out= operations (a RuntimeError)
    torch = pytest.importorskip("torch")
    observed, kernel, _ = _observe(2, noise=0.01, seed=3)
    tensor = torch.tensor(observed, requires_grad=True)
    for method in ("total_variation", "richardson_lucy"):
        with pytest.warns(UserWarning, match="not differentiable: the image was detached"):
            restored = deconvolve(tensor, kernel, method=method, iterations=5)
        expected = deconvolve(observed, kernel, method=method, iterations=5)
        np.testing.assert_allclose(restored.numpy(), expected, rtol=1e-6, atol=1e-9)
    # the closed forms stay differentiable
    deconvolve(tensor, kernel, method="wiener", balance=0.01).sum().backward()
    assert tensor.grad is not None and torch.isfinite(tensor.grad).all()


def test_rl_warns_on_signed_data():
    kernel = psf.gaussian(3.0, ndim=1)
    observed = simulate(np.sin(np.linspace(0, 40, 1500)), kernel, sigma=0.01, seed=0)
    with pytest.warns(UserWarning, match="signed signal"):
        richardson_lucy(observed, kernel)
    with pytest.raises(ValueError, match="nonnegative must be True, False or 'auto'"):
        deconvolve(observed, kernel, nonnegative="yes")


def test_biggs_acceleration_needs_fewer_iterations():
    observed, kernel, truth = _observe(2, noise=0.002)
    history = {}
    for acceleration in (None, "biggs"):
        scores = []
        richardson_lucy(observed, kernel, iterations=40, acceleration=acceleration,
                        callback=lambda i, x, s=scores: s.append(metrics.psnr(truth, x,
                                                                              data_range=1.0)))
        history[acceleration] = scores
    target = history[None][-1]  # plain RL after 40 iterations
    reached = next(i for i, p in enumerate(history["biggs"], 1) if p >= target)
    assert reached <= 20


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_anderson_acceleration_needs_fewer_iterations_than_biggs(dim):
    # measured: plain RL's 40-iteration PSNR in 12 / 11 / 11 iterations
    # (1-D / 2-D / 3-D) against Biggs' 16 / 13 / 14
    observed, kernel, truth = _observe(dim, noise=0.002)
    history = {}
    for acceleration in (None, "biggs", "anderson"):
        scores = []
        richardson_lucy(observed, kernel, iterations=40, acceleration=acceleration,
                        callback=lambda i, x, s=scores: s.append(metrics.psnr(truth, x,
                                                                              data_range=1.0)))
        history[acceleration] = scores
    target = history[None][-1]
    reached = {name: next(i for i, p in enumerate(history[name], 1) if p >= target)
               for name in ("biggs", "anderson")}
    assert reached["anderson"] < reached["biggs"]
    assert reached["anderson"] <= 12


def test_anderson_in_float32_follows_float64():
    # the least squares weighs each change by A^T 1: unweighted, float32
    # round-off magnified in the extended border stalled it (measured:
    # float32 and float64 iterates within 9e-5 after 10 iterations)
    observed, kernel, _ = _observe(2, noise=0.002)
    single = richardson_lucy(observed.astype(np.float32), kernel, iterations=10,
                             acceleration="anderson")
    double = richardson_lucy(observed, kernel, iterations=10, acceleration="anderson")
    assert single.dtype == np.float32 and double.dtype == np.float64
    assert single.min() >= 0
    assert np.abs(single - double).max() < 1e-3 * np.abs(double).max()


def test_anderson_in_float32_does_not_stall_at_the_valid_border():
    # a photo, "valid" model: unweighted changes stalled float32 at 26.96 dB
    # interior after 30 iterations where float64 reaches 28.14 (measured)
    from skimage import data, transform

    truth = transform.resize(data.camera() / 255.0, (256, 256), order=1)
    kernel = psf.gaussian(2.0)
    observed = simulate(truth, kernel, sigma=0.001, seed=0)
    scores = [metrics.border_psnr(truth, richardson_lucy(observed.astype(dtype), kernel,
                                                         iterations=30, acceleration="anderson"),
                                  data_range=1.0).interior
              for dtype in (np.float32, np.float64)]
    assert abs(scores[0] - scores[1]) < 0.05


def test_rl_tv_refuses_anderson():
    observed, kernel, _ = _observe(2)
    with pytest.raises(ValueError, match="acceleration='anderson' is not one of: None, 'biggs'"):
        richardson_lucy_tv(observed, kernel, acceleration="anderson")


def test_anderson_restarts_when_a_change_grows():
    from deconvkit.restoration.richardson_lucy import _Anderson

    anderson = _Anderson(np.ones(8), memory=2)
    x = np.ones(8)
    for scale in (1.0, 0.5, 0.25):  # shrinking changes: the history grows
        anderson.step(x, x + scale * np.arange(8.0), np.empty(8))
    assert len(anderson.updates) == 3 and len(anderson.differences) == 2
    out = np.empty(8)
    dropped = anderson.step(x, x + 10.0 * np.arange(8.0), out)  # 40-fold: restart
    assert len(dropped) == 3 and len(anderson.updates) == 1 and not anderson.differences
    np.testing.assert_array_equal(out, x + 10.0 * np.arange(8.0))  # the plain RL update


def test_rl_valid_removes_edge_ringing():
    from skimage import data

    scene, kernel = data.camera()[100:260, 100:260] / 255.0, psf.gaussian(2.0)
    observed = simulate(scene, kernel, sigma=0.003, boundary="valid", seed=3)
    truth = _valid_crop(scene, kernel)
    valid = metrics.border_psnr(truth, richardson_lucy(observed, kernel, boundary="valid"),
                                width=8, data_range=1)
    wrapped = richardson_lucy(observed, kernel, boundary="periodic")
    periodic = metrics.border_psnr(truth, wrapped, width=8, data_range=1)
    assert valid.border > periodic.border + 3
    assert valid.border > valid.interior - 2


def test_rl_stops_when_its_residual_settles_above_the_noise():
    """Data that the model cannot fit (holes taken for zeros) keep the residual above
    the noise level: RL stops when it settles, not 500 iterations later."""
    observed, kernel, truth = _observe(2, noise=0.01)
    damaged, _ = _with_holes(observed)
    zeroed = np.nan_to_num(damaged)
    restored, info = richardson_lucy(zeroed, kernel, return_info=True)
    assert info.stopped_by == "residual settled" and info.iterations < 100  # measured 28
    capped = richardson_lucy(zeroed, kernel, iterations=500)  # measured 13.70 against 3.64 dB
    assert metrics.psnr(truth, restored, data_range=1.0) > \
        metrics.psnr(truth, capped, data_range=1.0) + 1.0


def test_rl_background_and_callback_stop():
    scene, kernel = CASES[1]
    observed = blur(scene, kernel, boundary="periodic") + 0.5
    aware = richardson_lucy(observed, kernel, background=0.5, iterations=50,
                            boundary="periodic", acceleration=None)
    # the background is modelled, not restored: the estimate's flux is the object's
    assert aware.sum() == pytest.approx(observed.sum() - 0.5 * observed.size, rel=1e-3)
    calls = []
    richardson_lucy(observed, kernel, iterations=50,
                    callback=lambda i, x: calls.append(i) or i == 3)
    assert calls == [1, 2, 3]


def test_auto_iterations_stop_by_discrepancy():
    observed, kernel, _ = _observe(2, noise=0.01)
    for solver in (richardson_lucy, landweber):
        _, info = solver(observed, kernel, return_info=True)
        assert info.stopped_by == "discrepancy"
        assert info.history[-1] <= info.parameters["noise_sigma"]
        assert info.iterations < 200


def test_total_variation_auto_stop_is_converged():
    # the frame's relative change stops it near the minimiser (a run 10x as
    # long): measured 0.28 % and 0.06 dB away (0.38 %, 0.06 dB without ADMM's
    # over-relaxation, which took 264 iterations to its 187)
    observed, kernel, truth = _observe(2)
    auto, info = total_variation(observed, kernel, return_info=True)
    assert info.stopped_by == "relative change"
    converged = total_variation(observed, kernel, iterations=10 * info.iterations)
    drange = float(truth.max() - truth.min())
    assert abs(metrics.psnr(truth, auto, data_range=drange)
               - metrics.psnr(truth, converged, data_range=drange)) < 0.1
    assert np.linalg.norm(auto - converged) <= 0.01 * np.linalg.norm(converged)


def test_settled_residual_stops_iterations():
    from deconvkit.restoration._stopping import Stopping

    falling, flat = Stopping("auto", settle_tol=1e-3), Stopping("auto", settle_tol=1e-3)
    # a residual still falling 1 % per iteration goes on; a flat one stops
    assert not any(falling.done(residual=0.99**i) for i in range(50))
    assert any(flat.done(residual=1.0 + 1e-6 * i) for i in range(50))
    assert flat.reason == "residual settled" and flat.iteration == flat.settle_window + 1


def test_richardson_lucy_tv_runs_past_the_discrepancy_principle():
    # RL-TV is regularised by its prior: the automatic stop waits for the
    # residual to settle; at the noise level (plain RL's stop) it was far short
    observed, kernel, truth = _observe(2, noise=0.02)
    drange = float(truth.max() - truth.min())
    auto, info = richardson_lucy_tv(observed, kernel, return_info=True)
    assert info.stopped_by == "residual settled" and info.iterations >= 20
    at_noise_level = 1 + next(i for i, r in enumerate(info.history)
                              if r <= info.parameters["noise_sigma"])
    early = richardson_lucy_tv(observed, kernel, iterations=at_noise_level)
    assert metrics.psnr(truth, auto, data_range=drange) > \
        metrics.psnr(truth, early, data_range=drange) + 1.0


def test_total_variation_primal_dual_path_converges_by_its_stop():
    # padded boundaries take the primal-dual solver: balanced steps reach the
    # long run's PSNR by the automatic stop (unbalanced, they were 0.5 dB short)
    observed, kernel, truth = _observe(2)
    drange = float(truth.max() - truth.min())
    auto, info = total_variation(observed, kernel, boundary="symmetric", return_info=True)
    longer = total_variation(observed, kernel, boundary="symmetric", iterations=1200)
    assert info.stopped_by == "relative change" and info.iterations < 400
    assert abs(metrics.psnr(truth, auto, data_range=drange)
               - metrics.psnr(truth, longer, data_range=drange)) < 0.1


@pytest.mark.parametrize("iterations", [7, "auto"])
def test_total_variation_primal_dual_keeps_a_dark_background_non_negative(iterations):
    # the primal's prox is returned, not its over-relaxed point: on a zero
    # background that point dipped to -0.026 after 7 iterations
    scene = np.zeros((48, 48))
    scene[10:14, 10:14], scene[30, 35], scene[25:40, 5:8] = 1.0, 3.0, 0.5
    kernel = psf.gaussian(1.5)
    observed = simulate(scene, kernel, sigma=0.02, seed=0, boundary="symmetric")
    restored = total_variation(observed, kernel, boundary="symmetric", iterations=iterations)
    assert restored.min() >= 0.0 and restored.max() > 1.0


def test_each_channel_can_take_its_own_psf():
    rng = np.random.default_rng(0)
    scene = rng.random((40, 40, 2))
    kernels = [psf.gaussian(1.0), psf.gaussian(2.5)]
    blurred = np.stack([blur(scene[..., c], k) for c, k in enumerate(kernels)], axis=-1)
    restored = deconvolve(blurred, kernels, channel_axis=-1, method="wiener")
    for c, k in enumerate(kernels):
        np.testing.assert_allclose(restored[..., c], deconvolve(blurred[..., c], k,
                                                                method="wiener"))
    with pytest.raises(ValueError, match="one PSF per channel"):
        deconvolve(blurred, kernels[:1], channel_axis=-1)
    with pytest.raises(ValueError, match="pass channel_axis"):
        deconvolve(blurred, kernels)


def test_time_limit_stops():
    observed, kernel, _ = _observe(2)
    _, info = deconvolve(observed, kernel, method="total_variation", iterations=10_000,
                         time_limit=0.2, return_info=True)
    assert info.stopped_by == "time limit" and info.iterations < 10_000


def test_cgls_equals_closed_form_tikhonov_on_a_periodic_problem():
    rng = np.random.default_rng(0)
    x = rng.random((40, 36))
    kernel = psf.gaussian(1.5)
    y = blur(x, kernel, boundary="periodic") + 0.01 * rng.standard_normal(x.shape)
    for penalty in ("identity", "gradient", "laplacian"):
        closed = tikhonov(y, kernel, weight=0.01, penalty=penalty, boundary="periodic")
        iterative = cgls(y, kernel, weight=0.01, penalty=penalty, boundary="periodic",
                         iterations=400)
        np.testing.assert_allclose(iterative, closed, atol=1e-6)


def test_tikhonov_auto_weight_survives_a_boundary_model_that_cannot_fit_the_edges():
    # a crop of a larger scene: the periodic and zero models leave a residual
    # above the noise at the frame's edges for every weight, and the
    # discrepancy principle on their own problem fell to 1e-11 (-50 dB)
    observed, kernel, truth = _observe(2, noise=0.01)
    blurred_psnr = metrics.psnr(truth, observed, data_range=1.0)
    weights = set()
    for boundary in ("periodic", "zero", "symmetric"):
        restored, info = tikhonov(observed, kernel, boundary=boundary, return_info=True)
        weights.add(info.parameters["weight"])
        assert metrics.psnr(truth, restored, data_range=1.0) > blurred_psnr - 3.0, boundary
    assert len(weights) == 1 and weights.pop() > 1e-6


@pytest.mark.parametrize("solver", [tikhonov, cgls])
def test_discrepancy_weight_out_of_reach_warns(solver):
    """A noise level no weight can meet gets a warning naming the end of the
    search returned (it was silent: an unregularised or an over-smoothed result)."""
    observed, kernel, _ = _observe(2, noise=0.01)
    with pytest.warns(RuntimeWarning, match="strongest weight .* below the noise level"):
        flat = solver(observed, kernel, noise_sigma=10.0, boundary="symmetric")
    with pytest.warns(RuntimeWarning, match="weakest weight .* above the noise level"):
        solver(observed, kernel, noise_sigma=1e-9, boundary="symmetric")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        met = solver(observed, kernel, boundary="symmetric")
    assert np.abs(np.diff(flat)).mean() < 0.5 * np.abs(np.diff(met)).mean()  # over-smoothed


@pytest.mark.parametrize("method", ["total_variation", "richardson_lucy_tv", "richardson_lucy",
                                    "wavelet", "wiener", "unsupervised_wiener"])
def test_data_in_tiny_units_restore_as_in_any_other(method):
    """A spectrum's or an image's flux in physical units (HST's 1e-17
    erg/s/cm^2/A): the automatic weights had floors of 1e-30 (squared
    gradients) and 1e-12 (RL-TV's mean level), so total variation moved by 9%
    of the range and RL-TV by 140% at that scale.  (RL's automatic stop
    turns on rounding: a scale of 1 + 1e-15 moved RL-TV's by 3 iterations,
    1.5% of the range; they run a fixed count here, their weights chosen.
    Wiener's CGLS stop by one iteration: 1e-4 of the range.)"""
    observed, kernel, _ = _observe(2, noise=0.01, seed=4)
    observed = observed + 0.05
    options = {"iterations": 30} if method.startswith("richardson") else {}
    reference = deconvolve(observed, kernel, method=method, **options)
    for scale in (1e-17, 1e12):
        scaled = deconvolve(observed * scale, kernel, method=method, **options) / scale
        np.testing.assert_allclose(scaled, reference, atol=1e-3 * np.ptp(reference))


def test_unsupervised_wiener_is_reproducible_by_default():
    observed, kernel, _ = _observe(2, noise=0.02, seed=3)
    np.testing.assert_array_equal(unsupervised_wiener(observed, kernel),
                                  unsupervised_wiener(observed, kernel))
    assert not np.array_equal(unsupervised_wiener(observed, kernel),
                              unsupervised_wiener(observed, kernel, seed=1))


@pytest.mark.parametrize("method", ["total_variation", "wavelet", "landweber", "wiener",
                                    "cgls", "unsupervised_wiener"])
def test_a_constant_under_the_data_changes_nothing(method):
    """A camera's offset or a sky level, not given as a background: the result
    is the same plus the constant.  Before, stops relative to the estimate's
    level, steps scaled by the data's peak and starts at 0 made it depend on
    the constant (measured on a photo in [0, 1] plus 100: total variation
    stopped after 16 iterations instead of 103, 4.8 dB lower; Landweber ran
    to its cap at -11.9 dB; unsupervised Wiener lost 6.1 dB)."""
    from skimage import data

    scene = data.camera()[100:228, 100:228] / 255.0
    kernel = psf.gaussian(2.0)
    observed = simulate(scene, kernel, sigma=0.01, seed=0)
    options = {"seed": 0} if method == "unsupervised_wiener" else {}
    plain, info = deconvolve(observed, kernel, method=method, return_info=True, **options)
    lifted, lifted_info = deconvolve(observed + 100.0, kernel, method=method, return_info=True,
                                     **options)
    assert metrics.psnr(scene, lifted - 100.0, data_range=1.0) == pytest.approx(
        metrics.psnr(scene, plain, data_range=1.0), abs=0.2)
    assert abs(lifted_info.iterations - info.iterations) <= 0.1 * info.iterations + 2
    if method == "total_variation":  # with missing samples too (filled with 0 inside)
        observed[40:50, 40:60] = np.nan
        plain, info = deconvolve(observed, kernel, method=method, return_info=True)
        lifted, lifted_info = deconvolve(observed + 100.0, kernel, method=method,
                                         return_info=True)
        assert metrics.psnr(scene, lifted - 100.0, data_range=1.0) == pytest.approx(
            metrics.psnr(scene, plain, data_range=1.0), abs=0.2)
        assert abs(lifted_info.iterations - info.iterations) <= 0.1 * info.iterations + 2


def test_tv_quadratic_term_alone_is_closed_form_tikhonov():
    # weight 0 leaves only 1/2 |Ax - y|^2 + mu/2 |Dx|^2: ADMM must land on the
    # closed form (the same periodic differences)
    rng = np.random.default_rng(1)
    x = rng.random((40, 36))
    kernel = psf.gaussian(1.5)
    y = blur(x, kernel, boundary="periodic") + 0.01 * rng.standard_normal(x.shape)
    closed = tikhonov(y, kernel, weight=0.01, penalty="gradient", boundary="periodic")
    restored = deconvolve(y, kernel, method="total_variation", weight=0.0,
                          quadratic_weight=0.01, nonnegative=False, boundary="periodic",
                          iterations=3000)
    np.testing.assert_allclose(restored, closed, atol=1e-4)


@pytest.mark.parametrize("boundary", ["periodic", "symmetric"])  # ADMM, primal-dual
def test_tv_solvers_minimise_the_objective_with_the_quadratic_term(boundary):
    observed, kernel, _ = _observe(2, noise=0.02, seed=5)
    op = Convolution(kernel / kernel.sum(), boundary=boundary)
    if boundary == "periodic":  # ADMM's differences wrap around
        def grad(x):
            return np.stack([np.roll(x, -1, axis) - x for axis in range(x.ndim)])
    else:
        from deconvkit.operators import Gradient
        grad = Gradient(observed.ndim).forward

    def objective(x, weight, mu):
        g = grad(x)
        return (0.5 * np.sum((op.forward(x) - observed) ** 2)
                + weight * np.sum(np.sqrt((g * g).sum(0))) + 0.5 * mu * np.sum(g * g))

    weight, mu = 0.01, 0.05
    with_term, without = (deconvolve(observed, kernel, method="total_variation", weight=weight,
                                     quadratic_weight=m, boundary=boundary, iterations=2000)
                          for m in (mu, 0.0))
    assert not np.allclose(with_term, without, atol=1e-3)  # the term changes the result
    # each is the better minimiser of its own objective
    assert objective(with_term, weight, mu) < objective(without, weight, mu)
    assert objective(without, weight, 0.0) < objective(with_term, weight, 0.0)


def test_wiener_without_noise_is_the_inverse():
    rng = np.random.default_rng(0)
    x = rng.random(64)
    kernel = np.array([0.2, 0.6, 0.2])  # OTF >= 0.2: invertible
    y = blur(x, kernel, boundary="periodic")
    np.testing.assert_allclose(wiener(y, kernel, balance=0, boundary="periodic"), x, atol=1e-10)
    with pytest.warns(UserWarning, match="amplifies noise"):
        np.testing.assert_allclose(inverse_filter(y, kernel, boundary="periodic"), x, atol=1e-10)


def test_wiener_auto_balance_tracks_noise():
    scene, kernel = CASES[2]
    low = simulate(scene, kernel, sigma=0.003, seed=1)
    high = simulate(scene, kernel, sigma=0.05, seed=1)
    lam_low = wiener(low, kernel, return_info=True)[1].parameters["balance"]
    lam_high = wiener(high, kernel, return_info=True)[1].parameters["balance"]
    assert lam_high > 20 * lam_low


@pytest.mark.parametrize("noise,photons,sigma", [("gaussian", 300, 0.02), ("poisson", 200, 0.0),
                                                 ("mixed", 500, 0.01)])
def test_noise_model_matches_the_simulated_noise(noise, photons, sigma):
    from skimage import data

    scene = data.camera() / 255.0
    kernel = psf.gaussian(1.5)
    observed = simulate(scene, kernel, noise=noise, sigma=sigma, photons=photons, seed=0)
    clean = blur(scene, kernel)
    actual = np.std(observed - clean)
    assert estimate_noise(observed) == pytest.approx(actual, rel=0.1)
    model = noise_model(observed)
    if noise != "gaussian":
        gain = clean.max() / photons  # variance per unit of intensity
        assert model.gain == pytest.approx(gain, rel=0.2)


def test_noise_of_a_linearly_interpolated_image_is_not_zero(monkeypatch):
    """A bilinear demosaic's red channel: three samples in four are averages of
    their neighbours, and most second differences vanish.  Their median said
    the noise was 4e-17 and TV restored the channel at 9.7 dB; now a warning,
    and the noise from the other differences (here 0.0013 against 0.005 at the
    measured samples; the restored channel measured 29.2 dB)."""
    from skimage import data

    rng = np.random.default_rng(0)
    red = blur(data.camera()[:120, :120] / 255.0, psf.gaussian(1.5))
    sparse = np.zeros_like(red)
    sparse[::2, ::2] = red[::2, ::2] + rng.normal(0, 0.005, (60, 60))
    weights = np.array([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    seen = np.zeros_like(red)
    seen[::2, ::2] = 1
    bilinear = ndi.convolve(sparse, weights, mode="mirror") / ndi.convolve(seen, weights,
                                                                            mode="mirror")
    with pytest.warns(UserWarning, match="linearly interpolated"):
        level = estimate_noise(bilinear)
    assert 0.0005 < level < 0.005
    # flat regions of a noise-free phantom, and whole numbers, are no lattice:
    # no warning (an error here), and the estimates are what they were
    from deconvkit.restoration import _stopping

    clean = blur(cell_phantom((120, 120), seed=0), psf.gaussian(1.0))
    counts = np.random.default_rng(1).poisson(0.05, (90, 90)).astype(float)
    found = [estimate_noise(clean), estimate_noise(counts)]
    monkeypatch.setattr(_stopping, "_interpolated", lambda detail, y: False)
    assert found == [estimate_noise(clean), estimate_noise(counts)]


@pytest.mark.parametrize("method", ["richardson_lucy", "total_variation"])
def test_background_map_with_channels(method):
    """A background map of the image's shape gives each channel its part; one of
    a channel's shape serves every channel (it was refused with the shape of
    one channel named, which the caller never passed)."""
    scene, kernel = CASES[2]
    sky = np.stack([np.full(scene.shape, level) for level in (0.1, 0.3)], axis=-1)
    data = np.stack([scene, scene[::-1]], axis=-1) + sky
    each = deconvolve(data, kernel, method=method, channel_axis=-1, background=sky,
                      iterations=10)
    for c in range(2):
        np.testing.assert_allclose(each[..., c], deconvolve(
            data[..., c], kernel, method=method, background=float(sky[0, 0, c]),
            iterations=10), rtol=1e-6, atol=1e-8)
    shared = deconvolve(data, kernel, method=method, channel_axis=-1, iterations=10,
                        background=sky[..., 0])
    np.testing.assert_allclose(shared[..., 1], deconvolve(
        data[..., 1], kernel, method=method, background=0.1, iterations=10),
        rtol=1e-6, atol=1e-8)


def test_channel_axis_with_time_points_before_it():
    """A (T, Z, C, Y, X) hyperstack with a 3-D PSF and channel_axis=2: each
    channel's time points are restored one by one (it was refused, and the
    command line, naming no channel axis then, blurred across C as if it were Z)."""
    rng = np.random.default_rng(0)
    stack = rng.random((2, 10, 2, 20, 22)) + 0.5
    kernel = psf.gaussian((1.0, 1.2, 1.2), shape=(5, 7, 7))
    options = dict(method="richardson_lucy", iterations=4)  # Biggs: a step per time point
    restored, infos = deconvolve(stack, kernel, channel_axis=2, return_info=True, **options)
    assert restored.shape == stack.shape
    assert len(infos) == 2 and all(len(each) == 2 for each in infos)  # per channel, per t
    for t in range(2):
        for c in range(2):
            np.testing.assert_allclose(restored[t, :, c],
                                       deconvolve(stack[t, :, c], kernel, **options),
                                       rtol=1e-6, atol=1e-9)


def test_time_points_are_restored_one_by_one():
    """Axes before the PSF's are items restored on their own: each time point of
    a fading series chooses its own weight and stops on its own (they were one
    problem: the first frame's result depended on the last's, by 0.006 for RL
    with Biggs' shared step size), with its own part of a background map."""
    scene, kernel = CASES[2]
    rng = np.random.default_rng(1)
    frames = np.stack([simulate(scene * fade, kernel, sigma=0.01, seed=t)
                       for t, fade in enumerate((1.0, 0.4, 0.1))])
    sky = rng.random(frames.shape) * 0.05
    series, infos = deconvolve(frames + sky, kernel, background=sky, return_info=True)
    assert series.shape == frames.shape and len(infos) == 3
    for t in range(3):
        alone, info = deconvolve(frames[t] + sky[t], kernel, background=sky[t],
                                 return_info=True)
        np.testing.assert_allclose(series[t], alone, rtol=1e-6, atol=1e-9)
        assert infos[t].parameters["weight"] == pytest.approx(info.parameters["weight"])
    assert infos[0].parameters["weight"] != pytest.approx(infos[2].parameters["weight"])
    plain = deconvolve(frames, kernel, method="richardson_lucy", iterations=5)
    np.testing.assert_allclose(plain[2], deconvolve(frames[2], kernel, method="richardson_lucy",
                                                    iterations=5), rtol=1e-6, atol=1e-9)


def test_channel_axis_restores_each_channel_and_reports_each():
    scene, kernel = CASES[2]
    colour = np.stack([scene, 0.5 * scene, scene[::-1]], axis=-1)
    observed = simulate(colour, kernel[..., None], noise="none")
    restored, infos = deconvolve(observed, kernel, channel_axis=-1, method="richardson_lucy",
                                 iterations=10, return_info=True)
    assert restored.shape == colour.shape and len(infos) == 3
    single = deconvolve(observed[..., 2], kernel, method="richardson_lucy", iterations=10)
    np.testing.assert_allclose(restored[..., 2], single)
    first = deconvolve(np.moveaxis(observed, -1, 0), kernel, channel_axis=0,
                       method="richardson_lucy", iterations=10)
    np.testing.assert_allclose(np.moveaxis(first, 0, -1), restored)


@pytest.mark.parametrize("dtype,expected", [(np.uint8, np.float32), (np.uint16, np.float32),
                                            (np.int32, np.float64), (np.float16, np.float32),
                                            (np.float64, np.float64),
                                            # FITS data as astropy reads them: big-endian
                                            (">f8", np.float64), (">f4", np.float32),
                                            (">i2", np.float32)])
def test_integer_and_half_inputs_are_promoted(dtype, expected):
    image = (blobs((32, 32)) * 100).astype(dtype)
    assert deconvolve(image, psf.gaussian(1.0), method="richardson_lucy",
                      iterations=3).dtype == expected


@pytest.mark.parametrize("method", [m for m in METHODS if m != "inverse_filter"])
def test_inputs_are_never_modified(method):
    scene, kernel = CASES[2]
    observed = simulate(scene, kernel, seed=0)
    kept_image, kept_psf = observed.copy(), kernel.copy()
    deconvolve(observed, kernel, method=method, **FIXED.get(method, {}))
    np.testing.assert_array_equal(observed, kept_image)
    np.testing.assert_array_equal(kernel, kept_psf)


def test_output_is_not_clipped():
    kernel = np.array([0.2, 0.6, 0.2])
    y = blur(np.r_[np.zeros(10), 5.0, np.zeros(10)], kernel, boundary="periodic")
    assert wiener(y, kernel, balance=0, boundary="periodic").max() == pytest.approx(5.0)


def test_unknown_option_names_the_method_and_its_options():
    with pytest.raises(TypeError, match="richardson_lucy does not take num_iter; it takes"):
        deconvolve(np.ones((16, 16)), psf.gaussian(1.0), method="richardson_lucy", num_iter=3)


def test_no_warnings_on_clean_runs():
    observed, kernel, _ = _observe(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for method in METHODS:
            if method != "inverse_filter":
                deconvolve(observed, kernel, method=method, **FIXED.get(method, {}))


@pytest.mark.parametrize("shape", [(2, 90, 101), (40, 37, 30)])
def test_plain_rl_with_the_data_on_the_grid_equals_the_window_path(shape, monkeypatch):
    """Plain RL copies the data onto the FFT grid (contiguous passes); the
    estimate and the residual history are those of the strided window path."""
    import sys

    rl = sys.modules["deconvkit.restoration.richardson_lucy"]
    rng = np.random.default_rng(0)
    image = (rng.random(shape) + rng.normal(0, 0.05, shape)).astype(np.float32)  # some < 0
    kernel = psf.gaussian(1.5, ndim=2 if shape[0] == 2 else 3)
    used = []

    class Recording(rl._GridModel):
        def __init__(self, op, image, *, data_on_grid=False):
            used.append(data_on_grid)
            super().__init__(op, image, data_on_grid=data_on_grid and not window_only[0])

    monkeypatch.setattr(rl, "_GridModel", Recording)
    monkeypatch.setattr(sys.modules["deconvkit._kernels"], "SEPARABLE", False)  # the FFTs
    results, window_only = [], [False]
    for window_only[0] in (False, True):
        results.append(richardson_lucy(image, kernel, iterations=8, acceleration=None,
                                       return_info=True))
    assert used == [True, True]  # requested both times, refused the second
    (on_grid, info), (window, reference) = results
    np.testing.assert_allclose(on_grid, window, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(info.history, reference.history, rtol=1e-6)
    # Biggs keeps the window path (its memory has no room for the copy)
    richardson_lucy(image, kernel, iterations=2, acceleration="biggs")
    assert used[-1] is False


@pytest.mark.parametrize("boundary", ["valid", "periodic", "symmetric"])
def test_rl_divides_by_adjoint_of_ones_only_where_it_is_not_one(boundary):
    import sys

    rl = sys.modules["deconvkit.restoration.richardson_lucy"]
    image = np.random.default_rng(0).random((2, 96, 100)).astype(np.float32)
    op = Convolution(psf.gaussian(1.5).astype(np.float32), boundary=boundary)
    model = (rl._GridModel if boundary in ("valid", "periodic") else rl._Model)(op, image)
    weights = np.maximum(model.adjoint_of_ones(), 1e-6)
    normaliser = rl._Normaliser(weights)
    stored = sum(slab.size for _, slab in normaliser.slabs)
    assert stored < weights.size / 2  # a shell, not the whole array (nothing for periodic)
    x = np.random.default_rng(1).random(weights.shape).astype(np.float32) + 0.5
    divided = x.copy()
    normaliser.divide(divided)
    np.testing.assert_allclose(divided, x / weights, rtol=2e-4)
    # no unit interior (a non-normalised blur): every sample is divided
    uneven = rl._Normaliser(weights * 0.5)
    assert sum(slab.size for _, slab in uneven.slabs) == weights.size


@pytest.mark.parametrize("acceleration,arrays", [(None, 5), ("biggs", 5.5)])
def test_rl_memory_does_not_grow_with_iterations(acceleration, arrays):
    import tracemalloc

    from deconvkit import _array_api
    from deconvkit.restoration._common import fft_grid

    observed = simulate(blobs((1024, 1024), count=12), psf.gaussian(2.0), sigma=0.01, seed=0)
    observed = observed.astype(np.float32)
    grid, _ = fft_grid(Convolution(psf.gaussian(2.0), boundary="valid"), observed.shape)
    volume = np.prod(grid) * 4
    peaks = []
    for iterations in (5, 30):
        tracemalloc.start()
        richardson_lucy(observed, psf.gaussian(2.0), iterations=iterations,
                        acceleration=acceleration)
        peaks.append(tracemalloc.get_traced_memory()[1] / volume)
        tracemalloc.stop()
    # live arrays in padded volumes: OTF, spectrum, grid buffer, estimate, and
    # plain RL's data on the grid (Biggs instead: h, and g on every 4th row);
    # then the shell of A^T 1 and, per
    # thread, two cache-sized blocks; no more after 30 iterations than after 5
    blocks = 2 * _array_api.BLOCK_BYTES * _array_api._THREADS / volume
    assert peaks[1] == pytest.approx(peaks[0], abs=0.1)
    assert peaks[1] < arrays + 0.15 + blocks


# --- missing data: NaN samples leave the data term -------------------------------------------

MISSING = ("richardson_lucy", "richardson_lucy_tv", "total_variation", "wavelet", "landweber",
           "gold")
SATURATION = ("richardson_lucy", "richardson_lucy_tv", "total_variation")


def _with_holes(observed, seed=2):
    """``observed`` with 10 % of its samples and a block (a cosmic-ray track, a
    detector gap) set to NaN; returns the copy and the mask of the holes.  The
    block is narrower than the PSFs, so the blur carries data into all of it."""
    holes = np.random.default_rng(seed).random(observed.shape) < 0.1
    holes[tuple(slice(n // 3, n // 3 + max(2, min(n // 8, 8))) for n in observed.shape)] = True
    damaged = observed.copy()
    damaged[holes] = np.nan
    return damaged, holes


@pytest.mark.parametrize("method,ndim", [pytest.param(m, nd, id=f"{m}-{nd}d")
                                         for m in MISSING for nd in (1, 2, 3)])
def test_missing_samples_are_left_out(method, ndim):
    observed, kernel, truth = _observe(ndim)
    damaged, holes = _with_holes(observed)
    whole = deconvolve(observed, kernel, method=method)
    restored = deconvolve(damaged, kernel, method=method)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        zeroed = deconvolve(np.nan_to_num(damaged), kernel, method=method)
    if method in ("landweber", "gold"):  # zeros are no data to stop on (RL: see below)
        assert any("stayed above the noise level" in str(w.message) for w in caught)
    assert np.isfinite(restored).all()
    assert np.array_equal(np.isnan(damaged), holes)  # the input is left as it was
    score = metrics.psnr(truth, restored, data_range=1.0)
    # close to the undamaged data's result, even on the holes (filled through the blur
    # and the prior), and far better than taking the holes for zeros; the widest gap
    # measured is total_variation's in 1-D: 1.8-2.0 dB where each stops, 2.01 dB
    # between the minimisers (4000 iterations)
    assert score > metrics.psnr(truth, whole, data_range=1.0) - 2.5
    assert score > metrics.psnr(truth, zeroed, data_range=1.0) + 3.0
    # the holes themselves: measured from 1.4 dB below the blurred data's PSNR (wavelet,
    # 1-D) to 9.1 dB above it (total_variation, 2-D)
    assert metrics.psnr(truth[holes], restored[holes], data_range=1.0) > \
        metrics.psnr(truth, observed, data_range=1.0) - 1.5


@pytest.mark.parametrize("acceleration", [None, "biggs", "anderson"])
def test_missing_border_equals_smaller_frame(acceleration):
    """Under the "valid" model a frame of NaN around the image is exactly the smaller image:
    its samples see nothing the observed ones do not (RL's update is exact for that)."""
    observed, kernel, _ = _observe(2)
    framed = np.pad(observed, 5, constant_values=np.nan)
    small = richardson_lucy(observed, kernel, iterations=20, acceleration=acceleration)
    large = richardson_lucy(framed, kernel, iterations=20, acceleration=acceleration)
    np.testing.assert_allclose(large[5:-5, 5:-5], small, rtol=1e-7, atol=1e-9)


def test_missing_samples_stop_and_weights():
    observed, kernel, _ = _observe(2)
    damaged, _ = _with_holes(observed)
    # the noise level and the automatic weight come from the observed samples only
    assert estimate_noise(damaged) == pytest.approx(estimate_noise(observed), rel=0.1)
    _, info = total_variation(damaged, kernel, return_info=True)
    _, reference = total_variation(observed, kernel, return_info=True)
    assert info.parameters["weight"] == pytest.approx(reference.parameters["weight"], rel=0.2)
    # the residual history is over the observed samples: it reaches the noise level
    _, info = richardson_lucy(damaged, kernel, return_info=True)
    assert info.stopped_by == "discrepancy" and np.isfinite(info.history).all()


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_missing_samples_wiener_valid(ndim):
    """wiener's "valid" model (solved by cgls with a masked data term) leaves NaN out too."""
    observed, kernel, truth = _observe(ndim)
    damaged, _ = _with_holes(observed)
    restored = deconvolve(damaged, kernel, method="wiener")  # boundary "auto": valid
    whole = deconvolve(observed, kernel, method="wiener")
    zeroed = deconvolve(np.nan_to_num(damaged), kernel, method="wiener")
    score = metrics.psnr(truth, restored, data_range=1.0)
    assert score > metrics.psnr(truth, whole, data_range=1.0) - 1.0
    assert score > metrics.psnr(truth, zeroed, data_range=1.0) + 3.0
    # it is cgls with wiener's balance as its weight, which then takes NaN directly
    # (to CG's round-off: the PSF normalised twice sends it on another path)
    _, info = wiener(damaged, kernel, boundary="valid", return_info=True)
    direct = cgls(damaged, kernel, weight=info.parameters["balance"])
    assert metrics.psnr(truth, direct, data_range=1.0) == pytest.approx(score, abs=0.01)


def test_missing_samples_other_methods_refuse():
    observed, kernel, _ = _observe(2)
    damaged, _ = _with_holes(observed)
    with pytest.raises(ValueError, match="wiener cannot leave out with this boundary"):
        deconvolve(damaged, kernel, method="wiener", boundary="symmetric")
    with pytest.raises(ValueError, match="tikhonov cannot leave out.*'total_variation'"):
        deconvolve(damaged, kernel, method="tikhonov")
    with pytest.raises(ValueError, match="image contains NaN.*missing data"):
        wiener(damaged, kernel)
    with pytest.raises(ValueError, match="image contains NaN"):
        cgls(damaged, kernel)  # the automatic weight needs every sample
    with pytest.raises(ValueError, match="cgls cannot leave out with its automatic weight"):
        deconvolve(damaged, kernel, method="cgls")
    # with a weight it can, as cgls itself does (deconvolve had refused it)
    np.testing.assert_array_equal(deconvolve(damaged, kernel, method="cgls", weight=0.01),
                                  cgls(damaged, kernel, weight=0.01))
    with pytest.raises(ValueError, match="image contains Inf"):
        deconvolve(np.where(np.isnan(damaged), np.inf, damaged), kernel)
    with pytest.raises(ValueError, match="image is all NaN"):
        deconvolve(np.full_like(observed, np.nan), kernel)


@pytest.mark.parametrize("method", MISSING)
def test_missing_samples_backends_agree(method, backend):
    observed, kernel, _ = _observe(2)
    damaged, _ = _with_holes(observed)
    options = dict(FIXED[method])
    if method in SATURATION:
        options["saturation"] = float(np.nanquantile(damaged, 0.95))
    expected = deconvolve(damaged, kernel, method=method, **options)
    result = deconvolve(to_backend(damaged, backend), kernel, method=method, **options)
    np.testing.assert_allclose(np.asarray(result), expected, rtol=1e-6, atol=1e-6)


# --- saturation: samples at the detector's maximum are lower bounds --------------------------

@pytest.mark.parametrize("method,ndim", [pytest.param(m, nd, id=f"{m}-{nd}d")
                                         for m in SATURATION for nd in (1, 2, 3)])
def test_saturated_samples_are_lower_bounds(method, ndim):
    """The brightest tenth of the data clipped at a level, as a saturated detector
    records it: taking those samples as lower bounds (the data term only asks Ax >=
    level there) beats taking the clipped values as measurements."""
    scene, kernel = CASES[ndim]
    truth = _valid_crop(scene, kernel)
    observed = simulate(scene, kernel, sigma=0.005, boundary="valid", seed=1)
    level = float(np.quantile(observed, 0.9))
    clipped = np.minimum(observed, level)
    with warnings.catch_warnings():  # RL cannot reach the noise level on clipped data
        warnings.filterwarnings("ignore", "richardson_lucy: the residual stayed above")
        as_data = metrics.psnr(truth, deconvolve(clipped, kernel, method=method),
                               data_range=1.0)
    restored, info = deconvolve(clipped, kernel, method=method, saturation=level,
                                return_info=True)
    score = metrics.psnr(truth, restored, data_range=1.0)
    assert info.parameters["saturation"] == level and np.isfinite(restored).all()
    # measured: +2.0 to +7.6 dB in 2-D and 3-D; in 1-D the boxes' clipped tops are
    # already what the prior prefers (-0.2 to +0.04 dB)
    assert score > as_data + (1.5 if ndim > 1 else -0.5)


@pytest.mark.parametrize("method", SATURATION)
def test_saturation_above_the_data_changes_nothing(method):
    observed, kernel, _ = _observe(2)
    expected = deconvolve(observed, kernel, method=method)
    level = float(observed.max()) + 1.0
    np.testing.assert_array_equal(deconvolve(observed, kernel, method=method,
                                             saturation=level), expected)
    with pytest.raises(ValueError, match="saturation must be a finite level"):
        deconvolve(observed, kernel, method=method, saturation="high")
    with pytest.raises(TypeError, match="wiener does not take saturation"):
        deconvolve(observed, kernel, method="wiener", saturation=level)


def test_wavelet_cycle_spinning_over_every_shift_commutes_with_shifts():
    # periodic, 1-D, levels 3: 8 shifts make the estimate translation-invariant,
    # which the decimated transform alone is not
    scene, kernel = CASES[1]
    observed = simulate(scene, kernel, boundary="periodic", seed=0)

    def gap(shifts):
        options = dict(boundary="periodic", shifts=shifts, iterations=30, nonnegative=False,
                       weight=0.005)  # fixed: the noise estimate is not shift-invariant
        moved = wavelet(np.roll(observed, 3), kernel, **options)
        return np.abs(moved - np.roll(wavelet(observed, kernel, **options), 3)).max()

    assert gap(8) < 1e-10 < 1e-3 < gap(1)
    with pytest.raises(ValueError, match="shifts must be a power of two"):
        wavelet(observed, kernel, shifts=3)
    with pytest.raises(ValueError, match="data='gaussian' only"):
        wavelet(np.abs(observed) * 100, kernel, shifts=2, data="poisson")


@pytest.mark.parametrize("acceleration", [None, "biggs", "anderson"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_rl_background_map(acceleration, backend):
    """A background array: a constant one is the number, a varying one (a sky
    gradient) is modelled where its mean is not."""
    scene, kernel = CASES[2]
    rows = np.linspace(0.0, 1.0, scene.shape[0])[:, None]
    sky = 0.05 + 0.6 * rows * np.ones(scene.shape)
    observed = simulate(scene, kernel, noise="poisson", photons=300, boundary="valid",
                        seed=5) + _valid_crop(sky, kernel)
    truth = _valid_crop(scene, kernel)
    background = _valid_crop(sky, kernel)
    data = to_backend(observed, backend)
    flat = richardson_lucy(data, kernel, background=0.3, acceleration=acceleration,
                           iterations=10)
    same = richardson_lucy(data, kernel, background=to_backend(np.full(observed.shape, 0.3),
                                                               backend),
                           acceleration=acceleration, iterations=10)
    np.testing.assert_allclose(np.asarray(same), np.asarray(flat), rtol=1e-6, atol=1e-9)
    mapped, info = richardson_lucy(data, kernel, background=to_backend(background, backend),
                                   acceleration=acceleration, return_info=True)
    mean, stopped = richardson_lucy(data, kernel, background=float(background.mean()),
                                    acceleration=acceleration, return_info=True)
    # a flat background under a sloping sky: the residual settles above the noise level
    assert stopped.stopped_by == "residual settled" and stopped.iterations < 100
    assert info.parameters["background"] == "array"
    assert metrics.psnr(truth, np.asarray(mapped), data_range=1.0) > \
        metrics.psnr(truth, np.asarray(mean), data_range=1.0) + 3.0
    with pytest.raises(ValueError, match="background has shape"):
        richardson_lucy(observed, kernel, background=background[1:])


@pytest.mark.parametrize("solver", [total_variation, wavelet])
def test_variational_background_under_gaussian_data(solver):
    """``background`` is the model y = Ax + b for the least-squares term too: a
    level or a sky map is the same as the data less it (it once applied to the
    Poisson term only and was ignored here), and a sloping sky map given beats
    its mean level given."""
    scene, kernel = CASES[2]
    rows = np.linspace(0.0, 1.0, scene.shape[0])[:, None]
    sky = _valid_crop(0.05 + 0.6 * rows * np.ones(scene.shape), kernel)
    clean = simulate(scene, kernel, sigma=0.01, boundary="valid", seed=5)
    observed = clean + sky
    fixed = dict(noise_sigma=0.01, iterations=30)
    for background, less in ((0.2, observed - 0.2), (sky, clean)):
        given, info = solver(observed, kernel, background=background, return_info=True,
                             **fixed)
        np.testing.assert_allclose(given, solver(less, kernel, **fixed), rtol=1e-6,
                                   atol=1e-7)
    assert info.parameters["background"] == "array"
    truth = _valid_crop(scene, kernel)
    mapped = solver(observed, kernel, background=sky)
    level = solver(observed, kernel, background=float(sky.mean()))
    assert metrics.psnr(truth, mapped, data_range=1.0) > \
        metrics.psnr(truth, level, data_range=1.0) + 3.0
    with pytest.raises(ValueError, match="background must be >= 0"):
        solver(observed, kernel, background=-1.0)
    with pytest.raises(ValueError, match="background has shape"):
        solver(observed, kernel, background=sky[1:])


def test_total_variation_poisson_background_map():
    """Under the Poisson term a constant background array is its level."""
    scene, kernel = CASES[2]
    counts = simulate(scene, kernel, noise="poisson", photons=200, boundary="valid", seed=2)
    level = total_variation(counts, kernel, data="poisson", background=3.0, iterations=20)
    array, info = total_variation(counts, kernel, data="poisson", iterations=20,
                                  background=np.full(counts.shape, 3.0), return_info=True)
    np.testing.assert_allclose(array, level, rtol=1e-6, atol=1e-8)
    assert info.parameters["background"] == "array"


@pytest.mark.parametrize("penalty", ["laplacian", "gradient", "identity"])
def test_ictm_unconstrained_converges_to_tikhonov(penalty):
    # landweber with a weight minimises Tikhonov-Miller; without the constraint on a
    # periodic problem that is tikhonov's closed form (1e-7 after 1000 iterations)
    scene, kernel = CASES[2]
    observed = simulate(scene, kernel, sigma=0.01, boundary="periodic", seed=0)
    expected = tikhonov(observed, kernel, weight=0.01, penalty=penalty, boundary="periodic")
    restored = landweber(observed, kernel, weight=0.01, penalty=penalty, boundary="periodic",
                         nonnegative=False, iterations=1000)
    np.testing.assert_allclose(restored, expected, atol=1e-6)


def test_ictm_takes_tikhonovs_weight_and_keeps_the_sign():
    observed, kernel, truth = _observe(3, noise=0.02)
    restored, info = landweber(observed, kernel, weight="auto", return_info=True)
    _, reference = tikhonov(observed, kernel, penalty="laplacian", return_info=True)
    assert info.parameters["weight"] == pytest.approx(reference.parameters["weight"])
    assert info.parameters["penalty"] == "laplacian" and restored.min() >= 0
    free = landweber(observed, kernel, weight=info.parameters["weight"], nonnegative=False)
    # on the sparse 3-D phantom the constraint gains (measured 22.27 against 21.98 dB)
    assert metrics.psnr(truth, restored, data_range=1.0) > \
        metrics.psnr(truth, free, data_range=1.0) + 0.1
    with pytest.raises(ValueError, match="penalty"):
        landweber(observed, kernel, weight=0.1, penalty="tv")
    with pytest.raises(ValueError, match="pass weight='auto'"):  # it would go unused
        landweber(observed, kernel, penalty="gradient")


def test_bounded_landweber_reaches_the_bvls_solution():
    from scipy.optimize import lsq_linear

    kernel = psf.gaussian(1.5, ndim=1)
    truth = np.zeros(40)
    truth[5:15], truth[22:26] = 1.0, 0.6  # a bar at the bound, one below it
    matrix = np.stack([blur(row, kernel, boundary="periodic") for row in np.eye(40)], axis=1)
    observed = matrix @ truth + 0.02 * np.random.default_rng(1).standard_normal(40)
    expected = lsq_linear(matrix, observed, bounds=(0.0, 1.0), method="bvls").x
    restored, info = landweber(observed, kernel, boundary="periodic", upper=1.0,
                               iterations=20000, return_info=True)
    np.testing.assert_allclose(restored, expected, atol=1e-4)
    assert info.parameters["upper"] == 1.0
    assert restored.max() <= 1.0 and restored.min() >= 0.0
    for bad in ("1", float("inf"), True):
        with pytest.raises(ValueError, match="upper must be a finite number"):
            landweber(observed, kernel, upper=bad)
    with pytest.raises(ValueError, match="leaves nothing between 0 and it"):
        landweber(observed, kernel, upper=-1.0)


def test_bounded_landweber_restores_a_two_level_object():
    # a binary object (text, a mask, a barcode) sits on both bounds: BVLS gains
    # (measured on scikit-image's horse, 256 px, sigma 0.02: +3.7 dB under a
    # Gaussian blur of 2 px, +2.8 under 11 px motion, at the discrepancy stop)
    grid = np.indices((96, 96)).astype(float)
    rng = np.random.default_rng(2)
    truth = np.zeros((96, 96))
    for centre in rng.uniform(10, 86, (8, 2)):
        truth[np.hypot(*(grid - centre[:, None, None])) < rng.uniform(4, 12)] = 1.0
    kernel = psf.gaussian(2.0)
    observed = simulate(truth, kernel, sigma=0.02, seed=0)
    plain = landweber(observed, kernel)
    bounded = landweber(observed, kernel, upper=1.0)
    assert bounded.max() <= 1.0  # measured here: 24.84 against 21.29 dB
    assert metrics.psnr(truth, bounded, data_range=1.0) > \
        metrics.psnr(truth, plain, data_range=1.0) + 2.0


def test_multiview_of_one_view_is_richardson_lucy():
    observed, kernel, _ = _observe(2)
    observed = np.clip(observed, 0, None)
    for boundary in ("valid", "periodic"):
        one = richardson_lucy(observed, kernel, iterations=15, acceleration=None,
                              boundary=boundary)
        joint = richardson_lucy_multiview([observed], [kernel], iterations=15,
                                          acceleration=None, boundary=boundary)
        np.testing.assert_allclose(joint, one, rtol=1e-9, atol=1e-12)
    torch = pytest.importorskip("torch")
    views = [observed.astype(np.float32), np.roll(observed, 3, axis=0).astype(np.float32)]
    reference = richardson_lucy_multiview(views, [kernel, kernel], iterations=10)
    on_torch = richardson_lucy_multiview([torch.from_numpy(v) for v in views],
                                         [kernel, kernel], iterations=10)
    assert isinstance(on_torch, torch.Tensor) and on_torch.dtype == torch.float32
    np.testing.assert_allclose(on_torch.numpy(), reference, atol=2e-3 * reference.max())


def test_multiview_recovers_what_each_view_resolves():
    scene = cell_phantom((48, 80, 80), seed=1)
    scene = scene / scene.max()
    along = [psf.gaussian((3.0, 0.8, 0.8), shape=(13, 13, 13), ndim=3),
             psf.gaussian((0.8, 0.8, 3.0), shape=(13, 13, 13), ndim=3)]
    views = [simulate(scene, k, noise="poisson", photons=300, boundary="valid", seed=i)
             for i, k in enumerate(along)]
    truth = scene[6:-6, 6:-6, 6:-6]
    joint, info = richardson_lucy_multiview(views, along, return_info=True)
    singles = [metrics.psnr(truth, richardson_lucy(v, k), data_range=1.0)
               for v, k in zip(views, along)]
    # measured: 26.57 dB against 22.46 and 25.69 for each view alone (and 25.75 for
    # the mean of the views with the mean PSF), in 13 iterations (34 without Biggs)
    assert metrics.psnr(truth, joint, data_range=1.0) > max(singles) + 0.5
    assert info.stopped_by == "discrepancy" and info.parameters["views"] == 2
    # views 2 px out of register: the residual settles above the noise level and the
    # joint estimate stops there (measured 22.02 dB at 25 iterations, 15.12 at 500)
    shifted = [views[0], np.roll(views[1], 2, axis=1)]
    settled, info = richardson_lucy_multiview(shifted, along, return_info=True)
    assert info.stopped_by == "residual settled" and info.iterations < 100
    assert metrics.psnr(truth, settled, data_range=1.0) > metrics.psnr(
        truth, richardson_lucy_multiview(shifted, along, iterations=500), data_range=1.0) + 3
    with pytest.raises(ValueError, match="one PSF per view"):
        richardson_lucy_multiview(views, along[:1])
    # PSFs of other extents are zero-padded to the largest (it was an error)
    short = along[1][1:-1, 1:-1, 1:-1] / along[1][1:-1, 1:-1, 1:-1].sum()
    np.testing.assert_allclose(
        richardson_lucy_multiview(views, [along[0], short], iterations=5),
        richardson_lucy_multiview(views, [along[0], psf.crop_or_pad(short, along[1].shape)],
                                  iterations=5), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="give PSFs of one dimensionality"):
        richardson_lucy_multiview(views, [along[0], along[1][0]])
    with pytest.raises(ValueError, match="registered to one frame"):
        richardson_lucy_multiview([views[0], views[1][1:]], along, boundary="periodic")
    with pytest.raises(TypeError, match="sequences"):
        richardson_lucy_multiview(views[0], along[0])
    np.testing.assert_array_equal(  # read noise: the shifted-Poisson model
        richardson_lucy_multiview(views, along, iterations=5, read_noise=2.0),
        richardson_lucy_multiview([v + 4.0 for v in views], along, iterations=5,
                                  background=4.0))


def test_multiview_leaves_each_views_missing_samples_out():
    """NaN in a view (a deskewed view's wedges, a frame it does not cover) is
    missing data in that view only (the views had to be complete)."""
    scene = cell_phantom((64, 64), seed=0)
    along = [psf.gaussian((4.0, 0.7), shape=(21, 21)), psf.gaussian((0.7, 4.0), shape=(21, 21))]
    views = [simulate(scene, k, noise="poisson", photons=200, boundary="valid", seed=i)
             for i, k in enumerate(along)]
    truth = scene[10:-10, 10:-10]
    cut = [v.copy() for v in views]
    cut[0][:, :15] = np.nan
    cut[1][30:, 30:] = np.nan
    left_out = richardson_lucy_multiview(cut, along, iterations=30)
    as_zero = richardson_lucy_multiview([np.nan_to_num(v) for v in cut], along, iterations=30)
    whole = richardson_lucy_multiview(views, along, iterations=30)
    assert np.isfinite(left_out).all()
    # measured 11.91 dB against 12.75 with nothing missing and 7.03 with 0 for NaN
    assert metrics.psnr(truth, left_out, data_range=1.0) > \
        metrics.psnr(truth, as_zero, data_range=1.0) + 2.0
    assert metrics.psnr(truth, left_out, data_range=1.0) > \
        metrics.psnr(truth, whole, data_range=1.0) - 2.0
    # one view with every sample of the other's gaps: those gaps follow that view
    one = [views[0], np.where(np.isnan(cut[1]), np.nan, views[1])]
    _, info = richardson_lucy_multiview(one, along, return_info=True)
    assert info.iterations < 500


def test_rl_read_noise_is_the_shifted_poisson_model():
    obj = cell_phantom((128, 128), seed=0)
    obj = obj / obj.max()
    kernel = psf.airy(2.0)
    h = kernel.shape[0] // 2
    rng = np.random.default_rng(0)
    counts = rng.poisson(blur(obj, kernel, boundary="valid") * 20 + 2.0) + \
        rng.normal(0.0, 3.0, (128 - 2 * h, 128 - 2 * h))
    shifted = richardson_lucy(counts, kernel, background=2.0, read_noise=3.0)
    np.testing.assert_array_equal(shifted, richardson_lucy(counts + 9.0, kernel,
                                                           background=11.0))
    truth = obj[h:-h, h:-h] * 20
    plain = richardson_lucy(counts, kernel, background=2.0)
    # measured: 21.92 against 20.30 dB (20 photons at the peak, read noise 3)
    assert metrics.psnr(truth, shifted, data_range=20) > \
        metrics.psnr(truth, plain, data_range=20) + 0.5
    with pytest.raises(ValueError, match="read_noise"):
        richardson_lucy(counts, kernel, read_noise=-1.0)
    np.testing.assert_array_equal(
        richardson_lucy_tv(counts, kernel, background=2.0, read_noise=3.0, iterations=10),
        richardson_lucy_tv(counts + 9.0, kernel, background=11.0, iterations=10))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_thin_stack_under_a_taller_psf_is_restored_with_the_whole_psf(backend):
    """Ten planes of a widefield stack whose PSF spans 31: under the "valid"
    boundary the solvers take the whole PSF (the object estimated on the
    planes beyond the stack too, whose light the stack receives), where a
    PSF cropped to the stack models that haze as objects in it.  Measured
    here (seeds 0-3, PSNR dB, cropped -> whole): RL +0.63 to +1.58, TV -0.03
    to +1.09, Landweber +0.20 to +1.35, CGLS +0.21 to +1.50, Wiener +0.00
    to +0.84; seed 2 is tested."""
    kernel = psf.widefield((31, 17, 17), na=1.2, z_step=0.2, pixel_size=0.1)
    volume = cell_phantom((44, 48, 48), seed=2)
    truth = volume[17:27]
    rng = np.random.default_rng(2)
    stack = rng.poisson(np.clip(blur(volume, kernel)[17:27], 0, None) * 1000) / 1000
    cropped = psf.crop_or_pad(kernel, (9, 17, 17))

    def score(method, k):
        restored = deconvolve(to_backend(stack, backend), k, method=method)
        assert tuple(restored.shape) == stack.shape
        return metrics.psnr(truth, np.asarray(restored), data_range=truth.max())

    for method, gain in (("richardson_lucy", 1.0), ("total_variation", 0.7), ("cgls", 1.0)):
        assert score(method, kernel) > score(method, cropped) + gain


def test_missing_samples_in_a_thin_stack_under_a_taller_psf():
    """The NaN fill behind Wiener's automatic balance smoothed by the PSF under
    the symmetric boundary, which refused a PSF longer than the stack; it now
    cuts the PSF to the stack (a local stand-in needs no more)."""
    kernel = psf.gaussian((3.0, 1.0, 1.0), shape=(21, 7, 7))
    volume = cell_phantom((30, 32, 32), seed=0)
    stack = blur(volume, kernel)[12:20] + np.random.default_rng(0).normal(0, 0.01, (8, 32, 32))
    stack[3, 10, 10] = np.nan
    for method in ("wiener", "richardson_lucy", "total_variation"):
        restored = deconvolve(stack, kernel, method=method)
        assert restored.shape == stack.shape and np.isfinite(restored).all()
