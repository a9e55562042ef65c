"""Super-resolution with the shipped models against antialiased bicubic.

Protocol: natural images shipped with scikit-image (never used in training:
the models learn from synthetic dead-leaves images only), luminance channel
(Y of YCbCr) in [0, 1], cropped to a multiple of the scale, downscaled with
antialiased bicubic (``deconvkit.nn.data.bicubic_downscale``), then upscaled
by bicubic interpolation and by the shipped model.  PSNR is measured away
from a border of ``scale`` pixels.  Also printed: ``checkerboard_spectrum``
of the model and of bicubic interpolation on the same inputs, and the CPU
time to upscale a 512x512 image (the shipped model on torch, and its ONNX
export on onnxruntime; bicubic timed in the same run).

Reference (published, natural-image training, Set5, Y channel): bicubic
33.66 / 30.39 dB at x2 / x3; FSRCNN 36.94 / 33.06 (+3.3 / +2.7 dB); ESPCN
x3 32.55 (91 images).  Target here: >= +1.5 dB over bicubic at x2.

    python benchmarks/sr.py              # also the models adapted to each photo (~15 min)
    python benchmarks/sr.py --adapt 0    # the shipped models alone (~1 min)

Other factors (1.5, 2.5, 4, 6): ``upscale`` chains the x2 and x3 models
(``model_passes``) and resizes to the exact size; printed against bicubic
with the chains the rule passed over.

With ``--adapt STEPS`` (default 500) the tables are printed again for the
models fine-tuned on each downscaled photo alone before upscaling it
(``upscale(..., adapt=STEPS)``, test-time adaptation; the truth is never
seen).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from skimage import color, data
from skimage.transform import resize

from deconvkit.nn import checkerboard_spectrum, export_onnx, training, upscale
from deconvkit.nn.data import bicubic_downscale
from deconvkit.nn.upscale import (
    _networks,
    _through,
    _torch_forward,
    model_passes,
    shipped_model,
    unit_range,
)


def luminance(rgb):
    return color.rgb2ycbcr(rgb)[..., 0] / 255.0


def images():
    """``deconvkit evaluate``'s photos and two more, luminance in [0, 1]."""
    return {**training._default_images(), "rocket": luminance(data.rocket()),
            "coins": data.coins() / 255.0}


def grainy_photos():
    """Other scikit-image photos, noisy or finely textured: where a model
    trained on clean synthetic images is most tempted to sharpen grain.  These
    (not the table above) chose the training grain and defocus levels
    (``sharp_noise``, ``sharp_blur``)."""
    return {"immuno": luminance(data.immunohistochemistry()),
            "retina": luminance(data.retina())[300:1100, 300:1100],
            "moon": data.moon() / 255.0, "brick": data.brick() / 255.0,
            "hubble": luminance(data.hubble_deep_field())[:512, :512],
            "clock": data.clock() / 255.0}


def bicubic_up(low, scale):
    return resize(low, tuple(round(n * scale) for n in low.shape), order=3, mode="reflect",
                  anti_aliasing=False)


@torch.no_grad()
def spectra(model_path, photos, scale):
    """``checkerboard_spectrum`` of a saved model and of bicubic interpolation,
    on the same low-resolution crops of ``photos``."""
    model = training.load(model_path)
    lows = np.stack([bicubic_downscale(photo[:240, :240], scale) for photo in photos.values()])
    x = torch.from_numpy(lows.astype(np.float32))[:, None]
    base = checkerboard_spectrum(lambda t: torch.nn.functional.interpolate(
        t, scale_factor=scale, mode="bicubic", align_corners=False), x, scale=scale)
    return checkerboard_spectrum(model, x, scale=scale), base


