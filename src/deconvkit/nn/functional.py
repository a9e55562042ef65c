"""Functional N-D convolution and transposed convolution with every boundary model.

``conv`` pads its input by a boundary model (not only zeros) and convolves
(torch's cross-correlation convention); ``conv_transpose`` is its exact
adjoint: torch's transposed convolution followed by folding the padded border
back (the adjoint of the padding).  With ``boundary="zero"`` both are torch's
own ``conv{1,2,3}d`` / ``conv_transpose{1,2,3}d``.
"""

from __future__ import annotations

import torch.nn.functional as F

from ..operators._padding import PAD_MODES, pad, pad_adjoint

__all__ = [
    "BOUNDARIES",
    "conv",
    "conv_transpose",
    "pixel_shuffle",
    "pixel_unshuffle",
    "transposed_output_size",
    "transposed_padding",
]

BOUNDARIES = tuple(PAD_MODES)  # zero, periodic, reflect, symmetric, edge

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _tuple(value, d: int, name: str) -> tuple[int, ...]:
    low = 1 if name in ("stride", "dilation", "kernel_size") else 0
    values = (value,) * d if isinstance(value, int) else tuple(value)
    if len(values) != d or any(not isinstance(v, int) or v < low for v in values):
        raise ValueError(f"{name} must be an int >= {low} or {d} of them, got {value!r}")
    return values


def _dims(x, weight, groups, *, transposed: bool) -> int:
    import torch

    for name, value in (("input", x), ("weight", weight)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor, got {type(value).__name__} "
                            "(torch.as_tensor converts an array)")
    d = weight.ndim - 2
    if d not in _CONV:
        raise ValueError(f"weight has {weight.ndim} dims; expected 3, 4 or 5 "
                         "(channels, channels, *kernel) for 1-D, 2-D or 3-D")
    if x.ndim != d + 2:
        raise ValueError(f"input has {x.ndim} dims but a {d}-D weight needs {d + 2} "
                         "(batch, channels, *spatial)")
    if not (x.is_floating_point() or x.is_complex()):  # mixed floats are autocast's to take
        raise TypeError(f"input is {x.dtype}; convolutions take floats: convert it first "
                        f"(e.g. x.to({weight.dtype}))")
    if not (isinstance(groups, int) and groups >= 1 and weight.shape[0] % groups == 0):
        raise ValueError(f"groups={groups!r} must be an int >= 1 dividing the weight's "
                         f"first axis ({weight.shape[0]})")
    # torch's layouts: conv (C_out, C_in / groups, ...), transposed (C_in, C_out / groups, ...)
    expected = weight.shape[0] if transposed else weight.shape[1] * groups
    if x.shape[1] != expected:
        raise ValueError(f"input has {x.shape[1]} channels but the weight of shape "
                         f"{tuple(weight.shape)} takes {expected}")
    return d


def _check_boundary(boundary: str):
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary={boundary!r} is not one of {', '.join(BOUNDARIES)}")


def conv(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups: int = 1,
         boundary: str = "zero"):
    """N-D convolution whose ``padding`` extends the input by ``boundary``.

    ``boundary="zero"`` is exactly ``torch.nn.functional.conv{d}d``.
    """
    _check_boundary(boundary)
    d = _dims(x, weight, groups, transposed=False)
    padding = _tuple(padding, d, "padding")
    if boundary == "zero":
        return _CONV[d](x, weight, bias, _tuple(stride, d, "stride"), padding,
                        _tuple(dilation, d, "dilation"), groups)
    extended = pad(x, tuple((p, p) for p in padding), boundary)
    return _CONV[d](extended, weight, bias, _tuple(stride, d, "stride"), 0,
                    _tuple(dilation, d, "dilation"), groups)


def conv_transpose(x, weight, bias=None, *, stride=1, padding=0, output_padding=0,
                   dilation=1, groups: int = 1, boundary: str = "zero"):
    """N-D transposed convolution: the exact adjoint of :func:`conv` for every boundary.

    Parameters
    ----------
    x : (N, C_in, *spatial) tensor
    weight : (C_in, C_out / groups, *kernel) tensor
        torch's transposed-convolution layout.
    bias : (C_out,) tensor, optional
    stride, padding, output_padding, dilation, groups
        As in ``torch.nn.functional.conv_transpose2d``.
    boundary : {"zero", "periodic", "reflect", "symmetric", "edge"}
        The boundary model of the convolution this is the adjoint of.

    Notes
    -----
    Output size per axis:
    ``(L - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``.
    For a non-zero boundary the border of width ``padding`` that the forward
    convolution read from the extension is folded back onto the samples it
    was copied from (``deconvkit.operators.Pad``'s adjoint), so
    ``<conv(x), y> == <x, conv_transpose(y)>`` exactly.
    """
    _check_boundary(boundary)
    d = _dims(x, weight, groups, transposed=True)
    args = (_tuple(stride, d, "stride"),)
    padding = _tuple(padding, d, "padding")
    output_padding = _tuple(output_padding, d, "output_padding")
    dilation = _tuple(dilation, d, "dilation")
    for op, s, dl in zip(output_padding, args[0], dilation):
        if op >= max(s, dl):
            raise ValueError(f"output_padding {output_padding} must be smaller than stride "
                             f"or dilation on each axis ({args[0]}, {dilation})")
    if boundary == "zero":
        return _CONV_T[d](x, weight, bias, args[0], padding, output_padding, groups, dilation)
    full = _CONV_T[d](x, weight, None, args[0], 0, output_padding, groups, dilation)
    folded = pad_adjoint(full, tuple((p, p) for p in padding), boundary)
    if bias is not None:
        folded = folded + bias.reshape((1, -1) + (1,) * d)
    return folded


