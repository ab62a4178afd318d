"""`data=cifar10`: CIFAR-10 from the official python release; the reader is `gan_lab.data.cifar`."""

from gan_lab.data.cifar import CIFAR10, CIFARDataModule


class CIFAR10DataModule(CIFARDataModule):
    release = CIFAR10
