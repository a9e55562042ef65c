import os
import warnings

import numpy as np
import pytest

from deconvkit import io


@pytest.mark.parametrize("name,data", [
    ("vol.tif", np.random.default_rng(0).random((4, 8, 9)).astype(np.float32)),
    ("img16.tif", np.arange(120, dtype=np.uint16).reshape(10, 12)),
    ("img.png", np.arange(120, dtype=np.uint8).reshape(10, 12)),
    ("img16.png", (np.arange(120, dtype=np.uint16) * 500).reshape(10, 12)),
    ("rgb.png", np.random.default_rng(1).integers(0, 255, (6, 7, 3), dtype=np.uint8)),
    ("arr.npy", np.random.default_rng(2).random((3, 4, 5))),
    ("sig.csv", np.random.default_rng(3).random(50)),
    ("sig.wav", np.random.default_rng(4).random(100).astype(np.float32)),
    ("vol.fits", np.random.default_rng(5).random((4, 8, 9)).astype(np.float32)),
    ("img16.fits", (np.arange(120, dtype=np.uint16) * 500).reshape(10, 12)),
])
def test_round_trip(tmp_path, name, data):
    path = io.write(tmp_path / name, data)
    back = io.read(path)
    assert back.dtype == data.dtype and back.shape == data.shape
    np.testing.assert_allclose(back, data, rtol=1e-7)


def test_tiff_keeps_voxel_size(tmp_path):
    meta = io.Metadata(spacing=(0.2, 0.1, 0.1), unit="um")
    io.write(tmp_path / "v.tif", np.zeros((3, 4, 5), np.float32), metadata=meta)
    _, back = io.read(tmp_path / "v.tif", with_metadata=True)
    assert back.spacing == pytest.approx((0.2, 0.1, 0.1)) and back.unit == "um"


@pytest.mark.parametrize("dtype,axes,imagej", [
    (np.float32, "ZYX", True), (np.uint16, "ZCYX", True),
    (np.float64, "ZYX", False),  # ImageJ has no float64
    (np.float32, "CZYX", False),  # nor C before Z
])
def test_tiff_voxel_size_reaches_imagej_where_it_can(tmp_path, dtype, axes, imagej):
    import tifffile

    shape = {"ZYX": (3, 4, 5), "ZCYX": (3, 2, 4, 5), "CZYX": (2, 3, 4, 5)}[axes]
    data = np.arange(np.prod(shape)).reshape(shape).astype(dtype)
    meta = io.Metadata(spacing=(0.3, 0.2, 0.1), unit="um", axes=axes)
    io.write(tmp_path / "v.tif", data, metadata=meta)
    with tifffile.TiffFile(tmp_path / "v.tif") as tif:
        assert tif.is_imagej == imagej and tif.series[0].axes == axes
        page = tif.pages[0]
        assert page.tags["ResolutionUnit"].value == 1  # not 10 pixels per inch
        if imagej:  # what Fiji reads: the voxel size and its unit
            assert tif.imagej_metadata["spacing"] == pytest.approx(0.3)
            assert tif.imagej_metadata["unit"] == "um"
            x = page.tags["XResolution"].value
            assert x[1] / x[0] == pytest.approx(0.1)
    back, got = io.read(tmp_path / "v.tif", with_metadata=True)
    np.testing.assert_array_equal(back, data)
    assert got.spacing == pytest.approx((0.3, 0.2, 0.1)) and got.unit == "um" and got.axes == axes


def test_tiff_over_4gb_is_not_written_as_imagej():
    # tifffile truncates ImageJ files past 4 GB; a large volume keeps the shaped form
    meta = io.Metadata(spacing=(0.2, 0.1, 0.1), unit="um", axes="ZYX")
    assert io.tiff_options((64, 512, 512), np.float32, meta)["imagej"]
    large = io.tiff_options((1100, 1024, 1024), np.float32, meta)
    assert "imagej" not in large and large["metadata"]["spacing"] == [0.2, 0.1, 0.1]


def test_imagej_tiff_spacing_is_read(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "ij.tif", np.zeros((3, 4, 5), np.float32), imagej=True,
                     resolution=(1 / 0.1, 1 / 0.1), metadata={"spacing": 0.3, "unit": "um"})
    _, meta = io.read(tmp_path / "ij.tif", with_metadata=True)
    assert meta.spacing == pytest.approx((0.3, 0.1, 0.1))


