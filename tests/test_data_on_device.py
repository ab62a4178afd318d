"""`data.on_device=true`: the splits are copied once to the trainer's device and batches are sliced there;
the batches (and so a training run) are the same as with the data on the host."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from conftest import compose_cfg, train_run

from gan_lab.errors import ConfigError

DATA = ["model=gan_mlp", "data=toy2d_ring", "data.n_samples=1000", "data.batch_size=50"]


def data_module(*overrides: str):
    from gan_lab.build import build
    from gan_lab.train import _container

    torch.manual_seed(0)  # the training order's seed (gan_lab.train seeds before setting up the data)
    dm = build(_container(compose_cfg(*DATA, *overrides).data), "data")
    dm.setup()
    return dm


def attach(dm, device: str, epoch: int = 0):
    dm.trainer = SimpleNamespace(
        global_rank=0,
        world_size=1,
        current_epoch=epoch,
        global_step=epoch * (900 // 50),
        strategy=SimpleNamespace(root_device=torch.device(device)),
    )
    return dm


def batches(dm, epoch: int = 0):
    attach(dm, "cpu", epoch)
    return list(dm.train_dataloader()), list(dm.val_dataloader())


def test_on_device_gives_the_same_batches_on_cpu():
    host, resident = data_module(), data_module("data.on_device=true")
    assert resident.on_device and not host.on_device
    for epoch in (0, 1):
        (th, vh), (tr, vr) = batches(host, epoch), batches(resident, epoch)
        assert len(th) == len(tr) == 18 and len(vh) == len(vr) == 2
        for a, b in zip(th + vh, tr + vr):
            assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert resident._tensors("train")[0] is resident.split_tensors("train")[0]  # CPU: no copy at all


def test_on_device_copies_each_split_once_and_slices_there():
    """The device branch on the 'meta' device (shapes only; GPU values: the CUDA test below)."""
    dm = attach(data_module("data.on_device=true"), "meta")
    first = list(dm.train_dataloader())
    again = dm._tensors("train")
    assert all(t.device.type == "meta" for b in first for t in b)
    assert [tuple(t.shape) for t in first[0]] == [(50, 2), (50,)]
    assert again[0] is dm._resident["train"][0]  # made once, reused by every later loader and epoch
    assert dm.split_tensors("train")[0].device.type == "cpu"  # metrics and samples keep the host copy
    assert next(iter(dm.val_dataloader()))[0].device.type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_device_on_cuda_same_values_no_copy_per_batch():
    host, resident = attach(data_module(), "cpu"), attach(data_module("data.on_device=true"), "cuda")
    th, tr = list(host.train_dataloader()), list(resident.train_dataloader())
    for a, b in zip(th, tr):
        assert all(y.is_cuda and torch.equal(x, y.cpu()) for x, y in zip(a, b))
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in resident.train_dataloader():  # one epoch: the permutation is the only host-to-device copy
            torch.cuda.synchronize()
    copies = [e for e in prof.events() if "Memcpy HtoD" in e.name]
    assert len(copies) <= 1, [e.name for e in copies]


def test_on_device_training_run_matches_host(tmp_path):
    common = [*DATA, "trainer.max_steps=20", "callbacks.checkpoint.every_n_train_steps=0", "threads=1"]
    a = train_run(tmp_path / "host", *common)
    b = train_run(tmp_path / "device", *common, "data.on_device=true")
    assert a["status"] == b["status"] == "completed"
    ca = torch.load(tmp_path / "host" / "checkpoints" / "last.ckpt", weights_only=True)
    cb = torch.load(tmp_path / "device" / "checkpoints" / "last.ckpt", weights_only=True)
    for k, v in ca["state_dict"].items():
        assert torch.equal(v, cb["state_dict"][k]), k


def test_on_device_must_be_a_boolean():
    with pytest.raises(ConfigError, match=r"on_device='yes' must be a boolean; allowed true, false"):
        data_module("data.on_device=yes")
