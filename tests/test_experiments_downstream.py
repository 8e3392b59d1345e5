"""training/experiments/downstream.py at the smoke budget."""

import pytest

from tests.helpers import row_labels
from training.experiments import budgets

pytestmark = pytest.mark.slow

SMOKE = budgets.BUDGETS["smoke"]


def test_downstream(smoke_experiments):
    document = smoke_experiments.result("downstream")
    methods = set(row_labels(document))
    assert methods == {"AE", "VAE", "IRMAE", "supervised"}
    for row in document["rows"]:
        assert 0 <= row["test_error"] <= 100 and row["seeds"] == SMOKE.classify_seeds
    assert "| labels |" in document["table"]
