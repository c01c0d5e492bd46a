"""Import steps an analysis needs (issue #22): choosing ROOT trees, selection cuts, scale
factors, lnN systematics in the mapping, and a truncated ROOT file refused cleanly.

ROOT files are written with uproot's ``mktree`` + ``extend`` (real TTrees)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import uproot

from gato_core.datasets import get_dataset, import_dataset, load_dataset, read_events
from gato_core.import_steps import list_trees
from gato_core.mapping import DatasetMapping
from gato_core.readers import DatasetError, inspect_sources
from gato_core.selection import parse_selection

MAPPING = {"score_columns": ["score"], "weight_column": "w", "signals": ["sig"]}


def _events(rng, n, negative=0.0):
    w = rng.uniform(0.5, 1.5, n).astype("f4")
    w[rng.random(n) < negative] *= -1
    return {"score": rng.random(n).astype("f4"), "w": w,
            "njets": rng.integers(0, 6, n).astype("i4")}


def write_root(path, trees: dict[str, int], meta=True, seed=0):
    """A ROOT file with one TTree per process (entries given) and optionally a ``meta``
    tree with other branches; returns {tree: columns}."""
    rng = np.random.default_rng(seed)
    written = {}
    with uproot.recreate(path) as f:
        for name, n in trees.items():
            columns = _events(rng, n, negative=0.02)
            tree = f.mktree(name, {"score": "float32", "w": "float32", "njets": "int32"})
            tree.extend(columns)
            written[name] = columns
        if meta:
            f.mktree("meta", {"lumi_pb": "float64", "version": "int32"}).extend(
                {"lumi_pb": np.array([138000.0]), "version": np.array([3], "i4")})
    return written


# ----- trees -----------------------------------------------------------------------------
def test_list_trees_gives_names_entries_and_branches(tmp_path):
    path = tmp_path / "mc.root"
    write_root(path, {"sig": 300, "ttbar": 500})
    trees = {t.name: t for t in list_trees(path)}
    assert set(trees) == {"sig", "ttbar", "meta"}
    assert trees["ttbar"].entries == 500 and trees["meta"].entries == 1
    assert trees["sig"].branches == {"score": "float32", "w": "float32", "njets": "int32"}
    assert set(trees["meta"].flat) == {"lumi_pb", "version"}


def test_chosen_trees_with_process_names_and_a_meta_tree_left_alone(tmp_path):
    path = tmp_path / "mc.root"
    written = write_root(path, {"sig": 300, "ttbar": 500, "ttbar_JESup": 500, "wjets": 200})
    mapping = dict(MAPPING, signals=["hh"], trees={"sig": "hh", "ttbar": "tt", "wjets": ""})
    manifest = import_dataset([str(path)], mapping, tmp_path / "ds")
    assert manifest.processes == ["hh", "tt", "wjets"]
    assert manifest.process_summary["tt"]["events"] == 500
    assert manifest.process_summary["tt"]["weight_sum"] == pytest.approx(
        float(written["ttbar"]["w"].sum(dtype=np.float64)), rel=1e-6)
    assert manifest.n_events == 1000  # the variation is not in, the meta tree neither
    assert any("ttbar_JESup" in note and "not chosen" in note for note in manifest.notes)


def test_a_variation_tree_is_not_silently_another_background(tmp_path):
    path = tmp_path / "mc.root"
    write_root(path, {"sig": 300, "ttbar": 500, "ttbar_JESup": 500})
    with pytest.raises(DatasetError) as err:
        import_dataset([str(path)], MAPPING, tmp_path / "ds")
    assert "ttbar_JESup" in str(err.value) and "choose the trees" in str(err.value)
    assert not (tmp_path / "ds").exists() or not list((tmp_path / "ds").iterdir())


def test_without_a_choice_the_meta_tree_is_skipped_with_a_note(tmp_path):
    path = tmp_path / "mc.root"
    write_root(path, {"sig": 300, "ttbar": 500})
    manifest = import_dataset([str(path)], MAPPING, tmp_path / "ds")
    assert manifest.processes == ["sig", "ttbar"]
    assert any("meta" in note and "skipped" in note for note in manifest.notes)


def test_a_chosen_tree_missing_from_the_files_is_named(tmp_path):
    path = tmp_path / "mc.root"
    write_root(path, {"sig": 300, "ttbar": 500})
    with pytest.raises(DatasetError, match="no tree 'zjets'"):
        read_events([str(path)], dict(MAPPING, trees={"sig": "", "zjets": ""}))


def test_chosen_trees_declaring_too_many_events_are_refused_before_decoding(tmp_path):
    path = tmp_path / "mc.root"
    write_root(path, {"sig": 300, "ttbar": 500, "wjets": 200})
    with pytest.raises(DatasetError, match="declares 800 rows, more than the limit of 700"):
        read_events([str(path)], dict(MAPPING, trees={"sig": "", "ttbar": ""}), max_events=700)
    events, _, _ = read_events([str(path)], dict(MAPPING, trees={"sig": "", "wjets": ""}),
                               max_events=700)
    assert events.n_events == 500


def test_tree_choices_as_text_list_or_dict_read_alike():
    from gato_core.import_steps import clean_trees
    expected = {"ttbar": "tt", "sig": "sig", "wjets": "wjets"}
    # the process name may be left out (then it is the tree's name), in every form
    assert clean_trees("ttbar=tt, sig wjets=") == expected
    assert clean_trees(["ttbar=tt", " sig ", "wjets="]) == expected
    assert clean_trees({" ttbar ": "tt", "sig": None, "wjets": ""}) == expected
    assert clean_trees("") is None and clean_trees([]) is None
    with pytest.raises(DatasetError, match="needs a name"):
        clean_trees("=tt")
    with pytest.raises(DatasetError, match="must map tree names"):
        clean_trees(3)


def test_process_scales_as_text_need_a_number_for_each_process():
    mapping = DatasetMapping.from_dict(dict(MAPPING, process_scales="sig=0.5, ttbar=1.2"))
    assert mapping.process_scales == {"sig": 0.5, "ttbar": 1.2}
    for text in ("sig=0.5 ttbar", "=2"):
        with pytest.raises(DatasetError) as err:
            DatasetMapping.from_dict(dict(MAPPING, process_scales=text))
        assert "PROCESS=NUMBER" in err.value.problems["process_scales"]


def test_trees_and_per_file_process_names_together_are_refused():
    with pytest.raises(DatasetError) as err:
        DatasetMapping.from_dict(dict(MAPPING, trees={"sig": ""}, process_names=["a"]))
    assert "trees" in err.value.problems


# ----- truncated ROOT files --------------------------------------------------------------
def truncated(tmp_path, fraction):
    path = tmp_path / "whole.root"
    write_root(path, {"sig": 40_000, "ttbar": 60_000})
    data = path.read_bytes()
    cut = tmp_path / f"cut{int(fraction * 100)}.root"
    cut.write_bytes(data[:int(len(data) * fraction)])
    return cut


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_a_truncated_root_file_gives_a_clear_dataset_error(tmp_path, fraction):
    path = truncated(tmp_path, fraction)
    for call in (lambda: read_events([str(path)], MAPPING),
                 lambda: read_events([f"{path}:sig", f"{path}:ttbar"], MAPPING),
                 lambda: inspect_sources([str(path)]),
                 lambda: list_trees(path)):
        with pytest.raises(DatasetError) as err:
            call()
        assert "truncated or corrupted" in str(err.value)


def test_cli_import_of_a_truncated_root_file_prints_an_error_not_a_traceback(tmp_path):
    path = truncated(tmp_path, 0.9)
    done = subprocess.run([sys.executable, "-m", "gato_core", "dataset", "import", str(path),
                           "--data-dir", str(tmp_path / "data"), "--score-columns", "score",
                           "--weight-column", "w", "--signal", "sig"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "error:" in done.stderr and "truncated or corrupted" in done.stderr


# ----- selection cuts ----------------------------------------------------------------------
def test_selection_mask_equals_the_numpy_mask():
    rng = np.random.default_rng(3)
    columns = {"nn_score": rng.random(10_000), "njets": rng.integers(0, 6, 10_000),
               "pt": rng.exponential(50.0, 10_000)}
    cases = {
        "nn_score > 0.1 & njets >= 2":
            (columns["nn_score"] > 0.1) & (columns["njets"] >= 2),
        "(pt / 2 + 10 > 40) | ~(njets < 4)":
            (columns["pt"] / 2 + 10 > 40) | ~(columns["njets"] < 4),
        "0.2 < nn_score <= 0.7 and not njets == 3":
            (0.2 < columns["nn_score"]) & (columns["nn_score"] <= 0.7) & ~(columns["njets"] == 3),
        "pt * -1 < -30 or nn_score - 0.5 > 0.25":
            (columns["pt"] * -1 < -30) | (columns["nn_score"] - 0.5 > 0.25),
    }
    for expression, expected in cases.items():
        selection = parse_selection(expression, columns)
        np.testing.assert_array_equal(selection.mask(columns), expected, err_msg=expression)


@pytest.mark.parametrize("expression, offending", [
    ("__import__('os').system('true') > 0", "__import__('os').system('true')"),
    ("nn_score.__class__ > 0", "nn_score.__class__"),
    ("abs(nn_score) > 0.1", "abs(nn_score)"),
    ("nn_score[0] > 1", "nn_score[0]"),
    ("nn_score > 'a'", "'a'"),
    ("nn_score ** 2 > 0.1", "nn_score ** 2"),
    ("(lambda: 1)() > 0", "(lambda: 1)()"),
    ("[x for x in njets] > 0", "[x for x in njets]"),
])
def test_hostile_or_unsupported_selections_are_refused_naming_the_part(expression, offending):
    with pytest.raises(DatasetError) as err:
        parse_selection(expression, ["nn_score", "njets"])
    message = str(err.value)
    assert offending in message and "not allowed" in message


def test_selection_refuses_unknown_columns_and_non_conditions():
    with pytest.raises(DatasetError, match="no column 'nn_scor'"):
        parse_selection("nn_scor > 0.1", ["nn_score", "njets"])
    with pytest.raises(DatasetError, match="not a condition"):
        parse_selection("nn_score + 1", ["nn_score"])
    with pytest.raises(DatasetError, match="not a valid expression"):
        parse_selection("nn_score >", ["nn_score"])


def test_selection_at_import_keeps_what_the_numpy_mask_keeps(tmp_path):
    path = tmp_path / "mc.root"
    written = write_root(path, {"sig": 3000, "ttbar": 5000})
    cut = "score > 0.1 & njets >= 2"
    manifest = import_dataset([str(path)], dict(MAPPING, selection=cut), tmp_path / "ds")
    masks = {t: (c["score"] > 0.1) & (c["njets"] >= 2) for t, c in written.items()}
    assert manifest.n_events == sum(int(m.sum()) for m in masks.values())
    for tree, columns in written.items():
        assert manifest.process_summary[tree]["events"] == int(masks[tree].sum())
        assert manifest.process_summary[tree]["weight_sum"] == pytest.approx(
            float(columns["w"][masks[tree]].sum(dtype=np.float64)), rel=1e-6)
    counts = manifest.report["selection"]
    assert counts["events_read"] == 8000 and counts["events_kept"] == manifest.n_events
    assert counts["weight_kept"] == pytest.approx(sum(
        float(c["w"][masks[t]].sum(dtype=np.float64)) for t, c in written.items()), rel=1e-9)
    events = load_dataset(tmp_path / "ds", manifest.id)
    assert events.scores[:, 0].min() > 0.1  # the cut is applied before anything else


def test_selection_on_a_parquet_file_with_a_label_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(5)
    n = 4000
    table = {"score": rng.random(n), "njets": rng.integers(0, 5, n),
             "proc": np.where(rng.random(n) < 0.3, "sig", "bkg")}
    pq.write_table(pa.table(table), tmp_path / "x.parquet", row_group_size=1000)
    mapping = {"score_columns": ["score"], "process_column": "proc", "signals": ["sig"],
               "selection": "njets >= 2"}
    events, report, _ = read_events([str(tmp_path / "x.parquet")], mapping)
    keep = table["njets"] >= 2
    assert events.n_events == int(keep.sum())
    is_signal = events.process == list(events.process_names).index("sig")
    assert int(is_signal.sum()) == int((keep & (table["proc"] == "sig")).sum())
    np.testing.assert_allclose(np.sort(events.scores[:, 0]),
                               np.sort(table["score"][keep]).astype("f4"))


def test_a_selection_that_keeps_nothing_is_refused(tmp_path):
    path = tmp_path / "mc.root"
    write_root(path, {"sig": 300, "ttbar": 500})
    with pytest.raises(DatasetError, match="keeps none"):
        read_events([str(path)], dict(MAPPING, selection="njets > 100"))


# ----- scale factors -----------------------------------------------------------------------
def test_luminosity_and_process_factors_multiply_the_weights(tmp_path):
    path = tmp_path / "mc.root"
    written = write_root(path, {"sig": 300, "ttbar": 500, "wjets": 200})
    mapping = dict(MAPPING, luminosity=138.0, process_scales={"sig": 0.5, "ttbar": 1.2})
    manifest = import_dataset([str(path)], mapping, tmp_path / "ds")
    # by hand: sum of the file's weights x 138 x the process factor (1 for wjets)
    by_hand = {t: float(c["w"].sum(dtype=np.float64)) for t, c in written.items() if t != "meta"}
    factor = {"sig": 138.0 * 0.5, "ttbar": 138.0 * 1.2, "wjets": 138.0}
    scaling = manifest.report["scaling"]
    for process in ("sig", "ttbar", "wjets"):
        assert scaling["yields_before"][process] == pytest.approx(by_hand[process], rel=1e-6)
        assert scaling["yields_after"][process] == pytest.approx(
            by_hand[process] * factor[process], rel=1e-6)
        assert manifest.process_summary[process]["weight_sum"] == pytest.approx(
            by_hand[process] * factor[process], rel=1e-6)
    assert scaling["process_scales"] == {"sig": 0.5, "ttbar": 1.2, "wjets": 1.0}
    events = load_dataset(tmp_path / "ds", manifest.id)
    first = written["sig"]["w"][:5].astype(np.float64) * 69.0
    np.testing.assert_allclose(events.weight[:5], first, rtol=1e-6)
    # stored with the dataset: the manifest's mapping keeps the factors
    stored = get_dataset(tmp_path / "ds", manifest.id).mapping
    assert stored["luminosity"] == 138.0 and stored["process_scales"]["ttbar"] == 1.2


@pytest.mark.parametrize("settings, field, words", [
    ({"luminosity": -1}, "luminosity", "above 0"),
    ({"luminosity": "lots"}, "luminosity", "must be a number"),
    ({"process_scales": {"ttbar": 0}}, "process_scales", "above 0"),
    ({"process_scales": "ttbar"}, "process_scales", "PROCESS=NUMBER"),
    ({"systematics": {"xs": {"ttbar": 5}}}, "systematics", "0.05 = 5 %"),
    ({"systematics": "xs=0.1"}, "systematics", "NAME:PROCESS=U"),
    ({"systematics": {"1bad": {"ttbar": 0.1}}}, "systematics", "nuisance name"),
    ({"selection": "open('x')"}, "selection", "not allowed"),
])
def test_bad_analysis_settings_are_refused_with_the_field_named(settings, field, words):
    with pytest.raises(DatasetError) as err:
        DatasetMapping.from_dict(dict(MAPPING, **settings))
    assert field in err.value.problems and words in err.value.problems[field]


def test_scale_or_systematic_of_an_unknown_process_is_refused(tmp_path):
    path = tmp_path / "mc.root"
    write_root(path, {"sig": 300, "ttbar": 500})
    with pytest.raises(DatasetError, match="no process 'tt'"):
        read_events([str(path)], dict(MAPPING, process_scales={"tt": 2.0}))
    with pytest.raises(DatasetError, match="no process 'tt'"):
        read_events([str(path)], dict(MAPPING, systematics={"xs": {"tt": 0.1}}))


def test_systematics_text_form_and_star():
    mapping = DatasetMapping.from_dict(dict(MAPPING, systematics="lumi:*=0.025 xs_tt:ttbar=0.1"))
    assert mapping.systematics == {"lumi": {"*": 0.025}, "xs_tt": {"ttbar": 0.1}}
    from gato_core.import_steps import resolved_systematics
    assert resolved_systematics(mapping.systematics, ["sig", "ttbar"]) == {
        "lumi": {"sig": 0.025, "ttbar": 0.025}, "xs_tt": {"ttbar": 0.1}}
