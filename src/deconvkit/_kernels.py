"""Fused element-wise loops, compiled by numba when it is installed (the ``fast`` extra).

Between its FFTs an RL iteration is a chain of element-wise steps.  numpy runs
each step as its own pass, and on a 2-core machine whose arrays sit in L3 the
per-ufunc cost, not memory traffic, is what is left above the FFT floor: the
Biggs update and extrapolation took 1.08 ms per 1080x1080 float32 as five
ufuncs, 0.31 ms as one compiled loop.  Each function here does one such
chain in one pass; callers check :func:`fused` first and keep their numpy
code as the fallback (other array libraries, no numba, odd layouts), which
the tests compare against these loops.

The loops release the GIL, so :func:`~deconvkit._array_api.blockwise` shares
their blocks among its threads as it does numpy's.
"""

from __future__ import annotations

import importlib.util
import os
import threading

import numpy as np

from ._array_api import over_slices

# numba is optional (numpy's passes are the fallback) and imported only when
# a loop first runs: ``import deconvkit`` does not pay its 0.2 s
AVAILABLE = importlib.util.find_spec("numba") is not None
# DECONVKIT_NUMBA=0 turns the compiled loops off (to compare, or to avoid
# the first run's compilation, a few seconds, cached on disk afterwards)
ENABLED = AVAILABLE and os.environ.get("DECONVKIT_NUMBA", "1") != "0"


def fused(*arrays) -> bool:
    """True when the compiled loops apply: numba present, and C-contiguous
    numpy arrays of one float dtype and one shape."""
    if not ENABLED:
        return False
    first = arrays[0]
    if not all(type(a) is np.ndarray and a.dtype == first.dtype and a.shape == first.shape
               and a.flags.c_contiguous for a in arrays) or first.dtype.kind != "f":
        return False
    if first.dtype not in _compiled:
        _compile(first.dtype)
    return True


_compiled: set = set()
_compile_lock = threading.Lock()


def _compile(dtype) -> None:
    """Compiles (or loads from numba's cache) every loop for ``dtype`` at
    once, on tiny arrays: the first call then does not pay it mid-run, and a
    warm-up call settles the process's memory (compiling takes ~100 MB)."""
    with _compile_lock:
        if dtype in _compiled:
            return
        one = np.ones(1, dtype)
        rl_update(one.copy(), one)
        biggs_update(one.copy(), one, one.copy(), alpha=0.5)
        biggs_change(one, one, one.copy(), (...,), False)
        ratio(one.copy(), (Ellipsis,), one, tiny=1.0, background=0.0, negatives=False,
              track=True)
        _compiled.add(dtype)


def _jit(function=None, **options):
    """numba's ``njit``, applied at the first call."""
    if function is None:
        return lambda f: _jit(f, **options)
    return _Compiled(function, options)


class _Compiled:
    def __init__(self, function, options):
        self.function, self.options, self.dispatcher = function, options, None

    def __call__(self, *args):
        if self.dispatcher is None:
            import numba

            # no fastmath: the element-wise results are numpy's to the last
            # bit (only sums differ, by their order), so the fallback and
            # these loops agree; numpy's error model: x / 0 is inf, not an
            # exception (whose check stops SIMD)
            options = dict(nogil=True, error_model="numpy", **self.options)
            try:  # cached on disk next to this file, or in the user's cache
                self.dispatcher = numba.njit(cache=True, **options)(self.function)
            except RuntimeError:  # neither is writable: compile in each process
                self.dispatcher = numba.njit(**options)(self.function)
        return self.dispatcher(*args)


# ``zero`` and ``alpha`` come in the arrays' dtype: a float64 literal would
# widen float32 arithmetic, and the results would no longer be numpy's
# the element-wise loops take 1-D views (one compiled version per dtype)
@_jit
def _rl_update(new, current, zero):
    for i in range(new.size):
        new[i] = max(new[i], zero) * current[i]


@_jit
def _biggs_update(new, current, previous, out, alpha, zero):
    for i in range(new.size):
        x = max(new[i], zero) * current[i]
        new[i] = x
        out[i] = max(x + alpha * (x - previous[i]), zero)


@_jit
def _biggs_change(new, current, last, step, first, zero):
    numerator = 0.0
    denominator = 0.0
    for a in range(new.shape[0]):
        for k in range(last.shape[1]):
            i = k * step
            for j in range(new.shape[2]):
                change = max(new[a, i, j], zero) * current[a, i, j] - current[a, i, j]
                if not first:
                    numerator += change * last[a, k, j]
                    denominator += last[a, k, j] * last[a, k, j]
                last[a, k, j] = change
    return numerator, denominator


def _flat(a):
    """A 1-D view of a C-contiguous array (a copy would lose the writes)."""
    if not a.flags.c_contiguous:
        raise ValueError("the compiled loops need C-contiguous arrays; check fused() first")
    return a.reshape(-1)


def rl_update(new, current) -> None:
    """In place, ``new = max(new, 0) * current``: RL's multiplicative step,
    ``new`` holding ``A^T(y / Ax) / A^T 1``.  A block function."""
    _rl_update(_flat(new), _flat(current), new.dtype.type(0))


def biggs_update(new, current, previous, out=None, *, alpha: float) -> None:
    """In place, RL's step ``x_(k+1) = max(new, 0) * y_k`` into ``new`` and
    Biggs' next point ``y_(k+1) = max(x_(k+1) + alpha (x_(k+1) - x_k), 0)``
    into ``out``, by default over ``previous`` (which holds x_k).  A block
    function."""
    out = previous if out is None else out
    _biggs_update(_flat(new), _flat(current), _flat(previous), _flat(out),
                  new.dtype.type(alpha), new.dtype.type(0))


