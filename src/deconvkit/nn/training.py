"""Training and evaluation driven by a config file (TOML or YAML), resumable.

A run writes into one folder:

* ``checkpoint.pt`` — model, optimiser, step; written atomically every
  ``checkpoint_every`` steps, so a killed run resumes where it stopped and
  ends with exactly the weights an uninterrupted run gets (batches are a
  function of the step number, not of a random stream);
* ``metrics.csv`` — step, training loss, validation PSNR of the model and of
  bicubic interpolation;
* ``model.pt`` and ``config.toml`` — the final weights (a state dict, no
  pickled code) and the config that produced them; :func:`load` rebuilds the model.

Example config (every key has a default except ``model.name`` and ``model.scale``)::

    [model]
    name = "FSRCNN"         # or "ESPCN", "EDSR"; other keys are its constructor's
    upsampler = "subpixel"
    scale = 2
    residual = true         # learn the difference to bicubic upsampling

    [data]
    patch = 96
    items = 4000            # dead-leaves training images (cached in memory)
    count = 150             # discs per image, radii from min_radius up
    min_radius = 1.5
    supersample = 2         # draw 2x larger and downscale: antialiased edges
    degradation = "bicubic"
    noise = 0.0
    sharp_blur = 0.0        # defocus of the sharp image (max Gaussian sigma, per item)
    sharp_noise = 0.0       # grain added to the sharp image (max sigma, per item)
    texture = 0.0           # leaves' textures (max amplitude, per leaf)
    rectangles = 0.0        # fraction of leaves drawn as rectangles instead of discs
    seed = 0
    workers = 1             # processes that draw the items (the same items for any count)

    [train]
    steps = 4000
    batch_size = 16
    learning_rate = 1e-3
    loss = "mse"            # or "l1" (EDSR's choice)
    device = "auto"         # a CUDA GPU if torch sees one, else the CPU; or "cpu", "cuda:1"
    seed = 0
    checkpoint_every = 500
    validate_every = 500
    validation_items = 32
"""

from __future__ import annotations

import copy
import csv
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..metrics import psnr
from . import models as _models
from .data import DegradedDataset

__all__ = ["DEFAULTS", "ResidualSR", "build_model", "evaluate", "load", "load_config",
           "resolve_device", "train"]

DEFAULTS = {
    "model": {"residual": True},
    "data": {"patch": 96, "items": 4000, "degradation": "bicubic", "noise": 0.0,
             "sharp_blur": 0.0, "sharp_noise": 0.0, "texture": 0.0, "rectangles": 0.0,
             "count": 150, "min_radius": 1.5,
             "supersample": 2, "seed": 0, "workers": 1},
    "train": {"steps": 4000, "batch_size": 16, "learning_rate": 1e-3, "loss": "mse",
              "device": "auto", "seed": 0,
              "checkpoint_every": 500, "validate_every": 500, "validation_items": 32},
}
MODELS = {"EDSR": _models.EDSR, "ESPCN": _models.ESPCN, "FSRCNN": _models.FSRCNN}
LOSSES = {"mse": nn.functional.mse_loss, "l1": nn.functional.l1_loss}


class ResidualSR(nn.Module):
    """``bicubic(x) + network(x)``: the network learns only the missing detail.

    Shape
    -----
    ``(N, C, H, W) -> (N, C, H * scale, W * scale)``.
    """

    def __init__(self, network: nn.Module, scale: int):
        super().__init__()
        self.network, self.scale = network, scale

    def forward(self, x):
        base = nn.functional.interpolate(x, scale_factor=self.scale, mode="bicubic",
                                         align_corners=False)
        return base + self.network(x)