def test_ome_tiff_voxel_size_is_read_in_one_unit(tmp_path):
    import tifffile

    data = np.random.default_rng(6).random((4, 2, 8, 9)).astype(np.float32)
    tifffile.imwrite(tmp_path / "bf.ome.tif", data, ome=True, photometric="minisblack",
                     metadata={"axes": "ZCYX", "PhysicalSizeX": 0.104, "PhysicalSizeY": 0.104,
                               "PhysicalSizeZ": 300, "PhysicalSizeZUnit": "nm"})
    back, meta = io.read(tmp_path / "bf.ome.tif", with_metadata=True)
    np.testing.assert_array_equal(back, data)
    # OME's default unit is the micrometre; Z in nm comes in X's unit
    assert meta.spacing == pytest.approx((0.3, 0.104, 0.104)) and meta.unit == "\u00b5m"
    assert meta.axes == "ZCYX" and io.MICROMETRES[meta.unit] == 1.0
    tifffile.imwrite(tmp_path / "plain.ome.tif", data[0, 0], ome=True)  # no sizes: none made up
    assert io.read(tmp_path / "plain.ome.tif", with_metadata=True)[1].spacing is None


@pytest.mark.parametrize("dtype", [np.float64, np.uint16])
def test_ome_tiff_is_written_for_ome_names(tmp_path, dtype):
    import tifffile

    data = np.arange(4 * 2 * 6 * 5).reshape(4, 2, 6, 5).astype(dtype)
    meta = io.Metadata(spacing=(0.3, 0.2, 0.1), unit="um", axes="ZCYX")
    io.write(tmp_path / "out.ome.tif", data, metadata=meta)
    with tifffile.TiffFile(tmp_path / "out.ome.tif") as tif:
        assert tif.is_ome and not tif.is_imagej  # what Bio-Formats, OMERO and QuPath read
        assert 'PhysicalSizeZ="0.3"' in tif.ome_metadata
    back, got = io.read(tmp_path / "out.ome.tif", with_metadata=True)
    np.testing.assert_array_equal(back, data)
    assert back.dtype == dtype and got.axes == "ZCYX"
    assert got.spacing == pytest.approx((0.3, 0.2, 0.1)) and io.MICROMETRES[got.unit] == 1.0
    # a volume without named axes: Z, Y, X with its voxel size
    io.write(tmp_path / "v.ome.tiff", data[:, 0], metadata=io.Metadata(spacing=(0.5, 0.1, 0.1)))
    assert io.read(tmp_path / "v.ome.tiff", with_metadata=True)[1].spacing == \
        pytest.approx((0.5, 0.1, 0.1))


def test_wav_keeps_sample_rate(tmp_path):
    io.write(tmp_path / "a.wav", np.zeros(10, np.float32), metadata=io.Metadata(sample_rate=8000))
    assert io.read(tmp_path / "a.wav", with_metadata=True)[1].sample_rate == 8000


