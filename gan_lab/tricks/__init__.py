"""Stabilization tricks: `trick=<name>` selects the class in `gan_lab/tricks/<name>.py` (configured by
`gan_lab/conf/trick/<name>.yaml`); each plugs into the named loop hooks of `gan_lab.tricks.base`.

    gan-lab tricks            # every trick: what it does, its source, parameters with defaults and ranges
"""

from __future__ import annotations

from gan_lab.tricks.base import Trick, TrickSet, build_tricks

__all__ = ["Trick", "TrickSet", "build_tricks", "catalogue", "main"]


def _interval(low, high, low_open: bool, high_open: bool) -> str:
    lo = "(-inf" if low is None else ("(" if low_open else "[") + f"{low}"
    hi = "inf)" if high is None else f"{high}" + (")" if high_open else "]")
    return f"{lo}, {hi}"


def catalogue() -> list[dict]:
    """Every configured trick: name, what it does (its config's comment), paper, and each parameter's
    default (from the config) and allowed range (recorded by the trick's own checks)."""
    import yaml

    from gan_lab.build import build
    from gan_lab.config import CONF_DIR

    out = []
    for path in sorted((CONF_DIR / "trick").glob("*.yaml")):
        text = path.read_text()
        ((name, spec),) = yaml.safe_load(text).items()
        trick = build(spec, f"trick.{name}")
        ranges, allowed = vars(trick).get("ranges", {}), getattr(trick, "ALLOWED", {})
        params = {k: v for k, v in spec.items() if not k.startswith("_")}
        out.append(
            {
                "name": name,
                "what": " ".join(ln.lstrip("# ").strip() for ln in text.splitlines() if ln.startswith("#")),
                "paper": trick.paper,
                "params": {
                    k: (v, _interval(*ranges[k]) if k in ranges else allowed.get(k, "")) for k, v in params.items()
                },
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """`gan-lab tricks`: print the catalogue."""
    if argv:
        print("usage: gan-lab tricks   (lists every trick; select with trick=[a,b], set trick.<name>.<param>=...)")
        return 0 if argv[0] in ("-h", "--help") else 2
    for t in catalogue():
        print(f"{t['name']}: {t['what']}")
        print(f"    source: {t['paper']}")
        for k, (default, allowed) in t["params"].items():
            print(f"    trick.{t['name']}.{k}={default}" + (f"   allowed {allowed}" if allowed else ""))
    print("\nselect: trick=[label_smoothing,ema]; set: trick.ema.decay=0.99 (after selecting it)")
    return 0
