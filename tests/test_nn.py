"""deconvkit.nn: transposed convolution with boundaries, shape helpers, artifact-free layers."""

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from deconvkit.nn import (  # noqa: E402
    ResizeConv,
    SubPixelConv,
    TransposedConv,
    Upsample,
    checkerboard_index,
    checkerboard_spectrum,
)
from deconvkit.nn import functional as Fd  # noqa: E402

TORCH_T = {1: torch.nn.functional.conv_transpose1d, 2: torch.nn.functional.conv_transpose2d,
           3: torch.nn.functional.conv_transpose3d}


def _configs():
    rng = np.random.default_rng(0)
    out = []
    for d in (1, 2, 3):
        for _ in range(6):
            groups = int(rng.choice([1, 2]))
            stride, dilation = int(rng.integers(1, 4)), int(rng.integers(1, 3))
            kernel = int(rng.integers(1, 5))
            out.append(pytest.param(d, dict(
                stride=stride, padding=int(rng.integers(0, kernel)), dilation=dilation,
                output_padding=int(rng.integers(0, max(stride, dilation))), groups=groups,
                kernel=kernel), id=f"{d}d-{len(out)}"))
    return out


@pytest.mark.parametrize("d,cfg", _configs())
def test_zero_boundary_equals_torch(d, cfg):
    g = cfg["groups"]
    x = torch.randn(2, 2 * g, *(7,) * d, dtype=torch.float64)
    w = torch.randn(2 * g, 3, *(cfg["kernel"],) * d, dtype=torch.float64)
    b = torch.randn(3 * g, dtype=torch.float64)
    options = {k: cfg[k] for k in ("stride", "padding", "output_padding", "dilation", "groups")}
    ours = Fd.conv_transpose(x, w, b, **options)
    theirs = TORCH_T[d](x, w, b, cfg["stride"], cfg["padding"], cfg["output_padding"],
                        cfg["groups"], cfg["dilation"])
    torch.testing.assert_close(ours, theirs)
    size = Fd.transposed_output_size(x.shape[2:], cfg["kernel"], stride=cfg["stride"],
                                     padding=cfg["padding"], dilation=cfg["dilation"],
                                     output_padding=cfg["output_padding"])
    assert tuple(theirs.shape[2:]) == size


@pytest.mark.parametrize("boundary", Fd.BOUNDARIES)
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("stride,padding,groups", [(1, 1, 1), (2, 2, 2), (3, 1, 1)])
def test_conv_transpose_is_the_adjoint_of_conv(boundary, d, stride, padding, groups):
    torch.manual_seed(d)
    x = torch.randn(2, 2 * groups, *(9,) * d, dtype=torch.float64)
    w = torch.randn(3 * groups, 2, *(3,) * d, dtype=torch.float64)  # conv layout (out, in, k)
    y = Fd.conv(x, w, stride=stride, padding=padding, groups=groups, boundary=boundary)
    v = torch.randn_like(y)
    # the adjoint of conv(., w) is conv_transpose(., w): the same weight tensor
    wt = w
    extra = tuple((n + 2 * padding - 3) % stride for n in x.shape[2:])
    back = Fd.conv_transpose(v, wt, stride=stride, padding=padding, output_padding=extra,
                             groups=groups, boundary=boundary)
    assert back.shape == x.shape
    lhs, rhs = (y * v).sum(), (x * back).sum()
    assert abs(lhs - rhs) <= 1e-10 * (y.norm() * v.norm())


