"""Fused element-wise loops, compiled by numba when it is installed (the ``fast`` extra).

Between its FFTs an RL or TV-ADMM iteration is a chain of element-wise steps.  numpy runs
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

from ._array_api import _THREADS, BLOCK_BYTES, over_slices

# numba is optional (numpy's passes are the fallback) and imported only when
# a loop first runs: ``import deconvkit`` does not pay its 0.2 s
AVAILABLE = importlib.util.find_spec("numba") is not None
# DECONVKIT_NUMBA=0 turns the compiled loops off (to compare, or to avoid
# the first run's compilation, a few seconds, cached on disk afterwards)
ENABLED = AVAILABLE and os.environ.get("DECONVKIT_NUMBA", "1") != "0"
# DECONVKIT_SEPARABLE=0 keeps separable PSFs on the FFTs too, in the convolution
# operator and in RL (to compare)
SEPARABLE = os.environ.get("DECONVKIT_SEPARABLE", "1") != "0"


def fused(*arrays) -> bool:
    """True when the compiled loops apply: numba present, and C-contiguous
    numpy arrays of one float dtype and one shape."""
    if not ENABLED:
        return False
    first = arrays[0]
    if not all(type(a) is np.ndarray and a.dtype == first.dtype and a.shape == first.shape
               and a.flags.c_contiguous for a in arrays) or first.dtype.kind != "f":
        return False
    _compile(first.dtype)
    return True


_compiled: set = set()
_compile_lock = threading.Lock()


def _compile(dtype) -> None:
    """Compiles (or loads from numba's cache) every loop for ``dtype`` at
    once, on tiny arrays: the first call then does not pay it mid-run, and a
    warm-up call settles the process's memory (compiling takes ~100 MB)."""
    if dtype in _compiled:  # the common case, without the lock
        return
    with _compile_lock:
        if dtype in _compiled:
            return
        one = np.ones(1, dtype)
        rl_update(one.copy(), one)
        biggs_update(one.copy(), one, one.copy(), alpha=0.5)
        biggs_change(one, one, one.copy(), (...,), False)
        ratio(one.copy(), (Ellipsis,), one, tiny=1.0, background=0.0, negatives=False,
              track=True)
        split = np.ones((1, 1), dtype)
        tv_split(one, split, split.copy(), one.copy(), one.copy(), threshold=0.5, positive=True)
        tv_right(split, one, one.copy())
        spectrum = np.ones(1, np.result_type(dtype, np.complex64))
        tv_spectra(spectrum, spectrum.copy(), spectrum.copy(), one)
        tv_data(one.copy(), one.copy(), one.copy(), (Ellipsis,), one, rho=1.0)
        scale(spectrum, one)
        _compiled.add(dtype)


def _jit(function=None, **options):
    """numba's ``njit``, applied when a loop first runs (see :func:`_materialise`)."""
    if function is None:
        return lambda f: _jit(f, **options)
    _LOOPS[function.__name__] = (function, options)
    return _Lazy(function.__name__)


_LOOPS: dict = {}
_materialise_lock = threading.Lock()


class _Lazy:
    def __init__(self, name):
        self.name = name

    def __call__(self, *args):
        _materialise()
        return globals()[self.name](*args)


def _materialise() -> None:
    """Imports numba and puts every loop's dispatcher in place of its name, so
    that loops can call loops (numba resolves them among the globals)."""
    with _materialise_lock:
        import numba

        for name, (function, options) in _LOOPS.items():
            if isinstance(globals()[name], _Lazy):
                globals()[name] = _njit(numba, function, options)


def _njit(numba, function, options):
    # no fastmath: the real element-wise results are numpy's to the last bit
    # (sums differ by their order, complex products by numpy's SIMD fused
    # multiply-adds), so the fallback and these loops agree;
    # numpy's error model: x / 0 is inf, not an exception (whose check stops SIMD)
    options = dict(nogil=True, error_model="numpy", **options)
    try:  # cached on disk next to this file, or in the user's cache
        return numba.njit(cache=True, **options)(function)
    except RuntimeError:  # neither is writable: compile in each process
        return numba.njit(**options)(function)


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


# the two sums may be reordered (SIMD lanes: in order, their float64
# dependency chains kept the loop scalar: 0.39 against 0.09 ms per 1080x1080
# lattice in cache)
@_jit(fastmath={"reassoc"})
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
    axis, step = _lattice(sample)
    shape = new.shape

    def as3d(a, n):
        return a.reshape(int(np.prod(shape[:axis])), n, int(np.prod(shape[axis + 1:])))

    sums = _biggs_change(as3d(new, shape[axis]), as3d(current, shape[axis]),
                         as3d(last, last.shape[axis]), step, first, new.dtype.type(0))
    return float(sums[0]), float(sums[1])


def _lattice(sample):
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
    if not (fused(buffer) and fused(observed) and observed.dtype == buffer.dtype):
        return False
    return _plain_window(buffer, window) and buffer[window].shape == observed.shape


def _plain_window(buffer, window) -> bool:
    """``(Ellipsis, slice, ...)`` with unit steps, over at most three trailing axes."""
    if window[:1] != (Ellipsis,) or len(window) > 4 or len(window) > buffer.ndim + 1:
        return False
    return all(isinstance(p, slice) and p.step in (None, 1) for p in window[1:])


def ratio(buffer, window, observed, *, tiny: float, background: float, negatives: bool,
          track: bool) -> float:
    """In place over ``buffer[window]`` (``Ax``): RL's ratio ``y / max(Ax + b,
    tiny)``, clamped at 0 when ``negatives`` (the data has negative samples);
    returns ``|max(Ax + b, tiny) - y|^2`` when ``track`` (else 0), summed in
    float64.  One pass, threaded over blocks; see :func:`window_fused`."""
    parts, offsets = _window_layout(buffer, window)
    grid, data = _spatial4d(buffer, len(parts)), _spatial4d(observed, len(parts))
    t = buffer.dtype.type
    return sum(_over_layers(
        lambda ranges: _ratio(grid, data, offsets, ranges, t(tiny), t(background), negatives,
                              track, t(0)),
        data.shape, observed.nbytes))


def _window_layout(buffer, window):
    """``window``'s slices (those of the last three axes when it is whole) and
    its start along Z, Y, X of :func:`_spatial4d`'s layout."""
    parts = window[1:] or tuple(slice(0, n) for n in buffer.shape[-3:])
    offsets = (0,) * (3 - len(parts)) + tuple(p.start or 0 for p in parts)
    return parts, np.array(offsets, dtype=np.int64)


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


# Total variation's ADMM splits (restoration.variational._admm): x is (B, Z,
# Y, X) with the d <= 3 spatial axes last (the others of size 1), the
# gradient splits (d, B, Z, Y, X); differences are periodic, and every
# rounding step is numpy's, in its order.
@_jit
def _tv_split(x, edge_dual, edge_sum, box_dual, box_sum, ranges, minus_threshold, positive,
              alpha, beta, floor, zero, one):
    d = edge_dual.shape[0]
    nz, ny, nx = x.shape[1], x.shape[2], x.shape[3]
    b0, b1, z0, z1, y0, y1 = ranges
    # a row at a time, in short loops over few arrays each: each loop then
    # runs on SIMD (one loop over all eleven rows did not: too many to prove
    # apart), and the row's temporaries stay in L1
    v = np.empty((3, nx), x.dtype)
    keep = np.empty(nx, x.dtype)
    for b in range(b0, b1):
        for z in range(z0, z1):
            zn = z + 1 if z + 1 < nz else 0
            for y in range(y0, y1):
                yn = y + 1 if y + 1 < ny else 0
                row = x[b, z, y]
                # v = a (∇x - d2) + b (u2 - d2), components in the spatial axes' order
                dual, total = edge_dual[:, b, z, y], edge_sum[:, b, z, y]
                c = d - 1
                _difference(row[1:], row[:-1], dual[c, :-1], total[c, :-1], v[c, :-1],
                            alpha, beta)
                _difference(row[:1], row[-1:], dual[c, -1:], total[c, -1:], v[c, -1:],
                            alpha, beta)
                if d >= 2:
                    _difference(x[b, z, yn], row, dual[d - 2], total[d - 2], v[d - 2],
                                alpha, beta)
                if d == 3:
                    _difference(x[b, zn, y], row, dual[0], total[0], v[0], alpha, beta)
                _shrink_factor(v, d, keep, minus_threshold, floor, zero, one)
                for c in range(d):
                    _dual_and_sum(v[c], keep, edge_dual[c, b, z, y], edge_sum[c, b, z, y])
                _box(row, box_dual[b, z, y], box_sum[b, z, y], positive, alpha, beta, zero)


@_jit(inline="always")
def _relaxed(applied, dual, total, alpha, beta):
    # over-relaxed ADMM's point a Kx + (1 - a) u - d, as a (Kx - d) + b (u - d)
    # with u - d = ((u + d) - d) - d and b = 1 - a: variational._relaxed_into's
    # rounding order
    return alpha * (applied - dual) + beta * ((total - dual) - dual)


@_jit
def _difference(ahead, here, dual, total, out, alpha, beta):
    for i in range(out.size):
        out[i] = _relaxed(ahead[i] - here[i], dual[i], total[i], alpha, beta)


@_jit
def _shrink_factor(v, d, keep, minus_threshold, floor, zero, one):
    # numpy's order: |v|^2 summed from the first component, 1 / max(|v|, floor),
    # times -t, plus 1, at least 0
    for i in range(keep.size):
        magnitude = v[0, i] * v[0, i]
        for c in range(1, d):
            magnitude = magnitude + v[c, i] * v[c, i]
        factor = one / max(np.sqrt(magnitude), floor)
        keep[i] = max(factor * minus_threshold + one, zero)


@_jit
def _dual_and_sum(v, keep, dual, total):
    for i in range(v.size):
        change = v[i] * keep[i] - v[i]
        dual[i] = change
        total[i] = (v[i] + change) + change


@_jit
def _box(x, dual, total, positive, alpha, beta, zero):
    for i in range(x.size):
        rest = _relaxed(x[i], dual[i], total[i], alpha, beta)
        change = max(-rest, zero) if positive else zero
        dual[i] = change
        total[i] = (rest + change) + change if positive else rest


@_jit
def _tv_right(edge_sum, box_sum, right, ranges, zero):
    d = edge_sum.shape[0]
    nz, ny, nx = right.shape[1], right.shape[2], right.shape[3]
    b0, b1, z0, z1, y0, y1 = ranges
    for b in range(b0, b1):
        for z in range(z0, z1):
            zp = z - 1 if z > 0 else nz - 1
            for y in range(y0, y1):
                yp = y - 1 if y > 0 else ny - 1
                for i in range(nx):
                    p = i - 1 if i > 0 else nx - 1
                    total = zero
                    c = 0
                    if d == 3:
                        total = (total + edge_sum[c, b, zp, y, i]) - edge_sum[c, b, z, y, i]
                        c += 1
                    if d >= 2:
                        total = (total + edge_sum[c, b, z, yp, i]) - edge_sum[c, b, z, y, i]
                        c += 1
                    total = (total + edge_sum[c, b, z, y, p]) - edge_sum[c, b, z, y, i]
                    right[b, z, y, i] = total + box_sum[b, z, y, i]


def _spatial4d(a, d: int):
    """``a`` as (B, Z, Y, X): its last ``d`` axes spatial, the rest merged into B."""
    return a.reshape((int(np.prod(a.shape[:a.ndim - d])),) + (1,) * (3 - d) + a.shape[-d:])


def _over_layers(run, shape4d, nbytes: int) -> list:
    """``run(ranges)`` over blocks of the first of B, Z, Y with more than one
    layer, threaded; ``ranges`` is (b0, b1, z0, z1, y0, y1).  Returns the
    results in block order."""
    axis = next((k for k in range(3) if shape4d[k] > 1), 0)

    def block(part):
        ranges = [0, shape4d[0], 0, shape4d[1], 0, shape4d[2]]
        ranges[2 * axis:2 * axis + 2] = part.start, part.stop
        return run(np.array(ranges, dtype=np.int64))

    return over_slices(block, shape4d[axis], nbytes)


def tv_fused(edge_dual, edge_sum, *objects) -> bool:
    """True when :func:`tv_split` and :func:`tv_right` apply: :func:`fused`
    object-shaped arrays, and gradient splits of theirs with 1 to 3
    components (the spatial axes, last)."""
    return (1 <= edge_dual.shape[0] <= 3 and fused(*objects) and fused(edge_dual, edge_sum)
            and edge_dual.shape[1:] == objects[0].shape and edge_dual.dtype == objects[0].dtype)


def tv_split(x, edge_dual, edge_sum, box_dual, box_sum, *, threshold: float,
             positive: bool, relaxation: float = 1.0) -> None:
    """TV-ADMM's gradient and box splits in one pass, from the new ``x``:
    the over-relaxed point ``v = a ∇x + (1 - a) u2 - d2`` (periodic
    differences; ``a`` = ``relaxation``, ``u2`` = ``edge_sum - edge_dual``
    the last split), its isotropic shrinkage by ``threshold``, the dual ``d2
    = u2 - v`` and ``u2 + d2 = v + 2 d2`` (into ``edge_dual``,
    ``edge_sum``); likewise ``u3 = max(v, 0)`` (or ``v`` unless
    ``positive``) from ``v = a x + (1 - a) u3 - d3`` into ``box_dual``,
    ``box_sum``."""
    d = edge_dual.shape[0]
    x4 = _spatial4d(x, d)
    splits = [a.reshape((d,) + x4.shape) for a in (edge_dual, edge_sum)]
    boxes = [_spatial4d(a, d) for a in (box_dual, box_sum)]
    t = x.dtype.type
    _over_layers(lambda ranges: _tv_split(x4, *splits, *boxes, ranges, t(-threshold), positive,
                                          t(relaxation), t(1.0 - relaxation), t(1e-30), t(0),
                                          t(1)), x4.shape, edge_dual.nbytes)


def tv_right(edge_sum, box_sum, right) -> None:
    """``right = ∇^T(edge_sum) + box_sum`` (periodic): the next x-step's
    right-hand side, in one pass."""
    d = edge_sum.shape[0]
    r4 = _spatial4d(right, d)
    splits = edge_sum.reshape((d,) + r4.shape)
    box = _spatial4d(box_sum, d)
    _over_layers(lambda ranges: _tv_right(splits, box, r4, ranges, right.dtype.type(0)),
                 r4.shape, edge_sum.nbytes)


@_jit
def _tv_spectra(spectrum, right, otf, inverse):
    for i in range(spectrum.size):
        h = otf[i]
        value = (spectrum[i] * h.conjugate() + right[i]) * inverse[i]
        spectrum[i] = value
        right[i] = value * h


def tv_spectra_fused(spectrum, right, otf, inverse) -> bool:
    """True when :func:`tv_spectra` applies: C-contiguous numpy spectra of one
    complex dtype and shape, and a real ``inverse`` of its precision."""
    if not ENABLED:
        return False
    arrays = (spectrum, right, otf, inverse)
    if not all(type(a) is np.ndarray and a.flags.c_contiguous and a.shape == spectrum.shape
               for a in arrays):
        return False
    if not (spectrum.dtype.kind == "c" and right.dtype == otf.dtype == spectrum.dtype
            and inverse.dtype == spectrum.real.dtype):
        return False
    _compile(inverse.dtype)
    return True


def tv_spectra(spectrum, right, otf, inverse) -> None:
    """TV-ADMM's x-step in Fourier, in place: ``X = (conj(H) U + R) / N`` into
    ``spectrum`` (``U``, the data split's transform) and ``H X`` into
    ``right`` (``R``, the right-hand side's); ``inverse`` is ``1 / N``.  A
    block function."""
    _tv_spectra(_flat(spectrum), _flat(right), _flat(otf), _flat(inverse))


@_jit
def _tv_data(blurred, dual, total, data, offsets, ranges, scale, alpha, beta, zero):
    oz, oy, ox = offsets
    dz, dy, dx = data.shape[1], data.shape[2], data.shape[3]
    b0, b1, z0, z1, y0, y1 = ranges
    squares = 0.0
    for b in range(b0, b1):
        for z in range(z0, z1):
            for y in range(y0, y1):
                row, duals, sums = blurred[b, z, y], dual[b, z, y], total[b, z, y]
                if not (oz <= z < oz + dz and oy <= y < oy + dy):
                    _minus_dual(row, duals, sums, alpha, beta, zero)
                    continue
                values = data[b, z - oz, y - oy]
                inside = slice(ox, ox + dx)
                _minus_dual(row[:ox], duals[:ox], sums[:ox], alpha, beta, zero)
                _minus_dual(row[ox + dx:], duals[ox + dx:], sums[ox + dx:], alpha, beta, zero)
                squares += _squared_difference(row[inside], values)
                _data_split(row[inside], duals[inside], sums[inside], values, scale, alpha,
                            beta)
    return squares


@_jit
def _minus_dual(row, duals, sums, alpha, beta, zero):
    # u1 + d1 = v (the relaxed point), and d1 = 0: outside the observed window
    for i in range(row.size):
        sums[i] = _relaxed(row[i], duals[i], sums[i], alpha, beta)
        duals[i] = zero


@_jit
def _data_split(row, duals, sums, values, scale, alpha, beta):
    # v the relaxed point; d1 = (y - v) / (1 + rho); u1 + d1 = v + 2 d1
    for i in range(row.size):
        v = _relaxed(row[i], duals[i], sums[i], alpha, beta)
        change = (values[i] - v) / scale
        duals[i] = change
        sums[i] = (v + change) + change


@_jit(fastmath={"reassoc"})
def _squared_difference(a, b):
    total = a.dtype.type(0)
    for i in range(a.size):
        total += (a[i] - b[i]) * (a[i] - b[i])
    return total


def tv_data_fused(blurred, dual, total, window, data) -> bool:
    """True when :func:`tv_data` applies (as :func:`window_fused`)."""
    return fused(blurred, dual, total) and window_fused(blurred, window, data)


def tv_data(blurred, dual, total, window, data, *, rho: float, relaxation: float = 1.0) -> float:
    """TV-ADMM's Gaussian data split in one pass over the grid, in place: the
    over-relaxed point ``v = a Ax + (1 - a) u1 - d1`` (``blurred`` = Ax;
    ``a`` = ``relaxation``; ``u1`` = ``total - dual`` the last split), then in the observed
    ``window`` ``d1 = (y - v) / (1 + rho)`` and ``u1 + d1 = v + 2 d1`` into
    ``dual`` and ``total``, and ``d1 = 0``, ``u1 + d1 = v`` outside it.
    Returns ``|Ax - y|^2`` over the window."""
    parts, offsets = _window_layout(blurred, window)
    grid4, dual4, total4, data4 = (_spatial4d(a, len(parts))
                                   for a in (blurred, dual, total, data))
    t = blurred.dtype.type
    return float(sum(_over_layers(
        lambda ranges: _tv_data(grid4, dual4, total4, data4, offsets, ranges, t(1 + rho),
                                t(relaxation), t(1.0 - relaxation), t(0)),
        grid4.shape, blurred.nbytes)))


@_jit
def _scale(spectrum, otf):
    for i in range(spectrum.size):
        spectrum[i] = spectrum[i] * otf[i]


def real_otf(otf):
    """The real part of ``otf`` when its imaginary part is round-off (a PSF
    symmetric about its centre: Gaussian, disk, widefield) and the loops
    apply; else ``otf`` itself.  Half the memory, and a lighter product."""
    if not (ENABLED and type(otf) is np.ndarray and otf.dtype.kind == "c"):
        return otf
    real = np.ascontiguousarray(otf.real)
    tolerance = 8 * np.finfo(real.dtype).eps * float(np.abs(real).max(initial=0.0))
    if float(np.abs(otf.imag).max(initial=0.0)) > tolerance:
        return otf
    _compile(real.dtype)
    return real


def scale(spectrum, otf) -> None:
    """In place, ``spectrum *= otf`` for a real ``otf`` (:func:`real_otf`).
    A block function."""
    if spectrum.shape != otf.shape:
        raise ValueError(f"scale needs one shape, got {spectrum.shape} and {otf.shape}")
    _scale(_flat(spectrum), _flat(otf))


@_jit
def _window_change(new, old, offsets, ranges, width, center):
    oz, oy, ox = offsets
    b0, b1, z0, z1, y0, y1 = ranges
    change = 0.0
    norm = 0.0
    for b in range(b0, b1):
        for z in range(z0, z1):
            for y in range(y0, y1):
                a = new[b, z + oz, y + oy, ox:ox + width]
                c, n = _row_change(a, old[b, z + oz, y + oy, ox:ox + width], center)
                change += c
                norm += n
    return change, norm


@_jit(fastmath={"reassoc"})
def _row_change(a, b, center):
    change = a.dtype.type(0)
    norm = a.dtype.type(0)
    level = a.dtype.type(center)
    for i in range(a.size):
        change += (a[i] - b[i]) * (a[i] - b[i])
        norm += (a[i] - level) * (a[i] - level)
    return change, norm


def change_fused(new, old, window) -> bool:
    """True when :func:`relative_change` applies: :func:`fused` arrays and
    ``window`` plain slices of at most three trailing axes."""
    return fused(new, old) and _plain_window(new, window)


def relative_change(new, old, window, center: float = 0.0) -> float:
    """``|new - old| / |new - center|`` over ``new[window]`` (0 when both
    vanish), in one pass; the stopping rule's relative change, summed in
    float64 (see :func:`deconvkit.restoration._stopping.relative_change`)."""
    parts, offsets = _window_layout(new, window)
    spatial = len(parts)
    new4, old4 = _spatial4d(new, spatial), _spatial4d(old, spatial)
    # the window's own extent in that layout: the threads split it
    extent = new4.shape[:1] + (1,) * (3 - spatial) + new[(Ellipsis,) + parts].shape[-spatial:]
    sums = _over_layers(lambda ranges: _window_change(new4, old4, offsets, ranges, extent[3],
                                                      float(center)),
                        extent, new.nbytes)
    change, norm = (sum(column) ** 0.5 for column in zip(*sums))
    return change / norm if norm > 0 else 0.0


# Blur by a separable PSF (a Gaussian, a box) as one 1-D pass per axis.  A
# pass costs K multiply-adds per sample against the FFT's ~log2(N) per sample
# per transform; with side lengths summing to up to ~4 log2(N) the passes
# win (Convolution.separable_weights takes them up to 3 log2(N)): 3.2 against
# 7.7 ms for a 1040x1040 blur and its adjoint by a 17x17 Gaussian, 31 against
# 76 ms over 76x268x268 by 13x13x13 (2 cores; the FFT floor of one RL
# iteration, four transforms of the fast-length grid).  Each pass reads one
# array and writes another, the axis of the pass in the middle of an
# (A, L, C) view so that the inner loop runs along whole contiguous rows.
@_jit
def _correlate_middle(x, weights, out, ranges, full, zero):
    a0, a1, j0, j1 = ranges
    length = x.shape[1]
    for a in range(a0, a1):
        for j in range(j0, j1):
            row = out[a, j]
            for i in range(row.size):
                row[i] = zero
            # valid: out[j] = sum_k w[k] x[j + k]; full: out[j] = sum_k w[k] x[j - k]
            first, stop = ((max(0, j - length + 1), min(weights.size, j + 1)) if full
                           else (0, weights.size))
            for k in range(first, stop):
                source, w = x[a, j - k if full else j + k], weights[k]
                for i in range(row.size):
                    row[i] += w * source[i]


@_jit
def _correlate_last(x, weights, out, ranges, full, zero):
    for r in range(ranges[0], ranges[1]):
        row, source = out[r], x[r]
        for i in range(row.size):
            row[i] = zero
        for k in range(weights.size):
            w = weights[k]
            if full:  # unit-step slices both ways, so that the loops vectorise
                for i in range(source.size):
                    row[i + k] += w * source[i]
            else:
                for i in range(row.size):
                    row[i] += w * source[i + k]


def passes_apply(x) -> bool:
    """True when :func:`correlate_axis` can blur ``x``: the loops on, separable
    blurs not turned off (``DECONVKIT_SEPARABLE=0``), a numpy float32 or
    float64 array (numba has no float16 or long double arithmetic)."""
    return (ENABLED and SEPARABLE and type(x) is np.ndarray
            and x.dtype in (np.float32, np.float64))


def correlate_axis(x, weights, out, axis: int, *, full: bool) -> None:
    """One axis of a separable blur, from ``x`` into ``out`` (C-contiguous
    numpy arrays of one float dtype, equal but along ``axis``).

    ``full=False``: the valid correlation, ``out[.., j, ..] = sum_k w[k]
    x[.., j + k, ..]`` (``out`` shorter by ``len(w) - 1``); ``full=True``:
    its adjoint, ``out[.., j, ..] = sum_k w[k] x[.., j - k, ..]`` over the
    samples that exist (``out`` longer by ``len(w) - 1``).  Threaded over
    blocks of the leading axes, or of ``axis`` itself when it leads.
    """
    if not (x.flags.c_contiguous and out.flags.c_contiguous):
        raise ValueError("correlate_axis needs C-contiguous arrays (a reshaped copy of "
                         "out would lose the writes)")
    axis %= x.ndim
    lead = int(np.prod(x.shape[:axis]))
    weights = np.ascontiguousarray(weights, dtype=x.dtype)
    zero = x.dtype.type(0)
    if axis == x.ndim - 1:
        src, dst = x.reshape(lead, x.shape[-1]), out.reshape(lead, out.shape[-1])
        over_slices(lambda part: _correlate_last(src, weights, dst,
                                                 np.array([part.start, part.stop]), full, zero),
                    lead, out.nbytes)
        return
    trail = int(np.prod(x.shape[axis + 1:]))
    src = x.reshape(lead, x.shape[axis], trail)
    dst = out.reshape(lead, out.shape[axis], trail)
    rows = out.shape[axis]

    def block(part):  # the leading axes' blocks, or the pass axis' own when it leads
        ranges = [part.start, part.stop, 0, rows] if lead > 1 else [0, 1, part.start, part.stop]
        _correlate_middle(src, weights, dst, np.array(ranges, dtype=np.int64), full, zero)

    over_slices(block, lead if lead > 1 else rows, out.nbytes)


# N-linear interpolation at affinely mapped points (operators.Warp), without a
# stored matrix: the points come from the map as the loop reaches them, so
# the operator keeps nothing a sample (its sparse matrix: 52 bytes a sample in
# 2-D).  ``grid`` is the array on the output grid, ``image`` on the input's;
# forward fills ``grid``, the adjoint adds into ``image`` (zeroed by the
# caller), each output sample's weights the same both ways: an exact adjoint.
# One loop per dimension: a single N-D loop (corners as bits, flat indices)
# measured 4-6 times slower at 1024^2 and 2048^2.
@_jit
def _warp_2d(image, grid, affine, rows, adjoint):
    height, width = image.shape[1], image.shape[2]
    for k in range(grid.shape[0]):
        for i in range(rows[0], rows[1]):
            for j in range(grid.shape[2]):
                p = affine[0] * i + affine[1] * j + affine[2]
                q = affine[3] * i + affine[4] * j + affine[5]
                below_p, below_q = np.floor(p), np.floor(q)
                i0, j0 = int(below_p), int(below_q)
                fp, fq = p - below_p, q - below_q
                total = 0.0
                for di in range(2):
                    ii = i0 + di
                    if ii < 0 or ii >= height:
                        continue
                    wi = fp if di else 1.0 - fp
                    for dj in range(2):
                        jj = j0 + dj
                        if jj < 0 or jj >= width:
                            continue
                        w = wi * (fq if dj else 1.0 - fq)
                        if adjoint:
                            image[k, ii, jj] += w * grid[k, i, j]
                        else:
                            total += w * image[k, ii, jj]
                if not adjoint:
                    grid[k, i, j] = total


@_jit
def _warp_3d(image, grid, affine, rows, adjoint):
    depth, height, width = image.shape[1], image.shape[2], image.shape[3]
    for k in range(grid.shape[0]):
        for i in range(rows[0], rows[1]):
            for j in range(grid.shape[2]):
                for m in range(grid.shape[3]):
                    p = affine[0] * i + affine[1] * j + affine[2] * m + affine[3]
                    q = affine[4] * i + affine[5] * j + affine[6] * m + affine[7]
                    r = affine[8] * i + affine[9] * j + affine[10] * m + affine[11]
                    below_p, below_q, below_r = np.floor(p), np.floor(q), np.floor(r)
                    i0, j0, m0 = int(below_p), int(below_q), int(below_r)
                    fp, fq, fr = p - below_p, q - below_q, r - below_r
                    total = 0.0
                    for di in range(2):
                        ii = i0 + di
                        if ii < 0 or ii >= depth:
                            continue
                        wi = fp if di else 1.0 - fp
                        for dj in range(2):
                            jj = j0 + dj
                            if jj < 0 or jj >= height:
                                continue
                            wj = wi * (fq if dj else 1.0 - fq)
                            for dm in range(2):
                                mm = m0 + dm
                                if mm < 0 or mm >= width:
                                    continue
                                w = wj * (fr if dm else 1.0 - fr)
                                if adjoint:
                                    image[k, ii, jj, mm] += w * grid[k, i, j, m]
                                else:
                                    total += w * image[k, ii, jj, mm]
                    if not adjoint:
                        grid[k, i, j, m] = total


#: the most copies of the image that the warp's adjoint scatters into at once
#: (one a thread; their sum is the adjoint), and the most memory the copies
#: beyond the image itself may take: a large volume scatters on fewer threads
SCATTER_PARTS = 4
SCATTER_BYTES = 1 << 28


def _scatter_in_parts(loop, image, grid, affine, parts: int) -> None:
    """The warp's adjoint over ``parts`` runs of grid rows, the first into
    ``image``, the others into zeroed copies added to it in order (the sum
    does not depend on the threads' timing)."""
    edges = np.linspace(0, grid.shape[1], parts + 1).astype(np.int64)
    targets = [image] + [np.zeros_like(image) for _ in range(parts - 1)]
    over_slices(lambda part: loop(targets[part.start], grid, affine,
                                  edges[part.start:part.start + 2], True),
                parts, parts * BLOCK_BYTES)  # a block a part
    for target in targets[1:]:
        image += target


def warp(image, grid, matrix, offset, *, adjoint: bool) -> None:
    """``grid`` = the N-linear interpolation of ``image`` at ``matrix @ q +
    offset`` for each index ``q`` of ``grid`` (``adjoint``: ``image`` +=
    its transpose applied to ``grid``); both C-contiguous, one float dtype,
    shaped ``(batch, *spatial)`` with 1 to 3 spatial axes.  The forward pass
    is threaded over blocks of output rows; the adjoint, whose rows scatter
    into shared samples, over the batch, or for volumes of fewer items than
    threads over parts of the rows, each scattering into its own zeroed copy
    of ``image`` (at most :data:`SCATTER_PARTS`), summed in their order after."""
    if image.ndim == 2:  # 1-D: a 2-D warp of one row, which keeps its row
        image, grid = image[:, None, :], grid[:, None, :]
        matrix = np.array([[1.0, 0.0], [0.0, float(matrix[0, 0])]])
        offset = np.array([0.0, float(offset[0])])
    affine = np.ascontiguousarray(np.hstack([matrix, np.reshape(offset, (-1, 1))]).ravel(),
                                  dtype=np.float64)
    loop = _warp_2d if image.ndim == 3 else _warp_3d
    rows = grid.shape[1]
    # volumes only: a 2-D scatter (4 neighbours) costs less than the copies'
    # zeroing and sum (1024^2: 6.4 ms in 2 parts against 4.6; 64x256x256: 29 against 44)
    if adjoint and image.ndim == 4 and image.shape[0] < _THREADS and grid.nbytes > BLOCK_BYTES:
        parts = min(SCATTER_PARTS, _THREADS, rows, 1 + SCATTER_BYTES // image.nbytes)
        if parts > 1:
            _scatter_in_parts(loop, image, grid, affine, parts)
            return
    if adjoint:
        over_slices(lambda part: loop(image[part], grid[part], affine,
                                      np.array([0, rows], dtype=np.int64), True),
                    image.shape[0], image.shape[0] * BLOCK_BYTES)  # a block an item
        return
    over_slices(lambda part: loop(image, grid, affine,
                                  np.array([part.start, part.stop], dtype=np.int64), False),
                rows, grid.nbytes)
