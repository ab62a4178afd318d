"""Data parallel training (`trainer=ddp`) with two CPU processes (gloo), run from the CLI as a user would:
both ranks end with the same weights, rank 0 alone evaluates and writes, each rank trains on its own shard
of every epoch with its own random streams, a resumed DDP run continues exactly, every rank finishes its
end-of-run work, and a signal stops all ranks at one step with one checkpoint."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from conftest import ROOT, compose_cfg

from gan_lab.errors import ConfigError

BATCH, PER_EPOCH = 64, 12  # digits: 1617 training images; 1617 // (64 x 2 ranks) = 12 batches per rank per epoch
DATA = ["model=dcgan", "data=digits", f"data.batch_size={BATCH}"]
COMMON = [  # a tiny DCGAN: BatchNorm (not synced on CPU), FID/KID through torchmetrics on rank 0 only
    *DATA,
    "model.generator.ngf=8",
    "model.discriminator.ndf=8",
    "trick=[instance_noise,ema]",
    "trainer=ddp",
    "trainer.devices=2",
    "trainer.accelerator=cpu",
    "trainer.max_steps=16",  # one epoch and a third
    "callbacks.checkpoint.every_n_train_steps=8",
    "callbacks.checkpoint.save_top_k=-1",  # keep the step-8 checkpoint to resume from
    "metrics.every_n_steps=8",
    "metrics.n_samples=200",
    "logger=none",
    "callbacks.progress=null",
    "trainer.enable_progress_bar=false",
    "threads=1",
    "+callbacks.probe={_target_: test_ddp.RankProbe}",
]


def state_hash(module: torch.nn.Module, params_only: bool = False) -> str:
    h = hashlib.sha1()
    for k, v in sorted(module.named_parameters() if params_only else module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class RankProbe(pl.Callback):
    """Test-only: what one rank trained on and ended with, saved to <run dir>/probe<rank>.pt."""

    def __init__(self):
        self.rows, self.rng, self.start = [], None, None

    def on_train_start(self, trainer, pl_module):
        self.start = state_hash(pl_module, params_only=True)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.rows.append((batch[0] if isinstance(batch, (tuple, list)) else batch).detach().cpu().clone())
        if self.rng is None:
            self.rng = hashlib.sha1(torch.get_rng_state().numpy().tobytes()).hexdigest()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == 4:  # for a test that signals a running job
            (Path(trainer.default_root_dir) / f"running{trainer.global_rank}").touch()

    def on_exception(self, trainer, pl_module, exception):
        stop = {"step": trainer.global_step, "exception": type(exception).__name__}
        torch.save(stop, Path(trainer.default_root_dir) / f"stop{trainer.global_rank}.pt")

    def on_train_end(self, trainer, pl_module):
        from gan_lab.callbacks.evaluation import EvaluationCallback
        from gan_lab.callbacks.samples import SampleCallback

        found = {type(cb): cb for cb in trainer.callbacks}
        probe = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "rows": torch.cat(self.rows),
            "rng": self.rng,
            "start": self.start,
            "end": state_hash(pl_module, params_only=True),  # the weights of G, D and the EMA copy
            "state": state_hash(pl_module),  # and the buffers (BatchNorm running statistics: per rank on CPU)
            "evaluations": len(found[EvaluationCallback].history) if EvaluationCallback in found else None,
            "samples": len(found[SampleCallback].saved) if SampleCallback in found else None,
        }
        torch.save(probe, Path(trainer.default_root_dir) / f"probe{trainer.global_rank}.pt")


def ddp_cli(run_dir: Path, *extra: str):
    """The training CLI with two CPU processes; returns each rank's probe (tests/ on PYTHONPATH for it)."""
    path = os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", "WANDB_SILENT": "true"}
    args = [sys.executable, "-m", "gan_lab.train", *COMMON, *extra, f"hydra.run.dir={run_dir}"]
    r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    # every rank finished its end-of-run work (rank 0 waits for the others before it records "completed")
    assert all((run_dir / f"probe{rank}.pt").is_file() for rank in (0, 1)), r.stderr[-3000:]
    return [torch.load(run_dir / f"probe{rank}.pt", weights_only=True) for rank in (0, 1)]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("ddp") / "run"
    return run, ddp_cli(run)


