"""Files in and out: TIFF and OME-TIFF (with voxel size), PNG/JPEG (8/16-bit), .npy,
CSV and WAV signals, FITS.

Every write is atomic: the data go to a temporary file in the target folder,
which is flushed and then renamed over the target, so an interrupted run
leaves either the old file or the complete new one, never half of one.  An
existing file is only replaced with ``overwrite=True``.
"""

from __future__ import annotations

import itertools
import math
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Metadata", "check_output_path", "check_shape", "read", "write", "FORMATS",
           "MICROMETRES", "linear_to_srgb", "srgb_to_linear"]

#: lengths in micrometres, by the unit names files use (ImageJ, OME, FITS headers)
MICROMETRES = {"nm": 1e-3, "um": 1.0, "\u00b5m": 1.0, "\u03bcm": 1.0, "\\u00B5m": 1.0,
               "micron": 1.0, "microns": 1.0, "micrometer": 1.0, "micrometre": 1.0,
               "nanometer": 1e-3, "nanometre": 1e-3, "mm": 1e3, "millimeter": 1e3,
               "millimetre": 1e3, "cm": 1e4, "m": 1e6}


def unit_named(unit, names: dict):
    """``unit`` under another format's name for the same length (``names``: its
    length in micrometres -> that name), or as it is."""
    return names.get(MICROMETRES.get(unit), unit)


FORMATS = {
    ".tif": "tiff", ".tiff": "tiff", ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg",
    ".npy": "npy", ".csv": "csv", ".txt": "csv", ".wav": "wav",
    ".fits": "fits", ".fit": "fits", ".fts": "fits",
    **{suffix: "raw" for suffix in (".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf",
                                    ".rw2", ".pef", ".srw")},
}


@dataclass(frozen=True)
class Metadata:
    """What a file says besides its samples.

    Attributes
    ----------
    spacing : tuple of float or None
        Sample spacing per axis (e.g. ``(z, y, x)`` micrometres), when known.
    unit : str or None
        Unit of ``spacing``.
    sample_rate : float or None
        Samples per second of a signal (WAV).
    axes : str or None
        One letter per axis as a TIFF names them (tifffile's codes: ``"ZCYX"``
        for an ImageJ hyperstack, ``C`` channels, ``S`` colour samples, ``T``
        time), when the file says; written back to TIFF.
    header : str or None
        A FITS image's header cards (its WCS, exposure, instrument...), as
        text; written back to a FITS output, less the cards that describe the
        old samples' encoding (``BITPIX``, ``BSCALE``, ``BZERO``, ``BLANK``,
        checksums).
    start : float or None
        Time of a CSV signal's first sample, when the file gives a time
        column (its first, evenly spaced, with ``sample_rate`` from the step);
        a CSV output then gets the time column back.
    columns : tuple of str or None
        A CSV's column names (its header line), written back.
    icc : bytes or None
        A PNG's or JPEG's colour profile (ICC), written back to a PNG or JPEG
        output, so that a photo in Display P3 or Adobe RGB keeps its colours.
    cfa : str or None
        A camera raw file's Bayer pattern, its 2 x 2 tile row by row
        (``"RGGB"``): ``super_resolve(..., bayer=cfa)``.
    black_level : tuple of float or None
        A raw file's black level at each site of that tile, row by row.
    white_level : float or None
        A raw file's white level: samples there are clipped.
    """

    spacing: tuple[float, ...] | None = None
    unit: str | None = None
    sample_rate: float | None = None
    axes: str | None = None
    header: str | None = None
    start: float | None = None
    columns: tuple[str, ...] | None = None
    icc: bytes | None = None
    cfa: str | None = None
    black_level: tuple[float, ...] | None = None
    white_level: float | None = None


def srgb_to_linear(values) -> np.ndarray:
    """sRGB-encoded values (a photo's, scaled to [0, 1]) as linear light.

    The transfer curve of IEC 61966-2-1 (a line near black, a 2.4 power
    above), extended to values outside [0, 1] as an odd function, so that
    nothing is clipped.  Optics and motion blur light, not its encoding: a
    camera's JPEG or PNG is restored in linear light and encoded back
    (:func:`linear_to_srgb`).  Floats keep their dtype; integers become float64.

    >>> float(srgb_to_linear(0.5))  # mid-grey on screen is a fifth of the light
    0.21404114048223255
    """
    return _odd(values, lambda v: np.where(v <= 0.04045, v / 12.92,
                                           ((v + 0.055) / 1.055) ** 2.4))


