"""Stage-scanning light-sheet geometry: deskew and the PSF in the raw frame."""

import math
import warnings

import numpy as np
import pytest

import deconvkit as dk
from deconvkit.lightsheet import (
    _shift_planes,
    deskew,
    deskewed_spacing,
    shift_per_plane,
    skew_psf,
)

ANGLE = 31.5


def step_for(shift, pixel_size=0.1, angle=ANGLE):
    """The stage step that moves a point ``shift`` pixels a plane."""
    return shift * pixel_size / math.cos(math.radians(angle))


def test_whole_pixel_shifts_copy_the_planes():
    volume = np.random.default_rng(0).random((5, 3, 7))
    original = volume.copy()
    out = deskew(volume, ANGLE, z_step=step_for(2), pixel_size=0.1, fill=np.nan)
    assert out.shape == (5, 3, 7 + 8) and out.dtype == np.float64
    for k in range(5):
        np.testing.assert_allclose(out[k, :, 2 * k:2 * k + 7], volume[k], atol=1e-12)
        assert np.isnan(out[k, :, :2 * k]).all() and np.isnan(out[k, :, 2 * k + 7:]).all()
    np.testing.assert_array_equal(volume, original)  # never modified
    zero = deskew(volume, ANGLE, z_step=step_for(2), pixel_size=0.1)
    np.testing.assert_array_equal(zero, np.nan_to_num(out))


def test_a_negative_angle_leans_the_other_way():
    volume = np.random.default_rng(1).random((4, 2, 6))
    step = step_for(3)
    mirrored = deskew(volume[..., ::-1], ANGLE, z_step=step, pixel_size=0.1)[..., ::-1]
    np.testing.assert_allclose(deskew(volume, -ANGLE, z_step=step, pixel_size=0.1), mirrored,
                               atol=1e-12)


def test_fractional_shifts_interpolate_linearly():
    # a linear ramp along X is reproduced exactly, moved by k * shift
    shift = 1.37
    ramp = np.broadcast_to(np.arange(20.0), (6, 2, 20))
    out = deskew(ramp, ANGLE, z_step=step_for(shift), pixel_size=0.1, fill=np.nan)
    assert out.shape[-1] == 20 + math.ceil(5 * shift)
    for k in range(6):
        x = np.arange(out.shape[-1])
        inside = ~np.isnan(out[k, 0])
        np.testing.assert_allclose(out[k, 0, inside], x[inside] - k * shift, atol=1e-9)
        # every X position whose source lies in the plane is filled
        assert inside.sum() == np.sum((x - k * shift >= 0) & (x - k * shift <= 19 + 1e-9))
    # the nearest sample: whole values within half a pixel, counts kept as counts
    near = deskew(ramp, ANGLE, z_step=step_for(shift), pixel_size=0.1, fill=np.nan, order=0)
    for k in range(6):
        inside = ~np.isnan(near[k, 0])
        values = near[k, 0, inside]
        np.testing.assert_array_equal(values, np.round(values))
        assert np.abs(values - (np.arange(near.shape[-1])[inside] - k * shift)).max() <= 0.5


def test_leading_axes_and_dtypes():
    rng = np.random.default_rng(2)
    stack = rng.random((2, 5, 4, 9)).astype(np.float32)  # channels, Z, Y, X
    out = deskew(stack, ANGLE, z_step=0.3, pixel_size=0.1)
    assert out.dtype == np.float32
    for c in range(2):
        np.testing.assert_array_equal(out[c], deskew(stack[c], ANGLE, z_step=0.3,
                                                     pixel_size=0.1))
    counts = rng.integers(0, 4000, (3, 4, 5)).astype(np.uint16)
    assert deskew(counts, ANGLE, z_step=0.3, pixel_size=0.1).dtype == np.float32


def test_missing_samples_stay_where_they_were():
    volume = np.ones((3, 2, 6))
    volume[1, 0, 2] = np.nan
    out = deskew(volume, ANGLE, z_step=step_for(1), pixel_size=0.1, fill=0.0)
    assert np.isnan(out).sum() == 1 and np.isnan(out[1, 0, 3])


def test_spacing_and_shift():
    assert shift_per_plane(ANGLE, step_for(3), 0.1) == pytest.approx(3.0)
    assert shift_per_plane(-ANGLE, step_for(3), 0.1) == pytest.approx(-3.0)
    assert deskewed_spacing(ANGLE, 0.4, 0.1) == pytest.approx(0.4 * math.sin(math.radians(31.5)))