def test_transposed_padding_reaches_targets_and_explains_failures():
    for n, target, k, s in itertools.product([5, 8], [10, 16, 17], [3, 4], [2, 3]):
        try:
            padding, extra = Fd.transposed_padding((n,), (target,), k, stride=s)
        except ValueError as exc:
            assert "valid sizes range from" in str(exc) or "output_padding" in str(exc)
            continue
        assert Fd.transposed_output_size((n,), k, stride=s, padding=padding,
                                         output_padding=extra) == (target,)
        layer = torch.nn.ConvTranspose1d(1, 1, k, s, padding[0], extra[0])
        assert layer(torch.zeros(1, 1, n)).shape[-1] == target
    with pytest.raises(ValueError, match="valid sizes range from"):
        Fd.transposed_padding((4,), (40,), 3, stride=2)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="boundary='mirror'"):
        Fd.conv_transpose(torch.zeros(1, 1, 4), torch.zeros(1, 1, 3), boundary="mirror")
    with pytest.raises(ValueError, match="output_padding"):
        Fd.conv_transpose(torch.zeros(1, 1, 4), torch.zeros(1, 1, 3), stride=2,
                          output_padding=2)
    with pytest.raises(ValueError, match="needs 4"):
        Fd.conv_transpose(torch.zeros(1, 4), torch.zeros(1, 1, 3, 3))
    with pytest.raises(ValueError, match="divisible by groups"):
        TransposedConv(3, 4, groups=2)
    # torch's own RuntimeErrors before, or (scale 0) a layer that could not run
    x, w = torch.zeros(1, 4, 8, 8), torch.zeros(4, 2, 3, 3)
    with pytest.raises(ValueError, match="stride must be an int >= 1"):
        Fd.conv_transpose(x, w, stride=0)
    with pytest.raises(ValueError, match="input has 4 channels but the weight"):
        Fd.conv_transpose(x, torch.zeros(3, 2, 3, 3))
    with pytest.raises(ValueError, match="input has 4 channels but the weight"):
        Fd.conv(x, torch.zeros(2, 3, 3, 3))
    with pytest.raises(ValueError, match="groups=3 must be an int >= 1 dividing"):
        Fd.conv_transpose(x, w, groups=3)
    with pytest.raises(TypeError, match="input is torch.uint8; convolutions take floats"):
        Fd.conv_transpose(x.to(torch.uint8), w)
    for layer in (SubPixelConv, ResizeConv):
        with pytest.raises(ValueError, match="scale must be an int >= 1"):
            layer(4, 2, 3, 0)
    with pytest.raises(ValueError, match="scale must be an int >= 1"):
        Upsample(4, 2, 2.5)
    # an AttributeError, a ZeroDivisionError, or layers torch refused only when run
    with pytest.raises(TypeError, match="input must be a torch tensor, got ndarray"):
        Fd.conv_transpose(x.numpy(), w)
    with pytest.raises(ValueError, match="kernel_size must be an int >= 1"):
        TransposedConv(4, 4, 0)
    with pytest.raises(ValueError, match="groups must be an int >= 1"):
        TransposedConv(4, 4, groups=0)
    with pytest.raises(ValueError, match="in_channels must be an int >= 1, got 0"):
        Upsample(0, 4, 2)
    with pytest.raises(ValueError, match="ndim must be 1, 2 or 3, got 4"):
        Upsample(4, 4, 2, ndim=4)
    with pytest.raises(ValueError, match="kernel_size must be an odd int"):
        SubPixelConv(4, 4, 2)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_icnr_and_box_filter_have_index_zero(scale):
    torch.manual_seed(scale)
    assert checkerboard_index(SubPixelConv(4, 3, 3, scale)) == pytest.approx(0, abs=1e-12)
    assert checkerboard_index(SubPixelConv(4, 3, 3, scale, icnr=False, blur=True)) == \
        pytest.approx(0, abs=1e-12)
    assert checkerboard_index(Upsample(4, 3, scale, mode="transposed")) == \
        pytest.approx(0, abs=1e-12)
    assert checkerboard_index(ResizeConv(4, 3, 3, scale)) == pytest.approx(0, abs=1e-12)
    # without the fixes the phases differ
    assert checkerboard_index(SubPixelConv(4, 3, 3, scale, icnr=False)) > 0.1


def test_icnr_is_correct_for_3d_and_the_classic_layer_checkerboards():
    torch.manual_seed(0)
    assert checkerboard_index(SubPixelConv(2, 2, 3, 3, ndim=3)) == pytest.approx(0, abs=1e-12)
    assert checkerboard_index(TransposedConv(4, 4, kernel_size=3, stride=2, padding=1,
                                             output_padding=1)) > 0.1


