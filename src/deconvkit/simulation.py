"""Forward simulation: blur an object and add Gaussian, Poisson or mixed noise."""

from __future__ import annotations

import numpy as np

from ._array_api import asarray, to_numpy
from ._validate import check_array, check_choice, check_psf
from .operators import BOUNDARIES, Convolution, SpaceVariantConvolution

__all__ = ["blur", "cell_phantom", "cosmic_rays", "dead_leaves", "simulate"]

NOISE_MODELS = ("gaussian", "poisson", "mixed", "none")


def blur(image, psf, *, boundary: str = "symmetric"):
    """Convolve ``image`` with ``psf`` under a boundary model (the forward operator ``A``).

    Parameters
    ----------
    image : (N1, ..., Nd) array
        numpy, torch or CuPy; leading axes beyond ``psf.ndim`` are a batch.
    psf : (K1, ..., Kd) array or SpaceVariantConvolution
        Used as given (not renormalised); PSFs on a grid across the field
        (:class:`deconvkit.SpaceVariantConvolution`) blur under ``boundary``.
    boundary : str
        See :class:`deconvkit.Convolution`.  ``"valid"`` returns only the
        samples the PSF fully covers, shape ``N - K + 1``: the realistic way to
        blur a crop of a larger scene.

    Examples
    --------
    >>> import numpy as np
    >>> from deconvkit import blur, psf
    >>> blur(np.ones((16, 16)), psf.gaussian(1.0), boundary="valid").shape
    (8, 8)
    """
    check_choice(boundary, "boundary", BOUNDARIES)
    image = check_array(image, "image")
    if isinstance(psf, SpaceVariantConvolution):
        return SpaceVariantConvolution(asarray(psf.psfs, image), boundary=boundary).forward(image)
    kernel = check_psf(psf, tuple(image.shape))
    return Convolution(asarray(kernel, image), boundary=boundary).forward(image)


def simulate(image, psf, *, noise: str = "gaussian", sigma: float = 0.01,
             photons: float = 300.0, boundary: str = "symmetric", seed=None):
    """Blur ``image`` and add noise: the measurement ``y = Ax + n``.

    Parameters
    ----------
    image, psf, boundary
        As in :func:`blur`.
    noise : {"gaussian", "poisson", "mixed", "none"}
        ``"poisson"`` scales the blurred image so that its peak is ``photons``
        counts, draws Poisson counts and scales back (so the result stays in
        the image's units); ``"mixed"`` adds Gaussian read noise of ``sigma``
        after that.
    sigma : float
        Standard deviation of the Gaussian noise, in image units.
    photons : float
        Expected photon count at the blurred image's peak.
    seed : int or numpy.random.Generator, optional

    Examples
    --------
    >>> import numpy as np
    >>> from deconvkit import simulate, psf
    >>> y = simulate(np.ones((64, 64)), psf.gaussian(1.0), sigma=0.1, seed=0)
    >>> bool(abs(y.std() - 0.1) < 0.01)
    True
    """
    check_choice(noise, "noise", NOISE_MODELS)
    if not sigma >= 0:
        raise ValueError(f"sigma must be >= 0, got {sigma!r}")
    if not photons > 0:
        raise ValueError(f"photons must be > 0, got {photons!r}")
    blurred = blur(image, psf, boundary=boundary)
    if noise == "none":
        return blurred
    rng = np.random.default_rng(seed)
    clean = to_numpy(blurred).astype(np.float64)
    noisy = clean
    if noise in ("poisson", "mixed"):
        peak = clean.max()
        if not peak > 0:
            raise ValueError("poisson noise needs a blurred image with a positive maximum")
        gain = photons / peak
        noisy = rng.poisson(np.clip(clean, 0, None) * gain) / gain
    if noise in ("gaussian", "mixed"):
        noisy = noisy + rng.normal(0.0, sigma, clean.shape)
    return asarray(noisy, blurred)


