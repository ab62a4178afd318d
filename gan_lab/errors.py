"""One exception type for bad user input, so the CLI can print it as a single line."""


class ConfigError(ValueError):
    """A user-facing configuration or input error; its message is one line naming value and allowed range."""


def check_range(owner: str, name: str, value, low=None, high=None, low_open=False, high_open=False):
    """Raise ConfigError unless low <= value <= high (with optional open ends). Returns value."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # value != value: NaN
        lo_txt = "-inf" if low is None else low
        hi_txt = "inf" if high is None else high
        raise ConfigError(f"{owner}: {name}={value!r} is not a number; allowed [{lo_txt}, {hi_txt}]")
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        lo = "(-inf" if low is None else ("(" if low_open else "[") + f"{low}"
        hi = "inf)" if high is None else f"{high}" + (")" if high_open else "]")
        raise ConfigError(f"{owner}: {name}={value!r} is out of range; allowed {lo}, {hi}")
    return value


class StorageError(ConfigError):
    """A run's files cannot be written (disk full, read-only directory): one line naming the path and what is
    needed. A ConfigError so that every entry point prints it as one line; `gan-lab train` exits 1 for it."""
