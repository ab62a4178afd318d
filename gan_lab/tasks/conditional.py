"""Image-to-image tasks on the one adversarial loop: pix2pix (Isola 2017), super-resolution (SRResNet /
SRGAN, Ledig 2017) and inpainting (Context Encoder, Pathak 2016).

Each says only what is real, what is the condition and what the extra generator loss is; every trick
composes with them through the loop's hooks. They are "paired" tasks of the task interface: the held-out
callback logs their paired metrics on the held-out split (`held_out_metrics`) with the periodic evaluation
and at the end of training (`val/...` -> metrics.json); the pictures are input | output | target rows.
The data module is always passed in (`datamodule=`), never read from the trainer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gan_lab.errors import ConfigError, check_range
from gan_lab.tasks.adversarial import AdversarialTask


def _to_rgb_like(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Condition images resized/expanded to the target's size and channels, for side-by-side panels."""
    if x.shape[-2:] != like.shape[-2:]:
        x = F.interpolate(x, size=like.shape[-2:], mode="nearest")
    if x.shape[1] != like.shape[1]:
        x = x[:, :1].expand(-1, like.shape[1], -1, -1) if like.shape[1] == 3 else x.mean(1, keepdim=True)
    return x


def _held_out(datamodule, n: int | None = None) -> tuple:
    """The held-out split's tensors (the first n of each)."""
    if datamodule is None:
        raise ValueError("a paired task needs the data module (datamodule=) for its held-out inputs")
    tensors = datamodule.split_tensors("val")
    return tensors if n is None else tuple(t[:n] for t in tensors)


