"""The ``deconvkit`` command: argument parsing over the public functions, nothing more.

User errors (bad arguments, unreadable files, invalid data) print one line
``deconvkit: error: ...`` and exit with status 2, never a traceback.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import click

from . import io as dkio
from . import psf as psf_module
from ._outofcore import (
    choose_chunks,
    is_lazy_path,
    open_lazy,
    parse_size,
    run_chunked,
    write_lazy,
    zarr_metadata,
)
from ._validate import central_window, check_channel_axis
from .tiling import is_dask, working_dtype

#: file types that hold photos: sRGB-encoded values, highlights clipped at the top
JPEG_SUFFIXES = (".jpg", ".jpeg")
PHOTO_SUFFIXES = (".png", *JPEG_SUFFIXES)
_ENCODING_HELP = ("How INPUT's values relate to light.  srgb: a photo's tone curve, decoded "
                  "to linear light (where optics and motion blur) before the work and "
                  "encoded after; linear: as stored.  auto: srgb for PNG and JPEG, linear for "
                  "the rest.")
BOUNDARY_CHOICES = ["auto", "periodic", "zero", "reflect", "symmetric", "edge", "valid"]
# kept here (not imported from restoration) so that --help stays fast
METHOD_NAMES = ["total_variation", "richardson_lucy", "richardson_lucy_tv", "wavelet", "wiener",
                "tikhonov", "cgls", "unsupervised_wiener", "landweber", "van_cittert",
                "gold", "inverse_filter"]


def _refuse_unused(names, mode: str) -> None:
    """Options typed on the command line that ``mode`` does not use: an error
    naming them, not silence (their defaults are not counted)."""
    context = click.get_current_context()
    typed = [f"--{name.replace('_', '-')}" for name in names
             if context.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE]
    if typed:
        raise click.UsageError(f"{', '.join(typed)}: not used with {mode}; leave out (or "
                               "choose the mode that uses it)")


def _load_psf(spec: str):
    """A PSF from a file path (if it exists) or a generator spec, and its metadata."""
    if Path(spec).is_file():
        return dkio.read(spec, with_metadata=True)
    if ":" not in spec and Path(spec).suffix.lower() in dkio.FORMATS:
        raise FileNotFoundError(f"psf file {spec} does not exist")
    spacing = psf_module.spec_spacing(spec)  # widefield's sampling, in micrometres
    return psf_module.from_spec(spec), dkio.Metadata(spacing=spacing,
                                                     unit="um" if spacing else None)


def _measured(kernel, meta, spec: str, radial: bool):
    """A measured PSF file made a model (``--measured-psf``, ``psf --measured``); a
    generator spec is one already."""
    if not Path(spec).is_file():
        raise ValueError(f"a measured PSF is a file imaging a point source, and {spec!r} is a "
                         "generator spec; leave --measured(-psf) out")
    if meta.axes and set(meta.axes) & set("CST"):  # channels, colour samples, time
        raise ValueError(f"{spec} has axes {meta.axes}; a measured PSF is one bead image "
                         "(Z, Y, X): split the channels or time points into files first "
                         "(Fiji: Image > Color > Split Channels) and measure each")
    return psf_module.from_measurement(kernel, radial=radial)


def _warn_if_raw_measurement(kernel, spec: str) -> None:
    """Warn of a PSF file whose faces stand above 1 % of its peak (computed PSFs
    measured 0.00-0.03 %): a raw bead or star image, whose background would blur
    the model like a pedestal."""
    import numpy as np

    if not Path(spec).is_file():
        return
    kernel = np.asarray(kernel, dtype=np.float64)
    level, _ = psf_module._background(kernel)
    peak = float(np.max(kernel))
    # a uniform kernel (a box blur, a pixel's integration) is a model, not a bead
    if peak > 0 and level > 0.01 * peak and np.ptp(kernel) > 1e-9 * peak:
        warnings.warn(f"{spec}: its faces stand at {100 * level / peak:.1f} % of its peak, "
                      "like a measured bead's or star's background; pass --measured-psf "
                      "radial (or plain) to subtract it and centre the peak", stacklevel=2)


def _spacing_in_micrometres(meta):
    """A file's voxel size in µm, when it states one for (at least) Z, Y and X in a
    length unit (or none: taken as µm); else None."""
    if meta.spacing is None or len(meta.spacing) < 3 or (
            meta.unit is not None and meta.unit not in dkio.MICROMETRES):
        return None
    return tuple(float(v) * dkio.MICROMETRES.get(meta.unit, 1.0) for v in meta.spacing)


def _psf_on_grid_of(kernel, psf_meta, meta, source):
    """The PSF on the image's sampling, and a note saying so.

    A PSF file measured or computed at another voxel size than the image's
    (both files say theirs) would restore the image with a PSF of the wrong
    width: it is resampled (:func:`deconvkit.psf.resample`), as Huygens does.
    """
    d = kernel.ndim
    if psf_meta.spacing is not None and len(psf_meta.spacing) >= d and (
            meta.spacing is None or len(meta.spacing) < d):
        unit = f" {psf_meta.unit}" if psf_meta.unit else ""
        return kernel, (f"the PSF is sampled at "
                        f"{'x'.join(f'{float(v):.4g}' for v in psf_meta.spacing[-d:])}{unit} "
                        f"and {source} states no voxel size: taken as the same")
    if (psf_meta.spacing is None or meta.spacing is None or len(psf_meta.spacing) < d
            or len(meta.spacing) < d):
        return kernel, ""
    if (psf_meta.unit is None) != (meta.unit is None):
        return kernel, ""  # e.g. a photo's dots per inch against a PSF in micrometres
    units = {psf_meta.unit, meta.unit} - {None}
    if len(units) > 1 and not units <= set(dkio.MICROMETRES):
        raise ValueError(f"the PSF's voxel size is in {psf_meta.unit} and {source}'s in "
                         f"{meta.unit}; convert one of them (or strip the PSF's spacing)")
    factor = (dkio.MICROMETRES[psf_meta.unit] / dkio.MICROMETRES[meta.unit]
              if len(units) > 1 else 1.0)
    old = tuple(factor * float(v) for v in psf_meta.spacing[-d:])
    new = tuple(float(v) for v in meta.spacing[-d:])
    if all(abs(a - b) <= 0.01 * b for a, b in zip(old, new)):
        return kernel, ""
    resampled = psf_module.resample(kernel, old, new)
    unit = f" {meta.unit}" if meta.unit else ""
    return resampled, (f"PSF resampled from spacing {'x'.join(f'{v:.4g}' for v in old)} to "
                       f"{'x'.join(f'{v:.4g}' for v in new)}{unit}, shape {resampled.shape}")


class _Progress:
    """A rich progress bar driven by a solver's per-iteration callback."""

    def __init__(self, total: int | None, label: str, quiet: bool):
        self.quiet = quiet
        self.total = total
        self.label = label

    def __enter__(self):
        if self.quiet:
            return self
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.bar = Progress("[progress.description]{task.description}", BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(), transient=True,
                            console=_console(stderr=True))
        self.bar.__enter__()
        self.task = self.bar.add_task(self.label, total=self.total)
        return self

    def __call__(self, iteration, estimate=None):
        if not self.quiet:
            self.bar.update(self.task, completed=iteration)
        return False

    def set(self, done, total):
        if not self.quiet:
            self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc):
        if not self.quiet:
            self.bar.__exit__(*exc)
        return False


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deconvkit")
def cli():
    """Deconvolution of signals, images and volumes."""


def _number_or_auto(value, option, *, words=("auto",)):
    """A float, an int, or one of ``words`` (kept as given); ``option`` names the
    flag in the error."""
    if value is None or value in words:
        return value
    try:
        number = float(value)
    except ValueError:
        named = " or ".join(repr(w) for w in words)
        raise click.UsageError(f"{option}: {value!r} is not a number or {named}") from None
    return int(number) if number.is_integer() and "." not in value and "e" not in value \
        else number


def _saturated_option(value):
    """``--saturated``: a level, auto, none (every sample a measurement), or None
    (the default: a photo's clipped highlights)."""
    return _number_or_auto(value, "--saturated", words=("auto", "none"))


def _solver_options_given(extra, **flags):
    """The solver's keywords: the ``--option`` pairs, then the flags given (not None)."""
    options = _parse_options(extra)
    options.update({key: value for key, value in flags.items() if value is not None})
    return options


def _parse_options(items):
    """``--option key=value`` pairs, values as numbers, booleans, None or text."""
    options = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise click.BadParameter(f"{item!r} is not key=value", param_hint="--option")
        lowered = value.lower()
        if lowered in ("true", "false"):
            options[key] = lowered == "true"
        elif lowered == "none":
            options[key] = None
        else:
            try:
                options[key] = _number_or_auto(value, "--option")
            except click.UsageError:
                options[key] = value
    return options


@cli.command()
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True, type=click.Path())
@click.option("--psf", "psf_spec", required=True, multiple=True,
              help="PSF file, or a generator spec such as gaussian:sigma=2 (or gaussian:2) or "
                   "motion:length=15,angle=30 (see deconvkit.psf.from_spec); repeat it "
                   "to give each channel its own PSF.")
@click.option("--measured-psf", type=click.Choice(["radial", "plain"]), default=None,
              help="The --psf files are images of a point source (a bead, a star): "
                   "subtract their background and centre their peak, and with radial "
                   "average them over rotations about it (deconvkit.psf.from_measurement).")
@click.option("--psf-grid", is_flag=True,
              help="The --psf file holds a grid of PSFs measured across the field, shaped "
                   "(G1, ..., Gd, K1, ..., Kd): node j is the PSF at the centre of tile j of "
                   "the frame cut into G1 x ... x Gd tiles; the blur interpolates between "
                   "them (deconvkit.SpaceVariantConvolution; total_variation, "
                   "richardson_lucy(_tv), landweber and gold).")
@click.option("-o", "--output", type=click.Path(),
              help="Output file (one INPUT); the format follows the extension.")
@click.option("--out-dir", type=click.Path(file_okay=False),
              help="Folder for the outputs of several INPUTs (same names).")
@click.option("--method", default="auto", show_default=True,
              type=click.Choice(["auto", *METHOD_NAMES]),
              help="auto picks from the data; the others are deconvkit.restoration's functions.")
@click.option("--boundary", default="auto", show_default=True,
              type=click.Choice(BOUNDARY_CHOICES),
              help="auto picks the model that avoids edge ringing for the method.")
@click.option("--iterations", default=None, help="A number, or auto (the stopping rule).")
@click.option("--weight", default=None,
              help="Regularisation weight (balance for wiener): a number or auto.")
@click.option("--noise-sigma", type=float, default=None,
              help="Noise standard deviation (default: estimated from the data).")
@click.option("--time-limit", type=float, default=None, help="Stop iterating after SECONDS.")
@click.option("--option", "extra", multiple=True, metavar="KEY=VALUE",
              help="Any other keyword of the method, e.g. --option acceleration=none.")
@click.option("--channel-axis", type=int, default=None,
              help="Axis of colour channels (default: a TIFF's C axis, e.g. of an ImageJ "
                   "hyperstack, or the last axis of a colour PNG/JPEG).")
@click.option("--memory-limit", default=None,
              help="Work out of core in chunks that fit, e.g. 2GB (zarr inputs always do).")
@click.option("--chunks", default=None, help="Chunk shape for out-of-core work, e.g. 64x256x256.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Files (or chunks) processed at once (default: number of cores, at most 4).")
@click.option("--bit-depth", type=click.Choice(["8", "16"]), default=None,
              help="Integer depth (unsigned) for a PNG or TIFF output of float results, "
                   "rounded, clipped with a warning (default: a PNG takes the input's "
                   "depth, a TIFF stays float32).")