def linear_to_srgb(values) -> np.ndarray:
    """Linear light as sRGB-encoded values: the inverse of :func:`srgb_to_linear`.

    >>> float(linear_to_srgb(srgb_to_linear(0.5)))
    0.5
    """
    return _odd(values, lambda v: np.where(v <= 0.0031308, 12.92 * v,
                                           1.055 * v ** (1 / 2.4) - 0.055))


def _odd(values, curve):
    """``curve`` of ``|values|`` with their signs (floats keep their dtype)."""
    values = np.asarray(values)
    values = values if values.dtype.kind == "f" else values.astype(np.float64)
    return (np.sign(values) * curve(np.abs(values))).astype(values.dtype, copy=False)


def _format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown file type {path.suffix!r}; use one of "
                         f"{', '.join(sorted(FORMATS))}")
    return fmt


def read(path, *, with_metadata: bool = False):
    """Read an image, volume or signal.

    Parameters
    ----------
    path : str or Path
        ``.tif/.tiff`` (any dtype, N-D; spacing from ImageJ or deconvkit
        metadata and the resolution tags), ``.png/.jpg`` (8/16-bit, grey or
        colour with channels last, turned as the camera's orientation tag
        says, as viewers show it; its colour profile kept), ``.npy``, ``.csv/.txt`` (one signal: a
        single column or row), ``.wav`` (samples × channels),
        ``.fits/.fit/.fts`` (the first HDU with image data, scaled by its
        ``BSCALE``/``BZERO``; NaN samples, FITS's blank pixels, are missing
        data for the solvers that take them; needs astropy, the ``fits``
        extra), or a camera's raw file (``.dng``, ``.cr2``, ``.cr3``,
        ``.nef``, ``.arw``, ``.raf``, ``.orf``, ``.rw2``, ``.pef``, ``.srw``:
        its Bayer mosaic as recorded, the visible area, with the pattern and
        black levels in the metadata; needs rawpy, the ``raw`` extra; read
        only).
    with_metadata : bool
        Also return a :class:`Metadata`.

    Returns
    -------
    ndarray, or (ndarray, Metadata)
        Samples in the file's own dtype (the solvers promote them).
    """
    path = Path(path)
    fmt = _format(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        data, meta = _READERS[fmt](path)
    except (ValueError, OSError, KeyError, IndexError, TypeError, EOFError) as exc:
        raise ValueError(f"cannot read {path} as {fmt}: {exc}") from None
    if data.size == 0:
        raise ValueError(f"{path} holds no samples")
    return (data, meta) if with_metadata else data


def _read_tiff(path):
    import tifffile

    with tifffile.TiffFile(path) as tif:
        others = [series.shape for series in tif.series[1:]
                  if math.prod(series.shape[-2:]) >= math.prod(tif.series[0].shape[-2:])]
        if others:  # several positions or acquisitions; thumbnails (smaller) go unsaid
            warnings.warn(f"{path} holds {len(others) + 1} images of full size (shapes "
                          f"{tif.series[0].shape}, {', '.join(map(str, others))}); read the "
                          "first: split the file (Fiji, bfconvert -series) to restore the others",
                          stacklevel=3)
        return tif.asarray(), _tiff_metadata(tif)


def _tiff_metadata(tif) -> Metadata:
    spacing, unit = None, None
    shaped = tif.shaped_metadata[0] if tif.shaped_metadata else {}
    if "spacing" in shaped:
        spacing, unit = tuple(float(s) for s in shaped["spacing"]), shaped.get("unit")
    elif tif.is_ome:
        spacing, unit = _ome_spacing(tif.ome_metadata, tif.series[0].axes)
    else:
        spacing, unit = _tiff_resolution(tif, len(tif.series[0].shape))
    return Metadata(spacing=spacing, unit=unit, axes=_known_axes(tif))


def _ome_spacing(xml: str, axes: str):
    """``(z, y, x)`` or ``(y, x)`` from an OME-XML's first ``Pixels``, in X's unit."""
    import xml.etree.ElementTree as ElementTree

    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return None, None
    pixels = next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None or "PhysicalSizeX" not in pixels.attrib:
        return None, None

    def size(axis):  # OME's default unit is the micrometre
        value = pixels.attrib.get(f"PhysicalSize{axis}")
        return None if value is None else (float(value),
                                           pixels.attrib.get(f"PhysicalSize{axis}Unit", "\u00b5m"))

    (x, unit), y = size("X"), size("Y")
    lengths = [y or (x, unit), (x, unit)]
    if "Z" in axes and size("Z") is not None:
        lengths.insert(0, size("Z"))
    if any(u != unit for _, u in lengths) and not {u for _, u in lengths} <= set(MICROMETRES):
        return None, None  # units that cannot be brought to one
    spacing = tuple(v * MICROMETRES.get(u, 1.0) / MICROMETRES.get(unit, 1.0)
                    for v, u in lengths)
    return spacing, unit


def tiff_metadata(path) -> Metadata:
    """A TIFF's spacing, unit and axes, without reading its samples."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        return _tiff_metadata(tif)


def tiff_axes(path) -> str | None:
    """The axis letters a TIFF names (e.g. ``"ZCYX"``), without reading its samples."""
    return tiff_metadata(path).axes


def _known_axes(tif) -> str | None:
    # "Q" is tifffile's unknown axis: only a full set of known letters says anything
    series = tif.series[0]
    axes = series.axes
    return axes if len(axes) == len(series.shape) and "Q" not in axes else None


def _tiff_resolution(tif, ndim):
    page = tif.pages[0]
    tags = page.tags
    if "XResolution" not in tags or "YResolution" not in tags:
        return None, None
    xr, yr = (tags[name].value for name in ("XResolution", "YResolution"))
    x, y = xr[1] / xr[0], yr[1] / yr[0]
    ij = tif.imagej_metadata or {}
    unit = ij.get("unit")
    if ndim >= 3 and "spacing" in ij:
        return (float(ij["spacing"]), y, x), unit
    if x == 1.0 and y == 1.0 and "unit" not in ij and "spacing" not in ij:
        return None, None
    return (y, x), unit


def _read_image(path):
    import imageio.v3 as iio
    from PIL import Image

    with Image.open(path) as opened:
        icc = opened.info.get("icc_profile") or None
    if _png_deep_colour(path):  # Pillow would keep 8 of the 16 bits
        return _read_png16(path), Metadata(icc=icc)
    # as a viewer shows it: a camera's orientation tag applied (the output,
    # written without the tag, then shows the same way up as the input)
    data = np.asarray(iio.imread(path, plugin="pillow", rotate=True))
    return data, Metadata(icc=icc)


def _png_deep_colour(path) -> bool:
    """A PNG of 16 bits a sample in colour or with alpha (its header's bit depth
    and colour type): Pillow reads these as 8 bits, pypng in full."""
    with open(path, "rb") as f:
        head = f.read(26)
    return head[:8] == b"\x89PNG\r\n\x1a\n" and head[24] == 16 and head[25] in (2, 4, 6)


def _read_png16(path) -> np.ndarray:
    import zlib

    import png

    try:
        with open(path, "rb") as f:  # pypng leaves a file it opened itself open
            width, height, rows, info = png.Reader(file=f).asDirect()
            data = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
    except (png.Error, zlib.error) as exc:  # neither is an OSError: read would not catch it
        raise ValueError(f"a broken PNG ({exc})") from None
    return data.reshape(height, width, info["planes"])


def _read_npy(path):
    return np.load(path, allow_pickle=False), Metadata()


def _read_csv(path):
    delimiter = "," if path.suffix.lower() == ".csv" else None
    with open(path) as f:
        lines = [line.strip() for line in itertools.islice(f, 200)]
    # leading comment lines (#, %) and blank ones, then maybe a header line
    start = next((i for i, line in enumerate(lines) if line and line[0] not in "#%"),
                 len(lines))
    first = lines[start] if start < len(lines) else ""
    # a European spreadsheet's export: ";" between fields, "," before decimals
    decimal_comma = delimiter == "," and any(";" in line for line in lines[start:start + 2])
    if decimal_comma:
        delimiter = ";"

    def number(token: str) -> float:
        return float(token.replace(",", ".") if decimal_comma else token)

    try:  # a header line (column names) is skipped, and kept
        [number(token) for token in first.split(delimiter) if token.strip()]
        columns = None
    except ValueError:
        columns = tuple(token.strip() for token in first.split(delimiter))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty file is reported below, as an error
        data = np.loadtxt(path, delimiter=delimiter, ndmin=2, comments=("#", "%"),
                          skiprows=start + int(bool(columns)),
                          converters=number if decimal_comma else None)
    if data.size == 0:
        raise ValueError("it holds no samples")
    if data.shape[1] == 2 and data.shape[0] > 2:
        step = np.diff(data[:, 0])
        # an oscilloscope's time column: evenly spaced up to the digits printed
        if step.min() > 0 and np.ptp(step) <= 0.01 * step.mean():
            return data[:, 1].copy(), Metadata(sample_rate=1.0 / step.mean(),
                                               start=float(data[0, 0]), columns=columns)
    if min(data.shape) != 1:
        raise ValueError(f"it has {data.shape[1]} columns and {data.shape[0]} rows; "
                         "put one signal per file, as a single column (or time and signal "
                         "as two, the times evenly spaced)")
    return data.ravel(), Metadata(columns=columns)


def _read_wav(path):
    import scipy.io.wavfile

    with warnings.catch_warnings(record=True) as caught:
        # chunks it does not read (LIST, cue) are noise; a file cut short is not
        warnings.simplefilter("always", scipy.io.wavfile.WavFileWarning)
        rate, data = scipy.io.wavfile.read(path)
    for warning in caught:
        if "EOF" in str(warning.message):
            warnings.warn(f"{path} ends before its header says ({warning.message}); read "
                          f"the {len(data)} samples it holds", stacklevel=4)
    return np.asarray(data), Metadata(sample_rate=float(rate))


def _read_raw(path):
    try:
        import rawpy
    except ImportError:
        raise ValueError("camera raw files need rawpy: pip install 'deconvkit[raw]'") from None
    try:
        opened = rawpy.imread(str(path))
    except rawpy.LibRawError as exc:  # not an OSError: read's caller would see a traceback
        raise ValueError(f"LibRaw cannot decode it ({type(exc).__name__}: {exc})") from None
    with opened as raw:
        pattern = np.asarray(raw.raw_pattern) if raw.raw_pattern is not None else None
        colours = raw.color_desc.decode()
        if pattern is None or pattern.shape != (2, 2) or set(colours) != set("RGB"):
            raise ValueError("not a 2 x 2 RGB Bayer mosaic (an X-Trans or four-colour "
                             "sensor); develop it elsewhere")
        cfa = "".join(colours[i] for i in pattern.ravel())
        black = tuple(float(raw.black_level_per_channel[i]) for i in pattern.ravel())
        mosaic = np.array(raw.raw_image_visible, dtype=np.uint16)
        white = float(raw.white_level)
    return mosaic, Metadata(cfa=cfa, black_level=black, white_level=white)


def _astropy_fits():
    try:
        from astropy.io import fits
    except ImportError:
        raise ValueError("FITS files need astropy: pip install 'deconvkit[fits]'") from None
    return fits


def _read_fits(path):
    fits = _astropy_fits()
    with fits.open(path, memmap=False) as hdus:
        image = next((h for h in hdus if getattr(h, "is_image", False) and h.data is not None),
                     None)
        if image is None:
            raise ValueError("no HDU holds image data")
        data = np.asarray(image.data)
        header = image.header.tostring()
    # FITS is big-endian: native order for the solvers (and torch)
    return data.astype(data.dtype.newbyteorder("="), copy=False), Metadata(header=header)


_READERS: dict[str, Callable] = {
    "tiff": _read_tiff, "png": _read_image, "jpeg": _read_image, "npy": _read_npy, "raw": _read_raw,
    "csv": _read_csv, "wav": _read_wav, "fits": _read_fits,
}


def check_output_path(output, inputs=(), *, overwrite: bool = False) -> Path:
    """Refuse an output that is one of the inputs, or exists without ``overwrite``."""
    output = Path(output)
    if _format(output) == "raw":
        raise ValueError(f"{output}: camera raw files are read, not written; write a .tif")
    for source in inputs:
        if Path(source).resolve() == output.resolve():
            raise ValueError(f"output {output} is the input file; choose another output path "
                             "(inputs are never overwritten)")
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass overwrite=True (CLI: --overwrite) "
                              "to replace it")
    if not output.parent.exists():
        raise FileNotFoundError(f"folder {output.parent} does not exist; create it first")
    return output


def write(path, data, *, metadata: Metadata | None = None, overwrite: bool = False,
          bit_depth: int | None = None) -> Path:
    """Write ``data`` atomically; the format follows the file extension.

    Parameters
    ----------
    path : str or Path
    data : array
        numpy or torch array (moved to the host).
    metadata : Metadata, optional
        Spacing/unit for TIFF, sample rate for WAV (default 44100 Hz), the
        colour profile for PNG/JPEG (JPEG is written at quality 95 without
        chroma subsampling: Pillow's default, 75, blurs fine detail away).
    overwrite : bool
        Replace an existing file (atomically).
    bit_depth : {8, 16, 32}, optional
        For PNG/JPEG: float data are rounded and clipped to ``uint8``
        (default) or ``uint16`` (a warning says how many samples were
        clipped).  Integer data keep their dtype.  JPEG is 8-bit only.
        For TIFF (8 or 16): the same when given; float data stay float
        otherwise.
        For WAV: float data become ``uint8``, ``int16`` or ``int32`` samples
        the same way (default: float32 samples).
    """
    from ._array_api import to_numpy

    path = check_output_path(path, overwrite=overwrite)
    data = to_numpy(data)
    metadata = metadata or Metadata()
    fmt = _format(path)
    check_shape(path, data.shape)
    _check_samples(path, fmt, data)
    if fmt == "png" and data.dtype == bool:
        pass  # a 1-bit PNG, read back as bool
    elif fmt in ("png", "jpeg"):
        data = _to_integer_image(data, 8 if fmt == "jpeg" else bit_depth, path)
    if fmt == "tiff" and bit_depth is not None:
        if bit_depth not in (8, 16):
            raise ValueError(f"bit_depth for TIFF must be 8 or 16, got {bit_depth!r}")
        if data.dtype.kind == "f":
            data = _rounded_into(data, np.uint16 if bit_depth == 16 else np.uint8, path)
    if fmt == "wav" and bit_depth is not None and data.dtype.kind == "f":
        if bit_depth not in _WAV_SAMPLES:
            raise ValueError(f"bit_depth for WAV must be 8, 16 or 32, got {bit_depth!r}")
        data = _rounded_into(data, _WAV_SAMPLES[bit_depth], path)
    data = _widened_for(fmt, data, path, ome=is_ome_path(path))
    _atomic(path, lambda tmp: _WRITERS[fmt](tmp, data, metadata))
    return path


def write_figure(path, figure, *, overwrite: bool = False, dpi: int = 80) -> Path:
    """Save a matplotlib ``figure`` atomically under the rules of :func:`write`, then close it."""
    import matplotlib.pyplot as plt

    path = check_output_path(path, overwrite=overwrite)
    _atomic(path, lambda tmp: figure.savefig(tmp, dpi=dpi))
    plt.close(figure)
    return path


def check_shape(path, shape) -> None:
    """Refuse, before any work is done, an array of ``shape`` that the format of
    ``path`` cannot hold (PNG/JPEG: 2-D grey or colour; CSV: one 1-D signal; WAV:
    samples x channels), naming a format that can."""
    path, shape = Path(path), tuple(shape)
    fmt = _format(path)
    if fmt in ("png", "jpeg"):
        # PNG: grey or RGB, each with alpha; JPEG: grey, RGB or CMYK
        samples = (1, 3, 4) if fmt == "jpeg" else (1, 2, 3, 4)
        if len(shape) not in (2, 3) or (len(shape) == 3 and shape[-1] not in samples):
            raise ValueError(f"{path}: {fmt.upper()} holds 2-D grey or colour images with "
                             f"{', '.join(map(str, samples))} samples per pixel (channels "
                             f"last), got shape {shape}; write a .tif instead")
    elif fmt == "csv" and len(shape) != 1:
        raise ValueError(f"{path}: CSV holds one 1-D signal, got shape {shape}; write a .npy")
    elif fmt == "wav" and len(shape) not in (1, 2):
        raise ValueError(f"{path}: WAV holds samples x channels, got shape {shape}; "
                         "write a .npy")
    elif fmt == "tiff" and len(shape) < 2:
        raise ValueError(f"{path}: TIFF holds images (2-D or more), got shape {shape}; "
                         "write a 1-D signal as .csv, .wav or .npy")
    elif fmt == "tiff" and is_ome_path(path) and len(shape) > 5:
        raise ValueError(f"{path}: OME-TIFF holds at most 5 axes (TCZYX), got shape {shape}; "
                         "write a plain .tif")


def _check_samples(path, fmt: str, data) -> None:
    """Refuse what the format would store wrongly or not at all: no samples,
    Python objects, complex samples where only real ones fit."""
    if data.size == 0:
        raise ValueError(f"{path}: the data hold no samples (shape {data.shape})")
    if data.dtype.kind not in "biufc":
        raise TypeError(f"{path}: cannot write samples of dtype {data.dtype}; pass numbers")
    if data.dtype.kind == "c" and fmt not in ("tiff", "npy"):
        raise TypeError(f"{path}: {fmt.upper()} holds real samples, got {data.dtype}; write a "
                        ".tif or .npy, or pass the real part or magnitude")


def _to_integer_image(data, bit_depth, path):
    if bit_depth not in (None, 8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    if data.dtype.kind in "ui" and bit_depth is None:
        if data.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"{path}: dtype {data.dtype} does not fit PNG; pass bit_depth")
        return data
    return _rounded_into(data, np.uint16 if bit_depth == 16 else np.uint8, path)


_WAV_SAMPLES = {8: np.uint8, 16: np.int16, 32: np.int32}  # WAV's 8-bit samples are unsigned

# sample types a format cannot store, and the wider one that holds every value
_WIDER = {
    "wav": {np.dtype(bool): np.uint8, np.dtype(np.int8): np.int16,
            np.dtype(np.uint16): np.int32, np.dtype(np.float16): np.float32},
    "fits": {np.dtype(np.float16): np.float32, np.dtype(np.int8): np.int16},
    "ome": {np.dtype(np.float16): np.float32},
}
_STORES = {  # what remains refused after widening, and what each format stores
    "wav": ("uint8, int16, int32, int64, float32 and float64",
            (np.uint8, np.int16, np.int32, np.int64, np.float32, np.float64)),
    "ome": ("8-, 16- and 32-bit integers, float32, float64, complex and bool",
            (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.float32,
             np.float64, np.complex64, np.complex128, bool)),
}


def _widened_for(fmt: str, data, path, *, ome: bool):
    """``data`` in a sample type the format stores: widened without loss where
    it lacks the type (float16 in FITS, uint16 in WAV), else a clear error."""
    kind = "ome" if fmt == "tiff" and ome else fmt
    wider = _WIDER.get(kind, {}).get(data.dtype)
    if wider is not None:
        return data.astype(wider)
    if kind in _STORES and data.dtype not in [np.dtype(t) for t in _STORES[kind][1]]:
        name = "OME-TIFF" if kind == "ome" else kind.upper()
        raise ValueError(f"{path}: {name} stores {_STORES[kind][0]} samples, not "
                         f"{data.dtype}; convert the data (numpy's astype) or write a .npy"
                         + (" or a plain .tif" if kind == "ome" else ""))
    return data


def _rounded_into(data, dtype, path):
    """``data`` rounded to the integer ``dtype``, clipped to its range with a warning."""
    missing = int(np.isnan(data).sum()) if data.dtype.kind in "fc" else 0
    if missing:
        raise ValueError(f"{path}: {missing} samples are NaN (missing), which "
                         f"{_format(path).upper()} cannot store; write a .tif, .npy or .fits, "
                         "or fill them first (numpy.nan_to_num)")
    rounded, clipped = rounded_to(data, dtype)
    if clipped:
        keep = ("leave bit_depth out (CLI: --bit-depth) for a float TIFF"
                if _format(Path(path)) == "tiff" else "write a .tif or .npy")
        warnings.warn(f"{path}: {clipped} samples outside {np.iinfo(dtype).min}.."
                      f"{np.iinfo(dtype).max} were clipped; scale the data or {keep} to keep "
                      "them", stacklevel=4)
    return rounded


def rounded_to(data, dtype) -> tuple[np.ndarray, int]:
    """``data`` rounded to the integer ``dtype`` and clipped to its range, and how
    many samples the clipping moved."""
    low, high = np.iinfo(dtype).min, np.iinfo(dtype).max
    rounded = np.rint(np.asarray(data, dtype=np.float64))
    clipped = int(((rounded < low) | (rounded > high)).sum())
    return np.clip(rounded, low, high).astype(dtype), clipped


def _write_tiff(path, data, metadata):
    import tifffile

    tifffile.imwrite(path, data, **tiff_options(data.shape, data.dtype, metadata,
                                                ome=is_ome_path(path)))


def is_ome_path(path) -> bool:
    """An ``.ome.tif``/``.ome.tiff`` name: written as OME-TIFF."""
    return Path(path).name.lower().endswith((".ome.tif", ".ome.tiff"))


#: ImageJ's hyperstack axes, in the order it stores them, and its sample types
_IMAGEJ_AXES, _IMAGEJ_DTYPES = "TZCYX", ("uint8", "uint16", "float32")


def tiff_options(shape, dtype, metadata, *, ome: bool = False) -> dict:
    """``tifffile.imwrite`` keywords that keep ``metadata`` for ``shape`` and ``dtype``.

    ``ome``: an OME-TIFF (the voxel size and axes in its OME-XML, as
    Bio-Formats, OMERO and QuPath read them).  Otherwise an ImageJ hyperstack
    where ImageJ can hold the data (8/16-bit or float32, axes among TZCYX in
    that order, under 4 GB), so Fiji sees the voxel size and the axes; else
    tifffile's shaped TIFF, whose JSON description keeps every axis' spacing
    (deconvkit and tifffile read it).  The resolution tags carry the lateral
    spacing in the file's own unit, never in inches.
    """
    spacing, unit = metadata.spacing, metadata.unit
    axes = metadata.axes if metadata.axes and len(metadata.axes) == len(shape) else None
    if axes is None and (len(shape) == 2 or len(shape) == 3 and spacing and len(spacing) == 3):
        axes = "ZYX"[-len(shape):]  # a 2-D image, or a volume with a voxel size
    if ome:
        return dict(photometric="minisblack", ome=True,
                    metadata=_ome_metadata(axes, spacing, unit))
    options = dict(photometric="minisblack")  # sample axes only, never RGB planes
    if spacing is not None and len(spacing) >= 2:
        y, x = spacing[-2:]
        options.update(resolution=(1.0 / x, 1.0 / y), resolutionunit="NONE")
    # ImageJ's format is a classic TIFF: tifffile truncates it past 4 GB (with a warning)
    small = math.prod(shape) * np.dtype(dtype).itemsize < 2**32 - 2**25
    if (small and axes is not None and np.dtype(dtype).name in _IMAGEJ_DTYPES
            and axes.endswith("YX") and _in_order(axes, _IMAGEJ_AXES)):
        imagej = {"axes": axes}
        if unit is not None:
            imagej["unit"] = unit
        if spacing is not None and len(spacing) >= 3 and "Z" in axes:
            imagej["spacing"] = float(spacing[-3])
        return dict(options, imagej=True, metadata=imagej)
    shaped = {}
    if spacing is not None:
        shaped["spacing"] = list(spacing)
    if unit is not None:
        shaped["unit"] = unit
    if axes is not None:
        shaped["axes"] = axes
    return dict(options, metadata=shaped)


def _ome_metadata(axes, spacing, unit) -> dict:
    """tifffile's OME keywords: the axes where OME has them, the physical sizes."""
    metadata = {}
    if axes is not None and set(axes) <= set("TZCYXS"):
        metadata["axes"] = axes
    if spacing is not None and len(spacing) >= 2:
        names = ("Z", "Y", "X")[-min(len(spacing), 3):]
        if "Z" in names and (axes is None or "Z" not in axes):
            names = names[1:]  # a Z spacing without a Z axis has nowhere to go
        for name, value in zip(names, spacing[-len(names):]):
            metadata[f"PhysicalSize{name}"] = float(value)
            if unit is not None:
                metadata[f"PhysicalSize{name}Unit"] = unit_named(unit, {1.0: "\u00b5m"})
    return metadata


def _in_order(axes: str, order: str) -> bool:
    """``axes`` are distinct letters of ``order``, in its order."""
    positions = [order.find(a) for a in axes]
    return -1 not in positions and positions == sorted(set(positions))


def _write_image(path, data, metadata):
    import imageio.v3 as iio

    if data.dtype == np.uint16 and data.ndim == 3 and _format(path) == "png":
        return _write_png16(path, data, metadata)  # Pillow writes no 16-bit colour
    # a JPEG's four channels are CMYK (it has no alpha), as it was read
    options = {"icc_profile": metadata.icc} if metadata.icc else {}
    if _format(path) == "jpeg":  # Pillow's default quality, 75, blurs what was restored
        options.update(quality=95, subsampling=0)
        if data.ndim == 3 and data.shape[-1] == 4:
            options["mode"] = "CMYK"
    iio.imwrite(path, data, plugin="pillow", **options)


def _write_png16(path, data, metadata):
    """A 16-bit colour (or grey and alpha) PNG by pypng, with the ICC profile."""
    import zlib

    import png

    height, width, planes = data.shape
    writer = png.Writer(width=width, height=height, bitdepth=16, greyscale=planes < 3,
                        alpha=planes in (2, 4))
    with open(path, "wb") as f:
        writer.write(f, data.reshape(height, width * planes))
    if metadata.icc:  # an iCCP chunk after the header: profile name, method 0, zlib
        with open(path, "rb") as f:
            chunks = list(png.Reader(file=f).chunks())
        profile = (b"iCCP", b"icc\x00\x00" + zlib.compress(metadata.icc))
        with open(path, "wb") as f:
            png.write_chunks(f, [chunks[0], profile, *chunks[1:]])


def _write_npy(path, data, metadata):
    with open(path, "wb") as f:
        np.save(f, data, allow_pickle=False)


def _write_csv(path, data, metadata):
    columns = [data]
    if metadata.start is not None and metadata.sample_rate:  # the time column back
        columns.insert(0, metadata.start + np.arange(data.size) / metadata.sample_rate)
    names = metadata.columns if metadata.columns and len(metadata.columns) == len(columns) \
        else None
    np.savetxt(path, np.stack(columns, axis=1), delimiter=",", fmt="%.9g",
               header=",".join(names) if names else "", comments="")


def _write_wav(path, data, metadata):
    import scipy.io.wavfile

    rate = int(round(metadata.sample_rate or 44100))
    if data.dtype.kind == "f":
        data = data.astype(np.float32)
    scipy.io.wavfile.write(path, rate, data)


def _write_fits(path, data, metadata):
    fits = _astropy_fits()
    header = fits.Header.fromstring(metadata.header) if metadata.header else fits.Header()
    header.strip()  # SIMPLE/XTENSION, BITPIX, NAXISn...: astropy writes the new ones
    for key in ("BSCALE", "BZERO", "BLANK", "CHECKSUM", "DATASUM"):  # the old encoding's
        header.remove(key, ignore_missing=True, remove_all=True)
    if data.dtype == bool:
        data = data.astype(np.uint8)
    fits.PrimaryHDU(data=data, header=header).writeto(path, overwrite=True)


_WRITERS: dict[str, Callable] = {
    "tiff": _write_tiff, "png": _write_image, "jpeg": _write_image, "npy": _write_npy,
    "csv": _write_csv, "wav": _write_wav, "fits": _write_fits,
}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic(path: Path, writer: Callable[[Path], None]) -> None:
    """Run ``writer`` on a temporary sibling of ``path``, then rename it into place."""
    # the full suffix, so that writers that read it (.ome.tif) see the target's
    suffix = ".ome" + path.suffix if is_ome_path(path) else path.suffix
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        writer(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 is not what a new file gets
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
