"""The command line: real runs on files, and one-line errors with status 2."""

import numpy as np
import pytest

from deconvkit import blur, io, psf, simulate
from deconvkit.cli import main


@pytest.fixture
def blurred_tif(tmp_path):
    from skimage import data

    scene = data.camera()[:128, :128] / 255.0
    observed = simulate(scene, psf.gaussian(1.5), sigma=0.01, seed=0).astype(np.float32)
    path = tmp_path / "blurred.tif"
    io.write(path, observed, metadata=io.Metadata(spacing=(0.1, 0.1), unit="um"))
    return path


METHOD_NAMES = ["total_variation", "richardson_lucy", "richardson_lucy_tv", "wavelet", "wiener",
                "tikhonov", "cgls", "unsupervised_wiener", "landweber", "van_cittert", "gold",
                "inverse_filter"]


def test_cli_lists_every_method():
    from deconvkit import METHODS
    from deconvkit.cli import METHOD_NAMES as listed

    assert sorted(listed) == sorted(METHODS)


@pytest.mark.parametrize("method", ["auto", *METHOD_NAMES])
def test_deconvolve_file(tmp_path, blurred_tif, method, capsys):
    out = tmp_path / f"{method}.tif"
    args = ["deconvolve", str(blurred_tif), "--psf", "gaussian:sigma=1.5", "--method", method,
            "-o", str(out)]
    if method in ("total_variation", "wavelet", "auto"):
        args += ["--iterations", "20"]
    assert main(args) == 0
    restored, meta = io.read(out, with_metadata=True)
    assert restored.shape == (128, 128) and restored.dtype == np.float32
    assert meta.spacing == pytest.approx((0.1, 0.1))
    said = capsys.readouterr().out  # says what ran and what it chose
    assert (method if method != "auto" else "total_variation (chosen by auto)") in said
    if method in ("auto", "total_variation", "wiener", "tikhonov"):
        assert "noise_sigma=" in said


def test_missing_samples_from_a_file(tmp_path, blurred_tif, capsys):
    """NaN pixels in a TIFF are missing data for the default method; a method that
    cannot leave them out says which can."""
    from deconvkit import deconvolve

    observed = io.read(blurred_tif)
    observed[40:50, 60:70] = np.nan
    holes = tmp_path / "holes.tif"
    io.write(holes, observed)
    out = tmp_path / "o.tif"
    assert main(["deconvolve", str(holes), "--psf", "gaussian:sigma=1.5", "-o", str(out)]) == 0
    assert "100 missing (NaN) samples left out" in " ".join(capsys.readouterr().out.split())
    restored = io.read(out)
    assert np.isfinite(restored).all()
    np.testing.assert_allclose(restored, deconvolve(observed, psf.gaussian(1.5)), atol=1e-6)
    assert main(["deconvolve", str(holes), "--psf", "gaussian:sigma=1.5", "--method",
                 "tikhonov", "-o", str(tmp_path / "w.tif")]) == 2
    assert "tikhonov cannot leave out" in capsys.readouterr().err


