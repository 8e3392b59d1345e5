"""training/experiments/tying.py at the smoke budget."""

import pytest

pytestmark = pytest.mark.slow


def test_tying(smoke_experiments):
    document = smoke_experiments.result("tying")
    configs = {row["label"]: row["config"] for row in document["rows"]}
    assert configs["shared (W·W)"]["tying"] == "shared"
    assert configs["transpose (W·Wᵀ)"]["tying"] == "transpose"
    assert configs["frozen random"]["freeze_stack"] is True
    assert configs["nonlinear (ReLU between)"]["stack_activation"] == "relu"