def test_truncated_wav_warns(tmp_path):
    """A recording cut short is read as far as it goes, and said so (silently
    shorter before)."""
    io.write(tmp_path / "a.wav", np.arange(1000, dtype=np.float32))
    whole = (tmp_path / "a.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[:len(whole) // 2])
    with pytest.warns(UserWarning, match="ends before its header says"):
        cut = io.read(tmp_path / "cut.wav")
    np.testing.assert_array_equal(cut, np.arange(len(cut)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert io.read(tmp_path / "a.wav").shape == (1000,)


def test_float_png_is_rounded_and_clipping_is_reported(tmp_path):
    with pytest.warns(UserWarning, match="1 samples outside 0..255 were clipped"):
        io.write(tmp_path / "f.png", np.array([[0.4, 254.6, 300.0]]))
    np.testing.assert_array_equal(io.read(tmp_path / "f.png"), [[0, 255, 255]])
    io.write(tmp_path / "f16.png", np.array([[1000.4, 2.0]]), bit_depth=16)
    assert io.read(tmp_path / "f16.png").dtype == np.uint16


def test_sample_types_a_format_lacks(tmp_path):
    """Widened without loss where the format lacks the type; otherwise an error
    naming what it stores (they were tracebacks from tifffile, astropy, scipy,
    or NaN cast to an integer with only numpy's warning)."""
    pytest.importorskip("astropy")
    half = np.array([[0.5, 1.25], [2.0, -3.0]], dtype=np.float16)
    for name in ("h.fits", "h.ome.tif", "h.wav"):
        io.write(tmp_path / name, half)
        back = io.read(tmp_path / name)
        assert back.dtype == np.float32, name
        np.testing.assert_array_equal(back, half.astype(np.float32))
    counts = np.array([[0, 65535], [7, 300]], dtype=np.uint16)
    io.write(tmp_path / "u.wav", counts)
    np.testing.assert_array_equal(io.read(tmp_path / "u.wav"), counts)
    assert not (tmp_path / "big.ome.tif").exists()
    with pytest.raises(ValueError, match="OME-TIFF stores 8-, 16- and 32-bit integers"):
        io.write(tmp_path / "big.ome.tif", np.zeros((4, 4), np.int64))
    with pytest.raises(ValueError, match="TIFF holds images .* write a 1-D signal as .csv"):
        io.write(tmp_path / "trace.tif", np.zeros(50, np.float32))
    gaps = np.array([[0.2, np.nan], [0.5, 1.0]])
    for name in ("g.png", "g.jpg"):
        with pytest.raises(ValueError, match="1 samples are NaN .* fill them first"):
            io.write(tmp_path / name, gaps * 255)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.fits", "h.ome.tif", "h.wav",
                                                          "u.wav"]


def test_samples_no_format_can_hold_are_refused(tmp_path):
    """Once a PNG of the real part (numpy's warning only), a zero-sample TIFF,
    numpy's pickling error, tifffile's OmeXmlError."""
    wave = np.ones((4, 4)) + 1j
    for name in ("c.png", "c.jpg", "c.wav"):
        with pytest.raises(TypeError, match="holds real samples, got complex128; write a .tif"):
            io.write(tmp_path / name, wave)
    io.write(tmp_path / "c.tif", wave)
    np.testing.assert_array_equal(io.read(tmp_path / "c.tif"), wave)
    with pytest.raises(ValueError, match=r"hold no samples \(shape \(0, 3\)\)"):
        io.write(tmp_path / "e.tif", np.zeros((0, 3)))
    with pytest.raises(TypeError, match="cannot write samples of dtype object"):
        io.write(tmp_path / "o.npy", np.array([{}], dtype=object))
    with pytest.raises(ValueError, match="OME-TIFF holds at most 5 axes"):
        io.write(tmp_path / "six.ome.tif", np.zeros((2, 2, 2, 2, 4, 4)))
    io.write(tmp_path / "six.tif", np.zeros((2, 2, 2, 2, 4, 4)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.tif", "six.tif"]


def test_a_mask_round_trips_as_a_one_bit_png(tmp_path):
    # it was written as 0 and 1 in 8 bits: a black image read back as uint8
    mask = np.eye(8, dtype=bool)
    io.write(tmp_path / "mask.png", mask)
    back = io.read(tmp_path / "mask.png")
    assert back.dtype == bool
    np.testing.assert_array_equal(back, mask)


def test_csv_comments_and_european_exports(tmp_path):
    """Comment lines before the header, and ";" fields with decimal commas (a
    spreadsheet's export in much of Europe), were errors."""
    (tmp_path / "c.csv").write_text("# scope export\n% channel 1\n\ntime,value\n"
                                    "0,1\n0.5,2\n1,4\n")
    signal, meta = io.read(tmp_path / "c.csv", with_metadata=True)
    np.testing.assert_array_equal(signal, [1, 2, 4])
    assert meta.sample_rate == 2.0 and meta.columns == ("time", "value")
    (tmp_path / "e.csv").write_text("Zeit;Wert\n0,0;1,5\n0,1;2,5\n0,2;-3,25\n")
    signal, meta = io.read(tmp_path / "e.csv", with_metadata=True)
    np.testing.assert_allclose(signal, [1.5, 2.5, -3.25])
    assert meta.sample_rate == pytest.approx(10.0) and meta.columns == ("Zeit", "Wert")
    (tmp_path / "empty.csv").write_text("# nothing\n")
    with pytest.raises(ValueError, match="holds no samples"):
        io.read(tmp_path / "empty.csv")


def test_tiff_with_several_full_size_images_warns(tmp_path):
    import tifffile

    with tifffile.TiffWriter(tmp_path / "two.tif") as tif:
        tif.write(np.zeros((8, 8), np.uint8))
        tif.write(np.ones((2, 2), np.uint8))  # a thumbnail: not worth a word
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert io.read(tmp_path / "two.tif").shape == (8, 8)
    with tifffile.TiffWriter(tmp_path / "positions.tif") as tif:
        tif.write(np.zeros((8, 8), np.uint8))
        tif.write(np.ones((8, 8), np.uint8))
    with pytest.warns(UserWarning, match="holds 2 images of full size .* read the first"):
        assert io.read(tmp_path / "positions.tif").max() == 0


def test_tiff_bit_depth_when_asked(tmp_path):
    data = np.array([[0.4, 254.6], [300.0, 1000.2]])
    io.write(tmp_path / "f.tif", data)
    assert io.read(tmp_path / "f.tif").dtype == np.float64  # float unless asked
    io.write(tmp_path / "u16.tif", data, bit_depth=16)
    np.testing.assert_array_equal(io.read(tmp_path / "u16.tif"), [[0, 255], [300, 1000]])
    assert io.read(tmp_path / "u16.tif").dtype == np.uint16
    with pytest.warns(UserWarning, match="2 samples outside 0..255 .* leave bit_depth out"):
        io.write(tmp_path / "u8.tif", data, bit_depth=8)
    with pytest.raises(ValueError, match="bit_depth for TIFF must be 8 or 16"):
        io.write(tmp_path / "u32.tif", data, bit_depth=32)


def test_no_overwrite_without_flag_and_atomic_replace(tmp_path):
    path = tmp_path / "a.npy"
    io.write(path, np.zeros(3))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        io.write(path, np.ones(3))
    np.testing.assert_array_equal(io.read(path), np.zeros(3))
    io.write(path, np.ones(3), overwrite=True)
    np.testing.assert_array_equal(io.read(path), np.ones(3))
    assert sorted(os.listdir(tmp_path)) == ["a.npy"]  # no temporary left behind


def test_written_files_get_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        path = io.write(tmp_path / "a.npy", np.zeros(3))
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644  # not the 0600 of a temporary file


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="CSV holds one 1-D signal"):
        io.write(tmp_path / "x.csv", np.zeros((3, 3)))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name, shape, match", [
    ("x.jpg", (8, 8, 2), "JPEG holds 2-D grey or colour images with 1, 3, 4 samples"),
    ("x.png", (4, 8, 8), "PNG holds 2-D grey or colour images"),
    ("x.csv", (8, 2), "CSV holds one 1-D signal"),
    ("x.wav", (8, 2, 2), "WAV holds samples x channels"),
])
def test_check_shape_names_a_format_that_can_hold_it(tmp_path, name, shape, match):
    with pytest.raises(ValueError, match=match):
        io.check_shape(tmp_path / name, shape)
    io.check_shape(tmp_path / "x.tif", shape)  # TIFF holds any of them


def test_cmyk_jpeg_keeps_its_four_channels(tmp_path):
    from PIL import Image

    cmyk = (np.random.default_rng(0).random((16, 16, 4)) * 255).astype(np.uint8)
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "in.jpg", quality=100)
    image = io.read(tmp_path / "in.jpg")
    assert image.shape == (16, 16, 4)
    io.write(tmp_path / "out.jpg", image)
    with Image.open(tmp_path / "out.jpg") as written:
        assert written.mode == "CMYK"
    assert np.abs(io.read(tmp_path / "out.jpg").astype(int) - image).mean() < 8  # JPEG's loss


