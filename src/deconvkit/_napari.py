"""napari plugin: restore an image layer (a known PSF, an estimated one, or
several views together), estimate its background, make a PSF layer, upscale,
open sample data.

The manifest (``napari.yaml`` beside this module, registered under the
``napari.manifest`` entry point) lists these functions; napari builds their
widgets from the signatures (magicgui), so nothing here imports napari or Qt:
the layer types are annotations only, and every function is plain numpy in,
layer data out, tested without a viewer.  ``pip install 'deconvkit[napari]'``.
"""

# no ``from __future__ import annotations``: magicgui builds the widgets from
# these annotations and resolves a string by importing it, so the choices of
# Annotated must be real objects; the napari types stay strings (napari is not
# a dependency of this module)
from typing import TYPE_CHECKING, Annotated

import numpy as np

from . import psf as psf_module
from ._deconvolve import METHODS, deconvolve
from .operators import BOUNDARIES

if TYPE_CHECKING:  # for napari, which resolves the string annotations
    import napari.types

#: the drop-downs' choices: "auto" first, then every method or boundary model
METHOD_CHOICES = ("auto", *METHODS)
BOUNDARY_CHOICES = ("auto", *BOUNDARIES)


def restore_layer(image: "napari.types.ImageData", psf: "napari.types.ImageData",
                  method: Annotated[str, {"choices": METHOD_CHOICES}] = "auto",
                  iterations: Annotated[int, {"min": 0, "max": 10000}] = 0,
                  boundary: Annotated[str, {"choices": BOUNDARY_CHOICES}] = "auto",
                  background: "napari.types.ImageData | None" = None,
                  ) -> "napari.types.LayerDataTuple":
    """Restore ``image`` blurred by ``psf`` with :func:`deconvkit.deconvolve`.

    ``iterations`` 0 leaves the count to the method's stopping rule.  A
    ``background`` layer (e.g. from the Background widget) is modelled by the
    methods that take one (total_variation, the automatic choice; wavelet,
    richardson_lucy(_tv), gold).  The result is a new
    image layer named after the method chosen, with what was chosen in its
    metadata.
    """
    if image is None or psf is None:
        raise ValueError("choose an image layer and a PSF layer (File > Open Sample > "
                         "deconvkit has both)")
    if method not in METHOD_CHOICES:
        raise ValueError(f"method={method!r} is not one of {', '.join(METHOD_CHOICES)}")
    options = {} if not iterations else {"iterations": int(iterations)}
    if background is not None:
        options["background"] = np.asarray(background, dtype=np.float64)
    kernel = np.asarray(psf, dtype=np.float64)
    image = np.asarray(image)
    colour = _colour_axis(image, kernel.ndim)
    restored, info = deconvolve(image, kernel, method=method, boundary=boundary,
                                channel_axis=colour, return_info=True, **options)
    if colour is not None:  # an RGB(A) layer: per channel
        metadata = dict(method=info[0].method, channels=[_chosen(i) for i in info])
    elif isinstance(info, list):  # a time series under a PSF of fewer dims: per time point
        metadata = dict(method=info[0].method, time_points=[_chosen(i) for i in info])
    else:
        metadata = dict(method=info.method, **_chosen(info))
    return (np.asarray(restored), {"name": f"restored ({metadata['method']})",
                                   "metadata": metadata}, "image")


def _colour_axis(image, spatial_ndim: int):
    """-1 for an RGB(A) layer, (H, W, 3 or 4) over a 2-D PSF, else None."""
    return -1 if image.ndim == spatial_ndim + 1 == 3 and image.shape[-1] in (3, 4) else None


def _chosen(info) -> dict:
    """What a restoration chose, as plain values for a layer's metadata."""
    parameters = {key: value for key, value in info.parameters.items()
                  if isinstance(value, (int, float, str, bool))}
    return dict(iterations=info.iterations, stopped_by=info.stopped_by, parameters=parameters)


def psf_layer(spec: str = "gaussian:sigma=2") -> "napari.types.LayerDataTuple":
    """A PSF from a generator spec (``gaussian:sigma=2``, ``gaussian:sigma=1x2x2,ndim=3``,
    ``disk:radius=4``, ``motion:length=15,angle=30``, ``widefield:...``; see
    :func:`deconvkit.psf.from_spec`) as an image layer."""
    kernel = psf_module.from_spec(spec)
    return (np.asarray(kernel), {"name": f"psf {spec}", "colormap": "magma"}, "image")


