"""Restoration algorithms: one small function per family, plus the ``deconvolve`` front door."""

from .linear import wiener
from .richardson_lucy import richardson_lucy

__all__ = ["richardson_lucy", "wiener"]
