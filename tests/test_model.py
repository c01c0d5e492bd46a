import json

import numpy as np
import pytest

import tensorflow as tf  # pinned (requirements.txt): a broken install fails, never skips
import tensorflow_probability as tfp

from gato_core import geometry
from gato_core.evaluation import hard_assign
from gato_core.bundle import parameters_file
from gato_core.model import GMMCategoriser, SigmoidCutCategoriser, from_parameters


def trained_looking_gmm(dim, n_cats, mode, seed=0):
    model = GMMCategoriser(n_cats, dim, mode, seed=seed)
    rng = np.random.default_rng(seed)
    model.raw_scale.assign(rng.normal(0, 0.5, (n_cats, dim, dim)).astype(np.float32))
    return model


def test_sigma_base_formula():
    assert geometry.sigma_base(1, 5) == pytest.approx(0.1)  # V_simplex 1, V_ball 2
    assert geometry.sigma_base(2, 5) == pytest.approx(np.sqrt(2) / 10)


@pytest.mark.parametrize("dim,mode", [(1, "sigmoid"), (2, "softmax"), (2, "sigmoid")])
def test_log_density_matches_tfp_and_numpy(dim, mode):
    model = trained_looking_gmm(dim, 4, mode, seed=dim)
    x = np.random.default_rng(1).uniform(0, 0.5, (300, dim)).astype(np.float32)
    ours = model.log_scores(tf.constant(x)).numpy()
    dist = tfp.distributions.MultivariateNormalTriL(loc=model.means(), scale_tril=model.scale_tril())
    reference = dist.log_prob(x[:, None, :]).numpy() + tf.nn.log_softmax(model.logits).numpy()
    assert ours == pytest.approx(reference, abs=2e-3)
    numpy_path = geometry.gmm_log_scores(model.parameters(), x)
    assert numpy_path == pytest.approx(reference, abs=2e-3)


def test_means_respect_their_domain():
    soft = GMMCategoriser(6, 2, "softmax", seed=3)
    mu = soft.means().numpy()
    assert np.all(mu > 0) and np.all(mu.sum(axis=1) < 1)
    sig = GMMCategoriser(6, 1, "sigmoid", mean_range=(0.2, 0.4), seed=3)
    assert np.all((sig.means().numpy() > 0.2) & (sig.means().numpy() < 0.4))


@pytest.mark.parametrize("dim,mode", [(1, "sigmoid"), (2, "softmax")])
def test_hard_assignment_is_soft_argmax_as_temperature_goes_to_zero(dim, mode):
    model = trained_looking_gmm(dim, 5, mode, seed=7)
    x = np.random.default_rng(2).dirichlet(np.ones(3), 2000)[:, :dim].astype(np.float32)
    hard = hard_assign(model.parameters(), x)
    soft = model.soft_membership(tf.constant(x), 1e-4).numpy()
    agree = np.mean(np.argmax(soft, axis=1) == hard)
    assert agree > 0.999
    assert soft.max(axis=1).mean() > 0.99  # memberships have become hard


def test_save_restore_round_trip(tmp_path):
    model = trained_looking_gmm(2, 5, "softmax", seed=4)
    path = tmp_path / "params.json"
    path.write_bytes(parameters_file({"n_cats": 5, "parameters": model.parameters()}))
    restored = from_parameters(path)
    assert restored.parameters() == json.loads(path.read_text())
    x = np.random.default_rng(5).dirichlet(np.ones(3), 5000)[:, :2]
    assert np.array_equal(hard_assign(model.parameters(), x), hard_assign(restored.parameters(), x))
    assert np.allclose(model.log_scores(tf.constant(x, tf.float32)).numpy(),
                       restored.log_scores(tf.constant(x, tf.float32)).numpy())


def test_sigmoid_cut_model():
    model = SigmoidCutCategoriser(4, seed=1)
    cuts = model.cuts().numpy()
    assert np.all(np.diff(cuts) > 0) and cuts.min() > 0 and cuts.max() < 1
    x = np.linspace(0.001, 0.999, 500, dtype=np.float32)[:, None]
    soft = model.soft_membership(tf.constant(x), 1e-4).numpy()
    assert soft.sum(axis=1) == pytest.approx(np.ones(500), abs=1e-5)
    assert np.array_equal(np.argmax(soft, axis=1), hard_assign(model.parameters(), x))
    assert np.allclose(geometry.cut_positions(model.parameters()), cuts, atol=1e-6)
