"""Architectures: output shapes in 1-D/2-D/3-D, and that they learn on the synthetic data."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deconvkit.nn.data import DegradedDataset  # noqa: E402
from deconvkit.nn.models import EDSR, ESPCN, FSRCNN, DCGANGenerator, UNet  # noqa: E402


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("upsampler", ["transposed", "subpixel", "resize"])
def test_shapes(ndim, upsampler):
    x = torch.randn(2, 1, *(8,) * ndim)
    assert FSRCNN(2, d=8, s=4, m=1, upsampler=upsampler, ndim=ndim)(x).shape[2:] == (16,) * ndim
    assert FSRCNN(3, d=8, s=4, m=1, upsampler=upsampler, ndim=ndim)(x).shape[2:] == (24,) * ndim
    assert UNet(1, 2, 4, 2, upsampler=upsampler, ndim=ndim)(x).shape == (2, 2) + (8,) * ndim
    generator = DCGANGenerator(10, 3, 4, 2, upsampler=upsampler, ndim=ndim)
    assert generator(torch.randn(2, 10)).shape == (2, 3) + (16,) * ndim
    assert ESPCN(3, features=8, ndim=ndim)(x).shape[2:] == (24,) * ndim
    assert EDSR(2, 2, features=4, blocks=1, ndim=ndim)(x.repeat(1, 2, *(1,) * ndim)).shape \
        == (2, 2) + (16,) * ndim


def test_fsrcnn_box_filtered_subpixel_has_no_checkerboard():
    from deconvkit.nn import checkerboard_index

    for scale in (2, 3):
        model = FSRCNN(scale, d=8, s=4, m=1, upsampler="subpixel", blur=True)
        with torch.no_grad():  # a trained-like layer: every phase different
            model.upsample.layer.weight.normal_()
            model.upsample.layer.bias.normal_()
        assert checkerboard_index(model.upsample.layer) < 1e-6
        assert checkerboard_index(FSRCNN(scale, d=8, s=4, m=1, upsampler="subpixel")
                                  .upsample.layer) < 1e-6  # ICNR at initialisation
    with pytest.raises(ValueError, match="blur=True needs upsampler='subpixel'"):
        FSRCNN(2, upsampler="transposed", blur=True)


def test_edsr_is_box_filtered_and_residual():
    from deconvkit.nn import checkerboard_index

    for scale in (2, 3):
        model = EDSR(scale, features=4, blocks=2)
        with torch.no_grad():
            model.upsample.layer.weight.normal_()
            model.upsample.layer.bias.normal_()
        assert checkerboard_index(model.upsample.layer) < 1e-6
    # a block whose branch is zero passes its input through
    model = EDSR(2, features=4, blocks=2)
    for block in model.body[:-1]:
        torch.nn.init.zeros_(block.body[-1].weight)
        torch.nn.init.zeros_(block.body[-1].bias)
    x = torch.randn(1, 4, 6, 6)
    assert torch.allclose(model.body[:-1](x), x)


@pytest.mark.parametrize("ndim,sides", [(1, (37,)), (2, (10, 13)), (3, (5, 2, 7))])
def test_unet_takes_any_size(ndim, sides):
    """Sides that are not multiples of 2**depth are extended by copies of the
    edge and the output cropped back."""
    torch.manual_seed(0)
    model = UNet(1, 1, 4, 2, ndim=ndim, residual=True).eval()
    x = torch.rand(2, 1, *sides)
    y = model(x)
    assert y.shape == x.shape
    # the same input padded by hand to the multiple gives the same output
    padded = torch.nn.functional.pad(x, [v for n in reversed(sides) for v in (0, -n % 4)],
                                     mode="replicate")
    whole = model(padded)[(slice(None), slice(None)) + tuple(slice(0, n) for n in sides)]
    torch.testing.assert_close(y - x, whole - x)
    with pytest.raises(ValueError, match=f"this {ndim}-D UNet takes"):
        model(torch.zeros(1, 1, *sides, 4))


def test_dataset_is_seeded_and_degrades():
    data = DegradedDataset(4, patch=32, scale=2, noise=0.01, seed=3)
    low, sharp = data[1]
    assert low.shape == (1, 16, 16) and sharp.shape == (1, 32, 32)
    again, _ = DegradedDataset(4, patch=32, scale=2, noise=0.01, seed=3)[1]
    assert torch.equal(low, again)
    with pytest.raises(IndexError):
        data[4]
    # grain on the sharp image: seeded, and a rougher target than the clean one
    clean = DegradedDataset(4, patch=32, scale=2, seed=3)[1][1]
    grainy = DegradedDataset(4, patch=32, scale=2, sharp_noise=0.05, seed=3)
    assert torch.equal(grainy[1][1], grainy[1][1])
    assert (grainy[1][1] - clean).std() > 0.005
    # defocus of the sharp image: seeded, and smoother than the clean one
    soft = DegradedDataset(4, patch=32, scale=2, sharp_blur=2.0, seed=3)
    assert torch.equal(soft[1][1], soft[1][1])
    assert soft[1][1].diff(dim=-1).abs().mean() < clean.diff(dim=-1).abs().mean()
    with pytest.raises(ValueError, match="sharp_blur must be a standard deviation >= 0"):
        DegradedDataset(4, patch=32, scale=2, sharp_blur=-1.0)


def test_textured_dead_leaves():
    from deconvkit import dead_leaves

    flat = dead_leaves((96, 96), seed=0, count=200, min_radius=4)
    textured = dead_leaves((96, 96), seed=0, count=200, min_radius=4, texture=0.3)
    # texture=0 is the classical model, draw for draw
    assert np.array_equal(flat, dead_leaves((96, 96), seed=0, count=200, min_radius=4,
                                            texture=0.0))
    assert np.array_equal(textured, dead_leaves((96, 96), seed=0, count=200, min_radius=4,
                                                texture=0.3))
    # flat leaves change only at their edges; textured ones vary inside too
    assert np.median(np.abs(np.diff(flat, axis=1))) < 0.01
    assert np.median(np.abs(np.diff(textured, axis=1))) > 0.03
    assert textured.min() >= 0 and textured.max() <= 1
    with pytest.raises(ValueError, match="texture must be an amplitude >= 0"):
        dead_leaves((8, 8), texture=-0.1)
    data = DegradedDataset(2, patch=32, scale=2, texture=0.3, seed=3)
    assert not torch.equal(data[0][1], DegradedDataset(2, patch=32, scale=2, seed=3)[0][1])


def test_dead_leaves_rectangles():
    from deconvkit import dead_leaves
    from deconvkit.simulation import _half_sides, _in_rectangle

    discs = dead_leaves((96, 96), seed=0, count=200, min_radius=4)
    # rectangles=0 is the classical model, draw for draw
    assert np.array_equal(discs, dead_leaves((96, 96), seed=0, count=200, min_radius=4,
                                             rectangles=0.0))
    mixed = dead_leaves((96, 96), seed=0, count=200, min_radius=4, rectangles=0.5)
    assert not np.array_equal(discs, mixed) and 0 <= mixed.min() and mixed.max() <= 1
    # a rectangle has the area of the disc it replaces, an aspect in [1, 8],
    # and its mask is the rotated rectangle: 4 corners at the half sides
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[-60:60:0.05, -60:60:0.05]
    for _ in range(5):
        long, short = _half_sides(10.0, rng)
        assert 1 <= long / short <= 8
        inside = _in_rectangle(rows, cols, (long, short), angle=rng.uniform(0, np.pi))
        assert abs(inside.sum() * 0.05 ** 2 / (np.pi * 100) - 1) < 0.01
    corner = _in_rectangle(np.array([3.0, 3.1, 0.0]), np.array([1.0, 1.0, 1.1]), (3, 1), 0.0)
    assert corner.tolist() == [True, False, False]
    with pytest.raises(ValueError, match="rectangles must be a fraction in"):
        dead_leaves((8, 8), rectangles=1.5)
    with pytest.raises(ValueError, match="rectangles must be a fraction in"):
        DegradedDataset(2, patch=32, scale=2, rectangles=-0.1)


def test_a_few_training_steps_reduce_the_loss():
    torch.manual_seed(0)
    data = DegradedDataset(8, patch=32, scale=2, seed=0)
    low = torch.stack([data[i][0] for i in range(8)])
    sharp = torch.stack([data[i][1] for i in range(8)])
    model = ESPCN(2, features=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(low), sharp)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_deconvnet_codes_sparsely_and_learns_filters():
    from deconvkit.nn.models import DeconvNet

    torch.manual_seed(0)
    source = DeconvNet(2, 7, sparsity=0.02)
    maps = (torch.rand(8, 2, 32, 32) < 0.02).float() * torch.randn(8, 2, 32, 32)
    with torch.no_grad():
        images = source.decode(maps)
    model = DeconvNet(4, 7, sparsity=0.02)
    objective = []
    codes = model.encode(images, iterations=40, history=objective)
    assert objective[-1] < 0.3 * objective[0]
    assert (codes == 0).float().mean() > 0.5  # sparse
    losses = model.fit(images, epochs=30, inner=30, lr=0.1)
    assert losses[-1] < 0.8 * losses[0]
    norms = model.weight.flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_deconvnet_shapes(ndim):
    from deconvkit.nn.models import DeconvNet

    y = torch.randn(2, 1, *(10,) * ndim)
    model = DeconvNet(3, 5, ndim=ndim)
    assert model.encode(y, iterations=3).shape == (2, 3) + (10,) * ndim
    assert model(y).shape == y.shape
