"""The task interface (gan_lab/tasks/interface.py): every task class named in the configs implements it, and
each works through it with the data module passed in and no Trainer (as `gan-lab evaluate` and `sample` use
it); callbacks and tasks do not probe each other."""

from __future__ import annotations

import inspect
import re

import pytest
import torch
from conftest import CONF, FAST, ROOT, compose_cfg
from hydra.utils import get_class

from gan_lab.tasks.interface import Task

MODEL_FILES = sorted((CONF / "model").glob("*.yaml"))

# a cheap data config for each model config (the no-Trainer round trip below)
CASES = {
    "gan_mlp": ["model=gan_mlp", "data=toy2d_ring", "data.n_samples=600"],
    "dcgan": ["model=dcgan", "data=digits", "model.generator.ngf=8", "model.discriminator.ndf=8"],
    "ae": ["model=ae", "data=digits"],
    "vae": ["model=vae", "data=digits"],
    "pix2pix": ["model=pix2pix", "data=edges2digits"],
    "srresnet": ["model=srresnet", "data=sr_folder", "data.n_patches=48", "data.hr_patch=32", "data.batch_size=8"],
    "context_encoder": ["model=context_encoder", "data=digits"],
}
KINDS = {"gan_mlp": "points", "dcgan": "image", "ae": "image", "vae": "image", "pix2pix": "paired",
         "srresnet": "paired", "context_encoder": "paired"}  # fmt: skip


def task_class(path):
    return get_class(compose_cfg(f"model={path.stem}").model._target_)


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: p.stem)
def test_every_configured_task_class_declares_the_interface(path):
    cls = task_class(path)
    for name in ("generate_samples", "sample_labels", "label_protocol", "sample_panels", "held_out_metrics"):
        assert callable(getattr(cls, name, None)), f"{cls.__name__} has no {name}"
    assert {"labels", "seed", "datamodule"} <= set(inspect.signature(cls.generate_samples).parameters)
    assert "datamodule" in inspect.signature(cls.sample_panels).parameters
    assert "datamodule" in inspect.signature(cls.held_out_metrics).parameters
    assert isinstance(cls.optimizer_names, tuple) and cls.optimizer_names[0] == "g"
    assert hasattr(cls, "data_kind")


def test_every_model_config_has_a_no_trainer_case():
    covered = set(CASES) | {"srgan", "cyclegan"}  # srgan: srresnet's class; cyclegan: tests/test_cyclegan.py
    assert {p.stem for p in MODEL_FILES} <= covered


@pytest.mark.parametrize("name", list(CASES))
def test_task_works_through_the_interface_without_a_trainer(name):
    from gan_lab.build import build_data_and_task

    dm, task = build_data_and_task(compose_cfg(*FAST, *CASES[name]))
    assert isinstance(task, Task)
    assert task.data_kind == KINDS[name] and task.num_classes == 0
    assert task.sample_labels(4) is None and task.label_protocol() == {}
    x = task.generate_samples(6, batch_size=4, datamodule=dm)
    n_val = len(dm.split_tensors("val")[0]) if KINDS[name] == "paired" else 6  # paired: the held-out inputs
    assert x.shape[0] == min(6, n_val) > 0 and torch.isfinite(x).all()
    again = task.generate_samples(6, batch_size=4, datamodule=dm)
    assert torch.equal(x, again)  # its own seeded stream
    panels = task.sample_panels(dm)
    assert panels and all(isinstance(v, (torch.Tensor, tuple)) for v in panels.values())
    held = task.held_out_metrics(dm)
    if KINDS[name] == "paired" or name in ("ae", "vae"):
        assert held and all(isinstance(v, float) for v in held.values())
    else:
        assert held == {}
    with pytest.raises(Exception, match="needs a class-conditional model|no classes"):
        task.generate_samples(2, labels=torch.tensor([0, 1]), datamodule=dm)


def test_paired_tasks_need_the_data_module_passed_in():
    from gan_lab.build import build_data_and_task

    _, task = build_data_and_task(compose_cfg(*FAST, *CASES["pix2pix"]))
    with pytest.raises(ValueError, match="needs the data module"):
        task.generate_samples(2)


def test_held_out_metrics_are_logged_without_the_evaluation_callback(tmp_path):
    """callbacks.metrics=null: the held-out callback still logs val/<name> at the end (into metrics.json)."""
    from conftest import train_run

    m = train_run(tmp_path, *CASES["context_encoder"], "trainer.max_steps=2")
    assert {"hole_l1", "hole_psnr", "psnr"} <= set(m)
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "val/hole_psnr" in header


def test_no_probes_between_tasks_and_callbacks():
    """No `hasattr`/`getattr` probes of a task, no data_shape tests outside it, no trainer.datamodule inside
    a task, no state passed between hooks through attributes such as `_raw`."""
    offenders = []
    for p in sorted((ROOT / "gan_lab").rglob("*.py")):
        if p.name in ("_lightning_compat.py", "interface.py"):  # Lightning's own attributes; the rule's text
            continue
        text = p.read_text()
        for pattern in (r"(has|get)attr\((task|pl_module|module)\b", r"data_shape\", None\) ==", r"self\._raw\b"):
            offenders += [f"{p.relative_to(ROOT)}: {m.group(0)}" for m in re.finditer(pattern, text)]
        if p.parent.name == "tasks" and "trainer.datamodule" in text:
            offenders.append(f"{p.relative_to(ROOT)}: trainer.datamodule")
    assert not offenders, offenders