def test_srgb_transfer_curve():
    """IEC 61966-2-1's curve: its published points, continuity at the joint, an
    exact inverse, odd beyond [0, 1] (nothing clipped), NaN kept, dtype kept."""
    assert io.srgb_to_linear(1.0) == pytest.approx(1.0)
    assert io.srgb_to_linear(0.5) == pytest.approx(0.214041, abs=1e-6)
    assert io.srgb_to_linear(0.04045) == pytest.approx(0.04045 / 12.92)
    assert io.srgb_to_linear(0.04045 + 1e-9) == pytest.approx(0.04045 / 12.92, abs=1e-7)
    x = np.linspace(-1.0, 2.0, 3001)
    np.testing.assert_allclose(io.linear_to_srgb(io.srgb_to_linear(x)), x, atol=1e-12)
    np.testing.assert_allclose(io.srgb_to_linear(-x), -io.srgb_to_linear(x))
    assert io.srgb_to_linear(np.float32([0.2, np.nan])).dtype == np.float32
    assert np.isnan(io.linear_to_srgb(np.array([np.nan])))[0]
    assert io.srgb_to_linear(np.uint8([255])).dtype == np.float64


def test_photos_keep_their_orientation_colour_profile_and_detail(tmp_path):
    """A phone's JPEG stores its pixels sideways with an orientation tag: it is
    read as viewers show it (it was read as stored and written without the tag,
    so the result showed sideways); its colour profile is written back; JPEG is
    written at quality 95 without chroma subsampling (Pillow's default, 75,
    lost 2.39 grey levels on average on this crop against 1.51)."""
    from PIL import Image, ImageCms
    from skimage import data as photos

    crop = photos.astronaut()[:128, :96]
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    stored = Image.fromarray(crop)
    exif = stored.getexif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    stored.save(tmp_path / "phone.jpg", exif=exif.tobytes(), icc_profile=icc, quality=100)
    image, meta = io.read(tmp_path / "phone.jpg", with_metadata=True)
    assert image.shape == (96, 128, 3) and meta.icc == icc
    assert np.abs(image.astype(int) - np.rot90(crop, -1)).mean() < 2
    for name in ("out.jpg", "out.png"):
        io.write(tmp_path / name, image, metadata=meta)
        with Image.open(tmp_path / name) as written:
            assert written.info.get("icc_profile") == icc and written.size == (128, 96)
    assert np.abs(io.read(tmp_path / "out.jpg").astype(int) - image).mean() < 2.0


