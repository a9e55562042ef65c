"""Out-of-core restoration: a volume larger than the memory budget, through the CLI's chunked path.

Writes a synthetic float32 volume of ``--gigabytes`` (default 4) to a zarr
store, restores it with ``deconvkit deconvolve IN.zarr -o OUT.zarr
--memory-limit ...`` in a child process, and prints the child's peak
resident memory (target < 2 GB) and its throughput against an in-memory run
of the same method on a smaller volume, timed in the same run.

    python benchmarks/tiled.py [--gigabytes 4] [--memory-limit 1.2GB] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import deconvkit as dk

SIGMA = (1.0, 1.0, 1.0)
METHOD = ["--method", "richardson_lucy", "--iterations", "5", "--noise-sigma", "0.01"]


def write_volume(path: Path, gigabytes: float, chunk=(64, 512, 512)):
    """A tiled cell phantom, blurred and noisy, written slab by slab (never all in memory)."""
    import zarr

    lateral = 2048
    depth = int(np.ceil(gigabytes * 2**30 / (4 * lateral * lateral) / chunk[0]) * chunk[0])
    shape = (depth, lateral, lateral)
    z = zarr.open_array(str(path), mode="w", shape=shape, chunks=chunk, dtype="float32")
    kernel = dk.psf.gaussian(SIGMA)
    # one periodic block, blurred periodically, so that tiling it gives a seamless volume
    block = dk.simulate(dk.cell_phantom(chunk, seed=0), kernel, boundary="periodic",
                        sigma=0.01, seed=1).astype(np.float32)
    for start in range(0, depth, chunk[0]):
        for row in range(0, lateral, chunk[1]):
            for col in range(0, lateral, chunk[2]):
                z[start:start + chunk[0], row:row + chunk[1], col:col + chunk[2]] = block
    return shape


def run_cli(args):
    """Run the CLI in a child; return (seconds, peak RSS bytes of the child)."""
    # VmHWM: this process's own peak (ru_maxrss would include the parent's, inherited)
    code = ("import sys; from deconvkit.cli import main; rc = main(sys.argv[1:]); "
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]; "
            "print('PEAK', int(hwm.split()[1]) * 1024); sys.exit(rc)")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"deconvkit failed:\n{out.stderr}")
    peak = int(next(line.split()[1] for line in out.stdout.splitlines()
                    if line.startswith("PEAK")))
    return seconds, peak, out.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=4.0)
    parser.add_argument("--memory-limit", default="1.2GB")
    parser.add_argument("--keep", help="folder to keep the data in (default: a temporary one)")
    args = parser.parse_args()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="deconvkit-tiled-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        source = folder / "volume.zarr"
        start = time.perf_counter()
        shape = write_volume(source, args.gigabytes)
        size = np.prod(shape) * 4
        print(f"wrote {shape} float32 = {size / 2**30:.2f} GiB in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        psf = "gaussian:sigma=" + "x".join(str(s) for s in SIGMA)
        seconds, peak, said = run_cli(["deconvolve", str(source), "-o",
                                       str(folder / "restored.zarr"), "--psf", psf, *METHOD,
                                       "--memory-limit", args.memory_limit, "--overwrite",
                                       "-q"])
        # reference: the same method in memory on a 64x512x512 volume (64 MiB)
        small = folder / "small.tif"
        import zarr

        dk.io.write(small, zarr.open_array(str(source), mode="r")[:64, :512, :512],
                    overwrite=True)
        ref_seconds, ref_peak, _ = run_cli(["deconvolve", str(small), "-o",
                                            str(folder / "small_out.tif"), "--psf", psf,
                                            *METHOD, "--overwrite", "-q"])
        ref_voxels = 64 * 512 * 512
        print("\n| run | voxels | seconds | Mvoxel/s | peak RSS GiB |")
        print("|---|---|---|---|---|")
        print(f"| out-of-core {shape} | {np.prod(shape):.3g} | {seconds:.0f} | "
              f"{np.prod(shape) / seconds / 1e6:.1f} | {peak / 2**30:.2f} |")
        print(f"| in memory (64, 512, 512) | {ref_voxels:.3g} | {ref_seconds:.1f} | "
              f"{ref_voxels / ref_seconds / 1e6:.1f} | {ref_peak / 2**30:.2f} |")
        print(f"\nthroughput out-of-core / in memory: "
              f"{(np.prod(shape) / seconds) / (ref_voxels / ref_seconds):.2f}; "
              f"peak RSS {peak / 2**30:.2f} GiB (target < 2 GB) for "
              f"{size / 2**30:.2f} GiB on disk")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
