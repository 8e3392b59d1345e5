"""Review 1: does the initial scale of the stack matter?"""

import os

from training.experiments.budgets import make_config
from training.experiments.budgets import Trial
from training.experiments.context import trial_row
from training.experiments.figures import spectra_figure
from training.experiments.tables import rank_table


def run(ctx):
    """Review 1: IRMAE l=2 with the stack's init scaled ×{0.1, 0.3, 1, 3}, and Glorot."""
    budget = ctx.budget
    trials = [Trial(f"init ×{scale:g}", make_config(budget, "shapes", init_scale=scale))
              for scale in (0.1, 0.3, 1.0, 3.0)]
    trials.append(Trial("glorot_uniform", make_config(budget, "shapes", stack_initializer="glorot_uniform")))
    rows = [trial_row(ctx, trial) for trial in trials]
    title = "IRMAE l=2 on shapes: the stack's initial scale"
    spectra_figure(rows, os.path.join(ctx.out_dir, "spectra.png"), title)
    notes = ["×1 is PyTorch's nn.Linear default U(−1/√n, 1/√n), the official code's; Glorot "
             "uniform (Keras' default) is ≈1.7× wider for a square matrix."]
    return rows, rank_table(rows), [("spectra.png", title)], notes