def test_saturated_samples_from_a_file(tmp_path, capsys):
    """--saturated auto takes an 8-bit image's 255s as lower bounds."""
    from skimage import data

    from deconvkit import deconvolve, metrics

    scene = data.camera()[100:228, 150:278] / 255.0 * 1.5  # 12 % above 1
    observed = simulate(scene, psf.gaussian(1.5), sigma=0.01, seed=0, boundary="valid")
    path = tmp_path / "bright.tif"
    io.write(path, np.clip(np.round(observed * 255), 0, 255).astype(np.uint8))
    out = tmp_path / "o.tif"
    assert main(["deconvolve", str(path), "--psf", "gaussian:sigma=1.5", "--saturated", "auto",
                 "-o", str(out)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    count = int((io.read(path) == 255).sum())
    assert count > 0 and f"{count} saturated samples (>= 255)" in said
    restored = io.read(out)
    np.testing.assert_allclose(restored, deconvolve(io.read(path), psf.gaussian(1.5),
                                                    saturation=255), rtol=1e-5, atol=1e-3)
    truth = scene[6:-6, 6:-6] * 255  # the "valid" frame of a 13-sample PSF
    plain = deconvolve(io.read(path), psf.gaussian(1.5))
    assert metrics.psnr(truth, restored, data_range=255) > \
        metrics.psnr(truth, plain, data_range=255) + 1.0
    # with a bad-pixel map too (the marked copy is float; auto reads the file's type)
    bad = (np.arange(116 * 116) % 97 == 0).reshape(116, 116)
    io.write(tmp_path / "map.png", bad.astype(np.uint8))
    assert main(["deconvolve", str(path), "--psf", "gaussian:sigma=1.5", "--saturated", "auto",
                 "--bad-pixels", str(tmp_path / "map.png"), "-o", str(tmp_path / "b.tif")]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "saturated samples (>= 255)" in said and f"{bad.sum()} missing (NaN) samples" in said
    assert main(["deconvolve", str(path), "--psf", "gaussian:sigma=1.5", "--saturated", "auto",
                 "--method", "wiener", "-o", str(tmp_path / "w.tif")]) == 2
    assert "--saturated needs a method" in capsys.readouterr().err
    assert main(["deconvolve", str(out), "--psf", "gaussian:sigma=1.5", "--saturated", "auto",
                 "-o", str(tmp_path / "f.tif")]) == 2
    assert "needs integer samples" in capsys.readouterr().err


def test_bad_pixel_map(tmp_path, blurred_tif, capsys):
    """--bad-pixels: a hot-pixel map's samples are missing data, not light."""
    from skimage import data

    from deconvkit import deconvolve, metrics

    observed = io.read(blurred_tif)
    hot = np.random.default_rng(0).random(observed.shape) < 0.01
    observed[hot] = 1.0
    path, mask = tmp_path / "hot.tif", tmp_path / "hot-map.png"
    io.write(path, observed)
    io.write(mask, hot.astype(np.uint8) * 255)
    out = tmp_path / "o.tif"
    assert main(["deconvolve", str(path), "--psf", "gaussian:sigma=1.5", "--bad-pixels",
                 str(mask), "-o", str(out)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert f"{int(hot.sum())} missing (NaN) samples left out" in said
    restored = io.read(out)
    truth = data.camera()[:128, :128] / 255.0
    plain = deconvolve(observed, psf.gaussian(1.5))
    assert metrics.psnr(truth, restored, data_range=1.0) > \
        metrics.psnr(truth, plain, data_range=1.0) + 3.0
    assert np.array_equal(io.read(path), observed)  # the input is left as it was
    io.write(tmp_path / "small.png", hot[:64].astype(np.uint8))
    assert main(["deconvolve", str(path), "--psf", "gaussian:sigma=1.5", "--bad-pixels",
                 str(tmp_path / "small.png"), "-o", str(tmp_path / "x.tif")]) == 2
    assert "--bad-pixels has shape (64, 128)" in capsys.readouterr().err


def test_fits_in_and_out(tmp_path, blurred_tif):
    """An astronomer's FITS frame with blank (NaN) pixels: restored like the array, the
    header (WCS, exposure) carried to the FITS output."""
    fits = pytest.importorskip("astropy.io.fits")
    from deconvkit import deconvolve

    observed = io.read(blurred_tif)
    observed[10:14, 20:24] = np.nan
    fits.PrimaryHDU(observed, header=fits.Header([("OBJECT", "NGC 1300")])).writeto(
        tmp_path / "frame.fits")
    out = tmp_path / "restored.fits"
    assert main(["deconvolve", str(tmp_path / "frame.fits"), "--psf", "gaussian:sigma=1.5",
                 "-o", str(out), "-q"]) == 0
    np.testing.assert_allclose(fits.getdata(out), deconvolve(observed, psf.gaussian(1.5)),
                               atol=1e-6)
    assert fits.getheader(out)["OBJECT"] == "NGC 1300"


def test_zero_iterations_are_reported(tmp_path, blurred_tif, capsys):
    assert main(["deconvolve", str(blurred_tif), "--psf", "gaussian:sigma=1.5", "--iterations",
                 "0", "-o", str(tmp_path / "o.tif")]) == 0
    assert "0 iterations, stopped by iterations" in " ".join(capsys.readouterr().out.split())


def test_options_reach_the_solver(tmp_path, blurred_tif, capsys):
    out = tmp_path / "o.tif"
    assert main(["deconvolve", str(blurred_tif), "--psf", "gaussian:sigma=1.5", "--method",
                 "richardson_lucy", "--iterations", "7", "--option", "acceleration=none",
                 "--noise-sigma", "0.02", "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert "acceleration=None" in said and "7 iterations" in said
    assert main(["deconvolve", str(blurred_tif), "--psf", "gaussian:sigma=1.5", "--method",
                 "wiener", "--weight", "0.05", "-o", str(tmp_path / "w.tif")]) == 0
    assert "balance=0.05" in capsys.readouterr().out


def test_psf_file_and_colour_png(tmp_path, capsys):
    assert main(["psf", "motion:length=7,angle=20", "-o", str(tmp_path / "k.npy")]) == 0
    rgb = (np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)
    io.write(tmp_path / "rgb.png", rgb)
    assert main(["deconvolve", str(tmp_path / "rgb.png"), "--psf", str(tmp_path / "k.npy"),
                 "--method", "richardson_lucy", "--iterations", "3", "-q",
                 "-o", str(tmp_path / "out.png")]) == 0
    assert io.read(tmp_path / "out.png").shape == (40, 40, 3)


def test_measured_psf_file(tmp_path, blurred_tif, capsys):
    # a bead imaged off-centre on a background with noise, as a microscope records it
    rng = np.random.default_rng(0)
    rows, cols = np.indices((21, 21)) - 10.0
    bead = 300 * np.exp(-((rows - 0.4) ** 2 + (cols + 0.3) ** 2) / (2 * 1.5**2)) + 30
    io.write(tmp_path / "bead.tif", (bead + rng.normal(0, 3, bead.shape)).astype(np.float32))
    from skimage import data

    truth = data.camera()[:128, :128] / 255.0
    scores = {}
    for name, extra in (("raw", []), ("measured", ["--measured-psf", "radial"])):
        out = tmp_path / f"{name}.tif"
        assert main(["deconvolve", str(blurred_tif), "--psf", str(tmp_path / "bead.tif"),
                     "--method", "wiener", "-q", "-o", str(out), *extra]) == 0
        scores[name] = float(np.mean((io.read(out) - truth) ** 2))
        warned = "like a measured bead's or star's background" in capsys.readouterr().err
        assert warned == (name == "raw")
    assert scores["measured"] < 0.5 * scores["raw"]
    # a uniform kernel (a box blur) stands at its peak everywhere: a model, no warning
    np.save(tmp_path / "box.npy", np.full((5, 5), 1 / 25))
    assert main(["deconvolve", str(blurred_tif), "--psf", str(tmp_path / "box.npy"),
                 "--method", "wiener", "-q", "-o", str(tmp_path / "box.tif")]) == 0
    assert "like a measured bead's" not in capsys.readouterr().err
    # the same PSF written once, for reuse, with the bead file's voxel size
    io.write(tmp_path / "bead_um.tif", io.read(tmp_path / "bead.tif"),
             metadata=io.Metadata(spacing=(0.1, 0.1), unit="um"))
    assert main(["psf", str(tmp_path / "bead_um.tif"), "--measured", "radial", "-o",
                 str(tmp_path / "psf.tif")]) == 0
    written, meta = io.read(tmp_path / "psf.tif", with_metadata=True)
    np.testing.assert_allclose(written, psf.from_measurement(io.read(tmp_path / "bead.tif")),
                               atol=1e-7)
    assert meta.spacing == pytest.approx((0.1, 0.1)) and meta.unit == "um"


def test_16_bit_png_stays_16_bit(tmp_path):
    # written as 8 bits before: nearly every sample clipped to 255
    from skimage import data

    scene = data.camera()[:64, :64].astype(np.float64) * 200
    observed = np.clip(simulate(scene, psf.gaussian(1.5), sigma=50, seed=0), 0, 65535)
    io.write(tmp_path / "in.png", observed.round().astype(np.uint16))
    assert main(["deconvolve", str(tmp_path / "in.png"), "--psf", "gaussian:sigma=1.5", "-q",
                 "-o", str(tmp_path / "out.png")]) == 0
    out = io.read(tmp_path / "out.png")
    assert out.dtype == np.uint16 and out.max() > 20000
    assert np.corrcoef(out.ravel(), scene.ravel())[0, 1] > 0.95
    # simulate too (every sample was clipped to 255)
    assert main(["simulate", str(tmp_path / "in.png"), "--psf", "gaussian:sigma=1",
                 "-o", str(tmp_path / "sim.png")]) == 0
    simulated = io.read(tmp_path / "sim.png")
    assert simulated.dtype == np.uint16 and simulated.max() > 20000


def test_photos_are_restored_in_linear_light(tmp_path, capsys):
    """A PNG or JPEG holds sRGB-encoded values, but optics blur light: by
    default they are decoded to linear light, restored and encoded back
    (simulate blurs the same way, as a camera would).  On a camera crop so
    blurred, restoring the encoded values as they are scores far lower."""
    from skimage import data

    from deconvkit import deconvolve as restore
    from deconvkit import metrics

    truth = data.camera()[96:224, 160:288]
    io.write(tmp_path / "sharp.png", truth)
    assert main(["simulate", str(tmp_path / "sharp.png"), "--psf", "motion:length=9,angle=30",
                 "--sigma", "0.005", "--seed", "1", "-o", str(tmp_path / "shaken.png")]) == 0
    shaken = io.read(tmp_path / "shaken.png")
    kernel = psf.motion(9, 30)
    blurred = io.linear_to_srgb(simulate(io.srgb_to_linear(truth / 255), kernel, noise="none"))
    assert np.abs(shaken / 255 - blurred).std() < 0.02  # blurred in light, then noise
    run = ["deconvolve", str(tmp_path / "shaken.png"), "--psf", "motion:length=9,angle=30"]
    assert main([*run, "-o", str(tmp_path / "light.png")]) == 0
    assert "sRGB values restored in linear light" in " ".join(capsys.readouterr().out.split())
    assert main([*run, "--encoding", "linear", "-o", str(tmp_path / "stored.png")]) == 0
    light, stored = io.read(tmp_path / "light.png"), io.read(tmp_path / "stored.png")
    expected = io.linear_to_srgb(restore(io.srgb_to_linear(shaken / np.float32(255)),
                                         kernel)) * 255
    assert np.abs(light - np.clip(expected.round(), 0, 255)).max() <= 1
    gain = metrics.psnr(truth, light, data_range=255) - metrics.psnr(truth, stored,
                                                                      data_range=255)
    assert gain > 1.0, gain
    # the noise level is the file's, in encoded units: not taken with sRGB decoding
    assert main([*run, "--noise-sigma", "2", "-o", str(tmp_path / "n.png")]) == 2
    assert "--encoding linear" in capsys.readouterr().err
    assert main([*run, "--encoding", "srgb", "--memory-limit", "1GB", "-o",
                 str(tmp_path / "m.png")]) == 2


def test_jpeg_noise_is_measured_below_its_codec(tmp_path, capsys, monkeypatch):
    """A JPEG's codec quantises away the noise's finest part, which the noise
    estimate measures: at quality 75 the default restoration of a blurred,
    noisy photo came out below the JPEG itself (astronaut crop: 24.51 dB
    against 24.81).  The CLI now gives a JPEG's methods the larger estimate of
    the image and of its 2 x 2 binning (28.09 dB there; measured on three
    photos at qualities 95, 85 and 75: +0.09 to +4.41 dB)."""
    from PIL import Image
    from skimage import data

    from deconvkit import cli, metrics
    from deconvkit.restoration import estimate_noise

    truth = data.astronaut()[100:228, 150:278]
    kernel = psf.gaussian(1.5)
    light = io.srgb_to_linear(truth / 255.0)
    blurred = np.stack([blur(light[..., c], kernel) for c in range(3)], axis=-1)
    shown = io.linear_to_srgb(blurred) + np.random.default_rng(0).normal(0, 0.01, blurred.shape)
    Image.fromarray(np.round(np.clip(shown, 0, 1) * 255).astype(np.uint8)).save(
        tmp_path / "photo.jpg", quality=75)
    photo = io.read(tmp_path / "photo.jpg") / 255.0
    assert estimate_noise(photo[..., 1], compressed=True) > 2 * estimate_noise(photo[..., 1])
    # white noise without a codec: the binned image says about the same
    noisy = blur(light[..., 1], kernel) + np.random.default_rng(1).normal(0, 0.02, (128, 128))
    assert estimate_noise(noisy, compressed=True) == pytest.approx(estimate_noise(noisy),
                                                                   rel=0.15)
    np.save(tmp_path / "psf.npy", kernel)
    run = ["deconvolve", str(tmp_path / "photo.jpg"), "--psf", str(tmp_path / "psf.npy")]
    assert main([*run, "-o", str(tmp_path / "after.tif")]) == 0
    assert "noise of a JPEG" in " ".join(capsys.readouterr().out.split())
    monkeypatch.setattr(cli, "_compressed_noise", lambda *args: "")
    assert main([*run, "-q", "-o", str(tmp_path / "before.tif")]) == 0

    def score(name):
        restored = np.clip(io.read(tmp_path / name) / 255.0, 0, 1)
        return metrics.psnr(truth[8:-8, 8:-8] / 255.0, restored[8:-8, 8:-8], data_range=1.0)

    assert score("after.tif") > score("before.tif") + 1.0
    # blind's final restoration too (one-off, 256-pixel astronaut and chelsea
    # crops, motion 11 px, quality 80: 20.47 and 18.39 dB before, below the
    # JPEGs' 22.24 and 25.71; 25.66 and 27.02 after)
    monkeypatch.undo()
    blind = ["blind", str(tmp_path / "photo.jpg"), "--psf-size", "9"]
    assert main([*blind, "-o", str(tmp_path / "blind_after.tif")]) == 0
    assert "noise of a JPEG" in " ".join(capsys.readouterr().out.split())
    monkeypatch.setattr(cli, "_compressed_noise", lambda *args: "")
    assert main([*blind, "-q", "-o", str(tmp_path / "blind_before.tif")]) == 0
    assert score("blind_after.tif") > score("blind_before.tif") + 1.0


def test_photos_clipped_highlights_are_lower_bounds_by_default(tmp_path, capsys):
    """A photo's samples at 255 are clipped highlights: by default taken as
    lower bounds (--saturated auto) by the methods that can; --saturated none
    fits them as measurements, which rings around them."""
    from skimage import data

    from deconvkit import metrics

    light = io.srgb_to_linear(data.camera()[96:224, 160:288] / 255.0) * 2.0  # a stop over
    kernel = psf.motion(9, 30)
    blurred = simulate(light, kernel, sigma=0.005, seed=2)
    stored = np.round(io.linear_to_srgb(np.clip(blurred, 0, 1)) * 255).astype(np.uint8)
    io.write(tmp_path / "bright.png", stored)
    run = ["deconvolve", str(tmp_path / "bright.png"), "--psf", "motion:length=9,angle=30"]
    assert main([*run, "-o", str(tmp_path / "bounds.png")]) == 0
    clipped = int((stored == 255).sum())
    assert f"{clipped} saturated samples (>= 255) taken as lower bounds" in \
        " ".join(capsys.readouterr().out.split())
    assert main([*run, "--saturated", "none", "-o", str(tmp_path / "fitted.png")]) == 0
    assert "saturated" not in capsys.readouterr().out
    shown = np.round(io.linear_to_srgb(np.clip(light, 0, 1)) * 255)  # the sharp photo
    gains = [metrics.psnr(shown, io.read(tmp_path / name), data_range=255)
             for name in ("bounds.png", "fitted.png")]
    assert gains[0] > gains[1] + 2.0, gains
    # a method that cannot model them is not refused for it
    assert main([*run, "--method", "wiener", "-q", "-o", str(tmp_path / "w.png")]) == 0
    # blind's final restoration takes them the same way
    blind = ["blind", str(tmp_path / "bright.png"), "--psf-size", "11"]
    assert main([*blind, "-o", str(tmp_path / "b1.png")]) == 0
    assert f"{clipped} saturated samples (>= 255)" in " ".join(capsys.readouterr().out.split())
    assert main([*blind, "--saturated", "none", "-o", str(tmp_path / "b2.png")]) == 0
    assert "saturated" not in capsys.readouterr().out
    assert main([*blind, "--restore", "wiener", "--saturated", "auto", "-o",
                 str(tmp_path / "b3.png")]) == 2


def test_simulate_noise_is_a_fraction_of_the_full_scale(tmp_path, capsys):
    """--sigma 0.01 of a 16-bit image is 655 counts (it was 0.01 of a count)."""
    io.write(tmp_path / "flat.tif", np.full((64, 64), 30000, np.uint16))
    assert main(["simulate", str(tmp_path / "flat.tif"), "--psf", "gaussian:1", "--seed", "0",
                 "-o", str(tmp_path / "noisy.tif")]) == 0
    assert io.read(tmp_path / "noisy.tif").std() == pytest.approx(655.35, rel=0.05)
    # it said nothing, where every other command says what it did
    assert "(64, 64) blurred by gaussian:1, Gaussian noise 0.01 ->" in " ".join(
        capsys.readouterr().out.split())


@pytest.mark.parametrize("command", ["deconvolve", "blind"])
@pytest.mark.parametrize("colours", [1, 3])  # grey + alpha, RGBA
def test_png_alpha_is_kept_not_restored(tmp_path, command, colours, capsys):
    rng = np.random.default_rng(1)
    colour = (rng.random((48, 48, colours)) * 255).astype(np.uint8)
    alpha = np.zeros((48, 48, 1), np.uint8)
    alpha[8:40, 8:40] = 255  # a sharp opacity mask: restoring it would ring
    io.write(tmp_path / "in.png", np.concatenate([colour, alpha], axis=-1))
    args = [command, str(tmp_path / "in.png"), "-q", "-o", str(tmp_path / "out.png")]
    args += ["--psf", "gaussian:sigma=1"] if command == "deconvolve" else ["--psf-size", "5"]
    assert main(args) == 0
    out = io.read(tmp_path / "out.png")
    assert out.shape == (48, 48, colours + 1)
    np.testing.assert_array_equal(out[..., -1], alpha[..., 0])
    # a JPEG has no alpha (four channels would be read as CMYK): left out, said
    args[args.index(str(tmp_path / "out.png"))] = str(tmp_path / "out.jpg")
    assert main(args) == 0
    assert "JPEG has no alpha channel" in " ".join(capsys.readouterr().err.split())
    assert io.read(tmp_path / "out.jpg").shape == ((48, 48, 3) if colours == 3 else (48, 48))


def test_imagej_hyperstack_channels_are_found_and_kept(tmp_path):
    import tifffile

    from deconvkit import richardson_lucy

    kernel = psf.gaussian((1.0, 1.5, 1.5))
    rng = np.random.default_rng(2)
    stack = np.stack([simulate(rng.random((12, 24, 24)), kernel, sigma=0.01, seed=c)
                      for c in range(2)], axis=1).astype(np.float32)  # Z, C, Y, X
    tifffile.imwrite(tmp_path / "hs.tif", stack, imagej=True,
                     metadata={"axes": "ZCYX", "spacing": 0.3, "unit": "um"})
    io.write(tmp_path / "k.tif", kernel.astype(np.float32))
    assert main(["deconvolve", str(tmp_path / "hs.tif"), "--psf", str(tmp_path / "k.tif"),
                 "--method", "richardson_lucy", "--iterations", "4", "-q",
                 "-o", str(tmp_path / "out.tif")]) == 0
    out, meta = io.read(tmp_path / "out.tif", with_metadata=True)
    assert out.shape == stack.shape and meta.axes == "ZCYX"
    for c in range(2):  # each channel restored as a volume of its own
        expected = richardson_lucy(stack[:, c], kernel, iterations=4)
        np.testing.assert_allclose(out[:, c], expected, rtol=1e-4, atol=1e-5)


def test_each_channel_takes_its_own_psf(tmp_path, capsys):
    import tifffile

    from deconvkit import richardson_lucy

    kernels = [psf.gaussian((1.0, 1.2, 1.2)), psf.gaussian((1.5, 2.0, 2.0))]  # two wavelengths
    rng = np.random.default_rng(3)
    stack = np.stack([simulate(rng.random((16, 24, 24)), k, sigma=0.01, seed=c)
                      for c, k in enumerate(kernels)], axis=1).astype(np.float32)
    tifffile.imwrite(tmp_path / "hs.tif", stack, imagej=True, metadata={"axes": "ZCYX"})
    for c, k in enumerate(kernels):
        io.write(tmp_path / f"k{c}.tif", k.astype(np.float32))
    psfs = ["--psf", str(tmp_path / "k0.tif"), "--psf", str(tmp_path / "k1.tif")]
    assert main(["deconvolve", str(tmp_path / "hs.tif"), *psfs, "--method", "richardson_lucy",
                 "--iterations", "4", "-q", "-o", str(tmp_path / "out.tif")]) == 0
    out = io.read(tmp_path / "out.tif")
    for c, k in enumerate(kernels):
        expected = richardson_lucy(stack[:, c], k, iterations=4)
        np.testing.assert_allclose(out[:, c], expected, rtol=1e-4, atol=1e-5)
    # as many PSFs as channels, or one
    assert main(["deconvolve", str(tmp_path / "hs.tif"), *psfs, "--psf", str(tmp_path / "k0.tif"),
                 "-o", str(tmp_path / "bad.tif")]) == 2
    assert "3 PSFs were given (--psf) but" in capsys.readouterr().err


def test_out_of_core_refuses_channels_clearly(tmp_path, capsys):
    import tifffile

    tifffile.imwrite(tmp_path / "hs.tif", np.ones((12, 2, 24, 24), np.float32), imagej=True,
                     metadata={"axes": "ZCYX"})
    io.write(tmp_path / "k.tif", psf.gaussian((1.0, 1.5, 1.5)).astype(np.float32))
    assert main(["deconvolve", str(tmp_path / "hs.tif"), "--psf", str(tmp_path / "k.tif"),
                 "--memory-limit", "50MB", "-o", str(tmp_path / "out.tif")]) == 2
    assert "one channel at a time" in capsys.readouterr().err
    assert not (tmp_path / "out.tif").exists()


def test_wav_keeps_its_sample_format_and_channels(tmp_path, capsys):
    from scipy.io import wavfile

    kernel = psf.gaussian(3.0, ndim=1)
    t = np.linspace(0.0, 1.0, 800)
    tone = np.sin(2 * np.pi * 9 * t)  # signed: must not be clipped at 0
    channels = np.stack([simulate(tone, kernel, sigma=0.01, seed=c) for c in range(2)], 1)
    wavfile.write(tmp_path / "in.wav", 8000, np.round(channels * 12000).astype(np.int16))
    io.write(tmp_path / "k.npy", kernel)
    assert main(["deconvolve", str(tmp_path / "in.wav"), "--psf", str(tmp_path / "k.npy"),
                 "-q", "-o", str(tmp_path / "out.wav")]) == 0
    rate, out = wavfile.read(tmp_path / "out.wav")
    assert rate == 8000 and out.dtype == np.int16 and out.shape == (800, 2)
    assert out.min() < -6000  # float32 samples of +-12000 before, and the sign kept
    # a generator spec of the wrong dimension says how to fix it
    io.write(tmp_path / "mono.csv", channels[:, 0])
    assert main(["deconvolve", str(tmp_path / "mono.csv"), "--psf", "gaussian:sigma=3",
                 "-o", str(tmp_path / "o2.csv")]) == 2
    assert "gaussian:sigma=3,ndim=1" in capsys.readouterr().err


def test_simulate_command(tmp_path):
    io.write(tmp_path / "in.npy", np.ones((32, 32)))
    assert main(["simulate", str(tmp_path / "in.npy"), "--psf", "disk:radius=2", "--noise",
                 "poisson", "--seed", "1", "-o", str(tmp_path / "sim.tif")]) == 0
    assert io.read(tmp_path / "sim.tif").shape == (32, 32)


def test_cli_blind_choices_match_the_library():
    from click import Choice

    from deconvkit.blind import BLIND_METHODS, DEFAULT_WEIGHT
    from deconvkit.cli import blind

    choices = {p.name: p.type.choices for p in blind.params if isinstance(p.type, Choice)}
    assert tuple(choices["method"]) == BLIND_METHODS
    assert sorted(choices["prior"]) == sorted(DEFAULT_WEIGHT)


def test_blind_command(tmp_path, capsys):
    from deconvkit import dead_leaves

    kernel = psf.motion(7, 0, shape=(9, 9))
    observed = simulate(dead_leaves((96, 96), seed=2), kernel, noise="none")
    io.write(tmp_path / "in.tif", observed.astype(np.float32))
    assert main(["blind", str(tmp_path / "in.tif"), "--psf-size", "11", "-o",
                 str(tmp_path / "out.tif"), "--psf-out", str(tmp_path / "k.tif")]) == 0
    estimate = io.read(tmp_path / "k.tif")
    assert estimate.shape == (11, 11) and np.isclose(estimate.sum(), 1, atol=1e-5)
    assert io.read(tmp_path / "out.tif").shape == (96, 96)
    assert "blind map" in capsys.readouterr().out
    assert main(["blind", str(tmp_path / "in.tif"), "--psf-size", "big", "-o",
                 str(tmp_path / "o2.tif")]) == 2
    assert "--psf-size" in capsys.readouterr().err


@pytest.mark.parametrize("args,match", [
    (["deconvolve", "{d}/missing.tif", "--psf", "gaussian:sigma=1", "-o", "{d}/o.tif"],
     "no such file"),
    (["deconvolve", "{in}", "--psf", "gaussian:sigma=1", "-o", "{in}"], "is the input file"),
    (["deconvolve", "{in}", "--psf", "blob:r=1", "-o", "{d}/o.tif"], "unknown psf 'blob'"),
    (["deconvolve", "{in}", "--psf", "{d}/nope.tif", "-o", "{d}/o.tif"], "does not exist"),
    (["deconvolve", "{in}", "--psf", "gaussian:sigma=1", "-o", "{d}/o.xyz"], "unknown file type"),
    (["deconvolve", "{in}", "--psf", "gaussian:sigma=1", "--method", "magic", "-o", "{d}/o.tif"],
     "Invalid value for '--method'"),
    (["deconvolve", "{in}", "--psf", "gaussian:sigma=1", "--method", "wiener", "--iterations",
      "3", "-o", "{d}/o.tif"], "wiener does not take iterations"),
    (["deconvolve", "{in}", "--psf", "gaussian:sigma=1", "--weight", "heavy", "-o", "{d}/o.tif"],
     "--weight: 'heavy' is not a number or 'auto'"),
    (["deconvolve", "{in}", "--psf", "gaussian:sigma=1", "--saturated", "high", "-o",
      "{d}/o.tif"], "--saturated: 'high' is not a number or 'auto' or 'none'"),
    (["super-resolve", "{in}", "--psf", "gaussian:sigma=1", "--scale", "2", "--tv-weight",
      "abc", "-o", "{d}/o.tif"], "--tv-weight: 'abc' is not a number or 'auto' or 'none'"),
    (["deconvolve", "{in}", "--psf", "gaussian:sigma=1", "--option", "oops", "-o", "{d}/o.tif"],
     "is not key=value"),
    (["deconvolve", "{in}", "--psf", "gaussian:sigma=1x1x1", "-o", "{d}/o.tif"],
     "makes a 3-D PSF but .* is 2-D; give a 2-D spec"),
    (["deconvolve", "{bad}", "--psf", "gaussian:sigma=1", "-o", "{d}/o.tif"], "cannot read"),
    (["deconvolve", "{nan}", "--psf", "gaussian:sigma=1", "-o", "{d}/o.tif"], "image is all NaN"),
    (["simulate", "{in}", "--psf", "gaussian:sigma=1", "--noise", "poisson", "--photons", "0",
      "-o", "{d}/s.tif"], "photons must be > 0"),
    (["deconvolve", "{in}", "--psf", "gaussian:sigma=1", "--measured-psf", "radial", "-o",
      "{d}/o.tif"], "a measured PSF is a file imaging a point source"),
    (["psf", "gaussian:2", "--measured", "plain", "-o", "{d}/k.tif"],
     "'gaussian:2' is a generator spec"),
    (["deconvolve", "{in}"], "Missing option '--psf'"),
    (["frobnicate"], "No such command"),
    (["psf", "airy:radius=3", "-o", "{d}/k.png"], "a PSF needs floating point"),
    (["deconvolve", "{in}", "--psf", "gaussian:sigma=1", "--chunks", "0x10", "-o", "{d}/o.tif"],
     "--chunks 0x10 must be 2 sizes >= 1"),  # a ZeroDivisionError traceback before
    (["train", "{d}/bad.toml", "--out", "{d}/run"], "bad.toml: not valid TOML"),
    (["train", "{d}/negative.toml", "--out", "{d}/run"], "train.steps must be an int >= 1"),
    (["train", "{d}/typo.toml", "--out", "{d}/run"], r"unknown data key\(s\) \['pach'\]"),
    (["train", "{d}/layers.toml", "--out", "{d}/run"], "model ESPCN with .*negative dimension"),
])
def test_user_errors_are_one_line_with_status_2(tmp_path, blurred_tif, capsys, args, match):
    (tmp_path / "bad.tif").write_bytes(b"garbage")
    (tmp_path / "bad.toml").write_text("garbage")
    (tmp_path / "negative.toml").write_text('[model]\nname = "ESPCN"\nscale = 2\n'
                                            '[train]\nsteps = -1\n')
    (tmp_path / "typo.toml").write_text('[model]\nname = "ESPCN"\nscale = 2\n[data]\npach = 8\n')
    (tmp_path / "layers.toml").write_text('[model]\nname = "ESPCN"\nscale = 2\nfeatures = -3\n')
    np.save(tmp_path / "nan.npy", np.full((8, 8), np.nan))
    fill = {"{d}": str(tmp_path), "{in}": str(blurred_tif), "{bad}": str(tmp_path / "bad.tif"),
            "{nan}": str(tmp_path / "nan.npy")}
    argv = []
    for a in args:
        for key, value in fill.items():
            a = a.replace(key, value)
        argv.append(a)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("deconvkit: error: ")
    import re

    assert re.search(match, err), err


def test_an_output_that_cannot_hold_the_result_fails_before_the_work(tmp_path, capsys,
                                                                    monkeypatch):
    io.write(tmp_path / "two.tif", np.ones((32, 32, 2), np.float32))
    from deconvkit import _deconvolve

    def never(*args, **kwargs):
        raise AssertionError("restored before checking the output")

    monkeypatch.setattr(_deconvolve, "deconvolve", never)
    assert main(["deconvolve", str(tmp_path / "two.tif"), "--psf", "gaussian:1", "-o",
                 str(tmp_path / "out.jpg")]) == 2
    assert "JPEG holds 2-D grey or colour images" in capsys.readouterr().err
    assert not (tmp_path / "out.jpg").exists()


def test_existing_output_needs_overwrite(tmp_path, blurred_tif, capsys):
    out = tmp_path / "o.tif"
    io.write(out, np.zeros((2, 2), np.float32))
    assert main(["deconvolve", str(blurred_tif), "--psf", "gaussian:sigma=1", "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["deconvolve", str(blurred_tif), "--psf", "gaussian:sigma=1", "-o", str(out),
                 "--overwrite", "-q", "--method", "richardson_lucy", "--iterations", "2"]) == 0
    assert io.read(out).shape == (128, 128)


def test_demo_writes_table_files_and_figure(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("signal1d", "camera", "phantom3d", "PSNR", "SSIM", "richardson_lucy", "wiener",
                 "auto (total_variation)"):
        assert name in out
    files = sorted(p.name for p in tmp_path.iterdir())
    assert "comparison.png" in files
    assert "phantom3d_richardson_lucy.tif" in files and "signal1d_wiener.csv" in files
    assert "camera_defects.tif" in files and "camera_defects_restored.tif" in files
    assert "camera_super_resolved.tif" in files and "super-resolution" in out
    assert main(["demo", "--out", str(tmp_path), "-q"]) == 2  # no silent overwrite


def test_demo_detector_defects(tmp_path):
    """The demo's hot pixels and clipped highlights: marked as such, the default gets
    back near the clean data's result (measured 30.17 against 30.32 dB; taken as
    data, 16.86)."""
    from deconvkit._demo import _defect_rows, image_case

    naive, aware = _defect_rows(image_case(), tmp_path, overwrite=False)
    assert aware["psnr"] > naive["psnr"] + 10.0 and aware["psnr"] > 29.0


def test_signal_command_removes_an_instrument_response(tmp_path):
    from deconvkit import signal

    rng = np.random.default_rng(4)
    spikes = np.zeros((1000, 2))
    spikes[[100, 400, 401, 800], 0] = [3000, -2000, 2500, 1500]
    spikes[[250, 600], 1] = [-3000, 2000]
    response = np.exp(-np.arange(30) / 5.0) * np.sin(np.arange(30) / 2.0)
    recorded = np.stack([np.convolve(s, response)[:1000] for s in spikes.T], axis=1)
    recorded += 10 * rng.standard_normal(recorded.shape)
    np.savetxt(tmp_path / "response.csv", response)
    np.savetxt(tmp_path / "trace.csv", recorded[:, 0])
    assert main(["signal", str(tmp_path / "trace.csv"), "--response",
                 str(tmp_path / "response.csv"), "-o", str(tmp_path / "out.csv"), "-q"]) == 0
    restored = np.loadtxt(tmp_path / "out.csv")
    np.testing.assert_allclose(restored, signal.regularized(recorded[:, 0], response), atol=1e-9)
    assert np.corrcoef(restored, spikes[:, 0])[0, 1] > 0.9
    assert np.corrcoef(recorded[:, 0], spikes[:, 0])[0, 1] < 0.5
    # a stereo WAV: each channel on its own, the sample rate used by --lowpass, int16 kept
    io.write(tmp_path / "stereo.wav", recorded, bit_depth=16,
             metadata=io.Metadata(sample_rate=8000.0))
    assert main(["signal", str(tmp_path / "stereo.wav"), "--response",
                 str(tmp_path / "response.csv"), "-o", str(tmp_path / "out.wav"), "-q",
                 "--method", "water_level", "--lowpass", "5000"]) == 0
    out, meta = io.read(tmp_path / "out.wav", with_metadata=True)
    assert out.dtype == np.int16 and out.shape == (1000, 2) and meta.sample_rate == 8000
    stereo = io.read(tmp_path / "stereo.wav").astype(float)
    expected = signal.water_level(stereo[:, 1], response, lowpass=5000, sample_rate=8000)
    np.testing.assert_allclose(out[:, 1], np.rint(expected), atol=1)
    # a 2-D .npy holds traces x samples, as deconvkit.signal takes them
    np.save(tmp_path / "traces.npy", recorded.T)
    assert main(["signal", str(tmp_path / "traces.npy"), "--response",
                 str(tmp_path / "response.csv"), "-o", str(tmp_path / "out.npy"), "-q"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"),
                               signal.regularized(recorded.T, response), atol=1e-9)
    assert main(["signal", str(tmp_path / "trace.csv"), "--response",
                 str(tmp_path / "response.csv"), "-o", str(tmp_path / "x.csv"),
                 "--weight", "abc"]) == 2


def test_signal_command_takes_poles_and_zeros_with_the_traces_sample_rate(tmp_path):
    from deconvkit import signal

    rate, n = 50.0, 1500
    t = np.arange(n) / rate
    motion = np.exp(-((t - 12) / 2.0) ** 2) * np.sin(2 * np.pi * 3 * t)
    geophone = signal.PolesZeros(zeros=[0, 0], poles=[-4.443 + 4.443j, -4.443 - 4.443j],
                                 gain=30.0)
    grid = 4 * n
    recorded = np.fft.irfft(np.fft.rfft(motion, grid)
                            * geophone.frequency_response(np.fft.rfftfreq(grid, 1 / rate)),
                            grid)[:n] + 0.05 * np.random.default_rng(6).standard_normal(n)
    # an oscilloscope-style CSV: its time column gives the sample rate
    np.savetxt(tmp_path / "trace.csv", np.column_stack([t, recorded]), delimiter=",",
               header="time,velocity", comments="")
    (tmp_path / "paz.toml").write_text('zeros = [0, 0]\npoles = ["-4.443+4.443j", '
                                       '[-4.443, -4.443]]\ngain = 30.0\n')
    assert main(["signal", str(tmp_path / "trace.csv"), "--response", str(tmp_path / "paz.toml"),
                 "-o", str(tmp_path / "out.csv"), "-q"]) == 0
    restored = io.read(tmp_path / "out.csv")
    np.testing.assert_allclose(restored, signal.regularized(recorded, geophone, sample_rate=rate),
                               atol=1e-9)
    assert np.sqrt(np.mean((restored - motion) ** 2)) < 0.1 * np.abs(motion).max()
    # without a sample rate, and with a malformed file: one line naming what to do
    np.savetxt(tmp_path / "bare.csv", recorded)
    assert main(["signal", str(tmp_path / "bare.csv"), "--response", str(tmp_path / "paz.toml"),
                 "-o", str(tmp_path / "o2.csv")]) == 2
    (tmp_path / "bad.json").write_text('{"poles": ["-1+zj"], "gian": 2}')
    assert main(["signal", str(tmp_path / "trace.csv"), "--response", str(tmp_path / "bad.json"),
                 "-o", str(tmp_path / "o3.csv")]) == 2
    (tmp_path / "bad2.json").write_text('{"poles": ["-1+zj"]}')
    assert main(["signal", str(tmp_path / "trace.csv"), "--response", str(tmp_path / "bad2.json"),
                 "-o", str(tmp_path / "o4.csv")]) == 2
    assert not any((tmp_path / f"o{k}.csv").exists() for k in (2, 3, 4))


def _psf_file(tmp_path, spacing, unit, sigma):
    path = tmp_path / "psf.tif"
    io.write(path, psf.gaussian(sigma).astype(np.float32),
             metadata=io.Metadata(spacing=spacing, unit=unit), overwrite=True)
    return path


@pytest.mark.parametrize("spacing,unit,resampled", [
    ((0.1, 0.1), "um", False),  # the image's own sampling
    ((0.05, 0.05), "um", True),  # a PSF measured at twice the image's sampling
    ((50.0, 50.0), "nm", True),  # the same, in nanometres
    ((100.0, 100.0), "nm", False),
])
def test_psf_file_is_resampled_to_the_images_voxel_size(tmp_path, blurred_tif, capsys,
                                                         spacing, unit, resampled):
    # blurred_tif: sigma 1.5 samples at 0.1 um; the same PSF at 0.05 um is 3 samples wide
    sigma = 1.5 * 0.1 / (spacing[0] * (1e-3 if unit == "nm" else 1.0))
    assert main(["deconvolve", str(blurred_tif), "--psf", str(_psf_file(tmp_path, spacing,
                 unit, sigma)), "--method", "wiener", "-o", str(tmp_path / "r.tif")]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert ("PSF resampled from spacing" in said) == resampled
    reference = tmp_path / "ref.tif"
    main(["deconvolve", str(blurred_tif), "--psf", "gaussian:sigma=1.5", "--method", "wiener",
          "-o", str(reference), "-q"])
    # restored with the PSF at the right width: what the image's own PSF gives
    np.testing.assert_allclose(io.read(tmp_path / "r.tif"), io.read(reference), atol=0.02)
    # an image that states no voxel size: the PSF is used as it is, and the summary says so
    io.write(tmp_path / "bare.npy", io.read(blurred_tif))
    assert main(["deconvolve", str(tmp_path / "bare.npy"), "--psf",
                 str(_psf_file(tmp_path, spacing, unit, sigma)), "--method", "wiener",
                 "-o", str(tmp_path / "b.npy")]) == 0
    assert "states no voxel size: taken as the same" in " ".join(capsys.readouterr().out.split())


def test_psf_is_not_resampled_against_a_spacing_without_unit(tmp_path, capsys):
    # a photo's resolution tags (dots per inch, no unit) say nothing about micrometres
    image = simulate(np.random.default_rng(0).random((40, 40)), psf.gaussian(1.5), sigma=0.01)
    io.write(tmp_path / "photo.tif", image.astype(np.float32),
             metadata=io.Metadata(spacing=(1 / 300, 1 / 300)))
    path = _psf_file(tmp_path, (0.1, 0.1), "um", 1.5)
    assert main(["deconvolve", str(tmp_path / "photo.tif"), "--psf", str(path), "--method",
                 "wiener", "-o", str(tmp_path / "r.tif")]) == 0
    assert "PSF resampled from" not in " ".join(capsys.readouterr().out.split())


def test_psf_units_that_cannot_be_compared_are_an_error(tmp_path, blurred_tif, capsys):
    path = _psf_file(tmp_path, (1.0, 1.0), "pixel", 1.5)
    assert main(["deconvolve", str(blurred_tif), "--psf", str(path), "-o",
                 str(tmp_path / "r.tif")]) == 2
    assert "voxel size is in pixel" in capsys.readouterr().err


def test_ome_tiff_in_ome_tiff_out(tmp_path, capsys):
    import tifffile

    # Bio-Formats' export: the voxel size in OME-XML only (Z in nm here)
    truth = np.zeros((2, 16, 16), np.float32)
    truth[:, 8, 8] = 1.0
    blurred = np.stack([simulate(plane, psf.gaussian(1.5), sigma=0.0) for plane in truth])
    tifffile.imwrite(tmp_path / "in.ome.tif", blurred.astype(np.float32), ome=True,
                     photometric="minisblack",
                     metadata={"axes": "CYX", "PhysicalSizeX": 0.1, "PhysicalSizeY": 0.1})
    # a PSF measured at half the image's pixel: resampled through the OME sizes
    io.write(tmp_path / "psf.ome.tif", psf.gaussian(3.0).astype(np.float32),
             metadata=io.Metadata(spacing=(50.0, 50.0), unit="nm"))
    assert main(["deconvolve", str(tmp_path / "in.ome.tif"), "--psf",
                 str(tmp_path / "psf.ome.tif"), "--method", "wiener",
                 "-o", str(tmp_path / "out.ome.tif")]) == 0
    assert "PSF resampled from spacing 0.05x0.05 to 0.1x0.1" in " ".join(
        capsys.readouterr().out.split())
    with tifffile.TiffFile(tmp_path / "out.ome.tif") as tif:
        assert tif.is_ome and tif.series[0].axes == "CYX"
    out, meta = io.read(tmp_path / "out.ome.tif", with_metadata=True)
    assert out.shape == blurred.shape and meta.spacing == pytest.approx((0.1, 0.1))
    assert np.all(out.reshape(2, -1).argmax(axis=1) == 8 * 16 + 8)  # each channel restored


def test_widefield_psf_file_says_its_voxel_size(tmp_path):
    out = tmp_path / "wf.tif"
    assert main(["psf", "widefield:shape=9x17x17,pixel_size=0.065,z_step=0.25", "-o",
                 str(out)]) == 0
    _, meta = io.read(out, with_metadata=True)
    assert meta.spacing == pytest.approx((0.25, 0.065, 0.065)) and meta.unit == "um"


def test_deconvolve_psf_grid_is_a_space_variant_blur(tmp_path, capsys):
    from deconvkit import SpaceVariantConvolution, deconvolve

    grid = np.stack([psf.gaussian(s, shape=(9, 9)) for s in (0.7, 1.2, 1.7, 2.2)])
    grid = grid.reshape(2, 2, 9, 9)
    field = SpaceVariantConvolution(grid)
    scene = np.random.default_rng(5).random((72, 72))
    observed = field.forward(scene).astype(np.float32)
    io.write(tmp_path / "in.tif", observed)
    np.save(tmp_path / "grid.npy", grid)
    assert main(["deconvolve", str(tmp_path / "in.tif"), "--psf", str(tmp_path / "grid.npy"),
                 "--psf-grid", "--method", "richardson_lucy", "--iterations", "10",
                 "-o", str(tmp_path / "out.tif")]) == 0
    expected = deconvolve(observed, field, method="richardson_lucy", iterations=10)
    np.testing.assert_allclose(io.read(tmp_path / "out.tif"), expected, rtol=1e-5, atol=1e-6)
    # out of core: each chunk sees the field through its window (RL without Biggs'
    # per-tile step: tiled == untiled)
    assert main(["deconvolve", str(tmp_path / "in.tif"), "--psf", str(tmp_path / "grid.npy"),
                 "--psf-grid", "--method", "richardson_lucy", "--iterations", "10",
                 "--option", "acceleration=none", "--chunks", "40x40",
                 "-o", str(tmp_path / "chunked.tif")]) == 0
    whole = deconvolve(observed, field, method="richardson_lucy", iterations=10,
                       acceleration=None)
    np.testing.assert_allclose(io.read(tmp_path / "chunked.tif"), whole, rtol=1e-4,
                               atol=1e-5)
    # chunks chosen from a memory limit (the field's kernel shape; an AttributeError before)
    assert main(["deconvolve", str(tmp_path / "in.tif"), "--psf", str(tmp_path / "grid.npy"),
                 "--psf-grid", "--method", "richardson_lucy", "--iterations", "10",
                 "--option", "acceleration=none", "--memory-limit", "1GB",
                 "-o", str(tmp_path / "limited.tif")]) == 0
    np.testing.assert_allclose(io.read(tmp_path / "limited.tif"), whole, rtol=1e-4,
                               atol=1e-5)
    for extra, message in ((["--method", "wiener"], "is a psf for total_variation"),):
        assert main(["deconvolve", str(tmp_path / "in.tif"), "--psf",
                     str(tmp_path / "grid.npy"), "--psf-grid", *extra,
                     "-o", str(tmp_path / "x.tif")]) == 2
        assert message in capsys.readouterr().err
    assert main(["deconvolve", str(tmp_path / "in.tif"), "--psf", "gaussian:2", "--psf-grid",
                 "-o", str(tmp_path / "x.tif")]) == 2
    assert "needs a file holding a grid of PSFs" in capsys.readouterr().err
    assert not (tmp_path / "x.tif").exists()


def test_psf_grid_from_a_field_of_sources_then_deconvolve_with_it(tmp_path, capsys):
    from deconvkit import SpaceVariantConvolution

    grid = np.stack([psf.gaussian(s, shape=(11, 11)) for s in (0.8, 1.3, 1.8, 2.3)])
    field = SpaceVariantConvolution(grid.reshape(2, 2, 11, 11))
    rng = np.random.default_rng(3)
    scene = np.zeros(field.input_shape((160, 160)))
    for a in range(20, 160, 30):
        for b in range(20, 160, 30):
            scene[a + 5, b + 5] = 500.0  # beads on a lattice, 30 samples apart
    beads = field.forward(scene) + 2.0 + rng.normal(0, 0.1, (160, 160))
    io.write(tmp_path / "beads.tif", beads.astype(np.float32))
    assert main(["psf", str(tmp_path / "beads.tif"), "--grid", "2x2", "--size", "11",
                 "-o", str(tmp_path / "grid.npy")]) == 0
    found = np.load(tmp_path / "grid.npy")
    assert found.shape == (2, 2, 11, 11)
    np.testing.assert_allclose(found, psf.grid_from_sources(beads.astype(np.float32), 2, 11),
                               rtol=1e-5, atol=1e-7)
    assert np.abs(found - grid.reshape(2, 2, 11, 11)).max() < 0.05 * grid.max()
    assert main(["psf", str(tmp_path / "beads.tif"), "--grid", "2x2", "-o",
                 str(tmp_path / "g2.npy")]) == 2
    assert "--grid and --size go together" in capsys.readouterr().err


def test_background_level_image_or_snip(tmp_path, capsys):
    """--background: a number, an image of the input's shape, or SNIP for a spectrum."""
    from deconvkit import blur, gold
    from deconvkit.spectra import snip_background

    kernel = psf.gaussian(4.0, ndim=1)
    truth = np.zeros(600)
    truth[[150, 156, 400]] = [3000.0, 3000.0, 5000.0]
    continuum = 40.0 * np.exp(-np.arange(600) / 300.0) + 8.0
    counts = np.random.default_rng(0).poisson(blur(truth, kernel, boundary="zero") + continuum)
    io.write(tmp_path / "s.csv", counts.astype(float))
    np.save(tmp_path / "k.npy", kernel)
    np.save(tmp_path / "c.npy", continuum)
    common = ["deconvolve", str(tmp_path / "s.csv"), "--psf", str(tmp_path / "k.npy"),
              "--method", "gold", "--iterations", "50"]
    assert main([*common, "--background", str(tmp_path / "c.npy"), "-o",
                 str(tmp_path / "a.csv")]) == 0
    np.testing.assert_allclose(io.read(tmp_path / "a.csv"),
                               gold(counts, kernel, background=continuum, iterations=50),
                               rtol=1e-6, atol=1e-6)
    assert main([*common, "--background", "snip", "-o", str(tmp_path / "b.csv")]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "continuum by SNIP (half-window 18)" in said  # 9 samples above half the peak
    expected = gold(counts, kernel, iterations=50,
                    background=snip_background(counts.astype(float), 18, smooth=4))
    np.testing.assert_allclose(io.read(tmp_path / "b.csv"), expected, rtol=1e-6, atol=1e-6)
    assert main([*common, "--background", "8", "-o", str(tmp_path / "c.csv")]) == 0
    for bad, message in ((["--background", "nofile"], "neither a number, snip, nor a file"),
                         (["--background", "3", "--method", "wiener"], "models one")):
        assert main([*common, *bad, "-o", str(tmp_path / "x.csv")]) == 2
        assert message in capsys.readouterr().err


def test_background_with_the_default_method(tmp_path, capsys):
    """A camera's offset given to the automatic choice (total variation) is
    modelled, not restored: it once went through unnoticed, the output
    carrying the offset."""
    from deconvkit import deconvolve, simulate

    scene = np.zeros((48, 48))
    scene[12:30, 16:36] = 50.0
    kernel = psf.gaussian(1.5)
    observed = simulate(scene, kernel, noise="poisson", photons=50.0, seed=0) * 50.0 + 100.0
    io.write(tmp_path / "in.tif", observed.astype(np.float32))
    assert main(["deconvolve", str(tmp_path / "in.tif"), "--psf", "gaussian:1.5",
                 "--background", "100", "-o", str(tmp_path / "out.tif")]) == 0
    assert "background 100 modelled" in " ".join(capsys.readouterr().out.split())
    restored = io.read(tmp_path / "out.tif")
    np.testing.assert_allclose(restored, deconvolve(observed.astype(np.float32), kernel,
                                                    background=100.0), rtol=1e-5, atol=1e-4)
    assert abs(restored.mean() - (observed.mean() - 100.0)) < 2.0
    sky = np.full(observed.shape, 100.0, dtype=np.float32)
    io.write(tmp_path / "sky.tif", sky)
    assert main(["deconvolve", str(tmp_path / "in.tif"), "--psf", "gaussian:1.5",
                 "--background", str(tmp_path / "sky.tif"), "-o", str(tmp_path / "m.tif")]) == 0
    np.testing.assert_allclose(io.read(tmp_path / "m.tif"), restored, rtol=1e-5, atol=1e-4)


def test_psf_longer_than_a_thin_stack_is_cropped(tmp_path, capsys):
    """A generated PSF longer than the stack (the widefield default has 33
    planes) is cropped to it with a note of the light it keeps, where the
    library refuses it (a boundary other than "valid") and out of core; under
    "valid" RL takes it whole in memory and says so."""
    from deconvkit import deconvolve

    stack = np.random.default_rng(0).random((7, 40, 44)).astype(np.float32) + 1.0
    io.write(tmp_path / "thin.tif", stack)
    common = ["deconvolve", str(tmp_path / "thin.tif"), "--psf", "widefield:na=1.2",
              "--method", "richardson_lucy", "--iterations", "3"]
    assert main([*common, "--boundary", "symmetric", "-o", str(tmp_path / "out.tif")]) == 0
    said = " ".join(capsys.readouterr().out.split())
    full = psf.widefield(na=1.2)
    window = full[16 - 3:16 + 4, 32 - 19:32 + 20, 32 - 21:32 + 22]
    kept = round(100 * window.sum() / full.sum())
    assert f"PSF cropped from 33x65x65 to 7x39x43 to fit the image (it keeps {kept} %" in said
    np.testing.assert_allclose(io.read(tmp_path / "out.tif"),
                               deconvolve(stack, psf.crop_or_pad(full, (7, 39, 43)),
                                          method="richardson_lucy", iterations=3,
                                          boundary="symmetric"),
                               rtol=1e-5, atol=1e-6)
    assert main([*common, "-o", str(tmp_path / "whole.tif")]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "PSF 33x65x65 longer than the image: its light from beyond the image modelled" in said
    np.testing.assert_allclose(io.read(tmp_path / "whole.tif"),
                               deconvolve(stack, full, method="richardson_lucy", iterations=3),
                               rtol=1e-5, atol=1e-6)
    # out of core the tiles hold the PSF: cropped (it was refused there)
    assert main([*common, "--memory-limit", "1GB", "-o", str(tmp_path / "tiled.tif")]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert f"PSF cropped from 33x65x65 to 7x39x43 to fit the image (it keeps {kept} %" in said


def test_bit_depth_for_tiff_outputs(tmp_path, capsys):
    """--bit-depth 16 writes an unsigned 16-bit TIFF (blind's help promised it
    and wrote float32); without it a TIFF stays float; out of core too, block
    by block, the clipped samples counted (it was refused there)."""
    rng = np.random.default_rng(0)
    io.write(tmp_path / "in.tif", (rng.random((48, 48)) * 1000).astype(np.uint16))
    common = ["deconvolve", str(tmp_path / "in.tif"), "--psf", "gaussian:1.5", "-q"]
    assert main([*common, "-o", str(tmp_path / "f.tif")]) == 0
    assert main([*common, "--bit-depth", "16", "-o", str(tmp_path / "u.tif")]) == 0
    floats, integers = io.read(tmp_path / "f.tif"), io.read(tmp_path / "u.tif")
    assert floats.dtype == np.float32 and integers.dtype == np.uint16
    np.testing.assert_array_equal(integers, np.clip(np.rint(floats), 0, 65535))
    assert main(["blind", str(tmp_path / "in.tif"), "--psf-size", "7", "--bit-depth", "16",
                 "-q", "-o", str(tmp_path / "b.tif")]) == 0
    assert io.read(tmp_path / "b.tif").dtype == np.uint16
    for name in ("m.tif", "m.zarr"):
        assert main([*common, "--bit-depth", "16", "--chunks", "24x24",
                     "-o", str(tmp_path / name)]) == 0
        chunked = io.read(tmp_path / name) if name.endswith(".tif") else np.asarray(
            __import__("zarr").open(str(tmp_path / name), mode="r"))
        assert chunked.dtype == np.uint16 and chunked.shape == (48, 48)
        tiled = main([*common, "--chunks", "24x24", "-o", str(tmp_path / f"float_{name}")])
        assert tiled == 0
    floats = io.read(tmp_path / "float_m.tif")
    np.testing.assert_array_equal(io.read(tmp_path / "m.tif"), np.clip(np.rint(floats), 0,
                                                                          65535))
    # an 8-bit output of values up to 1000: clipped, and said
    capsys.readouterr()
    assert main([*common, "--bit-depth", "8", "--chunks", "24x24", "-o",
                 str(tmp_path / "m8.tif")]) == 0
    clipped = int((np.rint(floats) > 255).sum())
    assert f"{clipped} samples outside 0..255 were clipped" in \
        " ".join(capsys.readouterr().err.split())
    assert main([*common, "--bit-depth", "16", "--multiview", "-o",
                 str(tmp_path / "v.tif")]) == 2


def test_options_the_chosen_mode_ignores_are_refused(tmp_path, capsys):
    """Typed options that the chosen method or noise model does not use were
    silently ignored; their defaults still pass unremarked."""
    np.save(tmp_path / "t.npy", np.random.default_rng(0).random(200))
    np.save(tmp_path / "r.npy", np.exp(-np.arange(20) / 4.0))
    np.save(tmp_path / "i.npy", np.random.default_rng(1).random((24, 24)))
    common = ["signal", str(tmp_path / "t.npy"), "--response", str(tmp_path / "r.npy"),
              "-q", "--overwrite", "-o", str(tmp_path / "o.npy")]
    for extra, refused in ((["--method", "water_level", "--weight", "0.1", "--penalty",
                             "identity"], "--weight, --penalty: not used with --method "
                                          "water_level"),
                           (["--lowpass", "3"], "--lowpass: not used with --method regularized")):
        assert main([*common, *extra]) == 2
        assert refused in capsys.readouterr().err
    assert main([*common, "--method", "water_level", "--lowpass", "3"]) == 0
    simulate = ["simulate", str(tmp_path / "i.npy"), "--psf", "gaussian:1", "--overwrite",
                "-o", str(tmp_path / "s.npy")]
    assert main([*simulate, "--noise", "poisson", "--sigma", "0.2"]) == 2
    assert "--sigma: not used with --noise poisson" in capsys.readouterr().err
    assert main([*simulate, "--noise", "mixed", "--sigma", "0.01", "--photons", "50"]) == 0


def test_hyperstack_with_time_and_channels(tmp_path, capsys):
    """An ImageJ TZCYX hyperstack is restored per channel, Z as Z: a 3-D PSF had
    run along C (the channel axis went unnamed beyond one extra axis)."""
    import tifffile

    from deconvkit import blur, deconvolve

    stack = (np.random.default_rng(0).random((2, 9, 2, 24, 24)) * 1000 + 100).astype(np.uint16)
    tifffile.imwrite(tmp_path / "h.tif", stack, imagej=True, metadata={"axes": "TZCYX"})
    assert main(["deconvolve", str(tmp_path / "h.tif"), "--psf", "gaussian:sigma=1x1.2x1.2",
                 "--method", "richardson_lucy", "--iterations", "3", "--option",
                 "acceleration=none", "-q", "-o", str(tmp_path / "out.tif")]) == 0
    restored, meta = io.read(tmp_path / "out.tif", with_metadata=True)
    assert restored.shape == stack.shape and meta.axes == "TZCYX"
    kernel = psf.gaussian((1.0, 1.2, 1.2))
    for c in range(2):
        np.testing.assert_allclose(restored[:, :, c], deconvolve(
            stack[:, :, c].astype(np.float32), kernel, method="richardson_lucy",
            iterations=3, acceleration=None), rtol=1e-4, atol=1e-3)
    # a PSF as many-dimensional as the hyperstack would blur across its channels
    np.save(tmp_path / "k5.npy", np.ones((1, 3, 1, 3, 3)) / 9)
    assert main(["deconvolve", str(tmp_path / "h.tif"), "--psf", str(tmp_path / "k5.npy"),
                 "-o", str(tmp_path / "x.tif")]) == 2
    assert "it would blur across the channels" in capsys.readouterr().err
    assert main(["simulate", str(tmp_path / "h.tif"), "--psf", str(tmp_path / "k5.npy"),
                 "-o", str(tmp_path / "x.tif")]) == 2
    assert "it would blur across the channels" in capsys.readouterr().err
    # a multi-channel bead stack is refused as a measured PSF (one channel at a time)
    assert main(["psf", str(tmp_path / "h.tif"), "--measured", "radial",
                 "-o", str(tmp_path / "p.tif")]) == 2
    # simulate blurs it channel by channel too (it had refused, C taken for Z)
    assert main(["simulate", str(tmp_path / "h.tif"), "--psf", "gaussian:sigma=1x1.2x1.2",
                 "--noise", "none", "-o", str(tmp_path / "s.tif")]) == 0
    blurred = io.read(tmp_path / "s.tif")
    np.testing.assert_allclose(blurred[1, :, 0], blur(stack[1, :, 0].astype(float), kernel),
                               rtol=1e-4, atol=1e-2)


def test_channel_axis_and_bad_pixel_map_errors(tmp_path, capsys):
    io.write(tmp_path / "in.tif", np.random.default_rng(0).random((32, 32)).astype(np.float32))
    common = ["deconvolve", str(tmp_path / "in.tif"), "--psf", "gaussian:1.5",
              "-o", str(tmp_path / "out.tif")]
    assert main([*common, "--channel-axis", "5"]) == 2  # an IndexError traceback before
    assert "channel_axis=5 is out of range for an image with 2 dims" in capsys.readouterr().err
    io.write(tmp_path / "all.png", np.full((32, 32), 255, np.uint8))
    assert main([*common, "--bad-pixels", str(tmp_path / "all.png")]) == 2
    assert "marks every sample as bad" in capsys.readouterr().err  # "all NaN" before
    assert not (tmp_path / "out.tif").exists()


def test_lines_command(tmp_path, capsys):
    from deconvkit import blur
    from deconvkit.spectra import find_lines

    kernel = psf.gaussian(4.0, ndim=1)
    truth = np.zeros(600)
    truth[[150, 156, 400]] = [3000.0, 3000.0, 5000.0]
    counts = np.random.default_rng(0).poisson(blur(truth, kernel, boundary="zero") + 20.0)
    io.write(tmp_path / "s.csv", counts.astype(float))
    np.save(tmp_path / "k.npy", kernel)
    table = tmp_path / "lines.csv"
    assert main(["lines", str(tmp_path / "s.csv"), "--response", str(tmp_path / "k.npy"),
                 "-o", str(table), "--iterations", "200", "--repetitions", "10", "--boost",
                 "1.2", "--restored", str(tmp_path / "r.csv")]) == 0
    assert "3 lines (gold)" in capsys.readouterr().out
    written = np.loadtxt(table, delimiter=",", skiprows=1)
    expected = find_lines(counts.astype(float), kernel, iterations=200, repetitions=10,
                          boost=1.2)
    np.testing.assert_allclose(written[:, 0], expected.positions, rtol=1e-5)
    np.testing.assert_allclose(written[:, 1], expected.areas, rtol=1e-5)
    np.testing.assert_allclose(written[:, 0], [150, 156, 400], atol=1.0)
    assert io.read(tmp_path / "r.csv").shape == (600,)
    assert table.read_text().startswith("position,area\n")
    assert main(["lines", str(tmp_path / "s.csv"), "--response", "gaussian:sigma=4,ndim=1",
                 "-o", str(table)]) == 2  # exists
    assert main(["lines", str(tmp_path / "s.csv"), "--response", "gaussian:sigma=4,ndim=1",
                 "-o", str(tmp_path / "b.csv"), "--method", "richardson_lucy", "--boost",
                 "2"]) == 2
    assert "gold's" in capsys.readouterr().err


def test_multiview(tmp_path, capsys):
    from deconvkit import cell_phantom, richardson_lucy_multiview

    scene = cell_phantom((64, 64), seed=0)
    along = [psf.gaussian((4.0, 0.7), shape=(21, 21)), psf.gaussian((0.7, 4.0), shape=(21, 21))]
    views = [simulate(scene, k, noise="poisson", photons=200, seed=i).astype(np.float32)
             for i, k in enumerate(along)]
    for i, (view, kernel) in enumerate(zip(views, along)):
        io.write(tmp_path / f"v{i}.tif", view)
        np.save(tmp_path / f"k{i}.npy", kernel)
    out = tmp_path / "fused.tif"
    assert main(["deconvolve", str(tmp_path / "v0.tif"), str(tmp_path / "v1.tif"), "--psf",
                 str(tmp_path / "k0.npy"), "--psf", str(tmp_path / "k1.npy"), "--multiview",
                 "--iterations", "12", "-o", str(out)]) == 0
    assert "2 views (64, 64): richardson_lucy_multiview, 12 iterations" in \
        " ".join(capsys.readouterr().out.split())
    np.testing.assert_allclose(io.read(out), richardson_lucy_multiview(views, along,
                                                                        iterations=12),
                               rtol=1e-5, atol=1e-6)
    assert main(["deconvolve", str(tmp_path / "v0.tif"), "--psf", str(tmp_path / "k0.npy"),
                 "--multiview", "-o", str(tmp_path / "x.tif")]) == 2
    assert "two or more INPUTs" in capsys.readouterr().err
    assert main(["deconvolve", str(tmp_path / "v0.tif"), str(tmp_path / "v1.tif"), "--psf",
                 str(tmp_path / "k0.npy"), "--multiview", "--background", "snip",
                 "-o", str(tmp_path / "y.tif")]) == 2
    assert "not snip" in capsys.readouterr().err


def test_background_command_feeds_deconvolve(tmp_path, capsys):
    from deconvkit import cell_phantom, richardson_lucy
    from deconvkit.spectra import snip_background

    obj = cell_phantom((96, 96), seed=0)
    lit = simulate(obj / obj.max(), psf.gaussian(1.5), sigma=0.01, seed=0) + \
        np.linspace(0.1, 0.4, 96)[None, :]
    io.write(tmp_path / "in.tif", lit.astype(np.float32))
    assert main(["background", str(tmp_path / "in.tif"), "--width", "12", "--smooth", "2",
                 "-o", str(tmp_path / "bg.tif")]) == 0
    assert "SNIP background (half-window 12, smooth 2)" in \
        " ".join(capsys.readouterr().out.split())
    expected = snip_background(lit.astype(np.float32), 12, smooth=2, axis=None)
    np.testing.assert_allclose(io.read(tmp_path / "bg.tif"), expected, rtol=1e-5, atol=1e-6)
    assert main(["deconvolve", str(tmp_path / "in.tif"), "--psf", "gaussian:1.5", "--method",
                 "richardson_lucy", "--iterations", "5", "--background",
                 str(tmp_path / "bg.tif"), "-o", str(tmp_path / "out.tif")]) == 0
    np.testing.assert_allclose(
        io.read(tmp_path / "out.tif"),
        richardson_lucy(lit.astype(np.float32), psf.gaussian(1.5), iterations=5,
                        background=io.read(tmp_path / "bg.tif")), rtol=1e-4, atol=1e-5)
    # a hyperstack: along Z, Y and X only, each time point and channel on its own
    import tifffile

    stack = np.random.default_rng(3).random((2, 8, 2, 24, 24)).astype(np.float32)
    tifffile.imwrite(tmp_path / "h.tif", stack, imagej=True, metadata={"axes": "TZCYX"})
    assert main(["background", str(tmp_path / "h.tif"), "--width", "3", "-q",
                 "-o", str(tmp_path / "hb.tif")]) == 0
    np.testing.assert_allclose(io.read(tmp_path / "hb.tif")[1, :, 0],
                               snip_background(stack[1, :, 0], 3, axis=None), rtol=1e-5,
                               atol=1e-6)
    # ... and its map feeds deconvolve per channel, as one channel's map feeds every channel
    kernel = psf.gaussian((0.6, 1.5, 1.5))
    io.write(tmp_path / "k.npy", kernel)
    run = ["deconvolve", str(tmp_path / "h.tif"), "--psf", str(tmp_path / "k.npy"),
           "--method", "richardson_lucy", "--iterations", "3", "--background"]
    assert main([*run, str(tmp_path / "hb.tif"), "-o", str(tmp_path / "ho.tif")]) == 0
    capsys.readouterr()
    maps = io.read(tmp_path / "hb.tif")
    np.testing.assert_allclose(
        io.read(tmp_path / "ho.tif")[1, :, 0],
        richardson_lucy(stack[1, :, 0], kernel, iterations=3, background=maps[1, :, 0]),
        rtol=1e-4, atol=1e-5)
    io.write(tmp_path / "one.npy", maps[:, :, 0])  # (T, Z, Y, X): every channel's
    assert main([*run, str(tmp_path / "one.npy"), "-o", str(tmp_path / "h1.tif")]) == 0
    assert "under every channel" in " ".join(capsys.readouterr().out.split())
    np.testing.assert_allclose(
        io.read(tmp_path / "h1.tif")[0, :, 1],
        richardson_lucy(stack[0, :, 1], kernel, iterations=3, background=maps[0, :, 0]),
        rtol=1e-4, atol=1e-5)
    io.write(tmp_path / "wrong.npy", maps[0])
    assert main([*run, str(tmp_path / "wrong.npy"), "-o", str(tmp_path / "h2.tif")]) == 2
    assert "(2, 8, 24, 24)" in capsys.readouterr().err
    assert not (tmp_path / "h2.tif").exists()
