"""training/experiments/__main__.py: an unknown experiment is one line, exit code 2."""

import pytest

from training.experiments import registry


@pytest.mark.slow  # spawns a process
def test_unknown_experiment_is_one_line_exit_2(warm_interpreter):
    result = warm_interpreter.cli("training.experiments", "rank-of-everything", timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "training.experiments: error: unknown experiment rank-of-everything; choose from "
        + ", ".join(registry.EXPERIMENTS) + ", all or report."
    ]
