"""A blur that changes across the field: PSFs on a grid of positions, interpolated."""

from __future__ import annotations

import math

import numpy as np

from .._array_api import asarray, full, to_numpy, zeros
from .._validate import check_array
from ._base import LinearOperator
from .convolution import Convolution

__all__ = ["SpaceVariantConvolution"]


class SpaceVariantConvolution(LinearOperator):
    r"""Space-variant blur by PSFs measured on a grid, interpolated between them.

    The product-convolution model of Nagy and O'Leary [1]_ (also Hirsch et
    al.'s "efficient filter flow" [2]_): the scene is split by a partition
    of unity into overlapping pieces, each blurred by its own PSF,

    .. math:: A x = \sum_i h_i * (w_i \odot x), \qquad
              A^T y = \sum_i w_i \odot (h_i \star y),

    so the PSF at any point is the interpolation of the PSFs of the grid
    nodes around it.  The weights :math:`w_i` are multilinear hat functions
    centred on the nodes, constant beyond the outer ones; every term is a
    :class:`Convolution`, so every boundary model and its exact adjoint
    carry over.  Under ``"valid"`` each node blurs only the window where its
    weight is not 0, so an application costs about :math:`2^d` blurs of the
    frame, plus the windows' margins, whatever the grid (measured at 1024² in
    a quiet run, a blur and its adjoint: 2.9 single-PSF pairs for a 3 × 3
    grid, 5.2 for 6 × 6, against 7.1 and 43 over the whole frame;
    ``benchmarks/space_variant.py``); the other boundary models blur the whole
    frame per node.

    Parameters
    ----------
    psfs : (G1, ..., Gd, K1, ..., Kd) array
        One PSF per node of a regular G1 × ... × Gd grid over the frame:
        node ``(j1, ..., jd)`` is the PSF at the centre of tile
        ``(j1, ..., jd)`` when the frame is cut into G1 × ... × Gd equal
        tiles (for example the PSFs of beads or stars near those centres).
        All of one shape, centred as :class:`Convolution`'s.
    boundary : str
        As in :class:`Convolution`; ``"valid"`` by default.  Passed as
        ``psf=`` to :func:`~deconvkit.total_variation`,
        :func:`~deconvkit.richardson_lucy` or :func:`~deconvkit.landweber`
        (and :func:`~deconvkit.deconvolve` with those methods), the solver's
        ``boundary`` replaces it and its PSFs are normalised to sum 1.

    Notes
    -----
    With a single node it is :class:`Convolution`.  For non-negative PSFs of
    unit sum, :math:`A^T 1 \le 1`, but :math:`A 1` exceeds 1 where
    neighbouring nodes' PSFs differ (1.027 at most on the benchmark's 3 × 3
    field, whose norm is 0.998; 3.2 for shifted points on tiny tiles, norm
    1.63), so :meth:`norm_bound` gives the solvers Schur's bound
    :math:`\|A\| \le \sqrt{\max A1 \, \max A^T 1}` instead of 1.

    References
    ----------
    .. [1] J. G. Nagy and D. P. O'Leary, "Restoring images degraded by
       spatially variant blur", SIAM J. Sci. Comput. 19(4), 1998.
    .. [2] M. Hirsch, S. Sra, B. Schölkopf and S. Harmeling, "Efficient
       filter flow for space-variant multiframe blind deconvolution", CVPR 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from deconvkit import SpaceVariantConvolution, psf, testing
    >>> sharp_to_soft = np.stack([psf.gaussian(s, shape=(9, 9)) for s in (0.5, 1.0, 2.0)])
    >>> A = SpaceVariantConvolution(sharp_to_soft[:, None], boundary="periodic")  # 3 x 1 grid
    >>> bool(testing.assert_adjoint(A, (48, 40)) < 1e-12)
    True
    >>> x = np.random.default_rng(0).random((48, 40))
    >>> bool(np.isclose(A.forward(x).sum(), x.sum()))  # flux kept: the weights sum to 1
    True
    """

    def __init__(self, psfs, *, boundary: str = "valid", region=None):
        psfs = check_array(psfs, "psfs")
        if psfs.ndim % 2 or psfs.ndim < 2:
            raise ValueError(f"psfs must be (G1, ..., Gd, K1, ..., Kd): a grid of d-D PSFs, got "
                             f"{psfs.ndim} dims; a single PSF goes to Convolution")
        d = psfs.ndim // 2
        self.psfs = psfs
        self.ndim = d
        self.grid = tuple(int(g) for g in psfs.shape[:d])
        flat = psfs.reshape((math.prod(self.grid),) + tuple(psfs.shape[d:]))
        self.terms = [Convolution(flat[i], boundary=boundary) for i in range(flat.shape[0])]
        self.boundary = self.terms[0].boundary
        self.widths = self.terms[0].widths
        self.kernel_shape = self.terms[0].kernel_shape
        self.region = None if region is None else _checked_region(region, d)
        self._cache: dict = {}  # weight profiles per domain, and per library and dtype

    def cut(self, offset, frame) -> SpaceVariantConvolution:
        """The same field seen through a window: this operator's frame becomes the
        part of a larger observed ``frame`` (its d-D shape) that starts at
        ``offset``, and the grid spans the larger one (a chunk of a tiled
        image: :func:`deconvkit.tiling.deconvolve_dask`)."""
        return SpaceVariantConvolution(self.psfs, boundary=self.boundary,
                                       region=(tuple(offset), tuple(frame)))

    def output_shape(self, input_shape):
        return self.terms[0].output_shape(input_shape)

    def input_shape(self, output_shape):
        return self.terms[0].input_shape(output_shape)

    def profiles(self, input_shape) -> list:
        """Per axis, the hat functions of its nodes on a domain of ``input_shape``:
        a ``(G_a, N_a)`` array; a node's weight is the outer product of its rows."""
        tail = tuple(int(n) for n in input_shape[-self.ndim:])
        if tail not in self._cache:
            out_tail = self.output_shape(tail)
            axes = []
            for a, (n, m, g) in enumerate(zip(tail, out_tail, self.grid)):
                offset = self.widths[a][0] if self.boundary == "valid" else 0
                if self.region is not None:  # the grid spans a larger frame
                    offset, m = offset - self.region[0][a], self.region[1][a]
                # node j at the centre of tile j of the observed frame
                centres = offset + (np.arange(g) + 0.5) * m / g - 0.5
                t = np.arange(n)
                axes.append(np.stack([np.interp(t, centres, np.eye(g)[j]) if g > 1
                                      else np.ones(n) for j in range(g)]))
            self._cache[tail] = axes
        return self._cache[tail]

    def weights(self, input_shape, *, like=None) -> list:
        """The interpolation weights :math:`w_i` on a domain of ``input_shape``
        (trailing ``ndim`` axes), one array per node in the grid's C order
        (made on request: the operator itself applies them axis by axis)."""
        axes = self.profiles(input_shape)
        out = []
        for index in np.ndindex(*self.grid):
            w = axes[0][index[0]]
            for a in range(1, self.ndim):
                w = np.multiply.outer(w, axes[a][index[a]])
            out.append(w if like is None else asarray(w, like))
        return out

    def windows(self, input_shape) -> list:
        """Per node, the (start, stop) along each axis where its weight is not 0
        ((0, 0) where it is 0 all along: a node far from a cut window)."""
        axes = self.profiles(input_shape)
        spans = [[(int(np.flatnonzero(row)[0]), int(np.flatnonzero(row)[-1]) + 1)
                  if row.any() else (0, 0) for row in profile] for profile in axes]
        return [tuple(spans[a][j] for a, j in enumerate(index))
                for index in np.ndindex(*self.grid)]

    def _weighted(self, x, index, spans, tail):
        """``w_index * x`` over the window ``spans`` of a domain ``tail`` (``x``
        already cut to it), one axis's profile at a time: no weight array of the
        window's size is made."""
        axes, d = self._profiles_like(x, tail), self.ndim
        for a, ((start, stop), j) in enumerate(zip(spans, index)):
            shape = (stop - start,) + (1,) * (d - 1 - a)
            x = x * axes[a][j][start:stop].reshape(shape)
        return x

    def _profiles_like(self, x, tail):
        key = (tail, str(getattr(x, "device", "")), str(x.dtype))
        if key not in self._cache:
            self._cache[key] = [asarray(p, x) for p in self.profiles(tail)]
        return self._cache[key]

    def _nodes(self, tail):
        """(term, grid index, spans) per node: spans over the whole domain unless
        the windows are used (``"valid"``)."""
        whole = tuple((0, n) for n in tail)
        spans = self.windows(tail) if self._windowed else [whole] * len(self.terms)
        return [(term, index, span) for term, index, span
                in zip(self.terms, np.ndindex(*self.grid), spans)
                if all(b > a for a, b in span)]  # a node with no weight here adds nothing

    @property
    def _windowed(self) -> bool:
        return self.boundary == "valid" and len(self.terms) > 1

    def _forward(self, x):
        tail = tuple(x.shape[-self.ndim:])
        if self._windowed:
            return self._valid_forward(x, tail)
        out = None
        for term, index, spans in self._nodes(tail):
            blurred = term.forward(self._weighted(x, index, spans, tail))
            out = blurred if out is None else out + blurred
        return out

    def _adjoint(self, y, shape=None):
        tail = tuple(self.input_shape(tuple(y.shape))[-self.ndim:])
        if self._windowed:
            return self._valid_adjoint(y, tail)
        out = None
        for term, index, spans in self._nodes(tail):
            back = self._weighted(term.adjoint(y), index, spans, tail)
            out = back if out is None else out + back
        return out

    # "valid": each node blurs only the window where its weight is not 0, zero-padded
    # by K - 1 on each side; the result covers the outputs [start - K + 1, stop) of
    # that window (an output o sees the inputs o ... o + K - 1), cut to the frame.
    # A node then costs its window, not the whole frame: about 2^d frames in all
    # for any grid, instead of one per node.
    def _valid_forward(self, x, tail):
        lead = tuple(x.shape[: x.ndim - self.ndim])
        out_tail = self.output_shape(tail)
        out = zeros(lead + out_tail, like=x)
        for term, index, spans in self._nodes(tail):
            inside = (Ellipsis,) + tuple(slice(a, b) for a, b in spans)
            padded = zeros(lead + tuple(b - a + 2 * (k - 1)
                                        for (a, b), k in zip(spans, self.kernel_shape)), like=x)
            padded[_past_margin(spans, self.kernel_shape)] = \
                self._weighted(x[inside], index, spans, tail)
            blurred = term.forward(padded)
            target, source = _overlap(spans, self.kernel_shape, out_tail)
            out[(Ellipsis,) + target] += blurred[(Ellipsis,) + source]
        return out

    def _valid_adjoint(self, y, tail):
        lead = tuple(y.shape[: y.ndim - self.ndim])
        out = zeros(lead + tail, like=y)
        for term, index, spans in self._nodes(tail):
            window = zeros(lead + tuple(b - a + k - 1
                                        for (a, b), k in zip(spans, self.kernel_shape)), like=y)
            target, source = _overlap(spans, self.kernel_shape, tuple(y.shape[-self.ndim:]))
            window[(Ellipsis,) + source] = y[(Ellipsis,) + target]
            back = term.adjoint(window)[_past_margin(spans, self.kernel_shape)]
            out[(Ellipsis,) + tuple(slice(a, b) for a, b in spans)] += \
                self._weighted(back, index, spans, tail)
        return out

    def norm_bound(self, input_shape, *, like=None) -> float:
        """Schur's bound on ``‖A‖`` for non-negative PSFs: the square root of the
        largest row sum times the largest column sum (one blur and one adjoint)."""
        like = self.psfs if like is None else like
        rows = float(to_numpy(self.forward(full(tuple(input_shape), 1.0, like=like))).max())
        columns = float(to_numpy(self.adjoint(
            full(self.output_shape(tuple(input_shape)), 1.0, like=like))).max())
        return math.sqrt(max(rows, 0.0) * max(columns, 0.0))

    def __repr__(self) -> str:
        region = "" if self.region is None else f", region={self.region}"
        return (f"SpaceVariantConvolution(grid={self.grid}, psf shape={self.kernel_shape}, "
                f"boundary={self.boundary!r}{region})")


