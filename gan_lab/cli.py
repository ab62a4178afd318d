"""`gan-lab train|evaluate|compare|reproduce ...` and one-line errors for bad input.

gan-lab train model=gan_mlp data=toy2d_ring       # same as python -m gan_lab.train ...
gan-lab evaluate ckpt=outputs/2026-11-21/12-00-00/checkpoints/last.ckpt n_samples=10000
gan-lab evaluate images=samples/ data=digits        # any image folder or .npz against a data config
gan-lab sample ckpt=outputs/.../checkpoints/last.ckpt n=50000 out=samples/   # PNGs or a .npz of uint8 images
gan-lab compare multirun/2026-11-21/12-00-00
gan-lab reproduce pacgan_ring --seeds 3          # same as python -m gan_lab.reproduce ...
"""

from __future__ import annotations

import os
import re
import sys

COMMANDS = {
    "train": "gan_lab.train",
    "evaluate": "gan_lab.evaluate",
    "sample": "gan_lab.sample",
    "compare": "gan_lab.compare",
    "reproduce": "gan_lab.reproduce",
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


def run_hydra_main(main) -> None:
    """Run a @hydra.main function; user errors print one line `error: ...` and exit 2."""
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # let exceptions reach us instead of Hydra's report
    try:
        main()
    except Exception as e:
        if not _user_error(e):
            raise
        print(f"error: {one_line(e)}", file=sys.stderr)
        sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: gan-lab {{{','.join(COMMANDS)}}} [args...]", file=sys.stderr)
        sys.exit(2)
    import importlib

    cmd, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[cmd])
    sys.argv = [f"gan-lab {cmd}", *rest]
    if cmd == "train":
        run_hydra_main(module.main)
    else:
        sys.exit(module.main(rest))


if __name__ == "__main__":
    main()
