"""gan_lab: config-driven GAN research framework (see README.md)."""

__version__ = "0.1.0"