# ------------------------------------------------------------------ config
def load_config(source) -> dict:
    """A config from a ``.toml`` / ``.yaml`` file or a dict, merged over :data:`DEFAULTS`."""
    if isinstance(source, dict):
        raw = copy.deepcopy(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such config file")
        if path.suffix.lower() == ".toml":
            import tomllib

            with open(path, "rb") as f:
                try:
                    raw = tomllib.load(f)
                except tomllib.TOMLDecodeError as exc:
                    raise ValueError(f"{path}: not valid TOML: {exc}") from None
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            try:
                raw = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as exc:
                raise ValueError(f"{path}: not valid YAML: {exc}") from None
        else:
            raise ValueError(f"{path}: a config is a .toml or .yaml file")
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: a config is a table of sections (model, data, train)")
    unknown = set(raw) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown config section(s) {sorted(unknown)}; use "
                         f"{', '.join(DEFAULTS)}")
    for section, values in raw.items():
        if not isinstance(values, dict):
            raise ValueError(f"config section {section} must be a table of keys, got "
                             f"{values!r}")
    config = {section: {**DEFAULTS[section], **raw.get(section, {})} for section in DEFAULTS}
    model = config["model"]
    if model.get("name") not in MODELS:
        raise ValueError(f"model.name must be one of {', '.join(MODELS)}, got "
                         f"{model.get('name')!r}")
    if not isinstance(model.get("scale"), int) or model["scale"] < 2:
        raise ValueError(f"model.scale must be an int >= 2, got {model.get('scale')!r}")
    for section in ("data", "train"):
        unknown = set(config[section]) - set(DEFAULTS[section])
        if unknown:
            raise ValueError(f"unknown {section} key(s) {sorted(unknown)}; use "
                             f"{', '.join(DEFAULTS[section])}")
    counts = {"data": ("patch", "items", "count", "supersample", "workers"),
              "train": ("steps", "batch_size", "checkpoint_every", "validate_every",
                        "validation_items")}
    for section, keys in counts.items():
        for key in keys:
            value = config[section][key]
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"{section}.{key} must be an int >= 1, got {value!r}")
    train = config["train"]
    if not (isinstance(train["learning_rate"], (int, float)) and train["learning_rate"] > 0):
        raise ValueError(f"train.learning_rate must be > 0, got {train['learning_rate']!r}")
    if not (isinstance(train["loss"], str) and train["loss"] in LOSSES):
        raise ValueError(f"train.loss must be one of {', '.join(LOSSES)}, got {train['loss']!r}")
    _parse_device(train["device"])  # a typo fails here; availability is checked when training
    if not isinstance(model["residual"], bool):
        raise ValueError(f"model.residual must be true or false, got {model['residual']!r}")
    for section in ("data", "train"):
        seed = config[section]["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"{section}.seed must be an int >= 0, got {seed!r}")
    try:  # the data's own checks (cheap: nothing is drawn), named as config keys
        degraded_dataset(config)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config [data]: {exc}") from None
    return config


def _parse_device(name, what: str = "train.device") -> torch.device | None:
    """``train.device`` (or another argument ``what``) as a torch device, None for ``"auto"``."""
    if name == "auto":
        return None
    try:
        if not isinstance(name, str):
            raise TypeError
        return torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"{what} must be \"auto\", \"cpu\", \"cuda\", \"cuda:N\" or "
                         f"\"mps\", got {name!r}") from None


def resolve_device(name, what: str = "train.device") -> torch.device:
    """The device ``train.device`` names; ``"auto"``: the first CUDA GPU that
    torch sees, else the CPU.  A named accelerator torch cannot use is an error,
    not a silent run on the CPU."""
    device = _parse_device(name, what)
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda" and not (torch.cuda.is_available()
                                      and (device.index or 0) < torch.cuda.device_count()):
        raise ValueError(f"{what}={name!r}, but torch {torch.__version__} sees "
                         f"{torch.cuda.device_count()} CUDA GPU(s); use \"auto\" or \"cpu\"")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{what}={name!r}, but this torch has no MPS backend; "
                         "use \"auto\" or \"cpu\"")
    return device


def build_model(config: dict) -> nn.Module:
    """The model a config describes (weights at initialisation)."""
    options = {k: v for k, v in config["model"].items() if k not in ("name", "residual")}
    name = config["model"]["name"]
    try:
        network = MODELS[name](**options)
    except (TypeError, ValueError, RuntimeError) as exc:  # bad sizes reach torch's layers
        raise ValueError(f"model {name} with {options}: {exc}") from None
    if config["model"].get("residual"):
        return ResidualSR(network, config["model"]["scale"])
    return network


def _to_toml(config: dict) -> str:
    lines = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            shown = str(value).lower() if isinstance(value, bool) else repr(value) \
                if not isinstance(value, str) else f'"{value}"'
            lines.append(f"{key} = {shown}")
        lines.append("")
    return "\n".join(lines)


def _atomic_save(obj, path: Path) -> None:
    """torch.save through the library's atomic writer: a killed run leaves the old file."""
    from ..io import _atomic

    _atomic(Path(path), lambda tmp: torch.save(obj, tmp))


