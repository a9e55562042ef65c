"""ONNX export: every upsampler, boundary and dimension, with dynamic batch and sizes."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from deconvkit.cli import main  # noqa: E402
from deconvkit.nn import ResizeConv, SubPixelConv, TransposedConv, export_onnx, models  # noqa: E402
from deconvkit.nn.training import load  # noqa: E402
from deconvkit.nn.upscale import shipped_model  # noqa: E402


def _run_onnx(path, x):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def _agrees_at_a_third_size(model, path, x):
    """The file on an input neither the export nor its check saw."""
    with torch.no_grad():
        expected = model(x).numpy()
    tolerance = 1e-4 * max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(_run_onnx(path, x), expected, atol=tolerance)


LAYERS = [pytest.param(lambda b: TransposedConv(3, 2, boundary=b), 2, b, id=f"transposed-{b}")
          for b in ("zero", "periodic", "reflect", "symmetric", "edge")] + [
    pytest.param(lambda b: TransposedConv(3, 2, ndim=1, boundary=b), 1, "reflect",
                 id="transposed-1d"),
    pytest.param(lambda b: ResizeConv(3, 2, ndim=3, mode="linear", boundary=b), 3, "periodic",
                 id="resize-3d"),
    pytest.param(lambda b: SubPixelConv(3, 2, scale=3, ndim=1, blur=True, boundary=b), 1,
                 "symmetric", id="subpixel-1d"),
    pytest.param(lambda b: SubPixelConv(3, 2, scale=2, ndim=3, blur=True, boundary=b), 3,
                 "edge", id="subpixel-3d"),
]


@pytest.mark.parametrize("make,ndim,boundary", LAYERS)
def test_layers_export_with_dynamic_sizes(tmp_path, make, ndim, boundary):
    # the boundary extensions were index arrays built from the input's size:
    # torch.export fixed the size (or failed) for every boundary but "zero"
    torch.manual_seed(0)
    layer = make(boundary)
    difference = export_onnx(layer, tmp_path / "layer.onnx")
    assert difference < 1e-5
    _agrees_at_a_third_size(layer, tmp_path / "layer.onnx", torch.randn(3, 3, *(13,) * ndim))


def test_models_export(tmp_path):
    model = load(shipped_model(2))
    assert export_onnx(model, tmp_path / "x2.onnx") < 1e-5
    _agrees_at_a_third_size(model, tmp_path / "x2.onnx", torch.rand(1, 1, 57, 23))
    unet = models.UNet(1, 1, ndim=3).eval()
    export_onnx(unet, tmp_path / "unet.onnx")
    _agrees_at_a_third_size(unet, tmp_path / "unet.onnx", torch.rand(1, 1, 8, 16, 24))
    # sides that are not multiples of 2**depth: extended in the graph too
    _agrees_at_a_third_size(unet, tmp_path / "unet.onnx", torch.rand(2, 1, 7, 13, 22))
    generator = models.DCGANGenerator(upsampler="subpixel", levels=2)
    assert generator.training
    export_onnx(generator, tmp_path / "g.onnx")  # its input is (N, latent)
    assert generator.training  # exported in eval mode, left in its own
    generator.eval()
    _agrees_at_a_third_size(generator, tmp_path / "g.onnx", torch.randn(5, 100))


def test_export_refuses_and_writes_nothing_partial(tmp_path):
    layer = SubPixelConv(2, 2)
    target = tmp_path / "m.onnx"
    with pytest.raises(ValueError, match="ends in .onnx"):
        export_onnx(layer, tmp_path / "m.bin")
    target.write_text("keep")
    with pytest.raises(FileExistsError, match="overwrite"):
        export_onnx(layer, target)
    assert target.read_text() == "keep"
    with pytest.raises(ValueError, match="example must be"):
        export_onnx(layer, tmp_path / "n.onnx", example=torch.zeros(3))
    # a check that fails (a tolerance no float can meet) writes no file at all
    with pytest.raises(ValueError, match="differs from torch"):
        export_onnx(models.UNet(1, 1), tmp_path / "u.onnx", tolerance=-1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_cli_exports_a_shipped_model(tmp_path):
    assert main(["nn", "export", "x3", "-o", str(tmp_path / "x3.onnx")]) == 0
    model = load(shipped_model(3))
    _agrees_at_a_third_size(model, tmp_path / "x3.onnx", torch.rand(2, 1, 20, 31))
    assert main(["nn", "export", "x3", "-o", str(tmp_path / "x3.onnx")]) == 2  # exists
    assert main(["nn", "export", str(tmp_path / "none.pt"), "-o", str(tmp_path / "a.onnx")]) == 2
    # the exported file upscales through the CLI, on onnxruntime
    from deconvkit import io

    image = (np.random.default_rng(1).random((18, 22)) * 255).astype(np.uint8)
    io.write(tmp_path / "in.png", image)
    assert main(["upscale", str(tmp_path / "in.png"), "--model", str(tmp_path / "x3.onnx"),
                 "--scale", "3", "-o", str(tmp_path / "out.png"), "-q"]) == 0
    assert main(["upscale", str(tmp_path / "in.png"), "--scale", "3",
                 "-o", str(tmp_path / "ref.png"), "-q"]) == 0  # the shipped model, on torch
    assert np.abs(io.read(tmp_path / "out.png").astype(int)
                  - io.read(tmp_path / "ref.png")).max() <= 1
    assert main(["upscale", str(tmp_path / "in.png"), "--model", str(tmp_path / "x3.onnx"),
                 "--scale", "3", "--adapt", "2", "-o", str(tmp_path / "bad.png")]) == 2


def test_upscale_runs_an_exported_model(tmp_path):
    from deconvkit.nn import upscale

    torch.manual_seed(0)
    model = models.ESPCN(scale=3, features=8).eval()
    export_onnx(model, tmp_path / "m.onnx")
    image = np.random.default_rng(0).random((20, 26))
    out = upscale(image, 3, model=tmp_path / "m.onnx")  # its factor measured from the file
    np.testing.assert_allclose(out, upscale(image, 3, model=model), atol=1e-5)
    assert upscale(image, 1.5, model=str(tmp_path / "m.onnx")).shape == (30, 39)
    for options in ({"adapt": 3}, {"device": "cuda"}):
        with pytest.raises(ValueError, match="it runs on the CPU as it is"):
            upscale(image, 3, model=tmp_path / "m.onnx", **options)
    export_onnx(torch.nn.Conv2d(1, 1, 3, padding=1), tmp_path / "same.onnx")
    with pytest.raises(ValueError, match="is it a super-resolution model"):
        upscale(image, 2, model=tmp_path / "same.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf")  # onnxruntime's own error before
    with pytest.raises(ValueError, match="cannot load .*junk.onnx as an ONNX model"):
        upscale(image, 2, model=tmp_path / "junk.onnx")
    with pytest.raises(FileNotFoundError, match="no such model file"):
        upscale(image, 2, model=tmp_path / "absent.onnx")
