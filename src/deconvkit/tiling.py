"""Out-of-core and distributed deconvolution: one function made tiled with dask.

:func:`deconvolve_dask` restores a dask array chunk by chunk with
``map_overlap``.  Two things make the tiles agree with the untiled result:

- the parameters the solver would choose by itself (noise level, weights,
  iteration count) are chosen **once**, on a central block, and then fixed
  for every chunk, so no tile decides differently from its neighbours;
- each chunk is extended by an overlap of ``depth`` samples taken from its
  neighbours and restored with the non-circulant ``"valid"`` model, so the
  cut between tiles is just another unknown border; the overlap is then
  trimmed.  At the image's true edges there is no neighbour and the
  ``"valid"`` model handles them as it does untiled.

The default overlap is five PSF widths per axis for iterative methods (the
influence of a sample spreads by about one PSF width every few iterations,
and decays fast; Biggs' extrapolation weight is computed per tile, which the
wide overlap absorbs) and two PSF widths for the closed forms.
"""

from __future__ import annotations

import inspect

import numpy as np

__all__ = ["default_depth", "deconvolve_dask", "is_dask", "multiview_dask"]

_CLOSED_FORMS = ("wiener", "tikhonov", "inverse_filter", "unsupervised_wiener")


def is_dask(x) -> bool:
    return type(x).__module__.split(".")[0] == "dask"


def default_depth(psf_shape, method: str) -> tuple[int, ...]:
    """Overlap per axis between chunks: 5 PSF widths (2 for closed forms)."""
    widths = 2 if method in _CLOSED_FORMS else 5
    return tuple(int(widths * k) for k in psf_shape)


def deconvolve_dask(image, psf, *, method: str = "auto", boundary: str = "auto",
                    depth=None, sample_shape=None, return_info: bool = False, **options):
    """Restore a dask array tile by tile; returns a (lazy) dask array.

    Parameters
    ----------
    image : dask.array.Array
        Any chunking; chunks smaller than the overlap are merged by dask.
    psf : array or SpaceVariantConvolution
        numpy array (it is sent to every task), or PSFs on a grid over the
        whole frame: each chunk then gets the field seen through its window
        (:meth:`~deconvkit.SpaceVariantConvolution.cut`).
    method, boundary, options
        As in :func:`deconvkit.deconvolve`.  ``boundary="auto"`` means the
        method's own choice at the image's edges; the cuts between tiles are
        always treated as unknown borders.  A ``background`` map (numpy or
        dask, the image's shape: a sky map) is tiled with the image.
    depth : int or tuple of int, optional
        Overlap per axis (default :func:`default_depth`).
    sample_shape : tuple of int, optional
        Shape of the central block on which automatic parameters are chosen
        (default: up to 256 samples per axis, and the whole image if smaller).
    return_info : bool
        Also return the :class:`~deconvkit.restoration.Info` of the central
        block, whose parameters every chunk used.

    Notes
    -----
    Works unchanged on a ``dask.distributed`` cluster: the graph holds only
    numpy chunks, the PSF and plain parameters.
    """
    import dask.array as da

    from ._deconvolve import METHODS, choose_method, deconvolve
    from ._validate import check_choice, check_psf
    from .operators import SpaceVariantConvolution

    field = psf if isinstance(psf, SpaceVariantConvolution) else None
    if field is None:
        psf = np.asarray(psf, dtype=np.float64)
        check_psf(psf, tuple(image.shape),
                  hint="a dask image is restored in tiles within it: crop the psf "
                       "(deconvkit.psf.crop_or_pad), or restore the image in memory (numpy), "
                       "where the 'valid' boundary's iterative methods take it whole")
    check_choice(method, "method", ("auto", *METHODS))
    if method == "auto":
        method = choose_method(image, psf)
    solver = METHODS[method][0]
    accepted = inspect.signature(solver).parameters
    d = psf.ndim
    kernel_shape = psf.kernel_shape if field is not None else psf.shape
    depth = _overlap(default_depth(kernel_shape, method) if depth is None else depth,
                     image.shape, d)
    background = _tiled_background(options.pop("background", None), image)
    # choose every automatic parameter once, on a central block
    lead, centre = _central_block(image.shape, d, sample_shape)
    sample = np.asarray(image[lead + centre])
    frame = tuple(image.shape[-d:])
    seen = psf if field is None else field.cut([c.start for c in centre], frame)
    _, info = deconvolve(sample, seen, method=method, boundary=boundary, return_info=True,
                         **options, **({} if background is None else {
                             "background": background if isinstance(background, float)
                             else np.asarray(background[lead + centre])}))
    # options left to the solver (absent, or given as "auto") take the central
    # block's choice; an explicit "auto" had let every chunk choose its own
    fixed = {key: value for key, value in options.items() if not _is_auto(value)}
    for key, value in info.parameters.items():
        if key in accepted and key not in fixed and key not in ("boundary", "background"):
            fixed[key] = value
    if "iterations" in accepted and "iterations" not in fixed:
        fixed["iterations"] = max(info.iterations, 1)
    edge = info.parameters.get("boundary", boundary)
    if "boundary" in accepted:
        fixed["boundary"] = "valid" if "valid" in _boundaries(method) else edge

    dtype = working_dtype(image.dtype)

    # the chunks' starts per axis, for a field's windows
    starts = [np.cumsum((0,) + tuple(chunks[:-1])) for chunks in image.chunks[-d:]]
    spatial_depth = depth[-d:]

    def restore(block, background_block=None, block_info=None):
        if np.isnan(block).all():  # no sample observed within reach: nothing to estimate
            return block.astype(dtype)
        blur = psf
        if field is not None:  # the block holds its chunk and the overlap around it
            where = block_info[0]["chunk-location"][-d:]
            offset = [max(int(starts[a][i]) - spatial_depth[a], 0) for a, i in enumerate(where)]
            blur = field.cut(offset, frame)
        extra = {} if background is None else {
            "background": background if background_block is None else background_block}
        return deconvolve(block, blur, method=method, **fixed, **extra).astype(dtype,
                                                                               copy=False)

    tiled = [image] if background is None or isinstance(background, float) \
        else [image, background]
    result = da.map_overlap(restore, *tiled, depth=depth, boundary="none", dtype=dtype,
                            trim=True, allow_rechunk=True, align_arrays=True)
    return (result, info) if return_info else result