# ------------------------------------------------------------------ data
def degraded_dataset(config: dict, *, seed_offset: int = 0,
                     items: int | None = None) -> DegradedDataset:
    """The :class:`DegradedDataset` a config's ``[data]`` section (and model
    scale) describes; ``seed_offset`` draws another set of the same kind."""
    data = config["data"]
    return DegradedDataset(items or data["items"], patch=data["patch"],
                           scale=config["model"]["scale"], noise=data["noise"],
                           degradation=data["degradation"], count=data["count"],
                           min_radius=data["min_radius"], supersample=data["supersample"],
                           sharp_blur=data["sharp_blur"], sharp_noise=data["sharp_noise"],
                           texture=data["texture"], rectangles=data["rectangles"],
                           seed=data["seed"] + seed_offset)


class _CachedData:
    """The training set, generated once: dead leaves are cheap but not free."""

    def __init__(self, config: dict, *, seed_offset: int = 0, items: int | None = None):
        self.dataset = degraded_dataset(config, seed_offset=seed_offset, items=items)
        self.cache: dict[int, tuple] = {}
        if config["data"]["workers"] > 1:
            self._draw_all(config["data"]["workers"])

    def _draw_all(self, workers: int):
        """Every item, drawn by ``workers`` processes (each item is seeded by its
        index, so the set is the same as one process draws)."""
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        n = len(self.dataset)
        chunks = [range(start, min(start + 64, n)) for start in range(0, n, 64)]
        # spawned, not forked: a fork of a process running torch's thread pool can hang
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            for chunk, pairs in zip(chunks, pool.map(_draw_items, [self.dataset] * len(chunks),
                                                     chunks)):
                for index, (low, high) in zip(chunk, pairs):
                    self.cache[index] = (torch.from_numpy(low), torch.from_numpy(high))

    def __len__(self):
        return len(self.dataset)

    def item(self, index: int):
        if index not in self.cache:
            self.cache[index] = self.dataset[index]
        return self.cache[index]

    def batch(self, indices):
        pairs = [self.item(i) for i in indices]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def _draw_items(dataset, indices):
    """Items as numpy pairs (a pool worker's job; tensors would travel as
    shared-memory handles, one file descriptor each)."""
    return [tuple(t.numpy() for t in dataset[i]) for i in indices]


