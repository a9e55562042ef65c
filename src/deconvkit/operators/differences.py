"""Finite differences: the N-D gradient and its adjoint (minus the divergence)."""

from __future__ import annotations

from .._array_api import zeros
from ._base import LinearOperator

__all__ = ["Gradient"]


class Gradient(LinearOperator):
    r"""Forward differences along the trailing ``ndim`` axes, stacked on a new first axis.

    ``Gradient(ndim).forward(x)`` has shape ``(ndim, *x.shape)``: component
    ``i`` is :math:`x[\dots, j+1, \dots] - x[\dots, j, \dots]` along axis
    ``i`` of the trailing ones, and 0 on the last sample (Neumann boundary, as
    in Chambolle 2004).  The adjoint is minus the divergence, so
    ``-Gradient.adjoint`` is the divergence used by TV solvers.

    Parameters
    ----------
    ndim : int
        Number of trailing axes to differentiate (1, 2, 3, ...).
    spacing : float or sequence of float
        Sample spacing per axis; each difference is divided by it.

    Examples
    --------
    >>> import numpy as np
    >>> from deconvkit import Gradient
    >>> Gradient(2).forward(np.arange(6.0).reshape(2, 3))[1]
    array([[1., 1., 0.],
           [1., 1., 0.]])
    """

    def __init__(self, ndim: int, *, spacing=1.0):
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
        out = zeros((self.ndim,) + tuple(x.shape), like=x)
        for i, h in enumerate(self.spacing):
            axis = i - self.ndim
            head = _along(axis, slice(None, -1))
            tail = _along(axis, slice(1, None))
            out[(i,) + head] = (x[tail] - x[head]) / h
        return out

    def _adjoint(self, y, shape=None):
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
        return f"Gradient(ndim={self.ndim})"


def _along(axis: int, item) -> tuple:
    return (Ellipsis, item) + (slice(None),) * (-axis - 1)
