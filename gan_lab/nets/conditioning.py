"""Class conditioning of the GAN nets (`model.conditional=concat|projection|acgan`).

- concat (Mirza & Osindero 2014): G gets z ++ one-hot(y); D gets its input ++ one-hot(y) (constant label
  maps for images, appended features for flat inputs).
- projection (Miyato & Koyama 2018): G's batch norms become class-conditional (a per-class gain and bias,
  de Vries 2017); D's output is psi(phi(x)) + <embed(y), sum-pooled phi(x)>, phi = D's body.
- acgan (Odena 2017): G as concat; D has an auxiliary classifier head on phi(x) (logits over the classes),
  returned next to the real/fake logit.

PacGAN packs m samples into one D input; D then gets m labels per input (N/m x m) and every label slot
has its own one-hot block / embedding rows / classifier logits (`slots`), so (x, y) pairs stay aligned.
"""

from __future__ import annotations

import torch
from torch import nn

from gan_lab.errors import ConfigError

MODES = ("concat", "projection", "acgan")


def check_mode(owner: str, conditional, num_classes: int) -> str | None:
    """The conditioning mode (None: unconditional); one-line errors for unknown modes and class counts."""
    if conditional is None:
        return None
    if conditional not in MODES:
        raise ConfigError(f"{owner}: conditional={conditional!r} is not known; allowed null, {', '.join(MODES)}")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ConfigError(f"{owner}: num_classes={num_classes!r} with conditional={conditional}; allowed [2, inf)")
    return conditional


def slot_labels(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """N or N x slots class labels -> N x slots indices into slots * num_classes rows (one block per slot)."""
    y = y.reshape(len(y), -1)
    return y + num_classes * torch.arange(y.shape[1], device=y.device)


def one_hot(y: torch.Tensor, num_classes: int, slots: int = 1) -> torch.Tensor:
    """N (or N x slots) labels -> N x (slots * num_classes) float one-hot blocks."""
    idx = slot_labels(y, num_classes)
    out = torch.zeros(len(idx), slots * num_classes, device=y.device)
    return out.scatter(1, idx, 1.0)  # out of place: seed-parallel nets run this under vmap


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without its own affine, followed by a per-class gain (init 1) and bias (init 0)."""

    def __init__(self, num_features: int, num_classes: int, dim: int = 2):
        super().__init__()
        self.bn = (nn.BatchNorm2d if dim == 2 else nn.BatchNorm1d)(num_features, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shape = (len(x), -1) + (1,) * (x.dim() - 2)
        return self.bn(x) * self.gain(y).view(shape) + self.bias(y).view(shape)


def batch_norm(num_features: int, conditional: str | None, num_classes: int, dim: int = 2) -> nn.Module:
    """A generator's batch norm: class-conditional in the projection mode, plain otherwise."""
    if conditional == "projection":
        return ConditionalBatchNorm(num_features, num_classes, dim)
    return (nn.BatchNorm2d if dim == 2 else nn.BatchNorm1d)(num_features)


def z_extra(conditional: str | None, num_classes: int) -> int:
    """Extra generator inputs: the one-hot label in the concat and AC-GAN modes."""
    return num_classes if conditional in ("concat", "acgan") else 0


def g_input(z: torch.Tensor, y: torch.Tensor | None, conditional: str | None, num_classes: int) -> torch.Tensor:
    if z_extra(conditional, num_classes):
        if y is None:
            raise ValueError(f"a generator with conditional={conditional} needs class labels")
        return torch.cat([z, one_hot(y, num_classes)], 1)
    return z


def run_layers(layers: nn.Sequential, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """Run a Sequential, giving the labels to its class-conditional batch norms."""
    for m in layers:
        x = m(x, y) if isinstance(m, ConditionalBatchNorm) else m(x)
    return x


class DCondition(nn.Module):
    """What a class-conditional discriminator adds around its body and head (see the module doc).
    `channels`: features of phi(x) per position (projection); `flat`: size of flattened phi(x) (AC head);
    `maps`: concat labels to images as constant maps (convolutional D) rather than to the flattened input."""

    def __init__(self, conditional: str, num_classes: int, slots: int, channels: int, flat: int, maps: bool):
        super().__init__()
        self.conditional, self.num_classes, self.slots, self.maps = conditional, num_classes, slots, maps
        if conditional == "projection":
            # The class embedding as a bias-free linear map of the one-hot label (row y of embed.weight.T), so
            # trick=spectral_norm normalises it with the rest of D, as SNEmbedID in Miyato & Koyama's code.
            self.embed = nn.Linear(slots * num_classes, channels, bias=False)
            nn.init.xavier_uniform_(self.embed.weight)
            self._register_load_state_dict_pre_hook(self._embedding_layout)
        elif conditional == "acgan":
            self.aux = nn.Linear(flat, slots * num_classes)

    def _embedding_layout(self, state_dict, prefix, *args) -> None:
        """Checkpoints of earlier versions hold the projection embedding as nn.Embedding rows (classes x channels)."""
        w, rows = state_dict.get(prefix + "embed.weight"), self.embed.in_features
        if w is not None and w.dim() == 2 and w.shape[0] == rows != w.shape[1]:
            state_dict[prefix + "embed.weight"] = w.t()

    @staticmethod
    def extra_inputs(conditional: str | None, num_classes: int, slots: int) -> int:
        """Label inputs D's first layer gets on top of the data (concat mode)."""
        return slots * num_classes if conditional == "concat" else 0

    def input(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.conditional != "concat":
            return x
        labels = one_hot(y, self.num_classes, self.slots)
        if self.maps:
            return torch.cat([x, labels[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)
        return torch.cat([x.flatten(1), labels], 1)

    def output(self, out: torch.Tensor, h: torch.Tensor, y: torch.Tensor):
        if self.conditional == "projection":
            pooled = h.sum(dim=tuple(range(2, h.dim()))) if h.dim() > 2 else h
            e = self.embed(one_hot(y, self.num_classes, self.slots))
            return out + (e * pooled).sum(1, keepdim=True)
        if self.conditional == "acgan":
            return out, self.aux(h.flatten(1))
        return out


def check_labels(y: torch.Tensor, num_classes: int, owner: str = "labels") -> torch.Tensor:
    """LongTensor labels in [0, num_classes), else one ConfigError line."""
    y = torch.as_tensor(y).long().reshape(-1)
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        bad = int(y.min()) if int(y.min()) < 0 else int(y.max())
        raise ConfigError(f"{owner}={bad} is out of range; allowed 0..{num_classes - 1} or all")
    return y
