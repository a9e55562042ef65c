"""Seeing checkerboards: polyphase gains of a layer, and stride harmonics of any output."""

from __future__ import annotations

import torch


def _scale(layer, scale):
    if scale is None:
        for name in ("scale", "stride", "upscale_factor", "scale_factor"):
            scale = getattr(layer, name, None)
            if scale is not None:
                break
        else:
            raise ValueError(f"cannot tell the scale of {type(layer).__name__}; pass scale=")
    values = (scale,) if isinstance(scale, (int, float)) else tuple(scale)
    if len(set(values)) != 1:
        raise ValueError(f"anisotropic scale {values}; pass scale=")
    if values[0] != int(values[0]) or values[0] < 2:
        raise ValueError(f"checkerboard_index measures layers that upsample by an integer "
                         f"factor >= 2; {type(layer).__name__} has scale {values[0]}")
    return int(values[0])


def _spatial_ndim(layer, ndim):
    """The layer's number of spatial axes: given, its ``ndim``, or a torch
    convolution's kernel dims; else 2."""
    if ndim is not None:
        return int(ndim)
    if hasattr(layer, "ndim"):
        return int(layer.ndim)
    kernel_size = getattr(layer, "kernel_size", None)
    return len(kernel_size) if isinstance(kernel_size, tuple) else 2


@torch.no_grad()
def checkerboard_index(layer, *, scale: int | None = None, in_channels: int | None = None,
                       ndim: int | None = None) -> float:
    r"""Spread of the polyphase DC gains (and per-phase biases) of an upsampling layer.

    A constant input goes through the layer (in float64); away from the
    borders, the output is averaged over each of the ``scale**d`` phases
    (positions equal modulo the scale) and per output channel.  The index is
    the largest ``(max - min) / mean |.|`` of these phase means over channels:
    0 means a constant input gives a constant output (Sugawara et al.'s
    condition for a checkerboard-free upsampler), which holds exactly for
    ICNR at initialisation and for box-filtered (zero-order-hold) layers;
    a 3x3 stride-2 transposed convolution has an index well above 0.

    Parameters
    ----------
    layer : torch.nn.Module
        Any module mapping ``(N, C_in, *L)`` to ``(N, C_out, *(L * scale))``.
    scale, in_channels, ndim : int, optional
        Read from the layer (``scale`` or ``stride``, ``in_channels``,
        ``ndim``) when not given.
    """
    s = _scale(layer, scale)
    c = in_channels or getattr(layer, "in_channels", None)
    if c is None:
        raise ValueError(f"cannot tell the input channels of {type(layer).__name__}; pass "
                         "in_channels=")
    d = _spatial_ndim(layer, ndim)
    probe = _float64_copy(layer)
    size = 8 + 6 * s
    y = probe(torch.ones((1, c) + (size,) * d, dtype=torch.float64))
    if y.ndim != d + 2 or any(not s * size - 2 * s <= n <= s * size + 2 * s
                              for n in y.shape[2:]):
        raise ValueError(f"{type(layer).__name__} took {(1, c) + (size,) * d} to "
                         f"{tuple(y.shape)}, not about {s} times the sides: pass the scale= "
                         "and ndim= of an upsampling layer")
    margin = 3 * s * 2
    inner = y[(slice(None), slice(None)) + (slice(margin, y.shape[-1] - margin),) * d]
    inner = inner[(slice(None), slice(None)) + tuple(slice(0, (n // s) * s)
                                                     for n in inner.shape[2:])]
    # (1, C, n1*s, ...) -> per phase means: (C, s, ..., s)
    blocks = inner.reshape(inner.shape[1], *[v for n in inner.shape[2:] for v in (n // s, s)])
    block_axes = tuple(range(1, 2 * d, 2))  # average over blocks, keep the phase axes
    means = blocks.mean(dim=block_axes).reshape(inner.shape[1], -1)
    spread = means.max(dim=1).values - means.min(dim=1).values
    level = means.abs().mean(dim=1).clamp_min(1e-300)
    return float((spread / level).max())


def _float64_copy(layer):
    import copy

    return copy.deepcopy(layer).to(torch.float64).eval()


@torch.no_grad()
def checkerboard_spectrum(model, x, *, scale: int | None = None) -> float:
    """Power at the stride harmonics of ``model(x)``'s spectrum relative to its neighbours.

    For each spatial axis the power spectrum of the output is averaged over
    batch, channels and the other axes; at each harmonic frequency ``j / s``
    (``j = 1 .. s-1``) its value is divided by the median of the 6 nearest
    other frequencies.  Returns the largest ratio: about 1 for an output
    without periodic artifacts, much larger for a checkerboard.

    Parameters
    ----------
    model : callable
        Maps ``x`` to an upsampled tensor ``(N, C, *L_out)``.
    x : tensor
        Input batch.
    scale : int, optional
        The upsampling factor (default: output size / input size).
    """
    y = model(x).to(torch.float64)
    d = y.ndim - 2
    if scale is None:
        scale = round(y.shape[-1] / x.shape[-1])
    ratios = []
    for axis in range(2, 2 + d):
        n = y.shape[axis]
        spectrum = torch.fft.rfft(y - y.mean(dim=axis, keepdim=True), dim=axis).abs() ** 2
        power = spectrum.mean(dim=tuple(a for a in range(y.ndim) if a != axis))
        for j in range(1, scale):
            k = round(j * n / scale)
            if k >= power.numel():
                continue
            near = [i for i in range(k - 4, k + 5) if i != k and 0 < i < power.numel()]
            neighbours = power[near].median().clamp_min(1e-300)
            ratios.append(float(power[k] / neighbours))
    return max(ratios) if ratios else 1.0