def biggs_change(new, current, last, sample, first: bool) -> tuple[float, float]:
    """RL's change ``g_k = max(new, 0) * y_k - y_k`` on Biggs' lattice
    ``sample`` (from ``_alpha_sample``: everything, or every ``stride``-th
    slice along one axis), written over ``last`` (g_(k-1), the lattice's
    shape); returns ``<g_k, g_(k-1)>`` and ``<g_(k-1), g_(k-1)>`` (zeros when
    ``first``), summed in float64.  Reads ``new`` before any full pass
    changes it, so that alpha is known for the fused update."""
    axis, step = _lattice(sample, new.ndim)
    shape = new.shape

    def as3d(a, n):
        return a.reshape(int(np.prod(shape[:axis])), n, int(np.prod(shape[axis + 1:])))

    sums = _biggs_change(as3d(new, shape[axis]), as3d(current, shape[axis]),
                         as3d(last, last.shape[axis]), step, first, new.dtype.type(0))
    return float(sums[0]), float(sums[1])


def _lattice(sample, ndim):
    """``(axis, step)`` of a lattice of :func:`_alpha_sample`'s form."""
    if sample == (...,):
        return 0, 1
    axis = len(sample) - 1
    return axis, sample[axis].step


# the sum of squares may be reordered (SIMD lanes); nothing else can be
@_jit(fastmath={"reassoc"})
def _ratio(predicted, observed, offsets, ranges, tiny, background, negatives, track, zero):
    oz, oy, ox = offsets
    a0, a1, z0, z1, y0, y1 = ranges
    squares = 0.0
    for a in range(a0, a1):
        for z in range(z0, z1):
            for y in range(y0, y1):
                row = predicted[a, z + oz, y + oy, ox:ox + observed.shape[3]]
                data = observed[a, z, y]
                partial = zero
                for x in range(data.size):
                    p = max(row[x] + background, tiny)
                    if track:
                        partial += (p - data[x]) * (p - data[x])
                    q = data[x] / p
                    row[x] = max(q, zero) if negatives else q
                squares += partial
    return squares


def window_fused(buffer, window, observed) -> bool:
    """True when :func:`ratio` applies: :func:`fused` arrays (``buffer`` the
    FFT grid, ``observed`` the data), and ``window`` plain slices of at most
    three trailing axes of ``buffer`` whose shape is ``observed``'s."""
    if not (ENABLED and fused(buffer) and fused(observed) and observed.dtype == buffer.dtype):
        return False
    if window[:1] != (Ellipsis,) or len(window) > 4 or len(window) > buffer.ndim + 1:
        return False
    parts = window[1:]
    return (all(isinstance(p, slice) and p.step in (None, 1) for p in parts)
            and buffer[window].shape == observed.shape)


def ratio(buffer, window, observed, *, tiny: float, background: float, negatives: bool,
          track: bool) -> float:
    """In place over ``buffer[window]`` (``Ax``): RL's ratio ``y / max(Ax + b,
    tiny)``, clamped at 0 when ``negatives`` (the data has negative samples);
    returns ``|max(Ax + b, tiny) - y|^2`` when ``track`` (else 0), summed in
    float64.  One pass, threaded over blocks; see :func:`window_fused`."""
    parts = window[1:] or tuple(slice(0, n) for n in buffer.shape[-3:])
    spatial = len(parts)
    pad = (1,) * (3 - spatial)
    batch = int(np.prod(buffer.shape[:buffer.ndim - spatial]))
    grid = buffer.reshape((batch,) + pad + buffer.shape[buffer.ndim - spatial:])
    data = observed.reshape((batch,) + pad + observed.shape[observed.ndim - spatial:])
    offsets = np.array((0,) * (3 - spatial) + tuple(p.start or 0 for p in parts),
                       dtype=np.int64)
    # threads share the first axis that has more than one layer
    axis = next((k for k in range(3) if data.shape[k] > 1), 0)
    dtype = buffer.dtype.type

    def run(part):
        ranges = [0, data.shape[0], 0, data.shape[1], 0, data.shape[2]]
        ranges[2 * axis:2 * axis + 2] = part.start, part.stop
        return _ratio(grid, data, offsets, np.array(ranges, dtype=np.int64), dtype(tiny),
                      dtype(background), negatives, track, dtype(0))

    return sum(over_slices(run, data.shape[axis], observed.nbytes))


@_jit
def _combine(out, updates, coefficients, zero):
    # the order of numpy's passes: the last update first, then the others
    last = len(updates) - 1
    for i in range(out.size):
        total = coefficients[last] * updates[last][i]
        for j in range(last):
            total += coefficients[j] * updates[j][i]
        out[i] = max(total, zero)


def combine(out, updates, coefficients) -> None:
    """``out = max(sum_j c_j u_j, 0)`` in one pass (Anderson's next point),
    summed in numpy's order, the last update first.  A block function."""
    _combine(_flat(out), tuple(_flat(u) for u in updates),
             np.asarray(coefficients, dtype=out.dtype), out.dtype.type(0))


def compile_combine(dtype, count: int) -> None:
    """Compiles :func:`combine` for 1 to ``count`` updates at once (one
    version per count), so that a run does not pay it mid-way."""
    one = np.ones(1, dtype)
    for n in range(1, count + 1):
        combine(one.copy(), (one,) * n, np.ones(n))
