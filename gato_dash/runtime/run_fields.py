"""What a stored run's fields may hold: its statuses and the longest texts it keeps.

Defined here once; the store enforces them, the pages offer and show the same ones.
"""
from __future__ import annotations

from gato_core.records import RESULT_STATUSES

#: queued -> running (a job's claim) -> how the training ended, "failed" (an error) or
#: "interrupted" (its job went away: gato_dash.runtime.liveness)
STATUSES = ("queued", "running", *RESULT_STATUSES, "failed", "interrupted")
#: Waiting for a job or training: pages keep polling
ACTIVE = ("queued", "running")
#: Ended: nothing changes any more
TERMINAL = frozenset(STATUSES) - frozenset(ACTIVE)
#: What a run is shown as when its stored row cannot be read back (never written as a
#: status: it is how the store reports a row whose JSON is broken)
DAMAGED = "damaged"

#: Longest texts the store keeps, whatever sends them (the forms say so too)
MAX_NAME_CHARS = 120
MAX_NOTE_CHARS = 2000
MAX_TAG_CHARS = 40
MAX_TAGS = 20


class TextTooLong(ValueError):
    """A name, note or tag over its limit; the message says which and the limit."""


def checked_text(what: str, value, limit: int) -> str:
    """``value`` as text, or TextTooLong if it is longer than ``limit``."""
    text = "" if value is None else str(value)
    if len(text) > limit:
        raise TextTooLong(f"{what} may have at most {limit} characters, got {len(text)}")
    return text
