"""Figures of a run, built from plain record dicts.

Every figure function is pure: it takes the JSON-safe dicts that the engine yields and the
run store keeps (``RunInfo``, ``EpochRecord``, ``TrainingResult``; see
``gato_core/records.py`` and docs/CONTRACTS.md) and returns a ``plotly.graph_objects.Figure``
(or plain rows for a table). No Dash, no store, no files: what a figure depends on beyond
the records (a run's score dimension, its signals) is passed in by the caller, which asks
``gato_dash.runtime.run_facts``; tests/test_figures_pure.py keeps the runtime layer out of
this package. The run page, the compare view, the New-run page and the standalone report
call them, and tests call them without a server.

- ``catalogue``: which results figures a run and K have, their names, titles and builders
- ``categories``, ``spectra``, ``baselines``, ``category_numbers``: the results figures, one
  module per tab of the run page's results section
- ``history``: the live training-history figures; ``compare``: the compare view's panels;
  ``previews``: the New-run page's preview of a sample (its mass spectrum is the results'
  ``spectra.inclusive_mass_spectrum``)
- ``colours``, ``style``: every colour, and the layout helpers all figures share

Conventions
- Epochs are shown as the records number them (0-based), like the live history figures
  on the same page, so "epoch 120" means the same point everywhere.
- Categories are shown by their display number (1 = first entry of
  ``result["categories"]``, which is the most significant one for 2-D scenarios); model
  components are mapped to it through ``result["order"]`` so that a category keeps its
  colour in every animation frame.
- Dict keys that were ints in Python arrive as strings after a JSON round trip
  (``baselines``, ``optimum_1d``); every reader accepts both.
"""