@click.option("--bad-pixels", type=click.Path(dir_okay=False), default=None,
              help="Image whose nonzero samples mark missing data in INPUT (a bad- or "
                   "hot-pixel map, a data-quality array): the image's shape, or one plane "
                   "or channel of it, repeated (out of core too).")
@click.option("--saturated", default=None, metavar="LEVEL|auto|none",
              help="Samples at or above LEVEL are saturated: lower bounds, not "
                   "measurements (auto: the integer input's maximum, 255 or 65535; the "
                   "default for PNG and JPEG photos, whose highlights clip, with the "
                   "methods that take it; none: every sample a measurement).  "
                   "total_variation and richardson_lucy(_tv) only.")
@click.option("--background", default=None, metavar="LEVEL|FILE|snip",
              help="Known background under the data, modelled (y = Ax + b): a level, an "
                   "image of INPUT's shape (a sky map, a continuum), or snip: the continuum "
                   "of a 1-D spectrum by SNIP clipping over 2 PSF widths.  "
                   "total_variation (the usual automatic choice), richardson_lucy(_tv), "
                   "gold and wavelet.")
@click.option("--encoding", type=click.Choice(["auto", "srgb", "linear"]), default="auto",
              show_default=True, help=_ENCODING_HELP + "  Not with --multiview, --deskew or out "
              "of core.")
@click.option("--multiview", is_flag=True,
              help="The INPUTs are registered views of one object (a light-sheet "
                   "microscope's angles), each with its --psf (or one for all): restore them "
                   "together into -o (deconvkit.richardson_lucy_multiview).")
@click.option("--deskew", "deskew_angle", type=float, default=None, metavar="ANGLE",
              help="INPUT is a stage-scanned light-sheet stack (Z, Y, X), its sheet tilted "
                   "by ANGLE degrees to the scan, and --psf is in the objective's frame: "
                   "restore in the raw frame with the PSF skewed into it, then deskew "
                   "(deconvkit.lightsheet.deconvolve_stage_scan).")
@click.option("--z-step", type=click.FloatRange(min=0, min_open=True), default=None,
              help="--deskew: the stage step, µm [default: INPUT's Z spacing].")
@click.option("--pixel-size", type=click.FloatRange(min=0, min_open=True), default=None,
              help="--deskew: the camera pixel in the sample, µm [default: INPUT's X "
                   "spacing].")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def deconvolve(inputs, psf_spec, measured_psf, psf_grid, output, out_dir, method, boundary,
               iterations, weight, noise_sigma, time_limit, extra, channel_axis, memory_limit,
               chunks, jobs, bit_depth, bad_pixels, saturated, background, encoding,
               multiview, deskew_angle, z_step, pixel_size, overwrite, quiet):
    """Restore INPUT(s) blurred by a known PSF, write the results and say what was chosen.

    zarr inputs or outputs, and --memory-limit, work chunk by chunk and can be
    resumed: run the same command again after an interruption.
    """
    if deskew_angle is None and (z_step is not None or pixel_size is not None):
        raise click.UsageError("--z-step and --pixel-size go with --deskew ANGLE")
    if deskew_angle is not None and (multiview or psf_grid):
        raise click.UsageError("--deskew takes one PSF for the stack: drop --multiview and "
                               "--psf-grid")
    if bit_depth and (multiview or deskew_angle is not None and (
            memory_limit or chunks or any(is_lazy_path(p) for p in (*inputs, output or "")))):
        raise click.UsageError("--bit-depth does not go with --multiview, nor with --deskew "
                               "out of core: their output stays float32")
    if encoding == "srgb" and (multiview or deskew_angle is not None or memory_limit or chunks):
        raise click.UsageError("--encoding srgb works on photos restored in memory, one at a "
                               "time: drop --multiview, --deskew, --memory-limit and --chunks")
    if multiview:
        _restore_views(inputs, psf_spec, output, method, boundary, iterations, noise_sigma,
                       time_limit, extra, background, overwrite, quiet)
        return
    pairs = _output_pairs(inputs, output, out_dir, overwrite)
    psfs = [_load_psf(spec) for spec in psf_spec]
    if psf_grid:
        psfs = _space_variant(psfs, psf_spec, measured_psf)
    elif measured_psf:
        psfs = [(_measured(kernel, meta, spec, measured_psf == "radial"), meta)
                for (kernel, meta), spec in zip(psfs, psf_spec)]
    else:
        for (kernel, _), spec in zip(psfs, psf_spec):
            _warn_if_raw_measurement(kernel, spec)
    options = _solver_options_given(extra, iterations=_number_or_auto(iterations, "--iterations"),
                                    weight=_number_or_auto(weight, "--weight"),
                                    noise_sigma=noise_sigma, time_limit=time_limit)
    jobs = jobs or min(4, os.cpu_count() or 1)
    job = dict(psfs=psfs, psf_spec=psf_spec[0], method=method, boundary=boundary,
               options=options,
               channel_axis=channel_axis, overwrite=overwrite,
               bit_depth=int(bit_depth) if bit_depth else None,
               saturated=_saturated_option(saturated),
               bad_pixels=dkio.read(bad_pixels) if bad_pixels else None,
               background=_background_spec(background), encoding=encoding,
               deskew=None if deskew_angle is None else dict(angle=deskew_angle,
                                                             z_step=z_step,
                                                             pixel_size=pixel_size))
    if len(pairs) == 1:
        source, target = pairs[0]
        if memory_limit or chunks or is_lazy_path(source) or is_lazy_path(target):
            _restore_out_of_core(source, target, job, memory_limit, chunks, jobs, quiet)
        else:
            info, seconds, shape, note = _restore_file(source, target, job, quiet)
            _report(source, target, info, seconds, shape, method, quiet, extra=note)
        return
    from concurrent.futures import ThreadPoolExecutor

    with _Progress(len(pairs), "files", quiet) as progress, \
            ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_restore_file, s, t, job, True) for s, t in pairs]
        failed = []
        for done, ((source, target), future) in enumerate(zip(pairs, futures), 1):
            progress(done)
            try:
                info, seconds, shape, note = future.result()
            except _USER_ERRORS as exc:  # one bad file does not stop (or hide) the others
                failed.append(str(source))
                click.echo(f"deconvkit: error: {' '.join(str(exc).split())}", err=True)
                continue
            _report(source, target, info, seconds, shape, method, quiet, extra=note)
    if failed:
        raise ValueError(f"{len(failed)} of {len(pairs)} files failed ({', '.join(failed)}); "
                         "the others were written")


def _restore_views(inputs, psf_spec, output, method, boundary, iterations, noise_sigma,
                   time_limit, extra, background, overwrite, quiet):
    """``--multiview``: the INPUTs restored together into ``output``."""
    from .restoration import richardson_lucy_multiview

    if not output or len(inputs) < 2:
        raise click.UsageError("--multiview needs two or more INPUTs (the views) and -o")
    if method not in ("auto", "richardson_lucy"):
        raise click.UsageError("--multiview restores by richardson_lucy (multiview); leave "
                               "--method out")
    if len(psf_spec) not in (1, len(inputs)):
        raise click.UsageError(f"give one --psf per view ({len(inputs)}) or one for all")
    if background == "snip":
        raise click.UsageError("--multiview takes a --background level or image, not snip "
                               "(write one with deconvkit background)")
    target = dkio.check_output_path(output, inputs, overwrite=overwrite)
    read = [dkio.read(path, with_metadata=True) for path in inputs]
    views = [view for view, _ in read]
    meta = read[0][1]
    specs = psf_spec if len(psf_spec) == len(inputs) else psf_spec * len(inputs)
    kernels, note = _psfs_for([_load_psf(spec) for spec in specs], meta, inputs[0])
    options = _solver_options_given(
        extra, iterations=_number_or_auto(iterations, "--iterations"), noise_sigma=noise_sigma,
        time_limit=time_limit, background=_background_read(_background_spec(background)))
    start = time.perf_counter()
    restored, info = richardson_lucy_multiview(
        views, kernels, boundary="valid" if boundary == "auto" else boundary,
        return_info=True, **options)
    dkio.write(target, restored, metadata=meta, overwrite=overwrite)
    if not quiet:
        _console().print(f"{len(views)} views {tuple(views[0].shape)}: "
                         f"richardson_lucy_multiview, {info.iterations} iterations, stopped by "
                         f"{info.stopped_by}{'; ' + note if note else ''}; "
                         f"{time.perf_counter() - start:.2f} s -> {target}")


def _output_pairs(inputs, output, out_dir, overwrite):
    """(input, output) paths, all checked before any work starts."""
    if len(inputs) > 1 and not out_dir:
        raise click.UsageError("several INPUTs need --out-dir (and no -o)")
    if output and out_dir:
        raise click.UsageError("give -o for one INPUT or --out-dir, not both")
    if not output and not out_dir:
        raise click.UsageError("Missing option '-o' / '--output' (or --out-dir)")
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        pairs = [(Path(i), Path(out_dir) / Path(i).name) for i in inputs]
    else:
        pairs = [(Path(inputs[0]), Path(output))]
    for source, target in pairs:
        if not source.exists():
            raise FileNotFoundError(f"{source}: no such file")
        if is_lazy_path(target):
            if source.resolve() == target.resolve():
                raise ValueError(f"output {target} is the input; choose another output path "
                                 "(inputs are never overwritten)")
            if target.exists() and not overwrite:
                raise FileExistsError(f"{target} exists; pass --overwrite to replace it")
        else:
            dkio.check_output_path(target, [source], overwrite=overwrite)
    return pairs


