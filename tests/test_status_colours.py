"""Every run status has its colour, defined once (gato_dash/status_colours.py)."""
from __future__ import annotations

from gato_dash.runtime.run_fields import DAMAGED, STATUSES
from gato_dash.status_colours import STATUS_COLOURS, TEXT_COLOURS, status_text_colours

BOOTSTRAP_COLOURS = {"primary", "secondary", "success", "danger", "warning", "info",
                     "light", "dark"}


def test_every_status_has_a_bootstrap_colour():
    assert set(STATUS_COLOURS) == {*STATUSES, DAMAGED}
    assert set(STATUS_COLOURS.values()) <= BOOTSTRAP_COLOURS


def test_text_colours_follow_the_badge_colours():
    """Where a status is coloured text (runs table, report), failures read as failures and
    a finished run as a success, whatever the badges' names map to."""
    text = status_text_colours()
    assert text["failed"] == text["diverged"] == text[DAMAGED] == TEXT_COLOURS["danger"]
    assert text["finished"] == TEXT_COLOURS["success"]
    assert "queued" not in text and "interrupted" not in text  # plain text
