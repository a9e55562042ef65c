"""Linear operators: convolution (every boundary, stride), padding, gradient."""

from ._base import LinearOperator
from ._padding import PAD_MODES, Pad
from .convolution import BOUNDARIES, Convolution
from .differences import Gradient

__all__ = ["BOUNDARIES", "PAD_MODES", "Convolution", "Gradient", "LinearOperator", "Pad"]
