"""The napari plugin's functions and manifest (no viewer, no Qt needed)."""

import importlib
from pathlib import Path

import numpy as np
import pytest

import deconvkit
import deconvkit as dk
from deconvkit import _napari, metrics


def test_manifest_commands_resolve():
    # read as napari's npe2 does (its pytest plugin breaks this suite's warnings=error,
    # so npe2 is not a test dependency): every command resolves, every widget and
    # sample names a command
    yaml = pytest.importorskip("yaml")
    manifest = yaml.safe_load((Path(deconvkit.__file__).parent / "napari.yaml").read_text())
    assert manifest["name"] == "deconvkit"
    contributions = manifest["contributions"]
    commands = {c["id"]: c["python_name"] for c in contributions["commands"]}
    for command, python_name in commands.items():
        module, name = python_name.split(":")
        assert callable(getattr(importlib.import_module(module), name)), command
    widgets = {w["command"] for w in contributions["widgets"]}
    samples = {s["command"] for s in contributions["sample_data"]}
    assert widgets == {"deconvkit.restore", "deconvkit.psf", "deconvkit.blind",
                       "deconvkit.upscale", "deconvkit.background", "deconvkit.multiview",
                       "deconvkit.deskew", "deconvkit.super_resolve"} \
        and widgets <= set(commands)
    assert samples == {"deconvkit.sample_image", "deconvkit.sample_volume"}


def test_restore_layer_on_the_sample_data():
    (blurred, _, kind), (kernel, psf_meta, _), (truth, truth_meta, _) = _napari.sample_data()
    assert kind == "image" and truth_meta["visible"] is False and "psf" in psf_meta["name"]
    data, meta, kind = _napari.restore_layer(blurred, kernel)
    assert kind == "image" and data.shape == blurred.shape
    assert meta["metadata"]["method"] == "total_variation" and "restored" in meta["name"]
    assert metrics.psnr(truth, data, data_range=1.0) > \
        metrics.psnr(truth, blurred, data_range=1.0) + 2.0
    data, meta, _ = _napari.restore_layer(blurred, kernel, method="richardson_lucy",
                                          iterations=5)
    assert meta["metadata"]["iterations"] == 5
    # a time series (two frames) under the 2-D PSF: each frame on its own
    series = np.stack([blurred, blurred[::-1]])
    data, meta, _ = _napari.restore_layer(series, kernel, method="richardson_lucy")
    frames = meta["metadata"]["time_points"]
    assert data.shape == series.shape and len(frames) == 2
    assert frames[0]["stopped_by"] and frames[0]["iterations"] > 0
    with pytest.raises(ValueError, match="choose an image layer"):
        _napari.restore_layer(None, kernel)
    with pytest.raises(ValueError, match="method='nope'"):
        _napari.restore_layer(blurred, kernel, method="nope")


def test_widget_choices_and_psf_layer():
    import inspect

    parameters = inspect.signature(_napari.restore_layer).parameters
    # real objects, not strings: magicgui resolves a string annotation by importing it,
    # which failed for Annotated[str, {"choices": METHOD_CHOICES}] under
    # "from __future__ import annotations" (checked in napari 0.9.2)
    assert parameters["method"].annotation.__metadata__[0]["choices"] == _napari.METHOD_CHOICES
    assert parameters["image"].annotation == "napari.types.ImageData"
    assert set(_napari.METHOD_CHOICES) == {"auto", *deconvkit.METHODS}
    kernel, meta, kind = _napari.psf_layer("gaussian:sigma=1x2x2,ndim=3")
    assert kind == "image" and kernel.ndim == 3 and np.isclose(kernel.sum(), 1.0)
    volume, kernel3, _ = _napari.sample_volume()
    assert volume[0].ndim == kernel3[0].ndim == 3


def test_blind_and_upscale_layers():
    (blurred, _, _), _, (truth, _, _) = _napari.sample_data()
    crop, truth = blurred[:160, :160], truth[:160, :160]
    (restored, meta, _), (kernel, psf_meta, _) = _napari.blind_layer(crop, psf_size=21)
    assert restored.shape == crop.shape and kernel.shape == (21, 21)
    assert "blind map" in meta["name"] and psf_meta["name"] == "estimated psf"
    assert metrics.psnr(truth, restored, data_range=1.0) > \
        metrics.psnr(truth, crop, data_range=1.0)
    pytest.importorskip("torch")
    data, meta, _ = _napari.upscale_layer(np.random.default_rng(0).random((2, 30, 40)), 3)
    assert data.shape == (2, 90, 120) and meta["name"] == "upscaled x3"
    data, meta, _ = _napari.upscale_layer(np.random.default_rng(0).random((30, 40)), 1.5)
    assert data.shape == (45, 60) and meta["name"] == "upscaled x1.5"
    with pytest.raises(ValueError, match="2-D planes"):
        _napari.upscale_layer(np.zeros(10), 2)


def test_background_layer_feeds_the_restore_widget():
    (blurred, _, _), (kernel, _, _), _ = _napari.sample_data()
    lit = blurred + np.linspace(0.0, 0.3, blurred.shape[1])[None, :]  # a gradient behind
    background, meta, _ = _napari.background_layer(lit, width=15, smooth=3)
    assert background.shape == lit.shape and meta["name"] == "background"
    assert np.all(background <= lit.max())
    data, meta, _ = _napari.restore_layer(lit, kernel, method="richardson_lucy", iterations=5,
                                          background=background)
    assert meta["metadata"]["parameters"]["background"] == "array"
    np.testing.assert_allclose(data, deconvkit.richardson_lucy(lit, kernel, iterations=5,
                                                               background=background))
    # the automatic choice (total variation) models it too: it had been ignored
    data, meta, _ = _napari.restore_layer(lit, kernel, background=background)
    assert meta["metadata"]["method"] == "total_variation"
    assert meta["metadata"]["parameters"]["background"] == "array"
    assert abs(data.mean() - (lit - background).mean()) < 0.02