def cosmic_rays(shape, count: int, *, amplitude=(0.3, 2.0), length=(1, 3),
                seed=None) -> np.ndarray:
    """What ``count`` cosmic rays deposit on a detector of ``shape``, N-D: to add to
    a frame.

    Each ray is a straight track of ``length`` samples (drawn between the two
    bounds; one sample is a hot pixel) along a random direction between
    neighbours, each sample brightened by an amount drawn from ``amplitude``;
    tracks start at least 5 samples from the edges.  ``result > 0`` marks the
    hit samples.

    >>> hits = cosmic_rays((64, 64), 10, seed=0)
    >>> hits.shape, 10 <= int((hits > 0).sum()) <= 30
    ((64, 64), True)
    """
    shape = tuple(int(n) for n in np.atleast_1d(shape))
    if not shape or min(shape) < 11:
        raise ValueError(f"shape must have every side >= 11 samples, got {shape}")
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count must be an int >= 0, got {count!r}")
    rng = np.random.default_rng(seed)
    hits = np.zeros(shape)
    for _ in range(int(count)):
        start = rng.integers(5, np.asarray(shape) - 5)
        step = rng.integers(-1, 2, len(shape))
        for t in range(int(rng.integers(length[0], length[1] + 1))):
            hits[tuple(start + t * step)] += rng.uniform(*amplitude)
    return hits


def cell_phantom(shape=(40, 96, 96), *, seed=None) -> np.ndarray:
    """A synthetic fluorescence volume or image: hollow shells and bright spots on a dim
    background, N-D (rings and spots for a 2-D ``shape``).

    Six shells (radius 8-16 samples, membrane-like) and 30 small spots; in
    3-D the z samples (first axis) are taken as twice the lateral size.
    Values in about [0.05, 2].

    >>> cell_phantom((16, 32, 32), seed=0).shape
    (16, 32, 32)
    >>> cell_phantom((64, 64), seed=0).shape
    (64, 64)
    """
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    if not (isinstance(shape, (tuple, list)) and shape
            and all(isinstance(n, (int, np.integer)) and n > 0 for n in shape)):
        raise ValueError(f"shape must be a tuple of positive ints, got {shape!r}")
    shape = tuple(int(n) for n in shape)
    d = len(shape)
    rng = np.random.default_rng(seed)
    grid = np.indices(shape, dtype=np.float64)
    volume = np.full(shape, 0.05)
    # z samples are twice as far apart (3-D); isotropic otherwise
    scale = np.array([2.0, 1.0, 1.0]) if d == 3 else np.ones(d)
    for _ in range(6):
        centre = rng.uniform(0.2, 0.8, d) * np.array(shape)
        radius = rng.uniform(8, 16)
        dist = np.sqrt(sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, scale)))
        volume += 0.6 * (np.abs(dist - radius) < 1.5)
    for _ in range(30):
        centre = rng.uniform(0.1, 0.9, d) * np.array(shape)
        dist = np.sqrt(sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, scale)))
        volume += 1.0 * (dist < 1.5)
    return volume


