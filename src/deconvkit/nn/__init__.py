"""Deep-learning "deconvolution": transposed convolutions and their artifact-free alternatives.

Needs torch (``pip install 'deconvkit[torch]'``).  ``import deconvkit`` does not
import this package; ``import deconvkit.nn`` does.
"""

from . import data, functional, models
from .diagnostics import checkerboard_index, checkerboard_spectrum
from .export import export_onnx
from .layers import ResizeConv, SubPixelConv, TransposedConv, Upsample
from .upscale import upscale

__all__ = [
    "ResizeConv",
    "SubPixelConv",
    "TransposedConv",
    "Upsample",
    "checkerboard_index",
    "checkerboard_spectrum",
    "data",
    "export_onnx",
    "functional",
    "models",
    "upscale",
]
