"""Running an experiment: its trials, then results.json and table.md."""

import dataclasses
import json
import os
import time

from training.config import RunConfig
from training.config import hardware
from training.experiments import shapes_rank
from training.experiments import training_length
from training.experiments.context import Context
from training.experiments.registry import EXPERIMENTS


REPORT = "docs/results.md"
RESULTS_DIR = os.path.join("docs", "results")


def run_experiments(names, budget, runs_dir, out_root, report_path=REPORT):
    """Runs each experiment of `names`, then rebuilds the report from every
    experiment's results directory."""
    from training.experiments import report

    for name in names:
        run_experiment(name, budget, runs_dir, out_root)
    others = {"paper": load_paper_documents(out_root)} if budget.name == "cpu" else {}
    draw_runs_figures(others.get("paper", {}))
    report.write_report(load_documents(out_root), out_root, report_path, others)
    print(f"wrote {report_path}")


def run_experiment(name, budget, runs_dir, out_root):
    """Runs one experiment and writes its results directory; returns its document."""
    from irmae_keras.staging import write_json_atomic

    function, question = EXPERIMENTS[name]
    out_dir = os.path.join(out_root, name)
    os.makedirs(out_dir, exist_ok=True)
    ctx = Context(budget, runs_dir, out_dir)
    start = time.time()
    rows, table, figures, notes = function(ctx)
    elapsed = time.time() - start
    from training.trainer import build_optimizer

    document = {
        "experiment": name,
        "question": question,
        "command": f"python -m training.experiments {name} --budget {budget.name}",
        "budget": dataclasses.asdict(budget),
        # Which Adam made the numbers: results before this field used Keras' placement.
        "adam_epsilon_placement": build_optimizer(RunConfig()).epsilon_placement,
        "hardware": hardware(),
        "seconds": {"this_call": elapsed, "training_all_runs": ctx.train_seconds},
        "runs": {"trained_now": ctx.trained_now, "reused": ctx.reused},
        "rows": rows,
        "table": table,
        "figures": figures,
        "notes": notes,
    }
    write_json_atomic(os.path.join(out_dir, "results.json"), document)
    from irmae_keras.staging import atomic_path

    with atomic_path(os.path.join(out_dir, "table.md")) as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(table + "\n")
    print(f"{name}: {elapsed / 60:.1f} min ({ctx.trained_now} runs trained, {ctx.reused} reused)")
    print(table)
    return document


def load_documents(out_root):
    documents = {}
    for name in EXPERIMENTS:
        path = os.path.join(out_root, name, "results.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                documents[name] = json.load(handle)
    return documents


PAPER_RUNS_DIR = "runs"  # under the paper budget's results: finished runs' own results


# The experiments whose paper-budget document can come from finished runs committed under
# OUT_ROOT/paper/runs: {experiment: (runs_document, runs_figures)}.
RUNS_EXPERIMENTS = {"training-length": (training_length.runs_document, training_length.runs_figures),
                    "shapes-rank": (shapes_rank.runs_document, shapes_rank.runs_figures)}


def load_paper_documents(out_root):
    """The paper budget's documents, which the CPU page shows beside its own
    (OUT_ROOT/paper). Where an experiment of `RUNS_EXPERIMENTS` has no document, its
    rows come from the finished runs committed under OUT_ROOT/paper/runs (the paper
    budget's CPU path)."""
    from training.experiments.budgets import BUDGETS

    root = os.path.join(out_root, "paper")
    documents = load_documents(root) if os.path.isdir(root) else {}
    for name, (runs_document, _) in RUNS_EXPERIMENTS.items():
        if name not in documents:
            runs = runs_document(BUDGETS["paper"], os.path.join(root, PAPER_RUNS_DIR))
            if runs:
                documents[name] = runs
    return documents


def draw_runs_figures(documents):
    """Draws the figures of each document built from committed runs, beside the runs."""
    from training.experiments.committed import from_runs

    for name, (_, runs_figures) in RUNS_EXPERIMENTS.items():
        if name in documents and from_runs(documents[name]):
            runs_figures(documents[name])
