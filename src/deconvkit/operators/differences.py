"""Finite differences: the N-D gradient and its adjoint (minus the divergence)."""

from __future__ import annotations

from .._array_api import array_namespace, is_numpy, zeros
from ._base import LinearOperator

__all__ = ["Gradient", "periodic_differences", "periodic_differences_adjoint"]


class Gradient(LinearOperator):
    r"""Forward differences along the trailing ``ndim`` axes, stacked on a new first axis.

    ``Gradient(ndim).forward(x)`` has shape ``(ndim, *x.shape)``: component
    ``i`` is :math:`x[\dots, j+1, \dots] - x[\dots, j, \dots]` along axis
    ``i`` of the trailing ones.  With ``boundary="neumann"`` (default) it is 0
    on the last sample (as in Chambolle 2004); with ``"periodic"`` the last
    sample differences with the first (the penalty of the Fourier closed
    forms and of FFT-based ADMM).  The adjoint is minus the divergence, so
    ``-Gradient.adjoint`` is the divergence used by TV solvers.

    Parameters
    ----------
    ndim : int
        Number of trailing axes to differentiate (1, 2, 3, ...).
    spacing : float or sequence of float
        Sample spacing per axis; each difference is divided by it.
    boundary : {"neumann", "periodic"}

    Examples
    --------
    >>> import numpy as np
    >>> from deconvkit import Gradient
    >>> Gradient(2).forward(np.arange(6.0).reshape(2, 3))[1]
    array([[1., 1., 0.],
           [1., 1., 0.]])
    """

    def __init__(self, ndim: int, *, spacing=1.0, boundary: str = "neumann"):
        if boundary not in ("neumann", "periodic"):
            raise ValueError(f"boundary={boundary!r} is not 'neumann' or 'periodic'")
        self.boundary = boundary
        if int(ndim) != ndim or ndim < 1:
            raise ValueError(f"ndim must be a positive int, got {ndim!r}")
        self.ndim = int(ndim)
        spacing = (spacing,) * self.ndim if isinstance(spacing, (int, float)) else tuple(spacing)
        if len(spacing) != self.ndim or any(s <= 0 for s in spacing):
            raise ValueError(f"spacing must be {self.ndim} positive numbers, got {spacing!r}")
        self.spacing = tuple(float(s) for s in spacing)

    def output_shape(self, input_shape):
        return (self.ndim,) + tuple(input_shape)

    def input_shape(self, output_shape):
        return tuple(output_shape[1:])

    def _forward(self, x):
        if self.boundary == "periodic":
            out = periodic_differences(x, zeros((self.ndim,) + tuple(x.shape), like=x))
            for component, h in zip(out, self.spacing):
                if h != 1.0:
                    component /= h
            return out
        out = zeros((self.ndim,) + tuple(x.shape), like=x)
        for i, h in enumerate(self.spacing):
            axis = i - self.ndim
            head = _along(axis, slice(None, -1))
            tail = _along(axis, slice(1, None))
            out[(i,) + head] = (x[tail] - x[head]) / h
        return out

    def _adjoint(self, y, shape=None):
        if self.boundary == "periodic":
            if any(h != 1.0 for h in self.spacing):
                y = array_namespace(y).stack([y[i] / h for i, h in enumerate(self.spacing)], 0)
            return periodic_differences_adjoint(y, zeros(tuple(y.shape[1:]), like=y))
        out = zeros(tuple(y.shape[1:]), like=y)
        for i, h in enumerate(self.spacing):
            axis = i - self.ndim
            head = _along(axis, slice(None, -1))
            tail = _along(axis, slice(1, None))
            g = y[i] / h
            out[head] = out[head] - g[head]
            out[tail] = out[tail] + g[head]
        return out

    def __repr__(self) -> str:
        extra = "" if self.boundary == "neumann" else f", boundary={self.boundary!r}"
        return f"Gradient(ndim={self.ndim}{extra})"


def _along(axis: int, item) -> tuple:
    return (Ellipsis, item) + (slice(None),) * (-axis - 1)


def periodic_differences(x, out):
    """Periodic forward differences of ``x`` along each of ``out.shape[0]``
    trailing axes, into ``out`` (unit spacing; no rolled copies)."""
    d = out.shape[0]
    for i in range(d):
        periodic_difference(x, i - d, out[i])
    return out


def periodic_difference(x, axis: int, out):
    """The periodic forward difference of ``x`` along ``axis`` (negative: from
    the end) into ``out``, ``x``'s shape."""
    head, tail = _along(axis, slice(None, -1)), _along(axis, slice(1, None))
    last, first = _along(axis, slice(-1, None)), _along(axis, slice(0, 1))
    _subtract_into(x[tail], x[head], out[head])
    _subtract_into(x[first], x[last], out[last])
    return out


def periodic_differences_adjoint(p, out):
    """The adjoint of :func:`periodic_differences` (minus the divergence) into ``out``."""
    out[...] = 0.0
    for i in range(p.shape[0]):
        axis = i - p.shape[0]
        head, tail = _along(axis, slice(None, -1)), _along(axis, slice(1, None))
        last, first = _along(axis, slice(-1, None)), _along(axis, slice(0, 1))
        out[tail] += p[i][head]
        out[first] += p[i][last]
        out -= p[i]
    return out


def _subtract_into(a, b, out):
    if is_numpy(array_namespace(a)):
        array_namespace(a).subtract(a, b, out=out)
    else:
        out[...] = a - b
