"""Super-resolution networks: FSRCNN (transposed-convolution upsampler) and ESPCN (sub-pixel)."""

from __future__ import annotations

from torch import nn

from .._conv import conv_nd
from ..functional import transposed_padding
from ..layers import TransposedConv, Upsample

__all__ = ["ESPCN", "FSRCNN"]


class FSRCNN(nn.Module):
    """FSRCNN (Dong, Loy & Tang, ECCV 2016): feature extraction, shrinking, mapping, expanding,
    and a transposed-convolution upsampler at the end.

    Parameters
    ----------
    scale : int
        Upsampling factor.
    channels : int
        Image channels (1 for luminance).
    d, s, m : int
        Feature width, shrunk width, number of mapping layers (paper: 56, 12, 4).
    upsampler : {"transposed", "subpixel", "resize"}
        ``"transposed"`` is the paper's 9x9 transposed convolution (zero init for
        the bias, default weights); the others are artifact-free replacements.
    blur : bool
        With ``upsampler="subpixel"``: follow the pixel shuffle with the fixed
        ``scale``-wide box of :class:`~deconvkit.nn.SubPixelConv`, which keeps
        the output free of period-``scale`` patterns throughout training.
    ndim : int

    Shape
    -----
    ``(N, channels, *L) -> (N, channels, *(L * scale))``.
    """

    def __init__(self, scale: int = 2, channels: int = 1, d: int = 56, s: int = 12, m: int = 4,
                 *, upsampler: str = "transposed", blur: bool = False, ndim: int = 2):
        super().__init__()
        if blur and upsampler != "subpixel":
            raise ValueError(f"blur=True needs upsampler='subpixel', got {upsampler!r}")
        layers = [conv_nd(ndim, channels, d, 5), nn.PReLU(d), conv_nd(ndim, d, s, 1),
                  nn.PReLU(s)]
        for _ in range(m):
            layers += [conv_nd(ndim, s, s, 3), nn.PReLU(s)]
        layers += [conv_nd(ndim, s, d, 1), nn.PReLU(d)]
        self.body = nn.Sequential(*layers)
        if upsampler == "transposed":
            # 9x9 kernel, stride = scale; padding and output padding give exactly L * scale
            (pad,), (extra,) = transposed_padding((8,), (8 * scale,), 9, stride=scale)
            self.upsample = TransposedConv(d, channels, 9, scale, pad, extra, ndim=ndim)
        else:
            options = {"blur": True} if blur else {}
            self.upsample = Upsample(d, channels, scale, mode=upsampler, ndim=ndim, **options)
        self.scale, self.ndim = scale, ndim

    def forward(self, x):
        return self.upsample(self.body(x))


class ESPCN(nn.Module):
    """ESPCN (Shi et al., CVPR 2016): three convolutions and a sub-pixel upsampler.

    Shape
    -----
    ``(N, channels, *L) -> (N, channels, *(L * scale))``.
    """

    def __init__(self, scale: int = 2, channels: int = 1, features: int = 64, *,
                 ndim: int = 2, icnr: bool = True, blur: bool = False):
        super().__init__()
        self.body = nn.Sequential(conv_nd(ndim, channels, features, 5), nn.Tanh(),
                                  conv_nd(ndim, features, features // 2, 3), nn.Tanh())
        self.upsample = Upsample(features // 2, channels, scale, mode="subpixel", ndim=ndim,
                                 icnr=icnr, blur=blur)
        self.scale, self.ndim = scale, ndim

    def forward(self, x):
        return self.upsample(self.body(x))