def test_skew_psf_leans_a_centred_psf_about_its_middle_plane():
    psf = np.zeros((5, 3, 21))
    psf[:, 1, 10] = 1.0
    skewed = skew_psf(psf, ANGLE, z_step=step_for(2), pixel_size=0.1)
    assert skewed.shape == (5, 3, 21 + 8)  # widened to hold the lean, centre kept
    assert skewed.sum() == pytest.approx(psf.sum())
    assert [int(np.argmax(plane[1])) for plane in skewed] == [18, 16, 14, 12, 10]
    # deskewing the skewed PSF stands it up again (whole-pixel shifts: exactly)
    upright = deskew(skewed, ANGLE, z_step=step_for(2), pixel_size=0.1)
    assert [int(np.argmax(plane[1])) for plane in upright] == [18] * 5
    np.testing.assert_allclose(upright[:, :, 8:29], psf, atol=1e-12)
    # a fraction of a pixel a plane: the sum is kept, the centre stays
    fractional = skew_psf(psf, ANGLE, z_step=step_for(1.3), pixel_size=0.1)
    assert fractional.shape == (5, 3, 21 + 6) and fractional.sum() == pytest.approx(psf.sum())
    np.testing.assert_allclose(fractional[2], np.pad(psf[2], ((0, 0), (3, 3))), atol=1e-12)


def test_errors_name_the_argument():
    volume = np.zeros((3, 4, 5))
    for angle in (0, 90, -95, float("nan"), True):
        with pytest.raises(ValueError, match="angle"):
            deskew(volume, angle, z_step=0.3, pixel_size=0.1)
    with pytest.raises(ValueError, match="z_step must be > 0"):
        deskew(volume, ANGLE, z_step=0, pixel_size=0.1)
    with pytest.raises(ValueError, match="pixel_size must be > 0"):
        deskew(volume, ANGLE, z_step=0.3, pixel_size=-1)
    with pytest.raises(ValueError, match=r"order must be 1 \(linear\) or 0"):
        deskew(volume, ANGLE, z_step=0.3, pixel_size=0.1, order=3)
    with pytest.raises(ValueError, match="volume has 2 dims"):
        deskew(np.zeros((4, 5)), ANGLE, z_step=0.3, pixel_size=0.1)
    with pytest.raises(ValueError, match=r"psf must be a \(Z, Y, X\) volume"):
        skew_psf(np.zeros((2, 3, 4, 5)), ANGLE, z_step=0.3, pixel_size=0.1)
    with pytest.raises(ValueError, match="psf sums to 0 or less"):
        skew_psf(np.zeros((3, 3, 3)), ANGLE, z_step=0.3, pixel_size=0.1)
    with pytest.raises(ValueError, match="fill must be a number"):
        deskew(volume, ANGLE, z_step=0.3, pixel_size=0.1, fill="nan")


def _stage_scan(shift, photons, seed=0):
    """A phantom in the objective's frame, blurred by a light-sheet PSF, seen
    by a stage scan (whole-pixel ``shift`` per plane) with Poisson noise."""
    planes, rows, camera = 20, 24, 40
    width = camera + shift * (planes - 1)
    pixel, step = 0.1, step_for(shift)
    psf = dk.psf.light_sheet((11, 13, 13), wavelength=0.51, sheet=1.0, pixel_size=pixel,
                             z_step=deskewed_spacing(ANGLE, step, pixel))
    truth = dk.cell_phantom((planes, rows, width), seed=seed)
    blurred = dk.blur(truth, psf, boundary="reflect")
    raw = _shift_planes(blurred, -shift * np.arange(planes), camera, np.nan)
    raw = np.random.default_rng(seed).poisson(raw * photons) / photons
    covered = ~np.isnan(deskew(np.ones_like(raw), ANGLE, z_step=step, pixel_size=pixel,
                               fill=np.nan))
    return truth, raw, psf, step, pixel, covered


