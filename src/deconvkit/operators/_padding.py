"""Boundary extension (padding) of the trailing axes and its exact adjoint.

Each non-zero mode is a gather: padded sample ``i`` copies source sample
``index[i]``, where ``index = numpy.pad(arange(n), widths, mode)`` — so the
modes mean exactly what they mean in :func:`numpy.pad`, including pads wider
than the axis.  The adjoint of a gather is a scatter-add: the border samples
are folded back onto the samples they were copied from.
"""

from __future__ import annotations

import numpy as np

from .._array_api import array_namespace, copy, is_torch, zeros
from ._base import LinearOperator

__all__ = ["PAD_MODES", "Pad", "pad", "pad_adjoint"]

#: padding modes, by deconvkit name -> numpy.pad name (None: zeros)
PAD_MODES = {
    "zero": None,
    "periodic": "wrap",
    "reflect": "reflect",
    "symmetric": "symmetric",
    "edge": "edge",
}


def _index(axis_slot: int, item) -> tuple:
    """Index tuple selecting ``item`` along axis ``axis_slot`` (counted from the end)."""
    return (Ellipsis, item) + (slice(None),) * (-axis_slot - 1)


def _source_index(n: int, before: int, after: int, mode: str) -> np.ndarray:
    return np.pad(np.arange(n), (before, after), mode=PAD_MODES[mode])


def pad(x, widths, mode: str):
    """Extend the trailing ``len(widths)`` axes of ``x`` by ``widths[i] = (before, after)``."""
    d = len(widths)
    xp = array_namespace(x)
    if PAD_MODES[mode] is None:
        shape = x.shape[:-d] + tuple(n + b + a for n, (b, a) in zip(x.shape[-d:], widths))
        out = zeros(shape, like=x)
        inner = tuple(slice(b, b + n) for n, (b, _) in zip(x.shape[-d:], widths))
        out[(Ellipsis,) + inner] = x
        return out
    for i, (before, after) in enumerate(widths):
        if before == 0 and after == 0:
            continue
        axis = i - d
        index = _source_index(x.shape[axis], before, after, mode)
        if is_torch(xp):
            x = x.index_select(x.ndim + axis, xp.as_tensor(index, device=x.device))
        else:
            x = xp.take(x, xp.asarray(index), axis=axis)
    return x


def pad_adjoint(y, widths, mode: str):
    """Adjoint of :func:`pad`: crop the centre and fold the border back (scatter-add)."""
    d = len(widths)
    if PAD_MODES[mode] is None:
        inner = tuple(slice(b, n - a) for n, (b, a) in zip(y.shape[-d:], widths))
        return copy(y[(Ellipsis,) + inner])
    for i in reversed(range(d)):
        before, after = widths[i]
        if before == 0 and after == 0:
            continue
        axis = i - d
        n = y.shape[axis] - before - after
        index = _source_index(n, before, after, mode)
        out = copy(y[_index(axis, slice(before, before + n))])
        for j in [*range(before), *range(before + n, before + n + after)]:
            out[_index(axis, int(index[j]))] += y[_index(axis, j)]
        y = out
    return y


class Pad(LinearOperator):
    """Boundary extension of the trailing axes, with its exact adjoint.

    Parameters
    ----------
    widths : sequence of (int, int)
        ``(before, after)`` samples added on each of the trailing axes.
    mode : {"zero", "periodic", "reflect", "symmetric", "edge"}
        As in :func:`numpy.pad` (``"zero"`` is ``"constant"``, ``"periodic"``
        is ``"wrap"``): ``"reflect"`` mirrors without repeating the edge
        sample, ``"symmetric"`` repeats it.
    """

    def __init__(self, widths, mode: str = "zero"):
        if mode not in PAD_MODES:
            raise ValueError(f"mode={mode!r} is not one of {sorted(PAD_MODES)}")
        self.widths = tuple((int(b), int(a)) for b, a in widths)
        self.mode = mode
        self.ndim = len(self.widths)

    def _forward(self, x):
        return pad(x, self.widths, self.mode)

    def _adjoint(self, y, shape=None):
        return pad_adjoint(y, self.widths, self.mode)

    def output_shape(self, input_shape):
        lead, tail = input_shape[: -self.ndim], input_shape[-self.ndim :]
        return tuple(lead) + tuple(n + b + a for n, (b, a) in zip(tail, self.widths))

    def input_shape(self, output_shape):
        lead, tail = output_shape[: -self.ndim], output_shape[-self.ndim :]
        return tuple(lead) + tuple(n - b - a for n, (b, a) in zip(tail, self.widths))

    def __repr__(self) -> str:
        return f"Pad(widths={self.widths}, mode={self.mode!r})"
