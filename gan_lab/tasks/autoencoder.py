"""Autoencoder and VAE (Kingma & Welling 2014): the framework's one non-adversarial task.

    python -m gan_lab.train model=ae data=digits            # compresses x (d values) to z (p < d values)
    python -m gan_lab.train model=vae data=mnist data.root=... model.beta=1 model.kl_warmup_steps=500

An autoencoder reconstructs but cannot generate: decoding z ~ N(0, I) lands off the region its codes
occupy (samples_*.png shows it). The VAE's encoder outputs a Gaussian posterior (mu, logvar), training
samples z = mu + sigma * eps (reparameterisation) and pulls the posterior towards N(0, I) with a KL term,
so decoding z ~ N(0, I) gives data-like samples.

Loss per sample, averaged over the batch: recon (summed over the d data values) + beta_t * KL, where
beta_t = beta * min(1, (step + 1) / kl_warmup_steps) (or beta without warm-up). `recon_loss=mse` is the
squared error on [-1, 1] images, `bce` the binary cross-entropy on images mapped to [0, 1].
Logged every `trainer.log_every_n_steps`: train/recon_loss, train/loss and (VAE) train/kl; at the end of
training `held_out_metrics` on the validation split: val/recon_mse and val/recon_psnr (on [0, 1] images).
"""

from __future__ import annotations

import contextlib
import math

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from gan_lab._lightning_compat import attached_trainer
from gan_lab.build import adam
from gan_lab.errors import ConfigError, check_range
from gan_lab.gpu_options import apply_gpu_options, gpu_options_check, to_channels_last
from gan_lab.metrics.image_quality import psnr
from gan_lab.nets.autoencoder import build_autoencoder
from gan_lab.rng import own_rng
from gan_lab.tasks.interface import TaskDefaults
from gan_lab.tasks.loss_window import LossWindow

RECON_LOSSES = ("mse", "bce")


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample: 0.5 * sum(mu^2 + exp(logvar) - 1 - logvar) over dims."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)


