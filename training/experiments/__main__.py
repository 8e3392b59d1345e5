"""`python -m training.experiments NAME [NAME ...] [--budget cpu|paper|smoke]`."""

import argparse
import os

from export.errors import ArgumentParser
from export.errors import UsageError
from export.errors import run_cli
from training.experiments import __doc__ as DOC
from training.experiments.budgets import BUDGETS
from training.experiments.registry import EXPERIMENTS
from training.experiments.runner import REPORT
from training.experiments.runner import RESULTS_DIR
from training.experiments.runner import run_experiments


def build_parser():
    parser = ArgumentParser(
        prog="python -m training.experiments",
        description=DOC.split("\n\n")[0] + "\n\n" + "\n".join(
            f"  {name:<12} {question}" for name, (_, question) in EXPERIMENTS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", nargs="+", metavar="NAME",
                        help="experiment(s) to run, 'all', or 'report' (rebuild the report only)")
    parser.add_argument("--budget", choices=BUDGETS, default="cpu",
                        help="cpu: each experiment within ~30 min on a 2-core CPU; paper: the "
                             "paper's settings, for a GPU; smoke: seconds, for tests (default: %(default)s)")
    parser.add_argument("--runs-dir", default=os.path.join("saved_models", "experiments"),
                        help="where the runs go; finished runs are reused (default: %(default)s)")
    parser.add_argument("--out",
                        help=f"results directories (default: {RESULTS_DIR} for the cpu budget, "
                             f"{RESULTS_DIR}/BUDGET for the others, so budgets never overwrite each other)")
    parser.add_argument("--report", help=f"the assembled report (default: {REPORT} for the cpu budget, "
                                          "docs/results-BUDGET.md for the others)")
    return parser


def main(argv):
    args = build_parser().parse_args(argv)
    names = list(EXPERIMENTS) if args.name == ["all"] else args.name
    unknown = [n for n in names if n not in EXPERIMENTS and n != "report"]
    if unknown:
        raise UsageError(
            f"unknown experiment {', '.join(unknown)}; choose from {', '.join(EXPERIMENTS)}, all or report."
        )
    cpu = args.budget == "cpu"
    out = args.out or (RESULTS_DIR if cpu else os.path.join(RESULTS_DIR, args.budget))
    report = args.report or (REPORT if cpu else os.path.join(os.path.dirname(REPORT), f"results-{args.budget}.md"))
    run_experiments([n for n in names if n != "report"], BUDGETS[args.budget], args.runs_dir, out, report)
    return 0


if __name__ == "__main__":
    run_cli(main, prog="training.experiments")
