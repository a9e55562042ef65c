"""Space-variant blur: restoration with a grid of PSFs against any single PSF, PSF
grids fitted from star fields, and the operator's cost against a single PSF's.

A 3 x 3 grid of Gaussians that widen and stretch from the centre to the corners
blurs a crop of scikit-image's camera photo (1 % noise).  Prints PSNR for each
method with the true grid, the grid's mean and centre PSFs; then grids found by
``deconvkit.psf.grid_from_sources`` on sparse star fields with blends (against
each tile's median cutout); then the seconds of a blur and its adjoint at 1024²
for 3 x 3 and 6 x 6 grids, windowed (``"valid"``) and over the whole frame, as
ratios to a single PSF's, timed in the same run.  ``--deepinv`` adds
DeepInverse's space-varying blur (the same product-convolution model, checked
to agree) solved by its proximal gradient with a TV prior, at the best of a grid
of weights chosen with the truth (needs ``pip install deepinv``; about 15
minutes on 2 cores).

    python benchmarks/space_variant.py [--deepinv]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from skimage import data

import deconvkit as dk


def field_of_view_blur(grid=3, size=17):
    """Gaussians 0.8 px wide at the centre, 3.0 x 1.4 px in the corners, stretched
    along the radius."""
    psfs = np.zeros((grid, grid, size, size))
    y, x = np.mgrid[:size, :size] - size // 2
    middle = (grid - 1) / 2
    for i in range(grid):
        for j in range(grid):
            r = np.hypot(i - middle, j - middle) / (middle * np.sqrt(2))
            angle = np.arctan2(i - middle, j - middle)
            u = x * np.cos(angle) + y * np.sin(angle)
            v = -x * np.sin(angle) + y * np.cos(angle)
            g = np.exp(-0.5 * ((u / (0.8 + 2.2 * r)) ** 2 + (v / (0.8 + 0.6 * r)) ** 2))
            psfs[i, j] = g / g.sum()
    return psfs


def stars(op, n, positions, rng, flux=1000.0, background=5.0, noise=0.2):
    scene = np.zeros(op.input_shape((n, n)))
    margin = op.widths[0][0]
    for a, b in positions:
        scene[a + margin, b + margin] = flux
    observed = op.forward(scene) + background
    return observed + rng.normal(0, noise, observed.shape)


def sparse(rng, count, n, gap):
    points = []
    while len(points) < count:
        p = rng.integers(9, n - 9, 2)
        if all(np.abs(p - q).max() >= gap for q in points):
            points.append(p)
    return [tuple(int(v) for v in p) for p in points]


def tile_medians(field, grid, size):
    """The naive alternative: each tile's median cutout (the same sources)."""
    half = size // 2
    tiles = {}
    for p in dk.psf.isolated_sources(field, size):
        tile = tuple(min(int(c * grid // n), grid - 1) for c, n in zip(p, field.shape))
        cut = field[p[0] - half:p[0] + half + 1, p[1] - half:p[1] + half + 1]
        tiles.setdefault(tile, []).append(dk.psf.from_measurement(cut, radial=False))
    out = np.zeros((grid, grid, size, size))
    for tile, cutouts in tiles.items():
        out[tile] = dk.psf.normalize(np.median(np.stack(cutouts), axis=0))
    return out


def deepinv_oracle(op, psfs, observed, psnr, weights=(3e-4, 1e-3, 3e-3, 6e-3, 1e-2),
                   iterations=150):
    """DeepInverse's PGD with a TV prior on its SpaceVaryingBlur: each weight's PSNR."""
    import deepinv
    import torch

    multipliers = torch.tensor(np.stack(op.weights(op.input_shape(observed.shape))))
    physics = deepinv.physics.SpaceVaryingBlur(
        filters=torch.tensor(psfs.reshape((-1,) + psfs.shape[2:]))[None, None],
        multipliers=multipliers[None, None], padding="valid")
    probe = np.random.default_rng(1).random(op.input_shape(observed.shape))
    agree = np.abs(physics.A(torch.tensor(probe)[None, None])[0, 0].numpy()
                   - op.forward(probe)).max()
    rows = []
    for weight in weights:
        model = deepinv.optim.optim_builder(
            iteration="PGD", max_iter=iterations, params_algo={"stepsize": 1.0, "lambda": weight},
            data_fidelity=deepinv.optim.data_fidelity.L2(),
            prior=deepinv.optim.prior.TVPrior(n_it_max=50), early_stop=False)
        start = time.perf_counter()
        with torch.no_grad():
            x = model(torch.tensor(observed)[None, None], physics)[0, 0].numpy()
        margin = op.widths[0][0]
        rows.append((weight, psnr(x[margin:-margin, margin:-margin]),
                     time.perf_counter() - start))
    return agree, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deepinv", action="store_true",
                        help="also DeepInverse's PGD-TV at oracle weights (slow)")
    args = parser.parse_args()
    psfs = field_of_view_blur()
    op = dk.SpaceVariantConvolution(psfs)
    scene = data.camera()[100:372, 120:392] / 255.0
    observed = op.forward(scene) + 0.01 * np.random.default_rng(0).standard_normal((256, 256))
    truth = scene[8:-8, 8:-8]

    def psnr(x):
        return dk.metrics.psnr(truth, x, data_range=1.0)

    print(f"## Restoration (observed {psnr(observed):.2f} dB)\n")
    print("| method | grid of PSFs | mean PSF | centre PSF | seconds (grid / mean) |")
    print("|---|---|---|---|---|")
    for method in ("total_variation", "richardson_lucy", "landweber"):
        scores, seconds = [], []
        for kernel in (op, psfs.mean(axis=(0, 1)), psfs[1, 1]):
            start = time.perf_counter()
            scores.append(psnr(dk.deconvolve(observed, kernel, method=method)))
            seconds.append(time.perf_counter() - start)
        print(f"| {method} | {scores[0]:.2f} | {scores[1]:.2f} | {scores[2]:.2f} | "
              f"{seconds[0]:.1f} / {seconds[1]:.1f} |", flush=True)

    if args.deepinv:
        agree, rows = deepinv_oracle(op, psfs, observed, psnr)
        print(f"\nDeepInverse's SpaceVaryingBlur agrees with ours to {agree:.1e}")
        print("| DeepInverse PGD-TV, 150 iterations: weight | PSNR | seconds |")
        print("|---|---|---|")
        for weight, score, seconds in rows:
            print(f"| {weight:g} | {score:.2f} | {seconds:.0f} |", flush=True)

    print("\n## Grids from star fields (50 stars >= 20 px apart + 3 blends 2 px apart)\n")
    print("| seed | error, fitted (% of peak) | error, tile medians | RL 15 it.: true grid | "
          "fitted | tile medians | TV: true | fitted | tile medians |")
    print("|---|---|---|---|---|---|---|---|---|")
    for seed in range(3):
        positions = sparse(np.random.default_rng(seed), 50, 256, 20)
        positions += [(a + 2, b + 1) for a, b in positions[:3]]
        field = stars(op, 256, positions, np.random.default_rng(seed + 100))
        fitted = dk.psf.grid_from_sources(field, 3, 17)
        medians = tile_medians(field, 3, 17)
        errors = [100 * (np.abs(g - psfs).max(axis=(2, 3)) / psfs.max(axis=(2, 3))).max()
                  for g in (fitted, medians)]
        row = []
        for method, options in (("richardson_lucy", dict(iterations=15)),
                                ("total_variation", {})):
            for grid in (psfs, fitted, medians):
                row.append(psnr(dk.deconvolve(observed, dk.SpaceVariantConvolution(grid),
                                              method=method, **options)))
        print(f"| {seed} | {errors[0]:.1f} | {errors[1]:.1f} | "
              + " | ".join(f"{v:.2f}" for v in row) + " |", flush=True)

    print("\n## Cost of a blur and its adjoint at 1024², as multiples of one PSF's\n")
    print("| grid | windowed (valid) | whole frame per node |")
    print("|---|---|---|")
    for grid in (3, 6):
        ratios = cost_ratios(field_of_view_blur(grid))
        print(f"| {grid} x {grid} | {ratios[0]:.1f} | {ratios[1]:.1f} |", flush=True)


def cost_ratios(kernels, shape=(1024, 1024)):
    """Seconds of a blur and its adjoint, windowed and over the whole frame per
    node, over one PSF's: interleaved runs, best of three."""
    rng = np.random.default_rng(0)
    field = dk.SpaceVariantConvolution(kernels)
    x, y = rng.random(field.input_shape(shape)), rng.random(shape)
    single = dk.Convolution(kernels[0, 0], boundary="valid")
    weights = field.weights(x.shape)

    def whole():
        sum(t.forward(w * x) for t, w in zip(field.terms, weights))
        sum(w * t.adjoint(y) for t, w in zip(field.terms, weights))

    runs = {"windowed": lambda: (field.forward(x), field.adjoint(y)), "whole": whole,
            "single": lambda: (single.forward(x), single.adjoint(y))}
    best = {}
    for _ in range(3):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best.get(name, np.inf), time.perf_counter() - start)
    return best["windowed"] / best["single"], best["whole"] / best["single"]


if __name__ == "__main__":
    main()
