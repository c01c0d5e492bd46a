"""Your own events in the browser: upload a file, map its columns, import it, train on it
and watch the run stream."""
from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
from pyarrow import csv as pa_csv
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from gato_core.scenarios import generate

pytestmark = pytest.mark.browser


def toy_csv(path):
    events = generate("one_d", 2000, 6000, seed=5)
    table = pa.table({"score": events.scores[:, 0].astype(np.float64),
                      "weight": events.weight.astype(np.float64),
                      "process": np.array(events.process_names)[events.process]})
    pa_csv.write_csv(table, path)
    return path


def pick(page, dropdown_id: str, *options: str):
    """Choose options of a dcc.Dropdown the way a person does: open it, type, press Enter,
    and look that it took (the options arrive with a callback: try again until they have)."""
    box = page.locator(f"#{dropdown_id}")
    for option in options:
        deadline = time.monotonic() + 20
        while option not in box.inner_text():
            assert time.monotonic() < deadline, f"{option!r} never became a choice of {dropdown_id}"
            box.click()
            page.keyboard.type(option)
            try:  # the typed text has filtered the open menu down to the option
                page.locator(".dash-dropdown-option", has_text=option).first.wait_for(
                    timeout=2_000)
            except PlaywrightTimeout:  # its options have not arrived yet: close, try again
                page.keyboard.press("Escape")
                continue
            page.keyboard.press("Enter")
            page.keyboard.press("Escape")


def test_upload_map_import_and_train(server, page, tmp_path, wait_status):
    path = toy_csv(tmp_path / "my scores.csv")
    page.goto(server.url + "/datasets")
    page.set_input_files("#datasets-upload", str(path))
    page.wait_for_selector("#datasets-source-list :text('my_scores.csv')")
    page.wait_for_selector("#datasets-preview-tables :text('8,000 rows')", timeout=30_000)
    assert "score" in page.inner_text("#datasets-preview-tables")

    pick(page, "datasets-scores", "score")
    pick(page, "datasets-weight", "weight")
    pick(page, "datasets-process", "process")
    pick(page, "datasets-signals", "signal")
    page.fill("#datasets-name", "browser toy")
    assert page.locator("#datasets-problem").count() == 0  # nothing was sent early
    page.click("#datasets-import")
    # the alert can be in the page before its text is (it is drawn again with the summary)
    page.wait_for_selector("#datasets-imported:has-text('8,000 events')", timeout=60_000)
    page.wait_for_selector("#datasets-table :text('browser toy')")

    page.click("#datasets-train-link")
    page.wait_for_url("**/new?**")
    page.wait_for_selector("#new-run-button:not([disabled])")
    page.click("#preset-quick")
    page.wait_for_function("() => location.search.includes('epochs=60')")
    page.click("#new-run-button:not([disabled])")
    page.wait_for_url("**/runs/*")
    run_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    page.wait_for_selector("#run-badge:text-is('running')", timeout=60_000)
    run = wait_status(server, run_id, "finished", timeout_s=180)
    assert run["config"]["scenario"] == "dataset"
    assert "dataset browser toy" in page.inner_text("#run-page")
    page.wait_for_selector("#results-section", timeout=30_000)
    (result,) = server.store().results(run_id)
    assert result["heldout_significance"]["signal"] > 0  # checked on the held-out half