class AutoencoderTask(TaskDefaults, pl.LightningModule):
    data_kind = "image"
    optimizer_names = ("g",)  # one optimizer for encoder and decoder, logged as G's (grad_norm_g)

    def __init__(
        self,
        arch: str = "conv",
        hidden: list | None = None,
        latent_dim: int = 16,
        variational: bool = False,
        recon_loss: str = "mse",
        beta: float = 1.0,
        kl_warmup_steps: int = 0,
        optimizer: dict | None = None,
        n_grid: int = 64,
        data_shape: tuple | list | None = None,
        tricks: dict | None = None,
        condition_shape: tuple | list | None = None,
        name: str = "",
        channels_last: bool = False,
        compile: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters()
        model = name or ("vae" if variational else "ae")
        self.channels_last, self.compile_nets = gpu_options_check(model, channels_last, compile, data_shape)
        if tricks:
            names = ",".join(tricks) if isinstance(tricks, dict) else ",".join(str(t) for t in tricks)
            raise ConfigError(f"trick={names} applies to adversarial tasks; model={model} has no discriminator")
        if data_shape is None:
            raise ConfigError(f"model={model} needs data_shape (given by the data module)")
        self.data_shape = tuple(data_shape)
        d = math.prod(self.data_shape)
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or not 1 <= latent_dim < d:
            raise ConfigError(
                f"model.latent_dim={latent_dim!r} is out of range; allowed [1, {d - 1}] "
                f"(the code must be smaller than the data: d = prod{self.data_shape} = {d})"
            )
        if recon_loss not in RECON_LOSSES:
            raise ConfigError(f"model.recon_loss={recon_loss!r} is not known; allowed {', '.join(RECON_LOSSES)}")
        check_range("model", "beta", beta, 0.0)
        check_range("model", "kl_warmup_steps", kl_warmup_steps, 0)
        check_range("model", "n_grid", n_grid, 4)
        self.latent_dim, self.variational, self.recon_loss = int(latent_dim), bool(variational), recon_loss
        self.beta, self.kl_warmup_steps = float(beta), int(kl_warmup_steps)
        self.opt_kw = dict(optimizer or {"lr": 1e-3})
        enc_out = 2 * self.latent_dim if self.variational else self.latent_dim
        self.encoder, self.decoder = build_autoencoder(arch, self.data_shape, self.latent_dim, enc_out, hidden)
        self.register_buffer(
            "fixed_z", torch.randn(n_grid, self.latent_dim, generator=torch.Generator().manual_seed(0)), persistent=True
        )
        self.last_logged: dict[str, float] = {}
        self.window = LossWindow(self.last_logged)

    # ---- the model -------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mu, logvar) for the VAE, (z, None) for the AE."""
        h = self.encoder(x)
        if not self.variational:
            return h, None
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar

    def to_data(self, logits: torch.Tensor) -> torch.Tensor:
        """Decoder logits -> images in [-1, 1] (tanh for MSE, 2 * sigmoid - 1 for BCE)."""
        return torch.tanh(logits) if self.recon_loss == "mse" else 2 * torch.sigmoid(logits) - 1

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.to_data(self.decoder(z))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstruction (the posterior mean for the VAE), in [-1, 1]."""
        return self.decode(self.encode(x)[0])

    def recon_term(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction loss per sample, summed over the data values."""
        if self.recon_loss == "mse":
            err = (torch.tanh(logits) - x).pow(2)
        else:
            err = F.binary_cross_entropy_with_logits(logits, (x + 1) / 2, reduction="none")
        return err.flatten(1).sum(1)

    def kl_weight(self, step: int) -> float:
        if self.kl_warmup_steps <= 0:
            return self.beta
        return self.beta * min(1.0, (step + 1) / self.kl_warmup_steps)

    def losses(self, x: torch.Tensor, step: int = 0) -> dict[str, torch.Tensor]:
        """recon_loss, loss and (VAE) kl, each averaged over the batch."""
        mu, logvar = self.encode(x)
        if self.variational:
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            recon = self.recon_term(self.decoder(z), x).mean()
            kl = kl_to_standard_normal(mu, logvar).mean()
            return {"recon_loss": recon, "kl": kl, "loss": recon + self.kl_weight(step) * kl}
        recon = self.recon_term(self.decoder(mu), x).mean()
        return {"recon_loss": recon, "loss": recon}

    # ---- training --------------------------------------------------------------------------------
    def configure_model(self):
        """GPU options (README "GPU options"), before the optimizer is built."""
        apply_gpu_options([self.encoder, self.decoder], self.channels_last, self.compile_nets)

    def configure_optimizers(self):
        return adam(self.parameters(), self.opt_kw)

    def training_step(self, batch, batch_idx):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if self.channels_last:
            x = to_channels_last(x)
        logs = self.losses(x, self.global_step)
        self._accumulate(logs)
        return logs["loss"]

    # ---- cheap logging: sums on device, one host sync per `trainer.log_every_n_steps` -------------
    def _accumulate(self, logs: dict):
        self.window.add(logs)
        trainer = attached_trainer(self)
        every = max(1, trainer.log_every_n_steps) if trainer is not None else 1
        # training_step runs before this batch's optimizer step: batch b is global_step b, and Lightning
        # passes step metrics to the loggers only for batches with (b + 1) % log_every_n_steps == 0
        if (self.global_step + 1) % every == 0 or (trainer is not None and trainer.fast_dev_run):
            out = self.window.flush(self.global_step)
            # host tensors: Lightning re-reads progress-bar values every batch (.item(): no GPU sync per step)
            out = {k: torch.tensor(v, dtype=torch.float32) for k, v in out.items()}
            self.log_dict(out, on_step=True, on_epoch=False, prog_bar=True, batch_size=1)

    def on_train_end(self):
        """The last partial logging window goes to last_logged and the loggers (the held-out numbers: the
        held-out callback)."""
        out = self.window.flush(self.global_step)
        self.last_logged.update(out)
        if out and self.trainer.is_global_zero:
            for lg in self.trainer.loggers:
                lg.log_metrics(out, step=self.trainer.global_step)

    # ---- evaluation and pictures -----------------------------------------------------------------
    @contextlib.contextmanager
    def _eval_mode(self):
        """Eval mode and no grad inside, the training flag restored afterwards."""
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was)

    def held_out_metrics(self, datamodule, batch_size: int = 500) -> dict[str, float]:
        """recon_mse (per value) and recon_psnr (mean per-image, dB) on the validation split, images in [0, 1]."""
        x = datamodule.split_tensors("val")[0]
        if len(x) == 0:
            return {}
        sq, ps = 0.0, 0.0
        with self._eval_mode():
            for i in range(0, len(x), batch_size):
                real = x[i : i + batch_size].to(self.device)
                rec = self.reconstruct(real)
                r01, x01 = (rec.float() + 1) / 2, (real.float() + 1) / 2
                sq += (r01 - x01).pow(2).sum().item()
                ps += psnr(rec, real, reduction="none").sum().item()
        return {"recon_mse": sq / x.numel(), "recon_psnr": ps / len(x)}

    def generate(self, cond, n: int, z: torch.Tensor | None = None) -> torch.Tensor:
        """Decoded z ~ N(0, I) in [-1, 1] on the task's device (grad and mode as they are)."""
        if z is None:
            z = torch.randn(n, self.latent_dim, device=self.device)
        return self.decode(z)

    def generate_samples(self, n: int, batch_size: int = 500, labels=None, seed: int = 12345, datamodule=None):
        """n decoded z ~ N(0, I) on CPU, eval mode, no grad (for the AE too: that is the lesson), from their
        own random stream."""
        self.refuse_labels(labels)
        with self._eval_mode(), own_rng(seed, self.device):
            return torch.cat(
                [self.generate(None, min(batch_size, n - i)).float().cpu() for i in range(0, n, batch_size)]
            )

    def _val_images(self, datamodule, n: int) -> torch.Tensor | None:
        if datamodule is None:
            return None
        x = datamodule.split_tensors("val")[0]
        if len(x) < 2:
            x = datamodule.split_tensors("train")[0]
        return x[:n].to(self.device)

    def sample_panels(self, datamodule=None) -> dict[str, torch.Tensor]:
        """reconstructions (input, reconstruction pairs), interpolation (rows: z from one val image to another)
        and samples (decoded fixed z ~ N(0, I)); each N x C x H x W in [-1, 1] on CPU."""
        rows, half = math.isqrt(len(self.fixed_z)), len(self.fixed_z) // 2
        with self._eval_mode():
            panels = {"samples": self.decode(self.fixed_z).float().cpu()}
            real = self._val_images(datamodule, max(half, 2 * rows))
            if real is None or len(real) < 2:
                return panels
            pairs = torch.stack([real[:half], self.reconstruct(real[:half])], 1)  # input, reconstruction, ...
            panels["reconstructions"] = pairs.flatten(0, 1).float().cpu()
            k = min(rows, len(real) // 2)
            z0, z1 = self.encode(real[:k])[0], self.encode(real[k : 2 * k])[0]
            t = torch.linspace(0, 1, rows, device=self.device).view(1, rows, 1)
            z = (z0[:, None] * (1 - t) + z1[:, None] * t).flatten(0, 1)  # k rows of `rows` steps each
            panels["interpolation"] = self.decode(z).float().cpu()
        return panels
