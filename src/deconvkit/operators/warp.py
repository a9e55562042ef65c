"""Warp: an array resampled at affinely mapped points, with its exact adjoint."""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse

from .. import _kernels
from .._array_api import array_namespace, asarray, is_torch, to_numpy
from ._base import LinearOperator

__all__ = ["Warp"]


class Warp(LinearOperator):
    r"""Resampling at the points ``matrix @ q + offset`` by N-linear interpolation, N-D.

    ``(W x)[q] = x(A q + b)`` for every index ``q`` of the output, with ``x``
    interpolated linearly between its samples and 0 beyond them: a rotation,
    shear, zoom or shift of an image or volume (a camera's motion between
    frames, a registration).  The operator is a sparse matrix with at most
    :math:`2^d` entries a row, so its adjoint (the transposed interpolation,
    which spreads each output sample back onto the input samples it came
    from) is exact, and both keep non-negative arrays non-negative.

    Parameters
    ----------
    matrix : (d, d) array
        ``A``, in index units of the two grids.
    offset : (d,) array
        ``b``.
    input_shape : tuple of d ints
        The shape of ``x``.
    output_shape : tuple of d ints, optional
        The shape of ``W x``; ``input_shape`` by default.

    Notes
    -----
    Leading axes beyond the last ``d`` are batch axes.  With the ``fast``
    extra (numba), numpy arrays, torch tensors on the CPU and CuPy arrays
    (through host memory) are resampled by a compiled loop that computes
    each point from the map as it reaches it, so the operator stores
    nothing a sample; without it, by scipy's sparse product with the
    interpolation matrix (52 bytes a sample in 2-D), built on first use.
    torch tensors on a GPU take torch's sparse product on their device (the
    matrix copied there once per device and dtype).

    Examples
    --------
    A shift by half a sample averages neighbours, and its adjoint passes the
    dot test:

    >>> import numpy as np
    >>> from deconvkit.operators import Warp
    >>> from deconvkit.testing import adjoint_error
    >>> shift = Warp(np.eye(1), [0.5], (4,))
    >>> shift.forward(np.array([0.0, 2.0, 4.0, 6.0]))
    array([1., 3., 5., 3.])
    >>> bool(adjoint_error(shift, (4,)) < 1e-12)
    True
    """

    def __init__(self, matrix, offset, input_shape, output_shape=None):
        self.input = tuple(int(n) for n in input_shape)
        self.output = self.input if output_shape is None else tuple(int(n) for n in output_shape)
        d = len(self.input)
        matrix = np.asarray(matrix, dtype=np.float64)
        offset = np.asarray(offset, dtype=np.float64).reshape(-1)
        if matrix.shape != (d, d) or offset.shape != (d,) or len(self.output) != d:
            raise ValueError(f"a {d}-D warp takes a {d} x {d} matrix, {d} offsets and a "
                             f"{d}-D output_shape; got {matrix.shape}, {offset.shape} and "
                             f"{self.output}")
        if not (np.isfinite(matrix).all() and np.isfinite(offset).all()):
            raise ValueError("matrix and offset must be finite")
        self.ndim = d
        self.matrix, self.offset = matrix, offset
        self._sparse = None  # built on first need: without the compiled loops, or on a GPU
        self._on_device = {}  # (device, dtype, adjoint): a torch sparse matrix

    @property
    def sparse(self):
        """The interpolation as a scipy sparse matrix, ``(prod(output), prod(input))``."""
        if self._sparse is None:
            self._sparse = _interpolation_matrix(self.matrix, self.offset, self.input,
                                                 self.output)
        return self._sparse

    def _forward(self, x):
        return self._apply(x, self.input, self.output, adjoint=False)

    def _adjoint(self, y, shape=None):
        return self._apply(y, self.output, self.input, adjoint=True)

    def _apply(self, x, source, target, *, adjoint):
        d = self.ndim
        if tuple(x.shape[-d:]) != source:
            raise ValueError(f"this warp takes arrays whose last {d} axes are {source}, "
                             f"got {tuple(x.shape)}")
        batch = tuple(x.shape[:-d])
        if is_torch(array_namespace(x)) and x.device.type != "cpu":  # torch's product there
            flat = x.reshape(-1, int(np.prod(source))).T
            return (self._torch_matrix(x, adjoint) @ flat).T.reshape(batch + target)
        if _kernels.ENABLED:  # the points as the loop reaches them: no matrix kept
            host = np.ascontiguousarray(to_numpy(x))
            if host.dtype.kind != "f":
                host = host.astype(np.float64)
            host = host.reshape((-1,) + source)
            out = np.zeros((host.shape[0],) + target, dtype=host.dtype)
            _kernels.warp(out if adjoint else host, host if adjoint else out, self.matrix,
                          self.offset, adjoint=adjoint)
            return asarray(out.reshape(batch + target), like=x)
        sparse = self.sparse.T if adjoint else self.sparse  # the transpose: a CSC view
        flat = to_numpy(x).reshape(-1, int(np.prod(source))).T
        out = np.asarray(sparse @ flat).T.reshape(batch + target)
        return asarray(out, like=x)

    def _torch_matrix(self, like, adjoint: bool):
        import torch

        key = (str(like.device), like.dtype, adjoint)
        if key not in self._on_device:
            sparse = (self.sparse.T if adjoint else self.sparse).tocoo()
            rows_cols = np.stack([sparse.row, sparse.col]).astype(np.int64)
            self._on_device[key] = torch.sparse_coo_tensor(
                torch.from_numpy(rows_cols), torch.from_numpy(sparse.data), size=sparse.shape,
                check_invariants=False,  # scipy's entries, valid by construction
            ).coalesce().to(device=like.device, dtype=like.dtype)
        return self._on_device[key]

    def output_shape(self, input_shape):
        return tuple(input_shape[:-self.ndim]) + self.output

    def input_shape(self, output_shape):
        return tuple(output_shape[:-self.ndim]) + self.input

    def __repr__(self) -> str:
        return f"Warp(input_shape={self.input}, output_shape={self.output})"


def _interpolation_matrix(matrix, offset, source, target):
    """The (prod(target), prod(source)) matrix of N-linear interpolation at the
    points ``matrix @ q + offset``; corners outside ``source`` contribute 0."""
    grid = np.indices(target, dtype=np.float64).reshape(len(target), -1)
    points = matrix @ grid + offset[:, None]
    below = np.floor(points)
    fraction = points - below
    below = below.astype(np.int64)
    rows, cols, values = [], [], []
    row = np.arange(grid.shape[1])
    for corner in itertools.product((0, 1), repeat=len(source)):
        index = below + np.asarray(corner)[:, None]
        weight = np.prod([f if c else 1.0 - f for f, c in zip(fraction, corner)], axis=0)
        inside = np.all((index >= 0) & (index < np.asarray(source)[:, None]), axis=0)
        inside &= weight > 0
        rows.append(row[inside])
        cols.append(np.ravel_multi_index(tuple(index[:, inside]), source))
        values.append(weight[inside])
    return scipy.sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
        shape=(grid.shape[1], int(np.prod(source))))
