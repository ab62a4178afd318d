"""A run killed with SIGKILL mid-epoch and resumed with ckpt_path=last ends bit-identical (CPU) to an
uninterrupted run: weights, EMA, optimizer states, RNG streams, trick schedules and step counters."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import run_cli

COMMON = [
    "model=gan_mlp",
    "data=toy2d_ring",
    "data.n_samples=20000",  # 70 batches per epoch: the kill lands mid-epoch
    "trick=[label_flip,instance_noise,ema,d_dropout]",
    "trick.instance_noise.anneal_steps=250",
    "trainer.max_steps=300",
    "callbacks.checkpoint.every_n_train_steps=40",
    "metrics.every_n_steps=100",
    "metrics.n_samples=200",
    "logger=none",
    "callbacks.progress=null",
    "trainer.enable_progress_bar=false",
    "seed=5",
]


def load(path):
    return torch.load(path, weights_only=True)


@pytest.mark.parametrize("extra", [[], ["model.conditional=acgan"]], ids=["gan", "conditional_acgan"])
def test_sigkill_then_resume_is_bit_identical(extra, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    r = run_cli("gan_lab.train", *COMMON, *extra, f"hydra.run.dir={a}")
    assert r.returncode == 0, r.stderr[-3000:]
    killed = run_cli(
        "gan_lab.train",
        *COMMON,
        *extra,
        f"hydra.run.dir={b}",
        "+callbacks.kill._target_=gan_lab.callbacks.faults.KillAtStep",
        "+callbacks.kill.step=150",
    )
    assert killed.returncode == -9, (killed.returncode, killed.stderr[-2000:])
    assert load(b / "checkpoints" / "last.ckpt")["global_step"] == 120  # the last checkpoint before the kill
    assert not (b / "metrics.json").exists()
    resumed = run_cli("gan_lab.train", *COMMON, *extra, f"hydra.run.dir={b}", "ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "not resumable" not in resumed.stderr  # the loaders declare Lightning's resumable-loader interface
    ca, cb = load(a / "checkpoints" / "last.ckpt"), load(b / "checkpoints" / "last.ckpt")
    assert ca["global_step"] == cb["global_step"] == 300
    # the loader's saved state is its position: 300 batches at 70 an epoch
    assert ca["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"epoch": 4, "batches_done": 20}]
    assert ca["state_dict"].keys() == cb["state_dict"].keys()
    assert any("ema" in k for k in ca["state_dict"])
    for k, v in ca["state_dict"].items():
        assert torch.equal(v, cb["state_dict"][k]), k
    for oa, ob in zip(ca["optimizer_states"], cb["optimizer_states"]):
        for pid, st in oa["state"].items():
            for name, t in st.items():
                assert torch.equal(torch.as_tensor(t), torch.as_tensor(ob["state"][pid][name])), (pid, name)
    assert torch.equal(ca["rng_state"]["torch"], cb["rng_state"]["torch"])
    # the history before the kill survives the resume: metrics.csv rows (Lightning's writer deletes the file)
    ha, hb = history(a), history(b)
    assert min(hb) < 100 and max(hb) == max(ha)  # rows from before the kill and after the resume
    assert set(ha) - set(hb) <= set(range(101, 121))  # only rows never flushed before the SIGKILL are gone
    first_after = min(s for s in hb if s > 120)  # its window averages only the steps since the resume
    assert all(hb[s] == ha[s] for s in hb if s != first_after), [s for s in hb if hb[s] != ha[s]][:5]


def history(run_dir) -> dict[int, str]:
    """step -> train/g_loss of a run's metrics.csv."""
    import csv

    with (run_dir / "metrics.csv").open(newline="") as f:
        return {int(r["step"]): r["train/g_loss"] for r in csv.DictReader(f) if r.get("train/g_loss")}


def test_checkpoint_of_another_model_gives_one_line(tmp_path):
    from conftest import train_run

    from gan_lab.errors import ConfigError

    train_run(tmp_path / "a", "model=gan_mlp", "data=toy2d_ring", "trainer.max_steps=5")
    ckpt = tmp_path / "a" / "checkpoints" / "last.ckpt"
    assert load(ckpt)["gan_lab_format"] >= 1
    with pytest.raises(ConfigError, match="does not match the composed model"):
        train_run(
            tmp_path / "b", "model=gan_mlp", "data=toy2d_ring", "model.generator.hidden=[64]", f"ckpt_path={ckpt}"
        )


