"""Thin stacks: a PSF longer than the stack, taken whole against cropped to it.

A widefield PSF spans many more planes than a thin stack. Under the
``"valid"`` boundary the solvers estimate the object beyond the stack, whose
light the stack receives; a PSF cropped to the stack keeps a fraction of its
light and takes that haze for objects in the stack.

Protocol: cell phantoms of 44 x 48 x 48 samples (seeds 0-3), blurred by a
31-plane widefield PSF (NA 1.2, 0.2 um planes, 0.1 um pixels; 31 x 17 x 17),
the middle 10 planes kept, Poisson noise at 1000 photons a unit.  Each
method restores them with its automatic choices, given the PSF cropped to 9
planes (``psf.crop_or_pad``) and given it whole.  Printed: PSNR over the
stack (the truth's peak as the range) for each seed, cropped -> whole, the
mean gain, and the seconds for the whole PSF against the cropped one.

    python benchmarks/thin_stack.py      # about 15 s on 2 cores
"""

from __future__ import annotations

import time
import warnings

import numpy as np

import deconvkit as dk

METHODS = ("richardson_lucy", "total_variation", "landweber", "cgls", "wiener")
SEEDS = range(4)
PLANES = slice(17, 27)


def case(seed, kernel):
    """The stack (Poisson counts over 1000) and its truth."""
    volume = dk.cell_phantom((44, 48, 48), seed=seed)
    blurred = np.clip(dk.blur(volume, kernel)[PLANES], 0, None)
    return np.random.default_rng(seed).poisson(blurred * 1000) / 1000, volume[PLANES]


def main():
    kernel = dk.psf.widefield((31, 17, 17), na=1.2, z_step=0.2, pixel_size=0.1)
    cropped = dk.psf.crop_or_pad(kernel, (9, 17, 17))
    kept = kernel[11:20].sum() / kernel.sum()
    print(f"PSF {kernel.shape}, cropped to {cropped.shape} (it keeps {100 * kept:.0f} % of "
          "its light); PSNR dB, cropped -> whole\n")
    print(f"{'method':16s} " + " ".join(f"{'seed ' + str(s):>15s}" for s in SEEDS)
          + "  mean gain  seconds (whole / cropped)")
    cases = [case(seed, kernel) for seed in SEEDS]
    for method in METHODS:
        cells, gains, seconds = [], [], [0.0, 0.0]
        for stack, truth in cases:
            scores = []
            for i, k in enumerate((cropped, kernel)):
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # a discrepancy stop at its cap
                    restored = dk.deconvolve(stack, k, method=method)
                seconds[i] += time.perf_counter() - start
                scores.append(dk.metrics.psnr(truth, restored, data_range=truth.max()))
            cells.append(f"{scores[0]:6.2f} -> {scores[1]:5.2f}")
            gains.append(scores[1] - scores[0])
        print(f"{method:16s} " + " ".join(f"{c:>15s}" for c in cells)
              + f"  {np.mean(gains):+9.2f}  {seconds[1]:.1f} / {seconds[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
