"""The app's loading spinner: one ``dcc.Loading`` set-up for every place that waits on a
callback.

A ``dcc.Loading`` hides what it wraps (visibility: hidden) while any callback writing into
it runs. Quick callbacks must not blank what the user is reading: after an import, the
Datasets page's source editor, which also writes the import message, fires as the source
list empties, and without a delay the import summary blinked out. The spinner therefore
shows only once a callback has run for ``DELAY_MS``.
"""
from __future__ import annotations

from dash import dcc

#: How long a callback may run before the spinner replaces what it wraps.
DELAY_MS = 300


def spinner(content, kind: str = "dot") -> dcc.Loading:
    """``content`` wrapped in a loading spinner of ``kind`` (a ``dcc.Loading`` type) that
    appears only for callbacks slower than ``DELAY_MS``."""
    return dcc.Loading(content, type=kind, delay_show=DELAY_MS)
