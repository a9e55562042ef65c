"""LinearOperator: two kernels (forward, adjoint) and everything derived from them."""

from __future__ import annotations

import numpy as np

from .._array_api import array_namespace, asarray, to_numpy

__all__ = ["LinearOperator"]


class LinearOperator:
    """A linear map ``A`` acting on the trailing axes of an array.

    Subclasses implement ``_forward(x)`` and ``_adjoint(y)`` and, when the
    operator changes the shape, ``output_shape``/``input_shape``.  They inherit
    composition (``A @ B``), the adjoint view ``A.T`` and the operator norm
    by power iteration.  Operators are shape-polymorphic: leading axes of
    ``x`` beyond :attr:`ndim` are batch axes and pass through unchanged.
    """

    #: number of trailing axes the operator acts on (None: all of them)
    ndim: int | None = None

    def forward(self, x):
        """Apply ``A`` to ``x``."""
        return self._forward(x)

    def adjoint(self, y, *, shape=None):
        """Apply the adjoint ``Aᵀ`` to ``y``.

        ``shape`` is the shape of the result; only operators whose adjoint
        shape is ambiguous need it (a strided convolution maps several input
        sizes to one output size), the others ignore it.
        """
        return self._adjoint(y, shape)

    def __call__(self, x):
        return self.forward(x)

    def _forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _adjoint(self, y, shape=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of ``A x`` for ``x`` of ``input_shape``."""
        return tuple(input_shape)

    def input_shape(self, output_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of ``Aᵀ y`` for ``y`` of ``output_shape``."""
        return tuple(output_shape)

    @property
    def T(self) -> LinearOperator:
        """The adjoint operator ``Aᵀ``."""
        return _Adjoint(self)

    def __matmul__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return _Composition(self, other)

    def norm(self, input_shape, *, iterations: int = 100, rtol: float = 1e-6, like=None,
             seed: int = 0) -> float:
        """Operator 2-norm ``‖A‖`` estimated by power iteration on ``AᵀA``.

        Parameters
        ----------
        input_shape : tuple of int
            Shape of the arrays the operator is applied to.
        iterations : int
            Maximum number of power iterations.
        rtol : float
            Stop when the estimate changes by less than this relative amount.
        like : array, optional
            An array whose library, device and dtype the iteration uses
            (default: numpy float64).
        seed : int
            Seed of the random start vector.
        """
        x = np.random.default_rng(seed).standard_normal(tuple(input_shape))
        x = asarray(x, like) if like is not None else x
        xp = array_namespace(x)
        x = x / xp.sqrt((x * x).sum())
        estimate = 0.0
        for _ in range(iterations):
            z = self.adjoint(self.forward(x), shape=tuple(input_shape))
            new = float(to_numpy(xp.sqrt((z * z).sum())))
            if new == 0.0:
                return 0.0
            x = z / new
            if abs(new - estimate) <= rtol * new:
                estimate = new
                break
            estimate = new
        return float(np.sqrt(estimate))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _Adjoint(LinearOperator):
    def __init__(self, op: LinearOperator):
        self.op = op
        self.ndim = op.ndim

    def _forward(self, x):
        return self.op.adjoint(x)

    def _adjoint(self, y, shape=None):
        return self.op.forward(y)

    def output_shape(self, input_shape):
        return self.op.input_shape(input_shape)

    def input_shape(self, output_shape):
        return self.op.output_shape(output_shape)

    @property
    def T(self) -> LinearOperator:
        return self.op

    def __repr__(self) -> str:
        return f"{self.op!r}.T"


class _Composition(LinearOperator):
    def __init__(self, outer: LinearOperator, inner: LinearOperator):
        self.outer, self.inner = outer, inner
        self.ndim = inner.ndim

    def _forward(self, x):
        return self.outer.forward(self.inner.forward(x))

    def _adjoint(self, y, shape=None):
        middle = None if shape is None else self.inner.output_shape(tuple(shape))
        return self.inner.adjoint(self.outer.adjoint(y, shape=middle), shape=shape)

    def output_shape(self, input_shape):
        return self.outer.output_shape(self.inner.output_shape(input_shape))

    def input_shape(self, output_shape):
        return self.inner.input_shape(self.outer.input_shape(output_shape))

    def __repr__(self) -> str:
        return f"{self.outer!r} @ {self.inner!r}"


class Diagonal(LinearOperator):
    """Element-wise multiplication by a fixed real array ``weights`` (a
    diagonal matrix, its own adjoint): ``(A @ Diagonal(g)) r = A (g r)`` makes
    ``g`` a known factor of the unknown, as a colour guide is
    (:func:`deconvkit.super_resolve` with ``bayer``).

    >>> import numpy as np
    >>> Diagonal(np.array([1.0, 2.0])).forward(np.array([3.0, 4.0]))
    array([3., 8.])
    """

    def __init__(self, weights):
        self.weights = weights
        self.ndim = weights.ndim

    def _forward(self, x):
        return x * self.weights

    def _adjoint(self, y, shape=None):
        return y * self.weights

    def __repr__(self) -> str:
        return f"Diagonal(shape={tuple(self.weights.shape)})"
