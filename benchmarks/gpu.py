"""GPU Richardson-Lucy on torch CUDA tensors, on the peers' published cases.

- RedLionfish: 256^3 volume, 32^3 Gaussian PSF, 10 RL iterations; 3.3 s on an A100.
- flowdec: 11x1024x1024 volume with a same-size PSF, 25 iterations; 0.67 s on a GTX 1080.

Prints the device, seconds (after a warm-up, synchronised), the speed-up over the
published figure (goal >= 20x) and the peak GPU memory.  Without a CUDA device it
says so and exits 0: the project's tests never need a GPU.  ``--device cpu
--shrink 8`` runs the same code on torch CPU tensors at 1/8 of each side, to
check the script itself where no GPU is lent (its times mean nothing then).

    python benchmarks/gpu.py
    python benchmarks/gpu.py --device cpu --shrink 8
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import deconvkit as dk

CASES = [
    ("RedLionfish 256^3, 32^3 PSF, 10 it.", (256, 256, 256), (32, 32, 32), 10, 3.3, "A100"),
    ("flowdec 11x1024x1024, same-size PSF, 25 it.", (11, 1024, 1024), (11, 1024, 1024), 25,
     0.67, "GTX 1080"),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="torch device (default cuda)")
    parser.add_argument("--shrink", type=int, default=1,
                        help="divide every side of the volumes and PSFs by this (a smoke run)")
    args = parser.parse_args()
    if args.shrink < 1:
        parser.error(f"--shrink must be a whole number >= 1, got {args.shrink}")
    try:
        import torch
    except ImportError:
        print("torch is not installed: pip install 'deconvkit[torch]'")
        return
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        print("no CUDA device here: nothing measured (run this where a GPU is available)")
        return
    name = torch.cuda.get_device_name(device) if cuda else args.device
    print(f"device: {name}" + (f" (sides / {args.shrink})" if args.shrink > 1 else "") + "\n")
    print("| case | boundary | seconds | published (device) | speed-up | peak GPU memory GiB |")
    print("|---|---|---|---|---|---|")
    for label, shape, psf_shape, iterations, published, where in CASES:
        shape = tuple(max(1, n // args.shrink) for n in shape)
        psf_shape = tuple(max(1, n // args.shrink) for n in psf_shape)
        rng = np.random.default_rng(0)
        volume = torch.as_tensor(rng.random(shape, dtype=np.float32), device=device)
        kernel = dk.psf.gaussian(tuple(max(1.0, n / 8) for n in psf_shape), shape=psf_shape)
        for boundary in ("periodic", "valid"):
            dk.richardson_lucy(volume, kernel, iterations=2, boundary=boundary)  # warm-up
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            dk.richardson_lucy(volume, kernel, iterations=iterations, boundary=boundary,
                               acceleration=None)
            if cuda:
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            peak = f"{torch.cuda.max_memory_allocated() / 2**30:.2f}" if cuda else "n/a"
            # a shrunk case is not the peer's: no speed-up against its figure
            speedup = f"{published / seconds:.1f}x" if args.shrink == 1 else "n/a"
            case = label if args.shrink == 1 else f"{label} at {shape}, PSF {psf_shape}"
            print(f"| {case} | {boundary} | {seconds:.3f} | {published} ({where}) | "
                  f"{speedup} | {peak} |", flush=True)


if __name__ == "__main__":
    main()
