"""Reviews 2, 4: why not a small latent size?"""

import os

from training.experiments.budgets import make_config
from training.experiments.budgets import Trial
from training.experiments.context import trial_row
from training.experiments.figures import interpolation_rows_figure
from training.experiments.tables import fid_note
from training.experiments.tables import rank_table


def run(ctx):
    """Reviews 2, 4: AE and VAE with small latent sizes against IRMAE n=32."""
    budget = ctx.budget
    trials = [Trial(f"AE n={n}", make_config(budget, "shapes", "ae", latent_dim=n)) for n in (4, 7, 8, 16, 32)]
    trials += [Trial(f"VAE n={n}", make_config(budget, "shapes", "vae", latent_dim=n)) for n in (4, 7, 16, 32)]
    trials.append(Trial("IRMAE n=32 l=2", make_config(budget, "shapes", latent_dim=32)))
    rows = [trial_row(ctx, trial, ("spectrum", "reconstruction", "fid")) for trial in trials]
    table = rank_table(rows, extra=[("FID mvg", lambda r: r["fid"]["mvg"]),
                                    ("FID gmm", lambda r: r["fid"]["gmm"]),
                                    ("FID interpolation", lambda r: r["fid"]["interpolation"])])
    chosen = [t for t in trials if t.label in ("AE n=7", "AE n=32", "VAE n=7", "IRMAE n=32 l=2")]
    labels = interpolation_rows_figure(ctx, chosen, os.path.join(ctx.out_dir, "interpolation.png"))
    figures = [("interpolation.png", "Interpolation between the same two eval images; rows: " + ", ".join(labels))]
    return rows, table, figures, [fid_note(rows)]