def _restore_file(source, target, job, quiet):
    """Read, restore in memory, write; returns (info, seconds, shape, note)."""
    import numpy as np

    from ._deconvolve import METHODS, choose_method
    from ._deconvolve import deconvolve as run
    from ._validate import LARGER_PSF_METHODS

    image, meta = dkio.read(source, with_metadata=True)
    _refuse_mosaic(source, meta)
    scan, kernels, note = _job_psfs(job, meta, source, image)
    kernel = kernels[0]
    if kernel.ndim > image.ndim and not Path(job["psf_spec"]).is_file():
        raise ValueError(f"the PSF spec {job['psf_spec']!r} makes a {kernel.ndim}-D PSF but "
                         f"{source} is {image.ndim}-D; give a {image.ndim}-D spec (e.g. "
                         f"gaussian:sigma=3,ndim={image.ndim})")
    bit_depth = _output_bit_depth(job["bit_depth"], image, target)
    channel_axis = job["channel_axis"]
    _refuse_psf_across_channels(source, image, meta, kernel)
    if channel_axis is None and image.ndim > kernel.ndim:  # TZCYX: C, not Z, is skipped
        channel_axis = _channel_axis_of(source, image, meta)
    channel_axis = check_channel_axis(channel_axis, image.ndim, kernel.ndim)
    image, channel_axis, alpha = _split_alpha(source, image, channel_axis)
    dkio.check_shape(target, _written_shape(image, alpha, target))  # before the work
    method = choose_method(image, kernels[0]) if job["method"] == "auto" else job["method"]
    boundary = METHODS[method][1] if job["boundary"] == "auto" else job["boundary"]
    # under "valid" these model the light from beyond a thin stack: not cropped
    kernels, cropped = _psfs_within(kernels, image.shape, channel_axis,
                                    keep=boundary == "valid" and method in LARGER_PSF_METHODS)
    note = "; ".join(filter(None, (note, cropped)))
    kernel = kernels[0]
    stored = image.dtype  # before NaN marking makes it float (--saturated auto reads it)
    if job["bad_pixels"] is not None:
        image = _mark_bad_pixels(image, job["bad_pixels"], channel_axis, source)
    missing = int(np.isnan(image).sum()) if np.issubdtype(image.dtype, np.floating) else 0
    if missing:  # NaN in the file, or marked by --bad-pixels
        note = "; ".join(filter(None, (note, f"{missing} missing (NaN) samples left out")))
    if len(kernels) > 1:  # one PSF per channel
        channels = None if channel_axis is None else image.shape[channel_axis]
        if channels != len(kernels):
            raise ValueError(f"{len(kernels)} PSFs were given (--psf) but {source} has "
                             f"{channels or 'no'} channels; give one --psf per channel, or one "
                             "for all")
        kernel = kernels
    options = _solver_options(method, job["options"])
    note = "; ".join(filter(None, (note, _saturation(image, job["saturated"], method, source,
                                                      stored, options),
                                   _background(image, job["background"], method, kernels[0],
                                               channel_axis, options))))
    light = None if scan else _srgb_scale(job["encoding"], source, stored)
    if light:  # a photo: restored in linear light, its levels too
        if options.get("noise_sigma") is not None:
            raise ValueError("--noise-sigma is in the file's units, which are sRGB-encoded "
                             "here: leave it out (estimated in linear light), or pass "
                             "--encoding linear to restore the values as stored")
        image = _to_light(image, light)
        for name in ("saturation", "background"):
            if name in options:
                options[name] = _to_light(options[name], light)
        note = "; ".join(filter(None, (note, "sRGB values restored in linear light")))
    note = "; ".join(filter(None, (note, _compressed_noise(image, source, method, options,
                                                           channel_axis))))
    accepts_callback = "callback" in inspect.signature(METHODS[method][0]).parameters
    # one run per channel and time point: the axes other than the PSF's
    others = [n for i, n in enumerate(image.shape) if i != channel_axis][:-kernels[0].ndim]
    runs = math.prod(others) * (1 if channel_axis is None else image.shape[channel_axis])
    total = options["iterations"] * runs if isinstance(options.get("iterations"), int) \
        else None  # "auto": a counter without a bar's end
    start = time.perf_counter()
    with _Progress(total, method.replace("_", " "), quiet or not accepts_callback) as progress:
        done = [0]

        def tick(iteration, estimate):
            done[0] += 1
            return progress(done[0])

        if accepts_callback:
            options["callback"] = tick
        restored, info = run(image, kernel, method=method, boundary=job["boundary"],
                             channel_axis=channel_axis, return_info=True, **options)
    if scan:
        restored, meta = scan["deskew"](restored, channel_axis), scan["frame"]
    if light:
        restored = _from_light(restored, light)
    seconds = time.perf_counter() - start
    dkio.write(target, _with_alpha(restored, alpha, target), metadata=meta,
               overwrite=job["overwrite"],
               bit_depth=bit_depth)
    return info, seconds, tuple(image.shape), note


def _refuse_mosaic(source, meta) -> None:
    """A camera's raw mosaic holds one colour a pixel: restoring it as an image
    would mix the colours."""
    if meta.cfa:
        raise ValueError(f"{source} is a raw {meta.cfa} mosaic; demosaic and restore it with "
                         "deconvkit super-resolve FILE... --psf PSF --scale 1")


def _compressed_noise(image, source, method, options, channel_axis) -> str:
    """A JPEG's noise level, given to the method (``noise_sigma``) unless the user
    gave it: its codec quantised away the noise's finest part, which the
    default estimate measures (:func:`restoration.estimate_noise` with
    ``compressed=True``; each channel's, the largest taken)."""
    import numpy as np

    from ._deconvolve import METHODS
    from .restoration import estimate_noise

    if Path(source).suffix.lower() not in JPEG_SUFFIXES or options.get("noise_sigma") \
            is not None or "noise_sigma" not in inspect.signature(METHODS[method][0]).parameters:
        return ""
    channels = [image] if channel_axis is None else list(np.moveaxis(image, channel_axis, 0))
    options["noise_sigma"] = max(estimate_noise(c, compressed=True) for c in channels)
    return f"noise of a JPEG {options['noise_sigma']:.3g} (its codec removed the finest part)"


def _psfs_within(kernels, shape, channel_axis, *, keep: bool = False):
    """PSFs longer than the image on an axis cropped to it (an odd length, about
    their centre), and a note of the light they keep: a generator's default
    size, or a PSF resampled to a coarser grid, can outgrow a thin stack, which
    the library refuses for the methods and boundaries that cannot model the
    light from beyond the image and out of core (its tiles must hold the PSF).
    ``keep``: the method models that light; the PSFs are kept whole, and the
    note says so."""
    import numpy as np

    from .operators import SpaceVariantConvolution

    if isinstance(kernels[0], SpaceVariantConvolution):
        return kernels, ""
    spatial = [n for axis, n in enumerate(shape)
               if channel_axis is None or axis != channel_axis % len(shape)]
    fitted, notes = [], []
    for kernel in kernels:
        room = spatial[-kernel.ndim:] if kernel.ndim <= len(spatial) else kernel.shape
        window = central_window(kernel.shape, room)
        target = tuple(w.stop - w.start for w in window)
        if target == kernel.shape or keep:
            fitted.append(kernel)
            if target != kernel.shape:
                notes.append(f"PSF {'x'.join(map(str, kernel.shape))} longer than the image: "
                             "its light from beyond the image modelled (the object estimated "
                             "there too)")
            continue
        kept = float(np.sum(kernel[window]) / np.sum(kernel))
        fitted.append(psf_module.crop_or_pad(kernel, target))
        notes.append(f"PSF cropped from {'x'.join(map(str, kernel.shape))} to "
                     f"{'x'.join(map(str, target))} to fit the image (it keeps "
                     f"{100 * kept:.0f} % of its light)")
    return fitted, "; ".join(dict.fromkeys(notes))


def _job_psfs(job, meta, source, image):
    """The stage scan of ``--deskew`` (or None), the PSFs on the image's sampling
    (under --deskew: on the deskewed grid, then skewed into the raw frame), and
    one note for all."""
    scan = _stage_scan(job["deskew"], meta, source, image) if job["deskew"] else None
    kernels, note = _psfs_for(job["psfs"], scan["frame"] if scan else meta, source)
    if scan:
        kernels = [scan["skew"](k) for k in kernels]
        note = "; ".join(filter(None, (note, scan["note"])))
    return scan, kernels, note


def _stage_scan(options, meta, source, image):
    """``--deskew``: the PSF's target sampling (the deskewed frame), how to skew
    it into the raw frame, how to deskew the result, and the metadata after."""
    import numpy as np

    from .lightsheet import deskew, deskewed_spacing, raw_frame_psf

    if image.ndim < 3:
        raise ValueError(f"--deskew takes a (Z, Y, X) stack; {source} has shape {image.shape}")
    spacing = _spacing_in_micrometres(meta)
    z_step = options["z_step"] or (spacing[-3] if spacing else None)
    pixel_size = options["pixel_size"] or (spacing[-1] if spacing else None)
    if z_step is None or pixel_size is None:
        raise ValueError(f"{source} states no voxel size: pass --z-step and --pixel-size (µm)")
    angle = options["angle"]
    geometry = dict(z_step=z_step, pixel_size=pixel_size)
    frame = (deskewed_spacing(angle, **geometry), pixel_size, pixel_size)

    def deskewed(restored, channel_axis):
        if channel_axis is None:
            return deskew(restored, angle, **geometry)
        moved = np.moveaxis(np.asarray(restored), channel_axis, 0)  # (C, Z, Y, X)
        return np.moveaxis(deskew(moved, angle, **geometry), 0, channel_axis)

    return dict(
        frame=dataclasses.replace(meta, spacing=frame, unit="um"),
        skew=lambda kernel: raw_frame_psf(kernel, angle, width=image.shape[-1], **geometry),
        deskew=deskewed,
        note=f"restored in the raw frame, deskewed ({angle}°, z step {z_step:.4g} µm, "
             f"pixel {pixel_size:.4g} µm)")


def _psfs_for(psfs, meta, source):
    """Each (PSF, its metadata) on the image's sampling, and one note for all."""
    from .operators import SpaceVariantConvolution

    if isinstance(psfs[0][0], SpaceVariantConvolution):
        field = psfs[0][0]
        return [field], (f"space-variant: a {'x'.join(map(str, field.grid))} grid of "
                         f"{'x'.join(map(str, field.kernel_shape))} PSFs")
    kernels, notes = zip(*(_psf_on_grid_of(k, m, meta, source) for k, m in psfs))
    return list(kernels), "; ".join(dict.fromkeys(filter(None, notes)))


def _space_variant(psfs, psf_spec, measured_psf):
    """``--psf-grid``: the one --psf file as a SpaceVariantConvolution."""
    from .operators import SpaceVariantConvolution

    if len(psfs) > 1 or measured_psf:
        raise click.UsageError("--psf-grid takes one --psf file (a grid of PSFs), without "
                               "--measured-psf")
    if not Path(psf_spec[0]).is_file():
        raise click.UsageError(f"--psf-grid needs a file holding a grid of PSFs, not the "
                               f"spec {psf_spec[0]!r}")
    grid, meta = psfs[0]
    if grid.ndim not in (2, 4, 6):
        raise ValueError(f"{psf_spec[0]}: --psf-grid reads a (G1, ..., Gd, K1, ..., Kd) grid "
                         f"of d-D PSFs, d = 1 to 3, but it has {grid.ndim} dims")
    return [(SpaceVariantConvolution(grid), meta)]


def _channel_letter(meta) -> str | None:
    """The channel axis a file names: a TIFF's ``C`` (an ImageJ hyperstack's) or
    ``S`` (an RGB TIFF's samples), else None."""
    return next((letter for letter in "CS" if letter in (meta.axes or "")), None)


def _refuse_psf_across_channels(source, image, meta, kernel) -> None:
    """A file that names a channel axis (an RGB TIFF's S, a hyperstack's C) has
    one dim fewer of space than of array: a PSF with as many would blur across
    the channels."""
    letter = _channel_letter(meta)
    if letter and kernel.ndim >= image.ndim:
        raise ValueError(f"{source} has axes {meta.axes} ({letter}: channels), so its space "
                         f"is {image.ndim - 1}-D, but the PSF is {kernel.ndim}-D: give a "
                         f"{image.ndim - 1}-D PSF (it would blur across the channels)")


def _channel_axis_of(source, image, meta):
    """The channel axis a file names (:func:`_channel_letter`; a WAV's channels),
    else the last axis of colour (and alpha) pixels, else None."""
    letter = _channel_letter(meta)
    if letter:
        return meta.axes.index(letter)
    if Path(source).suffix.lower() == ".wav":  # samples x channels
        return -1
    if image.shape[-1] in (3, 4) or _has_alpha(source, image, -1):
        return -1
    return None


def _output_bit_depth(requested, image, target):
    """``--bit-depth`` (PNG, TIFF), else for a PNG or WAV output the input's own:
    a 16-bit PNG stays 16-bit (8 bits would clip), an integer WAV keeps its
    sample format; a TIFF stays float unless asked."""
    if requested:
        return int(requested)
    if Path(target).suffix.lower() not in (".png", ".wav"):
        return None
    return {"uint8": 8, "uint16": 16, "int16": 16, "int32": 32}.get(str(image.dtype))


def _srgb_scale(encoding, source, dtype) -> float | None:
    """The full scale of INPUT's sRGB-encoded values of ``dtype`` (255 for 8 bits,
    65535 for 16, 1 for floats), or None when its values are used as stored
    (``--encoding``)."""
    if encoding == "linear" or (encoding == "auto"
                                and Path(source).suffix.lower() not in PHOTO_SUFFIXES):
        return None
    import numpy as np

    return float(np.iinfo(dtype).max) if np.dtype(dtype).kind in "ui" else 1.0


def _to_light(values, scale):
    """A file's sRGB values (or a level of them) as linear light in [0, 1]."""
    import numpy as np

    values = np.asarray(values)
    return dkio.srgb_to_linear(values.astype(working_dtype(values.dtype)) / scale)


def _from_light(values, scale):
    """Linear light back to the file's sRGB values."""
    return dkio.linear_to_srgb(values) * scale


