"""VGG19 feature extractor for the SRGAN content loss, from a weights file the user has (nothing downloads).

    net = VGGFeatures("vgg19-dcbb9e9d.pth", layer="relu5_4")   # torchvision's VGG19 state dict (features.N.*)
    net(x)                                                      # N x 3 x H x W in [-1, 1] -> feature maps

Layers are named as in the SRGAN paper's phi_{i,j}: relu<block>_<conv>, e.g. relu2_2 (phi_2,2) and relu5_4
(phi_5,4, after the 4th convolution before the 5th max-pooling). Inputs are mapped to [0, 1] and normalised
with the ImageNet mean/std the weights were trained with; greyscale inputs are repeated to 3 channels.
The net is frozen (eval mode, no gradients for its weights).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from gan_lab.errors import ConfigError

VGG19 = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]


def layer_names() -> dict[str, int]:
    """relu<i>_<j> -> index in torchvision's `features` Sequential."""
    names, block, conv, idx = {}, 1, 0, 0
    for v in VGG19:
        if v == "M":
            block, conv, idx = block + 1, 0, idx + 1
        else:
            conv += 1
            names[f"relu{block}_{conv}"] = idx + 1
            idx += 2
    return names


class VGGFeatures(nn.Module):
    def __init__(self, weights: str | Path | None, layer: str = "relu5_4", owner: str = "model"):
        super().__init__()
        names = layer_names()
        if layer not in names:
            raise ConfigError(f"{owner}.vgg_layer={layer!r} is not a VGG19 layer; allowed relu1_1 ... relu5_4")
        if not weights or not Path(weights).is_file():
            raise ConfigError(
                f"{owner}.vgg_weights={weights!r} is not a file; content_loss=vgg needs torchvision's VGG19 "
                "weights (vgg19-dcbb9e9d.pth) on disk, or use content_loss=mse|l1|d_features"
            )
        layers, c = [], 3
        for v in VGG19:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=False)]
                c = v
        self.features = nn.Sequential(*layers[: names[layer] + 1])
        self._load(Path(weights), owner)
        self.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def _load(self, path: Path, owner: str) -> None:
        from gan_lab.checkpoints import load_file

        state = load_file(path, f"{owner}.vgg_weights", "torchvision's vgg19 state dict (features.N.weight keys)")
        state = state.get("state_dict", state) if isinstance(state, dict) else {}
        feats = {k.removeprefix("features."): v for k, v in state.items() if not k.startswith("classifier.")}
        want = self.features.state_dict()
        bad = [k for k, v in want.items() if k not in feats or feats[k].shape != v.shape]
        if bad:
            raise ConfigError(
                f"{owner}.vgg_weights={str(path)!r} does not hold VGG19 conv weights (missing or misshaped "
                f"{bad[0]!r}); expected torchvision's vgg19 state dict with features.N.weight keys"
            )
        self.features.load_state_dict({k: feats[k] for k in want})

    def train(self, mode: bool = True):
        return super().train(False)  # always frozen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.features(((x + 1) / 2 - self.mean) / self.std)