def train_split() -> torch.Tensor:
    from gan_lab.build import build
    from gan_lab.train import _container

    dm = build(_container(compose_cfg(*DATA).data), "data")
    return dm.split_tensors("train")[0]


def test_two_processes_same_weights_rank0_writes_disjoint_shards(ddp_run):
    from gan_lab.data.base import EpochBatches

    run, (p0, p1) = ddp_run
    assert (p0["rank"], p1["rank"], p0["world_size"]) == (0, 1, 2)
    # (a) one model: identical G, D (and EMA) weights on both ranks, and they were trained
    assert p0["end"] == p1["end"] and p0["start"] == p1["start"] and p0["end"] != p0["start"]
    # (b) rank 0 alone evaluates (steps 8 and 16; FID would hang if it waited for rank 1), draws samples and
    # writes metrics.json
    assert (p0["evaluations"], p1["evaluations"]) == (2, 0)
    assert p0["samples"] >= 1 and p1["samples"] == 0
    rows = (run / "metrics.csv").read_text().splitlines()
    col = rows[0].split(",").index("metrics/fid")
    assert sum(1 for r in rows[1:] if r.split(",")[col] != "") == 2
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["steps"] == 16 and metrics["protocol"]["step"] == 16
    # (c) each rank its own shard, a pure function of (seed, epoch, position): exactly the batches
    # EpochBatches gives that rank (disjoint slices of the epoch's order: test_shards_are_disjoint_...)
    train = train_split()
    assert len(train) // (2 * BATCH) == PER_EPOCH
    for p in (p0, p1):
        epochs = [EpochBatches((train,), BATCH, 0, lambda e=e: (e, 0), p["rank"], world_size=2) for e in (0, 1)]
        assert torch.equal(p["rows"], torch.cat([b for epoch in epochs for b in epoch])[: 16 * BATCH])
    assert not torch.equal(p0["rows"][:BATCH], p1["rows"][:BATCH])
    # each rank its own random streams (latent codes, instance noise): the fakes differ across ranks
    assert p0["rng"] != p1["rng"]


def test_resumed_ddp_run_continues_exactly(ddp_run, tmp_path):
    run, (p0, _) = ddp_run
    (mid,) = (run / "checkpoints").glob("epoch=0-step=8.ckpt")  # mid-epoch 0; the run goes on into epoch 1
    # quoted: '=' in the name; no evaluations or samples (they do not touch the training streams)
    q0, q1 = ddp_cli(tmp_path / "resumed", f"ckpt_path='{mid}'", "callbacks.metrics=null", "callbacks.samples=null")
    assert q0["end"] == q1["end"] == p0["end"]
    # rank 0's buffers too; rank 1's BatchNorm running statistics (per rank without SyncBatchNorm, never
    # saved or used: training normalises with batch statistics) restart from rank 0's checkpointed ones
    assert q0["state"] == p0["state"]
    a = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 16 and a["world_size"] == b["world_size"] == 2
    for oa, ob in zip(a["optimizer_states"], b["optimizer_states"]):
        for pid, st in oa["state"].items():
            for name, t in st.items():
                assert torch.equal(torch.as_tensor(t), torch.as_tensor(ob["state"][pid][name])), (pid, name)
    for ra, rb in zip(a["rng_state_per_rank"], b["rng_state_per_rank"]):
        assert torch.equal(ra["torch"], rb["torch"])


def test_resume_with_another_number_of_processes_is_refused(ddp_run, tmp_path):
    from gan_lab.train import train

    run, _ = ddp_run
    same_model = [o for o in COMMON if o.startswith(("model.", "trick="))]  # only the process count differs
    cfg = compose_cfg(*DATA, *same_model, "logger=none", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}")
    with pytest.raises(ConfigError, match=r"written by 2 process\(es\) and this run has 1"):
        train(cfg, tmp_path)
    assert not (tmp_path / "metrics.json").exists()


