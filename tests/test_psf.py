import numpy as np
import pytest
import scipy.ndimage as ndi

from deconvkit import deconvolve, metrics, psf, simulate

GENERATED = {
    "gaussian-2d": lambda: psf.gaussian(2.0),
    "gaussian-aniso-3d": lambda: psf.gaussian((1.0, 2.0, 1.5)),
    "gaussian-1d": lambda: psf.gaussian(3.0, ndim=1),
    "disk": lambda: psf.disk(4.5),
    "ball": lambda: psf.disk(3.0, ndim=3),
    "motion": lambda: psf.motion(15, 30),
    "shake": lambda: psf.camera_shake(21, seed=3),
    "airy": lambda: psf.airy(3.0),
    "widefield": lambda: psf.widefield((17, 33, 33)),
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_every_psf_sums_to_one_and_is_non_negative(name):
    kernel = GENERATED[name]()
    assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
    assert kernel.min() >= 0
    assert all(n % 2 == 1 for n in kernel.shape)


@pytest.mark.parametrize("name", ["gaussian-2d", "gaussian-aniso-3d", "disk", "ball", "airy",
                                  "widefield", "motion"])
def test_symmetric_psfs_peak_and_centroid_on_the_centre(name):
    kernel = GENERATED[name]()
    centre = tuple(n // 2 for n in kernel.shape)
    grids = np.indices(kernel.shape)
    centroid = [float((g * kernel).sum()) for g in grids]
    np.testing.assert_allclose(centroid, centre, atol=1e-6)
    if name not in ("motion", "disk", "ball"):  # flat tops have no single peak
        assert np.unravel_index(kernel.argmax(), kernel.shape) == centre


def test_gaussian_width():
    g = psf.gaussian(3.0, ndim=1, shape=(61,))
    t = np.arange(61) - 30
    # pixel integration adds 1/12 to the variance
    assert (g * t**2).sum() == pytest.approx(9 + 1 / 12, rel=1e-6)


def test_motion_length_and_angle():
    horizontal = psf.motion(10, 0)
    rows = np.nonzero(horizontal.sum(axis=1) > 1e-9)[0]
    assert len(rows) == 1  # a one-row line
    diagonal = psf.motion(10, 45)
    # the 45-degree line runs from bottom-left to top-right: mass on the anti-diagonal
    anti = sum(diagonal[i, diagonal.shape[0] - 1 - i] for i in range(diagonal.shape[0]))
    c = diagonal.shape[0] // 2
    main_off_centre = np.trace(diagonal) - diagonal[c, c]
    assert anti > 0.5 and main_off_centre < 0.02


def test_camera_shake_is_seeded():
    np.testing.assert_array_equal(psf.camera_shake(17, seed=5), psf.camera_shake(17, seed=5))
    assert not np.array_equal(psf.camera_shake(17, seed=5), psf.camera_shake(17, seed=6))


def test_airy_first_ring_is_dark():
    kernel = psf.airy(6.0, oversample=1, shape=(61, 61))
    c = 30
    assert kernel[c, c + 6] < 1e-3 * kernel[c, c]


@pytest.mark.parametrize("beta", [2.5, 4.765])
def test_moffat_has_its_width_and_wings(beta):
    """The stated FWHM (measured on the central row, between the half-maximum
    crossings), the power-law wings a Gaussian of that width lacks, an
    ellipse along the axes, the spec, and Gaussian in the limit."""
    star = psf.moffat(12.0, beta=beta, oversample=9)
    c = star.shape[0] // 2
    row = star[c] / star[c, c]
    above = np.nonzero(row >= 0.5)[0]
    left, right = above[0], above[-1]  # the crossings by linear interpolation
    width = (right + (row[right] - 0.5) / (row[right] - row[right + 1])) - (
        left - (row[left] - 0.5) / (row[left] - row[left - 1]))
    assert width == pytest.approx(12.0, abs=0.1)
    gaussian = psf.gaussian(12.0 / 2.3548, shape=star.shape)
    assert star[c, c + 24] > 5 * gaussian[c, c + 24]  # 2 FWHM out
    ellipse = psf.moffat((4.0, 8.0), beta=beta)
    assert ellipse.shape[1] > ellipse.shape[0]
    np.testing.assert_array_equal(psf.from_spec(f"moffat:4x8,beta={beta}"), ellipse)
    np.testing.assert_allclose(psf.moffat(6.0, beta=1e4, shape=(21, 21)),
                               psf.gaussian(6.0 / 2.3548, shape=(21, 21)), atol=2e-4)
    with pytest.raises(ValueError, match="beta must be a number > 1"):
        psf.moffat(3.0, beta=1.0)


def test_widefield_axial_zero_matches_theory():
    # paraxial Born–Wolf: first axial zero at z = 2 λ n / NA²
    lam, na, n = 0.5, 1.0, 1.33
    z0 = 2 * lam * n / na**2
    kernel = psf.widefield((41, 9, 9), wavelength=lam, na=na, n_immersion=n, pixel_size=0.05,
                           z_step=z0 / 10, oversample=1)
    axial = kernel[:, 4, 4]
    assert axial[20 + 10] < 1e-3 * axial[20]
    assert axial[20 + 5] > 0.2 * axial[20]


def _fwhm(profile, step):
    """Full width at half maximum of a peaked profile, by linear interpolation."""
    p = profile / profile.max()
    peak = int(np.argmax(p))

    def crossing(side):
        j = peak
        while 0 < j < len(p) - 1 and p[j] >= 0.5:
            j += side
        a, b = p[j - side], p[j]
        return j - side + side * (a - 0.5) / (a - b)

    return (crossing(1) - crossing(-1)) * step


FINE = dict(pixel_size=0.02, z_step=0.05)


def test_confocal_narrows_and_sections():
    shape = (41, 61, 61)
    wide = psf.widefield(shape, wavelength=0.52, **FINE)
    point = psf.confocal(shape, pinhole=0, **FINE)
    usual = psf.confocal(shape, pinhole=1.0, **FINE)
    # an ideal pinhole: the product of the two widefield PSFs
    np.testing.assert_allclose(point, psf.normalize(
        psf.widefield(shape, wavelength=0.488, **FINE) * wide), atol=1e-12)
    width = {name: _fwhm(h[20, 30], 0.02) for name, h in
             (("wide", wide), ("point", point), ("usual", usual))}
    assert width["wide"] == pytest.approx(0.51 * 0.52 / 1.4, rel=0.03)  # 0.19 µm
    # the sqrt(2) of a vanishing pinhole (excitation a little bluer: a little more)
    assert 1.35 < width["wide"] / width["point"] < 1.5
    assert width["point"] < width["usual"] < width["wide"]  # 1 AU: close to widefield
    # optical sectioning: the plane 0.5 µm off focus holds a fraction of the focal
    # plane's light (measured 0.29), where each widefield plane holds the same (a 4 µm
    # wide window holds the defocused disk)
    coarse = dict(pixel_size=0.05, z_step=0.025)
    for model, most, least in ((psf.widefield, 1.01, 0.95), (psf.confocal, 0.4, 0.1)):
        planes = model((41, 81, 81), **coarse).sum(axis=(1, 2))
        assert least * planes[20] < planes[40] < most * planes[20], model.__name__
    with pytest.raises(ValueError, match="pinhole must be a diameter >= 0"):
        psf.confocal(shape, pinhole=-1)
    with pytest.raises(ValueError, match="excitation must be a wavelength > 0"):
        psf.confocal(shape, excitation=0)
    with pytest.raises(ValueError, match=r"shape must be \(nz, ny, nx\)"):
        psf.confocal((5, 5))


def test_two_photon_and_light_sheet():
    shape = (41, 41, 41)
    excited = psf.widefield(shape, wavelength=0.9, na=1.0, n_immersion=1.33, **FINE)
    np.testing.assert_allclose(psf.two_photon(shape, **FINE), psf.normalize(excited**2),
                               atol=1e-12)
    # non-paraxial (matched water): Zipfel et al. 2003's fit gives 0.34 µm lateral
    deep = psf.two_photon((81, 41, 41), model="gibson_lanni", n_sample=1.33, coverslip=0,
                          **FINE)
    assert _fwhm(deep[40, 20], 0.02) == pytest.approx(0.34, rel=0.05)
    assert _fwhm(deep[:, 20, 20], 0.05) == pytest.approx(1.245, rel=0.05)
    detection = psf.widefield(shape, na=1.1, n_immersion=1.33, **FINE)
    sheet = psf.light_sheet(shape, sheet=0.5, **FINE)
    z = (np.arange(41) - 20) * 0.05
    np.testing.assert_allclose(sheet, psf.normalize(
        detection * np.exp(-4 * np.log(2) * (z / 0.5) ** 2)[:, None, None]), atol=1e-12)
    assert _fwhm(sheet[:, 20, 20], 0.05) < _fwhm(detection[:, 20, 20], 0.05)
    with pytest.raises(ValueError, match="excitation must be a wavelength > 0"):
        psf.two_photon(shape, excitation=-0.9)
    with pytest.raises(ValueError, match=r"sheet must be positive \(its FWHM in µm\)"):
        psf.light_sheet(shape, sheet=0)


def test_microscope_specs_say_their_voxel_size():
    for name in ("confocal", "two_photon", "light_sheet"):
        spec = f"{name}:shape=9x17x17,pixel_size=0.05,z_step=0.1"
        assert psf.from_spec(spec).shape == (9, 17, 17)
        assert psf.spec_spacing(spec) == (0.1, 0.05, 0.05)
    np.testing.assert_array_equal(psf.from_spec("confocal:shape=9x17x17,pinhole=0.5"),
                                  psf.confocal((9, 17, 17), pinhole=0.5))


def test_utilities():
    g = psf.gaussian(1.0)
    padded = psf.crop_or_pad(g, (15, 15))
    assert padded.shape == (15, 15) and padded[7, 7] == pytest.approx(g.max())
    assert psf.crop_or_pad(g, (4, 4)).sum() == pytest.approx(1)
    shifted = np.roll(psf.gaussian(1.0, shape=(15, 15)), (3, -2), axis=(0, 1))
    assert np.unravel_index(psf.center(shifted).argmax(), (15, 15)) == (7, 7)
    coarse = psf.resample(psf.gaussian(4.0), 1.0, 2.0)
    t = np.arange(coarse.shape[0]) - coarse.shape[0] // 2
    width = np.sqrt((coarse.sum(axis=1) * t**2).sum())
    assert width == pytest.approx(2.0, rel=0.1)  # sigma 4 px at 1 -> about 2 px at 2
    assert psf.normalize([1.0, 3.0]).tolist() == [0.25, 0.75]


def test_from_spec():
    assert psf.from_spec("gaussian:sigma=1x2").shape == (9, 17)
    assert psf.from_spec("widefield:shape=9x17x17,na=1.2").shape == (9, 17, 17)
    with pytest.raises(ValueError, match="unknown psf 'blob'"):
        psf.from_spec("blob:size=3")
    with pytest.raises(ValueError, match="not a number"):
        psf.from_spec("gaussian:sigma=abc")
    with pytest.raises(ValueError, match="unexpected keyword"):
        psf.from_spec("gaussian:radius=2")


def test_from_spec_positional_values():
    """Leading values fill the generator's parameters in order, as its call would."""
    np.testing.assert_array_equal(psf.from_spec("gaussian:2"), psf.gaussian(2))
    np.testing.assert_array_equal(psf.from_spec("motion:9,30"), psf.motion(9, 30))
    np.testing.assert_array_equal(psf.from_spec("widefield:9x17x17,na=1.2"),
                                  psf.widefield((9, 17, 17), na=1.2))
    for spec, message in (("gaussian:sigma=2,3", "follows a key=value item"),
                          ("motion:9,30,4", r"takes 2 value\(s\) by position \(length, angle\)"),
                          ("gaussian:2,sigma=3", "sigma is given twice"),
                          ("disk:radius=2,radius=3", "radius is given twice")):
        with pytest.raises(ValueError, match=message):
            psf.from_spec(spec)


def test_psf_errors():
    with pytest.raises(ValueError, match="sigma"):
        psf.gaussian(-1.0)
    with pytest.raises(ValueError, match="na=1.6 must be smaller"):
        psf.widefield((5, 5, 5), na=1.6)
    with pytest.raises(ValueError, match="positive sum"):
        psf.normalize(np.zeros(3))
    # a MemoryError deep in numpy, or a shape taken as given, before
    with pytest.raises(ValueError, match=r"shape \(8000001, 8000001\) is too large"):
        psf.gaussian(1e6)
    with pytest.raises(ValueError, match="sampled 8x finer is too large.*oversample="):
        psf.disk(1000)
    with pytest.raises(ValueError, match=r"shape must be 2 positive ints, got \(-3, 3\)"):
        psf.gaussian(1.0, shape=(-3, 3))
    with pytest.raises(TypeError, match="shape must be a tuple of 2 ints"):
        psf.moffat(3.0, shape=(3.5, 3))
    with pytest.raises(TypeError, match="sigma must be a number or a sequence"):
        psf.gaussian("wide")
    # a spacing per axis of the wrong count failed inside numpy's broadcasting
    for spacing in ((0.2, 0.1), (0.0, 0.1, 0.1), "fine"):
        with pytest.raises(ValueError, match="spacing must be a positive number or 3"):
            psf.resample(np.ones((3, 3, 3)), spacing, 0.1)


@pytest.mark.parametrize("kernel", [psf.gaussian(2.0), psf.airy(3.0),
                                    psf.widefield((9, 33, 33), pixel_size=0.1, z_step=0.3)])
def test_radial_average_keeps_a_symmetric_psf(kernel):
    averaged = psf.radial_average(kernel)
    assert averaged.shape == kernel.shape and np.isclose(averaged.sum(), 1.0)
    assert np.abs(averaged - kernel).max() < 0.02 * kernel.max()


def test_radial_average_of_one_dim_is_the_mean_with_the_mirror():
    trace = np.array([0.0, 1.0, 2.0, 4.0, 1.0])
    np.testing.assert_allclose(psf.radial_average(trace), np.array([0.5, 2.5, 2, 2.5, 0.5]) / 8)


def _bead(rng, offset=(0.3, -0.4), size=31, sigma=2.0, peak=200.0, background=20.0,
          noise=4.0):
    """A star or bead imaged off-centre, on a background, with noise."""
    rows, cols = np.indices((size, size), dtype=np.float64) - size // 2
    spot = np.exp(-((rows - offset[0]) ** 2 + (cols - offset[1]) ** 2) / (2 * sigma**2))
    return peak * spot + background + rng.normal(0, noise, spot.shape)


def test_from_measurement_removes_background_offset_and_noise():
    rng = np.random.default_rng(0)
    measured = _bead(rng)
    truth = psf.gaussian(2.0, shape=measured.shape)

    def error(kernel):
        return np.linalg.norm(kernel - truth) / np.linalg.norm(truth)

    cleaned = psf.from_measurement(measured)
    assert cleaned.min() >= 0 and np.isclose(cleaned.sum(), 1.0)
    centroid = [float((g * cleaned).sum()) for g in np.indices(cleaned.shape)]
    np.testing.assert_allclose(centroid, [15.0, 15.0], atol=0.05)
    # with its background, the measurement is far off; the true background
    # subtracted but not centred or averaged, still 3x farther than cleaned
    assert error(psf.normalize(measured)) > 5 * error(cleaned)
    assert error(psf.normalize(np.clip(measured - 20.0, 0, None))) > 3 * error(cleaned)
    assert error(psf.from_measurement(measured, radial=False)) > 2 * error(cleaned)


def test_from_measurement_restores_as_well_as_the_true_psf():
    rng = np.random.default_rng(1)
    measured = _bead(rng)
    scene = np.pad(np.kron(rng.random((12, 12)), np.ones((8, 8))), 8)
    observed = simulate(scene, psf.gaussian(2.0, shape=measured.shape), noise="gaussian",
                        sigma=0.01, seed=0, boundary="valid")
    truth = scene[15:-15, 15:-15]

    def score(kernel):
        return metrics.psnr(truth, deconvolve(observed, kernel), data_range=1.0)

    true, raw, cleaned = (score(k) for k in (psf.gaussian(2.0, shape=measured.shape),
                                             psf.normalize(measured),
                                             psf.from_measurement(measured)))
    assert cleaned > raw + 2.0 and cleaned > true - 0.5


def test_from_measurement_errors():
    with pytest.raises(ValueError, match="no point source above its background"):
        psf.from_measurement(np.full((9, 9), 3.0))
    with pytest.raises(ValueError, match="no point source above its background"):
        psf.from_measurement(np.random.default_rng(0).normal(0, 1, (21, 21)))
    with pytest.raises(ValueError, match="background must be 'auto' or a finite number"):
        psf.from_measurement(np.ones((9, 9)), background="median")


def test_gibson_lanni_matched_is_born_wolf_at_low_na_and_symmetric():
    options = dict(na=0.3, n_immersion=1.33, pixel_size=0.2, z_step=0.5)
    born_wolf = psf.widefield((21, 33, 33), **options)
    matched = psf.widefield((21, 33, 33), model="gibson_lanni", n_sample=1.33, **options)
    # the paraxial approximation holds at NA 0.3: measured 0.7 % of the peak
    np.testing.assert_allclose(matched, born_wolf, atol=0.02 * born_wolf.max())
    high = psf.widefield((33, 17, 17), na=1.4, model="gibson_lanni", n_sample=1.518)
    np.testing.assert_allclose(high, high[::-1], atol=1e-6 * high.max())  # no aberration


def test_gibson_lanni_focal_shift_and_asymmetry_into_water_under_oil():
    kernel = psf.widefield((81, 33, 33), na=1.4, n_immersion=1.518, pixel_size=0.1,
                           z_step=0.1, model="gibson_lanni", n_sample=1.33, depth=10.0)
    axial = kernel[:, 16, 16]
    shift = (np.argmax(axial) - 40) * 0.1
    # towards the coverslip, beyond the paraxial 10 (1 - 1.33/1.518) = 1.24 µm (high NA
    # bends the marginal rays more), and well short of the depth itself
    assert -4.0 < shift < -1.24
    peak = np.argmax(axial)
    before, after = axial[peak - 15:peak], axial[peak + 1:peak + 16][::-1]
    assert np.abs(before - after).max() > 0.1 * axial.max()  # spherical aberration
    matched = psf.widefield((81, 33, 33), na=1.4, n_immersion=1.518, pixel_size=0.1,
                            z_step=0.1, model="gibson_lanni", n_sample=1.518, depth=10.0)
    assert np.argmax(matched[:, 16, 16]) == 40 and matched.max() > 2 * kernel.max()


def test_gibson_lanni_spec_and_errors():
    np.testing.assert_array_equal(
        psf.from_spec("widefield:9x17x17,model=gibson_lanni,depth=5,n_sample=1.4"),
        psf.widefield((9, 17, 17), model="gibson_lanni", depth=5, n_sample=1.4))
    with pytest.raises(ValueError, match="model must be 'born_wolf' or 'gibson_lanni'"):
        psf.widefield((5, 9, 9), model="gibson")
    with pytest.raises(ValueError, match="depth must be >= 0"):
        psf.widefield((5, 9, 9), model="gibson_lanni", depth=-1)
    with pytest.raises(ValueError, match="n_sample must be positive"):
        psf.widefield((5, 9, 9), model="gibson_lanni", n_sample=0)


def test_isolated_sources_leave_out_neighbours_and_edges():
    image = np.zeros((60, 60))
    for point in [(30, 30), (10, 10), (10, 14), (2, 40)]:  # alone; a close pair; at an edge
        image[point] = 100.0
    image = ndi.gaussian_filter(image, 1.2) + np.random.default_rng(0).normal(0, 0.01, (60, 60))
    assert psf.isolated_sources(image, 9).tolist() == [[30, 30]]
