"""Deconvolutional network (Zeiler et al., CVPR 2010): convolutional sparse coding."""

from __future__ import annotations

import torch
from torch import nn

from .. import functional as Fd

__all__ = ["DeconvNet"]


class DeconvNet(nn.Module):
    r"""One deconvolutional-network layer: images as filters convolved with sparse maps.

    The model is :math:`y \approx \sum_k f_k * z_k` with sparse feature maps
    :math:`z_k`; filters are learned without labels by alternating inference
    (FISTA on the ℓ1 problem, as deconvkit's classical ``wavelet`` solver does)
    and a projected gradient step on the unit-norm filters.

    Parameters
    ----------
    filters : int
        Number of filters (and feature maps).
    kernel_size : int
        Odd filter size.
    channels : int
        Image channels.
    ndim : int
        1, 2 or 3.
    sparsity : float
        :math:`\lambda` of the ℓ1 term.

    Shape
    -----
    ``encode``: ``(N, channels, *L) -> (N, filters, *L)``; ``decode`` the reverse;
    ``forward(y)`` is ``decode(encode(y))``.

    References
    ----------
    .. [1] M. D. Zeiler, D. Krishnan, G. W. Taylor and R. Fergus,
       "Deconvolutional networks", CVPR 2010.
    .. [2] A. Beck and M. Teboulle, "A fast iterative shrinkage-thresholding
       algorithm for linear inverse problems", SIAM J. Imaging Sci. 2, 2009.
    """

    def __init__(self, filters: int = 8, kernel_size: int = 7, channels: int = 1, *,
                 ndim: int = 2, sparsity: float = 0.05):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size={kernel_size} must be odd")
        self.filters, self.kernel_size, self.channels = filters, kernel_size, channels
        self.ndim, self.sparsity = ndim, sparsity
        # conv_transpose layout: (in = feature maps, out = image channels, *k)
        self.weight = nn.Parameter(torch.randn(filters, channels, *(kernel_size,) * ndim))
        self.normalize_()

    @torch.no_grad()
    def normalize_(self):
        norms = self.weight.flatten(1).norm(dim=1).clamp_min(1e-12)
        self.weight.div_(norms.reshape((-1,) + (1,) * (self.weight.ndim - 1)))

    def decode(self, z):
        return Fd.conv_transpose(z, self.weight, padding=self.kernel_size // 2)

    def _decode_adjoint(self, r):
        return Fd.conv(r, self.weight, padding=self.kernel_size // 2)

    @torch.no_grad()
    def lipschitz(self, shape, iterations: int = 30) -> float:
        """‖D‖² of the decoder by power iteration (for the FISTA step)."""
        z = torch.randn(1, self.filters, *shape, dtype=self.weight.dtype,
                        device=self.weight.device)
        value = 1.0
        for _ in range(iterations):
            z = self._decode_adjoint(self.decode(z))
            value = float(z.norm())
            z = z / value
        return value

    @torch.no_grad()
    def encode(self, y, *, iterations: int = 50, history: list | None = None):
        """Sparse maps by FISTA: ``min_z ½‖D z − y‖² + λ‖z‖₁`` (not differentiated)."""
        step = 1.0 / self.lipschitz(tuple(y.shape[2:]))
        z = torch.zeros(y.shape[0], self.filters, *y.shape[2:], dtype=y.dtype, device=y.device)
        v, t = z, 1.0
        threshold = step * self.sparsity
        for _ in range(iterations):
            gradient = self._decode_adjoint(self.decode(v) - y)
            u = v - step * gradient
            z_new = torch.sign(u) * torch.clamp(u.abs() - threshold, min=0)
            t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
            v = z_new + ((t - 1) / t_next) * (z_new - z)
            z, t = z_new, t_next
            if history is not None:
                history.append(self.objective(y, z).item())
        return z

    def objective(self, y, z):
        return 0.5 * ((self.decode(z) - y) ** 2).sum() + self.sparsity * z.abs().sum()

    def forward(self, y):
        return self.decode(self.encode(y))

    def fit(self, images, *, epochs: int = 10, inner: int = 30, lr: float = 0.05):
        """Learn the filters from unlabelled ``images`` ``(N, channels, *L)``; return the losses."""
        losses = []
        for _ in range(epochs):
            with torch.no_grad():
                z = self.encode(images, iterations=inner)
            loss = 0.5 * ((self.decode(z) - images) ** 2).mean()
            self.zero_grad()
            loss.backward()
            with torch.no_grad():
                self.weight -= lr * self.weight.grad / self.weight.grad.norm().clamp_min(1e-12)
                self.normalize_()
            losses.append(loss.item())
        return losses

    def extra_repr(self) -> str:
        return (f"filters={self.filters}, kernel_size={self.kernel_size}, ndim={self.ndim}, "
                f"sparsity={self.sparsity}")
