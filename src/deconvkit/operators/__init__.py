"""Linear operators: convolution (every boundary, stride), space-variant convolution,
padding, gradient, warp, diagonal scaling."""

from ._base import Diagonal, LinearOperator
from ._padding import PAD_MODES, Pad
from .convolution import BOUNDARIES, Convolution
from .differences import Gradient
from .space_variant import SpaceVariantConvolution
from .warp import Warp

__all__ = ["BOUNDARIES", "PAD_MODES", "Convolution", "Diagonal", "Gradient", "LinearOperator",
           "Pad", "SpaceVariantConvolution", "Warp"]
