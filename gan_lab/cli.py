"""`gan-lab train|evaluate|compare|reproduce ...` and one-line errors for bad input.

gan-lab train model=gan_mlp data=toy2d_ring       # same as python -m gan_lab.train ...
gan-lab evaluate ckpt=outputs/2026-11-21/12-00-00/checkpoints/last.ckpt n_samples=10000
gan-lab evaluate images=samples/ data=digits        # any image folder or .npz against a data config
gan-lab sample ckpt=outputs/.../checkpoints/last.ckpt n=50000 out=samples/   # PNGs or a .npz of uint8 images
gan-lab compare multirun/2026-11-21/12-00-00
gan-lab reproduce pacgan_ring --seeds 3          # same as python -m gan_lab.reproduce ...
gan-lab prepare data=image_folder data.root=$HOME/celeba data.size=64   # the prepared image cache, ahead of training
gan-lab tricks                                  # every trick's parameters, defaults and ranges
gan-lab --help                                  # every command, one line each
"""

from __future__ import annotations

import os
import re
import sys

# command: (module with main(argv) -> exit code, one line for `gan-lab --help`); `train` runs Hydra's main
COMMANDS = {
    "train": ("gan_lab.train", "train a model: Hydra overrides, e.g. model=gan_mlp data=toy2d_ring trick=[ema]"),
    "evaluate": ("gan_lab.evaluate", "score a checkpoint (ckpt=...) or images (images=... data=...) by the metrics"),
    "sample": ("gan_lab.sample", "write generated images of a checkpoint (PNGs or an .npz)"),
    "compare": ("gan_lab.compare", "table and plots of a sweep's runs: mean +- 95% CI over seeds per setting"),
    "reproduce": ("gan_lab.reproduce", "train paper presets over seeds and print paper-vs-measured tables"),
    "prepare": ("gan_lab.prepare", "build the prepared image cache of a data config ahead of training"),
    "tricks": ("gan_lab.tricks", "list every trick with its parameters, defaults and allowed ranges"),
}


def one_line(exc: BaseException) -> str:
    """A single line for a user error raised by Hydra/OmegaConf composition or by gan_lab validation."""
    msg = str(exc).strip()
    cause = exc.__cause__ or exc.__context__
    if type(exc).__name__ == "ConfigCompositionException" and cause is not None and "override" in msg.lower():
        msg = f"{msg.splitlines()[0]} {str(cause).splitlines()[0]}"
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    lines = [
        ln
        for ln in lines
        if not ln.startswith(
            (
                "Config search path",
                "full_key:",
                "object_type",
                "reference_type",
                "Set the environment variable",
                "provider=",
                "path=",
                "To append to your config",
            )
        )
    ]
    text = " ".join(lines)
    override = getattr(exc, "override", None)  # OverrideParseException: say which argument did not parse
    if isinstance(override, str) and override not in text:
        text = f"cannot parse override {override!r}: {text}"
    if isinstance(override, str) and not override.isascii() and "=" in override:  # Hydra's grammar: ASCII unquoted
        key, value = override.split("=", 1)
        text += f"; non-ASCII values must be quoted: '{key}=\"{value}\"'"
    if "is not in struct" in text and cause is not None:  # a misspelled key: name the keys that exist there
        text += _allowed_keys(cause)
    text = re.sub(r"Available options in '([^']+)':", r"; available options in '\1':", text)
    missing = re.search(r"Could not (?:load|find) '([\w/]+)/(\w+)'", text)
    if missing and "available options" not in text:
        options = available_options(missing.group(1))
        if options:
            text += f"; available options in '{missing.group(1)}': {', '.join(options)}"
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"[\s.]*; available options", "; available options", text)
    # Hydra lists options separated by whitespace: "...: ae dcgan gan_mlp vae" -> "ae, dcgan, gan_mlp, vae"
    return re.sub(
        r"(available options in '[^']+':)((?: [\w/.-]+)+)$", lambda m: f"{m[1]} {', '.join(m[2].split())}", text
    )


