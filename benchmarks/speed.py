"""CPU speed and memory of Richardson-Lucy, as ratios against references timed in the same run.

1. Seconds per RL iteration / the FFT floor (2 forward + 2 inverse real FFTs
   of the same padded shape, same library, same threads).  Target <= 1.25.
   The test PSFs are Gaussians, separable: RL blurs by them in compiled 1-D
   passes, below the floor; every figure is also printed for the FFT path
   (``DECONVKIT_SEPARABLE=0``), which any other PSF takes.
2. Time for deconvkit's default accelerated RL (Biggs; and with the
   ``acceleration="anderson"`` option) to reach the PSNR that
   scikit-image's ``richardson_lucy`` reaches in 50 iterations, against
   scikit-image's time, at low noise.  Target >= 10x, on 1024x1024 and
   64x256x256.  Over the whole frame (the issue's measure, where
   scikit-image's edge ringing weighs) and over the interior.
3. Peak extra resident memory of RL, in units of the padded volume (float32),
   measured in a fresh process (Linux VmHWM, reset just before the solve,
   minus the resident size then).  Target <= 6 (for the defaults; the
   Anderson option keeps 6 updates).  Also the peak of live numpy
   arrays (tracemalloc): resident memory adds the FFT library's scratch and
   the allocator's fragmentation to it.

    python benchmarks/speed.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import scipy.fft

import deconvkit as dk


def best_of(func, repeat=5):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def test_volume(shape, seed=0):
    if len(shape) == 2:
        from skimage import data, transform

        image = transform.resize(data.camera() / 255.0, shape, order=1)
        return image.astype(np.float32)
    return (dk.cell_phantom(shape, seed=seed) / 2.0).astype(np.float32)


def fft_floor(padded_shape, dtype=np.float32):
    """The four transforms of one RL iteration, as a function to time."""
    x = np.random.default_rng(0).random(padded_shape).astype(dtype)
    axes = tuple(range(x.ndim))

    def four():
        for _ in range(2):
            spectrum = scipy.fft.rfftn(x, axes=axes, workers=-1)
            scipy.fft.irfftn(spectrum, s=padded_shape, axes=axes, workers=-1)

    return four


def per_iteration(shape, kernel, modes=((None, "passes"), ("biggs", "passes"), (None, "fft"),
                                         ("biggs", "fft")), repeat=10):
    """Seconds per RL iteration for each mode (acceleration, blur), and the FFT floor, all
    timed in alternation in one loop (the machine's load drifts: each is the
    best of ``repeat`` interleaved runs, and every mode shares the floor).
    The floor is timed over as many sets of transforms in a row as the RL
    runs' iterations, so that both are averages over windows of one length
    (the best single 8 ms set, as before, caught quiet moments that a 20
    iteration run could not)."""
    image = test_volume(shape)
    observed = dk.simulate(image, kernel, sigma=0.01, seed=0).astype(np.float32)
    op = dk.Convolution(kernel, boundary="valid")
    padded = tuple(scipy.fft.next_fast_len(n, real=True) for n in op.input_shape(shape))
    n = 20

    def run(iterations, acceleration, path):
        def solve():
            use_path(path)
            dk.richardson_lucy(observed, kernel, iterations=iterations,
                               acceleration=acceleration, noise_sigma=0.01)
        return solve

    runs = [run(count, *mode) for mode in modes for count in (n + 2, 2)]
    four = fft_floor(padded)

    def floor():  # n sets in a row: a window as long as the n iterations it is set against
        for _ in range(n):
            four()

    four()
    times = np.array([[best_of(f, 1) for f in runs + [floor]] for _ in range(repeat)])
    best = times.min(axis=0)
    seconds = {mode: (best[2 * i] - best[2 * i + 1]) / n  # set-up cancels out
               for i, mode in enumerate(modes)}
    use_path("passes")
    return seconds, best[-1] / n, padded


def skimage_reference(shape, kernel):
    """Low noise (sigma 0.001): there 50 RL iterations still improve the
    estimate.  Returns the truth, the data, scikit-image's 50-iteration RL
    and its seconds (run once per shape, for every region and acceleration)."""
    import skimage.restoration as skr

    truth = test_volume(shape)
    observed = dk.simulate(truth, kernel, sigma=0.001, seed=0).astype(np.float32)
    start = time.perf_counter()
    reference = skr.richardson_lucy(observed, kernel, num_iter=50, clip=False)
    return truth, observed, reference, time.perf_counter() - start


def time_to_quality(truth, observed, kernel, reference, interior, acceleration):
    """deconvkit's seconds and iterations to reach the PSNR of ``reference``.

    ``interior``: PSNR away from a 16-sample border, so that scikit-image's
    edge ringing does not make its target an easy one.
    """
    def score(x):
        if interior:
            return dk.metrics.border_psnr(truth, x, data_range=1.0).interior
        return dk.metrics.psnr(truth, x, data_range=1.0)

    target = score(reference)
    reached = []

    def watch(i, x):
        if score(x) >= target:
            reached.append(i)
            return True
        return False

    # the PSNR checks are not part of deconvkit's time: run once to find the
    # iteration count, then time exactly that many iterations
    dk.richardson_lucy(observed, kernel, iterations=100, acceleration=acceleration,
                       callback=watch)
    if not reached:
        return None, None
    count = reached[0]
    start = time.perf_counter()
    dk.richardson_lucy(observed, kernel, iterations=count, acceleration=acceleration)
    return time.perf_counter() - start, count


PATHS = {"passes": True, "fft": False}  # RL's blur for a separable PSF


def use_path(path):
    """RL's blur by the separable test PSFs: compiled 1-D passes (the default
    where they cost less) or the FFTs that any other PSF takes."""
    dk._kernels.SEPARABLE = PATHS[path]


def memory_child(shape, kernel_sigma, acceleration, iterations=5):
    """Runs in a fresh process: peak RSS growth during RL, and the peak of live
    numpy arrays (tracemalloc sees numpy's allocations), in bytes.  ``"auto"``
    iterations: the default call, which also estimates the noise and tracks
    the residual."""
    import tracemalloc

    kernel = dk.psf.gaussian(kernel_sigma, ndim=len(shape))
    observed = dk.simulate(test_volume(shape), kernel, sigma=0.01, seed=0).astype(np.float32)
    warm = observed[tuple(slice(0, 2 * k) for k in kernel.shape)]
    dk.richardson_lucy(warm, kernel, iterations=2)  # warm imports
    # start the element-wise thread pool: a per-process cost, like the imports
    dk._array_api.blockwise(lambda block: None, np.zeros(1 << 20, np.float32))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # Linux: reset the peak (VmHWM) to the current resident size
    before = _status("VmRSS")
    tracemalloc.start()
    given = {} if iterations == "auto" else dict(noise_sigma=0.01)
    dk.richardson_lucy(observed, kernel, iterations=iterations, acceleration=acceleration,
                       **given)
    live = tracemalloc.get_traced_memory()[1]
    print(json.dumps({"extra": _status("VmHWM") - before, "live": live}))


def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_memory(shape, kernel_sigma, acceleration, iterations=5, path="passes"):
    code = (f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); import speed; "
            f"speed.memory_child({tuple(shape)!r}, {kernel_sigma!r}, {acceleration!r}, "
            f"{iterations!r})")
    env = dict(os.environ, DECONVKIT_SEPARABLE="1" if PATHS[path] else "0")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    peaks = json.loads(out.stdout.strip().splitlines()[-1])
    kernel = dk.psf.gaussian(kernel_sigma, ndim=len(shape))
    op = dk.Convolution(kernel, boundary="valid")
    padded = tuple(scipy.fft.next_fast_len(n, real=True) for n in op.input_shape(shape))
    unit = np.prod(padded) * 4
    return peaks["extra"] / unit, peaks["live"] / unit


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    cases = [((1024, 1024), 2.0), ((64, 256, 256), 1.5)]
    if args.quick:
        cases = [((512, 512), 2.0), ((48, 128, 128), 1.5)]
    print(f"threads: scipy.fft workers={os.cpu_count()}\n")
    print("| shape | RL mode | blur | s/iteration | FFT floor s | ratio (target <= 1.25) |")
    print("|---|---|---|---|---|---|")
    for shape, sigma in cases:
        kernel = dk.psf.gaussian(sigma, ndim=len(shape))
        seconds, floor, padded = per_iteration(shape, kernel)
        for (acceleration, path), spent in seconds.items():
            print(f"| {shape} (padded {padded}) | {acceleration or 'plain'} | {path} | "
                  f"{spent:.4f} | {floor:.4f} | {spent / floor:.2f} |", flush=True)
    print("\n| shape | PSNR over | RL acceleration | blur | scikit-image 50 it. s "
          "| deconvkit s (iterations) | speed-up (target >= 10) |")
    print("|---|---|---|---|---|---|---|")
    for shape, sigma in cases:
        kernel = dk.psf.gaussian(sigma, ndim=len(shape))
        truth, observed, reference, sk = skimage_reference(shape, kernel)
        for interior in (False, True):
            region = "interior" if interior else "whole frame"
            # the default, then the option; each on both blurs
            for acceleration, path in (("biggs", "passes"), ("anderson", "passes"),
                                       ("biggs", "fft"), ("anderson", "fft")):
                use_path(path)
                ours, count = time_to_quality(truth, observed, kernel, reference, interior,
                                              acceleration)
                use_path("passes")
                row = f"| {shape} | {region} | {acceleration} | {path} | {sk:.2f} |"
                if ours is None:
                    print(f"{row} not reached in 100 | - |")
                else:
                    print(f"{row} {ours:.2f} ({count}) | {sk / ours:.1f}x |", flush=True)
    print("\nPeak memory of RL in padded float32 volumes:\n")
    print("| shape | RL mode | blur | iterations | extra resident (target <= 6) | live arrays |")
    print("|---|---|---|---|---|---|")
    for shape, sigma in cases:
        for path in PATHS:
            for acceleration, iterations in ((None, 5), ("biggs", 5), (None, "auto"),
                                             ("biggs", "auto"), ("anderson", "auto")):
                resident, live = peak_memory(shape, sigma, acceleration, iterations, path)
                print(f"| {shape} | {acceleration or 'plain'} | {path} | {iterations} | "
                      f"{resident:.2f} | {live:.2f} |", flush=True)


if __name__ == "__main__":
    main()
