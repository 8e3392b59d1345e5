"""Is it the budget that keeps the ranks low? Longer runs."""

import os

from training.experiments import committed
from training.experiments.budgets import BUDGETS
from training.experiments.budgets import make_config
from training.experiments.budgets import Trial
from training.experiments.context import trial_row
from training.experiments.figures import colour_kept
from training.experiments.figures import rank_history
from training.experiments.figures import rank_over_training_figure
from training.experiments.figures import reconstruction_rows_figure
from training.experiments.figures import spectra_figure
from training.experiments.figures import training_steps
from training.experiments.tables import rank_table


RANK_FIGURE = ("rank_over_training.png", "Shapes: effective rank over training, AE and IRMAE l=2")


def headline_trials(budget):
    """AE and IRMAE l=2 at the budget's length and, where the budget has one, longer."""
    trials = []
    for size in ({}, budget.long_run):
        for label, model in (("AE", "ae"), ("IRMAE l=2", "irmae")):
            config = make_config(budget, "shapes", model, size=size)
            trials.append(Trial(f"{label}, {training_steps(config):,} steps", config, group=label))
    # The paper budget's runs are already long: one length, Fig. 2's headline pair.
    return list({trial.config.run_name: trial for trial in trials}.values())


def run(ctx):
    """Is it the budget that keeps the ranks below the paper's? AE and IRMAE l=2 at the
    budget's length and trained longer, with the rank after every epoch."""
    trials = headline_trials(ctx.budget)
    # `--budget paper` trains the pair together (two processes on one device: Context.train_all).
    ctx.train_all(trials)
    rows = [dict(trial_row(ctx, trial), rank_by_epoch=rank_history(ctx.run_dir(trial.config)),
                 steps=training_steps(trial.config), colour_kept=colour_kept(ctx, trial))
            for trial in trials]
    table = rank_table(rows, extra=[
        ("steps", lambda row: f"{row['steps']:,}"),
        ("colour kept", lambda row: f"{row['colour_kept']:.0%}"),
        ("rank after each epoch", lambda row: " ".join(str(r) for r in row["rank_by_epoch"])),
    ])
    rank_name, title = RANK_FIGURE
    rank_over_training_figure(ctx, trials, os.path.join(ctx.out_dir, rank_name), title, by_steps=True)
    figures = [RANK_FIGURE]
    spectra_title = "Singular values of the shapes eval codes after short and longer training"
    spectra_figure(rows, os.path.join(ctx.out_dir, "spectra.png"), spectra_title)
    figures.append(("spectra.png", spectra_title))
    labels = reconstruction_rows_figure(ctx, trials, os.path.join(ctx.out_dir, "reconstructions.png"))
    figures.append(("reconstructions.png", "The first 10 eval images and their reconstructions; "
                                           "rows top to bottom: " + ", ".join(labels)))
    notes = ["The shapes data has 7 factors, 3 of them colour. `colour kept`: the mean spread "
             "across the RGB channels of the reconstructions over the eval images', on the shapes' "
             "pixels (0 % for grey reconstructions): a model that has not learned colour needs fewer than 7 code "
             "dimensions for what it has learned. The paper trains 50 000 images × 100 epochs "
             f"({training_steps(make_config(BUDGETS['paper'], 'shapes')):,} steps)."]
    return rows, table, figures, notes


def runs_document(budget, root):
    """The experiment's rows from its finished runs committed under `root/RUN_NAME/`
    (`committed.runs_document`): only runs of `headline_trials(budget)` count; None when
    there is none."""
    return committed.runs_document("training-length", budget, headline_trials(budget), root)


RUNS_FIGURES = (RANK_FIGURE,
                ("spectra.png", "Singular values of the shapes eval codes at the end of training"))


def runs_figures(document):
    """Draws a runs document's figures (see `runs_document`) beside its runs, in
    `runs_dir` (`committed.runs_figures`). Returns [(file name, title)]."""
    budget = BUDGETS[document["budget"]["name"]]
    return committed.runs_figures(document, headline_trials(budget), RUNS_FIGURES, by_steps=True)
