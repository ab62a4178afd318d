"""Unconditional GAN (Goodfellow 2014); with convolutional nets it is DCGAN (Radford 2015).

`model.conditional=concat|projection|acgan` makes it class-conditional (Mirza & Osindero 2014; Miyato &
Koyama 2018; Odena 2017; the nets' side is gan_lab/nets/conditioning.py): batches are (x, y), G(z, y)
makes a sample of class y, D judges (x, y), and with acgan both losses add `aux_weight` x the class
cross-entropy of D's auxiliary classifier (D: on real and fake samples, as in Odena 2017; G: on fakes).

    python -m gan_lab.train model.conditional=projection          # class-conditional DCGAN on digits
"""

from __future__ import annotations

import inspect

import torch
from torch.nn import functional as F

from gan_lab.errors import ConfigError, check_range
from gan_lab.nets.conditioning import check_labels, check_mode
from gan_lab.tasks.adversarial import AdversarialTask

LABELLED_DATA = "digits, mnist, stacked_digits, stacked_mnist, toy2d_ring, toy2d_grid, cifar10, cifar100, " + (
    "image folders with one subfolder per class"
)


def class_counts(datamodule) -> list[int]:
    """Samples per class in the training split of a labelled data module (`num_classes` > 0, batches (x, y));
    [] for data without class labels."""
    k = int(getattr(datamodule, "num_classes", 0) or 0)
    if not k:
        return []
    counts = getattr(datamodule, "class_counts", None)
    if counts is not None:
        return [int(c) for c in (counts() if callable(counts) else counts)]
    y = datamodule.split_tensors("train")[1]
    return torch.bincount(y.reshape(-1).long().cpu(), minlength=k).tolist()


def conditional_extra(model: dict, datamodule) -> dict:
    """What a class-conditional model takes from its data (`class_counts`); one line for a model that has
    no class-conditional mode."""
    from hydra.utils import get_class

    try:
        ok = issubclass(get_class(model.get("_target_", "")), GANTask)
    except Exception:
        ok = True  # an unimportable target is reported by build() with its own line
    if not ok:
        name = model.get("name") or model.get("_target_")
        raise ConfigError(
            f"model.conditional={model['conditional']} is not an option of model={name}; allowed with model=gan_mlp, "
            "model=dcgan (or another GAN task)"
        )
    return {"class_counts": class_counts(datamodule)}


def labels_for(spec, num_classes: int, n: int | None = None) -> torch.Tensor:
    """`labels=` of `gan-lab sample`: an int class (n copies), `all` (n samples spread evenly over the
    classes in order; n=None: one per class), or a list of classes; one ConfigError line when out of range."""
    if not num_classes:
        raise ConfigError(
            f"labels={spec!r} needs a class-conditional model (model.conditional); this one has no classes"
        )
    if isinstance(spec, str) and spec.strip().lower() == "all":
        n = num_classes if n is None else n
        return torch.arange(n) * num_classes // max(n, 1)
    if isinstance(spec, str):
        try:
            spec = [int(s) for s in spec.replace("[", "").replace("]", "").split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"labels={spec!r} is not a class; allowed 0..{num_classes - 1} or all") from None
    if isinstance(spec, bool) or not isinstance(spec, (int, list, tuple, torch.Tensor)):
        raise ConfigError(f"labels={spec!r} is not a class; allowed 0..{num_classes - 1} or all")
    y = check_labels(torch.as_tensor(spec), num_classes)
    return y.repeat(n) if y.numel() == 1 and n is not None else y


