"""CycleGAN (Zhu 2017): unpaired translation between domains A and B on the one adversarial loop.

    python -m gan_lab.train model=cyclegan data=digits2mnist data.root=<MNIST folder> data.split=t10k

"The generator" is the pair (G_AB, G_BA) and "the discriminator" the pair (D_A, D_B): a batch (a, b)
becomes real = cat(a, b) and fake = cat(G_BA(b), G_AB(a)), so D_A judges the first half and D_B the
second, every loss is the mean over both, and every trick (label tricks, instance noise, DiffAugment,
PacGAN, R1/GP, spectral norm, EMA of the pair...) applies to both directions unchanged. The cycle
(lambda = `cycle_weight`, 10) and identity (`identity_weight` x lambda, 0.5 x lambda) L1 terms are the
task's `extra_g_loss`; D sees fakes through a `pool_size`-image history buffer per domain (Shrivastava
2017; the loop's `fakes_for_d` hook). With `loss: least_squares` (0.5 E[(D-1)^2] for G) and
`adv_weight: 2`, the total is half Zhu 2017's, the same update under Adam.

Held-out metrics (`val/...`): cycle L1 both ways; on labelled domains with shipped classifiers
(data=digits2mnist) class preservation (the target domain's classifier on G(x) against x's label) and FID
with the target domain's feature net, both ways, next to the identity mapping scored the same way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gan_lab.build import build
from gan_lab.errors import ConfigError, check_range
from gan_lab.tasks.adversarial import AdversarialTask

GENERATORS = {"resnet": "gan_lab.nets.resnet_generator.ResnetGenerator", "unet": "gan_lab.nets.unet.UNetGenerator"}


class TranslatorPair(nn.Module):
    """G_AB and G_BA: two generators of the same architecture (`net`: resnet | unet, with its parameters)."""

    def __init__(self, in_channels: int, out_channels: int, size: int, net: str = "resnet", **kw):
        super().__init__()
        if net not in GENERATORS:
            raise ConfigError(f"model.generator: net={net!r} is not known; allowed {', '.join(GENERATORS)}")
        spec = {"_target_": GENERATORS[net], **kw}
        self.ab = build(spec, "model.generator", in_channels=in_channels, out_channels=out_channels, size=size)
        self.ba = build(spec, "model.generator", in_channels=out_channels, out_channels=in_channels, size=size)


class DiscriminatorPair(nn.Module):
    """D_A and D_B (`net`: the discriminator class, with its parameters, trick-adjusted): `forward(x)` and
    `features(x)` judge the first half of the batch with D_A and the second with D_B."""

    def __init__(self, net: str = "gan_lab.nets.patchgan.PatchGANDiscriminator", **kw):
        super().__init__()
        spec = {"_target_": net, **kw}
        self.a, self.b = build(spec, "model.discriminator"), build(spec, "model.discriminator")

    def _halves(self, x, fn):
        n = x.shape[0] // 2
        return torch.cat([fn(self.a, x[:n]), fn(self.b, x[n:])])

    def forward(self, x):
        return self._halves(x, lambda d, h: d(h))

    def features(self, x):
        return self._halves(x, lambda d, h: d.features(h))


class HistoryPool(nn.Module):
    """The last fakes shown to D (Shrivastava 2017, CycleGAN's ImagePool): while not full each fake is
    stored and returned; then each is, with probability 1/2, swapped with a uniformly drawn stored one
    (the stored one is returned) or returned as it is. Buffers, so the pool is checkpointed and resumes."""

    def __init__(self, size: int, shape):
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return fakes
        u, idx = torch.rand(len(fakes)).tolist(), torch.randint(self.size, (len(fakes),)).tolist()
        out, count = fakes.clone(), int(self.count)
        for i in range(len(fakes)):
            if count < self.size:
                self.images[count] = fakes[i]
                count += 1
            elif u[i] > 0.5:
                out[i] = self.images[idx[i]]
                self.images[idx[i]] = fakes[i]
        self.count.fill_(count)
        return out


class CycleGANTask(AdversarialTask):
    """Batches (a, b) of unpaired data; see the module doc. The data module is passed in to the pictures,
    samples and held-out metrics (`datamodule=`), never read from the trainer."""

    data_kind = "paired"

    def __init__(
        self,
        *args,
        cycle_weight: float = 10.0,
        identity_weight: float = 0.5,
        pool_size: int = 50,
        domains=None,
        n_panel: int = 8,
        n_eval: int = 1000,
        **kwargs,
    ):
        name = kwargs.get("name") or "cyclegan"
        if domains is None or kwargs.get("condition_shape") is None:
            raise ConfigError(
                f"model={name} needs unpaired data with two domains (data=digits2mnist or data=unpaired_folder "
                "with trainA/ and trainB/); the selected data has one"
            )
        self.cycle_weight = check_range("model", "cycle_weight", cycle_weight, 0.0)
        self.identity_weight = check_range("model", "identity_weight", identity_weight, 0.0)
        self.pool_size = int(check_range("model", "pool_size", pool_size, 0, 10_000))
        self.n_eval = int(check_range("model", "n_eval", n_eval, 2))
        self.domains, self.n_panel = tuple(domains), int(n_panel)
        cond, data = tuple(kwargs["condition_shape"]), tuple(kwargs.get("data_shape") or ())
        if cond != data:
            raise ConfigError(
                f"model={name}: domain images differ in shape ({self.domains[0]} {cond}, {self.domains[1]} {data}); "
                "give both domains the same size and channels"
            )
        super().__init__(*args, **kwargs)
        self.pool_a, self.pool_b = HistoryPool(self.pool_size, cond), HistoryPool(self.pool_size, data)
        self._baseline: dict[str, float] | None = None

    def generator_extra(self) -> dict:
        return {"in_channels": self.condition_shape[0], "out_channels": self.data_shape[0], "size": self.data_shape[-1]}

    def discriminator_extra(self) -> dict:
        return {"in_channels": self.data_shape[0]}

    # ---- the loop's hooks ------------------------------------------------------------------------
    def unpack(self, batch):
        a, b = batch
        return torch.cat([a, b]), (a, b)

    def generate(self, cond, n: int, generator=None):
        g = generator or self.generator
        a, b = cond
        return torch.cat([g.ba(b), g.ab(a)])  # fake A | fake B, aligned with real = a | b

    def fakes_for_d(self, fake, step: int):
        n = fake.shape[0] // 2
        return torch.cat([self.pool_a.query(fake[:n]), self.pool_b.query(fake[n:])])

    def extra_g_loss(self, fake, real, cond):
        a, b = cond
        n, g = a.shape[0], self.generator
        rec = torch.cat([g.ba(fake[n:]), g.ab(fake[:n])])  # A -> B -> A | B -> A -> B
        cycle = F.l1_loss(rec, real)
        loss, logs = self.cycle_weight * cycle, {"cycle_l1": cycle}
        if self.identity_weight:
            identity = F.l1_loss(torch.cat([g.ba(a), g.ab(b)]), real)
            loss = loss + self.cycle_weight * self.identity_weight * identity
            logs["identity_l1"] = identity
        return loss, logs

    # ---- translation, pictures and held-out metrics ------------------------------------------------
    @staticmethod
    def _val(datamodule, n: int | None = None) -> tuple:
        """The held-out split: (A, B) or (A, B, labels A, labels B), the first n of each."""
        if datamodule is None:
            raise ValueError("CycleGAN needs the data module (datamodule=) for its held-out images")
        tensors = datamodule.domain_tensors("val")
        return tuple(t[:n] for t in tensors) if n is not None else tensors

    def translate(self, x: torch.Tensor, direction: str, batch_size: int = 64) -> torch.Tensor:
        """G_AB(x) (direction "ab") or G_BA(x) ("ba") on the CPU, by the sampling generator in eval mode."""
        with self.eval_generator() as g:
            net = g.ab if direction == "ab" else g.ba
            out = [net(x[i : i + batch_size].to(self.device)).float().cpu() for i in range(0, len(x), batch_size)]
        return torch.cat(out) if out else x[:0]

    def sample_panels(self, datamodule=None) -> dict:
        a, b = self._val(datamodule, self.n_panel)[:2]
        panels = {}
        for key, x, there, back in (("a2b", a, "ab", "ba"), ("b2a", b, "ba", "ab")):
            y = self.translate(x, there).clamp(-1, 1)
            rows = torch.stack([x, y, self.translate(y, back).clamp(-1, 1)], 1).flatten(0, 1)
            panels[key] = (rows, 3)  # input | translated | reconstructed, one example per row
        return panels

    def generate_samples(self, n: int, batch_size: int = 500, labels=None, seed: int = 12345, datamodule=None):
        """G_AB of the first n held-out A images (at most the held-out split)."""
        return self.translate(self._val(datamodule, n)[0], "ab")

    def held_out_metrics(self, datamodule) -> dict:
        dm = datamodule
        tensors = self._val(dm, self.n_eval)
        a, b = tensors[:2]
        fake_b, fake_a = self.translate(a, "ab").clamp(-1, 1), self.translate(b, "ba").clamp(-1, 1)
        out = {
            "a2b_cycle_l1": F.l1_loss(self.translate(fake_b, "ba"), a).item(),
            "b2a_cycle_l1": F.l1_loss(self.translate(fake_a, "ab"), b).item(),
        }
        nets = getattr(dm, "feature_nets", None)
        if nets and len(tensors) == 4:
            ya, yb = tensors[2:]
            out.update(translation_scores(dm, fake_b, ya, "a2b"))
            out.update(translation_scores(dm, fake_a, yb, "b2a"))
            if self._baseline is None:  # the identity mapping, scored the same way (constant per data)
                self._baseline = {
                    **translation_scores(dm, a, ya, "a2b", prefix="identity_"),
                    **translation_scores(dm, b, yb, "b2a", prefix="identity_"),
                }
            out.update(self._baseline)
        return out


def translation_scores(dm, images: torch.Tensor, labels: torch.Tensor, direction: str, prefix: str = "") -> dict:
    """Class preservation (accuracy of the target domain's classifier on `images` against the source
    labels) and FID to the target domain's training images with its feature net, for images translated
    `direction` ("a2b": into B, scored by `dm.feature_nets[1]`; "b2a": into A, by `dm.feature_nets[0]`)."""
    from gan_lab.metrics.features import embed, load_feature_net
    from gan_lab.metrics.fid import fid, real_stats

    target = 1 if direction == "a2b" else 0
    net = load_feature_net(dm.feature_nets[target])
    real = dm.domain_tensors("train")[target][:10_000]
    stats = real_stats(net, f"{dm.name}_{dm.domains[target]}", "train", real)
    feats, logits = embed(net, images, logits=True)
    return {
        f"{prefix}{direction}_class_preservation": (logits.argmax(1) == labels).float().mean().item(),
        f"{prefix}{direction}_fid": fid(stats.features, feats),
    }
