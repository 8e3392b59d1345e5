"""training/experiments/optimizer.py: the learning-rate sweep at the smoke budget, the initial gradients."""

import pytest

from training.experiments import budgets
from training.experiments import optimizer as optimizer_experiment

pytestmark = pytest.mark.slow

SMOKE = budgets.BUDGETS["smoke"]


def test_optimizer_tunes_each_learning_rate(smoke_experiments):
    document = smoke_experiments.result("optimizer")
    sweep = [row for row in document["rows"] if row["group"] == "sweep"]
    tuned = [row for row in document["rows"] if row["group"] != "sweep"]
    assert len(sweep) == sum(len(rates) for rates in SMOKE.learning_rates.values())
    for row in tuned:
        name = row["config"]["optimizer"]
        candidates = [r for r in sweep if r["config"]["optimizer"] == name]
        assert row["config"]["lr"] == min(candidates, key=lambda r: r["mse"])["config"]["lr"]
        assert row["mean_image_mse"] > 0
        assert row["trained"] == (row["mse"] < optimizer_experiment.TRAINED_MSE * row["mean_image_mse"])
    assert all(isinstance(row["trained"], bool) for row in sweep)
    assert "| left the mean image |" in document["table"]
    assert "conv_0/kernel" in document["notes"][1] and "kernel_1" in document["notes"][1]
    assert "Sweep:" in document["notes"][-1]
    adam = [r["config"]["lr"] for r in tuned if r["config"]["optimizer"] == "adam"][0]
    side = "largest" if adam == max(SMOKE.learning_rates["adam"]) else "smallest"
    # adam's sweep has two rates, so its tuned rate is at an end; sgd's and rmsprop's one rate is not.
    assert f"untried: adam ({adam:g}, the {side})." in document["notes"][-1]


def test_initial_gradients_name_every_kernel_in_layer_order():
    config = budgets.make_config(SMOKE, "shapes")
    gradients = optimizer_experiment.initial_gradients(config, count=8)
    names = list(gradients)
    assert names[0] == "conv_0/kernel" and names[-1] == "deconv_4/kernel"
    assert {"linear_stack/kernel_0", "linear_stack/kernel_1"} <= set(names)
    assert not any(name.endswith("bias") for name in names)
    assert all(value > 0 for value in gradients.values())
    # The official init: the loss barely reaches the encoder's first kernel.
    assert gradients["conv_0/kernel"] < 1e-3 * gradients["deconv_4/kernel"]
