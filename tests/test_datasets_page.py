"""The Datasets page's server side: sources are resolved again on every use, the import
refuses with the engine's messages and leaves nothing, a used dataset is not deleted."""
from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gato_core import datasets as catalogue
from gato_core.readers import DatasetError
from gato_core.scenarios import generate
from gato_dash import runtime, uploads
from gato_dash.app import create_app
from helpers.dataset_files import finished_upload


@pytest.fixture
def page(tmp_path):
    create_app(tmp_path / "data", runtime.Settings())
    return sys.modules["gato_dash.pages.datasets"]


def toy_parquet(path):
    events = generate("one_d", 300, 1200, seed=3)
    pq.write_table(pa.table({"score": events.scores[:, 0], "weight": events.weight,
                             "process": np.array(events.process_names)[events.process]}), path)
    return path


def test_server_paths_are_refused_unless_allowed(page, tmp_path):
    path = toy_parquet(tmp_path / "toy.parquet")
    with pytest.raises(DatasetError, match="--allow-server-paths"):
        page.resolve_sources([{"kind": "path", "path": str(path)}])
    with pytest.raises(DatasetError, match="no such upload|There is no such upload"):
        page.resolve_sources([{"kind": "upload", "token": "../../etc"}])
    with pytest.raises(DatasetError, match="damaged"):
        page.resolve_sources(["/etc/passwd"])


def test_import_through_the_page_and_delete_refused_while_a_run_uses_it(page, tmp_path):
    source = finished_upload(toy_parquet(tmp_path / "toy.parquet"))
    message, refresh, sources = page.import_dataset(
        1, [source], ["score"], "weight", "process", ["signal"], None, None, None, None, None,
        False, "my toy", 0)
    assert refresh == 1 and sources == []
    (manifest,) = catalogue.list_datasets(page.datasets_dir())
    assert manifest.name == "my toy" and manifest.n_events == 1500
    assert "my toy" in str(message) and "1,500 events" in str(message)
    assert not (uploads.uploads_folder() / source["token"]).exists()  # upload cleaned up

    run_id = runtime.store().create_run({"scenario": "dataset", "dataset": manifest.id},
                                        name="on my toy")
    with pytest.raises(DatasetError, match="on my toy"):
        catalogue.delete_dataset(page.datasets_dir(), manifest.id, in_use=page.runs_using)
    runtime.store().delete(run_id)
    catalogue.delete_dataset(page.datasets_dir(), manifest.id, in_use=page.runs_using)
    assert catalogue.list_datasets(page.datasets_dir()) == []


def test_a_refused_import_says_why_and_stores_nothing(page, tmp_path):
    source = finished_upload(toy_parquet(tmp_path / "toy.parquet"))
    message, refresh, sources = page.import_dataset(
        1, [source], ["no_such_column"], None, "process", ["signal"], None, None, None, None,
        None, False, "", 0)
    assert "Nothing was imported" in str(message) and "no_such_column" in str(message)
    assert refresh is page.no_update and sources is page.no_update
    assert catalogue.list_datasets(page.datasets_dir()) == []
    assert (uploads.uploads_folder() / source["token"]).exists()  # kept for another try
