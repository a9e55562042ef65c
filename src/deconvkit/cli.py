"""The ``deconvkit`` command: argument parsing over the public functions, nothing more.

User errors (bad arguments, unreadable files, invalid data) print one line
``deconvkit: error: ...`` and exit with status 2, never a traceback.
"""

from __future__ import annotations

import inspect
import os
import sys
import time
import warnings
from pathlib import Path

import click

from . import io as dkio
from . import psf as psf_module

BOUNDARY_CHOICES = ["auto", "periodic", "zero", "reflect", "symmetric", "edge", "valid"]
# kept here (not imported from restoration) so that --help stays fast
METHOD_NAMES = ["total_variation", "richardson_lucy", "richardson_lucy_tv", "wavelet", "wiener",
                "tikhonov", "cgls", "unsupervised_wiener", "landweber", "van_cittert",
                "inverse_filter"]


def _load_psf(spec: str):
    """A PSF from a file path (if it exists) or a generator spec."""
    if Path(spec).is_file():
        return dkio.read(spec)
    if ":" not in spec and Path(spec).suffix.lower() in dkio.FORMATS:
        raise FileNotFoundError(f"psf file {spec} does not exist")
    return psf_module.from_spec(spec)


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


def _number_or_auto(value):
    """Click converter: a float, an int, or the word auto."""
    if value is None or value == "auto":
        return value
    try:
        number = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number or 'auto'") from None
    return int(number) if number.is_integer() and "." not in value and "e" not in value \
        else number


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
                options[key] = _number_or_auto(value)
            except click.BadParameter:
                options[key] = value
    return options


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--psf", "psf_spec", required=True,
              help="PSF file, or a generator spec such as gaussian:sigma=2 or "
                   "motion:length=15,angle=30 (see deconvkit.psf.from_spec).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output file; the format follows the extension.")
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
              help="Axis of colour channels (default: last axis of a colour PNG/JPEG).")
@click.option("--bit-depth", type=click.Choice(["8", "16"]), default=None,
              help="Integer depth for PNG output of float results.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def deconvolve(input_path, psf_spec, output, method, boundary, iterations, weight, noise_sigma,
               time_limit, extra, channel_axis, bit_depth, overwrite, quiet):
    """Restore INPUT blurred by a known PSF, write the result and say what was chosen."""
    from ._deconvolve import METHODS, choose_method
    from ._deconvolve import deconvolve as run

    output = dkio.check_output_path(output, [input_path], overwrite=overwrite)
    image, meta = dkio.read(input_path, with_metadata=True)
    kernel = _load_psf(psf_spec)
    if channel_axis is None and image.ndim == kernel.ndim + 1 and image.shape[-1] in (3, 4):
        channel_axis = -1
    resolved = choose_method(image, kernel) if method == "auto" else method
    options = _parse_options(extra)
    for key, value in (("iterations", _number_or_auto(iterations)),
                       ("balance" if resolved == "wiener" else "weight", _number_or_auto(weight)),
                       ("noise_sigma", noise_sigma), ("time_limit", time_limit)):
        if value is not None:
            options[key] = value
    accepts_callback = "callback" in inspect.signature(METHODS[resolved][0]).parameters
    channels = 1 if channel_axis is None else image.shape[channel_axis]
    total = options["iterations"] * channels if isinstance(options.get("iterations"), int) \
        else None  # "auto": a counter without a bar's end
    start = time.perf_counter()
    with _Progress(total, resolved.replace("_", " "), quiet or not accepts_callback) as progress:
        done = [0]

        def tick(iteration, estimate):
            done[0] += 1
            return progress(done[0])

        if accepts_callback:
            options["callback"] = tick
        restored, info = run(image, kernel, method=resolved, boundary=boundary,
                             channel_axis=channel_axis, return_info=True, **options)
    seconds = time.perf_counter() - start
    dkio.write(output, restored, metadata=meta, overwrite=overwrite,
               bit_depth=int(bit_depth) if bit_depth else None)
    if not quiet:
        first = info[0] if isinstance(info, list) else info
        chosen = ", ".join(f"{k}={_show(v)}" for k, v in first.parameters.items())
        how = f"{first.iterations} iterations, stopped by {first.stopped_by}" \
            if first.iterations else first.stopped_by
        picked = " (chosen by auto)" if method == "auto" else ""
        _console().print(f"{resolved}{picked}: {chosen}; {how}; {tuple(image.shape)} in "
                         f"{seconds:.2f} s -> {output}")


def _show(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@cli.command("psf")
@click.argument("spec")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def psf_command(spec, output, overwrite):
    """Write the PSF described by SPEC (e.g. widefield:shape=33x65x65,na=1.4)."""
    kernel = psf_module.from_spec(spec)
    dkio.write(output, kernel.astype("float32"), overwrite=overwrite)
    _console().print(f"{spec} -> {output} shape {kernel.shape}")


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--psf", "psf_spec", required=True, help="PSF file or generator spec.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option("--noise", type=click.Choice(["gaussian", "poisson", "mixed", "none"]),
              default="gaussian", show_default=True)
@click.option("--sigma", type=float, default=0.01, show_default=True,
              help="Gaussian noise std in image units.")
@click.option("--photons", type=float, default=300.0, show_default=True,
              help="Photons at the peak for Poisson noise.")
@click.option("--boundary", type=click.Choice(BOUNDARY_CHOICES[1:]), default="symmetric",
              show_default=True)
@click.option("--seed", type=int, default=None)
@click.option("--overwrite", is_flag=True)
def simulate(input_path, psf_spec, output, noise, sigma, photons, boundary, seed, overwrite):
    """Blur INPUT with a PSF and add noise (writes float32)."""
    from .simulation import simulate as run

    output = dkio.check_output_path(output, [input_path], overwrite=overwrite)
    image, meta = dkio.read(input_path, with_metadata=True)
    kernel = _load_psf(psf_spec)
    if image.ndim == kernel.ndim + 1 and image.shape[-1] in (3, 4):
        kernel = kernel[..., None]
    result = run(image, kernel, noise=noise, sigma=sigma, photons=photons,
                 boundary=boundary, seed=seed)
    dkio.write(output, result.astype("float32") if output.suffix.lower() in (".tif", ".tiff",
               ".npy") else result, metadata=meta, overwrite=overwrite)


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="demo-output",
              show_default=True, help="Folder for restored files and the figure.")
@click.option("--overwrite", is_flag=True, help="Replace files from an earlier demo run.")
@click.option("-q", "--quiet", is_flag=True)
def demo(out_dir, overwrite, quiet):
    """Simulate, restore and compare on bundled 1-D, 2-D and 3-D data."""
    from ._demo import run_demo

    run_demo(Path(out_dir), overwrite=overwrite, quiet=quiet)


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
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, IsADirectoryError,
            PermissionError) as exc:
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
