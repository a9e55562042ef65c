"""Input checks shared by every public function: one clear error, named argument."""

from __future__ import annotations

import numpy as np

from ._array_api import array_namespace, as_float, blockwise, float_dtype, is_torch, to_numpy

# the solvers whose data term can leave out samples: NaN in the image marks them
MISSING_METHODS = ("total_variation", "richardson_lucy", "richardson_lucy_tv", "wavelet",
                   "landweber", "gold")
# NaN samples left out with boundary="valid" only (solved by cgls with a masked data term)
MISSING_VALID_ONLY = ("wiener",)
# the solvers that take saturated samples as lower bounds (saturation=)
SATURATION_METHODS = ("total_variation", "richardson_lucy", "richardson_lucy_tv")

__all__ = ["MISSING_METHODS", "MISSING_VALID_ONLY", "SATURATION_METHODS", "check_array",
           "check_channel_axis", "check_choice", "check_psf", "check_weight", "has_nan"]


def check_array(x, name: str, *, min_ndim: int = 1, missing: bool = False,
                missing_hint: bool = False):
    """Validate a real, finite, non-empty array and return it as working float.

    ``missing=True`` lets NaN through (samples with no data, see
    :data:`MISSING_METHODS`); ``missing_hint`` names those methods in the
    error for a restoration's image; infinities are always refused.  The input
    object is never modified: conversion makes a new array when the dtype
    changes, and no caller writes into the returned array in place unless it
    made the copy itself.
    """
    if isinstance(x, np.ma.MaskedArray):  # masked samples are missing data
        x = np.ma.filled(x.astype(np.result_type(x.dtype, np.float32)), np.nan) \
            if np.ma.is_masked(x) else np.ma.getdata(x)
    xp = array_namespace(x)
    if not is_torch(xp) and not hasattr(x, "shape"):
        try:
            x = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be an array, got {type(x).__name__}: {exc}") from None
    try:
        float_dtype(x)
    except TypeError as exc:
        raise TypeError(f"{name}: {exc}") from None
    if x.ndim < min_ndim:
        raise ValueError(f"{name} has {x.ndim} dims; it needs at least {min_ndim}")
    if any(n == 0 for n in x.shape):
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}); pass a non-empty array")
    x = as_float(x)
    # by blocks: no image-sized mask (a quarter of the image) for large inputs
    finite = blockwise(lambda block: bool(to_numpy(xp.isfinite(block).all())), x)
    if all(finite):
        return x
    infinite = _in_some_block(xp.isinf, x)
    if missing and not infinite:
        if not _in_some_block(xp.isfinite, x):
            raise ValueError(f"{name} is all NaN: no sample was observed")
        return x
    hint = "" if not missing_hint or infinite else (
        f" ({', '.join(MISSING_METHODS)} take NaN samples as missing data: bad or masked "
        "pixels)")
    raise ValueError(f"{name} contains {'Inf' if infinite else 'NaN'}; replace them "
                     f"(e.g. numpy.nan_to_num) first{hint}")


def has_nan(x) -> bool:
    """Whether ``x`` holds a NaN (a missing sample), checked by blocks."""
    return _in_some_block(array_namespace(x).isnan, x)


def _in_some_block(test, x) -> bool:
    """Whether the element-wise ``test`` holds anywhere in ``x``; by blocks, so no
    image-sized boolean array is made."""
    return any(blockwise(lambda block: bool(to_numpy(test(block).any())), x))


#: the methods that take a PSF longer than the image on some axis under the
#: "valid" boundary: they estimate the object beyond the image too, so the
#: light a thin stack receives from planes outside it is modelled, not cropped
LARGER_PSF_METHODS = ("richardson_lucy", "richardson_lucy_tv", "total_variation", "wavelet",
                      "landweber", "wiener", "tikhonov", "cgls")


def check_psf(psf, image_shape: tuple[int, ...] | None = None, *, name: str = "psf",
              positive_sum: bool = True, larger: bool = False, hint: str | None = None):
    """Validate a PSF against the (spatial) shape of the image it blurs;
    ``larger``: it may be longer than the image (a solver under the "valid"
    boundary, whose object domain is the image grown by the PSF); ``hint``:
    what to do about a longer one, in place of the general advice."""
    psf = check_array(psf, name)
    if positive_sum:
        total = float(to_numpy(psf.sum()))
        # relative to its magnitude: a kernel whose entries cancel (a high-pass
        # filter) would be divided by round-off when normalised to sum 1
        if not total > 1e-6 * float(to_numpy(abs(psf).sum())):
            raise ValueError(f"{name} sums to {total:g}; a PSF must have a positive sum "
                             "(it is normalised to 1)")
    if image_shape is not None:
        if psf.ndim > len(image_shape):
            raise ValueError(
                f"{name} has {psf.ndim} dims but image has {len(image_shape)}; "
                f"pass a {len(image_shape)}-D psf"
            )
        spatial = tuple(image_shape[-psf.ndim:])
        if not larger and any(k > n for k, n in zip(psf.shape, spatial)):
            raise ValueError(
                f"{name} shape {tuple(psf.shape)} is larger than the image {spatial}; " + (
                    hint or "crop the psf (deconvkit.psf.crop_or_pad), pad the image, or "
                    f"restore with boundary='valid' and one of {', '.join(LARGER_PSF_METHODS)}"
                    ", which model the light from beyond the image (a thin stack under a "
                    "taller PSF)")
            )
    return psf


def central_window(psf_shape, room) -> tuple[slice, ...]:
    """The slices of a PSF of ``psf_shape`` that fit ``room`` (its trailing
    axes): whole where it fits, else the odd length that does, about the
    centre sample (``K // 2`` lands on ``T // 2``, as in ``psf.crop_or_pad``)."""
    room = tuple(room)[max(0, len(room) - len(psf_shape)):]
    return tuple(slice(k // 2 - t // 2, k // 2 - t // 2 + t)
                 for k, n in zip(psf_shape, room) for t in [k if k <= n else n - 1 + n % 2])


def check_weight(value, name: str):
    """``"auto"`` as is, or a non-negative number as a float; else a clear error."""
    if isinstance(value, str) and value == "auto":
        return value
    if (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            and value >= 0):
        return float(value)
    raise ValueError(f"{name} must be a non-negative number or 'auto', got {value!r}")


def check_callback(callback, name: str = "callback"):
    """``None`` or a callable; else a clear error (Python's own, "'int' object is
    not callable", would come only after the first iteration)."""
    if callback is not None and not callable(callback):
        raise TypeError(f"{name} must be callable (or None), got {type(callback).__name__} "
                        f"{callback!r}")
    return callback


def check_choice(value, name: str, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of: {', '.join(map(repr, choices))}")
    return value


def check_channel_axis(channel_axis, image_ndim: int, psf_ndim: int):
    """Normalise ``channel_axis`` and check that the PSF matches the rest."""
    if channel_axis is None:
        return None
    if not isinstance(channel_axis, (int, np.integer)) or isinstance(channel_axis, bool):
        raise TypeError(f"channel_axis must be an int or None, got {channel_axis!r}")
    if not -image_ndim <= channel_axis < image_ndim:
        raise ValueError(f"channel_axis={channel_axis} is out of range for an image with "
                         f"{image_ndim} dims")
    if psf_ndim > image_ndim - 1:
        raise ValueError(f"with channel_axis set, the image has {image_ndim - 1} other dims "
                         f"but psf has {psf_ndim}; pass a psf of at most {image_ndim - 1} dims")
    # axes before the last psf_ndim of the rest (time points) are restored one by one
    return int(channel_axis) % image_ndim