def dead_leaves(shape=(256, 256), *, seed=None, count: int = 2000, min_radius: float = 1.0,
                max_radius: float = 64.0, exponent: float = 3.0,
                texture: float = 0.0, rectangles: float = 0.0) -> np.ndarray:
    """Procedural "dead leaves" image: occluding discs with power-law radii.

    Its statistics (scale invariance, sharp occlusion edges, a power-law
    spectrum) resemble natural images' [1]_, so it can stand in for photos
    when none may be downloaded.  Grey values are uniform in [0, 1]; discs
    fall front to back until ``count`` are placed, each with a small random
    linear shading and, when ``texture`` > 0, a texture of its own: photos'
    surfaces (fur, foliage, fabric) are rarely flat [2]_.

    Parameters
    ----------
    shape : (H, W) tuple of int
    seed : int or numpy.random.Generator, optional
    count : int
        Number of discs.
    min_radius, max_radius : float
        Range of radii in pixels; the density of radius ``r`` is ``r**-exponent``.
    exponent : float
        Power of the radius distribution (3 gives scale invariance).
    texture : float
        Largest amplitude of the leaves' textures (0: flat leaves, the
        classical model).  Each leaf draws an amplitude uniformly up to it and
        one of four textures: a crop of Gaussian noise with a power-law
        spectrum ``1/f**beta``, beta 1, 2 or 3 (grain to clouds), or a
        sinusoidal grating of random period (2 to 16 pixels) and orientation.
    rectangles : float
        Fraction of the leaves that are rectangles instead of discs, at a
        random orientation with an aspect ratio log-uniform in [1, 8] and the
        area of the disc they replace: straight edges, corners and thin bars,
        which photos of built things are full of and discs never show.

    References
    ----------
    .. [1] A. B. Lee, D. Mumford and J. Huang, "Occlusion models for natural
       images", IJCV 41, 2001.
    .. [2] R. Achddou, Y. Gousseau and S. Ladjal, "Fully synthetic training for
       image restoration tasks", Computer Vision and Image Understanding 233, 2023.

    >>> dead_leaves((32, 32), seed=0).shape
    (32, 32)
    """
    if len(shape) != 2:
        raise ValueError(f"shape must be (H, W), got {shape}")
    if not texture >= 0:
        raise ValueError(f"texture must be an amplitude >= 0, got {texture!r}")
    if not 0 <= rectangles <= 1:
        raise ValueError(f"rectangles must be a fraction in [0, 1], got {rectangles!r}")
    if not 0 < min_radius <= max_radius:
        raise ValueError(f"radii must satisfy 0 < min_radius <= max_radius, got "
                         f"{min_radius!r} and {max_radius!r}")
    if not exponent > 1:  # the radii's power law must be normalisable towards large leaves
        raise ValueError(f"exponent must be > 1, got {exponent!r}")
    rng = np.random.default_rng(seed)
    h, w = shape
    image = np.full(shape, np.nan)
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    noises = [_power_law_noise(shape, beta, rng) for beta in (1.0, 2.0, 3.0)] if texture \
        else []
    # inverse-CDF sampling of r ** -exponent on [min_radius, max_radius]
    a, b = min_radius ** (1 - exponent), max_radius ** (1 - exponent)
    for _ in range(count):
        r = (a + rng.random() * (b - a)) ** (1 / (1 - exponent))
        # no draw without rectangles: the classical images stay the same
        rectangle = bool(rectangles) and rng.random() < rectangles
        half_sides = _half_sides(r, rng) if rectangle else None
        reach = float(np.hypot(*half_sides)) if rectangle else r
        cy, cx = rng.uniform(-r, h + r), rng.uniform(-r, w + r)
        y0, y1 = max(0, int(cy - reach)), min(h, int(cy + reach) + 1)
        x0, x1 = max(0, int(cx - reach)), min(w, int(cx + reach) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        window = (slice(y0, y1), slice(x0, x1))
        if rectangle:
            inside = _in_rectangle(rows[window] - cy, cols[window] - cx, half_sides,
                                   rng.uniform(0, np.pi))
        else:
            inside = ((rows[window] - cy) ** 2 + (cols[window] - cx) ** 2 <= r * r)
        free = inside & np.isnan(image[window])
        if free.any():
            slope = rng.normal(0, 0.2 / max(r, 1), 2)
            value = rng.random() + slope[0] * (rows[window] - cy) + slope[1] * (cols[window] - cx)
            if texture:
                value = value + rng.uniform(0, texture) * _leaf_texture(
                    rng, noises, rows[window], cols[window])
            image[window][free] = np.clip(value[free], 0, 1)
        if not np.isnan(image).any():
            break
    return np.nan_to_num(image, nan=rng.random())


def _half_sides(radius: float, rng) -> tuple[float, float]:
    """Half sides of a rectangle with a disc's area and an aspect ratio
    log-uniform in [1, 8]."""
    aspect = np.exp(rng.uniform(0, np.log(8)))
    short = radius * np.sqrt(np.pi / (4 * aspect))
    return aspect * short, short


def _in_rectangle(dy, dx, half_sides, angle: float) -> np.ndarray:
    along = dy * np.cos(angle) + dx * np.sin(angle)
    across = dx * np.cos(angle) - dy * np.sin(angle)
    return (np.abs(along) <= half_sides[0]) & (np.abs(across) <= half_sides[1])


def _power_law_noise(shape, beta: float, rng) -> np.ndarray:
    """Gaussian noise with power spectrum ``1/f**beta``, unit standard deviation."""
    frequencies = np.sqrt(sum(f ** 2 for f in np.meshgrid(
        *(np.fft.fftfreq(n) for n in shape), indexing="ij")))
    frequencies.flat[0] = np.inf  # no mean
    spectrum = np.fft.fftn(rng.standard_normal(shape)) * frequencies ** (-beta / 2)
    field = np.fft.ifftn(spectrum).real
    return field / field.std()


def _leaf_texture(rng, noises, rows, cols) -> np.ndarray:
    """One leaf's texture on its window: a random shift of a noise field, or a grating."""
    kind = rng.integers(len(noises) + 1)
    if kind < len(noises):
        noise = noises[kind]
        dy, dx = rng.integers(0, noise.shape, 2)
        return noise[(rows.astype(int) + dy) % noise.shape[0],
                     (cols.astype(int) + dx) % noise.shape[1]]
    period, angle, phase = rng.uniform(2, 16), rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
    along = rows * np.sin(angle) + cols * np.cos(angle)
    return np.sqrt(2) * np.sin(2 * np.pi * along / period + phase)  # unit standard deviation
