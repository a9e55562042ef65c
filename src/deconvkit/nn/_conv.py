"""One constructor for N-D "same" convolutions (torch has a class per dimension)."""

from __future__ import annotations

from torch import nn

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}


def conv_nd(ndim: int, in_channels: int, out_channels: int, kernel_size: int, **options):
    """A stride-1 convolution with 'same' padding for odd kernels."""
    if ndim not in _CONV:
        raise ValueError(f"ndim must be 1, 2 or 3, got {ndim!r}")
    options.setdefault("padding", kernel_size // 2)
    return _CONV[ndim](in_channels, out_channels, kernel_size, **options)


def norm_nd(ndim: int, channels: int):
    return _NORM[ndim](channels)


def pool_nd(ndim: int, size: int = 2):
    return _POOL[ndim](size)
