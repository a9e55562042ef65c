"""The README's Python examples run as printed (the ones that need no files)."""

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return [code for lang, code in re.findall(r"```(\w*)\n(.*?)```", README.read_text(), re.S)
            if lang == "python"]


def block_starting(text):
    found = [code for code in python_blocks() if code.lstrip().startswith(text)]
    assert len(found) == 1, f"README has {len(found)} Python blocks starting with {text!r}"
    return found[0]


def test_quick_start_convolution_and_info_blocks_run():
    namespace = {}
    for start in ("import numpy as np", "A = dk.Convolution", "restored, info = dk.deconvolve"):
        exec(block_starting(start), namespace)
    assert namespace["y"].shape == (256, 256)
    scene, restored = namespace["scene"], namespace["restored"]
    assert restored.shape == scene.shape
    info = namespace["info"]
    assert info.method == "total_variation" and info.stopped_by == "relative change"
    # the comments: units do not matter; and the default is well above the blurred data (+2.9 dB)
    np.testing.assert_allclose(namespace["scaled"], 300 * restored, rtol=1e-6, atol=1e-9)
    psnr = namespace["dk"].metrics.psnr
    assert psnr(scene, restored, data_range=1.0) > psnr(scene, namespace["blurred"],
                                                         data_range=1.0) + 2


def test_nn_block_runs():
    torch = pytest.importorskip("torch")
    namespace = {"x": torch.randn(1, 8, 16), "w": torch.randn(8, 4, 4)}
    exec(block_starting("import torch"), namespace)
    assert tuple(namespace["y"].shape) == (1, 4, 32)
    assert namespace["checkerboard_index"](namespace["up"]) == 0.0


def test_space_variant_block_runs():
    import deconvkit as dk

    kernels = np.stack([dk.psf.gaussian(w, shape=(17, 17)) for w in np.linspace(0.8, 2.0, 9)])
    field = dk.SpaceVariantConvolution(kernels.reshape(3, 3, 17, 17))
    beads = np.zeros(field.input_shape((240, 240)))
    beads[20:236:24, 20:236:24] = 100.0  # a bead lattice, 24 samples apart
    scene = np.random.default_rng(0).random(field.input_shape((240, 240)))
    namespace = {"dk": dk, "bead_slide": field.forward(beads) + 1.0,
                 "blurred": field.forward(scene)}
    exec(block_starting("psfs = dk.psf.grid_from_sources"), namespace)
    assert namespace["psfs"].shape == (3, 3, 17, 17)
    np.testing.assert_allclose(namespace["psfs"], kernels.reshape(3, 3, 17, 17), atol=0.02)
    assert namespace["restored"].shape == (240, 240)


def test_spectra_block_runs():
    import deconvkit as dk

    response = dk.psf.gaussian(4.0, ndim=1)
    truth = np.zeros(400)
    truth[[100, 106, 300]] = [2000.0, 2000.0, 5000.0]  # a doublet 0.64 FWHM apart, a singlet
    continuum = 50.0 * np.exp(-np.arange(400) / 200.0) + 10.0
    blurred = dk.blur(truth, response, boundary="zero")
    spectrum = np.random.default_rng(0).poisson(blurred + continuum).astype(float)
    namespace = {"dk": dk, "spectrum": spectrum, "response": response}
    exec(block_starting("continuum = dk.spectra.snip_background"), namespace)
    lines = namespace["lines"]
    # the doublet, one peak in the data, is two lines in the result, where they are
    from scipy.signal import find_peaks

    assert len(find_peaks(spectrum[80:126], prominence=100)[0]) == 1
    np.testing.assert_allclose(lines.positions, [100, 106, 300], atol=1)
    np.testing.assert_allclose(lines.areas, [2000, 2000, 5000], rtol=0.25)


def test_super_resolution_block_runs():
    namespace = {}
    exec(block_starting("import deconvkit as dk\noptics"), namespace)
    assert namespace["fine"].shape == (94, 94)
    np.testing.assert_allclose(namespace["info"].parameters["shifts"],
                               [(0, 0), (0.5, 0), (0, 0.5), (0.5, 0.5)], atol=0.05)


def test_thin_stack_block_runs():
    namespace = {}
    exec(block_starting("import deconvkit as dk\nimport numpy as np\nkernel = dk.psf.widefield"),
         namespace)
    assert namespace["restored"].shape == (10, 48, 48)
