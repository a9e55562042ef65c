"""Restoring files larger than memory: lazy input, chunks sized to a memory limit, resumable output.

The command line's ``deconvolve`` uses this for zarr inputs and outputs, for
TIFF files opened memory-mapped, and whenever ``--memory-limit`` is given.
The output is written to ``OUTPUT.partial`` chunk by chunk; a small journal
beside it lists the finished chunks (rewritten atomically after each), so a
killed run started again skips them; when all are done the ``.partial`` is
renamed to the output.  An interrupted run therefore never leaves a
half-written file under the output's name.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import shutil
import warnings
from pathlib import Path

import numpy as np

#: peak working memory of one chunk, in copies of the chunk (with its overlap)
#: in the working dtype: the solver's own peak, measured (VmHWM, a fresh
#: process, a 48x160x160 chunk, float32 and float64 alike: TV 33, RL 10,
#: RL-TV 24, wavelet and the CGLS-based linear solvers 28, Landweber and Van
#: Cittert 11, inverse filter 9), plus the chunk read and the chunk restored,
#: plus 10 %; Gold (with Biggs' extrapolation) at 1.38x Landweber's peak over
#: the same chunk (ru_maxrss in one process), so about 15, plus the two, plus 10 %
WORKING_COPIES = {"richardson_lucy": 13, "landweber": 15, "van_cittert": 15, "cgls": 34,
                  "wiener": 34, "tikhonov": 34, "total_variation": 40, "wavelet": 34,
                  "richardson_lucy_tv": 29, "unsupervised_wiener": 34, "inverse_filter": 12,
                  "gold": 19}
#: RL with ``acceleration="anderson"``, which keeps its last 6 updates: 25-31
#: measured the same way (on a 32x96x96 chunk), plus the two, plus 10 %
ANDERSON_COPIES = 36


#: Landweber with a weight (ICTM: the penalty's differences and the momentum's
#: point): 1.31x the plain iteration's peak over the same 48x160x160 float32
#: chunk (ru_maxrss in one process), so about 15 copies, plus the two, plus 10 %
ICTM_COPIES = 19


def working_copies(method: str, options=None) -> int:
    """Peak working memory of one chunk in chunk copies (:data:`WORKING_COPIES`)."""
    if method == "richardson_lucy" and (options or {}).get("acceleration") == "anderson":
        return ANDERSON_COPIES
    if method == "landweber" and (options or {}).get("weight"):
        return ICTM_COPIES
    return WORKING_COPIES.get(method, 40)

_UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 2**10, "M": 2**20, "MB": 2**20, "G": 2**30,
          "GB": 2**30, "T": 2**40, "TB": 2**40}


def parse_size(text: str) -> int:
    """``"2GB"``, ``"512M"``, ``"1e9"`` -> bytes."""
    match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([KMGT]?B?)\s*", str(text).upper())
    if not match:
        raise ValueError(f"--memory-limit {text!r} is not a size such as 2GB or 512MB")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def is_lazy_path(path) -> bool:
    return Path(path).suffix.lower() == ".zarr"


def open_lazy(path):
    """A dask array over a zarr store or a TIFF file (memory-mapped or page by page)."""
    import dask.array as da
    import zarr

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.suffix.lower() == ".zarr":
        return da.from_zarr(_zarr_array(path)[0])
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        try:
            return da.from_array(tifffile.memmap(str(path), mode="r"))
        except (ValueError, OSError):  # compressed or tiled: read page by page
            try:
                store = tifffile.imread(str(path), aszarr=True)
                return da.from_zarr(zarr.open(store, mode="r"))
            except Exception as exc:
                raise ValueError(f"cannot read {path} as TIFF: {exc}") from None
    raise ValueError(f"{path}: out-of-core input must be .zarr or .tif")


def zarr_metadata(path):
    """An OME-Zarr's voxel size, unit and axes (:class:`deconvkit.io.Metadata`);
    nothing for a bare zarr array."""
    return _zarr_array(path)[1]


def _zarr_array(path):
    """The zarr array at ``path`` and its metadata: a bare array, or the
    full-resolution level of an OME-Zarr image (NGFF 0.4 or 0.5)."""
    import zarr

    from .io import Metadata

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises several types for a bad store
        raise ValueError(f"cannot read {path} as zarr: {exc}") from None
    if isinstance(node, zarr.Array):
        return node, Metadata()
    attrs = dict(node.attrs)
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if not multiscales:
        raise ValueError(f"{path} is a zarr group without OME-Zarr multiscales metadata; "
                         f"pass the array inside it (e.g. {path}/0)")
    image = multiscales[0]
    level = image["datasets"][0]
    array = node[level["path"]]
    axes = [a if isinstance(a, dict) else {"name": a} for a in image.get("axes", [])]
    scale = np.ones(array.ndim)
    for transforms in (level.get("coordinateTransformations", []),
                       image.get("coordinateTransformations", [])):
        for transform in transforms:
            if transform.get("type") == "scale":
                scale = scale * np.asarray(transform["scale"], dtype=float)
    if len(axes) != array.ndim:
        return array, Metadata()
    letters = "".join(a["name"].upper() if a["name"].lower() in "tczyx" else "Q" for a in axes)
    space = [i for i, a in enumerate(axes) if a.get("type") == "space"
             or a["name"].lower() in "zyx"]
    units = {axes[i].get("unit") for i in space}
    spacing = tuple(float(scale[i]) for i in space) if len(units) == 1 else None
    return array, Metadata(spacing=spacing, unit=units.pop() if spacing else None,
                           axes=letters if "Q" not in letters else None)


#: NGFF's unit names (UDUNITS) by their length in micrometres
_NGFF_UNITS = {1e-3: "nanometer", 1.0: "micrometer", 1e3: "millimeter"}


def _ome_zarr_attrs(shape, metadata) -> dict:
    """NGFF 0.4 multiscales metadata for one full-resolution level ``"0"``."""
    from .io import unit_named

    axes_letters = metadata.axes if metadata.axes and len(metadata.axes) == len(shape) \
        else "TCZYX"[-len(shape):] if len(shape) <= 5 else None
    spacing = list(metadata.spacing or ())
    unit = unit_named(metadata.unit, _NGFF_UNITS)
    axes, scale = [], []
    for letter in axes_letters or ():
        entry = {"name": letter.lower()}
        if letter in "ZYX":
            entry["type"] = "space"
            if unit is not None:
                entry["unit"] = unit
        elif letter in "TC":
            entry["type"] = {"T": "time", "C": "channel"}[letter]
        axes.append(entry)
        scale.append(1.0)
    space = [i for i, letter in enumerate(axes_letters or "") if letter in "ZYX"]
    if len(spacing) == len(space):
        for i, value in zip(space, spacing):
            scale[i] = float(value)
    return {"multiscales": [{"version": "0.4", "name": "deconvkit", "axes": axes,
                             "datasets": [{"path": "0", "coordinateTransformations": [
                                 {"type": "scale", "scale": scale}]}]}]}


def choose_chunks(shape, psf_shape, method: str, memory_limit: int, workers: int = 1,
                  itemsize: int = 4, options=None):
    """The chunk whose working set fits and that wastes least on overlap.

    The working set of one chunk is its volume grown by the overlap on both
    sides, times :func:`working_copies` for the method and its ``options``, times ``itemsize``
    (the working float's: 4, or 8 for float64 data); with ``workers`` chunks
    in flight at once.  Candidates take the shortest axes whole (a whole axis
    needs no overlap) and equal sides on the others, each as large as fits;
    the one with the least grown volume per restored voxel wins.  On a
    256x2048x2048 volume with RL's 45-sample overlap and 1.2 GB, the whole
    depth with 210x210 lateral sides grows each chunk 2.04-fold, against
    2.83-fold for 194**3.
    """
    from .tiling import default_depth

    d = len(psf_shape)
    spatial = tuple(shape[-d:])
    depth = [min(p, n) for p, n in zip(default_depth(psf_shape, method), spatial)]
    copies = working_copies(method, options)
    budget = memory_limit / max(workers, 1) / (itemsize * copies)
    lead = math.prod(shape[:-d]) if len(shape) > d else 1

    def grown(sides):
        return math.prod(min(s + 2 * p, n) for s, n, p in zip(sides, spatial, depth)) * lead

    def largest(whole):  # the largest equal side on the other axes that fits, or None
        def sides(side):
            return tuple(n if i in whole else min(side, n) for i, n in enumerate(spatial))
        if grown(sides(1)) > budget:
            return None
        low, high = 1, max(spatial)
        while low < high:
            mid = (low + high + 1) // 2
            low, high = (mid, high) if grown(sides(mid)) <= budget else (low, mid - 1)
        return sides(low)

    shortest_first = sorted(range(d), key=lambda i: spatial[i])
    candidates = [c for c in (largest(set(shortest_first[:k])) for k in range(d + 1))
                  if c is not None]
    if not candidates:
        smallest = itemsize * copies * grown((1,) * d)
        raise ValueError(f"--memory-limit {memory_limit} bytes is too small for this PSF and "
                         f"method; allow at least {smallest * max(workers, 1)} bytes")
    best = min(candidates, key=lambda c: (grown(c) / math.prod(c), -math.prod(c)))
    return tuple(shape[:-d]) + best


def run_chunked(image, psf, output, *, method, options, chunks, overwrite=False,
                progress=None, workers: int = 1, metadata=None, bit_depth: int | None = None):
    """Compute ``deconvolve`` on ``image`` (dask) chunk by chunk into ``output``.

    ``output`` is a ``.zarr`` folder (resumable) or a ``.tif`` file (written
    through a memory map, with ``metadata``'s voxel size and axes: a
    :class:`deconvkit.io.Metadata`).  ``bit_depth`` 8 or 16: unsigned integers,
    rounded and clipped block by block (a warning counts the clipped samples,
    across resumed runs too).  Returns the Info of the parameters used.
    """
    from concurrent.futures import ThreadPoolExecutor

    from ._deconvolve import deconvolve
    from .io import rounded_to

    output = Path(output)
    image = image.rechunk(chunks)
    lazy, info = deconvolve(image, psf, method=method, return_info=True, **options)
    stored = lazy if bit_depth is None else lazy.astype({8: np.uint8, 16: np.uint16}[bit_depth])
    partial = output.with_name(output.name + ".partial")
    journal = output.with_name(output.name + ".journal.json")
    signature = dict(shape=list(image.shape), chunks=[list(c) for c in image.chunks],
                     method=method, dtype=str(stored.dtype),
                     options=repr(sorted((key, _described(value))
                                         for key, value in options.items())),
                     psf=hashlib.sha1(np.ascontiguousarray(
                         getattr(psf, "psfs", psf), dtype=float).tobytes()).hexdigest())
    done, clipped = _load_journal(journal, signature) if partial.exists() else (set(), 0)
    target = _open_target(partial, stored, fresh=not done, metadata=metadata)
    blocks = list(itertools.product(*(range(len(c)) for c in lazy.chunks)))
    offsets = [np.cumsum((0,) + c) for c in lazy.chunks]
    todo = [b for b in blocks if b not in done]
    if progress is not None:
        progress(len(blocks) - len(todo), len(blocks))

    def compute(block):
        region = tuple(slice(o[i], o[i + 1]) for o, i in zip(offsets, block))
        values = lazy.blocks[block].compute(scheduler="synchronous")
        count = 0
        if stored is not lazy:  # integers: rounded, clipped to the type's range
            values, count = rounded_to(np.nan_to_num(values, nan=0.0), stored.dtype)
        target[region] = values
        return block, count

    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        for block, count in pool.map(compute, todo):
            done.add(block)
            clipped += count
            _save_journal(journal, signature, done, clipped)
            if progress is not None:
                progress(len(done), len(blocks))
    _finish(target, partial, output, overwrite)
    journal.unlink(missing_ok=True)
    if clipped:
        warnings.warn(f"{output}: {clipped} samples outside 0..{np.iinfo(stored.dtype).max} "
                      "were clipped; scale the data or leave --bit-depth out for float32",
                      UserWarning, stacklevel=2)
    return info


def _described(value):
    """An option as the journal records it: an array (a background map) by its
    shape, type and sum, which a run resumed on other values would not match."""
    if not getattr(value, "ndim", 0):
        return value
    return f"array {tuple(value.shape)} {value.dtype} sum {float(np.sum(value)):.17g}"


def write_lazy(lazy, output, *, metadata=None, overwrite: bool = False):
    """Compute a dask array into ``output`` (``.zarr``, ``.ome.zarr`` or ``.tif``)
    by blocks, through ``OUTPUT.partial`` renamed at the end: an interrupted
    write leaves no file under the output's name."""
    import dask.array as da

    output = Path(output)
    partial = output.with_name(output.name + ".partial")
    target = _open_target(partial, lazy, fresh=True, metadata=metadata)
    da.store(lazy, target, lock=False)
    _finish(target, partial, output, overwrite)


def _open_target(partial: Path, lazy, *, fresh: bool, metadata=None):
    if partial.suffix.lower() != ".partial":
        raise AssertionError("the work file must end in .partial")
    kind = Path(partial.stem).suffix.lower()
    if kind == ".zarr":
        import zarr

        from .io import Metadata

        chunks = tuple(c[0] for c in lazy.chunks)
        if fresh and partial.exists():
            shutil.rmtree(partial)
        if not partial.stem.lower().endswith(".ome.zarr"):
            return zarr.open_array(str(partial), mode="w" if fresh else "r+", shape=lazy.shape,
                                   chunks=chunks, dtype=lazy.dtype)
        if not fresh:
            return zarr.open_array(str(partial / "0"), mode="r+")
        # an OME-Zarr image (NGFF 0.4, the version the most readers take): napari,
        # Fiji's BigDataViewer and OMERO see the voxel size and axes
        group = zarr.open_group(str(partial), mode="w", zarr_format=2)
        group.attrs.update(_ome_zarr_attrs(lazy.shape, metadata or Metadata()))
        return group.create_array("0", shape=lazy.shape, chunks=chunks, dtype=lazy.dtype)
    if kind in (".tif", ".tiff"):
        import tifffile

        from .io import Metadata, is_ome_path, tiff_options

        if fresh:
            partial.unlink(missing_ok=True)
            options = tiff_options(lazy.shape, lazy.dtype, metadata or Metadata(),
                                   ome=is_ome_path(partial.stem))
            return tifffile.memmap(str(partial), shape=lazy.shape, dtype=lazy.dtype, **options)
        return tifffile.memmap(str(partial), mode="r+")
    raise ValueError(f"out-of-core output must be .zarr or .tif, got {partial.stem}")


def _finish(target, partial: Path, output: Path, overwrite: bool):
    flush = getattr(target, "flush", None)
    if flush is not None:
        flush()
    del target
    if output.exists():
        if not overwrite:
            raise FileExistsError(f"{output} exists; pass --overwrite to replace it")
        shutil.rmtree(output) if output.is_dir() else output.unlink()
    os.replace(partial, output)


def _load_journal(journal: Path, signature: dict) -> tuple[set, int]:
    """The blocks a resumed job has written, and the samples it clipped."""
    try:
        record = json.loads(journal.read_text())
    except (OSError, ValueError):
        return set(), 0
    if record.get("signature") != signature:
        return set(), 0  # a different job wrote this partial output: start again
    return {tuple(b) for b in record.get("done", [])}, int(record.get("clipped", 0))


def _save_journal(journal: Path, signature: dict, done: set, clipped: int = 0):
    tmp = journal.with_name(journal.name + ".tmp")
    tmp.write_text(json.dumps({"signature": signature, "done": sorted(done),
                               "clipped": clipped}))
    os.replace(tmp, journal)
