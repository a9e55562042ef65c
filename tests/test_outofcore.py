"""Out-of-core command line: zarr in and out, memory-mapped TIFF, resume, batches."""

import json

import numpy as np
import pytest

from deconvkit import deconvolve, io, psf, simulate
from deconvkit.cli import main

zarr = pytest.importorskip("zarr")
pytest.importorskip("dask")


@pytest.fixture
def volume():
    kernel = psf.gaussian((1.0, 1.5, 1.5))
    from deconvkit import cell_phantom

    scene = cell_phantom((28, 72, 72), seed=3)
    return simulate(scene, kernel, sigma=0.01, boundary="valid", seed=0).astype(np.float32)


def _write_zarr(path, data, chunks):
    z = zarr.open_array(str(path), mode="w", shape=data.shape, chunks=chunks, dtype=data.dtype)
    z[...] = data
    return path


ARGS = ["--psf", "gaussian:sigma=1x1.5x1.5", "--method", "richardson_lucy", "--iterations",
        "8", "--noise-sigma", "0.01"]


def test_zarr_in_zarr_out_equals_in_memory(tmp_path, volume, capsys):
    source = _write_zarr(tmp_path / "in.zarr", volume, (16, 32, 32))
    assert main(["deconvolve", str(source), "-o", str(tmp_path / "out.zarr"),
                 "--chunks", "16x36x36", *ARGS]) == 0
    result = zarr.open_array(str(tmp_path / "out.zarr"), mode="r")[...]
    expected = deconvolve(volume, psf.gaussian((1.0, 1.5, 1.5)), method="richardson_lucy",
                          iterations=8, noise_sigma=0.01)
    inner = (slice(4, -4), slice(8, -8), slice(8, -8))
    error = np.linalg.norm(result[inner] - expected[inner]) / np.linalg.norm(expected[inner])
    assert error < 1e-3
    assert "chunks (16, 36, 36)" in capsys.readouterr().out
    assert not (tmp_path / "out.zarr.partial").exists()


def test_bad_pixel_map_out_of_core(tmp_path, volume, capsys):
    """A camera's 2-D hot-pixel map applies to every plane of a chunked volume, as in
    memory (NaN: missing data)."""
    hot = np.random.default_rng(0).random(volume.shape[1:]) < 0.02
    volume[:, hot] = 5.0
    source = _write_zarr(tmp_path / "in.zarr", volume, (16, 32, 32))
    io.write(tmp_path / "hot.png", hot.astype(np.uint8))
    assert main(["deconvolve", str(source), "-o", str(tmp_path / "out.zarr"), "--chunks",
                 "16x36x36", "--bad-pixels", str(tmp_path / "hot.png"), *ARGS]) == 0
    assert "bad pixels left out as NaN" in " ".join(capsys.readouterr().out.split())
    result = zarr.open_array(str(tmp_path / "out.zarr"), mode="r")[...]
    volume[:, hot] = np.nan
    expected = deconvolve(volume, psf.gaussian((1.0, 1.5, 1.5)), method="richardson_lucy",
                          iterations=8, noise_sigma=0.01)
    inner = (slice(4, -4), slice(8, -8), slice(8, -8))
    assert np.isfinite(result).all()
    error = np.linalg.norm(result[inner] - expected[inner]) / np.linalg.norm(expected[inner])
    assert error < 1e-3


def test_background_map_out_of_core(tmp_path, volume, capsys):
    """A background file (zarr or TIFF) is read chunk by chunk with the image, as
    in memory (it was refused out of core); another map does not resume a run."""
    sky = np.linspace(0.05, 0.3, volume.shape[-1], dtype=np.float32) * np.ones_like(volume)
    source = _write_zarr(tmp_path / "in.zarr", volume + sky, (16, 32, 32))
    expected = deconvolve(volume + sky, psf.gaussian((1.0, 1.5, 1.5)),
                          method="richardson_lucy", iterations=8, noise_sigma=0.01,
                          background=sky)
    inner = (slice(4, -4), slice(8, -8), slice(8, -8))
    for name in ("sky.zarr", "sky.tif"):
        if name.endswith(".zarr"):
            _write_zarr(tmp_path / name, sky, (28, 24, 24))
        else:
            io.write(tmp_path / name, sky)
        out = tmp_path / f"out-{name}.zarr"
        assert main(["deconvolve", str(source), "-o", str(out), "--chunks", "16x36x36",
                     "--background", str(tmp_path / name), *ARGS]) == 0
        assert "background image modelled" in " ".join(capsys.readouterr().out.split())
        result = zarr.open_array(str(out), mode="r")[...]
        error = np.linalg.norm(result[inner] - expected[inner]) / np.linalg.norm(expected[inner])
        assert error < 1e-3, name
    from deconvkit._outofcore import _described

    assert _described(sky) != _described(sky * 1.01) and _described(3.0) == 3.0