def background_layer(image: "napari.types.ImageData",
                     width: Annotated[int, {"min": 1, "max": 500}] = 15,
                     smooth: Annotated[int, {"min": 0, "max": 50}] = 3,
                     ) -> "napari.types.LayerDataTuple":
    """The background under an image's objects by SNIP clipping along every axis
    (:func:`deconvkit.spectra.snip_background`; ``width`` a little larger than
    the objects), for the Deconvolve widget's ``background``."""
    from .spectra import snip_background

    if image is None:
        raise ValueError("choose an image layer")
    image = np.asarray(image)
    # an RGB(A) layer: along its two sides, each channel on its own
    axes = (0, 1) if _colour_axis(image, 2) is not None else None
    estimate = snip_background(image, int(width), smooth=int(smooth), axis=axes)
    return (estimate, {"name": "background", "colormap": "gray", "visible": False}, "image")


def multiview_layer(view_a: "napari.types.ImageData", psf_a: "napari.types.ImageData",
                    view_b: "napari.types.ImageData", psf_b: "napari.types.ImageData",
                    iterations: Annotated[int, {"min": 0, "max": 10000}] = 0,
                    ) -> "napari.types.LayerDataTuple":
    """Two registered views of one object (a dual-view light sheet, diSPIM), each
    with its PSF, restored together (:func:`deconvkit.richardson_lucy_multiview`;
    ``iterations`` 0: the discrepancy stop)."""
    from .restoration import richardson_lucy_multiview

    if any(layer is None for layer in (view_a, psf_a, view_b, psf_b)):
        raise ValueError("choose both views and both PSFs")
    options = {} if not iterations else {"iterations": int(iterations)}
    restored, info = richardson_lucy_multiview(
        [np.asarray(view_a), np.asarray(view_b)],
        [np.asarray(psf_a, dtype=np.float64), np.asarray(psf_b, dtype=np.float64)],
        return_info=True, **options)
    return (np.asarray(restored), {"name": "fused (multiview)", "metadata": dict(
        iterations=info.iterations, stopped_by=info.stopped_by)}, "image")


def blind_layer(image: "napari.types.ImageData",
                psf_size: Annotated[int, {"min": 3, "max": 101, "step": 2}] = 25,
                method: Annotated[str, {"choices": ("map", "richardson_lucy", "parametric")}]
                = "map") -> "list[napari.types.LayerDataTuple]":
    """Estimate the PSF of ``image`` (a square/cubic support of ``psf_size``) with
    :func:`deconvkit.blind_deconvolve` and restore it: two new layers."""
    from .blind import blind_deconvolve

    if image is None:
        raise ValueError("choose an image layer")
    image = np.asarray(image)
    colour = _colour_axis(image, 2)  # an RGB(A) layer: a 2-D PSF for every channel
    spatial = image.ndim - (colour is not None)
    restored, kernel = blind_deconvolve(image, (int(psf_size),) * spatial, method=method,
                                        channel_axis=colour)
    return [(np.asarray(restored), {"name": f"restored (blind {method})"}, "image"),
            (np.asarray(kernel), {"name": "estimated psf", "colormap": "magma"}, "image")]


def upscale_layer(image: "napari.types.ImageData",
                  scale: Annotated[float, {"min": 1.25, "max": 8.0, "step": 0.25}] = 2.0,
                  ) -> "napari.types.LayerDataTuple":
    """Super-resolve a 2-D grey ``image`` (or each plane of a stack's last two axes)
    with the shipped models (:func:`deconvkit.nn.upscale`; needs torch): 2 and 3
    by one model, other factors by chaining them."""
    try:
        from .nn import upscale
    except ImportError:
        raise ImportError("upscaling needs torch: pip install 'deconvkit[torch]'") from None
    if image is None:
        raise ValueError("choose an image layer")
    image = np.asarray(image)
    if image.ndim < 2:
        raise ValueError(f"upscaling takes 2-D planes; this layer is {image.ndim}-D")
    if _colour_axis(image, 2) is not None:  # an RGB(A) layer: (H, W, C)
        return (upscale(image, scale), {"name": f"upscaled x{scale:g}"}, "image")
    planes = image.reshape((-1,) + image.shape[-2:])
    result = np.stack([upscale(plane, scale) for plane in planes])
    result = result.reshape(image.shape[:-2] + result.shape[-2:])
    return (result, {"name": f"upscaled x{scale:g}"}, "image")


