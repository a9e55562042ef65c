"""Deconvolution of stage-scanned light-sheet stacks around deskewing.

A cell phantom in the detection objective's frame is blurred by a light-sheet
PSF (detection: widefield, NA 1.1 water, 510 nm; excitation: a Gaussian
sheet of 1 µm FWHM) and seen by a stage scan at 31.5° (a lattice light
sheet's geometry; each raw plane is the blurred volume moved by a sub-pixel
Fourier shift, so the simulation does not share deskew's interpolation), with
Poisson noise.  Restorations, scored by PSNR on the region the scan covered:

- the deskewed data as they are;
- deskewed with 0 in the wedges no plane reaches, then RL with its stopping
  rule, and RL for 10 iterations with a periodic boundary (the shape of
  cudaDecon's default run: pad value 0, 10 iterations; without its edge
  apodization);
- deskewed with NaN in the wedges (missing data, left out), then RL and the
  default ``deconvolve``; and RL on a deskew by the nearest sample
  (``order=0``), which keeps the counts Poisson;
- deconvolved in the raw frame with ``skew_psf``, then deskewed.

Two geometries: a whole 3 pixels a plane and a lattice microscope's
0.4 µm step at 0.104 µm pixels (3.28 pixels a plane).

    python benchmarks/lightsheet.py          # ~2 minutes on 2 cores
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import scipy.ndimage as ndi

import deconvkit as dk
from deconvkit.lightsheet import deskew, deskewed_spacing, shift_per_plane, skew_psf

ANGLE = 31.5


def stage_scan(z_step, pixel_size, *, planes=48, rows=64, camera=128, photons=1000, seed=0):
    shift = shift_per_plane(ANGLE, z_step, pixel_size)
    psf = dk.psf.light_sheet((25, 31, 31), wavelength=0.51, sheet=1.0, na=1.1,
                             pixel_size=pixel_size,
                             z_step=deskewed_spacing(ANGLE, z_step, pixel_size))
    width = camera + math.ceil(shift * (planes - 1)) + 16
    truth = dk.cell_phantom((planes, rows, width), seed=seed + 1)
    blurred = dk.blur(truth, psf, boundary="reflect")
    raw = np.empty((planes, rows, camera))
    for k in range(planes):  # raw[k, :, x] = blurred[k, :, x + k * shift]
        spectrum = np.fft.fft(blurred[k], axis=-1)
        moved = np.fft.ifft(ndi.fourier_shift(spectrum, (0, -k * shift), axis=-1), axis=-1).real
        raw[k] = moved[:, :camera]
    raw = np.random.default_rng(seed).poisson(np.clip(raw, 0, None) * photons) / photons
    return truth, raw, psf


def main():
    print(f"{'geometry':22s} {'restoration':44s} {'PSNR':>6s} {'iter':>5s} {'s':>6s}")
    for z_step, pixel_size in ((3 * 0.1 / math.cos(math.radians(ANGLE)), 0.1), (0.4, 0.104)):
        compare(z_step, pixel_size)


def compare(z_step, pixel_size):
    """One geometry: every restoration's PSNR, iterations and seconds."""
    geometry = f"{shift_per_plane(ANGLE, z_step, pixel_size):.2f} px/plane"
    truth, raw, psf = stage_scan(z_step, pixel_size)
    options = dict(z_step=z_step, pixel_size=pixel_size)
    covered = ~np.isnan(deskew(np.ones_like(raw), ANGLE, fill=np.nan, **options))
    truth = truth[..., :covered.shape[-1]]
    zero = deskew(raw, ANGLE, **options)
    missing = deskew(raw, ANGLE, fill=np.nan, **options)
    runs = {
        "deskewed data": lambda: (zero, None),
        "deskew 0, RL (stopping rule)": lambda: dk.richardson_lucy(zero, psf, return_info=True),
        "deskew 0, RL 10 periodic (cudaDecon-shaped)": lambda: (dk.richardson_lucy(
            zero, psf, iterations=10, boundary="periodic"), None),
        "deskew NaN, RL": lambda: dk.richardson_lucy(missing, psf, return_info=True),
        "deskew NaN nearest, RL": lambda: dk.richardson_lucy(
            deskew(raw, ANGLE, fill=np.nan, order=0, **options), psf, return_info=True),
        "deskew NaN, deconvolve (default)": lambda: dk.deconvolve(missing, psf,
                                                                return_info=True),
        "raw frame RL, then deskew": lambda: raw_frame(dk.richardson_lucy, raw, psf, options),
        "raw frame deconvolve, then deskew": lambda: raw_frame(dk.deconvolve, raw, psf,
                                                               options),
    }
    for name, run in runs.items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a run that does not reach its stop says so
            restored, info = run()
        seconds = time.perf_counter() - start
        iterations = "" if info is None else str(info.iterations)
        if name.endswith("(cudaDecon-shaped)"):
            iterations = "10"
        quality = dk.metrics.psnr(truth[covered], restored[covered], data_range=truth.max())
        print(f"{geometry:22s} {name:44s} {quality:6.2f} {iterations:>5s} {seconds:6.1f}",
              flush=True)


def raw_frame(solver, raw, psf, options):
    skewed = skew_psf(psf, ANGLE, **options)
    restored, info = solver(raw, skewed, return_info=True)
    return deskew(restored, ANGLE, **options), info


if __name__ == "__main__":
    main()
