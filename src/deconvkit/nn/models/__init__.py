"""Classic "deconvolution" architectures, each N-D where the paper allows, upsampler selectable."""

from .dcgan import DCGANGenerator
from .deconvnet import DeconvNet
from .sr import EDSR, ESPCN, FSRCNN
from .unet import UNet

__all__ = ["DCGANGenerator", "DeconvNet", "EDSR", "ESPCN", "FSRCNN", "UNet"]
