"""The main job: simulate, restore and compare on bundled 1-D, 2-D and 3-D data."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import io as dkio
from . import metrics, psf
from ._deconvolve import deconvolve
from .simulation import cell_phantom, simulate

#: what the demo compares: the default, then the classics users know
DEMO_METHODS = ("auto", "richardson_lucy", "richardson_lucy_tv", "wiener")


@dataclass
class Case:
    name: str
    truth: np.ndarray  # the frame the camera sees
    observed: np.ndarray
    kernel: np.ndarray
    description: str


def _crop(scene, kernel):
    """The frame a "valid" blur of ``scene`` shows."""
    return scene[tuple(slice(k - 1 - k // 2, n - k // 2) for n, k in zip(scene.shape,
                                                                         kernel.shape))]


def image_case() -> Case:
    from skimage import data

    scene = data.camera().astype(np.float64) / 255.0
    kernel = psf.camera_shake(15, seed=4)
    observed = simulate(scene, kernel, noise="gaussian", sigma=0.01, boundary="valid", seed=1)
    return Case("camera", _crop(scene, kernel), observed, kernel,
                "scikit-image camera, 15 px camera shake, Gaussian noise 1%")


def volume_case() -> Case:
    kernel = psf.widefield((17, 33, 33), wavelength=0.52, na=1.2, n_immersion=1.33,
                           pixel_size=0.1, z_step=0.2)
    scene = cell_phantom((40, 96, 96), seed=0)
    observed = simulate(scene, kernel, noise="poisson", photons=300, boundary="valid", seed=2)
    return Case("phantom3d", _crop(scene, kernel), observed, kernel,
                "synthetic 3-D phantom, widefield PSF (NA 1.2 water), Poisson 300 photons")


def signal_case() -> Case:
    rng = np.random.default_rng(3)
    n = 1024
    scene = np.zeros(n)
    for _ in range(25):  # spikes and plateaus, like a spectrum or a seismic trace
        start = rng.integers(0, n - 40)
        if rng.random() < 0.6:
            scene[start] += rng.uniform(0.5, 1.0)
        else:
            scene[start:start + rng.integers(5, 40)] += rng.uniform(0.1, 0.4)
    kernel = psf.gaussian(4.0, ndim=1)
    observed = simulate(scene, kernel, noise="gaussian", sigma=0.005, boundary="valid", seed=4)
    return Case("signal1d", _crop(scene, kernel), observed, kernel,
                "1-D spike train and plateaus, Gaussian response sigma=4, noise 0.5%")


def _score(case: Case, estimate) -> tuple[float, float]:
    data_range = float(case.truth.max() - case.truth.min())
    return (metrics.psnr(case.truth, estimate, data_range=data_range),
            metrics.ssim(case.truth, estimate, data_range=data_range))


def run_demo(out_dir: Path, *, overwrite: bool = False, quiet: bool = False) -> list[dict]:
    """Run every case with every method, print a table, write files and a figure."""
    from rich.console import Console
    from rich.table import Table

    out_dir.mkdir(parents=True, exist_ok=True)
    console = Console(quiet=quiet, highlight=False)
    rows, restored = [], {}
    for make in (signal_case, image_case, volume_case):
        case = make()
        console.print(f"[bold]{case.name}[/]: {case.description}")
        psnr0, ssim0 = _score(case, case.observed)
        rows.append(dict(case=case.name, method="(blurred input)", psnr=psnr0, ssim=ssim0,
                         seconds=0.0))
        for method in DEMO_METHODS:
            start = time.perf_counter()
            estimate, info = deconvolve(case.observed, case.kernel, method=method,
                                        return_info=True)
            seconds = time.perf_counter() - start
            score = _score(case, estimate)
            label = f"auto ({info.method})" if method == "auto" else method
            rows.append(dict(case=case.name, method=label, psnr=score[0], ssim=score[1],
                             seconds=seconds, iterations=info.iterations))
            restored[case.name, method] = estimate
            suffix = ".csv" if estimate.ndim == 1 else ".tif"
            dkio.write(out_dir / f"{case.name}_{method}{suffix}", estimate.astype(np.float32),
                       overwrite=overwrite)
        if case.name == "camera":  # the same data with the PSF unknown, and with defects
            rows.append(_blind_row(case, out_dir, overwrite))
            rows.extend(_defect_rows(case, out_dir, overwrite))
        restored[case.name, "truth"] = case.truth
        restored[case.name, "observed"] = case.observed

    table = Table(title="deconvkit demo (default settings)")
    for column in ("case", "method", "PSNR dB", "SSIM", "iterations", "seconds"):
        table.add_column(column, justify="left" if column in ("case", "method") else "right")
    for row in rows:
        table.add_row(row["case"], row["method"], f"{row['psnr']:.2f}", f"{row['ssim']:.3f}",
                      str(row.get("iterations", "")), f"{row['seconds']:.2f}")
    console.print(table)
    figure = out_dir / "comparison.png"
    _figure(restored, figure, overwrite=overwrite)
    seconds = _blind_photo(out_dir, overwrite)
    console.print(f"[bold]clock[/]: scikit-image's real motion-blurred photo, PSF unknown: "
                  f"kernel estimated and image restored in {seconds:.1f} s")
    console.print(_super_resolution(out_dir, overwrite))
    console.print(f"wrote restored files, {figure} and {out_dir / 'blind.png'}")
    return rows


def _super_resolution(out_dir: Path, overwrite: bool) -> str:
    """Four frames of the camera photo, each binned 2 x 2 at another half-pixel
    phase (a dithered camera), restored onto the fine grid: a line for the report."""
    from skimage import data
    from skimage.transform import resize

    from .restoration import super_resolve

    scene = data.camera()[96:352, 128:384].astype(np.float64) / 255.0
    optics = psf.gaussian(1.0)
    sharp = simulate(scene, optics, noise="none")
    rng = np.random.default_rng(5)
    frames = [sharp[i:i + 254, j:j + 254].reshape(127, 2, 127, 2).mean(axis=(1, 3))
              + rng.normal(0, 0.01, (127, 127)) for i, j in ((0, 0), (1, 0), (0, 1), (1, 1))]
    start = time.perf_counter()
    fine, info = super_resolve(frames, optics, 2, return_info=True)  # shifts registered
    seconds = time.perf_counter() - start
    truth = scene[:254, :254]
    bicubic = resize(frames[0], truth.shape, order=3)
    dkio.write(out_dir / "camera_super_resolved.tif", fine.astype(np.float32),
               overwrite=overwrite)

    def score(estimate):
        return metrics.psnr(truth[4:-4, 4:-4], estimate[4:-4, 4:-4], data_range=1.0)

    return (f"[bold]super-resolution[/]: 4 frames of the camera binned 2 x 2 at half-pixel "
            f"phases (registered: {info.parameters['shifts'][3][0]:.2f}, "
            f"{info.parameters['shifts'][3][1]:.2f} for 0.5, 0.5) -> x2: {score(fine):.2f} dB "
            f"against {score(bicubic):.2f} for bicubic on one frame, in {seconds:.1f} s")


def _defect_rows(case: Case, out_dir: Path, overwrite: bool) -> list[dict]:
    """The camera data as a real detector gives them: the brightest 5 % clipped at
    its full well and 1 % hot pixels, restored taking them as data, then with the
    hot pixels marked missing (NaN) and the clipped ones as lower bounds."""
    level = float(np.quantile(case.observed, 0.95))
    recorded = np.minimum(case.observed, level)
    hot = np.random.default_rng(5).random(recorded.shape) < 0.01
    recorded[hot] = level
    marked = np.where(hot, np.nan, recorded)
    rows = []
    for label, data, options in (
            ("auto, defects as data", recorded, {}),
            ("auto, hot NaN + saturation", marked, dict(saturation=level))):
        start = time.perf_counter()
        estimate, info = deconvolve(data, case.kernel, return_info=True, **options)
        psnr, ssim = _score(case, estimate)
        rows.append(dict(case=case.name, method=label, psnr=psnr, ssim=ssim,
                         seconds=time.perf_counter() - start, iterations=info.iterations))
    dkio.write(out_dir / f"{case.name}_defects.tif", recorded.astype(np.float32),
               overwrite=overwrite)
    dkio.write(out_dir / f"{case.name}_defects_restored.tif", estimate.astype(np.float32),
               overwrite=overwrite)
    return rows


def _blind_row(case: Case, out_dir: Path, overwrite: bool) -> dict:
    from .blind import blind_deconvolve

    start = time.perf_counter()
    estimate, kernel, info = blind_deconvolve(case.observed, case.kernel.shape[0] + 4,
                                              return_info=True)
    seconds = time.perf_counter() - start
    dkio.write(out_dir / f"{case.name}_blind.tif", estimate.astype(np.float32),
               overwrite=overwrite)
    dkio.write(out_dir / f"{case.name}_blind_psf.tif", kernel.astype(np.float32),
               overwrite=overwrite)
    psnr, ssim = _score(case, estimate)
    return dict(case=case.name, method="blind map (PSF unknown)", psnr=psnr, ssim=ssim,
                seconds=seconds, iterations=info.restoration.iterations)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _blind_photo(out_dir: Path, overwrite: bool) -> float:
    """Blind restoration of a real photo: scikit-image's clock with horizontal motion."""
    from skimage import data

    from .blind import blind_deconvolve

    photo = dkio.read(Path(data.__file__).parent / "clock_motion.png").astype(np.float64) / 255
    start = time.perf_counter()
    restored, kernel = blind_deconvolve(photo, 55)  # the blur is about 45 px long
    seconds = time.perf_counter() - start
    dkio.write(out_dir / "clock_blind.tif", restored.astype(np.float32), overwrite=overwrite)
    dkio.write(out_dir / "clock_blind_psf.tif", kernel.astype(np.float32), overwrite=overwrite)
    fig, axes = _pyplot().subplots(1, 3, figsize=(13, 4), width_ratios=[4, 4, 1.6])
    for ax, shown, title in zip(axes, (photo, restored, kernel),
                                ("clock_motion.png (real blur)", "blind map restoration",
                                 "estimated PSF")):
        ax.imshow(shown, cmap="gray" if shown is not kernel else "magma")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    dkio.write_figure(out_dir / "blind.png", fig, overwrite=overwrite)
    return seconds


def _figure(restored: dict, path: Path, *, overwrite: bool) -> None:
    columns = ["truth", "observed", *DEMO_METHODS]
    cases = ["signal1d", "camera", "phantom3d"]
    fig, axes = _pyplot().subplots(len(cases), len(columns),
                                   figsize=(3.2 * len(columns), 9.5))
    for r, name in enumerate(cases):
        for c, column in enumerate(columns):
            ax = axes[r, c]
            data = np.asarray(restored[name, column])
            if data.ndim == 1:
                ax.plot(np.asarray(restored[name, "truth"]), color="0.7", lw=1)
                ax.plot(data, lw=0.8)
                ax.set_xlim(300, 700)
            else:
                shown = data[data.shape[0] // 2] if data.ndim == 3 else data  # focal plane
                ax.imshow(shown, cmap="gray")
                ax.set_xticks([])
                ax.set_yticks([])
            ax.set_title(f"{name}: {column}" if c == 0 else column, fontsize=9)
    fig.tight_layout()
    dkio.write_figure(path, fig, overwrite=overwrite)
