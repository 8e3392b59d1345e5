"""Reviews 3, 4: how deep should the stack be?"""

import os

from training.experiments.budgets import make_config
from training.experiments.budgets import Trial
from training.experiments.context import trial_row
from training.experiments.figures import spectra_figure
from training.experiments.tables import fid_note
from training.experiments.tables import rank_table


def run(ctx):
    """Reviews 3, 4: l ∈ {0, 1, 2, 4, 8}: rank, reconstruction, generation FID."""
    budget = ctx.budget
    trials = [Trial("AE (l=0)", make_config(budget, "shapes", "ae"))]
    trials += [Trial(f"IRMAE l={l}", make_config(budget, "shapes", linear_layers=l)) for l in (1, 2, 4, 8)]
    rows = [trial_row(ctx, trial, ("spectrum", "reconstruction", "fid")) for trial in trials]
    title = "Shapes: the depth l of the linear stack"
    spectra_figure(rows, os.path.join(ctx.out_dir, "spectra.png"), title)
    table = rank_table(rows, extra=[("FID mvg", lambda r: r["fid"]["mvg"]),
                                    ("FID gmm", lambda r: r["fid"]["gmm"]),
                                    ("FID reconstruction", lambda r: r["fid"]["reconstruction"])])
    notes = [fid_note(rows)]
    return rows, table, [("spectra.png", title)], notes
