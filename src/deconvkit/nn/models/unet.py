"""U-Net (Ronneberger, Fischer & Brox, MICCAI 2015), N-D, with a selectable upsampler."""

from __future__ import annotations

import torch
from torch import nn

from .._conv import conv_nd, norm_nd, pool_nd
from ..layers import Upsample

__all__ = ["UNet"]


def _block(ndim, in_channels, out_channels):
    return nn.Sequential(conv_nd(ndim, in_channels, out_channels, 3), norm_nd(ndim, out_channels),
                         nn.ReLU(inplace=True), conv_nd(ndim, out_channels, out_channels, 3),
                         norm_nd(ndim, out_channels), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """Encoder–decoder with skip connections; 1-D, 2-D or 3-D.

    Parameters
    ----------
    in_channels, out_channels : int
    features : int
        Channels of the first level; doubled at each level down.
    depth : int
        Number of 2x downsamplings.
    upsampler : {"subpixel", "resize", "transposed"}
        How the decoder upsamples (see :class:`deconvkit.nn.Upsample`).
    ndim : int
    residual : bool
        Add the input to the output (restoration networks predict a correction).

    Shape
    -----
    ``(N, in_channels, *L) -> (N, out_channels, *L)``, any ``L``: an input
    whose sides are not multiples of ``2**depth`` is extended at their ends
    by copies of its last samples up to the next multiple, and the output
    cropped back.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, features: int = 32,
                 depth: int = 3, *, upsampler: str = "subpixel", ndim: int = 2,
                 residual: bool = False):
        super().__init__()
        widths = [features * 2**i for i in range(depth + 1)]
        self.encoders = nn.ModuleList(
            [_block(ndim, in_channels if i == 0 else widths[i - 1], widths[i])
             for i in range(depth + 1)])
        self.pool = pool_nd(ndim)
        self.upsamplers = nn.ModuleList([Upsample(widths[i + 1], widths[i], 2, mode=upsampler,
                                                  ndim=ndim) for i in range(depth)])
        self.decoders = nn.ModuleList([_block(ndim, 2 * widths[i], widths[i])
                                       for i in range(depth)])
        self.head = conv_nd(ndim, widths[0], out_channels, 1)
        self.depth, self.ndim, self.residual = depth, ndim, residual
        if residual and in_channels != out_channels:
            raise ValueError("residual=True needs in_channels == out_channels")

    def forward(self, x):
        sides = tuple(x.shape[2:])
        if len(sides) != self.ndim:
            raise ValueError(f"input has shape {tuple(x.shape)}; this {self.ndim}-D UNet takes "
                             f"(N, C, {', '.join('L' * self.ndim)})")
        x_in = x
        # each pooling halves the sides: extend them to a multiple of 2**depth by
        # copies of the edge (always, by 0 or more samples: an exported graph
        # takes any size), and crop the output
        extra = [-n % 2**self.depth for n in sides]
        x = nn.functional.pad(x, [v for e in reversed(extra) for v in (0, e)], mode="replicate")
        skips = []
        h = x
        for i, encoder in enumerate(self.encoders):
            h = encoder(h)
            if i < self.depth:
                skips.append(h)
                h = self.pool(h)
        for i in reversed(range(self.depth)):
            h = self.upsamplers[i](h)
            h = self.decoders[i](torch.cat([h, skips[i]], dim=1))
        out = self.head(h)[(slice(None), slice(None)) + tuple(slice(0, n) for n in sides)]
        return out + x_in if self.residual else out