def test_memory_limit_chooses_chunks_and_tiff_is_memory_mapped(tmp_path, volume):
    meta = io.Metadata(spacing=(0.3, 0.1, 0.1), unit="um", axes="ZYX")
    io.write(tmp_path / "in.tif", volume.astype(np.float32), metadata=meta)
    assert main(["deconvolve", str(tmp_path / "in.tif"), "-o", str(tmp_path / "out.tif"),
                 "--memory-limit", "40MB", *ARGS, "-q"]) == 0
    out, got = io.read(tmp_path / "out.tif", with_metadata=True)
    assert out.shape == volume.shape
    assert got == meta  # the voxel size and axes survive the chunked write


@pytest.mark.parametrize("name", ["out.zarr", "out.ome.zarr"])
def test_interrupted_run_resumes_without_redoing_chunks(tmp_path, monkeypatch, name):
    import deconvkit._outofcore as ooc

    kernel = psf.gaussian((0.5, 0.7, 0.7))  # 5x7x7: an overlap of 35 px laterally
    data = simulate(np.random.default_rng(0).random((20, 80, 80)), kernel, seed=0)
    source = _write_zarr(tmp_path / "in.zarr", data.astype(np.float32), (20, 40, 40))
    target = tmp_path / name
    args = ["deconvolve", str(source), "-o", str(target), "--chunks", "20x40x40", "--jobs", "1",
            "--psf", "gaussian:sigma=0.5x0.7x0.7", "--method", "richardson_lucy",
            "--iterations", "5", "--noise-sigma", "0.01", "-q"]
    real_save = ooc._save_journal
    saved = []

    def crash_after_two(journal, signature, done, clipped=0):
        real_save(journal, signature, done, clipped)
        saved.append(len(done))
        if len(done) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(ooc, "_save_journal", crash_after_two)
    assert main(args) == 130
    assert not target.exists() and (tmp_path / f"{name}.partial").exists()
    assert len(json.loads((tmp_path / f"{name}.journal.json").read_text())["done"]) == 2
    saved.clear()
    monkeypatch.setattr(ooc, "_save_journal",
                        lambda j, s, d, c=0: (saved.append(len(d)), real_save(j, s, d, c)))
    assert main(args) == 0
    assert saved == [3, 4]  # 4 chunks, 2 were done: only two computed now
    assert target.exists() and not (tmp_path / f"{name}.journal.json").exists()
    whole = deconvolve(data.astype(np.float32), kernel, method="richardson_lucy",
                       iterations=5, noise_sigma=0.01)
    result = zarr.open_array(str(target / "0" if "ome" in name else target), mode="r")[...]
    inner = (slice(None), slice(6, -6), slice(6, -6))
    assert np.linalg.norm(result[inner] - whole[inner]) / np.linalg.norm(whole[inner]) < 1e-3


