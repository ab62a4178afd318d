"""The `gan-lab` console script: --help lists every command, each command answers --help, `gan-lab tricks`
lists every trick's parameters, and `gan-lab train` works from any directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import CONF, FAST

from gan_lab.cli import COMMANDS, main

GAN_LAB = str(Path(sys.executable).with_name("gan-lab"))  # the installed console script


def cli(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_SILENT": "true"}
    return subprocess.run([GAN_LAB, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_help_lists_every_command_with_one_line(capsys):
    code, out, _ = run_main(capsys, "--help")
    assert code == 0
    for name, (_, help_line) in COMMANDS.items():
        assert f"  {name} " in out and help_line in out
        assert help_line and "\n" not in help_line


@pytest.mark.parametrize("argv", [(), ("trian",)])
def test_missing_or_unknown_command_is_one_error_line_and_exit_2(capsys, argv):
    code, _, err = run_main(capsys, *argv)
    assert code == 2
    first = err.splitlines()[0]
    assert first.startswith("error: ") and "allowed train, evaluate" in first
    if argv:
        assert "'trian'" in first


@pytest.mark.parametrize("name", [c for c in COMMANDS if c != "train"])
def test_every_command_answers_help(capsys, name):
    code, out, err = run_main(capsys, name, "--help")
    assert code == 0, err
    assert name in (out + err) or "usage" in (out + err).lower()


def test_tricks_lists_every_parameter_with_default_and_range(capsys):
    code, out, _ = run_main(capsys, "tricks")
    assert code == 0
    for path in sorted((CONF / "trick").glob("*.yaml")):
        ((name, spec),) = yaml.safe_load(path.read_text()).items()
        assert f"\n{name}: " in f"\n{out}", name
        for key in spec:
            if not key.startswith("_"):
                assert f"trick.{name}.{key}=" in out, (name, key)
    assert "trick.d_dropout.rate=0.3   allowed [0.0, 1.0)" in out
    assert "trick.g_steps.k=5   allowed [1, 100]" in out


def test_console_script_help_and_train_from_another_directory(tmp_path):
    """The installed script finds the packaged configs from any directory; the run lands under that one."""
    r = cli("--help")
    assert r.returncode == 0 and "tricks" in r.stdout
    r = cli("train", "--help", cwd=tmp_path)
    assert r.returncode == 0 and "trick: " in r.stdout
    r = cli("train", *FAST, "model=gan_mlp", "data=toy2d_ring", "data.n_samples=600", "trainer.max_steps=3",
            "hydra.run.dir=run", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["status"] == "completed" and m["steps"] == 3
