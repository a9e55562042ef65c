"""super_resolve: one object on a finer grid from one or more undersampled frames."""

import re
import warnings

import numpy as np
import pytest
import scipy.ndimage as ndi
from skimage import transform

import deconvkit as dk
from deconvkit.restoration import register_rigid, register_shifts


def _frames(scene, blur, scale, offsets, sigma=0.005, seed=0):
    """Frames binned scale x scale from the blurred scene at fine offsets: made
    without the library's operators, so that the model is checked too."""
    sharp = dk.blur(scene, blur)
    rng = np.random.default_rng(seed)
    n = (scene.shape[0] - scale) // scale
    frames = [sharp[i:i + n * scale, j:j + n * scale].reshape(n, scale, n, scale)
              .mean(axis=(1, 3)) + rng.normal(0, sigma, (n, n)) for i, j in offsets]
    return frames, scene[:n * scale, :n * scale]


@pytest.mark.parametrize("scale", [2, 3])
def test_frames_at_known_phases_beat_one_frame_and_bicubic(scale):
    """Measured (dead leaves, 120 px, Gaussian optics of 0.5 scale fine pixels,
    noise 0.005): x2 21.45 dB from 4 frames (20.66 without TV), 19.92 from
    one, 17.93 bicubic; x3 18.86 (18.80) / 17.74 / 16.65.  The output
    registers with the first frame: moved by one fine sample it scores lower."""
    scene = dk.dead_leaves((120, 120), seed=1) * 0.8 + 0.1
    blur = dk.psf.gaussian(0.5 * scale)
    offsets = [(i, j) for i in range(scale) for j in range(scale)]
    frames, truth = _frames(scene, blur, scale, offsets)
    known = [(i / scale, j / scale) for i, j in offsets]
    fine, info = dk.super_resolve(frames, blur, scale, shifts=known, noise_sigma=0.005,
                                  return_info=True)
    assert fine.shape == truth.shape and fine.min() >= 0
    assert info.parameters["frames"] == len(frames) and info.parameters["tv_weight"] > 0
    m = 2 * scale

    def score(estimate):
        return dk.metrics.psnr(truth[m:-m, m:-m], estimate[m:-m, m:-m], data_range=1.0)

    one = dk.super_resolve(frames[0], blur, scale, noise_sigma=0.005)
    plain, info = dk.super_resolve(frames, blur, scale, shifts=known, noise_sigma=0.005,
                                   tv_weight=None, return_info=True)
    bicubic = transform.resize(frames[0], truth.shape, order=3)
    assert score(fine) > score(one) + 0.8 and score(one) > score(bicubic) + 0.8
    assert score(fine) > score(plain) and info.stopped_by == "discrepancy"
    for axis in (0, 1):
        for step in (1, -1):
            assert score(np.roll(fine, step, axis=axis)) < score(fine) - 1.0


def test_shifts_are_registered_when_not_given():
    scene = dk.cell_phantom((120, 120), seed=0)
    frames, truth = _frames(scene, dk.psf.gaussian(1.0), 2, [(0, 0), (1, 0), (0, 1), (1, 1)])
    found = register_shifts(frames)
    np.testing.assert_allclose(found, [(0, 0), (0.5, 0), (0, 0.5), (0.5, 0.5)], atol=0.03)
    # whole pixels, between two windows on one scene (no wrap-around)
    whole = register_shifts([scene[10:90, 10:90], scene[13:93, 8:88]])
    np.testing.assert_allclose(whole[1], (3, -2), atol=0.02)
    fine, info = dk.super_resolve(frames, dk.psf.gaussian(1.0), 2, return_info=True)
    np.testing.assert_allclose(info.parameters["shifts"], found)


def test_one_dimensional_missing_samples_and_scale_one():
    rng = np.random.default_rng(2)
    signal = np.zeros(400)
    signal[rng.integers(20, 380, 12)] = rng.uniform(0.5, 1.0, 12)
    blur = dk.psf.gaussian(1.0, ndim=1)
    sharp = dk.blur(signal, blur)
    frames = [sharp[k:k + 396].reshape(132, 3).mean(axis=1) for k in range(3)]
    frames[1][40] = np.nan  # a cosmic-ray hit, masked
    # plain RL: 30 iterations of TV's unaccelerated steps fall short (25.5 dB)
    fine = dk.super_resolve(frames, blur, 3, shifts=[(0,), (1 / 3,), (2 / 3,)], iterations=30,
                            tv_weight=None)
    assert fine.shape == (396,) and np.isfinite(fine).all()
    one = dk.super_resolve(frames[0], blur, 3, iterations=30, tv_weight=None)
    # measured 36.15 dB from three frames (one sample masked), 27.27 from one
    assert dk.metrics.psnr(signal[:396], fine, data_range=1.0) > dk.metrics.psnr(
        signal[:396], one, data_range=1.0) + 5.0
    # scale 1: registered frames deconvolved together on their own grid
    same = dk.super_resolve([sharp, sharp], blur, 1, shifts=[(0,), (0,)], iterations=10,
                            tv_weight=None)
    np.testing.assert_allclose(same, dk.richardson_lucy_multiview(
        [sharp, sharp], [blur, blur], iterations=10), rtol=1e-6, atol=1e-9)


