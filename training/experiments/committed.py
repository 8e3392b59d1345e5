"""An experiment's document from finished runs' own results, for runs trained outside
the experiment (the paper budget's CPU path: `python -m training.fit --config`, one run
per core, each committed under docs/results/paper/runs/RUN_NAME/ without its model).

A finished run leaves config.json, status.json, history.csv and spectrum.json (its
end-of-training evaluation on the eval split); those are all an experiment's rows need
for ranks, spectra, MSE, colour and the rank after every epoch."""

import json
import os

from training.experiments.figures import rank_history
from training.provenance import hardware_text
from training.provenance import training_steps

RUNS_SOURCE = "runs"  # a document's `source` when built from committed runs (`runs_document`)


def from_runs(document):
    """Whether a document was assembled from finished runs' own results."""
    return document.get("source") == RUNS_SOURCE


def finished_trials(trials, root):
    """The trials whose run under `root` finished and was evaluated."""
    from training.rundir import RunDir

    done = []
    for trial in trials:
        run = RunDir(os.path.join(root, trial.config.run_name))
        if run.read_status().get("state") == "complete" and os.path.exists(run.spectrum_path):
            done.append(trial)
    return done


def runs_document(experiment, budget, trials, root):
    """`experiment`'s rows from the finished runs of `trials` under `root/RUN_NAME/`;
    None when none has finished. Shaped like `results.json`, with `source: "runs"` and
    `runs_dir: root`."""
    from training.rundir import RunDir
    from training.trainer import build_optimizer

    rows, machines = [], []
    for trial in finished_trials(trials, root):
        run = RunDir(os.path.join(root, trial.config.run_name))
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
    return {"experiment": experiment, "source": RUNS_SOURCE, "runs_dir": root, "budget": {"name": budget.name},
            "hardware": (machines[0] if all(hardware_text(m) == hardware_text(machines[0]) for m in machines)
                         else None),
            # The run names encode the optimizer: the trials' settings are the runs'.
            "adam_epsilon_placement": build_optimizer(trials[0].config).epsilon_placement,
            "rows": rows}


def runs_figures(document, trials, figures, by_steps=False):
    """Draws a runs document's two figures beside its runs, in `runs_dir`: `figures` is
    ((rank file, title), (spectra file, title)), the effective rank after every epoch
    from each finished run's history.csv and the spectra of its end-of-training eval
    codes. Returns [(file name, title)]."""
    from training.experiments.budgets import BUDGETS
    from training.experiments.context import Context
    from training.experiments.figures import rank_over_training_figure
    from training.experiments.figures import spectra_figure

    root = document["runs_dir"]
    budget = BUDGETS[document["budget"]["name"]]
    finished = {row["run_name"] for row in document["rows"]}
    (rank_name, rank_title), (spectra_name, spectra_title) = figures
    rank_over_training_figure(Context(budget, root, root), [t for t in trials if t.config.run_name in finished],
                              os.path.join(root, rank_name), rank_title, by_steps=by_steps)
    spectra_figure(document["rows"], os.path.join(root, spectra_name), spectra_title)
    return list(figures)