class ConditionalTask(AdversarialTask):
    """Batches are (condition, target). `d_sees_condition`: D judges cat(condition, image) (pix2pix) or
    the image alone (SRGAN). `extra_g_loss` is `content_weight` x the content loss to the target:
    `l1` or `mse` on pixels, `vgg` (MSE of VGG19 `vgg_layer` features x `vgg_scale`, SRGAN's loss; needs
    the user's `vgg_weights` file) or `d_features` (MSE of the discriminator's penultimate features of
    output and target, a feature loss from a network trained in the run itself)."""

    CONTENT_LOSSES = ("l1", "mse", "vgg", "d_features")
    data_kind = "paired"

    def __init__(
        self,
        *args,
        content_loss: str = "l1",
        content_weight: float = 100.0,
        d_sees_condition: bool = True,
        n_panel: int = 8,
        vgg_weights: str | None = None,
        vgg_layer: str = "relu5_4",
        vgg_scale: float = 1 / 12.75,
        **kwargs,
    ):
        if content_loss not in self.CONTENT_LOSSES:
            allowed = ", ".join(self.CONTENT_LOSSES)
            raise ConfigError(f"model.content_loss={content_loss!r} is not known; allowed {allowed}")
        if content_loss == "d_features" and kwargs.get("adv_weight", 1.0) == 0:
            raise ConfigError("model.content_loss=d_features needs a trained D; got model.adv_weight=0 (use > 0)")
        self.content_loss, self.d_sees_condition = content_loss, bool(d_sees_condition)
        self.content_weight = check_range("model", "content_weight", content_weight, 0.0)
        self.vgg_scale = check_range("model", "vgg_scale", vgg_scale, 0.0)
        self.n_panel = n_panel
        if kwargs.get("condition_shape") is None:
            raise ConfigError(
                f"model={kwargs.get('name') or type(self).__name__} needs paired data (batches of condition, target): "
                "data=edges2digits, paired_folder, colorize or sr_folder"
            )
        vgg = None
        if content_loss == "vgg":  # before the nets are built: a bad path fails first
            from gan_lab.nets.vgg import VGGFeatures

            vgg = VGGFeatures(vgg_weights, vgg_layer)
        super().__init__(*args, **kwargs)
        self._vgg = (vgg,)  # a tuple: frozen, kept out of the state dict and the checkpoints

    def generator_extra(self) -> dict:
        return {"in_channels": self.condition_shape[0], "out_channels": self.data_shape[0], "size": self.data_shape[-1]}

    def discriminator_extra(self) -> dict:
        c = self.data_shape[0] + (self.condition_shape[0] if self.d_sees_condition else 0)
        return {"in_channels": c}

    def unpack(self, batch):
        cond, target = batch
        return target, cond

    def generate(self, cond, n: int, generator=None):
        return (generator or self.generator)(cond)

    def discriminator_input(self, x, cond):
        if not self.d_sees_condition:
            return x
        if cond.shape[-2:] != x.shape[-2:]:
            cond = F.interpolate(cond, size=x.shape[-2:], mode="nearest")
        return torch.cat([cond, x], 1)

    def extra_g_loss(self, fake, real, cond):
        if self.content_loss == "vgg":
            vgg = self._vgg[0]
            if vgg.mean.device != fake.device:
                vgg.to(fake.device)
            with torch.no_grad():
                target = vgg(real) * self.vgg_scale
            content = F.mse_loss(vgg(fake) * self.vgg_scale, target)
        elif self.content_loss == "d_features":
            with torch.no_grad():
                target = self.d_features(real, cond, self.global_step)
            content = F.mse_loss(self.d_features(fake, cond, self.global_step), target)
        else:
            content = (F.l1_loss if self.content_loss == "l1" else F.mse_loss)(fake, real)
        return self.content_weight * content, {f"content_{self.content_loss}": content}

    # pictures and held-out metrics ----------------------------------------------------------------
    def _val(self, datamodule, n: int | None = None):
        return _held_out(datamodule, n)[:2]

    def _predict(self, cond: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        with self.eval_generator() as g:
            out = [
                self.generate(cond[i : i + batch_size].to(self.device), 0, generator=g).float().cpu()
                for i in range(0, len(cond), batch_size)
            ]
        return torch.cat(out)

    def sample_panels(self, datamodule=None) -> dict:
        cond, target = self._val(datamodule, self.n_panel)
        out = self._predict(cond)
        rows = torch.stack([_to_rgb_like(cond, target), out.clamp(-1, 1), target], 1).flatten(0, 1)
        return {"panels": (rows, 3)}  # input | output | target, one example per row

    def generate_samples(self, n: int, batch_size: int = 500, labels=None, seed: int = 12345, datamodule=None):
        """Outputs for the first n held-out conditions (the evaluation callback's FID, where a net fits)."""
        self.refuse_labels(labels)
        c, _ = self._val(datamodule, n)
        return self._predict(c)

    def paired_metrics(self, out: torch.Tensor, target: torch.Tensor, cond: torch.Tensor) -> dict[str, float]:
        from gan_lab.metrics import image_quality as iq

        return {
            "l1": iq.l1(out, target),
            "l2": iq.l2(out, target),
            "psnr": iq.psnr(out, target),
            "ssim": iq.ssim(out, target),
        }

    def held_out_metrics(self, datamodule) -> dict:
        cond, target = self._val(datamodule)
        return {k: float(v) for k, v in self.paired_metrics(self._predict(cond).clamp(-1, 1), target, cond).items()}


class Pix2PixTask(ConditionalTask):
    """U-Net G, PatchGAN D on (condition, image) pairs, loss = cGAN + lambda_L1 * L1 (lambda 100)."""


class SuperResolutionTask(ConditionalTask):
    """SRResNet (`adv_weight: 0`, pixel MSE) and SRGAN (content loss + 1e-3 adversarial, D on HR only,
    generator initialised from an SRResNet checkpoint with `init_from`). Metrics: PSNR/SSIM on the Y
    channel with `scale` border pixels cropped (the papers' protocol)."""

    def __init__(self, *args, scale: int = 4, init_from: str | None = None, **kwargs):
        self.scale = int(scale)
        kwargs.setdefault("d_sees_condition", False)
        super().__init__(*args, **kwargs)
        if init_from:
            self.load_generator(init_from)

    def generator_extra(self) -> dict:
        return {"in_channels": self.condition_shape[0], "scale": self.scale}

    def load_generator(self, path: str) -> None:
        from pathlib import Path

        if not Path(path).is_file():
            raise ConfigError(f"model.init_from={path!r} does not exist; give an SRResNet checkpoint (.ckpt)")
        from gan_lab.checkpoints import load_file

        state = load_file(path, "model.init_from", "an SRResNet checkpoint (.ckpt)").get("state_dict", {})
        g = {k.removeprefix("generator."): v for k, v in state.items() if k.startswith("generator.")}
        missing, unexpected = self.generator.load_state_dict(g, strict=False)
        if missing or not g:
            raise ConfigError(f"model.init_from={path!r} holds no matching generator weights (missing {missing[:3]})")

    def paired_metrics(self, out, target, cond):
        from gan_lab.metrics import image_quality as iq

        return {
            "psnr_y": iq.psnr_y(out, target, border=self.scale),
            "ssim_y": iq.ssim_y(out, target, border=self.scale),
            "l1": iq.l1(out, target),
        }


class InpaintingTask(AdversarialTask):
    """Context Encoder: G fills the hole of (image, mask) batches; the output is composited so only the
    hole changes; loss = rec_weight x masked L2 (overlap ring weighted x `overlap_weight`) + adv_weight x
    adversarial (0.999 / 0.001); D judges the whole composite or only the hole's bounding box."""

    MASKS = ("center", "random_rect", "free_form")
    data_kind = "paired"

    def __init__(
        self,
        *args,
        rec_weight: float = 0.999,
        overlap: int = 2,
        overlap_weight: float = 10.0,
        d_on: str = "image",
        hole_size: int = 16,
        mask: str = "center",
        n_panel: int = 8,
        **kwargs,
    ):
        if d_on not in ("image", "hole"):
            raise ConfigError(f"model.d_on={d_on!r} is not known; allowed image, hole")
        if mask not in self.MASKS:
            raise ConfigError(f"model.mask={mask!r} is not known; allowed {', '.join(self.MASKS)}")
        if d_on == "hole" and mask != "center":
            raise ConfigError(f"model.d_on=hole needs model.mask=center (a fixed hole box); got mask={mask}")
        self.mask = mask
        self.rec_weight = check_range("model", "rec_weight", rec_weight, 0.0)
        self.overlap = int(check_range("model", "overlap", overlap, 0, 16))
        self.overlap_weight = check_range("model", "overlap_weight", overlap_weight, 0.0)
        self.d_on, self.hole_size, self.n_panel = d_on, int(hole_size), n_panel
        kwargs.setdefault("adv_weight", 0.001)
        super().__init__(*args, **kwargs)

    def generator_extra(self) -> dict:
        return {"in_channels": self.data_shape[0], "size": self.data_shape[-1], "hole_size": self.hole_size}

    def discriminator_extra(self) -> dict:
        size = self.hole_size if self.d_on == "hole" else self.data_shape[-1]
        return {"in_channels": self.data_shape[0], "size": size}

    def masks_for(self, image: torch.Tensor, batch, seed: int | None = None) -> torch.Tensor:
        """The batch's masks (InpaintingDataModule) or masks made here for plain image data (data=digits)."""
        if isinstance(batch, (tuple, list)) and len(batch) > 1 and batch[1].dim() == 4 and batch[1].shape[1] == 1:
            return batch[1].to(image)
        from gan_lab.data.masks import make_masks

        seed = int(torch.randint(2**31 - 1, ())) if seed is None else seed
        size = image.shape[-1]
        return make_masks(self.mask, len(image), size, self.hole_size, max(2, self.hole_size // 2), seed).to(image)

    def unpack(self, batch):
        image = batch[0] if isinstance(batch, (tuple, list)) else batch
        mask = self.masks_for(image, batch)
        return image, (image * (1 - mask), mask)

    def generate(self, cond, n: int, generator=None):
        """G's raw output (the reconstruction loss also reads it in the overlap ring around the hole)."""
        masked, mask = cond
        return (generator or self.generator)(masked, mask)

    def composite(self, out, cond):
        masked, mask = cond
        return mask * out + (1 - mask) * masked  # only the hole is generated

    def discriminator_input(self, x, cond):
        if self.d_on == "image":
            return x
        mask = cond[1]
        rows, cols = mask[:, 0].amax(2) > 0, mask[:, 0].amax(1) > 0  # the hole's bounding box (centre masks)
        r0, c0 = rows.float().argmax(1), cols.float().argmax(1)
        h = self.hole_size
        return torch.stack([x[i, :, r0[i] : r0[i] + h, c0[i] : c0[i] + h] for i in range(len(x))])

    def _rec_weights(self, mask):
        if not self.overlap:
            return mask
        ring = F.max_pool2d(mask, 2 * self.overlap + 1, stride=1, padding=self.overlap) - mask
        return mask + self.overlap_weight * ring

    def extra_g_loss(self, raw, real, cond):
        masked, mask = cond
        w = self._rec_weights(mask)
        rec = (w * (raw - real) ** 2).sum() / (w.sum() * real.shape[1]).clamp_min(1)
        return self.rec_weight * rec, {"rec_l2": rec}

    def _val(self, datamodule, n=None):
        tensors = _held_out(datamodule, n)
        return tensors[0], self.masks_for(tensors[0], tensors, seed=0)

    def _fill(self, image, mask, batch_size: int = 64):
        with self.eval_generator() as g:
            out = []
            for i in range(0, len(image), batch_size):
                im, m = image[i : i + batch_size].to(self.device), mask[i : i + batch_size].to(self.device)
                cond = (im * (1 - m), m)
                out.append(self.composite(self.generate(cond, 0, generator=g), cond).float().cpu())
        return torch.cat(out)

    def sample_panels(self, datamodule=None) -> dict:
        image, mask = self._val(datamodule, self.n_panel)
        filled = self._fill(image, mask)
        rows = torch.stack([image * (1 - mask) + mask * -1, filled.clamp(-1, 1), image], 1).flatten(0, 1)
        return {"panels": (rows, 3)}

    def generate_samples(self, n: int, batch_size: int = 500, labels=None, seed: int = 12345, datamodule=None):
        self.refuse_labels(labels)
        image, mask = self._val(datamodule, n)
        return self._fill(image, mask)

    def held_out_metrics(self, datamodule) -> dict:
        from gan_lab.metrics import image_quality as iq

        image, mask = self._val(datamodule)
        out = self._fill(image, mask)
        metrics = {
            "hole_l1": iq.masked_l1(out, image, mask),
            "hole_l2": iq.masked_l2(out, image, mask),
            "hole_psnr": iq.masked_psnr(out, image, mask),
            "l1": iq.l1(out, image),
            "l2": iq.l2(out, image),
            "psnr": iq.psnr(out, image),
        }
        return {k: float(v) for k, v in metrics.items()}
