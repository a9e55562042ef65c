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

A second table: a hand-held burst, frames turned by up to 2 degrees and
shifted by up to 2 pixels (scale**2 frames, the first unmoved), each made by
spline interpolation of the scene before the blur and binning:

- translation: super_resolve with the shifts registered (motion="translation");
- rigid given / registered: with the frames' affine maps given, or registered
  by register_rigid (motion="rigid"); max error: of the registered maps' points
  anywhere in the frame, in frame pixels.

A third table: the x2 dithered frames with 30 cosmic-ray tracks of 1-3
samples a frame (0.3-2 above the scene), fitted, or left out by reject=5
(shifts registered in every column): PSNR and the samples left out against
those hit.

A fourth table: raw bursts of a colour camera (RGGB Bayer mosaics; 240
pixels of linear-light photos on the fine grid, frames turned by up to 1
degree and shifted by up to 2 pixels, noise 0.003), x1 from 4 frames and x2
from 8: bilinear demosaicking of the first frame (then bicubic at x2),
super_resolve(bayer="RGGB") of the first frame alone, of every frame with
the maps registered (motion="rigid") and given; PSNR over the three colours.

Run: python benchmarks/super_resolution.py   (about 2 minutes on 2 cores)
"""

from __future__ import annotations

import time

import numpy as np
import scipy.ndimage as ndi
from skimage import color, data, transform

import deconvkit as dk
from deconvkit.restoration import register_rigid, register_shifts

SCENES = {
    "camera": lambda: data.camera()[64:304, 128:368] / 255.0,
    "astronaut": lambda: color.rgb2gray(data.astronaut())[20:260, 150:390],
    "coins": lambda: data.coins()[40:280, 40:280] / 255.0,
    "cells": lambda: dk.cell_phantom((240, 240), seed=0),
}


def scorer(truth, margin):
    """PSNR against ``truth``, a border of ``margin`` samples left out."""
    def score(estimate):
        inside = (slice(margin, -margin),) * 2
        return dk.metrics.psnr(truth[inside], estimate[inside], data_range=1.0)
    return score


def frames_of(scene, scale, sigma, seed):
    blur = dk.psf.gaussian(0.5 * scale)
    sharp = dk.blur(scene, blur)
    n = (scene.shape[0] - scale) // scale
    rng = np.random.default_rng(seed)
    phases = [(i, j) for i in range(scale) for j in range(scale)]
    frames = [sharp[i:i + n * scale, j:j + n * scale].reshape(n, scale, n, scale)
              .mean(axis=(1, 3)) + rng.normal(0, sigma, (n, n)) for i, j in phases]
    return frames, phases, blur, scene[:n * scale, :n * scale]


def turned_frames(scene, scale, sigma, seed):
    """Frames of the scene turned and shifted about the frame's centre (frame
    pixel i sees the first frame's point A i + b); returns the frames, their
    maps, the PSF and the first frame's fine truth."""
    blur = dk.psf.gaussian(0.5 * scale)
    n = (scene.shape[0] - scale) // scale
    rng = np.random.default_rng(seed)
    centre = np.full(2, (n - 1) / 2)
    pad = 12
    fine = np.indices((n * scale + 2 * pad,) * 2).reshape(2, -1) - float(pad)
    pixel = 0.5 * scale - 0.5  # a frame pixel's centre on the fine grid
    frames, maps = [], []
    for k in range(scale ** 2):
        angle = np.radians(rng.uniform(-2, 2)) if k else 0.0
        move = rng.uniform(-2, 2, 2) if k else np.zeros(2)
        turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        shift = centre + move - turn @ centre
        maps.append(np.hstack([turn, shift[:, None]]))
        points = turn @ (fine - pixel) + (scale * shift + pixel)[:, None]
        seen = ndi.map_coordinates(scene, points, order=3, mode="mirror")
        sharp = dk.blur(seen.reshape((n * scale + 2 * pad,) * 2), blur)[pad:-pad, pad:-pad]
        frames.append(sharp.reshape(n, scale, n, scale).mean(axis=(1, 3))
                      + rng.normal(0, sigma, (n, n)))
    return frames, np.stack(maps), blur, scene[:n * scale, :n * scale]


def burst_table():
    print(f"\n{'scene':10s} {'scale':>5s} {'bicubic':>8s} {'1 frame':>8s} {'transl.':>8s} "
          f"{'rigid':>8s} {'regist.':>8s} {'max error':>9s} {'s (rigid)':>9s}")
    gains = {2: [], 3: []}
    for scale in (2, 3):
        for name, make in SCENES.items():
            frames, maps, blur, truth = turned_frames(make(), scale, sigma=0.01, seed=2)
            score = scorer(truth, 2 * scale)

            bicubic = transform.resize(frames[0], truth.shape, order=3)
            one = dk.super_resolve(frames[0], blur, scale)
            shifted = dk.super_resolve(frames, blur, scale)
            given = dk.super_resolve(frames, blur, scale, shifts=maps)
            start = time.perf_counter()
            found = register_rigid(frames)
            registered = dk.super_resolve(frames, blur, scale, shifts=found)
            seconds = time.perf_counter() - start
            points = np.indices(frames[0].shape).reshape(2, -1)
            error = max(np.abs(f[:, :2] @ points + f[:, 2:] - g[:, :2] @ points - g[:, 2:]).max()
                        for f, g in zip(found, maps))
            row = [score(v) for v in (bicubic, one, shifted, given, registered)]
            gains[scale].append(row)
            print(f"{name:10s} {scale:5d} " + " ".join(f"{v:8.2f}" for v in row)
                  + f" {error:9.3f} {seconds:9.1f}")
    for scale, rows in gains.items():
        mean = np.mean(rows, axis=0)
        print(f"x{scale} burst mean: " + " ".join(f"{v:.2f}" for v in mean) + f"; registered "
              f"rigid over bicubic {mean[4] - mean[0]:+.2f} dB, over the translation model "
              f"{mean[4] - mean[2]:+.2f}")


