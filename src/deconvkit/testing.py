"""Checks that users can run on their own operators: the dot (adjoint) test."""

from __future__ import annotations

import numpy as np

from ._array_api import from_numpy, to_numpy

__all__ = ["adjoint_error", "assert_adjoint"]


def adjoint_error(op, input_shape, *, like=None, dtype=np.float64, seed: int = 0) -> float:
    """Relative error of the dot test ``<A x, y> = <x, Aᵀ y>`` for random ``x``, ``y``.

    The error is scaled by ``‖A x‖ ‖y‖`` (not by the inner products, which may
    cancel), so it is scale-free and near machine precision for an exact adjoint.

    Parameters
    ----------
    op : LinearOperator
        Anything with ``forward``, ``adjoint`` and ``output_shape``.
    input_shape : tuple of int
        Shape of ``x``.
    like : array, optional
        Run on this array's library and device (e.g. a torch tensor).
    dtype : numpy dtype
        float32 or float64.
    seed : int
        Seed of the random vectors.
    """
    rng = np.random.default_rng(seed)
    input_shape = tuple(input_shape)
    output_shape = tuple(op.output_shape(input_shape))
    x = rng.standard_normal(input_shape).astype(dtype)
    y = rng.standard_normal(output_shape).astype(dtype)
    if like is not None:
        x, y = from_numpy(x, like), from_numpy(y, like)
    ax = op.forward(x)
    aty = op.adjoint(y, shape=input_shape)
    if tuple(ax.shape) != output_shape:
        raise AssertionError(f"forward gave shape {tuple(ax.shape)}, "
                             f"output_shape() says {output_shape}")
    if tuple(aty.shape) != input_shape:
        raise AssertionError(f"adjoint gave shape {tuple(aty.shape)}, expected {input_shape}")
    ax, aty, x, y = (to_numpy(a).astype(np.float64) for a in (ax, aty, x, y))
    lhs, rhs = np.vdot(ax, y), np.vdot(x, aty)
    scale = np.linalg.norm(ax) * np.linalg.norm(y) + np.linalg.norm(x) * np.linalg.norm(aty)
    return float(abs(lhs - rhs) / scale) if scale > 0 else 0.0


def assert_adjoint(op, input_shape, *, like=None, dtype=np.float64, rtol=None,
                   seed: int = 0) -> float:
    """Assert that ``op.adjoint`` is the adjoint of ``op.forward``; return the error.

    ``rtol`` defaults to 1e-10 for float64 and 1e-5 for float32.

    Examples
    --------
    >>> import numpy as np
    >>> from deconvkit import Convolution
    >>> from deconvkit.testing import assert_adjoint
    >>> err = assert_adjoint(Convolution(np.ones(5) / 5, boundary="reflect"), (32,))
    >>> err < 1e-12
    True
    """
    if rtol is None:
        rtol = 1e-10 if np.dtype(dtype) == np.float64 else 1e-5
    err = adjoint_error(op, input_shape, like=like, dtype=dtype, seed=seed)
    if not err <= rtol:
        raise AssertionError(f"dot test failed for {op!r} on shape {tuple(input_shape)}: "
                             f"relative error {err:.3g} > rtol {rtol:g}")
    return err