def _has_alpha(source, image, channel_axis) -> bool:
    """A PNG's grey+alpha or RGBA pixels: 2 or 4 samples on the (last) channel axis."""
    return (Path(source).suffix.lower() == ".png" and channel_axis is not None
            and channel_axis % image.ndim == image.ndim - 1 and image.shape[-1] in (2, 4))


def _split_alpha(source, image, channel_axis):
    """The channels to restore and the alpha (opacity) channel, which is kept as it
    is: blurring is a property of the light, not of the transparency mask."""
    if not _has_alpha(source, image, channel_axis):
        return image, channel_axis, None
    colour, alpha = image[..., :-1], image[..., -1:]
    if colour.shape[-1] == 1:  # grey + alpha
        return colour[..., 0], None, alpha
    return colour, channel_axis, alpha


def _written_shape(image, alpha, target) -> tuple:
    """The shape :func:`_with_alpha` gives the restored ``image``."""
    if alpha is None or Path(target).suffix.lower() in JPEG_SUFFIXES:
        return tuple(image.shape)
    return (*image.shape[:alpha.ndim - 1], (image.shape[-1] if image.ndim == alpha.ndim
                                            else 1) + 1)


def _with_alpha(restored, alpha, target):
    """The restored colours with the input's alpha channel back, but for a JPEG
    (no alpha: its four channels would be read as CMYK)."""
    if alpha is None:
        return restored
    if Path(target).suffix.lower() in JPEG_SUFFIXES:
        warnings.warn(f"{target}: JPEG has no alpha channel, so the input's was left out "
                      "(write a .png to keep it)", UserWarning, stacklevel=2)
        return restored
    import numpy as np

    restored = np.asarray(restored)
    if restored.ndim < alpha.ndim:
        restored = restored[..., None]
    return np.concatenate([restored, alpha.astype(restored.dtype)], axis=-1)


def _mark_bad_pixels(image, bad, channel_axis, source):
    """A float copy of ``image`` (numpy, or dask: lazily) with NaN (missing data)
    where ``bad`` is nonzero; ``bad`` has the image's shape, or that without the
    channel axis, or that of its trailing planes (repeated over the leading axes)."""
    import numpy as np

    bad = np.asarray(bad) != 0
    if bad.all():
        raise ValueError("--bad-pixels marks every sample as bad (nonzero); the map is 0 "
                         "where the pixels are good and nonzero where they are not")
    if bad.shape != image.shape:
        if channel_axis is not None and bad.shape == tuple(
                n for i, n in enumerate(image.shape) if i != channel_axis % image.ndim):
            bad = np.expand_dims(bad, channel_axis)
        elif bad.ndim > image.ndim or bad.shape != image.shape[image.ndim - bad.ndim:]:
            raise ValueError(f"--bad-pixels has shape {bad.shape} but {source} is "
                             f"{image.shape}; give a map of the image's shape, or of one "
                             "plane or channel of it")
    bad = np.broadcast_to(bad, image.shape)  # a view: no copy per plane
    marked = image.astype(working_dtype(image.dtype))  # a copy: the input stays as read
    if is_dask(marked):
        import dask.array as da

        return da.where(da.from_array(bad, chunks=marked.chunks), np.nan, marked)
    marked[bad] = np.nan
    return marked


def _saturation(image, level, method, source, stored, options) -> str:
    """Put the ``--saturated`` level into the solver's ``options`` (``"auto"``: the
    maximum of the integer type the file ``stored``), and return a note that
    counts the samples at it (not for dask arrays); "" without the option."""
    from ._validate import SATURATION_METHODS

    if level is None and _integer_photo(source, stored) and method in SATURATION_METHODS \
            and not is_dask(image):
        top = _full_scale(source, stored)  # a photo's clipped highlights, by default
        clipped = int((image >= top).sum())
        if clipped:
            options["saturation"] = top
            return (f"{clipped} saturated samples (>= {top}) taken as lower bounds "
                    "(--saturated none fits them)")
    if level is None or level == "none":
        return ""

    if method not in SATURATION_METHODS:
        raise ValueError(f"--saturated needs a method whose data term can treat saturated "
                         f"samples as lower bounds ({', '.join(SATURATION_METHODS)}), not "
                         f"{method}")
    if level == "auto":
        level = _full_scale(source, stored)
    options["saturation"] = level
    if is_dask(image):
        return f"samples >= {level:g} taken as saturated"
    return f"{int((image >= level).sum())} saturated samples (>= {level:g})"


def _background_spec(text):
    """``--background``: a level (float), ``"snip"``, or a file's path (read when
    used: whole in memory, lazily out of core)."""
    if text is None or text == "snip":
        return text
    try:
        return float(text)
    except ValueError:
        pass
    path = Path(text)
    if not (path.is_file() or path.suffix.lower() == ".zarr" and path.is_dir()):
        raise click.BadParameter(f"{text!r} is neither a number, snip, nor a file",
                                 param_hint="--background")
    return path


def _background_read(background, lazy: bool = False):
    """A ``--background`` file's samples (a dask array when ``lazy``); else as given."""
    if not isinstance(background, Path):
        return background
    return _open_stack(background)[0] if lazy else dkio.read(background)


def _background(image, background, method, kernel, channel_axis, options) -> str:
    """Put ``--background`` into the solver's ``options``; a note for the report."""
    if background is None:
        return ""
    takes = ("total_variation", "richardson_lucy", "richardson_lucy_tv", "gold", "wavelet")
    if method not in takes:
        raise ValueError(f"--background needs a method that models one ({', '.join(takes)}), "
                         f"not {method}")
    if isinstance(background, float):
        options["background"] = background
        return f"background {background:g} modelled"
    background = _background_read(background, lazy=is_dask(image))
    if isinstance(background, str):  # snip
        if image.ndim != 1:
            raise ValueError(f"--background snip is for 1-D spectra; this input is "
                             f"{image.ndim}-D: give a level or a background image")
        import numpy as np

        from .spectra import continuum_under

        options["background"], width = continuum_under(np.nan_to_num(image), kernel)
        return f"continuum by SNIP (half-window {width})"
    shapes = [tuple(image.shape)]
    if channel_axis is not None:  # one map for every channel, or one per channel
        shapes.append(tuple(n for i, n in enumerate(image.shape)
                            if i != channel_axis % image.ndim))
    if tuple(background.shape) not in shapes:
        raise ValueError(f"--background image has shape {tuple(background.shape)}, the input "
                         f"{tuple(image.shape)}; give one of shape "
                         f"{' or '.join(map(str, shapes))}")
    options["background"] = background
    if len(shapes) > 1 and tuple(background.shape) == shapes[1]:
        return "background image modelled under every channel"
    return "background image modelled"


def _solver_options(method, options):
    """The CLI's generic names mapped onto the method's own (wiener calls its weight balance)."""
    options = dict(options)
    if method == "wiener" and "weight" in options:
        options["balance"] = options.pop("weight")
    return options


def _restore_out_of_core(source, target, job, memory_limit, chunks, jobs, quiet):
    from ._deconvolve import choose_method

    image, meta = _open_stack(source)
    scan, kernels, note = _job_psfs(job, meta, source, image)
    kernels, cropped = _psfs_within(kernels, image.shape, None)  # tiles hold the PSF
    note = "; ".join(filter(None, (note, cropped)))
    kernel = kernels[0]
    if job["channel_axis"] is not None or len(kernels) > 1 or (
            image.ndim > kernel.ndim and _channel_letter(meta)):
        raise ValueError(f"{source}: out-of-core restoration takes one channel at a time; "
                         "write each channel to its own file, or drop --memory-limit and "
                         "restore in memory")
    stored = image.dtype  # before NaN marking makes it float (--saturated auto reads it)
    if job["bad_pixels"] is not None:
        image = _mark_bad_pixels(image, job["bad_pixels"], None, source)
        note = "; ".join(filter(None, (note, "bad pixels left out as NaN")))
    method = choose_method(image, kernel) if job["method"] == "auto" else job["method"]
    if chunks:
        try:
            shape = tuple(int(c) for c in chunks.lower().split("x"))
        except ValueError:
            shape = ()
        if len(shape) != image.ndim or min(shape) < 1:
            raise ValueError(f"--chunks {chunks} must be {image.ndim} sizes >= 1 joined by x "
                             f"(e.g. {'x'.join(['64'] * image.ndim)}), one per axis of the input")
    options = _solver_options(method, job["options"])
    if not chunks:
        limit = parse_size(memory_limit) if memory_limit else 2 * 2**30
        kernel_shape = kernel.kernel_shape if hasattr(kernel, "kernel_shape") else kernel.shape
        shape = choose_chunks(image.shape, kernel_shape,
                              method, limit, jobs,
                              itemsize=working_dtype(image.dtype).itemsize, options=options)
    options["boundary"] = job["boundary"]
    if job["background"] == "snip":
        raise ValueError("--background snip works in memory (a spectrum): drop "
                         "--memory-limit and --chunks, or give a level or a file")
    note = "; ".join(filter(None, (note, _saturation(image, job["saturated"], method, source,
                                                      stored, options),
                                   _background(image, job["background"], method, kernel, None,
                                               options))))
    start = time.perf_counter()
    # with --deskew the raw-frame restoration goes to a resumable zarr beside the
    # output first, then is deskewed into the output block by block
    restored = target.with_name(target.name + ".raw-frame.zarr") if scan else target
    with _Progress(None, "chunks", quiet) as progress:
        info = run_chunked(image, kernel, restored, method=method, options=options,
                           chunks=shape, overwrite=job["overwrite"] or bool(scan), workers=jobs,
                           metadata=meta, progress=lambda done, total: progress.set(done, total),
                           bit_depth=job["bit_depth"])
    if scan:
        write_lazy(scan["deskew"](open_lazy(restored), None), target, metadata=scan["frame"],
                   overwrite=job["overwrite"])
        shutil.rmtree(restored)
    _report(source, target, info, time.perf_counter() - start, tuple(image.shape),
            job["method"], quiet, extra="; ".join(filter(None, (note, f"chunks {shape}"))))


def _open_stack(source):
    """A dask array over a zarr store or TIFF (memory-mapped), or a file read
    whole, with its metadata."""
    suffix = Path(source).suffix.lower()
    if suffix in (".zarr", ".tif", ".tiff"):
        meta = zarr_metadata(source) if suffix == ".zarr" else dkio.tiff_metadata(source)
        return open_lazy(source), meta
    array, meta = dkio.read(source, with_metadata=True)
    return _as_dask(array), meta


def _as_dask(array):
    import dask.array as da

    return da.from_array(array)


def _report(source, target, info, seconds, shape, requested, quiet, extra=""):
    if quiet:
        return
    first = info
    while isinstance(first, list):  # per channel, then per time point
        first = first[0]
    chosen = ", ".join(f"{k}={_show(v)}" for k, v in first.parameters.items())
    how = f"{first.iterations} iterations, stopped by {first.stopped_by}" \
        if first.stopped_by != "closed form" else first.stopped_by
    picked = " (chosen by auto)" if requested == "auto" else ""
    extra = f"; {extra}" if extra else ""
    _console().print(f"{source}: {first.method}{picked}: {chosen}; {how}; {shape} in "
                     f"{seconds:.2f} s{extra} -> {target}")


