"""Pre-emption: SIGTERM, SIGINT (Ctrl+C) and SIGUSR1 save a checkpoint at the next step boundary and stop.

A scheduler (SLURM, Kubernetes, most batch systems) sends SIGTERM some seconds before it kills a job. The
signal only sets a flag; at the end of the current batch `last.ckpt` is written (atomically, see
checkpoint_io.py) and training stops with `Preempted`, without the end-of-run evaluation and samples (the
grace period is short). gan_lab.train records `status: "preempted"` with the step and exits with
128 + the signal's number (143 for SIGTERM, 130 for SIGINT, 138 for SIGUSR1): the shell's code for "ended by
that signal", which requeue-on-failure policies treat as a failure to retry, and which a job array's
dependency sees as not successful. `ckpt_path=last` into the same directory (or re-running the same command
there) continues exactly where the checkpoint left off. A second Ctrl+C stops at once (KeyboardInterrupt).

Under SLURM with Lightning's auto-requeue, SIGUSR1 stays with Lightning (it saves an hpc checkpoint and
requeues the job itself).

A run of several processes (trainer=ddp) stops the same way, whichever ranks got the signal (the launching
process alone, or every task as SLURM sends it): at each step boundary the ranks agree in one all_reduce on
the signal any of them received, so every rank saves the same step (one checkpoint, written by rank 0) and
stops together. Rank 0, whose exit status is the job's, exits with 128 + the signal; the other ranks exit 0
once the checkpoint is saved (a rank that Lightning started and that exited non-zero would make it kill the
launching process before it records "preempted").

The same callback writes the final `last.ckpt` of a run at the end of its last batch, before the end-of-run
evaluation and samples (and puts it back after Lightning's own end-of-training save of last.ckpt): extending
`trainer.max_steps` from it continues exactly like a longer run (same data order, random streams and
monitor state). Only rank 0 touches the checkpoint files (it writes them): the ranks of a DDP run share the
checkpoint directory, and two processes moving the same files would race (one of them failing at the end
of the run, its end-of-run work lost).
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
from pathlib import Path

from pytorch_lightning.callbacks import Checkpoint

from gan_lab.stop_signals import StopSignals


class Preempted(BaseException):  # noqa: N818 - not an error: a requested stop, like KeyboardInterrupt
    """Training stopped for a signal after saving `path` at `step`."""

    def __init__(self, signum: int, step: int, path: str):
        super().__init__(f"{signal.Signals(signum).name} at step {step}; checkpoint {path}")
        self.signum, self.step, self.path = signum, step, path

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _signals(trainer) -> list[int]:
    sigs = [signal.SIGTERM, signal.SIGINT]
    if hasattr(signal, "SIGUSR1"):
        from lightning_fabric.plugins.environments import SLURMEnvironment

        env = getattr(trainer.strategy, "cluster_environment", None)
        if not (isinstance(env, SLURMEnvironment) and env.auto_requeue):
            sigs.append(signal.SIGUSR1)
    return sigs


class PreemptionCheckpoint(Checkpoint):
    """Saves `<dirpath>/last.ckpt` at the end of the last batch and at the step boundary after a signal.

    A `Checkpoint` callback, so Lightning runs its batch-end hook after the other callbacks' (evaluations
    and alarms of that step are in the checkpoint, as in ModelCheckpoint's periodic ones)."""

    def __init__(self, dirpath: str | Path):
        self.dirpath = str(dirpath)
        self.final_saved_step: int | None = None
        self._signals: StopSignals | None = None

    @property
    def path(self) -> Path:
        return Path(self.dirpath) / "last.ckpt"

    # ---- signals: handled for the training loop only, after Lightning's own handlers are installed ----------
    @property
    def signum(self) -> int | None:
        return self._signals.signum if self._signals is not None else None

    def on_train_start(self, trainer, pl_module) -> None:
        # replaces Lightning's SIGTERM handler (a collective inside a handler); a stop requested of an
        # enclosing scope (the job runner's) before training began stops at the first step boundary
        self._signals = StopSignals(signals=_signals(trainer)).open()

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if self._signals is not None:  # a signal that came after the last step reaches the job runner, if any
            self._signals.close()
        if trainer.is_global_zero:
            self._kept.unlink(missing_ok=True)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        """Lightning calls no teardown hook after an exception (Preempted among them): the handlers go back
        here, and the signal reaches the job runner. After a KeyboardInterrupt Lightning has set SIGINT to be
        ignored while it shuts down; that stays."""
        if self._signals is None:
            return
        shutting_down = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        self._signals.close()
        if shutting_down and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    # ---- the step boundary -------------------------------------------------------------------------------
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        signum = self.agreed_signal(trainer)
        if signum:
            trainer.save_checkpoint(self.path, weights_only=False)  # every rank (a collective), rank 0 writes
            for lg in trainer.loggers:  # rows logged so far reach metrics.csv before the process ends
                lg.save()
            raise Preempted(signum, step, str(self.path))
        if 0 < trainer.max_steps <= step:
            trainer.save_checkpoint(self.path, weights_only=False)
            self.final_saved_step = step
            if trainer.is_global_zero:
                self._keep_final()

    def agreed_signal(self, trainer) -> int:
        """The signal to stop for at this step boundary (0: none). Several processes agree on it in one
        all_reduce (the largest signal number any rank received), so that all of them stop at this step."""
        if trainer.world_size == 1:
            return self.signum or 0
        import torch
        import torch.distributed as dist

        flag = torch.tensor([self.signum or 0], dtype=torch.int32, device=trainer.strategy.root_device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item())

    # ---- the final checkpoint survives Lightning's end-of-training save ---------------------------------
    @property
    def _kept(self) -> Path:
        return self.path.with_name(".last.ckpt.final")

    def _keep_final(self) -> None:
        """ModelCheckpoint(save_last=True) saves last.ckpt again in on_train_end, after the end-of-run
        evaluation and samples; a second name for the file just written (a hard link: writes replace files,
        so it keeps these bytes) restores it there. Rank 0 only (the caller), which wrote the file."""
        if not self.path.is_file():  # a remote path
            return
        self._kept.unlink(missing_ok=True)
        try:
            os.link(self.path, self._kept)
        except OSError:  # no hard links on this filesystem
            shutil.copyfile(self.path, self._kept)

    def on_train_end(self, trainer, pl_module) -> None:  # after ModelCheckpoint's (Checkpoint callbacks run last)
        if trainer.is_global_zero and self.final_saved_step == trainer.global_step and self._kept.is_file():
            os.replace(self._kept, self.path)

    def state_dict(self) -> dict:
        return {}