def transposed_output_size(input_size, kernel_size, *, stride=1, padding=0, output_padding=0,
                           dilation=1) -> tuple[int, ...]:
    """Output size of a transposed convolution (torch's formula, per axis).

    >>> transposed_output_size((16, 16), 3, stride=2, padding=1, output_padding=1)
    (32, 32)
    """
    d = len(input_size)
    sizes = []
    for n, k, s, p, op, dl in zip(input_size, _tuple(kernel_size, d, "kernel_size"),
                                  _tuple(stride, d, "stride"), _tuple(padding, d, "padding"),
                                  _tuple(output_padding, d, "output_padding"),
                                  _tuple(dilation, d, "dilation")):
        size = (n - 1) * s - 2 * p + dl * (k - 1) + op + 1
        if size < 1:
            raise ValueError(f"these settings give an output size of {size} for input {n}")
        sizes.append(size)
    return tuple(sizes)


def transposed_padding(input_size, target_size, kernel_size, *, stride=1,
                       dilation=1) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The ``(padding, output_padding)`` that make a transposed convolution reach ``target_size``.

    Picks the smallest padding (with ``0 <= output_padding < stride``).

    >>> transposed_padding((16,), (32,), 4, stride=2)
    ((1,), (0,))
    """
    d = len(input_size)
    kernels = _tuple(kernel_size, d, "kernel_size")
    strides, dilations = _tuple(stride, d, "stride"), _tuple(dilation, d, "dilation")
    paddings, extras = [], []
    for n, target, k, s, dl in zip(input_size, target_size, kernels, strides, dilations):
        full = (n - 1) * s + dl * (k - 1) + 1  # size with padding 0, output_padding 0
        excess = full - target  # must equal 2 p - output_padding
        low, high = full - 2 * (dl * (k - 1)), full + max(s, dl) - 1
        if excess < -(max(s, dl) - 1) or excess > 2 * dl * (k - 1):
            raise ValueError(f"target size {target} is out of reach from input {n} with "
                             f"kernel {k}, stride {s}, dilation {dl}: valid sizes range from "
                             f"{max(low, 1)} to {high}")
        p = max(0, -(-excess // 2))
        op = 2 * p - excess
        if op >= max(s, dl):
            raise ValueError(f"target size {target} needs output_padding {op}, but it must be "
                             f"smaller than stride or dilation ({max(s, dl)}); try target "
                             f"{target - 1} or {target + 1}")
        paddings.append(p)
        extras.append(op)
    return tuple(paddings), tuple(extras)


def pixel_shuffle(x, scale: int):
    """N-D pixel shuffle: (N, C·s^d, *L) -> (N, C, *(L·s)); channel order as ``torch``'s 2-D one."""
    n, c, *spatial = x.shape
    d = len(spatial)
    if c % scale**d:
        raise ValueError(f"{c} channels are not divisible by scale**{d} = {scale ** d}")
    out = c // scale**d
    x = x.reshape(n, out, *([scale] * d), *spatial)
    # (n, out, s1..sd, L1..Ld) -> (n, out, L1, s1, L2, s2, ...)
    order = [0, 1] + [i for a in range(d) for i in (2 + d + a, 2 + a)]
    return x.permute(order).reshape(n, out, *(L * scale for L in spatial))


def pixel_unshuffle(x, scale: int):
    """Inverse of :func:`pixel_shuffle`."""
    n, c, *spatial = x.shape
    d = len(spatial)
    if any(L % scale for L in spatial):
        raise ValueError(f"spatial shape {tuple(spatial)} is not divisible by {scale}")
    x = x.reshape(n, c, *[v for L in spatial for v in (L // scale, scale)])
    order = [0, 1] + [3 + 2 * a for a in range(d)] + [2 + 2 * a for a in range(d)]
    return x.permute(order).reshape(n, c * scale**d, *(L // scale for L in spatial))

