"""Each adversarial loss against closed-form values, for both players, with and without label targets."""

from __future__ import annotations

import math

import pytest
import torch

from gan_lab.errors import ConfigError
from gan_lab.losses import LOSSES, get_loss

REAL = [0.5, 2.0]  # D's raw outputs (logits / critic values) on real samples
FAKE = [-2.0, 0.5]  # ... and on generated samples


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


def bce(logit, target):
    p = sigmoid(logit)
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def mean(xs):
    return sum(xs) / len(xs)


def closed_form_d(name, real_t, fake_t):
    if name in ("minimax", "non_saturating"):
        return mean([bce(v, real_t) for v in REAL]) + mean([bce(v, fake_t) for v in FAKE])
    if name == "least_squares":
        return 0.5 * (mean([(v - real_t) ** 2 for v in REAL]) + mean([(v - fake_t) ** 2 for v in FAKE]))
    if name == "hinge":  # max(0, 1 - 0.5), max(0, 1 - 2) | max(0, 1 - 2), max(0, 1 + 0.5)
        return mean([0.5, 0.0]) + mean([0.0, 1.5])
    if name == "wasserstein":
        return mean(FAKE) - mean(REAL)
    raise KeyError(name)


G_CLOSED_FORM = {
    "minimax": mean([math.log(1 - sigmoid(v)) for v in FAKE]),  # G minimises log(1 - D(G(z)))
    "non_saturating": mean([-math.log(sigmoid(v)) for v in FAKE]),  # G maximises log D(G(z))
    "least_squares": 0.5 * mean([(v - 1) ** 2 for v in FAKE]),
    "hinge": -mean(FAKE),
    "wasserstein": -mean(FAKE),
}


def t(values, grad=False):
    return torch.tensor(values, dtype=torch.float64).view(-1, 1).requires_grad_(grad)


def d_loss(name, real_t=1.0, fake_t=0.0, real=REAL, fake=FAKE):
    r, f = t(real), t(fake)
    return get_loss(name).d(r, f, torch.full_like(r, real_t), torch.full_like(f, fake_t))


def test_every_loss_is_covered():
    assert set(LOSSES) == set(G_CLOSED_FORM)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_discriminator_loss_closed_form(name):
    assert d_loss(name).item() == pytest.approx(closed_form_d(name, 1.0, 0.0), rel=1e-9)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_generator_loss_closed_form(name):
    assert get_loss(name).g(t(FAKE)).item() == pytest.approx(G_CLOSED_FORM[name], rel=1e-9)


@pytest.mark.parametrize("name", [n for n, c in sorted(LOSSES.items()) if c.uses_targets])
def test_target_losses_use_smoothed_targets(name):
    """One-sided smoothing (real 0.9) and noisy fake targets (0.2) enter the closed form."""
    got = d_loss(name, real_t=0.9, fake_t=0.2).item()
    assert got == pytest.approx(closed_form_d(name, 0.9, 0.2), rel=1e-9)
    assert got != pytest.approx(closed_form_d(name, 1.0, 0.0), rel=1e-3)


@pytest.mark.parametrize("name", [n for n, c in sorted(LOSSES.items()) if not c.uses_targets])
def test_targetless_losses_ignore_targets(name):
    assert d_loss(name, real_t=0.9, fake_t=0.2).item() == pytest.approx(d_loss(name).item(), rel=1e-12)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_each_player_pushes_the_right_way(name):
    """D lowers its loss by scoring reals higher and fakes lower; G lowers its loss by raising D's score of
    its fakes (at outputs inside every loss's active region)."""
    loss = get_loss(name)
    r, f = t([0.2, -0.3], grad=True), t([0.1, 0.4], grad=True)
    loss.d(r, f, torch.ones_like(r), torch.zeros_like(f)).backward()
    assert (r.grad < 0).all() and (f.grad > 0).all()
    g_in = t([0.1, -0.4], grad=True)
    loss.g(g_in).backward()
    assert (g_in.grad < 0).all()


def test_unknown_loss_names_the_allowed_ones():
    with pytest.raises(ConfigError, match="model.loss='hinj' is not known; allowed minimax, non_saturating"):
        get_loss("hinj")
