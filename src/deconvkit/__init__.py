"""deconvkit: deconvolution of signals, images and volumes, built on one N-D
convolution operator with exact adjoints.

The core imports only numpy, scipy and scikit-image; torch and dask are used
when the arrays you pass come from them.
"""

from . import lightsheet, metrics, psf, restoration, signal, spectra, testing
from ._deconvolve import METHODS, choose_method, deconvolve
from .blind import blind_deconvolve
from .lightsheet import deskew
from .operators import (
    BOUNDARIES,
    Convolution,
    Gradient,
    LinearOperator,
    Pad,
    SpaceVariantConvolution,
    Warp,
)
from .restoration import (
    cgls,
    gold,
    inverse_filter,
    landweber,
    richardson_lucy,
    richardson_lucy_multiview,
    richardson_lucy_tv,
    super_resolve,
    tikhonov,
    total_variation,
    unsupervised_wiener,
    van_cittert,
    wavelet,
    wiener,
)
from .simulation import blur, cell_phantom, cosmic_rays, dead_leaves, simulate

__version__ = "0.1.0"

__all__ = [
    "BOUNDARIES",
    "METHODS",
    "Convolution",
    "Gradient",
    "LinearOperator",
    "Pad",
    "SpaceVariantConvolution",
    "Warp",
    "blind_deconvolve",
    "blur",
    "cell_phantom",
    "cgls",
    "choose_method",
    "cosmic_rays",
    "dead_leaves",
    "deconvolve",
    "deskew",
    "gold",
    "inverse_filter",
    "io",
    "landweber",
    "lightsheet",
    "metrics",
    "psf",
    "restoration",
    "richardson_lucy",
    "richardson_lucy_multiview",
    "richardson_lucy_tv",
    "signal",
    "simulate",
    "spectra",
    "super_resolve",
    "testing",
    "tikhonov",
    "total_variation",
    "unsupervised_wiener",
    "van_cittert",
    "wavelet",
    "wiener",
]


def __getattr__(name):
    # deconvkit.io pulls in tifffile/imageio: load it on first use
    import importlib

    if name == "io":
        return importlib.import_module(".io", __name__)
    if name == "upscale":  # needs torch: load it on first use only
        try:
            return importlib.import_module(".nn.upscale", __name__).upscale
        except ImportError as exc:
            raise ImportError("deconvkit.upscale needs torch: pip install 'deconvkit[torch]'"
                              ) from exc
    raise AttributeError(f"module 'deconvkit' has no attribute {name!r}")