@pytest.mark.slow  # three CycleGAN runs in subprocesses (~1 min on an idle machine)
def test_cyclegan_sigkill_then_resume_is_bit_identical(tmp_path):
    """CycleGAN: both generators and discriminators, the fake history buffers (full and swapping), the LR
    schedulers (decaying across the kill) and the unpaired batch order resume bit-identically."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for folder, n in (("trainA", 24), ("trainB", 20), ("testA", 4), ("testB", 4)):
        (tmp_path / "data" / folder).mkdir(parents=True)
        for i in range(n):
            image = Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8))
            image.save(tmp_path / "data" / folder / f"{i}.png")
    common = [
        "model=cyclegan", "data=unpaired_folder", f"data.root={tmp_path / 'data'}", "data.size=16", "data.channels=1",
        "data.batch_size=4", "model.generator.ngf=4", "model.generator.n_blocks=1", "model.discriminator.ndf=4",
        "model.pool_size=8", "model.n_eval=4", "trick=[ema,instance_noise]", "trainer.max_steps=20",
        "callbacks.checkpoint.every_n_train_steps=6", "metrics.every_n_steps=0", "logger=none",
        "callbacks.progress=null", "trainer.enable_progress_bar=false", "seed=3",
    ]  # fmt: skip
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_cli("gan_lab.train", *common, f"hydra.run.dir={a}").returncode == 0
    kill = ["+callbacks.kill._target_=gan_lab.callbacks.faults.KillAtStep", "+callbacks.kill.step=15"]
    assert run_cli("gan_lab.train", *common, f"hydra.run.dir={b}", *kill).returncode == -9
    assert load(b / "checkpoints" / "last.ckpt")["global_step"] == 12  # mid-epoch (6 batches an epoch)
    resumed = run_cli("gan_lab.train", *common, f"hydra.run.dir={b}", "ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    ca, cb = load(a / "checkpoints" / "last.ckpt"), load(b / "checkpoints" / "last.ckpt")
    assert ca["global_step"] == cb["global_step"] == 20
    assert {"pool_a.images", "pool_b.count", "generator.ab.net.1.weight"} <= set(ca["state_dict"])
    assert int(ca["state_dict"]["pool_b.count"]) == 8
    for k, v in ca["state_dict"].items():
        assert torch.equal(v, cb["state_dict"][k]), k
    assert ca["lr_schedulers"] == cb["lr_schedulers"] and ca["lr_schedulers"][0]["last_epoch"] == 20
    for oa, ob in zip(ca["optimizer_states"], cb["optimizer_states"]):
        assert oa["param_groups"][0]["lr"] == ob["param_groups"][0]["lr"] < 2e-4
        for pid, st in oa["state"].items():
            for name, t in st.items():
                assert torch.equal(torch.as_tensor(t), torch.as_tensor(ob["state"][pid][name])), (pid, name)


def test_copied_run_dir_resumes_with_its_own_checkpoint_paths(tmp_path):
    """A run directory copied elsewhere (cp -r) and continued keeps tracking the checkpoints of the copy: no
    "dirpath has changed" warning, and no path of the saved callback state points into the original."""
    import shutil
    import warnings

    from conftest import train_run

    args = ("model=gan_mlp", "data=toy2d_ring", "callbacks.checkpoint.every_n_train_steps=2")
    args += ("callbacks.checkpoint.save_top_k=-1",)  # every periodic checkpoint is kept
    a, b = tmp_path / "a", tmp_path / "b"
    train_run(a, *args, "trainer.max_steps=4")
    before = {p.name: p.stat().st_mtime_ns for p in (a / "checkpoints").iterdir()}
    shutil.copytree(a, b)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_run(b, *args, "trainer.max_steps=8", "ckpt_path=last")
    assert not [w for w in caught if "dirpath has changed" in str(w.message)]
    state = next(v for v in load(b / "checkpoints" / "last.ckpt")["callbacks"].values() if "dirpath" in v)
    assert state["dirpath"] == str(b / "checkpoints")
    named = [state["last_model_path"], state["best_model_path"], *state["best_k_models"]]
    kept = sorted(p.name for p in (b / "checkpoints").iterdir())
    assert kept == [f"epoch=0-step={s}.ckpt" for s in (2, 4, 6, 8)] + ["last.ckpt"]
    assert all(Path(p).parent == b / "checkpoints" and Path(p).is_file() for p in named), named
    assert {p.name: p.stat().st_mtime_ns for p in (a / "checkpoints").iterdir()} == before  # original untouched


def test_checkpoint_state_follows_only_a_copy_of_its_directory(tmp_path):
    from pytorch_lightning.callbacks import ModelCheckpoint

    from gan_lab.callbacks.checkpoint import RunCheckpoint, follow_moved_dir

    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    for name in ("last.ckpt", "a.ckpt", "b.ckpt"):
        (old / name).write_bytes(b"x")
    state = {
        "dirpath": str(old),
        "last_model_path": str(old / "last.ckpt"),
        "best_model_path": str(old / "a.ckpt"),
        "kth_best_model_path": str(old / "b.ckpt"),
        "best_k_models": {str(old / "a.ckpt"): 1.0, str(old / "b.ckpt"): 2.0},
    }
    assert follow_moved_dir(state, str(new)) is None  # nothing under new/: the directory was changed, not copied
    for name in ("last.ckpt", "a.ckpt", "b.ckpt"):
        (new / name).write_bytes(b"x")
    moved = follow_moved_dir(state, str(new))
    assert moved["dirpath"] == str(new) and moved["last_model_path"] == str(new / "last.ckpt")
    assert moved["best_model_path"] == str(new / "a.ckpt") and moved["kth_best_model_path"] == str(new / "b.ckpt")
    assert moved["best_k_models"] == {str(new / "a.ckpt"): 1.0, str(new / "b.ckpt"): 2.0}
    assert follow_moved_dir(dict(state, last_model_path="/elsewhere/last.ckpt"), str(new)) is None
    (new / "b.ckpt").unlink()
    assert follow_moved_dir(state, str(new)) is None  # one named file missing: Lightning's behaviour stands
    assert follow_moved_dir(state, str(old)) is None  # same directory: nothing to follow
    # the same state key as ModelCheckpoint: checkpoints load into either class, older runs keep their state
    kw = dict(dirpath=str(new), save_last=True, save_top_k=0, every_n_train_steps=500)
    assert RunCheckpoint(**kw).state_key == ModelCheckpoint(**kw).state_key
