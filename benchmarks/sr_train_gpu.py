"""Train a larger x2 super-resolution model within a time budget (on a GPU) and
compare it with the shipped one, by the rules that chose the shipped recipes.

On 2 CPU cores every x2 recipe that trains in 20-60 minutes scored +0.5 to
+0.9 dB over bicubic on ``benchmarks/sr.py``'s photos (README); the issue asks
for +1.5.  This script spends a GPU's minutes on the same synthetic data with
EDSR closer to the paper's size:

1. draws the dead leaves in parallel (``data.workers``);
2. times ``--calibrate`` steps, then sets ``train.steps`` so that the run fits
   ``--minutes`` (the cosine schedule needs its length up front) and writes
   that config, so ``deconvkit train CONFIG`` reproduces the run;
3. trains with ``deconvkit.nn.training.train`` (checkpoints, metrics.csv);
4. prints, for the new model and the shipped one: the mean gain over bicubic
   on ``sr.py``'s photos and on its grainy photos, ``checkerboard_spectrum``
   against bicubic's, the CPU time to upscale 512x512, the file size, and the
   keep rule (benchmark gain up, grainy-photo gain not down, spectrum <=
   bicubic's).

    python benchmarks/sr_train_gpu.py --minutes 8 --out runs/x2_gpu
    python benchmarks/sr_train_gpu.py --smoke --out /tmp/x2_smoke   # tiny, on the CPU
"""

from __future__ import annotations

import argparse
import copy
import shutil
import time
from pathlib import Path

import numpy as np
import sr
import torch

from deconvkit.nn import training, upscale
from deconvkit.nn.upscale import shipped_model

# the shipped x2 recipe (its data, loss and upsampler), with a model and a run
# closer to EDSR's baseline (16 x 64)
LARGER = {"model": {"features": 64, "blocks": 8},
          "data": {"patch": 96, "items": 16000, "workers": 16},
          "train": {"batch_size": 32, "learning_rate": 5e-4, "validation_items": 64}}
SMOKE = {"model": {"features": 8, "blocks": 1}, "data": {"patch": 24, "items": 32, "workers": 2},
         "train": {"batch_size": 4, "validation_items": 4}}


def configured(smoke: bool, workers: int | None, device: str) -> dict:
    config = training.load_config(shipped_model(2).with_suffix(".toml"))
    for changes in (LARGER, SMOKE) if smoke else (LARGER,):
        for section, values in changes.items():
            config[section].update(values)
    if workers is not None:
        config["data"]["workers"] = workers
    config["train"]["device"] = device
    return training.load_config(config)


def steps_per_second(config: dict, out: Path, steps: int) -> float:
    """Training steps per second of this config here, over the second half of
    ``steps`` (the first half warms up; drawing the data is not timed)."""
    trial = copy.deepcopy(config)
    trial["data"]["items"] = min(config["data"]["items"], 50 * config["train"]["batch_size"])
    trial["train"].update(steps=steps, checkpoint_every=steps, validate_every=steps)
    stamps = []
    training.train(trial, out, resume=False,
                   progress=lambda step, total, loss: stamps.append(time.perf_counter()))
    half = len(stamps) // 2
    return (len(stamps) - 1 - half) / (stamps[-1] - stamps[half])


def report(name: str, model_path) -> dict:
    bench = [r["psnr"] - r["bicubic"] for r in training.evaluate(model_path, sr.images())]
    grainy = [r["psnr"] - r["bicubic"] for r in training.evaluate(model_path, sr.grainy_photos())]
    spectrum, bicubic = sr.spectra(model_path, sr.images(), 2)
    image = sr.data.camera()[:512, :512] / 255.0
    upscale(image[:64, :64], 2, model=model_path)
    start = time.perf_counter()
    upscale(image, 2, model=model_path)
    seconds = time.perf_counter() - start
    row = dict(bench=float(np.mean(bench)), grainy=float(np.mean(grainy)), spectrum=spectrum,
               bicubic_spectrum=bicubic, cpu_seconds=seconds,
               megabytes=Path(model_path).stat().st_size / 2**20)
    print(f"{name:8s} benchmark {row['bench']:+.2f} dB "
          f"[{' '.join(f'{v:+.2f}' for v in bench)}]  grainy {row['grainy']:+.2f} dB "
          f"[{' '.join(f'{v:+.2f}' for v in grainy)}]  spectrum {spectrum:.3f} "
          f"(bicubic {bicubic:.3f})  CPU 512x512 {seconds:.2f} s  {row['megabytes']:.2f} MB",
          flush=True)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="run folder")
    parser.add_argument("--minutes", type=float, default=8.0, help="training budget")
    parser.add_argument("--calibrate", type=int, default=200, help="steps timed first")
    parser.add_argument("--workers", type=int, default=None, help="data.workers")
    parser.add_argument("--device", default="auto", help="train.device")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny model and data: checks the script, figures mean nothing")
    args = parser.parse_args()
    config = configured(args.smoke, args.workers, args.device)
    device = training.resolve_device(args.device)
    print(f"device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
          flush=True)
    calibrate = 8 if args.smoke else args.calibrate
    speed = steps_per_second(config, args.out / "calibration", calibrate)
    shutil.rmtree(args.out / "calibration", ignore_errors=True)
    steps = max(int(speed * 60 * args.minutes), 8)
    config["train"].update(steps=steps, checkpoint_every=max(steps // 10, 1),
                           validate_every=max(steps // 10, 1))
    print(f"{speed:.1f} steps/s -> {steps} steps for {args.minutes} min", flush=True)
    start = time.perf_counter()
    model_path = training.train(config, args.out)
    print(f"trained in {time.perf_counter() - start:.0f} s -> {model_path} "
          f"(config {args.out / 'config.toml'}, metrics {args.out / 'metrics.csv'})", flush=True)
    new, shipped = report("new", model_path), report("shipped", shipped_model(2))
    keep = (new["bench"] > shipped["bench"] and new["grainy"] >= shipped["grainy"]
            and new["spectrum"] <= new["bicubic_spectrum"])
    print(f"keep rule (benchmark up, grainy not down, spectrum <= bicubic's): "
          f"{'met' if keep else 'not met'}; x2 target +1.5 dB: "
          f"{'met' if new['bench'] >= 1.5 else 'missed'}")


if __name__ == "__main__":
    main()