def _show(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@cli.command("psf")
@click.argument("spec")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option("--measured", type=click.Choice(["radial", "plain"]), default=None,
              help="SPEC is a file imaging a point source (a bead's stack, a star): write the "
                   "PSF made from it (deconvkit.psf.from_measurement), with its voxel size.")
@click.option("--grid", default=None, metavar="G1xG2...",
              help="SPEC is an image of many point sources (beads on a slide, a star field): "
                   "write the grid of PSFs across it, one per tile centre, for "
                   "deconvolve --psf-grid (deconvkit.psf.grid_from_sources).")
@click.option("--size", default=None, metavar="K1xK2...",
              help="With --grid: the PSFs' shape, e.g. 17 or 17x17.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def psf_command(spec, output, measured, grid, size, overwrite):
    """Write the PSF described by SPEC (e.g. widefield:shape=33x65x65,na=1.4), or made
    from a measured one (--measured), or a grid of them from a field of sources (--grid)."""
    if Path(output).suffix.lower() in (".png", ".jpg", ".jpeg"):
        # a unit-sum PSF rounds to 0 in 8 or 16 integer bits
        raise ValueError(f"{output}: a PSF needs floating point; write a .tif or .npy")
    if grid or size:
        if not (grid and size) or measured:
            raise click.UsageError("--grid and --size go together (and without --measured)")
        if not Path(spec).is_file():
            raise click.UsageError(f"--grid reads an image of point sources, not the spec "
                                   f"{spec!r}")
        field, _ = _load_psf(spec)
        kernel = psf_module.grid_from_sources(field, _psf_size(grid, "--grid"),
                                              _psf_size(size, "--size"))
        dkio.write(output, kernel.astype("float32"), overwrite=overwrite)
        _console().print(f"{spec} -> {output}: a {'x'.join(map(str, kernel.shape[:field.ndim]))} "
                         f"grid of {'x'.join(map(str, kernel.shape[field.ndim:]))} PSFs")
        return
    if measured:
        kernel, meta = _load_psf(spec)
        kernel = _measured(kernel, meta, spec, measured == "radial")
        meta = dkio.Metadata(spacing=meta.spacing, unit=meta.unit)
    else:
        kernel, spacing = psf_module.from_spec(spec), psf_module.spec_spacing(spec)
        meta = dkio.Metadata(spacing=spacing, unit="um" if spacing else None)
    dkio.write(output, kernel.astype("float32"), metadata=meta, overwrite=overwrite)
    _console().print(f"{spec} -> {output} shape {kernel.shape}")


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--psf", "psf_spec", required=True, help="PSF file or generator spec.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option("--noise", type=click.Choice(["gaussian", "poisson", "mixed", "none"]),
              default="gaussian", show_default=True)
@click.option("--sigma", type=float, default=0.01, show_default=True,
              help="Gaussian noise std, as a fraction of the full scale (of an integer "
                   "type's maximum; float data as stored; of linear light for a photo).")
@click.option("--photons", type=float, default=300.0, show_default=True,
              help="Photons at the peak for Poisson noise.")
@click.option("--boundary", type=click.Choice(BOUNDARY_CHOICES[1:]), default="symmetric",
              show_default=True)
@click.option("--seed", type=int, default=None)
@click.option("--psf-grid", is_flag=True,
              help="The --psf file holds a grid of PSFs across the field (as for deconvolve).")
@click.option("--encoding", type=click.Choice(["auto", "srgb", "linear"]), default="auto",
              show_default=True, help=_ENCODING_HELP.replace("the work", "the blur and noise"))
@click.option("--overwrite", is_flag=True)
def simulate(input_path, psf_spec, output, noise, sigma, photons, boundary, seed, psf_grid,
             encoding, overwrite):
    """Blur INPUT with a PSF and add noise, as a camera would: in linear light, at the
    input's full scale (a TIFF or npy output is float32)."""
    import numpy as np

    from .simulation import simulate as run

    _refuse_unused({"none": ("sigma", "photons"), "gaussian": ("photons",),
                    "poisson": ("sigma",)}.get(noise, ()), f"--noise {noise}")

    output = dkio.check_output_path(output, [input_path], overwrite=overwrite)
    image, meta = dkio.read(input_path, with_metadata=True)
    dkio.check_shape(output, image.shape)
    psfs = [_load_psf(psf_spec)]
    if psf_grid:
        kernel = _space_variant(psfs, [psf_spec], None)[0][0]
    else:
        kernel, _ = _psf_on_grid_of(*psfs[0], meta, input_path)
    if not psf_grid:
        _refuse_psf_across_channels(input_path, image, meta, kernel)
    channel = _channel_axis_of(input_path, image, meta) if image.ndim > kernel.ndim else None
    if channel is not None:  # colour last, or a hyperstack's C: blurred plane by plane
        if psf_grid:
            raise click.UsageError("--psf-grid blurs grey images and stacks, not colour")
        image, kernel = np.moveaxis(image, channel, -1), kernel[..., None]
    light = _srgb_scale(encoding, input_path, image.dtype)
    # integers at their full scale (sigma 0.01 was 0.01 of a grey level of 255),
    # a photo's values as the light they encode
    scale = light or (float(np.iinfo(image.dtype).max) if image.dtype.kind in "ui" else 1.0)
    result = run(_to_light(image, scale) if light else image / scale, kernel, noise=noise,
                 sigma=sigma, photons=photons, boundary=boundary, seed=seed)
    result = _from_light(result, scale) if light else result * scale
    if channel is not None:
        result = np.moveaxis(result, -1, channel)
    dkio.write(output, result.astype("float32") if output.suffix.lower() in (".tif", ".tiff",
               ".npy") else result, metadata=meta, overwrite=overwrite,
               bit_depth=_output_bit_depth(None, image, output))
    said = {"none": "no noise", "gaussian": f"Gaussian noise {sigma:g}",
            "poisson": f"Poisson noise, {photons:g} photons at the peak",
            "mixed": f"Poisson ({photons:g} photons) and Gaussian ({sigma:g}) noise"}[noise]
    _console().print(f"{input_path}: {image.shape} blurred by {psf_spec}, {said} -> {output}")


def _psf_size(text: str, option: str = "--psf-size"):
    """``25`` or ``9x25x25`` -> an int or a tuple of ints."""
    try:
        sizes = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a size; write 25 or 9x25x25",
                                 param_hint=option) from None
    return sizes[0] if len(sizes) == 1 else sizes


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--psf-size", required=True,
              help="Support of the PSF to estimate: 25 (every axis) or 9x25x25.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option("--psf-out", type=click.Path(dir_okay=False), default=None,
              help="Also write the estimated PSF (TIFF, npy, ...).")
@click.option("--method", type=click.Choice(["map", "richardson_lucy", "parametric"]),
              default="map", show_default=True)
@click.option("--psf-model", default=None,
              help="richardson_lucy: symmetric|gaussian|widefield; parametric: "
                   "gaussian|widefield.")
@click.option("--prior", type=click.Choice(["l0", "tv"]), default="l0", show_default=True,
              help="Gradient prior of the map method.")
@click.option("--iterations", type=click.IntRange(min=1), default=None,
              help="Alternations per scale (map) or in all (richardson_lucy, parametric).")
@click.option("--weight", type=float, default=None, help="Initial weight of the prior.")
@click.option("--restore", default="auto", show_default=True,
              type=click.Choice(["auto", *METHOD_NAMES]),
              help="Non-blind method for the final restoration.")
@click.option("--channel-axis", type=int, default=None,
              help="Axis of colour channels (default: last axis of an RGB image).")
@click.option("--bit-depth", type=click.Choice(["8", "16"]), default=None,
              help="Integer depth (unsigned) for a PNG or TIFF output, rounded, clipped "
                   "with a warning (default: a PNG takes the input's depth, a TIFF stays "
                   "float).")
@click.option("--encoding", type=click.Choice(["auto", "srgb", "linear"]), default="auto",
              show_default=True, help=_ENCODING_HELP)
@click.option("--saturated", default=None, metavar="LEVEL|auto|none",
              help="As for deconvolve, in the final restoration (a photo's samples at 255 "
                   "are lower bounds by default).")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def blind(input_path, psf_size, output, psf_out, method, psf_model, prior, iterations, weight,
          restore, channel_axis, bit_depth, encoding, saturated, overwrite, quiet):
    """Estimate the PSF of INPUT and restore it (blind deconvolution)."""
    from ._deconvolve import choose_method
    from .blind import blind_deconvolve

    output = dkio.check_output_path(output, [input_path], overwrite=overwrite)
    if psf_out is not None:
        psf_out = dkio.check_output_path(psf_out, [input_path, output], overwrite=overwrite)
    image, meta = dkio.read(input_path, with_metadata=True)
    _refuse_mosaic(input_path, meta)
    bit_depth = _output_bit_depth(bit_depth, image, output)
    size = _psf_size(psf_size)
    spatial = image.ndim
    if channel_axis is None and image.ndim == 3 and (isinstance(size, int) or len(size) == 2):
        channel_axis = _channel_axis_of(input_path, image, meta)
        spatial = 3 if channel_axis is None else 2
    image, channel_axis, alpha = _split_alpha(input_path, image, channel_axis)
    dkio.check_shape(output, _written_shape(image, alpha, output))
    light = _srgb_scale(encoding, input_path, image.dtype)
    options = {}  # the final restoration's
    final = choose_method(image, None) if restore == "auto" else restore
    clipped = _saturation(image, _saturated_option(saturated), final, input_path, image.dtype,
                          options)
    if light and "saturation" in options:
        options["saturation"] = _to_light(options["saturation"], light)
    if light:
        image = _to_light(image, light)
    jpeg = _compressed_noise(image, input_path, final, options, channel_axis)
    start = time.perf_counter()
    with _Progress(None, f"blind {method}", quiet) as progress:
        restored, kernel, info = blind_deconvolve(
            image, size, method=method,
            channel_axis=channel_axis, psf_model=psf_model,
            iterations=iterations, weight=weight, prior=prior, restore=restore,
            callback=lambda step, steps, k: progress.set(step, steps), return_info=True,
            **options)
    if light:
        restored = _from_light(restored, light)
    dkio.write(output, _with_alpha(restored, alpha, output), metadata=meta, overwrite=overwrite,
               bit_depth=bit_depth)
    if psf_out is not None:
        dkio.write(psf_out, kernel.astype("float32"), overwrite=overwrite)
    if not quiet:
        chosen = ", ".join(f"{k}={_show(v)}" for k, v in info.parameters.items())
        notes = "".join(f"; {n}" for n in (clipped, "sRGB values restored in linear light"
                                           if light else "", jpeg) if n)
        _console().print(f"{input_path}: blind {method} ({chosen}); PSF {kernel.shape} "
                         f"({spatial}-D){notes}; "
                         f"{time.perf_counter() - start:.2f} s -> {output}"
                         + (f", PSF -> {psf_out}" if psf_out else ""))


@cli.command("signal")
@click.argument("input_path", metavar="TRACE", type=click.Path(dir_okay=False))
@click.option("--response", "response_path", required=True, type=click.Path(dir_okay=False),
              help="The instrument's impulse response (.csv, .npy, .wav), with its gain, or "
                   "its poles and zeros in rad/s (.toml, .json: zeros, poles, gain).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option("--method", type=click.Choice(["regularized", "water_level"]),
              default="regularized", show_default=True)
@click.option("--weight", default="auto", show_default=True,
              help="regularized: the weight, or auto (discrepancy principle, per trace).")
@click.option("--penalty", type=click.Choice(["auto", "gradient", "identity"]), default="auto",
              show_default=True, help="regularized: smooth (gradient) or spiky (identity) input; "
                                      "auto: gradient unless the response blocks DC.")
@click.option("--noise-sigma", type=float, default=None,
              help="regularized: the noise level (default: estimated from each trace).")
@click.option("--level", type=float, default=0.01, show_default=True,
              help="water_level: the floor, a fraction of the response's peak gain.")
@click.option("--lowpass", type=float, default=None,
              help="water_level: width (rad/s) of the Gaussian low-pass after the division.")
@click.option("--sample-rate", type=float, default=None,
              help="Samples per second of TRACE, for --lowpass and a poles-zeros response "
                   "(default: a WAV's own or a CSV's time column; else 1 for --lowpass).")
@click.option("--origin", type=click.Choice(["start", "center"]), default="start",
              show_default=True, help="Time zero of the response: its first or middle sample.")