def test_deconvolution_around_deskewing():
    truth, raw, psf, step, pixel, covered = _stage_scan(2, photons=1000)

    def score(image):
        return dk.metrics.psnr(truth[covered], image[covered], data_range=truth.max())

    padded = deskew(raw, ANGLE, z_step=step, pixel_size=pixel)
    missing = deskew(raw, ANGLE, z_step=step, pixel_size=pixel, fill=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the zero-padded run does not reach its stop
        zero_padded = score(dk.richardson_lucy(padded, psf, iterations=100))
    left_out = score(dk.richardson_lucy(missing, psf))
    raw_frame = score(deskew(dk.richardson_lucy(raw, skew_psf(psf, ANGLE, z_step=step,
                                                                  pixel_size=pixel)),
                             ANGLE, z_step=step, pixel_size=pixel))
    data = score(padded)
    # the wedges as missing data: no edge to explain; the raw frame: no
    # interpolation before deconvolution.  Both restore; zero padding does not
    # (measured: data 18.98 dB, zero padded 9.27, left out 20.53, raw frame 20.17)
    assert left_out > data + 1.0 and raw_frame > data + 1.0
    assert left_out > zero_padded + 3.0
    assert abs(left_out - raw_frame) < 1.0


def test_cli_deskew(tmp_path):
    import tifffile

    from deconvkit import io
    from deconvkit.cli import main

    rng = np.random.default_rng(5)
    stack = rng.integers(0, 1000, (6, 8, 10)).astype(np.uint16)
    step = step_for(2, pixel_size=0.104)
    tifffile.imwrite(tmp_path / "raw.tif", stack, imagej=True,
                     resolution=(1 / 0.104, 1 / 0.104),
                     metadata={"axes": "ZYX", "spacing": step, "unit": "um"})
    original = (tmp_path / "raw.tif").read_bytes()
    assert main(["deskew", str(tmp_path / "raw.tif"), "-o", str(tmp_path / "d.tif"),
                 "--fill", "nan", "-q"]) == 0  # the voxel size from the file
    out, meta = io.read(tmp_path / "d.tif", with_metadata=True)
    np.testing.assert_allclose(out, deskew(stack, ANGLE, z_step=step, pixel_size=0.104,
                                           fill=np.nan), atol=1e-6)
    np.testing.assert_allclose(meta.spacing, (deskewed_spacing(ANGLE, step, 0.104), 0.104,
                                              0.104), rtol=1e-5)
    assert (tmp_path / "raw.tif").read_bytes() == original
    np.save(tmp_path / "raw.npy", stack)  # no voxel size: the flags are needed
    assert main(["deskew", str(tmp_path / "raw.npy"), "-o", str(tmp_path / "x.npy")]) == 2
    assert main(["deskew", str(tmp_path / "raw.npy"), "-o", str(tmp_path / "x.npy"),
                 "--z-step", "0.4", "--pixel-size", "0.1", "--angle", "-31.5", "--nearest",
                 "-q"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "x.npy"),
                               deskew(stack, -ANGLE, z_step=0.4, pixel_size=0.1, order=0))
    assert main(["deskew", str(tmp_path / "raw.npy"), "-o", str(tmp_path / "y.npy"),
                 "--z-step", "0.4", "--pixel-size", "0.1", "--angle", "95"]) == 2
    assert main(["deskew", str(tmp_path / "raw.npy"), "-o", str(tmp_path / "y.npy"),
                 "--z-step", "0.4", "--pixel-size", "0.1", "--fill", "zero"]) == 2
    assert not (tmp_path / "y.npy").exists()
    psf = dk.psf.gaussian((1.0, 1.5, 1.5), shape=(7, 9, 9))
    np.save(tmp_path / "psf.npy", psf)
    assert main(["deskew", str(tmp_path / "psf.npy"), "-o", str(tmp_path / "psf_raw.npy"),
                 "--skew-psf", "--z-step", "0.4", "--pixel-size", "0.1", "-q"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "psf_raw.npy"),
                               skew_psf(psf, ANGLE, z_step=0.4, pixel_size=0.1))


def test_cli_deskew_hyperstack_with_channels(tmp_path):
    """TZCYX: each channel's Z stack is deskewed (C, between Z and Y, had been
    taken for the scan axis)."""
    import tifffile

    from deconvkit import io
    from deconvkit.cli import main

    stack = (np.random.default_rng(0).random((2, 10, 2, 16, 20)) * 1000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "h.tif", stack, imagej=True,
                     metadata={"axes": "TZCYX", "spacing": 0.4, "unit": "um"},
                     resolution=(10, 10))
    assert main(["deskew", str(tmp_path / "h.tif"), "--angle", "31.5", "-q",
                 "-o", str(tmp_path / "d.tif")]) == 0
    out, meta = io.read(tmp_path / "d.tif", with_metadata=True)
    assert meta.axes == "TZCYX"
    for t, c in ((0, 0), (1, 1)):
        expected = deskew(stack[t, :, c].astype(np.float32), 31.5, z_step=0.4,
                          pixel_size=0.1)
        np.testing.assert_allclose(out[t, :, c], expected, rtol=1e-5, atol=1e-3)


def test_cli_skew_psf_resamples_onto_the_deskewed_grid(tmp_path):
    import tifffile

    from deconvkit import io
    from deconvkit.cli import main

    psf = dk.psf.gaussian((2.0, 1.5, 1.5), shape=(15, 11, 11)).astype(np.float32)
    tifffile.imwrite(tmp_path / "psf.tif", psf, imagej=True, resolution=(10.0, 10.0),
                     metadata={"axes": "ZYX", "spacing": 0.1, "unit": "um"})  # 0.1 µm planes
    assert main(["deskew", str(tmp_path / "psf.tif"), "--skew-psf", "--z-step", "0.4",
                 "-o", str(tmp_path / "raw_psf.tif"), "-q"]) == 0
    out, meta = io.read(tmp_path / "raw_psf.tif", with_metadata=True)
    frame = deskewed_spacing(ANGLE, 0.4, 0.1)  # 0.209 µm: the planes resampled first
    expected = skew_psf(dk.psf.resample(psf, (0.1, 0.1, 0.1), (frame, 0.1, 0.1)), ANGLE,
                        z_step=0.4, pixel_size=0.1)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_allclose(meta.spacing, (0.4, 0.1, 0.1), rtol=1e-5)  # the raw frame's


def test_deconvolve_stage_scan_is_the_raw_frame_route():
    from deconvkit.lightsheet import deconvolve_stage_scan, raw_frame_psf

    truth, raw, psf, step, pixel, covered = _stage_scan(2, photons=1000)
    options = dict(z_step=step, pixel_size=pixel)
    restored, info = deconvolve_stage_scan(raw, psf, ANGLE, method="richardson_lucy",
                                           return_info=True, **options)
    by_hand = deskew(dk.richardson_lucy(raw, skew_psf(psf, ANGLE, **options)), ANGLE,
                     **options)
    np.testing.assert_allclose(restored, by_hand, atol=1e-6)
    assert info.method == "richardson_lucy" and restored.shape == covered.shape
    # a PSF leaning wider than the stack is cropped to it, and says what it lost
    wide = dk.psf.light_sheet((21, 13, 13), sheet=3.0, pixel_size=pixel,
                              z_step=deskewed_spacing(ANGLE, step, pixel))
    with pytest.warns(UserWarning, match="cropping it lost"):
        kernel = raw_frame_psf(wide, ANGLE, width=31, **options)
    assert kernel.shape == (21, 13, 31) and kernel.sum() == pytest.approx(1.0)
    assert raw_frame_psf(psf, ANGLE, width=200, **options).shape[-1] == 13 + 2 * 10


def test_cli_deconvolve_deskew(tmp_path, capsys):
    import tifffile

    from deconvkit import io
    from deconvkit.cli import main
    from deconvkit.lightsheet import deconvolve_stage_scan

    truth, raw, psf, step, pixel, covered = _stage_scan(2, photons=1000)
    tifffile.imwrite(tmp_path / "raw.tif", raw.astype(np.float32), imagej=True,
                     resolution=(1 / pixel, 1 / pixel),
                     metadata={"axes": "ZYX", "spacing": step, "unit": "um"})
    frame = deskewed_spacing(ANGLE, step, pixel)
    np.save(tmp_path / "psf.npy", psf)  # in the objective's frame, no voxel size
    assert main(["deconvolve", str(tmp_path / "raw.tif"), "--psf", str(tmp_path / "psf.npy"),
                 "--deskew", str(ANGLE), "--method", "richardson_lucy",
                 "-o", str(tmp_path / "out.tif")]) == 0
    assert "restored in the raw frame, deskewed" in " ".join(capsys.readouterr().out.split())
    out, meta = io.read(tmp_path / "out.tif", with_metadata=True)
    expected = deconvolve_stage_scan(raw.astype(np.float32), psf, ANGLE, z_step=step,
                                     pixel_size=pixel, method="richardson_lucy")
    np.testing.assert_allclose(out, expected, atol=1e-4)
    np.testing.assert_allclose(meta.spacing, (frame, pixel, pixel), rtol=1e-5)
    # a light-sheet spec sampled at 0.05 µm: resampled onto the deskewed grid first
    spec = f"light_sheet:shape=21x25x25,sheet=1,pixel_size=0.05,z_step={frame / 2}"
    assert main(["deconvolve", str(tmp_path / "raw.tif"), "--psf", spec, "--deskew",
                 str(ANGLE), "--method", "richardson_lucy", "-o", str(tmp_path / "s.tif")]) == 0
    assert "PSF resampled from spacing" in " ".join(capsys.readouterr().out.split())
    # channels (ZCYX): each deskewed alike
    two = np.stack([raw, raw], axis=1).astype(np.float32)
    tifffile.imwrite(tmp_path / "zcyx.tif", two, imagej=True, resolution=(1 / pixel, 1 / pixel),
                     metadata={"axes": "ZCYX", "spacing": step, "unit": "um"})
    assert main(["deconvolve", str(tmp_path / "zcyx.tif"), "--psf", str(tmp_path / "psf.npy"),
                 "--deskew", str(ANGLE), "--method", "richardson_lucy", "-q",
                 "-o", str(tmp_path / "c.tif")]) == 0
    both = io.read(tmp_path / "c.tif")
    assert both.shape == (raw.shape[0], 2, raw.shape[1], expected.shape[-1])
    np.testing.assert_allclose(both[:, 1], expected, atol=1e-4)
    for bad in (["--z-step", "0.3"], ["--deskew", "31.5", "--multiview"]):
        assert main(["deconvolve", str(tmp_path / "raw.tif"), "--psf",
                     str(tmp_path / "psf.npy"), "-o", str(tmp_path / "x.tif"), *bad]) == 2
    np.save(tmp_path / "raw.npy", raw)  # no voxel size
    assert main(["deconvolve", str(tmp_path / "raw.npy"), "--psf", str(tmp_path / "psf.npy"),
                 "--deskew", "31.5", "-o", str(tmp_path / "x.npy")]) == 2
    assert "pass --z-step and --pixel-size" in capsys.readouterr().err


def test_dask_stacks_are_deskewed_lazily():
    da = pytest.importorskip("dask.array")
    volume = np.random.default_rng(7).random((2, 10, 12, 20))
    for order in (0, 1):
        eager = deskew(volume, ANGLE, z_step=0.4, pixel_size=0.104, fill=np.nan, order=order)
        lazy = deskew(da.from_array(volume, chunks=(1, 3, 5, 7)), ANGLE, z_step=0.4,
                      pixel_size=0.104, fill=np.nan, order=order)
        assert lazy.chunks[1] == (3, 3, 3, 1) and lazy.chunks[-1] == (eager.shape[-1],)
        np.testing.assert_array_equal(lazy.compute(), eager)
    # lazy indeed: no block is read until the result is computed (it used to be read
    # once to check its values), and shapes and types are still checked up front
    read = []
    source = da.from_array(volume, chunks=(1, 3, 5, 7)).map_blocks(
        lambda block: (read.append(block.size > 1), block)[1])  # not dask's dummy probes
    lazy = deskew(source, ANGLE, z_step=0.4, pixel_size=0.104)
    assert not any(read)
    lazy.compute()
    assert any(read)
    with pytest.raises(ValueError, match="volume contains Inf"):  # when its block is read
        deskew(da.from_array(np.full((3, 4, 5), np.inf)), ANGLE, z_step=0.4,
               pixel_size=0.104).compute()
    with pytest.raises(ValueError, match="volume has 2 dims"):
        deskew(da.zeros((4, 5)), ANGLE, z_step=0.4, pixel_size=0.104)
    with pytest.raises(TypeError, match="complex128 input is not supported"):
        deskew(da.zeros((3, 4, 5), dtype=complex), ANGLE, z_step=0.4, pixel_size=0.104)


def test_deconvolve_stage_scan_on_dask_is_lazy_and_agrees():
    da = pytest.importorskip("dask.array")
    from deconvkit.lightsheet import deconvolve_stage_scan

    truth, raw, psf, step, pixel, covered = _stage_scan(2, photons=1000)
    options = dict(z_step=step, pixel_size=pixel, method="richardson_lucy", iterations=10,
                   acceleration=None)
    eager = deconvolve_stage_scan(raw, psf, ANGLE, **options)
    lazy = deconvolve_stage_scan(da.from_array(raw, chunks=(10, 12, 40)), psf, ANGLE,
                                 **options)
    assert type(lazy).__module__.startswith("dask")
    np.testing.assert_allclose(lazy.compute(), eager, atol=1e-8)


def test_cli_deskew_zarr_block_by_block(tmp_path):
    zarr = pytest.importorskip("zarr")
    from deconvkit.cli import main

    stack = np.random.default_rng(8).random((9, 6, 16)).astype(np.float32)
    store = zarr.open_array(str(tmp_path / "raw.zarr"), mode="w", shape=stack.shape,
                            chunks=(4, 6, 16), dtype=stack.dtype)
    store[...] = stack
    assert main(["deskew", str(tmp_path / "raw.zarr"), "--z-step", "0.4", "--pixel-size",
                 "0.104", "--fill", "nan", "-o", str(tmp_path / "out.ome.zarr"), "-q"]) == 0
    group = zarr.open_group(str(tmp_path / "out.ome.zarr"), mode="r")
    np.testing.assert_array_equal(group["0"][...], deskew(stack, ANGLE, z_step=0.4,
                                                          pixel_size=0.104, fill=np.nan))
    scale = dict(group.attrs)["multiscales"][0]["datasets"][0]["coordinateTransformations"]
    np.testing.assert_allclose(scale[0]["scale"], (deskewed_spacing(ANGLE, 0.4, 0.104), 0.104,
                                                   0.104))
    assert not (tmp_path / "out.ome.zarr.partial").exists()
    # a TIFF in, zarr out; and an existing output is kept without --overwrite
    import tifffile

    tifffile.imwrite(tmp_path / "raw.tif", stack)
    assert main(["deskew", str(tmp_path / "raw.tif"), "--z-step", "0.4", "--pixel-size",
                 "0.104", "-o", str(tmp_path / "t.zarr"), "-q"]) == 0
    np.testing.assert_allclose(zarr.open_array(str(tmp_path / "t.zarr"), mode="r")[...],
                               deskew(stack, ANGLE, z_step=0.4, pixel_size=0.104))
    assert main(["deskew", str(tmp_path / "raw.tif"), "--z-step", "0.4", "--pixel-size",
                 "0.104", "-o", str(tmp_path / "t.zarr")]) == 2


def test_cli_deconvolve_deskew_out_of_core(tmp_path):
    zarr = pytest.importorskip("zarr")
    from deconvkit.cli import main
    from deconvkit.lightsheet import deconvolve_stage_scan

    truth, raw, psf, step, pixel, covered = _stage_scan(2, photons=1000)
    store = zarr.open_array(str(tmp_path / "raw.zarr"), mode="w", shape=raw.shape,
                            chunks=(10, 12, 40), dtype="float32")
    store[...] = raw
    np.save(tmp_path / "psf.npy", psf)
    args = ["deconvolve", str(tmp_path / "raw.zarr"), "--psf", str(tmp_path / "psf.npy"),
            "--deskew", str(ANGLE), "--z-step", str(step), "--pixel-size", str(pixel),
            "--method", "richardson_lucy", "--iterations", "10", "--option",
            "acceleration=none", "--chunks", "20x12x40", "-o", str(tmp_path / "out.ome.zarr"),
            "-q"]
    assert main(args) == 0
    group = zarr.open_group(str(tmp_path / "out.ome.zarr"), mode="r")
    expected = deconvolve_stage_scan(raw.astype(np.float32), psf, ANGLE, z_step=step,
                                     pixel_size=pixel, method="richardson_lucy",
                                     iterations=10, acceleration=None)
    # restored chunk by chunk in the raw frame (tiles equal the whole to round-off
    # away from the stack's edges), then deskewed block by block
    result = group["0"][...]
    assert result.shape == expected.shape
    inner = (slice(None), slice(8, -8), slice(None))
    np.testing.assert_allclose(result[inner], expected[inner], atol=1e-4 * expected.max())
    scale = dict(group.attrs)["multiscales"][0]["datasets"][0]["coordinateTransformations"]
    np.testing.assert_allclose(scale[0]["scale"], (deskewed_spacing(ANGLE, step, pixel), pixel,
                                                   pixel), rtol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ome.zarr", "psf.npy",
                                                           "raw.zarr"]  # nothing left over
    assert main(args) == 2  # the output exists