def rays_table():
    print(f"\n{'scene':10s} {'clean':>8s} {'rays':>8s} {'rejected':>8s} {'left out / hit':>16s}")
    rows = []
    for name, make in SCENES.items():
        frames, _, blur, truth = frames_of(make(), 2, sigma=0.01, seed=1)
        rays = [dk.cosmic_rays(f.shape, 30, seed=5 + k) for k, f in enumerate(frames)]
        hit = [f + r for f, r in zip(frames, rays)]

        score = scorer(truth, 4)

        clean = dk.super_resolve(frames, blur, 2)
        fitted = dk.super_resolve(hit, blur, 2)
        cleaned, info = dk.super_resolve(hit, blur, 2, reject=5, return_info=True)
        rows.append([score(clean), score(fitted), score(cleaned)])
        counts = f"{sum(info.parameters['rejected'])} / {sum(int((r > 0).sum()) for r in rays)}"
        print(f"{name:10s} " + " ".join(f"{v:8.2f}" for v in rows[-1]) + f" {counts:>16s}")
    print("rays mean: " + " ".join(f"{v:.2f}" for v in np.mean(rows, axis=0)))


COLOUR_SCENES = {
    "astronaut": lambda: data.astronaut()[20:300, 130:410],
    "coffee": lambda: data.coffee()[60:340, 180:460],
    "chelsea": lambda: data.chelsea()[0:280, 60:340],
    "rocket": lambda: data.rocket()[100:380, 200:480],
}


def raw_burst(rgb, scale, frames, seed, sigma=0.003):
    """RGGB mosaics of a linear-light colour scene, turned and shifted; returns
    the frames, their maps, the PSF and the first frame's fine truth."""
    from deconvkit.restoration._mosaic import channel_masks

    blur = dk.psf.gaussian(0.5 * scale)
    n = (rgb.shape[0] - 40) // scale
    rng = np.random.default_rng(seed)
    centre, pixel, pad = (n - 1) / 2, 0.5 * scale - 0.5, 12
    fine = np.indices((n * scale + 2 * pad,) * 2).reshape(2, -1) - float(pad)
    masks = channel_masks("RGGB", (n, n))
    raws, maps = [], []
    for k in range(frames):
        angle = np.radians(rng.uniform(-1, 1)) if k else 0.0
        move = rng.uniform(-2, 2, 2) if k else np.zeros(2)
        turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        shift = centre + move - turn @ np.full(2, centre)
        maps.append(np.hstack([turn, shift[:, None]]))
        points = turn @ (fine - pixel) + (scale * shift + pixel + 20)[:, None]
        colours = []
        for c in range(3):
            seen = ndi.map_coordinates(rgb[..., c], points, order=3, mode="mirror")
            sharp = dk.blur(seen.reshape((n * scale + 2 * pad,) * 2), blur)[pad:-pad, pad:-pad]
            colours.append(sharp.reshape(n, scale, n, scale).mean(axis=(1, 3)))
        raws.append((np.stack(colours) * masks).sum(axis=0) + rng.normal(0, sigma, (n, n)))
    truth = rgb[20:20 + n * scale, 20:20 + n * scale]
    return raws, np.stack(maps), blur, truth


def bilinear_demosaic(raw):
    from deconvkit.restoration._mosaic import channel_masks

    weights = np.array([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    return np.stack([ndi.convolve(raw * m, weights, mode="mirror")
                     / ndi.convolve(m.astype(float), weights, mode="mirror")
                     for m in channel_masks("RGGB", raw.shape)], axis=-1)


def bayer_table():
    print(f"\n{'scene':10s} {'scale':>5s} {'frames':>6s} {'bilinear':>8s} {'1 frame':>8s} "
          f"{'regist.':>8s} {'given':>8s} {'s (regist.)':>11s}")
    rows = {1: [], 2: []}
    for scale, count in ((1, 4), (2, 8)):
        for name, make in COLOUR_SCENES.items():
            rgb = dk.io.srgb_to_linear(make() / 255.0)
            raws, maps, blur, truth = raw_burst(rgb, scale, count, seed=3)
            score = scorer(truth, 3 * scale)

            bilinear = transform.resize(bilinear_demosaic(raws[0]), truth.shape, order=3)
            one = dk.super_resolve(raws[0], blur, scale, bayer="RGGB")
            start = time.perf_counter()
            found = dk.super_resolve(raws, blur, scale, bayer="RGGB", motion="rigid")
            seconds = time.perf_counter() - start
            given = dk.super_resolve(raws, blur, scale, bayer="RGGB", shifts=maps)
            rows[scale].append([score(v) for v in (bilinear, one, found, given)])
            print(f"{name:10s} {scale:5d} {count:6d} " + " ".join(
                f"{v:8.2f}" for v in rows[scale][-1]) + f" {seconds:11.1f}")
    for scale, values in rows.items():
        mean = np.mean(values, axis=0)
        print(f"x{scale} raw mean: " + " ".join(f"{v:.2f}" for v in mean)
              + f"; registered over bilinear {mean[2] - mean[0]:+.2f} dB, over one frame "
              f"{mean[2] - mean[1]:+.2f}")


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
            score = scorer(truth, 2 * scale)

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
    burst_table()
    rays_table()
    bayer_table()


if __name__ == "__main__":
    main()
