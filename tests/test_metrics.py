import numpy as np
import pytest
import skimage.metrics

from deconvkit import metrics


def test_psnr_and_ssim_are_scikit_images_with_explicit_range():
    rng = np.random.default_rng(0)
    a = rng.random((32, 32))
    b = a + 0.05 * rng.standard_normal(a.shape)
    assert metrics.psnr(a, b, data_range=1.0) == pytest.approx(
        skimage.metrics.peak_signal_noise_ratio(a, b, data_range=1.0))
    assert 0 < metrics.ssim(a, b, data_range=1.0) < 1
    assert metrics.psnr(a, b) == pytest.approx(metrics.psnr(a, b, data_range=np.ptp(a)))
    assert metrics.ssim(np.stack([a] * 3, -1), np.stack([b] * 3, -1), data_range=1.0,
                        channel_axis=-1) == pytest.approx(metrics.ssim(a, b, data_range=1.0))


def test_border_psnr_separates_edge_errors():
    ref = np.zeros((64, 64))
    img = ref.copy()
    img[:4] = 0.1  # an error only along one edge
    result = metrics.border_psnr(ref, img, width=8, data_range=1.0)
    assert result.interior == float("inf")
    assert result.border == pytest.approx(10 * np.log10(1 / (0.01 * 4 * 64 / (64 * 64 - 48 * 48))))


def test_metric_errors():
    with pytest.raises(ValueError, match="differs"):
        metrics.psnr(np.zeros(4), np.zeros(5))
    with pytest.raises(ValueError, match="data_range must be > 0"):
        metrics.psnr(np.zeros(4), np.ones(4))
    with pytest.raises(ValueError, match="no interior"):
        metrics.border_psnr(np.random.rand(20, 20), np.zeros((20, 20)), width=10)
    with pytest.raises(ValueError, match="width must be an int >= 1"):
        metrics.border_psnr(np.random.rand(20, 20), np.zeros((20, 20)), width=0)


def test_identical_images_have_infinite_psnr():
    # scikit-image divides by the zero error (a warning, an error under -W error)
    reference = np.random.default_rng(0).random((16, 16))
    assert metrics.psnr(reference, reference.copy()) == float("inf")
    assert metrics.border_psnr(reference, reference, width=4).interior == float("inf")
