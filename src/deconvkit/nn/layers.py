"""Upsampling layers, N-D from one class each: transposed, resize and sub-pixel convolution."""

from __future__ import annotations

import math

import torch
from torch import nn

from . import functional as Fd

__all__ = ["ResizeConv", "SubPixelConv", "TransposedConv", "Upsample"]


def _ntuple(value, d, name: str = "kernel_size"):
    """``value`` for each of ``d`` axes, checked (as the functional form checks it)."""
    return Fd._tuple(value, d, name)


def _check_layer(in_channels, out_channels, ndim, *, same_padding=None) -> None:
    """Clear errors for what torch would refuse later, or not at all;
    ``same_padding``: a kernel size that must be odd for "same" padding."""
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if ndim not in (1, 2, 3):
        raise ValueError(f"ndim must be 1, 2 or 3, got {ndim!r}")
    if same_padding is not None and not (isinstance(same_padding, int) and same_padding >= 1
                                         and same_padding % 2):
        raise ValueError(f"kernel_size must be an odd int >= 1 (for 'same' padding), "
                         f"got {same_padding!r}")


def _kaiming(weight, fan_in):
    bound = 1 / math.sqrt(max(fan_in, 1))
    with torch.no_grad():
        weight.uniform_(-bound * math.sqrt(3), bound * math.sqrt(3))