@click.option("--detrend", type=click.Choice(["auto", "linear", "constant", "none"]),
              default="auto", show_default=True,
              help="Remove the trace's line or mean first; auto: linear where the response "
                   "blocks DC (a velocity or displacement sensor).")
@click.option("--taper", default="auto", show_default=True,
              help="Fraction of the trace tapered to 0 at each end; auto: 0.05 where the "
                   "response blocks DC, else 0.")
@click.option("--overwrite", is_flag=True)
@click.option("-q", "--quiet", is_flag=True)
def signal_command(input_path, response_path, output, method, weight, penalty, noise_sigma,
                   level, lowpass, sample_rate, origin, detrend, taper, overwrite, quiet):
    """Remove an instrument's response from TRACE (see deconvkit.signal); a WAV's
    channels, or the rows of a 2-D .npy (traces x samples), are deconvolved one by one,
    each with its own noise level."""
    from . import signal

    _refuse_unused(("level", "lowpass") if method == "regularized"
                   else ("weight", "penalty", "noise_sigma"), f"--method {method}")

    output = dkio.check_output_path(output, [input_path, response_path], overwrite=overwrite)
    trace, meta = dkio.read(input_path, with_metadata=True)
    dkio.check_shape(output, trace.shape)
    sample_rate = sample_rate or meta.sample_rate
    if Path(response_path).suffix.lower() in (".toml", ".json"):
        response = _read_poles_zeros(response_path)
        if sample_rate is None:
            raise click.UsageError(f"a poles-zeros response is evaluated at {input_path}'s "
                                   "frequencies: pass --sample-rate (a WAV, or a CSV with a "
                                   "time column, carries its own)")
    else:
        response = dkio.read(response_path)
        response = _as_trace(response)
    if method == "regularized":
        options = dict(weight=_number_or_auto(weight, "--weight"), penalty=penalty,
                       noise_sigma=noise_sigma, sample_rate=sample_rate)
    else:
        options = dict(level=level, lowpass=lowpass, sample_rate=sample_rate or 1.0)
    # a WAV holds samples x channels; deconvkit.signal (and .npy/.tif) traces (..., N)
    wav = Path(input_path).suffix.lower() == ".wav"
    traces = trace.T if wav else trace
    start = time.perf_counter()
    result = signal.deconvolve(traces, response, method=method, origin=origin,
                               detrend=None if detrend == "none" else detrend,
                               taper=_number_or_auto(taper, "--taper"), **options)
    dkio.write(output, result.T if wav else result, metadata=meta, overwrite=overwrite,
               bit_depth=_output_bit_depth(None, trace, output))
    if not quiet:
        count = traces.size // traces.shape[-1]
        _console().print(f"{input_path}: {method} ({count} trace{'s' * (count > 1)} of "
                         f"{traces.shape[-1]} samples); {time.perf_counter() - start:.2f} s "
                         f"-> {output}")


@cli.command("super-resolve")
@click.argument("inputs", metavar="FRAME...", nargs=-1, required=True,
                type=click.Path(dir_okay=False))
@click.option("--psf", "psf_spec", required=True, multiple=True,
              help="The optics' PSF sampled on the fine grid (a pitch SCALE times finer "
                   "than the frames'), without the pixel: a file or a spec; once, or once "
                   "per frame (each exposure's seeing or focus).")
@click.option("--scale", type=click.IntRange(min=1), required=True,
              help="How many times finer the output grid is, on every axis.")
@click.option("--shifts", default="auto", show_default=True,
              help="Each frame's offset from the first in frame pixels: auto (registered "
                   "as --motion says), or a .csv/.txt/.npy file of one row per frame: d "
                   "offsets, or an affine map's d x (d+1) values row by row (frame pixel i "
                   "sees the first frame's point A i + b).")
@click.option("--motion", type=click.Choice(["translation", "rigid"]), default="translation",
              show_default=True,
              help="What --shifts auto registers: shifts (dithered exposures), or 2-D turns "
                   "and shifts (a hand-held burst, a field that turns).")
@click.option("--iterations", default=None, help="A number, or auto (the stopping rule).")
@click.option("--tv-weight", default="auto", show_default=True,
              help="The total-variation factor's weight: auto (from the noise level), a "
                   "number, or none for plain Richardson-Lucy.")
@click.option("--noise-sigma", type=float, default=None,
              help="Noise standard deviation of the frames (default: estimated).")
@click.option("--background", type=float, default=None, metavar="LEVEL",
              help="A known level under every frame (a sky, a camera's offset), modelled "
                   "(RL takes a constant under the data as object otherwise).")
@click.option("--reject", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SIGMAS",
              help="Leave out samples a cosmic ray, a hot or dead pixel or a satellite "
                   "trail changed in one frame: those SIGMAS local noise levels off the fit "
                   "(5 is usual), then restore again. Default: fit every sample.")
@click.option("--saturated", default=None, metavar="LEVEL|auto|none",
              help="Samples at or above LEVEL are clipped and left out (auto: the integer "
                   "type's maximum). Default: a photo's 255 (or 65535), a raw file's white "
                   "level; none fits every sample.")
@click.option("--bayer", type=click.Choice(["RGGB", "BGGR", "GRBG", "GBRG"]), default=None,
              help="The frames are raw mosaics behind this Bayer pattern (a 2x2 tile row by "
                   "row; e.g. from dcraw -D -4 -T, black level as --background): colour is "
                   "restored from them, linear camera RGB out. Camera raw files (.dng, "
                   ".cr2, .nef...) give their own pattern and black levels.")
@click.option("--encoding", type=click.Choice(["auto", "srgb", "linear"]), default="auto",
              show_default=True, help=_ENCODING_HELP)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("-q", "--quiet", is_flag=True, help="No summary.")
def super_resolve_command(inputs, psf_spec, scale, shifts, motion, iterations, tv_weight,
                          noise_sigma, background, reject, saturated, bayer, encoding, output,
                          overwrite, quiet):
    """Restore FRAME(s), undersampled and shifted by fractions of a pixel (dithered
    exposures, a burst), onto a grid SCALE times finer (deconvkit.super_resolve).
    A FRAME file with one axis more than the PSF (a TIFF or FITS cube) holds
    frames stacked on its first axis."""
    import numpy as np

    from .restoration import super_resolve

    target = dkio.check_output_path(output, inputs, overwrite=overwrite)
    read = [dkio.read(path, with_metadata=True) for path in inputs]
    if shifts != "auto":
        path = Path(shifts)
        if not path.is_file():
            raise click.BadParameter(f"{shifts!r} is neither auto nor a file",
                                     param_hint="--shifts")
        shifts = np.load(path) if path.suffix.lower() == ".npy" else np.loadtxt(
            path, delimiter="," if path.suffix.lower() == ".csv" else None, ndmin=2)
    kernels = [_load_psf(spec)[0] for spec in psf_spec]
    frames, channel, meta = _burst_frames(inputs, read, kernels[0].ndim)
    bayer = bayer or meta.cfa  # a camera raw file's pattern
    if background is None and meta.black_level and bayer:
        background = _black_level_map(meta.black_level, frames[0].shape)
    if len(kernels) not in (1, len(frames)):
        raise click.BadParameter(f"{len(kernels)} PSFs for {len(frames)} frames; give one, "
                                 "or one per frame", param_hint="--psf")
    kernel = kernels[0] if len(kernels) == 1 else kernels
    colour = None if channel is None else channel % frames[0].ndim
    if bayer and channel is not None:
        raise click.BadParameter("raw mosaics have one sample a pixel; these frames have "
                                 "colour channels", param_hint="--bayer")
    dkio.check_shape(target, tuple(n if axis == colour else n * scale
                                   for axis, n in enumerate(frames[0].shape))
                     + ((3,) if bayer else ()))
    clip = _clip_level(_saturated_option(saturated), inputs[0], frames[0].dtype, meta)
    clipped = 0 if clip is None else sum(int((np.asarray(f) >= clip).sum()) for f in frames)
    light = _srgb_scale(encoding, inputs[0], frames[0].dtype)
    if light:
        if noise_sigma is not None:
            raise ValueError("--noise-sigma is in the file's units, which are sRGB-encoded "
                             "here: leave it out, or pass --encoding linear")
        frames = [_to_light(frame, light) for frame in frames]
        background = None if background is None else float(_to_light(background, light))
        clip = None if clip is None else float(_to_light(clip, light))
    start = time.perf_counter()
    with _Progress(None, "super-resolve", quiet) as progress:
        done = [0]

        def tick(iteration, estimate):  # over colours and rejection rounds
            done[0] += 1
            return progress(done[0])

        restored, info = super_resolve(
            frames, kernel, scale, shifts=shifts, motion=motion, noise_sigma=noise_sigma,
            reject=reject, channel_axis=channel, bayer=bayer, saturation=clip,
            background=0.0 if background is None else background,
            iterations=_number_or_auto(iterations, "--iterations") or "auto",
            tv_weight=None if tv_weight == "none" else _number_or_auto(
                tv_weight, "--tv-weight", words=("auto", "none")),
            callback=tick, return_info=True)
    if light:
        restored = _from_light(restored, light)
    infos = info if isinstance(info, list) else [info]
    # the channels share their shifts; a raw burst's green is the plain fit
    info = infos[1] if bayer else infos[0]
    if meta.spacing:  # the spatial axes' sampling
        meta = dataclasses.replace(meta, spacing=tuple(s / scale for s in meta.spacing))
    dkio.write(target, restored, metadata=meta, overwrite=overwrite,
               bit_depth=_output_bit_depth(None, read[0][0], target))
    if not quiet:
        weight = info.parameters["tv_weight"]
        _console().print(f"{len(frames)} frame(s) {frames[0].shape} -> {restored.shape} "
                         f"(x{scale}); {_motion_summary(info.parameters, frames[0].shape)}; "
                         f"{_rejected_summary(infos)}"
                         f"{f'{clipped} clipped sample(s) left out; ' if clipped else ''}"
                         f"{_guide_summary(infos) if bayer else ''}TV weight "
                         f"{'none' if weight is None else f'{weight:.3g}'}; {info.iterations} "
                         "iterations, "
                         f"stopped by {info.stopped_by}; {time.perf_counter() - start:.2f} s "
                         f"-> {target}")


def _burst_frames(inputs, read, ndim):
    """The frames in the files: each file one frame of ``ndim`` spatial axes, or a
    stack of frames on its first axis (a burst, an astronomical cube, a time
    series); with the channel axis (a colour photo's, a hyperstack's C) of a
    frame, and the first file's metadata for one frame."""
    frames, channels, first = [], set(), None
    for path, (image, meta) in zip(inputs, read):
        channel = _channel_axis_of(path, image, meta) if image.ndim > ndim else None
        channel = None if channel is None else channel % image.ndim
        spatial = image.ndim - (channel is not None)
        if spatial == ndim:
            found = [image]
        elif spatial == ndim + 1 and channel != 0:
            found = list(image)  # frames on the first axis
            channel = None if channel is None else channel - 1
            meta = dataclasses.replace(
                meta, axes=meta.axes[1:] if meta.axes else meta.axes,
                spacing=meta.spacing[1:] if meta.spacing and len(meta.spacing) == spatial
                else meta.spacing)
        else:
            raise ValueError(f"{path}: {spatial} spatial axes for a {ndim}-D PSF; give frames "
                             f"of {ndim} axes (and colour), or a stack of them on the first "
                             "axis")
        frames += found
        channels.add(channel)
        first = first or meta
    if len(channels) > 1:
        raise ValueError("the frames differ in their colour axis; give frames of one kind")
    return frames, channels.pop(), first