def multiview_dask(views, psfs, *, depth=None, sample_shape=None, return_info: bool = False,
                   **options):
    """:func:`deconvkit.richardson_lucy_multiview` over dask views, tile by tile.

    The views' blocks at one place are restored together with the overlap of
    :func:`default_depth` (the largest PSF's), the noise level and iteration
    count chosen once on a central block, as :func:`deconvolve_dask` does."""
    import dask.array as da

    from .restoration import richardson_lucy_multiview

    views = [v if is_dask(v) else da.from_array(np.asarray(v)) for v in views]
    kernels = [np.asarray(k, dtype=np.float64) for k in psfs]
    if len({tuple(v.shape) for v in views}) > 1:
        raise ValueError("the views must be registered to one frame (one shape), got "
                         f"{sorted({tuple(v.shape) for v in views})}")
    views = [v.rechunk(views[0].chunks) for v in views]  # one tiling for all
    d = max(k.ndim for k in kernels)
    widest = tuple(max(k.shape[a] for k in kernels) for a in range(d))
    depth = _overlap(default_depth(widest, "richardson_lucy") if depth is None else depth,
                     views[0].shape, d)
    lead, centre = _central_block(views[0].shape, d, sample_shape)
    _, info = richardson_lucy_multiview([np.asarray(v[lead + centre]) for v in views], kernels,
                                        return_info=True, **options)
    fixed = {key: value for key, value in options.items() if not _is_auto(value)}
    fixed.setdefault("noise_sigma", info.parameters["noise_sigma"])
    if "iterations" not in fixed:
        fixed["iterations"] = max(info.iterations, 1)
    dtype = working_dtype(views[0].dtype)

    def restore(*blocks):
        return np.asarray(richardson_lucy_multiview(list(blocks), kernels, **fixed),
                          dtype=dtype)

    result = da.map_overlap(restore, *views, depth=depth, boundary="none", dtype=dtype,
                            trim=True, allow_rechunk=True)
    return (result, info) if return_info else result


def _tiled_background(background, image):
    """A ``background`` option for tiling: None, a level, or a dask array
    chunked like ``image`` (from a numpy or dask map of its shape)."""
    import dask.array as da

    if background is None or not getattr(background, "ndim", 0):
        return None if background is None else float(background)
    if tuple(background.shape) != tuple(image.shape):
        raise ValueError(f"background has shape {tuple(background.shape)}; it must be a "
                         f"number or an array of the image's shape {tuple(image.shape)}")
    return da.asarray(background).rechunk(image.chunks)


def _overlap(depth, shape, d: int) -> tuple:
    """The overlap per axis of an array of ``shape`` (0 on the leading axes); an
    overlap as long as the axis already means "the whole axis"."""
    depth = tuple(np.broadcast_to(depth, (d,)).astype(int).tolist())
    return (0,) * (len(shape) - d) + tuple(min(p, n) for p, n in zip(depth, shape[-d:]))


def _central_block(shape, d: int, sample_shape=None):
    """``(lead, centre)``: the index of the first item of the leading axes and the
    slices of the central block (up to 256 samples per axis by default) where
    the automatic parameters are chosen once for every tile."""
    sample_shape = sample_shape or tuple(min(n, 256) for n in shape[-d:])
    centre = tuple(slice((n - s) // 2, (n - s) // 2 + s) for n, s in zip(shape[-d:],
                                                                         sample_shape))
    return (0,) * (len(shape) - d), centre


def _is_auto(value) -> bool:
    return isinstance(value, str) and value == "auto"


def working_dtype(dtype):
    """The float a chunk of ``dtype`` is restored in: the library's dtype policy
    (:func:`deconvkit._array_api.float_dtype`; float64 for float64 and integers
    wider than 16 bits, float32 otherwise)."""
    from ._array_api import float_dtype

    return np.dtype(float_dtype(np.empty(0, dtype=dtype)))


def _boundaries(method: str) -> tuple[str, ...]:
    """Boundary models a method supports (all but the Fourier-only ones take "valid")."""
    from .operators import BOUNDARIES

    if method in ("unsupervised_wiener", "inverse_filter"):
        return tuple(b for b in BOUNDARIES if b != "valid")
    return BOUNDARIES