class TransposedConv(nn.Module):
    r"""N-D transposed convolution ("deconvolution") with boundary models and smarter inits.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, padding, output_padding, dilation : int or tuple
        As in ``torch.nn.ConvTranspose2d``.
    groups : int
    bias : bool
    ndim : int
        1, 2 or 3 spatial dims.
    boundary : {"zero", "periodic", "reflect", "symmetric", "edge"}
        The boundary model of the convolution this layer is the adjoint of
        (``"zero"`` is torch's layer).
    init : {"default", "bilinear", "icnr"}
        ``"default"``: torch's uniform init.  ``"bilinear"``: every in→out
        channel pair (of a group) starts as linear interpolation by the
        stride (FCN's ``upsample_filt``), other pairs zero.  ``"icnr"``: the
        kernel's ``stride**d`` phases share one random sub-kernel, so at
        initialisation the layer is nearest resize + convolution (no
        checkerboard).  Biases start at zero except for ``"default"``.

    Shape
    -----
    Input ``(N, C_in, *L)``, output ``(N, C_out, *L_out)`` with
    ``L_out = (L - 1) * stride - 2 * padding + dilation * (kernel_size - 1)
    + output_padding + 1``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size=4, stride=2,
                 padding=1, output_padding=0, dilation=1, groups: int = 1, bias: bool = True,
                 *, ndim: int = 2, boundary: str = "zero", init: str = "default",
                 device=None, dtype=None):
        super().__init__()
        if init not in ("default", "bilinear", "icnr"):
            raise ValueError(f"init={init!r} is not one of 'default', 'bilinear', 'icnr'")
        _check_layer(in_channels, out_channels, ndim)
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"groups must be an int >= 1, got {groups!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels={in_channels} and out_channels={out_channels} must "
                             f"be divisible by groups={groups}")
        Fd._check_boundary(boundary)
        self.in_channels, self.out_channels, self.ndim = in_channels, out_channels, ndim
        self.kernel_size = _ntuple(kernel_size, ndim)
        self.stride = _ntuple(stride, ndim, "stride")
        self.padding = _ntuple(padding, ndim, "padding")
        self.output_padding = _ntuple(output_padding, ndim, "output_padding")
        self.dilation = _ntuple(dilation, ndim, "dilation")
        self.groups, self.boundary, self.init = groups, boundary, init
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels // groups,
                                               *self.kernel_size, **factory))
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
        if self.init == "default":
            _kaiming(self.weight, fan_in)
            if self.bias is not None:
                with torch.no_grad():
                    self.bias.uniform_(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
            return
        with torch.no_grad():
            if self.init == "bilinear":
                self.weight.zero_()
                kernel = _bilinear_kernel(self.kernel_size, self.stride).to(self.weight)
                per_group_out = self.weight.shape[1]
                for i in range(self.in_channels):
                    o = i % per_group_out if self.in_channels >= per_group_out else i
                    if o < per_group_out:
                        self.weight[i, o] = kernel
            else:  # icnr: one sub-kernel per phase, copied to every phase
                _kaiming(self.weight, fan_in)
                self.weight.copy_(_replicate_phases(self.weight, self.stride))
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x):
        return Fd.conv_transpose(x, self.weight, self.bias, stride=self.stride,
                                 padding=self.padding, output_padding=self.output_padding,
                                 dilation=self.dilation, groups=self.groups,
                                 boundary=self.boundary)

    @property
    def scale(self) -> tuple[int, ...]:
        return self.stride

    def extra_repr(self) -> str:
        parts = [f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}",
                 f"stride={self.stride}", f"ndim={self.ndim}"]
        for name, default in (("padding", (0,) * self.ndim),
                              ("output_padding", (0,) * self.ndim),
                              ("dilation", (1,) * self.ndim)):
            if getattr(self, name) != default:
                parts.append(f"{name}={getattr(self, name)}")
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if self.boundary != "zero":
            parts.append(f"boundary={self.boundary!r}")
        if self.init != "default":
            parts.append(f"init={self.init!r}")
        return ", ".join(parts)


def _bilinear_kernel(kernel_size, stride):
    """Separable linear-interpolation kernel (FCN's ``upsample_filt``), per axis."""
    del stride  # the kernel size carries the factor (k = 2 * stride in FCN)
    kernel = None
    for k in kernel_size:
        factor = (k + 1) // 2
        centre = factor - 1 if k % 2 == 1 else factor - 0.5
        taps = 1 - torch.abs(torch.arange(k, dtype=torch.float64) - centre) / factor
        kernel = taps if kernel is None else torch.outer(kernel.reshape(-1), taps).reshape(
            *kernel.shape, k)
    return kernel


def _replicate_phases(weight, stride):
    """Copy the phase-0 taps of a transposed-conv kernel to every phase (ICNR)."""
    out = weight.clone()
    for axis, s in enumerate(stride):
        dim = 2 + axis
        k = weight.shape[dim]
        for phase in range(1, min(s, k)):
            # tap j belongs to phase j mod s; give every phase the taps of phase 0
            for j in range(phase, k, s):
                out.narrow(dim, j, 1).copy_(out.narrow(dim, j - phase, 1))
    return out


class ResizeConv(nn.Module):
    r"""Resize (nearest or linear) then a stride-1 convolution: no uneven overlap (Odena 2016).

    Shape
    -----
    ``(N, C_in, *L) -> (N, C_out, *(L * scale))`` ("same" padding, any odd kernel).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 scale: int = 2, *, mode: str = "nearest", ndim: int = 2, bias: bool = True,
                 boundary: str = "zero", device=None, dtype=None):
        super().__init__()
        if mode not in ("nearest", "linear"):
            raise ValueError(f"mode={mode!r} is not 'nearest' or 'linear'")
        _check_scale(scale)
        _check_layer(in_channels, out_channels, ndim, same_padding=kernel_size)
        self.in_channels, self.out_channels, self.ndim = in_channels, out_channels, ndim
        self.kernel_size, self.scale, self.mode, self.boundary = kernel_size, scale, mode, \
            boundary
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels,
                                               *(kernel_size,) * ndim, **factory))
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        fan_in = self.in_channels * self.kernel_size**self.ndim
        _kaiming(self.weight, fan_in)
        if self.bias is not None:
            with torch.no_grad():
                self.bias.zero_()

    def forward(self, x):
        linear = {1: "linear", 2: "bilinear", 3: "trilinear"}[self.ndim]
        mode = "nearest" if self.mode == "nearest" else linear
        up = nn.functional.interpolate(x, scale_factor=self.scale, mode=mode,
                                       **({} if mode == "nearest" else {"align_corners": False}))
        return Fd.conv(up, self.weight, self.bias, padding=self.kernel_size // 2,
                       boundary=self.boundary)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"scale={self.scale}, mode={self.mode!r}, ndim={self.ndim}")


class SubPixelConv(nn.Module):
    r"""Convolution to ``C_out * scale**d`` channels, then an N-D pixel shuffle (Shi et al. 2016).

    Parameters
    ----------
    icnr : bool
        ICNR initialisation (Aitken et al. 2017), correct for every scale: the
        ``scale**d`` sub-kernels of an output channel are copies of one, in the
        channel order the shuffle uses, so the layer starts as nearest resize
        + convolution.
    blur : bool
        Follow the shuffle with a fixed ``scale``-wide box (the zero-order hold
        of Sugawara et al.), which removes any periodic pattern of period
        ``scale``, including per-phase biases, at any point of training.

    Shape
    -----
    ``(N, C_in, *L) -> (N, C_out, *(L * scale))``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 scale: int = 2, *, ndim: int = 2, icnr: bool = True, blur: bool = False,
                 bias: bool = True, boundary: str = "zero", device=None, dtype=None):
        super().__init__()
        _check_scale(scale)
        _check_layer(in_channels, out_channels, ndim, same_padding=kernel_size)
        self.in_channels, self.out_channels, self.ndim = in_channels, out_channels, ndim
        self.kernel_size, self.scale, self.icnr, self.blur = kernel_size, scale, icnr, blur
        self.boundary = boundary
        factory = {"device": device, "dtype": dtype}
        phases = scale**ndim
        self.weight = nn.Parameter(torch.empty(out_channels * phases, in_channels,
                                               *(kernel_size,) * ndim, **factory))
        self.bias = nn.Parameter(torch.empty(out_channels * phases, **factory)) if bias \
            else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        fan_in = self.in_channels * self.kernel_size**self.ndim
        phases = self.scale**self.ndim
        with torch.no_grad():
            if self.icnr:
                sub = torch.empty(self.out_channels, *self.weight.shape[1:]).to(self.weight)
                _kaiming(sub, fan_in)
                # pixel_shuffle reads channel o * phases + p for phase p of output o
                self.weight.copy_(sub.repeat_interleave(phases, dim=0))
            else:
                _kaiming(self.weight, fan_in)
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x):
        y = Fd.conv(x, self.weight, self.bias, padding=self.kernel_size // 2,
                    boundary=self.boundary)
        y = Fd.pixel_shuffle(y, self.scale)
        if self.blur:
            y = _box(y, self.scale)
        return y

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"scale={self.scale}, ndim={self.ndim}, icnr={self.icnr}, blur={self.blur}")