def _batch_indices(step: int, batch_size: int, items: int, seed: int):
    """The items of a step: a fixed permutation per epoch, so resuming needs no RNG state."""
    per_epoch = max(items // batch_size, 1)
    epoch, position = divmod(step, per_epoch)
    order = np.random.default_rng((seed, epoch)).permutation(items)
    return order[position * batch_size:(position + 1) * batch_size].tolist()


def _psnr(estimate, truth) -> float:
    """PSNR of an estimate clipped to the [0, 1] range images are displayed in."""
    return psnr(truth.numpy(), estimate.clamp(0, 1).numpy(), data_range=1.0)


@torch.no_grad()
def _validate(model, validation: _CachedData, device) -> tuple[float, float]:
    low, high = validation.batch(range(len(validation)))
    model.eval()
    estimate = model(low.to(device)).cpu()
    model.train()
    scale = high.shape[-1] // low.shape[-1]
    bicubic = nn.functional.interpolate(low, scale_factor=scale, mode="bicubic",
                                        align_corners=False)
    return _psnr(estimate, high), _psnr(bicubic, high)


# ------------------------------------------------------------------ train
def train(config, out_dir, *, resume: bool = True, progress=None, stop_after: int | None = None):
    """Train the model a config describes; returns the path of ``model.pt``.

    Parameters
    ----------
    config : path or dict
    out_dir : path
        Run folder (created); an existing ``checkpoint.pt`` there is resumed
        when ``resume`` is true.
    progress : callable, optional
        ``progress(step, steps, loss)`` after every step.
    stop_after : int, optional
        Stop (with a checkpoint) after this many steps of this call: for
        tests and for splitting a run over sessions.
    """
    config = load_config(config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = config["train"]
    device = resolve_device(settings["device"])
    torch.manual_seed(settings["seed"])
    model = build_model(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings["steps"])
    step = 0
    checkpoint = out_dir / "checkpoint.pt"
    if resume and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step = state["step"]
    loss_of = LOSSES[settings["loss"]]
    data = _CachedData(config)
    validation = _CachedData(config, seed_offset=10_000, items=settings["validation_items"])
    log = out_dir / "metrics.csv"
    if step == 0 or not log.exists():
        log.write_text("step,loss,psnr,bicubic_psnr,seconds\n")
    (out_dir / "config.toml").write_text(_to_toml(config))

    def save_checkpoint():
        _atomic_save({"model": _on_cpu(model.state_dict()),
                      "optimizer": _on_cpu(optimizer.state_dict()),
                      "schedule": schedule.state_dict(), "step": step}, checkpoint)

    start, done_here, running = time.perf_counter(), 0, []
    model.train()
    while step < settings["steps"]:
        low, high = data.batch(_batch_indices(step, settings["batch_size"], len(data),
                                              settings["seed"]))
        loss = loss_of(model(low.to(device)), high.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        step += 1
        done_here += 1
        running.append(loss.item())
        if progress is not None:
            progress(step, settings["steps"], running[-1])
        last = step == settings["steps"]
        if step % settings["validate_every"] == 0 or last:
            psnr, bicubic = _validate(model, validation, device)
            with open(log, "a", newline="") as f:
                csv.writer(f).writerow([step, f"{np.mean(running):.6f}", f"{psnr:.3f}",
                                        f"{bicubic:.3f}", f"{time.perf_counter() - start:.1f}"])
            running = []
        if step % settings["checkpoint_every"] == 0 or last:
            save_checkpoint()
        if stop_after is not None and done_here >= stop_after:
            save_checkpoint()
            return None
    target = out_dir / "model.pt"
    _atomic_save({"config": config, "state_dict": _on_cpu(model.state_dict())}, target)
    return target


def _on_cpu(state):
    """A state dict (nested) with its tensors on the CPU: files that load anywhere."""
    if isinstance(state, torch.Tensor):
        return state.cpu()
    if isinstance(state, dict):
        return {key: _on_cpu(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_on_cpu(value) for value in state)
    return state


def load(path) -> nn.Module:
    """A model saved by :func:`train` (weights only: safe to load), in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises many types for a file that is not its own
        saved = None
    if not isinstance(saved, dict) or "config" not in saved:
        raise ValueError(f"{path} is not a model written by deconvkit train")
    model = build_model(load_config(saved["config"]))
    model.load_state_dict(saved["state_dict"])
    return model.eval()


def evaluate(model_path, images=None, adapt: int = 0) -> list[dict]:
    """PSNR of a trained model against bicubic on images (default: scikit-image's).

    Each image (grey, in [0, 1]) is downscaled with :func:`bicubic_downscale`,
    then upscaled by the model (its range stretched to [0, 1] and back, as
    :func:`deconvkit.nn.upscale` does) and by bicubic interpolation; PSNR is measured
    on the frame both cover, away from a border of ``scale`` pixels.  With
    ``adapt`` > 0 the model is first fine-tuned for that many steps on each
    downscaled image alone (:func:`deconvkit.nn.adapt.adapt`; the truth is
    never seen).
    """
    from .adapt import adapt as adapt_to
    from .data import bicubic_downscale
    from .upscale import unit_range

    model = load(model_path)
    scale = _scale_of(model)
    if images is None:
        images = _default_images()
    rows = []
    for name, image in images.items():
        height, width = (n // scale * scale for n in image.shape)
        truth = image[:height, :width]
        low = bicubic_downscale(truth, scale)
        x = torch.from_numpy(low.astype(np.float32))[None, None]
        stretched, offset, span = unit_range(low)  # as upscale feeds the model
        network = adapt_to(model, [stretched], scale, steps=adapt) if adapt else model
        with torch.no_grad():
            ours = network(torch.from_numpy(stretched.astype(np.float32))[None, None])
        ours = (ours[0, 0].numpy() * span + offset).clip(0, 1)
        base = nn.functional.interpolate(x, scale_factor=scale, mode="bicubic",
                                         align_corners=False)[0, 0].numpy().clip(0, 1)
        inner = (slice(scale, -scale),) * 2
        rows.append(dict(image=name, psnr=psnr(truth[inner], ours[inner], data_range=1.0),
                         bicubic=psnr(truth[inner], base[inner], data_range=1.0)))
    return rows


def _scale_of(model) -> int:
    return model.scale if hasattr(model, "scale") else model.network.scale


def _default_images() -> dict:
    from skimage import color, data

    return {"camera": data.camera() / 255.0,
            "astronaut": color.rgb2ycbcr(data.astronaut())[..., 0] / 255.0,
            "coffee": color.rgb2ycbcr(data.coffee())[..., 0] / 255.0,
            "chelsea": color.rgb2ycbcr(data.chelsea())[..., 0] / 255.0}
