"""How the dashboard writes values as text: numbers, significances, times and durations.

One function per kind of value, used by every page, table and the report, so that a value
reads the same wherever it is shown. A value that is absent (None) or not a number (NaN)
is written as ``MISSING``. Plain Python, no Dash.
"""
from __future__ import annotations

import math
import time
from datetime import datetime

#: What an absent value is shown as.
MISSING = "–"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number(value, digits: int = 4) -> str:
    """A table value: floats to ``digits`` significant digits, integers whole (with
    thousands separators from 10,000), yes/no for switches, lists comma-separated, NaN and
    None as ``MISSING``, anything else as its text."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return MISSING
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return f"{value:.{digits}g}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(number(v, digits) for v in value)
    return str(value)


def z_value(value) -> str:
    """A significance Z: three decimals (the precision the physics is quoted to)."""
    if not _is_number(value) or not math.isfinite(value):
        return MISSING
    return f"{value:.3f}"


def epoch_seconds(value) -> float | None:
    """A stored time as seconds since the epoch: the store keeps unix seconds; older
    records and fixtures may carry ISO text. None when there is no readable time."""
    if value is None or value == "":
        return None
    if _is_number(value):
        return float(value)
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def timestamp(value, seconds: bool = False) -> str:
    """A stored time as local "YYYY-MM-DD HH:MM" (":SS" too with ``seconds``)."""
    when = epoch_seconds(value)
    if when is None:
        return MISSING
    return time.strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else ""), time.localtime(when))


def duration(seconds: float | None) -> str:
    """How long something took, in words: "12.3 s", "4 min 05 s", "2 h 07 min"."""
    if seconds is None or not _is_number(seconds) or not math.isfinite(seconds) or seconds < 0:
        return MISSING
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def clock(seconds: float | None) -> str:
    """A running time as a clock reads, "4:05" or "2:07:00": for elapsed time and ETA that
    tick while a run trains (the width stays steady from one second to the next)."""
    if seconds is None or not _is_number(seconds) or not math.isfinite(seconds) or seconds < 0:
        return MISSING
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


#: Binary units: "GiB" is 2³⁰ bytes, what --max-upload-gib counts in and what the README says.
_BYTE_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")


def byte_size(n_bytes, digits: int = 3) -> str:
    """A size in binary units, as people read a limit: "4 GiB", "1.5 GiB", "512 MiB",
    "730 bytes". Up to ``digits`` significant digits (more to tell a file just over a
    limit from the limit), whole numbers without ".0"."""
    if not _is_number(n_bytes) or not math.isfinite(n_bytes) or n_bytes < 0:
        return MISSING
    value, unit = float(n_bytes), 0
    while value >= 1024 and unit < len(_BYTE_UNITS) - 1:
        value /= 1024
        unit += 1
    if unit == 0:
        return f"{int(n_bytes)} bytes"
    # "g" drops trailing zeros: "4" rather than "4.00" for a round limit
    text = f"{value:.{digits}g}" if value < 10 ** digits else f"{value:.0f}"
    return f"{text} {_BYTE_UNITS[unit]}"
