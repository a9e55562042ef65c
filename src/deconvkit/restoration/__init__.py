"""Restoration algorithms: one small function per family, all N-D, all on the operator.

=====================  ==============================================  ==================
function               model / algorithm                              default boundary
=====================  ==============================================  ==================
inverse_filter         Y / H with a floor (teaching only)              symmetric
wiener                 Wiener filter, NSR estimated from the data      valid (by CGLS)
tikhonov               regularised LS, discrepancy-principle weight    valid (by CGLS)
cgls                   the same by conjugate gradients, any boundary   valid
unsupervised_wiener    Gibbs sampler for all parameters (Orieux)       symmetric
landweber              projected gradient, discrepancy stopping        valid
van_cittert            x += y - Ax                                     edge
gold                   Gold ratio / ISRA (NNLS), Morhac boosting        valid
richardson_lucy        Poisson ML, Biggs-accelerated, auto stopping    valid
richardson_lucy_tv     RL with TV (Dey et al. 2006)                    valid
richardson_lucy_multiview  joint RL of registered views (light sheet)  valid
super_resolve          RL onto a finer grid from shifted frames         valid
total_variation        TV by ADMM / primal-dual, Gaussian or Poisson   valid
wavelet                wavelet-l1 by FISTA                             valid
=====================  ==============================================  ==================
"""

from ._stopping import Info, NoiseModel, estimate_noise, noise_model
from .iterative import gold, landweber, van_cittert
from .linear import cgls, inverse_filter, tikhonov, unsupervised_wiener, wiener
from .multiview import richardson_lucy_multiview
from .richardson_lucy import richardson_lucy, richardson_lucy_tv
from .super_resolution import register_rigid, register_shifts, super_resolve
from .variational import total_variation, wavelet

__all__ = [
    "Info",
    "NoiseModel",
    "cgls",
    "estimate_noise",
    "gold",
    "inverse_filter",
    "landweber",
    "noise_model",
    "richardson_lucy",
    "richardson_lucy_multiview",
    "richardson_lucy_tv",
    "register_rigid",
    "register_shifts",
    "super_resolve",
    "tikhonov",
    "total_variation",
    "unsupervised_wiener",
    "van_cittert",
    "wavelet",
    "wiener",
]
