"""training/experiments/init_scale.py at the smoke budget."""

import pytest

from tests.helpers import row_labels

pytestmark = pytest.mark.slow


def test_init_scale(smoke_experiments):
    document = smoke_experiments.result("init-scale")
    assert row_labels(document) == ["init ×0.1", "init ×0.3", "init ×1", "init ×3", "glorot_uniform"]
    configs = [row["config"] for row in document["rows"]]
    assert [c["init_scale"] for c in configs] == [0.1, 0.3, 1.0, 3.0, 1.0]
    assert configs[-1]["stack_initializer"] == "glorot_uniform"
