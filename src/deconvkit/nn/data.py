"""Training data without downloads: procedural dead-leaves images and a degradation pipeline."""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torch.utils.data import Dataset

from .. import psf as psf_module
from ..operators import Convolution
from ..simulation import dead_leaves

__all__ = ["DegradedDataset", "bicubic_downscale"]


def bicubic_downscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Antialiased bicubic downscaling by an integer factor (scikit-image's
    ``resize(order=3, anti_aliasing=True)``): the low-resolution images of the
    super-resolution benchmarks, and the degradation the shipped models learn."""
    from skimage.transform import resize

    shape = tuple(n // scale for n in image.shape)
    return resize(image, shape, order=3, anti_aliasing=True, mode="reflect")


class DegradedDataset(Dataset):
    """Pairs ``(degraded, sharp)`` made on the fly from seeded dead-leaves images.

    The degradation is the super-resolution / deblurring forward model of the
    classical part of the library: blur with a PSF from :mod:`deconvkit.psf`
    (an anti-aliasing Gaussian by default), keep every ``scale``-th sample
    (``Convolution(..., stride=scale)``), add Gaussian noise.

    Parameters
    ----------
    length : int
        Number of items (item ``i`` is the same every time: seed ``(seed, i)``).
    patch : int
        Side of the sharp patch; must be divisible by ``scale``.
    scale : int
        Downsampling factor (1 for pure deblurring).
    kernel : array, optional
        The blur; default a Gaussian of sigma ``0.5 * scale`` (anti-aliasing).
    noise : float
        Standard deviation of the added noise.
    count, min_radius : int, float
        Dead-leaves discs per image and their smallest radius (in sharp pixels).
    texture : float
        Largest amplitude of the leaves' textures (power-law noise or
        gratings, see :func:`deconvkit.dead_leaves`); 0 gives flat leaves.
    rectangles : float
        Fraction of the leaves drawn as rectangles (straight edges, corners,
        thin bars) instead of discs.
    supersample : int
        Draw the sharp image this many times larger and downscale it, so that
        edges are antialiased like a camera's rather than jagged.
    sharp_blur : float
        Largest standard deviation (in sharp pixels) of a Gaussian defocus of
        the whole sharp image, drawn uniformly per item: photographs are not
        all in focus, and a model that only saw crisp edges over-sharpens.
    sharp_noise : float
        Largest standard deviation of Gaussian noise added to the sharp image
        before the degradation (drawn uniformly per item): photographs carry
        such grain, and a model that never saw it sharpens it as if it were
        edges.
    degradation : {"blur", "bicubic"}
        ``"blur"``: the PSF then every ``scale``-th sample; ``"bicubic"``:
        :func:`bicubic_downscale` (``kernel`` unused).
    seed : int

    Items are float32 tensors ``(1, patch/scale, patch/scale)`` and ``(1, patch, patch)``.
    """

    def __init__(self, length: int = 1000, *, patch: int = 64, scale: int = 2, kernel=None,
                 noise: float = 0.0, degradation: str = "blur", count: int = 400,
                 min_radius: float = 1.5, supersample: int = 1, sharp_blur: float = 0.0,
                 sharp_noise: float = 0.0, texture: float = 0.0, rectangles: float = 0.0,
                 seed: int = 0):
        if patch % scale:
            raise ValueError(f"patch={patch} must be divisible by scale={scale}")
        spreads = {"noise": noise, "sharp_blur": sharp_blur, "sharp_noise": sharp_noise,
                   "texture": texture}
        for name, value in {**spreads, "rectangles": rectangles,
                            "min_radius": min_radius}.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise TypeError(f"{name} must be a number, got {value!r}")
            if name in spreads and not value >= 0:
                raise ValueError(f"{name} must be a standard deviation >= 0, got {value!r}")
        if not min_radius > 0:
            raise ValueError(f"min_radius must be > 0 (sharp pixels), got {min_radius!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        if degradation not in ("blur", "bicubic"):
            raise ValueError(f"degradation must be 'blur' or 'bicubic', got {degradation!r}")
        self.degradation, self.count, self.min_radius = degradation, count, min_radius
        self.supersample = int(supersample)
        self.sharp_blur, self.sharp_noise = float(sharp_blur), float(sharp_noise)
        if not 0 <= rectangles <= 1:
            raise ValueError(f"rectangles must be a fraction in [0, 1], got {rectangles!r}")
        self.texture, self.rectangles = float(texture), float(rectangles)
        self.length, self.patch, self.scale, self.noise, self.seed = length, patch, scale, \
            noise, seed
        kernel = psf_module.gaussian(0.5 * scale) if kernel is None else np.asarray(kernel)
        self.blur = Convolution(kernel / kernel.sum(), boundary="symmetric", stride=scale)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} items")
        rng = np.random.default_rng((self.seed, index))
        side = self.patch * self.supersample
        sharp = dead_leaves((side, side), seed=rng, count=self.count,
                            min_radius=self.min_radius * self.supersample, max_radius=side / 2,
                            texture=self.texture, rectangles=self.rectangles)
        if self.supersample > 1:
            sharp = bicubic_downscale(sharp, self.supersample)
        if self.sharp_blur:
            sharp = gaussian_filter(sharp, rng.uniform(0, self.sharp_blur), mode="reflect")
        if self.sharp_noise:
            sharp = sharp + rng.normal(0, rng.uniform(0, self.sharp_noise), sharp.shape)
        low = self.blur.forward(sharp) if self.degradation == "blur" else \
            bicubic_downscale(sharp, self.scale)
        if self.noise:
            low = low + rng.normal(0, self.noise, low.shape)
        return (torch.from_numpy(low.astype(np.float32))[None],
                torch.from_numpy(sharp.astype(np.float32))[None])