def test_checkerboard_index_reads_torch_layers_and_refuses_others():
    """torch's own layers: 1-D and 3-D transposed convolutions (they were fed a
    2-D probe), nn.Upsample and nn.PixelShuffle; a layer that does not
    upsample is refused by name (a stride-1 convolution read NaN)."""
    torch.manual_seed(0)
    for layer in (nn.ConvTranspose1d(3, 3, 3, stride=2), nn.ConvTranspose3d(2, 2, 3, stride=2)):
        assert checkerboard_index(layer) > 0.1
    assert checkerboard_index(nn.Upsample(scale_factor=2), in_channels=3) == \
        pytest.approx(0, abs=1e-12)
    assert checkerboard_index(nn.PixelShuffle(2), in_channels=4) == pytest.approx(0, abs=1e-12)
    with pytest.raises(ValueError, match="Conv2d has scale 1"):
        checkerboard_index(nn.Conv2d(3, 3, 3))
    with pytest.raises(ValueError, match="not about 2 times the sides"):
        checkerboard_index(nn.Conv2d(3, 3, 3, stride=2))  # downsamples
    with pytest.raises(ValueError, match="pass in_channels="):
        checkerboard_index(nn.Upsample(scale_factor=2))


def test_checkerboard_spectrum_sees_the_artifact():
    torch.manual_seed(0)
    x = torch.randn(4, 4, 32, 32)
    taps = torch.exp(-torch.arange(-4, 5.0) ** 2 / 8)
    kernel = (taps[:, None] * taps[None]) / taps.sum() ** 2
    smooth = torch.nn.functional.conv2d(x.reshape(-1, 1, 32, 32), kernel[None, None],
                                        padding=4).reshape(4, 4, 32, 32)
    bad = checkerboard_spectrum(TransposedConv(4, 4, 3, 2, 1, 1), smooth)
    good = checkerboard_spectrum(Upsample(4, 4, 2), smooth)
    bicubic = checkerboard_spectrum(
        lambda z: torch.nn.functional.interpolate(z, scale_factor=2, mode="bicubic"), smooth)
    assert bad > 2 and good <= bicubic <= 1.5


@pytest.mark.parametrize("mode", ["subpixel", "resize", "transposed"])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("scale", [2, 3])
def test_upsample_shapes(mode, d, scale):
    layer = Upsample(3, 5, scale, mode=mode, ndim=d)
    y = layer(torch.randn(2, 3, *(6,) * d))
    assert tuple(y.shape) == (2, 5) + (6 * scale,) * d
    assert "mode=" in repr(layer)


def test_pixel_shuffle_matches_torch_and_inverts():
    z = torch.randn(2, 18, 5, 6)
    torch.testing.assert_close(Fd.pixel_shuffle(z, 3), torch.nn.functional.pixel_shuffle(z, 3))
    v = torch.randn(1, 16, 3, 4, 5)
    assert torch.equal(Fd.pixel_unshuffle(Fd.pixel_shuffle(v, 2), 2), v)


def test_bilinear_init_upsamples_a_constant():
    layer = TransposedConv(1, 1, kernel_size=4, stride=2, padding=1, init="bilinear")
    y = layer(torch.ones(1, 1, 8, 8))
    torch.testing.assert_close(y[..., 2:-2, 2:-2], torch.ones_like(y[..., 2:-2, 2:-2]))


def test_cli_inspect_and_checkerboard_demo(tmp_path, capsys):
    from deconvkit.cli import main
    from deconvkit.nn.models import DCGANGenerator

    torch.save(DCGANGenerator(10, 1, 4, 2, upsampler="subpixel"), tmp_path / "g.pt")
    assert main(["nn", "inspect", str(tmp_path / "g.pt")]) == 0
    said = capsys.readouterr().out
    assert said.count("SubPixelConv") == 2 and "checkerboard index 0" in said
    # the shipped models (weights + config, as deconvkit train writes them) were refused
    from deconvkit.nn.upscale import shipped_model

    assert main(["nn", "inspect", str(shipped_model(2))]) == 0
    assert "upsample.layer: SubPixelConv" in capsys.readouterr().out
    assert main(["nn", "inspect", "x3"]) == 0  # by name, as nn export takes them
    assert "upsample.layer: SubPixelConv  checkerboard index 0" in capsys.readouterr().out
    torch.save({"not": "a model"}, tmp_path / "d.pt")
    assert main(["nn", "inspect", str(tmp_path / "d.pt")]) == 2
    assert "not a torch.nn.Module" in capsys.readouterr().err
    assert main(["nn", "checkerboard-demo", "--out", str(tmp_path / "demo")]) == 0
    said = capsys.readouterr().out
    assert (tmp_path / "demo" / "checkerboard_demo.png").exists()
    assert "resize: worst checkerboard index 0" in said and "subpixel: worst checkerboard " \
        "index 0" in said
