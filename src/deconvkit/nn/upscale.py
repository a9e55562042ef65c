"""``upscale``: super-resolution with the shipped models, tiled for images of any size."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from .._validate import check_array
from .adapt import adapt as _adapt
from .training import _scale_of, load, resolve_device

__all__ = ["upscale", "shipped_model", "shipped_scales", "model_passes"]

WEIGHTS = Path(__file__).parent / "weights"


def shipped_scales() -> list[int]:
    """The factors of the shipped models."""
    return sorted(int(p.stem.split("_x")[1]) for p in WEIGHTS.glob("sr_x*.pt"))


def shipped_model(scale: int) -> Path:
    """Path of the model shipped for ``scale`` (its config sits beside it)."""
    path = WEIGHTS / f"sr_x{scale}.pt"
    if not path.is_file():
        raise ValueError(f"no model is shipped for scale={scale!r}; shipped scales: "
                         f"{shipped_scales()} (or pass model= a model.pt from deconvkit train)")
    return path


def _window(n: int, overlap: int, at_start: bool, at_end: bool) -> np.ndarray:
    """Blending weights along one tile axis.

    On a side shared with a neighbour the outer quarter of the overlap gets
    weight 0 (the network saw the tile's edge there), then a linear ramp
    over the middle half hands over to the neighbour.
    """
    # an image side (no neighbour) is at infinite distance: full weight even
    # in a tile narrower than the margin
    distance = np.minimum(np.arange(n) if not at_start else np.full(n, np.inf),
                          np.arange(n)[::-1] if not at_end else np.full(n, np.inf))
    margin = overlap / 4
    return np.clip((distance - margin + 0.5) / max(overlap - 2 * margin, 1), 0, 1)


def _starts(n: int, tile: int, overlap: int) -> list[int]:
    if n <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, n - tile, step)) + [n - tile]
    return sorted(set(starts))


def model_passes(scale: float, factors) -> list[int]:
    """The model factors that ``upscale`` chains to reach ``scale``.

    While more than 1 remains, the largest factor that does not exceed it is
    applied, or the smallest one when all do; the result is then resized
    down to the exact size.  A model asked for a larger factor than the
    image's own would sharpen what the downscaling did not blur: on
    ``benchmarks/sr.py``'s photos ×4 as ×3·×2 gained 0.92 dB over bicubic,
    as ×2·×2 0.69 dB, and ×1.5 through ×3 lost 0.77 dB where ×2 gained 0.38.

    >>> model_passes(4, [2, 3]), model_passes(2.5, [2, 3]), model_passes(1.5, [2, 3])
    ([3, 2], [2, 2], [2])
    """
    passes, remaining = [], float(scale)
    while remaining > 1 + 1e-9:
        fitting = [f for f in factors if f <= remaining * (1 + 1e-9)]
        factor = max(fitting) if fitting else min(factors)
        passes.append(factor)
        remaining /= factor
    return passes


def _networks(model, scale, device) -> dict:
    """``{factor: (network, device it runs on)}``: the given model, or the
    shipped ones that ``scale`` needs."""
    if model is None:
        factors = sorted(set(model_passes(scale, shipped_scales())))
        loaded = [load(shipped_model(f)) for f in factors]
    elif isinstance(model, torch.nn.Module):
        loaded = [model]  # put in eval mode for the pass, then back in its own
    else:
        loaded = [load(model)]
    networks = {}
    for network in loaded:
        here = next(network.parameters(), torch.empty(0)).device
        where = here if device is None else resolve_device(device, "device")
        if where != here:  # the caller's module stays where it was
            network = copy.deepcopy(network).to(where)
        networks[int(_scale_of(network))] = network, where
    return networks


def _torch_forward(network, device):
    """A (h, w) float32 tile -> the network's (h*s, w*s) output, as numpy."""
    @torch.no_grad()
    def forward(tile: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(tile)[None, None].to(device)
        if x.device.type == "cpu":  # 1.3-1.9x faster convolutions on the CPU (measured)
            x = x.to(memory_format=torch.channels_last)  # .contiguous keeps 1 channel
        return network(x)[0, 0].double().cpu().numpy()

    return forward


def _onnx_forward(path) -> dict:
    """``{factor: forward}`` of an ``.onnx`` model through onnxruntime, its
    factor measured on a small input."""
    try:
        import onnxruntime
    except ImportError:
        raise ImportError(f"{path} is an ONNX model: running it needs onnxruntime (pip "
                          "install 'deconvkit[onnx]')") from None
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own error types, for a file it cannot parse
        raise ValueError(f"cannot load {path} as an ONNX model: {exc}") from None
    name = session.get_inputs()[0].name

    def forward(tile: np.ndarray) -> np.ndarray:
        return session.run(None, {name: tile[None, None]})[0][0, 0].astype(float)

    side = forward(np.zeros((8, 8), np.float32)).shape[0]
    if side % 8 or side == 8:
        raise ValueError(f"{path}: an 8x8 input gave {side} rows, not a whole multiple of 8; "
                         "is it a super-resolution model?")
    return {side // 8: forward}


def _is_onnx(model) -> bool:
    return isinstance(model, (str, Path)) and str(model).lower().endswith(".onnx")


def _counting_on(progress, done):
    return None if progress is None else (lambda step: progress(done + step))


def _through(forwards, passes, plane, shape, tile, overlap) -> np.ndarray:
    """One plane through the chain of models, then resized to ``shape``."""
    for factor in passes:
        plane = _upscale_plane(forwards[factor], plane, factor, tile, overlap)
    if plane.shape != shape:
        from skimage.transform import resize

        plane = resize(plane, shape, order=3, mode="reflect", anti_aliasing=True)
    return plane


def unit_range(planes: np.ndarray):
    """``(stretched, low, span)``: each plane (of ``(..., H, W)``) mapped onto
    [0, 1] by its own range (``stretched * span + low`` undoes it), so that a
    plane is upscaled alike alone or in a stack.  The range is the 0.1th to
    99.9th percentile of at most 2**16 of the plane's samples, so a few hot
    pixels do not squeeze the rest into a sliver of it (their values go
    beyond 1); the minimum and maximum where those coincide.

    The models learnt intensities spanning [0, 1].  An image that spans less
    (a 12-bit camera's counts in uint16, a dim photo) was upscaled worse than
    by bicubic: measured on ``benchmarks/sr.py``'s photos stored as 12-bit
    counts in uint16, -0.03 and -0.19 dB at x2 (benchmark and grainy photos)
    and -1.21 and -6.05 at x3, against +0.81, +0.60, +0.83 and +1.36 stretched
    (by minimum and maximum; the README has the percentiles' figures).
    """
    flat = planes.reshape(planes.shape[:-2] + (-1,))
    samples = flat[..., ::max(1, flat.shape[-1] >> 16)]
    low, high = np.quantile(samples, [0.001, 0.999], axis=-1, keepdims=True)
    whole = high <= low  # a plane nearly constant but for a few samples
    low = np.where(whole, flat.min(axis=-1, keepdims=True), low)[..., None]
    high = np.where(whole, flat.max(axis=-1, keepdims=True), high)[..., None]
    span = np.where(high > low, high - low, 1.0)
    return (planes - low) / span, low, span


def _upscale_plane(forward, plane: np.ndarray, scale: int, tile: int,
                   overlap: int) -> np.ndarray:
    """One 2-D float plane through ``forward``, tile by tile, overlaps blended.

    The plane is first extended by mirror images of itself by the margin the
    blending drops at shared tile edges (a quarter of ``overlap``), so that
    the network's own zero padding never meets the image's sides: on a flat
    image the shipped x2 model's first output rows and columns had been up to
    1.6 % off (0.03 % inside).
    """
    margin = overlap // 4
    h, w = plane.shape
    inner = (slice(margin * scale, (margin + h) * scale),
             slice(margin * scale, (margin + w) * scale))
    return _tiles_through(forward, np.pad(plane, margin, mode="symmetric"), scale, tile,
                          overlap)[inner]


def _tiles_through(forward, plane: np.ndarray, scale: int, tile: int,
                   overlap: int) -> np.ndarray:
    h, w = plane.shape
    out = np.zeros((h * scale, w * scale))
    weight = np.zeros_like(out)
    rows, cols = _starts(h, tile, overlap), _starts(w, tile, overlap)
    for r in rows:
        for c in cols:
            piece = np.ascontiguousarray(plane[r:r + tile, c:c + tile], dtype=np.float32)
            y = forward(piece)
            wy = _window(y.shape[0], overlap * scale, r == rows[0], r == rows[-1])
            wx = _window(y.shape[1], overlap * scale, c == cols[0], c == cols[-1])
            blend = np.outer(wy, wx)
            window = (slice(r * scale, r * scale + y.shape[0]),
                      slice(c * scale, c * scale + y.shape[1]))
            out[window] += blend * y
            weight[window] += blend
    return out / weight


def upscale(image, scale: float = 2, *, model=None, tile: int = 256, overlap: int = 48,
            channel_axis: int | None = None, device: str | None = None, adapt: int = 0,
            progress=None):
    """Super-resolve ``image`` by ``scale`` with a learned model.

    Parameters
    ----------
    image : (H, W) or (H, W, C) array
        uint8, uint16 or float (taken as [0, 1] intensities).  An image whose
        last axis has 3 or 4 entries is colour unless ``channel_axis`` says
        otherwise; each channel goes through the model.
    scale : float > 1
        2 and 3 run the shipped models (trained by ``deconvkit train`` on
        synthetic dead-leaves images only; configs in ``deconvkit/nn/weights``)
        once.  Any other factor (1.5, 4, 2.5, ...) chains them, largest factor
        first that does not exceed what remains (4: ×3 then ×2), and resizes
        the result down to ``round(H * scale)`` by ``round(W * scale)`` with
        antialiased bicubic (see :func:`model_passes`).
    model : path or torch.nn.Module, optional
        A ``model.pt`` written by ``deconvkit train``, a module, or an
        ``.onnx`` file (``deconvkit nn export``; run by onnxruntime on the
        CPU, the ``onnx`` extra) instead; chained the same way when ``scale``
        is not its own.  ``benchmarks/sr.py`` timed the shipped x2 model
        over a 512x512 image at 0.26 s on torch and its export at 0.36 s on
        onnxruntime (x3: 0.23 against 0.45; 2 cores), so the shipped models
        stay on torch.
    tile, overlap : int
        Low-resolution tile side and overlap: memory stays bounded for any
        image size; a quarter of the overlap at each shared edge is dropped
        (12 pixels by default: the shipped models see at most 12
        low-resolution pixels around each output) and the rest blended with
        linear ramps, so tiles agree with a single pass.
    channel_axis : int, optional
        The colour axis of a 3-D ``image`` (default: the last, when it has
        1, 3 or 4 entries).
    device : str, optional
        Where the network runs: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``
        or ``"auto"`` (a CUDA GPU when torch sees one); the tiles travel there
        and back, so memory on the device stays one tile's.  Default: where a
        module passed as ``model`` is, else the CPU.  A module passed is
        never moved (a copy runs on another device) and is left in the
        training mode it was in (it runs in eval mode).
    adapt : int
        Steps of test-time adaptation (:func:`deconvkit.nn.adapt.adapt`):
        a copy of the model is first fine-tuned on the image's own
        downscaled crops, mixed with synthetic pairs, and the output is the
        mean of the adapted and the original model's.  0 (default): none.
        With 500 steps, ``benchmarks/sr.py``'s ×2 gain over bicubic went
        from +0.79 to +0.96 dB on its natural photos and from +0.79 to
        +0.94 on its grainy ones (brick lost 0.24 dB, moon 0.12), for 32-35 s
        a photo on two CPU cores (a 512×512 image without adaptation: 0.3-0.5 s).
    progress : callable, optional
        Called as ``progress(step)`` after each adaptation step (counting on
        through the models of a chain: ``adapt`` steps for each factor).

    Returns
    -------
    array of shape ``(round(H * scale), round(W * scale)[, C])``, the input's dtype (integers
    rounded and clipped to their range; floats are not clipped).

    Examples
    --------
    >>> import numpy as np
    >>> from deconvkit.nn import upscale
    >>> upscale(np.zeros((20, 30), dtype=np.uint8), 2).shape
    (40, 60)
    >>> upscale(np.zeros((20, 30), dtype=np.uint8), 1.5).shape
    (30, 45)
    """
    if np.ma.is_masked(image):  # np.asarray would drop the mask and use what it hides
        raise ValueError("image has masked samples, and upscale needs every sample: fill "
                         "them first (numpy.ma.filled, or deconvkit.deconvolve inpaints them)")
    image = np.asarray(image)
    if image.dtype.kind == "c" or image.dtype.kind not in "uif" or image.ndim not in (2, 3):
        raise ValueError(f"image must be a real 2-D grey or (H, W, C) colour array, got "
                         f"{image.dtype} of shape {image.shape}")
    if isinstance(overlap, bool) or not (isinstance(overlap, int) and overlap >= 0):
        raise ValueError(f"overlap must be an int >= 0, got {overlap!r}")
    if isinstance(tile, bool) or not (isinstance(tile, int) and tile > 2 * overlap):
        raise ValueError(f"tile must be an int larger than twice the overlap of {overlap} "
                         f"low-resolution pixels (> {2 * overlap}), got {tile!r}")
    if isinstance(adapt, bool) or not (isinstance(adapt, int) and adapt >= 0):
        raise ValueError(f"adapt must be a number of steps >= 0 (500 measured), got {adapt!r}")
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)) \
            or not np.isfinite(scale) or scale <= 1:
        raise ValueError(f"scale must be a number > 1 (2 and 3 are shipped), got {scale!r}")
    onnx = _is_onnx(model)
    if onnx and (adapt or device not in (None, "cpu")):
        raise ValueError(f"{model} is an ONNX model: it runs on the CPU as it is (no adapt, "
                         "no device); pass the model.pt for those")
    networks = {} if onnx else _networks(model, scale, device)
    if image.ndim == 3 and channel_axis is None:
        if image.shape[-1] not in (1, 3, 4):
            raise ValueError(f"image of shape {image.shape}: pass channel_axis for a colour "
                             "image (or a 2-D grey image)")
        channel_axis = -1
    if image.dtype.kind in "ui":
        limit = float(np.iinfo(image.dtype).max)
        planes = image.astype(np.float64) / limit
    else:
        limit = None
        planes = check_array(image, "image").astype(np.float64)
    planes = np.moveaxis(planes, channel_axis, 0) if image.ndim == 3 else planes[None]
    planes, low, span = unit_range(planes)
    if adapt:  # each model fine-tuned on the image itself, at its own factor
        networks = {factor: (_adapt(network, planes, factor, steps=adapt,
                                    progress=_counting_on(progress, i * adapt)), device)
                    for i, (factor, (network, device)) in enumerate(networks.items())}
    forwards = _onnx_forward(model) if onnx else {
        factor: _torch_forward(network, device) for factor, (network, device) in
        networks.items()}
    passes = model_passes(scale, sorted(forwards))
    shape = tuple(max(int(np.round(n * scale)), 1) for n in planes.shape[1:])
    modes = {factor: network.training for factor, (network, _) in networks.items()}
    try:
        for network, _ in networks.values():
            network.eval()
        result = np.stack([_through(forwards, passes, p, shape, tile, overlap)
                           for p in planes])
    finally:  # a module passed in is left in the mode it was in
        for factor, (network, _) in networks.items():
            network.train(modes[factor])
    result = result * span + low
    result = np.moveaxis(result, 0, channel_axis) if image.ndim == 3 else result[0]
    if limit is None:
        return result.astype(np.float32 if image.dtype != np.float64 else np.float64)
    return np.clip(np.rint(result * limit), 0, limit).astype(image.dtype)
