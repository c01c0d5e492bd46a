"""The plotly.js the app's pages and reports use: the vendored cartesian bundle.

``gato_dash/vendor/plotly-cartesian-<version>.min.js`` (see vendor/README.md) has every trace
type the app draws at a third of the full bundle's size: 1.5 MB instead of 4.8 MB, which
the browser evaluates ~1 s faster on a 2-core machine and which keeps a standalone report
small. It must be the plotly.js version the installed plotly.py writes figures for; if it
is not (plotly upgraded without it), ``cartesian_bundle`` gives None and callers use the
full bundle as before. No Dash import (reports are built without the app).
"""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

BUNDLE = Path(__file__).resolve().parent / "vendor" / "plotly-cartesian-4.1.1.min.js"


@lru_cache(maxsize=1)
def cartesian_bundle() -> str | None:
    """The bundle's text, or None when it is missing or not plotly.py's plotly.js version."""
    from plotly.offline import get_plotlyjs_version

    if f"-{get_plotlyjs_version()}.min.js" not in BUNDLE.name or not BUNDLE.is_file():
        log.warning("%s is missing or not plotly.js %s: using the full bundle", BUNDLE,
                    get_plotlyjs_version())
        return None
    return BUNDLE.read_text(encoding="utf-8")
