import pytest

from gato_core.config import ConfigError, RunConfig


def test_defaults_are_the_reference_workflows():
    one = RunConfig.defaults("one_d")
    assert (one.n_signal, one.n_bkg, one.epochs, one.n_cats) == (100_000, 300_000, 300, (5, 10, 20))
    assert (one.lr_initial, one.lr_final, one.t_initial, one.t_final) == (0.1, 0.001, 1.0, 0.05)
    bump = RunConfig.defaults("bump_hunt")
    assert (bump.epochs, bump.n_cats, bump.noise, bump.t_final) == (400, (5, 8), 0.2, 0.1)
    assert bump.rewt_interval == 50 and bump.mass_sigma == 1.5


def test_every_problem_gets_its_own_message():
    with pytest.raises(ConfigError) as err:
        RunConfig.defaults("one_d", epochs=0, lr_schedule="linear", n_cats=[5, 1])
    problems = err.value.problems
    assert problems["epochs"] == "epochs must be between 1 and 100000, got 0"
    assert "cosine" in problems["lr_schedule"] and "linear" in problems["lr_schedule"]
    assert "between 2 and 50" in problems["n_cats"]


def test_form_strings_are_coerced_and_bad_ones_explained():
    cfg = RunConfig.from_dict({"scenario": "three_class", "epochs": "120", "n_cats": "3, 5"})
    assert cfg.epochs == 120 and cfg.n_cats == (3, 5) and cfg.n_bkg == 1_000_000
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"scenario": "one_d", "epochs": "ten", "lr_initial": "nan"})
    assert "whole number" in err.value.problems["epochs"]
    assert "finite" in err.value.problems["lr_initial"]
    # a type problem and a range problem are reported together, one message each
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"scenario": "one_d", "epochs": "ten", "n_bkg": 10})
    assert set(err.value.problems) == {"epochs", "n_bkg"}
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"scenario": "z_prime"})
    assert "one_d" in err.value.problems["scenario"]


def test_limits_on_sizes_and_models():
    with pytest.raises(ConfigError) as err:
        RunConfig.defaults("three_class", n_signal=2_000_000, n_bkg=2_000_000)
    assert "5,000,000" in err.value.problems["n_bkg"]
    with pytest.raises(ConfigError) as err:
        RunConfig.defaults("bump_hunt", model="sigmoid_cuts")
    assert "1-D" in err.value.problems["model"]
    with pytest.raises(ConfigError):
        RunConfig.defaults("one_d", n_cats=[5, 5])


def test_round_trip_through_dict():
    cfg = RunConfig.defaults("bump_hunt", epochs=40, n_cats=[3])
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("epochs,interval", [(1500, 1), (300, 10), (10, 3), (7, 3), (1, 1),
                                             (100_000, 1), (401, 2)])
def test_snapshots_per_k_are_capped_evenly_and_keep_the_last(epochs, interval):
    from gato_core.config import MAX_SNAPSHOTS_PER_K

    config = RunConfig.defaults("one_d", epochs=epochs, snapshot_interval=interval)
    # the rule training.py applies, counted epoch by epoch
    frames = [e for e in range(epochs) if e % config.snapshot_every == 0 or e == epochs - 1]
    assert config.snapshots_per_k == len(frames)
    assert len(frames) <= MAX_SNAPSHOTS_PER_K + 1
    assert frames[-1] == epochs - 1 and frames[0] == 0
    gaps = {b - a for a, b in zip(frames, frames[1:-1])}
    assert len(gaps) <= 1  # evenly spaced (the last frame may come sooner)
    if -(-epochs // interval) <= MAX_SNAPSHOTS_PER_K:
        assert config.snapshot_every == interval  # the asked-for interval when it fits