def _allowed_keys(cause: BaseException) -> str:
    """The keys that exist where OmegaConf met an unknown one, from the error's parent node, e.g.
    "; allowed keys in 'trainer': accelerator, devices, ..."."""
    parent, key = getattr(cause, "parent_node", None), getattr(cause, "key", None)
    full = str(getattr(cause, "full_key", None) or key or "")
    where = full.rsplit(".", 1)[0] if "." in full else ""
    if not where and key == "trick":
        return "; select tricks first, e.g. trick=[d_dropout] trick.d_dropout.rate=0.5"
    try:
        keys = [str(k) for k in parent.keys() if not str(k).startswith("_") and str(k) != "hydra"]
    except Exception:
        return ""
    if not keys:
        return ""
    return f"; allowed keys in '{where or 'the top level'}': {', '.join(keys)}"


def available_options(group: str) -> list[str]:
    from pathlib import Path

    conf = Path(__file__).resolve().parent / "conf" / group
    return sorted(p.stem for p in conf.glob("*.yaml"))


def _user_error(exc: BaseException) -> bool:
    from gan_lab.errors import ConfigError

    if isinstance(exc, ConfigError):
        return True
    mod = type(exc).__module__
    return mod.startswith(("hydra", "omegaconf"))


def run_command(body, argv: list[str] | None, help_text: str | None = None, prefix: str = "error") -> int:
    """The main() of a non-Hydra command: `help_text` for -h/--help, then `body(argv)` (its exit code); a user
    error (ConfigError, Hydra/OmegaConf composition) prints one line `<prefix>: ...` and returns 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if help_text is not None and argv and argv[0] in ("-h", "--help"):
        print(help_text)
        return 0
    try:
        return body(argv)
    except Exception as e:
        if not _user_error(e):
            raise
        print(f"{prefix}: {one_line(e)}", file=sys.stderr)
        return 2


def run_hydra_main(main) -> None:
    """Run a @hydra.main function; user errors print one line `error: ...` and exit 2."""
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # let exceptions reach us instead of Hydra's report
    try:
        main()
    except Exception as e:
        line = _path_error(e) or _group_null(e)
        if line is None and not _user_error(e):
            raise
        print(f"error: {line or one_line(e)}", file=sys.stderr)
        sys.exit(2)


def _path_error(exc: BaseException) -> str | None:
    """A run directory the filesystem refuses before gan_lab sees it (Hydra creates it): name too long, not
    writable, a file in the way."""
    import errno

    if not isinstance(exc, OSError) or exc.errno not in (errno.ENAMETOOLONG, errno.EACCES, errno.EROFS, errno.ENOTDIR):
        return None
    name = exc.filename or "?"
    why = os.strerror(exc.errno)
    if exc.errno == errno.ENAMETOOLONG:
        longest = max((len(part) for part in str(name).split(os.sep)), default=0)
        why += f" (a name of {longest} characters; most filesystems allow 255 per name)"
    return f"cannot create the run directory {str(name)!r}: {why}; allowed: a shorter, writable hydra.run.dir"


def _group_null(exc: BaseException) -> str | None:
    """`callbacks=null` (or another group set to null): Hydra's ValueError, with what to write instead."""
    if isinstance(exc, ValueError) and "Config group override must be a string or a list" in str(exc):
        groups = [a.split("=")[0] for a in sys.argv[1:] if a.endswith("=null") and "." not in a.split("=")[0]]
        group = groups[0] if groups else "<group>"
        return (
            f"{group}=null cannot remove a config group; allowed ~{group} (drop the whole group), or null its "
            f"members, e.g. {group}.<name>=null"
        )
    return None


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {help_line}" for name, (_, help_line) in COMMANDS.items()]
    return "\n".join(
        [
            f"usage: gan-lab {{{','.join(COMMANDS)}}} [args...]",
            "",
            "commands:",
            *lines,
            "",
            "`gan-lab <command> --help` for a command's options; the handbook: docs/index.md",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help", "help"):
        print(usage())
        sys.exit(0)
    if not argv or argv[0] not in COMMANDS:
        got = f"unknown command {argv[0]!r}; " if argv else "a command is required; "
        print(f"error: {got}allowed {', '.join(COMMANDS)}\n\n{usage()}", file=sys.stderr)
        sys.exit(2)
    import importlib

    cmd, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[cmd][0])
    sys.argv = [f"gan-lab {cmd}", *rest]
    if cmd == "train":
        run_hydra_main(module.main)
    else:
        sys.exit(module.main(rest))


if __name__ == "__main__":
    main()
