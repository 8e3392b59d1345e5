"""How much compute an experiment may spend, and the runs it trains."""

import dataclasses

from training.config import RunConfig


@dataclasses.dataclass(frozen=True)
class Budget:
    """How much compute an experiment may spend.

    Attributes:
        shapes: RunConfig settings of a shapes run.
        digits: RunConfig settings of a digits run.
        seeds: seeds of the headline comparisons (others use the first).
        eval_size: eval images for the spectrum, MSE and FID.
        sweep: RunConfig settings of a learning-rate sweep run.
        long_run: RunConfig settings of the training-length experiment's longer shapes
            runs (empty: the shapes runs are already as long as the paper's).
        learning_rates: the sweep's learning rates per optimizer.
        classify_labels / classify_seeds / classify_epochs: the downstream protocol.
        domain_epochs / domain_images: the FID feature network's training.
        parallel_runs: runs trained at once, each its own process sharing the
            device (a GPU runs several small models faster together than in turn).
    """

    name: str
    shapes: dict
    digits: dict
    seeds: tuple
    eval_size: int
    sweep: dict
    long_run: dict
    learning_rates: dict
    classify_labels: str
    classify_seeds: int
    classify_epochs: int
    domain_epochs: int
    domain_images: int
    parallel_runs: int = 1


# Learning rates from each optimizer's usual range up to where it diverges (SGD with
# momentum 0.9). At the official init the encoder's gradients start near 1e-10: in the
# cpu budget's sweep no rate of SGD or RMSprop up to 1.0 / 1e-3 left the initial plateau
# (the mean image, eval MSE ≈ 0.021); the experiment reports which runs did.
SWEEPS = {
    "adam": (3e-5, 1e-4, 3e-4, 1e-3, 3e-3),
    "sgd": (1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0),
    "rmsprop": (3e-5, 1e-4, 3e-4, 1e-3, 3e-3),
}

BUDGETS = {
    # Seconds per experiment: what the test suite runs.
    "smoke": Budget(
        name="smoke",
        shapes={"train_size": 64, "eval_size": 64, "epochs": 1, "latent_dim": 8},
        digits={"train_size": 128, "epochs": 1, "latent_dim": 16},
        seeds=(0, 1), eval_size=64, sweep={"train_size": 64, "epochs": 1},
        long_run={"train_size": 128, "epochs": 2},
        learning_rates={"adam": (1e-4, 1e-3), "sgd": (1e-2,), "rmsprop": (1e-4,)},
        classify_labels="10,all", classify_seeds=2, classify_epochs=2,
        domain_epochs=1, domain_images=128,
    ),
    # A 2-core CPU: each experiment within about 30 minutes (about 28 distinct shapes
    # runs of 6 250 steps, ~3 min each; the paper trains 50 000 images x 100 epochs =
    # 156 000 steps, the `paper` budget). At half these steps (10 000 images) the AE's
    # rank had not yet left the IRMAE's (5-6 vs 4): the gap opens as the MSE falls.
    "cpu": Budget(
        name="cpu",
        shapes={"train_size": 20_000, "eval_size": 2_000, "epochs": 10},
        digits={"epochs": 40},
        seeds=(0, 1), eval_size=2_000, sweep={"train_size": 5_000, "epochs": 3},
        # 31 250 steps, a fifth of the paper's, ~14 min per run: two runs in ~30 min.
        long_run={"train_size": 50_000, "epochs": 20},
        learning_rates=SWEEPS,
        classify_labels="10,50,100,500,all", classify_seeds=5, classify_epochs=100,
        domain_epochs=5, domain_images=5_000,
    ),
    # The paper's settings: 50 000 / 10 000 shapes images, 100 epochs; a GPU.
    "paper": Budget(
        name="paper",
        shapes={"epochs": 100},
        digits={"epochs": 200},
        seeds=(0, 1, 2), eval_size=10_000, sweep={"train_size": 10_000, "epochs": 10},
        long_run={},
        learning_rates=SWEEPS,
        classify_labels="10,50,100,500,1000,all", classify_seeds=5, classify_epochs=100,
        domain_epochs=10, domain_images=10_000,
        # Fig. 2's five runs (AE, AE+L1, AE+L2, IRMAE l=2, l=4) at once on one GPU.
        parallel_runs=5,
    ),
}


# ---------------------------------------------------------------- the trials


@dataclasses.dataclass
class Trial:
    """One run of an experiment: a label for the tables and its settings."""

    label: str
    config: RunConfig
    group: str = ""


def make_config(budget, dataset, model="irmae", seed=0, size=None, **settings):
    """A RunConfig for `dataset` at `budget`, named by `RunConfig.experiment_run_name`."""
    base = dict(getattr(budget, dataset))
    base.update(size or {})
    base.update(settings)
    config = RunConfig(dataset=dataset, model=model, seed=seed, export=False, **base)
    config = dataclasses.replace(config, run_name="x").resolved()
    return dataclasses.replace(config, run_name=config.experiment_run_name(budget.name, size))
