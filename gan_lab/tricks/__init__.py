"""Stabilization tricks: `trick=<name>` selects the class in `gan_lab/tricks/<name>.py`; each plugs into the
named loop hooks of `gan_lab.tricks.base`."""

from gan_lab.tricks.base import Trick, TrickSet, build_tricks

__all__ = ["Trick", "TrickSet", "build_tricks"]
