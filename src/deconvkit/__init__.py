"""deconvkit: deconvolution of signals, images and volumes, on one convolution operator."""
