"""Every shell command in README.md and docs/*.md (```bash blocks) is checked, so a documented command cannot
break silently: each names a real make target, gan-lab command or script; every training command composes
with the packaged configs; and (slow) each single-run training command without placeholders trains, shrunk
to a few steps in a temporary directory."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from conftest import FAST, ROOT, compose_cfg, run_cli

from gan_lab.cli import COMMANDS

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OTHER_TOOLS = {"pip", "wandb", "mkdocs", "tmux", "screen", "pytest", "bash", "export", "cd", "ls", "cat", "mkdir",
               "curl", "sha256sum"}  # fmt: skip
# what a shrunk CPU run cannot do here: other machines, GPUs, the user's own data, minutes of compiling
NOT_HERE = re.compile(r"trainer\.num_nodes|accelerator=gpu|data\.root=|trainer\.devices=[3-9]|model\.compile=true|<")


def documented_commands() -> list[tuple[str, int, list[str]]]:
    """(page, line, argv) of every command line in the pages' ```bash blocks (continuations joined)."""
    out = []
    for page in PAGES:
        for block in re.finditer(r"```bash\n(.*?)```", page.read_text(), re.S):
            start = page.read_text()[: block.start()].count("\n") + 2
            text = re.sub(r"\\\n\s*", " ", block.group(1))
            for i, line in enumerate(text.splitlines()):
                # placeholders such as <run dir> become one word: <run_dir>
                line = re.sub(r"<([^<>]*)>", lambda m: "<" + re.sub(r"\W+", "_", m.group(1)) + ">", line)
                argv = [os.path.expandvars(a) for a in shlex.split(line, comments=True)]  # $HOME, as bash does
                if argv:
                    out.append((page.name, start + i, argv))
    return out


COMMANDS_DOCUMENTED = documented_commands()


def entry(argv: list[str]) -> tuple[str | None, list[str]]:
    """(gan-lab command, its arguments) of `gan-lab X ...`, `python -m gan_lab.X ...`, `.venv/bin/...`."""
    argv = [a for a in argv if not re.fullmatch(r"\w+=\S*", a) or argv.index(a) > 0] if argv else argv
    head = Path(argv[0]).name
    if head == "gan-lab" and len(argv) > 1:
        return argv[1], argv[2:]
    if head.startswith("python") and argv[1:2] == ["-m"] and argv[2].startswith("gan_lab."):
        module = argv[2]
        cmd = next((c for c, (m, _) in COMMANDS.items() if m == module), module)
        return cmd, argv[3:]
    return None, argv


def train_overrides(args: list[str]) -> tuple[list[str], bool]:
    """Hydra overrides of a train command (a multirun's first job), and whether it is a multirun (-m, a sweep
    preset)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    multirun = any(a in ("-m", "--multirun") for a in args) or any(a.startswith("+sweep=") for a in args)
    overrides = []
    args = [re.sub(r"<[^>]*>", "placeholder", a) for a in args if a not in ("-m", "--multirun")]  # <run dir>
    for o in OverridesParser.create().parse_overrides(args):
        first = next(o.sweep_string_iterator()) if o.is_sweep_override() else None
        overrides.append(o.input_line if first is None else f"{o.get_key_element()}={first}")
    return overrides, multirun


def test_the_pages_document_commands():
    assert len(COMMANDS_DOCUMENTED) >= 20
    assert any(a[:2] == ["make", "train"] for _, _, a in COMMANDS_DOCUMENTED)


@pytest.mark.parametrize("page,line,argv", COMMANDS_DOCUMENTED, ids=lambda v: v if isinstance(v, str) else None)
def test_documented_command_is_real_and_composes(page, line, argv):
    where = f"{page}:{line}: {' '.join(argv)}"
    head = Path(argv[0]).name
    if head == "make":
        targets = re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M)
        assert argv[1] in targets, where
        return
    if head.startswith("python") and argv[1].endswith(".py"):
        assert (ROOT / argv[1]).is_file(), where
        return
    cmd, args = entry(argv)
    if cmd is None:
        assert head in OTHER_TOOLS, f"{where}: not a gan-lab command, a script or a known tool"
        return
    assert cmd in COMMANDS, where
    if cmd == "train":
        overrides, _ = train_overrides(args)
        compose_cfg(*overrides, hydra=True)  # a typo in a key, group or option fails here


def shrunk_runs() -> list:
    runs = []
    for page, line, argv in COMMANDS_DOCUMENTED:
        cmd, args = entry(argv)
        overrides, multirun = train_overrides(args) if cmd == "train" else ([], True)
        if cmd == "train" and not multirun and not any(NOT_HERE.search(a) or "hydra" in a for a in args):
            runs.append(pytest.param(overrides, id=f"{page}:{line}"))
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("overrides", shrunk_runs())
def test_documented_training_command_trains_shrunk(overrides, tmp_path):
    small = ["trainer.max_steps=2", "metrics.every_n_steps=0", "metrics.n_samples=64", "trainer.log_every_n_steps=1"]
    r = run_cli("gan_lab.train", *overrides, *FAST, *small, f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert '"status": "completed"' in (tmp_path / "metrics.json").read_text()
