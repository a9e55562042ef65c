"""Super-resolution networks: FSRCNN (transposed-convolution upsampler), ESPCN and EDSR
(sub-pixel)."""

from __future__ import annotations

from torch import nn

from .._conv import conv_nd
from ..functional import transposed_padding
from ..layers import TransposedConv, Upsample

__all__ = ["EDSR", "ESPCN", "FSRCNN"]


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


class _ResidualBlock(nn.Module):
    """conv-ReLU-conv added to its input, scaled (EDSR drops batch norm)."""

    def __init__(self, ndim: int, features: int, scaling: float):
        super().__init__()
        self.body = nn.Sequential(conv_nd(ndim, features, features, 3), nn.ReLU(inplace=True),
                                  conv_nd(ndim, features, features, 3))
        self.scaling = scaling

    def forward(self, x):
        return x + self.scaling * self.body(x)


class EDSR(nn.Module):
    """EDSR (Lim et al., CVPRW 2017): residual blocks without batch normalisation, a
    long skip over them, and a sub-pixel upsampler at the end.

    The paper's baseline has 16 blocks of 64 features; the defaults here are
    a CPU-sized version of it.

    Parameters
    ----------
    scale : int
        Upsampling factor.
    channels : int
        Image channels (1 for luminance).
    features, blocks : int
        Width and number of residual blocks.
    scaling : float
        Factor on each block's branch (the paper uses 0.1 for its wide model).
    blur : bool
        Follow the pixel shuffle with the fixed ``scale``-wide box of
        :class:`~deconvkit.nn.SubPixelConv` (no period-``scale`` patterns).
    ndim : int

    Shape
    -----
    ``(N, channels, *L) -> (N, channels, *(L * scale))``.
    """

    def __init__(self, scale: int = 2, channels: int = 1, features: int = 32, blocks: int = 4,
                 *, scaling: float = 1.0, blur: bool = True, ndim: int = 2):
        super().__init__()
        self.head = conv_nd(ndim, channels, features, 3)
        self.body = nn.Sequential(*(_ResidualBlock(ndim, features, scaling)
                                    for _ in range(blocks)),
                                  conv_nd(ndim, features, features, 3))
        options = {"blur": True} if blur else {}
        self.upsample = Upsample(features, channels, scale, mode="subpixel", ndim=ndim,
                                 **options)
        self.scale, self.ndim = scale, ndim

    def forward(self, x):
        features = self.head(x)
        return self.upsample(features + self.body(features))