def _write_ome_zarr(path, data, scale, unit="micrometer", version="0.4"):
    """An OME-Zarr image as ome-zarr-py writes one (NGFF 0.4: zarr v2, attributes
    at the top; 0.5: zarr v3, under "ome"), with a half-resolution level too."""
    axes = [{"name": n, "type": "space", "unit": unit} for n in "zyx"]
    datasets = [{"path": str(level), "coordinateTransformations": [
        {"type": "scale", "scale": [v * 2**level for v in scale]}]} for level in (0, 1)]
    multiscales = [{"version": version, "axes": axes, "datasets": datasets}]
    group = zarr.open_group(str(path), mode="w", zarr_format=2 if version == "0.4" else 3)
    group.attrs.update({"multiscales": multiscales} if version == "0.4" else
                       {"ome": {"version": version, "multiscales": multiscales}})
    group.create_array("0", shape=data.shape, chunks=(16, 32, 32), dtype=data.dtype)[...] = data
    group.create_array("1", shape=tuple(n // 2 for n in data.shape), dtype=data.dtype)
    return path


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_in_ome_zarr_out(tmp_path, volume, capsys, version):
    from deconvkit._outofcore import zarr_metadata

    source = _write_ome_zarr(tmp_path / "in.ome.zarr", volume, (300.0, 100.0, 100.0),
                             unit="nanometer", version=version)
    meta = zarr_metadata(source)
    assert meta.spacing == (300.0, 100.0, 100.0) and meta.unit == "nanometer"
    assert meta.axes == "ZYX"
    # a PSF file at twice the sampling, in micrometres: resampled through the NGFF scale
    io.write(tmp_path / "psf.tif", psf.gaussian((2.0, 3.0, 3.0)).astype(np.float32),
             metadata=io.Metadata(spacing=(0.15, 0.05, 0.05), unit="um"))
    assert main(["deconvolve", str(source), "-o", str(tmp_path / "out.ome.zarr"), "--chunks",
                 "16x36x36", "--psf", str(tmp_path / "psf.tif"), "--method",
                 "richardson_lucy", "--iterations", "8", "--noise-sigma", "0.01"]) == 0
    assert "PSF resampled from spacing" in " ".join(capsys.readouterr().out.split())
    out = zarr.open_group(str(tmp_path / "out.ome.zarr"), mode="r")
    image = dict(out.attrs)["multiscales"][0]
    assert [a["name"] for a in image["axes"]] == ["z", "y", "x"]
    assert image["axes"][0]["unit"] == "nanometer"
    assert image["datasets"][0]["coordinateTransformations"][0]["scale"] == [300.0, 100.0,
                                                                             100.0]
    result = out["0"][...]
    expected = deconvolve(volume, psf.gaussian((1.0, 1.5, 1.5)), method="richardson_lucy",
                          iterations=8, noise_sigma=0.01)
    inner = (slice(4, -4), slice(8, -8), slice(8, -8))
    error = np.linalg.norm(result[inner] - expected[inner]) / np.linalg.norm(expected[inner])
    assert error < 0.02  # the PSF went through resampling
    assert zarr_metadata(tmp_path / "out.ome.zarr") == meta  # read back as written


def test_zarr_group_without_ome_metadata_is_a_clear_error(tmp_path, volume, capsys):
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("raw", shape=(4, 8, 8), dtype="float32")
    assert main(["deconvolve", str(tmp_path / "g.zarr"), "-o", str(tmp_path / "o.zarr"),
                 *ARGS]) == 2
    assert "pass the array inside it" in capsys.readouterr().err


def test_many_files_into_a_folder(tmp_path, capsys):
    rng = np.random.default_rng(0)
    names = []
    for i in range(3):
        image = simulate(rng.random((40, 40)), psf.gaussian(1.0), seed=i).astype(np.float32)
        names.append(str(io.write(tmp_path / f"img{i}.tif", image)))
    out = tmp_path / "restored"
    assert main(["deconvolve", *names, "--out-dir", str(out), "--psf", "gaussian:sigma=1",
                 "--method", "richardson_lucy", "--iterations", "5"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["img0.tif", "img1.tif", "img2.tif"]
    said = capsys.readouterr().out
    assert said.count("richardson_lucy") == 3
    # one unreadable file: the others are still written and reported, status 2
    (tmp_path / "img1.tif").write_bytes(b"garbage")
    again = tmp_path / "again"
    assert main(["deconvolve", *names, "--out-dir", str(again), "--psf", "gaussian:sigma=1",
                 "--method", "richardson_lucy", "--iterations", "5"]) == 2
    assert sorted(p.name for p in again.iterdir()) == ["img0.tif", "img2.tif"]
    said = capsys.readouterr()
    assert said.out.count("richardson_lucy") == 2
    assert "cannot read" in said.err and "1 of 3 files failed" in said.err


@pytest.mark.parametrize("args,match", [
    (["a.tif", "b.tif", "-o", "x.tif"], "several INPUTs need --out-dir"),
    (["a.tif", "--memory-limit", "lots", "-o", "x.zarr"], "not a size"),
])
def test_out_of_core_errors(tmp_path, capsys, args, match, volume):
    io.write(tmp_path / "a.tif", volume)
    io.write(tmp_path / "b.tif", volume)
    argv = ["deconvolve"] + [str(tmp_path / a) if a.endswith((".tif", ".zarr")) else a
                             for a in args] + ["--psf", "gaussian:sigma=1"]
    assert main(argv) == 2
    assert match in capsys.readouterr().err


def test_chunk_memory_estimate_scales_with_the_working_float():
    from deconvkit._outofcore import WORKING_COPIES, choose_chunks
    from deconvkit.tiling import default_depth

    shape, kernel, limit = (64, 512, 512), (9, 13, 13), 2**29
    depth = default_depth(kernel, "total_variation")
    for itemsize in (4, 8):
        chunks = choose_chunks(shape, kernel, "total_variation", limit, itemsize=itemsize)
        grown = np.prod([min(c + 2 * p, n) for c, p, n in zip(chunks, depth, shape)])
        # the estimate fits the limit, with the working float's size
        assert grown * itemsize * WORKING_COPIES["total_variation"] <= limit
        assert grown * itemsize * WORKING_COPIES["total_variation"] > 0.5 * limit
    # RL's Anderson option keeps 6 more updates: smaller chunks for the same limit
    biggs = choose_chunks(shape, kernel, "richardson_lucy", limit)
    anderson = choose_chunks(shape, kernel, "richardson_lucy", limit,
                             options={"acceleration": "anderson"})
    assert np.prod(anderson) < np.prod(biggs) / 1.5


def test_chunks_take_a_short_axis_whole_where_that_wastes_less():
    from deconvkit._outofcore import choose_chunks

    shape, kernel, limit = (256, 2048, 2048), (9, 9, 9), int(1.2e9)
    depth = 45  # 5 PSF widths
    chunks = choose_chunks(shape, kernel, "richardson_lucy", limit)
    assert chunks[0] == 256 and chunks[1] == chunks[2]

    def waste(c):  # grown volume per restored voxel
        return np.prod([min(s + 2 * depth, n) for s, n in zip(c, shape)]) / np.prod(c)

    cube = 194  # the largest equal side that fits: (194 + 90)**3 * 4 * 13 <= 1.2e9
    assert (cube + 2 * depth) ** 3 * 4 * 13 <= limit < (cube + 1 + 2 * depth) ** 3 * 4 * 13
    assert waste(chunks) < 0.75 * waste((cube,) * 3)  # 2.04 against 2.83
    # a volume of equal sides keeps equal sides
    assert len(set(choose_chunks((1024,) * 3, kernel, "richardson_lucy", limit))) == 1


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/clear_refs"),
                    reason="measures peak resident memory through Linux /proc")
@pytest.mark.parametrize("method,options", [("total_variation", {}), ("richardson_lucy", {}),
                                            ("richardson_lucy", {"acceleration": "anderson"})])
def test_solver_peak_memory_is_within_the_chunk_estimate(tmp_path, method, options):
    import subprocess
    import sys

    from deconvkit._outofcore import working_copies

    kernel = psf.gaussian((1.0, 1.5, 1.5))
    data = simulate(np.random.default_rng(0).random((32, 96, 96)), kernel, seed=0)
    np.save(tmp_path / "chunk.npy", data.astype(np.float32))
    code = f"""
import numpy as np, deconvkit as dk
def status(field):
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
                if line.startswith(field + ":"))
kernel = dk.psf.gaussian((1.0, 1.5, 1.5))
chunk = np.load({str(tmp_path / "chunk.npy")!r})
dk.deconvolve(chunk[:12, :24, :24], kernel, method={method!r}, iterations=3,
              **{options!r})  # imports, pools
open("/proc/self/clear_refs", "w").write("5")
before = status("VmRSS")
restored = dk.deconvolve(chunk, kernel, method={method!r}, iterations=20, **{options!r})
print((status("VmHWM") - before) / chunk.nbytes)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # the solver's own copies; the estimate adds the chunk read and the result
    assert float(out.stdout.split()[-1]) < working_copies(method, options) - 2


def test_integer_output_counts_clipped_samples_across_a_resume(tmp_path, monkeypatch, capsys):
    """--bit-depth 8 out of core: the warning counts the clipped samples of every
    block, those written before an interruption too (kept in the journal)."""
    import deconvkit._outofcore as ooc

    data = simulate(np.random.default_rng(1).random((240, 240)) * 400, psf.gaussian(1.0),
                    seed=0)
    source = _write_zarr(tmp_path / "in.zarr", data.astype(np.float32), (80, 80))
    common = ["deconvolve", str(source), "--chunks", "80x80", "--jobs", "1", "--psf",
              "gaussian:1", "--method", "richardson_lucy", "--iterations", "3", "-q"]
    assert main([*common, "-o", str(tmp_path / "float.zarr")]) == 0
    floats = zarr.open_array(str(tmp_path / "float.zarr"), mode="r")[...]
    expected = int((np.rint(floats) > 255).sum())
    real_save = ooc._save_journal

    def crash_after_two(journal, signature, done, clipped=0):
        real_save(journal, signature, done, clipped)
        if len(done) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(ooc, "_save_journal", crash_after_two)
    assert main([*common, "--bit-depth", "8", "-o", str(tmp_path / "u8.zarr")]) == 130
    monkeypatch.setattr(ooc, "_save_journal", real_save)
    capsys.readouterr()
    assert main([*common, "--bit-depth", "8", "-o", str(tmp_path / "u8.zarr")]) == 0
    assert f"{expected} samples outside 0..255 were clipped" in \
        " ".join(capsys.readouterr().err.split())
    written = zarr.open_array(str(tmp_path / "u8.zarr"), mode="r")[...]
    np.testing.assert_array_equal(written, np.clip(np.rint(floats), 0, 255))
