"""One colour per run status, wherever a status is shown: as Bootstrap's colour names
(badges, alerts) and as the text colour of each name where Bootstrap's classes do not
reach (the runs table's cells, the offline HTML report)."""
from __future__ import annotations

from .runtime.run_fields import DAMAGED

#: Bootstrap colour name per status (``dbc.Badge`` / ``dbc.Alert`` ``color``)
STATUS_COLOURS = {
    "queued": "secondary", "running": "primary", "finished": "success",
    "cancelled": "warning", "diverged": "danger", "failed": "danger",
    "interrupted": "dark", DAMAGED: "danger",
}
#: What a status without a colour of its own is shown in
DEFAULT_COLOUR = "secondary"
#: Text colour of each Bootstrap colour name, dark enough to read on white; the greys
#: ("secondary", "dark") are plain text
TEXT_COLOURS = {"primary": "#0a58ca", "success": "#1a7f37", "warning": "#b35900",
                "danger": "#b00020"}


def status_colour(status: str) -> str:
    """Bootstrap colour name of ``status``."""
    return STATUS_COLOURS.get(status, DEFAULT_COLOUR)


def status_text_colours() -> dict[str, str]:
    """{status: CSS text colour} for the statuses shown in colour."""
    return {status: TEXT_COLOURS[name] for status, name in STATUS_COLOURS.items()
            if name in TEXT_COLOURS}
