"""Nothing a user has is lost: refused runs and sweeps leave their directories byte for byte as they were,
sweeps and runs lock their directories, checkpoints are written atomically, a signal saves and stops the run,
a full disk gives one line, and a finished run continues exactly. Each test injects the fault it is about."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import FAST, ROOT, fail_writes_to, run_cli, train_run

from gan_lab.errors import ConfigError, StorageError

MLP = ["model=gan_mlp", "data=toy2d_ring", "metrics.n_samples=200", "threads=1", *FAST]


def snapshot(directory: Path) -> dict[str, tuple[str, int]]:
    """Every file and directory under `directory` -> (content hash, mtime in ns): a byte or a touch shows."""
    out = {}
    for p in sorted(directory.rglob("*")):
        rel = str(p.relative_to(directory))
        if p.is_file():
            out[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        else:
            out[rel] = ("dir", p.stat().st_mtime_ns)
    out["."] = ("dir", directory.stat().st_mtime_ns)
    return out


def one_error_line(r: subprocess.CompletedProcess, *expected: str) -> str:
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr[-3000:]
    for s in expected:
        assert s in lines[0], (s, lines[0])
    return lines[0]


def load(path):
    from gan_lab.checkpoints import load as load_ckpt

    return load_ckpt(path)


def assert_same_state(a: dict, b: dict) -> None:
    """Weights (with EMA), optimizer states, every random stream and the step counters are identical."""
    assert a["global_step"] == b["global_step"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    for oa, ob in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        for pid, st in oa["state"].items():
            for name, t in st.items():
                assert torch.equal(torch.as_tensor(t), torch.as_tensor(ob["state"][pid][name])), (pid, name)
    ra, rb = a["rng_state"], b["rng_state"]
    assert torch.equal(ra["torch"], rb["torch"])
    assert ra["python"] == rb["python"]
    assert torch.equal(ra["numpy"][1], rb["numpy"][1]) and ra["numpy"][2] == rb["numpy"][2]
    assert a["loops"]["fit_loop"]["epoch_progress"] == b["loops"]["fit_loop"]["epoch_progress"]
    assert a.get("trick_state", {}).keys() == b.get("trick_state", {}).keys()
    monitor = [k for k in a["callbacks"] if "Monitor" in k]
    for k in monitor:
        assert a["callbacks"][k] == b["callbacks"][k], k


# ---- 1-2: a refused run or a relaunched sweep changes nothing ------------------------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    r = run_cli("gan_lab.train", *MLP, "trainer.max_steps=30", f"hydra.run.dir={run}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"
    return run


@pytest.mark.parametrize(
    "overrides,expected",
    [
        ([], ["already holds a finished run", "ckpt_path=last", "overwrite=true"]),
        (["ckpt_path=last"], ["is at step 30 and trainer.max_steps=30", "trainer.max_steps > 30"]),
        (
            ["ckpt_path=last", "trainer.max_steps=60", "model.generator.hidden=[64]"],
            ["does not match the composed model", "generator.net.0.weight"],
        ),
        (["ckpt_path=last", "trainer.max_steps=60", "trainer.devices=0"], ["trainer: devices=0"]),
    ],
    ids=["rerun", "resume_at_max_steps", "resume_other_model", "resume_bad_value"],
)
def test_refused_run_leaves_every_byte(finished_run, overrides, expected):
    before = snapshot(finished_run)
    r = run_cli("gan_lab.train", *MLP, "trainer.max_steps=30", *overrides, f"hydra.run.dir={finished_run}")
    assert r.returncode == 2, r.stderr[-3000:]
    one_error_line(r, *expected)
    assert snapshot(finished_run) == before
    # the run's checkpoint still evaluates against its own recorded config
    cfg = (finished_run / ".hydra" / "config.yaml").read_text()
    assert "hidden:\n    - 256" in cfg or "hidden: [256" in cfg or "- 256" in cfg


def test_refused_run_in_a_new_directory_leaves_nothing(tmp_path):
    run = tmp_path / "new"
    r = run_cli("gan_lab.train", *MLP, "trainer.devices=0", f"hydra.run.dir={run}")
    assert r.returncode == 2
    one_error_line(r, "trainer: devices=0")
    assert not run.exists()


@pytest.mark.slow  # several training processes: minutes on a loaded 2-core machine
def test_relaunched_sweep_keeps_finished_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["gan_lab.train", "-m", *MLP, "trainer.max_steps=20", "seed=0,1", f"hydra.sweep.dir={sweep}"]
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert len(jobs) == 2 and all(json.loads((j / "metrics.json").read_text())["status"] == "completed" for j in jobs)
    before = {j.name: snapshot(j) for j in jobs}
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "already holds a finished run" in r.stdout + r.stderr
    assert {j.name: snapshot(j) for j in jobs} == before


# ---- 3: locks ------------------------------------------------------------------------------------------
def _write_lock(directory: Path, pid: int, host: str | None = None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    info = {"host": host or socket.gethostname(), "pid": pid, "since": time.time()}
    (directory / ".gan_lab.lock").write_text(json.dumps(info))


def test_second_sweep_into_a_live_sweep_directory_is_refused(tmp_path):
    sweep = tmp_path / "sweep"
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        _write_lock(sweep, owner.pid)
        before = snapshot(sweep)
        r = run_cli("gan_lab.train", "-m", *MLP, "trainer.max_steps=5", "seed=0,1", f"hydra.sweep.dir={sweep}")
        assert r.returncode == 2, r.stderr[-3000:]
        one_error_line(r, f"sweep directory {str(sweep)!r} is in use by process {owner.pid}", "hydra.sweep.dir")
        assert snapshot(sweep) == before
    finally:
        owner.kill()
        owner.wait()


def test_stale_lock_is_taken_over_and_released(tmp_path):
    from gan_lab.runlock import DirLock

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write_lock(tmp_path / "run", dead.pid)
    with DirLock(tmp_path / "run", "run directory"):
        info = json.loads((tmp_path / "run" / ".gan_lab.lock").read_text())
        assert info["pid"] == os.getpid()
    assert not (tmp_path / "run" / ".gan_lab.lock").exists()
    _write_lock(tmp_path / "other", 12345, host="another-host")
    with pytest.raises(ConfigError, match="in use by process 12345 on another-host.*delete"):
        DirLock(tmp_path / "other", "run directory").acquire()


def test_run_into_a_directory_in_use_is_refused(tmp_path):
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        _write_lock(tmp_path / "run", owner.pid)
        with pytest.raises(ConfigError, match=f"run directory .* is in use by process {owner.pid}"):
            train_run(tmp_path / "run", *MLP, "trainer.max_steps=5")
        assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".gan_lab.lock"]
    finally:
        owner.kill()
        owner.wait()


# ---- 4-5: atomic checkpoints, last.ckpt is the newest --------------------------------------------------
def test_checkpoint_write_is_atomic_and_never_staged_in_tmp(tmp_path, monkeypatch):
    from gan_lab.callbacks.checkpoint_io import AtomicCheckpointIO

    staging = tmp_path / "system-tmp"
    staging.mkdir()
    monkeypatch.setenv("TMPDIR", str(staging))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    io = AtomicCheckpointIO()
    dest = tmp_path / "scratch" / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(200_000)}, "global_step": 1}, dest)
    assert list(staging.iterdir()) == []  # nothing staged in the system's temporary directory
    fail_writes_to(monkeypatch, ".last.ckpt.tmp", errno.EIO)  # the process dies mid-write, in effect
    with pytest.raises(StorageError, match="cannot write checkpoint"):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(200_000)}, "global_step": 2}, dest)
    monkeypatch.undo()
    assert load(dest)["global_step"] == 1 and torch.equal(load(dest)["state_dict"]["w"], torch.ones(200_000))
    assert sorted(p.name for p in dest.parent.iterdir()) == ["last.ckpt"]  # no orphan temporary file


def test_sigkill_during_checkpoint_writes_leaves_a_loadable_last_ckpt(tmp_path):
    """A process saving 20 MB checkpoints in a loop is killed at arbitrary moments: last.ckpt always loads."""
    dest = tmp_path / "checkpoints" / "last.ckpt"
    code = (
        "import sys, torch\n"
        "from gan_lab.callbacks.checkpoint_io import AtomicCheckpointIO\n"
        "io = AtomicCheckpointIO()\n"
        "for i in range(10**6):\n"
        "    state = {'state_dict': {'w': torch.full((5_000_000,), float(i))}, 'global_step': i}\n"
        "    io.save_checkpoint(state, sys.argv[1])\n"
    )
    steps = []
    for delay in (1.0, 1.7, 2.3):
        p = subprocess.Popen([sys.executable, "-c", code, str(dest)], cwd=ROOT)
        deadline = time.time() + 60
        while not dest.exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        ckpt = load(dest)
        assert torch.all(ckpt["state_dict"]["w"] == float(ckpt["global_step"]))
        steps.append(ckpt["global_step"])
    assert [p.name for p in dest.parent.iterdir() if p.name != "last.ckpt" and not p.name.startswith(".")] == []


def test_continuing_a_finished_run_updates_last_ckpt_without_versions(tmp_path):
    run = tmp_path / "run"
    train_run(run, *MLP, "trainer.max_steps=20", "callbacks.checkpoint.every_n_train_steps=10")
    train_run(run, *MLP, "trainer.max_steps=35", "callbacks.checkpoint.every_n_train_steps=10", "ckpt_path=last")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]
    assert load(run / "checkpoints" / "last.ckpt")["global_step"] == 35
    # a further ckpt_path=last follows the newest file
    train_run(run, *MLP, "trainer.max_steps=40", "callbacks.checkpoint.every_n_train_steps=10", "ckpt_path=last")
    assert load(run / "checkpoints" / "last.ckpt")["global_step"] == 40


# ---- 6: signals ----------------------------------------------------------------------------------------
SIGNAL_RUN = [
    "model=gan_mlp",
    "data=toy2d_ring",
    "data.n_samples=6400",  # 25 batches per epoch: the signal lands mid-epoch
    "trick=[label_flip,instance_noise,ema]",
    "trainer.max_steps=80",
    "callbacks.checkpoint.every_n_train_steps=1000",  # no periodic checkpoint: only the signal's
    "metrics.every_n_steps=30",
    "metrics.n_samples=200",
    "logger=none",
    "callbacks.progress=null",
    "trainer.enable_progress_bar=false",
    "threads=1",
    "seed=3",
]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("signals") / "straight"
    r = run_cli("gan_lab.train", *SIGNAL_RUN, f"hydra.run.dir={run}")
    assert r.returncode == 0, r.stderr[-3000:]
    return run


@pytest.mark.slow  # several training processes: minutes on a loaded 2-core machine
@pytest.mark.parametrize("sig,code", [("SIGTERM", 143), ("SIGUSR1", 138), ("SIGINT", 130)])
def test_signal_saves_records_preempted_and_resume_is_exact(sig, code, uninterrupted, tmp_path):
    run = tmp_path / "run"
    r = run_cli(
        "gan_lab.train",
        *SIGNAL_RUN,
        f"hydra.run.dir={run}",
        "+callbacks.signal._target_=gan_lab.callbacks.faults.SignalAtStep",
        "+callbacks.signal.step=37",
        f"+callbacks.signal.signal={sig}",
    )
    assert r.returncode == code, (r.returncode, r.stderr[-3000:])
    assert "Traceback" not in r.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "preempted" and metrics["steps"] == 37 and metrics["signal"] == sig
    assert load(run / "checkpoints" / "last.ckpt")["global_step"] == 37
    # the same command again (a requeued job) continues the run; ckpt_path=last does the same
    resumed = run_cli("gan_lab.train", *SIGNAL_RUN, f"hydra.run.dir={run}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"
    assert_same_state(load(uninterrupted / "checkpoints" / "last.ckpt"), load(run / "checkpoints" / "last.ckpt"))


@pytest.mark.slow  # several training processes: minutes on a loaded 2-core machine
def test_external_sigterm_saves_at_the_next_step(tmp_path):
    """A real SIGTERM from another process, at whatever step training is."""
    run = tmp_path / "run"
    args = [*SIGNAL_RUN, "trainer.max_steps=100000", f"hydra.run.dir={run}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, "-m", "gan_lab.train", *args], cwd=ROOT, env=env, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while not (run / "metrics.csv").exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err.decode()[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "preempted"
    assert load(run / "checkpoints" / "last.ckpt")["global_step"] == metrics["steps"] > 0


# ---- 7: disk full ----------------------------------------------------------------------------------------
def test_disk_full_gives_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    run = tmp_path / "run"
    common = [*MLP, "callbacks.checkpoint.every_n_train_steps=10"]
    train_run(run, *common, "trainer.max_steps=10")
    fail_writes_to(monkeypatch, ".last.ckpt.tmp", errno.ENOSPC)
    with pytest.raises(StorageError) as e:
        train_run(run, *common, "trainer.max_steps=30", "ckpt_path=last")
    monkeypatch.undo()
    line = str(e.value)
    assert "\n" not in line and str(run / "checkpoints" / "last.ckpt") in line
    assert "no space left" in line and "needs" in line and "free" in line
    assert load(run / "checkpoints" / "last.ckpt")["global_step"] == 10  # the previous one, intact
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]
    status = json.loads((run / "metrics.json").read_text())
    assert status["status"] == "failed" and "no space left" in status["error"]


def test_disk_full_while_writing_a_sample_picture_gives_one_line_and_no_partial_file(tmp_path, monkeypatch):
    run = tmp_path / "run"
    common = [*MLP, "callbacks.samples.every_n_steps=5"]
    train_run(run, *common, "trainer.max_steps=5")
    before = (run / "samples" / "samples_000005.png").read_bytes()
    fail_writes_to(monkeypatch, ".png.tmp-", errno.ENOSPC, after_bytes=100)
    with pytest.raises(StorageError) as e:
        train_run(run, *common, "trainer.max_steps=15", "ckpt_path=last")
    monkeypatch.undo()
    line = str(e.value)
    assert "\n" not in line and line.startswith("cannot write sample picture") and "no space left" in line
    assert str(run / "samples" / "samples_000010.png") in line
    assert not [p.name for p in (run / "samples").iterdir() if ".tmp" in p.name]  # no half-written picture left
    assert not (run / "samples" / "samples_000010.png").exists()
    assert (run / "samples" / "samples_000005.png").read_bytes() == before  # the earlier picture, intact
    status = json.loads((run / "metrics.json").read_text())
    assert status["status"] == "failed" and "no space left" in status["error"]


# ---- 8: a finished run continues exactly ---------------------------------------------------------------
CONTINUE = {
    "gan_mlp": [
        "model=gan_mlp",
        "data=toy2d_ring",
        "data.n_samples=6400",
        "trick=[label_flip,instance_noise,ema,d_dropout]",
        "metrics.every_n_steps=25",
        "metrics.n_samples=200",
    ],
    "dcgan": [
        "model=dcgan",
        "data=digits",
        "data.size=16",
        "data.batch_size=32",
        "model.generator.ngf=8",
        "model.discriminator.ndf=8",
        "model.generator.z_dim=16",
        "trick=[diffaugment,ema,r1,label_smoothing]",
        "metrics.every_n_steps=25",
        "metrics.n_samples=100",
    ],
}


def test_an_evaluation_leaves_the_training_streams_as_they_were():
    """The first evaluation of a process builds the feature net (its random init, then its weights): drawn from
    the training's stream, a run resumed between two evaluations drew it at another step than the longer run
    (which had built it at its first evaluation) and went on differently from the next evaluation."""
    from types import SimpleNamespace

    from conftest import compose_cfg

    from gan_lab.build import build_data_and_task
    from gan_lab.callbacks.evaluation import EvaluationCallback
    from gan_lab.metrics import features

    dm, task = build_data_and_task(compose_cfg(*CONTINUE["dcgan"][:7]))
    dm.setup("fit")
    features._load.cache_clear()  # as in a new process
    cb = EvaluationCallback(every_n_steps=25, n_samples=100)
    trainer = SimpleNamespace(global_step=25, datamodule=dm, loggers=[])
    torch.manual_seed(7)
    cb.evaluate(trainer, task)
    assert cb.last_metrics and torch.equal(torch.get_rng_state(), torch.manual_seed(7).get_state())


def test_a_replay_draws_again_what_was_drawn_and_leaves_the_streams_as_they_were():
    import random

    import numpy as np

    from gan_lab.rng import replay_rng, rng_state

    torch.manual_seed(3), random.seed(3), np.random.seed(3)
    start = rng_state()
    first = torch.rand(4), random.random(), np.random.rand()
    after = torch.get_rng_state(), random.getstate(), np.random.get_state()[2]
    with replay_rng(start):
        again = torch.rand(4), random.random(), np.random.rand()
    assert torch.equal(first[0], again[0]) and first[1:] == again[1:]
    assert torch.equal(torch.get_rng_state(), after[0]) and random.getstate() == after[1]
    assert np.random.get_state()[2] == after[2]


@pytest.mark.slow  # several training processes: minutes on a loaded 2-core machine
@pytest.mark.parametrize("model", ["dcgan", "gan_mlp"])
def test_extending_a_finished_run_equals_the_longer_run(model, tmp_path):
    common = [
        *CONTINUE[model],
        "logger=none",
        "callbacks.progress=null",
        "trainer.enable_progress_bar=false",
        "callbacks.samples.every_n_steps=0",  # samples at the end of each run only
        "callbacks.checkpoint.every_n_train_steps=1000",
        "threads=1",
        "seed=2",
    ]
    for name, extra in (("long", ["trainer.max_steps=60"]), ("short", ["trainer.max_steps=37"])):
        r = run_cli("gan_lab.train", *common, *extra, f"hydra.run.dir={tmp_path / name}")
        assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((tmp_path / "short" / "metrics.json").read_text())["status"] == "completed"
    assert load(tmp_path / "short" / "checkpoints" / "last.ckpt")["global_step"] == 37
    more = ["trainer.max_steps=60", "ckpt_path=last"]
    r = run_cli("gan_lab.train", *common, *more, f"hydra.run.dir={tmp_path / 'short'}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert_same_state(
        load(tmp_path / "long" / "checkpoints" / "last.ckpt"), load(tmp_path / "short" / "checkpoints" / "last.ckpt")
    )


# ---- 9: one loader, weights only ---------------------------------------------------------------------------
class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PAYLOAD_RAN",))


def test_sr_benchmark_refuses_a_pickled_payload(tmp_path, monkeypatch):
    from gan_lab.metrics.sr_benchmark import load_sr_generator

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # torch's default switched to unpickling
    torch.save({"state_dict": {}, "hyper_parameters": {"x": _Payload()}}, tmp_path / "evil.ckpt")
    with pytest.raises(ConfigError) as e:
        load_sr_generator(tmp_path / "evil.ckpt")
    assert not (tmp_path / "PAYLOAD_RAN").exists()
    assert "weights_only=False" not in str(e.value) and "\n" not in str(e.value)


def test_refused_checkpoint_message_never_advises_weights_only_false(tmp_path):
    from gan_lab.config import check_checkpoint

    torch.save({"state_dict": {}, "x": _Payload()}, tmp_path / "evil.ckpt")
    with pytest.raises(ConfigError) as e:
        check_checkpoint(tmp_path / "evil.ckpt")
    assert "weights_only=False" not in str(e.value) and "never unpickles" in str(e.value)
    assert "os.system" in str(e.value) or "posix.system" in str(e.value)


def _calls(text: str, name: str):
    """The argument text of every `name(` call in `text` (up to the matching parenthesis)."""
    start = text.find(name)
    while start >= 0:
        i, depth = start + len(name), 1
        while i < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        yield text[start + len(name) : i - 1]
        start = text.find(name, i)


def test_the_one_loader_is_the_only_torch_load():
    """Only gan_lab/checkpoints.py calls torch.load, once, with weights_only=True spelled out (torch's default can
    be switched by an environment variable); everything else loads through gan_lab.checkpoints.load/load_file,
    and Lightning's load_from_checkpoint (torch's default) is not used. Calls are found in the syntax tree
    (docstrings that mention torch.load do not count; `from torch import load` does)."""
    import ast

    package = ROOT / "gan_lab"
    calls, lightning = [], []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text())
        rel = str(path.relative_to(package))
        aliases = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module in
                   ("torch", "torch.serialization") for a in n.names if a.name == "load"}  # fmt: skip
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name in ("torch.load", "torch.serialization.load") or name in aliases:
                calls.append((rel, ", ".join(ast.unparse(a) for a in [*node.args, *node.keywords])))
            lightning += [rel] if name.endswith(".load_from_checkpoint") else []
    loader = "Path(path), map_location=map_location, weights_only=True, mmap=mmap"
    assert calls == [("checkpoints.py", loader)] and lightning == [], (calls, lightning)


def test_a_named_file_that_cannot_be_loaded_is_one_line(tmp_path):
    """gan_lab.checkpoints.load_file: a missing, truncated or pickled file named in an option gives one line
    naming the option, the path and what is allowed (never the advice to unpickle)."""
    from gan_lab.checkpoints import load_file

    allowed = "an SRResNet checkpoint (.ckpt)"
    torch.save({"state_dict": {"w": torch.ones(2)}}, tmp_path / "good.ckpt")
    assert torch.equal(load_file(tmp_path / "good.ckpt", "model.init_from", allowed)["state_dict"]["w"], torch.ones(2))
    (tmp_path / "cut.ckpt").write_bytes((tmp_path / "good.ckpt").read_bytes()[:100])
    torch.save({"x": _Payload()}, tmp_path / "evil.ckpt")
    for name, why in (("missing.ckpt", "does not exist"), ("cut.ckpt", "cannot be loaded"), ("evil.ckpt", "unpickles")):
        with pytest.raises(ConfigError) as e:
            load_file(tmp_path / name, "model.init_from", allowed)
        line = str(e.value)
        assert "\n" not in line and line.startswith(f"model.init_from={str(tmp_path / name)!r}"), line
        assert why in line and line.endswith(f"allowed {allowed}") and "weights_only=False" not in line
    assert not (tmp_path / "PAYLOAD_RAN").exists()


# ---- 10-11: silent waste and tracebacks ----------------------------------------------------------------------
def test_optuna_study_does_not_replay_its_first_trials_when_continued():
    """A stored study launched again must not propose the same trials again: the TPE sampler is not pinned
    to one seed by the preset (a fixed seed replays the same startup trials on every launch)."""
    from conftest import compose_cfg

    cfg = compose_cfg("+sweep=optuna_fid", hydra=True)
    assert cfg.hydra.sweeper.sampler.seed is None


def test_run_dir_name_too_long_gives_one_line(tmp_path):
    run = tmp_path / ("x" * 300)
    r = run_cli("gan_lab.train", *MLP, f"hydra.run.dir={run}")
    assert r.returncode == 2
    one_error_line(r, "cannot create the run directory", "File name too long", "300 characters", "hydra.run.dir")