def _box(y, s: int):
    """Mean over an ``s``-wide window on every spatial axis, same size (replicate-padded)."""
    d = y.ndim - 2
    channels = y.shape[1]
    kernel = torch.full((channels, 1) + (s,) * d, 1.0 / s**d, dtype=y.dtype, device=y.device)
    pads = []
    for _ in range(d):
        pads += [s // 2, (s - 1) - s // 2]
    padded = nn.functional.pad(y, pads, mode="replicate")
    return Fd._CONV[d](padded, kernel, None, 1, 0, 1, channels)


class Upsample(nn.Module):
    """Pick an upsampler by name: ``"subpixel"`` (default, ICNR), ``"resize"``, ``"transposed"``.

    ``"transposed"`` uses a kernel of ``2 * scale`` (a multiple of the stride: even
    overlap), the padding that gives exactly ``scale`` times the input size, and
    ICNR init.

    Shape
    -----
    ``(N, C_in, *L) -> (N, C_out, *(L * scale))`` for every mode.
    """

    def __init__(self, in_channels: int, out_channels: int, scale: int = 2, *,
                 mode: str = "subpixel", ndim: int = 2, **options):
        super().__init__()
        _check_scale(scale)
        if mode == "subpixel":
            self.layer = SubPixelConv(in_channels, out_channels, scale=scale, ndim=ndim,
                                      **options)
        elif mode == "resize":
            self.layer = ResizeConv(in_channels, out_channels, scale=scale, ndim=ndim,
                                    **options)
        elif mode == "transposed":
            options.setdefault("init", "icnr")
            (padding,), (extra,) = Fd.transposed_padding((8,), (8 * scale,), 2 * scale,
                                                         stride=scale)
            self.layer = TransposedConv(in_channels, out_channels, kernel_size=2 * scale,
                                        stride=scale, padding=padding, output_padding=extra,
                                        ndim=ndim, **options)
        else:
            raise ValueError(f"mode={mode!r} is not 'subpixel', 'resize' or 'transposed'")
        self.mode, self.scale, self.ndim = mode, scale, ndim
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x):
        return self.layer(x)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, scale={self.scale}"


def _check_scale(scale):
    if not (isinstance(scale, int) and not isinstance(scale, bool) and scale >= 1):
        raise ValueError(f"scale must be an int >= 1, got {scale!r}")