class GANTask(AdversarialTask):
    """`class_counts` (set by gan_lab.train from the data for a conditional model): samples per class of the
    training split; the data's class frequencies for label sampling ([]: the data has no labels)."""

    def __init__(
        self,
        *args,
        n_grid: int = 64,
        conditional: str | None = None,
        num_classes: int | None = None,
        aux_weight: float = 1.0,
        class_counts: list[int] | None = None,
        **kwargs,
    ):
        name = kwargs.get("name") or "gan"
        if kwargs.get("condition_shape") is not None:  # image pairs or two domains: batch[0] is not what D is for
            raise ConfigError(
                f"model={name} generates images from noise (and class labels), but the selected data gives image "
                f"pairs or two domains (condition {list(kwargs['condition_shape'])} -> target "
                f"{list(kwargs.get('data_shape') or [])}); allowed with that data: an image-conditioned model "
                "(model=srgan, srresnet, pix2pix) or model=cyclegan"
            )
        self._cond = _conditioning(name, conditional, num_classes, class_counts, kwargs)
        super().__init__(*args, **kwargs)
        self.conditional, self.num_classes, freq = self._cond
        self.aux_weight = check_range("model", "aux_weight", aux_weight, 0.0)
        self.class_freq = freq  # CPU float tensor of class frequencies (None: unconditional)
        self.z_dim = self.generator.z_dim
        self.register_buffer(
            "fixed_z", torch.randn(n_grid, self.z_dim, generator=torch.Generator().manual_seed(0)), persistent=True
        )

    # ---- what the loop asks ------------------------------------------------------------------------
    def generator_extra(self) -> dict:
        extra = super().generator_extra()
        if self._cond[0] is not None:
            extra.update(conditional=self._cond[0], num_classes=self._cond[1])
        return extra

    def discriminator_extra(self) -> dict:
        return self.generator_extra()  # the same conditioning; PacGAN adds label_slots

    def unpack(self, batch):
        if isinstance(batch, (tuple, list)):
            return batch[0], (batch[1] if self.num_classes else None)
        return batch, None

    def generate(self, cond, n: int, generator=None, z=None):
        g = generator or self.generator
        if z is None:
            z = torch.randn(n, self.z_dim, device=self.device)
        return g(z) if cond is None else g(z, cond)

    def d_labels(self, cond):
        return cond if self.num_classes else None

    def aux_loss(self, aux, cond):
        """AC-GAN: aux_weight x cross-entropy of D's class logits (N/m x m*K with PacGAN) against the labels."""
        return self.aux_weight * F.cross_entropy(aux.reshape(-1, self.num_classes).float(), cond.reshape(-1))

    # ---- sampling ----------------------------------------------------------------------------------
    def sample_labels(self, n: int, seed: int = 12345) -> torch.Tensor | None:
        """n labels drawn from the data's class frequencies (training split), on their own random stream;
        None for an unconditional model."""
        if not self.num_classes:
            return None
        g = torch.Generator().manual_seed(seed)
        return torch.multinomial(self.class_freq, n, replacement=True, generator=g)

    def label_protocol(self) -> dict:
        """How labels are drawn for the metrics (recorded with them)."""
        if not self.num_classes:
            return {}
        return {
            "conditional": self.conditional,
            "n_classes": self.num_classes,
            "labels": "train-split class frequencies",
        }

    def generate_samples(
        self, n: int, batch_size: int = 500, labels=None, seed: int = 12345, datamodule=None, cond=None
    ):
        """n samples; a conditional model takes `labels` (N class indices) or draws them from the data's class
        frequencies (`sample_labels`, same seed)."""
        if self.num_classes:
            labels = self.sample_labels(n, seed) if labels is None else check_labels(labels, self.num_classes)
            if len(labels) != n:
                raise ValueError(f"{len(labels)} labels for {n} samples")
            cond = labels
        elif labels is not None:
            raise ConfigError("labels= needs a class-conditional model (model.conditional); this one has no classes")
        return super().generate_samples(n, batch_size, cond=cond, seed=seed)

    def sample_panels(self, datamodule=None) -> dict:
        """Fixed-z samples; class-conditional: one row per class (at most 10 classes, evenly spaced), the same
        z in each column."""
        with self.eval_generator() as g:
            if not self.num_classes:
                return {"samples": self.generate(None, len(self.fixed_z), generator=g, z=self.fixed_z).float().cpu()}
            rows = labels_for("all", self.num_classes, min(self.num_classes, 10)).to(self.device)
            cols = min(len(self.fixed_z), 8)
            z = self.fixed_z[:cols].repeat(len(rows), 1)
            y = rows.repeat_interleave(cols)
            return {"samples": (self.generate(y, len(z), generator=g, z=z).float().cpu(), cols)}


def _conditioning(name: str, conditional, num_classes, counts, kwargs) -> tuple:
    """(mode, number of classes, class frequencies) after the checks that need only the config and data."""
    owner = f"model={name}"
    if conditional is None:
        return None, 0, None
    if counts is not None and not counts:
        raise ConfigError(
            f"{owner}: model.conditional={conditional} needs data with class labels, and this data has none; "
            f"labelled data: {LABELLED_DATA}"
        )
    data_k = len(counts) if counts else None
    if num_classes is None:
        num_classes = data_k
    elif data_k is not None and num_classes != data_k:
        raise ConfigError(
            f"{owner}: model.num_classes={num_classes!r} does not match the data's {data_k} classes; "
            f"allowed null (from the data) or {data_k}"
        )
    if num_classes is None:
        raise ConfigError(f"{owner}: model.conditional={conditional} needs model.num_classes (or labelled data)")
    check_mode("model", conditional, num_classes)
    for part in ("generator", "discriminator"):
        from hydra.utils import get_class

        target = (kwargs.get(part) or {}).get("_target_", "")
        try:
            ok = "conditional" in inspect.signature(get_class(target)).parameters
        except Exception:
            continue  # an unimportable target is reported by build() with its own line
        if not ok:
            raise ConfigError(
                f"{owner}: model.conditional={conditional} needs class-conditional nets; model.{part}._target_="
                f"{target} has none; allowed model=gan_mlp or model=dcgan nets"
            )
    freq = torch.tensor(counts if counts else [1] * num_classes, dtype=torch.float64)
    return conditional, num_classes, freq / freq.sum()
