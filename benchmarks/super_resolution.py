"""Classical super-resolution from undersampled frames: deconvkit.super_resolve against
bicubic interpolation and shift-and-add.

Each case is a scene on the fine grid, blurred by Gaussian optics (sigma half a
frame pixel), binned scale x scale at every one of the scale**2 phases (the
frames of a dithered camera, each shifted by a fraction of a pixel), plus
Gaussian noise.  Columns (PSNR against the scene, a 2-frame-pixel border left
out; deconvkit's rows with the noise level estimated):

- bicubic: the first frame interpolated onto the fine grid;
- shift-and-add: the frames interleaved at their phases (drizzle with the
  smallest drop), which keeps the pixel's blur;
- one frame: super_resolve (its default, RL with TV) on the first frame alone;
- RL: all frames, dithers given, plain Richardson-Lucy (tv_weight=None, the
  discrepancy stop);
- known / registered: all frames with the default, the dithers given or
  registered by cross-correlation.

Run: python benchmarks/super_resolution.py   (about a minute on 2 cores)
"""

from __future__ import annotations

import time

import numpy as np
from skimage import color, data, transform

import deconvkit as dk
from deconvkit.restoration import register_shifts

SCENES = {
    "camera": lambda: data.camera()[64:304, 128:368] / 255.0,
    "astronaut": lambda: color.rgb2gray(data.astronaut())[20:260, 150:390],
    "coins": lambda: data.coins()[40:280, 40:280] / 255.0,
    "cells": lambda: dk.cell_phantom((240, 240), seed=0),
}


def frames_of(scene, scale, sigma, seed):
    blur = dk.psf.gaussian(0.5 * scale)
    sharp = dk.blur(scene, blur)
    n = (scene.shape[0] - scale) // scale
    rng = np.random.default_rng(seed)
    phases = [(i, j) for i in range(scale) for j in range(scale)]
    frames = [sharp[i:i + n * scale, j:j + n * scale].reshape(n, scale, n, scale)
              .mean(axis=(1, 3)) + rng.normal(0, sigma, (n, n)) for i, j in phases]
    return frames, phases, blur, scene[:n * scale, :n * scale]


def main():
    print(__doc__.split("\n\n")[0])
    header = (f"{'scene':10s} {'scale':>5s} {'bicubic':>8s} {'shift+add':>9s} {'1 frame':>8s} "
              f"{'RL':>8s} {'known':>8s} {'regist.':>8s} {'max shift err':>13s} "
              f"{'s (all)':>8s}")
    print(header)
    gains = {2: [], 3: []}
    for scale in (2, 3):
        for name, make in SCENES.items():
            frames, phases, blur, truth = frames_of(make(), scale, sigma=0.01, seed=1)
            m = 2 * scale

            def score(estimate, truth=truth, m=m):
                return dk.metrics.psnr(truth[m:-m, m:-m], estimate[m:-m, m:-m],
                                       data_range=1.0)

            bicubic = transform.resize(frames[0], truth.shape, order=3)
            interleaved = np.zeros(truth.shape)
            for (i, j), frame in zip(phases, frames):
                interleaved[i::scale, j::scale] = frame
            known = [(i / scale, j / scale) for i, j in phases]
            start = time.perf_counter()
            one = dk.super_resolve(frames[0], blur, scale)
            plain = dk.super_resolve(frames, blur, scale, shifts=known, tv_weight=None)
            given = dk.super_resolve(frames, blur, scale, shifts=known)
            found = register_shifts(frames)
            registered = dk.super_resolve(frames, blur, scale, shifts=found)
            seconds = time.perf_counter() - start
            error = float(np.abs(found - np.asarray(known)).max())
            row = [score(bicubic), score(interleaved), score(one), score(plain), score(given),
                   score(registered)]
            gains[scale].append(row)
            print(f"{name:10s} {scale:5d} {row[0]:8.2f} {row[1]:9.2f} "
                  + " ".join(f"{v:8.2f}" for v in row[2:]) + f" {error:13.3f} {seconds:8.1f}")
    for scale, rows in gains.items():
        mean = np.mean(rows, axis=0)
        print(f"x{scale} mean: " + " ".join(f"{v:.2f}" for v in mean) + f"; registered "
              f"frames over bicubic {mean[5] - mean[0]:+.2f} dB, over plain RL "
              f"{mean[5] - mean[3]:+.2f}")


if __name__ == "__main__":
    main()