def test_multiview_layer():
    scene = deconvkit.cell_phantom((64, 64), seed=0)
    along = [deconvkit.psf.gaussian((4.0, 0.7), shape=(21, 21)),
             deconvkit.psf.gaussian((0.7, 4.0), shape=(21, 21))]
    views = [deconvkit.simulate(scene, k, noise="poisson", photons=200, seed=i)
             for i, k in enumerate(along)]
    data, meta, kind = _napari.multiview_layer(views[0], along[0], views[1], along[1],
                                               iterations=8)
    assert kind == "image" and meta["metadata"]["iterations"] == 8
    np.testing.assert_allclose(data, deconvkit.richardson_lucy_multiview(views, along,
                                                                         iterations=8))
    with pytest.raises(ValueError, match="both views"):
        _napari.multiview_layer(views[0], along[0], None, along[1])


def test_deskew_layer():
    from deconvkit.lightsheet import deskew, deskewed_spacing

    stack = np.random.default_rng(3).random((6, 5, 12))
    data, meta, kind = _napari.deskew_layer(stack, 31.5, 0.4, 0.104)
    np.testing.assert_array_equal(data, deskew(stack, 31.5, z_step=0.4, pixel_size=0.104,
                                               fill=np.nan))
    assert kind == "image" and np.isnan(data).any()
    np.testing.assert_allclose(meta["scale"], (deskewed_spacing(31.5, 0.4, 0.104), 0.104,
                                               0.104))
    data, _, _ = _napari.deskew_layer(stack, 31.5, 0.4, 0.104, wedges_missing=False)
    assert not np.isnan(data).any()
    with pytest.raises(ValueError, match="choose an image layer"):
        _napari.deskew_layer(None)
    # with a PSF layer: restored in the raw frame first
    from deconvkit.lightsheet import deconvolve_stage_scan

    kernel = deconvkit.psf.gaussian((0.6, 1.0, 1.0))  # 5 x 7 x 7, 21 wide once skewed
    stack = np.random.default_rng(4).random((12, 16, 40))
    data, meta, _ = _napari.deskew_layer(stack, 31.5, 0.4, 0.104, psf=kernel)
    np.testing.assert_allclose(data, deconvolve_stage_scan(stack, kernel, 31.5, z_step=0.4,
                                                           pixel_size=0.104, fill=np.nan))
    assert meta["name"] == "restored and deskewed"


def test_super_resolve_layer_takes_stacked_frames():
    scene = dk.cell_phantom((96, 96), seed=0)
    blur = dk.psf.gaussian(1.0)
    sharp = dk.blur(scene, blur)
    frames = np.stack([sharp[i:i + 94, j:j + 94].reshape(47, 2, 47, 2).mean(axis=(1, 3))
                       for i, j in [(0, 0), (1, 0), (0, 1), (1, 1)]])
    data, meta, kind = _napari.super_resolve_layer(frames, blur, 2)
    assert kind == "image" and data.shape == (94, 94)
    np.testing.assert_allclose(meta["metadata"]["shifts"],
                               [(0, 0), (0.5, 0), (0, 0.5), (0.5, 0.5)], atol=0.05)
    raw, _, _ = _napari.super_resolve_layer(frames, blur, 1, bayer="RGGB")
    assert raw.shape == (47, 47, 3)
    turned, meta, _ = _napari.super_resolve_layer(frames, blur, 2, motion="rigid")
    assert turned.shape == (94, 94) and np.shape(meta["metadata"]["maps"]) == (4, 2, 3)
    single, _, _ = _napari.super_resolve_layer(frames[0], blur, 2, total_variation=False)
    assert single.shape == (94, 94)
    with pytest.raises(ValueError, match="frames layer is 5-D"):
        _napari.super_resolve_layer(frames[None, None], blur, 2)


def test_rgb_layers_are_restored_per_channel():
    """napari's RGB layers are (H, W, 3): Deconvolve refused them (it asked for a
    channel axis the widget has no field for) and Blind made a 3-D PSF."""
    (blurred, _, _), (kernel, _, _), _ = _napari.sample_data()
    rgb = np.stack([blurred, 0.8 * blurred, 0.5 * blurred], axis=-1)[:96, :96]
    data, meta, _ = _napari.restore_layer(rgb, kernel, method="richardson_lucy", iterations=5)
    assert data.shape == rgb.shape and len(meta["metadata"]["channels"]) == 3
    np.testing.assert_allclose(data[..., 1], dk.deconvolve(
        rgb[..., 1], kernel, method="richardson_lucy", iterations=5), rtol=1e-6, atol=1e-9)
    layers = _napari.blind_layer(rgb, psf_size=9)
    assert layers[0][0].shape == rgb.shape and layers[1][0].shape == (9, 9)
    sky, _, _ = _napari.background_layer(rgb, width=5)  # along the sides, not across RGB
    np.testing.assert_allclose(sky[..., 2], dk.spectra.snip_background(
        rgb[..., 2], 5, smooth=3, axis=None))
    restored, _, _ = _napari.restore_layer(rgb, kernel, background=sky)
    assert restored.shape == rgb.shape
    pytest.importorskip("torch")
    big, _, _ = _napari.upscale_layer(rgb[:32, :32], 2.0)  # (H, W, 3): not 32 planes
    assert big.shape == (64, 64, 3)