def _png16(path, rgb):
    """A 16-bit colour PNG made with zlib alone (not the writer under test)."""
    import struct
    import zlib

    height, width, planes = rgb.shape
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb)

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 16, {3: 2, 4: 6}[planes], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_sixteen_bit_colour_png_keeps_every_bit(tmp_path):
    """Pillow reads a 16-bit colour PNG as 8 bits (41743 came back as 163) and
    cannot write one: pypng reads and writes them, with the colour profile."""
    from PIL import ImageCms

    rng = np.random.default_rng(0)
    for planes in (3, 4):
        rgb = (rng.random((9, 11, planes)) * 65535).astype(np.uint16)
        _png16(tmp_path / f"in{planes}.png", rgb)
        image = io.read(tmp_path / f"in{planes}.png")
        assert image.dtype == np.uint16
        np.testing.assert_array_equal(image, rgb)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    io.write(tmp_path / "out.png", rgb[..., :3], metadata=io.Metadata(icc=icc))
    image, meta = io.read(tmp_path / "out.png", with_metadata=True)
    np.testing.assert_array_equal(image, rgb[..., :3])
    assert meta.icc == icc
    io.write(tmp_path / "float.png", rgb[..., :3].astype(np.float32), bit_depth=16)
    np.testing.assert_array_equal(io.read(tmp_path / "float.png"), rgb[..., :3])
    broken = (tmp_path / "in3.png").read_bytes()
    (tmp_path / "broken.png").write_bytes(broken[:60] + b"garbage" + broken[67:])
    with pytest.raises(ValueError, match="cannot read .*broken.png as png"):
        io.read(tmp_path / "broken.png")


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "a.npy"
    io.write(path, np.zeros(3))

    def explode(tmp, data, meta):
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setitem(io._WRITERS, "npy", explode)
    with pytest.raises(KeyboardInterrupt):
        io.write(path, np.ones(3), overwrite=True)
    monkeypatch.undo()
    np.testing.assert_array_equal(io.read(path), np.zeros(3))
    assert sorted(os.listdir(tmp_path)) == ["a.npy"]


def test_output_equal_to_input_is_refused(tmp_path):
    path = tmp_path / "a.tif"
    with pytest.raises(ValueError, match="is the input file"):
        io.check_output_path(path, [str(path)], overwrite=True)


@pytest.mark.parametrize("name,content,match", [
    ("bad.tif", b"not a tiff at all", "cannot read"),
    ("bad.png", b"\x89PNG garbage", "cannot read"),
    ("bad.npy", b"garbage", "cannot read"),
    ("bad.csv", b"1,2\n3,4\n", "put one signal per file"),
    ("empty.csv", b"", "cannot read|no samples"),
    ("bad.wav", b"RIFF0000", "cannot read"),
])
def test_corrupt_files(tmp_path, name, content, match):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=match):
        io.read(tmp_path / name)