def _past_margin(spans, kernel_shape):
    """A window's samples inside an array that pads it by K - 1 on each side."""
    return (Ellipsis,) + tuple(slice(k - 1, k - 1 + b - a)
                               for (a, b), k in zip(spans, kernel_shape))


def _overlap(spans, kernel_shape, out_tail):
    """The frame's outputs that a window's blur reaches, and where they sit in it."""
    target, source = [], []
    for (a, b), k, n in zip(spans, kernel_shape, out_tail):
        first, start, stop = a - k + 1, max(0, a - k + 1), min(n, b)
        target.append(slice(start, stop))
        source.append(slice(start - first, stop - first))
    return tuple(target), tuple(source)


def bind(op: SpaceVariantConvolution, image, boundary: str) -> SpaceVariantConvolution:
    """``op`` for a solver: the solver's boundary, unit-sum PSFs in ``image``'s library."""
    psfs = asarray(op.psfs, image)
    d = op.ndim
    axes = tuple(range(d, 2 * d))
    sums = psfs.sum(axis=axes, keepdims=True)
    if float(to_numpy(sums).min()) <= 0:
        raise ValueError("every PSF of a SpaceVariantConvolution must have a positive sum "
                         "(each is normalised to 1)")
    return SpaceVariantConvolution(psfs / sums, boundary=boundary, region=op.region)


def _checked_region(region, d: int):
    """``(offset, frame)`` as two tuples of d ints, the window inside the frame."""
    try:
        offset, frame = (tuple(int(v) for v in part) for part in region)
    except (TypeError, ValueError):
        raise ValueError(f"region must be (offset, frame): two tuples of {d} ints, got "
                         f"{region!r}") from None
    if len(offset) != d or len(frame) != d or min(offset) < 0 or min(frame) < 1:
        raise ValueError(f"region must be (offset, frame) with {d} offsets >= 0 and {d} sizes "
                         f">= 1, got {region!r}")
    return offset, frame
