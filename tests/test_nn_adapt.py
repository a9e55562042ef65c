"""Test-time adaptation: a copy of a super-resolution model fine-tuned on the image itself."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deconvkit import dead_leaves  # noqa: E402
from deconvkit.cli import main  # noqa: E402
from deconvkit.nn import training, upscale  # noqa: E402
from deconvkit.nn.adapt import _image_pairs, adapt  # noqa: E402
from deconvkit.nn.upscale import shipped_model  # noqa: E402


@pytest.fixture(scope="module")
def scene():
    return dead_leaves((96, 96), seed=3, count=120, texture=0.2)


@pytest.fixture(scope="module")
def shipped():
    return training.load(shipped_model(2))


def _internal_l1(model, photo):
    """L1 error on crops of ``photo`` downscaled and upscaled again (drawn with
    another seed than adaptation's)."""
    x, y = _image_pairs([photo.astype(np.float32)], 2, 48, 32, np.random.default_rng(99))
    with torch.no_grad():
        return (model(x) - y).abs().mean().item()


def test_adapt_fits_the_image_and_leaves_the_model_alone(shipped):
    from skimage import data

    photo = data.camera()[100:228, 200:328] / 255.0
    before = {key: value.clone() for key, value in shipped.state_dict().items()}
    tuned = adapt(shipped, [photo], 2, steps=40, synthetic=0, blend=False)
    assert not tuned.training and tuned is not shipped
    for key, value in shipped.state_dict().items():
        assert torch.equal(value, before[key]), key
    # measured 0.0246 against 0.0259: a few percent within 40 steps
    assert _internal_l1(tuned, photo) < 0.97 * _internal_l1(shipped, photo)


def test_blend_is_the_mean_of_the_original_and_the_adapted_model(scene, shipped):
    from deconvkit.nn.adapt import Blend

    blend = adapt(shipped, [scene], 2, steps=4, synthetic=2)
    tuned = adapt(shipped, [scene], 2, steps=4, synthetic=2, blend=False)
    assert isinstance(blend, Blend) and blend.scale == 2 and not blend.training
    x = torch.from_numpy(scene[:20, :24].astype(np.float32))[None, None]
    with torch.no_grad():
        expected = (shipped(x) + tuned(x)) / 2
        assert torch.allclose(blend(x), expected, atol=1e-6)
        assert not torch.allclose(tuned(x), shipped(x), atol=1e-4)


def test_adapt_is_seeded(scene, shipped):
    a, b = (adapt(shipped, [scene], 2, steps=3, synthetic=4) for _ in range(2))
    c = adapt(shipped, [scene], 2, steps=3, synthetic=4, seed=1)
    for (key, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), key
    assert any(not torch.equal(x, z) for x, z in zip(a.state_dict().values(),
                                                     c.state_dict().values()))


def test_upscale_adapts_even_under_no_grad(scene):
    plain = upscale(scene, 2)
    with torch.no_grad():  # a caller's context must not silently stop the fine-tuning
        adapted = upscale(scene, 2, adapt=3)
    assert adapted.shape == plain.shape == (192, 192)
    assert np.abs(adapted - plain).max() > 1e-4


def test_upscale_adapts_each_model_of_a_chain(scene):
    steps = []
    adapted = upscale(scene, 4, adapt=2, progress=steps.append)  # x3 and x2, each adapted
    assert steps == [1, 2, 3, 4]
    assert adapted.shape == (384, 384)
    assert np.abs(adapted - upscale(scene, 4)).max() > 1e-4


def test_adapt_errors(scene, shipped):
    for bad in (-1, True, 2.5):
        with pytest.raises(ValueError, match="adapt must be a number of steps"):
            upscale(scene, 2, adapt=bad)
    with pytest.raises(ValueError, match="at least 8 pixels on each side"):
        upscale(np.zeros((5, 30)), 2, adapt=2)
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        adapt(shipped, [scene], 2, steps=0)
    with pytest.raises(ValueError, match="synthetic must be an int >= 0"):
        adapt(shipped, [scene], 2, steps=1, synthetic=-2)
    # a crop that is not a multiple of the scale is rounded down, not a shape error
    assert adapt(shipped, [scene], 2, steps=1, crop=33, synthetic=0).scale == 2


def test_cli_upscale_and_evaluate_adapt(tmp_path, capsys):
    from deconvkit import io

    grey = dead_leaves((40, 36), seed=1, count=60)
    io.write(tmp_path / "in.png", (np.stack([grey, grey**2, 1 - grey], -1) * 255).astype(np.uint8))
    assert main(["upscale", str(tmp_path / "in.png"), "--scale", "2", "--adapt", "2", "-o",
                 str(tmp_path / "out.png"), "-q"]) == 0
    assert io.read(tmp_path / "out.png").shape == (80, 72, 3)
    assert main(["upscale", str(tmp_path / "in.png"), "--adapt", "-1", "-o",
                 str(tmp_path / "bad.png")]) == 2
    assert "--adapt" in capsys.readouterr().err
