"""Does IRMAE find the intrinsic dimension? (paper Fig. 2, 3)"""

import os

from training.experiments import committed
from training.experiments.budgets import BUDGETS
from training.experiments.budgets import make_config
from training.experiments.budgets import Trial
from training.experiments.context import trial_row
from training.experiments.figures import interpolation_rows_figure
from training.experiments.figures import rank_history
from training.experiments.figures import rank_over_training_figure
from training.experiments.figures import spectra_figure
from training.experiments.tables import rank_table


ORDER = ("AE", "AE+L1", "AE+L2", "VAE", "IRMAE l=2", "IRMAE l=4")  # Fig. 2's curves, as listed
RUNS_FIGURES = (("fig2_rank_over_training.png", "Shapes: effective rank over training, Fig. 2's models"),
                ("fig2_spectra.png", "Singular values of the shapes eval codes (paper Fig. 2)"))


def fig2_trials(budget):
    """Fig. 2's models on shapes: AE and IRMAE l=2 for each of the budget's seeds, then
    AE+L1, AE+L2, the VAE and IRMAE l=4 once (the budget's first seed)."""
    trials = []
    for seed in budget.seeds:
        trials += [
            Trial("AE", make_config(budget, "shapes", "ae", seed)),
            Trial("IRMAE l=2", make_config(budget, "shapes", "irmae", seed, linear_layers=2)),
        ]
    trials += [
        Trial("AE+L1", make_config(budget, "shapes", "ae_l1")),
        Trial("AE+L2", make_config(budget, "shapes", "ae_l2")),
        Trial("VAE", make_config(budget, "shapes", "vae")),
        Trial("IRMAE l=4", make_config(budget, "shapes", "irmae", linear_layers=4)),
    ]
    return trials


def run(ctx):
    """Paper Fig. 2: spectra of AE, AE+L1, AE+L2, VAE, IRMAE l=2 and l=4 on shapes."""
    budget = ctx.budget
    trials = fig2_trials(budget)
    # Fig. 2's five runs first: with budget.parallel_runs 5 (the paper budget) they train
    # together, one process each on the one GPU; then the other seeds and the VAE.
    headline = ("AE", "AE+L1", "AE+L2", "IRMAE l=2", "IRMAE l=4")
    first = [t for t in trials if t.label in headline and t.config.seed == budget.seeds[0]]
    ctx.train_all(first + [t for t in trials if t not in first])
    rows = [dict(trial_row(ctx, trial), rank_by_epoch=rank_history(ctx.run_dir(trial.config))) for trial in trials]
    rows.sort(key=lambda row: (ORDER.index(row["label"]), row["seed"]))
    first_seed = [row for row in rows if row["seed"] == budget.seeds[0]]
    title = f"Singular values of the shapes eval codes (paper Fig. 2), seed {budget.seeds[0]}"
    spectra_figure(first_seed, os.path.join(ctx.out_dir, "spectra.png"), title)
    figures = [("spectra.png", title)]
    seed_zero = [t for t in trials if t.config.seed == budget.seeds[0]]
    seed_zero.sort(key=lambda t: ORDER.index(t.label))
    labels = interpolation_rows_figure(ctx, seed_zero, os.path.join(ctx.out_dir, "interpolation.png"))
    figures.append(("interpolation.png", "Interpolation between the same two eval images (paper "
                                         "Fig. 3); rows top to bottom: " + ", ".join(labels)))
    title = "Effective rank after each epoch (RankMonitor on the eval images)"
    rank_over_training_figure(ctx, trials, os.path.join(ctx.out_dir, "rank_over_training.png"), title)
    figures.append(("rank_over_training.png", title + ": where a curve still climbs at the end, "
                                                      "the budget, not the model, set its rank"))
    notes = [f"The L1/L2 coefficient is {trials[-4].config.penalty:g} (per-example norm, "
             "averaged over the batch); the VAE's β is 0.1. Paper (Fig. 2, 50 000 × 100 epochs): "
             "IRMAE l=2 ≈ 7, l=4 ≈ 4, AE ≈ 17, AE+L2 ≈ 17, AE+L1 ≈ 25."]
    return rows, rank_table(rows), figures, notes


def runs_document(budget, root):
    """Fig. 2's rows from the finished runs of `fig2_trials(budget)` committed under
    `root/RUN_NAME/` (`committed.runs_document`), in Fig. 2's order; None when none has
    finished."""
    trials = sorted(fig2_trials(budget), key=lambda t: (ORDER.index(t.label), t.config.seed))
    return committed.runs_document("shapes-rank", budget, trials, root)


def runs_figures(document):
    """Fig. 2's spectra and the rank over training of a runs document's runs, drawn
    beside them (`committed.runs_figures`). Returns [(file name, title)]."""
    budget = BUDGETS[document["budget"]["name"]]
    return committed.runs_figures(document, fig2_trials(budget), RUNS_FIGURES, by_steps=True)
