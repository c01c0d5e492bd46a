"""Files a physicist brings to the Datasets page, written the way the tests need them."""
from __future__ import annotations

import numpy as np
import uproot

from gato_dash import uploads


def analysis_root(path, seed: int = 7, signal_events: int = 400,
                  background_events: int = 1600) -> dict:
    """A ROOT file with one tree per process (signal, bkg), a systematic-variation tree
    (bkg_JESup, shifted) and a meta tree without the analysis columns; returns the arrays
    written, by tree."""
    rng = np.random.default_rng(seed)
    arrays = {}
    with uproot.recreate(path) as f:
        for tree, n, centre in (("signal", signal_events, 0.7), ("bkg", background_events, 0.3),
                                ("bkg_JESup", background_events, 0.32)):
            columns = {"nn_score": np.clip(rng.normal(centre, 0.2, n), 0, 1),
                       "njets": rng.integers(0, 5, n).astype(np.int32),
                       "w": rng.uniform(0.5, 1.5, n)}
            f.mktree(tree, {k: v.dtype for k, v in columns.items()})
            f[tree].extend(columns)
            arrays[tree] = columns
        f.mktree("meta", {"version": np.int32})
        f["meta"].extend({"version": np.array([3], np.int32)})
    return arrays


def finished_upload(path, token: str = "a" * 32) -> dict:
    """A finished upload of ``path``, as the chunked upload route leaves it, and the source
    the Datasets page holds for it."""
    folder = uploads.uploads_folder() / token
    folder.mkdir(parents=True)
    data = path.read_bytes()
    (folder / "upload.json").write_text(
        f'{{"filename": "{path.name}", "size": {len(data)}, "started": 0}}')
    (folder / path.name).write_bytes(data)
    return {"kind": "upload", "token": token, "filename": path.name, "process": ""}