# ---- a signal to a DDP job ------------------------------------------------------------------------------
def ddp_popen(run_dir: Path, *extra: str) -> subprocess.Popen:
    path = os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", "WANDB_SILENT": "true"}
    args = [sys.executable, "-m", "gan_lab.train", *COMMON, *extra, f"hydra.run.dir={run_dir}"]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def assert_stopped_together(run: Path, code: int, sig: str) -> int:
    """Both ranks stopped at one step for `sig`; one checkpoint of that step; rank 0 recorded it and exited
    with `code`. Returns the step."""
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["status"], metrics["signal"], metrics["exit_code"]) == ("preempted", sig, code)
    stops = [torch.load(run / f"stop{rank}.pt", weights_only=True) for rank in (0, 1)]
    assert {s["exception"] for s in stops} == {"Preempted"}
    assert stops[0]["step"] == stops[1]["step"] == metrics["steps"] > 0  # the ranks agreed on the step
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == metrics["steps"] and ckpt["world_size"] == 2 and len(ckpt["rng_state_per_rank"]) == 2
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]  # no leftovers
    return metrics["steps"]


@pytest.mark.slow  # two training processes, twice: a minute or more on a loaded 2-core machine
def test_sigterm_to_the_launching_process_stops_every_rank_at_one_step(tmp_path):
    """kill <pid of the command> (rank 0, which started rank 1): both ranks stop at the same step boundary,
    one checkpoint, "preempted", exit 143; the same command again continues the run to its end."""
    run = tmp_path / "run"
    stop_later = ["trainer.max_steps=400", "callbacks.checkpoint.every_n_train_steps=1000", "metrics.every_n_steps=0"]
    p = ddp_popen(run, *stop_later)
    deadline = time.time() + 240
    while not all((run / f"running{r}").exists() for r in (0, 1)) and time.time() < deadline and p.poll() is None:
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=180)
    assert p.returncode == 143, err[-3000:]
    step = assert_stopped_together(run, 143, "SIGTERM")
    more = ddp_popen(run, *stop_later[1:], f"trainer.max_steps={step + 3}")  # a requeued job: same directory
    _, err = more.communicate(timeout=300)
    assert more.returncode == 0, err[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["status"], metrics["steps"]) == ("completed", step + 3)


@pytest.mark.slow
def test_a_signal_to_every_rank_stops_them_at_one_step(tmp_path):
    """SLURM signals every task: SIGUSR1 to both ranks after step 5 saves step 5 once and exits 138."""
    run = tmp_path / "run"
    sig = "+callbacks.sig={_target_: gan_lab.callbacks.faults.SignalAtStep, step: 5, signal: SIGUSR1}"
    p = ddp_popen(run, "trainer.max_steps=400", "callbacks.checkpoint.every_n_train_steps=1000", sig)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 138, err[-3000:]
    assert assert_stopped_together(run, 138, "SIGUSR1") == 5


def test_only_rank_zero_moves_the_final_checkpoint_files(tmp_path):
    """The ranks of a DDP run share the checkpoint directory: rank 1 must not restore, link or delete the
    final last.ckpt there (two processes doing it raced, and the loser's end-of-run work was lost)."""
    from gan_lab.callbacks.signals import PreemptionCheckpoint

    cb = PreemptionCheckpoint(tmp_path)
    cb.path.write_bytes(b"lightning's end-of-training save")
    cb._kept.write_bytes(b"the last batch's state")
    cb.final_saved_step = 16
    rank1 = SimpleNamespace(is_global_zero=False, global_step=16)
    cb.on_train_end(rank1, None)
    cb.teardown(rank1, None, "fit")
    assert cb.path.read_bytes() == b"lightning's end-of-training save" and cb._kept.is_file()
    rank0 = SimpleNamespace(is_global_zero=True, global_step=16)
    cb.on_train_end(rank0, None)
    assert cb.path.read_bytes() == b"the last batch's state"
    cb.teardown(rank0, None, "fit")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


