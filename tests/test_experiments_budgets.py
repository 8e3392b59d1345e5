"""training/experiments/budgets.py: run names tell settings apart; the smoke budget is the smallest."""

from training.config import RunConfig
from training.experiments import budgets

SMOKE = budgets.BUDGETS["smoke"]


def test_run_names_tell_settings_apart():
    names = {
        budgets.make_config(SMOKE, "shapes", **kw).run_name
        for kw in ({}, {"init_scale": 0.3}, {"tying": "shared"}, {"freeze_stack": True},
                   {"stack_activation": "relu"}, {"optimizer": "sgd", "lr": 0.01},
                   {"stack_initializer": "glorot_uniform"}, {"linear_layers": 4}, {"seed": 1})
    }
    assert len(names) == 9
    assert all(name.endswith("-smoke") for name in names)


def test_a_sweep_run_is_never_the_full_run_of_the_same_settings():
    full = budgets.make_config(SMOKE, "shapes", optimizer="sgd", lr=0.01)
    sweep = budgets.make_config(SMOKE, "shapes", optimizer="sgd", lr=0.01, size=SMOKE.sweep)
    assert full.run_name != sweep.run_name and sweep.run_name.endswith("-smoke")
    assert (sweep.train_size, sweep.epochs) == (SMOKE.sweep["train_size"], SMOKE.sweep["epochs"])


def test_smoke_budget_is_smaller_than_cpu():
    assert RunConfig(**{**SMOKE.shapes}).train_size < budgets.BUDGETS["cpu"].shapes["train_size"]
