"""ONNX export with dynamic batch and spatial sizes, checked against onnxruntime.

Needs the ``onnx`` extra (``pip install 'deconvkit[onnx]'``: onnx, onnxscript
and onnxruntime).  Every layer of :mod:`deconvkit.nn` exports, and every model
but :class:`~deconvkit.nn.models.DeconvNet` (whose inference is FISTA with a
step computed from the input), in 1-D, 2-D and 3-D and under every boundary
model: the boundary extensions are slices
and concatenations, not index arrays built from the input's size, so
``torch.export`` keeps the sizes symbolic (an exported model takes any batch
and any image size, as tiled inference and dynamic-shape runtimes need).
"""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

__all__ = ["export_onnx"]

#: the example's spatial size per axis; the check also runs 8 samples larger
#: (multiples of 8: an encoder-decoder that halves three times takes both)
_SIZES = {1: 64, 2: 32, 3: 16}


def _input_layout(model: torch.nn.Module) -> tuple[int, int]:
    """(channels, spatial dims) of ``model``'s input, from its first convolution."""
    for module in model.modules():
        weight = getattr(module, "weight", None)
        channels = getattr(module, "in_channels", None)
        if isinstance(weight, torch.Tensor) and weight.ndim in (3, 4, 5) and channels:
            return int(channels), weight.ndim - 2
    raise ValueError("cannot tell the model's input channels and dimensions from its layers; "
                     "pass example= (a tensor shaped like its input)")


def export_onnx(model: torch.nn.Module, path, *, example: torch.Tensor | None = None,
                check: bool = True, tolerance: float = 1e-4, overwrite: bool = False) -> float:
    """Write ``model`` as an ONNX file whose batch and spatial sizes are dynamic.

    Parameters
    ----------
    model : torch.nn.Module
        Exported in eval mode (for its normalisation layers) on the CPU; the
        module itself is left as it was (its mode restored, a copy moved if it
        is on another device).
    path : str or Path
        The ``.onnx`` file, written atomically (a temporary sibling renamed
        into place once the check has passed).
    example : tensor, optional
        An input of the model's layout ``(N, C, *spatial)`` (or ``(N, C)``:
        then only the batch is dynamic); by default a random one with two
        items and the channels and dimensions of the model's first
        convolution (64 samples in 1-D, 32x32 in 2-D, 16^3 in 3-D), or
        ``(2, latent)`` for a model with a ``latent`` size such as
        :class:`~deconvkit.nn.models.DCGANGenerator`.
    check : bool
        Run the exported file with onnxruntime on the example and on an
        input of another batch and spatial size (8 more samples per axis),
        and compare with the model's own outputs.
    tolerance : float
        Largest difference accepted by the check, relative to the largest
        output value (or absolute, below 1).
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    float
        The largest difference the check measured (NaN without a check).

    Raises
    ------
    ImportError
        onnx, onnxscript or (with ``check``) onnxruntime is missing.
    ValueError
        The check found the outputs differ by more than ``tolerance``.
    """
    try:
        import onnx  # noqa: F401  (torch's exporter needs onnx and onnxscript)
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"ONNX export needs onnx and onnxscript ({exc.name} is missing): "
                          "pip install 'deconvkit[onnx]'") from None
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise ValueError(f"{path}: an ONNX model's file ends in .onnx")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: no such folder")
    if any(t.device.type != "cpu" for t in (*model.parameters(), *model.buffers())):
        model = copy.deepcopy(model).to("cpu")  # the caller's module stays where it is
    training = model.training
    model.eval()
    try:
        return _export(model, path, example, check, tolerance)
    finally:
        model.train(training)  # the caller's module is left in the mode it was in


def _export(model, path: Path, example, check: bool, tolerance: float) -> float:
    from .. import io as dkio

    seeded = torch.Generator().manual_seed(0)
    if example is None and isinstance(getattr(model, "latent", None), int):
        example = torch.randn(2, model.latent, generator=seeded)  # a generator's z
    elif example is None:
        channels, ndim = _input_layout(model)
        example = torch.rand(2, channels, *(_SIZES[ndim],) * ndim, generator=seeded)
    if not isinstance(example, torch.Tensor) or example.ndim not in (2, 3, 4, 5):
        raise ValueError("example must be a tensor shaped (N, C, *spatial) with 0 to 3 "
                         "spatial axes")
    example = example.detach().to("cpu", torch.float32)
    dynamic = {axis: torch.export.Dim.DYNAMIC for axis in range(example.ndim) if axis != 1}
    # the exporter's notes on its own internals (warnings, and log lines such as
    # "torchvision is not installed") are not the user's business
    notes = logging.getLogger("torch.onnx")
    level = notes.level
    notes.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(model, (example,), dynamo=True, verbose=False,
                                        dynamic_shapes=(dynamic,))
    finally:
        notes.setLevel(level)
    serialized = program.model_proto.SerializeToString()
    difference = _check(model, serialized, example, tolerance) if check else float("nan")
    dkio._atomic(path, lambda tmp: tmp.write_bytes(serialized))
    return difference


def _check(model, serialized: bytes, example: torch.Tensor, tolerance: float) -> float:
    """Largest |onnxruntime - torch| over the example and a resized input."""
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("the export check needs onnxruntime: pip install 'deconvkit[onnx]', "
                          "or pass check=False") from None
    session = onnxruntime.InferenceSession(serialized, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    other = torch.rand(1 if example.shape[0] > 1 else 2, example.shape[1],
                       *(n + 8 for n in example.shape[2:]),
                       generator=torch.Generator().manual_seed(1))
    worst = 0.0
    for x in (example, other):
        with torch.no_grad():
            expected = model(x).numpy()
        got = session.run(None, {name: x.numpy()})[0]
        if got.shape != expected.shape:
            raise ValueError(f"the ONNX model gives shape {got.shape} for input "
                             f"{tuple(x.shape)}, torch {expected.shape}")
        difference = float(np.abs(got - expected).max())
        if difference > tolerance * max(1.0, float(np.abs(expected).max())):
            raise ValueError(f"the ONNX model differs from torch by {difference:.3g} on input "
                             f"{tuple(x.shape)}; not written")
        worst = max(worst, difference)
    return worst
