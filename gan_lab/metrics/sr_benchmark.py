"""Super-resolution benchmark protocol (SRCNN / VDSR / SRGAN papers) on a folder of full images.

    from gan_lab.metrics.sr_benchmark import benchmark_sr
    benchmark_sr(None, "Set5", 4)                  # the bicubic baseline: Set5 x4 -> psnr_y 28.43
    benchmark_sr(generator, "Set5", 4)             # any module N x 3 x h x w -> N x 3 x sh x sw in [-1, 1]

HR mod-cropped to a multiple of the scale, LR = MATLAB bicubic downscaling of the uint8 HR, the output
rounded to 8 bits (as the saved PNGs the papers score), PSNR and SSIM on Y (BT.601; grey values for
greyscale files) with `scale` border pixels cropped, averaged over the images.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from gan_lab.metrics import image_quality as iq


def quantize(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images rounded to the 256 levels of an 8-bit PNG (values outside are clipped)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


def bicubic(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """MATLAB bicubic upscaling of a 3 x h x w LR image in [-1, 1] read from 8 bits (1 x 3 x sh x sw)."""
    from gan_lab.data.paired import to_tensor
    from gan_lab.data.sr import imresize_matlab

    lr8 = ((lr + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    return to_tensor(imresize_matlab(lr8, scale))


@torch.no_grad()
def benchmark_sr(model, folder: str | Path, scale: int, device: str | torch.device = "cpu") -> dict:
    """Mean `psnr_y` / `ssim_y` of `model` (None: bicubic) on the images of `folder`, with per-image
    values under `images` and the seconds spent under `seconds`."""
    from gan_lab.data.sr import load_sr_eval_set

    pairs = load_sr_eval_set(folder, scale)
    if model is not None:
        was_training = model.training
        model.eval()
    start, images = time.perf_counter(), {}
    try:
        for pair in pairs:
            lr, hr = pair
            if model is None:
                sr = bicubic(lr, scale)
            else:
                sr = model(lr[None].to(device)).float().cpu()
                if sr.shape[-2:] != hr.shape[-2:]:
                    got, want = tuple(sr.shape[-2:]), tuple(hr.shape[-2:])
                    raise ValueError(f"the model made {got} from {pair.name}; HR is {want}")
            sr = quantize(sr)
            images[pair.name] = {
                "psnr_y": float(iq.psnr_y(sr, hr[None], border=scale, grey=pair.grey)),
                "ssim_y": float(iq.ssim_y(sr, hr[None], border=scale, grey=pair.grey)),
            }
    finally:
        if model is not None:
            model.train(was_training)
    return {
        "psnr_y": float(np.mean([v["psnr_y"] for v in images.values()])),
        "ssim_y": float(np.mean([v["ssim_y"] for v in images.values()])),
        "n_images": len(images),
        "scale": int(scale),
        "images": images,
        "seconds": time.perf_counter() - start,
    }


def load_sr_generator(ckpt: str | Path):
    """The sampling generator (EMA when that trick is on) of an SR run's checkpoint, in eval mode, on CPU."""
    from gan_lab.errors import ConfigError
    from gan_lab.tasks.conditional import SuperResolutionTask

    if not Path(ckpt).is_file():
        raise ConfigError(f"ckpt={str(ckpt)!r} does not exist; give an SR run's checkpoints/last.ckpt")
    from gan_lab.checkpoints import hyperparameters, load
    from gan_lab.config import check_checkpoint

    check_checkpoint(ckpt, key="ckpt")  # weights only: a file holding other Python objects is refused
    state = load(ckpt)
    task = SuperResolutionTask(**{**hyperparameters(state), "init_from": None})
    task.load_state_dict(state["state_dict"])
    task.on_load_checkpoint(state)  # trick state (the EMA generator)
    return task.sampling_generator().eval()
