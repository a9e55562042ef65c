"""The N-D convolution operator ``A`` and its exact adjoint ``Aᵀ``."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import scipy.signal

from .. import _kernels
from .._array_api import (
    array_namespace,
    asarray,
    flip,
    irfftn,
    is_numpy,
    is_torch,
    next_fast_len,
    rfftn,
    to_numpy,
    zeros,
)
from .._validate import check_array, check_choice
from ._base import LinearOperator
from ._padding import pad, pad_adjoint

__all__ = ["BOUNDARIES", "Convolution"]

#: boundary models of :class:`Convolution`
BOUNDARIES = ("periodic", "zero", "reflect", "symmetric", "edge", "valid")

# Direct (spatial) convolution beats the FFT for kernels up to this many taps.
_DIRECT_MAX_TAPS = 27


class Convolution(LinearOperator):
    r"""N-D convolution with a PSF under a chosen boundary model, and its adjoint.

    The operator acts on the trailing ``psf.ndim`` axes of its input; leading
    axes are batch axes.  ``forward`` is the blur, ``adjoint`` the transposed
    convolution (correlation with the PSF, folded back through the boundary).

    Parameters
    ----------
    psf : (K1, ..., Kd) array
        The kernel.  Any real kernel is accepted (a PSF need not be positive
        here; solvers check that).  Its centre is sample ``K // 2`` on each axis:
        the middle sample for odd sizes and the one just right of the middle for
        even sizes (the :func:`numpy.fft.ifftshift` convention, as in
        :mod:`scipy.ndimage`).
    boundary : {"symmetric", "reflect", "edge", "zero", "periodic", "valid"}
        How the scene continues beyond the frame.  ``"periodic"`` wraps around;
        ``"zero"``, ``"reflect"``, ``"symmetric"`` and ``"edge"`` extend it as
        :func:`numpy.pad` does (``"reflect"`` mirrors without repeating the edge
        sample, ``"symmetric"`` repeats it); all five keep the shape.
        ``"valid"`` makes no assumption: the operator maps an extended object
        of shape ``n + K - 1`` to the ``n`` observed samples (use
        :meth:`input_shape`).
    stride : int or sequence of int
        Keep every ``stride``-th sample after blurring (the super-resolution
        forward model); the adjoint inserts zeros, then correlates.
    method : {"auto", "fft", "direct"}
        ``"auto"`` uses direct convolution for kernels of at most 27 taps and
        FFTs otherwise, but blurs by a separable PSF (Gaussian, box) on numpy
        data in compiled 1-D passes, one per axis, where they cost less than
        the FFTs (:meth:`separable_weights`; the ``fast`` extra, not for
        ``"periodic"`` kernels over 27 taps, whose FFTs need no padding).
        Transfer functions are cached per shape, dtype and device.

    Notes
    -----
    With :math:`c = \lfloor K/2 \rfloor` and :math:`\tilde x` the extension
    of :math:`x` by the boundary model,

    .. math:: (Ax)[i] = \sum_j h[j]\, \tilde x[s\,i + c - j]

    (for ``"valid"``, :math:`\tilde x = x` indexed from :math:`-(K-1-c)`).
    Every adjoint is exact: ``deconvkit.testing.assert_adjoint`` checks it.

    Examples
    --------
    >>> import numpy as np
    >>> from deconvkit import Convolution
    >>> A = Convolution(np.ones((3, 3)) / 9, boundary="valid")
    >>> A.input_shape((64, 64))
    (66, 66)
    >>> x, y = np.ones((66, 66)), np.ones((64, 64))
    >>> bool(np.isclose((A.forward(x) * y).sum(), (x * A.adjoint(y)).sum()))
    True
    """

    def __init__(self, psf, *, boundary: str = "symmetric", stride=1, method: str = "auto"):
        psf = check_array(psf, "psf")
        self.psf = psf
        self.ndim = psf.ndim
        self.boundary = check_choice(boundary, "boundary", BOUNDARIES)
        self.method = check_choice(method, "method", ("auto", "fft", "direct"))
        self.stride = _per_axis(stride, self.ndim, "stride")
        self.kernel_shape = tuple(int(k) for k in psf.shape)
        self.center = tuple(k // 2 for k in self.kernel_shape)
        # (before, after) extension that turns a "valid" convolution into a same-size one
        self.widths = tuple((k - 1 - c, c) for k, c in zip(self.kernel_shape, self.center))
        self._cache: dict = {}

    # ------------------------------------------------------------------ shapes
    def output_shape(self, input_shape):
        lead, tail = _split(input_shape, self.ndim)
        if self.boundary == "valid":
            tail = tuple(n - k + 1 for n, k in zip(tail, self.kernel_shape))
        return lead + tuple(-(-n // s) for n, s in zip(tail, self.stride))

    def input_shape(self, output_shape):
        """Shape of the object that maps to ``output_shape``.

        With a stride the output size ``o`` comes from any input of size
        ``s*(o-1)+1 ... s*o``; the largest, ``s*o``, is returned.
        """
        lead, tail = _split(output_shape, self.ndim)
        tail = tuple(o * s for o, s in zip(tail, self.stride))
        if self.boundary == "valid":
            tail = tuple(n + k - 1 for n, k in zip(tail, self.kernel_shape))
        return lead + tail

    # ----------------------------------------------------------------- kernels
    def _forward(self, x):
        self._check_input(x, "x")
        full = self._blur(x)
        if any(s > 1 for s in self.stride):
            full = full[(Ellipsis,) + tuple(slice(None, None, s) for s in self.stride)]
        return full

    def _adjoint(self, y, shape=None):
        self._check_input(y, "y", blurred=True)
        if any(s > 1 for s in self.stride):
            tail = (self._blurred_shape(tuple(shape[-self.ndim:])) if shape is not None
                    else tuple(o * s for o, s in zip(y.shape[-self.ndim:], self.stride)))
            up = zeros(y.shape[: -self.ndim] + tail, like=y)
            up[(Ellipsis,) + tuple(slice(None, None, s) for s in self.stride)] = y
            y = up
        return self._blur_adjoint(y)

    def _blurred_shape(self, tail):
        """Spatial shape after the blur, before striding."""
        if self.boundary == "valid":
            return tuple(n - k + 1 for n, k in zip(tail, self.kernel_shape))
        return tuple(tail)

    def _blur(self, x):
        # periodic: its FFTs need no padding, and on 64x256x256 (a 13**3
        # Gaussian) took 0.057 s against 0.063 s for padding and the passes
        if self.boundary == "periodic" and self._use_fft(x):
            return self._periodic(x, adjoint=False)
        padded = x if self.boundary == "valid" else pad(x, self.widths, self.boundary)
        return self._valid(padded)

    def _blur_adjoint(self, y):
        if self.boundary == "periodic" and self._use_fft(y):
            return self._periodic(y, adjoint=True)
        full = self._valid_adjoint(y)
        return full if self.boundary == "valid" else pad_adjoint(full, self.widths, self.boundary)

    def separable_weights(self, x, *, observed: bool = False):
        """The 1-D weights of the compiled passes (:func:`separable_passes`)
        that blur ``x``, the input of the ``"valid"`` blur that every boundary
        model runs (``observed``: ``x`` has the blur's output size, the input
        is larger by ``K - 1``: a same-size model's padding, or the adjoint's
        output), or None where they do not apply or cost more than the FFTs.

        They apply with ``method="auto"``, the ``fast`` extra and numpy float
        data, to a PSF that is the outer product of 1-D profiles to 64
        round-offs of its peak (Gaussians, boxes).  A pass costs about half
        as much per multiply-add as the FFTs per sample and ``log2`` of the
        grid (measured in :mod:`deconvkit._kernels`), so the passes win up to
        summed side lengths ``K1 + ... + Kd`` of about ``4 log2`` of the FFT
        grid's size; the bound here, ``3 log2``, leaves a margin.
        """
        if (self.method != "auto" or not _kernels.passes_apply(x)
                or x.ndim < self.ndim or any(s > 1 for s in self.stride)):
            return None
        tail = x.shape[-self.ndim:]
        if observed:
            tail = tuple(n + k - 1 for n, k in zip(tail, self.kernel_shape))
        grid = math.prod(next_fast_len(n) for n in tail)
        if sum(self.kernel_shape) > 3 * math.log2(max(grid, 2)):
            return None
        key = ("separable", str(x.dtype))
        if key not in self._cache:
            self._cache[key] = _separable_weights(to_numpy(self.psf), x.dtype)
        return self._cache[key]

    def _use_fft(self, x) -> bool:
        if self.method != "auto":
            return self.method == "fft"
        if is_torch(array_namespace(x)) and self.ndim > 3:
            return True
        return math.prod(self.kernel_shape) > _DIRECT_MAX_TAPS

    # ``valid`` convolution V: (n + K - 1) -> n, and its adjoint (full correlation)
    def _valid(self, x):
        weights = self.separable_weights(x)
        if weights is not None:
            return separable_passes(x, weights, full=False)
        if not self._use_fft(x):
            return _direct(x, self._kernel(x), adjoint=False)
        tail = x.shape[-self.ndim:]
        fft_shape = tuple(next_fast_len(n) for n in tail)
        axes = tuple(range(-self.ndim, 0))
        spectrum = rfftn(x, fft_shape, axes)
        spectrum *= self._otf(x, fft_shape, flipped=False)  # in place: one complex buffer
        full = irfftn(spectrum, fft_shape, axes)
        keep = tuple(slice(k - 1, n) for k, n in zip(self.kernel_shape, tail))
        return full[(Ellipsis,) + keep]

    def _valid_adjoint(self, y):
        weights = self.separable_weights(y, observed=True)
        if weights is not None:
            return separable_passes(y, weights, full=True)
        if not self._use_fft(y):
            return _direct(y, self._kernel(y), adjoint=True)
        tail = tuple(n + k - 1 for n, k in zip(y.shape[-self.ndim:], self.kernel_shape))
        fft_shape = tuple(next_fast_len(n) for n in tail)
        axes = tuple(range(-self.ndim, 0))
        # convolving with the flipped kernel at the origin lands the result
        # exactly on the extended domain: no roll, no wrap-around (fft >= n+K-1)
        spectrum = rfftn(y, fft_shape, axes)
        spectrum *= self._otf(y, fft_shape, flipped=True)
        full = irfftn(spectrum, fft_shape, axes)
        return full[(Ellipsis,) + tuple(slice(0, n) for n in tail)]

    def _periodic(self, x, *, adjoint: bool):
        tail = tuple(x.shape[-self.ndim:])
        axes = tuple(range(-self.ndim, 0))
        otf = self.transfer_function(tail, like=x)
        xp = array_namespace(x)
        spectrum = rfftn(x, tail, axes)
        spectrum *= xp.conj(otf) if adjoint else otf
        return irfftn(spectrum, tail, axes)

    # ----------------------------------------------------------------- caching
    def _kernel(self, like):
        key = ("kernel", _device_key(like))
        if key not in self._cache:
            self._cache[key] = asarray(self.psf, like)
        return self._cache[key]

    def _otf(self, like, fft_shape, *, flipped: bool, centred: bool = False):
        """Real-FFT transfer function of the kernel on ``fft_shape`` (cached)."""
        key = ("otf", _device_key(like), tuple(fft_shape), flipped, centred)
        if key not in self._cache:
            kernel = self._kernel(like)
            if flipped:
                kernel = flip(kernel, range(kernel.ndim))
            axes = tuple(range(self.ndim))
            if centred:
                kernel = _centre_at_origin(kernel, fft_shape, self.center)
            self._cache[key] = rfftn(kernel, tuple(fft_shape), axes)
        return self._cache[key]

    def transfer_function(self, shape, *, like):
        """Real-FFT transfer function (OTF) of the PSF on a periodic grid of ``shape``.

        The PSF centre sits at index 0, so multiplying a spectrum by it is the
        ``"periodic"`` forward model.  ``like`` gives the library, device and
        dtype; the result is cached.
        """
        return self._otf(like, tuple(shape), flipped=False, centred=True)

    def clear_cache(self) -> None:
        """Free the cached transfer functions (they hold one spectrum per shape)."""
        self._cache.clear()

    # -------------------------------------------------------------- checking
    def _check_input(self, x, name: str, *, blurred: bool = False):
        if x.ndim < self.ndim:
            raise ValueError(f"{name} has {x.ndim} dims but the psf has {self.ndim}; "
                             f"pass an array with at least {self.ndim} dims")
        tail = tuple(x.shape[-self.ndim:])
        if blurred:  # the adjoint's input: any size the forward could have produced
            return
        if any(n < k for n, k in zip(tail, self.kernel_shape)):
            advice = ("'valid' needs at least the psf size" if self.boundary == "valid"
                      else "crop the psf or pad the image")
            raise ValueError(f"{name} shape {tail} is smaller than the psf "
                             f"{self.kernel_shape}; {advice}")
        if self.boundary == "reflect" and any(n < 2 for n in tail):
            raise ValueError(f"boundary='reflect' needs at least 2 samples per axis; {name} "
                             f"has shape {tail}")

    def __repr__(self) -> str:
        extra = "" if all(s == 1 for s in self.stride) else f", stride={self.stride}"
        return (f"Convolution(psf shape={self.kernel_shape}, boundary={self.boundary!r}"
                f"{extra}, method={self.method!r})")


def _split(shape, ndim):
    shape = tuple(int(n) for n in shape)
    if len(shape) < ndim:
        raise ValueError(f"shape {shape} has fewer than the operator's {ndim} dims")
    return shape[: len(shape) - ndim], shape[len(shape) - ndim:]


def _per_axis(value, ndim: int, name: str) -> tuple[int, ...]:
    values = (value,) * ndim if np.ndim(value) == 0 else tuple(value)
    if len(values) != ndim or any(int(v) != v or v < 1 for v in values):
        raise ValueError(f"{name} must be a positive int or {ndim} positive ints, got {value!r}")
    return tuple(int(v) for v in values)


def _device_key(x):
    xp = array_namespace(x)
    return (xp.__name__, str(getattr(x, "device", "cpu")), str(x.dtype))


def _centre_at_origin(kernel, fft_shape, center):
    """Zero-pad ``kernel`` to ``fft_shape`` and roll its centre to index 0."""
    if any(k > n for k, n in zip(kernel.shape, fft_shape)):
        raise ValueError(f"psf shape {tuple(kernel.shape)} is larger than the image "
                         f"{tuple(fft_shape)}; crop the psf or pad the image")
    out = zeros(fft_shape, like=kernel)
    # the roll, written directly: along each axis the samples before the centre
    # wrap to the end (no second grid-sized array)
    pieces = [[(slice(c, k), slice(0, k - c)), (slice(0, c), slice(n - c, n))]
              for k, c, n in zip(kernel.shape, center, fft_shape)]
    for combination in itertools.product(*pieces):
        source = tuple(part[0] for part in combination)
        out[tuple(part[1] for part in combination)] = kernel[source]
    return out


def _separable_weights(psf, dtype):
    """Per-axis correlation weights whose passes are the ``"valid"``
    convolution by ``psf`` (its 1-D profiles, reversed), or None when
    ``psf`` is not their outer product to 64 round-offs of its peak."""
    axes = range(psf.ndim)
    profiles = [psf.sum(axis=tuple(j for j in axes if j != i), dtype=np.float64) for i in axes]
    total = float(psf.sum(dtype=np.float64))
    if not total > 0:  # a zero-sum kernel (derivatives) has no such profiles
        return None
    outer = functools.reduce(np.multiply.outer, profiles) / total ** (psf.ndim - 1)
    if float(np.abs(outer - psf).max()) > 64 * np.finfo(dtype).eps * float(np.abs(psf).max()):
        return None
    scale = total ** ((psf.ndim - 1) / psf.ndim)
    return [np.ascontiguousarray(p[::-1] / scale, dtype=dtype) for p in profiles]


def separable_passes(x, weights, *, full: bool, buffers=None):
    """The ``"valid"`` convolution by a separable PSF (``full``: its adjoint)
    as one compiled 1-D pass per axis (:func:`deconvkit._kernels.correlate_axis`),
    ``weights`` from :meth:`Convolution.separable_weights`.

    ``buffers``: two flat arrays, each at least as large as the largest
    intermediate, that the passes write in turn (the first pass into the
    first); the result is a view of one of them.  By default each pass
    allocates its result.
    """
    d = len(weights)
    x = np.ascontiguousarray(x)
    for step, axis in enumerate(range(-d, 0) if full else range(-1, -d - 1, -1)):
        shape = list(x.shape)
        shape[axis] += (1 if full else -1) * (len(weights[axis]) - 1)
        out = (np.empty(shape, x.dtype) if buffers is None
               else buffers[step % 2][:math.prod(shape)].reshape(shape))
        _kernels.correlate_axis(x, weights[axis], out, axis, full=full)
        x = out
    return x


def _direct(x, kernel, *, adjoint: bool):
    """Spatial 'valid' convolution (or its adjoint, 'full' correlation)."""
    xp = array_namespace(x)
    d = kernel.ndim
    if is_torch(xp):
        return _direct_torch(x, kernel, adjoint=adjoint)
    lead = (1,) * (x.ndim - d)
    k = kernel.reshape(lead + tuple(kernel.shape))
    if is_numpy(xp):
        if adjoint:
            return scipy.signal.correlate(x, k, mode="full", method="direct")
        return scipy.signal.convolve(x, k, mode="valid", method="direct")
    # other libraries: go through numpy (cupyx.scipy.signal is optional)
    host = to_numpy(x)
    k = to_numpy(k)
    out = (scipy.signal.correlate(host, k, mode="full", method="direct") if adjoint
           else scipy.signal.convolve(host, k, mode="valid", method="direct"))
    return xp.asarray(out)


def _direct_torch(x, kernel, *, adjoint: bool):
    import torch.nn.functional as F

    d = kernel.ndim
    lead = x.shape[:-d]
    batch = x.reshape((-1, 1) + tuple(x.shape[-d:]))
    # torch convolutions are correlations: flip to convolve
    weight = flip(kernel, range(d)).reshape((1, 1) + tuple(kernel.shape))
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
    conv_t = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
    out = conv_t[d](batch, weight) if adjoint else conv[d](batch, weight)
    return out.reshape(tuple(lead) + tuple(out.shape[-d:]))

