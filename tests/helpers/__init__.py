"""Builders of hand-made records that tests and benchmarks share (no tests in here).

``records``: run, epoch and result dicts of realistic shape and size (docs/CONTRACTS.md);
``compared``: runs as the compare view loads them; ``waiting.wait_until``: a wait on a
condition. Imported as ``from helpers import ...``
(pytest puts tests/ on the import path, beside tests/conftest.py).
"""
