"""`data=cifar100`: CIFAR-100 (fine labels) from the official python release; the reader is `gan_lab.data.cifar`."""

from gan_lab.data.cifar import CIFAR100, CIFARDataModule


class CIFAR100DataModule(CIFARDataModule):
    release = CIFAR100
