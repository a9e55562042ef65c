"""``deconvkit nn ...`` commands: inspect a saved model's upsamplers, draw the checkerboard demo."""

from __future__ import annotations

from pathlib import Path

import torch

from .diagnostics import checkerboard_index
from .layers import ResizeConv, SubPixelConv, TransposedConv, Upsample

UPSAMPLERS = (TransposedConv, ResizeConv, SubPixelConv, torch.nn.ConvTranspose1d,
              torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)


def upsampling_layers(model: torch.nn.Module):
    """(name, layer, checkerboard index) for every upsampling layer of ``model``."""
    rows = []
    for name, layer in model.named_modules():
        if isinstance(layer, Upsample):
            continue  # its inner layer is listed
        if isinstance(layer, UPSAMPLERS):
            stride = getattr(layer, "scale", None) or layer.stride
            scale = stride if isinstance(stride, int) else stride[0]
            if scale < 2:
                continue
            ndim = getattr(layer, "ndim", None) or (layer.weight.ndim - 2)
            index = checkerboard_index(layer, scale=scale, in_channels=layer.in_channels,
                                       ndim=ndim)
            rows.append((name or "(model)", layer, index))
    return rows


def load_model(path):
    """A model written by ``deconvkit train`` (the shipped ones too, also by their
    names ``x2`` and ``x3``; weights only, safe), or a whole module saved with
    ``torch.save(model, path)`` (a pickle: trusted files only)."""
    path = Path(path)
    if not path.exists() and str(path) in ("x2", "x3"):
        from .upscale import shipped_model

        path = Path(shipped_model(int(str(path)[1])))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a pickled module, or not a torch file at all: tried below
        saved = None
    if isinstance(saved, dict) and "config" in saved:
        from .training import load

        return load(path)
    try:
        model = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a bad file
        raise ValueError(f"cannot load {path} as a torch model: {exc}") from None
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a torch.nn.Module "
                         "(save the model itself with torch.save(model, path))")
    return model


def checkerboard_demo(out_dir, *, seed: int = 0):
    """The same DCGAN generator at initialisation with each upsampler: a figure and the indices."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .. import io as dkio
    from .models import DCGANGenerator

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    modes = ("transposed", "resize", "subpixel")
    z = torch.randn(1, 100, generator=torch.Generator().manual_seed(seed))
    fig, axes = plt.subplots(1, len(modes), figsize=(4 * len(modes), 4.4))
    summary = {}
    for ax, mode in zip(axes, modes):
        torch.manual_seed(seed)
        generator = DCGANGenerator(upsampler=mode, channels=1).eval()
        with torch.no_grad():
            image = generator(z)[0, 0].numpy()
        worst = max(index for _, _, index in upsampling_layers(generator))
        summary[mode] = worst
        ax.imshow(image, cmap="gray")
        ax.set_title(f"{mode}\nworst checkerboard index {worst:.2g}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("DCGAN generator at initialisation, same seed", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.9))  # leave room for the title
    target = out_dir / "checkerboard_demo.png"
    dkio.write_figure(target, fig, overwrite=True, dpi=90)  # the demo is redone in place
    return target, summary
