"""Boundary extension (padding) of the trailing axes and its exact adjoint.

Each non-zero mode is a gather: padded sample ``i`` copies source sample
``index[i]``, where ``index = numpy.pad(arange(n), widths, mode)`` — so the
modes mean exactly what they mean in :func:`numpy.pad`, including pads wider
than the axis.  The adjoint of a gather is a scatter-add: the border samples
are folded back onto the samples they were copied from.

Pads no wider than the axis (the usual case) are made from slices, flips and
one concatenation, and folded back by adding flipped slices: no index array
is built from the axis' size, so ``torch.export`` keeps that size symbolic
(ONNX export with dynamic shapes) and numpy runs a little faster; wider pads
take the index arrays.
"""

from __future__ import annotations

import numpy as np

from .._array_api import array_namespace, copy, flip, is_torch, zeros
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
        if _one_fold(x.shape[axis], before, after, mode):
            x = _concatenate(xp, [*_border_pieces(x, axis, before, after, mode)], axis)
            continue
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
        out = copy(y[_index(axis, slice(before, before + n))])
        if _one_fold(n, before, after, mode):
            _fold_border(out, y, axis, before, after, mode)
        else:
            index = _source_index(n, before, after, mode)
            for j in [*range(before), *range(before + n, before + n + after)]:
                out[_index(axis, int(index[j]))] += y[_index(axis, j)]
        y = out
    return y


def _one_fold(n, before: int, after: int, mode: str) -> bool:
    """Whether the pads are copies of the axis folded once (no wider than it), so
    that slices make them: no index array, which also keeps a symbolic size
    symbolic (``torch.export`` with dynamic shapes)."""
    limit = n - 1 if mode == "reflect" else n
    return mode == "edge" or (before <= limit and after <= limit)


def _border_pieces(x, axis: int, before: int, after: int, mode: str):
    """``(before, x, after)`` along ``axis``: the padded axis in three pieces."""
    n = x.shape[axis]

    def part(start, stop):
        return x[_index(axis, slice(start, stop))]

    if mode == "periodic":
        return part(n - before, n), x, part(0, after)
    if mode == "reflect":
        return flip(part(1, before + 1), (axis,)), x, flip(part(n - 1 - after, n - 1), (axis,))
    if mode == "symmetric":
        return flip(part(0, before), (axis,)), x, flip(part(n - after, n), (axis,))
    return _repeat(part(0, 1), before, axis), x, _repeat(part(n - 1, n), after, axis)


def _fold_border(out, y, axis: int, before: int, after: int, mode: str):
    """Add ``y``'s border (``before`` and ``after`` samples along ``axis``) onto the
    samples of ``out`` (``y``'s centre) they were copied from, in place."""
    n = out.shape[axis]
    head = y[_index(axis, slice(0, before))]
    tail = y[_index(axis, slice(before + n, before + n + after))]

    def add(start, stop, piece):
        out[_index(axis, slice(start, stop))] += piece

    if mode == "periodic":
        add(n - before, n, head)
        add(0, after, tail)
    elif mode == "reflect":
        add(1, before + 1, flip(head, (axis,)))
        add(n - 1 - after, n - 1, flip(tail, (axis,)))
    elif mode == "symmetric":
        add(0, before, flip(head, (axis,)))
        add(n - after, n, flip(tail, (axis,)))
    else:  # edge: every copy of the end sample goes back to it
        add(0, 1, _sum_keep(head, axis))
        add(n - 1, n, _sum_keep(tail, axis))


def _concatenate(xp, pieces, axis: int):
    return xp.cat(pieces, dim=axis) if is_torch(xp) else xp.concatenate(pieces, axis=axis)


def _repeat(piece, count: int, axis: int):
    """A one-sample-wide ``piece`` repeated ``count`` times along ``axis``."""
    xp = array_namespace(piece)
    if is_torch(xp):
        sizes = [-1] * piece.ndim
        sizes[axis] = count
        return piece.expand(*sizes)
    shape = list(piece.shape)
    shape[axis] = count
    return xp.broadcast_to(piece, tuple(shape))


def _sum_keep(x, axis: int):
    if is_torch(array_namespace(x)):
        return x.sum(dim=axis, keepdim=True)
    return x.sum(axis=axis, keepdims=True)


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