def test_errors_name_the_argument():
    frame = np.ones((20, 20))
    blur = dk.psf.gaussian(1.0)
    with pytest.raises(ValueError, match="frames must have one shape"):
        dk.super_resolve([frame, frame[1:]], blur, 2)
    with pytest.raises(ValueError, match="scale must be an int >= 1"):
        dk.super_resolve(frame, blur, 1.5)
    with pytest.raises(ValueError, match="scale must be an int >= 1"):
        dk.super_resolve(frame, blur, "2")  # a TypeError from a comparison before
    for count in (-1, 2.5):  # -1 gave no rays, 2.5 two
        with pytest.raises(ValueError, match="count must be an int >= 0"):
            dk.cosmic_rays((32, 32), count)
    with pytest.raises(ValueError, match="shifts must be 'auto', 2 x 2 .* 2 affine maps of 2 x 3"):
        dk.super_resolve([frame, frame], blur, 2, shifts=[0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="motion='affine' is not one of"):
        dk.super_resolve([frame, frame], blur, 2, motion="affine")
    with pytest.raises(ValueError, match="motion='rigid' registers 2-D and 3-D frames, got 1-D"):
        dk.super_resolve([frame[0], frame[1]], dk.psf.gaussian(1.0, ndim=1), 2, motion="rigid")
    with pytest.raises(ValueError, match="2-D PSF"):
        dk.super_resolve(frame, dk.psf.gaussian(1.0, ndim=1), 2)
    with pytest.raises(ValueError, match="frames is empty"):
        dk.super_resolve([], blur, 2)


def _turned_frames(scale, motions, sigma=0.005, n=60, seed=0):
    """Frames of a scene turned and shifted, (angle in degrees, dy, dx) in frame
    pixels about the frame's centre, each blurred and binned; made with scipy's
    spline interpolation of a finer scene, not the library's Warp.  Returns the
    frames, their affine maps (frame pixel i sees the first frame's point
    A i + b) and the first frame's fine truth."""
    scene = dk.dead_leaves((n * scale + 80,) * 2, seed=seed) * 0.8 + 0.1
    blur = dk.psf.gaussian(0.5 * scale)
    rng = np.random.default_rng(seed)
    centre = np.full(2, (n - 1) / 2)
    fine = np.indices((n * scale + 24,) * 2).reshape(2, -1) - 12.0
    pixel = 0.5 * scale - 0.5  # a frame pixel's centre on the fine grid
    frames, maps = [], []
    for angle, dy, dx in motions:
        turn = np.array([[np.cos(np.radians(angle)), -np.sin(np.radians(angle))],
                         [np.sin(np.radians(angle)), np.cos(np.radians(angle))]])
        shift = centre + (dy, dx) - turn @ centre
        maps.append(np.hstack([turn, shift[:, None]]))
        points = turn @ (fine - pixel) + (scale * shift + pixel + 40)[:, None]
        seen = ndi.map_coordinates(scene, points, order=3).reshape((n * scale + 24,) * 2)
        sharp = dk.blur(seen, blur)[12:-12, 12:-12]
        frames.append(sharp.reshape(n, scale, n, scale).mean(axis=(1, 3))
                      + rng.normal(0, sigma, (n, n)))
    return frames, np.stack(maps), scene[40:40 + n * scale, 40:40 + n * scale], blur


def test_turned_frames_are_registered_and_restored():
    """A hand-held burst turns as well as shifts.  Measured (dead leaves, x2,
    four 60-pixel frames turned by up to 3 degrees): register_rigid within 0.007
    pixel of the true maps everywhere in the frame; 22.39 dB from the maps
    registered, 22.39 given, 18.49 for the translation model, 21.02 from one
    frame, 18.57 bicubic (another scene: 24.75, 24.75, 21.22, 23.28, 21.01)."""
    motions = [(0, 0, 0), (2.5, 0.5, -0.3), (-3.0, -0.8, 1.2), (1.2, 1.5, 0.5)]
    frames, maps, truth, blur = _turned_frames(2, motions)
    found = register_rigid(frames)
    points = np.indices(frames[0].shape).reshape(2, -1)
    error = max(np.abs(f[:, :2] @ points + f[:, 2:] - m[:, :2] @ points - m[:, 2:]).max()
                for f, m in zip(found, maps))
    assert found.shape == (4, 2, 3) and error < 0.05

    def score(estimate):
        return dk.metrics.psnr(truth[6:-6, 6:-6], estimate[6:-6, 6:-6], data_range=1.0)

    fine, info = dk.super_resolve(frames, blur, 2, motion="rigid", noise_sigma=0.005,
                                  return_info=True)
    np.testing.assert_allclose(info.parameters["maps"], found)
    given = dk.super_resolve(frames, blur, 2, shifts=maps, noise_sigma=0.005)
    shifted = dk.super_resolve(frames, blur, 2, noise_sigma=0.005)
    one = dk.super_resolve(frames[0], blur, 2, noise_sigma=0.005)
    assert fine.shape == truth.shape and fine.min() >= 0
    assert abs(score(fine) - score(given)) < 0.2
    assert score(fine) > score(shifted) + 2.5 and score(fine) > score(one) + 0.8
    # maps that are translations take the kernels' path; a turn of 1e-7 rad
    # takes the warp's, and the two models agree
    still = [(0, 0, 0), (0, 0.5, 0), (0, 0, 0.5), (0, 0.5, 0.5)]
    frames, maps, truth, blur = _turned_frames(2, still)
    by_kernel = dk.super_resolve(frames, blur, 2, shifts=maps, noise_sigma=0.005)
    np.testing.assert_array_equal(by_kernel, dk.super_resolve(
        frames, blur, 2, shifts=maps[:, :, 2], noise_sigma=0.005))
    maps[:, 0, 1], maps[:, 1, 0] = -1e-7, 1e-7
    by_warp = dk.super_resolve(frames, blur, 2, shifts=maps, noise_sigma=0.005)
    assert abs(score(by_warp) - score(by_kernel)) < 0.1


def test_one_psf_per_frame(tmp_path):
    """Exposures under different seeing: each frame's own PSF.  Measured (cell
    phantom, x2, Gaussians of 0.8, 1.4, 2.0 and 1.1 fine samples): 25.23 dB
    with each frame's PSF, 23.39 with their mean; the same through the
    warp's path."""
    from deconvkit import io
    from deconvkit.cli import main

    scene = dk.cell_phantom((120, 120), seed=0)
    offsets = [(0, 0), (1, 0), (0, 1), (1, 1)]
    psfs = [dk.psf.gaussian(s, shape=(17, 17)) for s in (0.8, 1.4, 2.0, 1.1)]
    frames = [_frames(scene, p, 2, [o], seed=k)[0][0] for k, (p, o) in
              enumerate(zip(psfs, offsets))]
    truth = scene[:118, :118]
    known = [(i / 2, j / 2) for i, j in offsets]

    def score(estimate):
        return dk.metrics.psnr(truth[4:-4, 4:-4], estimate[4:-4, 4:-4], data_range=1.0)

    each = dk.super_resolve(frames, psfs, 2, shifts=known, noise_sigma=0.005)
    mean = dk.super_resolve(frames, np.mean(psfs, axis=0), 2, shifts=known, noise_sigma=0.005)
    assert score(each) > score(mean) + 1.0
    maps = np.array([np.hstack([np.eye(2), np.array(k)[:, None]]) for k in known])
    maps[:, 0, 1], maps[:, 1, 0] = -1e-7, 1e-7  # the warp's path
    turned = dk.super_resolve(frames, psfs, 2, shifts=maps, noise_sigma=0.005)
    assert abs(score(turned) - score(each)) < 0.1
    # PSFs of other sizes are padded about their centres
    cropped = [psfs[0][4:-4, 4:-4] / psfs[0][4:-4, 4:-4].sum()] + psfs[1:]
    small = dk.super_resolve(frames, cropped, 2, shifts=known, noise_sigma=0.005)
    assert abs(score(small) - score(each)) < 0.1
    with pytest.raises(ValueError, match="psf gives 2 PSFs for 4 frames"):
        dk.super_resolve(frames, psfs[:2], 2, shifts=known)
    names, specs = [], []
    for k, (frame, psf) in enumerate(zip(frames, psfs)):
        names.append(str(tmp_path / f"f{k}.tif"))
        io.write(names[-1], frame.astype(np.float32))
        io.write(tmp_path / f"p{k}.tif", psf.astype(np.float32))
        specs += ["--psf", str(tmp_path / f"p{k}.tif")]
    np.savetxt(tmp_path / "shifts.csv", known, delimiter=",")
    assert main(["super-resolve", *names, *specs, "--scale", "2", "--noise-sigma", "0.005",
                 "--shifts", str(tmp_path / "shifts.csv"), "-q", "-o",
                 str(tmp_path / "fine.tif")]) == 0
    np.testing.assert_allclose(io.read(tmp_path / "fine.tif"), dk.super_resolve(
        [f.astype(np.float32) for f in frames], [p.astype(np.float32) for p in psfs], 2,
        shifts=known, noise_sigma=0.005), rtol=1e-5, atol=1e-6)
    assert main(["super-resolve", *names, *specs[:4], "--scale", "2", "-o",
                 str(tmp_path / "x.tif")]) == 2


def _raw_burst(motions, pattern="RGGB", n=60, sigma=0.003, seed=0):
    """Raw frames of a colour scene turned and shifted, (angle in degrees, dy, dx),
    each blurred and sampled behind a Bayer mosaic; and the scene on the
    sensor's grid (linear light)."""
    from skimage import data

    scene = dk.io.srgb_to_linear(data.astronaut()[100:100 + n + 40, 180:180 + n + 40] / 255.0)
    blur, rng = dk.psf.gaussian(0.5), np.random.default_rng(seed)
    sites = {colour: (k // 2, k % 2) for k, colour in enumerate(pattern) if colour != "G"}
    centre, frames = (n - 1) / 2, []
    grid = np.indices((n + 24, n + 24)).reshape(2, -1) - 12.0
    for angle, dy, dx in motions:
        turn = np.array([[np.cos(np.radians(angle)), -np.sin(np.radians(angle))],
                         [np.sin(np.radians(angle)), np.cos(np.radians(angle))]])
        points = turn @ (grid - centre) + (centre + np.array([dy, dx]) + 20)[:, None]
        seen = [dk.blur(ndi.map_coordinates(scene[..., c], points, order=3).reshape(
            n + 24, n + 24), blur)[12:-12, 12:-12] for c in range(3)]
        raw = seen[1].copy()  # green, then red and blue at their sites
        for colour, (i, j) in sites.items():
            raw[i::2, j::2] = seen["RGB".index(colour)][i::2, j::2]
        frames.append(raw + rng.normal(0, sigma, raw.shape))
    return frames, blur, scene[20:20 + n, 20:20 + n]


def _bilinear_demosaic(raw, pattern="RGGB"):
    from deconvkit.restoration._mosaic import channel_masks

    weights = np.array([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    return np.stack([ndi.convolve(raw * m, weights, mode="mirror")
                     / ndi.convolve(m.astype(float), weights, mode="mirror")
                     for m in channel_masks(pattern, raw.shape)], axis=-1)


def test_raw_bayer_frames_are_demosaicked_by_their_motion(tmp_path, capsys):
    """A hand-held raw burst: each frame sees one colour a pixel, and the
    motion fills in the others.  Measured (astronaut, 60-pixel RGGB frames,
    turned up to 1 degree, x1): 36.58 dB from 4 frames registered, 33.39
    from the first frame alone, 29.03 for its bilinear demosaic; BGGR 36.58,
    33.90 and 28.96 (with each colour restored on its own, before red and
    blue were guided by green: 35.90, 30.72; 35.71, 30.48)."""
    from deconvkit import io
    from deconvkit.cli import main
    from deconvkit.restoration._mosaic import channel_masks

    masks = channel_masks("GBRG", (4, 4))
    assert masks[2][0, 1] and masks[0][1, 0] and masks[1][0, 0] and masks[1][1, 1]
    motions = [(0, 0, 0), (0.8, 0.6, -1.3), (-0.5, -1.1, 0.4), (0.3, 1.4, 1.1)]

    def score(estimate):
        return dk.metrics.psnr(truth[4:-4, 4:-4], estimate[4:-4, 4:-4], data_range=1.0)

    for pattern in ("RGGB", "BGGR"):
        frames, blur, truth = _raw_burst(motions, pattern)
        burst, infos = dk.super_resolve(frames, blur, 1, bayer=pattern, motion="rigid",
                                        return_info=True)
        one = dk.super_resolve(frames[0], blur, 1, bayer=pattern)
        assert burst.shape == truth.shape and len(infos) == 3
        assert infos[0].parameters["maps"] == infos[2].parameters["maps"]
        assert score(burst) > score(one) + 2.0
        assert score(one) > score(_bilinear_demosaic(frames[0], pattern)) + 3.5
    with pytest.raises(ValueError, match="bayer='RGBG' is not one of"):
        dk.super_resolve(frames, blur, 1, bayer="RGBG")
    with pytest.raises(ValueError, match="give channel_axis for colour frames, or bayer"):
        dk.super_resolve(frames, blur, 1, bayer="RGGB", channel_axis=-1)
    with pytest.raises(ValueError, match="bayer takes 2-D raw frames"):
        dk.super_resolve([np.stack([f] * 3) for f in frames], dk.psf.gaussian(0.5, ndim=3), 1,
                         bayer="RGGB")
    # the command line: a raw stack in counts with a black level, as dcraw -D writes it
    counts = [np.round(f * 4000 + 256).astype(np.uint16) for f in frames]
    io.write(tmp_path / "raw.tif", np.stack(counts))
    assert main(["super-resolve", str(tmp_path / "raw.tif"), "--psf", "gaussian:0.5",
                 "--scale", "1", "--bayer", "BGGR", "--background", "256", "--motion",
                 "rigid", "-q", "-o", str(tmp_path / "rgb.tif")]) == 0
    expected = dk.super_resolve(counts, blur, 1, bayer="BGGR", background=256,
                                motion="rigid")
    np.testing.assert_allclose(io.read(tmp_path / "rgb.tif"), expected, rtol=1e-4, atol=1e-2)
    # the summary says how red and blue followed green, and green's own fit
    assert main(["super-resolve", str(tmp_path / "raw.tif"), "--psf", "gaussian:0.5",
                 "--scale", "1", "--bayer", "BGGR", "--background", "256", "-o",
                 str(tmp_path / "rgb2.tif")]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert re.search(r"red (green-guided \(c [0-9.]+\)|on its own), blue "
                     r"(green-guided \(c [0-9.]+\)|on its own); green's TV weight", said)
    assert main(["super-resolve", str(tmp_path / "rgb.tif"), "--psf", "gaussian:0.5",
                 "--scale", "1", "--bayer", "RGGB", "-o", str(tmp_path / "x.tif")]) == 2


def test_one_frame_returns_the_mean_of_the_tv_factors_two_phases():
    """One frame at x3: the TV factor, against weights of 1/9, leaves samples
    flipping between two values each iteration (by 0.065 here; by up to 0.29
    on the benchmark's scenes before the automatic weight followed the square
    root of the coverage); the estimate is their mean.  Measured on
    benchmarks/super_resolution's four scenes and six others, one frame at
    x2 and x3: +0.02 and +0.03 dB on average over the last iterate, never
    lower (+0.22 and +0.39 with the unscaled weight)."""
    from skimage import data

    scene = data.camera()[100:220, 100:220] / 255.0
    blur = dk.psf.gaussian(1.5)
    frame = dk.blur(scene, blur).reshape(40, 3, 40, 3).mean(axis=(1, 3))
    frame = frame + np.random.default_rng(0).normal(0, 0.01, frame.shape)
    last = []

    def keep(iteration, estimate):
        last.append(estimate.copy())
        del last[:-2]

    fine = dk.super_resolve(frame, blur, 3, callback=keep)
    np.testing.assert_allclose(fine, (last[0] + last[1]) / 2, atol=1e-12)
    assert np.abs(last[1] - last[0]).max() > 0.02  # the two phases

    def score(estimate):
        return dk.metrics.psnr(scene[9:-9, 9:-9], estimate[9:-9, 9:-9], data_range=1.0)

    assert score(fine) > score(last[1])
    # one iteration has one iterate: the flat start is not averaged in
    last.clear()
    once = dk.super_resolve(frame, blur, 3, iterations=1, callback=keep)
    np.testing.assert_allclose(once, last[-1], atol=1e-12)


def test_red_and_blue_are_guided_by_green_where_it_helps(monkeypatch):
    """One raw frame at x2: red and blue each see one fine sample in sixteen,
    and take green's detail as green times a smooth ratio, its floor chosen
    on held-out samples.  Measured (astronaut crop): 29.40 dB against 27.49
    with each colour restored on its own and 25.19 for a bilinear demosaic
    and bicubic upscaling.  Where red is another scene (camera) than green,
    the held-out samples chose the loosest tie: red at 23.61 dB against 23.96
    on its own."""
    from skimage import data, transform

    from deconvkit.restoration import _mosaic

    scene = dk.io.srgb_to_linear(data.astronaut()[100:220, 180:300] / 255.0)
    other = scene.copy()
    other[..., 0] = dk.io.srgb_to_linear(data.camera()[200:320, 200:320] / 255.0)
    blur = dk.psf.gaussian(1.0)
    sites = np.moveaxis(_mosaic.channel_masks("RGGB", (60, 60)), 0, -1)

    def raw_of(rgb):
        sharp = np.stack([dk.blur(rgb[..., c], blur) for c in range(3)], axis=-1)
        low = (sharp.reshape(60, 2, 60, 2, 3).mean(axis=(1, 3)) * sites).sum(-1)
        return low + np.random.default_rng(1).normal(0, 0.003, low.shape)

    def score(truth, estimate):
        return dk.metrics.psnr(truth[8:-8, 8:-8], estimate[8:-8, 8:-8], data_range=1.0)

    raw = raw_of(scene)
    guided, infos = dk.super_resolve(raw, blur, 2, bayer="RGGB", return_info=True)
    assert infos[0].parameters["guide_floor"] in _mosaic.GUIDE_FLOORS
    assert "guide_floor" not in infos[1].parameters  # green is the guide
    bicubic = transform.resize(_bilinear_demosaic(raw), scene.shape, order=3)
    assert score(scene, guided) > score(scene, bicubic) + 2.0
    odd = raw_of(other)
    tied, infos = dk.super_resolve(odd, blur, 2, bayer="RGGB", return_info=True)
    assert infos[0].parameters["guide_floor"] in (4.0, None)
    monkeypatch.setattr(_mosaic, "GUIDE_FLOORS", (None,))  # each colour on its own
    alone = dk.super_resolve(raw, blur, 2, bayer="RGGB")
    assert score(scene, guided) > score(scene, alone) + 1.5
    alone = dk.super_resolve(odd, blur, 2, bayer="RGGB")
    assert score(other[..., 0], tied[..., 0]) > score(other[..., 0], alone[..., 0]) - 0.5


def _dng(path, mosaic, pattern=(0, 1, 1, 2), black=256):
    """A minimal DNG (a CFA TIFF with the DNG tags LibRaw needs), by tifffile."""
    import tifffile

    tags = [(50706, "B", 4, (1, 4, 0, 0), True), (50707, "B", 4, (1, 1, 0, 0), True),
            (50708, "s", 0, "deconvkit test", True), (33421, "H", 2, (2, 2), True),
            (33422, "B", 4, pattern, True), (50714, "H", 1, (black,), True),
            (50717, "H", 1, (4095,), True),
            (50721, "2i", 9, (1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1), True)]
    tifffile.imwrite(path, mosaic, photometric=32803, extratags=tags, metadata=None)


def test_camera_raw_files(tmp_path, capsys):
    """DNG frames read through rawpy: the pattern and black level come from the
    files, so super-resolve needs neither --bayer nor --background."""
    pytest.importorskip("rawpy")
    from deconvkit import io
    from deconvkit.cli import main

    frames, blur, _ = _raw_burst([(0, 0, 0), (0.6, 0.7, -1.2), (-0.4, -1.0, 0.5)])
    counts = [np.minimum(np.round(f * 6000 + 256), 4095).astype(np.uint16) for f in frames]
    assert sum(int((c == 4095).sum()) for c in counts) > 20  # clipped at the white level
    names = [str(tmp_path / f"f{k}.dng") for k in range(3)]
    for name, mosaic in zip(names, counts):
        _dng(name, mosaic)
    mosaic, meta = io.read(names[0], with_metadata=True)
    np.testing.assert_array_equal(mosaic, counts[0])
    assert meta.cfa == "RGGB" and meta.black_level == (256.0,) * 4
    assert io.read(tmp_path / "f0.dng").dtype == np.uint16
    assert meta.white_level == 4095
    assert main(["super-resolve", *names, "--psf", "gaussian:0.5", "--scale", "1",
                 "-o", str(tmp_path / "rgb.tif")]) == 0
    assert "clipped sample(s) left out" in " ".join(capsys.readouterr().out.split())
    expected = dk.super_resolve(counts, blur, 1, bayer="RGGB", background=256.0,
                                saturation=4095)
    np.testing.assert_allclose(io.read(tmp_path / "rgb.tif"), expected, rtol=1e-4, atol=1e-2)
    assert main(["deconvolve", names[0], "--psf", "gaussian:0.5", "-o",
                 str(tmp_path / "x.tif")]) == 2
    assert "raw RGGB mosaic; demosaic and restore it with deconvkit super-resolve" in \
        " ".join(capsys.readouterr().err.split())
    with pytest.raises(ValueError, match="camera raw files are read, not written"):
        io.write(tmp_path / "out.dng", counts[0])
    (tmp_path / "bad.nef").write_bytes(b"not a raw file")
    assert main(["super-resolve", str(tmp_path / "bad.nef"), "--psf", "gaussian:1",
                 "--scale", "2", "-o", str(tmp_path / "y.tif")]) == 2
    assert "cannot read" in capsys.readouterr().err  # a message, not a traceback


def test_clipped_samples_are_left_out():
    """Stars whose cores a camera clipped: fitted as measurements they pull the
    estimate down and ring; left out (saturation=) they are lower bounds the
    other samples fill.  Measured (30 stars under a Moffat PSF, x2 from 4
    dithered frames clipped at 0.3, 286 samples): the estimate reblurred by the
    PSF 32.17 dB against 31.42 fitted (plain RL 32.88 against 30.81)."""
    rng = np.random.default_rng(0)
    sky = np.full((160, 160), 0.02)
    sky[tuple(rng.integers(10, 150, (2, 30)))] += rng.uniform(0.5, 20, 30)
    optics = dk.psf.moffat(2.5, beta=3.0)
    offsets = [(0, 0), (1, 0), (0, 1), (1, 1)]
    frames, truth = _frames(sky, optics, 2, offsets, sigma=0.002)
    clipped = [np.minimum(f, 0.3) for f in frames]
    known = [(i / 2, j / 2) for i, j in offsets]
    seen = dk.blur(truth, optics)[6:-6, 6:-6]

    def score(estimate):
        return dk.metrics.psnr(seen, dk.blur(estimate, optics)[6:-6, 6:-6],
                               data_range=float(seen.max()))

    fitted = dk.super_resolve(clipped, optics, 2, shifts=known)
    left_out = dk.super_resolve(clipped, optics, 2, shifts=known, saturation=0.3)
    assert score(left_out) > score(fitted) + 0.4
    with pytest.raises(ValueError, match="saturation must be a finite level"):
        dk.super_resolve(clipped, optics, 2, saturation="high")


def test_large_turns_are_registered():
    """Exposures of a field that turned between them (an alt-az mount): the
    spectra's magnitudes give the turn up to 180 degrees, Gauss-Newton the
    rest (measured here: within 0.006, 0.013 and 0.008 pixel; on 100-pixel
    camera crops within 0.005-0.027 pixel for turns of 8-170 degrees, where
    the fit from no turn alone had failed at 15)."""
    motions = [(0, 0, 0), (30.0, 0.5, -1.0), (150.0, -1.0, 0.5), (-95.0, 0.3, 0.2)]
    frames, maps, _, _ = _turned_frames(2, motions, n=50)
    found = register_rigid(frames)
    points = np.indices(frames[0].shape).reshape(2, -1)
    error = max(np.abs(f[:, :2] @ points + f[:, 2:] - m[:, :2] @ points - m[:, 2:]).max()
                for f, m in zip(found, maps))
    assert error < 0.1


def test_volumes_turned_about_every_axis_are_registered_and_restored():
    """3-D: Gauss-Newton on a rotation vector and a shift, from the
    cross-correlation's shift (no spectral start), coarse to fine.  Measured on a
    40 x 64 x 64 cell phantom turned by up to 15 degrees about each axis: corners
    within 0.003 voxel; x2 from
    six 20 x 36 x 36 frames turned by up to 2 degrees: 25.73 dB registered,
    25.74 with the maps given, 24.27 as translations, 23.19 from one frame."""
    from scipy.spatial.transform import Rotation

    scene = dk.cell_phantom((28, 40, 40), seed=0)
    blur = dk.psf.gaussian(1.0, ndim=3)
    n, s, pad = np.array([12, 18, 18]), 2, 6
    centre, pixel = (n - 1) / 2, 0.5 * s - 0.5
    fine = np.indices(tuple(n * s + 2 * pad), dtype=float).reshape(3, -1) - pad
    rng = np.random.default_rng(0)
    frames, maps = [], []
    for k in range(4):
        turn = Rotation.from_rotvec(np.radians(rng.uniform(-4, 4, 3))).as_matrix() if k \
            else np.eye(3)
        shift = centre + (rng.uniform(-1.5, 1.5, 3) if k else 0) - turn @ centre
        maps.append(np.hstack([turn, shift[:, None]]))
        points = turn @ (fine - pixel) + (s * shift + pixel + 2)[:, None]
        seen = ndi.map_coordinates(scene, points, order=3, mode="mirror")
        sharp = dk.blur(seen.reshape(tuple(n * s + 2 * pad)), blur)[pad:-pad, pad:-pad, pad:-pad]
        frames.append(sharp.reshape(n[0], s, n[1], s, n[2], s).mean(axis=(1, 3, 5))
                      + rng.normal(0, 0.003, tuple(n)))
    found = register_rigid(frames)
    assert found.shape == (4, 3, 4)
    corners = np.array(np.meshgrid(*[[0, m - 1] for m in n], indexing="ij")).reshape(3, -1)
    error = max(np.abs(f[:, :3] @ corners + f[:, 3:] - m[:, :3] @ corners - m[:, 3:]).max()
                for f, m in zip(found, maps))
    assert error < 0.05
    truth = scene[2:2 + n[0] * s, 2:2 + n[1] * s, 2:2 + n[2] * s]

    def score(estimate):
        inside = (slice(4, -4),) * 3
        return dk.metrics.psnr(truth[inside], estimate[inside], data_range=1.0)

    rigid = dk.super_resolve(frames, blur, 2, motion="rigid")
    shifted = dk.super_resolve(frames, blur, 2)
    assert score(rigid) > score(shifted) + 0.5


@pytest.mark.parametrize("degrees", [60, 150])
def test_a_volume_turned_far_is_found(degrees):
    """From no turn, the fit on the frames smoothed by 4 and 2 voxels first
    (without those passes the 60-degree turn came out 75 voxels off: Gauss-
    Newton on the lightly smoothed volumes has a basin of 30-45 degrees on
    such phantoms); and where that fit explains under half the frame, the
    coarsest fit from each of the cube's 23 other turns, the best carried on
    (the 150-degree turn)."""
    from scipy.spatial.transform import Rotation

    volume = dk.blur(dk.cell_phantom((40, 100, 100), seed=1), dk.psf.gaussian(1.0, ndim=3))
    centre = (np.array(volume.shape) - 1) / 2
    arms = np.indices(volume.shape).reshape(3, -1) - centre[:, None]
    axis = np.array([0.881, 0.464, -0.094])
    turn = Rotation.from_rotvec(np.radians(degrees) * axis / np.linalg.norm(axis)).as_matrix()
    shift = np.array([1.9, 1.8, -0.6])
    points = turn @ arms + (centre + shift)[:, None]
    turned = ndi.map_coordinates(volume, points, order=3).reshape(volume.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a good match: no "matches poorly" warning
        found = register_rigid([volume, turned])[1]
    assert np.abs(found[:, :3] @ (arms + centre[:, None]) + found[:, 3:] - points).max() < 0.01


def test_a_wrong_fit_that_explains_half_a_volume_is_not_taken():
    """A 149-degree turn (one of 60 turns drawn uniformly): the fit from no turn
    went wrong (90 voxels off) but left only 0.488 of the frame's variation,
    under the half that had sent register_rigid to the cube's turns; right fits
    leave the frames' noise (0.00 here, 0.02 at noise 0.03) and wrong ones had
    left 0.49-1.5, so a tenth beyond the noise is now the bar."""
    from scipy.spatial.transform import Rotation

    volume = dk.blur(dk.cell_phantom((48, 64, 64), seed=0), dk.psf.gaussian(1.0, ndim=3))
    centre = (np.array(volume.shape) - 1) / 2
    arms = np.indices(volume.shape).reshape(3, -1) - centre[:, None]
    turn = Rotation.from_rotvec(np.radians(149.05) * np.array([-0.7079, 0.6415, 0.2956])
                                / np.linalg.norm([-0.7079, 0.6415, 0.2956])).as_matrix()
    points = turn @ arms + (centre + np.array([-1.74, 1.71, -1.72]))[:, None]
    turned = ndi.map_coordinates(volume, points, order=3).reshape(volume.shape)
    found = register_rigid([volume, turned])[1]
    assert np.abs(found[:, :3] @ (arms + centre[:, None]) + found[:, 3:] - points).max() < 0.01


def test_noise_alone_does_not_send_a_volume_to_the_cube_turns(monkeypatch):
    """The bar is a tenth of the variation beyond what both frames' noise
    leaves (their wavelet noise estimates, smoothed as the fit sees them): at
    noise 0.3 a right fit leaves 0.37 of this phantom's variation (0.40
    estimated), which a bar on the share alone takes for a wrong fit (each
    cube search 3-20 s; a wrong fit is tens of voxels off)."""
    from deconvkit.restoration import super_resolution

    def refuse(*args):
        raise AssertionError("the cube's turns were tried for a right fit")

    monkeypatch.setattr(super_resolution, "_cube_start", refuse)
    volume, turned, points = _slightly_turned_volume()
    rng = np.random.default_rng(0)
    noisy = [v + rng.normal(0, 0.3, v.shape) for v in (volume, turned)]
    found = register_rigid(noisy)[1]
    grid = np.indices(volume.shape).reshape(3, -1)
    assert np.abs(found[:, :3] @ grid + found[:, 3:] - points).max() < 1.0


def _slightly_turned_volume():
    """A 32 x 48 x 48 cell phantom, a copy turned by about 9 degrees and shifted,
    and the points of the first that the copy's voxels see."""
    from scipy.spatial.transform import Rotation

    volume = dk.blur(dk.cell_phantom((32, 48, 48), seed=2), dk.psf.gaussian(1.0, ndim=3))
    centre = (np.array(volume.shape) - 1) / 2
    arms = np.indices(volume.shape).reshape(3, -1) - centre[:, None]
    turn = Rotation.from_rotvec(np.radians([6.0, -4.0, 5.0])).as_matrix()
    points = turn @ arms + (centre + np.array([0.6, -0.4, 0.9]))[:, None]
    return volume, ndi.map_coordinates(volume, points, order=3).reshape(volume.shape), points


def test_a_volume_that_changed_between_frames_is_said_so():
    """A block brightened in the second volume (no rigid motion explains it):
    the best fit, 1.3 voxels off, leaves 38 % of the variation beyond the
    noise, which the half-the-variation warning let pass; volumes are now
    warned at the cube's bar (a tenth beyond the frames' noise)."""
    volume, changed, _ = _slightly_turned_volume()
    changed[10:22, 16:32, 16:32] += 0.5
    with pytest.warns(UserWarning, match=r"frame 1 matches the first poorly once registered "
                                         r"\(the fit leaves 3\d% of its variation beyond"):
        register_rigid([volume, changed])


def test_frames_that_do_not_match_are_said_so():
    """A stack of two volumes' planes taken for a burst (its PSF 2-D): Gauss-Newton
    moved planes far from the first off it, to shifts of 1e13 pixels, and the
    fine domain then failed in numpy ("array is too big"); unrelated frames
    came back as turns of 45 degrees without a word; a constant frame passed
    skimage's warnings through."""
    from deconvkit.restoration import register_rigid

    volume = dk.blur(dk.cell_phantom((24, 40, 40), seed=0), dk.psf.gaussian(1.0, ndim=3))
    rng = np.random.default_rng(0)
    with pytest.warns(UserWarning, match="frame 1 matches the first poorly once registered"):
        register_rigid([volume[12], rng.random((40, 40))])
    with pytest.raises(ValueError, match="frame 1 is constant"):
        register_rigid([volume[12], np.zeros((40, 40))])
    from scipy.spatial.transform import Rotation

    turn = Rotation.from_rotvec(np.radians([2.0, -1.0, 1.5])).as_matrix()
    centre = (np.array(volume.shape)[:, None] - 1) / 2
    grid = np.indices(volume.shape, dtype=float).reshape(3, -1)
    turned = ndi.map_coordinates(volume, turn @ (grid - centre) + centre + 0.5,
                                 order=3).reshape(volume.shape)
    with pytest.raises(ValueError, match=r"frame \d+ could not be registered to the first: "
                                         "every fit moved it off"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the planes before it match poorly too
            register_rigid(list(volume) + list(turned))
    same = volume[12] + rng.normal(0, 0.003, (40, 40))
    assert np.abs(register_rigid([volume[12], same])[1] - np.eye(2, 3)).max() < 0.05


def test_large_frames_are_registered_on_a_subgrid():
    """Over 2**18 pixels the fit takes every k-th pixel (here every 2nd)."""
    from skimage import data

    scene = data.camera() / 255.0
    turn = np.radians(0.7)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    grid = np.indices((600, 600)).reshape(2, -1).astype(float)
    centre, move = np.full((2, 1), 299.5), np.array([[0.4], [-0.9]])
    first = ndi.map_coordinates(scene, grid - 299.5 + 255.5, order=3).reshape(600, 600)
    second = ndi.map_coordinates(scene, rotation @ (grid - centre) - 299.5 + 255.5 + centre
                                 + move, order=3).reshape(600, 600)
    found = register_rigid([first, second])[1]
    true = np.hstack([rotation, centre + move - rotation @ centre])
    corners = np.array([[0, 0, 599, 599], [0, 599, 0, 599]], dtype=float)
    assert np.abs(found[:, :2] @ corners + found[:, 2:]
                  - true[:, :2] @ corners - true[:, 2:]).max() < 0.02


def test_turned_frames_from_the_command_line_and_in_colour(tmp_path, capsys):
    from deconvkit import io
    from deconvkit.cli import main

    motions = [(0, 0, 0), (2.0, 0.5, 0.0), (-1.5, 0.0, 0.5)]
    frames, maps, _, blur = _turned_frames(2, motions)
    names = []
    for k, frame in enumerate(frames):
        names.append(str(tmp_path / f"f{k}.tif"))
        io.write(names[-1], frame.astype(np.float32))
    np.savetxt(tmp_path / "maps.txt", maps.reshape(3, 6))  # a row of 2 x 3 per frame
    run = ["super-resolve", *names, "--psf", "gaussian:1", "--scale", "2", "--noise-sigma",
           "0.005"]
    assert main([*run, "--shifts", str(tmp_path / "maps.txt"), "-o",
                 str(tmp_path / "given.tif")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "turns and shifts (of the centre) +2.00 deg, +0.50, +0.00; -1.50 deg," in out
    expected = dk.super_resolve([f.astype(np.float32) for f in frames], blur, 2, shifts=maps,
                                noise_sigma=0.005)
    np.testing.assert_allclose(io.read(tmp_path / "given.tif"), expected, rtol=1e-5,
                               atol=1e-6)
    assert main([*run, "--motion", "rigid", "-o", str(tmp_path / "found.tif")]) == 0
    assert "+2.00 deg, +0.50, +0.00" in " ".join(capsys.readouterr().out.split())
    # colour frames share one set of maps, registered on the channels' mean
    rgb = [np.stack([f, 0.8 * f, 0.5 * f], axis=-1) for f in frames]
    restored, infos = dk.super_resolve(rgb, blur, 2, motion="rigid", channel_axis=-1,
                                       noise_sigma=0.005, return_info=True)
    assert restored.shape == (120, 120, 3)
    assert infos[0].parameters["maps"] == infos[2].parameters["maps"]
    np.testing.assert_allclose(restored[..., 1], dk.super_resolve(
        [f[..., 1] for f in rgb], blur, 2, shifts=infos[0].parameters["maps"],
        noise_sigma=0.005), rtol=1e-6, atol=1e-9)


def _rays(frames, count, seed):
    """Cosmic rays added to each frame, and where they hit."""
    rays = [dk.cosmic_rays(f.shape, count, seed=seed + k) for k, f in enumerate(frames)]
    return [f + r for f, r in zip(frames, rays)], [r > 0 for r in rays]


def test_cosmic_rays_are_rejected():
    """Measured (cell phantom, x2, four 59-pixel frames, 12 tracks a frame):
    25.21 dB clean, 17.37 with the rays fitted, 25.22 with reject=5 (all 22,
    20, 22 and 25 samples hit left out, and no others); nothing left out of the
    clean frames, nor of a star field's under-fitted cores.  A block of one
    frame dimmed to a fifth: 23.98 dB fitted, 25.13 with reject=5 (45 of its
    64 samples found; 25 with each frame's own residual and local level and
    half the fit's steps tolerated, none when only excesses counted)."""
    scene = dk.cell_phantom((120, 120), seed=0)
    offsets = [(0, 0), (1, 0), (0, 1), (1, 1)]
    frames, truth = _frames(scene, dk.psf.gaussian(1.0), 2, offsets)
    hit, where = _rays(frames, 12, seed=3)
    blur, known = dk.psf.gaussian(1.0), [(i / 2, j / 2) for i, j in offsets]

    def score(estimate):
        return dk.metrics.psnr(truth[4:-4, 4:-4], estimate[4:-4, 4:-4], data_range=1.0)

    clean, info = dk.super_resolve(frames, blur, 2, shifts=known, reject=5, return_info=True)
    assert info.parameters["rejected"] == [0, 0, 0, 0]
    fitted = dk.super_resolve(hit, blur, 2, shifts=known)
    cleaned, info = dk.super_resolve(hit, blur, 2, shifts=known, reject=5, return_info=True)
    assert score(cleaned) > score(clean) - 0.5 and score(fitted) < score(clean) - 6
    assert all(0.9 * m.sum() <= n <= 1.2 * m.sum()
               for n, m in zip(info.parameters["rejected"], where))
    # a passing object darkens part of one frame: its samples are deficits
    smooth = ndi.uniform_filter(frames[2], 8)[8:-8, 8:-8]
    y, x = np.add(np.unravel_index(smooth.argmax(), smooth.shape), 8)
    dimmed = [f.copy() for f in frames]
    dimmed[2][y - 4:y + 4, x - 4:x + 4] *= 0.2
    fitted = dk.super_resolve(dimmed, blur, 2, shifts=known)
    cleaned, info = dk.super_resolve(dimmed, blur, 2, shifts=known, reject=5, return_info=True)
    assert info.parameters["rejected"][2] >= 36 and sum(info.parameters["rejected"]) < 64
    assert score(cleaned) > score(fitted) + 0.9
    # stars whose cores the TV fit leaves too faint are no rays (Poisson counts)
    rng = np.random.default_rng(0)
    sky = np.full((120, 120), 5.0)
    sky[tuple(rng.integers(10, 110, (2, 25)))] += rng.uniform(200, 20000, 25)
    optics = dk.psf.moffat(2.0, beta=3.0)
    stars = [rng.poisson(f).astype(float) for f in _frames(sky, optics, 2, offsets, sigma=0)[0]]
    _, info = dk.super_resolve(stars, optics, 2, shifts=known, reject=5, return_info=True)
    assert info.parameters["rejected"] == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="reject must be a number > 0"):
        dk.super_resolve(frames, blur, 2, reject=0)


@pytest.mark.parametrize("brightness", [0.3, -0.3])
def test_a_wide_trail_in_one_frame_is_left_out(brightness):
    """A satellite trail (or a passing shadow) 5 frame pixels wide across one of
    four frames: each frame's residual is taken less the frames' consensus (the
    fit that partly holds the trail leaves residuals along it in all of them),
    and its local level is the frames' median (the trail raised its own).  With
    each frame's own residual and level, 7 of the 342 hit samples had been
    found (23.05 dB fitted, 23.05 with reject=5); with the consensus and half
    the fit's steps tolerated, 301 (23.66: those on the cells' edges stayed);
    with a quarter, 341 and 342 (24.60 and 24.58; 24.59 clean).  x2 camera,
    9-pixel trail, one-off script: 28.42 dB fitted, 31.15 now, 31.20 clean."""
    scene = dk.cell_phantom((120, 120), seed=1)
    offsets = [(0, 0), (1, 0), (0, 1), (1, 1)]
    frames, truth = _frames(scene, dk.psf.gaussian(1.0), 2, offsets)
    rows, cols = np.indices(frames[1].shape)
    trail = np.abs(rows - 0.6 * cols - 12) / np.hypot(1, 0.6) < 2.5
    crossed = [f.copy() for f in frames]
    crossed[1] += brightness * trail
    blur, known = dk.psf.gaussian(1.0), [(i / 2, j / 2) for i, j in offsets]

    def score(estimate):
        return dk.metrics.psnr(truth[4:-4, 4:-4], estimate[4:-4, 4:-4], data_range=1.0)

    cleaned, info = dk.super_resolve(crossed, blur, 2, shifts=known, reject=5, return_info=True)
    left_out = info.parameters["rejected"]
    assert left_out[1] >= 0.97 * trail.sum() and left_out[0] + left_out[2] + left_out[3] == 0
    clean = dk.super_resolve(frames, blur, 2, shifts=known)
    assert score(cleaned) > score(clean) - 0.1


def test_a_ray_across_a_raw_burst_is_left_out_of_its_colours_only():
    """Four raw frames one pixel apart see each point in red or blue once: there
    is no consensus of three frames, and each colour keeps its own residual and
    level (with a consensus taken anyway, from one colour sample and three
    missing ones, 5 samples with no ray were left out besides the 6 hit)."""
    from skimage import data

    rng = np.random.default_rng(0)
    scene = data.astronaut()[96:270, 96:270] / 255.0
    frames = []
    for dy, dx in [(0, 0), (1, 0), (0, 1), (1, 1)]:
        shifted = scene[4 + dy:164 + dy, 4 + dx:164 + dx]
        raw = np.empty(shifted.shape[:2])
        raw[0::2, 0::2], raw[1::2, 1::2] = shifted[0::2, 0::2, 0], shifted[1::2, 1::2, 2]
        raw[0::2, 1::2], raw[1::2, 0::2] = shifted[0::2, 1::2, 1], shifted[1::2, 0::2, 1]
        frames.append(raw + rng.normal(0, 0.003, raw.shape))
    frames[1][50, 40:46] += 0.8  # 3 red and 3 green samples
    _, infos = dk.super_resolve(frames, dk.psf.gaussian(0.7), 1, bayer="RGGB",
                                shifts=[(0, 0), (1, 0), (0, 1), (1, 1)], reject=5,
                                return_info=True)
    red, green, blue = (info.parameters["rejected"] for info in infos)
    assert red[1] == 3 and green[1] == 3
    assert sum(red) + sum(green) + sum(blue) - 6 <= 2


def test_command_line(tmp_path, capsys):
    from deconvkit import io
    from deconvkit.cli import main

    scene = dk.cell_phantom((120, 120), seed=0)
    offsets = [(0, 0), (1, 0), (0, 1), (1, 1)]
    frames, truth = _frames(scene, dk.psf.gaussian(1.0), 2, offsets)
    names = []
    for k, frame in enumerate(frames):
        names.append(str(tmp_path / f"f{k}.tif"))
        io.write(names[-1], frame.astype(np.float32))
    np.savetxt(tmp_path / "shifts.csv", [(i / 2, j / 2) for i, j in offsets], delimiter=",")
    run = ["super-resolve", *names, "--psf", "gaussian:1", "--scale", "2", "--noise-sigma",
           "0.005"]
    assert main([*run, "--shifts", str(tmp_path / "shifts.csv"), "-o",
                 str(tmp_path / "fine.tif")]) == 0
    assert "4 frame(s) (59, 59) -> (118, 118) (x2); shifts +0.50, +0.00;" in \
        " ".join(capsys.readouterr().out.split())
    expected = dk.super_resolve([f.astype(np.float32) for f in frames], dk.psf.gaussian(1.0), 2,
                                shifts=[(i / 2, j / 2) for i, j in offsets], noise_sigma=0.005)
    np.testing.assert_allclose(io.read(tmp_path / "fine.tif"), expected, rtol=1e-5, atol=1e-6)
    # one file holding the frames stacked on its first axis (a cube, a burst)
    io.write(tmp_path / "stack.tif", np.stack(frames).astype(np.float32))
    assert main(["super-resolve", str(tmp_path / "stack.tif"), "--psf", "gaussian:1",
                 "--scale", "2", "--noise-sigma", "0.005", "--shifts",
                 str(tmp_path / "shifts.csv"), "-q", "-o", str(tmp_path / "stacked.tif")]) == 0
    np.testing.assert_array_equal(io.read(tmp_path / "stacked.tif"),
                                  io.read(tmp_path / "fine.tif"))
    io.write(tmp_path / "4d.tif", np.stack([np.stack(frames)] * 2).astype(np.float32))
    assert main(["super-resolve", str(tmp_path / "4d.tif"), "--psf", "gaussian:1",
                 "--scale", "2", "-o", str(tmp_path / "x.tif")]) == 2
    assert "4 spatial axes for a 2-D PSF; give frames of 2 axes" in capsys.readouterr().err
    assert main([*run, "-o", str(tmp_path / "auto.tif")]) == 0  # registered
    assert main([*run, "--tv-weight", "none", "-q", "-o", str(tmp_path / "rl.tif")]) == 0
    np.testing.assert_allclose(io.read(tmp_path / "rl.tif"), dk.super_resolve(
        [f.astype(np.float32) for f in frames], dk.psf.gaussian(1.0), 2, tv_weight=None,
        noise_sigma=0.005), rtol=1e-5, atol=1e-6)
    # a sky under the frames, named: modelled as the library does
    skies = [str(tmp_path / f"s{k}.tif") for k in range(4)]
    for name, frame in zip(skies, frames):
        io.write(name, (frame + 0.5).astype(np.float32))
    sky = ["super-resolve", *skies, "--psf", "gaussian:1", "--scale", "2", "--noise-sigma",
           "0.005", "--shifts", str(tmp_path / "shifts.csv"), "-q", "-o"]
    assert main([*sky, str(tmp_path / "sky.tif"), "--background", "0.5"]) == 0
    assert main([*sky, str(tmp_path / "object.tif")]) == 0
    np.testing.assert_allclose(io.read(tmp_path / "sky.tif"), dk.super_resolve(
        [io.read(name) for name in skies], dk.psf.gaussian(1.0), 2, background=0.5,
        shifts=[(i / 2, j / 2) for i, j in offsets], noise_sigma=0.005), rtol=1e-5, atol=1e-6)
    assert not np.allclose(io.read(tmp_path / "object.tif"), io.read(tmp_path / "sky.tif"))
    hit = [str(tmp_path / f"h{k}.tif") for k in range(4)]
    rays, where = _rays(frames, 10, seed=1)
    for name, frame in zip(hit, rays):
        io.write(name, frame.astype(np.float32))
    assert main(["super-resolve", *hit, "--psf", "gaussian:1", "--scale", "2", "--reject",
                 "5", "-o", str(tmp_path / "rays.tif")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    counts = [int(n) for n in out.split("rejected ")[1].split(" sample(s)")[0].split(", ")]
    assert all(0.8 * m.sum() <= n <= 1.2 * m.sum() for n, m in zip(counts, where))
    assert main([*run, "--shifts", "nofile", "-o", str(tmp_path / "x.tif")]) == 2
    assert "neither auto nor a file" in capsys.readouterr().err


def test_colour_photos_share_their_shifts(tmp_path, capsys):
    """RGB frames: one set of shifts for every channel (registered on their
    mean), each channel restored on its own; PNG frames in linear light."""
    from skimage import data

    from deconvkit import io
    from deconvkit.cli import main

    light = io.srgb_to_linear(data.astronaut()[100:222, 100:222] / 255.0)
    blur = dk.psf.gaussian(1.0)
    sharp = np.stack([dk.blur(light[..., c], blur) for c in range(3)], axis=-1)
    offsets = [(0, 0), (1, 0), (0, 1), (1, 1)]
    frames = [sharp[i:i + 120, j:j + 120].reshape(60, 2, 60, 2, 3).mean(axis=(1, 3))
              for i, j in offsets]
    restored, infos = dk.super_resolve(frames, blur, 2, channel_axis=-1, return_info=True)
    assert restored.shape == (120, 120, 3) and len(infos) == 3
    assert infos[0].parameters["shifts"] == infos[2].parameters["shifts"]
    np.testing.assert_allclose(infos[0].parameters["shifts"],
                               [(i / 2, j / 2) for i, j in offsets], atol=0.06)
    green = dk.super_resolve([f[..., 1] for f in frames], blur, 2,
                             shifts=infos[0].parameters["shifts"])
    np.testing.assert_allclose(restored[..., 1], green, rtol=1e-6, atol=1e-9)
    names = []
    for k, frame in enumerate(frames):
        names.append(str(tmp_path / f"f{k}.png"))
        io.write(names[-1], np.round(io.linear_to_srgb(frame) * 255).astype(np.uint8))
    assert main(["super-resolve", *names, "--psf", "gaussian:1", "--scale", "2", "-q",
                 "-o", str(tmp_path / "fine.png")]) == 0
    fine = io.read(tmp_path / "fine.png")
    assert fine.shape == (120, 120, 3) and fine.dtype == np.uint8
    # a stack of colour frames in one file: frames on the first axis, colour last
    io.write(tmp_path / "burst.tif", np.stack(frames).astype(np.float32))
    assert main(["super-resolve", str(tmp_path / "burst.tif"), "--psf", "gaussian:1",
                 "--scale", "2", "-q", "-o", str(tmp_path / "burst_fine.tif")]) == 0
    np.testing.assert_allclose(io.read(tmp_path / "burst_fine.tif"), dk.super_resolve(
        [f.astype(np.float32) for f in frames], blur, 2, channel_axis=-1), rtol=1e-5,
        atol=1e-6)
    shown = np.round(io.linear_to_srgb(light[:120, :120]) * 255)
    bicubic = np.clip(transform.resize(io.read(names[0]).astype(float), (120, 120, 3),
                                       order=3), 0, 255)
    assert dk.metrics.psnr(shown, fine, data_range=255) > dk.metrics.psnr(
        shown, bicubic, data_range=255) + 1.0