def super_resolve_layer(frames: "napari.types.ImageData", psf: "napari.types.ImageData",
                        scale: Annotated[int, {"min": 1, "max": 8}] = 2,
                        motion: Annotated[str, {"choices": ("translation", "rigid")}]
                        = "translation",
                        total_variation: bool = True,
                        reject: Annotated[float, {"min": 0.0, "max": 100.0}] = 0.0,
                        bayer: Annotated[str, {"choices": ("none", "RGGB", "BGGR", "GRBG",
                                                           "GBRG")}] = "none",
                        ) -> "napari.types.LayerDataTuple":
    """One object on a grid ``scale`` times finer (:func:`deconvkit.super_resolve`)
    from a layer of frames stacked on its first axis (dithered exposures, a
    burst: one more axis than the PSF; registered as ``motion`` says: shifts,
    or turns and shifts of 2-D or 3-D frames) or one frame, with a PSF layer
    sampled on the fine grid; ``total_variation`` off: plain RL; ``reject`` > 0
    leaves out samples that many local noise levels off the fit (cosmic rays,
    hot and dead pixels, satellite trails);
    ``bayer``: the frames are raw mosaics behind that pattern (an RGB layer out)."""
    from .restoration import super_resolve

    if frames is None or psf is None:
        raise ValueError("choose a layer of frames and a PSF layer (on the fine grid)")
    frames, kernel = np.asarray(frames), np.asarray(psf, dtype=np.float64)
    stack = frames.ndim == kernel.ndim + 1
    if not stack and frames.ndim != kernel.ndim:
        raise ValueError(f"the frames layer is {frames.ndim}-D and the PSF {kernel.ndim}-D: "
                         "give one frame of the PSF's dims, or frames stacked on one more axis")
    restored, info = super_resolve(list(frames) if stack else frames, kernel, int(scale),
                                   motion=motion, tv_weight="auto" if total_variation else None,
                                   reject=float(reject) or None,
                                   bayer=None if bayer == "none" else bayer, return_info=True)
    info = info[0] if isinstance(info, list) else info  # the colours share their motion
    moves = {key: info.parameters[key] for key in ("shifts", "maps", "rejected")
             if key in info.parameters}
    metadata = dict(_chosen(info), **moves)
    return (np.asarray(restored), {"name": f"super-resolved x{int(scale)}",
                                   "metadata": metadata}, "image")


def deskew_layer(image: "napari.types.ImageData",
                 angle: Annotated[float, {"min": -89.0, "max": 89.0}] = 31.5,
                 z_step: Annotated[float, {"min": 0.001, "max": 100.0, "step": 0.01}] = 0.4,
                 pixel_size: Annotated[float, {"min": 0.001, "max": 100.0, "step": 0.001}]
                 = 0.104,
                 wedges_missing: bool = True,
                 psf: "napari.types.ImageData | None" = None,
                 ) -> "napari.types.LayerDataTuple":
    """Deskew a stage-scanned light-sheet stack (:func:`deconvkit.deskew`):
    ``angle`` the sheet's tilt to the scan (degrees), ``z_step`` the stage
    step and ``pixel_size`` the camera pixel (µm).  ``wedges_missing`` fills
    what no plane reaches with NaN, which Deconvolve's iterative methods
    leave out; the layer is scaled to its voxel size (Z: z_step·sin angle).
    With a ``psf`` layer (the objective's frame, planes z_step·sin angle
    apart) the stack is first restored in its raw frame
    (:func:`deconvkit.lightsheet.deconvolve_stage_scan`)."""
    from .lightsheet import deconvolve_stage_scan, deskew, deskewed_spacing

    if image is None:
        raise ValueError("choose an image layer: a (Z, Y, X) stack")
    image = np.asarray(image)
    geometry = dict(z_step=z_step, pixel_size=pixel_size,
                    fill=np.nan if wedges_missing else 0.0)
    if psf is None:
        result, name = deskew(image, angle, **geometry), "deskewed"
    else:
        result = deconvolve_stage_scan(image, np.asarray(psf, dtype=np.float64), angle,
                                       **geometry)
        name = "restored and deskewed"
    scale = (1.0,) * (image.ndim - 3) + (deskewed_spacing(angle, z_step, pixel_size),
                                         pixel_size, pixel_size)
    return (result, {"name": name, "scale": scale}, "image")


def sample_data() -> list:
    """The demo's blurred camera photo (15 px camera shake, 1 % noise) and its PSF."""
    from ._demo import image_case

    case = image_case()
    return [(case.observed, {"name": "blurred camera"}, "image"),
            (case.kernel, {"name": "camera-shake psf", "colormap": "magma"}, "image"),
            (case.truth, {"name": "truth", "visible": False}, "image")]


def sample_volume() -> list:
    """The demo's 3-D phantom under a widefield PSF (Poisson noise) and the PSF."""
    from ._demo import volume_case

    case = volume_case()
    return [(case.observed, {"name": "blurred phantom"}, "image"),
            (case.kernel, {"name": "widefield psf", "colormap": "magma"}, "image"),
            (case.truth, {"name": "truth", "visible": False}, "image")]
