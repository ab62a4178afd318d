"""gan_lab: config-driven GAN research framework (see README.md)."""

__version__ = "0.1.0"

# Bumped when checkpoints change incompatibly; checked before resuming (gan_lab.config.check_checkpoint).
CHECKPOINT_FORMAT = 1
