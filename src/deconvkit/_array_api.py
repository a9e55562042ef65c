"""The ground floor: array namespace, FFT dispatch and the dtype policy.

Every public function resolves the namespace of its input once, at entry
(``xp = array_namespace(image)``), and then calls the small set of helpers
below.  numpy in gives numpy out; a torch tensor in gives a torch tensor out
on the same device; a CuPy array gives a CuPy array.  This is the only module
that knows which array libraries exist.

Dtype policy (:func:`float_dtype`): float32 and float64 are kept; float16,
bfloat16, bool and integers of at most 16 bits are promoted to float32 (they
are exactly representable there, and microscopy data is mostly uint8/uint16,
so this halves memory against float64); wider integers are promoted to
float64.  Complex input is refused: every model in this library is real.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType

import numpy as np
import scipy.fft

__all__ = [
    "array_namespace",
    "as_float",
    "asarray",
    "blockwise",
    "clamp_min",
    "float_dtype",
    "flip",
    "from_numpy",
    "irfftn",
    "irfftn_into",
    "is_numpy",
    "is_torch",
    "next_fast_len",
    "rfftn",
    "rfftn_into",
    "to_numpy",
    "zeros",
]

# scipy.fft threads: every core by default, DECONVKIT_THREADS to cap it.
FFT_WORKERS = int(os.environ.get("DECONVKIT_THREADS", "-1"))


# blockwise: about a megabyte per block.  Measured on 2 cores, 1024x1024 RL:
# 1.30x the FFT floor per iteration against 1.42x with 256 KB blocks (which
# should stay in L2 but cost more calls); 512 KB-2 MB within noise of each other
BLOCK_BYTES = 1 << 20
_THREADS = (os.cpu_count() or 1) if FFT_WORKERS < 1 else FFT_WORKERS
_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def blockwise(func, *arrays) -> list:
    """``func(*blocks)`` over matching leading-axis blocks of same-shape ``arrays``.

    For numpy, a chain of in-place ufuncs applied block by block reads each
    operand from memory once instead of once per ufunc, and the blocks are
    shared among ``DECONVKIT_THREADS`` threads (ufuncs release the GIL): the
    element-wise work between FFTs then costs a fraction of a pass.  torch
    and CuPy arrays, and arrays of different shapes (broadcasting), get one
    call on the whole arrays.  Returns the list of ``func``'s results, in
    block order (so sums of them do not depend on the threads' timing).
    """
    first = arrays[0]
    if (not is_numpy(array_namespace(*arrays)) or first.ndim == 0
            or first.nbytes <= BLOCK_BYTES
            or any(a.shape != first.shape for a in arrays[1:])):
        return [func(*arrays)]
    return over_slices(lambda part: func(*(a[part] for a in arrays)), len(first),
                       first.nbytes)


def over_slices(func, length: int, nbytes: int) -> list:
    """``func(part)`` for the slices ``part`` that cut ``range(length)`` into
    blocks of about ``BLOCK_BYTES`` (of ``nbytes`` in all), shared among the
    threads as in :func:`blockwise`; returns the results in block order."""
    count = max(1, min(length, -(-nbytes // BLOCK_BYTES)))
    edges = np.linspace(0, length, count + 1).astype(int)
    blocks = [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]
    results = [None] * count
    # the calling thread works too, and every thread takes the next block
    # when it is free: a helper that wakes late (0.1 ms on a VM) then does
    # less instead of holding the pass up (0.35 against 0.54 ms for a
    # divide pass over 1080x1080 with a fixed half each)
    taken = itertools.count()

    def work():
        for i in iter(taken.__next__, None):  # next() on a count is atomic under the GIL
            if i >= count:
                return
            results[i] = func(blocks[i])

    helpers = [_helper_pool().submit(work) for _ in range(min(_THREADS, count) - 1)]
    try:
        work()
    finally:
        for helper in helpers:
            # one still queued behind other callers' work has nothing left to
            # do: cancel it rather than wait for a thread to reach it
            if not helper.cancel():
                helper.result()
    return results


def _helper_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max(_THREADS - 1, 1), thread_name_prefix="deconvkit")
    return _pool


def _torch():
    """torch if it is already imported (never import it just to check a type)."""
    return sys.modules.get("torch")


def _cupy():
    return sys.modules.get("cupy")


def array_namespace(*arrays) -> ModuleType:
    """Return the array library (``numpy``, ``torch`` or ``cupy``) of ``arrays``.

    Non-array arguments (lists, scalars, ``None``) count as numpy.  numpy mixes
    with any library and the other one wins (a numpy PSF with a torch image
    gives ``torch``); torch mixed with CuPy is an error.
    """
    found = None
    for a in arrays:
        xp = _namespace_of(a)
        if xp is None:
            continue
        if found is not None and xp is not found and found is not np and xp is not np:
            raise TypeError(
                f"arrays from different libraries ({found.__name__} and {xp.__name__}); "
                "convert them to one library first"
            )
        if found is None or found is np:
            found = xp
    return found or np


def _namespace_of(a):
    if a is None:
        return None
    torch = _torch()
    if torch is not None and isinstance(a, torch.Tensor):
        return torch
    cupy = _cupy()
    if cupy is not None and isinstance(a, cupy.ndarray):
        return cupy
    return np


def is_torch(xp) -> bool:
    return getattr(xp, "__name__", "") == "torch"


def is_numpy(xp) -> bool:
    return xp is np


def float_dtype(x):
    """The working float dtype for ``x`` under the library's dtype policy."""
    xp = array_namespace(x)
    if is_torch(xp):
        if x.is_complex():
            raise TypeError("complex input is not supported; pass the real part or magnitude")
        if x.dtype == xp.float64:
            return xp.float64
        if x.dtype in (xp.int32, xp.int64, xp.uint32, xp.uint64):
            return xp.float64
        return xp.float32
    dtype = np.dtype(getattr(x, "dtype", np.asarray(x).dtype))
    if dtype.kind == "c":
        raise TypeError("complex input is not supported; pass the real part or magnitude")
    if dtype.kind not in "biuf":
        raise TypeError(f"expected a numeric array, got dtype {dtype}")
    # By kind and size, not dtype equality: a big-endian float64 (FITS data
    # as astropy reads them) is not equal to the native np.float64.
    if (dtype.kind == "f" and dtype.itemsize >= 8) or (dtype.kind in "iu" and dtype.itemsize > 2):
        return xp.float64
    return xp.float32


def as_float(x, dtype=None):
    """``x`` as an array of its working float dtype (no copy when already right)."""
    xp = array_namespace(x)
    if not is_torch(xp) and not hasattr(x, "dtype"):
        x = np.asarray(x)
    dtype = dtype or float_dtype(x)
    if is_torch(xp):
        return x.to(dtype)
    return x.astype(dtype, copy=False)


def asarray(a, like):
    """``a`` converted to the namespace, device and float dtype of ``like``."""
    xp = array_namespace(like)
    if is_torch(xp):
        if isinstance(a, xp.Tensor):
            return a.to(device=like.device, dtype=like.dtype)
        a = np.asarray(a)
        if not a.flags.writeable:  # torch wants writable memory to share
            a = a.copy()
        return xp.as_tensor(a, dtype=like.dtype, device=like.device)
    if xp is not np:  # cupy
        return xp.asarray(a, dtype=like.dtype)
    return np.asarray(to_numpy(a), dtype=like.dtype)


def from_numpy(a: np.ndarray, like):
    """numpy array ``a`` moved to the library and device of ``like``, keeping its dtype."""
    xp = array_namespace(like)
    if is_torch(xp):
        return xp.from_numpy(np.ascontiguousarray(a)).to(like.device)
    return xp.asarray(a)


def asarray_complex(a, like):
    """Complex numpy ``a`` in the library and device of ``like``, at its precision."""
    xp = array_namespace(like)
    single = str(like.dtype).endswith(("float32", "complex64"))
    a = np.ascontiguousarray(a, dtype=np.complex64 if single else np.complex128)
    if is_torch(xp):
        return xp.from_numpy(a).to(like.device)
    return xp.asarray(a)


def to_numpy(x) -> np.ndarray:
    """A numpy view or copy of ``x`` (moved to host memory if needed)."""
    torch = _torch()
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    cupy = _cupy()
    if cupy is not None and isinstance(x, cupy.ndarray):
        return cupy.asnumpy(x)
    return np.asarray(x)


def zeros(shape, like):
    """Zeros of ``shape`` in the namespace, device and dtype of ``like``."""
    xp = array_namespace(like)
    if is_torch(xp):
        return xp.zeros(tuple(shape), dtype=like.dtype, device=like.device)
    return xp.zeros(tuple(shape), dtype=like.dtype)


def full(shape, value, like):
    xp = array_namespace(like)
    if is_torch(xp):
        return xp.full(tuple(shape), value, dtype=like.dtype, device=like.device)
    return xp.full(tuple(shape), value, dtype=like.dtype)


def flip(x, axes):
    xp = array_namespace(x)
    if is_torch(xp):
        return xp.flip(x, dims=tuple(axes))
    return xp.flip(x, axis=tuple(axes))


def clamp_min(x, minimum: float):
    xp = array_namespace(x)
    if is_torch(xp):
        return xp.clamp(x, min=minimum)
    return xp.maximum(x, _floor_row(x, minimum))


def clamp_min_(x, minimum: float):
    """In place: ``x = max(x, minimum)``; returns ``x``."""
    xp = array_namespace(x)
    if is_torch(xp):
        return x.clamp_(min=minimum)
    return xp.maximum(x, _floor_row(x, minimum), out=x)


def _floor_row(x, minimum: float):
    """``minimum`` as one row of ``x``'s last axis: numpy's ``maximum`` against a
    scalar takes a loop about 4x slower than against an array broadcast by rows."""
    if getattr(x, "ndim", 0) == 0 or x.dtype.kind != "f":
        return minimum
    return array_namespace(x).full(x.shape[-1:], minimum, dtype=x.dtype)


def conj_(z):
    """In place: complex conjugate of ``z``; returns ``z``."""
    xp = array_namespace(z)
    if is_torch(xp):
        return z.conj_physical_()
    return xp.conjugate(z, out=z)


def by_pieces(func, *arrays) -> list:
    """``func`` over leading-axis pieces of about 256 KB of same-shape numpy
    ``arrays`` (one call for other libraries): a block function whose
    temporaries would be block-sized calls it to keep them small."""
    first = arrays[0]
    if not isinstance(first, np.ndarray) or first.ndim == 0 or first.nbytes <= PIECE_BYTES:
        return [func(*arrays)]
    rows = max(1, PIECE_BYTES // max(first.nbytes // len(first), 1))
    return [func(*(a[i:i + rows] for a in arrays)) for i in range(0, len(first), rows)]


PIECE_BYTES = 1 << 18


def vdot(a, b) -> float:
    """Sum of ``a * b`` as a Python float, without a temporary array."""
    xp = array_namespace(a)
    if is_torch(xp):
        return float(xp.dot(a.reshape(-1), b.reshape(-1)))
    if is_numpy(xp):
        return float(np.vdot(a.ravel(), b.ravel()))
    return float(xp.vdot(a.ravel(), b.ravel()))


def copy(x):
    xp = array_namespace(x)
    return x.clone() if is_torch(xp) else x.copy()


def next_fast_len(n: int) -> int:
    """Smallest length >= ``n`` whose real FFT is fast (factors 2, 3, 5)."""
    return scipy.fft.next_fast_len(int(n), real=True)


def rfftn(x, s, axes):
    """Real N-D FFT of ``x`` zero-padded (or cropped) to ``s`` over ``axes``."""
    xp = array_namespace(x)
    if is_numpy(xp):
        return scipy.fft.rfftn(x, s=s, axes=axes, workers=FFT_WORKERS)
    if is_torch(xp):
        return xp.fft.rfftn(x, s=s, dim=axes)
    return xp.fft.rfftn(x, s=s, axes=axes)


try:  # scipy's pocketfft binding, which (unlike scipy.fft) writes into a given array
    from scipy.fft._pocketfft import pypocketfft as _pocketfft
except ImportError:  # pragma: no cover - a scipy that moved it: the copying fallback
    _pocketfft = None


def rfftn_into(x, axes, out, *, conjugate: bool = False):
    """:func:`rfftn` of ``x`` (no padding) written into the spectrum ``out``;
    its complex conjugate with ``conjugate=True``.

    Iterative solvers call the pair ``rfftn_into`` / ``irfftn_into`` on
    buffers they keep, so no array is allocated (or its pages faulted in)
    per iteration.  Other libraries, or numpy without the binding, copy.
    The conjugates cost nothing with the binding (the transform runs with
    the opposite sign): an adjoint ``irfftn(conj(H) R)`` is then
    ``irfftn_into(H conj(R), conjugate=True)`` with no conjugating pass.
    """
    if is_numpy(array_namespace(x)) and _pocketfft is not None and _aligned(x, out):
        # non-negative axes: the binding takes a slower path for negative ones
        axes = tuple(a % x.ndim for a in axes)
        # for real x, the transform with the + sign is the conjugate spectrum
        return _pocketfft.r2c(x, axes=axes, forward=not conjugate, inorm=0, out=out,
                              nthreads=_THREADS)
    out[...] = rfftn(x, tuple(x.shape[a] for a in axes), axes)
    return conj_(out) if conjugate else out


def irfftn_into(X, axes, out, *, conjugate: bool = False):
    """Inverse of :func:`rfftn_into` into the real array ``out`` (whose shape
    gives the lengths): of ``conj(X)`` with ``conjugate=True``.  ``X`` is
    overwritten."""
    if is_numpy(array_namespace(X)) and _pocketfft is not None and _aligned(out, X):
        axes = tuple(a % X.ndim for a in axes)
        # for Hermitian X, the transform with the - sign is N irfftn(conj(X))
        backward = not conjugate
        if len(axes) > 1:  # leading axes in place, then the real one into ``out``
            _pocketfft.c2c(X, axes=axes[:-1], forward=not backward, inorm=2, out=X,
                           nthreads=_THREADS)
        return _pocketfft.c2r(X, axes=axes[-1:], lastsize=out.shape[axes[-1]],
                              forward=not backward, inorm=2, out=out, nthreads=_THREADS)
    out[...] = irfftn(conj_(X) if conjugate else X, tuple(out.shape[a] for a in axes), axes)
    return out


def _aligned(real, spectrum) -> bool:
    """Contiguous float32/complex64 or float64/complex128 pairs: what the binding takes."""
    return (real.flags.c_contiguous and spectrum.flags.c_contiguous
            and np.result_type(real.dtype, np.complex64) == spectrum.dtype)


def irfftn(X, s, axes):
    """Inverse of :func:`rfftn` with output lengths ``s`` over ``axes``.

    The spectrum ``X`` may be overwritten (every caller makes it for this call),
    which saves scipy a complex copy.
    """
    xp = array_namespace(X)
    if is_numpy(xp):
        if len(axes) > 1:
            # the leading axes in place, then the real axis: scipy's multi-axis
            # irfftn would hold a second complex array of the spectrum's size
            X = scipy.fft.ifftn(X, s=s[:-1], axes=axes[:-1], workers=FFT_WORKERS,
                                overwrite_x=True)
        return scipy.fft.irfft(X, n=s[-1], axis=axes[-1], workers=FFT_WORKERS,
                               overwrite_x=True)
    if is_torch(xp):
        return xp.fft.irfftn(X, s=s, dim=axes)
    return xp.fft.irfftn(X, s=s, axes=axes)
