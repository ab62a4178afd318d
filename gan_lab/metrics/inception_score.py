"""Inception Score (Salimans et al. 2016) from class logits, the standard protocol:

    IS = exp( E_x KL( p(y|x) || p(y) ) ),  mean and std (ddof 0) over 10 splits of the samples

with p(y|x) the softmax of the FID Inception's unbiased logits (pool3 features times the final layer's
weights, no bias: the logits of the original TensorFlow code and of torch-fidelity) and p(y) the mean of
p(y|x) over the split. Like torch-fidelity (its defaults), the samples are permuted with
`numpy.random.RandomState(2020)` and split at i * N // splits; computed in float64. Tests check the
value against torch-fidelity's `isc_features_to_metric`.

    mean, std = inception_score(logits, splits=10)
"""

from __future__ import annotations

import numpy as np
import torch

PERMUTATION_SEED = 2020


def inception_score(logits: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """(mean, std) of the Inception Score of N x K logits over `splits` splits."""
    if logits.dim() != 2 or len(logits) < splits:
        raise ValueError(f"inception_score needs N x K logits with N >= splits={splits}, got {tuple(logits.shape)}")
    n = len(logits)
    order = torch.from_numpy(np.random.RandomState(PERMUTATION_SEED).permutation(n))
    logp = logits.double()[order].log_softmax(1)
    scores = []
    for i in range(splits):
        part = logp[i * n // splits : (i + 1) * n // splits]
        p = part.exp()
        kl = (p * (part - p.mean(0, keepdim=True).log())).sum(1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), float(np.std(scores))
