"""DCGAN generator (Radford, Metz & Chintala, ICLR 2016) with a selectable upsampler."""

from __future__ import annotations

from torch import nn

from .._conv import norm_nd
from ..layers import TransposedConv, Upsample

__all__ = ["DCGANGenerator"]


class DCGANGenerator(nn.Module):
    """Latent vector -> image by repeated 2x upsampling.

    Parameters
    ----------
    latent : int
        Size of the input vector ``z``.
    channels : int
        Output image channels.
    features : int
        Channels before the last upsampling; doubled per level towards the input.
    levels : int
        Number of 2x upsamplings after the 4x4 start (4 gives 64x64).
    upsampler : {"transposed", "subpixel", "resize"}
        ``"transposed"`` is the paper's 4x4 stride-2 transposed convolution;
        the others are the checkerboard-free alternatives.
    ndim : int

    Shape
    -----
    ``(N, latent) -> (N, channels, *(4 * 2**levels,) * ndim)``.
    """

    def __init__(self, latent: int = 100, channels: int = 3, features: int = 64,
                 levels: int = 4, *, upsampler: str = "transposed", ndim: int = 2):
        super().__init__()
        widths = [features * 2 ** (levels - 1 - i) for i in range(levels)] + [channels]
        self.start = nn.Sequential(
            TransposedConv(latent, widths[0], 4, 1, 0, ndim=ndim), norm_nd(ndim, widths[0]),
            nn.ReLU(True))
        layers = []
        for i in range(levels):
            if upsampler == "transposed":
                layers.append(TransposedConv(widths[i], widths[i + 1], 4, 2, 1, ndim=ndim))
            else:
                layers.append(Upsample(widths[i], widths[i + 1], 2, mode=upsampler, ndim=ndim))
            if i < levels - 1:
                layers += [norm_nd(ndim, widths[i + 1]), nn.ReLU(True)]
        self.body = nn.Sequential(*layers, nn.Tanh())
        self.latent, self.ndim = latent, ndim

    def forward(self, z):
        return self.body(self.start(z.reshape(z.shape[0], self.latent, *(1,) * self.ndim)))
