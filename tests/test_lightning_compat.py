"""Lightning/torch internals only in gan_lab._lightning_compat, gated on the tested version range, with the
public path outside it."""

from __future__ import annotations

import io
import tokenize
from pathlib import Path

import tomllib
from conftest import FAST, ROOT, compose_cfg
from omegaconf import open_dict
from packaging.requirements import Requirement
from packaging.version import Version

from gan_lab import _lightning_compat as compat

# private names of Lightning and torch objects that gan_lab has needed (see the compat module's doc)
PRIVATE = {"_on_before_step", "_on_after_step", "_current_fx_name", "_layer_sync", "metrics_keys", "_trainer",
           "_after_closure", "_PRECISION_INPUT_STR", "_PRECISION_INPUT_STR_ALIAS", "_PRECISION_INPUT_INT",
           "_dynamo", "_logger_connector", "_results", "_checkpoint_connector", "_data_connector"}  # fmt: skip


def attribute_uses(path: Path) -> set[str]:
    """`.name` attribute accesses in code (not in strings or comments)."""
    toks = list(tokenize.generate_tokens(io.StringIO(path.read_text()).readline))
    return {b.string for a, b in zip(toks, toks[1:]) if a.string == "." and b.type == tokenize.NAME}


def test_no_private_lightning_use_outside_the_compat_module():
    found = {
        f"{p.relative_to(ROOT)}: .{name}"
        for p in [*(ROOT / "gan_lab").rglob("*.py"), *(ROOT / "scripts").glob("*.py")]
        if p.name != "_lightning_compat.py"
        for name in attribute_uses(p) & PRIVATE
    }
    assert not found, sorted(found)


def test_pyproject_allows_exactly_the_tested_range_and_ci_pins_a_version_inside_it():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (req,) = [Requirement(d) for d in deps if Requirement(d).name == "pytorch-lightning"]
    assert str(req.specifier) == str(Requirement(f"x{compat.TESTED_LIGHTNING}").specifier)
    pins = [ln.split("==")[1].split()[0] for ln in (ROOT / "constraints.txt").read_text().splitlines()
            if ln.startswith("pytorch-lightning==")]  # fmt: skip
    assert pins and Version(pins[0]) in req.specifier
    assert compat.PRIVATE_API  # the installed (CI) version is inside the tested range


def test_outside_the_tested_range_training_takes_the_public_path(tmp_path, monkeypatch):
    """With the internals off, the loop steps through LightningOptimizer.step: max_steps still stops the run
    and the logged losses arrive."""
    from gan_lab.train import build_objects

    monkeypatch.setattr(compat, "PRIVATE_API", False)
    cfg = compose_cfg(*FAST, "model=gan_mlp", "data=toy2d_ring", "trainer.max_steps=7",
                      "trainer.log_every_n_steps=1")  # fmt: skip
    with open_dict(cfg):
        for name in list(cfg.callbacks):
            cfg.callbacks[name] = None
    dm, task, trainer = build_objects(cfg, tmp_path)
    trainer.fit(task, datamodule=dm)
    assert task._direct_backward is None and task._direct_step is None  # Lightning's own dispatch
    assert trainer.global_step == 7
    assert {"g_loss", "d_loss"} <= {k.split("/")[-1] for k in task.last_logged}
    assert compat.precision_names() == []  # the precision check is left to Lightning
