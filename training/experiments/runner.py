"""Running an experiment: its trials, then results.json and table.md."""

import dataclasses
import json
import os
import platform
import time

from training.config import RunConfig
from training.experiments.context import Context
from training.experiments.registry import EXPERIMENTS


def hardware():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return {"cpu": cpu, "cores": os.cpu_count(), "gpus": gpus,
            "tensorflow": tf.__version__, "python": platform.python_version()}



REPORT = "docs/results.md"
RESULTS_DIR = os.path.join("docs", "results")


def run_experiments(names, budget, runs_dir, out_root, report_path=REPORT):
    """Runs each experiment of `names`, then rebuilds the report from every
    experiment's results directory."""
    from training.experiments import report

    for name in names:
        run_experiment(name, budget, runs_dir, out_root)
    # The CPU page also shows the paper budget's headline pair (docs/results/paper).
    others = {name: load_documents(os.path.join(out_root, name)) for name in ("paper",)
              if budget.name == "cpu" and os.path.isdir(os.path.join(out_root, name))}
    report.write_report(load_documents(out_root), out_root, report_path, others)
    print(f"wrote {report_path}")


def run_experiment(name, budget, runs_dir, out_root):
    """Runs one experiment and writes its results directory; returns its document."""
    from irmae_keras.utils import write_json_atomic

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
    from irmae_keras.utils import atomic_path

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