def test_csv_time_column_gives_the_sample_rate_and_comes_back(tmp_path):
    # an oscilloscope's export: times printed to 6 digits, then the signal
    times = 0.25 + np.arange(200) / 8000.0
    values = np.sin(np.arange(200) / 5.0)
    lines = ["time,volts"] + [f"{t:.6g},{v:.9g}" for t, v in zip(times, values)]
    (tmp_path / "scope.csv").write_text("\n".join(lines) + "\n")
    signal, meta = io.read(tmp_path / "scope.csv", with_metadata=True)
    np.testing.assert_allclose(signal, values, atol=1e-8)
    assert meta.sample_rate == pytest.approx(8000.0, rel=1e-4) and meta.start == 0.25
    io.write(tmp_path / "out.csv", 2 * signal, metadata=meta)
    written = (tmp_path / "out.csv").read_text().splitlines()
    assert written[0] == "time,volts" and len(written) == 201
    back = np.loadtxt(tmp_path / "out.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(back[:, 0], times, atol=1e-6)
    np.testing.assert_allclose(back[:, 1], 2 * values, atol=1e-8)
    # uneven first column: two signals, not time and signal
    (tmp_path / "two.csv").write_text("1,2\n3,4\n4,5\n")
    with pytest.raises(ValueError, match="put one signal per file"):
        io.read(tmp_path / "two.csv")


def test_csv_header_line_is_skipped(tmp_path):
    # a column name on the first line failed with "could not convert 'trace'"
    (tmp_path / "h.csv").write_text("trace\n0.5\n1.5\n-2\n")
    np.testing.assert_array_equal(io.read(tmp_path / "h.csv"), [0.5, 1.5, -2.0])
    io.write(tmp_path / "back.csv", io.read(tmp_path / "h.csv"),
             metadata=io.read(tmp_path / "h.csv", with_metadata=True)[1])
    assert (tmp_path / "back.csv").read_text().splitlines()[0] == "trace"  # the name kept
    (tmp_path / "h.txt").write_text("# volts\n1 2 3\n")
    np.testing.assert_array_equal(io.read(tmp_path / "h.txt"), [1.0, 2.0, 3.0])


def test_unknown_and_missing(tmp_path):
    with pytest.raises(ValueError, match="unknown file type '.xyz'"):
        io.read(tmp_path / "a.xyz")
    with pytest.raises(FileNotFoundError, match="no such file"):
        io.read(tmp_path / "missing.tif")


def test_fits_header_extensions_and_blank_pixels(tmp_path):
    """A FITS image in an extension (after an empty primary HDU, before a table) is read
    with its header; NaN (blank) pixels stay NaN; the header goes to a FITS output less
    the old encoding's cards."""
    fits = pytest.importorskip("astropy.io.fits")

    raw = (np.arange(120, dtype=np.uint16) * 500).reshape(10, 12)
    header = fits.Header([("OBJECT", "M31"), ("CDELT1", 1e-4), ("EXPTIME", 30.0)])
    table = fits.BinTableHDU.from_columns([fits.Column(name="a", format="E",
                                                       array=np.arange(3.0))])
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(raw, header=header, name="SCI"),
                  table]).writeto(tmp_path / "ext.fits")
    data, meta = io.read(tmp_path / "ext.fits", with_metadata=True)
    assert data.dtype == np.uint16 and data.dtype.isnative  # BZERO 32768 applied
    np.testing.assert_array_equal(data, raw)
    restored = data / 7.0
    restored[2, 3] = np.nan
    io.write(tmp_path / "out.fits", restored.astype(np.float32), metadata=meta)
    back, back_meta = io.read(tmp_path / "out.fits", with_metadata=True)
    assert np.isnan(back[2, 3]) and np.allclose(back[~np.isnan(back)],
                                                restored[~np.isnan(restored)])
    written = fits.getheader(tmp_path / "out.fits")
    assert written["OBJECT"] == "M31" and written["EXPTIME"] == 30.0
    assert written["BITPIX"] == -32 and "BZERO" not in written and "XTENSION" not in written
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(tmp_path / "table.fits")
    with pytest.raises(ValueError, match="no HDU holds image data"):
        io.read(tmp_path / "table.fits")
