"""LinearMaxout (Goodfellow 2013): `pieces` affine maps of the input, the unit's output is their maximum.

PacGAN's 2-D discriminator (fjxmlzn/PacGAN, synthetic_data_experiments) is 3 x 200 LinearMaxout units with
5 pieces each; `model.discriminator.maxout=5` selects it on the MLP discriminator.
"""

from __future__ import annotations

import torch
from torch import nn

from gan_lab.errors import check_range


class LinearMaxout(nn.Module):
    """y_j = max_k (W_k x + b_k)_j for `out_features` units of `pieces` linear pieces each."""

    def __init__(self, in_features: int, out_features: int, pieces: int = 5):
        super().__init__()
        self.pieces = int(check_range("model.discriminator", "maxout", pieces, 2, 64))
        self.out_features = out_features
        self.linear = nn.Linear(in_features, out_features * self.pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(x.shape[0], self.out_features, self.pieces).amax(-1)
