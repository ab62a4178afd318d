"""scikit-learn digits <-> MNIST: an unpaired translation pair whose quality is measurable, since both
domains have labels and shipped classifiers (`gan_lab.metrics.features`).

    data=digits2mnist data.root=<folder of the MNIST IDX files> data.split=t10k

Domain A: the 1797 scikit-learn digits (8 x 8, embedded, upscaled to `size` as `data=digits`); domain B:
MNIST from `root` (`split` train or t10k, the first `limit` images when > 0, resized to `size` as
`data=mnist`). Each domain is split by `val_fraction` (seeded by `split_seed`); the labels travel in
`domain_tensors` only: CycleGAN never sees them, the held-out metrics score translations with them. The
periodic image metrics score G_AB(digits) against MNIST with the MNIST feature net (`feature_net`).
"""

from __future__ import annotations

from gan_lab.data.base import resize_images, split_train_val
from gan_lab.data.digits import load_digits_images
from gan_lab.data.mnist import load_mnist
from gan_lab.data.unpaired_folder import UnpairedDataModule
from gan_lab.errors import check_range


class Digits2MNISTDataModule(UnpairedDataModule):
    """Batches are (digits, MNIST) images, 1 x size x size in [-1, 1]; `feature_nets` names the shipped
    classifier of each domain."""

    feature_nets = ("digits", "mnist")
    feature_net = "mnist"  # of domain B, for the generic metrics of G_AB's samples

    def __init__(
        self,
        root: str = "data/mnist",
        split: str = "train",
        size: int = 32,
        limit: int = 0,
        domains=("digits", "mnist"),
        val_fraction: float = 0.2,
        **kw,
    ):
        super().__init__(domains=domains, name="digits2mnist", val_fraction=val_fraction, **kw)
        owner = "data.digits2mnist"
        check_range(owner, "size", size, 8, 256)
        check_range(owner, "limit", limit, 0)
        self.root, self.split, self.size, self.limit = root, split, int(size), int(limit)
        self.shape = self.condition_shape = (1, self.size, self.size)
        self.protocol = {"size": self.size, "mnist_split": split, "limit": self.limit, "resize": "bilinear"}

    def load_domains(self):
        xb, yb = load_mnist(self.root, self.split)  # first: a missing MNIST folder fails before anything else
        if self.limit:
            xb, yb = xb[: self.limit], yb[: self.limit]
        xb = (resize_images(xb, self.size).clamp(0, 1) * 2 - 1).contiguous()
        xa, ya = load_digits_images(self.size)
        (ta, tya), (va, vya) = split_train_val((xa, ya), self.val_fraction, self.split_seed)
        (tb, tyb), (vb, vyb) = split_train_val((xb, yb), self.val_fraction, self.split_seed + 1)
        return (ta, tb, tya, tyb), (va, vb, vya, vyb)
