"""Stabilization tricks (see README "Tricks"): each a small class plugged into named loop hooks."""

from gan_lab.tricks.base import Trick, TrickSet, build_tricks

__all__ = ["Trick", "TrickSet", "build_tricks"]
