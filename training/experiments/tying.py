"""Review 1: tied, shared, frozen and nonlinear stacks."""

import os

from training.experiments.budgets import make_config
from training.experiments.budgets import Trial
from training.experiments.context import trial_row
from training.experiments.figures import spectra_figure
from training.experiments.tables import rank_table


def run(ctx):
    """Review 1 and the supplement: independent, shared, transpose-tied, frozen, nonlinear."""
    budget = ctx.budget
    trials = [
        Trial("independent W1, W2", make_config(budget, "shapes")),
        Trial("shared (W·W)", make_config(budget, "shapes", tying="shared")),
        Trial("transpose (W·Wᵀ)", make_config(budget, "shapes", tying="transpose")),
        Trial("frozen random", make_config(budget, "shapes", freeze_stack=True)),
        Trial("nonlinear (ReLU between)", make_config(budget, "shapes", stack_activation="relu")),
        Trial("AE (no stack)", make_config(budget, "shapes", "ae")),
    ]
    rows = [trial_row(ctx, trial) for trial in trials]
    title = "Shapes, l=2: tying, freezing and a nonlinear stack"
    spectra_figure(rows, os.path.join(ctx.out_dir, "spectra.png"), title)
    return rows, rank_table(rows), [("spectra.png", title)], []