def other_factors():
    """Gains over bicubic at factors no model is trained for, by the chain
    ``upscale`` takes and by the chains it passes over."""
    forwards = {factor: _torch_forward(network, device)  # both shipped models
                for factor, (network, device) in _networks(None, 6, None).items()}
    for title, photos in (("benchmark photos", images()), ("grainy photos", grainy_photos())):
        print(f"  {title}:")
        for scale, others in ((1.5, [(3,)]), (2.5, [(3,)]), (4, [(2, 2)]), (6, [(2, 3)])):
            chains = [tuple(model_passes(scale, [2, 3])), *others]
            gains = {chain: [] for chain in chains}
            ratio = Fraction(scale)  # crop to whole low-resolution pixels
            for photo in photos.values():
                height, width = (n // ratio.numerator * ratio.numerator for n in photo.shape)
                truth = photo[:height, :width]
                low = resize(truth, (int(height / ratio), int(width / ratio)), order=3,
                             anti_aliasing=True, mode="reflect")
                inner = (slice(int(np.ceil(scale)), -int(np.ceil(scale))),) * 2
                base = psnr(truth[inner], bicubic_up(low, scale).clip(0, 1)[inner])
                stretched, offset, span = unit_range(low)  # as upscale does
                for chain in chains:
                    out = (upscale(low, scale) if chain == chains[0] else
                           _through(forwards, chain, stretched, truth.shape, 256, 48) * span
                           + offset)
                    gains[chain].append(psnr(truth[inner], out.clip(0, 1)[inner]) - base)
            cells = ", ".join(f"{'x'.join(map(str, c))}{' (chosen)' if c == chains[0] else ''} "
                              f"{np.mean(g):+.2f} (least {min(g):+.2f})"
                              for c, g in gains.items())
            print(f"    x{scale}: {cells}", flush=True)


def psnr(truth, image):
    return 10 * np.log10(1 / np.mean((truth - image) ** 2))


def adapted_tables(steps):
    """The gains over bicubic of the shipped models adapted to each photo."""
    for title, photos in (("benchmark photos", images()), ("grainy photos", grainy_photos())):
        for scale in (2, 3):
            start = time.perf_counter()
            rows = training.evaluate(shipped_model(scale), photos, adapt=steps)
            gains = [r["psnr"] - r["bicubic"] for r in rows]
            cells = " ".join(f"{r['image']} {g:+.2f}" for r, g in zip(rows, gains))
            print(f"  {title}, x{scale}: {cells}; mean {np.mean(gains):+.2f} "
                  f"({(time.perf_counter() - start) / len(rows):.0f} s a photo)", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--adapt", type=int, default=500, metavar="STEPS",
                        help="test-time adaptation steps for the second set of tables (0: skip)")
    args = parser.parse_args()
    photos = images()
    print(f"{'image':10s} {'scale':>5s} {'bicubic':>8s} {'model':>8s} {'gain':>7s}")
    gains = {}
    for scale in (2, 3):  # the protocol of `deconvkit evaluate`, on more photos
        for row in training.evaluate(shipped_model(scale), photos):
            gain = row["psnr"] - row["bicubic"]
            gains.setdefault(scale, []).append(gain)
            print(f"{row['image']:10s} {scale:5d} {row['bicubic']:8.2f} {row['psnr']:8.2f} "
                  f"{gain:+7.2f}")
    for scale, values in gains.items():
        print(f"mean gain over bicubic at x{scale}: {np.mean(values):+.2f} dB "
              f"(published FSRCNN on Set5: {'+3.28' if scale == 2 else '+2.67'} dB)")
    print(f"target x2 >= +1.5 dB: {'met' if np.mean(gains[2]) >= 1.5 else 'missed'}")

    print("\nGrainy and textured photos (gain over bicubic, dB):")
    for scale in (2, 3):
        rows = training.evaluate(shipped_model(scale), grainy_photos())
        cells = " ".join(f"{r['image']} {r['psnr'] - r['bicubic']:+.2f}" for r in rows)
        print(f"  x{scale}: {cells}; mean "
              f"{np.mean([r['psnr'] - r['bicubic'] for r in rows]):+.2f}")

    print("\ncheckerboard_spectrum (power at the stride harmonics / neighbours; ~1 = none):")
    for scale in (2, 3):
        ours, base = spectra(shipped_model(scale), photos, scale)
        print(f"  x{scale}: model {ours:.3f}, bicubic {base:.3f} -> "
              f"{'<= bicubic' if ours <= base else 'above bicubic'}")

    print("\nOther factors: the shipped models chained, then resized (mean gain over "
          "bicubic, dB, and the least over the photos):")
    other_factors()

    if args.adapt:
        print(f"\nAdapted to each photo ({args.adapt} steps of test-time adaptation; gain "
              "over bicubic, dB):")
        adapted_tables(args.adapt)

    image = data.camera()[:512, :512] / 255.0
    with tempfile.TemporaryDirectory() as folder:
        for scale in (2, 3):
            models = {"torch": None}
            if _has_onnxruntime():  # the same model exported, on onnxruntime
                models["onnxruntime"] = Path(folder) / f"x{scale}.onnx"
                export_onnx(training.load(shipped_model(scale)), models["onnxruntime"])
            for model in models.values():
                upscale(image[:64, :64], scale, model=model)  # load and warm up
            times = {}
            for _ in range(3):  # interleaved, the least of three: the machine is shared
                for name, model in models.items():
                    start = time.perf_counter()
                    upscale(image, scale, model=model)
                    seconds = time.perf_counter() - start
                    times[name] = min(times.get(name, seconds), seconds)
            start = time.perf_counter()
            bicubic_up(image, scale)
            reference = time.perf_counter() - start
            cells = ", ".join(f"{name} {seconds:.2f} s ({seconds / reference:.0f}x bicubic)"
                              for name, seconds in times.items())
            print(f"CPU time to upscale 512x512 by {scale}: {cells} "
                  f"({torch.get_num_threads()} threads; bicubic {reference:.3f} s)")


def _has_onnxruntime():
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