def _clip_level(option, source, dtype, meta):
    """super-resolve's clipping level in the file's units: ``--saturated`` as
    given (``"auto"``: the integer type's maximum, or a raw file's white level),
    else by default a raw file's white level or a photo's full scale."""

    if option == "none":
        return None
    if option is None and meta.white_level is None and not _integer_photo(source, dtype):
        return None
    if option in (None, "auto"):
        return meta.white_level if meta.white_level is not None else float(
            _full_scale(source, dtype))
    return float(option)


def _integer_photo(source, dtype) -> bool:
    """A PNG or JPEG of integers, whose highlights clip at the type's maximum."""
    import numpy as np

    return Path(source).suffix.lower() in PHOTO_SUFFIXES and np.issubdtype(dtype, np.integer)


def _full_scale(source, dtype) -> int:
    """``--saturated auto``: the maximum of the integer type ``source`` stored."""
    import numpy as np

    if not np.issubdtype(dtype, np.integer):
        raise ValueError(f"--saturated auto needs integer samples, but {source} holds "
                         f"{dtype}; give the level, e.g. --saturated 0.98")
    return int(np.iinfo(dtype).max)


def _black_level_map(levels, shape):
    """A raw file's black level at each site of its 2 x 2 tile, over a frame."""
    import numpy as np

    tile = np.asarray(levels, dtype=np.float64).reshape(2, 2)
    return np.tile(tile, (shape[0] // 2 + 1, shape[1] // 2 + 1))[:shape[0], :shape[1]]


def _guide_summary(infos) -> str:
    """How a raw burst's red and blue followed green (their floors ``c``)."""
    floors = [infos[k].parameters.get("guide_floor") for k in (0, 2)]
    said = ["on its own" if c is None else f"green-guided (c {c:g})" for c in floors]
    return f"red {said[0]}, blue {said[1]}; green's "


def _rejected_summary(infos) -> str:
    """The samples ``--reject`` left out of each frame (over the channels)."""
    if "rejected" not in infos[0].parameters:
        return ""
    counts = [sum(n) for n in zip(*(i.parameters["rejected"] for i in infos))]
    return f"rejected {', '.join(map(str, counts))} sample(s) a frame; "


def _motion_summary(parameters, shape) -> str:
    """The frames' shifts, or for affine maps each one's turn (2-D: signed; 3-D:
    its angle) and the shift of the frame's centre, as the summary prints them."""
    import numpy as np

    if "shifts" in parameters:
        moved = "; ".join(", ".join(f"{v:+.2f}" for v in row)
                          for row in parameters["shifts"][1:])
        return f"shifts {moved or 'none'}"
    maps = np.asarray(parameters["maps"])[1:]
    d = maps.shape[1]
    centre = (np.asarray(shape[-d:], dtype=np.float64) - 1) / 2
    rows = []
    for m in maps:
        shift = ", ".join(f"{v:+.2f}" for v in m[:, :d] @ centre + m[:, d] - centre)
        if d == 2:
            turn = f"{np.degrees(np.arctan2(m[1, 0], m[0, 0])):+.2f} deg, "
        else:  # a 3-D turn's angle about its axis
            cosine = np.clip((np.trace(m[:, :d]) - 1) / 2, -1.0, 1.0)
            turn = f"{np.degrees(np.arccos(cosine)):.2f} deg turn, " if d == 3 else ""
        rows.append(turn + shift)
    return "turns and shifts (of the centre) " + "; ".join(rows)


@cli.command("background")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option("--width", type=click.IntRange(min=1), required=True,
              help="SNIP's widest half-window, in samples: a little larger than the peaks "
                   "or objects on the background.")
@click.option("--smooth", type=click.IntRange(min=0), default=0, show_default=True,
              help="Half-width of the moving average the clipping compares through (lifts "
                   "the estimate off the noise's lower envelope).")
@click.option("--overwrite", is_flag=True)
@click.option("-q", "--quiet", is_flag=True)
def background_command(input_path, output, width, smooth, overwrite, quiet):
    """The background of INPUT (a spectrum's continuum, an image's uneven
    illumination) by SNIP clipping along every space axis (a colour image's or
    hyperstack's channels and time points one by one); pass it to deconvolve's
    --background."""
    from .spectra import snip_background

    output = dkio.check_output_path(output, [input_path], overwrite=overwrite)
    data, meta = dkio.read(input_path, with_metadata=True)
    dkio.check_shape(output, data.shape)
    start = time.perf_counter()
    # along the space axes only: not across a hyperstack's channels or time
    # points, nor a photo's colours
    if meta.axes and len(meta.axes) == data.ndim:
        axes = tuple(i for i, letter in enumerate(meta.axes) if letter in "ZYX") or None
    else:
        colour = _channel_axis_of(input_path, data, meta) if data.ndim > 2 else None
        axes = None if colour is None else tuple(
            i for i in range(data.ndim) if i != colour % data.ndim)
    estimate = snip_background(data, width, smooth=smooth, axis=axes)
    dkio.write(output, estimate.astype(working_dtype(data.dtype)), metadata=meta,
               overwrite=overwrite)
    if not quiet:
        _console().print(f"{input_path}: SNIP background (half-window {width}, smooth "
                         f"{smooth}) in {time.perf_counter() - start:.2f} s -> {output}")


@cli.command("deskew")
@click.argument("input_path", metavar="INPUT", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(),
              help="The deskewed stack; a .zarr (or .ome.zarr) is written block by block.")
@click.option("--angle", type=float, default=31.5, show_default=True,
              help="The sheet's tilt to the scan direction, degrees (negative: the stage "
                   "scans the other way).")
@click.option("--z-step", type=click.FloatRange(min=0, min_open=True), default=None,
              help="The stage's step between planes, µm [default: the input's Z spacing].")
@click.option("--pixel-size", type=click.FloatRange(min=0, min_open=True), default=None,
              help="The camera pixel in the sample, µm [default: the input's X spacing].")
@click.option("--fill", default="0", show_default=True, metavar="VALUE|nan",
              help="Where no plane reaches: nan marks it missing, which deconvolve's "
                   "iterative methods leave out.")
@click.option("--nearest", is_flag=True,
              help="The nearest sample instead of linear interpolation (keeps counts "
                   "Poisson, for richardson_lucy after deskewing).")
@click.option("--skew-psf", is_flag=True,
              help="INPUT is a PSF in the objective's frame: write it skewed into the raw "
                   "frame instead, to deconvolve the raw stack with.")
@click.option("--overwrite", is_flag=True)
@click.option("-q", "--quiet", is_flag=True)
def deskew_command(input_path, output, angle, z_step, pixel_size, fill, nearest, skew_psf,
                   overwrite, quiet):
    """Deskew a stage-scanned light-sheet stack INPUT (..., Z, Y, X) into the
    detection objective's frame (deconvkit.lightsheet); the output's Z spacing
    is z_step * sin(angle)."""
    import numpy as np

    from .lightsheet import deskew, deskewed_spacing
    from .lightsheet import skew_psf as skew

    # zarr in or out: block by block, larger than memory (a deskewed stack is wider)
    lazy = not skew_psf and (is_lazy_path(input_path) or is_lazy_path(output))
    if lazy:
        (source, output), = _output_pairs([input_path], output, None, overwrite)
        data, meta = _open_stack(source)
    else:
        output = dkio.check_output_path(output, [input_path], overwrite=overwrite)
        data, meta = dkio.read(input_path, with_metadata=True)
    if data.ndim < 3:
        raise click.UsageError(f"{input_path} has shape {data.shape}; deskew takes a (Z, Y, X) "
                               "stack (or more leading axes)")
    spacing = _spacing_in_micrometres(meta)
    if skew_psf and z_step is None:
        raise click.UsageError("--skew-psf needs --z-step: the PSF's own Z spacing is that "
                               "of the deskewed frame, not the stage step")
    if z_step is None and spacing is None or pixel_size is None and spacing is None:
        raise click.UsageError(f"{input_path} states no voxel size: pass --z-step and "
                               "--pixel-size (µm)")
    z_step = z_step if z_step is not None else float(spacing[-3])
    pixel_size = pixel_size if pixel_size is not None else float(spacing[-1])
    try:
        fill_value = float(fill)
    except ValueError:
        raise click.BadParameter(f"{fill!r} is neither a number nor nan",
                                 param_hint="--fill") from None
    start = time.perf_counter()
    resampled = ""
    try:
        if skew_psf:
            if spacing is not None:  # a PSF sampled otherwise: onto the deskewed grid first
                frame = (deskewed_spacing(angle, z_step, pixel_size), pixel_size, pixel_size)
                data, resampled = _psf_on_grid_of(
                    data, dkio.Metadata(spacing=spacing[-3:], unit="um"),
                    dkio.Metadata(spacing=frame, unit="um"), input_path)
            result = skew(data, angle, z_step=z_step, pixel_size=pixel_size)
        else:
            # a hyperstack's C axis between Z and Y (TZCYX) goes first for the deskew
            channel = _channel_axis_of(input_path, data, meta) if meta.axes else None
            ahead = channel is not None and channel > (meta.axes or "").find("Z") >= 0
            planes = np.moveaxis(data, channel, 0) if ahead else data
            result = deskew(planes, angle, z_step=z_step, pixel_size=pixel_size,
                            fill=fill_value, order=0 if nearest else 1)
            result = np.moveaxis(result, 0, channel) if ahead else result
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    if not lazy:
        dkio.check_shape(output, result.shape)
    # the voxel size out: deskewed, planes closer (along the detection axis);
    # skewed, the raw frame's, a stage step apart
    z_spacing = z_step if skew_psf else deskewed_spacing(angle, z_step, pixel_size)
    meta = dataclasses.replace(meta, spacing=(*(spacing or ())[:-3], z_spacing, pixel_size,
                                              pixel_size), unit="um")
    if lazy:
        write_lazy(result, output, metadata=meta, overwrite=overwrite)
    else:
        dkio.write(output, result, metadata=meta, overwrite=overwrite)
    if not quiet:
        what = "skewed into the raw frame" if skew_psf else "deskewed"
        _console().print(f"{input_path}: {data.shape} {what} ({angle}°, z step {z_step} µm, "
                         f"pixel {pixel_size} µm{'; ' + resampled if resampled else ''}) -> "
                         f"{result.shape} in "
                         f"{time.perf_counter() - start:.2f} s -> {output}")


@cli.command("lines")
@click.argument("input_path", metavar="SPECTRUM", type=click.Path(dir_okay=False))
@click.option("--response", "response_spec", required=True,
              help="The response to one line (a .npy/.csv file, centred), or a spec such as "
                   "gaussian:sigma=4,ndim=1.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="CSV of the lines found: position (channel), area (counts).")
@click.option("--restored", type=click.Path(dir_okay=False), default=None,
              help="Also write the deconvolved spectrum here.")
@click.option("--method", type=click.Choice(["gold", "richardson_lucy"]), default="gold",
              show_default=True)
@click.option("--background", default="snip", show_default=True, metavar="snip|LEVEL|FILE|none",
              help="The continuum: SNIP clipping over 2 FWHM, a level, a spectrum of the "
                   "input's length, or none.")
@click.option("--iterations", default="auto", show_default=True,
              help="Iterations (per repetition), or auto (the discrepancy principle).")
@click.option("--repetitions", type=click.IntRange(min=1), default=1, show_default=True,
              help="gold: repetitions, boosted in between (Morhac; e.g. 10).")
@click.option("--boost", type=float, default=1.0, show_default=True,
              help="gold: the power between repetitions (e.g. 1.2).")
@click.option("--significance", type=float, default=5.0, show_default=True,
              help="Keep lines holding this many times the noise of the counts under them.")
@click.option("--overwrite", is_flag=True)
@click.option("-q", "--quiet", is_flag=True)
def lines_command(input_path, response_spec, output, restored, method, background, iterations,
                  repetitions, boost, significance, overwrite, quiet):
    """Find the lines of SPECTRUM (deconvkit.spectra.find_lines): their positions and
    areas, closer than the response's width apart."""
    import numpy as np

    from .spectra import find_lines

    inputs = [input_path] + ([response_spec] if Path(response_spec).is_file() else [])
    output = dkio.check_output_path(output, inputs, overwrite=overwrite)
    if restored:
        restored = dkio.check_output_path(restored, inputs, overwrite=overwrite)
    spectrum = _as_trace(np.asarray(dkio.read(input_path), dtype=np.float64))
    response = _as_trace(np.asarray(_load_psf(response_spec)[0], dtype=np.float64))
    if background.lower() == "none":
        background = None
    elif background != "snip":
        background = _background_read(_background_spec(background))
    options = dict(iterations=_number_or_auto(iterations, "--iterations"))
    if method == "gold":
        options.update(repetitions=repetitions, boost=boost)
    elif repetitions != 1 or boost != 1.0:
        raise click.UsageError("--repetitions and --boost are gold's")
    start = time.perf_counter()
    found = find_lines(spectrum, response, background=background, method=method,
                       significance=significance, **options)
    table = np.column_stack([found.positions, found.areas])
    dkio._atomic(Path(output), lambda tmp: np.savetxt(
        tmp, table, delimiter=",", header="position,area", comments="", fmt="%.6g"))
    if restored:
        dkio.write(restored, found.restored, overwrite=overwrite)
    if not quiet:
        _console().print(f"{input_path}: {len(found.positions)} lines ({method}); "
                         f"{time.perf_counter() - start:.2f} s -> {output}")


def _as_trace(array):
    """A one-row or one-column table (a CSV column, an (N, 1) .npy) as a 1-D trace."""
    return array.ravel() if array.ndim == 2 and 1 in array.shape else array


def _read_poles_zeros(path):
    """A :class:`deconvkit.signal.PolesZeros` from a TOML or JSON file: ``zeros``
    and ``poles`` in rad/s (numbers, ``"a+bj"`` strings or ``[re, im]`` pairs) and
    ``gain``."""
    import json
    import tomllib

    from .signal import PolesZeros

    try:
        with open(path, "rb") as f:
            spec = tomllib.load(f) if str(path).lower().endswith(".toml") else json.load(f)
    except (OSError, ValueError) as exc:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise click.UsageError(f"{path}: cannot read a poles-zeros response ({exc})") from None
    unknown = sorted(set(spec) - {"zeros", "poles", "gain"})
    if unknown or "poles" not in spec:
        raise click.UsageError(f"{path}: a poles-zeros response has keys zeros, poles and gain "
                               f"(rad/s){'; unknown ' + str(unknown) if unknown else ''}")

    def as_complex(value, key):
        try:
            if isinstance(value, str):
                return complex(value.replace(" ", "").replace("i", "j"))
            if isinstance(value, list) and len(value) == 2:
                return complex(float(value[0]), float(value[1]))
            return complex(value)
        except (TypeError, ValueError):
            raise click.UsageError(f"{path}: {key} holds {value!r}; write a complex number as "
                                   "\"-4.44+4.44j\" or [-4.44, 4.44]") from None

    try:
        return PolesZeros(zeros=[as_complex(v, "zeros") for v in spec.get("zeros", [])],
                          poles=[as_complex(v, "poles") for v in spec["poles"]],
                          gain=float(spec.get("gain", 1.0)))
    except (TypeError, ValueError) as exc:
        raise click.UsageError(f"{path}: {exc}") from None


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="demo-output",
              show_default=True, help="Folder for restored files and the figure.")
@click.option("--overwrite", is_flag=True, help="Replace files from an earlier demo run.")
@click.option("-q", "--quiet", is_flag=True)
def demo(out_dir, overwrite, quiet):
    """Simulate, restore and compare on bundled 1-D, 2-D and 3-D data."""
    from ._demo import run_demo

    run_demo(Path(out_dir), overwrite=overwrite, quiet=quiet)


@cli.command("train")
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder: checkpoint.pt, metrics.csv, model.pt, config.toml.")
@click.option("--fresh", is_flag=True, help="Start over even if the folder has a checkpoint.")
@click.option("--device", default=None,
              help="Override the config's train.device: auto, cpu, cuda, cuda:N, mps.")
@click.option("-q", "--quiet", is_flag=True)
def train_command(config_path, out_dir, fresh, device, quiet):
    """Train a super-resolution network from a TOML/YAML CONFIG (resumes by default)."""
    from .nn.training import load_config, resolve_device, train

    config = load_config(config_path)
    if device is not None:
        config["train"]["device"] = device
        load_config(config)  # the same check as a config file's value
    if not quiet:
        _console().print(f"training on {resolve_device(config['train']['device'])}")
    with _Progress(config["train"]["steps"], "train", quiet) as progress:
        target = train(config, out_dir, resume=not fresh,
                       progress=lambda step, total, loss: progress(step))
    if not quiet:
        _console().print(f"trained -> {target} (metrics in {Path(out_dir) / 'metrics.csv'})")


@cli.command("evaluate")
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.option("--adapt", type=click.IntRange(min=0), default=0, show_default=True,
              help="Steps of test-time adaptation on each downscaled photo first (0: none).")
def evaluate_command(model_path, adapt):
    """PSNR of a trained MODEL against bicubic on scikit-image's photos (luminance)."""
    from .nn.training import evaluate

    rows = evaluate(model_path, adapt=adapt)
    console = _console()
    for row in rows:
        console.print(f"{row['image']:10s} model {row['psnr']:6.2f} dB  bicubic "
                      f"{row['bicubic']:6.2f} dB  gain {row['psnr'] - row['bicubic']:+.2f} dB")
    gain = sum(r["psnr"] - r["bicubic"] for r in rows) / len(rows)
    console.print(f"mean gain over bicubic: {gain:+.2f} dB")


@cli.command("upscale")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--scale", type=click.FloatRange(min=1, min_open=True), default=2,
              show_default=True,
              help="2 and 3 run a shipped model; other factors (1.5, 4, ...) chain them and "
                   "resize to the exact size.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="A model.pt from deconvkit train, or an .onnx file from deconvkit nn "
                   "export, instead of the shipped one.")
@click.option("--tile", type=int, default=256, show_default=True,
              help="Low-resolution tile side (memory bound for large images).")
@click.option("--device", default="cpu", show_default=True,
              help="Where the network runs: cpu, cuda, cuda:N, mps or auto (a GPU if any).")
@click.option("--adapt", type=click.IntRange(min=0), default=0, show_default=True,
              help="Steps of test-time adaptation: fine-tune a copy of the model on the "
                   "image's own downscaled crops first (500: about 30 s on 2 CPU cores).")
@click.option("--overwrite", is_flag=True)
@click.option("-q", "--quiet", is_flag=True)
def upscale_command(input_path, scale, output, model_path, tile, device, adapt, overwrite,
                    quiet):
    """Super-resolve INPUT by --scale with a learned model (grey or colour, 8/16-bit, float;
    a 3-D TIFF stack plane by plane)."""
    from .nn.upscale import model_passes, shipped_scales, upscale

    output = dkio.check_output_path(output, [input_path], overwrite=overwrite)
    image, meta = dkio.read(input_path, with_metadata=True)
    dkio.check_shape(output, image.shape)  # the same channels, each side scaled
    start = time.perf_counter()
    channel_axis = _channel_axis_of(input_path, image, meta)
    colour, channel_axis, alpha = _split_alpha(input_path, image, channel_axis)
    # a stack (a TIFF's Z, T or a C before YX): each YX plane upscaled in its own right
    stack = colour.ndim > 2 and (channel_axis is None or
                                 channel_axis % colour.ndim < colour.ndim - 1)
    source = colour.reshape(-1, *colour.shape[-2:]) if stack else colour
    models = 1 if model_path else len(set(model_passes(scale, shipped_scales())))
    with _Progress(adapt * models or None, "adapt", quiet or not adapt) as progress:
        result = upscale(source, scale, model=model_path, tile=tile,
                         channel_axis=0 if stack else channel_axis, device=device, adapt=adapt,
                         progress=progress)
    if stack:
        result = result.reshape(*colour.shape[:-2], *result.shape[-2:])
    (height, width), (new_height, new_width) = colour.shape[-2:], result.shape[-2:]
    if channel_axis is not None and not stack:  # (H, W, C): the sides come first
        (height, width), (new_height, new_width) = colour.shape[:2], result.shape[:2]
    if alpha is not None:  # opacity is a mask, not an image: linear interpolation
        from skimage.transform import resize

        alpha = resize(alpha.astype(float), (new_height, new_width, 1), order=1,
                       preserve_range=True, anti_aliasing=False)
        result = _with_alpha(result, alpha.round(), output)
    if meta.spacing is not None:  # the samples are closer in y and x
        *other, y, x = meta.spacing
        meta = dataclasses.replace(meta, spacing=(*other, y * height / new_height,
                                                  x * width / new_width))
    meta = dataclasses.replace(meta, header=None)  # a FITS WCS no longer fits the new grid
    dkio.write(output, result, metadata=meta, overwrite=overwrite)
    if not quiet:
        _console().print(f"{input_path}: {image.shape} {image.dtype} -> {result.shape} in "
                         f"{time.perf_counter() - start:.2f} s -> {output}")


@cli.group("nn")
def nn_group():
    """Neural-network upsampling tools (needs torch)."""


@nn_group.command("inspect")
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
def nn_inspect(model_path):
    """List MODEL's upsampling layers (a file, or x2 / x3 for the shipped models) with
    their checkerboard index (0 = checkerboard-free)."""
    from .nn._cli import load_model, upsampling_layers

    rows = upsampling_layers(load_model(model_path))
    if not rows:
        _console().print(f"{model_path}: no upsampling layer")
    for name, layer, index in rows:
        _console().print(f"{name}: {type(layer).__name__}  checkerboard index {index:.3g}")


@nn_group.command("checkerboard-demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="nn-demo",
              show_default=True)
def nn_checkerboard_demo(out_dir):
    """Draw one DCGAN generator at initialisation with each upsampler."""
    from .nn._cli import checkerboard_demo

    target, summary = checkerboard_demo(out_dir)
    for mode, index in summary.items():
        _console().print(f"{mode}: worst checkerboard index {index:.3g}")
    _console().print(f"wrote {target}")


@nn_group.command("export")
@click.argument("model_path", metavar="MODEL")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The .onnx file to write.")
@click.option("--check/--no-check", default=True, show_default=True,
              help="Run the file with onnxruntime at two batch and image sizes and compare "
                   "with torch before writing it.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
def nn_export(model_path, output, check, overwrite):
    """Write MODEL (a file, or x2 / x3 for the shipped super-resolution models) as ONNX
    with dynamic batch and image sizes (needs the onnx extra)."""
    from .nn._cli import load_model
    from .nn.export import export_onnx

    try:
        difference = export_onnx(load_model(model_path), output, check=check,
                                 overwrite=overwrite)
    except ImportError as exc:  # the onnx extra is missing: say how to install it
        raise click.ClickException(str(exc)) from None
    checked = f"; onnxruntime agrees with torch to {difference:.2g}" if check else ""
    _console().print(f"wrote {output}{checked}")


_USER_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, IsADirectoryError,
                PermissionError)


def main(argv=None) -> int:
    """Entry point: run the CLI and turn user errors into one line and status 2."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status = _run(argv)
    for warning in caught:
        click.echo(f"deconvkit: warning: {' '.join(str(warning.message).split())}", err=True)
    return status


def _run(argv) -> int:
    try:
        cli.main(args=argv, prog_name="deconvkit", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("deconvkit: interrupted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"deconvkit: error: {exc.format_message()}", err=True)
        return 2
    except _USER_ERRORS as exc:
        if os.environ.get("DECONVKIT_DEBUG"):
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        click.echo(f"deconvkit: error: {message}", err=True)
        return 2
    except KeyboardInterrupt:
        click.echo("deconvkit: interrupted", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
