"""Comparing runs, behind the compare view (no Dash, no Plotly): which runs a link asks for
and what the view shows (``selection``), the runs loaded from the store (``loading``), the
parameter table (``parameters``), the aligned histories (``histories``) and the CSV
downloads (``export``). Everything works on the plain dicts the run store returns."""
