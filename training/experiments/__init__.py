"""`python -m training.experiments NAME`: the experiments that answer the paper's reviewers.

    python -m training.experiments shapes-rank             # one experiment, CPU budget
    python -m training.experiments all --budget cpu        # every experiment, then docs/results.md (~3 h)
    python -m training.experiments report                  # rebuild docs/results.md only

Each experiment trains the runs it needs with `training.fit` (a run another experiment
already trained with the same settings is reused), evaluates them with
`training.evaluate` / `training.classify`, and writes `docs/results/NAME/`: a
`results.json` with every number, seed, setting, the command, the hardware and the
time; a `table.md`; and PNG figures. `docs/results.md` is assembled from those files,
opening with a five-line summary computed from the numbers.

The package: `budgets` (how much compute, which runs), `context` (training and
evaluating an experiment's trials), one module per experiment (`shapes_rank`,
`optimizer`, ...; each has `run(ctx)`), `registry` (the experiments by name),
`figures` and `tables` (the page's pieces), `runner` (one experiment → its results
directory), `report` (docs/results.md from those), `__main__` (the command line).
"""