# ---- in-process, no processes started -------------------------------------------------------------------
def fake_trainer(rank: int, world: int, device: str = "cpu"):
    return SimpleNamespace(
        global_rank=rank,
        world_size=world,
        current_epoch=0,
        global_step=0,
        strategy=SimpleNamespace(root_device=torch.device(device)),
    )


def test_shards_are_disjoint_equal_length_and_cover_an_epoch():
    from gan_lab.data.base import EpochBatches

    x = torch.arange(103)
    for world in (1, 2, 3):
        per_rank = 103 // (10 * world)
        for epoch in (0, 1):
            shards = [
                torch.cat(list(EpochBatches((x,), 10, 3, lambda e=epoch: (e, 0), rank, world))) for rank in range(world)
            ]
            assert {len(s) for s in shards} == {per_rank * 10}  # as many batches on every rank: none waits
            seen = torch.cat(shards)
            assert len(set(seen.tolist())) == len(seen)  # disjoint
            perm = torch.randperm(103, generator=torch.Generator().manual_seed(3 + 7919 * epoch))
            assert set(seen.tolist()) == set(perm[: len(seen)].tolist())  # together: the epoch's order
        # a rank resumed mid-epoch continues with the batches it would have had
        full = list(EpochBatches((x,), 10, 3, lambda: (1, 0), world - 1, world))
        assert [b.tolist() for b in EpochBatches((x,), 10, 3, lambda: (1, 1), world - 1, world)] == [
            b.tolist() for b in full[1:]
        ]


def test_batch_size_times_processes_larger_than_the_data_is_refused():
    from gan_lab.build import build
    from gan_lab.train import _container

    dm = build(_container(compose_cfg("data=toy2d_ring", "data.n_samples=100", "data.batch_size=60").data), "data")
    dm.setup()
    dm.trainer = fake_trainer(0, 2)
    with pytest.raises(ConfigError, match=r"batch_size=60 x 2 processes .*allowed batch_size in \[1, 45\]"):
        dm.train_dataloader()


def test_ddp_preset_strategy_and_sync_batchnorm_off_on_cpu(tmp_path, caplog):
    from gan_lab.train import build_objects

    cfg = compose_cfg("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=1", "logger=none")
    with caplog.at_level("WARNING", logger="gan_lab"):
        _, task, trainer = build_objects(cfg, tmp_path)
    assert type(trainer.strategy).__name__ == "DDPStrategy"
    assert trainer.strategy._ddp_kwargs["find_unused_parameters"] is True
    assert trainer.strategy._layer_sync is None  # torch's SyncBatchNorm raises on CPU; DCGAN has BatchNorm
    assert "sync_batchnorm=true is off on cpu" in caplog.text


def test_only_rank_zero_writes_metrics_json(tmp_path, monkeypatch):
    from pytorch_lightning.utilities import rank_zero_only

    from gan_lab.train import write_metrics

    monkeypatch.setattr(rank_zero_only, "rank", 1)
    write_metrics(tmp_path, {"status": "completed"})
    assert not (tmp_path / "metrics.json").exists()
    monkeypatch.setattr(rank_zero_only, "rank", 0)
    write_metrics(tmp_path, {"status": "completed"})
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"status": "completed"}


def test_ddp_inside_a_sweep_is_refused(tmp_path):
    """A -m job would have Lightning re-run the whole sweep once per process: refused before any starts."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict

    from gan_lab.train import train

    cfg = compose_cfg("model=gan_mlp", "data=toy2d_ring", "trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu",
                      "logger=none", hydra=True)  # fmt: skip
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
    HydraConfig.instance().set_config(cfg)
    try:
        with pytest.raises(ConfigError, match=r"trainer=ddp with 2 processes cannot run as a job of a -m sweep"):
            train(cfg, tmp_path)
    finally:
        HydraConfig.instance().cfg = None
    assert not (tmp_path / "checkpoints").exists()
