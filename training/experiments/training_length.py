"""Is it the budget that keeps the ranks low? Longer runs."""

import os

from training.experiments.budgets import BUDGETS
from training.experiments.budgets import make_config
from training.experiments.budgets import Trial
from training.experiments.context import Context
from training.experiments.context import trial_row
from training.experiments.figures import colour_kept
from training.experiments.figures import rank_history
from training.experiments.figures import rank_over_training_figure
from training.experiments.figures import reconstruction_rows_figure
from training.experiments.figures import spectra_figure
from training.experiments.figures import training_steps
from training.experiments.tables import rank_table
from training.provenance import hardware_text


RANK_FIGURE = ("rank_over_training.png", "Shapes: effective rank over training, AE and IRMAE l=2")
RUNS_SOURCE = "runs"  # a document's `source` when built from committed runs (`runs_document`)


def from_runs(document):
    """Whether a training-length document was assembled from finished runs' own results."""
    return document.get("source") == RUNS_SOURCE


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
    """The experiment's rows from its runs' own results, without the models: the
    files `training.fit` leaves in a finished run (config.json, status.json,
    history.csv, spectrum.json: its end-of-training evaluation on the eval split),
    committed under `root/RUN_NAME/` where a run was trained outside the experiment
    (the paper budget's CPU path). Only finished runs of `headline_trials(budget)`
    count; None when there is none. Shaped like `results.json`, with `source: "runs"` and
    `runs_dir: root`."""
    import json

    from training.rundir import RunDir
    from training.trainer import build_optimizer

    trials = headline_trials(budget)
    rows, machines = [], []
    for trial in trials:
        run = RunDir(os.path.join(root, trial.config.run_name))
        if run.read_status().get("state") != "complete" or not os.path.exists(run.spectrum_path):
            continue
        with open(run.spectrum_path, encoding="utf-8") as handle:
            spectrum = json.load(handle)
        with open(run.config_path, encoding="utf-8") as handle:
            machines.append(json.load(handle).get("hardware"))
        rows.append(dict(
            label=trial.label, group=trial.group, seed=trial.config.seed, run_name=trial.config.run_name,
            config=trial.config.to_dict(), effective_rank=spectrum["effective_rank"],
            entropy_rank=spectrum["entropy_rank"], singular_values=spectrum["singular_values"],
            mse=spectrum["eval_mse"], colour_kept=spectrum["colour_kept"], num_codes=spectrum["num_codes"],
            rank_by_epoch=rank_history(run.path), steps=training_steps(trial.config), hardware=machines[-1],
        ))
    if not rows:
        return None
    # One machine for the document where every run names the same one; runs trained in
    # different sittings keep theirs in their rows.
    return {"experiment": "training-length", "source": RUNS_SOURCE, "runs_dir": root, "budget": {"name": budget.name},
            "hardware": (machines[0] if all(hardware_text(m) == hardware_text(machines[0]) for m in machines)
                         else None),
            # The run names encode the optimizer: the trials' settings are the runs'.
            "adam_epsilon_placement": build_optimizer(trials[0].config).epsilon_placement,
            "rows": rows}


RUNS_FIGURES = (RANK_FIGURE,
                ("spectra.png", "Singular values of the shapes eval codes at the end of training"))


def runs_figures(document):
    """Draws a runs document's figures (see `runs_document`) beside its runs, in
    `runs_dir`: the rank after every epoch from each run's history.csv, and the spectra of
    the runs' end-of-training eval codes. Returns [(file name, title)]."""
    root = document["runs_dir"]
    budget = BUDGETS[document["budget"]["name"]]
    finished = {row["run_name"] for row in document["rows"]}
    trials = [trial for trial in headline_trials(budget) if trial.config.run_name in finished]
    (rank_name, rank_title), (spectra_name, spectra_title) = RUNS_FIGURES
    rank_over_training_figure(Context(budget, root, root), trials, os.path.join(root, rank_name), rank_title,
                              by_steps=True)
    spectra_figure(document["rows"], os.path.join(root, spectra_name), spectra_title)
    return list(RUNS_FIGURES)
